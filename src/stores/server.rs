//! Server stores: the session lives in a key-value backend, the cookie
//! holds a random id.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Number, Value};

use crate::config::CookieConfig;
use crate::error::{Error, ErrorKind};
use crate::record::{Codec, DecodedRecord, Meta, SharedRecord};
use crate::stores::combine::{Combiner, Lead, Reply, Role};
use crate::stores::{
    Changes, Context, Loaded, ReadSet, Remaining, Revoke, SaveRequest, Saved, SessionStore,
    Touched, UserSession,
};

/// A record as a backend holds it.
#[derive(Clone, PartialEq)]
pub enum Payload {
    /// The bytes of the manager's [`Codec`]: what a backend that other
    /// processes (and aiohttp-session) read holds.
    Encoded(Vec<u8>),
    /// The record itself, decoded and shared: what a backend in this
    /// process holds ([`KvBackend::HOLDS_DECODED`]), so that a request costs
    /// neither an encode nor a decode.
    Shared(Arc<SharedRecord>),
}

impl Payload {
    /// The encoded bytes, for a backend that holds bytes. A shared record
    /// is an error here: [`ServerStore`] hands one only to a backend that
    /// says it [holds decoded records](KvBackend::HOLDS_DECODED).
    pub fn encoded(&self) -> Result<&[u8], Error> {
        match self {
            Payload::Encoded(bytes) => Ok(bytes),
            Payload::Shared(_) => Err(Error::new(ErrorKind::Encode)
                .detail("a decoded record reached a backend that holds bytes")),
        }
    }

    /// The record, decoded by `codec` when it is bytes. `Ok(None)` when it
    /// decodes but is not a session record (no `session` object: `{}` is
    /// how aiohttp-session deletes).
    pub(crate) fn open(&self, codec: &dyn Codec) -> Result<Option<Opened>, Error> {
        Ok(match self {
            Payload::Shared(record) => Some(Opened {
                created: Some(record.created.clone()),
                session: Arc::clone(&record.session),
                meta: record.meta.clone(),
            }),
            Payload::Encoded(bytes) => {
                let DecodedRecord {
                    created,
                    session,
                    meta,
                } = codec.decode_record(bytes)?;
                session.map(|session| Opened {
                    created,
                    session: Arc::new(session),
                    meta,
                })
            }
        })
    }

    /// The user the record is bound to, if it is a session record that
    /// decodes.
    fn user(&self, codec: &dyn Codec) -> Option<String> {
        self.open(codec).ok().flatten()?.meta?.user
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Payload::Encoded(bytes)
    }
}

impl From<&[u8]> for Payload {
    fn from(bytes: &[u8]) -> Self {
        Payload::Encoded(bytes.to_vec())
    }
}

/// A session record as the manager restores it and a merge rebases onto.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) created: Option<Number>,
    pub(crate) session: Arc<Map<String, Value>>,
    pub(crate) meta: Option<Meta>,
}

/// A stored record and its version.
#[derive(Clone, PartialEq)]
pub struct Stored {
    /// The record.
    pub value: Payload,
    /// The backend's version token for compare-and-set (memcached's CAS
    /// unique, the memory store's generation), or `None` when the backend
    /// compares the value itself (Redis).
    pub version: Option<u64>,
}

impl Stored {
    /// Encoded bytes whose version is the bytes themselves.
    pub fn unversioned(value: Vec<u8>) -> Self {
        Self {
            value: Payload::Encoded(value),
            version: None,
        }
    }

    /// Encoded bytes and their version token.
    pub fn versioned(value: Vec<u8>, version: u64) -> Self {
        Self {
            value: Payload::Encoded(value),
            version: Some(version),
        }
    }
}

/// Only the size: a record holds session data.
impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Encoded(bytes) => f
                .debug_struct("Encoded")
                .field("len", &bytes.len())
                .finish(),
            Payload::Shared(record) => record.fmt(f),
        }
    }
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stored")
            .field("value", &self.value)
            .field("version", &self.version)
            .finish()
    }
}

/// What a compare-and-set writes.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// Store this value, expiring after `ttl` seconds (never when `None`).
    Value {
        /// The record: bytes, unless the backend
        /// [holds decoded records](KvBackend::HOLDS_DECODED).
        value: &'a Payload,
        /// Seconds to live.
        ttl: Option<u64>,
    },
    /// Delete the key.
    Delete,
}

/// What a compare-and-set expects the key to hold.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// Nothing: the key is new (an `add`).
    Absent,
    /// Exactly what was read: the same version when it has one, otherwise
    /// the same bytes.
    Current(&'a Stored),
}

/// The outcome of a compare-and-set.
#[derive(Debug)]
pub enum Put {
    /// The write happened.
    Done,
    /// The key holds nothing, where a value was expected: it was deleted or
    /// expired since it was read.
    Missing,
    /// The key holds something other than expected (for
    /// [`Expect::Absent`]: it exists). The backend returns what it holds
    /// when the same round trip told it; otherwise the store reads it.
    Changed(Option<Stored>),
}

