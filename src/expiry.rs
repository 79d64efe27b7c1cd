//! Whether a loaded session is still alive, and how long a saved one may
//! live: every expiry rule, once, for every store.
//!
//! - aiohttp-session's rule: a session whose `created` (its last
//!   modification) is more than the storage `max_age` ago loads empty and
//!   not new, keeping its identity ([`Verdict::AgedOut`]).
//! - This crate's rules give a fresh session ([`Verdict::Expired`]): a
//!   timestamp further in the future than the allowed clock skew; the
//!   absolute lifetime since the session's first creation; the idle timeout
//!   since its last write or touch; the session's own (shorter) `max_age`.

use serde_json::Number;

use crate::record::Meta;

/// The default clock skew allowed for a timestamp from the future (the
/// `_MAX_CLOCK_SKEW` of Python's `cryptography`, which Fernet applies).
pub(crate) const DEFAULT_SKEW: u64 = 60;

/// The expiry settings of a manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// The storage `max_age` (aiohttp-session's rule).
    pub(crate) max_age: Option<u64>,
    pub(crate) idle_timeout: Option<u64>,
    pub(crate) absolute_lifetime: Option<u64>,
    /// The least time between two refreshes of a rolling session.
    pub(crate) rolling: Option<u64>,
    pub(crate) skew: u64,
}

/// What the rules say of a loaded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Alive,
    /// Older than the storage `max_age` by aiohttp-session's rule.
    AgedOut,
    /// Expired by one of this crate's rules: a fresh session.
    Expired(Reason),
}

/// Why a session expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    FromTheFuture,
    AbsoluteLifetime,
    IdleTimeout,
    SessionMaxAge,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::FromTheFuture => "timestamp in the future",
            Reason::AbsoluteLifetime => "absolute lifetime passed",
            Reason::IdleTimeout => "idle timeout passed",
            Reason::SessionMaxAge => "the session's max_age passed",
        }
    }
}

