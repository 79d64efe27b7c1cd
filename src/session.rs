//! The [`Session`] handle a handler works with.

use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::error::{Error, ErrorKind};
use crate::expiry::{created_secs, Policy};
use crate::manager::SessionManager;
use crate::stores::{Changes, ReadSet, Remaining, Stored};
use crate::users::{SessionHandle, SessionInfo};

/// A client's session: a JSON map plus aiohttp-session's attributes
/// (`created`, `identity`, `new`, per-session `max_age`).
///
/// `Session` is a cheap handle (an `Arc`): clones share the same data, and
/// every method takes `&self`. It is obtained from a framework adapter (an
/// extractor argument in axum and actix-web, a filter in warp), never built
/// by hand. Reads and writes are plain synchronous calls; the session is
/// saved after the handler returns, and only if it changed.
///
/// Setting or removing a key marks the session changed and sets `created`
/// to now, as aiohttp-session does (`created` therefore means "last
/// modified"). Mutating a value in place through [`Session::update`] also
/// marks it changed.
///
/// ```
/// # fn handler(session: http_session::Session) -> Result<(), http_session::Error> {
/// let visits: u64 = session.get("visits")?.unwrap_or(0);
/// session.insert("visits", visits + 1)?;
/// if session.contains_key("user") {
///     session.remove("flash");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Mutex<State>>,
    /// The manager that loaded it, for the per-user operations.
    manager: Option<SessionManager>,
}

/// Everything the manager needs to save a session.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// Shared with the store's copy until the first write (copy on write).
    pub(crate) data: Arc<Map<String, Value>>,
    pub(crate) created: Number,
    pub(crate) identity: Option<String>,
    pub(crate) new: bool,
    pub(crate) changed: bool,
    pub(crate) max_age: Option<u64>,
    /// Server-store identities whose records are deleted on save (the
    /// session was renewed or invalidated).
    pub(crate) discarded: Vec<String>,
    /// The storage-wide max_age, restored by [`Session::renew`].
    pub(crate) default_max_age: Option<u64>,
    /// The request's time (Unix seconds), read once when it loaded the
    /// session: what `created`, the expiry times and the cookie's
    /// `expires` are written with.
    pub(crate) now: u64,
    /// Keys this request set or removed, first write first (not kept once
    /// the map was replaced as a whole: then all of it is written).
    pub(crate) written: Vec<String>,
    /// The map was replaced as a whole (`clear`, `invalidate`, `renew`).
    pub(crate) replaced: bool,
    /// Keys read, tracked in strict mode only.
    pub(crate) reads: Option<ReadSet>,
    /// The record as loaded under `identity` (bytes and version), which a
    /// server store's compare-and-set expects to find at save time.
    pub(crate) origin: Option<Stored>,
    /// The store's key of `identity`, as the load built it.
    pub(crate) origin_key: Option<String>,
    /// When the session was first created (Unix seconds): the absolute
    /// lifetime runs from here. Kept by `renew`, reset by `invalidate`.
    pub(crate) start: u64,
    /// The last write (or touch) the loaded record carries.
    pub(crate) last: Option<u64>,
    /// The user the session is bound to.
    pub(crate) user: Option<String>,
    /// The user the loaded record was bound to (whose index its id
    /// leaves when the record is deleted or rebound).
    pub(crate) loaded_user: Option<String>,
    /// How long the loaded record had left in its store.
    pub(crate) remaining: Remaining,
    /// The manager's expiry rules, for [`Session::expires_at`].
    pub(crate) policy: Policy,
}

impl State {
    pub(crate) fn fresh(max_age: Option<u64>, strict: bool, now: u64) -> Self {
        // One shared empty map: a loaded session replaces it, and the
        // first write to a fresh one copies it (as it would an unshared
        // empty map's allocation).
        static EMPTY: LazyLock<Arc<Map<String, Value>>> = LazyLock::new(Arc::default);
        Self {
            data: Arc::clone(&EMPTY),
            created: Number::from(now),
            identity: None,
            new: true,
            changed: false,
            max_age,
            discarded: Vec::new(),
            default_max_age: max_age,
            now,
            written: Vec::new(),
            replaced: false,
            reads: strict.then(|| ReadSet::Keys(Vec::new())),
            origin: None,
            origin_key: None,
            start: now,
            last: None,
            user: None,
            loaded_user: None,
            remaining: Remaining::Unknown,
            policy: Policy::new(max_age),
        }
    }

