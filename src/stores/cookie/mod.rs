//! Cookie stores: the whole session travels in the cookie, sealed.

use std::fmt;

use crate::error::Error;
use crate::stores::{Context, Loaded, Remaining, SaveRequest, Saved, SessionStore, Stored};

#[cfg(feature = "fernet")]
pub(crate) mod fernet;
#[cfg(any(feature = "fernet", feature = "nacl"))]
mod key;
#[cfg(feature = "nacl")]
pub(crate) mod nacl;
#[cfg(feature = "nacl")]
mod poly1305;

/// The known-answer vectors written by aiohttp-session
/// (`tests/interop/vectors.json`), for the byte-exact re-seal tests of the
/// sealers, which need their fixed-IV and fixed-nonce internals.
#[cfg(all(test, any(feature = "fernet", feature = "nacl")))]
#[allow(
    clippy::unwrap_used,
    reason = "test code: a broken vector file fails the test"
)]
mod python_vectors {
    use serde_json::Value;

    pub(super) struct Vector {
        pub(super) json: Value,
    }

    impl Vector {
        pub(super) fn name(&self) -> &str {
            self.json["name"].as_str().unwrap_or_default()
        }

        pub(super) fn bytes(&self, field: &str) -> Option<Vec<u8>> {
            let text = self.json[field].as_str()?;
            Some(
                (0..text.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
                    .collect(),
            )
        }

        pub(super) fn key(&self) -> Vec<u8> {
            self.bytes("key_hex").unwrap()
        }

        pub(super) fn plaintext(&self) -> &str {
            self.json["plaintext"].as_str().unwrap()
        }

        pub(super) fn token(&self) -> &str {
            self.json["token"].as_str().unwrap()
        }
    }

    /// The vectors of `storage` that carry a token and its plaintext.
    pub(super) fn of(storage: &str) -> Vec<Vector> {
        let all: Vec<Value> =
            serde_json::from_str(include_str!("../../../tests/interop/vectors.json")).unwrap();
        all.into_iter()
            .filter(|v| {
                v["storage"] == storage
                    && v["token"].is_string()
                    && v["plaintext"].as_str().is_some_and(|p| !p.is_empty())
            })
            .map(|json| Vector { json })
            .collect()
    }
}

/// Turns an encoded record into a cookie value and back.
///
/// A sealer only handles bytes; [`CookieStore`] does the rest (logging,
/// empty sessions, the store contract).
pub trait Sealer: Send + Sync + 'static {
    /// Whether an empty session removes the cookie (`true`, as
    /// aiohttp-session's encrypted storages do) or is sealed like any other
    /// record (`false`: its `SimpleCookieStorage` writes `{}`).
    const REMOVES_EMPTY: bool = true;

    /// Seals `record` into a cookie value (unquoted; quoting is applied
    /// when the `Set-Cookie` header is rendered). `now` is Unix seconds, for
    /// sealers whose tokens carry a timestamp.
    fn seal(&self, record: &[u8], now: u64) -> Result<String, Error>;

    /// Opens a cookie value. `max_age` is the storage `max_age` and `now`
    /// Unix seconds, for sealers whose tokens carry a timestamp.
    fn open(&self, value: &str, max_age: Option<u64>, now: u64) -> Result<Vec<u8>, OpenError>;
}

/// A debug event for a token opened with a previous key of a rotating
/// sealer: when these stop, no client holds a token of the old key any more
/// (among those that came back).
#[cfg(any(feature = "fernet", feature = "nacl"))]
fn opened_with_previous_key(index: usize) {
    tracing::debug!(
        target: "http_session",
        key = index,
        "session cookie opened with a previous key; the next save seals it with the current key"
    );
}

/// Why a cookie value could not be opened. It is logged (at debug level)
/// and the client gets a fresh session; it is never an error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a token of this format (bad base64, too short, wrong version).
    Malformed,
    /// The authentication tag did not verify: tampered, or another key.
    Forged,
    /// The token's timestamp is older than `max_age`.
    Expired,
    /// The token's timestamp is too far in the future.
    FromTheFuture,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenError::Malformed => "malformed token",
            OpenError::Forged => "authentication failed",
            OpenError::Expired => "token expired",
            OpenError::FromTheFuture => "token timestamp in the future",
        })
    }
}

impl std::error::Error for OpenError {}

/// A store that keeps the whole session in the cookie, sealed by `S`.
///
/// Cookie stores need no server, but a session cannot be revoked before it
/// expires: a copied cookie stays valid until its `max_age` (for Fernet) or
/// its `created` age (any sealer) runs out. Keep sessions small: the cookie
/// is limited to 4096 bytes.
#[derive(Clone)]
pub struct CookieStore<S> {
    sealer: S,
}

impl<S: Sealer> CookieStore<S> {
    /// A cookie store sealing with `sealer`.
    pub fn new(sealer: S) -> Self {
        Self { sealer }
    }

    /// The sealer.
    pub fn sealer(&self) -> &S {
        &self.sealer
    }
}

impl<S: fmt::Debug> fmt::Debug for CookieStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieStore")
            .field("sealer", &self.sealer)
            .finish()
    }
}

impl<S: Sealer> SessionStore for CookieStore<S> {
    async fn load(&self, ctx: &Context<'_>, cookie_value: &str) -> Result<Option<Loaded>, Error> {
        match self.sealer.open(cookie_value, ctx.config.max_age, ctx.now) {
            Ok(record) => Ok(Some(Loaded {
                identity: None,
                record: Stored::unversioned(record),
                remaining: Remaining::Unknown,
                key: None,
            })),
            Err(reason) => {
                tracing::debug!(
                    target: "http_session",
                    %reason,
                    len = cookie_value.len(),
                    "session cookie rejected; starting a fresh session"
                );
                Ok(None)
            }
        }
    }

    async fn save(&self, ctx: &Context<'_>, request: SaveRequest<'_>) -> Result<Saved, Error> {
        if request.empty && S::REMOVES_EMPTY {
            return Ok(Saved::Remove);
        }
        let record = ctx.codec.encode(&request.record.as_record())?;
        self.sealer.seal(&record, ctx.now).map(Saved::Cookie)
    }
}

/// The unsealed "sealer": the record's JSON text is the cookie value.
///
/// **For tests only**: anyone can read and forge the session. Compatible
/// with aiohttp-session's `SimpleCookieStorage`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Sealer for Plain {
    const REMOVES_EMPTY: bool = false;

    fn seal(&self, record: &[u8], _now: u64) -> Result<String, Error> {
        String::from_utf8(record.to_vec())
            .map_err(|e| Error::with_source(crate::ErrorKind::Encode, e))
    }

    fn open(&self, value: &str, _max_age: Option<u64>, _now: u64) -> Result<Vec<u8>, OpenError> {
        Ok(value.as_bytes().to_vec())
    }
}

/// Readable JSON in the cookie (aiohttp-session's `SimpleCookieStorage`).
/// **For tests only.**
pub type PlainStore = CookieStore<Plain>;

impl PlainStore {
    /// A plain JSON cookie store. **For tests only**: the session is
    /// readable and forgeable by the client.
    pub fn plain() -> Self {
        Self::new(Plain)
    }
}

/// Fernet-encrypted cookies (aiohttp-session's `EncryptedCookieStorage`).
#[cfg(feature = "fernet")]
pub type FernetStore = CookieStore<fernet::Fernet>;

/// NaCl secretbox cookies (aiohttp-session's `NaClCookieStorage`).
#[cfg(feature = "nacl")]
pub type NaClStore = CookieStore<nacl::NaCl>;
