//! The in-memory backend: the embedded default, for one process.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::record::allocation;
use crate::stores::{Expect, KvBackend, Payload, Put, Remaining, ServerStore, Stored, Write};

/// Sessions kept in this process's memory.
///
/// Records expire after their TTL (the session's `max_age` or idle timeout)
/// and expired records are purged as the store is used. The store is
/// bounded: beyond its [capacity](MemoryBackend::with_capacity) (by default
/// [`Capacity::DEFAULT`], 64 MiB of records) it evicts the least recently
/// used sessions, with a `tracing` warning, so a flood of new sessions
/// cannot grow the process without limit. Set a `max_age` or an idle
/// timeout on the manager all the same, so idle sessions go by themselves.
/// Sessions are lost when the process exits and are not shared between
/// processes; use Redis or Memcached for that.
pub type MemoryStore = ServerStore<MemoryBackend>;

impl MemoryStore {
    /// An empty in-memory store with the default capacity.
    pub fn memory() -> Self {
        ServerStore::new(MemoryBackend::default())
    }
}

/// How much a [`MemoryBackend`] holds before it evicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    /// At most this many sessions.
    Sessions(usize),
    /// At most this many bytes of records, counted as the heap they take:
    /// each counts its key, its value (the heap of the decoded record,
    /// [`SharedRecord::heap_size`], or of its bytes) and
    /// [`Capacity::ENTRY_OVERHEAD`] for the bookkeeping around them. The
    /// process's resident memory for a full store is close to this figure
    /// plus the allocator's free lists (BENCHMARKS.md, memory check).
    ///
    /// [`SharedRecord::heap_size`]: crate::SharedRecord::heap_size
    Bytes(usize),
}

impl Capacity {
    /// The default: 64 MiB of records. A record is held decoded, about 1 KiB
    /// for a small session (a counter and a name: 1,024 bytes accounted,
    /// 905 resident in `tests/heap_size.rs`), so about 65,000 such sessions.
    pub const DEFAULT: Capacity = Capacity::Bytes(64 * 1024 * 1024);

    /// What one record costs beyond its key and value (its slot in the
    /// shard's recency list, its index entry and the tables' spare room),
    /// as counted against [`Capacity::Bytes`]. `tests/heap_size.rs` checks
    /// the whole count against the resident memory of a full store.
    pub const ENTRY_OVERHEAD: usize = 128;

    /// The share of one shard, in the unit of the variant.
    fn per_shard(self) -> usize {
        let total = match self {
            Capacity::Sessions(n) | Capacity::Bytes(n) => n,
        };
        total.div_ceil(SHARDS).max(1)
    }
}

struct Entry {
    value: Payload,
    expires: Option<Instant>,
    /// Bumped by every write: the compare-and-set token.
    version: u64,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| now < at)
    }

    /// [`Entry::is_live`] that reads the clock only for an entry that
    /// expires.
    fn is_live_now(&self) -> bool {
        self.expires.is_none_or(|at| Instant::now() < at)
    }
}

/// No slot (the end of the recency list).
const NIL: u32 = u32::MAX;

/// A record and its place in the shard's recency list.
struct Slot {
    key: Arc<str>,
    entry: Entry,
    /// The next more recently used slot.
    newer: u32,
    /// The next less recently used slot.
    older: u32,
}

impl Slot {
    fn cost(&self) -> usize {
        let value = match &self.entry.value {
            Payload::Encoded(bytes) => allocation(bytes.len()),
            Payload::Shared(record) => record.heap_size(),
        };
        allocation(2 * std::mem::size_of::<usize>() + self.key.len())
            + value
            + Capacity::ENTRY_OVERHEAD
    }
}

/// One independently locked part of the store: a map from key to slot, and
/// the slots in a list from most to least recently used.
struct Map {
    index: HashMap<Arc<str>, u32>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
    /// The bytes the records cost, as [`Capacity::Bytes`] counts them.
    bytes: usize,
    /// The next version a write in this shard hands out.
    next_version: u64,
    next_sweep: Instant,
    /// Live entries after the last sweep; a sweep also runs when the map
    /// has grown to twice this, so bursts of short sessions stay bounded.
    live_after_sweep: usize,
}

