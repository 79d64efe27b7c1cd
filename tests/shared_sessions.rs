//! One session shared by three app processes — the axum, actix-web and warp
//! example servers — over the same Redis or memcached server: written
//! through one, read and updated through the others.

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a failed test"
)]

#[path = "../examples/shared/mod.rs"]
mod shared;

#[allow(dead_code, reason = "shared with the conformance suite")]
#[path = "conformance/harness.rs"]
mod harness;

#[path = "support/process.rs"]
mod process;

use std::process::{Command, Stdio};

use harness::{service_env, App, Server};
use process::{example, wait_for_address};
use serde_json::json;

/// Starts one example server process and waits for its address.
fn spawn(binary: &str, store_args: &[String]) -> App {
    let mut child = Command::new(example(binary))
        .args(["--port", "0", "--workers", "1"])
        .args(store_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example server");
    let addr =
        wait_for_address(&mut child).unwrap_or_else(|e| panic!("{binary} did not start: {e}"));
    App {
        server: Server {
            addr,
            stop: Box::new(move || {
                let _ = child.kill();
                let _ = child.wait();
            }),
        },
        cookie_name: "AIOHTTP_SESSION".to_owned(),
        jar: None,
        label: binary.to_owned(),
    }
}

async fn hand_off(store_args: Vec<String>) {
    let mut axum = spawn("server_axum", &store_args);
    let mut actix = spawn("server_actix", &store_args);
    let mut warp = spawn("server_warp", &store_args);

    // Written through axum.
    axum.post("/set", json!({"user": "ada", "langs": ["py", "rs"]}))
        .await;
    let cookie = axum.jar.clone().expect("a session cookie");

    // Read and updated through actix-web, with the same cookie.
    actix.jar = Some(cookie.clone());
    assert_eq!(
        actix.get("/get").await.json(),
        json!({"user": "ada", "langs": ["py", "rs"]})
    );
    assert_eq!(actix.get("/incr").await.json(), json!({"n": 1}));
    assert_eq!(
        actix.jar.as_deref(),
        Some(cookie.as_str()),
        "same id across processes"
    );

    // Updated through warp.
    warp.jar = Some(cookie.clone());
    assert_eq!(warp.get("/incr").await.json(), json!({"n": 2}));
    warp.post("/del?key=langs", json!(null)).await;

    // Read back through axum: every update is there.
    assert_eq!(
        axum.get("/get").await.json(),
        json!({"user": "ada", "n": 2})
    );
    let meta = axum.get("/meta").await.json();
    assert_eq!(meta["identity"], json!(cookie));
    assert_eq!(meta["new"], false);

    // A login through warp (fresh session) kills the old id for everyone.
    let renewed = warp.get("/new").await;
    assert_eq!(renewed.json(), json!({"marker": "new"}));
    let new_cookie = warp.jar.clone().expect("new cookie");
    assert_ne!(new_cookie, cookie);
    assert_eq!(actix.get("/get").await.json(), json!({}), "old id is gone");
    actix.jar = Some(new_cookie);
    assert_eq!(actix.get("/get").await.json(), json!({"marker": "new"}));

    // Logged out through actix-web: nobody sees the session any more.
    let cleared = actix.post("/clear", json!(null)).await;
    assert!(cleared.set_cookie().expect("removal").contains("Max-Age=0"));
    axum.jar = warp.jar.clone();
    assert_eq!(axum.get("/meta").await.json()["new"], true);
}

#[tokio::test]
async fn redis_session_moves_between_frameworks_and_processes() {
    let url = service_env("HTTP_SESSION_REDIS_URL");
    hand_off(vec![
        "--store".into(),
        "redis".into(),
        "--redis-url".into(),
        url,
    ])
    .await;
}

#[tokio::test]
async fn memcached_session_moves_between_frameworks_and_processes() {
    let addr = service_env("HTTP_SESSION_MEMCACHED");
    hand_off(vec![
        "--store".into(),
        "memcached".into(),
        "--memcached".into(),
        addr,
    ])
    .await;
}
