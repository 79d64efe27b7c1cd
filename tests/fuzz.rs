//! Fuzzing on stable Rust: property tests over everything an attacker
//! controls, through the public API only.
//!
//! - `cookie_header_*`: raw `Cookie` headers (random bytes, and mutations
//!   of a valid header) through `SessionManager::start` and
//!   `LazySession::get`, for the Fernet, NaCl and memory stores;
//! - `store_load_*`: cookie values straight to each store's load (random
//!   strings, and mutations of a valid token or id): Plain, Fernet, NaCl,
//!   memory, and Redis and memcached on real servers
//!   (`HTTP_SESSION_REDIS_URL`, `HTTP_SESSION_MEMCACHED`; unset fails);
//! - `record_decode_*`: `JsonCodec::decode_record` on random bytes and on
//!   mutations of a valid record, against the whole-document decode;
//! - `set_cookie_round_trip` and `session_round_trip`: what
//!   `render_set_cookie` writes reads back through a `Cookie` header as the
//!   same value, and a random session map survives a full save and load in
//!   every cookie store.
//!
//! The rule: no panic, no error, and a fresh session for every input that
//! is not a valid session. An input valid by chance may load only if it
//! really is the session it claims (the original data of the token it was
//! mutated from; for the unauthenticated plain store, what the record
//! itself says).
//!
//! Each target runs 10,000 cases (about a minute for all of them in a debug
//! build); `PROPTEST_CASES` overrides it, for example the million cases of
//! the README's command:
//! `PROPTEST_CASES=1000000 cargo test --release --all-features --test fuzz`.
//! Failing inputs proptest finds are kept in `tests/fuzz.proptest-regressions`
//! (committed) and replayed first on every run; each bug found also has a
//! unit test of its own where it was fixed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "tests"
)]

use std::future::Future;
use std::sync::LazyLock;

use http_session::stores::{Fernet, NaCl};
use http_session::{
    render_set_cookie, Codec, CookieConfig, CookieStore, DecodedRecord, Error, FernetKey,
    JsonCodec, MemcachedStore, MemoryStore, NaClKey, PlainStore, Record, RedisStore, Session,
    SessionManager,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{json, Map, Number, Value};

/// The pinned clock: tokens are sealed and opened "now".
const NOW: u64 = 1_700_000_000;
const MAX_AGE: u64 = 3600;

fn config() -> Config {
    let mut config = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 10_000;
    }
    config
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the services (scripts/services.sh) or run scripts/test.sh")
    })
}

/// One store under test, with the session it holds and its valid cookie.
struct Target {
    name: &'static str,
    manager: SessionManager,
    /// The cookie value of `data` (unquoted).
    value: String,
    data: Map<String, Value>,
}

fn sample_data() -> Map<String, Value> {
    let Value::Object(map) = json!({"user": "ada", "n": 7, "roles": ["a", "b"], "q": "x\"y;z"})
    else {
        unreachable!()
    };
    map
}

fn build(name: &'static str, builder: http_session::SessionManagerBuilder) -> Target {
    let manager = builder.clock(|| NOW).max_age(MAX_AGE).build().unwrap();
    let data = sample_data();
    let lazy = manager.start_with_value(None);
    let line = block_on(async {
        let session = lazy.get().await.unwrap();
        for (k, v) in &data {
            session.insert_value(k.clone(), v.clone());
        }
        lazy.finish().await.unwrap().unwrap()
    });
    let value = cookie_value(manager.config(), line.to_str().unwrap()).unwrap();
    Target {
        name,
        manager,
        value,
        data,
    }
}

