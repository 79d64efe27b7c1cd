//! The demo (`examples/demo`) in a real browser: Debian's headless
//! Chromium, driven over W3C WebDriver by Debian's chromedriver.
//!
//! Checked, in two browsers (two WebDriver sessions, two cookie jars): two
//! visits count 2; the session cookie is `HttpOnly` (absent from
//! `document.cookie`, present in WebDriver's cookie API); login renews the
//! cookie's id and shows a one-time message once; a name with
//! `<script>alert(1)</script>` shows as text (no alert, no script element);
//! "your sessions" lists both browsers' sessions, and "log out everywhere
//! else" in one logs the other out; logout clears the session (the counter
//! restarts); "log out everywhere" logs out both. A second demo on the
//! Fernet cookie store shows that "your sessions" says the store cannot
//! list sessions. The counter is the demo's `Typed<Visits>` value, so the
//! counts check it too (and that login carries it over `renew()`).
//! Screenshots (1280x720) go to `<target dir>/browser/NN-*.png`, their
//! paths printed; chromedriver logs to `<target dir>/browser/chromedriver.log`.
//!
//! The WebDriver client is our own (`tests/support/webdriver.rs`, about 550
//! lines over `std::net::TcpStream` and `serde_json`): it adds no
//! dependency, so no build time and nothing for `cargo deny` to judge.
//! `fantoccini` 0.22 (without its default TLS) would add about 22 crates
//! and fails `deny.toml`: it needs Mozilla's `webdriver` crate, licensed
//! MPL-2.0, which the allow-list lacks, and brings second versions of
//! `http` (0.2), `cookie` and the `icu_*`/`zerovec` family (1.x beside our
//! 2.x). `thirtyfour` 0.38 (without its defaults, with `reqwest`) would add
//! about 18 crates, `reqwest` 0.13, `tower-http`, `async-trait` and a
//! second `base64` (0.23 beside our 0.22) among them. A DevTools-protocol
//! client needs a WebSocket client (`tokio-tungstenite`) and gives up
//! WebDriver's standard cookie and alert commands. The commands this test
//! needs are a dozen JSON requests, and a blocking client lets `Drop` end
//! the browsers, even when an assertion fails.
//!
//! If Chromium or chromedriver is missing, the test fails and says to run
//! `scripts/services.sh install-browser` (which `scripts/test.sh` does).

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "test code: a failed expectation is a failed test; it prints its screenshots' paths"
)]

#[path = "support/process.rs"]
mod process;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use process::{example, wait_for_address};
use serde_json::json;
use webdriver::{Browser, Driver, HEIGHT, WIDTH};

/// The demo's session cookie (aiohttp-session's default name).
const COOKIE: &str = "AIOHTTP_SESSION";
/// A name that would run script if the page did not escape it.
const NAME: &str = "Ada <script>alert(1)</script>";

/// A demo process, killed when dropped.
struct Demo {
    child: Child,
    url: String,
}

