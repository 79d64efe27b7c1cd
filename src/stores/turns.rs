//! Saves of one session take turns within this process.
//!
//! The compare-and-set of a save fails when another save of the same
//! session landed between this request's read and its write. Between two
//! processes that is the price of sharing a store; between two requests of
//! the same process it is avoidable: a save waits for the one before it to
//! finish, so its own compare-and-set loses only to other processes. Under
//! 16 concurrent writers of one session this takes the typical save from
//! many rounds to two (the first finds what the others wrote meanwhile and
//! merges it; the second writes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

const SHARDS: usize = 16;

/// Per key: the gate saves queue on, and how many saves hold or wait for it.
type Gates = HashMap<Box<str>, (Arc<AsyncMutex<()>>, usize)>;

/// The sessions being saved right now, each with the queue of saves
/// waiting for it. Cheap to clone (one shared set).
#[derive(Clone)]
pub(crate) struct Turns {
    shards: Arc<[Mutex<Gates>]>,
}

impl Default for Turns {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

/// A save's turn; the next save of the same session starts when it drops.
pub(crate) struct Turn {
    // Fields drop in this order: the gate opens, then the entry goes.
    _guard: OwnedMutexGuard<()>,
    _entry: Entry,
}

/// One save's claim on its key's gate, counted in the map, so the entry is
/// removed when the last save holding or awaiting it is done (or dropped
/// while it waited).
struct Entry {
    turns: Turns,
    shard: usize,
    key: Box<str>,
}

impl Turns {
    fn shard_of(key: &str) -> usize {
        let hash = key.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
        usize::try_from(hash).unwrap_or(0) % SHARDS
    }

    fn gates(&self, shard: usize) -> MutexGuard<'_, Gates> {
        self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no other save of `key` runs in this process.
    pub(crate) async fn enter(&self, key: &str) -> Turn {
        let shard = Self::shard_of(key);
        let key: Box<str> = key.into();
        let gate = {
            let mut gates = self.gates(shard);
            let (gate, users) = gates.entry(key.clone()).or_default();
            *users += 1;
            gate.clone()
        };
        let entry = Entry {
            turns: self.clone(),
            shard,
            key,
        };
        Turn {
            _guard: gate.lock_owned().await,
            _entry: entry,
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut gates = self.turns.gates(self.shard);
        if let Some((_, users)) = gates.get_mut(&self.key) {
            *users -= 1;
            if *users == 0 {
                gates.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn saves_of_one_key_take_turns_and_leave_nothing_behind() {
        let turns = Turns::default();
        let first = turns.enter("a").await;
        // Another key is not held up.
        let other = turns.enter("b").await;
        let waiting = {
            let turns = turns.clone();
            tokio::spawn(async move {
                let _turn = turns.enter("a").await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
        drop(other);
        let held: usize = (0..SHARDS).map(|shard| turns.gates(shard).len()).sum();
        assert_eq!(held, 0);
    }
}
