//! The Redis backend against a real server.

use std::time::{Duration, Instant};

use http_session::{Session, SessionManager};

use crate::common::*;

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

pub async fn raw_connection(url: &str) -> MultiplexedConnection {
    raw::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}"))
}

/// Whether the server at `url` is a replica whose link to its master is up.
pub async fn is_synced_replica(url: &str) -> bool {
    let Ok(client) = raw::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    let info: String = raw::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    info.contains("role:slave") && info.contains("master_link_status:up")
}

/// Whether every replica of the master at `url` has acknowledged all it
/// streamed (replication is asynchronous: a write the replica has not got
/// is lost when the master dies). Replicas acknowledge once a second.
pub async fn replicas_caught_up(url: &str) -> bool {
    let mut conn = raw_connection(url).await;
    let info: String = raw::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .unwrap();
    let field = |line: &str, name: &str| -> Option<u64> {
        line.split([',', ':'])
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.trim().parse().ok())
    };
    let Some(offset) = info
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return false;
    };
    let replicas: Vec<&str> = info.lines().filter(|l| l.starts_with("slave")).collect();
    !replicas.is_empty()
        && replicas.iter().all(|line| {
            line.contains("state=online") && field(line, "offset").is_some_and(|o| o >= offset)
        })
}

async fn ttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    conn.ttl(key).await.unwrap()
}

/// Counts the commands clients send to one server, through `MONITOR`:
/// Redis's own command statistics also count the commands a script runs,
/// which are not round trips. The script's commands show as `[0 lua]` and
/// are left out, and so are the commands of clients that are not
/// applications: replication links (a replica shows what its master
/// streams to it) and Sentinels (which ping and query the servers they
/// watch).
pub struct RedisCounter {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    conn: MultiplexedConnection,
    markers: u64,
    /// Addresses of replication links and Sentinels seen so far.
    foreign: std::collections::HashSet<String>,
    _reader: tokio::task::JoinHandle<()>,
}

impl RedisCounter {
    pub async fn start(url: &str) -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let addr = url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(b"MONITOR\r\n").await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).await.unwrap();
        assert_eq!(ok.trim_end(), "+OK");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let _reader = tokio::spawn(async move {
            let mut line = String::new();
            while reader.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push(std::mem::take(&mut line));
            }
        });
        Self {
            lines,
            conn: raw_connection(url).await,
            markers: 0,
            foreign: std::collections::HashSet::new(),
            _reader,
        }
    }

    /// Adds the replication links and Sentinels connected now to the
    /// clients whose commands are not counted.
    async fn note_foreign_clients(&mut self) {
        let list: String = raw::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut self.conn)
            .await
            .unwrap();
        for client in list.lines() {
            let field = |name: &str| {
                client
                    .split(' ')
                    .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or("")
            };
            let flags = field("flags");
            if flags.contains('M') || flags.contains('S') || field("name").starts_with("sentinel-")
            {
                self.foreign.insert(field("addr").to_owned());
            }
        }
    }
}