/// A record's `created` as whole seconds, when it is a positive number.
#[allow(
    clippy::cast_possible_truncation,
    reason = "float-to-int `as` saturates and drops the fraction, as intended"
)]
pub(crate) fn created_secs(created: Option<&Number>) -> Option<u64> {
    let created = created?;
    created.as_u64().or_else(|| {
        created
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

impl Policy {
    /// No rule but the storage `max_age`.
    pub(crate) fn new(max_age: Option<u64>) -> Self {
        Self {
            max_age,
            idle_timeout: None,
            absolute_lifetime: None,
            rolling: None,
            skew: DEFAULT_SKEW,
        }
    }

    /// Whether the rules that need [`Meta`] are on (so saves write it).
    pub(crate) fn needs_start(&self) -> bool {
        self.absolute_lifetime.is_some()
    }

    pub(crate) fn needs_last(&self) -> bool {
        self.idle_timeout.is_some() || self.rolling.is_some()
    }

    /// The verdict on a record with `created` and `meta`, loaded at `now`.
    /// `idle_by_store`: the store itself expires idle records (a server
    /// store of a rolling session, whose touches refresh the store's TTL
    /// but not the record), so the record's `last` is not checked.
    pub(crate) fn check(
        &self,
        created: Option<&Number>,
        meta: Option<&Meta>,
        now: u64,
        idle_by_store: bool,
    ) -> Verdict {
        let created_at = created_secs(created).filter(|c| *c > 0);
        let start = meta.and_then(|m| m.start).or(created_at);
        let last = meta.and_then(|m| m.last).or(created_at);
        let future = |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(self.skew));
        if future(created_at) || future(start) || future(last) {
            return Verdict::Expired(Reason::FromTheFuture);
        }
        let passed = |from: Option<u64>, limit: Option<u64>| match (from, limit) {
            (Some(from), Some(limit)) => now.saturating_sub(from) > limit,
            // Nothing to measure from: as aiohttp-session counts a missing
            // `created`, the age is "now", beyond any limit.
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if passed(start, self.absolute_lifetime) {
            return Verdict::Expired(Reason::AbsoluteLifetime);
        }
        if !idle_by_store && passed(last, self.idle_timeout) {
            return Verdict::Expired(Reason::IdleTimeout);
        }
        // The session's own max_age, where it is shorter than the storage's
        // (a longer one cannot outlive the storage rule below, as in
        // aiohttp-session, which loads with the storage max_age).
        let own = meta.and_then(|m| m.max_age).flatten();
        if let Some(own) = own.filter(|own| self.max_age.is_none_or(|storage| *own < storage)) {
            if passed(created_at, Some(own)) {
                return Verdict::Expired(Reason::SessionMaxAge);
            }
        }
        if let Some(limit) = self.max_age {
            // aiohttp-session: age = now - created, or now when `created` is
            // missing or 0; strictly greater than max_age.
            let age = created
                .and_then(Number::as_f64)
                .filter(|c| *c != 0.0)
                .map_or(now as f64, |c| now as f64 - c);
            if age > limit as f64 {
                return Verdict::AgedOut;
            }
        }
        Verdict::Alive
    }

    /// How long a session saved at `now` may live: the store's TTL and the
    /// cookie's `Max-Age`. The session's own `max_age` (as aiohttp-session
    /// sends it), capped by the idle timeout and by what is left of the
    /// absolute lifetime since `start`. `None`: no limit.
    pub(crate) fn lifetime(&self, own_max_age: Option<u64>, start: u64, now: u64) -> Option<u64> {
        let left = self
            .absolute_lifetime
            .map(|limit| start.saturating_add(limit).saturating_sub(now));
        [own_max_age, self.idle_timeout, left]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn policy() -> Policy {
        Policy {
            max_age: None,
            idle_timeout: None,
            absolute_lifetime: None,
            rolling: None,
            skew: DEFAULT_SKEW,
        }
    }

    fn meta(start: Option<u64>, last: Option<u64>, max_age: Option<Option<u64>>) -> Meta {
        Meta {
            start,
            last,
            max_age,
            user: None,
        }
    }

    #[test]
    fn aiohttp_rule_ages_out_strictly_after_max_age() {
        let p = Policy {
            max_age: Some(100),
            ..policy()
        };
        let at = |c: u64| Number::from(c);
        assert_eq!(
            p.check(Some(&at(NOW - 100)), None, NOW, false),
            Verdict::Alive
        );
        assert_eq!(
            p.check(Some(&at(NOW - 101)), None, NOW, false),
            Verdict::AgedOut
        );
        assert_eq!(p.check(Some(&at(0)), None, NOW, false), Verdict::AgedOut);
        assert_eq!(p.check(None, None, NOW, false), Verdict::AgedOut);
        assert_eq!(policy().check(None, None, NOW, false), Verdict::Alive);
    }

    #[test]
    fn timestamps_from_the_future_beyond_the_skew_expire() {
        let p = policy();
        let at = Number::from(NOW + 60);
        assert_eq!(p.check(Some(&at), None, NOW, false), Verdict::Alive);
        let at = Number::from(NOW + 61);
        assert_eq!(
            p.check(Some(&at), None, NOW, false),
            Verdict::Expired(Reason::FromTheFuture)
        );
        let created = Number::from(NOW);
        let m = meta(Some(NOW + 3600), None, None);
        assert_eq!(
            p.check(Some(&created), Some(&m), NOW, false),
            Verdict::Expired(Reason::FromTheFuture)
        );
        let float = serde_json::from_str::<Number>("1700003600.5").unwrap();
        assert_eq!(
            p.check(Some(&float), None, NOW, false),
            Verdict::Expired(Reason::FromTheFuture)
        );
    }

    #[test]
    fn absolute_and_idle_limits() {
        let p = Policy {
            idle_timeout: Some(600),
            absolute_lifetime: Some(3600),
            ..policy()
        };
        let created = Number::from(NOW - 10);
        let fresh = meta(Some(NOW - 3600), Some(NOW - 600), None);
        assert_eq!(
            p.check(Some(&created), Some(&fresh), NOW, false),
            Verdict::Alive
        );
        let old = meta(Some(NOW - 3601), Some(NOW - 10), None);
        assert_eq!(
            p.check(Some(&created), Some(&old), NOW, false),
            Verdict::Expired(Reason::AbsoluteLifetime)
        );
        let idle = meta(Some(NOW - 100), Some(NOW - 601), None);
        assert_eq!(
            p.check(Some(&created), Some(&idle), NOW, false),
            Verdict::Expired(Reason::IdleTimeout)
        );
        // The store enforces idleness itself for a rolling server session.
        assert_eq!(
            p.check(Some(&created), Some(&idle), NOW, true),
            Verdict::Alive
        );
        // Without Meta (a record Python wrote), both run from `created`.
        let python = Number::from(NOW - 601);
        assert_eq!(
            p.check(Some(&python), None, NOW, false),
            Verdict::Expired(Reason::IdleTimeout)
        );
    }

    #[test]
    fn a_shorter_own_max_age_expires_the_session() {
        let p = Policy {
            max_age: Some(3600),
            ..policy()
        };
        let created = Number::from(NOW - 301);
        let sudo = meta(None, None, Some(Some(300)));
        assert_eq!(
            p.check(Some(&created), Some(&sudo), NOW, false),
            Verdict::Expired(Reason::SessionMaxAge)
        );
        // A longer one is capped by the storage rule.
        let long = meta(None, None, Some(Some(86_400)));
        let old = Number::from(NOW - 3601);
        assert_eq!(
            p.check(Some(&old), Some(&long), NOW, false),
            Verdict::AgedOut
        );
        // Without a storage max_age the own one is the limit.
        let created = Number::from(NOW - 301);
        assert_eq!(
            policy().check(Some(&created), Some(&sudo), NOW, false),
            Verdict::Expired(Reason::SessionMaxAge)
        );
    }

    #[test]
    fn lifetime_is_the_least_limit() {
        let p = Policy {
            idle_timeout: Some(600),
            absolute_lifetime: Some(3600),
            ..policy()
        };
        assert_eq!(p.lifetime(Some(7200), NOW, NOW), Some(600));
        assert_eq!(p.lifetime(Some(60), NOW, NOW), Some(60));
        assert_eq!(p.lifetime(None, NOW - 3500, NOW), Some(100));
        assert_eq!(p.lifetime(None, NOW - 4000, NOW), Some(0));
        assert_eq!(policy().lifetime(None, NOW, NOW), None);
        assert_eq!(policy().lifetime(Some(5), NOW, NOW), Some(5));
    }
}
