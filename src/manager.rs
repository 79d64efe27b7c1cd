//! The request lifecycle, over plain strings and `http` types: find the
//! cookie, load the session when a handler asks for it, save it when it
//! changed, and render the one `Set-Cookie` header.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Number;
use tracing::Instrument;

use crate::clock::Clock;
use crate::config::{CookieConfig, SameSite};
use crate::cookie::{find_cookie, render_removal, render_set_cookie};
use crate::error::{Error, ErrorKind};
use crate::expiry::{created_secs, Policy, Verdict};
use crate::record::{Codec, JsonCodec, Meta, SharedRecord};
use crate::session::{Session, State};
use crate::stores::{
    Context, DynStore, Opened, Remaining, SaveRequest, Saved, SessionStore, Touched, Users,
};

/// A store plus the cookie options: the one value every framework adapter
/// is built from.
///
/// Cheap to clone. Build it once and hand the same value to the axum
/// layer, the actix-web middleware or the warp filter.
///
/// ```
/// use http_session::{MemoryStore, SameSite, SessionManager};
///
/// let sessions = SessionManager::builder(MemoryStore::memory())
///     .max_age(3600)
///     .same_site(SameSite::Lax)
///     .build()?;
/// assert_eq!(sessions.config().name(), "AIOHTTP_SESSION");
/// # Ok::<(), http_session::Error>(())
/// ```
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

struct Inner {
    config: CookieConfig,
    codec: Box<dyn Codec>,
    store: Box<dyn DynStore>,
    clock: Clock,
    strict: bool,
    policy: Policy,
    vary: bool,
}

impl SessionManager {
    /// A manager over `store` with aiohttp-session's default options (no
    /// `max_age`: see [`SessionManagerBuilder::build`] for the warning a
    /// server store then gets).
    pub fn new(store: impl SessionStore) -> Self {
        Self::builder(store).assemble()
    }

    /// Starts configuring a manager over `store`.
    pub fn builder(store: impl SessionStore) -> SessionManagerBuilder {
        SessionManagerBuilder {
            store: Box::new(store),
            config: CookieConfig::default(),
            codec: Box::new(JsonCodec),
            clock: Clock::system(),
            strict: false,
            policy: Policy::new(None),
            vary: true,
        }
    }

    /// The cookie options.
    pub fn config(&self) -> &CookieConfig {
        &self.inner.config
    }