    fn touch(&mut self) {
        self.changed = true;
        self.created = Number::from(self.now);
    }

    /// Records a write of `key` (set or removed); its final value is read
    /// from the map at save time.
    fn wrote(&mut self, key: &str) {
        if !self.replaced && !self.written.iter().any(|k| k == key) {
            self.written.push(key.to_owned());
        }
    }

    /// Records a read of `key` (strict mode only).
    fn read(&mut self, key: &str) {
        if let Some(ReadSet::Keys(keys)) = &mut self.reads {
            if !keys.iter().any(|k| k == key) {
                keys.push(key.to_owned());
            }
        }
    }

    /// Records a read of the whole map (strict mode only).
    fn read_all(&mut self) {
        if let Some(reads) = &mut self.reads {
            *reads = ReadSet::All;
        }
    }

    /// The map is replaced as a whole: the merge keeps nothing of the
    /// stored record.
    fn replace_all(&mut self) {
        self.replaced = true;
        self.written.clear();
    }

    fn drop_identity(&mut self) {
        self.origin = None;
        self.origin_key = None;
        if let Some(identity) = self.identity.take() {
            self.discarded.push(identity);
        }
    }

    /// The change log, for the save; emptied (a session is saved once).
    pub(crate) fn take_changes(&mut self) -> Changes {
        Changes {
            writes: std::mem::take(&mut self.written),
            replaced: self.replaced,
            reads: self.reads.take(),
        }
    }
}

impl Session {
    #[cfg(test)]
    pub(crate) fn from_state(state: State) -> Self {
        Self {
            inner: Arc::new(Mutex::new(state)),
            manager: None,
        }
    }

    pub(crate) fn with_manager(state: State, manager: SessionManager) -> Self {
        Self {
            inner: Arc::new(Mutex::new(state)),
            manager: Some(manager),
        }
    }

