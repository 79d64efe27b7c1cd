//! A small W3C WebDriver client for `tests/browser.rs`: Debian's
//! `chromedriver` driving headless `chromium`, over blocking HTTP/1.1 on
//! loopback (`std::net::TcpStream`, one connection per command) with
//! `serde_json` for the bodies. Only the commands the test needs.
//!
//! Every wait is bounded: chromedriver gets [`DRIVER_START`] to answer
//! `/status`, every command's socket a [`COMMAND_TIMEOUT`], page loads
//! [`PAGE_LOAD`]. [`Driver`] runs chromedriver in a process group of its own
//! and kills the whole group (Chromium included) when dropped; [`Browser`]
//! ends its WebDriver session when dropped, so a failed assertion leaves no
//! process behind.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long chromedriver gets to answer `/status` as ready.
pub const DRIVER_START: Duration = Duration::from_secs(20);
/// The socket timeout of one command (above the page-load timeout).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(40);
/// The WebDriver session's page-load and script timeouts.
pub const PAGE_LOAD: Duration = Duration::from_secs(20);

/// The window, and so the screenshots.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 720;

/// The key of an element reference in W3C WebDriver.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver error: its `error` code (`no such element`, `no such
/// alert`, ...) and message, or a transport failure (code `transport`).
#[derive(Debug)]
pub struct WdError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

fn transport(message: impl std::fmt::Display) -> WdError {
    WdError {
        code: "transport".to_owned(),
        message: message.to_string(),
    }
}

/// The chromedriver process (and, through its process group, every
/// Chromium it started).
#[derive(Debug)]
pub struct Driver {
    child: Child,
    addr: SocketAddr,
    /// Where the browsers' fresh profiles are made.
    profiles: PathBuf,
    sessions: std::cell::Cell<u32>,
}

