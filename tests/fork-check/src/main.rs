//! Fork safety of the values `http-session` draws from its per-thread
//! generator, observed through the public API only: NaCl nonces (the first
//! 24 bytes of a token), Fernet IVs (bytes 9..25) and session ids (the
//! `Set-Cookie` value of a new `MemoryStore` session).
//!
//! 1. `fork_child_draws_differ`: the parent draws (so its generator holds
//!    buffered output), forks; parent and child then draw the same sequence
//!    of values, and no value may appear on both sides.
//! 2. `fork_child_with_failing_os_source_errs`: as 1, but the child first
//!    makes `getrandom(2)` fail (a seccomp filter answering `EIO`): its
//!    draws must be errors, not values from the parent's state, not panics.
//! 3. `fresh_thread_with_failing_os_source_errs`: in such a child, a new
//!    thread's first nonce and IV are errors too. (Not ids: a new session
//!    holds a `serde_json::Map`, whose `RandomState` makes std itself panic
//!    in a thread that has no hash keys yet when the OS source fails.)
//!
//! Prints one line per check and `N passed, M failed`; exits 1 on a
//! failure.

use std::future::Future;
use std::io::{Read, Write};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use http_session::stores::{Fernet, FernetKey, NaCl, NaClKey, Sealer};
use http_session::{MemoryStore, SessionManager};

/// Values drawn per kind and side.
const DRAWS: usize = 4;

struct Sealers {
    nacl: NaCl,
    fernet: Fernet,
    ids: SessionManager,
}

impl Sealers {
    fn new() -> Self {
        Self {
            nacl: NaCl::new(&NaClKey::from_bytes(&[9; 32]).expect("key")),
            fernet: Fernet::new(&FernetKey::from_bytes(&[7; 32]).expect("key")),
            ids: SessionManager::new(MemoryStore::memory()),
        }
    }

    fn nonce(&self) -> Result<Vec<u8>, String> {
        let token = self.nacl.seal(b"{}", 0).map_err(|e| e.to_string())?;
        let raw = STANDARD.decode(token).map_err(|e| e.to_string())?;
        Ok(raw[..24].to_vec())
    }

    fn iv(&self) -> Result<Vec<u8>, String> {
        let token = self.fernet.seal(b"{}", 0).map_err(|e| e.to_string())?;
        let raw = URL_SAFE.decode(token).map_err(|e| e.to_string())?;
        Ok(raw[9..25].to_vec())
    }

    fn id(&self) -> Result<Vec<u8>, String> {
        let lazy = self.ids.start(None::<&[u8]>);
        let session = ready(lazy.get()).map_err(|e| e.to_string())?;
        session.insert("n", 1).map_err(|e| e.to_string())?;
        let header = ready(lazy.finish())
            .map_err(|e| e.to_string())?
            .ok_or("no Set-Cookie")?;
        let text = header.to_str().map_err(|e| e.to_string())?;
        let pair = text.split(';').next().unwrap_or_default();
        let value = pair.split_once('=').map(|(_, v)| v).unwrap_or_default();
        Ok(value.as_bytes().to_vec())
    }

    /// `DRAWS` rounds of nonce, IV and id, each as `kind:hex` or
    /// `kind:error`.
    fn draw(&self) -> Vec<String> {
        self.draw_kinds(true)
    }

    /// `DRAWS` rounds of nonce and IV, and of id when `ids`.
    fn draw_kinds(&self, ids: bool) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..DRAWS {
            let mut values = vec![("nonce", self.nonce()), ("iv", self.iv())];
            if ids {
                values.push(("id", self.id()));
            }
            for (kind, value) in values {
                out.push(match value {
                    Ok(bytes) => format!("{kind}:{}", hex(&bytes)),
                    Err(_) => format!("{kind}:error"),
                });
            }
        }
        out
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls a future that never waits (the memory store answers at once).
fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waited"),
    }
}