/// The operations a server store needs from its backend.
///
/// Keys arrive complete (`<cookie_name>_<id>`) and already validated with
/// [`is_valid_key`]; values are encoded records (or the records
/// themselves, for a backend that [holds them decoded](Self::HOLDS_DECODED)). A backend reports a
/// connection failure or timeout with [`Error::store`]`(true, ..)` so the
/// client gets a 503.
///
/// The backend supplies one primitive beyond get and delete, a
/// compare-and-set ([`KvBackend::put`]), atomic on the server: the write
/// happens only if the key still holds what the request read (or nothing,
/// for a new key). The merge of concurrent requests, the retries and the
/// rule that a deleted record is never written back live in
/// [`ServerStore`], once for every backend.
pub trait KvBackend: Send + Sync + 'static {
    /// Whether the backend holds records decoded ([`Payload::Shared`])
    /// rather than as bytes: right for a backend in this process, which no
    /// other program reads. Default `false`: [`Write::Value`] then always
    /// carries [`Payload::Encoded`].
    const HOLDS_DECODED: bool = false;

    /// Whether concurrent saves of one session in this process are
    /// combined: the first to arrive writes its own record, then the saves
    /// that queued meanwhile with one compare-and-set. Right for a remote
    /// backend, where a lost compare-and-set round costs a round trip;
    /// default `false` (a backend whose compare-and-set is a lock in this
    /// process loses rounds for free).
    const COMBINES_SAVES: bool = false;

    /// The value under `key` and its version, or `None` when absent or
    /// expired.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Stored>, Error>> + Send;

    /// Writes `write` under `key` if the key holds what `expect` says, in
    /// one atomic step on the server.
    fn put(
        &self,
        key: &str,
        write: Write<'_>,
        expect: Expect<'_>,
    ) -> impl Future<Output = Result<Put, Error>> + Send;

    /// Deletes `key` whatever it holds; deleting a missing key is not an
    /// error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// Like [`get`](Self::get), also telling how long the value has left.
    /// The default asks `get` and answers [`Remaining::Unknown`]; a rolling
    /// session then refreshes on every read-only request past its interval
    /// instead of once per interval.
    fn get_with_remaining(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Stored, Remaining)>, Error>> + Send {
        async move {
            Ok(self
                .get(key)
                .await?
                .map(|stored| (stored, Remaining::Unknown)))
        }
    }

    /// Makes `key` expire `ttl` seconds from now without rewriting it (the
    /// refresh of a rolling session: Redis `EXPIRE`, memcached `touch`).
    /// `Ok(false)` when the key is gone.
    fn touch(&self, key: &str, ttl: u64) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Adds `member` (a record's key) to the set under `index` (a user's
    /// sessions), and makes the set live at least `ttl` seconds when given.
    /// The default answers [`ErrorKind::Unsupported`]: a backend without
    /// sets cannot list or revoke a user's sessions.
    fn index_add(
        &self,
        index: &str,
        member: &str,
        ttl: Option<u64>,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (index, member, ttl);
        std::future::ready(Err(Error::new(ErrorKind::Unsupported)))
    }

    /// Removes `member` from the set under `index`; an empty set goes.
    fn index_remove(
        &self,
        index: &str,
        member: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (index, member);
        std::future::ready(Err(Error::new(ErrorKind::Unsupported)))
    }

    /// The members of the set under `index`.
    fn index_members(
        &self,
        index: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send {
        let _ = index;
        std::future::ready(Err(Error::new(ErrorKind::Unsupported)))
    }

    /// Waits `pause` between compare-and-set rounds that lost to another
    /// writer. The default does not wait (right for a backend whose
    /// compare-and-set is a lock in this process); a remote backend sleeps
    /// on its runtime's timer.
    fn pause(&self, pause: Duration) -> impl Future<Output = ()> + Send {
        let _ = pause;
        std::future::ready(())
    }
}

/// Makes the id of a new session (aiohttp-session's `key_factory`).
pub type KeyFactory = Arc<dyn Fn() -> String + Send + Sync>;

/// Says whether a cookie value is an id in a key factory's format.
pub type IdFormat = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Whether `id` has the form of the default ids: 32 lowercase hex digits
/// (Python's `uuid.uuid4().hex`).
pub fn is_default_id(id: &str) -> bool {
    // No early exit: a fixed-length loop the compiler vectorizes.
    id.len() == 32
        && id.bytes().fold(true, |ok, b| {
            ok & (b.is_ascii_digit() | (b'a'..=b'f').contains(&b))
        })
}

/// Whether `key` is usable in every backend: 1 to 250 bytes, no
/// whitespace or control characters (memcached's rule, applied to every
/// server store so they behave the same). Cookie ids that fail it give a
/// fresh session.
pub fn is_valid_key(key: &str) -> bool {
    if key.is_empty() || key.len() > 250 {
        return false;
    }
    // The usual key is printable ASCII: one pass over the bytes, without
    // an early exit so that it vectorizes.
    key.bytes().fold(true, |ok, b| ok & b.is_ascii_graphic())
        || !key
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ('\u{7f}'..='\u{9f}').contains(&c))
}

