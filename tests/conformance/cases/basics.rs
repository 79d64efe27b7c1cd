//! A session and its cookie: set, read, change, end, renew, size, options, `Vary`.

use std::time::Duration;

use serde_json::{json, Value};

use super::{assert_removal, cookie_value, now};
use crate::harness::{Fixture, Framework, StoreKind};

/// A request without a cookie loads a fresh session and sends no cookie,
/// whatever route it takes.
pub async fn fresh_request_sends_no_cookie<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    for path in ["/get", "/meta", "/bare"] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 200, "[{}] {path}", app.label);
        assert_eq!(
            reply.set_cookies,
            Vec::<String>::new(),
            "[{}] {path}",
            app.label
        );
    }
    let meta = app.get("/meta").await.json();
    assert_eq!(meta["new"], true);
    assert_eq!(meta["empty"], true);
    assert_eq!(meta["identity"], Value::Null);
    assert_eq!(meta["max_age"], Value::Null);
    assert!((meta["created"].as_i64().expect("int created") - now()).abs() <= 2);
    assert_eq!(app.get("/bare").await.json(), json!("ok"));
}

/// A value set in one request is read back in the next.
pub async fn set_then_get<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    let reply = app.post("/set", json!({"user": "ada", "n": 1})).await;
    assert_eq!(reply.status, 200, "[{}]", app.label);
    let line = reply.set_cookie().expect("a session cookie").to_owned();
    assert!(
        line.contains("; HttpOnly; Path=/"),
        "[{}] {line}",
        app.label
    );
    assert!(
        !line.contains("Max-Age") && !line.contains("expires"),
        "[{}] {line}",
        app.label
    );
    let got = app.get("/get").await;
    assert_eq!(
        got.json(),
        json!({"user": "ada", "n": 1}),
        "[{}]",
        app.label
    );
    let meta = app.get("/meta").await.json();
    assert_eq!(meta["new"], false, "[{}]", app.label);
    if fx.store.is_cookie_store() {
        assert_eq!(meta["identity"], Value::Null);
    } else {
        assert_eq!(
            meta["identity"].as_str().map(str::len),
            Some(32),
            "[{}] {meta}",
            app.label
        );
        assert_eq!(meta["identity"].as_str(), app.jar.as_deref());
    }
}

/// State carries over many requests; removing a key is saved too.
pub async fn mutation_across_requests<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    for expected in 1..=3 {
        assert_eq!(app.get("/incr").await.json(), json!({ "n": expected }));
    }
    app.post("/set", json!({"a": 1, "b": 2})).await;
    let after_del = app.post("/del?key=a", json!(null)).await;
    assert!(
        after_del.set_cookie().is_some(),
        "[{}] removal must be saved",
        app.label
    );
    assert_eq!(app.get("/get").await.json(), json!({"n": 3, "b": 2}));
    // Removing a missing key changes nothing and sends nothing.
    let noop = app.post("/del?key=missing", json!(null)).await;
    assert_eq!(noop.set_cookies, Vec::<String>::new(), "[{}]", app.label);
    if !fx.store.is_cookie_store() {
        // Server stores keep the same id across updates.
        let id = app.jar.clone();
        app.get("/incr").await;
        assert_eq!(app.jar, id, "[{}] id must be stable", app.label);
    }
}

/// Reading a loaded session sends no Set-Cookie; touching it does.
pub async fn read_only_request_sends_no_cookie<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    app.post("/set", json!({"k": "v"})).await;
    for path in ["/get", "/meta", "/bare"] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.set_cookies,
            Vec::<String>::new(),
            "[{}] {path}",
            app.label
        );
    }
    let meta_before = app.get("/meta").await.json();
    let touched = app.post("/touch", json!(null)).await;
    assert!(
        touched.set_cookie().is_some(),
        "[{}] changed() must save",
        app.label
    );
    // changed() does not move `created`.
    assert_eq!(touched.json()["created"], meta_before["created"]);
    assert_eq!(app.get("/get").await.json(), json!({"k": "v"}));
}

/// Invalidate removes the cookie; a server store forgets the session so
/// the old cookie no longer works.
pub async fn invalidate<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    app.post("/set", json!({"secret": 1})).await;
    let old = app.jar.clone().expect("cookie after set");
    let reply = app.post("/clear", json!(null)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({}));
    if fx.store == StoreKind::Plain {
        // As aiohttp-session's SimpleCookieStorage: the empty session is `{}`.
        assert!(reply
            .set_cookie()
            .expect("cookie")
            .starts_with(&format!("{}=\"{{}}\";", app.cookie_name)));
        assert_eq!(app.get("/meta").await.json()["new"], true);
    } else {
        assert_removal(&app, &reply);
        assert_eq!(app.jar, None);
    }
    assert_eq!(app.get("/get").await.json(), json!({}));
    let replay = app.meta_with_cookie(&old).await.json();
    if fx.store.is_cookie_store() {
        // A cookie store cannot revoke: a copy of the old cookie still
        // holds the old data (documented limitation).
        assert_eq!(replay["session"], json!({"secret": 1}), "[{}]", app.label);
    } else {
        assert_eq!(
            replay["session"],
            json!({}),
            "[{}] old id must be dead",
            app.label
        );
        assert_eq!(replay["new"], true);
    }
}