    /// Starts a request from its `Cookie` header values (any number of
    /// headers, as raw bytes). Nothing is parsed or loaded yet: the headers
    /// are kept, and read only if the handler asks for the session.
    pub fn start<'a, I>(&self, cookie_headers: I) -> LazySession
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut headers = CookieHeaders::default();
        for header in cookie_headers {
            headers.push(header);
        }
        self.begin(Cookie::Headers(headers))
    }

    /// Starts a request from the headers of an `http` request. The
    /// `Cookie` values are kept (a clone shares their bytes), and parsed
    /// only if the handler asks for the session.
    pub fn start_from_headers(&self, headers: &http::HeaderMap) -> LazySession {
        let mut values = headers.get_all(http::header::COOKIE).iter().cloned();
        self.begin(Cookie::Values(values.next(), values.collect()))
    }

    /// Starts a request from the session cookie's value (already unquoted).
    pub fn start_with_value(&self, cookie: Option<String>) -> LazySession {
        self.begin(Cookie::Value(cookie))
    }

    fn begin(&self, cookie: Cookie) -> LazySession {
        LazySession {
            inner: Arc::new(LazyInner {
                span: tracing::debug_span!(
                    target: "http_session",
                    "session",
                    load = tracing::field::Empty,
                    load_us = tracing::field::Empty,
                    save = tracing::field::Empty,
                    save_us = tracing::field::Empty,
                ),
                manager: self.clone(),
                cookie,
                session: Mutex::new(None),
                finished: AtomicBool::new(false),
            }),
        }
    }

    /// Loads the session a cookie value refers to; a fresh session when
    /// there is none or it cannot be used. Records the outcome and the
    /// store's time on the request's span.
    async fn load(&self, cookie: Option<&str>, span: &tracing::Span) -> Result<Session, Error> {
        let ctx = self.context();
        let fresh = |outcome: &'static str| {
            span.record("load", outcome);
            Session::with_manager(self.fresh(ctx.now), self.clone())
        };
        let Some(value) = cookie else {
            return Ok(fresh("fresh"));
        };
        let started = (!span.is_disabled()).then(std::time::Instant::now);
        let loaded = self.inner.store.load(&ctx, value).await;
        if let Some(started) = started {
            span.record("load_us", micros(started));
        }
        let Some(loaded) = loaded? else {
            return Ok(fresh("rejected"));
        };
        let Ok(record) = loaded.record.value.open(&*self.inner.codec) else {
            tracing::debug!(target: "http_session", "session record does not decode; starting a fresh session");
            return Ok(fresh("rejected"));
        };
        let (mut state, verdict) = self.restore(record, loaded.identity, ctx.now);
        span.record(
            "load",
            match verdict {
                Some(Verdict::Alive) => "loaded",
                Some(_) => "expired",
                None => "rejected",
            },
        );
        if state.identity.is_some() {
            state.origin = Some(loaded.record);
            state.origin_key = loaded.key;
            state.remaining = loaded.remaining;
        }
        Ok(Session::with_manager(state, self.clone()))
    }

    /// Rebuilds the session state from a decoded record, with the expiry
    /// rules of [`expiry`](crate::expiry): `{}` (or anything without a
    /// `session` object) is a new session; so is a record that one of this
    /// crate's rules expired (its server record is deleted if the new
    /// session is saved); a record older than the storage `max_age` by
    /// aiohttp-session's rule loads empty but keeps its identity and
    /// `created`.
    fn restore(
        &self,
        record: Option<Opened>,
        identity: Option<String>,
        now: u64,
    ) -> (State, Option<Verdict>) {
        let policy = &self.inner.policy;
        let Some(record) = record else {
            tracing::debug!(target: "http_session", "session record has no session object; starting a fresh session");
            return (self.fresh(now), None);
        };
        let data = record.session;
        let meta = record.meta.unwrap_or_default();
        // A server store's rolling session is refreshed in the store (its
        // TTL), not in the record: the store expires it when idle.
        let idle_by_store = identity.is_some() && policy.rolling.is_some() && meta.last.is_some();
        let verdict = policy.check(record.created.as_ref(), Some(&meta), now, idle_by_store);
        let data = match verdict {
            Verdict::Alive => data,
            Verdict::AgedOut => {
                tracing::debug!(target: "http_session", "session older than max_age; its data is dropped");
                Arc::default()
            }
            Verdict::Expired(reason) => {
                tracing::debug!(
                    target: "http_session",
                    reason = reason.as_str(),
                    "session expired; starting a fresh session"
                );
                let mut fresh = self.fresh(now);
                fresh.discarded.extend(identity);
                return (fresh, Some(verdict));
            }
        };
        let created_at = created_secs(record.created.as_ref()).filter(|c| *c > 0);
        let mut state = self.fresh(now);
        state.start = meta.start.or(created_at).unwrap_or(now);
        state.last = meta.last.or(created_at);
        if let Some(own) = meta.max_age {
            state.max_age = own;
        }
        state.loaded_user.clone_from(&meta.user);
        state.user = meta.user;
        let state = State {
            data,
            created: record.created.unwrap_or_else(|| Number::from(now)),
            identity,
            new: false,
            ..state
        };
        (state, Some(verdict))
    }

    fn fresh(&self, now: u64) -> State {
        let mut state = State::fresh(self.inner.config.max_age, self.inner.strict, now);
        state.policy = self.inner.policy;
        state
    }

    pub(crate) fn context(&self) -> Context<'_> {
        self.context_at(self.inner.clock.now())
    }

    /// The context of a request whose clock was read at load: the clock is
    /// read once per request.
    fn context_at(&self, now: u64) -> Context<'_> {
        Context {
            config: &self.inner.config,
            now,
            codec: &*self.inner.codec,
            wants_remaining: self.inner.policy.rolling.is_some(),
            absolute_lifetime: self.inner.policy.absolute_lifetime,
        }
    }

    pub(crate) fn store(&self) -> &dyn DynStore {
        &*self.inner.store
    }

    /// The record's [`Meta`] for a save at `now`: only what the configured
    /// rules and the session need, so that a manager without them writes
    /// aiohttp-session's record byte for byte.
    fn meta_for(&self, state: &State, now: u64) -> Meta {
        let policy = &self.inner.policy;
        Meta {
            start: policy.needs_start().then_some(state.start),
            last: policy.needs_last().then_some(now),
            max_age: (state.max_age != self.inner.config.max_age).then_some(state.max_age),
            user: state.user.clone(),
        }
    }

    /// Saves `session` if it changed, returning the `Set-Cookie` value; an
    /// unchanged rolling session is refreshed when its interval has passed.
    async fn save(
        &self,
        session: &Session,
        span: &tracing::Span,
    ) -> Result<Option<http::HeaderValue>, Error> {
        let now = session.lock().now;
        let ctx = self.context_at(now);
        let now = ctx.now;
        let unchanged = {
            let state = session.lock();
            (!state.changed).then(|| self.refresh_due(&state, now))
        };
        match unchanged {
            None => {}
            Some(Refresh::No) => {
                span.record("save", "unchanged");
                return Ok(None);
            }
            Some(Refresh::Touch(identity, ttl)) => {
                span.record("save", "refreshed");
                return self.touch(&ctx, &identity, ttl).await;
            }
            // Sealed again like a changed session.
            Some(Refresh::Save) => session.lock().changed = true,
        }
        let (record, identity, discarded, empty, lifetime, origin, changes, loaded_user, user) = {
            let mut state = session.lock();
            let meta = self.meta_for(&state, now);
            let record = SharedRecord {
                created: state.created.clone(),
                session: Arc::clone(&state.data),
                meta: (!meta.is_empty()).then_some(meta),
            };
            let empty = record.as_record().is_empty();
            (
                record,
                state.identity.clone(),
                std::mem::take(&mut state.discarded),
                empty,
                self.inner.policy.lifetime(state.max_age, state.start, now),
                (state.origin.take(), state.origin_key.take()),
                state.take_changes(),
                state.loaded_user.clone(),
                state.user.clone(),
            )
        };
        let config = ctx.config;
        let started = (!span.is_disabled()).then(std::time::Instant::now);
        let saved = self
            .inner
            .store
            .save(
                &ctx,
                SaveRequest {
                    identity: identity.as_deref(),
                    discarded: &discarded,
                    record: &record,
                    empty,
                    ttl: lifetime,
                    origin: origin.0.as_ref(),
                    key: origin.1.as_deref(),
                    changes: &changes,
                    users: Users {
                        loaded: loaded_user.as_deref(),
                        current: user.as_deref(),
                    },
                },
            )
            .await;
        if let Some(started) = started {
            span.record("save_us", micros(started));
        }
        let saved = saved?;
        span.record(
            "save",
            match saved {
                Saved::Cookie(_) => "saved",
                Saved::Remove => "removed",
            },
        );
        let line = match saved {
            Saved::Cookie(value) => render_set_cookie(config, &value, lifetime, now)?,
            // As aiohttp-session does, even when no cookie came in.
            Saved::Remove => render_removal(config),
        };
        http::HeaderValue::try_from(line)
            .map(Some)
            .map_err(|e| Error::with_source(ErrorKind::Encode, e))
    }

    /// Whether an unchanged, loaded session of a rolling manager is due for
    /// a refresh: at most once per interval, measured from its last write
    /// or refresh (a server store tells how long the record has left; a
    /// cookie carries its last write).
    fn refresh_due(&self, state: &State, now: u64) -> Refresh {
        let policy = &self.inner.policy;
        let Some(interval) = policy.rolling else {
            return Refresh::No;
        };
        if state.new || state.data.is_empty() {
            return Refresh::No;
        }
        let Some(window) = policy.lifetime(state.max_age, state.start, now) else {
            // Nothing expires: nothing to extend.
            return Refresh::No;
        };
        let since = match (&state.identity, state.remaining) {
            (Some(_), Remaining::Seconds(left)) => window.saturating_sub(left),
            (Some(_), Remaining::Never) => return Refresh::No,
            _ => state.last.map_or(u64::MAX, |last| now.saturating_sub(last)),
        };
        if since < interval {
            return Refresh::No;
        }
        match &state.identity {
            Some(identity) => Refresh::Touch(identity.clone(), window),
            None => Refresh::Save,
        }
    }

    /// Extends a server record's lifetime and sends the cookie again with
    /// the new `Max-Age` (a cookie store is saved instead).
    async fn touch(
        &self,
        ctx: &Context<'_>,
        identity: &str,
        ttl: u64,
    ) -> Result<Option<http::HeaderValue>, Error> {
        let line = match self.inner.store.touch(ctx, identity, ttl).await? {
            Touched::Done => render_set_cookie(ctx.config, identity, Some(ttl), ctx.now)?,
            Touched::Gone => render_removal(ctx.config),
            Touched::NeedsSave => return Ok(None),
        };
        http::HeaderValue::from_str(&line)
            .map(Some)
            .map_err(|e| Error::with_source(ErrorKind::Encode, e))
    }
}

