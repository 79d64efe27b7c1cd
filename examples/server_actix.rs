//! The example server on actix-web, bound to 127.0.0.1. Options: see
//! `examples/shared/cli.rs` (`--store memory --port 0 --workers 1`, ...).

#[path = "shared/mod.rs"]
mod shared;

use actix_web::HttpServer;
use shared::{actix_app, cli};

fn main() -> std::io::Result<()> {
    let options = cli::from_env_or_exit();
    cli::init_logging();
    let sessions = options.sessions;
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || actix_app::app(sessions.clone()))
            .workers(options.workers)
            .bind(("127.0.0.1", options.port))?;
        for addr in server.addrs() {
            cli::announce(addr);
        }
        server.run().await
    })
}
