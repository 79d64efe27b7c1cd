//! Expiry semantics, compared with Python on the same inputs.

use super::*;

/// What one side did with a per-session `max_age`, as seen by a client
/// and by the store.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    cookie: (Option<i64>, Option<i64>),
    ttl: Option<i64>,
    other_side_meta_max_age: Value,
    other_side_session: Value,
}

async fn observe(pair: &mut Pair, kv: &mut Option<Kv>, writer: Side, path: &str) -> Observed {
    let reply = pair.send(writer, "POST", path, None).await;
    assert_eq!(reply.status, 200, "{writer:?} {path}: {}", reply.body);
    let cookie = set_cookie(&reply);
    let ttl = match kv {
        Some(kv) => {
            let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
            kv.get(&key).await.map(|(_, ttl)| ttl_bucket(ttl))
        }
        None => None,
    };
    let meta = pair.ok(writer.other(), "GET", "/meta", None).await;
    Observed {
        cookie: lifetime(&cookie),
        ttl,
        other_side_meta_max_age: meta["max_age"].clone(),
        other_side_session: meta["session"].clone(),
    }
}

/// Storage `max_age` 3600 vs a per-session 7 or `None`: the cookie's
/// Max-Age/expires and the server TTL follow the session value, the
/// reader applies the storage value.
#[tokio::test]
async fn per_session_max_age_vs_storage_max_age() {
    for storage in Storage::ALL {
        let mut results = Vec::new();
        for writer in [Side::Python, Side::Rust] {
            let mut pair = Pair::start(Framework::Axum, storage, &Opts::MATRIX);
            let mut kv = if storage.is_server() {
                Some(Kv::connect(storage).await)
            } else {
                None
            };
            pair.ok(writer, "POST", "/set", Some(json!({"a": 1}))).await;
            let steps = [
                observe(&mut pair, &mut kv, writer, "/touch").await,
                observe(&mut pair, &mut kv, writer, "/max_age?n=7").await,
                observe(&mut pair, &mut kv, writer, "/max_age?n=none").await,
                observe(&mut pair, &mut kv, writer, "/max_age?n=100000").await,
            ];
            results.push(steps);
        }
        let server = |n| storage.is_server().then_some(n);
        let expected = [
            ((Some(3600), Some(3600)), server(3600)),
            ((Some(7), Some(10)), server(10)),
            // Max-Age from the storage, no expires, no TTL.
            ((Some(3600), None), server(-1)),
            ((Some(100_000), Some(100_000)), server(100_000)),
        ];
        for (side, steps) in [Side::Python, Side::Rust].iter().zip(&results) {
            for (step, (cookie, ttl)) in steps.iter().zip(&expected) {
                assert_eq!(
                    (&step.cookie, &step.ttl),
                    (cookie, ttl),
                    "{storage:?} written by {side:?}"
                );
                assert_eq!(step.other_side_meta_max_age, 3600, "{storage:?}");
                assert_eq!(step.other_side_session, json!({"a": 1}), "{storage:?}");
            }
        }
        assert_eq!(results[0], results[1], "{storage:?}: Python vs Rust");
    }
}