/// The number of independently locked parts of the map. Each part is
/// swept and grown on its own, so a sweep or a resize stalls only the
/// requests whose keys fall in that part, for 1/16 of the work.
const SHARDS: usize = 16;

/// The shard of `key`: FNV-1a over its bytes. The shard only spreads lock
/// contention; each shard's map keeps std's keyed, DoS-resistant hash.
fn shard_of(key: &str) -> usize {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    usize::try_from(hash).unwrap_or(0) % SHARDS
}

impl Map {
    fn new(now: Instant, every: Duration) -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            bytes: 0,
            next_version: 1,
            next_sweep: now + every,
            live_after_sweep: 0,
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn slot(&self, at: u32) -> Option<&Slot> {
        self.slots.get(at as usize).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, at: u32) -> Option<&mut Slot> {
        self.slots.get_mut(at as usize).and_then(Option::as_mut)
    }

    /// Takes slot `at` out of the recency list.
    fn unlink(&mut self, at: u32) {
        let Some((newer, older)) = self.slot(at).map(|s| (s.newer, s.older)) else {
            return;
        };
        match self.slot_mut(newer) {
            Some(slot) => slot.older = older,
            None => self.newest = older,
        }
        match self.slot_mut(older) {
            Some(slot) => slot.newer = newer,
            None => self.oldest = newer,
        }
    }

    /// Puts slot `at` at the most recent end of the list.
    fn link_newest(&mut self, at: u32) {
        let old_newest = self.newest;
        if let Some(slot) = self.slot_mut(at) {
            slot.newer = NIL;
            slot.older = old_newest;
        }
        match self.slot_mut(old_newest) {
            Some(slot) => slot.newer = at,
            None => self.oldest = at,
        }
        self.newest = at;
    }

    fn mark_used(&mut self, at: u32) {
        if self.newest != at {
            self.unlink(at);
            self.link_newest(at);
        }
    }

    fn remove_at(&mut self, at: u32) -> Option<Slot> {
        self.unlink(at);
        let slot = self.slots.get_mut(at as usize)?.take()?;
        self.index.remove(&*slot.key);
        self.bytes -= slot.cost();
        self.free.push(at);
        Some(slot)
    }

    fn remove(&mut self, key: &str) {
        if let Some(&at) = self.index.get(key) {
            self.remove_at(at);
        }
    }

    /// The live entry under `key`, marked as just used; an expired one is
    /// removed.
    fn live(&mut self, key: &str) -> Option<&Entry> {
        let at = self.live_at(key)?;
        self.entry(at)
    }

    /// The slot of the live entry under `key`, as [`Map::live`] finds it.
    fn live_at(&mut self, key: &str) -> Option<u32> {
        let at = *self.index.get(key)?;
        if !self.slot(at)?.entry.is_live_now() {
            self.remove_at(at);
            return None;
        }
        self.mark_used(at);
        Some(at)
    }

    fn entry(&self, at: u32) -> Option<&Entry> {
        self.slot(at).map(|slot| &slot.entry)
    }

    /// Stores `entry` under `key` as the most recently used record; `known`
    /// is the key's slot when the caller just looked it up.
    fn insert(&mut self, key: &str, known: Option<u32>, entry: Entry) {
        if let Some(at) = known.or_else(|| self.index.get(key).copied()) {
            // An update keeps the stored key: no new allocation for it.
            if let Some(slot) = self.slot_mut(at) {
                let before = slot.cost();
                slot.entry = entry;
                let after = slot.cost();
                self.bytes = self.bytes - before + after;
            }
            self.mark_used(at);
            return;
        }
        let key: Arc<str> = key.into();
        let slot = Slot {
            key: key.clone(),
            entry,
            newer: NIL,
            older: NIL,
        };
        self.bytes += slot.cost();
        let at = match self.free.pop() {
            Some(at) => {
                self.slots[at as usize] = Some(slot);
                at
            }
            None => {
                self.slots.push(Some(slot));
                u32::try_from(self.slots.len() - 1).unwrap_or(NIL)
            }
        };
        self.index.insert(key, at);
        self.link_newest(at);
    }

