//! The store contract and the stores.
//!
//! There are two kinds of store, each one generic piece of code over a small
//! trait:
//!
//! - [`CookieStore`] keeps the whole session in the cookie, sealed by a
//!   [`Sealer`]: [`Plain`] (readable JSON, for tests), `Fernet` (feature
//!   `fernet`) or `NaCl` (feature `nacl`).
//! - [`ServerStore`] keeps the session in a key-value backend
//!   ([`KvBackend`]) and only a random id in the cookie: [`MemoryBackend`]
//!   (no feature), `RedisBackend` (feature `redis`: one server, and a
//!   Redis Cluster or Sentinel with `redis-cluster` and `redis-sentinel`)
//!   and `MemcachedBackend` (feature `memcached`: one server or a ketama
//!   ring).
//!
//! Both implement [`SessionStore`], which is what
//! [`SessionManager`](crate::SessionManager) drives. Record encoding, expiry
//! by `created`, and cookie rendering happen in the manager, once for all
//! stores.

use std::future::Future;
use std::pin::Pin;

use crate::config::CookieConfig;
use crate::error::Error;
use crate::record::{Codec, SharedRecord};

mod combine;
mod cookie;
#[cfg(feature = "memcached")]
mod ketama;
#[cfg(feature = "memcached")]
mod memcached;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod server;

#[cfg(feature = "fernet")]
#[cfg_attr(docsrs, doc(cfg(feature = "fernet")))]
pub use cookie::fernet::{Fernet, FernetKey};
#[cfg(feature = "nacl")]
#[cfg_attr(docsrs, doc(cfg(feature = "nacl")))]
pub use cookie::nacl::{NaCl, NaClKey};
#[cfg(feature = "fernet")]
#[cfg_attr(docsrs, doc(cfg(feature = "fernet")))]
pub use cookie::FernetStore;
#[cfg(feature = "nacl")]
#[cfg_attr(docsrs, doc(cfg(feature = "nacl")))]
pub use cookie::NaClStore;
pub use cookie::PlainStore;
pub use cookie::{CookieStore, OpenError, Plain, Sealer};
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use ketama::Flavor as KetamaFlavor;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use memcached::{MemcachedBackend, MemcachedStore};
pub use memory::{Capacity, MemoryBackend, MemoryStore};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisBackend, RedisStore};
pub(crate) use server::sha256_hex;
pub(crate) use server::Opened;
pub use server::{
    is_default_id, is_valid_key, Expect, IdFormat, KeyFactory, KvBackend, Payload, Put,
    ServerStore, Stored, Write,
};

/// What a store is told with every call.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Context<'a> {
    /// The cookie options (the name is the server-store key prefix; the
    /// storage `max_age` is the Fernet TTL).
    pub config: &'a CookieConfig,
    /// The manager's "now", in Unix seconds.
    pub now: u64,
    /// The record codec, for stores that merge a save into the record as
    /// they hold it (server stores).
    pub codec: &'a dyn Codec,
    /// Whether a load should also tell how long the record has left
    /// ([`Loaded::remaining`]): the manager asks for rolling sessions.
    pub wants_remaining: bool,
    /// The absolute lifetime, if one is set: the least time a per-user
    /// index must live after a session joins it.
    pub absolute_lifetime: Option<u64>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .field("now", &self.now)
            .field("wants_remaining", &self.wants_remaining)
            .finish_non_exhaustive()
    }
}

/// What a store found for a cookie value.
#[derive(Debug)]
pub struct Loaded {
    /// The record's identity: the key id for server stores, `None` for
    /// cookie stores.
    pub identity: Option<String>,
    /// The record (encoded, for the [`Codec`] to decode, or shared) and
    /// its version (server stores compare it when they save).
    pub record: Stored,
    /// How long the record has left in the store, when it was asked for
    /// and the store can tell.
    pub remaining: Remaining,
    /// The store's key for `identity`, handed back with the save
    /// ([`SaveRequest::key`]) so that it is built once per request.
    pub key: Option<String>,
}

/// How long a stored record has left before the store expires it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Remaining {
    /// The store did not say (not asked, or it cannot tell).
    #[default]
    Unknown,
    /// It never expires.
    Never,
    /// This many seconds.
    Seconds(u64),
}