/// Records of several ages, read by both sides with storage `max_age`
/// 3600: same `new`, `empty`, `session`, `created` and identity.
#[tokio::test]
async fn created_age_against_storage_max_age() {
    let t = now();
    let records = [
        (
            format!(r#"{{"created": {}, "session": {{"a": 1}}}}"#, t - 3000),
            "fresh enough",
        ),
        (
            format!(r#"{{"created": {}, "session": {{"a": 1}}}}"#, t - 7200),
            "too old",
        ),
        (
            format!(r#"{{"created": {}.5, "session": {{"a": 1}}}}"#, t - 10),
            "float created",
        ),
        (r#"{"session": {"a": 1}}"#.to_owned(), "no created"),
        (
            r#"{"created": 1700000000, "session": {}}"#.to_owned(),
            "old, empty",
        ),
        ("{}".to_owned(), "{}"),
    ];
    for storage in Storage::ALL {
        let py = python_app(storage, &Opts::MATRIX);
        let rs = rust_app(Framework::Axum, storage, &Opts::MATRIX);
        let mut kv = if storage.is_server() {
            Some(Kv::connect(storage).await)
        } else {
            None
        };
        for (record, what) in &records {
            let mut metas = Vec::new();
            for app in [&py, &rs] {
                let cookie = match &mut kv {
                    Some(kv) => {
                        let id = random_id();
                        kv.set(&store_key(&Opts::MATRIX, &id), record.as_bytes(), 0)
                            .await;
                        id
                    }
                    None => seal(storage, record.as_bytes()),
                };
                let reply = with_cookie(app, "GET", "/meta", Some(&cookie)).await;
                assert_eq!(reply.status, 200, "{storage:?} {what} {}", app.label);
                let mut meta = reply.json();
                if meta["identity"] == json!(cookie) {
                    meta["identity"] = json!("<the cookie's id>");
                }
                let created = meta["created"].as_f64().unwrap();
                if (created - t as f64).abs() < 5.0 {
                    meta["created"] = json!("<now>");
                }
                metas.push(meta);
            }
            assert_eq!(metas[0], metas[1], "{storage:?}, {what}: Python vs Rust");
        }
    }
}

/// Fernet's TTL (storage max_age 3600): older than max_age or more than
/// 60 s ahead is rejected; without a max_age nothing is.
#[tokio::test]
async fn fernet_ttl() {
    let t = now();
    let record = format!(r#"{{"created": {t}, "session": {{"a": 1}}}}"#);
    let cases = [
        (Opts::MATRIX, t - 3700, true),
        (Opts::MATRIX, t - 3500, false),
        (Opts::MATRIX, t + 30, false),
        (Opts::MATRIX, t + 120, true),
        (Opts::DEFAULTS, t - 1_000_000, false),
        (Opts::DEFAULTS, t + 100_000, false),
    ];
    for (opts, ts, rejected) in cases {
        let token = seal_at(Storage::Fernet, record.as_bytes(), ts);
        let py = python_app(Storage::Fernet, &opts);
        let rs = rust_app(Framework::Axum, Storage::Fernet, &opts);
        for app in [&py, &rs] {
            let meta = with_cookie(app, "GET", "/meta", Some(&token)).await.json();
            let what = format!(
                "{} max_age {:?}, ts now{:+}",
                app.label,
                opts.max_age,
                ts as i64 - t as i64
            );
            assert_eq!(meta["new"], rejected, "{what}");
            let session = if rejected { json!({}) } else { json!({"a": 1}) };
            assert_eq!(meta["session"], session, "{what}");
        }
    }
}

/// Redis TTL = the session's max_age; none without one.
#[tokio::test]
async fn redis_ttl() {
    for opts in [Opts::MATRIX, Opts::DEFAULTS] {
        let mut kv = Kv::connect(Storage::Redis).await;
        let mut ttls = Vec::new();
        for writer in [Side::Python, Side::Rust] {
            let mut pair = Pair::start(Framework::Axum, Storage::Redis, &opts);
            let mut seen = Vec::new();
            for path in [
                "/set",
                "/max_age?n=7",
                "/max_age?n=none",
                "/max_age?n=2592001",
            ] {
                let body = (path == "/set").then(|| json!({"a": 1}));
                pair.ok(writer, "POST", path, body).await;
                let key = store_key(&opts, pair.jar.as_ref().unwrap());
                let (_, ttl) = kv.get(&key).await.expect("record");
                seen.push(ttl_bucket(ttl));
            }
            ttls.push(seen);
        }
        let storage_ttl = opts.max_age.map_or(-1, |n| i64::try_from(n).unwrap());
        assert_eq!(
            ttls[0],
            vec![storage_ttl, 10, -1, 2_592_000],
            "Python, {opts:?}"
        );
        assert_eq!(ttls[0], ttls[1], "Python vs Rust, {opts:?}");
    }
}

/// memcached: a max_age up to 30 days is sent relative, beyond that as
/// an absolute time; either way the item lives max_age seconds and the
/// other side can read it.
#[tokio::test]
async fn memcached_30_day_rule() {
    let mut kv = Kv::connect(Storage::Memcached).await;
    let ages: [u64; 5] = [120, 2_592_000, 2_592_001, 2_678_400, 3_000_000];
    let mut ttls = Vec::new();
    for writer in [Side::Python, Side::Rust] {
        let mut pair = Pair::start(Framework::Axum, Storage::Memcached, &Opts::MATRIX);
        pair.ok(writer, "POST", "/set", Some(json!({"a": 1}))).await;
        let mut seen = Vec::new();
        for n in ages {
            pair.ok(writer, "POST", &format!("/max_age?n={n}"), None)
                .await;
            let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
            let (_, ttl) = kv.get(&key).await.expect("item still there");
            let n = i64::try_from(n).unwrap();
            // memcached's clock ticks once a second, so an absolute time
            // can come back a second or two long.
            assert!(
                (n - 3..=n + 3).contains(&ttl),
                "{writer:?} max_age {n}: TTL {ttl}"
            );
            seen.push(ttl_bucket(ttl));
            let read = pair.ok(writer.other(), "GET", "/get", None).await;
            assert_eq!(read, json!({"a": 1}), "{writer:?} max_age {n}");
        }
        pair.ok(writer, "POST", "/max_age?n=none", None).await;
        let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
        seen.push(kv.get(&key).await.expect("item").1);
        ttls.push(seen);
    }
    assert_eq!(ttls[0].last(), Some(&-1), "no max_age: never expires");
    assert_eq!(ttls[0], ttls[1], "Python vs Rust");
}
