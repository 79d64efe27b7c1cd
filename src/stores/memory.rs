//! The in-memory backend: the embedded default, for one process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::stores::{Expect, KvBackend, Put, ServerStore, Stored, Write};

/// Sessions kept in this process's memory.
///
/// Records expire after their TTL (the session's `max_age`) and expired
/// records are purged as the store is used, so memory follows the number of
/// live sessions. Sessions without a `max_age` never expire here: set a
/// `max_age` on the manager when using this store in production.
/// Sessions are lost when the process exits and are not shared between
/// processes; use Redis or Memcached for that.
pub type MemoryStore = ServerStore<MemoryBackend>;

impl MemoryStore {
    /// An empty in-memory store.
    pub fn memory() -> Self {
        ServerStore::new(MemoryBackend::default())
    }
}

struct Entry {
    value: Box<[u8]>,
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

struct Map {
    entries: HashMap<String, Entry>,
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

/// The [`KvBackend`] of [`MemoryStore`].
pub struct MemoryBackend {
    shards: Box<[Mutex<Map>]>,
    sweep_every: Duration,
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
                .map(|_| {
                    Mutex::new(Map {
                        entries: HashMap::new(),
                        next_version: 1,
                        next_sweep: now + every,
                        live_after_sweep: 0,
                    })
                })
                .collect(),
            sweep_every: every,
        }
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
            .map(|shard| Self::lock_shard(shard).entries.len())
            .sum()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired record now and releases spare capacity.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        for shard in &*self.shards {
            Self::sweep(&mut Self::lock_shard(shard), now, self.sweep_every);
        }
    }

    /// Seconds until `key` expires: `None` if absent, `Some(None)` if it
    /// never expires.
    pub fn ttl(&self, key: &str) -> Option<Option<u64>> {
        let now = Instant::now();
        let map = self.lock(key);
        let entry = map.entries.get(key).filter(|e| e.is_live(now))?;
        Some(entry.expires.map(|at| {
            let left = at.saturating_duration_since(now);
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        }))
    }

    fn sweep(map: &mut Map, now: Instant, every: Duration) {
        map.entries.retain(|_, e| e.is_live(now));
        if map.entries.capacity() > 64 && map.entries.len() < map.entries.capacity() / 4 {
            map.entries.shrink_to(map.entries.len() * 2);
        }
        map.live_after_sweep = map.entries.len();
        map.next_sweep = now + every;
    }
}

impl Map {
    /// The live entry under `key`; an expired one is removed.
    fn live(&mut self, key: &str) -> Option<&Entry> {
        let live = self.entries.get(key).map(Entry::is_live_now)?;
        if !live {
            self.entries.remove(key);
            return None;
        }
        self.entries.get(key)
    }

    fn stored(entry: &Entry) -> Stored {
        Stored {
            value: entry.value.to_vec(),
            version: Some(entry.version),
        }
    }
}

impl MemoryBackend {
    /// Stores `value` under `key` in its locked shard.
    fn store(&self, map: &mut Map, key: &str, value: &[u8], ttl: Option<u64>) {
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
        if due || map.entries.len() >= 2 * map.live_after_sweep + 64 {
            Self::sweep(map, now.unwrap_or_else(Instant::now), self.sweep_every);
        }
        let version = map.next_version;
        map.next_version += 1;
        let entry = Entry {
            value: value.into(),
            expires,
            version,
        };
        // An update keeps the stored key: no new allocation for it.
        if let Some(slot) = map.entries.get_mut(key) {
            *slot = entry;
        } else {
            map.entries.insert(key.to_owned(), entry);
        }
    }
}

impl KvBackend for MemoryBackend {
    async fn get(&self, key: &str) -> Result<Option<Stored>, Error> {
        Ok(self.lock(key).live(key).map(Map::stored))
    }

    async fn put(&self, key: &str, write: Write<'_>, expect: Expect<'_>) -> Result<Put, Error> {
        let mut map = self.lock(key);
        let matches = match (map.live(key), expect) {
            (None, Expect::Absent) => true,
            (None, Expect::Current(_)) => return Ok(Put::Missing),
            (Some(entry), Expect::Absent) => return Ok(Put::Changed(Some(Map::stored(entry)))),
            (Some(entry), Expect::Current(expected)) => match expected.version {
                Some(version) => entry.version == version,
                None => *entry.value == *expected.value,
            },
        };
        if !matches {
            let current = map.live(key).map(Map::stored);
            return Ok(Put::Changed(current));
        }
        match write {
            Write::Value { value, ttl } => self.store(&mut map, key, value, ttl),
            Write::Delete => {
                map.entries.remove(key);
            }
        }
        Ok(Put::Done)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.lock(key).entries.remove(key);
        Ok(())
    }

    async fn touch(&self, key: &str, ttl: u64) -> Result<bool, Error> {
        let mut map = self.lock(key);
        if map.live(key).is_none() {
            return Ok(false);
        }
        let expires = Instant::now().checked_add(Duration::from_secs(ttl));
        if let Some(entry) = map.entries.get_mut(key) {
            // The value and its version stay: a touch is not a write.
            entry.expires = expires;
        }
        Ok(true)
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("records", &self.len())
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
        let put = ready(backend.put(key, Write::Value { value, ttl }, expect)).unwrap();
        assert!(matches!(put, Put::Done), "{put:?}");
    }

    fn value(backend: &MemoryBackend, key: &str) -> Option<Vec<u8>> {
        ready(backend.get(key)).unwrap().map(|stored| stored.value)
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
    }

    #[test]
    fn compare_and_set_follows_the_version() {
        let backend = MemoryBackend::default();
        let write = Write::Value {
            value: b"1",
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
        assert_eq!(first.value, b"1");
        let two = Write::Value {
            value: b"2",
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
        assert_eq!(second.value, b"2");
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
}
