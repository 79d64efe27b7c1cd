//! The Redis backend (feature `redis`), over `deadpool-redis`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig, FromRedisValue, RedisError};
use deadpool_redis::{Manager, Pool, PoolError, Runtime};

use crate::error::{Error, ErrorKind};
use crate::stores::{KvBackend, ServerStore};

/// The default time a store operation may take, connecting included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Sessions in Redis, laid out as aiohttp-session's `RedisStorage` does:
/// the record under `<cookie_name>_<id>`, written with `SET key value EX
/// max_age` (no `EX` when the session has no `max_age`).
///
/// Only `GET`, `SET` and `DEL` are used, so any Redis from 2.6.12 on works.
/// An unreachable or unresponsive server gives
/// [`ErrorKind::Unavailable`] (a 503) within the backend's
/// [timeout](RedisBackend::timeout); the next request after the server is
/// back works again, without a restart.
///
/// ```no_run
/// use std::time::Duration;
/// use http_session::{RedisBackend, RedisStore, SessionManager};
///
/// let store = RedisStore::new(
///     RedisBackend::from_url("redis://127.0.0.1:6379/")?.timeout(Duration::from_secs(2)),
/// );
/// let sessions = SessionManager::builder(store).max_age(3600).build()?;
/// # Ok::<(), http_session::Error>(())
/// ```
pub type RedisStore = ServerStore<RedisBackend>;

impl RedisStore {
    /// A store on the Redis server at `url` (`redis://host:port/db`), with
    /// the default timeout. Nothing is connected until the first request.
    pub fn redis(url: &str) -> Result<Self, Error> {
        RedisBackend::from_url(url).map(ServerStore::new)
    }
}

/// The [`KvBackend`] of [`RedisStore`].
///
/// Every request goes through one shared multiplexed connection taken from
/// the `deadpool-redis` pool, so a request costs exactly its own commands.
/// (Checking a connection out of a `deadpool-redis` pool sends `UNWATCH`
/// and `PING` each time, tripling the round trips of a request.) The pool
/// is asked for a new connection only after the shared one failed.
pub struct RedisBackend {
    pool: Pool,
    shared: Mutex<Option<Shared>>,
    /// Serializes reconnecting, so an outage does not open one connection
    /// per waiting request.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    timeout: Duration,
}

struct Shared {
    generation: u64,
    conn: MultiplexedConnection,
}

impl RedisBackend {
    /// A backend on the Redis server at `url` (`redis://host:port/db`,
    /// `rediss://` with a TLS feature of `deadpool-redis`). Only the URL is
    /// checked here; nothing is connected until the first request.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        // Timeouts are applied by this backend to whole operations, so the
        // connection's own (500 ms response, 1 s connect) are turned off.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(None)
            .set_response_timeout(None);
        let manager = Manager::new_with_config(url, config)
            .map_err(|e| Error::with_source(ErrorKind::Config, e))?;
        // The pool only hands out replacements for the shared connection.
        let pool = Pool::builder(manager)
            .max_size(1)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::with_source(ErrorKind::Config, e))?;
        Ok(Self::from_pool(pool))
    }

    /// A backend that takes its connection from an existing pool.
    ///
    /// The backend keeps one connection out of the pool for its own use
    /// and takes another only when that one fails.
    pub fn from_pool(pool: Pool) -> Self {
        Self {
            pool,
            shared: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets how long one store operation may take, connecting included
    /// (default 3 s). When it passes the request fails with
    /// [`ErrorKind::Unavailable`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The pool connections are taken from.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    fn slot(&self) -> MutexGuard<'_, Option<Shared>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self) -> Option<(u64, MultiplexedConnection)> {
        self.slot().as_ref().map(|s| (s.generation, s.conn.clone()))
    }

    /// The shared connection, and whether it was opened just now.
    async fn connection(&self) -> Result<(u64, MultiplexedConnection, bool), Error> {
        if let Some((generation, conn)) = self.cached() {
            return Ok((generation, conn, false));
        }
        let _gate = self.connecting.lock().await;
        if let Some((generation, conn)) = self.cached() {
            // Opened by another request while this one waited.
            return Ok((generation, conn, true));
        }
        let conn = self.pool.get().await.map_err(pool_error)?;
        let conn = deadpool_redis::Connection::take(conn);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        *self.slot() = Some(Shared {
            generation,
            conn: conn.clone(),
        });
        Ok((generation, conn, true))
    }

    /// Drops the shared connection if it is still the one of `generation`.
    fn forget(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|s| s.generation == generation) {
            *slot = None;
        }
    }

    /// Runs `cmd`, recording in `used` the connection it runs on.
    async fn query<T: FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        used: &mut Option<u64>,
    ) -> Result<T, Error> {
        let (generation, mut conn, fresh) = self.connection().await?;
        *used = Some(generation);
        match cmd.query_async(&mut conn).await {
            Ok(value) => Ok(value),
            // A connection that sat idle may have been closed by a server
            // restart; the commands are idempotent, so try once more on a
            // new one.
            Err(e) if !fresh && is_unavailable(&e) => {
                self.forget(generation);
                let (generation, mut conn, _) = self.connection().await?;
                *used = Some(generation);
                cmd.query_async(&mut conn)
                    .await
                    .map_err(|e| self.failed(generation, e))
            }
            Err(e) => Err(self.failed(generation, e)),
        }
    }

    fn failed(&self, generation: u64, e: RedisError) -> Error {
        let unavailable = is_unavailable(&e);
        if unavailable {
            self.forget(generation);
        }
        Error::store(unavailable, e)
    }

    async fn run<T: FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, Error> {
        let mut used = None;
        let result = tokio::time::timeout(self.timeout, self.query(&cmd, &mut used)).await;
        match result {
            Ok(result) => result,
            Err(elapsed) => {
                // The connection may be stuck (a frozen server): start afresh.
                if let Some(generation) = used {
                    self.forget(generation);
                }
                Err(Error::store(true, elapsed))
            }
        }
    }
}

/// Whether `e` means the server could not be used at all (so 503), rather
/// than that it answered with an error.
fn is_unavailable(e: &RedisError) -> bool {
    use redis::{ErrorKind as K, ServerErrorKind as S};
    e.is_io_error()
        || matches!(
            e.kind(),
            K::Server(S::BusyLoading | S::TryAgain | S::MasterDown | S::ClusterDown)
        )
}

fn pool_error(e: PoolError) -> Error {
    match e {
        PoolError::Backend(e) => Error::store(is_unavailable(&e), e),
        PoolError::Timeout(_) | PoolError::Closed => Error::store(true, e),
        other => Error::store(false, other),
    }
}

impl KvBackend for RedisBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        self.run(cmd).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), Error> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if let Some(ttl) = ttl {
            cmd.arg("EX").arg(ttl);
        }
        self.run(cmd).await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        self.run(cmd).await
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No URL: it may carry a password.
        f.debug_struct("RedisBackend")
            .field("connected", &self.slot().is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
