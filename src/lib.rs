//! Sessions for axum, actix-web and warp from one framework-agnostic core,
//! wire-compatible with Python's
//! [aiohttp-session](https://github.com/aio-libs/aiohttp-session).
//!
//! A [`SessionManager`] (a store plus cookie options) is built once and
//! installed in the framework; handlers receive a [`Session`], a JSON map
//! with aiohttp-session's attributes. The session is loaded only when a
//! handler asks for it and saved only when it changed, with one
//! `Set-Cookie` header.
//!
//! # Quick start (axum)
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # mod demo {
//! use axum::{routing::get, Router};
//! use http_session::{axum::SessionLayer, MemoryStore, Session, SessionManager};
//!
//! async fn visits(session: Session) -> Result<String, http_session::Error> {
//!     let n: u64 = session.get("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", n)?;
//!     Ok(format!("{n} visits"))
//! }
//!
//! pub fn app() -> Result<Router, http_session::Error> {
//!     let sessions = SessionManager::builder(MemoryStore::memory())
//!         .max_age(3600)
//!         .build()?;
//!     Ok(Router::new().route("/", get(visits)).layer(SessionLayer::new(sessions)))
//! }
//! # }
//! ```
//!
//! # Features
//!
//! | feature   | adds |
//! |-----------|------|
//! | *(none)*  | the core, [`PlainStore`] (readable JSON, tests only) and [`MemoryStore`] |
//! | `axum`    | [`axum::SessionLayer`] and `Session` as an axum extractor |
//! | `actix`   | [`actix::SessionMiddleware`] and `Session` as an actix-web extractor |
//! | `warp`    | the [`warp::session`] filter, [`warp::with_session`] and [`warp::recover`] |
//! | `fernet`  | [`FernetStore`]: Fernet-encrypted cookies |
//! | `nacl`    | [`NaClStore`]: NaCl secretbox cookies |
//! | `redis`   | [`RedisStore`]: sessions in Redis (`deadpool-redis`) |
//! | `redis-cluster` | `RedisStore::cluster`: a Redis Cluster (implies `redis`) |
//! | `redis-sentinel` | `RedisStore::sentinel`: the master Redis Sentinel names, through failovers (implies `redis`) |
//! | `memcached` | [`MemcachedStore`]: sessions in memcached (its text protocol, over tokio), on one server or a ketama ring ([`KetamaFlavor`]) |
//!
//! # Choosing a store
//!
//! - Cookie stores ([`FernetStore`], [`NaClStore`]) need no server; the
//!   session (at most about 2.6 KB of JSON) travels in the cookie. They
//!   cannot revoke a session before it expires: a copied cookie stays valid
//!   until its age passes `max_age`.
//! - [`MemoryStore`] keeps sessions in this process: fast, revocable, lost
//!   on restart and not shared between processes.
//! - [`RedisStore`] and [`MemcachedStore`] share sessions between processes
//!   (and with Python services on aiohttp-session).
//! - At scale: a Redis Cluster (`RedisStore::cluster`, feature
//!   `redis-cluster`) shards sessions over its masters; Redis Sentinel
//!   (`RedisStore::sentinel`, feature `redis-sentinel`) follows the master
//!   through failovers; a memcached ring ([`MemcachedStore::ring`]) places
//!   each session on one server by ketama consistent hashing, as
//!   libmemcached (pylibmc) does. A failed node makes only the sessions it
//!   holds answer 503 (Cluster: until its replica is promoted; Sentinel: all
//!   of them until the failover; ring: until the server is back), within
//!   the backend's timeout; the others keep working, and nothing needs a
//!   restart. Keys, records and command counts are those of a single
//!   server.
//! - [`PlainStore`] is for tests: the client can read and forge it.
//!
//! ## Parallel requests of one session
//!
//! Browsers send requests of one session in parallel (tabs, polling, assets
//! behind the session layer). Server stores merge each save into the record
//! as the store holds it at that moment, under a compare-and-set, so that
//! parallel requests do not undo each other:
//!
//! - keys a request did not write keep what other requests wrote; for a key
//!   two requests wrote, the later save wins;
//! - a record deleted by logout, [`Session::renew`], [`Session::invalidate`]
//!   or expiry is never written back by a request that loaded it before:
//!   that request's changes are dropped (with a `tracing` event) and its
//!   client gets the removal cookie;
//! - in [strict mode](SessionManagerBuilder::strict), a save is refused with
//!   `409 Conflict` ([`ErrorKind::Conflict`]) when another request changed a
//!   key this one read, so a read-modify-write (a counter, a cart) never
//!   loses an update;
//! - a save that keeps losing to other writers is retried a bounded number
//!   of times and then answered with `503` ([`ErrorKind::Busy`]).
//!
//! The common case costs what an unconditional write costs: one read at load
//! and one compare-and-set at save (Redis: `GET` and one script call;
//! memcached: `gets` and `cas`). Saves of one session within one process
//! take turns, so they lose only to other processes.
//!
//! Cookie stores hold the session in the client's cookie: there is no
//! stored record to merge into, and each response carries the whole session.
//! When parallel requests of one session change it, the browser keeps the
//! cookie of the response it received last, and the changes of the others
//! are lost; a logout races the same way. Keep session writes on cookie
//! stores to requests that do not run in parallel (login, logout, a form
//! post), or use a server store.
//!
//! # Expiry
//!
//! Every rule is checked when a session is loaded, for every store, cookie
//! stores included (so a copied cookie replayed after its time gets a fresh
//! session):
//!
//! | rule | set with | runs from | when it passes |
//! |---|---|---|---|
//! | storage `max_age` (aiohttp-session's rule) | [`max_age`](SessionManagerBuilder::max_age) | the last modification (`created`) | the session loads empty, not new, with its id |
//! | the session's own `max_age` | [`Session::set_max_age`] | the last modification | a fresh session (it can shorten the storage `max_age`, not lengthen it) |
//! | idle timeout | [`idle_timeout`](SessionManagerBuilder::idle_timeout) | the last write, or refresh of a [rolling](SessionManagerBuilder::rolling) session | a fresh session |
//! | absolute lifetime | [`absolute_lifetime`](SessionManagerBuilder::absolute_lifetime) | the session's first creation (kept by [`Session::renew`], restarted by [`Session::invalidate`]) | a fresh session |
//! | clock skew | [`clock_skew`](SessionManagerBuilder::clock_skew) (60 s) | - | a timestamp further ahead gives a fresh session |
//!
//! A server record's TTL and the cookie's `Max-Age` are the shortest of
//! the session's `max_age`, the idle timeout and what is left of the
//! absolute lifetime. What the rules need beyond `created` travels in one
//! extra member of the record, `"http_session"` ([`Meta`]: the start, the
//! last write, the session's own `max_age`), written only when a rule
//! needs it, so a manager without these rules writes aiohttp-session's
//! record byte for byte. aiohttp-session ignores the member when it loads a
//! record and drops it when it writes one; after a Python service rewrote a
//! session, the absolute lifetime and the idle timeout run from that write
//! (its `created`), and the session's own `max_age` is the storage's again.
//!
//! A rolling session's server record is refreshed in the store (its TTL),
//! not rewritten, so the store expires it when idle; the loads of a rolling
//! manager also ask the store how long the record has left (Redis `GET` and
//! `PTTL` in one round trip, memcached `mg`), to refresh at most once per
//! interval. Server stores count time on their own clock (Redis, memcached,
//! the memory store's monotonic clock); the rules checked from the record
//! follow the manager's [`clock`](SessionManagerBuilder::clock).
//!
//! [`MemoryStore`] is bounded ([`stores::Capacity`], 64 MiB of records by
//! default): when full it evicts the least recently used sessions, with a
//! `tracing` warning. [`ServerStore::with_max_record_size`] refuses larger
//! records with [`ErrorKind::RecordTooLarge`]. `build()` warns when a server
//! store's sessions would never expire (no `max_age`, no idle timeout).
//!
//! # Who is logged in where
//!
//! [`Session::set_user`] binds a session to a user (at login, after
//! [`Session::renew`]). Server stores with a per-user index (the memory
//! store, Redis in every set-up) then answer [`SessionManager::sessions_of`],
//! [`SessionManager::count_sessions`], [`SessionManager::revoke`] and
//! [`SessionManager::revoke_user`] ("log out everywhere"), and inside a
//! handler [`Session::sessions`], [`Session::revoke_others`] and
//! [`Session::revoke_everywhere`]. A session joins its user's index before
//! its record is first written and leaves it only after its record is gone,
//! so no usable session is ever missing from the index, also on Redis
//! Cluster where the index and the records live on different nodes; dead
//! entries are pruned when the index is listed. [`SessionHandle`]s are
//! opaque (never a cookie). memcached and cookie stores answer
//! [`ErrorKind::Unsupported`]: memcached may evict the index at any time,
//! and a cookie store's sessions live in the clients' cookies.
//!
//! # Streaming responses and observability
//!
//! The session is saved when the handler returns its response; the
//! `Set-Cookie` goes out with the response head, before a streamed body
//! (server-sent events, a chunked download), and changes made to the
//! session while the body streams are not saved.
//!
//! Every request's session work runs in one `tracing` span named `session`
//! (target `http_session`, level debug) with the fields `load` (`loaded`,
//! `fresh` for no cookie, `expired`, `rejected`), `load_us`, `save` (`saved`,
//! `removed`, `refreshed`, `unchanged`) and `save_us` (the store's time, in
//! microseconds). No value, key or id is ever recorded.
//!
//! # Security notes
//!
//! - Hostile cookies (tampered, expired, truncated, wrongly quoted, sealed
//!   with another key, garbage) give a fresh session and a `debug` event
//!   on the `http_session` target; never an error response.
//! - A `Set-Cookie` whose `name=value` exceeds 4096 bytes is an error
//!   ([`ErrorKind::CookieTooLarge`]), answered with an opaque 500, rather
//!   than a cookie the browser would silently drop.
//! - Keys, and the state derived from them (AES round keys, the keyed HMAC,
//!   per-message XSalsa20/Poly1305 state), are zeroized on drop and never
//!   printed; error messages and logs carry no cookie contents, session
//!   values or key material (a failed conversion names the key and the
//!   type, not the value).
//! - Session ids, Fernet IVs and NaCl nonces come from a per-thread
//!   ChaCha20 generator keyed by the OS that checks for a `fork` on every
//!   draw, so a child process never repeats its parent's values; a failing
//!   OS source is an error, never a panic or a weaker fallback. No public
//!   API seals with a chosen IV or nonce.
//! - Call [`Session::renew`] at login so a session id planted by an
//!   attacker is never promoted.
//! - Keys rotate with `Fernet::with_rotation` and `NaCl::with_rotation`
//!   (seal with the current key, open with any). With several instances:
//!   first make every instance accept the new key while still sealing with
//!   the old one, then seal with the new key everywhere, then drop the old
//!   key once the storage `max_age` has passed. A session opened with an
//!   old key is re-sealed with the current one when it is next saved; a
//!   read-only request still sends no `Set-Cookie`. The README's "Key
//!   rotation" section has the details, Python services included.
//!
//! # Compatibility with aiohttp-session
//!
//! Cookie name, `Set-Cookie` attributes and quoting, record layout
//! (`{"created": .., "session": {..}}`, written byte-for-byte as Python's
//! `json.dumps`), Fernet and NaCl token formats and server-store keys
//! (`<cookie_name>_<32 hex>`, TTL = `max_age`) are those of
//! aiohttp-session 2.12, so Python and Rust services can share sessions.
//! Where aiohttp-session answers 500 or keeps data it should not, this
//! crate does the safe thing: any unreadable cookie or record gives a fresh
//! session; invalidating or renewing a session deletes its server record;
//! an empty session writes no server record. The README's "Compatibility
//! with aiohttp-session" section lists every difference, each shown live
//! against the Python library by `tests/interop`.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod config;
mod cookie;
mod error;
mod expiry;
pub mod guides;
mod manager;
mod random;
mod record;
mod session;
pub mod stores;
mod typed;
mod users;

