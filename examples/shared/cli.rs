//! The command line of the example servers, parsed by hand:
//!
//! ```text
//! --store memory|simple|fernet|nacl|redis|memcached  (required, except that
//!                       --redis-cluster and --redis-sentinel imply redis)
//! --port N              (default 0: any free port)
//! --key-hex HEX64       (fernet, nacl: the 32 raw key bytes in hex)
//! --fernet-key TEXT     (fernet: the key's padded URL-safe base64 form instead)
//! --redis-url URL       (redis, one server; default redis://127.0.0.1:6379)
//! --redis-cluster URL,URL,...          (redis: a Redis Cluster, any of its nodes)
//! --redis-sentinel MASTER@URL,URL,...  (redis: the master the Sentinels at URL,... name MASTER)
//! --memcached HOST:PORT[,HOST:PORT...] (memcached; one server, or a ketama ring
//!                       of several; default 127.0.0.1:11211)
//! --ketama weighted|ketama|md5         (memcached ring: the placement, default
//!                       weighted = pylibmc ketama_weighted; ketama = pylibmc
//!                       {"ketama": True}; md5 = {"ketama": True, "hash": "md5"})
//! --max-age N  --cookie-name NAME  --samesite Lax|Strict|None
//! --secure  --domain D  --workers N (default 1)
//! --strict              (strict mode: a read-modify-write that lost a race is a 409)
//! --idle-timeout S  --absolute-lifetime S  --rolling S  (expiry; see the builder)
//! ```

use http_session::{MemoryStore, PlainStore, SameSite, SessionManager, SessionManagerBuilder};

/// Usage text, printed with every command-line error.
pub const USAGE: &str = "usage: --store memory|simple|fernet|nacl|redis|memcached [--port N] \
[--key-hex HEX64 | --fernet-key B64] [--redis-url URL | --redis-cluster URL,URL,... | \
--redis-sentinel MASTER@URL,URL,...] [--memcached HOST:PORT[,HOST:PORT...]] \
[--ketama weighted|ketama|md5] [--max-age N] [--cookie-name NAME] \
[--samesite Lax|Strict|None] [--secure] [--domain D] [--workers N] [--strict] \
[--idle-timeout S] [--absolute-lifetime S] [--rolling S]";

/// What a server needs to start.
#[derive(Debug)]
pub struct Options {
    pub port: u16,
    pub workers: usize,
    pub sessions: SessionManager,
}

/// Parses the process arguments; on an error prints it with the usage and
/// exits with status 2.
pub fn from_env_or_exit() -> Options {
    match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            #[allow(clippy::print_stderr, reason = "a command-line tool reports errors")]
            {
                eprintln!("error: {message}\n{USAGE}");
            }
            std::process::exit(2);
        }
    }
}