/// Microseconds since `started`, for a span field.
fn micros(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What an unchanged session needs at the end of a rolling request.
enum Refresh {
    No,
    /// Extend the server record to this many seconds from now.
    Touch(String, u64),
    /// Seal the cookie again (cookie stores cannot extend in place).
    Save,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Configures a [`SessionManager`]; the options of aiohttp-session's
/// storages, with the same defaults.
pub struct SessionManagerBuilder {
    store: Box<dyn DynStore>,
    config: CookieConfig,
    codec: Box<dyn Codec>,
    clock: Clock,
    strict: bool,
    policy: Policy,
    vary: bool,
}

impl SessionManagerBuilder {
    /// The cookie name (default `AIOHTTP_SESSION`); also the prefix of
    /// server-store keys.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config.name = name.into();
        self
    }

    /// The cookie's `Domain` attribute.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.config.domain = Some(domain.into());
        self
    }

    /// The cookie's `Path` attribute (default `/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.path = path.into();
        self
    }

    /// The storage `max_age` in seconds: the cookie's lifetime, the TTL of
    /// server records and of Fernet tokens, and the age beyond which a
    /// loaded session is dropped.
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.config.max_age = Some(seconds);
        self
    }

    /// Like [`max_age`](Self::max_age), from an `Option`.
    pub fn max_age_opt(mut self, seconds: Option<u64>) -> Self {
        self.config.max_age = seconds;
        self
    }

    /// Sends the `Secure` attribute.
    pub fn secure(mut self, secure: bool) -> Self {
        self.config.secure = secure;
        self
    }

    /// Sends the `HttpOnly` attribute (default on).
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.config.http_only = http_only;
        self
    }

    /// The `SameSite` attribute.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.config.same_site = Some(same_site);
        self
    }

    /// Sends the `Partitioned` attribute (CHIPS: a cookie kept per top-level
    /// site, for a session inside a third-party frame); needs
    /// [`secure`](Self::secure). The removal cookie carries it too.
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.config.partitioned = partitioned;
        self
    }

    /// Replaces the record codec (default [`JsonCodec`]).
    pub fn codec(mut self, codec: impl Codec) -> Self {
        self.codec = Box::new(codec);
        self
    }

    /// Replaces the clock (Unix seconds; default the system clock). For
    /// tests that pin or move time: `created`, `created`-age expiry, Fernet
    /// timestamps and `expires` all follow it. Server-store TTLs are kept by
    /// the store itself and follow real time.
    pub fn clock(mut self, now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Clock::custom(now);
        self
    }

    /// Strict mode for read-modify-write (default off; server stores).
    ///
    /// A server store always merges a save into the record as it holds it
    /// at that moment: keys this request did not write keep what concurrent
    /// requests of the same session wrote, and for a key two requests wrote
    /// the later save wins. In strict mode a save is also refused when
    /// another request changed a key that this request *read* (with
    /// [`get`](crate::Session::get), `get_value`, `contains_key`, `remove`;
    /// `to_map`, `keys`, `len`, `is_empty` and `update` read every key)
    /// after this request loaded the session: the request is answered with
    /// `409 Conflict` ([`ErrorKind::Conflict`]) and nothing of it is saved,
    /// so an increment is never lost. Cookie stores hold the session in the
    /// client's cookie and have nothing to merge: the option changes nothing
    /// for them.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// The idle timeout in seconds: a session not written (or, for a
    /// [rolling](Self::rolling) session, not refreshed) for longer expires,
    /// and the request gets a fresh session. Checked at load for every store
    /// from the record's last write; server records also get it as their
    /// TTL, so the store drops idle sessions by itself.
    pub fn idle_timeout(mut self, seconds: u64) -> Self {
        self.policy.idle_timeout = Some(seconds);
        self
    }

    /// The absolute lifetime in seconds: a session older than this since
    /// it was first created expires, however active it is, and the request
    /// gets a fresh session. [`Session::renew`](crate::Session::renew) keeps
    /// the start (it rotates the id of the same session);
    /// [`Session::invalidate`](crate::Session::invalidate) ends the session,
    /// so data written after it starts a new lifetime.
    pub fn absolute_lifetime(mut self, seconds: u64) -> Self {
        self.policy.absolute_lifetime = Some(seconds);
        self
    }

    /// Rolling sessions: a read-only request extends the session's lifetime
    /// (its idle timeout and `max_age` window) once `interval` seconds have
    /// passed since the last write or refresh, so a request costs at most one
    /// extra store command per session per interval. Server stores extend
    /// the record in place (Redis `EXPIRE`, memcached `touch`, the memory
    /// store's expiry) and send the cookie again with its new `Max-Age`;
    /// cookie stores seal the cookie again. Writes extend the session as
    /// always.
    pub fn rolling(mut self, interval: u64) -> Self {
        self.policy.rolling = Some(interval);
        self
    }

    /// Whether responses whose handler loaded the session get `Vary:
    /// Cookie` (default on, as Django does), so that a shared cache never
    /// serves one user's page to another. It is not added twice: a response
    /// that already varies on `Cookie` (or on `*`) is left alone.
    pub fn vary_cookie(mut self, vary: bool) -> Self {
        self.vary = vary;
        self
    }

    /// How far in the future a record's timestamps may be (another node's
    /// clock running ahead) before the record is refused as forged or
    /// broken; default 60 s, as Fernet's TTL check.
    pub fn clock_skew(mut self, seconds: u64) -> Self {
        self.policy.skew = seconds;
        self
    }

    /// Checks the options and builds the manager.
    ///
    /// Emits a `tracing` warning when a server store's records would never
    /// expire (neither `max_age` nor an idle timeout).
    pub fn build(self) -> Result<SessionManager, Error> {
        self.config.validate()?;
        Ok(self.assemble())
    }

    fn assemble(self) -> SessionManager {
        let policy = Policy {
            max_age: self.config.max_age,
            ..self.policy
        };
        if self.store.is_server_store() && policy.max_age.is_none() && policy.idle_timeout.is_none()
        {
            tracing::warn!(
                target: "http_session",
                "server-store sessions never expire: set a max_age or an idle_timeout"
            );
        }
        SessionManager {
            inner: Arc::new(Inner {
                config: self.config,
                codec: self.codec,
                store: self.store,
                clock: self.clock,
                strict: self.strict,
                policy,
                vary: self.vary,
            }),
        }
    }
}

