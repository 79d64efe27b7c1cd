//! Expiry: idle timeout, absolute lifetime, own max_age, clock skew, rolling refresh.

use std::time::Duration;

use serde_json::json;

use super::{data, set_value};
use crate::harness::{Fixture, Framework, TestClock};

/// An idle timeout ends a session that was not written for that long; a
/// write starts the timeout again. (The manager's clock is pinned and moved
/// by hand: the rule is checked at load on every store; a server record's
/// TTL, which runs on real time, is longer than the test.)
pub async fn idle_timeout_expires_unused_sessions<F: Framework>(fx: Fixture<F>) {
    let clock = TestClock::now();
    let mut app = fx
        .app_with(|b| b.idle_timeout(600).clock(clock.source()))
        .await;
    app.post("/set", json!({"a": 1})).await;
    clock.advance(599);
    assert_eq!(
        data(&mut app).await,
        json!({"a": 1}),
        "[{}] 599 s idle",
        app.label
    );
    // A write: the timeout runs from here.
    app.post("/set", json!({"b": 2})).await;
    clock.advance(599);
    assert_eq!(
        data(&mut app).await,
        json!({"a": 1, "b": 2}),
        "[{}]",
        app.label
    );
    clock.advance(2);
    let meta = app.get("/meta").await.json();
    assert_eq!(
        meta["session"],
        json!({}),
        "[{}] 601 s idle: {meta}",
        app.label
    );
    assert_eq!(meta["new"], true, "[{}] {meta}", app.label);
}

/// An absolute lifetime ends a session however active it is, counted from
/// its first creation; a renew (login) keeps the start.
pub async fn absolute_lifetime_ends_active_sessions<F: Framework>(fx: Fixture<F>) {
    let clock = TestClock::now();
    let mut app = fx
        .app_with(|b| b.absolute_lifetime(3600).clock(clock.source()))
        .await;
    app.post("/set", json!({"n": 0})).await;
    for step in 1..=3 {
        clock.advance(1000);
        app.post("/set", json!({ "n": step })).await;
    }
    // Renewed at 3000 s: a new id, the same start.
    let renewed = app.get("/new").await;
    assert_eq!(renewed.status, 200);
    clock.advance(600);
    assert_eq!(
        data(&mut app).await,
        json!({"marker": "new"}),
        "[{}] 3600 s",
        app.label
    );
    clock.advance(1);
    let meta = app.get("/meta").await.json();
    assert_eq!(meta["session"], json!({}), "[{}] 3601 s: {meta}", app.label);
    assert_eq!(meta["new"], true, "[{}] {meta}", app.label);
}

/// A session's own `max_age` (shorter than the storage's) is enforced at
/// load on every store, and kept across writes.
pub async fn own_max_age_is_enforced_and_kept<F: Framework>(fx: Fixture<F>) {
    let clock = TestClock::now();
    let mut app = fx.app_with(|b| b.max_age(3600).clock(clock.source())).await;
    app.post("/set", json!({"sudo": true})).await;
    app.post("/max_age?n=300", json!(null)).await;
    clock.advance(100);
    // A later write keeps the session's max_age.
    app.post("/set", json!({"k": 1})).await;
    let meta = app.get("/meta").await.json();
    assert_eq!(meta["max_age"], 300, "[{}] {meta}", app.label);
    clock.advance(300);
    assert_eq!(
        data(&mut app).await,
        json!({"sudo": true, "k": 1}),
        "[{}]",
        app.label
    );
    clock.advance(1);
    let meta = app.get("/meta").await.json();
    assert_eq!(meta["session"], json!({}), "[{}] {meta}", app.label);
    assert_eq!(meta["new"], true, "[{}] {meta}", app.label);
}

/// A record written by a node whose clock runs an hour ahead gives a fresh
/// session (the allowed skew is 60 s); one 60 s ahead is accepted.
pub async fn future_created_gives_a_fresh_session<F: Framework>(fx: Fixture<F>) {
    let clock = TestClock::now();
    let now = clock.get();
    let mut app = fx.app_with(|b| b.clock(clock.source())).await;
    clock.set(now + 60);
    app.post("/set", json!({"a": 1})).await;
    clock.set(now);
    assert_eq!(
        data(&mut app).await,
        json!({"a": 1}),
        "[{}] 60 s ahead",
        app.label
    );
    clock.set(now + 3600);
    app.post("/set", json!({"b": 2})).await;
    clock.set(now);
    let meta = app.get("/meta").await.json();
    assert_eq!(
        meta["session"],
        json!({}),
        "[{}] an hour ahead: {meta}",
        app.label
    );
    assert_eq!(meta["new"], true, "[{}] {meta}", app.label);
}

/// A rolling session is refreshed by read-only requests at most once per
/// interval: a `Set-Cookie` (and, on a server store, one store command) on
/// the first read-only request after the interval, none before. Cookie
/// stores carry the last refresh in the cookie (the pinned clock drives
/// them); server stores measure it from the record's TTL in the store,
/// which runs on real time, so their case waits for real.
pub async fn rolling_refresh_is_throttled<F: Framework>(fx: Fixture<F>) {
    if fx.store.is_cookie_store() {
        let clock = TestClock::now();
        let mut app = fx
            .app_with(|b| b.idle_timeout(600).rolling(60).clock(clock.source()))
            .await;
        app.post("/set", json!({"a": 1})).await;
        clock.advance(59);
        assert_eq!(
            app.get("/get").await.set_cookies,
            Vec::<String>::new(),
            "[{}]",
            app.label
        );
        clock.advance(2);
        let refreshed = app.get("/get").await;
        let line = refreshed.set_cookie().expect("a refresh").to_owned();
        assert!(line.contains("Max-Age=600"), "[{}] {line}", app.label);
        clock.advance(30);
        assert_eq!(
            app.get("/get").await.set_cookies,
            Vec::<String>::new(),
            "[{}]",
            app.label
        );
        // Idle 569 s since the refresh (630 s since the write): alive.
        clock.advance(539);
        assert_eq!(data(&mut app).await, json!({"a": 1}), "[{}]", app.label);
    } else {
        // Store clocks tick in whole seconds (memcached's once a second):
        // the margins below are a second or more.
        let mut app = fx.app_with(|b| b.idle_timeout(4).rolling(1)).await;
        app.post("/set", json!({"a": 1})).await;
        let written = std::time::Instant::now();
        assert_eq!(
            app.get("/get").await.set_cookies,
            Vec::<String>::new(),
            "[{}]",
            app.label
        );
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let refreshed = app.get("/get").await;
        let line = refreshed
            .set_cookie()
            .unwrap_or_else(|| {
                panic!(
                    "[{}] no refresh {} ms after the write: status {}, body {}",
                    app.label,
                    written.elapsed().as_millis(),
                    refreshed.status,
                    refreshed.body
                )
            })
            .to_owned();
        assert!(line.contains("Max-Age=4"), "[{}] {line}", app.label);
        assert_eq!(set_value(&app, &line), app.jar, "[{}] same id", app.label);
        assert_eq!(
            app.get("/get").await.set_cookies,
            Vec::<String>::new(),
            "[{}]",
            app.label
        );
        // 2.5 s after the refresh, 5 s after the write (TTL 4): alive.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(data(&mut app).await, json!({"a": 1}), "[{}]", app.label);
        // Without a refresh for longer than the timeout, the store drops it.
        tokio::time::sleep(Duration::from_millis(5200)).await;
        assert_eq!(data(&mut app).await, json!({}), "[{}]", app.label);
    }
}
