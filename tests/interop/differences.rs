//! Deliberate differences: Python's behaviour and ours, side by side.

use super::*;
use crate::handoff::{filler, near_limit_filler};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_session::Session;

/// aiohttp-session answers 500 (Python `expect_500`) or loads an empty,
/// not-new session (`expect_empty_not_new`); we give a fresh session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PythonDoes {
    Error500,
    EmptyNotNew,
}

async fn assert_python_vs_fresh(py: &App, rs: &App, cookie: &str, python: PythonDoes, what: &str) {
    let a = with_cookie(py, "GET", "/meta", Some(cookie)).await;
    match python {
        PythonDoes::Error500 => assert_eq!(a.status, 500, "Python, {what}: {}", a.body),
        PythonDoes::EmptyNotNew => {
            assert_eq!(a.status, 200, "Python, {what}: {}", a.body);
            assert_eq!(a.json()["new"], false, "Python, {what}");
            assert_eq!(a.json()["session"], json!({}), "Python, {what}");
        }
    }
    let b = with_cookie(rs, "GET", "/meta", Some(cookie)).await;
    assert_eq!(b.status, 200, "{}, {what}: {}", rs.label, b.body);
    assert_eq!(b.json()["new"], true, "{}, {what}", rs.label);
    assert_eq!(b.json()["session"], json!({}), "{}, {what}", rs.label);
    assert_eq!(b.json()["identity"], Value::Null, "{}, {what}", rs.label);
}

/// Plain cookies that are not a session record: Python fails with 500
/// (or loads `null` as an empty, not-new session); we start fresh.
#[tokio::test]
async fn malformed_plain_cookie() {
    let cases = [
        ("notjson", PythonDoes::Error500),
        ("[1, 2]", PythonDoes::Error500),
        ("{\"created\": 1", PythonDoes::Error500),
        ("\"a string\"", PythonDoes::Error500),
        ("42", PythonDoes::Error500),
        ("", PythonDoes::Error500),
        ("null", PythonDoes::EmptyNotNew),
    ];
    for framework in Framework::ALL {
        let py = python_app(Storage::Simple, &Opts::MATRIX);
        let rs = rust_app(framework, Storage::Simple, &Opts::MATRIX);
        for (text, python) in cases {
            for cookie in [py_quote(text), format!("\"{text}\"")] {
                assert_python_vs_fresh(&py, &rs, &cookie, python, &format!("plain {cookie}")).await;
            }
        }
    }
}

/// Authentic Fernet and NaCl tokens whose plaintext is not a session
/// record: Python 500 (or `null`: empty, not new); we start fresh.
#[tokio::test]
async fn authentic_token_with_bad_record() {
    let cases: [(&[u8], PythonDoes); 5] = [
        (b"not json", PythonDoes::Error500),
        (b"[1, 2]", PythonDoes::Error500),
        (b"\xff\xfe{}", PythonDoes::Error500),
        (b"\"a string\"", PythonDoes::Error500),
        (b"null", PythonDoes::EmptyNotNew),
    ];
    for storage in [Storage::Fernet, Storage::NaCl] {
        let py = python_app(storage, &Opts::MATRIX);
        for framework in Framework::ALL {
            let rs = rust_app(framework, storage, &Opts::MATRIX);
            for (plaintext, python) in cases {
                let cookie = seal(storage, plaintext);
                let what = format!(
                    "{storage:?} sealing {:?}",
                    String::from_utf8_lossy(plaintext)
                );
                assert_python_vs_fresh(&py, &rs, &cookie, python, &what).await;
            }
        }
    }
}

