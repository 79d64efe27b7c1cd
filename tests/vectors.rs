//! Known-answer vectors written by the real aiohttp-session
//! (`tests/interop/gen_vectors.py`, pinned time, IV and nonce; the output is
//! committed as `tests/interop/vectors.json`).
//!
//! Every vector is decoded through the session manager with the vector's
//! clock and options. Every vector that Python wrote a `Set-Cookie` for is
//! also re-encoded — record and header — to the same bytes, and its token
//! opened to the record; the byte-exact re-seal of the tokens (Python's
//! pinned IV or nonce) is each sealer's unit test
//! `python_vectors_re_seal_byte_for_byte`, since no public API seals with a
//! chosen IV or nonce.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "tests"
)]

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use http_session::stores::{Fernet, FernetKey, NaCl, NaClKey, Sealer};
use http_session::{
    render_removal, render_set_cookie, Codec, CookieStore, JsonCodec, PlainStore, Record, SameSite,
    SessionManager, SessionManagerBuilder,
};
use serde_json::{Map, Value};

/// Where this crate deliberately differs from aiohttp-session on a vector
/// (README, "Compatibility with aiohttp-session").
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "simple-json-null",
        "a `null` plain cookie: Python loads it as not new and empty; we give a fresh (new) session",
    ),
    (
        "simple-created-future",
        "`created` far in the future: Python keeps the session; we refuse it beyond the 60 s skew",
    ),
    (
        "nacl-created-future",
        "`created` far in the future: Python keeps the session; we refuse it beyond the 60 s skew",
    ),
];

fn vectors() -> Vec<Value> {
    let text = include_str!("interop/vectors.json");
    let Value::Array(list) = serde_json::from_str(text).unwrap() else {
        panic!("vectors.json is not a list")
    };
    assert!(
        list.len() >= 80,
        "expected the full vector set, got {}",
        list.len()
    );
    list
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    &v[key]
}

