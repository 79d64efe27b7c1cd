//! The example server on warp, bound to 127.0.0.1. Options: see
//! `examples/shared/cli.rs` (`--store memory --port 0 --workers 1`, ...).

#[path = "shared/mod.rs"]
mod shared;

use shared::{cli, warp_app};

fn main() -> std::io::Result<()> {
    let options = cli::from_env_or_exit();
    cli::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.workers)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
        cli::announce(listener.local_addr()?);
        warp::serve(warp_app::routes(options.sessions))
            .incoming(listener)
            .run()
            .await;
        Ok(())
    })
}