impl Driver {
    /// Starts chromedriver on a free loopback port, logging to
    /// `dir/chromedriver.log`, and waits until it is ready. Fails (never
    /// skips) when Chromium or chromedriver is not installed.
    pub fn start(dir: &Path) -> Result<Self, String> {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(binary).exists() {
                return Err(format!(
                    "{binary} is missing: run `scripts/services.sh install-browser` \
                     (Debian's chromium and chromium-driver); scripts/test.sh does"
                ));
            }
        }
        let log = dir.join("chromedriver.log");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port for chromedriver: {e}"))?
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so that Drop can end Chromium with it.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("could not start {CHROMEDRIVER}: {e}"))?;
        let mut driver = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            profiles: dir.join("profiles"),
            sessions: std::cell::Cell::new(0),
        };
        let deadline = Instant::now() + DRIVER_START;
        loop {
            if let Ok(Some(status)) = driver.child.try_wait() {
                return Err(format!(
                    "chromedriver exited at start ({status}); see {}",
                    log.display()
                ));
            }
            let ready = request(driver.addr, "GET", "/status", None, Duration::from_secs(2))
                .is_ok_and(|v| v["ready"] == json!(true));
            if ready {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "chromedriver did not get ready on port {port} within {DRIVER_START:?}; see {}",
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A new browser (a WebDriver session: its own Chromium, with a fresh
    /// profile and so its own cookie jar) with a 1280x720 window.
    pub fn browser(&self) -> Result<Browser, String> {
        let n = self.sessions.get() + 1;
        self.sessions.set(n);
        let profile = self.profiles.join(format!("{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)
            .map_err(|e| format!("profile dir {}: {e}", profile.display()))?;
        // The flags that let Chromium run here as root on a closed network.
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={WIDTH},{HEIGHT}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "timeouts": {
                "pageLoad": PAGE_LOAD.as_millis(),
                "script": PAGE_LOAD.as_millis(),
                "implicit": 0,
            },
        }}});
        let created = request(
            self.addr,
            "POST",
            "/session",
            Some(&capabilities),
            COMMAND_TIMEOUT,
        )
        .map_err(|e| format!("chromedriver could not start Chromium: {e}"))?;
        let id = created["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {created}"))?
            .to_owned();
        let browser = Browser {
            addr: self.addr,
            id,
            profile,
        };
        browser.set_viewport(WIDTH, HEIGHT)?;
        Ok(browser)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium still running.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session: a Chromium with its own profile.
#[derive(Debug)]
pub struct Browser {
    addr: SocketAddr,
    id: String,
    profile: PathBuf,
}

impl Browser {
    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, WdError> {
        let path = format!("/session/{}{path}", self.id);
        request(self.addr, method, &path, body, COMMAND_TIMEOUT)
    }

    /// Sizes the window so that the viewport is `width` x `height`.
    fn set_viewport(&self, width: u32, height: u32) -> Result<(), String> {
        let inner = self
            .execute("return [window.innerWidth, window.innerHeight]", &[])
            .map_err(|e| e.to_string())?;
        let outer = self
            .command("GET", "/window/rect", None)
            .map_err(|e| e.to_string())?;
        let size = |v: &Value| v.as_u64().unwrap_or(0);
        let w = size(&outer["width"]) + u64::from(width) - size(&inner[0]);
        let h = size(&outer["height"]) + u64::from(height) - size(&inner[1]);
        self.command(
            "POST",
            "/window/rect",
            Some(&json!({"width": w, "height": h})),
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Loads `url` and waits for it (at most [`PAGE_LOAD`]).
    pub fn goto(&self, url: &str) -> Result<(), WdError> {
        self.command("POST", "/url", Some(&json!({ "url": url })))
            .map(drop)
    }

    /// Reloads the page.
    pub fn refresh(&self) -> Result<(), WdError> {
        self.command("POST", "/refresh", Some(&json!({}))).map(drop)
    }

    /// The page's HTML as the browser serializes it.
    pub fn source(&self) -> Result<String, WdError> {
        Ok(self
            .command("GET", "/source", None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Runs `script` (a function body) in the page with `args`.
    pub fn execute(&self, script: &str, args: &[Value]) -> Result<Value, WdError> {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": args})),
        )
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> Result<String, WdError> {
        let found = self.command(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": selector})),
        )?;
        found[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| transport(format!("no element reference in {found}")))
    }

    /// How many elements match `selector`.
    pub fn count(&self, selector: &str) -> Result<usize, WdError> {
        let found = self.command(
            "POST",
            "/elements",
            Some(&json!({"using": "css selector", "value": selector})),
        )?;
        Ok(found.as_array().map_or(0, Vec::len))
    }

    /// The rendered text of the first element matching `selector`.
    pub fn text(&self, selector: &str) -> Result<String, WdError> {
        let element = self.find(selector)?;
        Ok(self
            .command("GET", &format!("/element/{element}/text"), None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Types `text` into the element matching `selector`.
    pub fn type_into(&self, selector: &str, text: &str) -> Result<(), WdError> {
        let element = self.find(selector)?;
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(&json!({ "text": text })),
        )
        .map(drop)
    }

    /// Clicks the element matching `selector`, then waits (bounded) until
    /// the page it may have started loading is complete.
    pub fn click(&self, selector: &str) -> Result<(), WdError> {
        let element = self.find(selector)?;
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(&json!({})),
        )?;
        wait_until(&format!("the page after clicking {selector}"), || {
            let gone = self
                .command("GET", &format!("/element/{element}/text"), None)
                .is_err_and(|e| e.code == "stale element reference");
            let state = self.execute("return document.readyState", &[])?;
            Ok(gone && state == json!("complete"))
        })
    }

    /// Every cookie of the page's origin, HttpOnly ones included.
    pub fn cookies(&self) -> Result<Vec<Value>, WdError> {
        Ok(self
            .command("GET", "/cookie", None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The cookie `name` through the WebDriver cookie API, if set.
    pub fn cookie(&self, name: &str) -> Result<Option<Value>, WdError> {
        match self.command("GET", &format!("/cookie/{name}"), None) {
            Ok(cookie) => Ok(Some(cookie)),
            Err(e) if e.code == "no such cookie" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The text of an open alert, confirm or prompt, if one is open.
    pub fn alert_text(&self) -> Result<Option<String>, WdError> {
        match self.command("GET", "/alert/text", None) {
            Ok(text) => Ok(Some(text.as_str().unwrap_or_default().to_owned())),
            Err(e) if e.code == "no such alert" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A PNG of the viewport, written to `path`; returns its width and
    /// height.
    pub fn screenshot(&self, path: &Path) -> Result<(u32, u32), String> {
        let encoded = self
            .command("GET", "/screenshot", None)
            .map_err(|e| e.to_string())?;
        let png = decode_base64(encoded.as_str().unwrap_or_default())
            .ok_or("the screenshot is not base64")?;
        let size = |at: usize| {
            png.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
        };
        let (Some(width), Some(height)) = (size(16), size(20)) else {
            return Err("the screenshot is not a PNG".to_owned());
        };
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err("the screenshot is not a PNG".to_owned());
        }
        std::fs::write(path, &png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((width, height))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium (the Driver's group kill is the backstop).
        let _ = request(
            self.addr,
            "DELETE",
            &format!("/session/{}", self.id),
            None,
            Duration::from_secs(10),
        );
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Polls `check` every 50 ms until it answers true, for at most
/// [`PAGE_LOAD`].
pub fn wait_until(
    what: &str,
    mut check: impl FnMut() -> Result<bool, WdError>,
) -> Result<(), WdError> {
    let deadline = Instant::now() + PAGE_LOAD;
    loop {
        if check()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(transport(format!("timed out waiting for {what}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One WebDriver command over a fresh loopback connection: the response's
/// `value`, or its WebDriver error.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Value, WdError> {
    let deadline = Instant::now() + timeout;
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(transport)?;
    stream.set_write_timeout(Some(timeout)).map_err(transport)?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(transport)?;
    // Read the whole response (chromedriver keeps the connection open
    // despite `Connection: close`: its length says where it ends), within
    // the deadline as a whole.
    let mut response = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let (head, body) = loop {
        if let Some((head, body)) = complete(&response) {
            break (head, body);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(transport(format!(
                "{method} {path}: no answer within {timeout:?}"
            )));
        }
        stream.set_read_timeout(Some(left)).map_err(transport)?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(transport(format!(
                    "{method} {path}: connection closed after {} bytes",
                    response.len()
                )))
            }
            Ok(n) => response.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(transport(format!("{method} {path}: {e}"))),
        }
    };
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| transport(format!("{method} {path}: no status line")))?;
    let json: Value = serde_json::from_slice(&body)
        .map_err(|e| transport(format!("{method} {path}: body is not JSON: {e}")))?;
    let value = json.get("value").cloned().unwrap_or(Value::Null);
    if status >= 400 || value.get("error").is_some() {
        return Err(WdError {
            code: value["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned(),
            message: value["message"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(value)
}

/// The head (lowercased) and body of `response` once all of it arrived:
/// its `Content-Length`, or a complete chunked body.
fn complete(response: &[u8]) -> Option<(String, Vec<u8>)> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let body = &response[split + 4..];
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim() == name)
            .map(|(_, value)| value.trim().to_owned())
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return unchunk(body).map(|body| (head, body));
    }
    let length: usize = header("content-length")?.parse().ok()?;
    body.get(..length).map(|body| (head, body.to_vec()))
}

/// A `Transfer-Encoding: chunked` body, decoded (`None` until complete).
fn unchunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// Standard base64 (with padding), as WebDriver sends screenshots.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut bits = 0u32;
    let mut count = 0;
    for byte in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = bits << 6 | u32::from(sextet);
        count += 1;
        if count == 4 {
            out.extend_from_slice(&bits.to_be_bytes()[1..]);
            bits = 0;
            count = 0;
        }
    }
    match count {
        0 => {}
        2 => out.push((bits >> 4).to_be_bytes()[3]),
        3 => out.extend_from_slice(&(bits >> 2).to_be_bytes()[2..]),
        _ => return None,
    }
    Some(out)
}
