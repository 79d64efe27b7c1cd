//! actix-web + actix-session with `--workers` workers (default 1, as the
//! http-session example servers), bound to 127.0.0.1: `--store cookie`
//! (CookieSessionStore: the session in a private, i.e. encrypted, cookie),
//! `--store redis` (RedisSessionStore over one multiplexed connection), or
//! `--store none`: the same `/bare` route with no session middleware.
//! Browser-session cookie, not Secure, as the http-session example servers
//! send theirs.

use actix_session::storage::{CookieSessionStore, RedisSessionStore, SessionStore};
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

async fn bare() -> HttpResponse {
    HttpResponse::Ok().json("ok")
}

async fn incr(session: Session) -> HttpResponse {
    let n = session.get::<i64>("n").ok().flatten().unwrap_or(0) + 1;
    let _ = session.insert("n", n);
    HttpResponse::Ok().json(json!({ "n": n }))
}

fn main() -> std::io::Result<()> {
    let options = http_session_load_peers::options(&["cookie", "redis"]);
    actix_web::rt::System::new().block_on(async move {
        // A fixed key: the benchmark needs no secrecy, only the work.
        let key = Key::from(&[7u8; 64]);
        let (port, workers) = (options.port, options.workers);
        match options.store.as_str() {
            "none" => {
                let server = HttpServer::new(|| App::new().route("/bare", web::get().to(bare)))
                    .workers(workers)
                    .bind(("127.0.0.1", port))?;
                announce(server.addrs());
                server.run().await
            }
            "cookie" => serve(CookieSessionStore::default, key, port, workers).await,
            _ => {
                let url = &options.redis_url;
                let store = RedisSessionStore::new(url.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("redis at {url}: {e}"));
                serve(move || store.clone(), key, port, workers).await
            }
        }
    })
}

/// Serves the two routes behind `SessionMiddleware` over the store that
/// `store` makes (HttpServer builds the app once per worker).
async fn serve<S, F>(store: F, key: Key, port: u16, workers: usize) -> std::io::Result<()>
where
    S: SessionStore + 'static,
    F: Fn() -> S + Clone + Send + 'static,
{
    let server = HttpServer::new(move || {
        App::new()
            .route("/bare", web::get().to(bare))
            .route("/incr", web::get().to(incr))
            .wrap(
                SessionMiddleware::builder(store(), key.clone())
                    .cookie_secure(false)
                    .build(),
            )
    })
    .workers(workers)
    .bind(("127.0.0.1", port))?;
    announce(server.addrs());
    server.run().await
}

fn announce(addrs: Vec<std::net::SocketAddr>) {
    addrs
        .into_iter()
        .for_each(http_session_load_peers::announce);
}
