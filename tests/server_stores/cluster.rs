//! The Redis backend on a Redis Cluster: the shared cluster of
//! `scripts/services.sh start` (3 masters, 3 replicas) for the contract and
//! the command counts, private clusters for slot migration and a master
//! killed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self as raw, AsyncCommands};
use http_session::stores::{Expect, KvBackend, Payload, Put, Write};
use http_session::{RedisBackend, RedisStore, SessionManager};

use crate::common::*;
use crate::redis::{is_synced_replica, raw_connection, replicas_caught_up, Counters};
use crate::services::{wait_until, Private};

/// Tests on the shared cluster run one at a time (the command counts are
/// server-wide).
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The shared cluster's node URLs, masters first.
fn urls() -> Vec<String> {
    split_urls(&env_var("HTTP_SESSION_REDIS_CLUSTER"))
}

pub fn split_urls(list: &str) -> Vec<String> {
    list.split(',').map(str::to_owned).collect()
}

/// Redis Cluster's key slot: CRC16-XMODEM of the key (or of its `{tag}`)
/// modulo 16384.
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match key.find('{') {
        Some(open) => match key[open + 1..].find('}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    let mut crc: u16 = 0;
    for &byte in hashed {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// One node as `CLUSTER NODES` describes it.
#[derive(Debug, Clone)]
struct Node {
    id: String,
    addr: String,
    master: bool,
    failed: bool,
    slots: Vec<(u16, u16)>,
}

async fn cluster_nodes(conn: &mut MultiplexedConnection) -> Vec<Node> {
    let text: String = raw::cmd("CLUSTER")
        .arg("NODES")
        .query_async(conn)
        .await
        .unwrap();
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let addr = fields[1].split('@').next().unwrap().to_owned();
            let flags = fields[2];
            let slots = fields[8..]
                .iter()
                .filter(|f| !f.starts_with('['))
                .map(|f| match f.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (f.parse().unwrap(), f.parse().unwrap()),
                })
                .collect();
            Node {
                id: fields[0].to_owned(),
                addr,
                master: flags.contains("master"),
                failed: flags.contains("fail"),
                slots,
            }
        })
        .collect()
}

/// The masters that serve slots (a replica that was just attached may
/// still show as a master without slots in another node's view).
fn serving(nodes: &[Node]) -> Vec<&Node> {
    nodes
        .iter()
        .filter(|n| n.master && !n.failed && !n.slots.is_empty())
        .collect()
}