    fn stored(entry: &Entry) -> Stored {
        Stored {
            value: entry.value.clone(),
            version: Some(entry.version),
        }
    }
}

/// The [`KvBackend`] of [`MemoryStore`].
pub struct MemoryBackend {
    shards: Box<[Mutex<Map>]>,
    /// Per-user indexes: a set of record keys under each index key.
    indexes: Mutex<HashMap<String, HashSet<String>>>,
    sweep_every: Duration,
    capacity: Capacity,
    evictions: AtomicU64,
    /// When the last eviction warning was logged (seconds since `born`).
    warned_at: AtomicU64,
    born: Instant,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::with_sweep_interval(Duration::from_secs(30))
    }
}

impl MemoryBackend {
    /// A backend that purges expired records at least every `every`.
    pub fn with_sweep_interval(every: Duration) -> Self {
        let now = Instant::now();
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Map::new(now, every)))
                .collect(),
            indexes: Mutex::new(HashMap::new()),
            sweep_every: every,
            capacity: Capacity::DEFAULT,
            evictions: AtomicU64::new(0),
            warned_at: AtomicU64::new(u64::MAX),
            born: now,
        }
    }

    /// Sets how much the store holds before it evicts the least recently
    /// used sessions (default [`Capacity::DEFAULT`]). The capacity is split
    /// evenly over the store's 16 shards and enforced per shard.
    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// The capacity.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    /// How many sessions were evicted for capacity so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// The locked part of the map that holds `key`.
    fn lock(&self, key: &str) -> MutexGuard<'_, Map> {
        Self::lock_shard(&self.shards[shard_of(key)])
    }

    fn lock_shard(shard: &Mutex<Map>) -> MutexGuard<'_, Map> {
        // A panic under the lock leaves at worst one record half-written.
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of records held, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| Self::lock_shard(shard).len())
            .sum()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the records cost, as [`Capacity::Bytes`] counts them.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| Self::lock_shard(shard).bytes)
            .sum()
    }

    /// Removes every expired record now and releases spare capacity; the
    /// per-user indexes lose the entries of records that are gone.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        for shard in &*self.shards {
            Self::sweep(&mut Self::lock_shard(shard), now, self.sweep_every);
        }
        let mut indexes = self.indexes();
        indexes.retain(|_, members| {
            members.retain(|key| {
                let map = self.lock(key);
                map.index
                    .get(key.as_str())
                    .and_then(|at| map.slot(*at))
                    .is_some_and(|slot| slot.entry.is_live(now))
            });
            !members.is_empty()
        });
        indexes.shrink_to_fit();
    }

    /// How many entries the per-user indexes hold, over all users.
    pub fn index_entries(&self) -> usize {
        self.indexes().values().map(HashSet::len).sum()
    }

    fn indexes(&self) -> MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.indexes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seconds until `key` expires: `None` if absent, `Some(None)` if it
    /// never expires.
    pub fn ttl(&self, key: &str) -> Option<Option<u64>> {
        let now = Instant::now();
        let map = self.lock(key);
        let entry = map
            .index
            .get(key)
            .and_then(|at| map.slot(*at))
            .map(|slot| &slot.entry)
            .filter(|e| e.is_live(now))?;
        Some(entry.expires.map(|at| {
            let left = at.saturating_duration_since(now);
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        }))
    }

    fn sweep(map: &mut Map, now: Instant, every: Duration) {
        let expired: Vec<u32> = map
            .slots
            .iter()
            .enumerate()
            .filter_map(|(at, slot)| {
                let slot = slot.as_ref()?;
                (!slot.entry.is_live(now)).then(|| u32::try_from(at).unwrap_or(NIL))
            })
            .collect();
        for at in expired {
            map.remove_at(at);
        }
        if map.index.capacity() > 64 && map.index.len() < map.index.capacity() / 4 {
            map.index.shrink_to(map.index.len() * 2);
        }
        if map.free.len() > 64 && map.free.len() > map.slots.len() / 2 {
            Self::compact(map);
        }
        map.live_after_sweep = map.len();
        map.next_sweep = now + every;
    }

    /// Moves the live slots to the front of the slab and frees the rest.
    fn compact(map: &mut Map) {
        let mut order = Vec::with_capacity(map.len());
        let mut at = map.oldest;
        while let Some(slot) = map.slot(at) {
            order.push(at);
            at = slot.newer;
        }
        let mut slots: Vec<Option<Slot>> = order
            .iter()
            .filter_map(|at| map.slots.get_mut(*at as usize).and_then(Option::take))
            .map(Some)
            .collect();
        // `slots` runs from oldest to newest; link them in that order.
        let n = u32::try_from(slots.len()).unwrap_or(NIL);
        for (i, slot) in slots.iter_mut().flatten().enumerate() {
            let i = u32::try_from(i).unwrap_or(NIL);
            slot.older = if i == 0 { NIL } else { i - 1 };
            slot.newer = if i + 1 == n { NIL } else { i + 1 };
        }
        map.index.clear();
        for (i, slot) in slots.iter().flatten().enumerate() {
            map.index
                .insert(slot.key.clone(), u32::try_from(i).unwrap_or(NIL));
        }
        map.oldest = if n == 0 { NIL } else { 0 };
        map.newest = if n == 0 { NIL } else { n - 1 };
        map.slots = slots;
        map.slots.shrink_to_fit();
        map.free = Vec::new();
    }

    fn over_capacity(&self, map: &Map) -> bool {
        match self.capacity {
            Capacity::Sessions(_) => map.len() > self.capacity.per_shard(),
            Capacity::Bytes(_) => map.bytes > self.capacity.per_shard(),
        }
    }

    /// Evicts the least recently used records of a shard over capacity:
    /// expired ones first (a sweep), then the oldest.
    fn make_room(&self, map: &mut Map) {
        if !self.over_capacity(map) {
            return;
        }
        let now = Instant::now();
        if now >= map.next_sweep || map.len() > map.live_after_sweep {
            Self::sweep(map, now, self.sweep_every);
        }
        let mut evicted = 0u64;
        while self.over_capacity(map) && map.oldest != NIL {
            let oldest = map.oldest;
            map.remove_at(oldest);
            evicted += 1;
        }
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
            self.warn_evicting();
        }
    }

    /// At most one warning every 10 seconds, with the running count.
    fn warn_evicting(&self) {
        let now = self.born.elapsed().as_secs();
        let last = self.warned_at.load(Ordering::Relaxed);
        if last != u64::MAX && now < last + 10 {
            return;
        }
        if self
            .warned_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                target: "http_session",
                evicted = self.evictions(),
                capacity = ?self.capacity,
                "memory session store is full: least recently used sessions were evicted"
            );
        }
    }

    /// Stores `value` under `key` in its locked shard.
    fn store(
        &self,
        map: &mut Map,
        key: &str,
        mut known: Option<u32>,
        value: &Payload,
        ttl: Option<u64>,
    ) {
        // The clock is read only when something can expire: a record with a
        // TTL, or a sweep that the map's growth asks for.
        let (now, expires) = match ttl {
            Some(secs) => {
                let now = Instant::now();
                // A TTL beyond what `Instant` can hold never expires.
                (Some(now), now.checked_add(Duration::from_secs(secs)))
            }
            None => (None, None),
        };
        let due = now.is_some_and(|now| now >= map.next_sweep);
        if due || map.len() >= 2 * map.live_after_sweep + 64 {
            Self::sweep(map, now.unwrap_or_else(Instant::now), self.sweep_every);
            // A sweep may have moved the slots.
            known = None;
        }
        let version = map.next_version;
        map.next_version += 1;
        map.insert(
            key,
            known,
            Entry {
                value: value.clone(),
                expires,
                version,
            },
        );
        self.make_room(map);
    }
}

