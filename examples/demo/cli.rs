//! The demo's command line and the session manager it asks for.

use http_session::{MemoryStore, SameSite, SessionManager, SessionManagerBuilder};

/// Printed with `--help` and with every command-line error.
pub(crate) const USAGE: &str = "usage: demo [PORT] [--port N] [--store memory|fernet|redis] \
[--key-hex HEX64] [--redis-url URL]

  PORT, --port N     where to listen on 127.0.0.1 (default 8000; 0: any free port)
  --store memory     sessions in this process (the default)
  --store fernet     sessions in a Fernet-encrypted cookie (feature `fernet`);
                     --key-hex: the 32 key bytes as 64 hex digits (default: a new key)
  --store redis      sessions in Redis (feature `redis`);
                     --redis-url (default redis://127.0.0.1:6379/)";

/// The demo's sessions: a session's data lasts an hour from its last
/// change, and ends after this long without a write.
const MAX_AGE_S: u64 = 60 * 60;
const IDLE_TIMEOUT_S: u64 = 15 * 60;

/// What the command line asked for.
#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) port: u16,
    store: String,
    key_hex: Option<String>,
    redis_url: Option<String>,
}

/// The store in use, as the page shows it.
#[derive(Debug)]
pub(crate) struct StoreInfo {
    /// What the page calls it.
    pub(crate) label: String,
    /// Whether the session travels in the cookie (then it has no id, and
    /// the server can neither list nor end it).
    pub(crate) in_cookie: bool,
}

impl StoreInfo {
    /// Why the store cannot list a user's sessions (nor end them).
    pub(crate) fn cannot_list(&self) -> &'static str {
        if self.in_cookie {
            "This store cannot list sessions: each lives in its browser's cookie, unknown to \
             the server, which can neither find nor end it before it expires."
        } else {
            "This store keeps no index of a user's sessions: it can neither list nor end them."
        }
    }
}

/// `Ok(None)`: help was asked for.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = args.into_iter().peekable();
    let mut parsed = Args {
        port: 8000,
        store: "memory".to_owned(),
        key_hex: None,
        redis_url: None,
    };
    // A bare port number first, as `cargo run --example demo -- 9000` had it.
    if let Some(port) = args.peek().and_then(|first| first.parse().ok()) {
        parsed.port = port;
        args.next();
    }
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let text = value()?;
                parsed.port = text
                    .parse()
                    .map_err(|_| format!("--port needs a port number, not {text:?}"))?;
            }
            "--store" => parsed.store = value()?,
            "--key-hex" => parsed.key_hex = Some(value()?),
            "--redis-url" => parsed.redis_url = Some(value()?),
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.key_hex.is_some() && parsed.store != "fernet" {
        return Err("--key-hex is for --store fernet".to_owned());
    }
    if parsed.redis_url.is_some() && parsed.store != "redis" {
        return Err("--redis-url is for --store redis".to_owned());
    }
    Ok(Some(parsed))
}

/// The session manager for `args`, and what the page says of its store.
pub(crate) fn manager(args: &Args) -> Result<(SessionManager, StoreInfo), String> {
    let (builder, info) = match args.store.as_str() {
        "memory" => (
            SessionManager::builder(MemoryStore::memory()),
            StoreInfo {
                label: "memory (in this process)".to_owned(),
                in_cookie: false,
            },
        ),
        "fernet" => fernet(args.key_hex.as_deref())?,
        "redis" => redis(
            args.redis_url
                .as_deref()
                .unwrap_or("redis://127.0.0.1:6379/"),
        )?,
        other => return Err(format!("unknown store {other:?}: memory, fernet or redis")),
    };
    let sessions = builder
        .max_age(MAX_AGE_S)
        .idle_timeout(IDLE_TIMEOUT_S)
        .same_site(SameSite::Lax)
        .build()
        .map_err(|e| format!("session options: {e}"))?;
    Ok((sessions, info))
}

/// The message for a store whose cargo feature this build lacks.
#[cfg(any(not(feature = "fernet"), not(feature = "redis")))]
fn needs_feature(store: &str) -> String {
    format!(
        "--store {store} needs the demo built with the `{store}` feature: \
         cargo run --example demo --features axum,{store} -- --store {store}"
    )
}

#[cfg(feature = "fernet")]
fn fernet(key_hex: Option<&str>) -> Result<(SessionManagerBuilder, StoreInfo), String> {
    use zeroize::Zeroizing;

    let key = match key_hex {
        Some(hex) => key_from_hex(hex)?,
        None => {
            let mut key = Zeroizing::new([0u8; 32]);
            getrandom::getrandom(key.as_mut_slice())
                .map_err(|e| format!("no randomness for a Fernet key: {e}"))?;
            let hex: Zeroizing<String> =
                Zeroizing::new(key.iter().map(|b| format!("{b:02x}")).collect());
            tracing::warn!(
                "no --key-hex given: sessions are sealed with a new Fernet key and end when the \
                 demo stops; to keep them across restarts, run with --key-hex {}",
                hex.as_str()
            );
            key
        }
    };
    let key = http_session::FernetKey::from_bytes(key.as_slice())
        .map_err(|e| format!("Fernet key: {e}"))?;
    Ok((
        SessionManager::builder(http_session::FernetStore::fernet(&key)),
        StoreInfo {
            label: "fernet (encrypted cookie)".to_owned(),
            in_cookie: true,
        },
    ))
}

#[cfg(not(feature = "fernet"))]
fn fernet(_key_hex: Option<&str>) -> Result<(SessionManagerBuilder, StoreInfo), String> {
    Err(needs_feature("fernet"))
}

/// The 32 key bytes from 64 hex digits.
#[cfg(feature = "fernet")]
fn key_from_hex(hex: &str) -> Result<zeroize::Zeroizing<[u8; 32]>, String> {
    let invalid = || "--key-hex needs 64 hex digits (32 bytes)".to_owned();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    for (byte, pair) in key.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
    }
    Ok(key)
}

#[cfg(feature = "redis")]
fn redis(url: &str) -> Result<(SessionManagerBuilder, StoreInfo), String> {
    let store = http_session::RedisStore::redis(url).map_err(|e| format!("--redis-url: {e}"))?;
    // A password in the URL stays off the page.
    let shown = match url.split_once('@') {
        Some((scheme_and_user, host)) => match scheme_and_user.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…@{host}"),
            None => format!("…@{host}"),
        },
        None => url.to_owned(),
    };
    Ok((
        SessionManager::builder(store),
        StoreInfo {
            label: format!("redis ({shown})"),
            in_cookie: false,
        },
    ))
}

#[cfg(not(feature = "redis"))]
fn redis(_url: &str) -> Result<(SessionManagerBuilder, StoreInfo), String> {
    Err(needs_feature("redis"))
}