/// Server-store records that are not a session: Python loads `notjson`
/// and `null` as an empty session that keeps the id (and saves under
/// it), fails with 500 on a list or bad UTF-8; we start fresh, with a
/// new id.
#[tokio::test]
async fn server_record_not_a_session() {
    let cases: [(&[u8], PythonDoes); 4] = [
        (b"notjson", PythonDoes::EmptyNotNew),
        (b"null", PythonDoes::EmptyNotNew),
        (b"[1, 2]", PythonDoes::Error500),
        (b"\xff\xfe", PythonDoes::Error500),
    ];
    for storage in [Storage::Redis, Storage::Memcached] {
        let mut kv = Kv::connect(storage).await;
        for framework in Framework::ALL {
            let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
            for (record, python) in cases {
                let id = random_id();
                let key = store_key(&Opts::MATRIX, &id);
                kv.set(&key, record, 0).await;
                let what = format!("{storage:?} record {:?}", String::from_utf8_lossy(record));
                let (py, rs) = (&pair.python, &pair.rust);
                assert_python_vs_fresh(py, rs, &id, python, &what).await;
                // Saving data: Python reuses the id, we make a new one.
                for side in [Side::Python, Side::Rust] {
                    if side == Side::Python && python == PythonDoes::Error500 {
                        continue;
                    }
                    let id = random_id();
                    kv.set(&store_key(&Opts::MATRIX, &id), record, 0).await;
                    pair.jar = Some(id.clone());
                    pair.ok(side, "POST", "/set", Some(json!({"b": 2}))).await;
                    let saved_under = pair.jar.clone().unwrap();
                    match side {
                        Side::Python => assert_eq!(saved_under, id, "Python, {what}"),
                        Side::Rust => assert_ne!(saved_under, id, "Rust, {what}"),
                    }
                }
            }
        }
    }
}

/// A record whose `created` is 0: both sides take its age as "now"
/// (so it is expired under a storage max_age and loads without one),
/// keep 0 as the session's `created`, and write 0 back on a save that
/// sets no key.
#[tokio::test]
async fn created_zero() {
    let record = br#"{"created": 0, "session": {"a": 1}}"#;
    for storage in [Storage::Simple, Storage::Redis] {
        let mut kv = if storage.is_server() {
            Some(Kv::connect(storage).await)
        } else {
            None
        };
        for opts in [Opts::MATRIX, Opts::DEFAULTS] {
            let py = python_app(storage, &opts);
            let rs = rust_app(Framework::Axum, storage, &opts);
            for app in [&py, &rs] {
                let what = format!("{} max_age {:?}", app.label, opts.max_age);
                let (cookie, key) = match &mut kv {
                    Some(kv) => {
                        let id = random_id();
                        let key = store_key(&opts, &id);
                        kv.set(&key, record, 0).await;
                        (id, Some(key))
                    }
                    None => (seal(storage, record), None),
                };
                let meta = with_cookie(app, "GET", "/meta", Some(&cookie)).await.json();
                assert_eq!(meta["new"], false, "{what}");
                let data = if opts.max_age.is_some() {
                    json!({})
                } else {
                    json!({"a": 1})
                };
                assert_eq!(meta["session"], data, "{what}");
                let mut created = vec![meta["created"].as_i64().unwrap()];
                if opts.max_age.is_none() {
                    // Saved without setting a key: which `created` is written?
                    let reply = with_cookie(app, "POST", "/touch", Some(&cookie)).await;
                    let saved: Value = match (&mut kv, key) {
                        (Some(kv), Some(key)) => {
                            let (value, _) = kv.get(&key).await.expect("record");
                            serde_json::from_slice(&value).unwrap()
                        }
                        _ => serde_json::from_str(&py_unquote(&set_cookie(&reply).value)).unwrap(),
                    };
                    created.push(saved["created"].as_i64().unwrap());
                }
                // Both keep 0 as `created` and write it back.
                assert!(created.iter().all(|c| *c == 0), "{what}: {created:?}");
            }
        }
    }
}

