//! Concurrent saves of one session in this process, combined.
//!
//! A save of a loaded record is a compare-and-set: it fails when another
//! save of the same session landed between this request's read and its
//! write, and is then merged and tried again. Between two processes that is
//! the price of sharing a store. Between requests of one process it is
//! avoidable, and costly on a remote store where every round is a round
//! trip: 32 parallel requests of one session would queue their rounds one
//! after the other.
//!
//! So the saves of one session in this process form a queue. The first
//! save to arrive leads: it writes its own changes with one
//! compare-and-set. Saves that arrive meanwhile queue behind it. When its
//! write is done the leader hands the lead to the first of them, with the
//! others and with what it wrote; that save applies its own changes and
//! theirs, in arrival order, onto that record, writes the result with one
//! compare-and-set (which finds the record as expected unless another
//! process wrote), answers each of them with its own outcome (written,
//! dropped because the session was deleted before it, or its own error: a
//! strict-mode conflict, a record too large), and hands the lead on in
//! turn. No save waits for more than the batch before its own, and under
//! 32 parallel writers of one session a save costs a share of one round
//! trip instead of several.
//!
//! If a leader is cancelled (its client went away), the saves it held are
//! handed back: each waiting save finds its reply closed and enters again,
//! one of them as the new leader.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

const SHARDS: usize = 16;

/// The hash of the keys being saved: foldhash, seeded at random per
/// combiner. The keys are store keys of records this process loaded or
/// created (ids it drew), and a map holds only the saves running at one
/// moment, so a fast hash is enough; the same hasher picks the shard.
type Hasher = foldhash::fast::RandomState;

/// Per key with a leader: the saves waiting for it.
type Queues<J, R> = HashMap<Arc<str>, Vec<(J, Reply<R>)>, Hasher>;

/// The sessions being saved right now. Cheap to clone (one shared set).
pub(crate) struct Combiner<J, R> {
    shared: Arc<Shared<J, R>>,
}

struct Shared<J, R> {
    hasher: Hasher,
    shards: [Mutex<Queues<J, R>>; SHARDS],
}

impl<J, R> Clone for Combiner<J, R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<J, R> Default for Combiner<J, R> {
    fn default() -> Self {
        let hasher = Hasher::default();
        Self {
            shared: Arc::new(Shared {
                shards: std::array::from_fn(|_| Mutex::new(HashMap::with_hasher(hasher.clone()))),
                hasher,
            }),
        }
    }
}

/// What a save is, once it entered: the leader of its session's saves, or
/// a save that waits for the leader to carry it out.
pub(crate) enum Role<J, R> {
    Lead(Lead<J, R>),
    Wait(Waiting<R>),
}

impl<J, R> Combiner<J, R> {
    /// The shard of `key`, from bits of the hash its shard's map uses that
    /// the map itself does not: its buckets come from the low bits, and
    /// hashbrown's tags from the top seven.
    fn shard_of(&self, key: &str) -> usize {
        let middle = (self.shared.hasher.hash_one(key) >> 32) % SHARDS as u64;
        usize::try_from(middle).unwrap_or(0)
    }

    fn queues(&self, shard: usize) -> MutexGuard<'_, Queues<J, R>> {
        self.shared.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters a save of `key`: it leads when no other save of `key` runs,
    /// and otherwise queues `job` for the leader (and gets it back as the
    /// leader's job when the leader is gone, see [`Waiting`]).
    pub(crate) fn enter(&self, key: &str, job: impl FnOnce() -> J) -> Role<J, R> {
        let shard = self.shard_of(key);
        let mut queues = self.queues(shard);
        if let Some(queue) = queues.get_mut(key) {
            let slot = Arc::new(Mutex::new(Slot::default()));
            queue.push((
                job(),
                Reply {
                    slot: Arc::clone(&slot),
                },
            ));
            return Role::Wait(Waiting { slot });
        }
        // One allocation for the key, shared with the lead.
        let key: Arc<str> = key.into();
        queues.insert(Arc::clone(&key), Vec::new());
        drop(queues);
        Role::Lead(Lead {
            combiner: self.clone(),
            shard,
            key,
            ended: false,
        })
    }
}

/// The leader's claim on its key. While it lives, other saves of the key
/// queue behind it; dropping it ends the lead, and hands back what queued
/// (their replies close, so they enter again).
pub(crate) struct Lead<J, R> {
    combiner: Combiner<J, R>,
    shard: usize,
    key: Arc<str>,
    /// next_batch found the queue empty and freed the key (which another
    /// save may lead by now).
    ended: bool,
}

