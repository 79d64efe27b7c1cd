//! axum + tower-sessions on a multi-thread runtime of `--workers` threads
//! (default 1, as the http-session example servers), bound to 127.0.0.1:
//! `--store memory` (MemoryStore, tower-sessions 0.15), `--store redis`
//! (tower-sessions-redis-store 0.16 on tower-sessions 0.14, one fred
//! connection), or `--store none`: the same router with no session layer.
//! Two more measure what axum itself costs an untouched request behind a
//! layer (for the untouched-request goal): `--store forward`, behind a
//! layer that only forwards the request, and `--store extension`, behind
//! one that also inserts one `Arc` as a request extension (as a session
//! layer hands its lazy session to the extractor).
//! Session cookie `id`, no Max-Age, not Secure, as the http-session example
//! servers send theirs.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

fn main() -> std::io::Result<()> {
    let options = http_session_load_peers::options(&["memory", "redis", "forward", "extension"]);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.workers)
        .enable_all()
        .build()?
        .block_on(async move {
            let app = match options.store.as_str() {
                "memory" => memory(),
                "none" => Router::new().route("/bare", get(bare)),
                "forward" => Router::new()
                    .route("/bare", get(bare))
                    .layer(layers::Forward { extension: false }),
                "extension" => Router::new()
                    .route("/bare", get(bare))
                    .layer(layers::Forward { extension: true }),
                _ => redis(&options.redis_url).await,
            };
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
            http_session_load_peers::announce(listener.local_addr()?);
            axum::serve(listener, app).await
        })
}

async fn bare() -> Json<&'static str> {
    Json("ok")
}

fn memory() -> Router {
    use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

    async fn incr(session: Session) -> Json<Value> {
        let n = session.get::<i64>("n").await.ok().flatten().unwrap_or(0) + 1;
        let _ = session.insert("n", n).await;
        Json(json!({ "n": n }))
    }

    Router::new()
        .route("/bare", get(bare))
        .route("/incr", get(incr))
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false))
}

async fn redis(url: &str) -> Router {
    use tower_sessions_014::{Session, SessionManagerLayer};
    use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
    use tower_sessions_redis_store::RedisStore;

    async fn incr(session: Session) -> Json<Value> {
        let n = session.get::<i64>("n").await.ok().flatten().unwrap_or(0) + 1;
        let _ = session.insert("n", n).await;
        Json(json!({ "n": n }))
    }

    let config = Config::from_url(url).unwrap_or_else(|e| panic!("--redis-url {url}: {e}"));
    let pool = Pool::new(config, None, None, None, 1).unwrap_or_else(|e| panic!("fred pool: {e}"));
    pool.init()
        .await
        .unwrap_or_else(|e| panic!("redis at {url}: {e}"));
    Router::new()
        .route("/bare", get(bare))
        .route("/incr", get(incr))
        .layer(SessionManagerLayer::new(RedisStore::new(pool)).with_secure(false))
}

mod layers {
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use axum::http::Request;
    use tower_service::Service;

    /// A layer whose service forwards every request to the inner one and
    /// returns its future unchanged; with `extension`, it first inserts an
    /// `Arc` into the request's extensions.
    #[derive(Clone, Copy)]
    pub struct Forward {
        pub extension: bool,
    }

    impl<S> tower_layer::Layer<S> for Forward {
        type Service = Forwarded<S>;

        fn layer(&self, inner: S) -> Forwarded<S> {
            Forwarded {
                inner,
                extension: self.extension,
            }
        }
    }

    #[derive(Clone)]
    pub struct Forwarded<S> {
        inner: S,
        extension: bool,
    }

    /// What the extension layer hands on.
    #[derive(Clone)]
    struct Handed(#[allow(dead_code)] Arc<u64>);

    impl<S: Service<Request<B>>, B> Service<Request<B>> for Forwarded<S> {
        type Response = S::Response;
        type Error = S::Error;
        type Future = S::Future;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, mut request: Request<B>) -> S::Future {
            if self.extension {
                request.extensions_mut().insert(Handed(Arc::new(0)));
            }
            self.inner.call(request)
        }
    }
}
