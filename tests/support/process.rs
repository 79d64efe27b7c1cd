//! Server processes for the tests that spawn them (`tests/interop`,
//! `tests/shared_sessions.rs`, `tests/browser.rs`).

use std::net::SocketAddr;
use std::time::Duration;

/// The example binaries, built next to the test binaries (`scripts/test.sh`
/// builds them before the tests run).
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests through scripts/test.sh, or build the examples first \
         (`cargo build --all-features --examples`)",
        path.display()
    );
    path
}

/// Reads the `listening on http://ADDR` line a server process prints once
/// ready (30 s at most).
pub fn wait_for_address(child: &mut std::process::Child) -> Result<SocketAddr, String> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "no address within 30 s".to_owned())?;
    line.trim()
        .strip_prefix("listening on http://")
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| format!("no address announced: {line:?}"))
}
