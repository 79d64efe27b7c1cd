//! A Python write landing between our load and our save, on the shared
//! Redis and memcached: our save merges into what Python wrote, and a
//! Python logout (aiohttp-session writes `{}`) stays a logout.

use super::*;

/// How long our request waits between loading the session and saving it:
/// time enough for the Python request to run in between.
const OUR_DELAY_MS: u64 = 400;

/// Python runs its request this long after ours started (ours has loaded).
const PYTHON_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

fn server_storages() -> [Storage; 2] {
    [Storage::Redis, Storage::Memcached]
}

/// Our server starts `POST /set {"rust": 1}`, loads the session, waits;
/// meanwhile Python writes `{"python": 2}` into the same session. Our save
/// then finds Python's record and merges into it: nothing is lost, and
/// both sides read all three keys.
#[tokio::test]
async fn python_write_between_our_load_and_save_is_merged() {
    for framework in Framework::ALL {
        for storage in server_storages() {
            let py = python_app(storage, &Opts::MATRIX);
            let rs = rust_app(framework, storage, &Opts::MATRIX);
            let first = with_cookie_body(&rs, "/set", None, &json!({"a": 1})).await;
            let id = set_cookie(&first).value;
            let (path, body) = (format!("/set?delay_ms={OUR_DELAY_MS}"), json!({"rust": 1}));
            let ours = with_cookie_body(&rs, &path, Some(&id), &body);
            let theirs = async {
                tokio::time::sleep(PYTHON_AFTER).await;
                with_cookie_body(&py, "/set", Some(&id), &json!({"python": 2})).await
            };
            let (ours, theirs) = tokio::join!(ours, theirs);
            assert_eq!(theirs.status, 200, "{}: {}", py.label, theirs.body);
            assert_eq!(ours.status, 200, "{}: {}", rs.label, ours.body);
            assert_eq!(set_cookie(&ours).value, id, "{}: same id", rs.label);
            let want = json!({"a": 1, "python": 2, "rust": 1});
            for app in [&py, &rs] {
                let got = with_cookie(app, "GET", "/get", Some(&id)).await.json();
                assert_eq!(got, want, "{} reads the merged record", app.label);
            }
        }
    }
}

/// Python logs the session out (aiohttp-session's `invalidate` writes `{}`
/// under the key) while our request of that session is in flight: our
/// save finds no session record and writes nothing; our client gets the
/// removal cookie, and the old cookie gives a fresh session on both sides.
#[tokio::test]
async fn python_logout_between_our_load_and_save_stays_a_logout() {
    for framework in Framework::ALL {
        for storage in server_storages() {
            let py = python_app(storage, &Opts::MATRIX);
            let rs = rust_app(framework, storage, &Opts::MATRIX);
            let first = with_cookie_body(&rs, "/set", None, &json!({"user": "alice"})).await;
            let id = set_cookie(&first).value;
            let (path, body) = (
                format!("/set?delay_ms={OUR_DELAY_MS}"),
                json!({"cart": [1, 2]}),
            );
            let ours = with_cookie_body(&rs, &path, Some(&id), &body);
            let logout = async {
                tokio::time::sleep(PYTHON_AFTER).await;
                with_cookie(&py, "POST", "/clear", Some(&id)).await
            };
            let (ours, logout) = tokio::join!(ours, logout);
            assert_eq!(logout.status, 200, "{}: {}", py.label, logout.body);
            assert!(set_cookie(&logout).is_removal(), "{}", py.label);
            assert_eq!(ours.status, 200, "{}: {}", rs.label, ours.body);
            assert!(
                set_cookie(&ours).is_removal(),
                "{}: the in-flight request must remove the cookie, not keep {id}",
                rs.label
            );
            for app in [&py, &rs] {
                let meta = with_cookie(app, "GET", "/meta", Some(&id)).await.json();
                assert_eq!(meta["new"], true, "{}: {meta}", app.label);
                assert_eq!(meta["session"], json!({}), "{}: {meta}", app.label);
            }
        }
    }
}

/// The reverse order: Python loads, we write, Python saves. aiohttp-session
/// writes the whole session unconditionally, so Python's save undoes ours:
/// the merge protects our writes only. Shown so that the documented limit
/// is a measured one.
#[tokio::test]
async fn python_saves_unconditionally_over_our_write() {
    let storage = Storage::Redis;
    let py = python_app(storage, &Opts::MATRIX);
    let rs = rust_app(Framework::Axum, storage, &Opts::MATRIX);
    let first = with_cookie_body(&rs, "/set", None, &json!({"a": 1})).await;
    let id = set_cookie(&first).value;
    let (path, body) = (
        format!("/set?delay_ms={OUR_DELAY_MS}"),
        json!({"python": 2}),
    );
    let theirs = with_cookie_body(&py, &path, Some(&id), &body);
    let ours = async {
        tokio::time::sleep(PYTHON_AFTER).await;
        with_cookie_body(&rs, "/set", Some(&id), &json!({"rust": 1})).await
    };
    let (theirs, ours) = tokio::join!(theirs, ours);
    assert_eq!(theirs.status, 200, "{}: {}", py.label, theirs.body);
    assert_eq!(ours.status, 200, "{}: {}", rs.label, ours.body);
    let got = with_cookie(&rs, "GET", "/get", Some(&id)).await.json();
    assert_eq!(
        got,
        json!({"a": 1, "python": 2}),
        "Python's save wins whole"
    );
}