impl Demo {
    fn start(store_args: &[&str]) -> Self {
        let mut child = Command::new(example("demo"))
            .args(["--port", "0"])
            .args(store_args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the demo");
        let addr = match wait_for_address(&mut child) {
            Ok(addr) => addr,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the demo did not start: {e}");
            }
        };
        Self {
            child,
            url: format!("http://{addr}/"),
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Numbered screenshots under `<target dir>/browser/`.
struct Shots {
    dir: PathBuf,
    taken: Vec<PathBuf>,
}

impl Shots {
    fn new() -> Self {
        // The test binary is <target dir>/<profile>/deps/browser-HASH.
        let exe = std::env::current_exe().expect("test binary path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("the target dir above the test binary");
        let dir = target.join("browser");
        std::fs::create_dir_all(&dir).expect("create the screenshot dir");
        for old in std::fs::read_dir(&dir).expect("read the screenshot dir") {
            let path = old.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "png") {
                std::fs::remove_file(&path).expect("remove an old screenshot");
            }
        }
        Self {
            dir,
            taken: Vec::new(),
        }
    }

    fn take(&mut self, browser: &Browser, name: &str) {
        let path = self
            .dir
            .join(format!("{:02}-{name}.png", self.taken.len() + 1));
        let size = browser.screenshot(&path).expect("screenshot");
        assert_eq!(size, (WIDTH, HEIGHT), "{}", path.display());
        println!("screenshot: {}", path.display());
        self.taken.push(path);
    }
}

fn visits(browser: &Browser) -> u64 {
    let text = browser.text("#visits").expect("the visit counter");
    text.parse()
        .unwrap_or_else(|_| panic!("visit counter {text:?}"))
}

fn session_cookie(browser: &Browser) -> String {
    let cookie = browser
        .cookie(COOKIE)
        .expect("WebDriver cookie API")
        .unwrap_or_else(|| panic!("no {COOKIE} cookie in {:?}", browser.cookies()));
    cookie["value"].as_str().expect("cookie value").to_owned()
}

fn log_in(browser: &Browser, name: &str) {
    browser.type_into("#name", name).expect("type the name");
    browser.click("#login-button").expect("log in");
    assert_eq!(browser.text("#user").expect("logged in"), name);
}

fn logged_out(browser: &Browser) -> bool {
    browser.count("#user").expect("count #user") == 0
        && browser.count("#login").expect("count #login") == 1
}

/// The rows of "your sessions": (short handle, current).
fn listed_sessions(browser: &Browser) -> Vec<(String, bool)> {
    let rows = browser
        .execute(
            "return [...document.querySelectorAll('#sessions tbody tr')]\
             .map(tr => [tr.cells[0].textContent, tr.classList.contains('current')])",
            &[],
        )
        .expect("read the session rows");
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            (
                row[0].as_str().expect("handle").to_owned(),
                row[1].as_bool().expect("current"),
            )
        })
        .collect()
}

#[test]
fn demo_in_headless_chromium() {
    let started = Instant::now();
    let mut shots = Shots::new();
    let demo = Demo::start(&["--store", "memory"]);
    // Declared before the browsers, so dropped after them.
    let driver = Driver::start(&shots.dir).unwrap_or_else(|e| panic!("{e}"));
    let first = driver.browser().unwrap_or_else(|e| panic!("{e}"));

    counts_visits(&first, &demo, &mut shots);
    cookie_is_http_only(&first);
    login_renews_and_escapes(&first, &mut shots);
    logout_everywhere_else(&first, &driver, &demo, &mut shots);
    logout_clears(&first, &mut shots);
    logout_everywhere(&first, &driver, &demo, &mut shots);
    drop(first);
    cookie_store_cannot_list(&driver, &mut shots);

    println!(
        "{} screenshots in {}; browser test took {:.1} s",
        shots.taken.len(),
        shots.dir.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Two visits bring the counter (a `Typed<Visits>`) to 2.
fn counts_visits(browser: &Browser, demo: &Demo, shots: &mut Shots) {
    browser.goto(&demo.url).expect("open the demo");
    assert_eq!(visits(browser), 1);
    assert!(logged_out(browser));
    browser.refresh().expect("reload");
    assert_eq!(visits(browser), 2);
    assert!(browser.text("#session-id").expect("id").ends_with('…'));
    assert!(browser.text("#expires").expect("expiry").contains("UTC"));
    shots.take(browser, "two-visits");
}

/// `document.cookie` cannot see the session cookie; WebDriver can.
fn cookie_is_http_only(browser: &Browser) {
    let cookie = browser
        .cookie(COOKIE)
        .expect("WebDriver cookie API")
        .expect("the session cookie");
    assert_eq!(cookie["httpOnly"], json!(true), "{cookie}");
    assert_eq!(cookie["sameSite"], json!("Lax"), "{cookie}");
    // A cookie that script may set and read, to show document.cookie works.
    let script_view = browser
        .execute(
            "document.cookie = 'probe=1; path=/'; return document.cookie",
            &[],
        )
        .expect("read document.cookie");
    let script_view = script_view.as_str().expect("a string");
    assert!(script_view.contains("probe=1"), "{script_view:?}");
    assert!(!script_view.contains(COOKIE), "{script_view:?}");
}

/// Login gives a new session id (the cookie changes), keeps the count,
/// shows the welcome once, and shows the name as text.
fn login_renews_and_escapes(browser: &Browser, shots: &mut Shots) {
    let before = session_cookie(browser);
    let id_before = browser.text("#session-id").expect("id");
    log_in(browser, NAME);
    let after = session_cookie(browser);
    assert_ne!(before, after, "login must renew the session id");
    assert_ne!(id_before, browser.text("#session-id").expect("id"));
    // The count came along through renew(): 2 visits, then this page.
    assert_eq!(visits(browser), 3);
    let flash = browser.text("#flash").expect("the welcome message");
    assert_eq!(
        flash,
        format!("Welcome, {NAME}! Your session was renewed at login.")
    );

    // Escaped: shown as text, run as nothing.
    assert_eq!(browser.alert_text().expect("alert state"), None);
    assert_eq!(browser.count("script").expect("count scripts"), 0);
    let source = browser.source().expect("page source");
    assert!(source.contains("Ada &lt;script&gt;alert(1)&lt;/script&gt;"));
    let body = browser.text("body").expect("page text");
    assert!(body.contains(NAME), "{body}");
    let sessions = listed_sessions(browser);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].1, "the one session is the current one");
    shots.take(browser, "logged-in");

    // The one-time message is gone on the next visit.
    browser.refresh().expect("reload");
    assert_eq!(browser.count("#flash").expect("count #flash"), 0);
    assert_eq!(visits(browser), 4);
}

/// A second browser logs in as the same user; "log out everywhere else" in
/// the first ends it.
fn logout_everywhere_else(first: &Browser, driver: &Driver, demo: &Demo, shots: &mut Shots) {
    let second = driver.browser().unwrap_or_else(|e| panic!("{e}"));
    second.goto(&demo.url).expect("open the demo");
    assert!(logged_out(&second));
    log_in(&second, NAME);
    let listed = listed_sessions(&second);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed.iter().filter(|(_, current)| *current).count(), 1);
    shots.take(&second, "second-browser");

