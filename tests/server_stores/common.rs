//! Helpers shared by the server-store tests: one-request drivers, command
//! counting, and servers of the tests' own for outages.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_session::stores::{Expect, KvBackend, Payload, Put, Write};
use http_session::{Error, Session, SessionManager, SessionStore};

// --- shared helpers -----------------------------------------------------------

pub fn env_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: these tests need real servers. Run \
             `scripts/services.sh install && scripts/services.sh start target/services \
             && . target/services/env` first"
        ),
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Writes `value` under `key` whatever it holds (through the backend's
/// compare-and-set, retried while others write).
pub async fn put_value<B: KvBackend>(backend: &B, key: &str, value: &[u8], ttl: Option<u64>) {
    for _ in 0..20 {
        let held = backend.get(key).await.unwrap();
        let expect = held.as_ref().map_or(Expect::Absent, Expect::Current);
        let write = Write::Value {
            value: &Payload::from(value),
            ttl,
        };
        if let Put::Done = backend.put(key, write, expect).await.unwrap() {
            return;
        }
    }
    panic!("could not write {key}: it kept changing");
}

/// The value under `key`, without its version.
pub async fn value_of<B: KvBackend>(backend: &B, key: &str) -> Option<Vec<u8>> {
    backend
        .get(key)
        .await
        .unwrap()
        .map(|stored| stored.value.encoded().unwrap().to_vec())
}

/// The backend contract on one key, through the backend alone: write,
/// read, TTL refresh, compare-and-set (won, lost, on a deleted key, on a
/// taken key) and delete. Leaves the key deleted.
pub async fn check_backend_contract<B: KvBackend>(label: &str, backend: &B, key: &str) {
    backend.delete(key).await.unwrap();
    assert_eq!(backend.get(key).await.unwrap(), None, "{label}: {key}");
    // A new key: `Expect::Absent`.
    let write = Write::Value {
        value: &Payload::from(&b"one"[..]),
        ttl: Some(60),
    };
    assert!(matches!(
        backend.put(key, write, Expect::Absent).await.unwrap(),
        Put::Done
    ));
    let one = backend.get(key).await.unwrap().expect("stored");
    assert_eq!(one.value.encoded().unwrap(), b"one", "{label}");
    // Taken: a second `Expect::Absent` fails.
    let write = Write::Value {
        value: &Payload::from(&b"other"[..]),
        ttl: Some(60),
    };
    assert!(matches!(
        backend.put(key, write, Expect::Absent).await.unwrap(),
        Put::Changed(_)
    ));
    // Compare-and-set against what was read: wins once.
    let write = Write::Value {
        value: &Payload::from(&b"two"[..]),
        ttl: None,
    };
    assert!(matches!(
        backend
            .put(key, write, Expect::Current(&one))
            .await
            .unwrap(),
        Put::Done
    ));
    // The same expectation again is stale: it loses, and the value stays.
    let write = Write::Value {
        value: &Payload::from(&b"three"[..]),
        ttl: None,
    };
    match backend
        .put(key, write, Expect::Current(&one))
        .await
        .unwrap()
    {
        Put::Changed(Some(current)) => {
            assert_eq!(current.value.encoded().unwrap(), b"two", "{label}");
        }
        Put::Changed(None) => {}
        other => panic!("{label}: stale compare-and-set gave {other:?}"),
    }
    assert_eq!(value_of(backend, key).await.as_deref(), Some(&b"two"[..]));
    // A touch refreshes the TTL and keeps the value.
    assert!(backend.touch(key, 30).await.unwrap(), "{label}");
    assert_eq!(value_of(backend, key).await.as_deref(), Some(&b"two"[..]));
    // A conditional delete of what is there.
    let two = backend.get(key).await.unwrap().expect("stored");
    assert!(matches!(
        backend
            .put(key, Write::Delete, Expect::Current(&two))
            .await
            .unwrap(),
        Put::Done
    ));
    assert_eq!(backend.get(key).await.unwrap(), None, "{label}");
    // A compare-and-set of a deleted key writes nothing back.
    let write = Write::Value {
        value: &Payload::from(&b"ghost"[..]),
        ttl: Some(60),
    };
    assert!(matches!(
        backend
            .put(key, write, Expect::Current(&two))
            .await
            .unwrap(),
        Put::Missing
    ));
    assert_eq!(backend.get(key).await.unwrap(), None, "{label}");
    assert!(!backend.touch(key, 30).await.unwrap(), "{label}");
    // Plain writes and deletes.
    put_value(backend, key, b"four", Some(60)).await;
    backend.delete(key).await.unwrap();
    assert_eq!(backend.get(key).await.unwrap(), None, "{label}");
    backend
        .delete(key)
        .await
        .expect("deleting a missing key is fine");
}

/// An error and its sources, for a failure message.
pub fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What one request through the manager produced.
pub struct Outcome {
    pub session: Session,
    pub set_cookie: Option<String>,
}

impl Outcome {
    /// The session id the client was given.
    pub fn cookie(&self) -> String {
        let line = self.set_cookie.as_deref().expect("a Set-Cookie header");
        let pair = line.split(';').next().unwrap();
        let value = pair.split_once('=').unwrap().1;
        assert!(
            !value.is_empty() && value != "\"\"",
            "not a session cookie: {line}"
        );
        value.to_owned()
    }

    pub fn removes_cookie(&self) -> bool {
        self.set_cookie
            .as_deref()
            .is_some_and(|line| line.contains("Max-Age=0"))
    }
}

/// One request whose handler uses the session through `handler`.
pub async fn request(
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
pub async fn untouched(manager: &SessionManager, cookie: Option<&str>) -> Result<(), Error> {
    let lazy = manager.start_with_value(cookie.map(str::to_owned));
    assert_eq!(lazy.finish().await?, None);
    Ok(())
}

pub fn read_n(session: &Session) -> Option<u64> {
    session.get::<u64>("n").unwrap()
}

/// A fresh session holding `n = 1`; returns its cookie.
pub async fn new_session(manager: &SessionManager) -> String {
    request(manager, None, |s| {
        s.insert("n", 1).unwrap();
    })
    .await
    .unwrap()
    .cookie()
}

/// Reads `n` of the session of `cookie` and writes it back plus one.
pub async fn increment_n(manager: &SessionManager, cookie: &str) {
    request(manager, Some(cookie), |s| {
        s.insert("n", read_n(s).unwrap() + 1).unwrap();
    })
    .await
    .unwrap();
}

/// `n` concurrent tasks, each making a session and reading it back.
pub async fn concurrent_sessions(manager: &SessionManager, n: usize) {
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
pub async fn check_down_from_the_start(manager: &SessionManager) {
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
pub async fn check_record_layout<S, F, Fut>(store: S, raw_get: F)
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
pub struct Counts {
    pub get: u64,
    pub set: u64,
    pub delete: u64,
    /// Any other command (PING, UNWATCH, CLIENT, touch, ...), by name.
    pub other: BTreeMap<String, u64>,
    /// New client connections.
    pub connections: u64,
}

impl Counts {
    pub fn new(get: u64, set: u64, delete: u64) -> Self {
        Self {
            get,
            set,
            delete,
            ..Self::default()
        }
    }
}

/// The request kinds whose command counts are measured, and the round
/// trips each may make: (reads, writes, deletes). A read is Redis `GET` or
/// memcached `mg` (meta get); a write is Redis `SET ... NX` or the compare-and-set
/// script (`EVALSHA`), memcached `add` or `cas`; a delete is `DEL`, or
/// memcached `delete` / `md`.
pub const REQUEST_KINDS: &[(&str, (u64, u64, u64))] = &[
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
pub async fn count_one<C: Counter>(
    manager: &SessionManager,
    counter: &mut C,
    kind: &str,
) -> Counts {
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
        "read-modify-write" => increment_n(manager, &cookie).await,
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
pub async fn check_command_counts<C: Counter>(
    label: &str,
    manager: &SessionManager,
    counter: &mut C,
) {
    // Open the store's connections and load Redis's save script first:
    // that is not per-request work. On a server that has not seen the
    // script, the first merge is `EVALSHA` answered `NOSCRIPT`, then `EVAL`.
    for _ in 0..64 {
        increment_n(manager, &new_session(manager).await).await;
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
    check_combined_saves(label, manager, counter).await;
}

/// 32 requests of one session load it, all before any of them saves, and
/// then each writes a key of its own. Their saves are combined: every key
/// is kept, with far fewer writes than saves (alone, each save that lost
/// its compare-and-set to the one before would write again).
async fn check_combined_saves<C: Counter>(label: &str, manager: &SessionManager, counter: &mut C) {
    const N: usize = 32;
    let cookie = new_session(manager).await;
    let before = counter.snapshot().await;
    let loaded = std::sync::Arc::new(tokio::sync::Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (manager, cookie, loaded) = (manager.clone(), cookie.clone(), loaded.clone());
            tokio::spawn(async move {
                let lazy = manager.start_with_value(Some(cookie));
                let session = lazy.get().await.unwrap();
                loaded.wait().await;
                session.insert(format!("k{i}"), i).unwrap();
                lazy.finish().await.unwrap().expect("a Set-Cookie")
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a combined save finishes")
            .unwrap();
    }
    let counts = counter.snapshot().await.since(&before);
    eprintln!("{label}: {N} concurrent saves of one session: {counts:?}");
    let out = request(manager, Some(&cookie), |_| {}).await.unwrap();
    let map = out.session.to_map();
    for i in 0..N {
        assert_eq!(
            map.get(&format!("k{i}")),
            Some(&serde_json::json!(i)),
            "{label}: k{i} lost"
        );
    }
    assert!(
        counts.get as usize >= N,
        "{label}: each request loads: {counts:?}"
    );
    assert!(
        (counts.set as usize) <= N / 4,
        "{label}: {N} concurrent saves took {} writes: {counts:?}",
        counts.set
    );
}

/// Takes snapshots of a server's command counters.
pub trait Counter {
    async fn snapshot(&mut self) -> Snapshot;
}

/// Several servers' counters, summed (a cluster's nodes, a ring's servers).
pub struct Sum<C>(pub Vec<C>);

impl<C: Counter> Counter for Sum<C> {
    async fn snapshot(&mut self) -> Snapshot {
        let mut sum = Snapshot::default();
        for counter in &mut self.0 {
            let snap = counter.snapshot().await;
            sum.get += snap.get;
            sum.set += snap.set;
            sum.delete += snap.delete;
            sum.connections += snap.connections;
            for (name, n) in snap.other {
                *sum.other.entry(name).or_default() += n;
            }
        }
        sum
    }
}

/// Raw counter values at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub get: u64,
    pub set: u64,
    pub delete: u64,
    pub other: BTreeMap<String, u64>,
    pub connections: u64,
}

impl Snapshot {
    pub fn since(&self, before: &Snapshot) -> Counts {
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
pub enum Kind {
    #[cfg(feature = "redis")]
    Redis,
    #[cfg(feature = "memcached")]
    Memcached,
}

/// A server process this test started, on a fixed loopback port; killed on
/// drop.
pub struct OwnServer {
    pub kind: Kind,
    pub port: u16,
    pub child: Option<Child>,
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[cfg(feature = "memcached")]
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

impl OwnServer {
    /// A server of `kind` on a free port. A port that another test's
    /// server took between `free_port` and the bind is given up for a new
    /// one (at most 5 tries).
    pub async fn start(kind: Kind) -> Self {
        for _ in 0..5 {
            let mut server = OwnServer {
                kind,
                port: free_port(),
                child: None,
            };
            if server.try_spawn().await {
                return server;
            }
        }
        panic!("{kind:?}: no free port in 5 tries");
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    #[cfg(feature = "redis")]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A manager (max_age 600) over this server, with `timeout` per store
    /// command.
    pub fn manager(&self, timeout: Duration) -> SessionManager {
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

    /// Starts the server again on its port.
    pub async fn spawn(&mut self) {
        assert!(
            self.try_spawn().await,
            "{:?} could not listen on port {} again",
            self.kind,
            self.port
        );
    }

    /// Starts the server and waits (at most 10 s) until it answers on its
    /// port; false if it exited first (the port was taken).
    async fn try_spawn(&mut self) -> bool {
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
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers(pid).await {
            let child = self.child.as_mut().expect("just started");
            if child.try_wait().unwrap().is_some() {
                self.child = None;
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not answer on port {}",
                self.kind,
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Whether the process `pid` answers on the port: the server's own
    /// statistics name its pid, so another test's server on a port it
    /// took first does not count.
    async fn answers(&self, pid: u32) -> bool {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(self.address()).await.ok()?;
            let (ask, field): (&[u8], &str) = match self.kind {
                #[cfg(feature = "redis")]
                Kind::Redis => (b"INFO server\r\n", "process_id:"),
                #[cfg(feature = "memcached")]
                Kind::Memcached => (b"stats\r\n", "STAT pid "),
            };
            stream.write_all(ask).await.ok()?;
            let mut lines = BufReader::new(stream).lines();
            while let Some(line) = lines.next_line().await.ok()? {
                if let Some(value) = line.strip_prefix(field) {
                    return Some(value.trim() == pid.to_string());
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(1), attempt)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Kills the server (SIGKILL: a crash, nothing saved).
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGSTOP or SIGCONT: the server keeps its port but stops (or
    /// resumes) answering.
    pub fn signal(&self, signal: &str) {
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
pub async fn check_outage(
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
pub async fn check_quiet_restart(label: &str, server: &mut OwnServer, manager: &SessionManager) {
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
pub async fn check_frozen(
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

/// A rolling session (interval 1 s) read every 100 ms for 3.5 s: its store
/// is refreshed (`touch`: Redis `EXPIRE`, memcached `touch`) at most once
/// per interval, never on the read-only requests in between, and the
/// session outlives its 2 s idle timeout because of it. Prints the counts.
pub async fn check_rolling_touches<C: Counter>(
    label: &str,
    manager: &SessionManager,
    counter: &mut C,
    touch_command: &str,
) {
    let cookie = new_session(manager).await;
    let before = counter.snapshot().await;
    let start = Instant::now();
    let mut refreshed = 0;
    let mut reads = 0u64;
    // 5 s: a store with a whole-second clock (memcached) refreshes up to a
    // tick after the interval, so its second refresh can take 4.2 s; at
    // most one refresh per 1 s interval allows 5 (the session was written
    // just before the loop began).
    while start.elapsed() < Duration::from_secs(5) {
        let out = request(manager, Some(&cookie), |s| assert_eq!(read_n(s), Some(1)))
            .await
            .unwrap();
        reads += 1;
        if let Some(line) = &out.set_cookie {
            assert!(line.contains("Max-Age=2"), "{label}: {line}");
            assert_eq!(out.cookie(), cookie, "{label}: same id");
            refreshed += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = counter.snapshot().await.since(&before);
    let touches = counts.other.get(touch_command).copied().unwrap_or(0);
    eprintln!(
        "{label}: {reads} read-only requests in {:?}: {refreshed} refreshes, {counts:?}",
        start.elapsed()
    );
    assert_eq!(touches, refreshed, "{label}: one touch per refresh");
    assert!(
        (2..=5).contains(&touches),
        "{label}: {touches} touches in 5 s"
    );
    assert_eq!(counts.get, reads, "{label}: one read per request");
    assert_eq!((counts.set, counts.delete), (0, 0), "{label}: no rewrite");
}
