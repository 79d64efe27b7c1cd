//! A failing store gives an opaque answer in every framework: 503 "Service
//! Unavailable" when it is unreachable, 500 "Internal Server Error" when it
//! fails otherwise (loading or saving). The body carries nothing of the
//! cause; the cause goes to the log. A route that does not use the session
//! never touches the store.

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

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use harness::{App, Framework};
use http_session::stores::{Context, Loaded, SaveRequest, Saved};
use http_session::{Error, SessionManager, SessionStore};
use serde_json::json;

/// A store that fails the way it is told to, with a secret in the cause.
struct FailingStore {
    secret: String,
    load: Option<bool>,
    save: Option<bool>,
    calls: Arc<AtomicUsize>,
}

impl SessionStore for FailingStore {
    async fn load(&self, _: &Context<'_>, _: &str) -> Result<Option<Loaded>, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.load {
            Some(unavailable) => Err(Error::store(unavailable, self.secret.clone())),
            None => Ok(None),
        }
    }

    async fn save(&self, _: &Context<'_>, _: SaveRequest<'_>) -> Result<Saved, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.save {
            Some(unavailable) => Err(Error::store(unavailable, self.secret.clone())),
            None => Ok(Saved::Cookie("id".to_owned())),
        }
    }
}

/// Everything logged by the process, for checking that causes are logged.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::ERROR)
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        log
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged(text: &str) -> bool {
    String::from_utf8_lossy(&log().lock().unwrap()).contains(text)
}

async fn app<F: Framework>(
    secret: &str,
    load: Option<bool>,
    save: Option<bool>,
) -> (App, Arc<AtomicUsize>) {
    log();
    let calls = Arc::new(AtomicUsize::new(0));
    let store = FailingStore {
        secret: secret.to_owned(),
        load,
        save,
        calls: Arc::clone(&calls),
    };
    let sessions = SessionManager::new(store);
    let app = App {
        server: F::serve(sessions).await,
        cookie_name: "AIOHTTP_SESSION".to_owned(),
        jar: None,
        label: F::NAME.to_owned(),
    };
    (app, calls)
}

fn assert_opaque(label: &str, reply: &harness::Reply, status: u16, body: &str, secret: &str) {
    assert_eq!(reply.status, status, "[{label}] {}", reply.body);
    assert_eq!(reply.body, body, "[{label}]");
    assert!(
        !reply.body.contains(secret) && !reply.body.contains("secret"),
        "[{label}]"
    );
    assert_eq!(reply.set_cookies, Vec::<String>::new(), "[{label}]");
}

/// Loading from an unreachable store: 503, opaque body, cause logged.
async fn load_unavailable<F: Framework>() {
    let secret = format!("secret-{}-load-unavailable", F::NAME);
    let (app, calls) = app::<F>(&secret, Some(true), None).await;
    let cookie = "AIOHTTP_SESSION=some-id";
    let reply = app.raw("GET", "/get", Some(cookie), Vec::new()).await;
    assert_opaque(F::NAME, &reply, 503, "Service Unavailable", &secret);
    assert!(logged(&secret), "[{}] the cause is logged", F::NAME);
    // The store recovers by itself: nothing is cached; and a route that
    // never asks for the session works and makes no store call.
    let before = calls.load(Ordering::SeqCst);
    let bare = app.raw("GET", "/bare", Some(cookie), Vec::new()).await;
    assert_eq!(
        (bare.status, bare.body.as_str()),
        (200, "\"ok\""),
        "[{}]",
        F::NAME
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "[{}] /bare used the store",
        F::NAME
    );
}

/// A store that answers with an error while loading: 500.
async fn load_error<F: Framework>() {
    let secret = format!("secret-{}-load-error", F::NAME);
    let (app, _) = app::<F>(&secret, Some(false), None).await;
    let reply = app
        .raw("GET", "/meta", Some("AIOHTTP_SESSION=x"), Vec::new())
        .await;
    assert_opaque(F::NAME, &reply, 500, "Internal Server Error", &secret);
    assert!(logged(&secret), "[{}] the cause is logged", F::NAME);
}

/// Saving fails after the handler ran: its response is replaced by the
/// opaque error.
async fn save_error<F: Framework>(unavailable: bool) {
    let secret = format!("secret-{}-save-{unavailable}", F::NAME);
    let (mut app, _) = app::<F>(&secret, None, Some(unavailable)).await;
    let reply = app.post("/set", json!({"user": "ada"})).await;
    let (status, body) = if unavailable {
        (503, "Service Unavailable")
    } else {
        (500, "Internal Server Error")
    };
    assert_opaque(F::NAME, &reply, status, body, &secret);
    assert!(logged(&secret), "[{}] the cause is logged", F::NAME);
    // A read-only request saves nothing, so it still works.
    assert_eq!(app.get("/get").await.json(), json!({}), "[{}]", F::NAME);
}

macro_rules! store_errors {
    ($module:ident, $framework:ty) => {
        mod $module {
            #[tokio::test]
            async fn load_unavailable_is_an_opaque_503() {
                super::load_unavailable::<$framework>().await;
            }

            #[tokio::test]
            async fn load_error_is_an_opaque_500() {
                super::load_error::<$framework>().await;
            }

            #[tokio::test]
            async fn save_error_is_an_opaque_500() {
                super::save_error::<$framework>(false).await;
            }

            #[tokio::test]
            async fn save_unavailable_is_an_opaque_503() {
                super::save_error::<$framework>(true).await;
            }
        }
    };
}

store_errors!(on_axum, crate::harness::Axum);
store_errors!(on_actix, crate::harness::Actix);
store_errors!(on_warp, crate::harness::Warp);

/// Without `recover`, warp answers an unhandled rejection with its `Debug`
/// text; the session rejection's `Debug` names the kind only.
#[tokio::test]
async fn warp_unrecovered_rejection_leaks_nothing() {
    use http_session::warp::{session, SessionCommit};
    use http_session::Session;
    use warp::Filter;

    log();
    let secret = "secret-warp-unrecovered";
    let store = FailingStore {
        secret: secret.to_owned(),
        load: Some(true),
        save: None,
        calls: Arc::default(),
    };
    let routes = warp::any()
        .and(session(SessionManager::new(store)))
        .map(|_: Session, _: SessionCommit| "unreachable");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(warp::serve(routes).incoming(listener).run());
    let app = App {
        server: harness::Server {
            addr,
            stop: Box::new(move || task.abort()),
        },
        cookie_name: "AIOHTTP_SESSION".to_owned(),
        jar: None,
        label: "warp".to_owned(),
    };
    let reply = app
        .raw("GET", "/", Some("AIOHTTP_SESSION=x"), Vec::new())
        .await;
    assert_eq!(reply.status, 500);
    assert!(!reply.body.contains("secret"), "{}", reply.body);
}
