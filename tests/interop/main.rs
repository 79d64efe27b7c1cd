//! Live interop with the real aiohttp-session: the Python reference server
//! (`tests/interop/app.py`, aiohttp-session from PyPI in the venv made by
//! `scripts/pyenv.sh`) and our example servers (`server_axum`,
//! `server_actix`, `server_warp`) share one cookie jar and, for Redis and
//! memcached, one store server.
//!
//! - `handoff::<framework>::<storage>::{python_to_rust, rust_to_python}`:
//!   the live matrix, 3 frameworks x 5 storages x 2 directions.
//! - `headers::*`: `Set-Cookie` attribute set and order, deletion cookie,
//!   quoted and bare tokens.
//! - `expiry::*`: storage vs per-session `max_age`, Fernet TTL, `created`
//!   age, Redis TTL, the memcached 30-day rule, compared with Python.
//! - `differences::*`: every deliberate difference of the README table,
//!   with Python's behaviour and ours shown side by side.
//! - `ring::*`: a memcached ring shared with Python: pylibmc (libmemcached)
//!   and uhashring place keys where our ring does.
//! - `scale::*`: aiohttp-session and our example server on a memcached
//!   ring, a Redis Cluster and Redis Sentinel share sessions both ways.
//!
//! The interpreter comes from `HTTP_SESSION_PYTHON` (exported by
//! `scripts/test.sh`); Redis and memcached from `HTTP_SESSION_REDIS_URL` and
//! `HTTP_SESSION_MEMCACHED`. Nothing is skipped: a missing variable fails.
//!
//! Python servers start once per option set and are shared by the tests
//! (startup costs about a second); each is started with
//! `--stop-on-stdin-eof` and its stdin pipe is held by this process, so it
//! stops when the test binary exits, however it exits. Its stderr (the
//! tracebacks of the 500s provoked on purpose) goes to
//! `target/tmp/interop-python-*.log`, named in failure messages. Our
//! servers are spawned per test and killed when the test's `App` is
//! dropped.

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a failed expectation is a failed test; measurements are printed"
)]

#[path = "../../examples/shared/mod.rs"]
mod shared;

#[allow(dead_code, reason = "shared with the conformance suite")]
#[path = "../conformance/harness.rs"]
mod harness;

#[path = "../support/process.rs"]
mod process;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self as raw_redis, AsyncCommands};
use harness::{service_env, split_value, App, Reply, Server};
use process::{example, wait_for_address};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------
// Configuration

/// The key both sides seal with (Fernet: signing half, then AES half).
const KEY_HEX: &str = "3c1f9a7be0d24c6581f0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";

