//! The memcached backend on a ring of servers: the shared ring of
//! `scripts/services.sh start` (3 servers) for the contract, the placement
//! and the command counts; private rings for a server added and a server
//! killed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http_session::stores::KvBackend;
use http_session::{KetamaFlavor, MemcachedBackend, MemcachedStore, SessionManager};

use crate::common::*;
use crate::memcached::Raw;
use crate::services::Private;

/// Tests on the shared ring run one at a time (the counters are
/// server-wide).
static RING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn split_addrs(list: &str) -> Vec<String> {
    list.split(',').map(str::to_owned).collect()
}

fn addrs() -> Vec<String> {
    split_addrs(&env_var("HTTP_SESSION_MEMCACHED_RING"))
}

/// Which servers of `addrs` hold `key`, asked directly.
async fn holders(addrs: &[String], key: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        if Raw::connect(addr).await.get(key).await.is_some() {
            found.push(i);
        }
    }
    found
}

/// A key named `<prefix><n>` that `backend` places on server `index`.
fn key_on(backend: &MemcachedBackend, prefix: &str, index: usize) -> String {
    (0..100_000)
        .map(|n| format!("{prefix}{n}"))
        .find(|key| backend.server_for(key) == index)
        .unwrap()
}

#[tokio::test]
async fn contract_on_every_server() {
    let _serial = RING.lock().await;
    let addrs = addrs();
    for flavor in [
        KetamaFlavor::KetamaWeighted,
        KetamaFlavor::Ketama,
        KetamaFlavor::KetamaMd5,
    ] {
        let backend = MemcachedBackend::ring_with(flavor, addrs.clone()).unwrap();
        for index in 0..addrs.len() {
            let key = key_on(&backend, "http_session_test_ring_", index);
            let label = format!("ring {flavor:?} server {index}");
            check_backend_contract(&label, &backend, &key).await;
            // The value is on that server, and on no other.
            put_value(&backend, &key, b"here", Some(60)).await;
            assert_eq!(holders(&addrs, &key).await, vec![index], "{label}");
            // Written a second beyond its TTL, as on one server.
            let ttl = Raw::connect(&addrs[index]).await.ttl(&key).await;
            assert!(matches!(ttl, Some(60..=61)), "{label}: {ttl:?}");
            backend.delete(&key).await.unwrap();
            assert_eq!(holders(&addrs, &key).await, Vec::<usize>::new());
        }
    }
}

#[tokio::test]
async fn sessions_spread_over_the_ring() {
    let _serial = RING.lock().await;
    let addrs = addrs();
    let manager = SessionManager::builder(MemcachedStore::ring(addrs.clone()).unwrap())
        .max_age(120)
        .build()
        .unwrap();
    let mut per_server: BTreeMap<usize, usize> = BTreeMap::new();
    for _ in 0..150 {
        let id = new_session(&manager).await;
        let key = format!("AIOHTTP_SESSION_{id}");
        let held = holders(&addrs, &key).await;
        assert_eq!(held.len(), 1, "{key}: {held:?}");
        request(&manager, Some(&id), |s| assert_eq!(read_n(s), Some(1)))
            .await
            .unwrap();
        *per_server.entry(held[0]).or_default() += 1;
    }
    eprintln!("memcached ring: 150 sessions per server: {per_server:?}");
    assert_eq!(per_server.len(), 3, "{per_server:?}");
    assert!(per_server.values().all(|n| *n >= 20), "{per_server:?}");
}

#[tokio::test]
async fn record_layout_matches_aiohttp_session() {
    let _serial = RING.lock().await;
    let addrs = addrs();
    let backend = MemcachedBackend::ring(addrs.clone()).unwrap();
    let raw_get = |key: String| {
        let addr = addrs[backend.server_for(&key)].clone();
        async move {
            let (flags, value) = Raw::connect(&addr).await.get(&key).await?;
            assert_eq!(flags, 0);
            Some(value)
        }
    };
    check_record_layout(MemcachedStore::ring(addrs.clone()).unwrap(), raw_get).await;
}

