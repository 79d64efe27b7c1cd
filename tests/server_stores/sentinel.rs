//! The Redis backend on the master Redis Sentinel names: the shared
//! Sentinel set of `scripts/services.sh start` for the contract and the
//! command counts, a private one for a failover under load.

use std::time::{Duration, Instant};

use deadpool_redis::redis::{self as raw, AsyncCommands};
use http_session::stores::KvBackend;
use http_session::{RedisBackend, RedisStore, SessionManager};

use crate::common::*;
use crate::redis::{is_synced_replica, raw_connection, replicas_caught_up, Counters};
use crate::services::{wait_until, Private};

/// Tests on the shared Sentinel set run one at a time (the command counts
/// are server-wide).
static SENTINEL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `MASTER@URL,URL,...` into the master name and the Sentinels' URLs.
fn parse(spec: &str) -> (String, Vec<String>) {
    let (master, urls) = spec.split_once('@').expect("MASTER@URL,URL,...");
    (
        master.to_owned(),
        urls.split(',').map(str::to_owned).collect(),
    )
}

fn shared() -> (String, Vec<String>) {
    parse(&env_var("HTTP_SESSION_REDIS_SENTINEL"))
}

/// Where the Sentinels say the master is, as a URL.
async fn master_url(master: &str, sentinels: &[String]) -> String {
    let mut conn = raw_connection(&sentinels[0]).await;
    let (host, port): (String, u16) = raw::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(master)
        .query_async(&mut conn)
        .await
        .unwrap();
    format!("redis://{host}:{port}")
}

/// The replicas of `master` the Sentinels know, as URLs.
async fn replica_urls(master: &str, sentinels: &[String]) -> Vec<String> {
    let mut conn = raw_connection(&sentinels[0]).await;
    let replicas: Vec<Vec<String>> = raw::cmd("SENTINEL")
        .arg("REPLICAS")
        .arg(master)
        .query_async(&mut conn)
        .await
        .unwrap();
    replicas
        .iter()
        .map(|fields| {
            let field = |name: &str| {
                let at = fields.iter().position(|f| f == name).unwrap();
                fields[at + 1].clone()
            };
            format!("redis://{}:{}", field("ip"), field("port"))
        })
        .collect()
}

#[tokio::test]
async fn contract_on_the_master() {
    let _serial = SENTINEL.lock().await;
    let (master, sentinels) = shared();
    let backend = RedisBackend::sentinel(&master, &sentinels).unwrap();
    let key = "http_session_test_sentinel_contract";
    check_backend_contract("sentinel", &backend, key).await;
    // The value is on the master the Sentinels name.
    put_value(&backend, key, b"here", Some(60)).await;
    let mut direct = raw_connection(&master_url(&master, &sentinels).await).await;
    let held: Option<Vec<u8>> = direct.get(key).await.unwrap();
    assert_eq!(held.as_deref(), Some(&b"here"[..]));
    let ttl: i64 = direct.ttl(key).await.unwrap();
    assert!((59..=60).contains(&ttl), "{ttl}");
    backend.delete(key).await.unwrap();
}

#[tokio::test]
async fn record_layout_matches_aiohttp_session() {
    let _serial = SENTINEL.lock().await;
    let (master, sentinels) = shared();
    let conn = raw_connection(&master_url(&master, &sentinels).await).await;
    let raw_get = |key: String| {
        let mut conn = conn.clone();
        async move { conn.get::<_, Option<Vec<u8>>>(key).await.unwrap() }
    };
    check_record_layout(RedisStore::sentinel(&master, &sentinels).unwrap(), raw_get).await;
}

