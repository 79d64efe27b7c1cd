//! The conformance cases: each runs against one framework x store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::harness::{request, split_value, App, Fixture, Framework, StoreKind, TestClock, KEY_B};

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
            "SID=\"\"; Domain=example.test; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; \
             Path=/; SameSite=Strict; Secure"
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

// --- Expiry (every store, a pinned clock) --------------------------------------

/// The session's data as `/get` sees it with the jar's cookie.
async fn data(app: &mut App) -> Value {
    app.get("/get").await.json()
}

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
        assert_eq!(
            app.get("/get").await.set_cookies,
            Vec::<String>::new(),
            "[{}]",
            app.label
        );
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let refreshed = app.get("/get").await;
        let line = refreshed.set_cookie().expect("a refresh").to_owned();
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

/// A small deterministic generator for the mutation run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of a `Cookie` header value, the kind a browser, a proxy or
/// an attacker produces (control characters, which no HTTP client can
/// send in a header, left out).
fn mutate(rng: &mut XorShift, name: &str, value: &str) -> String {
    let header = mutate_raw(rng, name, value);
    header
        .chars()
        .filter(|c| *c == '\t' || !c.is_ascii_control())
        .collect()
}

fn mutate_raw(rng: &mut XorShift, name: &str, value: &str) -> String {
    const NOISE: &[&str] = &[
        "\"",
        "\\",
        ";",
        ",",
        "=",
        " ",
        "\t",
        "\\054",
        "\\073",
        "\\377",
        "%",
        "+",
        "/",
        "-",
        "_",
        "\u{e9}",
        "\u{1f600}",
    ];
    let mut bytes = value.as_bytes().to_vec();
    match rng.below(9) {
        0 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] ^= 1 << rng.below(7);
        }
        1 => bytes.truncate(rng.below(bytes.len() + 1)),
        2 => {
            let at = rng.below(bytes.len() + 1);
            let noise = NOISE[rng.below(NOISE.len())];
            bytes.splice(at..at, noise.bytes());
        }
        3 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes.remove(at);
        }
        4 => bytes = bytes.iter().map(|b| b.to_ascii_uppercase()).collect(),
        5 => {
            let swapped = String::from_utf8_lossy(&bytes)
                .replace('-', "+")
                .replace('_', "/")
                .replace('+', "-");
            bytes = swapped.into_bytes();
        }
        6 => bytes.extend(std::iter::repeat_n(b'A', rng.below(6000))),
        7 => {
            // The name twice, the mutated value last (the last one wins).
            let junk = NOISE[rng.below(NOISE.len())];
            return format!(
                "{name}={value}; {name}={junk}{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        _ => {
            let end = bytes.len();
            let len = rng.below(end + 1);
            bytes.rotate_left(len.min(end));
        }
    }
    format!("{name}={}", String::from_utf8_lossy(&bytes))
}

/// The token a cookie value spells, as Python reads it: `"…"` unquoted
/// (`\NNN` octal, `\X`), and for Fernet the URL-safe alphabet.
fn canonical(store: StoreKind, value: &str) -> String {
    let value = value.trim();
    // A bare value ends at the first `;`.
    let value = if value.starts_with('"') {
        value
    } else {
        value.split(';').next().unwrap_or("").trim()
    };
    let token = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = Vec::new();
            let bytes = inner.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                let octal = bytes.get(i + 1..i + 4).filter(|d| {
                    (b'0'..=b'3').contains(&d[0])
                        && d[1..].iter().all(|c| (b'0'..=b'7').contains(c))
                });
                match (bytes[i], octal) {
                    (b'\\', Some(d)) => {
                        out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                        i += 4;
                    }
                    (b'\\', None) if i + 1 < bytes.len() => {
                        out.push(bytes[i + 1]);
                        i += 2;
                    }
                    (b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        None => value.to_owned(),
    };
    if store == StoreKind::Fernet {
        token.replace('+', "-").replace('/', "_")
    } else {
        token
    }
}

/// 300 mutations (`HTTP_SESSION_MUTATIONS=N`: N) of a valid session cookie over HTTP: every answer is a
/// 2xx, and every mutated cookie that is not the original token gives a
/// fresh session with no data (for the plain store, which anyone can forge,
/// only the 2xx: a mutation may well be another valid session).
pub async fn mutated_cookies_get_fresh_sessions<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    app.post("/set", json!({"user": "ada", "n": 7})).await;
    let good = app.jar.clone().expect("a cookie");
    // HTTP_SESSION_MUTATIONS=N runs N rounds (and another seed) instead.
    let rounds: u64 = std::env::var("HTTP_SESSION_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ good.len() as u64 ^ rounds);
    for round in 0..rounds {
        let header = mutate(&mut rng, &app.cookie_name, &good);
        let reply = app.raw("GET", "/meta", Some(&header), Vec::new()).await;
        assert!(
            (200..300).contains(&reply.status),
            "[{}] round {round}: {} for Cookie {header:?}: {}",
            app.label,
            reply.status,
            reply.body
        );
        if fx.store == StoreKind::Plain {
            continue;
        }
        let sent = header
            .rsplit(&format!("{}=", app.cookie_name))
            .next()
            .unwrap_or("");
        let meta = reply.json();
        // Another spelling of the same token (an escape of a plain
        // character, Fernet's other base64 alphabet) is the same session.
        if canonical(fx.store, sent) == canonical(fx.store, &good) {
            continue;
        }
        assert_eq!(
            meta["session"],
            json!({}),
            "[{}] round {round}: {header:?}",
            app.label
        );
        assert_eq!(
            meta["new"], true,
            "[{}] round {round}: {header:?}",
            app.label
        );
    }
}

// --- Who is logged in where --------------------------------------------------

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
    async fn send(
        &mut self,
        app: &mut App,
        i: usize,
        method: &str,
        path: &str,
    ) -> crate::harness::Reply {
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
