//! Private server sets for the failure tests, started through
//! `scripts/services.sh` (start-cluster, start-sentinel, start-ring) in a
//! directory of their own and stopped when the guard drops, also when the
//! test panics. The shared servers of `scripts/test.sh` are never touched.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long `services.sh` may take for one command (starting a cluster
/// takes a few seconds; its own waits are bounded at 30 s each).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh")
}

/// A set of servers in a temporary directory, stopped on drop.
pub struct Private {
    pub dir: PathBuf,
}

impl Private {
    /// Runs `services.sh <command> DIR [args]` in a fresh directory, e.g.
    /// `Private::start("start-cluster", &[])`.
    pub async fn start(command: &str, args: &[&str]) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "http-session-{command}-{}-{nanos:08x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // The guard exists before anything starts: whatever the script
        // started is stopped even if it fails or times out.
        let private = Private { dir };
        let start = Instant::now();
        let dir = private.dir.to_str().unwrap().to_owned();
        let mut all = vec![dir.as_str()];
        all.extend_from_slice(args);
        private.run(command, &all).await;
        eprintln!(
            "services.sh {command}: up in {:?} ({})",
            start.elapsed(),
            private.dir.display()
        );
        private
    }

    /// Runs one `services.sh` command, bounded; panics with its output
    /// when it fails.
    async fn run(&self, command: &str, args: &[&str]) {
        let child = tokio::process::Command::new(script())
            .arg(command)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run services.sh: {e}"));
        let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("services.sh {command} took over {SCRIPT_TIMEOUT:?}"))
            .unwrap();
        assert!(
            output.status.success(),
            "services.sh {command} {args:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The value of `export NAME=value` in `DIR/<file>`.
    pub fn env(&self, file: &str, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap();
        let prefix = format!("export {name}=");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{name} not in {file}: {text}"))
            .to_owned()
    }

    /// The port of process directory `name` (e.g. `cluster/node2`).
    pub fn port(&self, name: &str) -> u16 {
        std::fs::read_to_string(self.dir.join(name).join("port"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// `services.sh kill-node DIR NAME SIGNAL`: returns once the process
    /// is gone.
    pub async fn kill_node(&self, name: &str, signal: &str) {
        let dir = self.dir.to_str().unwrap().to_owned();
        self.run("kill-node", &[&dir, name, signal]).await;
    }

    /// `services.sh restart-node DIR NAME`: returns once it answers again.
    pub async fn restart_node(&self, name: &str) {
        let dir = self.dir.to_str().unwrap().to_owned();
        self.run("restart-node", &[&dir, name]).await;
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let status = std::process::Command::new(script())
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("services.sh stop {} failed: {status:?}", self.dir.display());
        }
        if std::thread::panicking() {
            // Keep the logs of a failed test.
            eprintln!(
                "servers stopped; their logs are kept in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Polls `check` every 50 ms (each poll bounded to 2 s) until it is true;
/// panics with `what` after `limit`. Returns how long it took.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        let ok = tokio::time::timeout(Duration::from_secs(2), check()).await;
        if ok == Ok(true) {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
