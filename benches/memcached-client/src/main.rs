//! get + cas round trips (a session's load and compare-and-set save)
//! against one memcached, through http-session's own text-protocol client
//! (`MemcachedBackend`) and through the `memcache` crate's experimental
//! async meta-protocol client (`memcache::exp::AsyncMetaClient`).
//!
//! ```text
//! memcached-client-bench ADDR [SECONDS_PER_RUN] [ROUNDS]
//! ```
//!
//! Each round runs every (client, concurrency) pair for SECONDS_PER_RUN
//! (default 3) on a current-thread tokio runtime, so the client's CPU time
//! is the main thread's (read from /proc/thread-self/schedstat). Prints one
//! line per run and the median of the rounds per pair. Bounded: the runs
//! stop on time, every operation has a 2 s timeout.

use std::time::{Duration, Instant};

use http_session::stores::{Expect, KvBackend, Payload, Put, Write};
use http_session::MemcachedBackend;
use memcache::exp::{AsyncMetaClient, Meta};

const KEYS: usize = 64;
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// A session record of a typical size (about 200 bytes), varied by `n`.
fn record(n: u64) -> Vec<u8> {
    format!(
        r#"{{"created": 1700000000, "session": {{"user": "alice", "n": {n:012}, "cart": ["a", "b", "c"], "csrf": "0123456789abcdef0123456789abcdef", "theme": "dark", "lang": "en-GB"}}}}"#
    )
    .into_bytes()
}

fn key(i: usize) -> String {
    format!("AIOHTTP_SESSION_bench{i:027}")
}

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    Own,
    MemcacheExp,
}

struct Outcome {
    ops: u64,
    secs: f64,
    cpu_ns: u64,
}

impl Outcome {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn cpu_us_per_op(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0 / self.ops as f64
    }
}

/// One get + cas of key `i` through our backend; whether the cas won.
async fn own_round_trip(backend: &MemcachedBackend, i: usize, n: u64) -> bool {
    let key = key(i);
    let held = backend
        .get(&key)
        .await
        .expect("get")
        .expect("the key exists");
    let value = Payload::Encoded(record(n));
    let write = Write::Value {
        value: &value,
        ttl: Some(600),
    };
    matches!(
        backend
            .put(&key, write, Expect::Current(&held))
            .await
            .expect("cas"),
        Put::Done
    )
}

/// The same through the meta-protocol client: `mg <key> v c`, then
/// `ms <key> <len> T600 C<cas>`.
async fn exp_round_trip(client: &AsyncMetaClient, i: usize, n: u64) -> bool {
    let key = key(i);
    let held = client
        .get(key.as_bytes())
        .meta(Meta::default().cas())
        .send()
        .await
        .expect("mg");
    let cas = held.item.cas.expect("a cas value");
    assert!(held.value.is_some(), "the key exists");
    client
        .set(key.as_bytes(), record(n))
        .ttl(600)
        .compare_cas(cas)
        .send()
        .await
        .expect("ms")
        .stored()
}

async fn run(client: Client, addr: &str, concurrency: usize, secs: f64) -> Outcome {
    // As the store uses it: one connection, shared by every worker.
    let own = MemcachedBackend::new(addr);
    let exp = AsyncMetaClient::connect(addr)
        .await
        .expect("connect")
        .with_max_idle(concurrency)
        .with_io_timeout(Some(OP_TIMEOUT));
    // Fill the keys and warm the connections up.
    for i in 0..KEYS {
        let value = Payload::Encoded(record(0));
        own.delete(&key(i)).await.expect("delete");
        let write = Write::Value {
            value: &value,
            ttl: Some(600),
        };
        own.put(&key(i), write, Expect::Absent).await.expect("add");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let cpu = thread_cpu_ns();
    let start = Instant::now();
    let tasks = (0..concurrency).map(|worker| {
        let (own, exp) = (&own, &exp);
        async move {
            let mut ops = 0u64;
            let mut n = 0u64;
            // Each worker has its own keys, so every cas wins.
            let mine: Vec<usize> = (worker..KEYS).step_by(concurrency).collect();
            while Instant::now() < deadline {
                let i = mine[(n as usize) % mine.len()];
                n += 1;
                let won = match client {
                    Client::Own => {
                        tokio::time::timeout(OP_TIMEOUT, own_round_trip(own, i, n)).await
                    }
                    Client::MemcacheExp => {
                        tokio::time::timeout(OP_TIMEOUT, exp_round_trip(exp, i, n)).await
                    }
                }
                .expect("a round trip within the timeout");
                assert!(won, "{client:?}: a cas lost without a competitor");
                ops += 1;
            }
            ops
        }
    });
    let ops: u64 = futures_join_all(tasks).await.into_iter().sum();
    let secs = start.elapsed().as_secs_f64();
    Outcome {
        ops,
        secs,
        cpu_ns: thread_cpu_ns() - cpu,
    }
}

/// Joins futures on the current task (no spawn: one thread does all).
async fn futures_join_all<F: std::future::Future<Output = u64>>(
    futures: impl Iterator<Item = F>,
) -> Vec<u64> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut out = vec![None; pinned.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, future) in out.iter_mut().zip(pinned.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.unwrap_or(0)).collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .expect("usage: memcached-client-bench ADDR [SECONDS] [ROUNDS]");
    let secs: f64 = args.next().map_or(3.0, |s| s.parse().expect("seconds"));
    let rounds: usize = args.next().map_or(3, |s| s.parse().expect("rounds"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pairs = [
        (Client::Own, 1),
        (Client::MemcacheExp, 1),
        (Client::Own, 16),
        (Client::MemcacheExp, 16),
    ];
    let mut results: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); pairs.len()];
    for round in 1..=rounds {
        for (p, (client, concurrency)) in pairs.iter().enumerate() {
            let outcome = runtime.block_on(run(*client, &addr, *concurrency, secs));
            println!(
                "round {round} {client:?} x{concurrency}: {} get+cas in {:.2} s = {:.0} per s, \
                 client CPU {:.1} us per get+cas",
                outcome.ops,
                outcome.secs,
                outcome.ops_per_sec(),
                outcome.cpu_us_per_op()
            );
            results[p].0.push(outcome.ops_per_sec());
            results[p].1.push(outcome.cpu_us_per_op());
        }
    }
    println!("median of {rounds} rounds of {secs} s (one client thread, one memcached):");
    for ((client, concurrency), (rate, cpu)) in pairs.iter().zip(results) {
        println!(
            "  {client:?} x{concurrency}: {:.0} get+cas per s, {:.1} us client CPU per get+cas",
            median(rate),
            median(cpu)
        );
    }
}
