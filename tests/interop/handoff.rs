//! The live matrix: 3 frameworks x 5 storages x 2 directions.

use super::*;

/// Values that stress the JSON and cookie encodings.
fn rich_values() -> Value {
    json!({
        "accents": "café crème brûlée, naïve Ærøskøbing, Ωmega",
        "cjk": "日本語のテキスト 中文 한국어",
        "emoji": "😀🎉 👍🏽 👨‍👩‍👧 🇫🇷",
        "separators": "a;b,c;;,, =x= ; Path=/; HttpOnly",
        "quotes": "say \"hi\" and 'bye' \"\"",
        "backslashes": "C:\\path\\to\\file \\\" \\054 \\073 \\u00e9 \\",
        "controls": "tab\tnewline\ncr\r nul\u{0} del\u{7f} c1\u{85}",
        "nested": {
            "list": [1, 2.5, [true, false, null], {"deep": {"deeper": ["x", {"y": []}]}}],
            "empty_obj": {},
            "empty_list": [],
        },
        "null": null,
        "floats": [0.1, -2.5, 1e-7, 1e100, 3.0, -0.0, 123456.789, 1.7976931348623157e308, 5e-324],
        "ints": [0, -1, i64::MAX, i64::MIN, u64::MAX],
        "bools": [true, false],
        "clé ünïcode 鍵 🔑": "a non-ASCII key",
        "": "the empty key",
    })
}

/// Keys in order, recursively: both sides keep insertion order.
fn key_order(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Value::Object(map) = value {
        for (k, v) in map {
            out.push(k.clone());
            out.extend(key_order(v).into_iter().map(|sub| format!("{k}.{sub}")));
        }
    }
    out
}

fn assert_same_session(got: &Value, want: &Value, what: &str) {
    assert_eq!(got, want, "{what}");
    assert_eq!(key_order(got), key_order(want), "{what}: key order");
}

/// A string of `ascii` characters after a mixed head (`é日😀;,"\` and a
/// space), for a payload near the cookie limit.
pub(crate) fn filler(ascii: usize) -> String {
    let mut s = String::from("é日😀;,\"\\ ");
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    s.extend((0..ascii).map(|i| char::from(alphabet[i % alphabet.len()])));
    s
}

/// The filler length whose cookie is as close to 4096 bytes as it gets in
/// each storage (the session is `{"marker": "new", "big": filler}`).
pub(crate) fn near_limit_filler(storage: Storage) -> String {
    filler(match storage {
        // The quoted JSON (`\"`, `\054`, `\\u00e9`) is the cookie.
        Storage::Simple => 3951,
        // Fernet: 4/3 x (57 + 16 x blocks), quoted when padded.
        Storage::Fernet => 2896,
        // NaCl: 4/3 x (40 + JSON), quoted.
        Storage::NaCl => 2922,
        // Server stores: the cookie is an id; the record is as large.
        Storage::Redis | Storage::Memcached => 3981,
    })
}

