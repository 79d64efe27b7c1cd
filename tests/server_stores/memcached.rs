//! The memcached backend against a real server.

use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http_session::SessionManager;

use crate::common::*;

use http_session::stores::{Expect, KvBackend, Payload, Remaining, Write};
use http_session::{MemcachedBackend, MemcachedStore};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Tests using the shared server run one at a time (its counters are
/// server-wide).
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn addr() -> String {
    env_var("HTTP_SESSION_MEMCACHED")
}

/// A plain text-protocol connection, to look behind the store's back.
pub struct Raw(BufReader<TcpStream>);

impl Raw {
    pub async fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot reach memcached at {addr}: {e}"));
        Raw(BufReader::new(stream))
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.0.get_mut().write_all(bytes).await.unwrap();
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        self.0.read_line(&mut line).await.unwrap();
        line.trim_end().to_owned()
    }

    /// `get`: the flags and value, if any.
    pub async fn get(&mut self, key: &str) -> Option<(u32, Vec<u8>)> {
        self.send(format!("get {key}\r\n").as_bytes()).await;
        let header = self.line().await;
        if header == "END" {
            return None;
        }
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts[0], "VALUE", "{header}");
        let flags = parts[2].parse().unwrap();
        let len: usize = parts[3].parse().unwrap();
        let mut value = vec![0; len + 2];
        self.0.read_exact(&mut value).await.unwrap();
        value.truncate(len);
        assert_eq!(self.line().await, "END");
        Some((flags, value))
    }

    /// Remaining TTL through the meta command `mg <key> t`: `None`
    /// when absent, `Some(-1)` when the item never expires.
    pub async fn ttl(&mut self, key: &str) -> Option<i64> {
        self.send(format!("mg {key} t\r\n").as_bytes()).await;
        let line = self.line().await;
        if line == "EN" {
            return None;
        }
        let t = line
            .split(' ')
            .find_map(|f| f.strip_prefix('t'))
            .unwrap_or_else(|| panic!("{line}"));
        Some(t.parse().unwrap())
    }

    pub async fn set(&mut self, key: &str, flags: u32, exptime: u64, value: &[u8]) {
        let header = format!("set {key} {flags} {exptime} {}\r\n", value.len());
        self.send(&[header.as_bytes(), value, b"\r\n"].concat())
            .await;
        assert_eq!(self.line().await, "STORED");
    }

    async fn stats(&mut self) -> BTreeMap<String, u64> {
        self.send(b"stats\r\n").await;
        let mut stats = BTreeMap::new();
        loop {
            let line = self.line().await;
            if line == "END" {
                return stats;
            }
            let mut parts = line.split(' ');
            assert_eq!(parts.next(), Some("STAT"), "{line}");
            let name = parts.next().unwrap().to_owned();
            if let Some(Ok(value)) = parts.next().map(str::parse) {
                stats.insert(name, value);
            }
        }
    }
}

impl Counter for Raw {
    async fn snapshot(&mut self) -> Snapshot {
        let stats = self.stats().await;
        let stat = |name: &str| stats.get(name).copied().unwrap();
        let mut other = BTreeMap::new();
        // `cas` and `add` count in `cmd_set`; a lost compare-and-set also
        // shows in `cas_badval`.
        for name in [
            "cmd_touch",
            "cmd_flush",
            "incr_misses",
            "incr_hits",
            "cas_badval",
        ] {
            other.insert(name.to_owned(), stat(name));
        }
        Snapshot {
            get: stat("cmd_get"),
            set: stat("cmd_set"),
            delete: stat("delete_hits") + stat("delete_misses"),
            other,
            connections: stat("total_connections"),
        }
    }
}

