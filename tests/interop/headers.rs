//! Header-level equality: `Set-Cookie` attribute set and order, deletion cookie, quoted and bare tokens.

use super::*;

/// The same requests on both sides, one jar each: every `Set-Cookie`
/// must match (attributes and their order, value form, deletion
/// cookie byte for byte).
async fn compare(storage: Storage, opts: Opts) {
    // Back to the storage max_age after setting the session's own: we keep
    // a session's max_age across requests, Python does not (see
    // `differences::own_max_age_is_kept_across_requests`).
    let storage_max_age = match opts.max_age {
        Some(n) => format!("/max_age?n={n}"),
        None => "/max_age?n=none".to_owned(),
    };
    let mut steps: Vec<(&str, Option<Value>)> = vec![
        (
            "/set",
            Some(json!({"user": "ada", "tags": ["a;b", "c,d"], "é": "\"q\""})),
        ),
        ("/set", Some(json!({"n": 2}))),
        ("/max_age?n=7", None),
        ("/max_age?n=none", None),
        (&storage_max_age, None),
        ("/touch", None),
        ("/del?key=n", None),
        ("/clear", None),
        // A new, empty session marked changed: a removal (sealed), `{}`
        // (plain); server stores differ, see `differences`.
        ("/touch", None),
    ];
    if !storage.is_server() {
        // Expires at once; for Redis aiohttp-session fails (see
        // `differences::per_session_max_age_zero`).
        steps.insert(7, ("/max_age?n=0", None));
    } else {
        steps.pop();
    }
    for framework in Framework::ALL {
        let mut py = python_app(storage, &opts);
        let mut rs = rust_app(framework, storage, &opts);
        for (path, body) in &steps {
            let a = py.send("POST", path, body.clone()).await;
            let b = rs.send("POST", path, body.clone()).await;
            let what = format!("{framework:?} POST {path}");
            assert_eq!((a.status, b.status), (200, 200), "{what}: {a:?} {b:?}");
            // Every step changes the session: one Set-Cookie each.
            let (Some(x), Some(y)) = (a.set_cookie(), b.set_cookie()) else {
                panic!("{what}: a Set-Cookie from both sides: {a:?} {b:?}");
            };
            assert_same_set_cookie(storage, x, y, &what);
        }
    }
}

#[tokio::test]
async fn max_age_and_samesite_lax_every_storage() {
    for storage in Storage::ALL {
        compare(storage, Opts::MATRIX).await;
    }
}

#[tokio::test]
async fn defaults_every_storage() {
    for storage in Storage::ALL {
        compare(storage, Opts::DEFAULTS).await;
    }
}

#[tokio::test]
async fn domain_secure_cookie_name() {
    let opts = Opts {
        domain: Some("example.test"),
        secure: true,
        cookie_name: Some("SID"),
        ..Opts::DEFAULTS
    };
    for storage in [Storage::Fernet, Storage::Redis] {
        compare(storage, opts).await;
    }
}

#[tokio::test]
async fn every_attribute_samesite_strict() {
    let opts = Opts {
        max_age: Some(60),
        samesite: Some("Strict"),
        secure: true,
        domain: Some("example.test"),
        cookie_name: Some("SID"),
        ..Opts::DEFAULTS
    };
    for storage in [Storage::NaCl, Storage::Memcached] {
        compare(storage, opts).await;
    }
}

#[tokio::test]
async fn samesite_none_secure() {
    let opts = Opts {
        samesite: Some("None"),
        secure: true,
        ..Opts::DEFAULTS
    };
    compare(Storage::Simple, opts).await;
}

/// The exact deletion cookie, as aiohttp sends it (no HttpOnly, Secure
/// or SameSite; Domain and Path kept), when the session cookie has no
/// `Secure`, `SameSite` or `Partitioned`. With them, ours carries them
/// (see `differences::deletion_cookie_with_secure_and_samesite`).
#[tokio::test]
async fn deletion_cookie_is_aiohttps() {
    let opts = Opts {
        domain: Some("example.test"),
        cookie_name: Some("SID"),
        max_age: Some(60),
        ..Opts::DEFAULTS
    };
    for framework in Framework::ALL {
        let mut py = python_app(Storage::Fernet, &opts);
        let mut rs = rust_app(framework, Storage::Fernet, &opts);
        for app in [&mut py, &mut rs] {
            app.post("/set", json!({"a": 1})).await;
            let reply = app.post("/clear", json!(null)).await;
            assert_eq!(
                reply.set_cookie(),
                Some(
                    "SID=\"\"; Domain=example.test; expires=Thu, 01 Jan 1970 00:00:00 GMT; \
                     Max-Age=0; Path=/"
                ),
                "{}",
                app.label
            );
        }
    }
}