/// Parses arguments (without the program name) into server options.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut args = args.into_iter();
    let mut store = None;
    let mut port = 0u16;
    let mut workers = 1usize;
    let mut key_hex = None;
    let mut fernet_key = None;
    let mut redis_url = None;
    let mut redis_cluster = None;
    let mut redis_sentinel = None;
    let mut memcached_addr = "127.0.0.1:11211".to_owned();
    let mut ketama = None;
    let mut max_age = None;
    let mut cookie_name = None;
    let mut same_site = None;
    let mut secure = false;
    let mut strict = false;
    let mut domain = None;
    let mut idle_timeout = None;
    let mut absolute_lifetime = None;
    let mut rolling = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--store" => store = Some(value()?),
            "--port" => port = number(&flag, &value()?)?,
            "--workers" => workers = number(&flag, &value()?)?,
            "--key-hex" => key_hex = Some(value()?),
            "--fernet-key" => fernet_key = Some(value()?),
            "--redis-url" => redis_url = Some(value()?),
            "--redis-cluster" => redis_cluster = Some(value()?),
            "--redis-sentinel" => redis_sentinel = Some(value()?),
            "--memcached" => memcached_addr = value()?,
            "--ketama" => ketama = Some(value()?),
            "--max-age" => max_age = Some(number(&flag, &value()?)?),
            "--cookie-name" => cookie_name = Some(value()?),
            "--samesite" => {
                same_site = Some(match value()?.as_str() {
                    "Lax" => SameSite::Lax,
                    "Strict" => SameSite::Strict,
                    "None" => SameSite::None,
                    other => {
                        return Err(format!(
                            "--samesite must be Lax, Strict or None, not {other:?}"
                        ))
                    }
                });
            }
            "--secure" => secure = true,
            "--strict" => strict = true,
            "--idle-timeout" => idle_timeout = Some(number(&flag, &value()?)?),
            "--absolute-lifetime" => absolute_lifetime = Some(number(&flag, &value()?)?),
            "--rolling" => rolling = Some(number(&flag, &value()?)?),
            "--domain" => domain = Some(value()?),
            "--help" | "-h" => return Err("help requested".to_owned()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if workers == 0 {
        return Err("--workers must be at least 1".to_owned());
    }
    let redis_setup = match (redis_url, redis_cluster, redis_sentinel) {
        (None, None, None) => Redis::Url("redis://127.0.0.1:6379".to_owned()),
        (Some(url), None, None) => Redis::Url(url),
        (None, Some(list), None) => Redis::Cluster(list),
        (None, None, Some(spec)) => Redis::Sentinel(spec),
        _ => {
            return Err(
                "--redis-url, --redis-cluster and --redis-sentinel exclude each other".to_owned(),
            )
        }
    };
    let store = match store {
        Some(store) => store,
        // A cluster or Sentinel set is only ever a Redis store.
        None if !matches!(redis_setup, Redis::Url(_)) => "redis".to_owned(),
        None => return Err("--store is required".to_owned()),
    };
    if store != "redis" && !matches!(redis_setup, Redis::Url(_)) {
        return Err(format!(
            "--redis-cluster and --redis-sentinel are for --store redis, not {store}"
        ));
    }
    if ketama.is_some() && store != "memcached" {
        return Err("--ketama is for --store memcached".to_owned());
    }
    let key = || key_bytes(key_hex.as_deref(), &store);
    let mut builder = match store.as_str() {
        "memory" => SessionManager::builder(MemoryStore::memory()),
        "simple" => SessionManager::builder(PlainStore::plain()),
        "fernet" => match &fernet_key {
            Some(text) => fernet_text(text)?,
            None => fernet(&key)?,
        },
        "nacl" => nacl(&key)?,
        "redis" => redis(&redis_setup)?,
        "memcached" => memcached(&memcached_addr, ketama.as_deref())?,
        other => return Err(format!("unknown store {other:?}")),
    };
    builder = builder.max_age_opt(max_age).secure(secure).strict(strict);
    if let Some(name) = cookie_name {
        builder = builder.cookie_name(name);
    }
    if let Some(same_site) = same_site {
        builder = builder.same_site(same_site);
    }
    if let Some(domain) = domain {
        builder = builder.domain(domain);
    }
    if let Some(seconds) = idle_timeout {
        builder = builder.idle_timeout(seconds);
    }
    if let Some(seconds) = absolute_lifetime {
        builder = builder.absolute_lifetime(seconds);
    }
    if let Some(seconds) = rolling {
        builder = builder.rolling(seconds);
    }
    let sessions = builder
        .build()
        .map_err(|e| format!("session options: {e}"))?;
    Ok(Options {
        port,
        workers,
        sessions,
    })
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag} needs a non-negative integer, not {text:?}"))
}

/// The 32 key bytes from 64 hex digits.
fn key_bytes(hex: Option<&str>, store: &str) -> Result<[u8; 32], String> {
    let hex = hex.ok_or_else(|| format!("--store {store} needs --key-hex (64 hex digits)"))?;
    let digits: Vec<u8> = hex
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or("--key-hex must be hexadecimal")?;
    if digits.len() != 64 {
        return Err(format!(
            "--key-hex needs 64 hex digits, got {}",
            digits.len()
        ));
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    Ok(key)
}

fn disabled(store: &str, feature: &str) -> String {
    format!("--store {store} needs this server built with the `{feature}` feature")
}

/// The key bytes, parsed only when the store's feature is on.
type KeyArg<'a> = &'a dyn Fn() -> Result<[u8; 32], String>;

#[cfg(feature = "fernet")]
fn fernet(key: KeyArg<'_>) -> Result<SessionManagerBuilder, String> {
    let key =
        http_session::FernetKey::from_bytes(&key()?).map_err(|e| format!("fernet key: {e}"))?;
    Ok(SessionManager::builder(http_session::FernetStore::fernet(
        &key,
    )))
}

#[cfg(not(feature = "fernet"))]
fn fernet(_key: KeyArg<'_>) -> Result<SessionManagerBuilder, String> {
    Err(disabled("fernet", "fernet"))
}

/// A Fernet key in its text form (padded URL-safe base64, as printed by
/// Python's `Fernet.generate_key()`).
#[cfg(feature = "fernet")]
fn fernet_text(text: &str) -> Result<SessionManagerBuilder, String> {
    let key =
        http_session::FernetKey::from_base64(text).map_err(|e| format!("--fernet-key: {e}"))?;
    Ok(SessionManager::builder(http_session::FernetStore::fernet(
        &key,
    )))
}

#[cfg(not(feature = "fernet"))]
fn fernet_text(_text: &str) -> Result<SessionManagerBuilder, String> {
    Err(disabled("fernet", "fernet"))
}

#[cfg(feature = "nacl")]
fn nacl(key: KeyArg<'_>) -> Result<SessionManagerBuilder, String> {
    let key = http_session::NaClKey::from_bytes(&key()?).map_err(|e| format!("nacl key: {e}"))?;
    Ok(SessionManager::builder(http_session::NaClStore::nacl(&key)))
}

#[cfg(not(feature = "nacl"))]
fn nacl(_key: KeyArg<'_>) -> Result<SessionManagerBuilder, String> {
    Err(disabled("nacl", "nacl"))
}

/// Which Redis set-up `--redis-url`, `--redis-cluster` or
/// `--redis-sentinel` named.
#[cfg_attr(
    not(feature = "redis"),
    allow(dead_code, reason = "read by the redis store")
)]
enum Redis {
    Url(String),
    /// `URL,URL,...`
    Cluster(String),
    /// `MASTER@URL,URL,...`
    Sentinel(String),
}