#[tokio::test]
async fn set_get_delete_and_exptime() {
    let _serial = SERVER.lock().await;
    let addr = addr();
    let backend = MemcachedBackend::new(&addr);
    let mut raw = Raw::connect(&addr).await;
    let key = "http_session_test_set_get_delete";

    // Items are written a second beyond their TTL (exptime 61 for 60).
    put_value(&backend, key, b"value", Some(60)).await;
    assert_eq!(
        value_of(&backend, key).await.as_deref(),
        Some(&b"value"[..])
    );
    assert!(matches!(raw.ttl(key).await, Some(60..=61)));
    assert_eq!(raw.get(key).await.unwrap().0, 0, "flags are 0");

    put_value(&backend, key, b"other", None).await;
    assert_eq!(raw.ttl(key).await, Some(-1), "None never expires");
    // A touch sets the TTL and leaves the value alone.
    assert!(backend.touch(key, 30).await.unwrap());
    assert!(matches!(raw.ttl(key).await, Some(30..=31)));
    assert_eq!(
        value_of(&backend, key).await.as_deref(),
        Some(&b"other"[..])
    );
    assert!(!backend
        .touch("http_session_test_missing", 30)
        .await
        .unwrap());

    // An exptime of exactly 30 days (a TTL a second shorter) is still
    // relative.
    put_value(&backend, key, b"v", Some(2_591_999)).await;
    let t = raw.ttl(key).await.expect("stored");
    assert!((2_591_997..=2_592_000).contains(&t), "{t}");

    // Beyond 30 days it is sent as an absolute time; sent as a relative
    // number it would be a time in 1970 and the item would be gone.
    for ttl in [2_592_000_u64, 2_592_001, 2_678_400, 3_000_000] {
        put_value(&backend, key, b"v", Some(ttl)).await;
        assert_eq!(value_of(&backend, key).await.as_deref(), Some(&b"v"[..]));
        // memcached's clock ticks once a second, relative to its start:
        // allow a few seconds either way.
        let t = raw.ttl(key).await.expect("stored") as u64;
        assert!(
            (ttl - 2..=ttl + 4).contains(&t),
            "ttl {ttl}: server says {t}"
        );
    }

    backend.delete(key).await.unwrap();
    assert_eq!(backend.get(key).await.unwrap(), None);
    assert_eq!(raw.ttl(key).await, None);
    backend
        .delete(key)
        .await
        .expect("deleting a missing key is fine");

    // An item whose absolute exptime has passed is gone.
    raw.set(key, 0, unix_now() - 10, b"old").await;
    assert_eq!(backend.get(key).await.unwrap(), None);

    let bytes: Vec<u8> = (0..=255).collect();
    put_value(&backend, key, &bytes, Some(5)).await;
    assert_eq!(value_of(&backend, key).await, Some(bytes));
    backend.delete(key).await.unwrap();
}