/// 128 random bits from the operating system as 32 lowercase hex digits,
/// like Python's `uuid.uuid4().hex` in length and alphabet.
pub(crate) fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    crate::random::fill(&mut bytes)?;
    Ok(lower_hex(&bytes))
}

/// `bytes` in lowercase hex.
pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    let mut hex = vec![0; bytes.len() * 2];
    hex_into(bytes, &mut hex);
    String::from_utf8(hex).unwrap_or_default()
}

/// Writes `bytes` in lowercase hex to the first `2 * bytes.len()` bytes
/// of `out`.
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
}

/// A store that keeps sessions in a [`KvBackend`] under
/// `<cookie_name>_<id>`, with the record as the value and the session's
/// `max_age` as the TTL — the layout of aiohttp-session's Redis and
/// Memcached storages.
///
/// Unlike aiohttp-session, an invalidated or renewed session's record is
/// deleted rather than overwritten with `{}`, and an empty session writes
/// nothing. A cookie value that is not an id in the store's format (by
/// default 32 lowercase hex digits) gives a fresh session without asking
/// the backend.
pub struct ServerStore<B> {
    backend: B,
    key_factory: Option<(KeyFactory, IdFormat)>,
    max_record_size: Option<usize>,
    hashed_ids: bool,
    combiner: Combiner<Job<'static>, Handoff>,
}

