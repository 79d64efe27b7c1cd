//! The conformance cases: each runs against one framework x store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::harness::{request, split_value, App, Fixture, Framework, StoreKind, KEY_B};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// The Set-Cookie value part of a reply, asserting there is one.
fn cookie_value(app: &App, reply: &crate::harness::Reply) -> String {
    let line = reply
        .set_cookie()
        .unwrap_or_else(|| panic!("[{}] expected a Set-Cookie", app.label));
    let rest = line
        .strip_prefix(&format!("{}=", app.cookie_name))
        .unwrap_or_else(|| panic!("[{}] wrong cookie name in {line}", app.label));
    split_value(rest).to_owned()
}

fn assert_removal(app: &App, reply: &crate::harness::Reply) {
    let line = reply
        .set_cookie()
        .unwrap_or_else(|| panic!("[{}] expected a Set-Cookie", app.label));
    assert_eq!(
        line,
        format!(
            "{}=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
            app.cookie_name
        ),
        "[{}]",
        app.label
    );
}

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

    // A short per-session max_age: a server record expires with it; a
    // cookie store only shortens the browser's copy (the server still
    // checks the storage max_age).
    app.post("/max_age?n=1", json!(null)).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = app.get("/get").await.json();
    if fx.store.is_cookie_store() {
        assert_eq!(after, json!({"a": 1}), "[{}]", app.label);
    } else {
        assert_eq!(after, json!({}), "[{}] record must have expired", app.label);
    }
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

/// Every kind of hostile cookie gives a fresh session, never an error.
pub async fn bad_cookies_give_fresh_sessions<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    app.post("/set", json!({"user": "ada"})).await;
    let good = app.jar.clone().expect("cookie");
    let bare = good.trim_matches('"').to_owned();
    let mid = bare.len() / 2;
    let flipped = {
        let mut bytes = bare.clone().into_bytes();
        bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).expect("ascii")
    };
    let mut bad = vec![
        ("truncated", bare[..mid].to_owned()),
        ("unbalanced quote", format!("\"{bare}")),
        ("garbage", "%%%not-a-session%%%".to_owned()),
        ("empty", String::new()),
        ("quotes only", "\"\"".to_owned()),
        ("escape at end", "\"abc\\".to_owned()),
        ("huge", "x".repeat(8000)),
        ("binary-ish", "\\377\\000\\001".to_owned()),
        ("spaces", "a b c".to_owned()),
    ];
    if fx.store != StoreKind::Plain {
        bad.push(("tampered", flipped));
    }
    if fx.store == StoreKind::Plain {
        bad.extend([
            ("invalid json", "{\"created\": 1, ".to_owned()),
            ("json list", "[1, 2]".to_owned()),
            ("json null", "null".to_owned()),
            (
                "session not a map",
                "\"{\\\"created\\\": 1\\054 \\\"session\\\": [1]}\"".to_owned(),
            ),
        ]);
    }
    for (what, value) in bad {
        let reply = app.meta_with_cookie(&value).await;
        assert_eq!(reply.status, 200, "[{}] {what}: {}", app.label, reply.body);
        let meta = reply.json();
        assert_eq!(meta["session"], json!({}), "[{}] {what}", app.label);
        assert_eq!(meta["new"], true, "[{}] {what}", app.label);
        assert_eq!(
            reply.set_cookies,
            Vec::<String>::new(),
            "[{}] {what}",
            app.label
        );
        // And the fresh session can be used at once.
        let cookie = format!("{}={value}", app.cookie_name);
        let write = app.raw("GET", "/incr", Some(&cookie), Vec::new()).await;
        assert_eq!(write.status, 200, "[{}] {what}", app.label);
        assert_eq!(write.json(), json!({"n": 1}), "[{}] {what}", app.label);
    }
    // The untouched good cookie still works, quoted or bare.
    assert_eq!(
        app.meta_with_cookie(&good).await.json()["session"],
        json!({"user": "ada"})
    );
    if fx.store != StoreKind::Plain {
        assert_eq!(
            app.meta_with_cookie(&bare).await.json()["session"],
            json!({"user": "ada"})
        );
    }
}

/// A cookie from a server with another key (or another server store) is
/// not accepted.
pub async fn other_key_gives_fresh_session<F: Framework>(fx: Fixture<F>) {
    let mut a = fx.app().await;
    a.post("/set", json!({"user": "ada"})).await;
    let cookie = a.jar.clone().expect("cookie");
    let b = fx.app_keyed(KEY_B, |b| b).await;
    let meta = b.meta_with_cookie(&cookie).await;
    assert_eq!(meta.status, 200);
    if fx.store == StoreKind::Plain {
        // Nothing seals a plain cookie: any server reads it (tests only).
        assert_eq!(meta.json()["session"], json!({"user": "ada"}));
    } else if fx.store.is_shared() {
        // A second app process on the same Redis/memcached server shares
        // the session: that is what server stores are for.
        assert_eq!(
            meta.json()["session"],
            json!({"user": "ada"}),
            "[{}]",
            a.label
        );
    } else {
        assert_eq!(meta.json()["session"], json!({}), "[{}]", a.label);
        assert_eq!(meta.json()["new"], true);
    }
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
            "SID=\"\"; Domain=example.test; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
        );
    }
}

// --- Concurrent requests of one session (server stores) ----------------------

/// The `Cookie` header an app's jar sends.
fn cookie_header(app: &App) -> String {
    format!(
        "{}={}",
        app.cookie_name,
        app.jar.as_deref().expect("a session cookie")
    )
}

/// The cookie value a Set-Cookie line sets (`None` for a removal).
fn set_value(app: &App, line: &str) -> Option<String> {
    let rest = line.strip_prefix(&format!("{}=", app.cookie_name))?;
    (!line.contains("Max-Age=0")).then(|| split_value(rest).to_owned())
}

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