#[tokio::test]
async fn command_counts_per_request() {
    let _serial = RING.lock().await;
    let addrs = addrs();
    let mut raws = Vec::new();
    for addr in &addrs {
        raws.push(Raw::connect(addr).await);
    }
    let mut counter = Sum(raws);
    let manager = SessionManager::builder(MemcachedStore::ring(addrs.clone()).unwrap())
        .max_age(600)
        .build()
        .unwrap();
    // One connection per server.
    let before = counter.snapshot().await;
    for _ in 0..48 {
        new_session(&manager).await;
    }
    let counts = counter.snapshot().await.since(&before);
    assert_eq!(counts.set, 48, "{counts:?}");
    assert!(counts.connections <= 3, "{counts:?}");
    check_command_counts("memcached ring", &manager, &mut counter).await;

    // With two connections per server, 32 concurrent sessions open at
    // most two per server.
    let manager = SessionManager::builder(MemcachedStore::new(
        MemcachedBackend::ring(addrs.clone()).unwrap().pool_size(2),
    ))
    .max_age(600)
    .build()
    .unwrap();
    let before = counter.snapshot().await;
    concurrent_sessions(&manager, 32).await;
    let counts = counter.snapshot().await.since(&before);
    assert_eq!((counts.get, counts.set), (32, 32), "{counts:?}");
    assert!(counts.connections <= 2 * 3, "{counts:?}");
}

#[tokio::test]
async fn ring_down_from_the_start() {
    let (a, b) = (free_port(), free_port());
    let store = MemcachedStore::ring([format!("127.0.0.1:{a}"), format!("127.0.0.1:{b}")]).unwrap();
    check_down_from_the_start(&SessionManager::new(store)).await;
}

#[test]
fn bad_servers_are_config_errors() {
    let none: [&str; 0] = [];
    for err in [
        MemcachedStore::ring(none).err(),
        MemcachedStore::ring(["127.0.0.1:1", "a b:2"]).err(),
        MemcachedStore::ring(["127.0.0.1:port"]).err(),
    ] {
        let err = err.expect("a config error");
        assert_eq!(err.kind(), http_session::ErrorKind::Config, "{err:?}");
    }
    let backend =
        MemcachedBackend::ring_with(KetamaFlavor::Ketama, ["127.0.0.1:1", "127.0.0.1:2"]).unwrap();
    let debug = format!("{backend:?}");
    assert!(
        debug.contains("127.0.0.1:2") && debug.contains("Ketama"),
        "{debug}"
    );
}

/// A fourth server added to a ring of three: through the backend, the keys
/// written on three servers are looked up on four. About a quarter are now
/// looked for on the new server (and found nowhere: those sessions start
/// afresh); every other key is found where it was.
#[tokio::test]
async fn adding_a_server_remaps_about_a_quarter() {
    let private = Private::start("start-ring", &["4"]).await;
    let all = split_addrs(&private.env("ring.env", "HTTP_SESSION_MEMCACHED_RING"));
    assert_eq!(all.len(), 4);
    let three = MemcachedBackend::ring(all[..3].to_vec()).unwrap();
    let four = MemcachedBackend::ring(all.clone()).unwrap();
    const KEYS: usize = 2000;
    let keys: Vec<String> = (0..KEYS)
        .map(|i| {
            format!(
                "AIOHTTP_SESSION_{:032x}",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
            )
        })
        .collect();
    for key in &keys {
        put_value(&three, key, b"v", Some(600)).await;
    }
    let (mut found, mut missing) = (0, 0);
    for key in &keys {
        match four.get(key).await.unwrap() {
            Some(_) => {
                found += 1;
                assert_eq!(three.server_for(key), four.server_for(key));
            }
            None => {
                missing += 1;
                assert_eq!(four.server_for(key), 3, "{key} moved between old servers");
            }
        }
    }
    let share = missing as f64 / KEYS as f64;
    eprintln!(
        "memcached ring: a 4th server added: {missing} of {KEYS} keys ({:.1}%) remapped to it, \
         {found} found where they were",
        share * 100.0
    );
    assert!((0.18..=0.32).contains(&share), "{share}");
}