fn options(v: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    v["options"]
        .as_object()
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

fn configure(v: &Value, builder: SessionManagerBuilder) -> SessionManagerBuilder {
    let now = v["now"].as_u64().unwrap();
    let mut b = builder
        .clock(move || now)
        .max_age_opt(v["max_age"].as_u64());
    let opts = options(v);
    if let Some(name) = opts.get("cookie_name").and_then(Value::as_str) {
        b = b.cookie_name(name);
    }
    if let Some(domain) = opts.get("domain").and_then(Value::as_str) {
        b = b.domain(domain);
    }
    if let Some(path) = opts.get("path").and_then(Value::as_str) {
        b = b.path(path);
    }
    if let Some(secure) = opts.get("secure").and_then(Value::as_bool) {
        b = b.secure(secure);
    }
    if let Some(http_only) = opts.get("httponly").and_then(Value::as_bool) {
        b = b.http_only(http_only);
    }
    if let Some(same_site) = opts.get("samesite").and_then(Value::as_str) {
        b = b.same_site(same_site.parse::<SameSite>().unwrap());
    }
    b
}

fn manager(v: &Value) -> SessionManager {
    let key = hex(v["key_hex"].as_str().unwrap());
    let builder = match v["storage"].as_str().unwrap() {
        "simple" => SessionManager::builder(PlainStore::plain()),
        "fernet" => SessionManager::builder(CookieStore::new(Fernet::new(
            &FernetKey::from_bytes(&key).unwrap(),
        ))),
        "nacl" => SessionManager::builder(CookieStore::new(NaCl::new(
            &NaClKey::from_bytes(&key).unwrap(),
        ))),
        other => panic!("unknown storage {other}"),
    };
    configure(v, builder).build().unwrap()
}

#[tokio::test]
async fn every_vector_decodes_as_python_says() {
    let mut checked = 0;
    for v in vectors() {
        let name = v["name"].as_str().unwrap();
        let manager = manager(&v);
        let header = format!(
            "{}={}",
            manager.config().name(),
            v["cookie"].as_str().unwrap()
        );
        let lazy = manager.start([header.as_bytes()]);
        let session = lazy.get().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let expect = field(&v, "expect");
        if let Some((_, why)) = DIFFERENCES.iter().find(|(n, _)| *n == name) {
            assert!(session.is_new() && session.is_empty(), "{name}: {why}");
        } else if expect["fresh"] == Value::Bool(true) {
            assert!(session.is_new(), "{name}: expected a fresh session");
            assert!(session.is_empty(), "{name}: expected a fresh session");
        } else {
            assert_eq!(Value::Bool(session.is_new()), expect["new"], "{name}: new");
            assert_eq!(
                Value::Object(session.to_map()),
                expect["session"],
                "{name}: session"
            );
            if let Some(created) = expect.get("created") {
                assert_eq!(
                    Value::Number(session.created_number()),
                    *created,
                    "{name}: created"
                );
            }
        }
        // Loading never writes.
        assert!(lazy.finish().await.unwrap().is_none(), "{name}");
        checked += 1;
    }
    assert!(checked >= 80);
}

#[test]
fn python_written_records_re_encode_to_the_same_bytes() {
    let mut checked = 0;
    for v in vectors() {
        let name = v["name"].as_str().unwrap();
        let Some(set_cookie) = v["set_cookie"].as_str() else {
            continue;
        };
        let manager = manager(&v);
        let config = manager.config();
        let now = v["now"].as_u64().unwrap();
        if v["plaintext"].as_str() == Some("") {
            // An empty encrypted session: the deletion cookie, which also
            // carries `SameSite` and `Secure` where the session cookie has
            // them (aiohttp's omits them, and browsers then ignore it).
            let mut expected = set_cookie.to_owned();
            if let Some(same_site) = config.same_site() {
                expected.push_str(&format!("; SameSite={same_site}"));
            }
            if config.secure() {
                expected.push_str("; Secure");
            }
            assert_eq!(render_removal(config), expected, "{name}: deletion cookie");
            checked += 1;
            continue;
        }
        let plaintext = v["plaintext"].as_str().unwrap();
        // The record, re-encoded by our codec, is Python's json.dumps output.
        let document: Value = serde_json::from_str(plaintext).unwrap();
        let empty = Map::new();
        let (created, session) = match &document {
            Value::Object(o) if o.is_empty() => (serde_json::Number::from(0), &empty),
            Value::Object(o) => (
                o["created"].as_number().unwrap().clone(),
                o["session"].as_object().unwrap(),
            ),
            _ => panic!("{name}: record is not an object"),
        };
        let encoded = JsonCodec
            .encode(&Record {
                created: &created,
                session,
                meta: None,
            })
            .unwrap();
        assert_eq!(
            String::from_utf8(encoded.clone()).unwrap(),
            plaintext,
            "{name}: record bytes"
        );
        // The seal. Python's token opens to our record bytes, and our seal
        // of them has the same layout (the Fernet version and timestamp
        // bytes, the length). The byte-exact re-seal with Python's pinned
        // IV or nonce needs the sealers' internals: it is the unit test
        // `python_vectors_re_seal_byte_for_byte` of each sealer.
        let key = hex(v["key_hex"].as_str().unwrap());
        let python = v["token"].as_str().unwrap();
        let token = match v["storage"].as_str().unwrap() {
            "simple" => PlainStore::plain().sealer().seal(&encoded, now).unwrap(),
            "fernet" => {
                let ts = v["ts"].as_u64().unwrap();
                let fernet = Fernet::new(&FernetKey::from_bytes(&key).unwrap());
                assert_eq!(fernet.open(python, None, now).unwrap(), encoded, "{name}");
                let ours = fernet.seal(&encoded, ts).unwrap();
                let (a, b) = (
                    URL_SAFE.decode(&ours).unwrap(),
                    URL_SAFE.decode(python).unwrap(),
                );
                assert_eq!((&a[..9], a.len()), (&b[..9], b.len()), "{name}: layout");
                python.to_owned()
            }
            "nacl" => {
                let nacl = NaCl::new(&NaClKey::from_bytes(&key).unwrap());
                assert_eq!(nacl.open(python, None, now).unwrap(), encoded, "{name}");
                let ours = nacl.seal(&encoded, now).unwrap();
                assert_eq!(ours.len(), python.len(), "{name}: layout");
                python.to_owned()
            }
            other => panic!("{other}"),
        };
        assert_eq!(token, python, "{name}: token");
        // The header: a session max_age shows as `expires`; without it only
        // the storage Max-Age is sent.
        let session_max_age = set_cookie
            .contains("; expires=")
            .then(|| {
                set_cookie
                    .split("; Max-Age=")
                    .nth(1)
                    .and_then(|s| s.split(';').next())
                    .map(|n| n.parse::<u64>().unwrap())
            })
            .flatten();
        // Python saved at the token's timestamp (Fernet) or at `created`.
        let saved_at = v["ts"]
            .as_u64()
            .or(created.as_u64().filter(|c| *c > 0))
            .unwrap_or(now);
        let line = render_set_cookie(config, &token, session_max_age, saved_at).unwrap();
        assert_eq!(line, set_cookie, "{name}: Set-Cookie");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} vectors re-encoded");
}
