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
    reason = "test code: a failed expectation is a failed test"
)]

#[path = "../examples/shared/mod.rs"]
mod shared;

#[allow(dead_code, reason = "shared with the conformance suite")]
#[path = "conformance/harness.rs"]
mod harness;

#[path = "support/process.rs"]
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
    };

    const DEFAULTS: Opts = Opts {
        max_age: None,
        cookie_name: None,
        samesite: None,
        secure: false,
        domain: None,
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

/// Asserts that two `Set-Cookie` lines carry the same name, value form and
/// attributes in the same order; `expires` may differ by a few seconds and
/// the value by its secret parts.
fn assert_same_set_cookie(storage: Storage, python: &str, rust: &str, what: &str) {
    let py = SetCookie::parse(python);
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
    // Value: same quoting; for the plain store the same text apart from
    // `created`; sealed tokens have the same length; ids are 32 hex.
    assert_eq!(
        py.value.starts_with('"'),
        rs.value.starts_with('"'),
        "quoting: {context}"
    );
    match storage {
        Storage::Simple => {
            assert_eq!(mask_times(&py.value), mask_times(&rs.value), "{context}");
        }
        Storage::Fernet | Storage::NaCl => {
            if !py.is_removal() {
                assert_eq!(py.value.len(), rs.value.len(), "token length: {context}");
            }
        }
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
/// Python would send it), with a Fernet timestamp of `ts`.
fn seal_at(storage: Storage, record: &[u8], ts: u64) -> String {
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce).unwrap();
    let token = match storage {
        Storage::Simple => String::from_utf8(record.to_vec()).unwrap(),
        Storage::Fernet => {
            let mut iv = [0u8; 16];
            iv.copy_from_slice(&nonce[..16]);
            fernet().encrypt_with_parts(record, ts, iv)
        }
        Storage::NaCl => nacl().encrypt_with_nonce(record, nonce).unwrap(),
        other => panic!("{other:?} is not a cookie storage"),
    };
    py_quote(&token)
}

fn seal(storage: Storage, record: &[u8]) -> String {
    seal_at(storage, record, now())
}

// ---------------------------------------------------------------------------
// 1. The live matrix

/// Values that stress the JSON and cookie encodings.
fn rich_values() -> Value {
    json!({
        "accents": "café crème brûlée, naïve Ærøskøbing, Ωmega",
        "cjk": "日本語のテキスト 中文 한국어",
        "emoji": "😀🎉 👍🏽 👨‍👩‍👧 🇫🇷",
        "separators": "a;b,c;;,, =x= ; Path=/; HttpOnly",
        "quotes": "say \"hi\" and 'bye' \"\"",
        "backslashes": "C:\\path\\to\\file \\\" \\054 \\073 \\u00e9 \\",
        "controls": "tab\tnewline\ncr\r nul\u{0} del\u{7f} c1\u{85}",
        "nested": {
            "list": [1, 2.5, [true, false, null], {"deep": {"deeper": ["x", {"y": []}]}}],
            "empty_obj": {},
            "empty_list": [],
        },
        "null": null,
        "floats": [0.1, -2.5, 1e-7, 1e100, 3.0, -0.0, 123456.789, 1.7976931348623157e308, 5e-324],
        "ints": [0, -1, i64::MAX, i64::MIN, u64::MAX],
        "bools": [true, false],
        "clé ünïcode 鍵 🔑": "a non-ASCII key",
        "": "the empty key",
    })
}

/// Keys in order, recursively: both sides keep insertion order.
fn key_order(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Value::Object(map) = value {
        for (k, v) in map {
            out.push(k.clone());
            out.extend(key_order(v).into_iter().map(|sub| format!("{k}.{sub}")));
        }
    }
    out
}

fn assert_same_session(got: &Value, want: &Value, what: &str) {
    assert_eq!(got, want, "{what}");
    assert_eq!(key_order(got), key_order(want), "{what}: key order");
}

/// A string of `ascii` characters after a mixed head (`é日😀;,"\` and a
/// space), for a payload near the cookie limit.
fn filler(ascii: usize) -> String {
    let mut s = String::from("é日😀;,\"\\ ");
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    s.extend((0..ascii).map(|i| char::from(alphabet[i % alphabet.len()])));
    s
}

/// The filler length whose cookie is as close to 4096 bytes as it gets in
/// each storage (the session is `{"marker": "new", "big": filler}`).
fn near_limit_filler(storage: Storage) -> String {
    filler(match storage {
        // The quoted JSON (`\"`, `\054`, `\\u00e9`) is the cookie.
        Storage::Simple => 3951,
        // Fernet: 4/3 x (57 + 16 x blocks), quoted when padded.
        Storage::Fernet => 2896,
        // NaCl: 4/3 x (40 + JSON), quoted.
        Storage::NaCl => 2922,
        // Server stores: the cookie is an id; the record is as large.
        Storage::Redis | Storage::Memcached => 3981,
    })
}

/// Set on one side, read on the other; update on the other, read back; new
/// session on one, read on the other; a payload near the cookie limit;
/// clear on one, read on the other. One jar throughout.
async fn hand_off(framework: &str, storage: &str, direction: Direction) {
    let framework = Framework::from_name(framework);
    let storage = Storage::from_name(storage);
    let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
    let (a, b) = match direction {
        Direction::PythonToRust => (Side::Python, Side::Rust),
        Direction::RustToPython => (Side::Rust, Side::Python),
    };
    let label = |step: &str| format!("{framework:?} {} {direction:?}: {step}", storage.name());

    // Set on A, read on B (a read sends no Set-Cookie).
    let rich = rich_values();
    let echoed = pair.ok(a, "POST", "/set", Some(rich.clone())).await;
    assert_same_session(&echoed, &rich, &label("set echo"));
    let first_cookie = pair.jar.clone().expect("a session cookie");
    let read = pair.send(b, "GET", "/get", None).await;
    assert_eq!(read.status, 200, "{}", label("read"));
    assert!(read.set_cookies.is_empty(), "{}", label("read-only"));
    assert_same_session(&read.json(), &rich, &label("read on the other side"));
    let meta = pair.ok(b, "GET", "/meta", None).await;
    assert_eq!(meta["new"], false, "{}", label("meta"));
    let created = meta["created"].as_i64().expect("an integer created");
    assert!(
        created.abs_diff(i64::try_from(now()).unwrap()) < 5,
        "{}",
        label("created")
    );
    let meta_a = pair.ok(a, "GET", "/meta", None).await;
    assert_eq!(meta_a["created"], created, "{}", label("same created"));
    assert_eq!(meta["max_age"], 3600, "{}", label("meta"));
    let identity = if storage.is_server() {
        Value::String(first_cookie.clone())
    } else {
        Value::Null
    };
    assert_eq!(meta["identity"], identity, "{}", label("identity"));

    // Update on B (set, overwrite, delete), read back on A.
    let mut expected = rich.clone();
    let update =
        json!({"accents": "überschrieben — ça marche", "step": 2, "list": [i64::MAX, "😀"]});
    for (k, v) in update.as_object().unwrap() {
        expected[k] = v.clone();
    }
    expected.as_object_mut().unwrap().shift_remove("null");
    pair.ok(b, "POST", "/set", Some(update)).await;
    let after_del = pair.ok(b, "POST", "/del?key=null", None).await;
    assert_same_session(&after_del, &expected, &label("update echo"));
    if storage.is_server() {
        assert_eq!(
            pair.jar.as_ref(),
            Some(&first_cookie),
            "{}",
            label("same id")
        );
    }
    let read = pair.ok(a, "GET", "/get", None).await;
    assert_same_session(&read, &expected, &label("read back"));

    // New session on A, read on B.
    let before = pair.jar.clone();
    assert_eq!(
        pair.ok(a, "GET", "/new", None).await,
        json!({"marker": "new"})
    );
    assert_ne!(pair.jar, before, "{}", label("a new cookie"));
    assert_eq!(
        pair.ok(b, "GET", "/get", None).await,
        json!({"marker": "new"}),
        "{}",
        label("new session read")
    );
    let meta = pair.ok(b, "GET", "/meta", None).await;
    assert_eq!(meta["new"], false, "{}", label("new session meta"));

    // A payload near the 4096-byte cookie limit: set on B, read on A.
    let big = near_limit_filler(storage);
    let reply = pair
        .send(b, "POST", "/set", Some(json!({ "big": big })))
        .await;
    assert_eq!(reply.status, 200, "{}: {}", label("big set"), reply.body);
    let cookie = set_cookie(&reply);
    if !storage.is_server() {
        let len = cookie.pair_len();
        assert!(
            (4096 - 40..=4096).contains(&len),
            "{}: cookie pair is {len} bytes",
            label("near the limit")
        );
    }
    assert_eq!(
        pair.ok(a, "GET", "/get", None).await,
        json!({"marker": "new", "big": big}),
        "{}",
        label("big read")
    );

    // Clear on A, read on B: an empty, new session; a stale copy of the
    // server-store cookie finds nothing either.
    let stale = pair.jar.clone().expect("cookie");
    assert_eq!(pair.ok(a, "POST", "/clear", None).await, json!({}));
    match storage {
        // SimpleCookieStorage writes `{}` instead of removing the cookie.
        Storage::Simple => assert_eq!(pair.jar.as_deref(), Some("\"{}\"")),
        _ => assert_eq!(pair.jar, None, "{}", label("cookie removed")),
    }
    let meta = pair.ok(b, "GET", "/meta", None).await;
    assert_eq!(meta["new"], true, "{}", label("cleared"));
    assert_eq!(meta["session"], json!({}), "{}", label("cleared"));
    if storage.is_server() {
        for side in [a, b] {
            let reply = with_cookie(pair.app(side), "GET", "/meta", Some(&stale)).await;
            assert_eq!(reply.json()["new"], true, "{}", label("stale id"));
            assert_eq!(reply.json()["session"], json!({}), "{}", label("stale id"));
        }
    }
}

/// Names one test per (framework, storage, direction), each calling
/// [`hand_off`].
macro_rules! handoff_tests {
    ($framework:ident: $($storage:ident),+) => {
        pub mod $framework {
            $(
                pub mod $storage {
                    use crate::{hand_off, Direction};

                    #[tokio::test]
                    async fn python_to_rust() {
                        hand_off(stringify!($framework), stringify!($storage), Direction::PythonToRust).await;
                    }

                    #[tokio::test]
                    async fn rust_to_python() {
                        hand_off(stringify!($framework), stringify!($storage), Direction::RustToPython).await;
                    }
                }
            )+
        }
    };
}

mod handoff {
    handoff_tests!(axum: simple, fernet, nacl, redis, memcached);
    handoff_tests!(actix: simple, fernet, nacl, redis, memcached);
    handoff_tests!(warp: simple, fernet, nacl, redis, memcached);
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

// ---------------------------------------------------------------------------
// 2. Header-level equality

mod headers {
    use super::*;

    /// The same requests on both sides, one jar each: every `Set-Cookie`
    /// must match (attributes and their order, value form, deletion
    /// cookie byte for byte).
    async fn compare(storage: Storage, opts: Opts) {
        let mut steps: Vec<(&str, Option<Value>)> = vec![
            (
                "/set",
                Some(json!({"user": "ada", "tags": ["a;b", "c,d"], "é": "\"q\""})),
            ),
            ("/set", Some(json!({"n": 2}))),
            ("/max_age?n=7", None),
            ("/max_age?n=none", None),
            ("/touch", None),
            ("/del?key=n", None),
            ("/clear", None),
            // A new, empty session marked changed: a removal (sealed), `{}`
            // (plain); server stores differ, see `differences`.
            ("/touch", None),
        ];
        if !storage.is_server() {
            // Expires at once; for Redis aiohttp-session fails (see
            // `differences::per_session_max_age_zero`).
            steps.insert(6, ("/max_age?n=0", None));
        } else {
            steps.pop();
        }
        for framework in Framework::ALL {
            let mut py = python_app(storage, &opts);
            let mut rs = rust_app(framework, storage, &opts);
            for (path, body) in &steps {
                let a = py.send("POST", path, body.clone()).await;
                let b = rs.send("POST", path, body.clone()).await;
                let what = format!("{framework:?} POST {path}");
                assert_eq!((a.status, b.status), (200, 200), "{what}: {a:?} {b:?}");
                // Every step changes the session: one Set-Cookie each.
                let (Some(x), Some(y)) = (a.set_cookie(), b.set_cookie()) else {
                    panic!("{what}: a Set-Cookie from both sides: {a:?} {b:?}");
                };
                assert_same_set_cookie(storage, x, y, &what);
            }
        }
    }

    #[tokio::test]
    async fn max_age_and_samesite_lax_every_storage() {
        for storage in Storage::ALL {
            compare(storage, Opts::MATRIX).await;
        }
    }

    #[tokio::test]
    async fn defaults_every_storage() {
        for storage in Storage::ALL {
            compare(storage, Opts::DEFAULTS).await;
        }
    }

    #[tokio::test]
    async fn domain_secure_cookie_name() {
        let opts = Opts {
            domain: Some("example.test"),
            secure: true,
            cookie_name: Some("SID"),
            ..Opts::DEFAULTS
        };
        for storage in [Storage::Fernet, Storage::Redis] {
            compare(storage, opts).await;
        }
    }

    #[tokio::test]
    async fn every_attribute_samesite_strict() {
        let opts = Opts {
            max_age: Some(60),
            samesite: Some("Strict"),
            secure: true,
            domain: Some("example.test"),
            cookie_name: Some("SID"),
        };
        for storage in [Storage::NaCl, Storage::Memcached] {
            compare(storage, opts).await;
        }
    }

    #[tokio::test]
    async fn samesite_none_secure() {
        let opts = Opts {
            samesite: Some("None"),
            secure: true,
            ..Opts::DEFAULTS
        };
        compare(Storage::Simple, opts).await;
    }

    /// The exact deletion cookie, as aiohttp sends it (no HttpOnly, Secure
    /// or SameSite; Domain and Path kept).
    #[tokio::test]
    async fn deletion_cookie_is_aiohttps() {
        let opts = Opts {
            domain: Some("example.test"),
            secure: true,
            cookie_name: Some("SID"),
            ..Opts::DEFAULTS
        };
        for framework in Framework::ALL {
            let mut py = python_app(Storage::Fernet, &opts);
            let mut rs = rust_app(framework, Storage::Fernet, &opts);
            for app in [&mut py, &mut rs] {
                app.post("/set", json!({"a": 1})).await;
                let reply = app.post("/clear", json!(null)).await;
                assert_eq!(
                    reply.set_cookie(),
                    Some(
                        "SID=\"\"; Domain=example.test; expires=Thu, 01 Jan 1970 00:00:00 GMT; \
                         Max-Age=0; Path=/"
                    ),
                    "{}",
                    app.label
                );
            }
        }
    }

    /// Fernet and NaCl tokens are read back quoted (as Set-Cookie sent
    /// them, and as browsers and curl return them) and bare, by both sides.
    #[tokio::test]
    async fn sealed_tokens_read_quoted_and_bare() {
        let value = json!({"k": "v;\"é", "pad": "x".repeat(300)});
        for storage in [Storage::Fernet, Storage::NaCl] {
            for framework in Framework::ALL {
                let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
                for writer in [Side::Python, Side::Rust] {
                    pair.jar = None;
                    pair.ok(writer, "POST", "/set", Some(value.clone())).await;
                    let sent = pair.jar.clone().unwrap();
                    let bare = py_unquote(&sent);
                    let quoted = format!("\"{bare}\"");
                    for reader in [Side::Python, Side::Rust] {
                        for form in [&bare, &quoted] {
                            let reply =
                                with_cookie(pair.app(reader), "GET", "/get", Some(form)).await;
                            assert_eq!(
                                reply.json(),
                                value,
                                "{framework:?} {storage:?}: {writer:?} token, {reader:?} reads {}",
                                if form.starts_with('"') {
                                    "quoted"
                                } else {
                                    "bare"
                                }
                            );
                        }
                    }
                }
            }
        }
    }

    /// Same outcome on both sides: a Fernet token in the standard base64
    /// alphabet is accepted; a NaCl token in the URL-safe one is not; of
    /// two cookies with the session's name, the last one wins.
    #[tokio::test]
    async fn alphabets_and_duplicate_cookies() {
        let value = json!({"pad": "y".repeat(400)});
        for framework in Framework::ALL {
            // Fernet tokens are URL-safe; the standard alphabet is accepted.
            let mut pair = Pair::start(framework, Storage::Fernet, &Opts::MATRIX);
            pair.ok(Side::Rust, "POST", "/set", Some(value.clone()))
                .await;
            let token = py_unquote(pair.jar.as_ref().unwrap());
            assert!(token.contains(['-', '_']), "{token}");
            let standard = py_quote(&token.replace('-', "+").replace('_', "/"));
            for side in [Side::Python, Side::Rust] {
                let reply = with_cookie(pair.app(side), "GET", "/get", Some(&standard)).await;
                assert_eq!(reply.json(), value, "{side:?} standard-alphabet Fernet");
            }

            // NaCl tokens are standard base64; the URL-safe form is rejected.
            let mut pair = Pair::start(framework, Storage::NaCl, &Opts::MATRIX);
            pair.ok(Side::Python, "POST", "/set", Some(value.clone()))
                .await;
            let token = py_unquote(pair.jar.as_ref().unwrap());
            assert!(token.contains(['+', '/']), "{token}");
            let url_safe = py_quote(&token.replace('+', "-").replace('/', "_"));
            for side in [Side::Python, Side::Rust] {
                let reply = with_cookie(pair.app(side), "GET", "/meta", Some(&url_safe)).await;
                assert_eq!(reply.status, 200);
                assert_eq!(reply.json()["new"], true, "{side:?} URL-safe NaCl");
            }

            // Two cookies with the session's name: the last one wins.
            let record = |w: u32| format!(r#"{{"created": {}, "session": {{"w": {w}}}}}"#, now());
            let first = seal(Storage::NaCl, record(1).as_bytes());
            let last = seal(Storage::NaCl, record(2).as_bytes());
            let header = format!("AIOHTTP_SESSION={first}; other=1; AIOHTTP_SESSION={last}");
            for side in [Side::Python, Side::Rust] {
                let reply = pair
                    .app(side)
                    .raw("GET", "/get", Some(&header), Vec::new())
                    .await;
                assert_eq!(reply.json(), json!({"w": 2}), "{side:?} last cookie wins");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Expiry semantics, compared with Python on the same inputs

mod expiry {
    use super::*;

    /// What one side did with a per-session `max_age`, as seen by a client
    /// and by the store.
    #[derive(Debug, PartialEq, Eq)]
    struct Observed {
        cookie: (Option<i64>, Option<i64>),
        ttl: Option<i64>,
        other_side_meta_max_age: Value,
        other_side_session: Value,
    }

    async fn observe(pair: &mut Pair, kv: &mut Option<Kv>, writer: Side, path: &str) -> Observed {
        let reply = pair.send(writer, "POST", path, None).await;
        assert_eq!(reply.status, 200, "{writer:?} {path}: {}", reply.body);
        let cookie = set_cookie(&reply);
        let ttl = match kv {
            Some(kv) => {
                let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
                kv.get(&key).await.map(|(_, ttl)| ttl_bucket(ttl))
            }
            None => None,
        };
        let meta = pair.ok(writer.other(), "GET", "/meta", None).await;
        Observed {
            cookie: lifetime(&cookie),
            ttl,
            other_side_meta_max_age: meta["max_age"].clone(),
            other_side_session: meta["session"].clone(),
        }
    }

    /// Storage `max_age` 3600 vs a per-session 7 or `None`: the cookie's
    /// Max-Age/expires and the server TTL follow the session value, the
    /// reader applies the storage value.
    #[tokio::test]
    async fn per_session_max_age_vs_storage_max_age() {
        for storage in Storage::ALL {
            let mut results = Vec::new();
            for writer in [Side::Python, Side::Rust] {
                let mut pair = Pair::start(Framework::Axum, storage, &Opts::MATRIX);
                let mut kv = if storage.is_server() {
                    Some(Kv::connect(storage).await)
                } else {
                    None
                };
                pair.ok(writer, "POST", "/set", Some(json!({"a": 1}))).await;
                let steps = [
                    observe(&mut pair, &mut kv, writer, "/touch").await,
                    observe(&mut pair, &mut kv, writer, "/max_age?n=7").await,
                    observe(&mut pair, &mut kv, writer, "/max_age?n=none").await,
                    observe(&mut pair, &mut kv, writer, "/max_age?n=100000").await,
                ];
                results.push(steps);
            }
            let server = |n| storage.is_server().then_some(n);
            let expected = [
                ((Some(3600), Some(3600)), server(3600)),
                ((Some(7), Some(10)), server(10)),
                // Max-Age from the storage, no expires, no TTL.
                ((Some(3600), None), server(-1)),
                ((Some(100_000), Some(100_000)), server(100_000)),
            ];
            for (side, steps) in [Side::Python, Side::Rust].iter().zip(&results) {
                for (step, (cookie, ttl)) in steps.iter().zip(&expected) {
                    assert_eq!(
                        (&step.cookie, &step.ttl),
                        (cookie, ttl),
                        "{storage:?} written by {side:?}"
                    );
                    assert_eq!(step.other_side_meta_max_age, 3600, "{storage:?}");
                    assert_eq!(step.other_side_session, json!({"a": 1}), "{storage:?}");
                }
            }
            assert_eq!(results[0], results[1], "{storage:?}: Python vs Rust");
        }
    }

    /// Records of several ages, read by both sides with storage `max_age`
    /// 3600: same `new`, `empty`, `session`, `created` and identity.
    #[tokio::test]
    async fn created_age_against_storage_max_age() {
        let t = now();
        let records = [
            (
                format!(r#"{{"created": {}, "session": {{"a": 1}}}}"#, t - 3000),
                "fresh enough",
            ),
            (
                format!(r#"{{"created": {}, "session": {{"a": 1}}}}"#, t - 7200),
                "too old",
            ),
            (
                format!(r#"{{"created": {}.5, "session": {{"a": 1}}}}"#, t - 10),
                "float created",
            ),
            (r#"{"session": {"a": 1}}"#.to_owned(), "no created"),
            (
                r#"{"created": 1700000000, "session": {}}"#.to_owned(),
                "old, empty",
            ),
            ("{}".to_owned(), "{}"),
        ];
        for storage in Storage::ALL {
            let py = python_app(storage, &Opts::MATRIX);
            let rs = rust_app(Framework::Axum, storage, &Opts::MATRIX);
            let mut kv = if storage.is_server() {
                Some(Kv::connect(storage).await)
            } else {
                None
            };
            for (record, what) in &records {
                let mut metas = Vec::new();
                for app in [&py, &rs] {
                    let cookie = match &mut kv {
                        Some(kv) => {
                            let id = random_id();
                            kv.set(&store_key(&Opts::MATRIX, &id), record.as_bytes(), 0)
                                .await;
                            id
                        }
                        None => seal(storage, record.as_bytes()),
                    };
                    let reply = with_cookie(app, "GET", "/meta", Some(&cookie)).await;
                    assert_eq!(reply.status, 200, "{storage:?} {what} {}", app.label);
                    let mut meta = reply.json();
                    if meta["identity"] == json!(cookie) {
                        meta["identity"] = json!("<the cookie's id>");
                    }
                    let created = meta["created"].as_f64().unwrap();
                    if (created - t as f64).abs() < 5.0 {
                        meta["created"] = json!("<now>");
                    }
                    metas.push(meta);
                }
                assert_eq!(metas[0], metas[1], "{storage:?}, {what}: Python vs Rust");
            }
        }
    }

    /// Fernet's TTL (storage max_age 3600): older than max_age or more than
    /// 60 s ahead is rejected; without a max_age nothing is.
    #[tokio::test]
    async fn fernet_ttl() {
        let t = now();
        let record = format!(r#"{{"created": {t}, "session": {{"a": 1}}}}"#);
        let cases = [
            (Opts::MATRIX, t - 3700, true),
            (Opts::MATRIX, t - 3500, false),
            (Opts::MATRIX, t + 30, false),
            (Opts::MATRIX, t + 120, true),
            (Opts::DEFAULTS, t - 1_000_000, false),
            (Opts::DEFAULTS, t + 100_000, false),
        ];
        for (opts, ts, rejected) in cases {
            let token = seal_at(Storage::Fernet, record.as_bytes(), ts);
            let py = python_app(Storage::Fernet, &opts);
            let rs = rust_app(Framework::Axum, Storage::Fernet, &opts);
            for app in [&py, &rs] {
                let meta = with_cookie(app, "GET", "/meta", Some(&token)).await.json();
                let what = format!(
                    "{} max_age {:?}, ts now{:+}",
                    app.label,
                    opts.max_age,
                    ts as i64 - t as i64
                );
                assert_eq!(meta["new"], rejected, "{what}");
                let session = if rejected { json!({}) } else { json!({"a": 1}) };
                assert_eq!(meta["session"], session, "{what}");
            }
        }
    }

    /// Redis TTL = the session's max_age; none without one.
    #[tokio::test]
    async fn redis_ttl() {
        for opts in [Opts::MATRIX, Opts::DEFAULTS] {
            let mut kv = Kv::connect(Storage::Redis).await;
            let mut ttls = Vec::new();
            for writer in [Side::Python, Side::Rust] {
                let mut pair = Pair::start(Framework::Axum, Storage::Redis, &opts);
                let mut seen = Vec::new();
                for path in [
                    "/set",
                    "/max_age?n=7",
                    "/max_age?n=none",
                    "/max_age?n=2592001",
                ] {
                    let body = (path == "/set").then(|| json!({"a": 1}));
                    pair.ok(writer, "POST", path, body).await;
                    let key = store_key(&opts, pair.jar.as_ref().unwrap());
                    let (_, ttl) = kv.get(&key).await.expect("record");
                    seen.push(ttl_bucket(ttl));
                }
                ttls.push(seen);
            }
            let storage_ttl = opts.max_age.map_or(-1, |n| i64::try_from(n).unwrap());
            assert_eq!(
                ttls[0],
                vec![storage_ttl, 10, -1, 2_592_000],
                "Python, {opts:?}"
            );
            assert_eq!(ttls[0], ttls[1], "Python vs Rust, {opts:?}");
        }
    }

    /// memcached: a max_age up to 30 days is sent relative, beyond that as
    /// an absolute time; either way the item lives max_age seconds and the
    /// other side can read it.
    #[tokio::test]
    async fn memcached_30_day_rule() {
        let mut kv = Kv::connect(Storage::Memcached).await;
        let ages: [u64; 5] = [120, 2_592_000, 2_592_001, 2_678_400, 3_000_000];
        let mut ttls = Vec::new();
        for writer in [Side::Python, Side::Rust] {
            let mut pair = Pair::start(Framework::Axum, Storage::Memcached, &Opts::MATRIX);
            pair.ok(writer, "POST", "/set", Some(json!({"a": 1}))).await;
            let mut seen = Vec::new();
            for n in ages {
                pair.ok(writer, "POST", &format!("/max_age?n={n}"), None)
                    .await;
                let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
                let (_, ttl) = kv.get(&key).await.expect("item still there");
                let n = i64::try_from(n).unwrap();
                // memcached's clock ticks once a second, so an absolute time
                // can come back a second or two long.
                assert!(
                    (n - 3..=n + 3).contains(&ttl),
                    "{writer:?} max_age {n}: TTL {ttl}"
                );
                seen.push(ttl_bucket(ttl));
                let read = pair.ok(writer.other(), "GET", "/get", None).await;
                assert_eq!(read, json!({"a": 1}), "{writer:?} max_age {n}");
            }
            pair.ok(writer, "POST", "/max_age?n=none", None).await;
            let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
            seen.push(kv.get(&key).await.expect("item").1);
            ttls.push(seen);
        }
        assert_eq!(ttls[0].last(), Some(&-1), "no max_age: never expires");
        assert_eq!(ttls[0], ttls[1], "Python vs Rust");
    }
}

// ---------------------------------------------------------------------------
// 4. Deliberate differences: Python's behaviour and ours, side by side

mod differences {
    use super::*;

    use axum::body::Bytes;
    use axum::http::{Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use http_session::Session;

    /// aiohttp-session answers 500 (Python `expect_500`) or loads an empty,
    /// not-new session (`expect_empty_not_new`); we give a fresh session.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum PythonDoes {
        Error500,
        EmptyNotNew,
    }

    async fn assert_python_vs_fresh(
        py: &App,
        rs: &App,
        cookie: &str,
        python: PythonDoes,
        what: &str,
    ) {
        let a = with_cookie(py, "GET", "/meta", Some(cookie)).await;
        match python {
            PythonDoes::Error500 => assert_eq!(a.status, 500, "Python, {what}: {}", a.body),
            PythonDoes::EmptyNotNew => {
                assert_eq!(a.status, 200, "Python, {what}: {}", a.body);
                assert_eq!(a.json()["new"], false, "Python, {what}");
                assert_eq!(a.json()["session"], json!({}), "Python, {what}");
            }
        }
        let b = with_cookie(rs, "GET", "/meta", Some(cookie)).await;
        assert_eq!(b.status, 200, "{}, {what}: {}", rs.label, b.body);
        assert_eq!(b.json()["new"], true, "{}, {what}", rs.label);
        assert_eq!(b.json()["session"], json!({}), "{}, {what}", rs.label);
        assert_eq!(b.json()["identity"], Value::Null, "{}, {what}", rs.label);
    }

    /// Plain cookies that are not a session record: Python fails with 500
    /// (or loads `null` as an empty, not-new session); we start fresh.
    #[tokio::test]
    async fn malformed_plain_cookie() {
        let cases = [
            ("notjson", PythonDoes::Error500),
            ("[1, 2]", PythonDoes::Error500),
            ("{\"created\": 1", PythonDoes::Error500),
            ("\"a string\"", PythonDoes::Error500),
            ("42", PythonDoes::Error500),
            ("", PythonDoes::Error500),
            ("null", PythonDoes::EmptyNotNew),
        ];
        for framework in Framework::ALL {
            let py = python_app(Storage::Simple, &Opts::MATRIX);
            let rs = rust_app(framework, Storage::Simple, &Opts::MATRIX);
            for (text, python) in cases {
                for cookie in [py_quote(text), format!("\"{text}\"")] {
                    assert_python_vs_fresh(&py, &rs, &cookie, python, &format!("plain {cookie}"))
                        .await;
                }
            }
        }
    }

    /// Authentic Fernet and NaCl tokens whose plaintext is not a session
    /// record: Python 500 (or `null`: empty, not new); we start fresh.
    #[tokio::test]
    async fn authentic_token_with_bad_record() {
        let cases: [(&[u8], PythonDoes); 5] = [
            (b"not json", PythonDoes::Error500),
            (b"[1, 2]", PythonDoes::Error500),
            (b"\xff\xfe{}", PythonDoes::Error500),
            (b"\"a string\"", PythonDoes::Error500),
            (b"null", PythonDoes::EmptyNotNew),
        ];
        for storage in [Storage::Fernet, Storage::NaCl] {
            let py = python_app(storage, &Opts::MATRIX);
            for framework in Framework::ALL {
                let rs = rust_app(framework, storage, &Opts::MATRIX);
                for (plaintext, python) in cases {
                    let cookie = seal(storage, plaintext);
                    let what = format!(
                        "{storage:?} sealing {:?}",
                        String::from_utf8_lossy(plaintext)
                    );
                    assert_python_vs_fresh(&py, &rs, &cookie, python, &what).await;
                }
            }
        }
    }

    /// Server-store records that are not a session: Python loads `notjson`
    /// and `null` as an empty session that keeps the id (and saves under
    /// it), fails with 500 on a list or bad UTF-8; we start fresh, with a
    /// new id.
    #[tokio::test]
    async fn server_record_not_a_session() {
        let cases: [(&[u8], PythonDoes); 4] = [
            (b"notjson", PythonDoes::EmptyNotNew),
            (b"null", PythonDoes::EmptyNotNew),
            (b"[1, 2]", PythonDoes::Error500),
            (b"\xff\xfe", PythonDoes::Error500),
        ];
        for storage in [Storage::Redis, Storage::Memcached] {
            let mut kv = Kv::connect(storage).await;
            for framework in Framework::ALL {
                let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
                for (record, python) in cases {
                    let id = random_id();
                    let key = store_key(&Opts::MATRIX, &id);
                    kv.set(&key, record, 0).await;
                    let what = format!("{storage:?} record {:?}", String::from_utf8_lossy(record));
                    let (py, rs) = (&pair.python, &pair.rust);
                    assert_python_vs_fresh(py, rs, &id, python, &what).await;
                    // Saving data: Python reuses the id, we make a new one.
                    for side in [Side::Python, Side::Rust] {
                        if side == Side::Python && python == PythonDoes::Error500 {
                            continue;
                        }
                        let id = random_id();
                        kv.set(&store_key(&Opts::MATRIX, &id), record, 0).await;
                        pair.jar = Some(id.clone());
                        pair.ok(side, "POST", "/set", Some(json!({"b": 2}))).await;
                        let saved_under = pair.jar.clone().unwrap();
                        match side {
                            Side::Python => assert_eq!(saved_under, id, "Python, {what}"),
                            Side::Rust => assert_ne!(saved_under, id, "Rust, {what}"),
                        }
                    }
                }
            }
        }
    }

    /// A record whose `created` is 0: both sides take its age as "now"
    /// (so it is expired under a storage max_age and loads without one),
    /// keep 0 as the session's `created`, and write 0 back on a save that
    /// sets no key.
    #[tokio::test]
    async fn created_zero() {
        let record = br#"{"created": 0, "session": {"a": 1}}"#;
        for storage in [Storage::Simple, Storage::Redis] {
            let mut kv = if storage.is_server() {
                Some(Kv::connect(storage).await)
            } else {
                None
            };
            for opts in [Opts::MATRIX, Opts::DEFAULTS] {
                let py = python_app(storage, &opts);
                let rs = rust_app(Framework::Axum, storage, &opts);
                for app in [&py, &rs] {
                    let what = format!("{} max_age {:?}", app.label, opts.max_age);
                    let (cookie, key) = match &mut kv {
                        Some(kv) => {
                            let id = random_id();
                            let key = store_key(&opts, &id);
                            kv.set(&key, record, 0).await;
                            (id, Some(key))
                        }
                        None => (seal(storage, record), None),
                    };
                    let meta = with_cookie(app, "GET", "/meta", Some(&cookie)).await.json();
                    assert_eq!(meta["new"], false, "{what}");
                    let data = if opts.max_age.is_some() {
                        json!({})
                    } else {
                        json!({"a": 1})
                    };
                    assert_eq!(meta["session"], data, "{what}");
                    let mut created = vec![meta["created"].as_i64().unwrap()];
                    if opts.max_age.is_none() {
                        // Saved without setting a key: which `created` is written?
                        let reply = with_cookie(app, "POST", "/touch", Some(&cookie)).await;
                        let saved: Value = match (&mut kv, key) {
                            (Some(kv), Some(key)) => {
                                let (value, _) = kv.get(&key).await.expect("record");
                                serde_json::from_slice(&value).unwrap()
                            }
                            _ => serde_json::from_str(&py_unquote(&set_cookie(&reply).value))
                                .unwrap(),
                        };
                        created.push(saved["created"].as_i64().unwrap());
                    }
                    // Both keep 0 as `created` and write it back.
                    assert!(created.iter().all(|c| *c == 0), "{what}: {created:?}");
                }
            }
        }
    }

    /// Invalidate on a server store: both remove the cookie; Python writes
    /// `{}` to the old key (with the TTL), we delete it.
    #[tokio::test]
    async fn invalidate_on_server_stores() {
        for storage in [Storage::Redis, Storage::Memcached] {
            let mut kv = Kv::connect(storage).await;
            for framework in Framework::ALL {
                for side in [Side::Python, Side::Rust] {
                    let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
                    pair.ok(side, "POST", "/set", Some(json!({"a": 1}))).await;
                    let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
                    let reply = pair.send(side, "POST", "/clear", None).await;
                    assert!(set_cookie(&reply).is_removal(), "{side:?}");
                    let left = kv.get(&key).await;
                    match side {
                        Side::Python => {
                            let (value, ttl) = left.expect("Python keeps the key");
                            assert_eq!(value, b"{}");
                            assert_eq!(ttl_bucket(ttl), 3600);
                        }
                        Side::Rust => assert_eq!(left, None, "{framework:?} {storage:?}"),
                    }
                }
            }
        }
    }

    /// `new_session` / `renew` on a server store: Python keeps the old
    /// record (a stolen old id still works), we delete it.
    #[tokio::test]
    async fn new_session_on_server_stores() {
        for storage in [Storage::Redis, Storage::Memcached] {
            let mut kv = Kv::connect(storage).await;
            for framework in Framework::ALL {
                for side in [Side::Python, Side::Rust] {
                    let mut pair = Pair::start(framework, storage, &Opts::MATRIX);
                    pair.ok(side, "POST", "/set", Some(json!({"a": 1}))).await;
                    let old = pair.jar.clone().unwrap();
                    pair.ok(side, "GET", "/new", None).await;
                    assert_ne!(pair.jar.as_ref(), Some(&old));
                    let left = kv.get(&store_key(&Opts::MATRIX, &old)).await;
                    let old_cookie_reads =
                        with_cookie(pair.app(side.other()), "GET", "/get", Some(&old))
                            .await
                            .json();
                    match side {
                        Side::Python => {
                            assert!(left.is_some(), "Python keeps the old record");
                            assert_eq!(old_cookie_reads, json!({"a": 1}));
                        }
                        Side::Rust => {
                            assert_eq!(left, None, "{framework:?} {storage:?}");
                            assert_eq!(old_cookie_reads, json!({}));
                        }
                    }
                }
            }
        }
    }

    /// An empty session saved on a server store (a new session marked
    /// changed): Python sets a cookie with a new id and writes `{}` under
    /// it; we write nothing and send the removal cookie.
    #[tokio::test]
    async fn empty_session_on_server_stores() {
        for storage in [Storage::Redis, Storage::Memcached] {
            let mut kv = Kv::connect(storage).await;
            for framework in Framework::ALL {
                let py = python_app(storage, &Opts::MATRIX);
                let rs = rust_app(framework, storage, &Opts::MATRIX);
                for path in ["/touch", "/clear", "/max_age?n=60"] {
                    let a = with_cookie(&py, "POST", path, None).await;
                    let cookie = set_cookie(&a);
                    assert!(!cookie.is_removal(), "Python {path}");
                    let (value, _) = kv
                        .get(&store_key(&Opts::MATRIX, &cookie.value))
                        .await
                        .expect("Python stores {}");
                    assert_eq!(value, b"{}", "Python {path}");

                    let b = with_cookie(&rs, "POST", path, None).await;
                    assert!(set_cookie(&b).is_removal(), "{framework:?} {path}");
                }
            }
        }
    }

    /// A `Set-Cookie` over 4096 bytes: Python sends it (browsers drop it);
    /// we answer an opaque 500 without a cookie.
    #[tokio::test]
    async fn set_cookie_over_4096_bytes() {
        for storage in [Storage::Simple, Storage::Fernet, Storage::NaCl] {
            let py = python_app(storage, &Opts::MATRIX);
            let body =
                json!({"marker": "new", "big": filler(near_limit_filler(storage).len() + 150)});
            let a = with_cookie_body(&py, "/set", None, &body).await;
            assert_eq!(a.status, 200);
            assert!(set_cookie(&a).pair_len() > 4096, "Python sends it");
            for framework in Framework::ALL {
                let rs = rust_app(framework, storage, &Opts::MATRIX);
                let b = with_cookie_body(&rs, "/set", None, &body).await;
                assert_eq!(b.status, 500, "{framework:?} {storage:?}");
                assert!(b.set_cookies.is_empty(), "{framework:?} {storage:?}");
                assert!(!b.body.contains("big"), "opaque body: {}", b.body);
            }
        }
    }

    /// A per-session max_age of 0 on a server store: Python fails on Redis
    /// (`SET ... EX 0` is an error: 500, record untouched) and on memcached
    /// stores the record with exptime 0, which memcached reads as "never
    /// expires"; we delete the record. The cookie (Max-Age=0) is the same.
    #[tokio::test]
    async fn per_session_max_age_zero_on_server_stores() {
        for storage in [Storage::Redis, Storage::Memcached] {
            let mut kv = Kv::connect(storage).await;
            for side in [Side::Python, Side::Rust] {
                let mut pair = Pair::start(Framework::Axum, storage, &Opts::MATRIX);
                pair.ok(side, "POST", "/set", Some(json!({"a": 1}))).await;
                let key = store_key(&Opts::MATRIX, pair.jar.as_ref().unwrap());
                let reply = pair.send(side, "POST", "/max_age?n=0", None).await;
                let left = kv.get(&key).await;
                match (side, storage) {
                    (Side::Python, Storage::Redis) => {
                        assert_eq!(reply.status, 500);
                        assert_eq!(ttl_bucket(left.expect("record kept").1), 3600);
                    }
                    (Side::Python, _) => {
                        assert_eq!(reply.status, 200);
                        assert_eq!(set_cookie(&reply).max_age(), Some(0));
                        assert_eq!(left.expect("record kept").1, -1, "never expires");
                    }
                    (Side::Rust, _) => {
                        assert_eq!(reply.status, 200);
                        assert_eq!(set_cookie(&reply).max_age(), Some(0));
                        assert_eq!(left, None, "{storage:?}: record deleted");
                    }
                }
            }
        }
    }

    /// memcached items with non-zero flags (written by another client):
    /// aiomcache refuses them (500); we read the value like any other.
    #[tokio::test]
    async fn memcached_item_flags() {
        let mut kv = Kv::connect(Storage::Memcached).await;
        let py = python_app(Storage::Memcached, &Opts::MATRIX);
        let rs = rust_app(Framework::Axum, Storage::Memcached, &Opts::MATRIX);
        let record = format!(r#"{{"created": {}, "session": {{"a": 1}}}}"#, now());
        let id = random_id();
        kv.set(&store_key(&Opts::MATRIX, &id), record.as_bytes(), 1)
            .await;
        assert_eq!(with_cookie(&py, "GET", "/get", Some(&id)).await.status, 500);
        assert_eq!(
            with_cookie(&rs, "GET", "/get", Some(&id)).await.json(),
            json!({"a": 1})
        );
    }

    /// Session ids memcached cannot take as keys (whitespace, over 250
    /// bytes with the prefix): aiomcache raises (500); we start fresh. On
    /// Redis both sides simply find nothing.
    #[tokio::test]
    async fn unusable_session_ids() {
        let ids = [py_quote("a b"), py_quote("tab\there"), "k".repeat(240)];
        for storage in [Storage::Memcached, Storage::Redis] {
            let py = python_app(storage, &Opts::MATRIX);
            let rs = rust_app(Framework::Axum, storage, &Opts::MATRIX);
            for id in &ids {
                let a = with_cookie(&py, "GET", "/meta", Some(id)).await;
                match storage {
                    Storage::Memcached => assert_eq!(a.status, 500, "Python {id}"),
                    _ => assert_eq!(a.json()["new"], true, "Python {id}"),
                }
                let b = with_cookie(&rs, "GET", "/meta", Some(id)).await;
                assert_eq!(b.json()["new"], true, "Rust {id}");
            }
        }
    }

    /// `NaN`, `Infinity` and `-Infinity` (Python's json writes and reads
    /// them; they are not JSON): a session holding one is read by Python
    /// and is a fresh session for us.
    #[tokio::test]
    async fn non_finite_floats() {
        for storage in Storage::ALL {
            let mut pair = Pair::start(Framework::Axum, storage, &Opts::MATRIX);
            let reply = pair
                .send_text(
                    Side::Python,
                    "/set",
                    r#"{"x": NaN, "y": Infinity, "z": -Infinity, "ok": 1}"#,
                )
                .await;
            assert_eq!(reply.status, 200, "{storage:?}");
            let py = pair.send(Side::Python, "GET", "/get", None).await;
            assert_eq!(
                py.body,
                r#"{"x": NaN, "y": Infinity, "z": -Infinity, "ok": 1}"#
            );
            let rs = pair.ok(Side::Rust, "GET", "/meta", None).await;
            assert_eq!(rs["new"], true, "{storage:?}");
            assert_eq!(rs["session"], json!({}), "{storage:?}");
            // Our example server also refuses such a body (serde_json).
            let reply = pair.send_text(Side::Rust, "/set", r#"{"x": NaN}"#).await;
            assert_eq!(reply.status, 400, "{storage:?}");
        }
    }

    /// Integers beyond 64 bits: Python keeps them exact; we read them as
    /// the nearest float (serde_json without `arbitrary_precision`) and
    /// write that float back, which Python then reads as a float.
    #[tokio::test]
    async fn integers_beyond_64_bits() {
        let text = r#"{"big": 18446744073709551616, "neg": -9223372036854775809, "fits": 18446744073709551615}"#;
        for storage in Storage::ALL {
            let mut pair = Pair::start(Framework::Axum, storage, &Opts::MATRIX);
            assert_eq!(pair.send_text(Side::Python, "/set", text).await.status, 200);
            let py = pair.send(Side::Python, "GET", "/get", None).await;
            assert_eq!(py.body, text, "Python keeps them exact");
            let rs = pair.ok(Side::Rust, "GET", "/get", None).await;
            assert_eq!(
                rs["big"],
                json!(18_446_744_073_709_551_616.0_f64),
                "{storage:?}"
            );
            assert_eq!(
                rs["neg"],
                json!(-9_223_372_036_854_775_809.0_f64),
                "{storage:?}"
            );
            assert_eq!(rs["fits"], json!(u64::MAX), "{storage:?}");
            // Rewritten by us, read by Python: floats now.
            pair.ok(Side::Rust, "POST", "/touch", None).await;
            let py = pair.send(Side::Python, "GET", "/get", None).await;
            assert_eq!(
                py.body,
                r#"{"big": 1.8446744073709552e+19, "neg": -9.223372036854776e+18, "fits": 18446744073709551615}"#,
                "{storage:?}"
            );
        }
    }

    // `invalidate()` then new data in the same request. The example routes
    // have no such request, so ours is served here, in process, with the
    // same options as the Python server's `/clear_set`.

    async fn clear_set(session: Session, body: Bytes) -> Response {
        session.invalidate();
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) {
            for (k, v) in map {
                session.insert_value(k, v);
            }
        }
        axum::Json(shared::routes::meta(&session)).into_response()
    }

    async fn example_routes(session: Session, method: Method, uri: Uri, body: Bytes) -> Response {
        let reply =
            shared::routes::dispatch(method.as_str(), uri.path(), uri.query(), &body, &session);
        let status = StatusCode::from_u16(reply.status).unwrap();
        (status, axum::Json(reply.body)).into_response()
    }

    async fn serve_with_clear_set(storage: Storage) -> App {
        let store = match storage {
            Storage::Redis => harness::StoreKind::Redis,
            _ => harness::StoreKind::Memcached,
        };
        let sessions = store
            .builder(key_bytes())
            .max_age(3600)
            .same_site(http_session::SameSite::Lax)
            .build()
            .unwrap();
        let router = axum::Router::new()
            .route("/clear_set", axum::routing::post(clear_set))
            .fallback(example_routes)
            .layer(http_session::axum::SessionLayer::new(sessions));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        App {
            server: Server {
                addr,
                stop: Box::new(move || task.abort()),
            },
            cookie_name: Opts::MATRIX.cookie_name().to_owned(),
            jar: None,
            label: format!("in-process axum {}", storage.name()),
        }
    }

    /// Python's `invalidate()` keeps the identity: data set afterwards in
    /// the same request is saved under the old id. Ours forgets it: the
    /// old record is deleted and the data gets a new id.
    #[tokio::test]
    async fn invalidate_then_set_in_one_request() {
        for storage in [Storage::Redis, Storage::Memcached] {
            let mut kv = Kv::connect(storage).await;
            let mut pair = Pair {
                python: python_app(storage, &Opts::MATRIX),
                rust: serve_with_clear_set(storage).await,
                jar: None,
                storage,
            };
            for side in [Side::Python, Side::Rust] {
                pair.jar = None;
                pair.ok(side, "POST", "/set", Some(json!({"a": 1}))).await;
                let old = pair.jar.clone().unwrap();
                let meta = pair
                    .ok(side, "POST", "/clear_set", Some(json!({"b": 2})))
                    .await;
                let new = pair.jar.clone().unwrap();
                let old_record = kv.get(&store_key(&Opts::MATRIX, &old)).await;
                match side {
                    Side::Python => {
                        assert_eq!(meta["identity"], json!(old), "{storage:?}");
                        assert_eq!(new, old);
                        let (value, _) = old_record.expect("record");
                        let value: Value = serde_json::from_slice(&value).unwrap();
                        assert_eq!(value["session"], json!({"b": 2}));
                    }
                    Side::Rust => {
                        assert_eq!(meta["identity"], Value::Null, "{storage:?}");
                        assert_ne!(new, old);
                        assert_eq!(old_record, None);
                    }
                }
                // Either way the other side reads the new data.
                let read = pair.ok(side.other(), "GET", "/get", None).await;
                assert_eq!(read, json!({"b": 2}), "{storage:?} {side:?}");
            }
        }
    }
}