/// One read-modify-write (`n += 1`): 200, 503, or 0 when the session
/// loaded as new (its record is gone; it is then saved afresh).
async fn increment(manager: &SessionManager, cookie: &str) -> (u16, Duration, Option<String>) {
    let start = Instant::now();
    let mut fresh = false;
    let result = request(manager, Some(cookie), |s| match read_n(s) {
        Some(n) => {
            s.insert("n", n + 1).unwrap();
        }
        None => {
            fresh = true;
            s.insert("n", 1).unwrap();
        }
    })
    .await;
    let took = start.elapsed();
    match result {
        Ok(out) if fresh => (0, took, out.set_cookie),
        Ok(_) => (200, took, None),
        Err(e) => {
            assert_eq!(e.kind(), http_session::ErrorKind::Unavailable, "{e:?}");
            (e.status().as_u16(), took, None)
        }
    }
}

/// A ring server SIGKILLed: only its sessions fail, with a 503 within the
/// timeout (no key is moved to another server); the others keep answering
/// 200. Restarted (empty, as memcached keeps nothing), its share answers
/// again by itself: those sessions start afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_only_its_share_fails_and_recovers() {
    let private = Private::start("start-ring", &["3"]).await;
    let addrs = split_addrs(&private.env("ring.env", "HTTP_SESSION_MEMCACHED_RING"));
    let timeout = Duration::from_secs(1);
    let backend = MemcachedBackend::ring(addrs.clone())
        .unwrap()
        .timeout(timeout);
    let victim = 1;
    let mut on_victim = Vec::new();
    let manager = {
        let manager = SessionManager::builder(MemcachedStore::new(backend))
            .max_age(600)
            .build()
            .unwrap();
        let placement = MemcachedBackend::ring(addrs.clone()).unwrap();
        let mut sessions = Vec::new();
        for _ in 0..30 {
            let id = new_session(&manager).await;
            on_victim.push(placement.server_for(&format!("AIOHTTP_SESSION_{id}")) == victim);
            sessions.push(id);
        }
        (manager, sessions)
    };
    let (manager, mut sessions) = manager;
    let hit = on_victim.iter().filter(|v| **v).count();
    assert!(hit > 0 && hit < sessions.len(), "{hit}");

    let round = |sessions: Vec<String>| {
        let manager = manager.clone();
        async move {
            let tasks: Vec<_> = sessions
                .into_iter()
                .map(|cookie| {
                    let manager = manager.clone();
                    tokio::spawn(async move { increment(&manager, &cookie).await })
                })
                .collect();
            let mut seen = Vec::new();
            for task in tasks {
                seen.push(task.await.unwrap());
            }
            seen
        }
    };

    private.kill_node("ring/mc2", "KILL").await;
    let killed = Instant::now();
    let (mut others_ok, mut others_max, mut victim_503) = (0, Duration::ZERO, Vec::new());
    for _ in 0..10 {
        for (i, (status, took, _)) in round(sessions.clone()).await.into_iter().enumerate() {
            if on_victim[i] {
                assert_eq!(status, 503, "session {i} on the killed server");
                assert!(took < timeout, "503 after {took:?}");
                victim_503.push(took);
            } else {
                assert_eq!(status, 200, "session {i} on a live server");
                others_ok += 1;
                others_max = others_max.max(took);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    victim_503.sort();
    eprintln!(
        "memcached ring, server {} SIGKILLed: other servers' sessions {others_ok} x 200 (slowest \
         {others_max:?}); its sessions {} x 503 (fastest {:?}, median {:?}, slowest {:?}) over {:?}",
        addrs[victim],
        victim_503.len(),
        victim_503[0],
        victim_503[victim_503.len() / 2],
        victim_503[victim_503.len() - 1],
        killed.elapsed()
    );

    private.restart_node("ring/mc2").await;
    let restarted = Instant::now();
    // Back, and empty: its sessions start afresh (a new id), the others
    // keep their data.
    for (i, (status, _, set_cookie)) in round(sessions.clone()).await.into_iter().enumerate() {
        if on_victim[i] {
            assert_eq!(status, 0, "session {i}: a fresh session after the restart");
            let line = set_cookie.expect("a new cookie");
            let pair = line.split(';').next().unwrap();
            sessions[i] = pair.split_once('=').unwrap().1.to_owned();
        } else {
            assert_eq!(status, 200, "session {i}");
        }
    }
    let first = restarted.elapsed();
    for (status, _, _) in round(sessions.clone()).await {
        assert_eq!(status, 200);
    }
    eprintln!(
        "memcached ring: server restarted; its share answered again at the first request \
         ({first:?} for the round), its sessions fresh, the others intact"
    );
}
