//! The Redis and Memcached stores against real servers on loopback.
//!
//! Start the servers first (the tests fail, loudly, when they are absent):
//!
//! ```text
//! scripts/services.sh install
//! scripts/services.sh start target/services
//! . target/services/env
//! cargo test --all-features --test server_stores -- --nocapture
//! scripts/services.sh stop target/services
//! ```
//!
//! Tests that count commands or read server-wide counters hold a lock per
//! server, so tests of this file do not disturb each other's counts. The
//! outage tests start and kill servers of their own (the `redis-server` and
//! `memcached` binaries must be on `PATH`).

#![cfg(any(feature = "redis", feature = "memcached"))]
#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::cast_possible_truncation,
    reason = "test code: a failed expectation is a failed test; measurements are printed"
)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_session::{Error, Session, SessionManager, SessionStore};

// --- shared helpers -----------------------------------------------------------

fn env_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: these tests need real servers. Run \
             `scripts/services.sh install && scripts/services.sh start target/services \
             && . target/services/env` first"
        ),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What one request through the manager produced.
struct Outcome {
    session: Session,
    set_cookie: Option<String>,
}

impl Outcome {
    /// The session id the client was given.
    fn cookie(&self) -> String {
        let line = self.set_cookie.as_deref().expect("a Set-Cookie header");
        let pair = line.split(';').next().unwrap();
        let value = pair.split_once('=').unwrap().1;
        assert!(
            !value.is_empty() && value != "\"\"",
            "not a session cookie: {line}"
        );
        value.to_owned()
    }

    fn removes_cookie(&self) -> bool {
        self.set_cookie
            .as_deref()
            .is_some_and(|line| line.contains("Max-Age=0"))
    }
}

/// One request whose handler uses the session through `handler`.
async fn request(
    manager: &SessionManager,
    cookie: Option<&str>,
    handler: impl FnOnce(&Session),
) -> Result<Outcome, Error> {
    let lazy = manager.start_with_value(cookie.map(str::to_owned));
    let session = lazy.get().await?;
    handler(&session);
    let set_cookie = lazy.finish().await?.map(|v| v.to_str().unwrap().to_owned());
    Ok(Outcome {
        session,
        set_cookie,
    })
}

/// One request whose handler never asks for the session.
async fn untouched(manager: &SessionManager, cookie: Option<&str>) -> Result<(), Error> {
    let lazy = manager.start_with_value(cookie.map(str::to_owned));
    assert_eq!(lazy.finish().await?, None);
    Ok(())
}

fn read_n(session: &Session) -> Option<u64> {
    session.get::<u64>("n").unwrap()
}

/// A fresh session holding `n = 1`; returns its cookie.
async fn new_session(manager: &SessionManager) -> String {
    request(manager, None, |s| {
        s.insert("n", 1).unwrap();
    })
    .await
    .unwrap()
    .cookie()
}

/// `n` concurrent tasks, each making a session and reading it back.
async fn concurrent_sessions(manager: &SessionManager, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move {
                let cookie = new_session(&manager).await;
                request(&manager, Some(&cookie), |s| assert_eq!(read_n(s), Some(1)))
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// A store whose server was never up: untouched requests still pass, a
/// session write is a quick 503 whose message names the kind only (the
/// cause is in the source chain).
async fn check_down_from_the_start(manager: &SessionManager) {
    untouched(manager, Some("0123456789abcdef0123456789abcdef"))
        .await
        .unwrap();
    let start = Instant::now();
    let err = request(manager, None, |s| {
        s.insert("n", 1).unwrap();
    })
    .await
    .err()
    .unwrap();
    assert_eq!(err.status(), 503);
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(err.to_string(), "session store unavailable");
    assert!(std::error::Error::source(&err).is_some());
}

/// Checks the record layout aiohttp-session writes and reads, through a
/// store whose raw values `raw_get` returns.
async fn check_record_layout<S, F, Fut>(store: S, raw_get: F)
where
    S: SessionStore,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Option<Vec<u8>>>,
{
    let manager = SessionManager::builder(store).max_age(120).build().unwrap();
    let out = request(&manager, None, |s| {
        s.insert("user", "alice").unwrap();
    })
    .await
    .unwrap();
    let id = out.cookie();
    assert_eq!(id.len(), 32);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let line = out.set_cookie.as_deref().unwrap();
    assert!(
        line.starts_with(&format!("AIOHTTP_SESSION={id}; ")),
        "{line}"
    );
    assert!(line.contains("Max-Age=120"), "{line}");
    let raw = raw_get(format!("AIOHTTP_SESSION_{id}"))
        .await
        .expect("record");
    let expected = format!(
        r#"{{"created": {}, "session": {{"user": "alice"}}}}"#,
        out.session.created()
    );
    assert_eq!(String::from_utf8(raw).unwrap(), expected);

    // A record as Python writes it loads, keeping its identity.
    let other = request(&manager, Some(&id), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("alice"));
        assert_eq!(s.identity().as_deref(), Some(id.as_str()));
        assert!(!s.is_new());
    })
    .await
    .unwrap();
    assert_eq!(
        other.set_cookie, None,
        "a read-only request sends no cookie"
    );
}