/// The value a `Set-Cookie` line sets, read back as a browser would send
/// it: the whole line as a `Cookie` header, through a plain store.
fn cookie_value(config: &CookieConfig, line: &str) -> Option<String> {
    let probe = SessionManager::builder(PlainStore::plain())
        .cookie_name(config.name())
        .codec(Raw)
        .build()
        .unwrap();
    let session = block_on(probe.start([line.as_bytes()]).get()).unwrap();
    session
        .get_value("v")
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// A codec whose record is the cookie value itself, as `{"v": value}`.
struct Raw;

impl Codec for Raw {
    fn encode(&self, record: &Record<'_>) -> Result<Vec<u8>, Error> {
        Ok(record.session["v"]
            .as_str()
            .unwrap_or_default()
            .as_bytes()
            .to_vec())
    }
    fn decode(&self, bytes: &[u8]) -> Result<Value, Error> {
        Ok(json!({"session": {"v": String::from_utf8_lossy(bytes)}}))
    }
}

static COOKIE_TARGETS: LazyLock<Vec<Target>> = LazyLock::new(|| {
    vec![
        build(
            "fernet",
            SessionManager::builder(CookieStore::new(Fernet::with_rotation(
                &FernetKey::from_bytes(&[7; 32]).unwrap(),
                [&FernetKey::from_bytes(&[6; 32]).unwrap()],
            ))),
        ),
        build(
            "nacl",
            SessionManager::builder(CookieStore::new(NaCl::with_rotation(
                &NaClKey::from_bytes(&[9; 32]).unwrap(),
                [&NaClKey::from_bytes(&[8; 32]).unwrap()],
            ))),
        ),
        build("memory", SessionManager::builder(MemoryStore::memory())),
    ]
});

static SERVER_TARGETS: LazyLock<Vec<Target>> = LazyLock::new(|| {
    let redis = block_on(async { RedisStore::redis(&env("HTTP_SESSION_REDIS_URL")) }).unwrap();
    let memcached = block_on(async { MemcachedStore::memcached(env("HTTP_SESSION_MEMCACHED")) });
    vec![
        build("redis", SessionManager::builder(redis).cookie_name("FUZZ")),
        build(
            "memcached",
            SessionManager::builder(memcached).cookie_name("FUZZ"),
        ),
    ]
});

/// A plain store without `max_age`: whatever decodes as a record loads.
static PLAIN: LazyLock<SessionManager> = LazyLock::new(|| {
    SessionManager::builder(PlainStore::plain())
        .clock(|| NOW)
        .build()
        .unwrap()
});

fn load(lazy: &http_session::LazySession) -> Session {
    block_on(lazy.get()).expect("a hostile cookie is never an error")
}

fn assert_fresh(target: &str, session: &Session) {
    assert!(
        session.is_new() && session.is_empty(),
        "{target}: not a fresh session: {:?}",
        session.to_map()
    );
}

/// Fresh, or exactly the session the input was made from.
fn assert_fresh_or_original(target: &Target, session: &Session) {
    if !session.is_new() {
        assert_eq!(
            session.to_map(),
            target.data,
            "{}: a mutated cookie loaded other data",
            target.name
        );
    } else {
        assert!(
            session.is_empty(),
            "{}: a new session with data",
            target.name
        );
    }
}

/// Byte edits: flip, insert, delete, truncate.
fn mutations() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    prop::collection::vec((0u8..4, any::<usize>(), any::<u8>()), 1..6)
}

fn mutate(base: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(op, at, byte) in edits {
        let len = out.len();
        match op {
            0 if len > 0 => out[at % len] ^= byte.max(1),
            1 => out.insert(at % (len + 1), byte),
            2 if len > 0 => {
                out.remove(at % len);
            }
            3 => out.truncate(at % (len + 1)),
            _ => out.push(byte),
        }
    }
    out
}

/// Mutations that keep the text UTF-8 (cookie values reach stores as
/// `&str`): edits of characters from a cookie-ish alphabet.
fn text_mutations() -> impl Strategy<Value = Vec<(u8, usize, char)>> {
    let chars = prop_oneof![
        prop::char::range('!', '~'),
        Just(' '),
        Just('"'),
        Just('\\'),
        Just(';'),
        any::<char>(),
    ];
    prop::collection::vec((0u8..4, any::<usize>(), chars), 1..6)
}

