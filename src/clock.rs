//! The time source of a [`SessionManager`](crate::SessionManager).

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now, from the system clock.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where "now" comes from: the system clock, or a function given to
/// [`SessionManagerBuilder::clock`](crate::SessionManagerBuilder::clock)
/// (for tests that pin or move time).
#[derive(Clone)]
pub(crate) struct Clock(Option<Arc<dyn Fn() -> u64 + Send + Sync>>);

impl Clock {
    pub(crate) fn system() -> Self {
        Self(None)
    }

    pub(crate) fn custom(now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(now)))
    }

    /// Unix seconds.
    pub(crate) fn now(&self) -> u64 {
        match &self.0 {
            None => unix_now(),
            Some(now) => now(),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(custom)"
        } else {
            "Clock(system)"
        })
    }
}
