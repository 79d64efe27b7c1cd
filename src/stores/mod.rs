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

use serde_json::Value;

use crate::config::CookieConfig;
use crate::error::Error;
use crate::record::Codec;

mod cookie;
#[cfg(feature = "memcached")]
mod ketama;
#[cfg(feature = "memcached")]
mod memcached;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod server;
#[cfg(any(feature = "redis", feature = "memcached"))]
mod turns;

#[cfg(feature = "fernet")]
pub use cookie::fernet::{Fernet, FernetKey};
#[cfg(feature = "nacl")]
pub use cookie::nacl::{NaCl, NaClKey};
#[cfg(feature = "fernet")]
pub use cookie::FernetStore;
#[cfg(feature = "nacl")]
pub use cookie::NaClStore;
pub use cookie::PlainStore;
pub use cookie::{CookieStore, OpenError, Plain, Sealer};
#[cfg(feature = "memcached")]
pub use ketama::Flavor as KetamaFlavor;
#[cfg(feature = "memcached")]
pub use memcached::{MemcachedBackend, MemcachedStore};
pub use memory::{MemoryBackend, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::{RedisBackend, RedisStore};
pub use server::{is_valid_key, Expect, KeyFactory, KvBackend, Put, ServerStore, Stored, Write};

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
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What a store found for a cookie value.
#[derive(Debug)]
pub struct Loaded {
    /// The record's identity: the key id for server stores, `None` for
    /// cookie stores.
    pub identity: Option<String>,
    /// The encoded record, for the [`Codec`] to decode, and
    /// its version (server stores compare it when they save).
    pub record: Stored,
}

/// What the manager asks a store to save.
#[derive(Debug)]
pub struct SaveRequest<'a> {
    /// The session's identity, if it has one (server stores).
    pub identity: Option<&'a str>,
    /// Identities whose records must be deleted (renewed or invalidated
    /// sessions).
    pub discarded: &'a [String],
    /// The encoded record (`{}` with the default codec when empty).
    pub record: &'a [u8],
    /// Whether the session holds no data.
    pub empty: bool,
    /// The record's time to live in seconds (the session's `max_age`).
    pub ttl: Option<u64>,
    /// The record as this request loaded it, when it loaded one under
    /// `identity`: a server store writes only if the store still holds it,
    /// and otherwise merges [`changes`](Self::changes) into what it holds.
    pub origin: Option<&'a Stored>,
    /// What this request did to the session.
    pub changes: &'a Changes,
}

/// What one request did to its session: the part of a save that a server
/// store applies to the record as the store holds it at save time, so that
/// concurrent requests of one session do not undo each other's writes.
#[derive(Debug, Default, Clone, PartialEq)]
#[non_exhaustive]
pub struct Changes {
    /// The keys this request set (`Some`, with the value they ended with)
    /// or removed (`None`), in the order they were first written.
    pub writes: Vec<(String, Option<Value>)>,
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
}