impl Counter for RedisCounter {
    async fn snapshot(&mut self) -> Snapshot {
        // Once the monitor shows this marker, it has shown every command
        // that ran before it.
        self.markers += 1;
        let marker = format!("http-session-counter-{}", self.markers);
        let _: String = raw::cmd("ECHO")
            .arg(&marker)
            .query_async(&mut self.conn)
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(&marker))
        {
            assert!(Instant::now() < deadline, "MONITOR never showed {marker}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.note_foreign_clients().await;
        let mut snap = Snapshot::default();
        for line in self.lines.lock().unwrap().iter() {
            // `<time> [<db> <client>] "<COMMAND>" ...`
            let client = line
                .split_once('[')
                .and_then(|(_, rest)| rest.split_once(']'))
                .and_then(|(inside, _)| inside.split_once(' '))
                .map_or("", |(_, client)| client);
            if client == "lua" || self.foreign.contains(client) {
                continue;
            }
            let Some(name) = line.split('"').nth(1) else {
                continue;
            };
            match name.to_ascii_lowercase().as_str() {
                "get" => snap.get += 1,
                "set" | "evalsha" | "eval" => snap.set += 1,
                "del" => snap.delete += 1,
                // Our own counter queries.
                "echo" | "info" | "client" => {}
                other => *snap.other.entry(other.to_owned()).or_default() += 1,
            }
        }
        let stats: String = raw::cmd("INFO")
            .arg("stats")
            .query_async(&mut self.conn)
            .await
            .unwrap();
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

/// The counters of several servers (the nodes of a cluster), summed.
pub type Counters = Sum<RedisCounter>;

impl Sum<RedisCounter> {
    pub async fn start(urls: &[String]) -> Self {
        let mut counters = Vec::new();
        for url in urls {
            counters.push(RedisCounter::start(url).await);
        }
        Sum(counters)
    }
}

#[tokio::test]
async fn set_get_delete_and_ttl() {
    let _serial = SERVER.lock().await;
    let url = url();
    let backend = RedisBackend::from_url(&url).unwrap();
    let mut conn = raw_connection(&url).await;
    let key = "http_session_test_set_get_delete";

    put_value(&backend, key, b"value", Some(60)).await;
    assert_eq!(
        value_of(&backend, key).await.as_deref(),
        Some(&b"value"[..])
    );
    assert!((59..=60).contains(&ttl(&mut conn, key).await));

    // No TTL: SET without EX, which also clears an earlier TTL.
    put_value(&backend, key, b"other", None).await;
    assert_eq!(ttl(&mut conn, key).await, -1);
    // A touch sets the TTL and leaves the value alone.
    assert!(backend.touch(key, 30).await.unwrap());
    assert!((29..=30).contains(&ttl(&mut conn, key).await));
    assert_eq!(
        value_of(&backend, key).await.as_deref(),
        Some(&b"other"[..])
    );
    assert!(!backend
        .touch("http_session_test_missing", 30)
        .await
        .unwrap());
    assert_eq!(
        value_of(&backend, key).await.as_deref(),
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
    put_value(&backend, key, &bytes, Some(5)).await;
    assert_eq!(value_of(&backend, key).await, Some(bytes));
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
    let mut counter = RedisCounter::start(&url).await;

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
async fn rolling_refresh_is_one_expire_per_interval() {
    let _serial = SERVER.lock().await;
    let url = url();
    let mut counter = RedisCounter::start(&url).await;
    let manager = SessionManager::builder(RedisStore::redis(&url).unwrap())
        .idle_timeout(2)
        .rolling(1)
        .build()
        .unwrap();
    check_rolling_touches("redis", &manager, &mut counter, "expire").await;
}

#[tokio::test]
async fn concurrent_requests_share_one_connection() {
    let _serial = SERVER.lock().await;
    let url = url();
    let mut counter = RedisCounter::start(&url).await;
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

/// A server at its `maxmemory` with `noeviction` refuses writes: a save
/// answers 503 (the store cannot take it now), not 500, and loses
/// nothing once there is room again.
#[tokio::test]
async fn a_full_server_gives_503_and_recovers() {
    fn set_n_to_2(s: &Session) {
        s.insert("n", 2).unwrap();
    }
    let server = OwnServer::start(Kind::Redis).await;
    let manager = server.manager(Duration::from_secs(1));
    let mut conn = raw_connection(&server.url()).await;
    let cookie = new_session(&manager).await;
    let _: () = raw::cmd("CONFIG")
        .arg(&["SET", "maxmemory-policy", "noeviction", "maxmemory", "1"][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    for cookie in [None, Some(cookie.as_str())] {
        let err = request(&manager, cookie, set_n_to_2)
            .await
            .err()
            .expect("a write to a full server fails");
        assert_eq!(err.status(), 503, "{err}");
    }
    // Reads still work, and the refused write changed nothing.
    request(&manager, Some(&cookie), |s| assert_eq!(read_n(s), Some(1)))
        .await
        .unwrap();
    let _: () = raw::cmd("CONFIG")
        .arg(&["SET", "maxmemory", "0"][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    request(&manager, Some(&cookie), set_n_to_2).await.unwrap();
    request(&manager, Some(&cookie), |s| assert_eq!(read_n(s), Some(2)))
        .await
        .unwrap();
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
