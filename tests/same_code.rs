//! The same session code in every framework:
//!
//! 1. one handler body, `count`, is registered unchanged as an axum and an
//!    actix-web handler, and called unchanged from a warp route (its
//!    `Result<String, Error>` is a reply in all three); one setup value
//!    (`SessionManager`) serves all three;
//! 2. the three example apps (all of them over `routes::dispatch`) answer
//!    the same request sequence with the same statuses, JSON bodies and
//!    Set-Cookie headers, for every store.

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    reason = "test code: a failed expectation is a failed test"
)]

#[path = "../examples/shared/mod.rs"]
mod shared;

#[allow(dead_code, reason = "shared with the conformance suite")]
#[path = "conformance/harness.rs"]
mod harness;

use std::future::Future;

use harness::{App, Framework, Server, StoreKind};
use http_session::{Session, SessionManager, Typed};
use serde_json::{json, Value};

/// The one handler body: the same `async fn`, with the same argument and
/// return types, is an axum handler and an actix-web handler.
async fn count(session: Session) -> Result<String, http_session::Error> {
    let n: u64 = session.get("n")?.unwrap_or(0) + 1;
    session.insert("n", n)?;
    Ok(n.to_string())
}

/// A typed session value: the same handler bodies in every framework.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Cart {
    items: Vec<String>,
}

impl http_session::SessionData for Cart {
    const KEY: &'static str = "cart";
}

/// Adds an item: saved because it changed.
async fn add_item(mut cart: Typed<Cart>) -> String {
    let next = format!("item {}", cart.items.len() + 1);
    cart.items.push(next);
    cart.items.len().to_string()
}

/// Reads the cart only: nothing is saved, no Set-Cookie.
async fn peek(cart: Typed<Cart>) -> String {
    cart.items.len().to_string()
}

/// Serves `count` at `/count`, and the typed `add_item` and `peek` at
/// `/cart` and `/peek`, on one framework.
trait CountApp {
    fn serve(sessions: SessionManager) -> impl Future<Output = Server>;
}

struct AxumCount;

impl CountApp for AxumCount {
    async fn serve(sessions: SessionManager) -> Server {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/count", get(count))
            .route("/cart", get(add_item))
            .route("/peek", get(peek))
            .layer(http_session::axum::SessionLayer::new(sessions));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            addr,
            stop: Box::new(move || task.abort()),
        }
    }
}

struct ActixCount;

impl CountApp for ActixCount {
    async fn serve(sessions: SessionManager) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .route("/count", actix_web::web::get().to(count))
                        .route("/cart", actix_web::web::get().to(add_item))
                        .route("/peek", actix_web::web::get().to(peek))
                        .wrap(http_session::actix::SessionMiddleware::new(
                            sessions.clone(),
                        ))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .expect("listen")
                .run();
                let _ = tx.send(server.handle());
                let _ = server.await;
            });
        });
        let handle = rx.await.expect("started");
        Server {
            addr,
            stop: Box::new(move || drop(handle.stop(false))),
        }
    }
}

struct WarpCount;

impl CountApp for WarpCount {
    async fn serve(sessions: SessionManager) -> Server {
        use http_session::warp::{recover, session, SessionCommit};
        use warp::Filter;
        let counted = warp::path!("count").and(session(sessions.clone())).then(
            |session: Session, commit: SessionCommit| async move {
                commit.reply(count(session).await).await
            },
        );
        // The typed handlers take `Typed<Cart>`, loaded from the filter's
        // session (warp has no extractors).
        let cart = warp::path!("cart").and(session(sessions.clone())).then(
            |session: Session, commit: SessionCommit| async move {
                match Typed::<Cart>::load(&session) {
                    Ok(cart) => commit.reply(add_item(cart).await).await,
                    Err(e) => commit.reply(e).await,
                }
            },
        );
        let peeked = warp::path!("peek").and(session(sessions)).then(
            |session: Session, commit: SessionCommit| async move {
                match Typed::<Cart>::load(&session) {
                    Ok(cart) => commit.reply(peek(cart).await).await,
                    Err(e) => commit.reply(e).await,
                }
            },
        );
        let routes = counted.or(cart).unify().or(peeked).unify().recover(recover);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(warp::serve(routes).incoming(listener).run());
        Server {
            addr,
            stop: Box::new(move || task.abort()),
        }
    }
}

async fn count_three_times<C: CountApp>(store: StoreKind) -> Vec<(u16, String, bool)> {
    let sessions = store.builder(harness::KEY_A).build().expect("options");
    let mut app = App {
        server: C::serve(sessions).await,
        cookie_name: "AIOHTTP_SESSION".to_owned(),
        jar: None,
        label: String::new(),
    };
    let mut out = Vec::new();
    for _ in 0..3 {
        let reply = app.get("/count").await;
        out.push((
            reply.status,
            reply.body.clone(),
            reply.set_cookie().is_some(),
        ));
    }
    out
}