impl KvBackend for MemoryBackend {
    /// Records never leave the process: they are kept decoded and shared.
    const HOLDS_DECODED: bool = true;

    async fn get(&self, key: &str) -> Result<Option<Stored>, Error> {
        Ok(self.lock(key).live(key).map(Map::stored))
    }

    async fn get_with_remaining(&self, key: &str) -> Result<Option<(Stored, Remaining)>, Error> {
        let mut map = self.lock(key);
        Ok(map.live(key).map(|entry| {
            let remaining = match entry.expires {
                None => Remaining::Never,
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    Remaining::Seconds(left.as_secs() + u64::from(left.subsec_nanos() > 0))
                }
            };
            (Map::stored(entry), remaining)
        }))
    }

    async fn put(&self, key: &str, write: Write<'_>, expect: Expect<'_>) -> Result<Put, Error> {
        let mut map = self.lock(key);
        let at = map.live_at(key);
        let held = at.and_then(|at| map.entry(at));
        let matches = match (held, expect) {
            (None, Expect::Absent) => true,
            (None, Expect::Current(_)) => return Ok(Put::Missing),
            (Some(entry), Expect::Absent) => return Ok(Put::Changed(Some(Map::stored(entry)))),
            (Some(entry), Expect::Current(expected)) => match expected.version {
                Some(version) => entry.version == version,
                None => entry.value == expected.value,
            },
        };
        if !matches {
            return Ok(Put::Changed(held.map(Map::stored)));
        }
        match (write, at) {
            (Write::Value { value, ttl }, _) => self.store(&mut map, key, at, value, ttl),
            (Write::Delete, Some(at)) => {
                map.remove_at(at);
            }
            (Write::Delete, None) => {}
        }
        Ok(Put::Done)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.lock(key).remove(key);
        Ok(())
    }

    async fn index_add(&self, index: &str, member: &str, _ttl: Option<u64>) -> Result<(), Error> {
        // The entries live as long as their records: a purge drops the rest.
        self.indexes()
            .entry(index.to_owned())
            .or_default()
            .insert(member.to_owned());
        Ok(())
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), Error> {
        let mut indexes = self.indexes();
        if let Some(members) = indexes.get_mut(index) {
            members.remove(member);
            if members.is_empty() {
                indexes.remove(index);
            }
        }
        Ok(())
    }

    async fn index_members(&self, index: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .indexes()
            .get(index)
            .map(|members| members.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn touch(&self, key: &str, ttl: u64) -> Result<bool, Error> {
        let mut map = self.lock(key);
        if map.live(key).is_none() {
            return Ok(false);
        }
        let expires = Instant::now().checked_add(Duration::from_secs(ttl));
        if let Some(slot) = map.index.get(key).copied().and_then(|at| map.slot_mut(at)) {
            // The value and its version stay: a touch is not a write.
            slot.entry.expires = expires;
        }
        Ok(true)
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("records", &self.len())
            .field("capacity", &self.capacity)
            .field("evictions", &self.evictions())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// The memory backend never waits: poll its futures once.
    fn ready<T>(future: impl Future<Output = T>) -> T {
        match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(value) => value,
            Poll::Pending => panic!("the memory backend never waits"),
        }
    }

    /// An unconditional write, through the compare-and-set.
    fn set(backend: &MemoryBackend, key: &str, value: &[u8], ttl: Option<u64>) {
        let held = ready(backend.get(key)).unwrap();
        let expect = held.as_ref().map_or(Expect::Absent, Expect::Current);
        let value = &Payload::Encoded(value.to_vec());
        let put = ready(backend.put(key, Write::Value { value, ttl }, expect)).unwrap();
        assert!(matches!(put, Put::Done), "{put:?}");
    }

    fn value(backend: &MemoryBackend, key: &str) -> Option<Vec<u8>> {
        ready(backend.get(key))
            .unwrap()
            .map(|stored| stored.value.encoded().unwrap().to_vec())
    }

    #[test]
    fn records_expire_and_are_purged_across_shards() {
        let backend = MemoryBackend::default();
        for i in 0..2000 {
            set(&backend, &format!("short{i}"), b"x", Some(1));
        }
        set(&backend, "forever", b"y", None);
        assert_eq!(backend.len(), 2001);
        assert_eq!(value(&backend, "short7").as_deref(), Some(&b"x"[..]));
        assert_eq!(backend.ttl("forever"), Some(None));
        assert_eq!(backend.ttl("short7"), Some(Some(1)));
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(value(&backend, "short7"), None);
        backend.purge_expired();
        assert_eq!(backend.len(), 1);
        assert_eq!(value(&backend, "forever").as_deref(), Some(&b"y"[..]));
        ready(backend.delete("forever")).unwrap();
        assert!(backend.is_empty());
        assert_eq!(backend.bytes(), 0);
    }

    #[test]
    fn updates_keep_one_record_and_huge_ttls_never_expire() {
        let backend = MemoryBackend::default();
        set(&backend, "k", b"1", None);
        set(&backend, "k", b"2", Some(60));
        assert_eq!(backend.len(), 1);
        assert_eq!(value(&backend, "k").as_deref(), Some(&b"2"[..]));
        assert_eq!(backend.ttl("k"), Some(Some(60)));
        set(&backend, "k", b"3", Some(u64::MAX));
        assert_eq!(backend.ttl("k"), Some(None));
        assert_eq!(value(&backend, "k").as_deref(), Some(&b"3"[..]));
        // A touch changes the expiry, not the value or its version.
        let before = ready(backend.get("k")).unwrap().unwrap();
        assert!(ready(backend.touch("k", 30)).unwrap());
        assert_eq!(backend.ttl("k"), Some(Some(30)));
        assert_eq!(ready(backend.get("k")).unwrap(), Some(before));
        assert!(!ready(backend.touch("missing", 30)).unwrap());
        // The key "k" in an Arc<str>, the one-byte value: 32 bytes each as
        // malloc holds them.
        assert_eq!(backend.bytes(), 32 + 32 + Capacity::ENTRY_OVERHEAD);
    }

    #[test]
    fn compare_and_set_follows_the_version() {
        let backend = MemoryBackend::default();
        let (one, two) = (
            Payload::Encoded(b"1".to_vec()),
            Payload::Encoded(b"2".to_vec()),
        );
        let write = Write::Value {
            value: &one,
            ttl: None,
        };
        assert!(matches!(
            ready(backend.put("k", write, Expect::Absent)).unwrap(),
            Put::Done
        ));
        // An add of an existing key reports what is there.
        let Put::Changed(Some(first)) = ready(backend.put("k", write, Expect::Absent)).unwrap()
        else {
            panic!("add of an existing key must fail")
        };
        assert_eq!(first.value, one);
        let two = Write::Value {
            value: &two,
            ttl: None,
        };
        assert!(matches!(
            ready(backend.put("k", two, Expect::Current(&first))).unwrap(),
            Put::Done
        ));
        // The old version no longer matches, even with the same bytes.
        let Put::Changed(Some(second)) =
            ready(backend.put("k", write, Expect::Current(&first))).unwrap()
        else {
            panic!("a stale version must not match")
        };
        assert_eq!(second.value, Payload::Encoded(b"2".to_vec()));
        assert_ne!(second.version, first.version);
        assert!(matches!(
            ready(backend.put("k", Write::Delete, Expect::Current(&first))).unwrap(),
            Put::Changed(_)
        ));
        assert!(matches!(
            ready(backend.put("k", Write::Delete, Expect::Current(&second))).unwrap(),
            Put::Done
        ));
        // Deleted: a save that expected a record finds it missing.
        assert!(matches!(
            ready(backend.put("k", write, Expect::Current(&second))).unwrap(),
            Put::Missing
        ));
        assert_eq!(value(&backend, "k"), None);
    }

    /// Keys that all land in one shard, so per-shard capacity is visible.
    fn keys_in_shard(shard: usize, n: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("AIOHTTP_SESSION_{i:032x}"))
            .filter(|k| shard_of(k) == shard)
            .take(n)
            .collect()
    }

    #[test]
    fn a_full_store_evicts_the_least_recently_used() {
        // 2 sessions per shard.
        let backend = MemoryBackend::default().with_capacity(Capacity::Sessions(2 * SHARDS));
        let keys = keys_in_shard(3, 4);
        set(&backend, &keys[0], b"a", None);
        set(&backend, &keys[1], b"b", None);
        // Reading keys[0] makes keys[1] the least recently used.
        assert!(value(&backend, &keys[0]).is_some());
        set(&backend, &keys[2], b"c", None);
        assert_eq!(backend.evictions(), 1);
        assert_eq!(value(&backend, &keys[1]), None, "the LRU one goes");
        assert!(value(&backend, &keys[0]).is_some() && value(&backend, &keys[2]).is_some());
        // A touch counts as a use too.
        assert!(ready(backend.touch(&keys[0], 60)).unwrap());
        set(&backend, &keys[3], b"d", None);
        assert_eq!(value(&backend, &keys[2]), None);
        assert_eq!(backend.len(), 2);
        assert_eq!(backend.evictions(), 2);
    }

    #[test]
    fn capacity_in_bytes_bounds_the_store_and_expired_go_first() {
        let per_record = allocation(16 + 48) + allocation(100) + Capacity::ENTRY_OVERHEAD;
        let backend =
            MemoryBackend::default().with_capacity(Capacity::Bytes(SHARDS * per_record * 10));
        for i in 0..10_000 {
            set(
                &backend,
                &format!("AIOHTTP_SESSION_{i:032x}"),
                &[b'x'; 100],
                None,
            );
        }
        assert!(backend.len() <= SHARDS * 10, "{}", backend.len());
        assert!(backend.bytes() <= SHARDS * 10 * per_record);
        assert_eq!(backend.evictions(), 10_000 - backend.len() as u64);

        // Expired records are dropped before live ones are evicted.
        let backend = MemoryBackend::default().with_capacity(Capacity::Sessions(2 * SHARDS));
        let keys = keys_in_shard(5, 3);
        set(&backend, &keys[0], b"live", None);
        set(&backend, &keys[1], b"short", Some(1));
        std::thread::sleep(Duration::from_millis(1100));
        // keys[0] is the least recently used, but keys[1] has expired.
        set(&backend, &keys[2], b"new", None);
        assert_eq!(value(&backend, &keys[0]).as_deref(), Some(&b"live"[..]));
        assert_eq!(backend.evictions(), 0);
    }

    #[test]
    fn sweeps_compact_the_slab_and_keep_the_order() {
        let backend = MemoryBackend::with_sweep_interval(Duration::from_secs(3600))
            .with_capacity(Capacity::Sessions(SHARDS * 1000));
        let keys = keys_in_shard(0, 300);
        for (i, key) in keys.iter().enumerate() {
            let ttl = if i % 3 == 0 { None } else { Some(1) };
            set(&backend, key, b"v", ttl);
        }
        std::thread::sleep(Duration::from_millis(1100));
        backend.purge_expired();
        assert_eq!(backend.len(), 100);
        let map = MemoryBackend::lock_shard(&backend.shards[0]);
        assert_eq!(map.slots.len(), 100, "compacted");
        assert!(map.free.is_empty());
        // The recency list survived, oldest to newest: the insertion order
        // of the survivors, and every index entry points at its slot.
        let mut walked = Vec::new();
        let mut at = map.oldest;
        while let Some(slot) = map.slot(at) {
            assert_eq!(map.index.get(&*slot.key), Some(&at));
            walked.push(slot.key.to_string());
            at = slot.newer;
        }
        let survivors: Vec<String> = keys.iter().step_by(3).cloned().collect();
        assert_eq!(walked, survivors);
    }
}