/// Set on one side, read on the other; update on the other, read back; new
/// session on one, read on the other; a payload near the cookie limit;
/// clear on one, read on the other. One jar throughout.
pub(crate) async fn hand_off(framework: &str, storage: &str, direction: Direction) {
    let framework = Framework::from_name(framework);
    let storage = Storage::from_name(storage);
    let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
    let (a, b) = match direction {
        Direction::PythonToRust => (Side::Python, Side::Rust),
        Direction::RustToPython => (Side::Rust, Side::Python),
    };
    let label = |step: &str| format!("{framework:?} {} {direction:?}: {step}", storage.name());

    // Set on A, read on B (a read sends no Set-Cookie).
    let rich = rich_values();
    let echoed = pair.ok(a, "POST", "/set", Some(rich.clone())).await;
    assert_same_session(&echoed, &rich, &label("set echo"));
    let first_cookie = pair.jar.clone().expect("a session cookie");
    let read = pair.send(b, "GET", "/get", None).await;
    assert_eq!(read.status, 200, "{}", label("read"));
    assert!(read.set_cookies.is_empty(), "{}", label("read-only"));
    assert_same_session(&read.json(), &rich, &label("read on the other side"));
    let meta = pair.ok(b, "GET", "/meta", None).await;
    assert_eq!(meta["new"], false, "{}", label("meta"));
    let created = meta["created"].as_i64().expect("an integer created");
    assert!(
        created.abs_diff(i64::try_from(now()).unwrap()) < 5,
        "{}",
        label("created")
    );
    let meta_a = pair.ok(a, "GET", "/meta", None).await;
    assert_eq!(meta_a["created"], created, "{}", label("same created"));
    assert_eq!(meta["max_age"], 3600, "{}", label("meta"));
    let identity = if storage.is_server() {
        Value::String(first_cookie.clone())
    } else {
        Value::Null
    };
    assert_eq!(meta["identity"], identity, "{}", label("identity"));

    // Update on B (set, overwrite, delete), read back on A.
    let mut expected = rich.clone();
    let update =
        json!({"accents": "überschrieben — ça marche", "step": 2, "list": [i64::MAX, "😀"]});
    for (k, v) in update.as_object().unwrap() {
        expected[k] = v.clone();
    }
    expected.as_object_mut().unwrap().shift_remove("null");
    pair.ok(b, "POST", "/set", Some(update)).await;
    let after_del = pair.ok(b, "POST", "/del?key=null", None).await;
    assert_same_session(&after_del, &expected, &label("update echo"));
    if storage.is_server() {
        assert_eq!(
            pair.jar.as_ref(),
            Some(&first_cookie),
            "{}",
            label("same id")
        );
    }
    let read = pair.ok(a, "GET", "/get", None).await;
    assert_same_session(&read, &expected, &label("read back"));

    // New session on A, read on B.
    let before = pair.jar.clone();
    assert_eq!(
        pair.ok(a, "GET", "/new", None).await,
        json!({"marker": "new"})
    );
    assert_ne!(pair.jar, before, "{}", label("a new cookie"));
    assert_eq!(
        pair.ok(b, "GET", "/get", None).await,
        json!({"marker": "new"}),
        "{}",
        label("new session read")
    );
    let meta = pair.ok(b, "GET", "/meta", None).await;
    assert_eq!(meta["new"], false, "{}", label("new session meta"));

    // A payload near the 4096-byte cookie limit: set on B, read on A.
    let big = near_limit_filler(storage);
    let reply = pair
        .send(b, "POST", "/set", Some(json!({ "big": big })))
        .await;
    assert_eq!(reply.status, 200, "{}: {}", label("big set"), reply.body);
    let cookie = set_cookie(&reply);
    if !storage.is_server() {
        let len = cookie.pair_len();
        assert!(
            (4096 - 40..=4096).contains(&len),
            "{}: cookie pair is {len} bytes",
            label("near the limit")
        );
    }
    assert_eq!(
        pair.ok(a, "GET", "/get", None).await,
        json!({"marker": "new", "big": big}),
        "{}",
        label("big read")
    );

    // Clear on A, read on B: an empty, new session; a stale copy of the
    // server-store cookie finds nothing either.
    let stale = pair.jar.clone().expect("cookie");
    assert_eq!(pair.ok(a, "POST", "/clear", None).await, json!({}));
    match storage {
        // SimpleCookieStorage writes `{}` instead of removing the cookie.
        Storage::Simple => assert_eq!(pair.jar.as_deref(), Some("\"{}\"")),
        _ => assert_eq!(pair.jar, None, "{}", label("cookie removed")),
    }
    let meta = pair.ok(b, "GET", "/meta", None).await;
    assert_eq!(meta["new"], true, "{}", label("cleared"));
    assert_eq!(meta["session"], json!({}), "{}", label("cleared"));
    if storage.is_server() {
        for side in [a, b] {
            let reply = with_cookie(pair.app(side), "GET", "/meta", Some(&stale)).await;
            assert_eq!(reply.json()["new"], true, "{}", label("stale id"));
            assert_eq!(reply.json()["session"], json!({}), "{}", label("stale id"));
        }
    }
}

/// Names one test per (framework, storage, direction), each calling
/// [`hand_off`].
macro_rules! handoff_tests {
    ($framework:ident: $($storage:ident),+) => {
        pub mod $framework {
            $(
                pub mod $storage {
                    use crate::handoff::hand_off;
                    use crate::Direction;

                    #[tokio::test]
                    async fn python_to_rust() {
                        hand_off(stringify!($framework), stringify!($storage), Direction::PythonToRust).await;
                    }

                    #[tokio::test]
                    async fn rust_to_python() {
                        hand_off(stringify!($framework), stringify!($storage), Direction::RustToPython).await;
                    }
                }
            )+
        }
    };
}

handoff_tests!(axum: simple, fernet, nacl, redis, memcached);
handoff_tests!(actix: simple, fernet, nacl, redis, memcached);
handoff_tests!(warp: simple, fernet, nacl, redis, memcached);
