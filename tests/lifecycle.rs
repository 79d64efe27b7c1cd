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

use http_session::stores::{Expect, KvBackend, MemoryBackend, Payload, Put, Sealer, Stored, Write};
use http_session::{
    Error, FernetKey, FernetStore, MemoryStore, NaClKey, NaClStore, PlainStore, ServerStore,
    SessionManager,
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
    async fn index_add(&self, index: &str, member: &str, ttl: Option<u64>) -> Result<(), Error> {
        self.inner.index_add(index, member, ttl).await
    }
    async fn index_remove(&self, index: &str, member: &str) -> Result<(), Error> {
        self.inner.index_remove(index, member).await
    }
    async fn index_members(&self, index: &str) -> Result<Vec<String>, Error> {
        self.inner.index_members(index).await
    }
}

/// Writes a raw record under `key` (as another client would).
async fn seed(backend: &MemoryBackend, key: &str, value: &[u8]) {
    let write = Write::Value {
        value: &Payload::from(value),
        ttl: None,
    };
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
    let text = String::from_utf8(raw.encoded().unwrap().to_vec()).unwrap();
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
            s.set_new_identity("42424242424242424242424242424242")
                .unwrap();
            s.insert("a", 1).unwrap();
        },
        true,
    )
    .await
    .unwrap();
    assert!(line.starts_with("AIOHTTP_SESSION=42424242424242424242424242424242;"));
    assert!(backend
        .inner
        .get("AIOHTTP_SESSION_42424242424242424242424242424242")
        .await
        .unwrap()
        .is_some());
    // An identity outside the store's id format is refused at save.
    let lazy = manager.start_with_value(None);
    let session = lazy.get().await.unwrap();
    session.set_new_identity("user-42").unwrap();
    session.insert("a", 1).unwrap();
    let err = lazy.finish().await.unwrap_err();
    assert_eq!(err.kind(), http_session::ErrorKind::Config);
}

#[tokio::test]
async fn cookies_that_are_not_ids_never_reach_the_store() {
    let (manager, backend) = counted();
    let not_ids = [
        "",
        "x",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "../../etc/passwd",
        "0123456789abcdef0123456789abcdeg",
        "AIOHTTP_SESSION_0123456789abcdef0123456789abcdef",
    ];
    for value in not_ids {
        let line = request(
            &manager,
            Some(value),
            |s| assert!(s.unwrap().is_new(), "{value:?}"),
            true,
        )
        .await;
        assert_eq!(line, None, "{value:?}");
    }
    assert_eq!(backend.counts(), (0, 0, 0), "no round trip for any of them");
    // An id of the right form is looked up.
    request(
        &manager,
        Some("0123456789abcdef0123456789abcdef"),
        |s| assert!(s.unwrap().is_new()),
        true,
    )
    .await;
    assert_eq!(backend.counts(), (1, 0, 0));
}

