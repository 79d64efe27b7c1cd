//! The Memcached backend (feature `memcached`), over `memcache-async`.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use memcache_async::ascii::Protocol;
use tokio::io::BufWriter;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};

use crate::clock::unix_now;
use crate::error::{Error, ErrorKind};
use crate::stores::{KvBackend, ServerStore};

/// The default time a store operation may take, connecting included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// memcached's default item size limit (`-I 1m`).
const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024;

/// What memcached adds to key and value when it sizes an item (header, CAS,
/// terminators: 59 bytes in memcached 1.6), rounded up.
const ITEM_OVERHEAD: usize = 64;

/// Expiry times above this many seconds are absolute Unix times in
/// memcached's protocol.
const RELATIVE_LIMIT: u64 = 30 * 24 * 3600;

/// Sessions in memcached, laid out as aiohttp-session's `MemcachedStorage`
/// does: the record under `<cookie_name>_<id>` with flags 0, expiring after
/// the session's `max_age` (never when it has none). A `max_age` above 30
/// days is sent as an absolute Unix time, as memcached requires.
///
/// An unreachable or unresponsive server gives [`ErrorKind::Unavailable`]
/// (a 503) within the backend's [timeout](MemcachedBackend::timeout); the
/// next request after the server is back works again, without a restart.
///
/// ```no_run
/// use http_session::{MemcachedStore, SessionManager};
///
/// let sessions = SessionManager::builder(MemcachedStore::memcached("127.0.0.1:11211"))
///     .max_age(3600)
///     .build()?;
/// # Ok::<(), http_session::Error>(())
/// ```
pub type MemcachedStore = ServerStore<MemcachedBackend>;

impl MemcachedStore {
    /// A store on the memcached server at `addr` (`host:port`), with the
    /// default pool size, timeout and item size limit. Nothing is connected
    /// until the first request.
    pub fn memcached(addr: impl Into<String>) -> Self {
        ServerStore::new(MemcachedBackend::new(addr))
    }
}

type Connection = Protocol<BufWriter<TcpStream>>;

/// The [`KvBackend`] of [`MemcachedStore`].
///
/// `memcache-async` drives one connection, so this backend keeps a small
/// pool of them (4 by default), each used by one request at a time; a
/// request takes the first idle one. A connection that fails is closed and
/// reopened by the next request that picks it.
///
/// Notes on the protocol:
/// - `memcache-async` writes with `noreply`, so every write is followed by
///   a `version` command on the same connection: its answer proves the
///   connection alive and the write processed (one round trip per write,
///   and nothing lost silently on a dead connection).
/// - For the same reason memcached cannot report a value too large to
///   store: a record whose item would exceed
///   [`max_item_size`](Self::max_item_size) (default 1 MiB, memcached's
///   `-I` default) is refused here with [`ErrorKind::Store`] before it is
///   sent. Set it to the server's `-I` value if that was changed.
/// - Item flags are not read back (`memcache-async` does not report them):
///   a value written by another client with non-zero flags is handed to the
///   codec like any other, and if it is not a session record the client
///   gets a fresh session (aiohttp-session answers 500).
pub struct MemcachedBackend {
    addr: String,
    connections: Box<[Mutex<Option<Connection>>]>,
    next: AtomicUsize,
    timeout: Duration,
    max_item_size: usize,
}

impl MemcachedBackend {
    /// A backend on the memcached server at `addr` (`host:port`). Nothing
    /// is connected until the first request.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            connections: Self::slots(4),
            next: AtomicUsize::new(0),
            timeout: DEFAULT_TIMEOUT,
            max_item_size: DEFAULT_MAX_ITEM_SIZE,
        }
    }

    fn slots(n: usize) -> Box<[Mutex<Option<Connection>>]> {
        (0..n.max(1)).map(|_| Mutex::new(None)).collect()
    }

    /// Sets the number of connections (default 4, at least 1).
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.connections = Self::slots(connections);
        self
    }

    /// Sets how long one store operation may take, waiting for a free
    /// connection and connecting included (default 3 s). When it passes the
    /// request fails with [`ErrorKind::Unavailable`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the server's item size limit in bytes (memcached's `-I`,
    /// default 1 MiB). Larger records are refused with an error instead of
    /// being silently dropped by the server.
    pub fn max_item_size(mut self, bytes: usize) -> Self {
        self.max_item_size = bytes;
        self
    }

    /// A connection slot: the first idle one, or else the next in turn.
    async fn slot(&self) -> MutexGuard<'_, Option<Connection>> {
        let n = self.connections.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(guard) = self.connections[(start + i) % n].try_lock() {
                return guard;
            }
        }
        self.connections[start].lock().await
    }

    async fn connect(&self) -> Result<Connection, Error> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| Error::store(true, e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::store(true, e))?;
        Ok(Protocol::new(BufWriter::new(stream)))
    }

    async fn call(&self, op: Op<'_>) -> Result<Option<Vec<u8>>, Error> {
        let mut slot = self.slot().await;
        // The connection is taken out of its slot while in use: if the
        // operation fails or is cancelled half-way, it is dropped.
        let (mut conn, reused) = match slot.take() {
            Some(conn) => (conn, true),
            None => (self.connect().await?, false),
        };
        let reply = match op.run(&mut conn).await {
            // An idle connection may have been closed by a server restart;
            // every operation is idempotent, so try once more on a new one.
            Err(e) if reused && !is_server_reply(&e) => {
                conn = self.connect().await?;
                op.run(&mut conn).await
            }
            other => other,
        };
        match reply {
            Ok(value) => {
                *slot = Some(conn);
                Ok(value)
            }
            Err(e) => Err(Error::store(!is_server_reply(&e), e)),
        }
    }

    async fn run(&self, op: Op<'_>) -> Result<Option<Vec<u8>>, Error> {
        match tokio::time::timeout(self.timeout, self.call(op)).await {
            Ok(result) => result,
            Err(elapsed) => Err(Error::store(true, elapsed)),
        }
    }
}

