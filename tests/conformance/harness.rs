//! The conformance harness: a framework driver trait, the store kinds, and
//! an HTTP client with a one-cookie jar, over real HTTP on loopback.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{COOKIE, HOST, SET_COOKIE};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use http_session::{MemoryStore, PlainStore, SessionManager, SessionManagerBuilder};

/// A running server; dropping it stops the server.
pub struct Server {
    pub addr: SocketAddr,
    pub stop: Box<dyn FnOnce() + Send>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let stop = std::mem::replace(&mut self.stop, Box::new(|| {}));
        stop();
    }
}

/// One web framework, serving the shared example routes.
pub trait Framework {
    const NAME: &'static str;
    /// Starts the example app with `sessions` on 127.0.0.1 and a free port.
    fn serve(sessions: SessionManager) -> impl Future<Output = Server>;
}

/// The key every keyed store uses unless a case asks for the other one.
pub const KEY_A: [u8; 32] = [0x11; 32];
pub const KEY_B: [u8; 32] = [0x22; 32];

/// The stores the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Plain,
    Fernet,
    NaCl,
    Memory,
    Redis,
    Memcached,
    /// The Redis Cluster of `scripts/services.sh start` (3 masters).
    RedisCluster,
    /// The master the Sentinels of `scripts/services.sh start` name.
    RedisSentinel,
    /// The ring of three memcached servers of `scripts/services.sh start`.
    MemcachedRing,
}

/// A server address the test script exported; a clear failure when unset.
pub fn service_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: run the tests through scripts/test.sh, which starts \
             redis-server (single, cluster, sentinel) and memcached (single, ring) on \
             loopback with scripts/services.sh and exports their addresses"
        ),
    }
}

/// A store on the shared Redis Cluster.
#[cfg(feature = "redis-cluster")]
fn redis_cluster() -> SessionManagerBuilder {
    let urls = service_env("HTTP_SESSION_REDIS_CLUSTER");
    SessionManager::builder(
        http_session::RedisStore::cluster(urls.split(',')).expect("valid cluster URLs"),
    )
}

#[cfg(not(feature = "redis-cluster"))]
fn redis_cluster() -> SessionManagerBuilder {
    panic!("StoreKind::RedisCluster needs the redis-cluster feature")
}

/// A store on the master of the shared Sentinel set.
#[cfg(feature = "redis-sentinel")]
fn redis_sentinel() -> SessionManagerBuilder {
    let spec = service_env("HTTP_SESSION_REDIS_SENTINEL");
    let (master, urls) = spec
        .split_once('@')
        .expect("HTTP_SESSION_REDIS_SENTINEL is MASTER@URL,URL,...");
    SessionManager::builder(
        http_session::RedisStore::sentinel(master, urls.split(',')).expect("valid Sentinel URLs"),
    )
}

#[cfg(not(feature = "redis-sentinel"))]
fn redis_sentinel() -> SessionManagerBuilder {
    panic!("StoreKind::RedisSentinel needs the redis-sentinel feature")
}

impl StoreKind {
    /// Whether the session lives in the cookie (it cannot be revoked).
    pub fn is_cookie_store(self) -> bool {
        matches!(self, StoreKind::Plain | StoreKind::Fernet | StoreKind::NaCl)
    }

    /// Whether two servers built from this kind see the same sessions (a
    /// Redis or memcached server shared by several app processes).
    pub fn is_shared(self) -> bool {
        matches!(
            self,
            StoreKind::Redis
                | StoreKind::Memcached
                | StoreKind::RedisCluster
                | StoreKind::RedisSentinel
                | StoreKind::MemcachedRing
        )
    }

    /// Whether the store keeps a per-user index (lists and revokes a
    /// user's sessions).
    pub fn has_user_index(self) -> bool {
        matches!(
            self,
            StoreKind::Memory
                | StoreKind::Redis
                | StoreKind::RedisCluster
                | StoreKind::RedisSentinel
        )
    }