#[tokio::test]
async fn command_counts_per_request() {
    let _serial = SENTINEL.lock().await;
    let (master, sentinels) = shared();
    // The master and its replica (which must see nothing from us); the
    // Sentinels' own pings and the replication link are not counted.
    let mut nodes = vec![master_url(&master, &sentinels).await];
    nodes.extend(replica_urls(&master, &sentinels).await);
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let mut counter = Counters::start(&nodes).await;
    let manager = SessionManager::builder(RedisStore::sentinel(&master, &sentinels).unwrap())
        .max_age(600)
        .build()
        .unwrap();
    check_command_counts("redis sentinel", &manager, &mut counter).await;

    // A default deadpool-redis sentinel pool, whose checkouts would PING.
    let pool = deadpool_redis::sentinel::Config::from_urls(
        sentinels.clone(),
        master.clone(),
        deadpool_redis::sentinel::SentinelServerType::Master,
    )
    .create_pool(Some(deadpool_redis::Runtime::Tokio1))
    .unwrap();
    let store = RedisStore::new(RedisBackend::from_sentinel_pool(pool));
    let manager = SessionManager::builder(store).max_age(600).build().unwrap();
    check_command_counts(
        "redis sentinel (from_sentinel_pool)",
        &manager,
        &mut counter,
    )
    .await;

    new_session(&manager).await;
    let before = counter.snapshot().await;
    concurrent_sessions(&manager, 32).await;
    let counts = counter.snapshot().await.since(&before);
    assert_eq!(counts, Counts::new(32, 32, 0));
}

#[tokio::test]
async fn sentinels_down_from_the_start() {
    let port = free_port();
    let store = RedisStore::sentinel("mymaster", [format!("redis://127.0.0.1:{port}")]).unwrap();
    check_down_from_the_start(&SessionManager::new(store)).await;
}

#[tokio::test]
async fn unknown_master_name_is_unavailable() {
    let _serial = SENTINEL.lock().await;
    let (_, sentinels) = shared();
    let store = RedisStore::sentinel("no-such-master", &sentinels).unwrap();
    let manager = SessionManager::new(store);
    let err = request(&manager, None, |s| {
        s.insert("n", 1).unwrap();
    })
    .await
    .err()
    .unwrap();
    assert_eq!(err.status(), 503, "{err:?}");
}

#[test]
fn bad_config_and_debug_hides_passwords() {
    let none: [&str; 0] = [];
    for err in [
        RedisStore::sentinel("mymaster", none).err(),
        RedisStore::sentinel("", ["redis://127.0.0.1:1"]).err(),
        RedisStore::sentinel("mymaster", ["not a url"]).err(),
    ] {
        let err = err.expect("a config error");
        assert_eq!(err.kind(), http_session::ErrorKind::Config, "{err:?}");
    }
    let backend = RedisBackend::sentinel("mymaster", ["redis://:hunter2@127.0.0.1:1"]).unwrap();
    let debug = format!("{backend:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    for bad in [
        "redis://:hunter2@127.0.0.1:port",
        "redis://user:hunter2@[::1",
    ] {
        if let Some(err) = RedisStore::sentinel("mymaster", [bad]).err() {
            let text = format!("{} {err:?}", cause_chain(&err));
            assert!(!text.contains("hunter2"), "{bad}: {text}");
        }
    }
    assert!(
        debug.contains("sentinel") && debug.contains("mymaster"),
        "{debug}"
    );
}

/// One read-modify-write (`n += 1`) of `cookie`: its status and time.
async fn increment(manager: &SessionManager, cookie: &str) -> (u16, Duration) {
    let start = Instant::now();
    let result = request(manager, Some(cookie), |s| {
        assert!(!s.is_new(), "the session was lost");
        s.insert("n", read_n(s).unwrap() + 1).unwrap();
    })
    .await;
    let status = match result {
        Ok(_) => 200,
        Err(e) => {
            assert_eq!(e.kind(), http_session::ErrorKind::Unavailable, "{e:?}");
            e.status().as_u16()
        }
    };
    (status, start.elapsed())
}