impl<J, R> Lead<J, R> {
    /// Everything queued so far; empty means that the lead is over (the
    /// next save of the key leads). A lead that got saves is handed on
    /// (sent to one of them) or dropped.
    pub(crate) fn next_batch(&mut self) -> Vec<(J, Reply<R>)> {
        let mut queues = self.combiner.queues(self.shard);
        match queues.get_mut(&*self.key) {
            Some(queue) if !queue.is_empty() => mem::take(queue),
            _ => {
                queues.remove(&*self.key);
                self.ended = true;
                Vec::new()
            }
        }
    }
}

impl<J, R> Drop for Lead<J, R> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Cancelled: the key is free, and saves still queued see their
        // replies close.
        let queued = self.combiner.queues(self.shard).remove(&*self.key);
        drop(queued);
    }
}

struct Slot<R> {
    outcome: Option<R>,
    waker: Option<Waker>,
    /// The reply was dropped without an outcome.
    closed: bool,
}

impl<R> Default for Slot<R> {
    fn default() -> Self {
        Self {
            outcome: None,
            waker: None,
            closed: false,
        }
    }
}

/// Where the leader sends a queued save its outcome.
pub(crate) struct Reply<R> {
    slot: Arc<Mutex<Slot<R>>>,
}

impl<R> Reply<R> {
    pub(crate) fn send(self, outcome: R) {
        let waker = {
            let mut slot = lock(&self.slot);
            slot.outcome = Some(outcome);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        // Dropped with its outcome set: not closed.
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = lock(&self.slot);
            if slot.outcome.is_some() {
                return;
            }
            slot.closed = true;
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A queued save's wait for its outcome: `Some` from the leader, `None`
/// when the leader was cancelled before it carried the save out.
pub(crate) struct Waiting<R> {
    slot: Arc<Mutex<Slot<R>>>,
}

impl<R> Future for Waiting<R> {
    type Output = Option<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<R>> {
        let mut slot = lock(&self.slot);
        if let Some(outcome) = slot.outcome.take() {
            return Poll::Ready(Some(outcome));
        }
        if slot.closed {
            return Poll::Ready(None);
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn lock<R>(slot: &Mutex<Slot<R>>) -> MutexGuard<'_, Slot<R>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    fn poll<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    fn held<J, R>(combiner: &Combiner<J, R>) -> usize {
        (0..SHARDS).map(|shard| combiner.queues(shard).len()).sum()
    }

    #[test]
    fn the_first_save_leads_and_takes_what_queued_meanwhile() {
        let combiner: Combiner<u32, &str> = Combiner::default();
        let Role::Lead(mut lead) = combiner.enter("a", || 1) else {
            panic!("the first save leads")
        };
        // Another key has its own leader.
        assert!(matches!(combiner.enter("b", || 9), Role::Lead(_)));
        let (Role::Wait(second), Role::Wait(third)) =
            (combiner.enter("a", || 2), combiner.enter("a", || 3))
        else {
            panic!("later saves of the key wait")
        };
        let batch = lead.next_batch();
        assert_eq!(
            batch.iter().map(|(job, _)| *job).collect::<Vec<_>>(),
            [2, 3]
        );
        let mut second = pin!(second);
        assert!(poll(second.as_mut()).is_pending());
        let mut replies = batch.into_iter().map(|(_, reply)| reply);
        replies.next().unwrap().send("two");
        assert_eq!(poll(second.as_mut()), Poll::Ready(Some("two")));
        // A reply dropped unsent closes: that save enters again.
        drop(replies);
        assert_eq!(poll(pin!(third)), Poll::Ready(None));
        // Nothing queued: the lead ends and the key is free, also for a
        // new leader before the old lead is dropped.
        assert!(lead.next_batch().is_empty());
        assert_eq!(held(&combiner), 0);
        let Role::Lead(_next) = combiner.enter("a", || 4) else {
            panic!("a free key is led again")
        };
        drop(lead);
        assert!(matches!(combiner.enter("a", || 5), Role::Wait(_)));
    }

    #[test]
    fn a_cancelled_leader_hands_back_what_queued() {
        let combiner: Combiner<u32, ()> = Combiner::default();
        let Role::Lead(lead) = combiner.enter("a", || 1) else {
            panic!("the first save leads")
        };
        let Role::Wait(waiting) = combiner.enter("a", || 2) else {
            panic!("the second waits")
        };
        drop(lead);
        assert_eq!(poll(pin!(waiting)), Poll::Ready(None));
        assert_eq!(held(&combiner), 0);
        assert!(matches!(combiner.enter("a", || 3), Role::Lead(_)));
    }
}
