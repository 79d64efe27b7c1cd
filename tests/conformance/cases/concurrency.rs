//! Concurrent requests of one session (server stores).

use std::time::Duration;

use serde_json::json;

use super::{assert_removal, cookie_header, set_value};
use crate::harness::{request, Fixture, Framework};

/// 16 clients write 16 different keys of one session at the same time, 20
/// writes each, with their loads and saves overlapping: every key ends
/// with its last write, and every answer is a 200 that keeps the id.
pub async fn concurrent_writers_keep_every_key<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app_with(|b| b.max_age(600)).await;
    app.post("/set", json!({"seed": true})).await;
    let cookie = cookie_header(&app);
    let id = app.jar.clone();
    let addr = app.server.addr;
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for j in 1..=20 {
                    let body = json!({ format!("k{i}"): j }).to_string().into_bytes();
                    let path = format!("/set?delay_ms={}", (i + j) % 3);
                    answers.push(request(addr, "POST", &path, Some(&cookie), body).await);
                }
                answers
            })
        })
        .collect();
    for writer in writers {
        for reply in writer.await.expect("writer task") {
            assert_eq!(reply.status, 200, "[{}] {}", app.label, reply.body);
            for line in &reply.set_cookies {
                assert_eq!(set_value(&app, line), id, "[{}] {line}", app.label);
            }
        }
    }
    let state = app.get("/get").await.json();
    let lost: Vec<String> = (0..16)
        .filter(|i| state[format!("k{i}")] != json!(20))
        .map(|i| format!("k{i}={}", state[format!("k{i}")]))
        .collect();
    assert!(
        lost.is_empty(),
        "[{}] keys without their last write: {lost:?}",
        app.label
    );
    assert_eq!(state["seed"], true, "[{}]", app.label);
}

/// Strict mode: concurrent increments of one counter. Every increment
/// answered 2xx is kept, every other one is a 409, and none is a 5xx.
pub async fn strict_increments_lose_nothing<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app_with(|b| b.max_age(600).strict(true)).await;
    assert_eq!(app.get("/incr").await.json(), json!({"n": 1}));
    let cookie = cookie_header(&app);
    let addr = app.server.addr;
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for j in 0..10 {
                    let path = format!("/incr?delay_ms={}", (i * 7 + j) % 4);
                    let reply = request(addr, "GET", &path, Some(&cookie), Vec::new()).await;
                    statuses.push((reply.status, reply.body));
                }
                statuses
            })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for client in clients {
        for (status, body) in client.await.expect("client task") {
            match status {
                200 => ok += 1,
                409 => {
                    assert_eq!(body, "Conflict", "[{}] opaque 409 body", app.label);
                    conflicts += 1;
                }
                other => panic!("[{}] status {other}: {body}", app.label),
            }
        }
    }
    let n = app.get("/get").await.json()["n"].as_u64().expect("n");
    eprintln!(
        "[{}] strict: {ok} increments kept, {conflicts} conflicts, n = {n}",
        app.label
    );
    assert_eq!(n, 1 + ok, "[{}] {ok} increments answered 200", app.label);
    assert_eq!(ok + conflicts, 160);
    assert!(ok >= 10, "[{}] some increments must win: {ok}", app.label);
}

/// A logout while four other requests of the session are in flight (they
/// loaded it and save after the delete), 100 times: the record is never
/// written back, and no in-flight request hands out the old id again.
///
/// The in-flight requests wait `IN_FLIGHT_DELAY` on the server between
/// loading and saving, so none saves before `sent + IN_FLIGHT_DELAY`. A
/// trial whose logout was answered before that instant (the delete came
/// first for certain) must not see the old id again; a trial whose logout
/// was slower (a loaded machine) is not conclusive about the id, and most
/// trials must be conclusive. The record is checked in every trial.
pub async fn logout_racing_requests_stays_logged_out<F: Framework>(fx: Fixture<F>) {
    const IN_FLIGHT_DELAY: Duration = Duration::from_millis(60);
    let mut app = fx.app_with(|b| b.max_age(600)).await;
    let addr = app.server.addr;
    let (mut recreated, mut conclusive, mut raced) = (0, 0, 0);
    for trial in 0..100 {
        app.jar = None;
        app.post("/set", json!({"user": "alice"})).await;
        let old = app.jar.clone().expect("a session");
        let cookie = cookie_header(&app);
        let sent = std::time::Instant::now();
        let in_flight: Vec<_> = (0..4)
            .map(|i| {
                let cookie = cookie.clone();
                tokio::spawn(async move {
                    let body = json!({ format!("w{i}"): trial }).to_string().into_bytes();
                    let path = format!("/set?delay_ms={}", IN_FLIGHT_DELAY.as_millis());
                    request(addr, "POST", &path, Some(&cookie), body).await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(8)).await;
        let logout = app.post("/clear", json!(null)).await;
        let before_any_save = sent.elapsed() < IN_FLIGHT_DELAY;
        assert_removal(&app, &logout);
        conclusive += usize::from(before_any_save);
        for task in in_flight {
            let reply = task.await.expect("request task");
            assert_eq!(reply.status, 200, "[{}] {}", app.label, reply.body);
            // It loaded the session before the logout: the race is on.
            raced += usize::from(reply.json()["user"] == "alice");
            if !before_any_save {
                continue;
            }
            for line in &reply.set_cookies {
                assert_ne!(
                    set_value(&app, line).as_deref(),
                    Some(old.as_str()),
                    "[{}] trial {trial}: the old id was handed out again",
                    app.label
                );
            }
        }
        let replay = app.meta_with_cookie(&old).await.json();
        if replay["new"] != true || replay["session"] != json!({}) {
            recreated += 1;
        }
    }
    eprintln!(
        "[{}] logout race: {conclusive} of 100 trials conclusive, {raced} of 400 in-flight \
         requests loaded the session before the logout",
        app.label
    );
    assert!(
        conclusive >= 50,
        "[{}] only {conclusive} of 100 logouts were answered within {IN_FLIGHT_DELAY:?}",
        app.label
    );
    assert!(
        raced >= 100,
        "[{}] only {raced} in-flight requests raced the logout",
        app.label
    );
    assert_eq!(
        recreated, 0,
        "[{}] records recreated after logout",
        app.label
    );
}