/// Invalidate on a server store: both remove the cookie; Python writes
/// `{}` to the old key (with the TTL), we delete it.
#[tokio::test]
async fn invalidate_on_server_stores() {
    for storage in [Storage::Redis, Storage::Memcached] {
        let mut kv = Kv::connect(storage).await;
        for framework in Framework::ALL {
            for side in [Side::Python, Side::Rust] {
                let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
                pair.ok(side, "POST", "/set", Some(json!({"a": 1}))).await;
                let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
                let reply = pair.send(side, "POST", "/clear", None).await;
                assert!(set_cookie(&reply).is_removal(), "{side:?}");
                let left = kv.get(&key).await;
                match side {
                    Side::Python => {
                        let (value, ttl) = left.expect("Python keeps the key");
                        assert_eq!(value, b"{}");
                        assert_eq!(ttl_bucket(ttl), 3600);
                    }
                    Side::Rust => assert_eq!(left, None, "{framework:?} {storage:?}"),
                }
            }
        }
    }
}

/// `new_session` / `renew` on a server store: Python keeps the old
/// record (a stolen old id still works), we delete it.
#[tokio::test]
async fn new_session_on_server_stores() {
    for storage in [Storage::Redis, Storage::Memcached] {
        let mut kv = Kv::connect(storage).await;
        for framework in Framework::ALL {
            for side in [Side::Python, Side::Rust] {
                let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
                pair.ok(side, "POST", "/set", Some(json!({"a": 1}))).await;
                let old = pair.jar.clone().unwrap();
                pair.ok(side, "GET", "/new", None).await;
                assert_ne!(pair.jar.as_ref(), Some(&old));
                let left = kv.get(&store_key(&Opts::MATRIX, &old)).await;
                let old_cookie_reads =
                    with_cookie(pair.app(side.other()), "GET", "/get", Some(&old))
                        .await
                        .json();
                match side {
                    Side::Python => {
                        assert!(left.is_some(), "Python keeps the old record");
                        assert_eq!(old_cookie_reads, json!({"a": 1}));
                    }
                    Side::Rust => {
                        assert_eq!(left, None, "{framework:?} {storage:?}");
                        assert_eq!(old_cookie_reads, json!({}));
                    }
                }
            }
        }
    }
}

/// An empty session saved on a server store (a new session marked
/// changed): Python sets a cookie with a new id and writes `{}` under
/// it; we write nothing and send the removal cookie.
#[tokio::test]
async fn empty_session_on_server_stores() {
    for storage in [Storage::Redis, Storage::Memcached] {
        let mut kv = Kv::connect(storage).await;
        for framework in Framework::ALL {
            let py = python_app(storage, &Opts::MATRIX);
            let rs = rust_app(framework, storage, &Opts::MATRIX);
            for path in ["/touch", "/clear", "/max_age?n=60"] {
                let a = with_cookie(&py, "POST", path, None).await;
                let cookie = set_cookie(&a);
                assert!(!cookie.is_removal(), "Python {path}");
                let (value, _) = kv
                    .get(&store_key(&Opts::MATRIX, &cookie.value))
                    .await
                    .expect("Python stores {}");
                assert_eq!(value, b"{}", "Python {path}");

                let b = with_cookie(&rs, "POST", path, None).await;
                assert!(set_cookie(&b).is_removal(), "{framework:?} {path}");
            }
        }
    }
}

/// A `Set-Cookie` over 4096 bytes: Python sends it (browsers drop it);
/// we answer an opaque 500 without a cookie.
#[tokio::test]
async fn set_cookie_over_4096_bytes() {
    for storage in [Storage::Simple, Storage::Fernet, Storage::NaCl] {
        let py = python_app(storage, &Opts::MATRIX);
        let body = json!({"marker": "new", "big": filler(near_limit_filler(storage).len() + 150)});
        let a = with_cookie_body(&py, "/set", None, &body).await;
        assert_eq!(a.status, 200);
        assert!(set_cookie(&a).pair_len() > 4096, "Python sends it");
        for framework in Framework::ALL {
            let rs = rust_app(framework, storage, &Opts::MATRIX);
            let b = with_cookie_body(&rs, "/set", None, &body).await;
            assert_eq!(b.status, 500, "{framework:?} {storage:?}");
            assert!(b.set_cookies.is_empty(), "{framework:?} {storage:?}");
            assert!(!b.body.contains("big"), "opaque body: {}", b.body);
        }
    }
}