    first.refresh().expect("reload");
    let listed_first = listed_sessions(first);
    assert_eq!(listed_first.len(), 2, "{listed_first:?}");
    // The same two sessions, each browser marking its own.
    let current = |list: &[(String, bool)]| {
        list.iter()
            .find(|(_, current)| *current)
            .map(|(h, _)| h.clone())
    };
    assert_ne!(current(&listed), current(&listed_first));
    shots.take(first, "two-sessions");

    first
        .click("#logout-others")
        .expect("log out everywhere else");
    assert_eq!(
        first.text("#flash").expect("message"),
        "Logged out 1 other session."
    );
    assert_eq!(listed_sessions(first).len(), 1);
    assert_eq!(first.text("#user").expect("still logged in"), NAME);
    shots.take(first, "others-logged-out");

    second.refresh().expect("reload");
    assert!(logged_out(&second), "the second browser is logged out");
    assert_eq!(visits(&second), 1, "its session ended: a fresh one");
    shots.take(&second, "second-logged-out");
}

/// Logout ends the session: logged out, the counter restarts, a new id.
fn logout_clears(browser: &Browser, shots: &mut Shots) {
    let before = session_cookie(browser);
    browser.click("#logout").expect("log out");
    assert!(logged_out(browser));
    assert_eq!(
        browser.text("#flash").expect("message"),
        "You are logged out."
    );
    assert_eq!(visits(browser), 1);
    assert_ne!(session_cookie(browser), before);
    assert!(browser
        .text("#sessions")
        .expect("your sessions")
        .contains("Log in to see"));
    shots.take(browser, "logged-out");
}

/// "Log out everywhere" ends every session of the user, this one too.
fn logout_everywhere(first: &Browser, driver: &Driver, demo: &Demo, shots: &mut Shots) {
    let second = driver.browser().unwrap_or_else(|e| panic!("{e}"));
    second.goto(&demo.url).expect("open the demo");
    log_in(&second, NAME);
    log_in(first, NAME);
    assert_eq!(listed_sessions(first).len(), 2);
    first
        .click("#logout-everywhere")
        .expect("log out everywhere");
    assert!(logged_out(first));
    assert_eq!(
        first.text("#flash").expect("message"),
        "Logged out everywhere (2 sessions)."
    );
    second.refresh().expect("reload");
    assert!(logged_out(&second), "the second browser is logged out too");
    shots.take(first, "logged-out-everywhere");
}

/// On the Fernet cookie store, "your sessions" says it cannot list them.
fn cookie_store_cannot_list(driver: &Driver, shots: &mut Shots) {
    let demo = Demo::start(&["--store", "fernet", "--key-hex", &"ab".repeat(32)]);
    let browser = driver.browser().unwrap_or_else(|e| panic!("{e}"));
    browser.goto(&demo.url).expect("open the demo");
    assert_eq!(browser.text("#session-id").expect("id"), "in the cookie");
    log_in(&browser, "Grace");
    let note = browser.text("#unsupported").expect("the unsupported note");
    assert!(note.contains("cannot list sessions"), "{note}");
    assert_eq!(browser.count("#logout-others").expect("count"), 0);
    assert_eq!(visits(&browser), 2);
    shots.take(&browser, "fernet-store");
}