/// Makes every later `getrandom(2)` of this process fail with `EIO`.
fn break_getrandom() -> Result<(), String> {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let nr = u32::try_from(libc::SYS_getrandom).map_err(|e| e.to_string())?;
    let mut filter = [
        // seccomp_data.nr is at offset 0.
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EIO as u32,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: plain prctl calls with a filter that outlives them.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(format!(
                "PR_SET_NO_NEW_PRIVS: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &program as *const libc::sock_fprog,
        ) != 0
        {
            return Err(format!(
                "PR_SET_SECCOMP: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    // The filter must bite, or the checks below prove nothing.
    let mut probe = [0u8; 8];
    // SAFETY: a write into a local buffer of the given length.
    let got = unsafe { libc::getrandom(probe.as_mut_ptr().cast(), probe.len(), 0) };
    let err = std::io::Error::last_os_error();
    if got != -1 || err.raw_os_error() != Some(libc::EIO) {
        return Err(format!(
            "getrandom still works under the filter ({got}, {err})"
        ));
    }
    Ok(())
}

/// Runs `child` in a fork child and `parent` here; returns both outputs.
fn forked(
    child: impl FnOnce() -> Vec<String>,
    parent: impl FnOnce() -> Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let mut fds = [0; 2];
    // SAFETY: pipe fills the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: this process is single-threaded here; the child only runs
    // Rust code of this crate and http-session, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: the read end belongs to the parent.
        unsafe { libc::close(fds[0]) };
        let lines = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child))
            .unwrap_or_else(|_| vec!["panic".to_owned()]);
        let text = lines.join("\n");
        // SAFETY: the write end is ours; _exit skips the parent's atexit.
        unsafe {
            libc::write(fds[1], text.as_ptr().cast(), text.len());
            libc::close(fds[1]);
            libc::_exit(0);
        }
    }
    // SAFETY: the write end belongs to the child.
    unsafe { libc::close(fds[1]) };
    let here = parent();
    let mut text = String::new();
    // SAFETY: we own the read end; File closes it when dropped.
    let mut pipe = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    pipe.read_to_string(&mut text).expect("read from the child");
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child died: status {status}"
    );
    let there = text.lines().map(str::to_owned).collect();
    (there, here)
}

fn fork_child_draws_differ(sealers: &Sealers) -> Result<String, String> {
    let (child, parent) = forked(|| sealers.draw(), || sealers.draw());
    if child.len() != 3 * DRAWS || child.iter().any(|v| v.ends_with(":error") || v == "panic") {
        return Err(format!("the child could not draw: {child:?}"));
    }
    let repeated: Vec<&String> = child.iter().filter(|v| parent.contains(v)).collect();
    if repeated.is_empty() {
        Ok(format!("{} values on each side, none shared", child.len()))
    } else {
        Err(format!(
            "{} of the child's {} values repeat the parent's: {repeated:?}",
            repeated.len(),
            child.len()
        ))
    }
}

fn fork_child_with_failing_os_source_errs(sealers: &Sealers) -> Result<String, String> {
    let (child, parent) = forked(
        || match break_getrandom() {
            Ok(()) => sealers.draw(),
            Err(e) => vec![format!("setup:{e}")],
        },
        || sealers.draw(),
    );
    if let Some(setup) = child.iter().find(|v| v.starts_with("setup:")) {
        return Err(setup.clone());
    }
    if child.iter().any(|v| v == "panic") {
        return Err("the child panicked".to_owned());
    }
    let drawn: Vec<&String> = child.iter().filter(|v| !v.ends_with(":error")).collect();
    if drawn.is_empty() && child.len() == 3 * DRAWS {
        Ok(format!("all {} draws are errors", child.len()))
    } else {
        let shared = drawn.iter().filter(|v| parent.contains(v)).count();
        Err(format!(
            "{} draws succeeded without the OS source ({shared} repeat the parent's): {drawn:?}",
            drawn.len()
        ))
    }
}

fn fresh_thread_with_failing_os_source_errs(sealers: &Sealers) -> Result<String, String> {
    let (child, _) = forked(
        || match break_getrandom() {
            Ok(()) => std::thread::scope(|scope| {
                scope
                    .spawn(|| sealers.draw_kinds(false))
                    .join()
                    .unwrap_or_else(|_| vec!["panic".to_owned()])
            }),
            Err(e) => vec![format!("setup:{e}")],
        },
        Vec::new,
    );
    if child.len() == 2 * DRAWS && child.iter().all(|v| v.ends_with(":error")) {
        Ok(format!("all {} draws are errors", child.len()))
    } else {
        Err(format!("expected only errors: {child:?}"))
    }
}

/// One check: a line of what it saw, or why it failed.
type Check = fn(&Sealers) -> Result<String, String>;

fn main() {
    let sealers = Sealers::new();
    // The generator of this thread is keyed and holds buffered output.
    let warm = sealers.draw();
    assert!(warm.iter().all(|v| !v.ends_with(":error")), "{warm:?}");
    let checks: [(&str, Check); 3] = [
        ("fork_child_draws_differ", fork_child_draws_differ),
        (
            "fork_child_with_failing_os_source_errs",
            fork_child_with_failing_os_source_errs,
        ),
        (
            "fresh_thread_with_failing_os_source_errs",
            fresh_thread_with_failing_os_source_errs,
        ),
    ];
    let (mut passed, mut failed) = (0, 0);
    let mut out = std::io::stdout();
    for (name, check) in checks {
        match check(&sealers) {
            Ok(what) => {
                passed += 1;
                let _ = writeln!(out, "fork-check {name} ... ok ({what})");
            }
            Err(why) => {
                failed += 1;
                let _ = writeln!(out, "fork-check {name} ... FAILED: {why}");
            }
        }
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    std::process::exit(i32::from(failed > 0));
}