#[tokio::test]
async fn one_handler_body_in_three_frameworks() {
    for store in [
        StoreKind::Plain,
        StoreKind::Fernet,
        StoreKind::NaCl,
        StoreKind::Memory,
    ] {
        let expected: Vec<(u16, String, bool)> =
            (1..=3).map(|n| (200, n.to_string(), true)).collect();
        assert_eq!(
            count_three_times::<AxumCount>(store).await,
            expected,
            "axum {store:?}"
        );
        assert_eq!(
            count_three_times::<ActixCount>(store).await,
            expected,
            "actix {store:?}"
        );
        assert_eq!(
            count_three_times::<WarpCount>(store).await,
            expected,
            "warp {store:?}"
        );
    }
}

#[tokio::test]
async fn one_typed_handler_body_in_three_frameworks() {
    async fn run<C: CountApp>(store: StoreKind) -> Vec<(u16, String, bool)> {
        let sessions = store.builder(harness::KEY_A).build().expect("options");
        let mut app = App {
            server: C::serve(sessions).await,
            cookie_name: "AIOHTTP_SESSION".to_owned(),
            jar: None,
            label: String::new(),
        };
        let mut out = Vec::new();
        for path in ["/peek", "/cart", "/cart", "/peek", "/cart", "/get"] {
            let reply = app.get(path).await;
            out.push((
                reply.status,
                reply.body.clone(),
                reply.set_cookie().is_some(),
            ));
        }
        out
    }
    let expected = vec![
        // Absent: the default, and nothing saved.
        (200, "0".to_owned(), false),
        (200, "1".to_owned(), true),
        (200, "2".to_owned(), true),
        // Unchanged: nothing saved.
        (200, "2".to_owned(), false),
        (200, "3".to_owned(), true),
        (404, String::new(), false),
    ];
    for store in [StoreKind::Plain, StoreKind::Fernet, StoreKind::Memory] {
        let mut seen = vec![
            ("axum", run::<AxumCount>(store).await),
            ("actix", run::<ActixCount>(store).await),
            ("warp", run::<WarpCount>(store).await),
        ];
        for (name, got) in &mut seen {
            // Frameworks word a 404 differently: the status is what matters.
            got[5].1.clear();
            assert_eq!(*got, expected, "{name} {store:?}");
        }
    }
}

/// What the comparison sees of one reply: status, JSON body with the
/// values that differ between runs (`created`, server-store identities)
/// normalised, and the Set-Cookie line without its value and date.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    body: Value,
    cookie: Option<String>,
    created: Option<i64>,
}

fn normalise(body: &mut Value, created: &mut Option<i64>) {
    if let Value::Object(map) = body {
        if let Some(c) = map.get_mut("created") {
            *created = c.as_i64();
            *c = json!("<created>");
        }
        if let Some(id) = map.get_mut("identity") {
            if id.is_string() && id != "custom-1" {
                *id = json!("<id>");
            }
        }
    }
}

fn cookie_shape(line: &str) -> String {
    let (name, rest) = line.split_once('=').unwrap_or((line, ""));
    let value = harness::split_value(rest);
    let attributes: Vec<&str> = rest[value.len()..]
        .split("; ")
        .filter(|a| !a.is_empty() && !a.starts_with("expires="))
        .collect();
    let value = if value == "\"\"" {
        "<empty>"
    } else {
        "<value>"
    };
    format!("{name}={value}; {}", attributes.join("; "))
}

/// The request sequence: every route, errors included.
fn sequence() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/get", None),
        ("GET", "/meta", None),
        ("GET", "/bare", None),
        (
            "POST",
            "/set",
            Some(json!({"a": 1, "nested": {"x": [1, "two", null]}, "é": "ü"})),
        ),
        ("GET", "/get", None),
        ("GET", "/incr", None),
        ("GET", "/incr", None),
        ("GET", "/meta", None),
        ("POST", "/max_age?n=60", None),
        ("POST", "/max_age?n=none", None),
        ("POST", "/max_age?n=soon", None),
        ("POST", "/touch", None),
        ("POST", "/del?key=a", None),
        ("POST", "/del?key=missing", None),
        ("POST", "/del", None),
        ("GET", "/bare", None),
        ("POST", "/set", Some(json!([1, 2]))),
        ("POST", "/identity?id=late", None),
        ("GET", "/new", None),
        ("GET", "/meta", None),
        ("POST", "/clear", None),
        ("GET", "/meta", None),
        ("POST", "/identity?id=custom-1", None),
        ("GET", "/get", None),
        ("GET", "/no/such/route", None),
        ("POST", "/get", None),
        ("POST", "/bare", None),
        ("HEAD", "/bare", None),
        ("HEAD", "/get", None),
    ]
}

async fn run_sequence<F: Framework>(store: StoreKind) -> Vec<Seen> {
    let mut app = harness::Fixture::<F>::new(store)
        .app_with(|b| b.max_age(3600))
        .await;
    let mut seen = Vec::new();
    for (method, path, body) in sequence() {
        let reply = app.send(method, path, body).await;
        let mut created = None;
        let mut body: Value =
            serde_json::from_str(&reply.body).unwrap_or_else(|_| json!({ "not json": reply.body }));
        normalise(&mut body, &mut created);
        if let Some(Value::Object(session)) = body.get_mut("session") {
            session.remove("created");
        }
        seen.push(Seen {
            status: reply.status,
            body,
            cookie: reply.set_cookie().map(cookie_shape),
            created,
        });
    }
    seen
}