/// A per-session max_age of 0 on a server store: Python fails on Redis
/// (`SET ... EX 0` is an error: 500, record untouched) and on memcached
/// stores the record with exptime 0, which memcached reads as "never
/// expires"; we delete the record. The cookie (Max-Age=0) is the same.
#[tokio::test]
async fn per_session_max_age_zero_on_server_stores() {
    for storage in [Storage::Redis, Storage::Memcached] {
        let mut kv = Kv::connect(storage).await;
        for side in [Side::Python, Side::Rust] {
            let mut pair = Pair::start(Framework::Axum, storage, &Opts::MATRIX);
            pair.ok(side, "POST", "/set", Some(json!({"a": 1}))).await;
            let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
            let reply = pair.send(side, "POST", "/max_age?n=0", None).await;
            let left = kv.get(&key).await;
            match (side, storage) {
                (Side::Python, Storage::Redis) => {
                    assert_eq!(reply.status, 500);
                    assert_eq!(ttl_bucket(left.expect("record kept").1), 3600);
                }
                (Side::Python, _) => {
                    assert_eq!(reply.status, 200);
                    assert_eq!(set_cookie(&reply).max_age(), Some(0));
                    assert_eq!(left.expect("record kept").1, -1, "never expires");
                }
                (Side::Rust, _) => {
                    assert_eq!(reply.status, 200);
                    assert_eq!(set_cookie(&reply).max_age(), Some(0));
                    assert_eq!(left, None, "{storage:?}: record deleted");
                }
            }
        }
    }
}

/// memcached's exptime: Python writes the TTL (3600), so on memcached's
/// once-a-second clock the item lives between 3599 and 3600 s; we write a
/// second more, so it lives at least its TTL. Shown on two writes that
/// fell within one tick of that clock: both records read back in the same
/// tick as Python's write (its TTL still reads the full 3600) show ours a
/// second longer. A tick between the steps spoils an attempt; five are
/// allowed.
#[tokio::test]
async fn memcached_items_live_a_second_beyond_their_ttl() {
    let mut kv = Kv::connect(Storage::Memcached).await;
    let mut python = Pair::start(Framework::Axum, Storage::Memcached, &Opts::MATRIX);
    let mut rust = Pair::start(Framework::Axum, Storage::Memcached, &Opts::MATRIX);
    let mut seen = Vec::new();
    for _ in 0..5 {
        python
            .ok(Side::Python, "POST", "/set", Some(json!({"a": 1})))
            .await;
        rust.ok(Side::Rust, "POST", "/set", Some(json!({"a": 1})))
            .await;
        let py_key = store_key(&Opts::MATRIX, python.jar.as_ref().unwrap());
        let rs_key = store_key(&Opts::MATRIX, rust.jar.as_ref().unwrap());
        let py_before = kv.get(&py_key).await.expect("Python's item").1;
        let ours = kv.get(&rs_key).await.expect("our item").1;
        let py_after = kv.get(&py_key).await.expect("Python's item").1;
        assert!(py_before <= 3600 && ours >= 3600, "{py_before} {ours}");
        seen.push((py_before, ours, py_after));
        if py_before == 3600 && py_after == 3600 {
            assert_eq!(ours, 3601, "{seen:?}");
            return;
        }
    }
    panic!("a memcached tick fell inside every attempt: {seen:?}");
}