fn mutate_text(base: &str, edits: &[(u8, usize, char)]) -> String {
    let mut out: Vec<char> = base.chars().collect();
    for &(op, at, c) in edits {
        let len = out.len();
        match op {
            0 if len > 0 => out[at % len] = c,
            1 => out.insert(at % (len + 1), c),
            2 if len > 0 => {
                out.remove(at % len);
            }
            3 => out.truncate(at % (len + 1)),
            _ => out.push(c),
        }
    }
    out.into_iter().collect()
}

/// Random cookie values: arbitrary text, and text from the token alphabets.
fn values() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9+/=_-]{0,200}",
        "\"?[A-Za-z0-9+/=_\\\\\";, -]{0,120}\"?",
        "[0-9a-f]{30,34}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cookie_header_random_bytes(header in prop::collection::vec(any::<u8>(), 0..600)) {
        for target in COOKIE_TARGETS.iter() {
            let lazy = target.manager.start([header.as_slice()]);
            assert_fresh(target.name, &load(&lazy));
        }
    }

    #[test]
    fn cookie_header_random_pairs(
        prefix in "[ -~]{0,40}",
        value in values(),
        suffix in "[ -~]{0,40}",
    ) {
        for target in COOKIE_TARGETS.iter() {
            let header = format!("{prefix}{}={value}{suffix}", target.manager.config().name());
            let lazy = target.manager.start([header.as_bytes()]);
            let session = load(&lazy);
            assert_fresh_or_original(target, &session);
        }
    }

    #[test]
    fn cookie_header_mutations(edits in mutations(), quoted in any::<bool>()) {
        for target in COOKIE_TARGETS.iter() {
            let name = target.manager.config().name();
            let value = if quoted {
                format!("\"{}\"", target.value)
            } else {
                target.value.clone()
            };
            let header = format!("theme=dark; {name}={value}; lang=en");
            let mutated = mutate(header.as_bytes(), &edits);
            let lazy = target.manager.start([mutated.as_slice()]);
            assert_fresh_or_original(target, &load(&lazy));
        }
    }

    #[test]
    fn store_load_random_values(value in values()) {
        for target in COOKIE_TARGETS.iter() {
            let lazy = target.manager.start_with_value(Some(value.clone()));
            assert_fresh_or_original(target, &load(&lazy));
        }
        plain_matches_its_record(&value);
    }

    #[test]
    fn store_load_mutated_tokens(edits in text_mutations()) {
        for target in COOKIE_TARGETS.iter() {
            let mutated = mutate_text(&target.value, &edits);
            let lazy = target.manager.start_with_value(Some(mutated));
            assert_fresh_or_original(target, &load(&lazy));
        }
    }

    #[test]
    fn store_load_plain_mutated_records(edits in mutations()) {
        let record = br#"{"created": 1700000000, "session": {"user": "ada", "n": [1, 2.5, null]}}"#;
        let mutated = mutate(record, &edits);
        plain_matches_its_record(&String::from_utf8_lossy(&mutated));
    }

    #[test]
    fn store_load_server_stores(value in values(), edits in text_mutations()) {
        for target in SERVER_TARGETS.iter() {
            for candidate in [value.clone(), mutate_text(&target.value, &edits)] {
                let lazy = target.manager.start_with_value(Some(candidate));
                assert_fresh_or_original(target, &load(&lazy));
            }
        }
    }

    #[test]
    fn record_decode_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        decode_matches_whole_document(&bytes);
    }

    #[test]
    fn record_decode_mutated_records(edits in mutations()) {
        let record = br#"{"created": 1700000000.5, "session": {"k": "\u00e9\"", "n": [1, {"x": null}], "e": {}}, "extra": [true, false]}"#;
        decode_matches_whole_document(&mutate(record, &edits));
    }

    #[test]
    fn set_cookie_round_trip(value in values()) {
        let config = CookieConfig::default();
        if let Ok(line) = render_set_cookie(&config, &value, Some(60), NOW) {
            let back = cookie_value(&config, &line);
            prop_assert_eq!(back.as_deref(), Some(value.as_str()), "line: {}", line);
        }
    }

    #[test]
    fn session_round_trip(map in prop::collection::btree_map(any::<String>(), any::<String>(), 1..6)) {
        let data: Map<String, Value> = map.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        for target in COOKIE_TARGETS.iter().take(2) {
            let lazy = target.manager.start_with_value(None);
            let line = block_on(async {
                let session = lazy.get().await.unwrap();
                for (k, v) in &data {
                    session.insert_value(k.clone(), v.clone());
                }
                lazy.finish().await
            });
            let line = match line {
                Ok(line) => line.unwrap(),
                // Too large for a cookie: refused, not sent.
                Err(e) if e.kind() == http_session::ErrorKind::CookieTooLarge => continue,
                Err(e) => panic!("{}: {e}", target.name),
            };
            let lazy = target.manager.start([line.as_bytes()]);
            let session = load(&lazy);
            prop_assert!(!session.is_new(), "{}: {}", target.name, line.to_str().unwrap());
            prop_assert_eq!(session.to_map(), data.clone(), "{}", target.name);
        }
    }
}