// --- counting commands ----------------------------------------------------------

/// Commands a server ran between two snapshots.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Counts {
    get: u64,
    set: u64,
    delete: u64,
    /// Any other command (PING, UNWATCH, CLIENT, touch, ...), by name.
    other: BTreeMap<String, u64>,
    /// New client connections.
    connections: u64,
}

impl Counts {
    fn new(get: u64, set: u64, delete: u64) -> Self {
        Self {
            get,
            set,
            delete,
            ..Self::default()
        }
    }
}

/// The request kinds whose command counts are measured, and the commands
/// each may make: (GET, SET, DEL).
const REQUEST_KINDS: &[(&str, (u64, u64, u64))] = &[
    ("untouched", (0, 0, 0)),
    ("read-only", (1, 0, 0)),
    ("read-modify-write", (1, 1, 0)),
    ("new session", (0, 1, 0)),
    ("invalidate", (1, 0, 1)),
    ("renew (login)", (1, 1, 1)),
    ("unknown id, read-only", (1, 0, 0)),
    ("invalid id, read-only", (0, 0, 0)),
];

/// Runs one request of `kind` (with a fresh existing session where it
/// needs one) and returns what `counter` saw during that request only.
async fn count_one<C: Counter>(manager: &SessionManager, counter: &mut C, kind: &str) -> Counts {
    let cookie = new_session(manager).await;
    let before = counter.snapshot().await;
    match kind {
        "untouched" => untouched(manager, Some(&cookie)).await.unwrap(),
        "read-only" => {
            let out = request(manager, Some(&cookie), |s| assert_eq!(read_n(s), Some(1)))
                .await
                .unwrap();
            assert_eq!(out.set_cookie, None);
        }
        "read-modify-write" => {
            request(manager, Some(&cookie), |s| {
                s.insert("n", read_n(s).unwrap() + 1).unwrap();
            })
            .await
            .unwrap();
        }
        "new session" => {
            request(manager, None, |s| {
                s.insert("n", 1).unwrap();
            })
            .await
            .unwrap();
        }
        "invalidate" => {
            let out = request(manager, Some(&cookie), Session::invalidate)
                .await
                .unwrap();
            assert!(out.removes_cookie());
        }
        "renew (login)" => {
            let out = request(manager, Some(&cookie), |s| {
                s.renew();
                s.insert("user", "alice").unwrap();
            })
            .await
            .unwrap();
            assert_ne!(out.cookie(), cookie);
        }
        "unknown id, read-only" => {
            request(manager, Some("0123456789abcdef0123456789abcdef"), |s| {
                assert!(s.is_new());
            })
            .await
            .unwrap();
        }
        "invalid id, read-only" => {
            request(manager, Some("has a space"), |s| assert!(s.is_new()))
                .await
                .unwrap();
        }
        other => panic!("unknown request kind {other}"),
    }
    let after = counter.snapshot().await;
    after.since(&before)
}