impl<B: KvBackend> ServerStore<B> {
    /// A server store over `backend`, with random 128-bit ids.
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            key_factory: None,
            max_record_size: None,
            hashed_ids: false,
            combiner: Combiner::default(),
        }
    }

    /// Stores each record under the SHA-256 of its id (lowercase hex)
    /// instead of the id itself: `<cookie_name>_<sha256(id)>`. A dump of the
    /// store (a backup, a `KEYS *`, a compromised replica) then yields no
    /// cookie that logs anyone in. Off by default: aiohttp-session looks
    /// records up by the id itself, so with this on Python services no
    /// longer find our sessions (nor we theirs).
    pub fn with_hashed_ids(mut self) -> Self {
        self.hashed_ids = true;
        self
    }

    /// Refuses to store a record larger than `bytes` (encoded), with
    /// [`ErrorKind::RecordTooLarge`]: the request gets an opaque 500 and
    /// the stored session stays as it was. Default: no limit here (a
    /// memcached server refuses items over its own `-I` limit, 1 MiB by
    /// default, which is answered the same way).
    pub fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record_size = Some(bytes);
        self
    }

    /// Refuses a record over the size limit. A shared record is encoded to
    /// be measured, only when there is a limit.
    fn check_size(&self, codec: &dyn Codec, record: &Payload) -> Result<(), Error> {
        let Some(limit) = self.max_record_size else {
            return Ok(());
        };
        let len = match record {
            Payload::Encoded(bytes) => bytes.len(),
            Payload::Shared(shared) => codec.encode(&shared.as_record())?.len(),
        };
        if len > limit {
            return Err(
                Error::new(ErrorKind::RecordTooLarge).detail(format!("{len} bytes, limit {limit}"))
            );
        }
        Ok(())
    }

    /// The record as this backend holds it, refused when it is over the
    /// size limit (an empty one is deleted, not written).
    fn encode_checked(
        &self,
        ctx: &Context<'_>,
        record: &SharedRecord,
        empty: bool,
    ) -> Result<Payload, Error> {
        let record = Self::payload(ctx.codec, record.clone())?;
        if !empty {
            self.check_size(ctx.codec, &record)?;
        }
        Ok(record)
    }

    /// The record as this backend holds it: shared, or encoded by `codec`.
    fn payload(codec: &dyn Codec, record: SharedRecord) -> Result<Payload, Error> {
        Ok(if B::HOLDS_DECODED {
            Payload::Shared(Arc::new(record))
        } else {
            Payload::Encoded(codec.encode(&record.as_record())?)
        })
    }

    /// Uses `factory` to make the ids of new sessions, and `format` to
    /// tell an id of that form from anything else a cookie may hold: a
    /// cookie value `format` refuses gives a fresh session without a store
    /// round trip. Ids must be unique and unguessable (at least 128 random
    /// bits); an id that `format` refuses, or that fails [`is_valid_key`]
    /// once prefixed, makes saving fail. So does an identity set with
    /// [`Session::set_new_identity`](crate::Session::set_new_identity) that
    /// `format` refuses.
    pub fn with_key_factory(
        mut self,
        factory: impl Fn() -> String + Send + Sync + 'static,
        format: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.key_factory = Some((Arc::new(factory), Arc::new(format)));
        self
    }

    /// Whether `id` has the form of this store's ids.
    fn accepts(&self, id: &str) -> bool {
        match &self.key_factory {
            Some((_, format)) => format(id),
            None => is_default_id(id),
        }
    }

    /// The store key of `id`, if `id` is one of this store's ids.
    fn key_of(&self, config: &CookieConfig, id: &str) -> Option<String> {
        if !self.accepts(id) {
            return None;
        }
        let key = if self.hashed_ids {
            store_key(config, &sha256_hex(id))
        } else {
            store_key(config, id)
        };
        is_valid_key(&key).then_some(key)
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn new_id(&self) -> Result<String, Error> {
        match &self.key_factory {
            Some((factory, _)) => Ok(factory()),
            None => random_id(),
        }
    }

    /// Ends the session under `key` if it is bound to `user`: its record
    /// first, then its index entry (a stale entry just goes). Whether a
    /// session ended.
    async fn revoke_one(
        &self,
        ctx: &Context<'_>,
        index: &str,
        user: &str,
        key: &str,
    ) -> Result<bool, Error> {
        let bound = self
            .backend
            .get(key)
            .await?
            .is_some_and(|record| record.value.user(ctx.codec).is_some_and(|u| u == user));
        if bound {
            self.backend.delete(key).await?;
        }
        self.backend.index_remove(index, key).await?;
        Ok(bound)
    }

    /// Adds `key` to `user`'s index (before its record is written). A
    /// backend without an index keeps the binding in the record only:
    /// listing and revoking then answer [`ErrorKind::Unsupported`].
    async fn join(&self, ctx: &Context<'_>, user: Option<&str>, key: &str) -> Result<(), Error> {
        let Some(user) = user else {
            return Ok(());
        };
        let index = index_key(ctx.config, user)?;
        without_index(
            self.backend
                .index_add(&index, key, ctx.absolute_lifetime)
                .await,
        )
    }

    /// Removes `key` from `user`'s index (after its record is gone).
    async fn leave(
        &self,
        config: &CookieConfig,
        user: Option<&str>,
        key: &str,
    ) -> Result<(), Error> {
        let Some(user) = user else {
            return Ok(());
        };
        let index = index_key(config, user)?;
        without_index(self.backend.index_remove(&index, key).await)
    }

    /// Writes a new record: the id must not be taken.
    async fn save_new(
        &self,
        ctx: &Context<'_>,
        request: &SaveRequest<'_>,
        record: &Payload,
        mut id: String,
        mut key: String,
        generated: bool,
    ) -> Result<Saved, Error> {
        let user = request.users.current;
        for _ in 0..MAX_ROUNDS {
            self.join(ctx, user, &key).await?;
            let write = Write::Value {
                value: record,
                ttl: request.ttl,
            };
            match self.backend.put(&key, write, Expect::Absent).await? {
                Put::Done => return Ok(Saved::Cookie(id)),
                Put::Changed(_) | Put::Missing if generated => {
                    tracing::warn!(target: "http_session", "new session id already taken; drawing another");
                    self.leave(ctx.config, user, &key).await?;
                    id = self.new_id()?;
                    key = self.key_of(ctx.config, &id).ok_or_else(|| {
                        Error::new(ErrorKind::Config)
                            .detail("the key factory made an id outside its format")
                    })?;
                }
                Put::Changed(_) | Put::Missing => {
                    // `set_new_identity` named a session that exists.
                    self.leave(ctx.config, user, &key).await?;
                    return Err(Error::new(ErrorKind::Conflict)
                        .detail("the identity set with set_new_identity is taken"));
                }
            }
        }
        Err(Error::new(ErrorKind::Busy).detail("no free session id"))
    }

    /// Writes a loaded record: merged into what the store holds now. On a
    /// backend that [combines saves](KvBackend::COMBINES_SAVES), together
    /// with the other saves of the session in this process.
    async fn save_loaded(
        &self,
        ctx: &Context<'_>,
        request: &SaveRequest<'_>,
        origin: &Stored,
        id: String,
        key: &str,
    ) -> Result<Saved, Error> {
        let users = request.users;
        let rebound = users.current != users.loaded;
        if rebound {
            self.join(ctx, users.current, key).await?;
        }
        let job = Job {
            origin: Some(Cow::Borrowed(origin)),
            record: Cow::Borrowed(request.record),
            changes: Cow::Borrowed(request.changes),
            ttl: request.ttl,
        };
        let outcome = if B::COMBINES_SAVES {
            self.save_combined(ctx, key, origin, &job, request.empty)
                .await
        } else {
            let record = self.encode_checked(ctx, request.record, request.empty)?;
            let expected = Cow::Borrowed(origin);
            let ready = Some((record, request.empty));
            let (mut outcomes, _) = self
                .write_batch(ctx, key, std::slice::from_ref(&job), expected, ready)
                .await;
            outcomes
                .pop()
                .unwrap_or_else(|| Err(Error::new(ErrorKind::Store)))
        };
        match outcome? {
            Outcome::Written { removed: true } => {
                self.leave(ctx.config, users.current, key).await?;
                self.leave(ctx.config, users.loaded, key).await?;
                Ok(Saved::Remove)
            }
            Outcome::Written { removed: false } => {
                if rebound {
                    self.leave(ctx.config, users.loaded, key).await?;
                }
                Ok(Saved::Cookie(id))
            }
            Outcome::Dropped => Ok(dropped()),
        }
    }

    /// A save that leads the saves of its session in this process, or
    /// waits for the one that leads (see `stores/combine.rs`). A leader
    /// writes its own record together with the saves handed to it, with
    /// one compare-and-set, answers them, and hands the lead on to the
    /// first of the saves that queued meanwhile, with the rest of them and
    /// what it wrote: no save waits for more than the batch before its own.
    async fn save_combined(
        &self,
        ctx: &Context<'_>,
        key: &str,
        origin: &Stored,
        job: &Job<'_>,
        empty: bool,
    ) -> Combined {
        loop {
            let (mut lead, queued, held) = match self.combiner.enter(key, || job.to_owned_job()) {
                Role::Lead(lead) => (lead, Vec::new(), None),
                Role::Wait(waiting) => match waiting.await {
                    Some(Handoff::Done(outcome)) => return outcome,
                    Some(Handoff::Lead(lead, queued, held)) => (lead, queued, held),
                    // The leader was cancelled before it got to this save.
                    None => continue,
                },
            };
            let (others, replies): (Vec<_>, Vec<_>) = queued.into_iter().unzip();
            let mut jobs = Vec::with_capacity(1 + others.len());
            jobs.push(job.borrowed());
            jobs.extend(others);
            // What the last batch wrote, when the backend compares values;
            // otherwise this save's origin, as if it were alone.
            let (expected, ready) = match held {
                Some(held) => (Cow::Owned(held), None),
                None => {
                    let record = self.encode_checked(ctx, &job.record, empty)?;
                    (Cow::Borrowed(origin), Some((record, empty)))
                }
            };
            let (outcomes, held) = self.write_batch(ctx, key, &jobs, expected, ready).await;
            let mut outcomes = outcomes.into_iter();
            let mine = outcomes
                .next()
                .unwrap_or_else(|| Err(Error::new(ErrorKind::Store)));
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                reply.send(Handoff::Done(outcome));
            }
            let mut next = lead.next_batch();
            if !next.is_empty() {
                // Its own copy of the job is not needed: it has the job.
                let (_, first) = next.remove(0);
                first.send(Handoff::Lead(lead, next, held));
            }
            return mine;
        }
    }

    /// Writes saves of one key with one compare-and-set per round: their
    /// changes applied in order onto what the store holds (`expected`,
    /// until a round finds otherwise). `ready` is the first save's record,
    /// encoded, and whether it is empty: it applies as it is when the
    /// store still holds that save's origin. Returns each save's outcome,
    /// and what the store holds after the write when the backend compares
    /// values (no version token), for a next batch to expect.
    async fn write_batch(
        &self,
        ctx: &Context<'_>,
        key: &str,
        jobs: &[Job<'_>],
        mut expected: Cow<'_, Stored>,
        mut ready: Option<(Payload, bool)>,
    ) -> (Vec<Combined>, Option<Stored>) {
        for round in 0..MAX_ROUNDS {
            let (outcomes, state, ttl) = match self.fold(ctx, jobs, &expected, ready.take()) {
                Ok(folded) => folded,
                Err(e) => return (jobs.iter().map(|_| Err(e.shared())).collect(), None),
            };
            let write = match &state {
                // Nothing to write: every save was dropped or refused.
                State::Unchanged => return (outcomes, None),
                State::Deleted => Write::Delete,
                State::Record(record) => Write::Value { value: record, ttl },
            };
            let reported = match self
                .backend
                .put(key, write, Expect::Current(&expected))
                .await
            {
                Ok(Put::Done) => {
                    if round > 0 || jobs.len() > 1 {
                        tracing::debug!(
                            target: "http_session",
                            rounds = round + 1,
                            saves = jobs.len(),
                            "session saved after merging concurrent writes"
                        );
                    }
                    let held = match state {
                        State::Record(value) if expected.version.is_none() => Some(Stored {
                            value,
                            version: None,
                        }),
                        _ => None,
                    };
                    return (outcomes, held);
                }
                Ok(Put::Missing) => {
                    let dropped = outcomes
                        .into_iter()
                        .map(|outcome| outcome.map(|_| Outcome::Dropped))
                        .collect();
                    return (dropped, None);
                }
                Ok(Put::Changed(reported)) => reported,
                Err(e) => return (jobs.iter().map(|_| Err(e.shared())).collect(), None),
            };
            // After a few lost rounds, wait before reading the record again:
            // the wait goes before the read, not between the read and the
            // next write, so the next round's window stays one round trip.
            let current = match (reported, backoff(round)) {
                (Some(current), None) => current,
                (_, pause) => {
                    if let Some(pause) = pause {
                        self.backend.pause(pause).await;
                    }
                    match self.backend.get(key).await {
                        Ok(Some(current)) => current,
                        Ok(None) => {
                            return (jobs.iter().map(|_| Ok(Outcome::Dropped)).collect(), None)
                        }
                        Err(e) => return (jobs.iter().map(|_| Err(e.shared())).collect(), None),
                    }
                }
            };
            expected = Cow::Owned(current);
        }
        tracing::warn!(
            target: "http_session",
            rounds = MAX_ROUNDS,
            saves = jobs.len(),
            "session save lost every compare-and-set round to concurrent writers"
        );
        (
            jobs.iter()
                .map(|_| Err(Error::new(ErrorKind::Busy)))
                .collect(),
            None,
        )
    }

    /// Applies `jobs` in order onto `expected`: each save's outcome, the
    /// record to write, and its TTL (the last written save's). A save whose
    /// changes are refused (a strict-mode conflict, a record too large)
    /// leaves the record as it was for the next; after a save that
    /// emptied the record, the rest find it deleted.
    fn fold(
        &self,
        ctx: &Context<'_>,
        jobs: &[Job<'_>],
        expected: &Stored,
        ready: Option<(Payload, bool)>,
    ) -> Result<(Vec<Combined>, State, Option<u64>), Error> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut state = State::Unchanged;
        let mut ttl = None;
        let mut rest = jobs;
        if let (Some((record, empty)), Some((first, others))) = (ready, jobs.split_first()) {
            state = if empty {
                State::Deleted
            } else {
                State::Record(record)
            };
            outcomes.push(Ok(Outcome::Written { removed: empty }));
            ttl = first.ttl;
            rest = others;
        }
        for job in rest {
            let base = match &state {
                State::Deleted => {
                    outcomes.push(Ok(Outcome::Dropped));
                    continue;
                }
                State::Record(record) => Cow::Owned(Stored {
                    value: record.clone(),
                    version: None,
                }),
                State::Unchanged => Cow::Borrowed(expected),
            };
            let origin = job.origin.as_deref();
            let merged = match rebase(ctx.codec, origin, &base, &job.record, &job.changes) {
                Ok(Some(merged)) => merged,
                Ok(None) => {
                    outcomes.push(Ok(Outcome::Dropped));
                    continue;
                }
                Err(e) => {
                    outcomes.push(Err(e));
                    continue;
                }
            };
            if merged.as_record().is_empty() {
                state = State::Deleted;
                outcomes.push(Ok(Outcome::Written { removed: true }));
                continue;
            }
            // Kept decoded until the batch is folded: the next save rebases
            // onto it without a decode.
            let record = Payload::Shared(Arc::new(merged));
            match self.check_size(ctx.codec, &record) {
                Ok(()) => {
                    state = State::Record(record);
                    outcomes.push(Ok(Outcome::Written { removed: false }));
                    ttl = job.ttl;
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        if let State::Record(Payload::Shared(record)) = state {
            state = State::Record(Self::payload(ctx.codec, Arc::unwrap_or_clone(record))?);
        }
        Ok((outcomes, state, ttl))
    }
}

/// One save of a loaded record, as the leader of its session's saves
/// carries it out: borrowed from its own request, owned when it is
/// another's.
struct Job<'a> {
    /// The record as the save's request loaded it: what a strict-mode
    /// rebase compares the reads against. A job handed to a leader keeps
    /// it only in strict mode.
    origin: Option<Cow<'a, Stored>>,
    record: Cow<'a, SharedRecord>,
    changes: Cow<'a, Changes>,
    ttl: Option<u64>,
}

impl Job<'_> {
    fn borrowed(&self) -> Job<'_> {
        Job {
            origin: self.origin.as_deref().map(Cow::Borrowed),
            record: Cow::Borrowed(&*self.record),
            changes: Cow::Borrowed(&*self.changes),
            ttl: self.ttl,
        }
    }

    fn to_owned_job(&self) -> Job<'static> {
        Job {
            origin: self
                .origin
                .as_deref()
                .filter(|_| self.changes.reads.is_some())
                .map(|origin| Cow::Owned(origin.clone())),
            record: Cow::Owned(self.record.clone().into_owned()),
            changes: Cow::Owned(self.changes.clone().into_owned()),
            ttl: self.ttl,
        }
    }
}