    /// A session id no test has used (32 lowercase hex digits).
    pub fn unique_id() -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:024x}{:08x}",
            nanos & ((1 << 96) - 1),
            (u64::from(std::process::id()) << 16 | n) & 0xffff_ffff
        )
    }

    /// A builder for this store, sealing with `key`. Each call makes a new
    /// store value: for the memory store an empty one, for Redis and
    /// memcached (single, cluster, Sentinel, ring) a new client of the same
    /// servers.
    pub fn builder(self, key: [u8; 32]) -> SessionManagerBuilder {
        match self {
            StoreKind::Plain => SessionManager::builder(PlainStore::plain()),
            StoreKind::Fernet => SessionManager::builder(http_session::FernetStore::fernet(
                &http_session::FernetKey::from_bytes(&key).expect("32-byte key"),
            )),
            StoreKind::NaCl => SessionManager::builder(http_session::NaClStore::nacl(
                &http_session::NaClKey::from_bytes(&key).expect("32-byte key"),
            )),
            StoreKind::Memory => SessionManager::builder(MemoryStore::memory()),
            StoreKind::Redis => SessionManager::builder(
                http_session::RedisStore::redis(&service_env("HTTP_SESSION_REDIS_URL"))
                    .expect("valid redis URL"),
            ),
            StoreKind::Memcached => SessionManager::builder(
                http_session::MemcachedStore::memcached(service_env("HTTP_SESSION_MEMCACHED")),
            ),
            StoreKind::RedisCluster => redis_cluster(),
            StoreKind::RedisSentinel => redis_sentinel(),
            StoreKind::MemcachedRing => SessionManager::builder(
                http_session::MemcachedStore::ring(
                    service_env("HTTP_SESSION_MEMCACHED_RING")
                        .split(',')
                        .map(str::to_owned),
                )
                .expect("valid memcached ring addresses"),
            ),
        }
    }
}

/// A clock the test moves by hand, for the manager's `clock`.
#[derive(Clone)]
pub struct TestClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl TestClock {
    /// A clock pinned at the current time.
    pub fn now() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        Self(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(now)))
    }

    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set(&self, to: u64) {
        self.0.store(to, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn advance(&self, by: u64) {
        self.0.fetch_add(by, std::sync::atomic::Ordering::SeqCst);
    }

    /// The function the manager's builder takes.
    pub fn source(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let clock = self.clone();
        move || clock.get()
    }
}

/// What a case needs: a framework and a store.
pub struct Fixture<F> {
    pub store: StoreKind,
    _framework: std::marker::PhantomData<F>,
}

impl<F: Framework> Fixture<F> {
    pub fn new(store: StoreKind) -> Self {
        Self {
            store,
            _framework: std::marker::PhantomData,
        }
    }

    /// A server with default options and key A.
    pub async fn app(&self) -> App {
        self.app_with(|b| b).await
    }

    /// A server whose manager is configured by `configure` (key A).
    pub async fn app_with(
        &self,
        configure: impl FnOnce(SessionManagerBuilder) -> SessionManagerBuilder,
    ) -> App {
        self.app_keyed(KEY_A, configure).await
    }

    pub async fn app_keyed(
        &self,
        key: [u8; 32],
        configure: impl FnOnce(SessionManagerBuilder) -> SessionManagerBuilder,
    ) -> App {
        let sessions = configure(self.store.builder(key))
            .build()
            .expect("valid session options");
        let name = sessions.config().name().to_owned();
        App {
            server: F::serve(sessions).await,
            cookie_name: name,
            jar: None,
            label: format!("{} x {:?}", F::NAME, self.store),
        }
    }
}

/// A response as the cases see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub set_cookies: Vec<String>,
    /// Every `Vary` header value.
    pub vary: Vec<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The one Set-Cookie header, if any (more than one is a failure).
    pub fn set_cookie(&self) -> Option<&str> {
        assert!(
            self.set_cookies.len() <= 1,
            "more than one Set-Cookie: {:?}",
            self.set_cookies
        );
        self.set_cookies.first().map(String::as_str)
    }
}

