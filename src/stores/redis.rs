//! The Redis backend (feature `redis`), over `deadpool-redis`.

use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig, FromRedisValue, RedisError, Value};
use deadpool_redis::{Manager, Pool, PoolError, Runtime};
use sha1::{Digest, Sha1};

use crate::error::{Error, ErrorKind};
use crate::stores::turns::Turns;
use crate::stores::{Expect, KvBackend, Put, Remaining, ServerStore, Stored, Write};

/// The default time a store operation may take, connecting included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Sessions in Redis, laid out as aiohttp-session's `RedisStorage` does:
/// the record under `<cookie_name>_<id>`, written with `SET key value EX
/// max_age` (no `EX` when the session has no `max_age`).
///
/// A load is one `GET`. A save is one round trip when no other request
/// of the session wrote in between: `SET key value [EX ttl] NX` for a new
/// session, and for a loaded one a compare-and-set script
/// (by `EVALSHA`, and `EVAL` when the server does not
/// have it cached) that writes only if the record is still the one loaded
/// (compared by its SHA-1), and otherwise returns what is there for the
/// merge. Logout and renew use `DEL`. Every command and the script touch
/// one key, so any Redis from 2.6.12 on works, in Redis Cluster as well.
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
    turns: Turns,
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
            turns: Turns::default(),
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
        cmd: Query<'_>,
        used: &mut Option<u64>,
    ) -> Result<T, Error> {
        let (generation, mut conn, fresh) = self.connection().await?;
        *used = Some(generation);
        match cmd.send(&mut conn).await {
            Ok(value) => Ok(value),
            // A connection that sat idle may have been closed by a server
            // restart; the commands are idempotent, so try once more on a
            // new one.
            Err(e) if !fresh && is_unavailable(&e) => {
                self.forget(generation);
                let (generation, mut conn, _) = self.connection().await?;
                *used = Some(generation);
                cmd.send(&mut conn)
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
        self.run_query(Query::Cmd(&cmd)).await
    }

    async fn run_query<T: FromRedisValue>(&self, cmd: Query<'_>) -> Result<T, Error> {
        let mut used = None;
        let result = tokio::time::timeout(self.timeout, self.query(cmd, &mut used)).await;
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

/// The compare-and-set of a loaded record, run atomically by Redis:
/// `KEYS[1]` the record, `ARGV[1]` the SHA-1 (lowercase hex) of the record
/// as loaded, `ARGV[2]` `"set"` or `"del"`, `ARGV[3]` the new record,
/// `ARGV[4]` its TTL in seconds (`""` for none). Returns `1` when written,
/// `0` when the key is gone (deleted or expired: nothing is written back),
/// and otherwise the record the key holds now.
const CAS_SCRIPT: &str = r#"local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if redis.sha1hex(cur) ~= ARGV[1] then return cur end
if ARGV[2] == 'del' then
  redis.call('DEL', KEYS[1])
elseif ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
end
return 1
"#;

/// The SHA-1 of [`CAS_SCRIPT`], for `EVALSHA`.
static CAS_SHA: LazyLock<String> = LazyLock::new(|| sha1_hex(CAS_SCRIPT.as_bytes()));

/// SHA-1 in lowercase hex, as Redis's `redis.sha1hex` writes it.
fn sha1_hex(bytes: &[u8]) -> String {
    let digest = Sha1::digest(bytes);
    let mut hex = String::with_capacity(40);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Whether `err` is Redis saying it has no script of that SHA-1.
fn is_noscript(err: &Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<RedisError>())
        .is_some_and(|e| e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript))
}

/// What one round trip sends: a command or a pipeline.
#[derive(Clone, Copy)]
enum Query<'a> {
    Cmd(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
}

impl Query<'_> {
    async fn send<T: FromRedisValue>(
        self,
        conn: &mut MultiplexedConnection,
    ) -> Result<T, RedisError> {
        match self {
            Query::Cmd(cmd) => cmd.query_async(conn).await,
            Query::Pipe(pipe) => pipe.query_async(conn).await,
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

impl RedisBackend {
    /// Runs [`CAS_SCRIPT`]: `EVALSHA`, and `EVAL` (which also caches it)
    /// when the server has not seen the script yet.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: &Stored,
        write: Write<'_>,
    ) -> Result<Value, Error> {
        let (mode, value, ttl) = match write {
            Write::Value { value, ttl } => ("set", value, ttl.map(|t| t.to_string())),
            Write::Delete => ("del", &b""[..], None),
        };
        let digest = sha1_hex(&expected.value);
        let invoke = |command: &str, script: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(script)
                .arg(1)
                .arg(key)
                .arg(&digest)
                .arg(mode)
                .arg(value)
                .arg(ttl.as_deref().unwrap_or(""));
            cmd
        };
        match self.run(invoke("EVALSHA", &CAS_SHA)).await {
            Err(e) if is_noscript(&e) => self.run(invoke("EVAL", CAS_SCRIPT)).await,
            other => other,
        }
    }
}

impl KvBackend for RedisBackend {
    async fn get(&self, key: &str) -> Result<Option<Stored>, Error> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let value: Option<Vec<u8>> = self.run(cmd).await?;
        Ok(value.map(Stored::unversioned))
    }

    async fn get_with_remaining(&self, key: &str) -> Result<Option<(Stored, Remaining)>, Error> {
        // One round trip: GET and PTTL pipelined.
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
        let (value, pttl): (Option<Vec<u8>>, i64) = self.run_query(Query::Pipe(&pipe)).await?;
        let remaining = match pttl {
            -1 => Remaining::Never,
            ms if ms >= 0 => Remaining::Seconds(u64::try_from(ms).unwrap_or(0).div_ceil(1000)),
            _ => Remaining::Unknown,
        };
        Ok(value.map(|value| (Stored::unversioned(value), remaining)))
    }

    async fn put(&self, key: &str, write: Write<'_>, expect: Expect<'_>) -> Result<Put, Error> {
        let reply = match (expect, write) {
            (Expect::Absent, Write::Value { value, ttl }) => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key).arg(value);
                if let Some(ttl) = ttl {
                    cmd.arg("EX").arg(ttl);
                }
                cmd.arg("NX");
                return match self.run::<Value>(cmd).await? {
                    Value::Nil => Ok(Put::Changed(None)),
                    _ => Ok(Put::Done),
                };
            }
            (Expect::Absent, Write::Delete) => {
                // Deleting what must not exist: only whether it exists.
                let mut cmd = redis::cmd("EXISTS");
                cmd.arg(key);
                let exists: bool = self.run(cmd).await?;
                return Ok(if exists {
                    Put::Changed(None)
                } else {
                    Put::Done
                });
            }
            (Expect::Current(expected), write) => {
                self.compare_and_set(key, expected, write).await?
            }
        };
        match reply {
            Value::Int(1) => Ok(Put::Done),
            Value::Int(0) => Ok(Put::Missing),
            Value::BulkString(current) => Ok(Put::Changed(Some(Stored::unversioned(current)))),
            other => Err(Error::new(ErrorKind::Store).detail(format!(
                "unexpected reply to the compare-and-set script: {}",
                reply_kind(&other)
            ))),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        self.run(cmd).await
    }

    async fn touch(&self, key: &str, ttl: u64) -> Result<bool, Error> {
        let mut cmd = redis::cmd("EXPIRE");
        cmd.arg(key).arg(ttl.max(1));
        self.run(cmd).await
    }

    async fn pause(&self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }

    fn turn(&self, key: &str) -> impl Future<Output = impl Send> + Send {
        self.turns.enter(key)
    }
}

/// The kind of a reply, never its contents (it may hold session data).
fn reply_kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Int(_) => "integer",
        Value::BulkString(_) => "bulk string",
        Value::Array(_) => "array",
        Value::SimpleString(_) | Value::Okay => "status",
        _ => "other",
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