/// Measures every request kind, checks the counts and prints them.
async fn check_command_counts<C: Counter>(label: &str, manager: &SessionManager, counter: &mut C) {
    // Open the store's connections first: that is not per-request work.
    for _ in 0..8 {
        new_session(manager).await;
    }
    for (kind, (get, set, delete)) in REQUEST_KINDS {
        let counts = count_one(manager, counter, kind).await;
        eprintln!(
            "{label}: {kind:<22} GET {} SET {} DEL {} other {:?} new connections {}",
            counts.get, counts.set, counts.delete, counts.other, counts.connections
        );
        assert_eq!(
            counts,
            Counts::new(*get, *set, *delete),
            "{label}: {kind}: unexpected commands"
        );
    }
    // Many requests in a row: still exactly their own commands.
    let cookie = new_session(manager).await;
    let before = counter.snapshot().await;
    for i in 1..=50 {
        request(manager, Some(&cookie), |s| {
            assert_eq!(read_n(s), Some(i));
            s.insert("n", i + 1).unwrap();
        })
        .await
        .unwrap();
    }
    let counts = counter.snapshot().await.since(&before);
    eprintln!("{label}: 50 read-modify-write requests: {counts:?}");
    assert_eq!(counts, Counts::new(50, 50, 0), "{label}: 50 requests");
}

/// Takes snapshots of a server's command counters.
trait Counter {
    async fn snapshot(&mut self) -> Snapshot;
}

/// Raw counter values at one moment.
#[derive(Debug, Default)]
struct Snapshot {
    get: u64,
    set: u64,
    delete: u64,
    other: BTreeMap<String, u64>,
    connections: u64,
}

impl Snapshot {
    fn since(&self, before: &Snapshot) -> Counts {
        let mut other = BTreeMap::new();
        for (name, n) in &self.other {
            let diff = n - before.other.get(name).copied().unwrap_or(0);
            if diff > 0 {
                other.insert(name.clone(), diff);
            }
        }
        Counts {
            get: self.get - before.get,
            set: self.set - before.set,
            delete: self.delete - before.delete,
            other,
            connections: self.connections - before.connections,
        }
    }
}

// --- servers of our own, for outages -------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    #[cfg(feature = "redis")]
    Redis,
    #[cfg(feature = "memcached")]
    Memcached,
}

