//! The record's extra member `"http_session"` (the expiry rules' times,
//! the session's own `max_age`) against the real aiohttp-session: Python
//! reads records that carry it, we read Python's records without it, our
//! own writes keep it, and a Python write drops it with the documented
//! result (the absolute lifetime restarts at that write; the session's own
//! `max_age` falls back to the storage's).

use super::*;

/// Our servers with the rules that need the member.
const WITH_RULES: Opts = Opts {
    rust_only: &["--idle-timeout", "600", "--absolute-lifetime", "7200"],
    ..Opts::MATRIX
};

/// The decoded record under `id`, read behind both servers' backs.
async fn record(kv: &mut Kv, id: &str) -> Value {
    let (bytes, _) = kv
        .get(&store_key(&Opts::MATRIX, id))
        .await
        .expect("a stored record");
    serde_json::from_slice(&bytes).expect("a JSON record")
}

#[tokio::test]
async fn python_reads_our_records_and_we_read_pythons() {
    for storage in Storage::ALL {
        for framework in Framework::ALL {
            let mut pair = Pair {
                python: python_app(storage, &WITH_RULES),
                rust: rust_app(framework, storage, &WITH_RULES),
                jar: None,
                storage,
            };
            // Ours (with the member) read by Python, updated by Python.
            pair.ok(Side::Rust, "POST", "/set", Some(json!({"a": 1})))
                .await;
            let seen = pair.ok(Side::Python, "GET", "/get", None).await;
            assert_eq!(seen, json!({"a": 1}), "{framework:?} {storage:?}");
            pair.ok(Side::Python, "POST", "/set", Some(json!({"b": 2})))
                .await;
            // Python's (without it) read by us, under the rules.
            let seen = pair.ok(Side::Rust, "GET", "/get", None).await;
            assert_eq!(seen, json!({"a": 1, "b": 2}), "{framework:?} {storage:?}");
        }
    }
}

#[tokio::test]
async fn our_member_survives_our_writes_and_a_python_write_drops_it() {
    for storage in [Storage::Redis, Storage::Memcached] {
        let mut kv = Kv::connect(storage).await;
        for framework in Framework::ALL {
            let mut pair = Pair {
                python: python_app(storage, &WITH_RULES),
                rust: rust_app(framework, storage, &WITH_RULES),
                jar: None,
                storage,
            };
            let label = format!("{framework:?} {storage:?}");
            pair.ok(Side::Rust, "POST", "/set", Some(json!({"a": 1})))
                .await;
            let id = pair.jar.clone().expect("a session id");
            let first = record(&mut kv, &id).await;
            let start = first[META]["start"].as_u64().expect("start");
            assert!(first[META]["last"].as_u64().is_some(), "{label}: {first}");
            // A per-session max_age travels in the member too.
            pair.ok(Side::Rust, "POST", "/max_age?n=900", None).await;
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            pair.ok(Side::Rust, "POST", "/set", Some(json!({"b": 2})))
                .await;
            let second = record(&mut kv, &id).await;
            assert_eq!(
                second[META]["start"], start,
                "{label}: start kept: {second}"
            );
            assert_eq!(second[META]["max_age"], 900, "{label}: {second}");
            assert!(second[META]["last"].as_u64() > first[META]["last"].as_u64());
            assert_eq!(second["session"], json!({"a": 1, "b": 2}));

            // Python rewrites the record: the member is gone.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            pair.ok(Side::Python, "POST", "/set", Some(json!({"c": 3})))
                .await;
            let python = record(&mut kv, &id).await;
            assert!(python.get(META).is_none(), "{label}: {python}");
            let python_created = python["created"].as_u64().expect("created");
            assert!(python_created > start);

            // Our next write: the absolute lifetime restarts at Python's
            // write, and the session is back on the storage max_age.
            let meta = pair.ok(Side::Rust, "GET", "/meta", None).await;
            assert_eq!(meta["max_age"], 3600, "{label}: {meta}");
            pair.ok(Side::Rust, "POST", "/set", Some(json!({"d": 4})))
                .await;
            let ours = record(&mut kv, &id).await;
            assert_eq!(ours[META]["start"], python_created, "{label}: {ours}");
            assert!(ours[META].get("max_age").is_none(), "{label}: {ours}");
            assert_eq!(ours["session"], json!({"a": 1, "b": 2, "c": 3, "d": 4}));
        }
    }
}

/// The member's name in the record.
const META: &str = http_session::META_MEMBER;

/// A session bound to a user (our `POST /login?user=X`): Python reads the
/// same record (the binding is in the member it ignores; the index is an
/// extra key, `AIOHTTP_SESSION_user_X`, which it never looks at); a Python
/// write drops the binding with the member, and our next listing prunes
/// the then stale index entry.
#[tokio::test]
async fn python_shares_bound_sessions_and_a_python_write_unbinds() {
    let mut kv = Kv::connect(Storage::Redis).await;
    for framework in Framework::ALL {
        let mut pair = Pair {
            python: python_app(Storage::Redis, &Opts::MATRIX),
            rust: rust_app(framework, Storage::Redis, &Opts::MATRIX),
            jar: None,
            storage: Storage::Redis,
        };
        let label = format!("{framework:?}");
        let user = format!("alice-{}", random_id());
        pair.ok(Side::Rust, "POST", &format!("/login?user={user}"), None)
            .await;
        let id = pair.jar.clone().expect("a session id");
        let seen = pair.ok(Side::Python, "GET", "/get", None).await;
        assert_eq!(seen, json!({"user": user}), "{label}: Python reads it");
        let index = format!("AIOHTTP_SESSION_user_{user}");
        let (members, _) = kv.get_set(&index).await;
        assert_eq!(members, vec![store_key(&Opts::MATRIX, &id)], "{label}");
        let listed = pair.ok(Side::Rust, "GET", "/sessions", None).await;
        assert_eq!(
            listed["sessions"].as_array().map(Vec::len),
            Some(1),
            "{label}"
        );
        // Python writes: the member (and the binding) is gone.
        pair.ok(Side::Python, "POST", "/set", Some(json!({"n": 1})))
            .await;
        let python = record(&mut kv, &id).await;
        assert!(python.get(META).is_none(), "{label}: {python}");
        let meta = pair.ok(Side::Rust, "GET", "/get", None).await;
        assert_eq!(meta, json!({"user": user, "n": 1}), "{label}");
        let listed = pair.send(Side::Rust, "GET", "/sessions", None).await;
        assert_eq!(
            listed.status, 401,
            "{label}: no longer bound: {}",
            listed.body
        );
        // The index entry is stale now; the next listing of the user (here
        // after a new login of the same user) prunes it.
        let (members, _) = kv.get_set(&index).await;
        assert_eq!(
            members,
            vec![store_key(&Opts::MATRIX, &id)],
            "{label}: stale"
        );
        pair.ok(Side::Rust, "POST", &format!("/login?user={user}"), None)
            .await;
        let again = pair.jar.clone().expect("a new session id");
        let listed = pair.ok(Side::Rust, "GET", "/sessions", None).await;
        assert_eq!(
            listed["sessions"].as_array().map(Vec::len),
            Some(1),
            "{label}"
        );
        let (members, _) = kv.get_set(&index).await;
        assert_eq!(
            members,
            vec![store_key(&Opts::MATRIX, &again)],
            "{label}: pruned"
        );
    }
}
