//! Who is logged in where: the sessions bound to a user, listed and ended
//! from outside a request ([`SessionManager`]) or from inside one
//! ([`Session`](crate::Session)).
//!
//! A session is bound with [`Session::set_user`](crate::Session::set_user).
//! Server stores keep a per-user index beside the records, in the same
//! backend, written by the same save: the memory store a map, Redis a set
//! `<cookie_name>_user_<id>` (with the absolute lifetime as its TTL when one
//! is set; without one the set has no TTL and its dead entries are pruned
//! when it is listed). Memcached answers [`ErrorKind::Unsupported`]: it may
//! evict any item at any time, the index included, and a "log out
//! everywhere" that silently misses sessions is worse than none. Cookie
//! stores answer it too: a session that lives in the client's cookie cannot
//! be found, let alone ended, by the server.
//!
//! The order of writes keeps every session revocable, also across Redis
//! Cluster slots (the index and the records live on different nodes): a
//! session joins its user's index before its record is first written, and
//! leaves it only after its record is gone, so a crash in between leaves a
//! stale entry (pruned when listed), never a live session that
//! [`SessionManager::revoke_user`] would miss.

use std::fmt;

use crate::error::Error;
use crate::expiry::created_secs;
use crate::manager::SessionManager;
use crate::stores::{Remaining, Revoke};

/// An opaque handle to one session of a user, as
/// [`SessionManager::sessions_of`] lists it: not the cookie value (so a
/// page that shows it cannot leak a usable cookie), but enough to end that
/// session with [`SessionManager::revoke`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionHandle {
    user: String,
    /// SHA-256 (hex) of the session's store key.
    digest: String,
}

impl SessionHandle {
    pub(crate) fn new(user: &str, key: &str) -> Self {
        Self {
            user: user.to_owned(),
            digest: crate::stores::sha256_hex(key),
        }
    }

    /// The user the session is bound to.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The handle as text (64 hex digits), for a form field or a URL; read
    /// back with [`SessionHandle::parse`].
    pub fn as_str(&self) -> &str {
        &self.digest
    }

    /// A handle of `user` from its text form; `None` when `text` is not one.
    pub fn parse(user: &str, text: &str) -> Option<Self> {
        let hex = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| Self {
            user: user.to_owned(),
            digest: text.to_ascii_lowercase(),
        })
    }

    /// The first 8 hex digits, to tell sessions apart on a page.
    pub fn short(&self) -> &str {
        &self.digest[..8]
    }
}

/// Only the short form: the user id is session data.
impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({}…)", self.short())
    }
}

/// One live session of a user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The handle to end it with.
    pub handle: SessionHandle,
    /// Its `created` (aiohttp-session's last modification), Unix seconds.
    pub created: Option<u64>,
    /// Its last write (or rolling refresh), Unix seconds.
    pub last_write: Option<u64>,
    /// When the store expires it, Unix seconds; `None`: never (or the store
    /// cannot tell).
    pub expires: Option<u64>,
    /// Whether it is the session of the request that asked.
    pub current: bool,
}

impl SessionManager {
    /// The live sessions bound to `user`, newest write first. Stale index
    /// entries (expired, deleted or rebound sessions) are pruned on the way.
    ///
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) for cookie
    /// stores and memcached.
    pub async fn sessions_of(&self, user: &str) -> Result<Vec<SessionInfo>, Error> {
        self.list(user, None).await
    }

    /// How many live sessions `user` has (pruning as
    /// [`sessions_of`](Self::sessions_of) does).
    pub async fn count_sessions(&self, user: &str) -> Result<usize, Error> {
        Ok(self.list(user, None).await?.len())
    }

    /// Ends the session of `handle`: its record is deleted (a request of it
    /// in flight cannot write it back) and it leaves its user's index; the
    /// next request with its cookie gets a fresh session. `Ok(false)` when
    /// it was not (or no longer) a live session of that user.
    pub async fn revoke(&self, handle: &SessionHandle) -> Result<bool, Error> {
        let ctx = self.context();
        let which = Revoke::One(handle.as_str());
        Ok(self.store().revoke(&ctx, handle.user(), which).await? > 0)
    }

    /// "Log out everywhere": ends every session of `user`, but `except`
    /// (typically the caller's own: "log out my other devices"). Returns how
    /// many ended. When some sessions cannot be reached (a failed store
    /// node), the others are ended and the error is returned: call again
    /// once the store is back.
    pub async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<usize, Error> {
        let ctx = self.context();
        let except = except
            .filter(|handle| handle.user() == user)
            .map(SessionHandle::as_str);
        self.store()
            .revoke(&ctx, user, Revoke::All { except })
            .await
    }

    /// The sessions of `user`, marking the one of `identity`.
    pub(crate) async fn list(
        &self,
        user: &str,
        identity: Option<&str>,
    ) -> Result<Vec<SessionInfo>, Error> {
        let ctx = self.context();
        let sessions = self.store().user_sessions(&ctx, user, identity).await?;
        let mut listed: Vec<SessionInfo> = sessions
            .into_iter()
            .map(|s| {
                let record = s.record.value.open(ctx.codec).ok().flatten();
                let created = created_secs(record.as_ref().and_then(|r| r.created.as_ref()));
                SessionInfo {
                    handle: SessionHandle::new(user, &s.key),
                    created,
                    last_write: record.and_then(|r| r.meta?.last).or(created),
                    expires: match s.remaining {
                        Remaining::Seconds(left) => Some(ctx.now.saturating_add(left)),
                        Remaining::Never | Remaining::Unknown => None,
                    },
                    current: s.current,
                }
            })
            .collect();
        listed.sort_by_key(|s| std::cmp::Reverse(s.last_write));
        Ok(listed)
    }
}