/// The outcome of [`SessionStore::touch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touched {
    /// The record's lifetime was extended in place.
    Done,
    /// The record is gone.
    Gone,
    /// This store cannot extend a session without saving it again (cookie
    /// stores): the manager saves it.
    NeedsSave,
}

/// What the manager asks a store to save.
#[derive(Debug)]
pub struct SaveRequest<'a> {
    /// The session's identity, if it has one (server stores).
    pub identity: Option<&'a str>,
    /// Identities whose records must be deleted (renewed or invalidated
    /// sessions).
    pub discarded: &'a [String],
    /// The record, for the store to encode with [`Context::codec`] (or,
    /// in a store in this process, to keep as it is).
    pub record: &'a SharedRecord,
    /// Whether the session holds no data.
    pub empty: bool,
    /// The record's time to live in seconds (the session's `max_age`).
    pub ttl: Option<u64>,
    /// The record as this request loaded it, when it loaded one under
    /// `identity`: a server store writes only if the store still holds it,
    /// and otherwise merges [`changes`](Self::changes) into what it holds.
    pub origin: Option<&'a Stored>,
    /// The key the load gave for `identity` ([`Loaded::key`]), when the
    /// request loaded the record it saves.
    pub key: Option<&'a str>,
    /// What this request did to the session.
    pub changes: &'a Changes,
    /// The user binding, for stores that keep a per-user index.
    pub users: Users<'a>,
}

/// The user a session is bound to, before and after a request: a server
/// store keeps its per-user index in step with the records it writes and
/// deletes. A request that does not change the binding costs no index
/// operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Users<'a> {
    /// The user of the record this request loaded (its id leaves that
    /// user's index when the record is deleted or rebound).
    pub loaded: Option<&'a str>,
    /// The user the saved session is bound to.
    pub current: Option<&'a str>,
}

/// Which of a user's sessions [`SessionStore::revoke`] ends, by the
/// SHA-256 (lowercase hex) of their store keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke<'a> {
    /// Every session, but the one of this digest.
    All {
        /// The digest of the session to keep.
        except: Option<&'a str>,
    },
    /// The session of this digest.
    One(&'a str),
}

/// A session of a user, as a store lists it.
#[derive(Debug)]
pub struct UserSession {
    /// The record's store key: never a cookie value to be handed out
    /// (the manager turns it into an opaque handle).
    pub key: String,
    /// The record.
    pub record: Stored,
    /// How long it has left.
    pub remaining: Remaining,
    /// Whether it is the session of the identity the listing was asked
    /// for (the current request's).
    pub current: bool,
}

/// What one request did to its session: the part of a save that a server
/// store applies to the record as the store holds it at save time, so that
/// concurrent requests of one session do not undo each other's writes.
#[derive(Debug, Default, Clone, PartialEq)]
#[non_exhaustive]
pub struct Changes {
    /// The keys this request set or removed, in the order they were first
    /// written. The value each ended with is the one in the request's
    /// record ([`SaveRequest::record`]); a key missing there was removed.
    pub writes: Vec<String>,
    /// Whether the request replaced the whole map (`clear`): the record
    /// becomes this request's map, whatever the store holds.
    pub replaced: bool,
    /// The keys this request read, in strict mode (`None` outside it).
    pub reads: Option<ReadSet>,
}

/// The keys a request read (tracked in strict mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadSet {
    /// These keys (present or not).
    Keys(Vec<String>),
    /// The whole map (`to_map`, `keys`, `len`, `is_empty`, `update`).
    All,
}

/// What the client's cookie should become after a save.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    /// Send this cookie value.
    Cookie(String),
    /// Remove the cookie.
    Remove,
}

