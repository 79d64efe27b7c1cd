#!/usr/bin/env python3
"""The report of benches/load/run.sh: reads OUT/runs.tsv (one line per run),
OUT/settings.txt and OUT/memcheck.md, prints results.md (Markdown).

    python3 benches/load/report.py OUT

Every ratio between two servers is computed round by round (both ran in
the same round of the same comparison group, seconds apart) and reported as
the median over the rounds with its range. Session overhead is a server's
CPU microseconds per request of W2 (or W1) minus those of its own bare, in
the same round.

The untouched-request goals compare user CPU time: a session layer makes no
system calls of its own on a request that never touches the session (the
same recvfrom and writev per request with and without it), so the system
time per request, about two thirds of the whole, is the kernel's
loopback path, and its swings between rounds would hide a difference of
half a microsecond. The whole CPU time is shown beside them.
"""

import statistics
import sys
from collections import defaultdict
from pathlib import Path

FIELDS = (
    "group round case workload requests seconds rps p99 failed other "
    "cpu store_cpu cmds user_cpu"
).split()


def load(out):
    runs = defaultdict(dict)  # (group, case, workload) -> round -> run
    for line in (out / "runs.tsv").read_text().splitlines():
        if not line.strip():
            continue
        run = dict(zip(FIELDS, line.split("\t")))
        for name in ("requests", "failed"):
            run[name] = int(run[name])
        for name in ("seconds", "rps", "p99", "other", "cpu", "store_cpu", "user_cpu"):
            if name in run:  # user_cpu: not in the runs.tsv of older runs
                run[name] = float(run[name])
        runs[(run["group"], run["case"], run["workload"])][int(run["round"])] = run
    return runs


def median(values):
    return statistics.median(values) if values else None


def spread(values):
    """(max - min) / median in percent."""
    m = median(values)
    return 100 * (max(values) - min(values)) / m if values and m else 0


def overhead(runs, group, case, workload):
    """Round -> CPU us/request of WORKLOAD minus bare, for one server."""
    work = runs.get((group, case, workload), {})
    bare = runs.get((group, case, "bare"), {})
    return {r: work[r]["cpu"] - bare[r]["cpu"] for r in work if r in bare}


def metric(runs, group, case, workload, what):
    """Round -> a value of one server: rps, cpu, user_cpu, store_cpu, or overhead."""
    if what == "overhead":
        return overhead(runs, group, case, workload)
    return {r: run[what] for r, run in runs.get((group, case, workload), {}).items() if what in run}


def per_round(a, b, combine):
    return [combine(a[r], b[r]) for r in sorted(a) if r in b and b[r] != 0]


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def range_of(values, digits=2):
    if not values:
        return "-"
    return f"{fmt(median(values), digits)} [{fmt(min(values), digits)}-{fmt(max(values), digits)}, n={len(values)}]"


def cmds_summary(runs_of_case):
    """The median of each store command's count per request."""
    per_name = defaultdict(list)
    for run in runs_of_case.values():
        if run["cmds"] == "-":
            continue
        for item in run["cmds"].split(","):
            name, value = item.split(":")
            per_name[name].append(float(value))
    if not per_name:
        return "-"
    # Not commands: "reads" (Redis socket reads), and memcached's cas_*
    # (a share of cmd_set).
    total = sum(median(v) for n, v in per_name.items() if n != "reads" and not n.startswith("cas_"))
    parts = ", ".join(f"{n} {median(v):.2f}" for n, v in sorted(per_name.items()))
    return f"{total:.2f} ({parts})"