impl fmt::Debug for SessionManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManagerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One request's session, loaded on first use.
///
/// Adapters create it with [`SessionManager::start`], put it where the
/// handler can reach it, and call [`LazySession::finish`] after the
/// handler. Cheap to clone; clones share the loaded session.
#[derive(Clone)]
pub struct LazySession {
    inner: Arc<LazyInner>,
}

struct LazyInner {
    /// The request's `session` span: its outcome and store times.
    span: tracing::Span,
    manager: SessionManager,
    cookie: Cookie,
    session: Mutex<Option<Session>>,
    finished: AtomicBool,
}

/// Where a request's session cookie comes from: the request's `Cookie`
/// headers, parsed when the session is asked for, or the value itself.
enum Cookie {
    /// An `http` request's headers: the first, and any more (HTTP/2 may
    /// split the header).
    Values(Option<http::HeaderValue>, Vec<http::HeaderValue>),
    /// Header values copied from elsewhere.
    Headers(CookieHeaders),
    /// The cookie's value, already found.
    Value(Option<String>),
}

/// `Cookie` header values, copied into one buffer (one allocation for
/// the usual single header); `ends` marks where each header ends when
/// there are several.
#[derive(Default)]
struct CookieHeaders {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl CookieHeaders {
    fn push(&mut self, header: &[u8]) {
        if !self.bytes.is_empty() || !self.ends.is_empty() {
            self.ends.push(self.bytes.len());
        }
        self.bytes.extend_from_slice(header);
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        let ends = self.ends.iter().copied().chain([self.bytes.len()]);
        starts.zip(ends).map(|(start, end)| &self.bytes[start..end])
    }
}

impl Cookie {
    /// Whether there is anything to look the cookie up in.
    fn is_present(&self) -> bool {
        match self {
            Cookie::Values(first, _) => first.is_some(),
            Cookie::Headers(headers) => !headers.bytes.is_empty(),
            Cookie::Value(value) => value.is_some(),
        }
    }