/// One store operation.
#[derive(Clone, Copy)]
enum Op<'a> {
    Get(&'a str),
    Set(&'a str, &'a [u8], u32),
    Delete(&'a str),
}

impl Op<'_> {
    async fn run(self, conn: &mut Connection) -> io::Result<Option<Vec<u8>>> {
        match self {
            Op::Get(key) => match conn.get(key).await {
                Ok(value) => Ok(Some(value)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Op::Set(key, value, exptime) => {
                conn.set(key, value, exptime).await?;
                conn.version().await?;
                Ok(None)
            }
            Op::Delete(key) => {
                conn.delete(key).await?;
                conn.version().await?;
                Ok(None)
            }
        }
    }
}

/// Whether `e` is an error line from the server (`memcache-async` reports
/// those as [`io::ErrorKind::Other`]) or a reply it could not parse, rather
/// than a failed connection.
fn is_server_reply(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::Other | io::ErrorKind::InvalidData)
}

/// memcached's exptime for a TTL, as aiohttp-session computes it: `0`
/// (never) for `None`, seconds up to 30 days, beyond that the absolute
/// Unix time `now + ttl` (saturating at the protocol's 32-bit limit).
pub(crate) fn exptime(ttl: Option<u64>, now: u64) -> u32 {
    let secs = match ttl {
        None => 0,
        Some(ttl) if ttl <= RELATIVE_LIMIT => ttl,
        Some(ttl) => now.saturating_add(ttl),
    };
    u32::try_from(secs).unwrap_or(u32::MAX)
}

impl KvBackend for MemcachedBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.run(Op::Get(key)).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), Error> {
        let size = key.len() + value.len() + ITEM_OVERHEAD;
        if size > self.max_item_size {
            return Err(Error::new(ErrorKind::Store).detail(format!(
                "record of {} bytes exceeds the memcached item size limit of {} bytes",
                value.len(),
                self.max_item_size
            )));
        }
        self.run(Op::Set(key, value, exptime(ttl, unix_now())))
            .await
            .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.run(Op::Delete(key)).await.map(drop)
    }
}

impl fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field("addr", &self.addr)
            .field("pool_size", &self.connections.len())
            .field("timeout", &self.timeout)
            .field("max_item_size", &self.max_item_size)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn thirty_days_and_less_stay_relative() {
        assert_eq!(exptime(Some(1), NOW), 1);
        assert_eq!(exptime(Some(120), NOW), 120);
        assert_eq!(exptime(Some(2_592_000), NOW), 2_592_000);
    }

    #[test]
    fn beyond_thirty_days_is_absolute() {
        assert_eq!(exptime(Some(2_592_001), NOW), 1_702_592_001);
        assert_eq!(exptime(Some(2_678_400), NOW), 1_702_678_400);
        assert_eq!(exptime(Some(3_000_000), NOW), 1_703_000_000);
    }

    #[test]
    fn none_never_expires_and_huge_values_saturate() {
        assert_eq!(exptime(None, NOW), 0);
        assert_eq!(exptime(Some(0), NOW), 0);
        assert_eq!(exptime(Some(u64::MAX), NOW), u32::MAX);
        assert_eq!(exptime(Some(u64::from(u32::MAX)), NOW), u32::MAX);
    }

    #[test]
    fn debug_shows_the_settings() {
        let backend = MemcachedBackend::new("127.0.0.1:1").pool_size(0);
        let text = format!("{backend:?}");
        assert!(text.contains("pool_size: 1"), "{text}");
    }
}