def group_table(runs, group):
    cases = []
    for g, case, _ in runs:
        if g == group and case not in cases:
            cases.append(case)
    print(f"### Group `{group}`")
    print()
    print(
        "| server | store | bare req/s | W1 req/s | W2 req/s | W2 p99 ms "
        "| CPU µs/req bare; W1; W2 | user CPU µs/req bare | overhead µs W1; W2 "
        "| store CPU µs/req W1; W2 | store cmds/req W2 | failed |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for case in cases:
        framework, store = case.split(":")

        def col(workload, what, digits=0):
            values = list(metric(runs, group, case, workload, what).values())
            if not values:
                return "-"
            text = fmt(median(values), digits)
            if what == "rps" and spread(values) > 10:
                text += f" ±{spread(values):.0f}%"
            return text

        cpu = "; ".join(col(w, "cpu", 1) for w in ("bare", "W1", "W2"))
        over = "; ".join(col(w, "overhead", 1) for w in ("W1", "W2"))
        store_cpu = "-"
        if any(run["store_cpu"] > 0 for run in runs.get((group, case, "W2"), {}).values()):
            store_cpu = "; ".join(col(w, "store_cpu", 1) for w in ("W1", "W2"))
        failed = sum(
            run["failed"]
            for w in ("bare", "W1", "W2")
            for run in runs.get((group, case, w), {}).values()
        )
        others = [
            run["other"]
            for w in ("bare", "W1", "W2")
            for run in runs.get((group, case, w), {}).values()
        ]
        note = f" (o{max(others):.0f}%)" if others and max(others) > 5 else ""
        print(
            f"| {framework}{note} | {store} | {col('bare', 'rps')} | {col('W1', 'rps')} "
            f"| {col('W2', 'rps')} | {col('W2', 'p99')} | {cpu} | {col('bare', 'user_cpu', 2)} "
            f"| {over} | {store_cpu} "
            f"| {cmds_summary(runs.get((group, case, 'W2'), {}))} | {failed} |"
        )
    print()


GOALS = [
    # (text, group, a, workload, what, b, workload, what, kind, bound)
    # kind: "ratio<=", "ratio>=", "diff<="
    ("memory: session overhead W2, axum+memory / tower-sessions MemoryStore", "memory",
     "axum:memory", "W2", "overhead", "peer-tower:memory", "W2", "overhead", "ratio<=", 0.5),
    ("Fernet: session overhead W2, actix+fernet / actix-session cookie (AES-GCM)", "cookie",
     "actix:fernet", "W2", "overhead", "peer-actix:cookie", "W2", "overhead", "ratio<=", 0.5),
    ("Redis: W2 req/s, axum+redis / tower-sessions (fred)", "redis",
     "axum:redis", "W2", "rps", "peer-tower:redis", "W2", "rps", "ratio>=", 1.3),
    ("Redis: W2 req/s, actix+redis / actix-session", "redis",
     "actix:redis", "W2", "rps", "peer-actix:redis", "W2", "rps", "ratio>=", 1.3),
    ("Redis: session overhead W2, axum+redis / tower-sessions (fred)", "redis",
     "axum:redis", "W2", "overhead", "peer-tower:redis", "W2", "overhead", "ratio<=", 0.77),
    ("Redis: session overhead W2, actix+redis / actix-session", "redis",
     "actix:redis", "W2", "overhead", "peer-actix:redis", "W2", "overhead", "ratio<=", 0.77),
    ("memcached: W2 req/s, axum+memcached / axum+redis", "memcached",
     "axum:memcached", "W2", "rps", "axum:redis", "W2", "rps", "ratio>=", 0.9),
    ("untouched request: bare user CPU µs, axum+memory minus axum with no session layer", "memory",
     "axum:memory", "bare", "user_cpu", "peer-tower:none", "bare", "user_cpu", "diff<=", 0.5),
    ("untouched request: bare user CPU µs, actix+fernet minus actix-web with no session layer", "cookie",
     "actix:fernet", "bare", "user_cpu", "peer-actix:none", "bare", "user_cpu", "diff<=", 0.5),
]

def untouched(text, group, a, b, user_cpu=True, cpu=True):
    """Context rows: /bare of server A minus that of server B, in user time
    and in user + system time."""
    rows = []
    if user_cpu:
        rows.append((f"untouched request: bare user CPU µs, {text}", group,
                     a, "bare", "user_cpu", b, "bare", "user_cpu", "diff<=", None))
    if cpu:
        rows.append((f"untouched request: bare CPU µs (user + system), {text}", group,
                     a, "bare", "cpu", b, "bare", "cpu", "diff<=", None))
    return rows


CONTEXT = [
    # Figures beside the goals: the same kinds of ratio, not goals themselves.
    ("memory: session overhead W1, axum+memory / tower-sessions MemoryStore", "memory",
     "axum:memory", "W1", "overhead", "peer-tower:memory", "W1", "overhead", "ratio<=", None),
    ("memory: W2 req/s, axum+memory / tower-sessions MemoryStore", "memory",
     "axum:memory", "W2", "rps", "peer-tower:memory", "W2", "rps", "ratio>=", None),
    *untouched("axum+memory minus axum with no session layer", "memory", "axum:memory",
               "peer-tower:none", user_cpu=False),
    *untouched("actix+fernet minus actix-web with none", "cookie", "actix:fernet",
               "peer-actix:none", user_cpu=False),
    *untouched("axum + a layer that only forwards, minus no layer", "memory", "peer-tower:forward",
               "peer-tower:none", cpu=False),
    *untouched("axum + a layer that inserts one extension, minus no layer", "memory",
               "peer-tower:extension", "peer-tower:none", cpu=False),
    *untouched("tower-sessions layer minus no layer", "memory", "peer-tower:memory", "peer-tower:none"),
    *untouched("actix-session middleware minus none", "cookie", "peer-actix:cookie", "peer-actix:none"),
    ("NaCl: session overhead W2, actix+nacl / actix-session cookie", "cookie",
     "actix:nacl", "W2", "overhead", "peer-actix:cookie", "W2", "overhead", "ratio<=", None),
    ("Fernet: W2 req/s, actix+fernet / actix-session cookie", "cookie",
     "actix:fernet", "W2", "rps", "peer-actix:cookie", "W2", "rps", "ratio>=", None),
    ("Redis: W2 req/s, axum+redis / actix-session", "redis",
     "axum:redis", "W2", "rps", "peer-actix:redis", "W2", "rps", "ratio>=", None),
    ("Redis: Redis CPU per W2 request, axum+redis / actix+redis", "redis",
     "axum:redis", "W2", "store_cpu", "actix:redis", "W2", "store_cpu", "ratio<=", None),
    ("Redis: Redis CPU per W2 request, axum+redis / tower-sessions (fred)", "redis",
     "axum:redis", "W2", "store_cpu", "peer-tower:redis", "W2", "store_cpu", "ratio<=", None),
    ("memcached: session overhead W2, axum+memcached / axum+redis", "memcached",
     "axum:memcached", "W2", "overhead", "axum:redis", "W2", "overhead", "ratio<=", None),
    ("Redis Cluster: W2 req/s, axum on the cluster / axum+redis", "scale",
     "axum:redis-cluster", "W2", "rps", "axum:redis", "W2", "rps", "ratio>=", None),
    ("memcached ring: W2 req/s, axum on the ring / axum+memcached", "scale",
     "axum:memcached-ring", "W2", "rps", "axum:memcached", "W2", "rps", "ratio>=", None),
    ("compare-and-set save: W2 req/s, axum+redis / the older revision", "old",
     "axum:redis", "W2", "rps", "old-axum:redis", "W2", "rps", "ratio>=", None),
    ("compare-and-set save: W2 req/s, axum+memcached / the older revision", "old",
     "axum:memcached", "W2", "rps", "old-axum:memcached", "W2", "rps", "ratio>=", None),
    ("compare-and-set save: W2 req/s, axum+memory / the older revision", "old",
     "axum:memory", "W2", "rps", "old-axum:memory", "W2", "rps", "ratio>=", None),
    ("W2 CPU µs/req, axum+redis / the older revision", "old",
     "axum:redis", "W2", "cpu", "old-axum:redis", "W2", "cpu", "ratio<=", None),
    ("W2 CPU µs/req, axum+memcached / the older revision", "old",
     "axum:memcached", "W2", "cpu", "old-axum:memcached", "W2", "cpu", "ratio<=", None),
]


def goal_rows(runs, goals, with_verdict):
    for text, group, a, wa, ma, b, wb, mb, kind, bound in goals:
        va = metric(runs, group, a, wa, ma)
        vb = metric(runs, group, b, wb, mb)
        if kind == "diff<=":
            values = [va[r] - vb[r] for r in sorted(va) if r in vb]
        else:
            values = per_round(va, vb, lambda x, y: x / y)
        if not values:
            continue
        m = median(values)
        cell = range_of(values)
        if not with_verdict:
            print(f"| {text} | {cell} |")
            continue
        met = m <= bound if kind in ("ratio<=", "diff<=") else m >= bound
        sign = "≤" if kind in ("ratio<=", "diff<=") else "≥"
        unit = " µs" if kind == "diff<=" else "x"
        print(f"| {text} | {sign} {bound}{unit} | {cell} | {'yes' if met else '**no**'} |")


def main():
    out = Path(sys.argv[1])
    settings = dict(
        line.split("=", 1) for line in (out / "settings.txt").read_text().splitlines() if "=" in line
    )
    runs = load(out)
    print(
        f"## Load (wrk -t1 -c{settings.get('connections')}, {settings.get('runs')} interleaved rounds "
        f"x {settings.get('duration')} s; servers on CPU {settings.get('server_cpu')}, one worker; "
        f"wrk and the stores on CPU {settings.get('load_cpu')})"
    )
    print()
    print(f"Machine: {settings.get('machine')}; loadavg {settings.get('loadavg')}.")
    print()
    groups = []
    for g, _, _ in runs:
        if g not in groups:
            groups.append(g)
    if groups:
        print("req/s, p99 and CPU: medians over the rounds; ±N%: req/s spread (max-min)/median over N%; "
              "(oN%): in one run other processes took N% of a CPU. CPU µs/req: the server process's "
              "user+system time per request (user CPU: its user time alone); overhead: W1 or W2 minus bare, round by round; store CPU: "
              "the store processes' time per request.")
        print()
        for group in groups:
            group_table(runs, group)
        print("### Goals (issue: performance lead)")
        print()
        print("Each value: the median over the rounds of the per-round ratio (or difference) "
              "[min-max, rounds].")
        print()
        print("| goal | target | measured | met |")
        print("|---|---:|---:|---|")
        goal_rows(runs, GOALS, True)
        print()
        print("| beside the goals | measured |")
        print("|---|---:|")
        goal_rows(runs, CONTEXT, False)
        print()
    memcheck = out / "memcheck.md"
    if memcheck.exists():
        print(memcheck.read_text())
    print(f"Command: `{settings.get('command')}`")


if __name__ == "__main__":
    main()