/// A server process this test started, on a fixed loopback port; killed on
/// drop.
struct OwnServer {
    kind: Kind,
    port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[cfg(feature = "memcached")]
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

impl OwnServer {
    async fn start(kind: Kind) -> Self {
        let mut server = OwnServer {
            kind,
            port: free_port(),
            child: None,
        };
        server.spawn().await;
        server
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    #[cfg(feature = "redis")]
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A manager (max_age 600) over this server, with `timeout` per store
    /// command.
    fn manager(&self, timeout: Duration) -> SessionManager {
        let builder = match self.kind {
            #[cfg(feature = "redis")]
            Kind::Redis => SessionManager::builder(http_session::stores::RedisStore::new(
                http_session::stores::RedisBackend::from_url(&self.url())
                    .unwrap()
                    .timeout(timeout),
            )),
            #[cfg(feature = "memcached")]
            Kind::Memcached => SessionManager::builder(http_session::stores::MemcachedStore::new(
                http_session::stores::MemcachedBackend::new(self.address()).timeout(timeout),
            )),
        };
        builder.max_age(600).build().unwrap()
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none());
        let port = self.port.to_string();
        let mut cmd = match self.kind {
            #[cfg(feature = "redis")]
            Kind::Redis => {
                let mut cmd = Command::new("redis-server");
                cmd.args(["--bind", "127.0.0.1", "--port", &port])
                    .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                    .arg("--dir")
                    .arg(std::env::temp_dir());
                cmd
            }
            #[cfg(feature = "memcached")]
            Kind::Memcached => {
                let mut cmd = Command::new("memcached");
                cmd.args(["-l", "127.0.0.1", "-p", &port, "-U", "0", "-m", "16"]);
                if is_root() {
                    cmd.args(["-u", "root"]);
                }
                cmd
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {:?} (is it installed?): {e}", self.kind));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers().await {
            assert!(
                Instant::now() < deadline,
                "{:?} did not answer on port {}",
                self.kind,
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the server answers a ping on its port.
    async fn answers(&self) -> bool {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(self.address()).await.ok()?;
            let (ping, pong): (&[u8], &str) = match self.kind {
                #[cfg(feature = "redis")]
                Kind::Redis => (b"PING\r\n", "+PONG"),
                #[cfg(feature = "memcached")]
                Kind::Memcached => (b"version\r\n", "VERSION"),
            };
            stream.write_all(ping).await.ok()?;
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).await.ok()?;
            Some(line.starts_with(pong))
        };
        tokio::time::timeout(Duration::from_secs(1), attempt)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Kills the server (SIGKILL: a crash, nothing saved).
    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGSTOP or SIGCONT: the server keeps its port but stops (or
    /// resumes) answering.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Resume first, in case a test failed while it was stopped.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Kills the server, checks that requests get a bounded 503 while it is
/// down, restarts it on the same port and checks that the same manager
/// works again. Prints the timings.
async fn check_outage(
    label: &str,
    server: &mut OwnServer,
    manager: &SessionManager,
    limit: Duration,
) {
    let cookie = new_session(manager).await;
    server.kill();

    untouched(manager, Some(&cookie))
        .await
        .expect("a request that does not touch the session still succeeds");
    for (what, cookie) in [("load", Some(cookie.as_str())), ("save", None)] {
        for attempt in 1..=3 {
            let start = Instant::now();
            let result = request(manager, cookie, |s| {
                s.insert("n", 2).unwrap();
            })
            .await;
            let took = start.elapsed();
            let err = result.err().expect("an error while the server is down");
            eprintln!(
                "{label}: server down, {what} #{attempt}: {} ({}) after {took:?}",
                err.status(),
                err
            );
            assert_eq!(err.status(), 503, "{label}: {err:?}");
            assert_eq!(err.kind(), http_session::ErrorKind::Unavailable);
            assert!(took < limit, "{label}: 503 took {took:?}");
        }
    }

    server.spawn().await;
    let start = Instant::now();
    // The data is gone (no persistence): the old cookie gives a fresh session.
    let out = request(manager, Some(&cookie), |s| {
        assert!(s.is_new());
        s.insert("n", 7).unwrap();
    })
    .await
    .expect("the first request after the restart succeeds");
    let took = start.elapsed();
    eprintln!("{label}: server back, first request succeeded in {took:?}");
    let cookie = out.cookie();
    request(manager, Some(&cookie), |s| assert_eq!(read_n(s), Some(7)))
        .await
        .unwrap();
}

/// Restarts the server while no request is running: the pooled connections
/// are stale, and the next request must still succeed.
async fn check_quiet_restart(label: &str, server: &mut OwnServer, manager: &SessionManager) {
    // Several requests, so that pooled connections exist.
    for _ in 0..4 {
        new_session(manager).await;
    }
    server.kill();
    server.spawn().await;
    for _ in 0..6 {
        let start = Instant::now();
        let cookie = new_session(manager).await;
        request(manager, Some(&cookie), |s| assert_eq!(read_n(s), Some(1)))
            .await
            .unwrap();
        eprintln!(
            "{label}: after a quiet restart, write+read in {:?}",
            start.elapsed()
        );
    }
}

/// Freezes the server (SIGSTOP): connections are accepted but nothing
/// answers. Requests must fail with 503 after about `timeout`, and work
/// again after SIGCONT.
async fn check_frozen(
    label: &str,
    server: &mut OwnServer,
    manager: &SessionManager,
    timeout: Duration,
) {
    let cookie = new_session(manager).await;
    server.signal("-STOP");
    for attempt in 1..=2 {
        let start = Instant::now();
        let err = request(manager, Some(&cookie), |_| {})
            .await
            .err()
            .expect("an error while the server is frozen");
        let took = start.elapsed();
        eprintln!(
            "{label}: frozen server, request #{attempt}: {} after {took:?}",
            err.status()
        );
        assert_eq!(err.status(), 503);
        assert!(took >= timeout, "{label}: gave up early: {took:?}");
        assert!(took < timeout * 3, "{label}: took {took:?}");
    }
    server.signal("-CONT");
    let start = Instant::now();
    request(manager, Some(&cookie), |s| assert_eq!(read_n(s), Some(1)))
        .await
        .expect("requests work again once the server answers");
    eprintln!(
        "{label}: server resumed, request succeeded in {:?}",
        start.elapsed()
    );
}

// --- Redis ---------------------------------------------------------------------

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    use deadpool_redis::redis::aio::MultiplexedConnection;
    use deadpool_redis::redis::{self as raw, AsyncCommands};
    use http_session::stores::KvBackend;
    use http_session::{RedisBackend, RedisStore};

    /// Tests using the shared server run one at a time (its counters are
    /// server-wide).
    static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn url() -> String {
        env_var("HTTP_SESSION_REDIS_URL")
    }

    async fn raw_connection(url: &str) -> MultiplexedConnection {
        raw::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}"))
    }

    async fn ttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
        conn.ttl(key).await.unwrap()
    }

    struct RedisCounter(MultiplexedConnection);

    impl Counter for RedisCounter {
        async fn snapshot(&mut self) -> Snapshot {
            let info: String = raw::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut self.0)
                .await
                .unwrap();
            let stats: String = raw::cmd("INFO")
                .arg("stats")
                .query_async(&mut self.0)
                .await
                .unwrap();
            let mut snap = Snapshot::default();
            for line in info.lines() {
                let Some(rest) = line.strip_prefix("cmdstat_") else {
                    continue;
                };
                let (name, fields) = rest.split_once(':').unwrap();
                let calls: u64 = fields
                    .split(',')
                    .find_map(|f| f.strip_prefix("calls="))
                    .unwrap()
                    .parse()
                    .unwrap();
                match name {
                    "get" => snap.get = calls,
                    "set" => snap.set = calls,
                    "del" => snap.delete = calls,
                    // Our own counter queries.
                    "info" => {}
                    _ => {
                        snap.other.insert(name.to_owned(), calls);
                    }
                }
            }
            snap.connections = stats
                .lines()
                .find_map(|l| l.strip_prefix("total_connections_received:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            snap
        }
    }

    #[tokio::test]
    async fn set_get_delete_and_ttl() {
        let _serial = SERVER.lock().await;
        let url = url();
        let backend = RedisBackend::from_url(&url).unwrap();
        let mut conn = raw_connection(&url).await;
        let key = "http_session_test_set_get_delete";

        backend.set(key, b"value", Some(60)).await.unwrap();
        assert_eq!(
            backend.get(key).await.unwrap().as_deref(),
            Some(&b"value"[..])
        );
        assert!((59..=60).contains(&ttl(&mut conn, key).await));

        // No TTL: SET without EX, which also clears an earlier TTL.
        backend.set(key, b"other", None).await.unwrap();
        assert_eq!(ttl(&mut conn, key).await, -1);
        assert_eq!(
            backend.get(key).await.unwrap().as_deref(),
            Some(&b"other"[..])
        );

        backend.delete(key).await.unwrap();
        assert_eq!(backend.get(key).await.unwrap(), None);
        assert_eq!(ttl(&mut conn, key).await, -2, "deleted");
        backend
            .delete(key)
            .await
            .expect("deleting a missing key is fine");

        // Binary values come back unchanged.
        let bytes: Vec<u8> = (0..=255).collect();
        backend.set(key, &bytes, Some(5)).await.unwrap();
        assert_eq!(backend.get(key).await.unwrap(), Some(bytes));
        backend.delete(key).await.unwrap();
    }

    #[tokio::test]
    async fn record_layout_and_ttl_match_aiohttp_session() {
        let _serial = SERVER.lock().await;
        let url = url();
        let conn = raw_connection(&url).await;
        let raw_get = |key: String| {
            let mut conn = conn.clone();
            async move { conn.get::<_, Option<Vec<u8>>>(key).await.unwrap() }
        };
        check_record_layout(RedisStore::redis(&url).unwrap(), raw_get).await;

        let mut conn = conn.clone();
        let manager = SessionManager::builder(RedisStore::redis(&url).unwrap())
            .max_age(120)
            .build()
            .unwrap();
        let id = new_session(&manager).await;
        let key = format!("AIOHTTP_SESSION_{id}");
        assert!((119..=120).contains(&ttl(&mut conn, &key).await));
        // A per-session max_age sets the record's TTL.
        request(&manager, Some(&id), |s| {
            s.set_max_age(Some(7));
            s.insert("n", 2).unwrap();
        })
        .await
        .unwrap();
        assert!((6..=7).contains(&ttl(&mut conn, &key).await));

        // No max_age: no expiry.
        let manager = SessionManager::new(RedisStore::redis(&url).unwrap());
        let id = new_session(&manager).await;
        assert_eq!(ttl(&mut conn, &format!("AIOHTTP_SESSION_{id}")).await, -1);

        // A record written by aiohttp-session (redis-py) loads.
        let id = "5f1e6a0c8c9b4f0e9d7a6b5c4d3e2f10";
        let key = format!("AIOHTTP_SESSION_{id}");
        let record = format!(
            r#"{{"created": {}, "session": {{"user": "bob", "n": 3}}}}"#,
            unix_now()
        );
        let _: () = conn.set_ex(&key, record, 60).await.unwrap();
        request(&manager, Some(id), |s| {
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("bob"));
            assert_eq!(read_n(s), Some(3));
        })
        .await
        .unwrap();

        // Invalidate deletes the record and removes the cookie.
        let out = request(&manager, Some(id), Session::invalidate)
            .await
            .unwrap();
        assert!(out.removes_cookie());
        assert_eq!(ttl(&mut conn, &key).await, -2);
    }

    #[tokio::test]
    async fn garbage_records_give_a_fresh_session() {
        let _serial = SERVER.lock().await;
        let url = url();
        let mut conn = raw_connection(&url).await;
        let manager = SessionManager::new(RedisStore::redis(&url).unwrap());
        for (i, value) in [&b"notjson"[..], b"[1, 2]", b"{}", b"\xff\xfe", b""]
            .into_iter()
            .enumerate()
        {
            let id = format!("00000000000000000000000000000{i:03}");
            let _: () = conn
                .set_ex(format!("AIOHTTP_SESSION_{id}"), value, 60)
                .await
                .unwrap();
            request(&manager, Some(&id), |s| {
                assert!(s.is_empty(), "{value:?}");
            })
            .await
            .unwrap_or_else(|e| panic!("{value:?}: {e:?}"));
        }
    }

    #[tokio::test]
    async fn command_counts_per_request() {
        let _serial = SERVER.lock().await;
        let url = url();
        let mut counter = RedisCounter(raw_connection(&url).await);

        let manager = SessionManager::builder(RedisStore::redis(&url).unwrap())
            .max_age(600)
            .build()
            .unwrap();
        check_command_counts("redis (from_url)", &manager, &mut counter).await;

        // Built on a default deadpool-redis pool, whose checkouts would send
        // UNWATCH + PING: the backend does not check out per request.
        let pool = deadpool_redis::Config::from_url(url.clone())
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .unwrap();
        let store = RedisStore::new(RedisBackend::from_pool(pool));
        let manager = SessionManager::builder(store).max_age(600).build().unwrap();
        check_command_counts("redis (from_pool)", &manager, &mut counter).await;
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_connection() {
        let _serial = SERVER.lock().await;
        let url = url();
        let mut counter = RedisCounter(raw_connection(&url).await);
        let manager = SessionManager::builder(RedisStore::redis(&url).unwrap())
            .max_age(600)
            .build()
            .unwrap();
        new_session(&manager).await;
        let before = counter.snapshot().await;
        concurrent_sessions(&manager, 32).await;
        let counts = counter.snapshot().await.since(&before);
        assert_eq!(counts, Counts::new(32, 32, 0));
    }

    #[tokio::test]
    async fn outage_gives_503_and_recovers() {
        let mut server = OwnServer::start(Kind::Redis).await;
        let timeout = Duration::from_secs(1);
        let manager = server.manager(timeout);
        check_outage("redis", &mut server, &manager, timeout).await;
        check_quiet_restart("redis", &mut server, &manager).await;
    }

    #[tokio::test]
    async fn frozen_server_times_out_and_recovers() {
        let mut server = OwnServer::start(Kind::Redis).await;
        let timeout = Duration::from_millis(500);
        let manager = server.manager(timeout);
        check_frozen("redis", &mut server, &manager, timeout).await;
    }

    #[tokio::test]
    async fn server_down_from_the_start() {
        let port = free_port();
        let store = RedisStore::redis(&format!("redis://127.0.0.1:{port}/")).unwrap();
        check_down_from_the_start(&SessionManager::new(store)).await;
    }

    #[test]
    fn bad_urls_are_config_errors() {
        let err = RedisStore::redis("not a url").err().unwrap();
        assert_eq!(err.kind(), http_session::ErrorKind::Config);
        let debug = format!(
            "{:?}",
            RedisBackend::from_url("redis://:hunter2@127.0.0.1:1/").unwrap()
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}

// --- Memcached -----------------------------------------------------------------

#[cfg(feature = "memcached")]
mod memcached {
    use super::*;

    use http_session::stores::KvBackend;
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
    struct Raw(BufReader<TcpStream>);

    impl Raw {
        async fn connect(addr: &str) -> Self {
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
        async fn get(&mut self, key: &str) -> Option<(u32, Vec<u8>)> {
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
        async fn ttl(&mut self, key: &str) -> Option<i64> {
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

        async fn set(&mut self, key: &str, flags: u32, exptime: u64, value: &[u8]) {
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
            for name in [
                "cmd_touch",
                "cmd_flush",
                "incr_misses",
                "incr_hits",
                "cas_misses",
                "cas_hits",
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

        backend.set(key, b"value", Some(60)).await.unwrap();
        assert_eq!(
            backend.get(key).await.unwrap().as_deref(),
            Some(&b"value"[..])
        );
        assert!(matches!(raw.ttl(key).await, Some(59..=60)));
        assert_eq!(raw.get(key).await.unwrap().0, 0, "flags are 0");

        backend.set(key, b"other", None).await.unwrap();
        assert_eq!(raw.ttl(key).await, Some(-1), "None never expires");

        // Exactly 30 days is still relative.
        backend.set(key, b"v", Some(2_592_000)).await.unwrap();
        let t = raw.ttl(key).await.expect("stored");
        assert!((2_591_997..=2_592_000).contains(&t), "{t}");

        // Beyond 30 days it is sent as an absolute time; sent as a relative
        // number it would be a time in 1970 and the item would be gone.
        for ttl in [2_592_001_u64, 2_678_400, 3_000_000] {
            backend.set(key, b"v", Some(ttl)).await.unwrap();
            assert_eq!(backend.get(key).await.unwrap().as_deref(), Some(&b"v"[..]));
            // memcached's clock ticks once a second, relative to its start:
            // allow a few seconds either way.
            let t = raw.ttl(key).await.expect("stored") as u64;
            assert!(
                (ttl - 3..=ttl + 3).contains(&t),
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
        backend.set(key, &bytes, Some(5)).await.unwrap();
        assert_eq!(backend.get(key).await.unwrap(), Some(bytes));
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
        for (max_age, expect) in [
            (Some(120), 120_i64),
            (Some(3_000_000), 3_000_000),
            (None, -1),
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
            let slack = if expect < 0 { 0 } else { 3 };
            assert!(
                (expect - slack..=expect + slack).contains(&t),
                "{max_age:?}: {t}"
            );
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
        // The largest value the check lets through is stored for real.
        let fits = 1024 * 1024 - key.len() - 64;
        backend.set(key, &vec![b'x'; fits], Some(60)).await.unwrap();
        assert_eq!(backend.get(key).await.unwrap().map(|v| v.len()), Some(fits));
        backend.delete(key).await.unwrap();

        let err = backend
            .set(key, &vec![b'x'; fits + 1], Some(60))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), http_session::ErrorKind::Store);
        assert_eq!(err.status(), 500);
        assert_eq!(backend.get(key).await.unwrap(), None);

        // Through the manager: the request fails rather than losing data.
        let manager = SessionManager::new(MemcachedStore::memcached(&addr));
        let err = request(&manager, None, |s| {
            s.insert("blob", "x".repeat(2 * 1024 * 1024)).unwrap();
        })
        .await
        .err()
        .expect("too large");
        assert_eq!(err.status(), 500);

        // The limit follows the server's -I when told.
        let backend = MemcachedBackend::new(&addr).max_item_size(512);
        assert!(backend.set(key, &[b'x'; 500], None).await.is_err());
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
}