fn key_bytes() -> [u8; 32] {
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&KEY_HEX[2 * i..2 * i + 2], 16).unwrap();
    }
    key
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The five aiohttp-session storages (our `simple` is `PlainStore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Storage {
    Simple,
    Fernet,
    NaCl,
    Redis,
    Memcached,
}

impl Storage {
    const ALL: [Storage; 5] = [
        Storage::Simple,
        Storage::Fernet,
        Storage::NaCl,
        Storage::Redis,
        Storage::Memcached,
    ];

    fn from_name(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|storage| storage.name() == name)
            .unwrap_or_else(|| panic!("unknown storage {name}"))
    }

    fn name(self) -> &'static str {
        match self {
            Storage::Simple => "simple",
            Storage::Fernet => "fernet",
            Storage::NaCl => "nacl",
            Storage::Redis => "redis",
            Storage::Memcached => "memcached",
        }
    }

    fn is_server(self) -> bool {
        matches!(self, Storage::Redis | Storage::Memcached)
    }

    /// Flags both servers take for this storage (key, store address).
    fn args(self) -> Vec<String> {
        match self {
            Storage::Simple => vec![],
            Storage::Fernet | Storage::NaCl => vec!["--key-hex".into(), KEY_HEX.into()],
            Storage::Redis => vec!["--redis-url".into(), service_env("HTTP_SESSION_REDIS_URL")],
            Storage::Memcached => vec!["--memcached".into(), service_env("HTTP_SESSION_MEMCACHED")],
        }
    }
}

/// Cookie options, given to both servers with the same flags.
#[derive(Debug, Clone, Copy, Default)]
struct Opts {
    max_age: Option<u64>,
    cookie_name: Option<&'static str>,
    samesite: Option<&'static str>,
    secure: bool,
    domain: Option<&'static str>,
    /// Flags for our servers only (options aiohttp-session does not have).
    rust_only: &'static [&'static str],
}

impl Opts {
    /// The options of the live matrix (and of most other tests, so their
    /// Python servers are shared).
    const MATRIX: Opts = Opts {
        max_age: Some(3600),
        cookie_name: None,
        samesite: Some("Lax"),
        secure: false,
        domain: None,
        rust_only: &[],
    };

    const DEFAULTS: Opts = Opts {
        max_age: None,
        cookie_name: None,
        samesite: None,
        secure: false,
        domain: None,
        rust_only: &[],
    };

    fn cookie_name(&self) -> &'static str {
        self.cookie_name.unwrap_or("AIOHTTP_SESSION")
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(n) = self.max_age {
            args.extend(["--max-age".to_owned(), n.to_string()]);
        }
        if let Some(name) = self.cookie_name {
            args.extend(["--cookie-name".to_owned(), name.to_owned()]);
        }
        if let Some(same_site) = self.samesite {
            args.extend(["--samesite".to_owned(), same_site.to_owned()]);
        }
        if self.secure {
            args.push("--secure".to_owned());
        }
        if let Some(domain) = self.domain {
            args.extend(["--domain".to_owned(), domain.to_owned()]);
        }
        args
    }
}

/// Our three example servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framework {
    Axum,
    Actix,
    Warp,
}

impl Framework {
    const ALL: [Framework; 3] = [Framework::Axum, Framework::Actix, Framework::Warp];

    fn from_name(name: &str) -> Self {
        match name {
            "axum" => Framework::Axum,
            "actix" => Framework::Actix,
            "warp" => Framework::Warp,
            other => panic!("unknown framework {other}"),
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Framework::Axum => "server_axum",
            Framework::Actix => "server_actix",
            Framework::Warp => "server_warp",
        }
    }
}

// ---------------------------------------------------------------------------
// Processes

/// The venv's python, from `scripts/test.sh`.
fn python() -> String {
    std::env::var("HTTP_SESSION_PYTHON").unwrap_or_else(|_| {
        panic!(
            "HTTP_SESSION_PYTHON is not set: run the interop tests through scripts/test.sh, \
             which creates the venv with the real aiohttp-session (scripts/pyenv.sh) and \
             exports its python; or set it to the output of `scripts/pyenv.sh | tail -n1`"
        )
    })
}

/// Python servers by their arguments. A server lives until the test
/// binary exits: its stdin is a pipe held by its `Child` here, and
/// `--stop-on-stdin-eof` stops it when the pipe closes.
#[allow(clippy::type_complexity, reason = "a map of once-started servers")]
static PYTHON_SERVERS: LazyLock<Mutex<HashMap<Vec<String>, Arc<OnceLock<(SocketAddr, PathBuf)>>>>> =
    LazyLock::new(Mutex::default);
static PYTHON_CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Starts `app.py` with `args`; its stderr (tracebacks of the 500s the
/// tests provoke on purpose) goes to a log file under the target dir.
fn start_python(args: &[String]) -> (SocketAddr, PathBuf) {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/app.py");
    // Numbered per run: the next run overwrites the same few files.
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "interop-python-{}.log",
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    let stderr = std::fs::File::create(&log).expect("create the Python log file");
    let python = python();
    let mut child = Command::new(&python)
        .arg(&script)
        .args(["--port", "0", "--stop-on-stdin-eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} (HTTP_SESSION_PYTHON): {e}"));
    let addr = wait_for_address(&mut child).unwrap_or_else(|e| {
        let _ = child.kill();
        let _ = child.wait();
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "app.py {} did not start ({e}); its stderr:\n{output}",
            args.join(" ")
        )
    });
    PYTHON_CHILDREN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(child);
    (addr, log)
}

/// A client of the (shared) Python server for `storage` with `opts`.
fn python_app(storage: Storage, opts: &Opts) -> App {
    let mut args = vec!["--storage".to_owned(), storage.name().to_owned()];
    args.extend(storage.args());
    args.extend(opts.args());
    let cell = PYTHON_SERVERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(args.clone())
        .or_default()
        .clone();
    let (addr, log) = cell.get_or_init(|| start_python(&args)).clone();
    App {
        server: Server {
            addr,
            stop: Box::new(|| {}),
        },
        cookie_name: opts.cookie_name().to_owned(),
        jar: None,
        label: format!("python {} (log: {})", storage.name(), log.display()),
    }
}

/// Starts our example server for `framework`; dropping the `App` kills it.
fn rust_app(framework: Framework, storage: Storage, opts: &Opts) -> App {
    let binary = framework.binary();
    let mut child = Command::new(example(binary))
        .args(["--port", "0", "--workers", "1", "--store", storage.name()])
        .args(storage.args())
        .args(opts.args())
        .args(opts.rust_only)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example server");
    let addr = wait_for_address(&mut child).unwrap_or_else(|e| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{binary} did not start ({e}; its stderr is above)")
    });
    App {
        server: Server {
            addr,
            stop: Box::new(move || {
                let _ = child.kill();
                let _ = child.wait();
            }),
        },
        cookie_name: opts.cookie_name().to_owned(),
        jar: None,
        label: format!("{binary} {}", storage.name()),
    }
}

// ---------------------------------------------------------------------------
// Two servers, one jar

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Python,
    Rust,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Python => Side::Rust,
            Side::Rust => Side::Python,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    PythonToRust,
    RustToPython,
}

/// The Python server and one of ours, driven through one cookie jar.
struct Pair {
    python: App,
    rust: App,
    jar: Option<String>,
    storage: Storage,
}

impl Pair {
    fn start(framework: Framework, storage: Storage, opts: &Opts) -> Self {
        Pair {
            python: python_app(storage, opts),
            rust: rust_app(framework, storage, opts),
            jar: None,
            storage,
        }
    }

    fn app(&mut self, side: Side) -> &mut App {
        match side {
            Side::Python => &mut self.python,
            Side::Rust => &mut self.rust,
        }
    }

    /// Sends a request with the jar's cookie; the jar follows `Set-Cookie`.
    async fn send(&mut self, side: Side, method: &str, path: &str, body: Option<Value>) -> Reply {
        let jar = self.jar.take();
        let app = self.app(side);
        app.jar = jar;
        let reply = app.send(method, path, body).await;
        self.jar = app.jar.take();
        reply
    }

    /// Like `send`, expecting 200 and returning the JSON body.
    async fn ok(&mut self, side: Side, method: &str, path: &str, body: Option<Value>) -> Value {
        let reply = self.send(side, method, path, body).await;
        assert_eq!(
            reply.status,
            200,
            "[{side:?} {}] {method} {path}: {}",
            self.storage.name(),
            reply.body
        );
        reply.json()
    }
}

/// Sends one request with exactly this cookie value (or none), jar untouched.
async fn with_cookie(app: &App, method: &str, path: &str, cookie: Option<&str>) -> Reply {
    let header = cookie.map(|v| format!("{}={v}", app.cookie_name));
    app.raw(method, path, header.as_deref(), Vec::new()).await
}

async fn with_cookie_body(app: &App, path: &str, cookie: Option<&str>, body: &Value) -> Reply {
    let header = cookie.map(|v| format!("{}={v}", app.cookie_name));
    app.raw(
        "POST",
        path,
        header.as_deref(),
        body.to_string().into_bytes(),
    )
    .await
}

// ---------------------------------------------------------------------------
// Cookie text helpers

/// Python's `http.cookies._quote`.
fn py_quote(value: &str) -> String {
    let legal = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:".contains(&b);
    if value.bytes().all(legal) {
        return value.to_owned();
    }
    let mut out = String::from("\"");
    for b in value.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b if legal(b) || b" ()/<=>?@[]{}".contains(&b) => out.push(char::from(b)),
            b => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

/// Undoes `py_quote` (quotes, `\NNN` and `\X`).
fn py_unquote(value: &str) -> String {
    let Some(inner) = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return value.to_owned();
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let octal = bytes
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
            if let Some(d) = octal {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            } else {
                out.push(bytes[i + 1]);
                i += 2;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 cookie")
}

/// A `Set-Cookie` line split into name, raw value and attributes.
#[derive(Debug)]
struct SetCookie {
    name: String,
    value: String,
    attrs: Vec<(String, Option<String>)>,
}

impl SetCookie {
    fn parse(line: &str) -> Self {
        let (name, rest) = line.split_once('=').expect("name=value");
        let value = split_value(rest);
        let tail = &rest[value.len()..];
        let attrs = tail
            .split("; ")
            .filter(|a| !a.is_empty())
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (a.to_owned(), None),
            })
            .collect();
        SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            attrs,
        }
    }

    fn attr(&self, name: &str) -> Option<Option<&str>> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref())
    }

    fn names(&self) -> Vec<&str> {
        self.attrs.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The `name=value` pair's length, the size limited to 4096.
    fn pair_len(&self) -> usize {
        self.name.len() + 1 + self.value.len()
    }

    fn max_age(&self) -> Option<i64> {
        self.attr("Max-Age").flatten().map(|v| v.parse().unwrap())
    }

    fn is_removal(&self) -> bool {
        self.attr("Max-Age") == Some(Some("0")) && self.value == "\"\""
    }
}

/// The one `Set-Cookie` of a reply.
fn set_cookie(reply: &Reply) -> SetCookie {
    SetCookie::parse(reply.set_cookie().expect("a Set-Cookie header"))
}

/// Parses `Www, DD-Mon-YYYY HH:MM:SS GMT` (aiohttp-session's `expires`,
/// with dashes) into Unix seconds.
fn parse_expires(text: &str) -> i64 {
    try_parse_expires(text)
        .unwrap_or_else(|| panic!("expires not in aiohttp-session's form: {text:?}"))
}

fn try_parse_expires(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (weekday, rest) = text.split_once(", ")?;
    let (date, time) = rest.strip_suffix(" GMT")?.split_once(' ')?;
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if weekday.len() != 3 || d.len() != 3 || d[0].len() != 2 || d[2].len() != 4 || t.len() != 3 {
        return None;
    }
    let month = i64::try_from(MONTHS.iter().position(|m| *m == d[1])?).ok()? + 1;
    let day: i64 = d[0].parse().ok()?;
    let year: i64 = d[2].parse().ok()?;
    // Days from civil (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2])
}

/// Replaces every run of 9 or more digits (the `created` time) by `#`.
fn mask_times(text: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() >= 9 {
            out.push('#');
        } else {
            out.push_str(&digits);
        }
        digits.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// The record JSON a cookie value carries (opened with the shared key).
fn record_of(storage: Storage, value: &str) -> String {
    use http_session::stores::Sealer;
    let token = py_unquote(value);
    let bytes = match storage {
        Storage::Simple => token.into_bytes(),
        Storage::Fernet => fernet()
            .open(&token, None, now())
            .expect("our key opens it"),
        Storage::NaCl => nacl().open(&token, None, now()).expect("our key opens it"),
        other => panic!("{other:?} is not a cookie storage"),
    };
    String::from_utf8(bytes).expect("UTF-8 record")
}

/// The record re-encoded without its `"http_session"` member, as Python
/// would write it.
fn without_meta(record: &str) -> String {
    use http_session::Codec;
    let decoded = http_session::JsonCodec
        .decode_record(record.as_bytes())
        .expect("a record");
    let (Some(created), Some(session)) = (decoded.created, decoded.session) else {
        return record.to_owned();
    };
    let bytes = http_session::JsonCodec
        .encode(&http_session::Record {
            created: &created,
            session: &session,
            meta: None,
        })
        .expect("encodes");
    String::from_utf8(bytes).expect("UTF-8")
}

/// Asserts that two `Set-Cookie` lines carry the same name, value form and
/// attributes in the same order; `expires` may differ by a few seconds and
/// the value by its secret parts.
fn assert_same_set_cookie(storage: Storage, python: &str, rust: &str, what: &str) {
    let py = SetCookie::parse(python);
    // Our deletion cookie also carries the session cookie's `Partitioned`,
    // `SameSite` and `Secure` (see
    // `differences::deletion_cookie_with_secure_and_samesite`): compared
    // without them.
    let stripped;
    let rust = if py.is_removal() {
        stripped = rust
            .split("; ")
            .filter(|a| !(*a == "Partitioned" || *a == "Secure" || a.starts_with("SameSite=")))
            .collect::<Vec<_>>()
            .join("; ");
        stripped.as_str()
    } else {
        rust
    };
    let rs = SetCookie::parse(rust);
    let context = format!(
        "{what} ({})\n python: {python}\n rust:   {rust}",
        storage.name()
    );
    assert_eq!(py.name, rs.name, "cookie name: {context}");
    assert_eq!(py.names(), rs.names(), "attribute set and order: {context}");
    for ((name, py_value), (_, rs_value)) in py.attrs.iter().zip(&rs.attrs) {
        if name == "expires" && py_value != rs_value {
            let a = parse_expires(py_value.as_deref().unwrap());
            let b = parse_expires(rs_value.as_deref().unwrap());
            assert!((a - b).abs() <= 3, "expires: {context}");
        } else {
            assert_eq!(py_value, rs_value, "attribute {name}: {context}");
        }
    }
    // Value: the same record (apart from `created` and our extra member);
    // the same quoting where the records are the same length (a sealed
    // token is quoted by its base64 padding); ids are 32 hex.
    let same_length = match storage {
        Storage::Redis | Storage::Memcached => true,
        _ if py.is_removal() || rs.is_removal() => true,
        _ => record_of(storage, &py.value).len() == record_of(storage, &rs.value).len(),
    };
    if same_length {
        assert_eq!(
            py.value.starts_with('"'),
            rs.value.starts_with('"'),
            "quoting: {context}"
        );
    }
    match storage {
        Storage::Simple | Storage::Fernet | Storage::NaCl if !py.is_removal() => {
            // The same record, apart from `created` and from the member
            // `"http_session"` that we add where a rule needs it (a
            // session's own max_age: see `meta`), which Python ignores.
            let ours = record_of(storage, &rs.value);
            let theirs = record_of(storage, &py.value);
            assert_eq!(
                mask_times(&without_meta(&theirs)),
                mask_times(&without_meta(&ours)),
                "record: {context}"
            );
            assert!(!theirs.contains(http_session::META_MEMBER), "{context}");
        }
        Storage::Simple | Storage::Fernet | Storage::NaCl => {}
        Storage::Redis | Storage::Memcached => {
            if !py.is_removal() {
                for v in [&py.value, &rs.value] {
                    assert!(
                        v.len() == 32
                            && v.bytes()
                                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                        "id form: {context}"
                    );
                }
            }
        }
    }
    assert_eq!(py.is_removal(), rs.is_removal(), "{context}");
    if py.is_removal() {
        assert_eq!(python, rust, "deletion cookie: {context}");
    }
}

// ---------------------------------------------------------------------------
// Raw store access

/// A raw connection to the store server behind a server storage.
enum Kv {
    Redis(MultiplexedConnection),
    Memcached(tokio::io::BufReader<tokio::net::TcpStream>),
}

impl Kv {
    async fn connect(storage: Storage) -> Kv {
        match storage {
            Storage::Redis => {
                let url = service_env("HTTP_SESSION_REDIS_URL");
                let conn = raw_redis::Client::open(url.as_str())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}"));
                Kv::Redis(conn)
            }
            Storage::Memcached => {
                let addr = service_env("HTTP_SESSION_MEMCACHED");
                let stream = tokio::net::TcpStream::connect(&addr)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach memcached at {addr}: {e}"));
                Kv::Memcached(tokio::io::BufReader::new(stream))
            }
            other => panic!("{other:?} has no store server"),
        }
    }

    async fn line(stream: &mut tokio::io::BufReader<tokio::net::TcpStream>) -> String {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        line.trim_end().to_owned()
    }

    /// The stored value and its remaining TTL (-1: never expires).
    async fn get(&mut self, key: &str) -> Option<(Vec<u8>, i64)> {
        match self {
            Kv::Redis(conn) => {
                let value: Option<Vec<u8>> = conn.get(key).await.unwrap();
                let ttl: i64 = conn.ttl(key).await.unwrap();
                value.map(|v| (v, ttl))
            }
            Kv::Memcached(stream) => {
                stream
                    .get_mut()
                    .write_all(format!("mg {key} t v\r\n").as_bytes())
                    .await
                    .unwrap();
                let header = Self::line(stream).await;
                if header == "EN" {
                    return None;
                }
                let mut parts = header.split(' ');
                assert_eq!(parts.next(), Some("VA"), "{header}");
                let len: usize = parts.next().unwrap().parse().unwrap();
                let ttl = parts
                    .find_map(|f| f.strip_prefix('t'))
                    .unwrap_or_else(|| panic!("{header}"))
                    .parse()
                    .unwrap();
                let mut value = vec![0; len + 2];
                stream.read_exact(&mut value).await.unwrap();
                value.truncate(len);
                Some((value, ttl))
            }
        }
    }

    /// The members of a Redis set, and whether the key exists.
    async fn get_set(&mut self, key: &str) -> (Vec<String>, bool) {
        match self {
            Kv::Redis(conn) => {
                let members: Vec<String> = conn.smembers(key).await.unwrap();
                let exists: bool = conn.exists(key).await.unwrap();
                (members, exists)
            }
            Kv::Memcached(_) => panic!("memcached keeps no sets"),
        }
    }

    /// Stores `value` under `key` with `flags` (memcached) and no expiry.
    async fn set(&mut self, key: &str, value: &[u8], flags: u32) {
        match self {
            Kv::Redis(conn) => {
                let () = conn.set(key, value).await.unwrap();
            }
            Kv::Memcached(stream) => {
                let header = format!("set {key} {flags} 0 {}\r\n", value.len());
                stream
                    .get_mut()
                    .write_all(&[header.as_bytes(), value, b"\r\n"].concat())
                    .await
                    .unwrap();
                assert_eq!(Self::line(stream).await, "STORED");
            }
        }
    }
}

/// The store key of a session id.
fn store_key(opts: &Opts, id: &str) -> String {
    format!("{}_{id}", opts.cookie_name())
}

/// A fresh random id in aiohttp-session's form (32 hex digits).
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Sealing records as the other side would

fn fernet() -> http_session::stores::Fernet {
    http_session::stores::Fernet::new(&http_session::FernetKey::from_bytes(&key_bytes()).unwrap())
}

fn nacl() -> http_session::stores::NaCl {
    http_session::stores::NaCl::new(&http_session::NaClKey::from_bytes(&key_bytes()).unwrap())
}

/// Seals raw record bytes into a cookie value for `storage` (quoted as
/// Python would send it), with a Fernet timestamp of `ts` (the public
/// `Sealer::seal` takes the timestamp; the IV and nonce are drawn).
fn seal_at(storage: Storage, record: &[u8], ts: u64) -> String {
    use http_session::stores::Sealer;
    let token = match storage {
        Storage::Simple => String::from_utf8(record.to_vec()).unwrap(),
        Storage::Fernet => fernet().seal(record, ts).unwrap(),
        Storage::NaCl => nacl().seal(record, ts).unwrap(),
        other => panic!("{other:?} is not a cookie storage"),
    };
    py_quote(&token)
}

fn seal(storage: Storage, record: &[u8]) -> String {
    seal_at(storage, record, now())
}

// ---------------------------------------------------------------------------
// Helpers for the comparisons below

impl Pair {
    /// Sends a raw body (not necessarily valid JSON to serde) with the
    /// jar's cookie; the jar follows `Set-Cookie`.
    async fn send_text(&mut self, side: Side, path: &str, body: &str) -> Reply {
        let name = self.python.cookie_name.clone();
        let cookie = self.jar.as_ref().map(|v| format!("{name}={v}"));
        let reply = self
            .app(side)
            .raw("POST", path, cookie.as_deref(), body.as_bytes().to_vec())
            .await;
        for line in &reply.set_cookies {
            let parsed = SetCookie::parse(line);
            if parsed.name == name {
                self.jar = (parsed.max_age() != Some(0)).then_some(parsed.value);
            }
        }
        reply
    }
}

/// What a `Set-Cookie` says about lifetime: `Max-Age`, and `expires` as
/// seconds from now (rounded to tens, to absorb clock ticks).
fn lifetime(cookie: &SetCookie) -> (Option<i64>, Option<i64>) {
    let expires = cookie.attr("expires").map(|v| {
        let left = parse_expires(v.expect("expires value")) - i64::try_from(now()).unwrap();
        (left + 5).div_euclid(10) * 10
    });
    (cookie.max_age(), expires)
}

/// A TTL rounded to tens of seconds (-1 stays -1).
fn ttl_bucket(ttl: i64) -> i64 {
    if ttl < 0 {
        ttl
    } else {
        (ttl + 5).div_euclid(10) * 10
    }
}

mod concurrency;
mod differences;
mod expiry;
mod handoff;
mod headers;
mod meta;
mod ring;
mod scale;