#[cfg(feature = "redis")]
fn redis(redis: &Redis) -> Result<SessionManagerBuilder, String> {
    let store = match redis {
        Redis::Url(url) => {
            http_session::RedisStore::redis(url).map_err(|e| format!("--redis-url: {e}"))?
        }
        Redis::Cluster(list) => redis_cluster(list)?,
        Redis::Sentinel(spec) => redis_sentinel(spec)?,
    };
    Ok(SessionManager::builder(store))
}

#[cfg(not(feature = "redis"))]
fn redis(_redis: &Redis) -> Result<SessionManagerBuilder, String> {
    Err(disabled("redis", "redis"))
}

/// The comma-separated items of a list flag, none of them empty.
#[cfg_attr(
    not(any(feature = "redis", feature = "memcached")),
    allow(dead_code, reason = "read by the server stores")
)]
fn list<'a>(flag: &str, text: &'a str) -> Result<Vec<&'a str>, String> {
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err(format!("{flag} needs a comma-separated list, not {text:?}"));
    }
    Ok(items)
}

#[cfg(all(feature = "redis", feature = "redis-cluster"))]
fn redis_cluster(text: &str) -> Result<http_session::RedisStore, String> {
    let urls = list("--redis-cluster", text)?;
    http_session::RedisStore::cluster(urls).map_err(|e| format!("--redis-cluster: {e}"))
}

#[cfg(all(feature = "redis", not(feature = "redis-cluster")))]
fn redis_cluster(_text: &str) -> Result<http_session::RedisStore, String> {
    Err("--redis-cluster needs this server built with the `redis-cluster` feature".to_owned())
}

#[cfg(all(feature = "redis", feature = "redis-sentinel"))]
fn redis_sentinel(text: &str) -> Result<http_session::RedisStore, String> {
    let (master, urls) = text
        .split_once('@')
        .ok_or("--redis-sentinel needs MASTER@URL,URL,...")?;
    let urls = list("--redis-sentinel", urls)?;
    http_session::RedisStore::sentinel(master, urls).map_err(|e| format!("--redis-sentinel: {e}"))
}

#[cfg(all(feature = "redis", not(feature = "redis-sentinel")))]
fn redis_sentinel(_text: &str) -> Result<http_session::RedisStore, String> {
    Err("--redis-sentinel needs this server built with the `redis-sentinel` feature".to_owned())
}

/// One address: one server; several: a ketama ring.
#[cfg(feature = "memcached")]
fn memcached(addrs: &str, ketama: Option<&str>) -> Result<SessionManagerBuilder, String> {
    use http_session::{KetamaFlavor, MemcachedBackend, MemcachedStore};
    let addrs = list("--memcached", addrs)?;
    let flavor = match ketama {
        None | Some("weighted") => KetamaFlavor::KetamaWeighted,
        Some("ketama") => KetamaFlavor::Ketama,
        Some("md5") => KetamaFlavor::KetamaMd5,
        Some(other) => {
            return Err(format!(
                "--ketama must be weighted, ketama or md5, not {other:?}"
            ))
        }
    };
    let store = match addrs.as_slice() {
        [one] if ketama.is_none() => MemcachedStore::memcached(*one),
        _ => MemcachedStore::new(
            MemcachedBackend::ring_with(flavor, addrs).map_err(|e| format!("--memcached: {e}"))?,
        ),
    };
    Ok(SessionManager::builder(store))
}

#[cfg(not(feature = "memcached"))]
fn memcached(_addrs: &str, _ketama: Option<&str>) -> Result<SessionManagerBuilder, String> {
    Err(disabled("memcached", "memcached"))
}

/// Logs `http_session` events (errors by default; `RUST_LOG` overrides)
/// to stderr.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Prints the line the scripts wait for, once the socket is bound.
pub fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
}