/// The plain store loads exactly what the record says: the `session`
/// object of a JSON object (no `max_age`, so nothing expires by age), else
/// a fresh session; so is a record whose timestamps lie more than the
/// allowed 60 s ahead of the clock.
fn plain_matches_its_record(value: &str) {
    let session = load(&PLAIN.start_with_value(Some(value.to_owned())));
    let ahead = |t: Option<u64>| t.is_some_and(|t| t > NOW + 60);
    match JsonCodec.decode_record(value.as_bytes()) {
        Ok(DecodedRecord {
            session: Some(data),
            created,
            meta,
        }) if !ahead(created.as_ref().and_then(created_secs))
            && !ahead(meta.as_ref().and_then(|m| m.start))
            && !ahead(meta.as_ref().and_then(|m| m.last)) =>
        {
            assert!(
                !session.is_new(),
                "plain: a valid record gave a fresh session: {value}"
            );
            assert_eq!(session.to_map(), data, "plain: {value}");
            let expected = created.unwrap_or_else(|| Number::from(NOW));
            assert_eq!(session.created_number(), expected, "plain: {value}");
        }
        _ => assert_fresh("plain", &session),
    }
}

/// A record's `created` as whole seconds, as the expiry rules read it.
#[allow(
    clippy::cast_possible_truncation,
    reason = "saturating, as the crate reads it"
)]
fn created_secs(created: &Number) -> Option<u64> {
    created
        .as_u64()
        .or_else(|| {
            created
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        })
        .filter(|c| *c > 0)
}

/// `decode_record` never panics and agrees with the whole-document decode.
fn decode_matches_whole_document(bytes: &[u8]) {
    let direct = JsonCodec.decode_record(bytes);
    match JsonCodec.decode(bytes) {
        Ok(document @ Value::Object(_)) => {
            assert_eq!(direct.unwrap(), DecodedRecord::from_value(document));
        }
        // Not an object: the direct decoder refuses it; the manager gives a
        // fresh session for either.
        Ok(_) | Err(_) => assert!(direct.is_err()),
    }
}

#[test]
fn the_targets_hold_their_sessions() {
    for target in COOKIE_TARGETS.iter() {
        let lazy = target.manager.start_with_value(Some(target.value.clone()));
        let session = load(&lazy);
        assert!(!session.is_new(), "{}", target.name);
        assert_eq!(session.to_map(), target.data, "{}", target.name);
    }
}
