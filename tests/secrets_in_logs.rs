//! Session values never reach logs or error responses: serde's own error
//! text quotes the value (`invalid type: string "…", expected u64`), so a
//! failed conversion keeps only the key, the Rust type and the operation.
//!
//! Full requests through the axum adapter (the router called as a tower
//! service), with every `tracing` event captured.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "tests"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use http_session::axum::SessionLayer;
use http_session::{Error, MemoryStore, Session, SessionManager};
use serde::ser::{Serialize, Serializer};
use tower_service::Service;

const SECRET: &str = "s3cr3t-Pa55w0rd-9f2c";

/// Every formatted `tracing` event, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A value whose serializer fails with a message that quotes it.
struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(format!(
            "cannot serialize {SECRET}"
        )))
    }
}

fn app() -> Router {
    let manager = SessionManager::new(MemoryStore::memory());
    Router::new()
        .route(
            "/set",
            get(|session: Session| async move {
                session.insert("token", SECRET)?;
                Ok::<_, Error>("set")
            }),
        )
        .route(
            "/get",
            get(|session: Session| async move {
                let n: Option<u64> = session.get("token")?;
                Ok::<_, Error>(format!("{n:?}"))
            }),
        )
        .route(
            "/remove",
            get(|session: Session| async move {
                let n: Option<u64> = session.remove_as("token")?;
                Ok::<_, Error>(format!("{n:?}"))
            }),
        )
        .route(
            "/insert",
            get(|session: Session| async move {
                session.insert("other", Refuses)?;
                Ok::<_, Error>("inserted")
            }),
        )
        .layer(SessionLayer::new(manager))
}

async fn send(
    app: &mut Router,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = app
        .call(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        set_cookie,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn a_failed_conversion_logs_the_key_and_type_never_the_value() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut app = app();
    let (status, cookie, _) = send(&mut app, "/set", None).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie.expect("a session cookie");

    for (path, op, ty) in [
        ("/get", "get", "u64"),
        ("/remove", "remove_as", "u64"),
        ("/insert", "insert", "Refuses"),
    ] {
        let before = captured.text().len();
        let (status, _, body) = send(&mut app, path, Some(&cookie)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(body, "Internal Server Error", "{path}");
        let log = captured.text()[before..].to_owned();
        let error = log
            .lines()
            .find(|line| line.contains("ERROR"))
            .unwrap_or_else(|| panic!("{path}: no ERROR event in {log}"));
        assert!(!log.contains(SECRET), "{path}: the value leaked: {log}");
        assert!(!body.contains(SECRET), "{path}");
        // What is kept is enough to find the bug.
        let key = if op == "insert" { "other" } else { "token" };
        assert!(
            error.contains(key) && error.contains(ty) && error.contains(op),
            "{path}: the key, type and operation are missing: {error}"
        );
    }
}