#[tokio::test]
async fn hashed_ids_keep_no_usable_cookie_in_the_store() {
    let backend = Arc::new(MemoryBackend::default());
    let store = ServerStore::new(Counted {
        inner: backend.clone(),
        ..Counted::default()
    })
    .with_hashed_ids();
    let manager = SessionManager::new(store);
    let line = request(&manager, None, |s| drop(s.unwrap().insert("a", 1)), true)
        .await
        .unwrap();
    let id = cookie_id(&line);
    assert_eq!(
        backend.get(&format!("AIOHTTP_SESSION_{id}")).await.unwrap(),
        None
    );
    let hashed = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(id.as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(backend
        .get(&format!("AIOHTTP_SESSION_{hashed}"))
        .await
        .unwrap()
        .is_some());
    // The cookie still works, and the hash itself is not a cookie.
    request(
        &manager,
        Some(&id),
        |s| assert_eq!(s.unwrap().get_value("a"), Some(json!(1))),
        true,
    )
    .await;
    request(
        &manager,
        Some(&hashed),
        |s| assert!(s.unwrap().is_new()),
        true,
    )
    .await;
}

#[tokio::test]
async fn a_key_factory_brings_its_own_id_format() {
    let backend = Counted::default();
    let store = ServerStore::new(backend.clone()).with_key_factory(
        || format!("u-{}", "7".repeat(40)),
        |id| id.len() == 42 && id.starts_with("u-"),
    );
    let manager = SessionManager::new(store);
    let line = request(&manager, None, |s| drop(s.unwrap().insert("a", 1)), true)
        .await
        .unwrap();
    let id = cookie_id(&line);
    assert_eq!(id, format!("u-{}", "7".repeat(40)));
    request(
        &manager,
        Some(&id),
        |s| assert_eq!(s.unwrap().get_value("a"), Some(json!(1))),
        true,
    )
    .await;
    // A default-format id is not one of this store's.
    let before = backend.counts();
    request(
        &manager,
        Some("0123456789abcdef0123456789abcdef"),
        |s| assert!(s.unwrap().is_new()),
        true,
    )
    .await;
    assert_eq!(backend.counts(), before);
}

#[tokio::test]
async fn unreadable_server_record_gives_a_fresh_session_and_a_new_id() {
    let (manager, backend) = counted();
    seed(
        &backend.inner,
        "AIOHTTP_SESSION_0000000000000000000000000000bad0",
        b"notjson",
    )
    .await;
    seed(
        &backend.inner,
        "AIOHTTP_SESSION_000000000000000000000000000001a1",
        b"[1, 2]",
    )
    .await;
    seed(
        &backend.inner,
        "AIOHTTP_SESSION_00000000000000000000000000000e00",
        b"{}",
    )
    .await;
    for id in [
        "0000000000000000000000000000bad0",
        "000000000000000000000000000001a1",
        "00000000000000000000000000000e00",
    ] {
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
            .get("AIOHTTP_SESSION_0000000000000000000000000000bad0")
            .await
            .unwrap()
            .unwrap()
            .value,
        Payload::from(&b"notjson"[..])
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

    // A `created` up to 60 s in the future is kept (a clock a little
    // ahead); further ahead is refused: a fresh session (Python keeps it).
    let s = load(format!(
        "{{\"created\": {}, \"session\": {{\"a\": 1}}}}",
        now + 60
    ))
    .await;
    assert!(!s.is_empty());
    let s = load(format!(
        "{{\"created\": {}, \"session\": {{\"a\": 1}}}}",
        now + 500
    ))
    .await;
    assert!(s.is_empty() && s.is_new());

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

#[tokio::test]
async fn records_over_the_maximum_size_are_refused_and_nothing_is_lost() {
    let backend = Arc::new(MemoryBackend::default());
    let store = ServerStore::new(Counted {
        inner: backend.clone(),
        ..Counted::default()
    })
    .with_max_record_size(200);
    let manager = SessionManager::new(store);
    let line = request(&manager, None, |s| drop(s.unwrap().insert("a", 1)), true)
        .await
        .unwrap();
    let id = cookie_id(&line);
    let lazy = manager.start_with_value(Some(id.clone()));
    lazy.get()
        .await
        .unwrap()
        .insert("big", "x".repeat(300))
        .unwrap();
    let err = lazy.finish().await.unwrap_err();
    assert_eq!(err.kind(), http_session::ErrorKind::RecordTooLarge);
    assert_eq!(err.status(), 500);
    assert_eq!(err.to_response_parts().1, "Internal Server Error");
    // The stored session is as it was.
    let raw = backend
        .get(&format!("AIOHTTP_SESSION_{id}"))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert!(String::from_utf8(raw.encoded().unwrap().to_vec())
        .unwrap()
        .ends_with(r#""session": {"a": 1}}"#));
}

/// The memory store keeps records decoded: the size limit still measures
/// the record as the codec writes it.
#[tokio::test]
async fn the_memory_store_measures_its_decoded_records() {
    let manager = SessionManager::new(MemoryStore::memory().with_max_record_size(200));
    let line = request(&manager, None, |s| drop(s.unwrap().insert("a", 1)), true)
        .await
        .unwrap();
    let id = cookie_id(&line);
    let lazy = manager.start_with_value(Some(id.clone()));
    let session = lazy.get().await.unwrap();
    // `{"created": 1234567890, "session": {"a": 1, "big": "xxx..."}}`:
    // 200 bytes with 145 x's, one more is too many.
    session.insert("big", "x".repeat(146)).unwrap();
    let err = lazy.finish().await.unwrap_err();
    assert_eq!(err.kind(), http_session::ErrorKind::RecordTooLarge);
    let lazy = manager.start_with_value(Some(id.clone()));
    let session = lazy.get().await.unwrap();
    assert_eq!(session.keys(), ["a"], "nothing was written");
    session.insert("big", "x".repeat(145)).unwrap();
    assert!(lazy.finish().await.unwrap().is_some());
    let lazy = manager.start_with_value(Some(id));
    assert_eq!(lazy.get().await.unwrap().keys(), ["a", "big"]);
}

/// Three logins of one user in the memory store, then expiry: the index
/// empties by one lazy prune (`sessions_of`) or one sweep
/// (`purge_expired`); a request that keeps its binding costs no index
/// operation.
#[tokio::test]
async fn the_user_index_follows_logins_logouts_and_expiry() {
    for prune in ["lazy", "sweep"] {
        let backend = Arc::new(MemoryBackend::default());
        let store = ServerStore::new(Counted {
            inner: backend.clone(),
            ..Counted::default()
        });
        let manager = SessionManager::builder(store).max_age(1).build().unwrap();
        let login = |user: &'static str| {
            let manager = manager.clone();
            async move {
                let line = request(
                    &manager,
                    None,
                    |s| {
                        let s = s.unwrap();
                        s.renew();
                        s.set_user(user);
                    },
                    true,
                )
                .await
                .unwrap();
                cookie_id(&line)
            }
        };
        let ids = [
            login("alice").await,
            login("alice").await,
            login("alice").await,
        ];
        login("bob").await;
        assert_eq!(backend.index_entries(), 4);
        let listed = manager.sessions_of("alice").await.unwrap();
        assert_eq!(listed.len(), 3);
        assert!(listed
            .iter()
            .all(|s| !ids.contains(&s.handle.as_str().to_owned())));
        assert_eq!(manager.count_sessions("bob").await.unwrap(), 1);
        // A write that keeps the binding touches no index.
        request(
            &manager,
            Some(&ids[0]),
            |s| drop(s.unwrap().insert("n", 1)),
            true,
        )
        .await;
        assert_eq!(backend.index_entries(), 4);
        // Logging out (invalidate) leaves the index.
        request(&manager, Some(&ids[1]), |s| s.unwrap().invalidate(), true).await;
        assert_eq!(manager.count_sessions("alice").await.unwrap(), 2);
        assert_eq!(backend.index_entries(), 3);
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        match prune {
            "lazy" => {
                assert!(manager.sessions_of("alice").await.unwrap().is_empty());
                assert!(manager.sessions_of("bob").await.unwrap().is_empty());
            }
            _ => backend.purge_expired(),
        }
        assert_eq!(backend.index_entries(), 0, "{prune} prune leaves nothing");
    }
}

#[tokio::test]
async fn revoking_a_handle_ends_that_session_only() {
    let manager = SessionManager::builder(MemoryStore::memory())
        .max_age(600)
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let line = request(&manager, None, |s| s.unwrap().set_user("carol"), true)
            .await
            .unwrap();
        ids.push(cookie_id(&line));
    }
    let listed = manager.sessions_of("carol").await.unwrap();
    let first = &listed[0].handle;
    assert!(manager.revoke(first).await.unwrap());
    assert!(!manager.revoke(first).await.unwrap(), "already gone");
    assert_eq!(manager.count_sessions("carol").await.unwrap(), 2);
    // Another user's handle text does not reach carol's sessions.
    let forged = http_session::SessionHandle::parse("dave", listed[1].handle.as_str()).unwrap();
    assert!(!manager.revoke(&forged).await.unwrap());
    assert_eq!(
        manager
            .revoke_user("carol", Some(&listed[1].handle))
            .await
            .unwrap(),
        1
    );
    let left = manager.sessions_of("carol").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].handle, listed[1].handle);
    // Cookie stores cannot list.
    let cookies = SessionManager::new(PlainStore::plain());
    assert_eq!(
        cookies.sessions_of("carol").await.unwrap_err().kind(),
        http_session::ErrorKind::Unsupported
    );
}

#[tokio::test]
async fn expires_at_is_the_earliest_rule() {
    let now = 1_800_000_000;
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(now));
    let tick = clock.clone();
    let manager = SessionManager::builder(MemoryStore::memory())
        .max_age(3600)
        .idle_timeout(600)
        .absolute_lifetime(1000)
        .clock(move || tick.load(Ordering::SeqCst))
        .build()
        .unwrap();
    let line = request(&manager, None, |s| drop(s.unwrap().insert("a", 1)), true)
        .await
        .unwrap();
    let id = cookie_id(&line);
    clock.store(now + 500, Ordering::SeqCst);
    let session = manager.start_with_value(Some(id)).get().await.unwrap();
    // Idle: 600 s after the write at `now`; the absolute end is later.
    assert_eq!(session.expires_at(), Some(now + 600));
    session.set_max_age(Some(60));
    assert_eq!(session.expires_at(), Some(now + 60));
    session.set_max_age(None);
    // Written now (+500): idle would end at +1100, the absolute at +1000.
    session.insert("b", 2).unwrap();
    assert_eq!(session.expires_at(), Some(now + 1000));
    let unlimited = SessionManager::new(PlainStore::plain());
    let s = unlimited.start_with_value(None).get().await.unwrap();
    assert_eq!(s.expires_at(), None);
}