/// Fernet and NaCl tokens are read back quoted (as Set-Cookie sent
/// them, and as browsers and curl return them) and bare, by both sides.
#[tokio::test]
async fn sealed_tokens_read_quoted_and_bare() {
    let value = json!({"k": "v;\"é", "pad": "x".repeat(300)});
    for storage in [Storage::Fernet, Storage::NaCl] {
        for framework in Framework::ALL {
            let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
            for writer in [Side::Python, Side::Rust] {
                pair.jar = None;
                pair.ok(writer, "POST", "/set", Some(value.clone())).await;
                let sent = pair.jar.clone().unwrap();
                let bare = py_unquote(&sent);
                let quoted = format!("\"{bare}\"");
                for reader in [Side::Python, Side::Rust] {
                    for form in [&bare, &quoted] {
                        let reply = with_cookie(pair.app(reader), "GET", "/get", Some(form)).await;
                        assert_eq!(
                            reply.json(),
                            value,
                            "{framework:?} {storage:?}: {writer:?} token, {reader:?} reads {}",
                            if form.starts_with('"') {
                                "quoted"
                            } else {
                                "bare"
                            }
                        );
                    }
                }
            }
        }
    }
}

/// Same outcome on both sides: a Fernet token in the standard base64
/// alphabet is accepted; a NaCl token in the URL-safe one is not; of
/// two cookies with the session's name, the last one wins.
#[tokio::test]
async fn alphabets_and_duplicate_cookies() {
    let value = json!({"pad": "y".repeat(400)});
    for framework in Framework::ALL {
        // Fernet tokens are URL-safe; the standard alphabet is accepted.
        let mut pair = Pair::start(framework, Storage::Fernet, &Opts::MATRIX);
        pair.ok(Side::Rust, "POST", "/set", Some(value.clone()))
            .await;
        let token = py_unquote(pair.jar.as_ref().unwrap());
        assert!(token.contains(['-', '_']), "{token}");
        let standard = py_quote(&token.replace('-', "+").replace('_', "/"));
        for side in [Side::Python, Side::Rust] {
            let reply = with_cookie(pair.app(side), "GET", "/get", Some(&standard)).await;
            assert_eq!(reply.json(), value, "{side:?} standard-alphabet Fernet");
        }

        // NaCl tokens are standard base64; the URL-safe form is rejected.
        let mut pair = Pair::start(framework, Storage::NaCl, &Opts::MATRIX);
        pair.ok(Side::Python, "POST", "/set", Some(value.clone()))
            .await;
        let token = py_unquote(pair.jar.as_ref().unwrap());
        assert!(token.contains(['+', '/']), "{token}");
        let url_safe = py_quote(&token.replace('+', "-").replace('/', "_"));
        for side in [Side::Python, Side::Rust] {
            let reply = with_cookie(pair.app(side), "GET", "/meta", Some(&url_safe)).await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.json()["new"], true, "{side:?} URL-safe NaCl");
        }

        // Two cookies with the session's name: the last one wins.
        let record = |w: u32| format!(r#"{{"created": {}, "session": {{"w": {w}}}}}"#, now());
        let first = seal(Storage::NaCl, record(1).as_bytes());
        let last = seal(Storage::NaCl, record(2).as_bytes());
        let header = format!("AIOHTTP_SESSION={first}; other=1; AIOHTTP_SESSION={last}");
        for side in [Side::Python, Side::Rust] {
            let reply = pair
                .app(side)
                .raw("GET", "/get", Some(&header), Vec::new())
                .await;
            assert_eq!(reply.json(), json!({"w": 2}), "{side:?} last cookie wins");
        }
    }
}
