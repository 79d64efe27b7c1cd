//! The routes every example server answers, written once over `Session`
//! and called unchanged by the axum, actix-web and warp servers (and by the
//! conformance tests). All answers are JSON.
//!
//! | route | effect |
//! |---|---|
//! | `GET /get` | the whole session map, read only |
//! | `POST /set` | merges a JSON object body into the session |
//! | `POST /clear` | invalidates the session |
//! | `GET /new` | starts a new session (login) and sets `marker` to `"new"` |
//! | `GET /meta` | `{"new","created","identity","empty","max_age","session"}` |
//! | `POST /max_age?n=N\|none` | sets the session's max_age and marks it changed |
//! | `POST /touch` | marks the session changed |
//! | `POST /del?key=K` | removes one key |
//! | `GET /incr` | increments the integer `n` and returns `{"n": n}` |
//! | `POST /identity?id=X` | `set_new_identity(X)` (409 unless the session is new) |
//! | `GET /bare` | `"ok"`, without touching the session (served by each framework) |
//! | `GET /vary` | the session map, with the handler's own `Vary: Accept-Encoding, Cookie` |
//! | `POST /login?user=X` | renews the session, binds it to user X, sets `user`; the meta |
//! | `GET /sessions` | `{"user", "sessions": [{"handle","created","last_write","expires","current"}]}` (401 unless logged in) |
//! | `POST /logout-others` | ends the user's other sessions: `{"revoked": n}` |
//! | `POST /logout-everywhere` | ends all the user's sessions, this one too: `{"revoked": n}` |
//!
//! Every route but `/bare` also takes `delay_ms=N` in its query: the server
//! waits that long (at most 10 s) after the session was loaded and before
//! the route runs, so tests can make concurrent requests of one session
//! overlap for real.

#![allow(dead_code)]

use http_session::{ErrorKind, Session};
use serde_json::{json, Map, Value};

/// A route's answer: a status code, a JSON body and the handler's own
/// `Vary` header, if any.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub vary: Option<&'static str>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            vary: None,
        }
    }

    fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            body: json!({ "error": message }),
            vary: None,
        }
    }
}

/// `GET /incr`: increments `n`. Each server also mounts it as a route of
/// its own (no generic dispatch on the way), as the load benchmark's peers
/// do, so W1/W2 compare session work and not the example's router.
pub fn incr(session: &Session) -> Value {
    let n = session.get_value("n").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
    session.insert_value("n", json!(n));
    json!({ "n": n })
}

/// Runs the route for `method` and `path` against `session`.
pub async fn dispatch(
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    session: &Session,
) -> Reply {
    match (method, path) {
        ("GET", "/get") => Reply::ok(Value::Object(session.to_map())),
        ("GET", "/vary") => Reply {
            vary: Some("Accept-Encoding, Cookie"),
            ..Reply::ok(Value::Object(session.to_map()))
        },
        ("POST", "/set") => set(session, body),
        ("POST", "/clear") => {
            session.invalidate();
            Reply::ok(Value::Object(session.to_map()))
        }
        ("GET", "/new") => {
            session.renew();
            session.insert_value("marker", json!("new"));
            Reply::ok(Value::Object(session.to_map()))
        }
        ("GET", "/meta") => Reply::ok(meta(session)),
        ("POST", "/max_age") => match param(query, "n").as_deref() {
            Some("none") => {
                session.set_max_age(None);
                session.changed();
                Reply::ok(meta(session))
            }
            Some(n) => match n.parse::<u64>() {
                Ok(n) => {
                    session.set_max_age(Some(n));
                    session.changed();
                    Reply::ok(meta(session))
                }
                Err(_) => Reply::error(400, "n must be an integer or 'none'"),
            },
            None => Reply::error(400, "n is required"),
        },
        ("POST", "/touch") => {
            session.changed();
            Reply::ok(meta(session))
        }
        ("POST", "/del") => match param(query, "key") {
            Some(key) => {
                session.remove(&key);
                Reply::ok(Value::Object(session.to_map()))
            }
            None => Reply::error(400, "key is required"),
        },
        ("GET", "/incr") => Reply::ok(incr(session)),
        ("POST", "/login") => match param(query, "user").filter(|u| !u.is_empty()) {
            Some(user) => {
                session.renew();
                session.set_user(user.clone());
                session.insert_value("user", json!(user));
                Reply::ok(meta(session))
            }
            None => Reply::error(400, "user is required"),
        },
        ("GET", "/sessions") => match session.user() {
            Some(user) => match session.sessions().await {
                Ok(list) => Reply::ok(json!({
                    "user": user,
                    "sessions": list.iter().map(|s| json!({
                        "handle": s.handle.as_str(),
                        "created": s.created,
                        "last_write": s.last_write,
                        "expires": s.expires,
                        "current": s.current,
                    })).collect::<Vec<_>>(),
                })),
                Err(e) => store_error(&e),
            },
            None => Reply::error(401, "not logged in"),
        },
        ("POST", "/logout-others") => match session.revoke_others().await {
            Ok(n) => Reply::ok(json!({ "revoked": n })),
            Err(e) => store_error(&e),
        },
        ("POST", "/logout-everywhere") => match session.revoke_everywhere().await {
            Ok(n) => Reply::ok(json!({ "revoked": n })),
            Err(e) => store_error(&e),
        },
        ("POST", "/identity") => match param(query, "id") {
            Some(id) => match session.set_new_identity(id) {
                Ok(()) => {
                    session.insert_value("named", json!(true));
                    Reply::ok(meta(session))
                }
                Err(e) if e.kind() == ErrorKind::IdentityNotNew => {
                    Reply::error(409, "session is not new")
                }
                Err(_) => Reply::error(500, "internal error"),
            },
            None => Reply::error(400, "id is required"),
        },
        _ => Reply::error(404, "not found"),
    }
}

/// A per-user operation the store refused: 501 when it cannot do it (a
/// cookie store, memcached), 503 when it is unreachable, else 500.
fn store_error(e: &http_session::Error) -> Reply {
    match e.kind() {
        ErrorKind::Unsupported => {
            Reply::error(501, "this session store cannot list or revoke sessions")
        }
        _ if e.status() == 503 => Reply::error(503, "session store unavailable"),
        _ => Reply::error(500, "internal error"),
    }
}

fn set(session: &Session, body: &[u8]) -> Reply {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => {
            for (key, value) in map {
                session.insert_value(key, value);
            }
            Reply::ok(Value::Object(session.to_map()))
        }
        _ => Reply::error(400, "body must be a JSON object"),
    }
}

/// aiohttp-session's attributes, as the Python reference app reports them.
pub fn meta(session: &Session) -> Value {
    let mut out = Map::new();
    out.insert("new".into(), json!(session.is_new()));
    out.insert("created".into(), Value::Number(session.created_number()));
    out.insert("identity".into(), json!(session.identity()));
    out.insert("empty".into(), json!(session.is_empty()));
    out.insert("max_age".into(), json!(session.max_age()));
    out.insert("session".into(), Value::Object(session.to_map()));
    Value::Object(out)
}

/// The `delay_ms` a request asks for (see the module docs).
pub fn delay(query: Option<&str>) -> Option<std::time::Duration> {
    let ms: u64 = param(query, "delay_ms")?.parse().ok()?;
    Some(std::time::Duration::from_millis(ms.min(10_000)))
}

/// Waits the `delay_ms` a request asks for, if any.
pub async fn pause(query: Option<&str>) {
    if let Some(delay) = delay(query) {
        tokio::time::sleep(delay).await;
    }
}

/// The value of `name` in a query string, percent-decoded.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