/// A client of one running server with a one-cookie jar (the session
/// cookie, kept exactly as sent, quotes included, like browsers and curl).
pub struct App {
    pub server: Server,
    pub cookie_name: String,
    pub jar: Option<String>,
    pub label: String,
}

impl App {
    /// Sends a request with the jar's cookie and updates the jar from the
    /// response.
    pub async fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let cookie = self
            .jar
            .as_ref()
            .map(|v| format!("{}={v}", self.cookie_name));
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let reply = self.raw(method, path, cookie.as_deref(), body).await;
        self.absorb(&reply);
        reply
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body)).await
    }

    /// Sends a request with exactly this `Cookie` header, leaving the jar alone.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let future = request(self.server.addr, method, path, cookie, body);
        match tokio::time::timeout(Duration::from_secs(10), future).await {
            Ok(reply) => reply,
            Err(_) => panic!("[{}] {method} {path} timed out", self.label),
        }
    }

    /// Reads the session's meta with a given raw cookie value (jar untouched).
    pub async fn meta_with_cookie(&self, value: &str) -> Reply {
        let cookie = format!("{}={value}", self.cookie_name);
        self.raw("GET", "/meta", Some(&cookie), Vec::new()).await
    }

    fn absorb(&mut self, reply: &Reply) {
        let prefix = format!("{}=", self.cookie_name);
        for line in &reply.set_cookies {
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            let value = split_value(rest);
            if line.contains("Max-Age=0") {
                self.jar = None;
            } else {
                self.jar = Some(value.to_owned());
            }
        }
    }
}

/// The cookie value at the start of a Set-Cookie line (up to `;`, quotes
/// respected).
pub fn split_value(rest: &str) -> &str {
    if rest.starts_with('"') {
        let bytes = rest.as_bytes();
        let mut i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return &rest[..i + 1],
                _ => i += 1,
            }
        }
        rest
    } else {
        rest.split(';').next().unwrap_or("")
    }
}

/// One HTTP/1.1 request over a new loopback connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the test server");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string());
    if let Some(cookie) = cookie {
        builder = builder.header(COOKIE, cookie);
    }
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .expect("valid request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let set_cookies = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ASCII Set-Cookie").to_owned())
        .collect();
    let vary = response
        .headers()
        .get_all(hyper::header::VARY)
        .iter()
        .map(|v| v.to_str().expect("ASCII Vary").to_owned())
        .collect();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        set_cookies,
        vary,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Serves the axum example app.
pub struct Axum;

impl Framework for Axum {
    const NAME: &'static str = "axum";

    async fn serve(sessions: SessionManager) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let app = crate::shared::axum_app::router(sessions);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            addr,
            stop: Box::new(move || task.abort()),
        }
    }
}

/// Serves the actix-web example app. actix-web runs on its own runtime (an
/// actix `System`), so the server gets a dedicated thread with one worker;
/// dropping the [`Server`] stops it through its handle.
#[cfg(feature = "actix")]
pub struct Actix;

#[cfg(feature = "actix")]
impl Framework for Actix {
    const NAME: &'static str = "actix";

    async fn serve(sessions: SessionManager) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (handle_tx, handle_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    crate::shared::actix_app::app(sessions.clone())
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(0)
                .listen(listener)
                .expect("listen on loopback")
                .run();
                let _ = handle_tx.send(server.handle());
                let _ = server.await;
            });
        });
        let handle = handle_rx.await.expect("actix server started");
        Server {
            addr,
            // Sending the command is what stops the server; its completion
            // future need not be awaited.
            stop: Box::new(move || drop(handle.stop(false))),
        }
    }
}

/// Serves the warp example app on the test's tokio runtime.
#[cfg(feature = "warp")]
pub struct Warp;

#[cfg(feature = "warp")]
impl Framework for Warp {
    const NAME: &'static str = "warp";

    async fn serve(sessions: SessionManager) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let routes = crate::shared::warp_app::routes(sessions);
        let task = tokio::spawn(warp::serve(routes).incoming(listener).run());
        Server {
            addr,
            stop: Box::new(move || task.abort()),
        }
    }
}
