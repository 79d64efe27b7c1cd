//! The in-memory backend: the embedded default, for one process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::stores::{KvBackend, ServerStore};

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

impl KvBackend for MemoryBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let mut map = self.lock(key);
        match map.entries.get(key) {
            Some(entry) if entry.is_live_now() => Ok(Some(entry.value.to_vec())),
            Some(_) => {
                map.entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), Error> {
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
        let entry = Entry {
            value: value.into(),
            expires,
        };
        let mut map = self.lock(key);
        let due = now.is_some_and(|now| now >= map.next_sweep);
        if due || map.entries.len() >= 2 * map.live_after_sweep + 64 {
            Self::sweep(&mut map, now.unwrap_or_else(Instant::now), self.sweep_every);
        }
        // An update keeps the stored key: no new allocation for it.
        if let Some(slot) = map.entries.get_mut(key) {
            *slot = entry;
        } else {
            map.entries.insert(key.to_owned(), entry);
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.lock(key).entries.remove(key);
        Ok(())
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

    #[test]
    fn records_expire_and_are_purged_across_shards() {
        let backend = MemoryBackend::default();
        for i in 0..2000 {
            ready(backend.set(&format!("short{i}"), b"x", Some(1))).unwrap();
        }
        ready(backend.set("forever", b"y", None)).unwrap();
        assert_eq!(backend.len(), 2001);
        assert_eq!(
            ready(backend.get("short7")).unwrap().as_deref(),
            Some(&b"x"[..])
        );
        assert_eq!(backend.ttl("forever"), Some(None));
        assert_eq!(backend.ttl("short7"), Some(Some(1)));
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(ready(backend.get("short7")).unwrap(), None);
        backend.purge_expired();
        assert_eq!(backend.len(), 1);
        assert_eq!(
            ready(backend.get("forever")).unwrap().as_deref(),
            Some(&b"y"[..])
        );
        ready(backend.delete("forever")).unwrap();
        assert!(backend.is_empty());
    }

    #[test]
    fn updates_keep_one_record_and_huge_ttls_never_expire() {
        let backend = MemoryBackend::default();
        ready(backend.set("k", b"1", None)).unwrap();
        ready(backend.set("k", b"2", Some(60))).unwrap();
        assert_eq!(backend.len(), 1);
        assert_eq!(ready(backend.get("k")).unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(backend.ttl("k"), Some(Some(60)));
        ready(backend.set("k", b"3", Some(u64::MAX))).unwrap();
        assert_eq!(backend.ttl("k"), Some(None));
        assert_eq!(ready(backend.get("k")).unwrap().as_deref(), Some(&b"3"[..]));
    }
}