/// A `Write` into a shared buffer, for a `tracing` subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// One `session` span per request, closed with its outcome and the store's
/// times; never an id, a key or a value.
#[tokio::test(flavor = "current_thread")]
async fn one_span_per_request_with_outcomes_and_no_secrets() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_env_filter("http_session=debug")
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let manager = SessionManager::builder(MemoryStore::memory())
        .max_age(60)
        .build()
        .unwrap();
    let line = request(
        &manager,
        None,
        |s| drop(s.unwrap().insert("secret", "hunter2")),
        true,
    )
    .await
    .unwrap();
    let id = cookie_id(&line);
    request(
        &manager,
        Some(&id),
        |s| drop(s.unwrap().get_value("secret")),
        true,
    )
    .await;
    request(
        &manager,
        Some("0123456789abcdef0123456789abcdef"),
        |_| {},
        true,
    )
    .await;
    request(&manager, Some(&id), |s| s.unwrap().invalidate(), true).await;
    request(&manager, Some(&id), |_| {}, false).await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let closes: Vec<&str> = text.lines().filter(|l| l.contains("close")).collect();
    assert_eq!(closes.len(), 5, "{text}");
    let has = |i: usize, field: &str| closes[i].contains(field);
    assert!(
        has(0, "load=\"fresh\"") && has(0, "save=\"saved\"") && has(0, "save_us="),
        "{}",
        closes[0]
    );
    assert!(
        has(1, "load=\"loaded\"") && has(1, "load_us=") && has(1, "save=\"unchanged\""),
        "{}",
        closes[1]
    );
    assert!(has(2, "load=\"rejected\""), "{}", closes[2]);
    assert!(has(3, "save=\"removed\""), "{}", closes[3]);
    assert!(
        !has(4, "load="),
        "an untouched request loads nothing: {}",
        closes[4]
    );
    assert!(!text.contains(&id) && !text.contains("hunter2"), "{text}");
    assert!(!text.contains("0123456789abcdef0123456789abcdef"), "{text}");
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

