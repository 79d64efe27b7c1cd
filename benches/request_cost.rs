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
//! session; W2: read-modify-write of an existing one), started as axum
//! and warp start them (from the `http` headers); `untouched_bytes` and
//! `memory_w2_bytes`, started as actix-web starts them (from the raw
//! `Cookie` values); and `header_clone`
//! (a clone of a browser request's 11 headers, which warp's
//! `headers_cloned` filter makes).

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

/// How an adapter starts the request: axum and warp from the `http`
/// headers, actix-web from the raw `Cookie` values.
#[derive(Clone, Copy)]
enum From<'a> {
    Headers(&'a http::HeaderMap),
    Bytes(Option<&'a [u8]>),
}

fn start(manager: &SessionManager, from: From<'_>) -> http_session::LazySession {
    match from {
        From::Headers(headers) => manager.start_from_headers(headers),
        From::Bytes(cookie) => manager.start(cookie),
    }
}

fn incr(manager: &SessionManager, from: From<'_>) -> Option<http::HeaderValue> {
    let lazy = start(manager, from);
    let session = ready(lazy.get()).unwrap();
    let n = session.get_value("n").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
    session.insert_value("n", json!(n));
    ready(lazy.finish()).unwrap()
}

fn untouched(manager: &SessionManager, from: From<'_>) -> Option<http::HeaderValue> {
    let lazy = start(manager, from);
    ready(lazy.finish()).unwrap()
}

/// The headers a browser sends with a session cookie (Chromium's, for a
/// same-origin `fetch`), as hyper hands them to a framework.
fn browser_headers(cookie: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("host", "127.0.0.1:8080"),
        ("connection", "keep-alive"),
        ("sec-ch-ua", "\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\""),
        ("sec-ch-ua-mobile", "?0"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
        ("accept", "*/*"),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-mode", "cors"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("accept-language", "en-US,en;q=0.9"),
        ("cookie", cookie),
    ] {
        let value = http::HeaderValue::from_str(value).unwrap();
        headers.append(http::HeaderName::from_static(name), value);
    }
    headers
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
    let first = incr(&manager, From::Bytes(None)).unwrap();
    let pair = first
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let headers = browser_headers(&pair);
    let mut without = headers.clone();
    without.remove(http::header::COOKIE);
    let (with, without) = (From::Headers(&headers), From::Headers(&without));
    for _ in 0..n {
        let out = match kind.as_str() {
            "untouched" => untouched(&manager, black_box(with)),
            "memory_w1" | "fernet_w1" => incr(&manager, black_box(without)),
            "memory_w2" | "fernet_w2" => incr(&manager, black_box(with)),
            "untouched_bytes" => untouched(&manager, black_box(From::Bytes(Some(pair.as_bytes())))),
            "memory_w2_bytes" => incr(&manager, black_box(From::Bytes(Some(pair.as_bytes())))),
            // What warp's `headers_cloned` filter costs per request.
            "header_clone" => {
                black_box(black_box(&headers).clone());
                None
            }
            other => panic!("unknown kind {other}"),
        };
        black_box(out);
    }
}