/// A login starts a fresh session with a new identity; the old one is gone.
pub async fn new_session_on_login<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app_with(|b| b.max_age(600)).await;
    app.post("/set", json!({"cart": [1, 2]})).await;
    app.post("/max_age?n=30", json!(null)).await;
    let old = app.jar.clone().expect("cookie");
    let reply = app.get("/new").await;
    assert_eq!(reply.json(), json!({"marker": "new"}), "[{}]", app.label);
    let new = cookie_value(&app, &reply);
    assert_ne!(new, old);
    // The renewed session is back on the storage max_age.
    assert!(
        reply.set_cookie().expect("cookie").contains("Max-Age=600"),
        "[{}]",
        app.label
    );
    let meta = app.get("/meta").await.json();
    assert_eq!(meta["session"], json!({"marker": "new"}));
    assert_eq!(meta["new"], false);
    if !fx.store.is_cookie_store() {
        assert_ne!(meta["identity"].as_str(), Some(old.as_str()));
        let replay = app.meta_with_cookie(&old).await.json();
        assert_eq!(
            replay["session"],
            json!({}),
            "[{}] old record must be deleted",
            app.label
        );
    }
}

/// set_new_identity works on a new session only; a server store then uses
/// that identity as the cookie and the record key.
pub async fn set_new_identity_rules<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    let id = StoreKind::unique_id();
    let first = app.post(&format!("/identity?id={id}"), json!(null)).await;
    assert_eq!(first.status, 200, "[{}] {}", app.label, first.body);
    assert_eq!(first.json()["identity"], id.as_str());
    if fx.store.is_cookie_store() {
        assert_ne!(app.jar.as_deref(), Some(id.as_str()));
    } else {
        assert_eq!(app.jar.as_deref(), Some(id.as_str()));
        assert_eq!(app.get("/meta").await.json()["identity"], id.as_str());
        // An identity that is taken is refused (409), never overwritten.
        let mut other = fx.app().await;
        let taken = other.post(&format!("/identity?id={id}"), json!(null)).await;
        if fx.store.is_shared() {
            assert_eq!(taken.status, 409, "[{}] {}", app.label, taken.body);
            assert_eq!(taken.set_cookies, Vec::<String>::new());
        }
    }
    // The session is no longer new: changing its identity is refused.
    let second = app.post("/identity?id=other", json!(null)).await;
    assert_eq!(second.status, 409, "[{}] {}", app.label, second.body);
    assert_eq!(second.set_cookies, Vec::<String>::new());
    assert_eq!(app.get("/get").await.json(), json!({"named": true}));
}

/// max_age reaches the cookie (Max-Age and expires) and the store.
pub async fn max_age_on_cookie_and_store<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app_with(|b| b.max_age(3600)).await;
    let reply = app.post("/set", json!({"a": 1})).await;
    let line = reply.set_cookie().expect("cookie").to_owned();
    assert!(
        line.contains("; HttpOnly; Max-Age=3600; Path=/"),
        "[{}] {line}",
        app.label
    );
    let expires = line
        .split("; expires=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .expect("expires");
    assert!(
        expires.ends_with(" GMT") && expires.as_bytes()[7] == b'-',
        "python date form: {expires}"
    );
    assert_eq!(app.get("/meta").await.json()["max_age"], 3600);

    let reply = app.post("/max_age?n=60", json!(null)).await;
    assert!(reply
        .set_cookie()
        .expect("cookie")
        .contains("; Max-Age=60;"));
    // None: the storage Max-Age is still sent, without expires (as in Python).
    let reply = app.post("/max_age?n=none", json!(null)).await;
    let line = reply.set_cookie().expect("cookie");
    assert!(
        line.contains("; Max-Age=3600;") && !line.contains("expires"),
        "[{}] {line}",
        app.label
    );

    // A short per-session max_age ends the session on every store: a server
    // record expires with it, and every store checks it at load (a copied
    // cookie replayed later gets a fresh session too).
    app.post("/max_age?n=1", json!(null)).await;
    let copied = app.jar.clone().expect("cookie");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = app.get("/meta").await.json();
    assert_eq!(after["session"], json!({}), "[{}] {after}", app.label);
    assert_eq!(after["new"], true, "[{}] {after}", app.label);
    let replay = app.meta_with_cookie(&copied).await.json();
    assert_eq!(replay["session"], json!({}), "[{}] {replay}", app.label);
}

