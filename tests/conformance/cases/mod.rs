//! The conformance cases: each runs against one framework x store. They
//! are grouped by concern: the basics of a session and its cookie, hostile
//! cookies, concurrent requests of one session, expiry, and who is logged
//! in where.

mod basics;
mod concurrency;
mod expiry;
mod hostile;
mod users;

pub use basics::*;
pub use concurrency::*;
pub use expiry::*;
pub use hostile::*;
pub use users::*;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{split_value, App, Reply};

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// The Set-Cookie value part of a reply, asserting there is one.
pub(crate) fn cookie_value(app: &App, reply: &Reply) -> String {
    let line = reply
        .set_cookie()
        .unwrap_or_else(|| panic!("[{}] expected a Set-Cookie", app.label));
    let rest = line
        .strip_prefix(&format!("{}=", app.cookie_name))
        .unwrap_or_else(|| panic!("[{}] wrong cookie name in {line}", app.label));
    split_value(rest).to_owned()
}

pub(crate) fn assert_removal(app: &App, reply: &Reply) {
    let line = reply
        .set_cookie()
        .unwrap_or_else(|| panic!("[{}] expected a Set-Cookie", app.label));
    assert_eq!(
        line,
        format!(
            "{}=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
            app.cookie_name
        ),
        "[{}]",
        app.label
    );
}

/// The `Cookie` header an app's jar sends.
pub(crate) fn cookie_header(app: &App) -> String {
    format!(
        "{}={}",
        app.cookie_name,
        app.jar.as_deref().expect("a session cookie")
    )
}

/// The cookie value a Set-Cookie line sets (`None` for a removal).
pub(crate) fn set_value(app: &App, line: &str) -> Option<String> {
    let rest = line.strip_prefix(&format!("{}=", app.cookie_name))?;
    (!line.contains("Max-Age=0")).then(|| split_value(rest).to_owned())
}

/// The session's data as `/get` sees it with the jar's cookie.
pub(crate) async fn data(app: &mut App) -> Value {
    app.get("/get").await.json()
}