/// What became of one save of a loaded record.
enum Outcome {
    /// Written; `removed` when the write deleted the record (it emptied).
    Written { removed: bool },
    /// The record was deleted before this save: nothing was written.
    Dropped,
}

type Combined = Result<Outcome, Error>;

/// What a leader sends a queued save: its outcome, or the lead itself,
/// with the other saves queued behind it and what the store holds now
/// (when the backend compares values).
enum Handoff {
    Done(Combined),
    Lead(
        Lead<Job<'static>, Handoff>,
        Vec<(Job<'static>, Reply<Handoff>)>,
        Option<Stored>,
    ),
}

/// The record a batch writes.
enum State {
    /// Nothing to write.
    Unchanged,
    /// Delete the record.
    Deleted,
    /// This record.
    Record(Payload),
}

/// An index operation of a backend that has no index is no operation.
fn without_index(result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Err(e) if e.kind() == ErrorKind::Unsupported => Ok(()),
        other => other,
    }
}

/// The key of `user`'s index: `<cookie_name>_user_<user>`.
fn index_key(config: &CookieConfig, user: &str) -> Result<String, Error> {
    let key = format!("{}_user_{user}", config.name);
    if is_valid_key(&key) {
        Ok(key)
    } else {
        Err(Error::new(ErrorKind::Value)
            .detail("a user id must make a valid store key (no white space or control characters, 250 bytes at most with the prefix)"))
    }
}

