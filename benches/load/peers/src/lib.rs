//! The command line both peers share:
//! `--store NAME [--port N] [--workers N] [--redis-url URL]`, bound to
//! 127.0.0.1. `--store none` serves the same routes with no session layer
//! at all: what the framework alone costs. `--workers` (default 1) is the
//! number of worker threads, as in the http-session example servers, whose
//! runtime flavour each peer also uses (a multi-thread tokio runtime for
//! axum, actix-web's own workers).

/// What a peer server needs to start.
#[derive(Debug)]
pub struct Options {
    pub store: String,
    pub port: u16,
    pub workers: usize,
    pub redis_url: String,
}

/// Parses the process arguments; exits with status 2 on an error.
pub fn options(stores: &[&str]) -> Options {
    let mut options = Options {
        store: String::new(),
        port: 0,
        workers: 1,
        redis_url: "redis://127.0.0.1:6379/".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value"), stores));
        match flag.as_str() {
            "--store" => options.store = value,
            "--port" => options.port = value.parse().unwrap_or_else(|_| fail("bad --port", stores)),
            "--workers" => {
                options.workers = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| fail("bad --workers", stores))
            }
            "--redis-url" => options.redis_url = value,
            other => fail(&format!("unknown argument {other:?}"), stores),
        }
    }
    if options.store != "none" && !stores.contains(&options.store.as_str()) {
        fail(&format!("unknown --store {:?}", options.store), stores);
    }
    options
}

fn fail(message: &str, stores: &[&str]) -> ! {
    eprintln!(
        "error: {message}\nusage: --store {}|none [--port N] [--workers N] [--redis-url URL]",
        stores.join("|")
    );
    std::process::exit(2);
}

/// Prints the line benches/load/run.sh waits for.
pub fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
}