    fn manager(&self) -> Result<&SessionManager, Error> {
        self.manager
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::MissingMiddleware))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-written
        // in a way that matters more than losing the request, so go on.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value under `key`, deserialized into `T`; `Ok(None)` when absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut state = self.lock();
        state.read(key);
        match state.data.get(key) {
            None => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|e| Error::value::<T>("get", key, &e)),
        }
    }

    /// A copy of the raw JSON value under `key`.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        let mut state = self.lock();
        state.read(key);
        state.data.get(key).cloned()
    }

    /// Stores `value` under `key` and returns the previous raw value.
    /// Marks the session changed and sets `created` to now.
    pub fn insert<T: Serialize>(
        &self,
        key: impl Into<String>,
        value: T,
    ) -> Result<Option<Value>, Error> {
        let key = key.into();
        let value =
            serde_json::to_value(value).map_err(|e| Error::value::<T>("insert", &key, &e))?;
        Ok(self.insert_value(key, value))
    }

    /// Stores a raw JSON value under `key` and returns the previous one.
    /// Marks the session changed and sets `created` to now.
    ///
    /// In strict mode the returned previous value does not count as a read:
    /// a blind write never conflicts. Read the key with [`get`](Self::get)
    /// first when the new value depends on it.
    pub fn insert_value(&self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        let mut state = self.lock();
        state.touch();
        state.wrote(&key);
        Arc::make_mut(&mut state.data).insert(key, value)
    }

    /// Removes `key` and returns its raw value. When the key was present the
    /// session is marked changed and `created` set to now. The other keys
    /// keep their order (keys are kept in insertion order, as in Python).
    pub fn remove(&self, key: &str) -> Option<Value> {
        let mut state = self.lock();
        state.read(key);
        // Keep the other keys in insertion order, as a Python dict does.
        let old = if state.data.contains_key(key) {
            Arc::make_mut(&mut state.data).shift_remove(key)
        } else {
            None
        };
        if old.is_some() {
            state.touch();
            state.wrote(key);
        }
        old
    }

    /// Removes `key` and deserializes its value into `T`.
    pub fn remove_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.remove(key)
            .map(|v| serde_json::from_value(v).map_err(|e| Error::value::<T>("remove_as", key, &e)))
            .transpose()
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        let mut state = self.lock();
        state.read(key);
        state.data.contains_key(key)
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> Vec<String> {
        let mut state = self.lock();
        state.read_all();
        state.data.keys().cloned().collect()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        let mut state = self.lock();
        state.read_all();
        state.data.len()
    }

    /// Whether the session holds no data (aiohttp-session's `empty`).
    pub fn is_empty(&self) -> bool {
        let mut state = self.lock();
        state.read_all();
        state.data.is_empty()
    }

    /// Removes every key. Marks the session changed if it held any.
    ///
    /// For a server store this replaces the whole record: keys that a
    /// concurrent request of the same session wrote meanwhile are removed
    /// too (they are not merged back).
    pub fn clear(&self) {
        let mut state = self.lock();
        if !state.data.is_empty() {
            state.data = Arc::default();
            state.touch();
            state.replace_all();
        }
    }

    /// A copy of the whole map.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut state = self.lock();
        state.read_all();
        Map::clone(&state.data)
    }

    /// Runs `f` on the map (for in-place edits of nested values) and marks
    /// the session changed. The keys whose values `f` changed, added or
    /// removed are what a server store merges; in strict mode `f` counts as
    /// reading the whole map.
    pub fn update<R>(&self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
        let mut state = self.lock();
        state.touch();
        state.read_all();
        let before = Arc::clone(&state.data);
        let result = f(Arc::make_mut(&mut state.data));
        let State { data, .. } = &*state;
        let touched: Vec<String> = data
            .iter()
            .filter(|(key, value)| before.get(*key) != Some(*value))
            .map(|(key, _)| key.clone())
            .chain(
                before
                    .keys()
                    .filter(|key| !data.contains_key(*key))
                    .cloned(),
            )
            .collect();
        for key in &touched {
            state.wrote(key);
        }
        result
    }

    /// When the session data was last modified, in Unix seconds (a float
    /// written by another implementation is truncated).
    #[allow(
        clippy::cast_possible_truncation,
        reason = "float-to-int `as` saturates, as intended"
    )]
    pub fn created(&self) -> i64 {
        let state = self.lock();
        let created = &state.created;
        created
            .as_i64()
            .or_else(|| created.as_f64().map(|f| f.trunc() as i64))
            .unwrap_or(0)
    }

    /// The stored `created` value as it is, integer or float.
    pub fn created_number(&self) -> Number {
        self.lock().created.clone()
    }

    /// The session's identity: the record key for server stores, `None` for
    /// cookie stores and for sessions not saved yet.
    pub fn identity(&self) -> Option<String> {
        self.lock().identity.clone()
    }

    /// Whether this session is new (not loaded from a valid cookie).
    pub fn is_new(&self) -> bool {
        self.lock().new
    }

    /// Whether the session will be saved at the end of the request.
    pub fn is_changed(&self) -> bool {
        self.lock().changed
    }

    /// Marks the session changed, so it is saved even though no key was
    /// set (for example after editing a nested value obtained elsewhere).
    /// Does not update `created`.
    pub fn changed(&self) {
        self.lock().changed = true;
    }

    /// Drops all data and marks the session changed: the client's cookie is
    /// removed and a server store deletes the record. Data set afterwards in
    /// the same request is saved under a new identity.
    ///
    /// For a server store the record is deleted, whatever concurrent
    /// requests of the same session do: a request that loaded it before
    /// the delete never writes it back.
    ///
    /// Data set afterwards is a new session in every respect: its absolute
    /// lifetime starts now.
    pub fn invalidate(&self) {
        let mut state = self.lock();
        state.data = Arc::default();
        state.changed = true;
        state.replace_all();
        state.drop_identity();
        state.start = state.now;
        state.user = None;
    }

    /// Replaces this session by a fresh one (aiohttp-session's
    /// `new_session`): no data, `new`, `created` now, the storage `max_age`,
    /// and a new identity on save. The old server record is deleted. Call it
    /// at login so a session id fixed by an attacker is never promoted.
    ///
    /// The absolute lifetime keeps running from the first session: renewing
    /// rotates the id, it does not extend the session's life. To start a
    /// session whose absolute lifetime runs from now (a login that must be
    /// limited from the login itself), call [`invalidate`](Self::invalidate)
    /// and write the new data.
    #[doc(alias = "new_session")]
    pub fn renew(&self) {
        let mut state = self.lock();
        let default_max_age = state.default_max_age;
        let strict = state.reads.is_some();
        let start = state.start;
        let policy = state.policy;
        let loaded_user = state.loaded_user.take();
        state.drop_identity();
        let discarded = std::mem::take(&mut state.discarded);
        let now = state.now;
        *state = State::fresh(default_max_age, strict, now);
        state.discarded = discarded;
        state.start = start;
        state.loaded_user = loaded_user;
        state.policy = policy;
        state.changed = true;
        state.replace_all();
    }

    /// Sets the identity of a new session; server stores then save it under
    /// this id instead of a generated one. Errors with
    /// [`ErrorKind::IdentityNotNew`] unless the session is new.
    pub fn set_new_identity(&self, identity: impl Into<String>) -> Result<(), Error> {
        let mut state = self.lock();
        if !state.new {
            return Err(Error::new(ErrorKind::IdentityNotNew));
        }
        state.identity = Some(identity.into());
        Ok(())
    }

    /// Binds the session to `user` (an id of yours, such as a user's
    /// primary key), so that [`SessionManager::sessions_of`] lists it and
    /// [`SessionManager::revoke_user`] ends it. Marks the session changed.
    ///
    /// At login, [`renew`](Self::renew) first (against session fixation),
    /// then bind:
    ///
    /// ```
    /// # fn login(session: http_session::Session) -> Result<(), http_session::Error> {
    /// session.renew();
    /// session.set_user("alice");
    /// session.insert("name", "Alice")?;
    /// # Ok(()) }
    /// ```
    ///
    /// Server stores with a per-user index (memory, Redis) keep the binding
    /// in the index; memcached answers the save with
    /// [`ErrorKind::Unsupported`]; cookie stores keep it in the cookie but
    /// cannot list or revoke.
    pub fn set_user(&self, user: impl Into<String>) {
        let mut state = self.lock();
        state.user = Some(user.into());
        state.changed = true;
    }

    /// The user the session is bound to.
    pub fn user(&self) -> Option<String> {
        self.lock().user.clone()
    }

    /// Unbinds the session from its user (it stays a session). Marks the
    /// session changed if it was bound.
    pub fn clear_user(&self) {
        let mut state = self.lock();
        if state.user.take().is_some() {
            state.changed = true;
        }
    }

    /// The sessions of this session's user, this one marked
    /// [`current`](SessionInfo::current); empty when it is bound to none.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, Error> {
        let (user, identity) = {
            let state = self.lock();
            (state.user.clone(), state.identity.clone())
        };
        match user {
            Some(user) => self.manager()?.list(&user, identity.as_deref()).await,
            None => Ok(Vec::new()),
        }
    }

    /// Ends one of this user's other sessions (see
    /// [`SessionManager::revoke`]); `Ok(false)` when `handle` is not one of
    /// this user's live sessions.
    pub async fn revoke(&self, handle: &SessionHandle) -> Result<bool, Error> {
        if self.user().as_deref() != Some(handle.user()) {
            return Ok(false);
        }
        self.manager()?.revoke(handle).await
    }

    /// "Log out my other devices": ends every session of this session's
    /// user but this one. Returns how many ended.
    pub async fn revoke_others(&self) -> Result<usize, Error> {
        let current = self.sessions().await?.into_iter().find(|s| s.current);
        match self.user() {
            Some(user) => {
                self.manager()?
                    .revoke_user(&user, current.as_ref().map(|s| &s.handle))
                    .await
            }
            None => Ok(0),
        }
    }

    /// "Log out everywhere": ends every session of this session's user, this
    /// one included (it is [invalidated](Self::invalidate)). Returns how many
    /// ended.
    pub async fn revoke_everywhere(&self) -> Result<usize, Error> {
        let Some(user) = self.user() else {
            self.invalidate();
            return Ok(0);
        };
        let ended = self.manager()?.revoke_user(&user, None).await?;
        self.invalidate();
        Ok(ended)
    }

    /// When the session expires if it is not written again (Unix seconds):
    /// the earliest of the expiry rules (its `max_age` from its last
    /// modification, the idle timeout from its last write, the absolute
    /// lifetime from its start); `None` when no rule limits it. For a page
    /// that shows "your session expires at ...".
    pub fn expires_at(&self) -> Option<u64> {
        let state = self.lock();
        let policy = &state.policy;
        let created = created_secs(Some(&state.created)).unwrap_or(state.start);
        let last = state.last.unwrap_or(created).max(created);
        let own = state
            .max_age
            .into_iter()
            .chain(policy.max_age)
            .min()
            .map(|age| created.saturating_add(age));
        let idle = policy.idle_timeout.map(|t| last.saturating_add(t));
        let absolute = policy
            .absolute_lifetime
            .map(|t| state.start.saturating_add(t));
        [own, idle, absolute].into_iter().flatten().min()
    }

    /// This session's max age in seconds (starts at the storage value).
    pub fn max_age(&self) -> Option<u64> {
        self.lock().max_age
    }

    /// Sets this session's max age: the cookie's `Max-Age`/`expires` and a
    /// server record's TTL on the next save. Does not mark the session
    /// changed.
    pub fn set_max_age(&self, max_age: Option<u64>) {
        self.lock().max_age = max_age;
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The identity is a bearer credential for server stores: redact it.
        let state = self.lock();
        f.debug_struct("Session")
            .field("keys", &state.data.keys().collect::<Vec<_>>())
            .field("created", &state.created)
            .field("identity", &state.identity.as_ref().map(|_| "[redacted]"))
            .field("new", &state.new)
            .field("changed", &state.changed)
            .field("max_age", &state.max_age)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A session written at 1, loaded by a request at 1000.
    fn loaded() -> Session {
        let mut state = State::fresh(Some(60), false, 1000);
        state.new = false;
        state.identity = Some("abc".into());
        state.created = Number::from(1);
        Arc::make_mut(&mut state.data).insert("a".into(), json!(1));
        Session::from_state(state)
    }

    #[test]
    fn insert_marks_changed_and_updates_created() {
        let s = loaded();
        assert!(!s.is_changed());
        assert_eq!(s.created(), 1);
        assert_eq!(s.insert("b", vec![1, 2]).unwrap(), None);
        assert!(s.is_changed());
        assert_eq!(s.created(), 1000, "the request's time");
        assert_eq!(s.get::<Vec<u8>>("b").unwrap(), Some(vec![1, 2]));
    }

    #[test]
    fn typed_get_reports_a_mismatch() {
        let s = loaded();
        assert_eq!(s.get::<String>("a").unwrap_err().kind(), ErrorKind::Value);
        assert_eq!(s.get::<u8>("missing").unwrap(), None);
    }

    #[test]
    fn removing_a_missing_key_changes_nothing() {
        let s = loaded();
        assert_eq!(s.remove("nope"), None);
        assert!(!s.is_changed());
        assert_eq!(s.remove_as::<i32>("a").unwrap(), Some(1));
        assert!(s.is_changed());
        assert!(s.is_empty());
    }

    #[test]
    fn changed_does_not_touch_created() {
        let s = loaded();
        s.changed();
        assert!(s.is_changed());
        assert_eq!(s.created(), 1);
    }

    #[test]
    fn set_new_identity_only_on_new_sessions() {
        let s = loaded();
        assert_eq!(
            s.set_new_identity("x").unwrap_err().kind(),
            ErrorKind::IdentityNotNew
        );
        let fresh = Session::from_state(State::fresh(None, false, 1));
        fresh.set_new_identity("x").unwrap();
        assert_eq!(fresh.identity().as_deref(), Some("x"));
    }

    #[test]
    fn invalidate_and_renew_discard_the_identity() {
        let s = loaded();
        s.set_max_age(Some(5));
        s.invalidate();
        assert!(s.is_empty() && s.is_changed());
        assert_eq!(s.identity(), None);
        assert_eq!(s.lock().discarded, vec!["abc".to_owned()]);

        let s = loaded();
        s.set_max_age(Some(5));
        s.renew();
        assert!(s.is_new() && s.is_empty() && s.is_changed());
        assert_eq!(s.max_age(), Some(60));
        assert_eq!(s.lock().discarded, vec!["abc".to_owned()]);
    }

    #[test]
    fn debug_redacts_the_identity_and_values() {
        let s = loaded();
        s.insert("password", "hunter2").unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("\"abc\""));
        assert!(text.contains("[redacted]"));
        assert!(!text.contains("hunter2"));
        assert!(text.contains("password"));
    }
}