/// SHA-256 in lowercase hex.
pub(crate) fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    lower_hex(&Sha256::digest(text.as_bytes()))
}

fn store_key(config: &CookieConfig, id: &str) -> String {
    let mut key = String::with_capacity(config.name.len() + 1 + id.len());
    key.push_str(&config.name);
    key.push('_');
    key.push_str(id);
    key
}

/// How many compare-and-set rounds a save tries before it answers
/// [`ErrorKind::Busy`]. Each lost round means another save of the same
/// session landed in between; a round costs one round trip.
const MAX_ROUNDS: u32 = 24;

/// Backs off after the first lost rounds, so that writers of one session
/// stop colliding: 0.1 ms doubling to 6.4 ms, with jitter.
fn backoff(round: u32) -> Option<Duration> {
    let step = round.checked_sub(3)?;
    let base = 100u64 << step.min(6);
    let mut jitter = [0u8; 2];
    let spread =
        crate::random::fill(&mut jitter).map_or(0, |()| u64::from(u16::from_le_bytes(jitter)));
    Some(Duration::from_micros(base + spread % base))
}

impl<B: KvBackend> SessionStore for ServerStore<B> {
    async fn load(&self, ctx: &Context<'_>, cookie_value: &str) -> Result<Option<Loaded>, Error> {
        let Some(key) = self.key_of(ctx.config, cookie_value) else {
            tracing::debug!(
                target: "http_session",
                len = cookie_value.len(),
                "session cookie is not an id of this store; starting a fresh session"
            );
            return Ok(None);
        };
        let found = if ctx.wants_remaining {
            self.backend.get_with_remaining(&key).await?
        } else {
            self.backend
                .get(&key)
                .await?
                .map(|record| (record, Remaining::Unknown))
        };
        match found {
            Some((record, remaining)) => Ok(Some(Loaded {
                identity: Some(cookie_value.to_owned()),
                record,
                remaining,
                key: Some(key),
            })),
            None => {
                tracing::debug!(target: "http_session", "unknown or expired session id; starting a fresh session");
                Ok(None)
            }
        }
    }

