//! Streaming responses keep the session: when a handler returns a streamed
//! body (a chunked download in axum and actix-web, server-sent events in
//! warp), the session is saved and its `Set-Cookie` sent with the response
//! head, before the body. A change made while the body streams is not saved
//! (the session was saved when the head went out): documented, and shown.

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a failed expectation is a failed test; timings are printed"
)]

#[allow(dead_code, reason = "shared with the conformance suite")]
#[path = "conformance/harness.rs"]
mod harness;

#[path = "../examples/shared/mod.rs"]
mod shared;

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use harness::Server;
use http_body_util::BodyExt;
use http_session::{MemoryStore, Session, SessionManager};
use hyper_util::rt::TokioIo;

/// The chunks of every streamed body, 100 ms apart.
const CHUNKS: usize = 3;
const GAP: Duration = Duration::from_millis(100);

/// The streamed body: it sets `late` on the session while it streams.
fn chunks(session: Session) -> impl futures_util::Stream<Item = String> + Send + Sync + 'static {
    stream::iter(0..CHUNKS).then(move |i| {
        let session = session.clone();
        async move {
            tokio::time::sleep(GAP).await;
            if i == 1 {
                session.insert_value("late", true.into());
            }
            format!("chunk {i}\n")
        }
    })
}

/// Sets `n` and streams the body.
fn begin(session: &Session) {
    let n = session.get_value("n").and_then(|v| v.as_u64()).unwrap_or(0) + 1;
    session.insert_value("n", n.into());
}

trait StreamingApp {
    fn serve(sessions: SessionManager) -> impl Future<Output = Server>;
}

struct Axum;

impl StreamingApp for Axum {
    async fn serve(sessions: SessionManager) -> Server {
        use axum::routing::get;
        async fn download(session: Session) -> axum::response::Response {
            begin(&session);
            let body = axum::body::Body::from_stream(
                chunks(session).map(Ok::<_, std::convert::Infallible>),
            );
            axum::response::Response::new(body)
        }
        async fn get_state(session: Session) -> axum::Json<serde_json::Value> {
            axum::Json(session.to_map().into())
        }
        let app = axum::Router::new()
            .route("/stream", get(download))
            .route("/get", get(get_state))
            .layer(http_session::axum::SessionLayer::new(sessions));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            addr,
            stop: Box::new(move || task.abort()),
        }
    }
}

struct Actix;

impl StreamingApp for Actix {
    async fn serve(sessions: SessionManager) -> Server {
        async fn download(session: Session) -> actix_web::HttpResponse {
            begin(&session);
            let body = chunks(session)
                .map(|chunk| Ok::<_, std::convert::Infallible>(actix_web::web::Bytes::from(chunk)));
            actix_web::HttpResponse::Ok().streaming(body)
        }
        async fn get_state(session: Session) -> actix_web::HttpResponse {
            actix_web::HttpResponse::Ok().json(session.to_map())
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .route("/stream", actix_web::web::get().to(download))
                        .route("/get", actix_web::web::get().to(get_state))
                        .wrap(http_session::actix::SessionMiddleware::new(
                            sessions.clone(),
                        ))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
                let _ = tx.send(server.handle());
                let _ = server.await;
            });
        });
        let handle = rx.await.unwrap();
        Server {
            addr,
            stop: Box::new(move || drop(handle.stop(false))),
        }
    }
}

struct Warp;

impl StreamingApp for Warp {
    async fn serve(sessions: SessionManager) -> Server {
        use http_session::warp::{recover, session, SessionCommit};
        use warp::Filter;
        let events = warp::path!("stream").and(session(sessions.clone())).then(
            |session: Session, commit: SessionCommit| async move {
                begin(&session);
                let events = chunks(session).map(|chunk| {
                    Ok::<_, std::convert::Infallible>(warp::sse::Event::default().data(chunk))
                });
                commit.reply(warp::sse::reply(events)).await
            },
        );
        let state = warp::path!("get").and(session(sessions)).then(
            |session: Session, commit: SessionCommit| async move {
                commit.reply(warp::reply::json(&session.to_map())).await
            },
        );
        let routes = events.or(state).unify().recover(recover);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(warp::serve(routes).incoming(listener).run());
        Server {
            addr,
            stop: Box::new(move || task.abort()),
        }
    }
}

/// GET `/stream`: the head (with its Set-Cookie) arrives before the body
/// has streamed; then the session holds `n` but not `late`.
async fn head_carries_the_cookie<A: StreamingApp>(name: &str) {
    let sessions = SessionManager::builder(MemoryStore::memory())
        .max_age(600)
        .build()
        .unwrap();
    let server = A::serve(sessions).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get("/stream")
        .header(hyper::header::HOST, server.addr.to_string())
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .expect("a response head in time")
        .unwrap();
    let head_after = started.elapsed();
    let cookie = response
        .headers()
        .get(hyper::header::SET_COOKIE)
        .unwrap_or_else(|| panic!("{name}: no Set-Cookie in the head"))
        .to_str()
        .unwrap()
        .to_owned();
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the body in time")
        .unwrap()
        .to_bytes();
    let body_after = started.elapsed();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("chunk 2"), "{name}: {text}");
    eprintln!("{name}: head after {head_after:?}, whole body after {body_after:?}");
    assert!(
        head_after < GAP,
        "{name}: the head came after {head_after:?}, not before the body"
    );
    assert!(
        body_after >= GAP * 3,
        "{name}: the body streamed for {body_after:?}"
    );
    // The next request sees what the handler set, not what the stream set.
    let id = cookie.split(';').next().unwrap();
    let mut app = harness::App {
        server,
        cookie_name: "AIOHTTP_SESSION".to_owned(),
        jar: Some(id.trim_start_matches("AIOHTTP_SESSION=").to_owned()),
        label: name.to_owned(),
    };
    let state = app.get("/get").await.json();
    assert_eq!(state, serde_json::json!({"n": 1}), "{name}: {state}");
}

#[tokio::test]
async fn axum_sends_the_cookie_before_a_streamed_body() {
    head_carries_the_cookie::<Axum>("axum").await;
}

#[tokio::test]
async fn actix_sends_the_cookie_before_a_streamed_body() {
    head_carries_the_cookie::<Actix>("actix").await;
}

#[tokio::test]
async fn warp_sends_the_cookie_before_server_sent_events() {
    head_carries_the_cookie::<Warp>("warp").await;
}