/// memcached items with non-zero flags (written by another client):
/// aiomcache refuses them (500); we read the value like any other.
#[tokio::test]
async fn memcached_item_flags() {
    let mut kv = Kv::connect(Storage::Memcached).await;
    let py = python_app(Storage::Memcached, &Opts::MATRIX);
    let rs = rust_app(Framework::Axum, Storage::Memcached, &Opts::MATRIX);
    let record = format!(r#"{{"created": {}, "session": {{"a": 1}}}}"#, now());
    let id = random_id();
    kv.set(&store_key(&Opts::MATRIX, &id), record.as_bytes(), 1)
        .await;
    assert_eq!(with_cookie(&py, "GET", "/get", Some(&id)).await.status, 500);
    assert_eq!(
        with_cookie(&rs, "GET", "/get", Some(&id)).await.json(),
        json!({"a": 1})
    );
}

/// Session ids memcached cannot take as keys (whitespace, over 250
/// bytes with the prefix): aiomcache raises (500); we start fresh. On
/// Redis both sides simply find nothing.
#[tokio::test]
async fn unusable_session_ids() {
    let ids = [py_quote("a b"), py_quote("tab\there"), "k".repeat(240)];
    for storage in [Storage::Memcached, Storage::Redis] {
        let py = python_app(storage, &Opts::MATRIX);
        let rs = rust_app(Framework::Axum, storage, &Opts::MATRIX);
        for id in &ids {
            let a = with_cookie(&py, "GET", "/meta", Some(id)).await;
            match storage {
                Storage::Memcached => assert_eq!(a.status, 500, "Python {id}"),
                _ => assert_eq!(a.json()["new"], true, "Python {id}"),
            }
            let b = with_cookie(&rs, "GET", "/meta", Some(id)).await;
            assert_eq!(b.json()["new"], true, "Rust {id}");
        }
    }
}

/// `NaN`, `Infinity` and `-Infinity` (Python's json writes and reads
/// them; they are not JSON): a session holding one is read by Python
/// and is a fresh session for us.
#[tokio::test]
async fn non_finite_floats() {
    for storage in Storage::ALL {
        let mut pair = Pair::start(Framework::Axum, storage, &Opts::MATRIX);
        let reply = pair
            .send_text(
                Side::Python,
                "/set",
                r#"{"x": NaN, "y": Infinity, "z": -Infinity, "ok": 1}"#,
            )
            .await;
        assert_eq!(reply.status, 200, "{storage:?}");
        let py = pair.send(Side::Python, "GET", "/get", None).await;
        assert_eq!(
            py.body,
            r#"{"x": NaN, "y": Infinity, "z": -Infinity, "ok": 1}"#
        );
        let rs = pair.ok(Side::Rust, "GET", "/meta", None).await;
        assert_eq!(rs["new"], true, "{storage:?}");
        assert_eq!(rs["session"], json!({}), "{storage:?}");
        // Our example server also refuses such a body (serde_json).
        let reply = pair.send_text(Side::Rust, "/set", r#"{"x": NaN}"#).await;
        assert_eq!(reply.status, 400, "{storage:?}");
    }
}

/// Integers beyond 64 bits: Python keeps them exact; we read them as
/// the nearest float (serde_json without `arbitrary_precision`) and
/// write that float back, which Python then reads as a float.
#[tokio::test]
async fn integers_beyond_64_bits() {
    let text = r#"{"big": 18446744073709551616, "neg": -9223372036854775809, "fits": 18446744073709551615}"#;
    for storage in Storage::ALL {
        let mut pair = Pair::start(Framework::Axum, storage, &Opts::MATRIX);
        assert_eq!(pair.send_text(Side::Python, "/set", text).await.status, 200);
        let py = pair.send(Side::Python, "GET", "/get", None).await;
        assert_eq!(py.body, text, "Python keeps them exact");
        let rs = pair.ok(Side::Rust, "GET", "/get", None).await;
        assert_eq!(
            rs["big"],
            json!(18_446_744_073_709_551_616.0_f64),
            "{storage:?}"
        );
        assert_eq!(
            rs["neg"],
            json!(-9_223_372_036_854_775_809.0_f64),
            "{storage:?}"
        );
        assert_eq!(rs["fits"], json!(u64::MAX), "{storage:?}");
        // Rewritten by us, read by Python: floats now.
        pair.ok(Side::Rust, "POST", "/touch", None).await;
        let py = pair.send(Side::Python, "GET", "/get", None).await;
        assert_eq!(
            py.body,
            r#"{"big": 1.8446744073709552e+19, "neg": -9.223372036854776e+18, "fits": 18446744073709551615}"#,
            "{storage:?}"
        );
    }
}

// `invalidate()` then new data in the same request. The example routes
// have no such request, so ours is served here, in process, with the
// same options as the Python server's `/clear_set`.

async fn clear_set(session: Session, body: Bytes) -> Response {
    session.invalidate();
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) {
        for (k, v) in map {
            session.insert_value(k, v);
        }
    }
    axum::Json(shared::routes::meta(&session)).into_response()
}

async fn example_routes(session: Session, method: Method, uri: Uri, body: Bytes) -> Response {
    let reply =
        shared::routes::dispatch(method.as_str(), uri.path(), uri.query(), &body, &session).await;
    let status = StatusCode::from_u16(reply.status).unwrap();
    (status, axum::Json(reply.body)).into_response()
}

async fn serve_with_clear_set(storage: Storage) -> App {
    let store = match storage {
        Storage::Redis => harness::StoreKind::Redis,
        _ => harness::StoreKind::Memcached,
    };
    let sessions = store
        .builder(key_bytes())
        .max_age(3600)
        .same_site(http_session::SameSite::Lax)
        .build()
        .unwrap();
    let router = axum::Router::new()
        .route("/clear_set", axum::routing::post(clear_set))
        .fallback(example_routes)
        .layer(http_session::axum::SessionLayer::new(sessions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    App {
        server: Server {
            addr,
            stop: Box::new(move || task.abort()),
        },
        cookie_name: Opts::MATRIX.cookie_name().to_owned(),
        jar: None,
        label: format!("in-process axum {}", storage.name()),
    }
}

/// Python's `invalidate()` keeps the identity: data set afterwards in
/// the same request is saved under the old id. Ours forgets it: the
/// old record is deleted and the data gets a new id.
#[tokio::test]
async fn invalidate_then_set_in_one_request() {
    for storage in [Storage::Redis, Storage::Memcached] {
        let mut kv = Kv::connect(storage).await;
        let mut pair = Pair {
            python: python_app(storage, &Opts::MATRIX),
            rust: serve_with_clear_set(storage).await,
            jar: None,
            storage,
        };
        for side in [Side::Python, Side::Rust] {
            pair.jar = None;
            pair.ok(side, "POST", "/set", Some(json!({"a": 1}))).await;
            let old = pair.jar.clone().unwrap();
            let meta = pair
                .ok(side, "POST", "/clear_set", Some(json!({"b": 2})))
                .await;
            let new = pair.jar.clone().unwrap();
            let old_record = kv.get(&store_key(&Opts::MATRIX, &old)).await;
            match side {
                Side::Python => {
                    assert_eq!(meta["identity"], json!(old), "{storage:?}");
                    assert_eq!(new, old);
                    let (value, _) = old_record.expect("record");
                    let value: Value = serde_json::from_slice(&value).unwrap();
                    assert_eq!(value["session"], json!({"b": 2}));
                }
                Side::Rust => {
                    assert_eq!(meta["identity"], Value::Null, "{storage:?}");
                    assert_ne!(new, old);
                    assert_eq!(old_record, None);
                }
            }
            // Either way the other side reads the new data.
            let read = pair.ok(side.other(), "GET", "/get", None).await;
            assert_eq!(read, json!({"b": 2}), "{storage:?} {side:?}");
        }
    }
}

/// A record whose `created` is an hour in the future (a node whose clock
/// runs ahead): Python loads it (and it would never expire); we refuse it
/// beyond the allowed skew of 60 s and start a fresh session.
#[tokio::test]
async fn created_in_the_future() {
    let record = format!(r#"{{"created": {}, "session": {{"a": 1}}}}"#, now() + 3600);
    for storage in [
        Storage::Simple,
        Storage::Fernet,
        Storage::NaCl,
        Storage::Redis,
    ] {
        let mut kv = if storage.is_server() {
            Some(Kv::connect(storage).await)
        } else {
            None
        };
        let py = python_app(storage, &Opts::MATRIX);
        let rs = rust_app(Framework::Axum, storage, &Opts::MATRIX);
        let cookie = match &mut kv {
            Some(kv) => {
                let id = random_id();
                kv.set(&store_key(&Opts::MATRIX, &id), record.as_bytes(), 0)
                    .await;
                id
            }
            None => seal(storage, record.as_bytes()),
        };
        let theirs = with_cookie(&py, "GET", "/meta", Some(&cookie)).await.json();
        assert_eq!(theirs["session"], json!({"a": 1}), "Python {storage:?}");
        assert_eq!(theirs["new"], false, "Python {storage:?}");
        let ours = with_cookie(&rs, "GET", "/meta", Some(&cookie)).await.json();
        assert_eq!(ours["session"], json!({}), "{} {storage:?}", rs.label);
        assert_eq!(ours["new"], true, "{} {storage:?}", rs.label);
    }
}

/// A session's own `max_age`: Python uses it for the cookie and the TTL of
/// the save it is set in, and loads the next request with the storage
/// `max_age` again; we keep it in the record (member `"http_session"`) for
/// later saves, and enforce it at load, also on cookie stores (a copied
/// cookie replayed after it passed gets a fresh session; Python accepts
/// the cookie until the storage `max_age` passes).
#[tokio::test]
async fn own_max_age_is_kept_across_requests() {
    for storage in [Storage::Fernet, Storage::Redis] {
        let mut py = python_app(storage, &Opts::MATRIX);
        let mut rs = rust_app(Framework::Axum, storage, &Opts::MATRIX);
        for app in [&mut py, &mut rs] {
            app.post("/set", json!({"sudo": true})).await;
            app.post("/max_age?n=2", json!(null)).await;
        }
        let copied = (py.jar.clone().unwrap(), rs.jar.clone().unwrap());
        // The next save of the session: Python is back on 3600.
        let theirs = py.post("/touch", json!(null)).await;
        let ours = rs.post("/touch", json!(null)).await;
        assert_eq!(
            set_cookie(&theirs).max_age(),
            Some(3600),
            "Python {storage:?}"
        );
        assert_eq!(set_cookie(&ours).max_age(), Some(2), "ours {storage:?}");
        // Replayed after the session's own max_age passed.
        tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
        let theirs = with_cookie(&py, "GET", "/get", Some(&copied.0))
            .await
            .json();
        let ours = with_cookie(&rs, "GET", "/get", Some(&copied.1))
            .await
            .json();
        // Python: its `/touch` saved with the storage max_age again (cookie
        // Max-Age / Redis EX 3600), so the session lives on.
        assert_eq!(theirs, json!({"sudo": true}), "Python {storage:?}");
        assert_eq!(ours, json!({}), "ours {storage:?}");
    }
}

/// The deletion cookie of a `Secure` / `SameSite` session cookie: aiohttp
/// sends it without those attributes, and browsers ignore a deletion
/// without `Secure` for a `Secure` cookie (logging out does not log out);
/// ours carries them.
#[tokio::test]
async fn deletion_cookie_with_secure_and_samesite() {
    let opts = Opts {
        secure: true,
        samesite: Some("Strict"),
        ..Opts::DEFAULTS
    };
    let mut py = python_app(Storage::Fernet, &opts);
    let mut rs = rust_app(Framework::Axum, Storage::Fernet, &opts);
    let mut removals = Vec::new();
    for app in [&mut py, &mut rs] {
        app.post("/set", json!({"a": 1})).await;
        let reply = app.post("/clear", json!(null)).await;
        removals.push(reply.set_cookie().expect("a removal").to_owned());
    }
    let removal = "AIOHTTP_SESSION=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/";
    assert_eq!(removals[0], removal, "Python");
    assert_eq!(
        removals[1],
        format!("{removal}; SameSite=Strict; Secure"),
        "ours"
    );
}
