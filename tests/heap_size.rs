//! The memory store's byte capacity counts what its records really take:
//! for records of several shapes, `MemoryBackend::bytes` (the sum that
//! `Capacity::Bytes` bounds) is compared with how much the process's
//! resident memory grew while the store filled with 20,000 of them.
//!
//! One test, so that nothing else in this process allocates meanwhile.
//! Resident memory is what a user of the capacity pays: the heap, the
//! allocator's rounding and its free space, page by page.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "tests"
)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http_session::stores::{Capacity, Expect, KvBackend, MemoryBackend, Payload, Put, Write};
use http_session::SharedRecord;
use serde_json::{json, Map, Value};

/// The memory backend's futures finish on their first poll.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the memory backend never waits"),
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A session map as a handler leaves it: built by inserts.
fn inserted(value: &Value) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in value.as_object().unwrap() {
        map.insert(key.clone(), value.clone());
    }
    map
}

#[test]
fn a_full_memory_store_holds_about_the_bytes_it_accounts_for() {
    let shapes: Vec<(&str, Value)> = vec![
        ("a counter", json!({ "n": 1 })),
        (
            "a counter and a name",
            json!({ "n": 1, "name": "visitor 000001" }),
        ),
        (
            "ten strings",
            Value::Object(
                (0..10)
                    .map(|i| (format!("key{i}"), json!(format!("value number {i:08}"))))
                    .collect(),
            ),
        ),
        (
            "nested",
            json!({ "cart": [{ "sku": "A-1", "qty": 2 }, { "sku": "B-22", "qty": 1 }],
                    "user": { "name": "Ada", "roles": ["admin", "dev"] }, "flag": true }),
        ),
        (
            "a hundred numbers",
            Value::Object((0..100).map(|i| (format!("k{i}"), json!(i))).collect()),
        ),
        ("one long string", json!({ "blob": "x".repeat(2000) })),
    ];
    let n = 20_000;
    let mut failures = Vec::new();
    // Every store stays alive to the end: memory freed by one would be
    // reused by the next without growing the resident set.
    let mut stores = Vec::new();
    for (what, shape) in &shapes {
        let backend = MemoryBackend::default().with_capacity(Capacity::Sessions(usize::MAX));
        let before = rss();
        for i in 0..n {
            // Decoded (a cookie read back) for half, inserted for the rest.
            let session = if i % 2 == 0 {
                serde_json::from_str(&shape.to_string()).unwrap()
            } else {
                inserted(shape)
            };
            let record = Payload::Shared(Arc::new(SharedRecord {
                created: 1_700_000_000.into(),
                session: Arc::new(session),
                meta: None,
            }));
            let key = format!("AIOHTTP_SESSION_{i:032x}");
            let write = Write::Value {
                value: &record,
                ttl: Some(3600),
            };
            assert!(matches!(
                ready(backend.put(&key, write, Expect::Absent)).unwrap(),
                Put::Done
            ));
        }
        let grown = rss() - before;
        let accounted = backend.bytes();
        let ratio = grown as f64 / accounted as f64;
        println!(
            "{what}: {} B per session resident, {} B accounted, ratio {ratio:.2}",
            grown / n,
            accounted / n
        );
        if !(0.8..=1.25).contains(&ratio) {
            failures.push(format!(
                "{what}: resident {grown} B, accounted {accounted} B"
            ));
        }
        stores.push(backend);
    }
    assert!(
        failures.is_empty(),
        "the accounted bytes are off by more than 25%: {failures:?}"
    );
}
