//! Who is logged in where, on real Redis: the per-user index beside the
//! records (a set `AIOHTTP_SESSION_user_<id>`), kept in step by the save
//! path, pruned lazily, and revocation on a Redis Cluster, where the index
//! and the records live on different nodes.

use std::time::{Duration, Instant};

use deadpool_redis::redis::{self as raw, AsyncCommands};
use http_session::{RedisBackend, RedisStore, Session, SessionManager};

use crate::common::*;
use crate::redis::{raw_connection, RedisCounter};

/// A user name no other test uses (the servers are shared).
fn user() -> String {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).unwrap();
    format!("user-{:016x}", u64::from_le_bytes(bytes))
}

/// `n` logins of `user`: renew, bind, a little data; their cookies.
async fn logins(manager: &SessionManager, user: &str, n: usize) -> Vec<String> {
    let mut cookies = Vec::new();
    for _ in 0..n {
        let out = request(manager, None, |s: &Session| {
            s.renew();
            s.set_user(user);
            s.insert("name", user).unwrap();
        })
        .await
        .unwrap();
        cookies.push(out.cookie());
    }
    cookies
}

/// The index of `user`, read behind the store's back.
async fn members(conn: &mut raw::aio::MultiplexedConnection, user: &str) -> Vec<String> {
    conn.smembers(format!("AIOHTTP_SESSION_user_{user}"))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_index_follows_the_records_and_empties_by_one_lazy_prune() {
    let url = env_var("HTTP_SESSION_REDIS_URL");
    let mut conn = raw_connection(&url).await;
    let manager = SessionManager::builder(RedisStore::redis(&url).unwrap())
        .max_age(1)
        .absolute_lifetime(60)
        .build()
        .unwrap();
    let alice = user();
    let cookies = logins(&manager, &alice, 3).await;
    let index = format!("AIOHTTP_SESSION_user_{alice}");
    assert_eq!(members(&mut conn, &alice).await.len(), 3);
    // The index lives at least as long as an absolute lifetime.
    let ttl: i64 = conn.ttl(&index).await.unwrap();
    assert!((55..=60).contains(&ttl), "index TTL {ttl}");
    // Logout of one: its entry goes, the record first.
    request(&manager, Some(&cookies[0]), Session::invalidate)
        .await
        .unwrap();
    assert_eq!(members(&mut conn, &alice).await.len(), 2);
    let listed = manager.sessions_of(&alice).await.unwrap();
    assert_eq!(listed.len(), 2);
    for info in &listed {
        assert!(cookies
            .iter()
            .all(|c| !info.handle.as_str().contains(c.as_str())));
    }
    // Every session expires: one listing prunes every entry, and Redis
    // drops the empty set.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let left_before = members(&mut conn, &alice).await.len();
    assert!(manager.sessions_of(&alice).await.unwrap().is_empty());
    let exists: bool = conn.exists(&index).await.unwrap();
    eprintln!(
        "redis user index: {left_before} stale entries after expiry, 0 after one sessions_of"
    );
    assert_eq!((left_before, exists), (2, false));
}

#[tokio::test]
async fn requests_that_keep_the_binding_cost_what_they_cost() {
    let url = env_var("HTTP_SESSION_REDIS_URL");
    let mut counter = RedisCounter::start(&url).await;
    let manager = SessionManager::builder(RedisStore::redis(&url).unwrap())
        .max_age(600)
        .build()
        .unwrap();
    let bob = user();
    let cookie = logins(&manager, &bob, 1).await.remove(0);
    let before = counter.snapshot().await;
    for i in 0..10 {
        request(&manager, Some(&cookie), |s: &Session| {
            s.insert("n", i).unwrap();
        })
        .await
        .unwrap();
        request(&manager, Some(&cookie), |s: &Session| {
            assert_eq!(s.user().as_deref(), Some(bob.as_str()));
        })
        .await
        .unwrap();
    }
    let counts = counter.snapshot().await.since(&before);
    eprintln!("redis: 10 writes and 10 reads of a bound session: {counts:?}");
    assert_eq!(counts, Counts::new(20, 10, 0), "no index command");
    // A login costs one SADD before its SET; a logout one SREM after its DEL.
    let before = counter.snapshot().await;
    request(&manager, Some(&cookie), Session::invalidate)
        .await
        .unwrap();
    logins(&manager, &bob, 1).await;
    let counts = counter.snapshot().await.since(&before);
    assert_eq!(
        (counts.get, counts.set, counts.delete),
        (1, 1, 1),
        "{counts:?}"
    );
    assert_eq!(counts.other.get("sadd"), Some(&1), "{counts:?}");
    assert_eq!(counts.other.get("srem"), Some(&1), "{counts:?}");
}

#[cfg(feature = "redis-cluster")]
mod cluster {
    use super::*;
    use crate::cluster::{key_slot, split_urls};
    use crate::services::{wait_until, Private};

    #[tokio::test]
    async fn the_index_works_across_slots() {
        let urls = split_urls(&env_var("HTTP_SESSION_REDIS_CLUSTER"));
        let manager = SessionManager::builder(RedisStore::cluster(&urls).unwrap())
            .max_age(1)
            .build()
            .unwrap();
        let carol = user();
        let cookies = logins(&manager, &carol, 6).await;
        let index = format!("AIOHTTP_SESSION_user_{carol}");
        let other_slots = cookies
            .iter()
            .filter(|c| key_slot(&format!("AIOHTTP_SESSION_{c}")) != key_slot(&index))
            .count();
        assert!(
            other_slots >= 5,
            "the records live in other slots than the index"
        );
        let listed = manager.sessions_of(&carol).await.unwrap();
        assert_eq!(listed.len(), 6);
        let ended = manager
            .revoke_user(&carol, Some(&listed[0].handle))
            .await
            .unwrap();
        assert_eq!(ended, 5);
        assert_eq!(manager.count_sessions(&carol).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert!(manager.sessions_of(&carol).await.unwrap().is_empty());
    }

    /// A master holding some of a user's records is killed, and "log out
    /// everywhere" runs while it is down: the reachable sessions end at
    /// once, the call answers 503, and every session still usable is still
    /// in the index; once a replica took over, a second call ends the rest.
    /// The order of writes (record first, index entry after) is what makes
    /// this hold without multi-key atomicity.
    #[tokio::test]
    async fn revocation_with_a_master_down_never_leaves_an_unlisted_session() {
        let private = Private::start("start-cluster", &[]).await;
        let urls = split_urls(&private.env("cluster.env", "HTTP_SESSION_REDIS_CLUSTER"));
        let timeout = Duration::from_millis(1000);
        let manager = SessionManager::builder(RedisStore::new(
            RedisBackend::cluster(&urls).unwrap().timeout(timeout),
        ))
        .max_age(600)
        .build()
        .unwrap();
        let node1 = format!("redis://127.0.0.1:{}", private.port("cluster/node1"));
        let victim = format!("127.0.0.1:{}", private.port("cluster/node2"));
        let owner_of = |conn: raw::aio::MultiplexedConnection, key: String| async move {
            let mut conn = conn;
            let slot = key_slot(&key);
            let nodes: Vec<raw::Value> = raw::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await
                .unwrap();
            nodes.iter().find_map(|range| {
                let raw::Value::Array(parts) = range else {
                    return None;
                };
                let (Some(raw::Value::Int(lo)), Some(raw::Value::Int(hi))) =
                    (parts.first(), parts.get(1))
                else {
                    return None;
                };
                let raw::Value::Array(master) = parts.get(2)? else {
                    return None;
                };
                let port = match master.get(1)? {
                    raw::Value::Int(p) => *p,
                    _ => return None,
                };
                (i64::from(slot) >= *lo && i64::from(slot) <= *hi)
                    .then(|| format!("127.0.0.1:{port}"))
            })
        };
        let conn = raw_connection(&node1).await;
        // A user whose index is not on the victim.
        let mut dave = user();
        while owner_of(conn.clone(), format!("AIOHTTP_SESSION_user_{dave}"))
            .await
            .as_deref()
            == Some(victim.as_str())
        {
            dave = user();
        }
        // Logins in twelves until some records are on the victim and some
        // elsewhere (12 random ids all miss one master of three 0.8% of
        // the time).
        let (mut cookies, mut on_victim) = (Vec::new(), Vec::new());
        for _ in 0..4 {
            for cookie in logins(&manager, &dave, 12).await {
                let owner = owner_of(conn.clone(), format!("AIOHTTP_SESSION_{cookie}")).await;
                on_victim.push(owner.as_deref() == Some(victim.as_str()));
                cookies.push(cookie);
            }
            let stranded = on_victim.iter().filter(|v| **v).count();
            if stranded > 0 && stranded < cookies.len() {
                break;
            }
        }
        let stranded = on_victim.iter().filter(|v| **v).count();
        assert!(
            stranded > 0 && stranded < cookies.len(),
            "{stranded} of {} on the victim",
            cookies.len()
        );
        let victim_url = format!("redis://{victim}");
        wait_until("the replicas catch up", Duration::from_secs(10), || {
            let url = victim_url.clone();
            async move { crate::redis::replicas_caught_up(&url).await }
        })
        .await;

        private.kill_node("cluster/node2", "KILL").await;
        let started = Instant::now();
        let err = manager.revoke_user(&dave, None).await.unwrap_err();
        let took = started.elapsed();
        eprintln!(
            "redis cluster: revoke_user with a master down: {} after {took:?} ({stranded} of {} sessions on it)",
            err.status(),
            cookies.len()
        );
        assert_eq!(err.status(), 503);
        assert!(
            took < timeout * (u32::try_from(stranded).unwrap() + 2),
            "{took:?}"
        );
        // The reachable sessions ended at once.
        for (cookie, stranded) in cookies.iter().zip(&on_victim) {
            if !stranded {
                let out = request(&manager, Some(cookie), |s: &Session| assert!(s.is_new()))
                    .await
                    .unwrap();
                assert!(out.set_cookie.is_none());
            }
        }
        // Once a replica took over, every session still usable is listed,
        // and a second call ends them.
        let promoted = wait_until("a replica takes over", Duration::from_secs(30), || {
            let manager = manager.clone();
            let dave = dave.clone();
            async move { manager.sessions_of(&dave).await.is_ok() }
        })
        .await;
        let listed = manager.sessions_of(&dave).await.unwrap();
        let mut usable = 0;
        for cookie in &cookies {
            let out = request(&manager, Some(cookie), |_| {}).await.unwrap();
            usable += usize::from(!out.session.is_new());
        }
        eprintln!(
            "redis cluster: listed again {promoted:?} after the first call: {} listed, \
             {usable} usable (of {stranded} on the killed master; the rest ended once \
             their slots moved)",
            listed.len()
        );
        assert_eq!(listed.len(), usable, "every usable session is listed");
        assert!(usable <= stranded);
        // Right after the takeover the client may still be retrying what
        // the first call left behind (its retries wait 1.28 s and more), so
        // a call can run out of its timeout: that is a 503, and the next
        // call goes on from what is left (bounded: 10 s).
        let retry_started = Instant::now();
        let mut failed = Vec::new();
        let revoked = loop {
            match manager.revoke_user(&dave, None).await {
                Ok(revoked) => break revoked,
                Err(e) => {
                    assert_eq!(e.status(), 503, "revoke_user after the takeover: {e}");
                    failed.push(retry_started.elapsed());
                    assert!(
                        retry_started.elapsed() < Duration::from_secs(10),
                        "revoke_user after the takeover kept failing: {failed:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        eprintln!(
            "redis cluster: second revoke_user ended {revoked} sessions after {} failed \
             attempts {failed:?}",
            failed.len()
        );
        if failed.is_empty() {
            assert_eq!(revoked, usable);
        } else {
            // A failed attempt may have ended some of them already.
            assert!(revoked <= usable, "{revoked} > {usable}");
        }
        for cookie in &cookies {
            request(&manager, Some(cookie), |s: &Session| assert!(s.is_new()))
                .await
                .unwrap();
        }
        assert!(manager.sessions_of(&dave).await.unwrap().is_empty());
    }
}
