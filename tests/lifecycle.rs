//! The request lifecycle through the core alone (no web framework): store
//! calls per request kind, record layout, and aiohttp-session's load rules.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "tests"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http_session::stores::{Expect, KvBackend, MemoryBackend, Put, Sealer, Stored, Write};
use http_session::{
    Error, FernetKey, FernetStore, NaClKey, NaClStore, PlainStore, ServerStore, SessionManager,
};
use serde_json::json;

/// Counts the calls reaching a real memory backend.
#[derive(Default, Clone)]
struct Counted {
    inner: Arc<MemoryBackend>,
    gets: Arc<AtomicUsize>,
    sets: Arc<AtomicUsize>,
    deletes: Arc<AtomicUsize>,
}

impl Counted {
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.gets.load(Ordering::SeqCst),
            self.sets.load(Ordering::SeqCst),
            self.deletes.load(Ordering::SeqCst),
        )
    }
}

impl KvBackend for Counted {
    async fn get(&self, key: &str) -> Result<Option<Stored>, Error> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, write: Write<'_>, expect: Expect<'_>) -> Result<Put, Error> {
        self.sets.fetch_add(1, Ordering::SeqCst);
        self.inner.put(key, write, expect).await
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }
    async fn touch(&self, key: &str, ttl: u64) -> Result<bool, Error> {
        self.inner.touch(key, ttl).await
    }
}

/// Writes a raw record under `key` (as another client would).
async fn seed(backend: &MemoryBackend, key: &str, value: &[u8]) {
    let write = Write::Value { value, ttl: None };
    assert!(matches!(
        backend.put(key, write, Expect::Absent).await.unwrap(),
        Put::Done
    ));
}

fn counted() -> (SessionManager, Counted) {
    let backend = Counted::default();
    (
        SessionManager::new(ServerStore::new(backend.clone())),
        backend,
    )
}

/// Runs one request: `handler` gets the session (if it wants it).
async fn request(
    manager: &SessionManager,
    cookie: Option<&str>,
    handler: impl FnOnce(Option<http_session::Session>),
    load: bool,
) -> Option<String> {
    let lazy = manager.start_with_value(cookie.map(str::to_owned));
    let session = if load {
        Some(lazy.get().await.unwrap())
    } else {
        None
    };
    handler(session);
    lazy.finish()
        .await
        .unwrap()
        .map(|v| v.to_str().unwrap().to_owned())
}