/// A session older than the storage max_age is dropped.
pub async fn expiry<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app_with(|b| b.max_age(1)).await;
    app.post("/set", json!({"a": 1})).await;
    assert_eq!(app.get("/get").await.json(), json!({"a": 1}));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = app.get("/meta").await;
    assert_eq!(reply.status, 200);
    let meta = reply.json();
    assert_eq!(meta["session"], json!({}), "[{}]", app.label);
    assert_eq!(meta["empty"], true);
    // Fernet's token TTL and server-store TTLs give a new session; a record
    // that is read but too old loads empty and not new, as in Python.
    let expect_new = matches!(fx.store, StoreKind::Fernet) || !fx.store.is_cookie_store();
    assert_eq!(meta["new"], expect_new, "[{}] {meta}", app.label);
}

/// Unicode, quoting-sensitive characters, nested values and number edge
/// cases survive the round trip.
pub async fn unicode_and_nested_values<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    let value = json!({
        "accents": "é à ü ñ",
        "cjk": "中文 日本語",
        "emoji": "😀🎉",
        "punct": "; , \" \\ = / + { }",
        "nested": {"list": [1, "two", null, true, {"deep": [[]]}], "empty": {}},
        "null": null,
        "float": 1.5,
        "small": 1e-7,
        "big": 1e100,
        "max": i64::MAX,
        "min": i64::MIN,
        "ключ ✓": "key with non-ASCII",
    });
    let reply = app.post("/set", value.clone()).await;
    assert_eq!(reply.status, 200, "[{}] {}", app.label, reply.body);
    assert!(reply.set_cookie().expect("cookie").is_ascii());
    assert_eq!(app.get("/get").await.json(), value, "[{}]", app.label);
}

/// A session too large for a cookie is a clear 500 for cookie stores
/// (never a cookie the browser drops); a server store keeps it.
pub async fn oversized_session<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    app.post("/set", json!({"keep": 1})).await;
    let before = app.jar.clone();
    let reply = app.post("/set", json!({"blob": "x".repeat(5000)})).await;
    if fx.store.is_cookie_store() {
        assert_eq!(reply.status, 500, "[{}]", app.label);
        assert_eq!(
            reply.body, "Internal Server Error",
            "[{}] opaque body",
            app.label
        );
        assert!(!reply.body.contains("4096") && !reply.body.contains("cookie"));
        assert_eq!(reply.set_cookies, Vec::<String>::new());
        // Nothing was lost: the previous session is intact.
        assert_eq!(app.jar, before);
        assert_eq!(app.get("/get").await.json(), json!({"keep": 1}));
    } else {
        assert_eq!(reply.status, 200, "[{}]", app.label);
        assert_eq!(
            app.get("/get").await.json()["blob"].as_str().map(str::len),
            Some(5000)
        );
    }
}

/// Cookie options reach every Set-Cookie, in Python's attribute order.
pub async fn cookie_options<F: Framework>(fx: Fixture<F>) {
    let mut app = fx
        .app_with(|b| {
            b.cookie_name("SID")
                .domain("example.test")
                .path("/")
                .secure(true)
                .same_site(http_session::SameSite::Strict)
                .max_age(120)
        })
        .await;
    let reply = app.post("/set", json!({"a": 1})).await;
    let line = reply.set_cookie().expect("cookie").to_owned();
    let attrs: Vec<&str> = line
        .split("; ")
        .skip(1)
        .map(|a| a.split('=').next().unwrap_or(a))
        .collect();
    assert_eq!(
        attrs,
        ["Domain", "expires", "HttpOnly", "Max-Age", "Path", "SameSite", "Secure"],
        "[{}] {line}",
        app.label
    );
    assert!(line.starts_with("SID="));
    assert_eq!(app.get("/get").await.json(), json!({"a": 1}));
    let cleared = app.post("/clear", json!(null)).await;
    if fx.store != StoreKind::Plain {
        assert_eq!(
            cleared.set_cookie().expect("removal"),
            "SID=\"\"; Domain=example.test; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; \
             Path=/; SameSite=Strict; Secure"
        );
    }
}

/// `Vary: Cookie` on every response whose handler loaded the session (so a
/// shared cache never serves one user's page to another), never twice when
/// the handler sent its own, never on a route that did not load it, and
/// not at all when turned off.
pub async fn vary_cookie_on_session_responses<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    for (method, path) in [("GET", "/get"), ("POST", "/set"), ("GET", "/meta")] {
        let body = (method == "POST").then(|| json!({"a": 1}));
        let reply = app.send(method, path, body).await;
        assert_eq!(reply.vary, ["Cookie"], "[{}] {method} {path}", app.label);
    }
    let bare = app.get("/bare").await;
    assert_eq!(bare.vary, Vec::<String>::new(), "[{}] /bare", app.label);
    let own = app.get("/vary").await;
    assert_eq!(
        own.vary,
        ["Accept-Encoding, Cookie"],
        "[{}] not twice",
        app.label
    );
    let mut off = fx.app_with(|b| b.vary_cookie(false)).await;
    assert_eq!(
        off.get("/get").await.vary,
        Vec::<String>::new(),
        "[{}] off",
        off.label
    );
}
