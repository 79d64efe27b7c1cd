//! The library's work for one request, counted in instructions: run under
//! `valgrind --tool=callgrind` (which counts instructions, the same total
//! for the same binary whatever else the machine does), twice with
//! different counts, so that the difference divided by the difference of
//! the counts is the cost of one request, setup excluded:
//!
//! ```text
//! cargo bench --bench request_cost --features fernet --no-run
//! B=$(ls -t target/release/deps/request_cost-* | grep -v '\.d$' | head -1)
//! for n in 1000 11000; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n $B memory_w2 $n; done
//! ```
//!
//! `benches/request_cost.sh` does this for every kind and prints a table.
//! Kinds: `untouched` (a request whose handler never asks for the session),
//! `memory_w1`, `memory_w2`, `fernet_w1`, `fernet_w2` (W1: no cookie, a new
//! session; W2: read-modify-write of an existing one).

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    missing_docs,
    reason = "a measuring tool"
)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http_session::{FernetKey, FernetStore, MemoryStore, SessionManager};
use serde_json::json;

fn ready<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waited"),
    }
}

fn incr(manager: &SessionManager, header: Option<&[u8]>) -> Option<http::HeaderValue> {
    let lazy = manager.start(header);
    let session = ready(lazy.get()).unwrap();
    let n = session.get_value("n").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
    session.insert_value("n", json!(n));
    ready(lazy.finish()).unwrap()
}

fn untouched(manager: &SessionManager, header: Option<&[u8]>) -> Option<http::HeaderValue> {
    let lazy = manager.start(header);
    ready(lazy.finish()).unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(kind), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: request_cost KIND COUNT");
        std::process::exit(2);
    };
    let n: u64 = n.parse().unwrap();
    let manager = if kind.starts_with("fernet") {
        SessionManager::builder(FernetStore::fernet(
            &FernetKey::from_bytes(&[7; 32]).unwrap(),
        ))
        .max_age(3600)
        .build()
        .unwrap()
    } else {
        SessionManager::builder(MemoryStore::memory())
            .max_age(3600)
            .build()
            .unwrap()
    };
    let first = incr(&manager, None).unwrap();
    let pair = first
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let cookie = Some(pair.as_bytes());
    for _ in 0..n {
        let out = match kind.as_str() {
            "untouched" => untouched(&manager, black_box(cookie)),
            "memory_w1" | "fernet_w1" => incr(&manager, black_box(None)),
            "memory_w2" | "fernet_w2" => incr(&manager, black_box(cookie)),
            other => panic!("unknown kind {other}"),
        };
        black_box(out);
    }
}