fn cookie_id(line: &str) -> String {
    line.strip_prefix("AIOHTTP_SESSION=")
        .and_then(|r| r.split(';').next())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn store_calls_per_request_kind() {
    let (manager, backend) = counted();

    // New session written: no read (no cookie), one write.
    let line = request(&manager, None, |s| drop(s.unwrap().insert("a", 1)), true)
        .await
        .unwrap();
    let id = cookie_id(&line);
    assert_eq!(id.len(), 32);
    assert_eq!(backend.counts(), (0, 1, 0));

    // Untouched: the handler never asks for the session.
    assert_eq!(request(&manager, Some(&id), |_| {}, false).await, None);
    assert_eq!(backend.counts(), (0, 1, 0));

    // Read only: one read, no write, no Set-Cookie.
    let read = request(
        &manager,
        Some(&id),
        |s| assert!(s.unwrap().contains_key("a")),
        true,
    )
    .await;
    assert_eq!(read, None);
    assert_eq!(backend.counts(), (1, 1, 0));

    // Read-modify-write: one read, one write, same id.
    let line = request(
        &manager,
        Some(&id),
        |s| drop(s.unwrap().insert("b", 2)),
        true,
    )
    .await
    .unwrap();
    assert_eq!(cookie_id(&line), id);
    assert_eq!(backend.counts(), (2, 2, 0));

    // Renew (login): read, delete the old record, write the new one.
    let line = request(
        &manager,
        Some(&id),
        |s| {
            let s = s.unwrap();
            s.renew();
            s.insert("user", "ada").unwrap();
        },
        true,
    )
    .await
    .unwrap();
    let new_id = cookie_id(&line);
    assert_ne!(new_id, id);
    assert_eq!(backend.counts(), (3, 3, 1));
    assert_eq!(
        backend
            .inner
            .get(&format!("AIOHTTP_SESSION_{id}"))
            .await
            .unwrap(),
        None
    );

    // Invalidate: read, delete; removal cookie.
    let line = request(&manager, Some(&new_id), |s| s.unwrap().invalidate(), true)
        .await
        .unwrap();
    assert!(line.contains("Max-Age=0"));
    assert_eq!(backend.counts(), (4, 3, 2));
    assert!(backend.inner.is_empty());

    // An empty new session marked changed writes nothing.
    let line = request(&manager, None, |s| s.unwrap().changed(), true)
        .await
        .unwrap();
    assert!(line.contains("Max-Age=0"));
    assert_eq!(backend.counts(), (4, 3, 2));
}

#[tokio::test]
async fn record_layout_matches_aiohttp_session() {
    let (manager, backend) = counted();
    let line = request(
        &manager,
        None,
        |s| {
            let s = s.unwrap();
            s.insert("a", 1).unwrap();
            s.insert("é", "ü").unwrap();
        },
        true,
    )
    .await
    .unwrap();
    let id = cookie_id(&line);
    let raw = backend
        .inner
        .get(&format!("AIOHTTP_SESSION_{id}"))
        .await
        .unwrap()
        .unwrap()
        .value;
    let text = String::from_utf8(raw).unwrap();
    let created: i64 = text["{\"created\": ".len()..text.find(',').unwrap()]
        .parse()
        .unwrap();
    assert_eq!(
        text,
        format!("{{\"created\": {created}, \"session\": {{\"a\": 1, \"\\u00e9\": \"\\u00fc\"}}}}")
    );
    assert_eq!(
        backend.inner.ttl(&format!("AIOHTTP_SESSION_{id}")),
        Some(None)
    );
}

#[tokio::test]
async fn set_new_identity_names_the_record() {
    let (manager, backend) = counted();
    let line = request(
        &manager,
        None,
        |s| {
            let s = s.unwrap();
            s.set_new_identity("user-42").unwrap();
            s.insert("a", 1).unwrap();
        },
        true,
    )
    .await
    .unwrap();
    assert!(line.starts_with("AIOHTTP_SESSION=user-42;"));
    assert!(backend
        .inner
        .get("AIOHTTP_SESSION_user-42")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn unreadable_server_record_gives_a_fresh_session_and_a_new_id() {
    let (manager, backend) = counted();
    seed(&backend.inner, "AIOHTTP_SESSION_bad", b"notjson").await;
    seed(&backend.inner, "AIOHTTP_SESSION_list", b"[1, 2]").await;
    seed(&backend.inner, "AIOHTTP_SESSION_empty", b"{}").await;
    for id in ["bad", "list", "empty"] {
        let line = request(
            &manager,
            Some(id),
            |s| {
                let s = s.unwrap();
                assert!(s.is_new() && s.is_empty() && s.identity().is_none(), "{id}");
                s.insert("k", 1).unwrap();
            },
            true,
        )
        .await
        .unwrap();
        assert_ne!(cookie_id(&line), id);
    }
    // The unreadable records were left alone, not overwritten.
    assert_eq!(
        backend
            .inner
            .get("AIOHTTP_SESSION_bad")
            .await
            .unwrap()
            .unwrap()
            .value,
        b"notjson"
    );
}

#[tokio::test]
async fn authentic_tokens_with_bad_contents_give_fresh_sessions() {
    let fernet_key = FernetKey::from_bytes(&[5; 32]).unwrap();
    let nacl_key = NaClKey::from_bytes(&[6; 32]).unwrap();
    let fernet = FernetStore::fernet(&fernet_key);
    let nacl = NaClStore::nacl(&nacl_key);
    let bad: [&[u8]; 5] = [
        b"notjson",
        b"[1, 2]",
        b"null",
        &[0xff, 0xfe],
        b"{\"session\": 5}",
    ];
    for contents in bad {
        let tokens = [
            (
                fernet.sealer().seal(contents, 1).unwrap(),
                SessionManager::new(fernet.clone()),
            ),
            (
                nacl.sealer().seal(contents, 1).unwrap(),
                SessionManager::new(nacl.clone()),
            ),
        ];
        for (token, manager) in tokens {
            let lazy = manager.start_with_value(Some(token));
            let session = lazy.get().await.unwrap();
            assert!(session.is_new() && session.is_empty(), "{contents:?}");
            assert!(lazy.finish().await.unwrap().is_none());
        }
    }
}

#[tokio::test]
async fn python_load_rules() {
    let manager = SessionManager::builder(PlainStore::plain())
        .max_age(3600)
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let load = |value: String| {
        let manager = manager.clone();
        async move { manager.start_with_value(Some(value)).get().await.unwrap() }
    };

    // A float `created` is kept as it is.
    let s = load(format!(
        "{{\"created\": {}.5, \"session\": {{\"a\": 1}}}}",
        now - 10
    ))
    .await;
    assert_eq!(s.created_number().to_string(), format!("{}.5", now - 10));
    assert_eq!(s.get_value("a"), Some(json!(1)));
    assert!(!s.is_new());

    // Exactly max_age old is kept; one second more is dropped, but the
    // session is not new and keeps its `created`.
    let s = load(format!(
        "{{\"created\": {}, \"session\": {{\"a\": 1}}}}",
        now - 3600
    ))
    .await;
    assert!(!s.is_empty());
    let s = load(format!(
        "{{\"created\": {}, \"session\": {{\"a\": 1}}}}",
        now - 3602
    ))
    .await;
    assert!(s.is_empty() && !s.is_new());
    assert_eq!(s.created() as u64, now - 3602);

    // Missing or zero `created` counts as age "now": dropped under max_age.
    let s = load("{\"session\": {\"a\": 1}}".to_owned()).await;
    assert!(s.is_empty() && !s.is_new());
    let s = load("{\"created\": 0, \"session\": {\"a\": 1}}".to_owned()).await;
    assert!(s.is_empty() && !s.is_new());

    // A future `created` is kept (negative age), as in Python.
    let s = load(format!(
        "{{\"created\": {}, \"session\": {{\"a\": 1}}}}",
        now + 500
    ))
    .await;
    assert!(!s.is_empty());

    // `{}` is a new session.
    assert!(load("{}".to_owned()).await.is_new());

    // Without a storage max_age nothing expires by age.
    let forever = SessionManager::new(PlainStore::plain());
    let s = forever
        .start_with_value(Some("{\"created\": 1, \"session\": {\"a\": 1}}".to_owned()))
        .get()
        .await
        .unwrap();
    assert!(!s.is_empty());
}

#[test]
fn debug_output_never_shows_keys_or_values() {
    let key = FernetKey::from_bytes(&[0x41; 32]).unwrap();
    let manager = SessionManager::new(FernetStore::fernet(&key));
    let text = format!("{manager:?} {key:?} {:?}", FernetStore::fernet(&key));
    assert!(!text.contains("QUFB") && !text.contains("65, 65"), "{text}");
    let nacl = NaClKey::from_bytes(&[0x41; 32]).unwrap();
    let text = format!("{nacl:?} {:?}", NaClStore::nacl(&nacl));
    assert!(!text.contains("65") && !text.contains("QUFB"), "{text}");
}

/// Key rotation through the manager, for both sealed stores: a cookie of
/// the previous key loads; a read-only request sends no `Set-Cookie`; the
/// next save seals with the current key only.
#[tokio::test]
async fn rotation_reads_old_cookies_and_saves_with_the_current_key() {
    use http_session::stores::{Fernet, NaCl};
    let (old_f, new_f) = (
        FernetKey::from_bytes(&[1; 32]).unwrap(),
        FernetKey::from_bytes(&[2; 32]).unwrap(),
    );
    let (old_n, new_n) = (
        NaClKey::from_bytes(&[1; 32]).unwrap(),
        NaClKey::from_bytes(&[2; 32]).unwrap(),
    );
    // (manager before rotation, manager during it, sealer of the new key
    // alone, sealer of the old key alone)
    type Open = Box<dyn Fn(&str) -> bool>;
    let cases: [(SessionManager, SessionManager, Open, Open); 2] = [
        (
            SessionManager::new(FernetStore::fernet(&old_f)),
            SessionManager::new(FernetStore::new(Fernet::with_rotation(&new_f, [&old_f]))),
            {
                let f = Fernet::new(&new_f);
                Box::new(move |t| f.open(t, None, 0).is_ok())
            },
            {
                let f = Fernet::new(&old_f);
                Box::new(move |t| f.open(t, None, 0).is_ok())
            },
        ),
        (
            SessionManager::new(NaClStore::nacl(&old_n)),
            SessionManager::new(NaClStore::new(NaCl::with_rotation(&new_n, [&old_n]))),
            {
                let n = NaCl::new(&new_n);
                Box::new(move |t| n.open(t, None, 0).is_ok())
            },
            {
                let n = NaCl::new(&old_n);
                Box::new(move |t| n.open(t, None, 0).is_ok())
            },
        ),
    ];
    for (before, during, opens_new, opens_old) in cases {
        let line = request(&before, None, |s| drop(s.unwrap().insert("n", 1)), true)
            .await
            .unwrap();
        let old_token = cookie_id(&line).trim_matches('"').to_owned();
        assert!(opens_old(&old_token) && !opens_new(&old_token));

        // Read-only: the old cookie loads and nothing is sent back.
        let read = request(
            &during,
            Some(&old_token),
            |s| {
                let s = s.unwrap();
                assert!(!s.is_new());
                assert_eq!(s.get::<i64>("n").unwrap(), Some(1));
            },
            true,
        )
        .await;
        assert_eq!(read, None, "a read-only request sends no Set-Cookie");

        // A change: saved with the current key, which the old key cannot
        // open.
        let line = request(
            &during,
            Some(&old_token),
            |s| drop(s.unwrap().insert("n", 2)),
            true,
        )
        .await
        .unwrap();
        let new_token = cookie_id(&line).trim_matches('"').to_owned();
        assert!(opens_new(&new_token) && !opens_old(&new_token));
        let read = request(
            &during,
            Some(&new_token),
            |s| assert_eq!(s.unwrap().get::<i64>("n").unwrap(), Some(2)),
            true,
        )
        .await;
        assert_eq!(read, None);
    }
}