async fn same_answers(store: StoreKind) {
    let axum = run_sequence::<harness::Axum>(store).await;
    let actix = run_sequence::<harness::Actix>(store).await;
    let warp = run_sequence::<harness::Warp>(store).await;
    for (i, (method, path, _)) in sequence().iter().enumerate() {
        for (name, other) in [("actix", &actix[i]), ("warp", &warp[i])] {
            let base = &axum[i];
            assert_eq!(
                (base.status, &base.body, &base.cookie),
                (other.status, &other.body, &other.cookie),
                "{store:?} {method} {path}: axum vs {name}"
            );
            if let (Some(a), Some(b)) = (base.created, other.created) {
                assert!(
                    (a - b).abs() <= 2,
                    "{store:?} {method} {path}: created {a} vs {b}"
                );
            }
        }
    }
}

#[tokio::test]
async fn example_apps_agree_plain() {
    same_answers(StoreKind::Plain).await;
}

#[tokio::test]
async fn example_apps_agree_fernet() {
    same_answers(StoreKind::Fernet).await;
}

#[tokio::test]
async fn example_apps_agree_nacl() {
    same_answers(StoreKind::NaCl).await;
}

#[tokio::test]
async fn example_apps_agree_memory() {
    same_answers(StoreKind::Memory).await;
}

/// The command line the three servers share builds the same manager.
#[test]
fn cli_parses_the_common_options() {
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let key = "00".repeat(32);
    let options = shared::cli::parse(args(&format!(
        "--store fernet --port 0 --key-hex {key} --max-age 60 --cookie-name SID \
         --samesite Strict --secure --domain example.test --workers 2"
    )))
    .expect("valid options");
    assert_eq!(options.workers, 2);
    let config = options.sessions.config();
    assert_eq!(config.name(), "SID");
    assert_eq!(config.max_age(), Some(60));
    assert!(config.secure());
    assert_eq!(config.domain(), Some("example.test"));
    for bad in [
        "--store nacl",
        "--store nacl --key-hex 00",
        "--store fernet --key-hex zz",
        "--store mystery",
        "--store memory --port x",
        "--store memory --samesite lax",
        "--store memory --workers 0",
        "--store memory --bogus",
        "--port 1",
    ] {
        assert!(shared::cli::parse(args(bad)).is_err(), "{bad}");
    }
}

/// The scale-out store flags: a comma list of memcached servers is a ring,
/// `--redis-cluster` and `--redis-sentinel` imply `--store redis` and
/// exclude each other and `--redis-url`.
#[test]
fn cli_parses_the_scale_out_stores() {
    let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let mut good = vec![
        "--store redis --redis-url redis://127.0.0.1:1/",
        "--store memcached --memcached 127.0.0.1:1",
        "--store memcached --memcached 127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
        "--store memcached --memcached 127.0.0.1:1,127.0.0.1:2 --ketama ketama",
        "--store memcached --memcached 127.0.0.1:1,127.0.0.1:2 --ketama md5",
        "--store memcached --memcached 127.0.0.1:1 --ketama weighted",
    ];
    let mut bad = vec![
        "--store memcached --memcached 127.0.0.1:1,,127.0.0.1:2",
        "--store memcached --memcached 127.0.0.1:1,a b:2",
        "--store memcached --memcached 127.0.0.1:1,127.0.0.1:2 --ketama modula",
        "--store memory --ketama ketama",
        "--store memory --redis-cluster redis://127.0.0.1:1",
        "--redis-url redis://127.0.0.1:1/ --redis-cluster redis://127.0.0.1:2",
        "--redis-cluster redis://127.0.0.1:1 --redis-sentinel m@redis://127.0.0.1:2",
        "--redis-sentinel redis://127.0.0.1:2",
        "--redis-sentinel m@",
    ];
    if cfg!(feature = "redis-cluster") {
        good.push("--redis-cluster redis://127.0.0.1:1,redis://127.0.0.1:2");
        good.push("--store redis --redis-cluster redis://127.0.0.1:1");
        bad.push("--redis-cluster redis://127.0.0.1:1,");
    } else {
        bad.push("--redis-cluster redis://127.0.0.1:1");
    }
    if cfg!(feature = "redis-sentinel") {
        good.push("--redis-sentinel mymaster@redis://127.0.0.1:1,redis://127.0.0.1:2");
        good.push("--store redis --redis-sentinel mymaster@redis://127.0.0.1:1");
        bad.push("--redis-sentinel @redis://127.0.0.1:1");
    } else {
        bad.push("--redis-sentinel mymaster@redis://127.0.0.1:1");
    }
    for line in good {
        if let Err(e) = shared::cli::parse(args(line)) {
            panic!("{line}: {e}");
        }
    }
    for line in bad {
        assert!(shared::cli::parse(args(line)).is_err(), "{line}");
    }
}