#[tokio::test]
async fn record_layout_and_exptime_match_aiohttp_session() {
    let _serial = SERVER.lock().await;
    let addr = addr();
    let raw_get = |key: String| {
        let addr = addr.clone();
        async move {
            let (flags, value) = Raw::connect(&addr).await.get(&key).await?;
            assert_eq!(flags, 0);
            Some(value)
        }
    };
    check_record_layout(MemcachedStore::memcached(&addr), raw_get).await;

    let mut raw = Raw::connect(&addr).await;
    // A second beyond max_age: the item lives at least max_age seconds on
    // memcached's once-a-second clock (aiohttp-session writes max_age).
    // An absolute exptime (beyond 30 days) is a Unix time, which memcached
    // measures against its own clock: a few seconds of slack.
    for (max_age, expect) in [
        (Some(120), 120..=121_i64),
        (Some(3_000_000), 2_999_998..=3_000_004),
        (None, -1..=-1),
    ] {
        let manager = SessionManager::builder(MemcachedStore::memcached(&addr))
            .max_age_opt(max_age)
            .build()
            .unwrap();
        let id = new_session(&manager).await;
        let t = raw
            .ttl(&format!("AIOHTTP_SESSION_{id}"))
            .await
            .expect("stored");
        assert!(expect.contains(&t), "{max_age:?}: {t}");
        // And it loads back.
        request(&manager, Some(&id), |s| assert_eq!(read_n(s), Some(1)))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn foreign_flags_and_garbage_do_not_panic() {
    let _serial = SERVER.lock().await;
    let addr = addr();
    let mut raw = Raw::connect(&addr).await;
    let manager = SessionManager::new(MemcachedStore::memcached(&addr));

    // Flags are not read back: a valid record with other flags loads.
    let id = "f1a95f1a95f1a95f1a95f1a95f1a95f1";
    let record = format!(r#"{{"created": {}, "session": {{"n": 1}}}}"#, unix_now());
    raw.set(&format!("AIOHTTP_SESSION_{id}"), 5, 60, record.as_bytes())
        .await;
    request(&manager, Some(id), |s| assert_eq!(read_n(s), Some(1)))
        .await
        .unwrap();

    // Garbage gives a fresh session.
    for (i, value) in [&b"notjson"[..], b"[1, 2]", b"{}", b"\xff\xfe", b""]
        .into_iter()
        .enumerate()
    {
        let id = format!("00000000000000000000000000000{i:03}");
        raw.set(&format!("AIOHTTP_SESSION_{id}"), 1, 60, value)
            .await;
        request(&manager, Some(&id), |s| assert!(s.is_empty(), "{value:?}"))
            .await
            .unwrap_or_else(|e| panic!("{value:?}: {e:?}"));
    }
}

#[tokio::test]
async fn too_large_values_are_errors_not_silently_lost() {
    let _serial = SERVER.lock().await;
    let addr = addr();
    let backend = MemcachedBackend::new(&addr);
    let key = "http_session_test_too_large";
    // Every write is answered: the server's refusal is an error.
    let big = vec![b'x'; 2 * 1024 * 1024];
    let write = Write::Value {
        value: &Payload::Encoded(big),
        ttl: Some(60),
    };
    let err = backend.put(key, write, Expect::Absent).await.unwrap_err();
    assert_eq!(err.kind(), http_session::ErrorKind::RecordTooLarge);
    assert_eq!(err.status(), 500);
    assert_eq!(backend.get(key).await.unwrap(), None);
    // The connection is still usable after the refusal.
    put_value(&backend, key, b"small", Some(60)).await;
    assert_eq!(
        value_of(&backend, key).await.as_deref(),
        Some(&b"small"[..])
    );
    backend.delete(key).await.unwrap();

    // Through the manager: the request fails rather than losing data.
    let manager = SessionManager::new(MemcachedStore::memcached(&addr));
    let err = request(&manager, None, |s| {
        s.insert("blob", "x".repeat(2 * 1024 * 1024)).unwrap();
    })
    .await
    .err()
    .expect("too large");
    assert_eq!(err.status(), 500);
}

#[tokio::test]
async fn command_counts_per_request() {
    let _serial = SERVER.lock().await;
    let addr = addr();
    let mut counter = Raw::connect(&addr).await;
    let manager = SessionManager::builder(MemcachedStore::memcached(&addr))
        .max_age(600)
        .build()
        .unwrap();
    check_command_counts("memcached", &manager, &mut counter).await;
}

#[tokio::test]
async fn rolling_refresh_is_one_touch_per_interval() {
    let _serial = SERVER.lock().await;
    let addr = addr();
    let mut counter = Raw::connect(&addr).await;
    let manager = SessionManager::builder(MemcachedStore::memcached(&addr))
        .idle_timeout(2)
        .rolling(1)
        .build()
        .unwrap();
    check_rolling_touches("memcached", &manager, &mut counter, "cmd_touch").await;
}

#[tokio::test]
async fn concurrent_requests_use_a_small_pool() {
    let _serial = SERVER.lock().await;
    let addr = addr();
    let mut counter = Raw::connect(&addr).await;
    let manager = SessionManager::builder(MemcachedStore::new(
        MemcachedBackend::new(&addr).pool_size(3),
    ))
    .max_age(600)
    .build()
    .unwrap();
    let before = counter.snapshot().await;
    concurrent_sessions(&manager, 32).await;
    let counts = counter.snapshot().await.since(&before);
    assert_eq!(counts.get, 32);
    assert_eq!(counts.set, 32);
    assert!(counts.connections <= 3, "{counts:?}");
}

#[tokio::test]
async fn outage_gives_503_and_recovers() {
    let mut server = OwnServer::start(Kind::Memcached).await;
    let timeout = Duration::from_secs(1);
    let manager = server.manager(timeout);
    check_outage("memcached", &mut server, &manager, timeout).await;
    check_quiet_restart("memcached", &mut server, &manager).await;
}

#[tokio::test]
async fn frozen_server_times_out_and_recovers() {
    let mut server = OwnServer::start(Kind::Memcached).await;
    let timeout = Duration::from_millis(500);
    let manager = server.manager(timeout);
    check_frozen("memcached", &mut server, &manager, timeout).await;
}

#[tokio::test]
async fn server_down_from_the_start() {
    let port = free_port();
    let store = MemcachedStore::memcached(format!("127.0.0.1:{port}"));
    check_down_from_the_start(&SessionManager::new(store)).await;
}

/// Operations of every kind from many tasks at once share the one
/// connection, and each gets its own reply, also when others among them
/// gave up after sending or were refused as too large.
#[tokio::test]
async fn concurrent_commands_share_one_connection_and_get_their_own_replies() {
    let _serial = SERVER.lock().await;
    let addr = addr();
    let mut counter = Raw::connect(&addr).await;
    let backend = Arc::new(MemcachedBackend::new(&addr));
    let before = counter.snapshot().await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let backend = Arc::clone(&backend);
            tokio::spawn(async move {
                let key = format!("http_session_test_mux_{i}");
                let value = format!("value {i}").into_bytes();
                backend.delete(&key).await.unwrap();
                match i % 4 {
                    0 => {
                        let big = Write::Value {
                            value: &Payload::Encoded(vec![b'x'; 2 * 1024 * 1024]),
                            ttl: Some(60),
                        };
                        let err = backend.put(&key, big, Expect::Absent).await.unwrap_err();
                        assert_eq!(err.kind(), http_session::ErrorKind::RecordTooLarge);
                    }
                    1 => {
                        // Sent, then dropped before its reply: the reply is
                        // read and thrown away, not handed to another.
                        let mut read = pin!(backend.get(&key));
                        poll_fn(|cx| {
                            let _ = read.as_mut().poll(cx);
                            Poll::Ready(())
                        })
                        .await;
                    }
                    _ => {}
                }
                assert_eq!(value_of(&*backend, &key).await, None);
                put_value(&*backend, &key, &value, Some(60)).await;
                assert_eq!(value_of(&*backend, &key).await, Some(value.clone()));
                let (stored, remaining) = backend.get_with_remaining(&key).await.unwrap().unwrap();
                assert_eq!(stored.value.encoded().unwrap(), &value[..]);
                // Written with exptime 61 (a second beyond the TTL).
                assert!(
                    matches!(remaining, Remaining::Seconds(1..=61)),
                    "{remaining:?}"
                );
                assert!(backend.touch(&key, 30).await.unwrap());
                backend.delete(&key).await.unwrap();
                assert!(!backend.touch(&key, 30).await.unwrap());
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let counts = counter.snapshot().await.since(&before);
    assert_eq!(counts.connections, 1, "{counts:?}");
    // Four reads per task, and the dropped ones that went out before
    // they were dropped.
    assert!((800..=850).contains(&counts.get), "{counts:?}");
}

/// A read queued and then given up on leaves its reply to nobody: it is
/// still sent, and the next request on the connection gets its own reply.
#[tokio::test]
async fn a_dropped_request_leaves_its_reply_to_nobody() {
    let server = OwnServer::start(Kind::Memcached).await;
    let addr = server.address();
    let mut counter = Raw::connect(&addr).await;
    let backend = MemcachedBackend::new(&addr).timeout(Duration::from_secs(10));
    let (a, b) = ("http_session_test_dropped_a", "http_session_test_dropped_b");
    put_value(&backend, a, b"value a", Some(60)).await;
    put_value(&backend, b, b"value b", Some(60)).await;
    let start = counter.snapshot().await;
    for _ in 0..5 {
        {
            // One poll queues the read on the open connection; it is
            // dropped before the connection's task has even written it.
            let mut read = pin!(backend.get(a));
            poll_fn(|cx| {
                assert!(read.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
        }
        assert_eq!(
            value_of(&backend, b).await.as_deref(),
            Some(&b"value b"[..])
        );
    }
    // Every read went out, and the connection stayed open.
    let counts = counter.snapshot().await.since(&start);
    assert_eq!((counts.get, counts.connections), (10, 0), "{counts:?}");
}