/// The address (`127.0.0.1:port`) of the master serving `slot`.
fn owner(nodes: &[Node], slot: u16) -> String {
    nodes
        .iter()
        .find(|n| n.master && !n.failed && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
        .unwrap_or_else(|| panic!("no master for slot {slot}: {nodes:?}"))
        .addr
        .clone()
}

/// A key named `<prefix><n>` whose slot `want` accepts.
fn key_where(prefix: &str, want: impl Fn(u16) -> bool) -> String {
    (0..1_000_000)
        .map(|n| format!("{prefix}{n}"))
        .find(|key| want(key_slot(key)))
        .unwrap()
}

fn url_of(addr: &str) -> String {
    format!("redis://{addr}")
}

#[tokio::test]
async fn key_slots_match_the_server() {
    let _serial = CLUSTER.lock().await;
    let mut conn = raw_connection(&urls()[0]).await;
    for key in [
        "a",
        "AIOHTTP_SESSION_0123456789abcdef",
        "x{tag}y",
        "{}z",
        "日本",
    ] {
        let slot: u16 = raw::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(key_slot(key), slot, "{key}");
    }
}

#[tokio::test]
async fn contract_on_every_masters_slots() {
    let _serial = CLUSTER.lock().await;
    let urls = urls();
    let backend = RedisBackend::cluster(&urls).unwrap();
    let nodes = cluster_nodes(&mut raw_connection(&urls[0]).await).await;
    let masters = serving(&nodes);
    assert_eq!(masters.len(), 3, "{nodes:?}");
    for master in masters {
        let key = key_where("http_session_test_cluster_", |slot| {
            owner(&nodes, slot) == master.addr
        });
        check_backend_contract(&format!("cluster {}", master.addr), &backend, &key).await;
        // The value lands on the master of the key's slot.
        put_value(&backend, &key, b"here", Some(60)).await;
        let mut direct = raw_connection(&url_of(&master.addr)).await;
        let held: Option<Vec<u8>> = direct.get(&key).await.unwrap();
        assert_eq!(
            held.as_deref(),
            Some(&b"here"[..]),
            "{key} on {}",
            master.addr
        );
        let ttl: i64 = direct.ttl(&key).await.unwrap();
        assert!((59..=60).contains(&ttl), "{ttl}");
        backend.delete(&key).await.unwrap();
    }
}

#[tokio::test]
async fn sessions_spread_over_all_masters() {
    let _serial = CLUSTER.lock().await;
    let urls = urls();
    let manager = SessionManager::builder(RedisStore::cluster(&urls).unwrap())
        .max_age(120)
        .build()
        .unwrap();
    let nodes = cluster_nodes(&mut raw_connection(&urls[0]).await).await;
    let mut per_master: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..60 {
        let id = new_session(&manager).await;
        let key = format!("AIOHTTP_SESSION_{id}");
        let master = owner(&nodes, key_slot(&key));
        let mut direct = raw_connection(&url_of(&master)).await;
        let ttl: i64 = direct.ttl(&key).await.unwrap();
        assert!((119..=120).contains(&ttl), "{key} on {master}: ttl {ttl}");
        request(&manager, Some(&id), |s| assert_eq!(read_n(s), Some(1)))
            .await
            .unwrap();
        *per_master.entry(master).or_default() += 1;
    }
    eprintln!("redis cluster: 60 sessions per master: {per_master:?}");
    assert_eq!(per_master.len(), 3, "{per_master:?}");
}

#[tokio::test]
async fn record_layout_matches_aiohttp_session() {
    let _serial = CLUSTER.lock().await;
    let urls = urls();
    let client = deadpool_redis::cluster::ClusterClient::new(urls.clone()).unwrap();
    let conn = client.get_async_connection().await.unwrap();
    let raw_get = |key: String| {
        let mut conn = conn.clone();
        async move { conn.get::<_, Option<Vec<u8>>>(key).await.unwrap() }
    };
    check_record_layout(RedisStore::cluster(&urls).unwrap(), raw_get).await;
}

#[tokio::test]
async fn command_counts_per_request() {
    let _serial = CLUSTER.lock().await;
    let urls = urls();
    // Every node, replicas included: a request sends nothing to them.
    let mut counter = Counters::start(&urls).await;
    let manager = SessionManager::builder(RedisStore::cluster(&urls).unwrap())
        .max_age(600)
        .build()
        .unwrap();
    check_command_counts("redis cluster", &manager, &mut counter).await;

    // A default deadpool-redis cluster pool, whose checkouts would PING.
    let pool = deadpool_redis::cluster::Config::from_urls(urls.clone())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let store = RedisStore::new(RedisBackend::from_cluster_pool(pool));
    let manager = SessionManager::builder(store).max_age(600).build().unwrap();
    check_command_counts("redis cluster (from_cluster_pool)", &manager, &mut counter).await;

    // Concurrent requests: still their own commands, and no new connection.
    new_session(&manager).await;
    let before = counter.snapshot().await;
    concurrent_sessions(&manager, 32).await;
    let counts = counter.snapshot().await.since(&before);
    assert_eq!(counts, Counts::new(32, 32, 0));
}

#[tokio::test]
async fn cluster_down_from_the_start() {
    let port = free_port();
    let store = RedisStore::cluster([format!("redis://127.0.0.1:{port}")]).unwrap();
    check_down_from_the_start(&SessionManager::new(store)).await;
}

#[test]
fn bad_urls_are_config_errors_and_debug_hides_passwords() {
    for urls in [vec![], vec![String::new()], vec!["not a url".to_owned()]] {
        let err = RedisStore::cluster(&urls).expect_err("a config error");
        assert_eq!(err.kind(), http_session::ErrorKind::Config, "{urls:?}");
    }
    let backend = RedisBackend::cluster(["redis://:hunter2@127.0.0.1:1"]).unwrap();
    let debug = format!("{backend:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("cluster"), "{debug}");
    // A URL that does not parse: the error does not repeat it.
    for bad in [
        "redis://:hunter2@127.0.0.1:port",
        "redis://user:hunter2@[::1",
        "rediss://:hunter2@127.0.0.1:1/x",
    ] {
        for err in [
            RedisStore::cluster([bad]).err(),
            RedisStore::redis(bad).err(),
        ]
        .into_iter()
        .flatten()
        {
            let text = format!("{} {err:?}", cause_chain(&err));
            assert!(!text.contains("hunter2"), "{bad}: {text}");
        }
    }
}

#[tokio::test]
async fn password_never_in_errors() {
    let port = free_port();
    let store = RedisStore::cluster([format!("redis://:hunter2@127.0.0.1:{port}")]).unwrap();
    let manager = SessionManager::new(store);
    let err = request(&manager, None, |s| {
        s.insert("n", 1).unwrap();
    })
    .await
    .err()
    .unwrap();
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert!(!text.contains("hunter2"), "{text}");
}

/// A slot moved between masters while the backend holds the old slot map:
/// during the migration a new key is answered with `ASK` (and written on
/// the importing master), after it every command of the slot is answered
/// with `MOVED`; the backend follows both.
#[tokio::test]
async fn moved_and_ask_are_followed() {
    let private = Private::start("start-cluster", &[]).await;
    let urls = split_urls(&private.env("cluster.env", "HTTP_SESSION_REDIS_CLUSTER"));
    let backend = RedisBackend::cluster(&urls)
        .unwrap()
        .timeout(Duration::from_secs(3));
    let source_addr = format!("127.0.0.1:{}", private.port("cluster/node1"));
    let target_addr = format!("127.0.0.1:{}", private.port("cluster/node2"));
    let mut source = raw_connection(&url_of(&source_addr)).await;
    let mut target = raw_connection(&url_of(&target_addr)).await;
    let nodes = cluster_nodes(&mut source).await;
    let id_of = |addr: &str| nodes.iter().find(|n| n.addr == addr).unwrap().id.clone();
    let (source_id, target_id) = (id_of(&source_addr), id_of(&target_addr));

    // A session on the source master, read once so the backend knows the
    // slot map.
    let key = key_where("AIOHTTP_SESSION_moved", |slot| {
        owner(&nodes, slot) == source_addr
    });
    let slot = key_slot(&key);
    put_value(&backend, &key, b"before", Some(600)).await;
    assert_eq!(
        value_of(&backend, &key).await.as_deref(),
        Some(&b"before"[..])
    );

    // Migrating: the target imports the slot, the source hands it over.
    let setslot = |state: &str, node: &str| {
        let mut cmd = raw::cmd("CLUSTER");
        cmd.arg("SETSLOT").arg(slot).arg(state).arg(node);
        cmd
    };
    let () = setslot("IMPORTING", &source_id)
        .query_async(&mut target)
        .await
        .unwrap();
    let () = setslot("MIGRATING", &target_id)
        .query_async(&mut source)
        .await
        .unwrap();
    // A new key of that slot: the source answers ASK.
    let fresh = key_where("AIOHTTP_SESSION_ask", |s| s == slot);
    let direct: Result<Option<Vec<u8>>, _> = source.get(&fresh).await;
    let err = direct.expect_err("the source answers ASK");
    assert_eq!(err.code(), Some("ASK"), "{err}");
    let write = Write::Value {
        value: &Payload::from(&b"asked"[..]),
        ttl: Some(600),
    };
    assert!(matches!(
        backend.put(&fresh, write, Expect::Absent).await.unwrap(),
        Put::Done
    ));
    let (_, held): ((), Option<Vec<u8>>) = raw::pipe()
        .cmd("ASKING")
        .cmd("GET")
        .arg(&fresh)
        .query_async(&mut target)
        .await
        .unwrap();
    assert_eq!(
        held.as_deref(),
        Some(&b"asked"[..]),
        "written on the target"
    );
    assert_eq!(
        value_of(&backend, &fresh).await.as_deref(),
        Some(&b"asked"[..])
    );
    // The old key still lives on the source.
    assert_eq!(
        value_of(&backend, &key).await.as_deref(),
        Some(&b"before"[..])
    );

    // Move the old key, then give the slot to the target everywhere.
    let target_port = private.port("cluster/node2");
    let _: String = raw::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(target_port)
        .arg(&key)
        .arg(0)
        .arg(5000)
        .query_async(&mut source)
        .await
        .unwrap();
    for master in serving(&nodes) {
        let mut conn = raw_connection(&url_of(&master.addr)).await;
        let () = setslot("NODE", &target_id)
            .query_async(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("SETSLOT NODE on {master:?}: {e}"));
    }
    let direct: Result<Option<Vec<u8>>, _> = source.get(&key).await;
    let err = direct.expect_err("the source answers MOVED");
    assert_eq!(err.code(), Some("MOVED"), "{err}");
    // The backend follows: read, compare-and-set, touch, delete.
    let held = backend.get(&key).await.unwrap().expect("moved, not lost");
    assert_eq!(held.value.encoded().unwrap(), b"before");
    let write = Write::Value {
        value: &Payload::from(&b"after"[..]),
        ttl: Some(600),
    };
    assert!(matches!(
        backend
            .put(&key, write, Expect::Current(&held))
            .await
            .unwrap(),
        Put::Done
    ));
    let on_target: Option<Vec<u8>> = target.get(&key).await.unwrap();
    assert_eq!(on_target.as_deref(), Some(&b"after"[..]));
    assert!(backend.touch(&key, 60).await.unwrap());
    backend.delete(&key).await.unwrap();
    backend.delete(&fresh).await.unwrap();
    let gone: Option<Vec<u8>> = target.get(&key).await.unwrap();
    assert_eq!(gone, None);
    eprintln!(
        "redis cluster: slot {slot} moved {source_addr} -> {target_addr}; ASK and MOVED followed"
    );
}

/// What one request of the failover test saw.
struct Seen {
    on_victim: bool,
    status: u16,
    took: Duration,
    error: Option<String>,
}

/// One read-modify-write (`n += 1`) of `cookie`, timed. A session that
/// loads as new (its record was not found) is status 0, and not written.
/// A failure comes with its cause chain.
async fn increment(manager: &SessionManager, cookie: &str) -> (u16, Duration, Option<String>) {
    let start = Instant::now();
    let mut lost = false;
    let result = request(manager, Some(cookie), |s| match read_n(s) {
        Some(n) => {
            s.insert("n", n + 1).unwrap();
        }
        None => lost = true,
    })
    .await;
    let took = start.elapsed();
    match result {
        Ok(_) if lost => (0, took, None),
        Ok(_) => (200, took, None),
        Err(e) => {
            assert_eq!(e.kind(), http_session::ErrorKind::Unavailable, "{e:?}");
            (e.status().as_u16(), took, Some(cause_chain(&e)))
        }
    }
}

/// Which nodes hold `key` (`READONLY` lets replicas answer): for a failure
/// message.
async fn where_is(urls: &[String], key: &str) -> Vec<String> {
    let mut found = Vec::new();
    for url in urls {
        let Ok(client) = raw::Client::open(url.as_str()) else {
            continue;
        };
        let Ok(Ok(mut conn)) = tokio::time::timeout(
            Duration::from_secs(1),
            client.get_multiplexed_async_connection(),
        )
        .await
        else {
            found.push(format!("{url}: down"));
            continue;
        };
        let role: Result<Vec<raw::Value>, _> = raw::cmd("ROLE").query_async(&mut conn).await;
        let role = match role.as_deref() {
            Ok([raw::Value::BulkString(role), ..]) => String::from_utf8_lossy(role).into_owned(),
            _ => "?".to_owned(),
        };
        let _: Result<(), _> = raw::cmd("READONLY").query_async(&mut conn).await;
        let exists: Result<bool, _> = raw::cmd("EXISTS").arg(key).query_async(&mut conn).await;
        found.push(format!("{url}: {role}, exists {exists:?}"));
    }
    found
}

/// One round: every session incremented concurrently.
async fn round(manager: &SessionManager, sessions: &[(String, bool)]) -> Vec<Seen> {
    let tasks: Vec<_> = sessions
        .iter()
        .map(|(cookie, on_victim)| {
            let (manager, cookie, on_victim) = (manager.clone(), cookie.clone(), *on_victim);
            tokio::spawn(async move {
                let (status, took, error) = increment(&manager, &cookie).await;
                Seen {
                    on_victim,
                    status,
                    took,
                    error,
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen
}

/// A master SIGKILLed: the sessions of the other masters keep answering
/// 200 throughout; its own answer 503 within the timeout until its replica
/// is promoted, then 200 again with their data; the killed node, restarted,
/// rejoins as a replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_only_its_slots_fail_until_promotion() {
    const ROUND_GAP: Duration = Duration::from_millis(100);
    let private = Private::start("start-cluster", &[]).await;
    let urls = split_urls(&private.env("cluster.env", "HTTP_SESSION_REDIS_CLUSTER"));
    let timeout = Duration::from_millis(1000);
    let manager = SessionManager::builder(RedisStore::new(
        RedisBackend::cluster(&urls).unwrap().timeout(timeout),
    ))
    .max_age(600)
    .build()
    .unwrap();
    let victim = format!("127.0.0.1:{}", private.port("cluster/node2"));
    let watcher_url = url_of(&format!("127.0.0.1:{}", private.port("cluster/node1")));
    let nodes = cluster_nodes(&mut raw_connection(&watcher_url).await).await;

    // 30 sessions over the three masters.
    let mut sessions = Vec::new();
    for _ in 0..30 {
        let id = new_session(&manager).await;
        let on_victim = owner(&nodes, key_slot(&format!("AIOHTTP_SESSION_{id}"))) == victim;
        sessions.push((id, on_victim));
    }
    let on_victim = sessions.iter().filter(|s| s.1).count();
    assert!(on_victim > 0 && on_victim < sessions.len(), "{on_victim}");
    // `ok[i]`: successful increments of session i.
    let mut ok = vec![0u64; sessions.len()];
    let mut ambiguous = vec![0u64; sessions.len()];
    let tally = |seen: &[Seen], ok: &mut [u64], ambiguous: &mut [u64]| {
        for (i, s) in seen.iter().enumerate() {
            if s.status == 200 {
                ok[i] += 1;
            } else if s.took >= timeout {
                // Timed out: the write may or may not have landed.
                ambiguous[i] += 1;
            }
        }
    };
    for _ in 0..3 {
        let seen = round(&manager, &sessions).await;
        assert!(seen.iter().all(|s| s.status == 200));
        tally(&seen, &mut ok, &mut ambiguous);
    }
    // Replication is asynchronous: kill the master only once its replica
    // has everything.
    let victim_url = url_of(&victim);
    let synced = wait_until("the replica catches up", Duration::from_secs(10), || {
        let url = victim_url.clone();
        async move { replicas_caught_up(&url).await }
    })
    .await;
    eprintln!("redis cluster: replica of {victim} caught up after {synced:?}");

    private.kill_node("cluster/node2", "KILL").await;
    let killed = Instant::now();
    let (mut others_ok, mut victim_503) = (0u64, Vec::new());
    let mut others_max = Duration::ZERO;
    let mut recovered = None;
    let mut good_rounds_after = 0;
    while good_rounds_after < 5 {
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "no promotion within 40 s"
        );
        let seen = round(&manager, &sessions).await;
        for (i, s) in seen.iter().enumerate() {
            if s.status == 0 {
                let key = format!("AIOHTTP_SESSION_{}", sessions[i].0);
                panic!(
                    "session {i} (on the killed master: {}) lost {:?} after the kill; {key} is on {:?}",
                    s.on_victim,
                    killed.elapsed(),
                    where_is(&urls, &key).await
                );
            }
            if s.on_victim {
                if s.status != 200 {
                    assert_eq!(s.status, 503);
                    assert!(
                        s.took < timeout + Duration::from_millis(300),
                        "503 after {:?}: {:?}",
                        s.took,
                        s.error
                    );
                    victim_503.push(s.took);
                }
            } else {
                assert_eq!(
                    s.status,
                    200,
                    "another master's session failed after {:?}, {:?} after the kill: {:?}",
                    s.took,
                    killed.elapsed(),
                    s.error
                );
                others_ok += 1;
                others_max = others_max.max(s.took);
            }
        }
        let all_ok = seen.iter().all(|s| s.status == 200);
        if all_ok && !victim_503.is_empty() {
            recovered.get_or_insert(killed.elapsed());
            good_rounds_after += 1;
        } else if recovered.is_some() {
            panic!("failures again after the recovery");
        }
        tally(&seen, &mut ok, &mut ambiguous);
        tokio::time::sleep(ROUND_GAP).await;
    }
    let recovered = recovered.unwrap();
    victim_503.sort();
    eprintln!(
        "redis cluster, master {victim} SIGKILLed: other masters' sessions {others_ok} x 200 \
         (slowest {others_max:?}); its sessions {} x 503 (fastest {:?}, median {:?}, slowest {:?}, \
         timeout {timeout:?}); its slots answered again {recovered:?} after the kill",
        victim_503.len(),
        victim_503[0],
        victim_503[victim_503.len() / 2],
        victim_503[victim_503.len() - 1],
    );
    assert!(
        !victim_503.is_empty(),
        "the killed master's sessions never failed"
    );

    // Every increment that was answered 200 is there; nothing else.
    for (i, (cookie, _)) in sessions.iter().enumerate() {
        let out = request(&manager, Some(cookie), |_| {}).await.unwrap();
        let n = read_n(&out.session).unwrap();
        let (low, high) = (1 + ok[i], 1 + ok[i] + ambiguous[i]);
        assert!(
            (low..=high).contains(&n),
            "session {i}: n {n}, expected {low}..={high}"
        );
    }

    // The killed node comes back as a replica of the promoted one.
    let restarted = Instant::now();
    private.restart_node("cluster/node2").await;
    let answering = restarted.elapsed();
    let rejoined = wait_until(
        "the old master rejoins as a replica",
        Duration::from_secs(30),
        || {
            let url = victim_url.clone();
            async move { is_synced_replica(&url).await }
        },
    )
    .await;
    let synced = restarted.elapsed();
    for _ in 0..3 {
        let seen = round(&manager, &sessions).await;
        let statuses: Vec<(bool, u16)> = seen.iter().map(|s| (s.on_victim, s.status)).collect();
        assert!(
            seen.iter().all(|s| s.status == 200),
            "after the rejoin ({:?} after the restart began): {statuses:?}",
            restarted.elapsed()
        );
    }
    eprintln!(
        "redis cluster: node {victim} restarted: answering after {answering:?}, a synced \
         replica {synced:?} after the restart began ({rejoined:?} of polling); all sessions answer 200"
    );
}