    /// The session cookie's value, borrowed unless it was quoted.
    fn value(&self, name: &str) -> Option<Cow<'_, str>> {
        match self {
            Cookie::Values(first, more) => find_cookie(
                first.iter().chain(more).map(http::HeaderValue::as_bytes),
                name,
            ),
            Cookie::Headers(headers) => find_cookie(headers.iter(), name),
            Cookie::Value(value) => value.as_deref().map(Cow::Borrowed),
        }
    }
}

impl LazySession {
    /// The session, loading it from the store on the first call.
    ///
    /// A missing, tampered, expired or unreadable cookie gives a fresh
    /// session; only a failing store is an error.
    pub async fn get(&self) -> Result<Session, Error> {
        if let Some(session) = self.loaded() {
            return Ok(session);
        }
        let manager = &self.inner.manager;
        let cookie = self.inner.cookie.value(&manager.inner.config.name);
        let span = &self.inner.span;
        let load = manager.load(cookie.as_deref(), span);
        // A disabled span (the usual case) needs no wrapper around the load.
        let session = if span.is_disabled() {
            load.await?
        } else {
            load.instrument(span.clone()).await?
        };
        let mut slot = self
            .inner
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(slot.get_or_insert(session).clone())
    }

    /// The session if a handler already asked for it.
    pub fn loaded(&self) -> Option<Session> {
        self.inner
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Ends the request: saves the session if it was loaded and changed,
    /// and returns the `Set-Cookie` header value to append, if any.
    ///
    /// Errors are store failures, strict-mode conflicts and oversized
    /// cookies; adapters answer them with [`Error::to_response_parts`].
    ///
    /// Only the first call saves: later calls (on this value or a clone)
    /// return `Ok(None)`, write nothing and mint no second id. Changes made
    /// to the session after the first call are not saved.
    pub async fn finish(&self) -> Result<Option<http::HeaderValue>, Error> {
        if self.inner.finished.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        let Some(session) = self.loaded() else {
            return Ok(None);
        };
        let span = &self.inner.span;
        let save = self.inner.manager.save(&session, span);
        if span.is_disabled() {
            save.await
        } else {
            save.instrument(span.clone()).await
        }
    }
}

impl LazySession {
    /// Ends the request at once when the handler never asked for the
    /// session, and returns `true`: there is nothing to save and no header
    /// to add, as [`finish`](Self::finish) would find. Returns `false`, and
    /// ends nothing, when the session was loaded; the adapter then awaits
    /// [`finish_response`](Self::finish_response). This lets an adapter
    /// answer an untouched request without a future of its own.
    pub fn finish_untouched(&self) -> bool {
        let slot = self
            .inner
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return false;
        }
        // With the slot locked no load can land in between: a load that
        // ends later is not saved, as after `finish`.
        self.inner.finished.store(true, Ordering::Release);
        true
    }