/// The memory store shares its records with the requests that load them:
/// a write in one request is invisible to others until it is saved, and
/// never reaches the store if the request is not finished.
#[tokio::test]
async fn shared_records_are_copied_on_write() {
    let manager = SessionManager::new(MemoryStore::memory());
    let line = request(&manager, None, |s| drop(s.unwrap().insert("a", 1)), true)
        .await
        .unwrap();
    let id = cookie_id(&line);
    let writer = manager.start_with_value(Some(id.clone()));
    let session = writer.get().await.unwrap();
    session.insert("a", 2).unwrap();
    session.update(|map| map.insert("b".into(), json!([1])));
    let reader = manager.start_with_value(Some(id.clone()));
    assert_eq!(
        reader.get().await.unwrap().to_map(),
        json!({"a": 1}).as_object().unwrap().clone()
    );
    drop(writer); // never finished: nothing is saved
    let again = manager.start_with_value(Some(id.clone()));
    assert_eq!(again.get().await.unwrap().get::<i64>("a").unwrap(), Some(1));
    // A saved write is what the next request sees.
    let writer = manager.start_with_value(Some(id.clone()));
    writer.get().await.unwrap().insert("a", 3).unwrap();
    writer.finish().await.unwrap();
    let after = manager.start_with_value(Some(id));
    assert_eq!(after.get().await.unwrap().get::<i64>("a").unwrap(), Some(3));
}

/// Records print their shape, never their data.
#[test]
fn records_print_no_session_data() {
    use http_session::{Codec, DecodedRecord, JsonCodec, Record, SharedRecord};
    let data = json!({"secret": "hunter2"}).as_object().unwrap().clone();
    let created = serde_json::Number::from(5);
    let record = Record {
        created: &created,
        session: &data,
        meta: None,
    };
    let encoded = JsonCodec.encode(&record).unwrap();
    let shared = SharedRecord {
        created: created.clone(),
        session: Arc::new(data.clone()),
        meta: None,
    };
    let decoded = DecodedRecord {
        created: Some(created.clone()),
        session: Some(data.clone()),
        meta: None,
    };
    let stored = Stored::unversioned(encoded.clone());
    let payload = Payload::Shared(Arc::new(shared.clone()));
    let write = Write::Value {
        value: &payload,
        ttl: None,
    };
    let text = format!("{record:?} {shared:?} {decoded:?} {stored:?} {payload:?} {write:?}");
    assert!(
        !text.contains("hunter2") && !text.contains("secret"),
        "{text}"
    );
    assert!(
        text.contains("keys: 1") && text.contains(&format!("len: {}", encoded.len())),
        "{text}"
    );
}