    async fn save(&self, ctx: &Context<'_>, request: SaveRequest<'_>) -> Result<Saved, Error> {
        let config = ctx.config;
        let users = request.users;
        // A deletion wins over every concurrent save: a request that loaded
        // the record before this point finds it missing and writes nothing.
        // The index entry goes after the record, so a crash in between
        // leaves a stale entry, never an unlisted session.
        for old in request.discarded {
            if let Some(key) = self.key_of(config, old) {
                self.backend.delete(&key).await?;
                self.leave(config, users.loaded, &key).await?;
            }
        }
        let (id, generated) = match request.identity {
            Some(id) => (id.to_owned(), false),
            None => (self.new_id()?, true),
        };
        // The key the load built, for the record it loaded.
        let known = request.key.filter(|_| request.origin.is_some());
        let Some(key) = known
            .map(Cow::Borrowed)
            .or_else(|| self.key_of(config, &id).map(Cow::Owned))
        else {
            return Err(Error::new(ErrorKind::Config)
                .detail("session identity is not an id in this store's format"));
        };
        if request.ttl == Some(0) {
            // Expires at once: nothing to keep (and Redis rejects `EX 0`).
            self.backend.delete(&key).await?;
            self.leave(config, users.loaded.or(users.current), &key)
                .await?;
            return Ok(if request.empty {
                Saved::Remove
            } else {
                Saved::Cookie(id)
            });
        }
        if request.origin.is_none() && request.empty {
            return Ok(Saved::Remove);
        }
        match request.origin {
            None => {
                let record = self.encode_checked(ctx, request.record, request.empty)?;
                let key = key.into_owned();
                self.save_new(ctx, &request, &record, id, key, generated)
                    .await
            }
            Some(origin) => self.save_loaded(ctx, &request, origin, id, &key).await,
        }
    }

    async fn user_sessions(
        &self,
        ctx: &Context<'_>,
        user: &str,
        current: Option<&str>,
    ) -> Result<Vec<UserSession>, Error> {
        let index = index_key(ctx.config, user)?;
        let current = current.and_then(|id| self.key_of(ctx.config, id));
        let mut sessions = Vec::new();
        for key in self.backend.index_members(&index).await? {
            let found = self.backend.get_with_remaining(&key).await?;
            // Expired, deleted, or rewritten without this user (a Python
            // write, a rebinding): the entry is stale.
            let bound = found
                .as_ref()
                .is_some_and(|(record, _)| record.value.user(ctx.codec).is_some_and(|u| u == user));
            match found {
                Some((record, remaining)) if bound => sessions.push(UserSession {
                    current: current.as_deref() == Some(key.as_str()),
                    key,
                    record,
                    remaining,
                }),
                _ => self.backend.index_remove(&index, &key).await?,
            }
        }
        Ok(sessions)
    }

