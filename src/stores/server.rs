//! Server stores: the session lives in a key-value backend, the cookie
//! holds a random id.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::config::CookieConfig;
use crate::error::{Error, ErrorKind};
use crate::stores::{Context, Loaded, SaveRequest, Saved, SessionStore};

/// The three operations a server store needs from its backend.
///
/// Keys arrive complete (`<cookie_name>_<id>`) and already validated with
/// [`is_valid_key`]; values are encoded records. A backend reports a
/// connection failure or timeout with [`Error::store`]`(true, ..)` so the
/// client gets a 503.
pub trait KvBackend: Send + Sync + 'static {
    /// The value under `key`, or `None` when absent or expired.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send;

    /// Stores `value` under `key`, expiring after `ttl` seconds (never when
    /// `None`).
    fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<u64>,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Deletes `key`; deleting a missing key is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Makes the id of a new session (aiohttp-session's `key_factory`).
pub type KeyFactory = Arc<dyn Fn() -> String + Send + Sync>;

/// Whether `key` is usable in every backend: 1 to 250 bytes, no
/// whitespace or control characters (memcached's rule, applied to every
/// server store so they behave the same). Cookie ids that fail it give a
/// fresh session.
pub fn is_valid_key(key: &str) -> bool {
    if key.is_empty() || key.len() > 250 {
        return false;
    }
    // The usual key is printable ASCII: one pass over the bytes.
    key.bytes().all(|b| b.is_ascii_graphic())
        || !key
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ('\u{7f}'..='\u{9f}').contains(&c))
}

/// 128 random bits from the operating system as 32 lowercase hex digits,
/// like Python's `uuid.uuid4().hex` in length and alphabet.
pub(crate) fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    crate::random::fill(&mut bytes)?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(32);
    for b in bytes {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 15)]));
    }
    Ok(id)
}

/// A store that keeps sessions in a [`KvBackend`] under
/// `<cookie_name>_<id>`, with the record as the value and the session's
/// `max_age` as the TTL — the layout of aiohttp-session's Redis and
/// Memcached storages.
///
/// Unlike aiohttp-session, an invalidated or renewed session's record is
/// deleted rather than overwritten with `{}`, and an empty session writes
/// nothing.
pub struct ServerStore<B> {
    backend: B,
    key_factory: Option<KeyFactory>,
}

impl<B: KvBackend> ServerStore<B> {
    /// A server store over `backend`, with random 128-bit ids.
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            key_factory: None,
        }
    }

    /// Uses `factory` to make the ids of new sessions. Ids must be unique
    /// and unguessable; ids that fail [`is_valid_key`] make saving fail.
    pub fn with_key_factory(
        mut self,
        factory: impl Fn() -> String + Send + Sync + 'static,
    ) -> Self {
        self.key_factory = Some(Arc::new(factory));
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn new_id(&self) -> Result<String, Error> {
        match &self.key_factory {
            Some(factory) => Ok(factory()),
            None => random_id(),
        }
    }
}

fn store_key(config: &CookieConfig, id: &str) -> String {
    let mut key = String::with_capacity(config.name.len() + 1 + id.len());
    key.push_str(&config.name);
    key.push('_');
    key.push_str(id);
    key
}

impl<B: KvBackend> SessionStore for ServerStore<B> {
    async fn load(&self, ctx: &Context<'_>, cookie_value: &str) -> Result<Option<Loaded>, Error> {
        let key = store_key(ctx.config, cookie_value);
        if !is_valid_key(&key) {
            tracing::debug!(
                target: "http_session",
                len = cookie_value.len(),
                "session id is not a valid key; starting a fresh session"
            );
            return Ok(None);
        }
        match self.backend.get(&key).await? {
            Some(record) => Ok(Some(Loaded {
                identity: Some(cookie_value.to_owned()),
                record,
            })),
            None => {
                tracing::debug!(target: "http_session", "unknown or expired session id; starting a fresh session");
                Ok(None)
            }
        }
    }

    async fn save(&self, ctx: &Context<'_>, request: SaveRequest<'_>) -> Result<Saved, Error> {
        let config = ctx.config;
        for old in request.discarded {
            let key = store_key(config, old);
            if is_valid_key(&key) {
                self.backend.delete(&key).await?;
            }
        }
        if request.empty {
            if let Some(id) = request.identity {
                let key = store_key(config, id);
                if is_valid_key(&key) {
                    self.backend.delete(&key).await?;
                }
            }
            return Ok(Saved::Remove);
        }
        let id = match request.identity {
            Some(id) => id.to_owned(),
            None => self.new_id()?,
        };
        let key = store_key(config, &id);
        if !is_valid_key(&key) {
            return Err(
                Error::new(ErrorKind::Config).detail("session identity is not a valid store key")
            );
        }
        if request.ttl == Some(0) {
            // Expires at once: nothing to keep (and Redis rejects `EX 0`).
            self.backend.delete(&key).await?;
        } else {
            self.backend.set(&key, request.record, request.ttl).await?;
        }
        Ok(Saved::Cookie(id))
    }
}

impl<B: fmt::Debug> fmt::Debug for ServerStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerStore")
            .field("backend", &self.backend)
            .field("key_factory", &self.key_factory.as_ref().map(|_| "custom"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_lowercase_hex_and_distinct() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn key_validation_follows_memcached() {
        assert!(is_valid_key("AIOHTTP_SESSION_0123"));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("a b"));
        assert!(!is_valid_key("a\nb"));
        assert!(!is_valid_key("a\u{85}b"));
        assert!(is_valid_key("AIOHTTP_SESSION_café"));
        assert!(!is_valid_key("café\u{a0}"));
        assert!(!is_valid_key(&"k".repeat(251)));
        assert!(is_valid_key(&"k".repeat(250)));
    }
}
