//! Who is logged in where: listing and revoking a user's sessions.

use serde_json::json;

use super::assert_removal;
use crate::harness::{App, Fixture, Framework, Reply, StoreKind};

/// Three browsers (three cookie jars) of one server.
struct Browsers {
    jars: Vec<Option<String>>,
}

impl Browsers {
    fn new(n: usize) -> Self {
        Self {
            jars: vec![None; n],
        }
    }

    /// A request from browser `i`.
    async fn send(&mut self, app: &mut App, i: usize, method: &str, path: &str) -> Reply {
        app.jar = self.jars[i].take();
        let body = (method == "POST").then(|| json!(null));
        let reply = app.send(method, path, body).await;
        self.jars[i] = app.jar.take();
        reply
    }
}

/// A user name no other test uses (the Redis server is shared).
fn user_name() -> String {
    format!("alice-{}", StoreKind::unique_id())
}

/// Three browsers log in as one user; one of them logs out its other
/// devices: the other two get a fresh session on their next request, the
/// caller stays logged in, and another user's session is untouched. Stores
/// without a per-user index answer the listing and the logout with a 501
/// (login itself works everywhere).
pub async fn logout_others_ends_the_other_devices<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app_with(|b| b.max_age(600)).await;
    let mut browsers = Browsers::new(4);
    let alice = user_name();
    for i in 0..3 {
        let reply = browsers
            .send(&mut app, i, "POST", &format!("/login?user={alice}"))
            .await;
        assert_eq!(reply.status, 200, "[{}] login: {}", app.label, reply.body);
    }
    let bob = user_name();
    browsers
        .send(&mut app, 3, "POST", &format!("/login?user={bob}"))
        .await;
    let listed = browsers.send(&mut app, 0, "GET", "/sessions").await;
    if !fx.store.has_user_index() {
        assert_eq!(listed.status, 501, "[{}] {}", app.label, listed.body);
        let others = browsers.send(&mut app, 0, "POST", "/logout-others").await;
        assert_eq!(others.status, 501, "[{}] {}", app.label, others.body);
        return;
    }
    let listed = listed.json();
    let sessions = listed["sessions"].as_array().expect("a list");
    assert_eq!(sessions.len(), 3, "[{}] {listed}", app.label);
    assert_eq!(
        sessions.iter().filter(|s| s["current"] == true).count(),
        1,
        "[{}] {listed}",
        app.label
    );
    for s in sessions {
        let handle = s["handle"].as_str().expect("a handle");
        assert!(
            browsers
                .jars
                .iter()
                .flatten()
                .all(|jar| !jar.contains(handle) && !handle.contains(jar.as_str())),
            "[{}] a handle is not a cookie",
            app.label
        );
        assert!(
            s["created"].as_u64().is_some() && s["expires"].as_u64().is_some(),
            "{s}"
        );
    }
    let out = browsers
        .send(&mut app, 0, "POST", "/logout-others")
        .await
        .json();
    assert_eq!(out, json!({"revoked": 2}), "[{}]", app.label);
    for i in [1, 2] {
        let meta = browsers.send(&mut app, i, "GET", "/meta").await.json();
        assert_eq!(meta["new"], true, "[{}] browser {i}: {meta}", app.label);
        assert_eq!(meta["session"], json!({}), "[{}] browser {i}", app.label);
    }
    let still = browsers.send(&mut app, 0, "GET", "/get").await.json();
    assert_eq!(
        still["user"],
        alice.as_str(),
        "[{}] the caller stays",
        app.label
    );
    let listed = browsers.send(&mut app, 0, "GET", "/sessions").await.json();
    assert_eq!(
        listed["sessions"].as_array().map(Vec::len),
        Some(1),
        "[{}]",
        app.label
    );
    let other = browsers.send(&mut app, 3, "GET", "/get").await.json();
    assert_eq!(
        other["user"],
        bob.as_str(),
        "[{}] another user's session",
        app.label
    );
}

/// "Log out everywhere" ends all three sessions, the caller's too.
pub async fn logout_everywhere_ends_all<F: Framework>(fx: Fixture<F>) {
    if !fx.store.has_user_index() {
        return logout_others_ends_the_other_devices(fx).await;
    }
    let mut app = fx.app_with(|b| b.max_age(600)).await;
    let mut browsers = Browsers::new(3);
    let alice = user_name();
    for i in 0..3 {
        browsers
            .send(&mut app, i, "POST", &format!("/login?user={alice}"))
            .await;
    }
    let reply = browsers
        .send(&mut app, 1, "POST", "/logout-everywhere")
        .await;
    assert_eq!(reply.json(), json!({"revoked": 3}), "[{}]", app.label);
    assert_removal(&app, &reply);
    for i in 0..3 {
        let meta = browsers.send(&mut app, i, "GET", "/meta").await.json();
        assert_eq!(meta["new"], true, "[{}] browser {i}: {meta}", app.label);
    }
    assert_eq!(
        browsers.send(&mut app, 0, "GET", "/sessions").await.status,
        401
    );
}