/// Every session incremented concurrently: (status, time) per session.
async fn round(manager: &SessionManager, sessions: &[String]) -> Vec<(u16, Duration)> {
    let tasks: Vec<_> = sessions
        .iter()
        .map(|cookie| {
            let (manager, cookie) = (manager.clone(), cookie.clone());
            tokio::spawn(async move { increment(&manager, &cookie).await })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen
}

/// The master SIGKILLed under load: requests answer 503 within the timeout
/// until the Sentinels promote the replica, then go on against it with
/// their data, without a restart of the app; the old master, restarted,
/// becomes a replica of the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_under_load() {
    let private = Private::start("start-sentinel", &[]).await;
    let (master, sentinels) = parse(&private.env("sentinel.env", "HTTP_SESSION_REDIS_SENTINEL"));
    let timeout = Duration::from_millis(1000);
    let manager = SessionManager::builder(RedisStore::new(
        RedisBackend::sentinel(&master, &sentinels)
            .unwrap()
            .timeout(timeout),
    ))
    .max_age(600)
    .build()
    .unwrap();
    let old_master = format!("redis://127.0.0.1:{}", private.port("sentinel/master"));
    let replica = format!("redis://127.0.0.1:{}", private.port("sentinel/replica"));
    assert_eq!(master_url(&master, &sentinels).await, old_master);

    let mut sessions = Vec::new();
    for _ in 0..8 {
        sessions.push(new_session(&manager).await);
    }
    let mut ok = vec![0u64; sessions.len()];
    let mut ambiguous = vec![0u64; sessions.len()];
    let tally = |seen: &[(u16, Duration)], ok: &mut [u64], ambiguous: &mut [u64]| {
        for (i, (status, took)) in seen.iter().enumerate() {
            if *status == 200 {
                ok[i] += 1;
            } else if *took >= timeout {
                ambiguous[i] += 1;
            }
        }
    };
    for _ in 0..5 {
        let seen = round(&manager, &sessions).await;
        assert!(seen.iter().all(|(status, _)| *status == 200));
        tally(&seen, &mut ok, &mut ambiguous);
    }
    // Replication is asynchronous: kill the master only once its replica
    // has everything.
    let synced = wait_until("the replica catches up", Duration::from_secs(10), || {
        let url = old_master.clone();
        async move { replicas_caught_up(&url).await }
    })
    .await;
    eprintln!("redis sentinel: replica caught up after {synced:?}");

    private.kill_node("sentinel/master", "KILL").await;
    let killed = Instant::now();
    let mut failures: Vec<Duration> = Vec::new();
    let mut last_failure = Duration::ZERO;
    let mut first_success = None;
    let mut requests = 0;
    let mut good_rounds = 0;
    while good_rounds < 10 {
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "no failover within 40 s"
        );
        let seen = round(&manager, &sessions).await;
        requests += seen.len();
        for (status, took) in &seen {
            if *status == 200 {
                if !failures.is_empty() {
                    first_success.get_or_insert(killed.elapsed());
                }
            } else {
                assert_eq!(*status, 503);
                assert!(
                    *took < timeout + Duration::from_millis(300),
                    "503 after {took:?}"
                );
                failures.push(*took);
                last_failure = killed.elapsed();
            }
        }
        let all_ok = seen.iter().all(|(status, _)| *status == 200);
        if all_ok && !failures.is_empty() {
            good_rounds += 1;
        } else if good_rounds > 0 {
            panic!("failures again after the failover");
        }
        tally(&seen, &mut ok, &mut ambiguous);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!failures.is_empty(), "the kill was not noticed");
    failures.sort();
    let first_success = first_success.unwrap();
    eprintln!(
        "redis sentinel, master SIGKILLed under load ({} sessions per round, {requests} requests): \
         {} x 503 (fastest {:?}, median {:?}, slowest {:?}, timeout {timeout:?}); first success \
         against the promoted master {first_success:?} after the kill, last 503 at {last_failure:?}",
        sessions.len(),
        failures.len(),
        failures[0],
        failures[failures.len() / 2],
        failures[failures.len() - 1],
    );
    assert_eq!(
        master_url(&master, &sentinels).await,
        replica,
        "the replica was promoted"
    );
    for (i, cookie) in sessions.iter().enumerate() {
        let out = request(&manager, Some(cookie), |_| {}).await.unwrap();
        let n = read_n(&out.session).unwrap();
        let (low, high) = (1 + ok[i], 1 + ok[i] + ambiguous[i]);
        assert!(
            (low..=high).contains(&n),
            "session {i}: n {n}, expected {low}..={high}"
        );
    }

    // The old master, restarted, is made a replica of the new one.
    let restarted = Instant::now();
    private.restart_node("sentinel/master").await;
    let answering = restarted.elapsed();
    wait_until(
        "the old master becomes a replica",
        Duration::from_secs(30),
        || {
            let url = old_master.clone();
            async move { is_synced_replica(&url).await }
        },
    )
    .await;
    let synced = restarted.elapsed();
    for _ in 0..5 {
        let seen = round(&manager, &sessions).await;
        assert!(
            seen.iter().all(|(status, _)| *status == 200),
            "after the rejoin"
        );
    }
    eprintln!(
        "redis sentinel: the old master restarted: answering after {answering:?}, a synced \
         replica of the new master {synced:?} after the restart began"
    );
}