    /// Ends the request as [`finish`](Self::finish) does and says which
    /// headers the adapter appends to the response: `Set-Cookie` when the
    /// session was saved, and `Vary: Cookie` when the handler loaded the
    /// session (unless [turned off](SessionManagerBuilder::vary_cookie), or
    /// `vary`, the response's own `Vary` values, already names `Cookie` or
    /// `*`).
    pub fn finish_response<'a>(
        &self,
        vary: impl IntoIterator<Item = &'a [u8]>,
    ) -> impl std::future::Future<Output = Result<ResponseHeaders, Error>> + Send + '_ {
        let add_vary =
            self.inner.manager.inner.vary && self.loaded().is_some() && !varies_on_cookie(vary);
        async move {
            Ok(ResponseHeaders {
                set_cookie: self.finish().await?,
                vary: add_vary,
            })
        }
    }
}

impl LazySession {
    /// Ends the request as [`finish_response`](Self::finish_response) does
    /// and appends the headers it names to `response`, an `http` crate
    /// response (as axum and warp use). On an error the response is not
    /// used: the adapter answers with [`Error::to_response_parts`].
    pub async fn finish_http<B>(
        &self,
        mut response: http::Response<B>,
    ) -> Result<http::Response<B>, Error> {
        let vary = response.headers().get_all(http::header::VARY).iter();
        let headers = self
            .finish_response(vary.map(http::HeaderValue::as_bytes))
            .await?;
        let map = response.headers_mut();
        for (name, value) in headers.into_pairs() {
            map.append(name, value);
        }
        Ok(response)
    }
}