mod adapters;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use adapters::actix;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use adapters::axum;
#[cfg(feature = "warp")]
#[cfg_attr(docsrs, doc(cfg(feature = "warp")))]
pub use adapters::warp;

pub use config::{CookieConfig, SameSite};
pub use cookie::{render_removal, render_set_cookie, MAX_COOKIE_SIZE};
pub use error::{Error, ErrorKind};
pub use manager::{LazySession, ResponseHeaders, SessionManager, SessionManagerBuilder};
pub use record::{Codec, DecodedRecord, JsonCodec, Meta, Record, SharedRecord, META_MEMBER};
pub use session::Session;
pub use stores::{CookieStore, MemoryStore, PlainStore, ServerStore, SessionStore};
#[cfg(feature = "fernet")]
#[cfg_attr(docsrs, doc(cfg(feature = "fernet")))]
pub use stores::{FernetKey, FernetStore};
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use stores::{KetamaFlavor, MemcachedBackend, MemcachedStore};
#[cfg(feature = "nacl")]
#[cfg_attr(docsrs, doc(cfg(feature = "nacl")))]
pub use stores::{NaClKey, NaClStore};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use stores::{RedisBackend, RedisStore};
pub use typed::{SessionData, Typed};
pub use users::{SessionHandle, SessionInfo};