/// The contract between the session manager and a store.
///
/// Implement it for a store that fits neither [`CookieStore`] nor
/// [`ServerStore`]; usually implementing [`Sealer`] or [`KvBackend`] is
/// enough.
pub trait SessionStore: Send + Sync + 'static {
    /// Resolves a cookie value to a record. `Ok(None)` means there is no
    /// usable record (unknown id, bad seal): the client gets a fresh
    /// session. Errors are for a store that failed, not for bad input.
    fn load(
        &self,
        ctx: &Context<'_>,
        cookie_value: &str,
    ) -> impl Future<Output = Result<Option<Loaded>, Error>> + Send;

    /// Saves a changed session and says what the cookie becomes.
    fn save(
        &self,
        ctx: &Context<'_>,
        request: SaveRequest<'_>,
    ) -> impl Future<Output = Result<Saved, Error>> + Send;

    /// Extends the lifetime of an unchanged session to `ttl` seconds from
    /// now without rewriting it, if the store can (a rolling session's
    /// refresh). The default answers [`Touched::NeedsSave`].
    fn touch(
        &self,
        ctx: &Context<'_>,
        identity: &str,
        ttl: u64,
    ) -> impl Future<Output = Result<Touched, Error>> + Send {
        let _ = (ctx, identity, ttl);
        std::future::ready(Ok(Touched::NeedsSave))
    }

    /// Whether sessions live in the store rather than in the cookie
    /// (server stores): such a store can revoke a session, and its records
    /// stay until they expire.
    fn is_server_store(&self) -> bool {
        false
    }

    /// The live sessions bound to `user`, marking the one of `current` (an
    /// identity); stale index entries are pruned on the way. The default
    /// answers [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported): a
    /// cookie store cannot list sessions.
    fn user_sessions(
        &self,
        ctx: &Context<'_>,
        user: &str,
        current: Option<&str>,
    ) -> impl Future<Output = Result<Vec<UserSession>, Error>> + Send {
        let _ = (ctx, user, current);
        std::future::ready(Err(Error::new(crate::ErrorKind::Unsupported)))
    }

    /// Ends sessions of `user` ([`Revoke`] says which): each record is
    /// deleted, then its entry leaves the index. Sessions that cannot be
    /// reached (a failed node) are skipped and the first error is returned
    /// after the others were ended, so a call again finishes the job. The
    /// default answers [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    fn revoke(
        &self,
        ctx: &Context<'_>,
        user: &str,
        which: Revoke<'_>,
    ) -> impl Future<Output = Result<usize, Error>> + Send {
        let _ = (ctx, user, which);
        std::future::ready(Err(Error::new(crate::ErrorKind::Unsupported)))
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`SessionStore`] made object-safe, so requests carry no store type.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn load<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        cookie_value: &'a str,
    ) -> BoxFuture<'a, Result<Option<Loaded>, Error>>;

    fn save<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        request: SaveRequest<'a>,
    ) -> BoxFuture<'a, Result<Saved, Error>>;

    fn touch<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        identity: &'a str,
        ttl: u64,
    ) -> BoxFuture<'a, Result<Touched, Error>>;

    fn is_server_store(&self) -> bool;

    fn user_sessions<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        user: &'a str,
        current: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<UserSession>, Error>>;

    fn revoke<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        user: &'a str,
        which: Revoke<'a>,
    ) -> BoxFuture<'a, Result<usize, Error>>;
}

impl<S: SessionStore> DynStore for S {
    fn load<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        cookie_value: &'a str,
    ) -> BoxFuture<'a, Result<Option<Loaded>, Error>> {
        Box::pin(SessionStore::load(self, ctx, cookie_value))
    }

    fn save<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        request: SaveRequest<'a>,
    ) -> BoxFuture<'a, Result<Saved, Error>> {
        Box::pin(SessionStore::save(self, ctx, request))
    }

    fn touch<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        identity: &'a str,
        ttl: u64,
    ) -> BoxFuture<'a, Result<Touched, Error>> {
        Box::pin(SessionStore::touch(self, ctx, identity, ttl))
    }

    fn is_server_store(&self) -> bool {
        SessionStore::is_server_store(self)
    }

    fn user_sessions<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        user: &'a str,
        current: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<UserSession>, Error>> {
        Box::pin(SessionStore::user_sessions(self, ctx, user, current))
    }

    fn revoke<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        user: &'a str,
        which: Revoke<'a>,
    ) -> BoxFuture<'a, Result<usize, Error>> {
        Box::pin(SessionStore::revoke(self, ctx, user, which))
    }
}