/// Whether `Vary` header values already name `Cookie` (or `*`).
fn varies_on_cookie<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> bool {
    values.into_iter().any(|value| {
        value.split(|&b| b == b',').any(|token| {
            let token = token.trim_ascii();
            token == b"*" || token.eq_ignore_ascii_case(b"cookie")
        })
    })
}

/// The headers an adapter appends to a response after the handler; see
/// [`LazySession::finish_response`].
#[derive(Debug, Default)]
pub struct ResponseHeaders {
    set_cookie: Option<http::HeaderValue>,
    vary: bool,
}

impl ResponseHeaders {
    /// The `Set-Cookie` value, if the session was saved.
    pub fn set_cookie(&self) -> Option<&http::HeaderValue> {
        self.set_cookie.as_ref()
    }

    /// The headers to append, in order.
    pub fn into_pairs(self) -> impl Iterator<Item = (http::HeaderName, http::HeaderValue)> {
        let vary = self
            .vary
            .then(|| (http::header::VARY, http::HeaderValue::from_static("Cookie")));
        self.set_cookie
            .map(|value| (http::header::SET_COOKIE, value))
            .into_iter()
            .chain(vary)
    }
}

impl fmt::Debug for LazySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazySession")
            .field("cookie_headers", &self.inner.cookie.is_present())
            .field("loaded", &self.loaded().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> CookieHeaders {
        let mut headers = CookieHeaders::default();
        for value in values {
            headers.push(value);
        }
        headers
    }

    #[test]
    fn kept_cookie_headers_are_parsed_one_by_one() {
        let name = "AIOHTTP_SESSION";
        let one = headers(&[b"a=1; AIOHTTP_SESSION=x"]);
        assert_eq!(
            one.iter().collect::<Vec<_>>(),
            [&b"a=1; AIOHTTP_SESSION=x"[..]]
        );
        assert!(one.ends.is_empty(), "one header keeps no boundaries");
        assert_eq!(Cookie::Headers(one).value(name).as_deref(), Some("x"));
        // Split headers (HTTP/2): the last occurrence wins, and an unclosed
        // quote in one header does not run into the next.
        let split = headers(&[b"", b"AIOHTTP_SESSION=\"x", b"b=2", b"AIOHTTP_SESSION=y"]);
        assert_eq!(split.iter().count(), 3);
        assert_eq!(Cookie::Headers(split).value(name).as_deref(), Some("y"));
        let none = Cookie::Headers(headers(&[]));
        assert!(!none.is_present());
        assert_eq!(none.value(name), None);
        let mut map = http::HeaderMap::new();
        for value in ["AIOHTTP_SESSION=\"x", "b=2", "AIOHTTP_SESSION=y"] {
            map.append(http::header::COOKIE, http::HeaderValue::from_static(value));
        }
        let manager = SessionManager::new(crate::PlainStore::plain());
        let lazy = manager.start_from_headers(&map);
        assert_eq!(lazy.inner.cookie.value(name).as_deref(), Some("y"));
        let lazy = manager.start_from_headers(&http::HeaderMap::new());
        assert!(!lazy.inner.cookie.is_present());
    }
}