    async fn revoke(
        &self,
        ctx: &Context<'_>,
        user: &str,
        which: Revoke<'_>,
    ) -> Result<usize, Error> {
        let index = index_key(ctx.config, user)?;
        let (mut revoked, mut failure) = (0, None);
        for key in self.backend.index_members(&index).await? {
            let digest = sha256_hex(&key);
            let chosen = match which {
                Revoke::All { except } => except != Some(digest.as_str()),
                Revoke::One(wanted) => wanted == digest,
            };
            if !chosen {
                continue;
            }
            match self.revoke_one(ctx, &index, user, &key).await {
                Ok(ended) => revoked += usize::from(ended),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(revoked),
        }
    }

    async fn touch(&self, ctx: &Context<'_>, identity: &str, ttl: u64) -> Result<Touched, Error> {
        let Some(key) = self.key_of(ctx.config, identity) else {
            return Ok(Touched::Gone);
        };
        Ok(if self.backend.touch(&key, ttl).await? {
            Touched::Done
        } else {
            Touched::Gone
        })
    }

    fn is_server_store(&self) -> bool {
        true
    }
}

/// The answer when the record was deleted (logout, renew, expiry) after
/// this request loaded it: nothing is written back, and the client's
/// cookie is removed.
fn dropped() -> Saved {
    tracing::info!(
        target: "http_session",
        "session record was deleted by a concurrent request; this request's changes are dropped"
    );
    Saved::Remove
}

/// Applies this request's changes to the record the store holds now
/// (`current`), instead of to the copy it loaded (`origin`). Keys the
/// request did not write keep what `current` holds; a key it wrote takes
/// its value (the later writer wins). `None` when `current` is no longer a
/// session record (aiohttp-session deletes by writing `{}`): the save is
/// dropped. In strict mode, a key the request read that changed since
/// `origin` (which a strict-mode job always keeps) is a
/// [`ErrorKind::Conflict`].
fn rebase(
    codec: &dyn Codec,
    origin: Option<&Stored>,
    current: &Stored,
    ours: &SharedRecord,
    changes: &Changes,
) -> Result<Option<SharedRecord>, Error> {
    let Ok(Some(Opened {
        created: current_created,
        session,
        ..
    })) = current.value.open(codec)
    else {
        return Ok(None);
    };
    if let Some(reads) = &changes.reads {
        let loaded = origin.and_then(|origin| origin.value.open(codec).ok().flatten());
        let empty = Map::new();
        let loaded = loaded.as_ref().map_or(&empty, |opened| &*opened.session);
        if read_changed(reads, loaded, &session) {
            return Err(Error::new(ErrorKind::Conflict));
        }
    }
    // This request's own `created`, and its whole map when it replaced the
    // map.
    let created = if changes.replaced || !changes.writes.is_empty() {
        ours.created.clone()
    } else {
        current_created.unwrap_or_else(|| ours.created.clone())
    };
    let session = if changes.replaced {
        Arc::clone(&ours.session)
    } else {
        let mut session = Arc::unwrap_or_clone(session);
        for key in &changes.writes {
            match ours.session.get(key) {
                Some(value) => {
                    session.insert(key.clone(), value.clone());
                }
                None => {
                    session.shift_remove(key);
                }
            }
        }
        Arc::new(session)
    };
    Ok(Some(SharedRecord {
        created,
        session,
        meta: ours.meta.clone(),
    }))
}

/// Whether a key in `reads` holds something else in `current` than it did
/// in `loaded`.
fn read_changed(
    reads: &ReadSet,
    loaded: &Map<String, Value>,
    current: &Map<String, Value>,
) -> bool {
    match reads {
        ReadSet::All => loaded != current,
        ReadSet::Keys(keys) => keys.iter().any(|key| loaded.get(key) != current.get(key)),
    }
}

impl<B: fmt::Debug> fmt::Debug for ServerStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerStore")
            .field("backend", &self.backend)
            .field("key_factory", &self.key_factory.as_ref().map(|_| "custom"))
            .field("max_record_size", &self.max_record_size)
            .field("hashed_ids", &self.hashed_ids)
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
    fn default_ids_are_32_lowercase_hex() {
        assert!(is_default_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_default_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_default_id("0123456789abcdef0123456789abcde"));
        assert!(!is_default_id("0123456789abcdef0123456789abcdef0"));
        assert!(!is_default_id("g123456789abcdef0123456789abcdef"));
        assert!(!is_default_id(""));
    }

    #[test]
    fn hashed_keys_are_the_sha256_of_the_id() {
        // The SHA-256 test vector of "abc".
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
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
