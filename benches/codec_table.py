#!/usr/bin/env python3
"""Turns `cargo bench --bench codecs` output into the BENCHMARKS.md tables.

    cargo bench --features fernet,nacl --bench codecs -- --noplot | tee codecs.log
    python3 benches/codec_table.py codecs.log

Prints each benchmark's median and, for each codec's seal+open, the sum of
the primitives it is made of and the ratio (issue target: <= 1.3x at 200 B).
"""

import re
import sys

UNITS = {"ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6}


def parse(path):
    times, name = {}, None
    for line in open(path, encoding="utf-8"):
        head = line.split()
        if head and "/" in head[0] and not line.startswith("Benchmarking"):
            name = head[0]
        m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if m and name:
            times[name] = float(m.group(1)) * UNITS[m.group(2)]
    return times


def main():
    t = parse(sys.argv[1])
    for size in ("200B", "2500B"):
        p = lambda n: t[f"primitive/{size}/{n}"]
        c = lambda n: t[f"codec/{size}/{n}"]
        print(f"\n### {size} session\n")
        print("| codec | ns |")
        print("|---|---:|")
        for key in sorted(k for k in t if k.startswith(f"codec/{size}/")):
            print(f"| {key.split('/', 2)[2]} | {t[key]:.0f} |")
        nonce = p("chacha20_random_24B")
        fernet_prims = (p("aes128cbc_encrypt") + p("aes128cbc_decrypt") + 2 * p("hmac_sha256")
                        + p("base64url_encode") + p("base64url_decode") + nonce)
        nacl_prims = (2 * p("xsalsa20poly1305_encrypt") + p("base64url_encode")
                      + p("base64_decode") + nonce)
        print("\n| seal + open | measured ns | sum of primitives ns | ratio |")
        print("|---|---:|---:|---:|")
        for name, prims in (("fernet", fernet_prims), ("nacl", nacl_prims)):
            measured = c(f"{name}_seal_open")
            print(f"| {name} | {measured:.0f} | {prims:.0f} | {measured / prims:.2f}x |")
        print("\n| primitive | ns |")
        print("|---|---:|")
        for key in sorted(k for k in t if k.startswith(f"primitive/{size}/")):
            print(f"| {key.split('/', 2)[2]} | {t[key]:.0f} |")
    rows = sorted(k for k in t if k.startswith("request/"))
    if rows:
        print("\n### One request's session work (request/*)\n")
        print("| request | ns |")
        print("|---|---:|")
        for key in rows:
            print(f"| {key.split('/', 1)[1]} | {t[key]:.0f} |")


if __name__ == "__main__":
    main()
