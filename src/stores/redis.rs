//! The Redis backend (feature `redis`), over `deadpool-redis`: one server,
//! a Redis Cluster (feature `redis-cluster`) or the master a set of
//! Sentinels names (feature `redis-sentinel`), all through the same command
//! code.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
#[cfg(feature = "redis-cluster")]
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{
    self, AsyncConnectionConfig, FromRedisValue, RedisError, RedisResult, Value,
};
use deadpool_redis::{Manager, Pool, PoolError, Runtime};
use sha1::{Digest, Sha1};

use crate::error::{Error, ErrorKind};
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
/// one key, so any Redis from 2.6.12 on works, and in a Redis Cluster every
/// command goes to the master of its key's slot.
/// An unreachable or unresponsive server gives
/// [`ErrorKind::Unavailable`] (a 503) within the backend's
/// [timeout](RedisBackend::timeout); the next request after the server is
/// back works again, without a restart.
///
/// Three set-ups, one store type:
///
/// - [`RedisStore::redis`]: one server (feature `redis`);
/// - `RedisStore::cluster`: a Redis Cluster (feature `redis-cluster`);
/// - `RedisStore::sentinel`: the master that Redis Sentinel names (feature
///   `redis-sentinel`), followed through failovers.
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

    /// A store on the Redis Cluster that the nodes at `urls` belong to
    /// (`redis://host:port`; any reachable node is enough to find the
    /// others), with the default timeout. See [`RedisBackend::cluster`].
    #[cfg(feature = "redis-cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
    pub fn cluster<I>(urls: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        RedisBackend::cluster(urls).map(ServerStore::new)
    }

    /// A store on the master that the Sentinels at `urls` name `master`
    /// (`mymaster` in Redis's example configuration), with the default
    /// timeout. See [`RedisBackend::sentinel`].
    #[cfg(feature = "redis-sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-sentinel")))]
    pub fn sentinel<I>(master: &str, urls: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        RedisBackend::sentinel(master, urls).map(ServerStore::new)
    }
}

/// The [`KvBackend`] of [`RedisStore`].
///
/// Every request goes through one shared connection taken from a
/// `deadpool-redis` pool, so a request costs exactly its own commands.
/// (Checking a connection out of a `deadpool-redis` pool sends `UNWATCH`
/// and `PING` each time, or `PING` for its cluster and sentinel pools,
/// tripling the round trips of a request.) The pool is asked for a new
/// connection only after the shared one failed:
///
/// - one server: a multiplexed connection; after a failure (or a timeout)
///   the next request opens a new one;
/// - a Redis Cluster: redis-rs's cluster connection, which holds one
///   multiplexed connection per node, sends each command to the master of
///   its key's slot, follows `MOVED` and `ASK` redirections and repairs
///   itself (it reconnects nodes and reloads the slot map when a node fails
///   or a replica is promoted), so it is kept for the backend's life;
/// - Sentinel: a multiplexed connection to the master the Sentinels name;
///   after a failure (the master died, or answers `READONLY` because it was
///   demoted) the next request asks the Sentinels again and connects to the
///   master they name then.
pub struct RedisBackend {
    source: Source,
    shared: Mutex<Option<Shared>>,
    /// Serializes reconnecting, so an outage does not open one connection
    /// per waiting request.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    timeout: Duration,
}

/// Where connections come from: the pool of one of the three set-ups.
enum Source {
    Node(Pool),
    #[cfg(feature = "redis-cluster")]
    Cluster(deadpool_redis::cluster::Pool),
    #[cfg(feature = "redis-sentinel")]
    Sentinel {
        pool: deadpool_redis::sentinel::Pool,
        /// The master's name (not a secret, unlike the URLs).
        master: Option<String>,
    },
}

impl Source {
    /// Takes a connection out of the pool for good (so that the pool never
    /// recycles it, which would cost a `PING` per request).
    async fn open(&self) -> Result<Conn, Error> {
        match self {
            Source::Node(pool) => {
                let conn = pool.get().await.map_err(pool_error)?;
                Ok(Conn::Node(deadpool_redis::Connection::take(conn)))
            }
            #[cfg(feature = "redis-cluster")]
            Source::Cluster(pool) => {
                let conn = pool.get().await.map_err(pool_error)?;
                Ok(Conn::Cluster(deadpool_redis::cluster::Connection::take(
                    conn,
                )))
            }
            #[cfg(feature = "redis-sentinel")]
            Source::Sentinel { pool, .. } => {
                let conn = pool.get().await.map_err(pool_error)?;
                Ok(Conn::Node(deadpool_redis::sentinel::Connection::take(conn)))
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Source::Node(_) => "node",
            #[cfg(feature = "redis-cluster")]
            Source::Cluster(_) => "cluster",
            #[cfg(feature = "redis-sentinel")]
            Source::Sentinel { .. } => "sentinel",
        }
    }
}

/// A shared connection of one of the set-ups (cheap to clone: a handle).
#[derive(Clone)]
enum Conn {
    /// One server's multiplexed connection (a single node, or the master
    /// Sentinel named).
    Node(MultiplexedConnection),
    /// A cluster connection, routing by key slot.
    #[cfg(feature = "redis-cluster")]
    Cluster(ClusterConnection),
}

impl Conn {
    /// Sends one command (or a pipeline, whose commands all touch one
    /// key) and reads its reply.
    async fn query<T: FromRedisValue>(&mut self, cmd: Query<'_>) -> RedisResult<T> {
        match (self, cmd) {
            (Conn::Node(conn), Query::Cmd(cmd)) => cmd.query_async(conn).await,
            (Conn::Node(conn), Query::Pipe(pipe)) => pipe.query_async(conn).await,
            #[cfg(feature = "redis-cluster")]
            (Conn::Cluster(conn), Query::Cmd(cmd)) => cmd.query_async(conn).await,
            #[cfg(feature = "redis-cluster")]
            (Conn::Cluster(conn), Query::Pipe(pipe)) => pipe.query_async(conn).await,
        }
    }

    /// Whether the connection repairs itself after failures (a cluster
    /// connection reconnects its nodes and reloads the slot map), so that
    /// replacing it would only cost the healthy nodes' connections.
    fn repairs_itself(&self) -> bool {
        match self {
            Conn::Node(_) => false,
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(_) => true,
        }
    }
}

struct Shared {
    generation: u64,
    conn: Conn,
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
        Self::with_source(Source::Node(pool))
    }

    /// A backend on the Redis Cluster that the nodes at `urls` belong to
    /// (`redis://host:port`, `redis://:password@host:port`). Any node that
    /// answers is enough to load the slot map and find the others; list
    /// several so that one down at start does not matter. Only the URLs
    /// are checked here; nothing is connected until the first request.
    ///
    /// Keys stay `<cookie_name>_<id>`: every command and the
    /// compare-and-set script touch one key, so they run on the master of
    /// its slot, wherever it is, and sessions spread over all masters.
    /// When a master fails, only the sessions in its slots get
    /// [`ErrorKind::Unavailable`] (503, within the timeout) until Redis
    /// promotes its replica; the next requests then reach the new master
    /// without a restart. For the other masters to keep answering
    /// meanwhile, the cluster must run with `cluster-require-full-coverage
    /// no` (with Redis's default, every node refuses queries from the
    /// moment a master is marked failed until its replica takes over).
    /// redis-rs retries a command whose node is down, waiting at least
    /// 1.28 s between tries, so such a request takes the whole timeout
    /// before its 503.
    #[cfg(feature = "redis-cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
    pub fn cluster<I>(urls: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let urls = url_list(urls)?;
        let manager = deadpool_redis::cluster::Manager::new(urls, false)
            .map_err(|e| Error::with_source(ErrorKind::Config, e))?;
        let pool = deadpool_redis::cluster::Pool::builder(manager)
            .max_size(1)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::with_source(ErrorKind::Config, e))?;
        Ok(Self::from_cluster_pool(pool))
    }

    /// A backend that takes its cluster connection from an existing
    /// `deadpool-redis` cluster pool (for options [`RedisBackend::cluster`]
    /// does not set, such as reading from replicas). The backend keeps one
    /// connection out of the pool for good.
    #[cfg(feature = "redis-cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
    pub fn from_cluster_pool(pool: deadpool_redis::cluster::Pool) -> Self {
        Self::with_source(Source::Cluster(pool))
    }

    /// A backend on the master that the Sentinels at `urls`
    /// (`redis://host:port` of each Sentinel) know as `master`. Before it
    /// connects, the backend asks the Sentinels where the master is and
    /// checks with `ROLE` that it is one; when the master fails, requests
    /// get [`ErrorKind::Unavailable`] (503, within the timeout) until the
    /// Sentinels have promoted a replica, and then go on against the new
    /// master without a restart. Only the URLs are checked here; nothing is
    /// connected until the first request.
    ///
    /// The master is reached with the Sentinels' host and port and no
    /// password; for a master that needs one (or TLS, or another database),
    /// build a `deadpool_redis::sentinel::Pool` with its
    /// `SentinelNodeConnectionInfo` and use
    /// [`RedisBackend::from_sentinel_pool`]. `deadpool-redis` opens the
    /// master's connection with redis-rs's own limits (1 s to connect,
    /// 500 ms per reply), which apply besides this backend's timeout.
    #[cfg(feature = "redis-sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-sentinel")))]
    pub fn sentinel<I>(master: &str, urls: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        use deadpool_redis::sentinel::{Manager, Pool, SentinelServerType};
        let urls = url_list(urls)?;
        if master.is_empty() {
            return Err(Error::new(ErrorKind::Config).detail("the Sentinel master name is empty"));
        }
        let manager = Manager::new(urls, master.to_owned(), None, SentinelServerType::Master)
            .map_err(|e| Error::with_source(ErrorKind::Config, e))?;
        let pool = Pool::builder(manager)
            .max_size(1)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::with_source(ErrorKind::Config, e))?;
        let mut backend = Self::from_sentinel_pool(pool);
        if let Source::Sentinel { master: name, .. } = &mut backend.source {
            *name = Some(master.to_owned());
        }
        Ok(backend)
    }

    /// A backend that takes its connection from an existing
    /// `deadpool-redis` sentinel pool (built for the master, with
    /// `SentinelServerType::Master`). The backend keeps one connection out
    /// of the pool and asks it for a new one (so the Sentinels for the
    /// master) only after that one failed.
    #[cfg(feature = "redis-sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-sentinel")))]
    pub fn from_sentinel_pool(pool: deadpool_redis::sentinel::Pool) -> Self {
        Self::with_source(Source::Sentinel { pool, master: None })
    }

    fn with_source(source: Source) -> Self {
        Self {
            source,
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

    fn slot(&self) -> MutexGuard<'_, Option<Shared>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self) -> Option<(u64, Conn)> {
        self.slot().as_ref().map(|s| (s.generation, s.conn.clone()))
    }

    /// The shared connection, and whether it was opened just now.
    async fn connection(&self) -> Result<(u64, Conn, bool), Error> {
        if let Some((generation, conn)) = self.cached() {
            return Ok((generation, conn, false));
        }
        // Boxed: the pools' futures are kilobytes, and every command's
        // future would hold (and move) them inline though it rarely opens.
        let (generation, conn) = Box::pin(self.connect()).await?;
        Ok((generation, conn, true))
    }

    /// Opens the shared connection (one request at a time; the others
    /// wait for it).
    async fn connect(&self) -> Result<(u64, Conn), Error> {
        let _gate = self.connecting.lock().await;
        if let Some((generation, conn)) = self.cached() {
            // Opened by another request while this one waited.
            return Ok((generation, conn));
        }
        let conn = self.source.open().await?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        *self.slot() = Some(Shared {
            generation,
            conn: conn.clone(),
        });
        Ok((generation, conn))
    }

    /// Drops the shared connection if it is still the one of `generation`
    /// and does not repair itself.
    fn forget(&self, generation: u64) {
        let mut slot = self.slot();
        if slot
            .as_ref()
            .is_some_and(|s| s.generation == generation && !s.conn.repairs_itself())
        {
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
        match conn.query(cmd).await {
            Ok(value) => Ok(value),
            // A connection that sat idle may have been closed by a server
            // restart; the commands are idempotent, so try once more on a
            // new one. (A cluster connection retries by itself.)
            Err(e) if !fresh && !conn.repairs_itself() && is_unavailable(&e) => {
                self.forget(generation);
                let (generation, mut conn, _) = self.connection().await?;
                *used = Some(generation);
                conn.query(cmd)
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

    /// Runs one command within the timeout: the one place every command of
    /// this backend goes through. The command must touch one key (or keys
    /// of one hash slot): in a cluster it is sent to the master of that
    /// key's slot.
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

/// The URLs of a cluster's nodes or of the Sentinels: at least one.
#[cfg(any(feature = "redis-cluster", feature = "redis-sentinel"))]
fn url_list<I>(urls: I) -> Result<Vec<String>, Error>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let urls: Vec<String> = urls
        .into_iter()
        .map(|url| url.as_ref().trim().to_owned())
        .collect();
    if urls.is_empty() || urls.iter().any(String::is_empty) {
        return Err(Error::new(ErrorKind::Config).detail("expected one or more Redis URLs"));
    }
    Ok(urls)
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
static CAS_SHA: LazyLock<[u8; 40]> = LazyLock::new(|| sha1_hex(CAS_SCRIPT.as_bytes()));

/// SHA-1 in lowercase hex, as Redis's `redis.sha1hex` writes it.
fn sha1_hex(bytes: &[u8]) -> [u8; 40] {
    let mut hex = [0; 40];
    crate::stores::server::hex_into(&Sha1::digest(bytes), &mut hex);
    hex
}

/// A command `name` with room for `args` more arguments of `bytes` bytes
/// in all, so that building it allocates once per buffer.
fn command(name: &str, args: usize, bytes: usize) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(1 + args, name.len() + bytes);
    cmd.arg(name);
    cmd
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

/// Whether `e` means the server could not be used at all (so 503), rather
/// than that it answered with an error.
///
/// Besides failed connections: a server still loading its data, a cluster
/// without a master for the key's slot (or between owners of it), no
/// master known to the Sentinels, `READONLY` (the node was demoted to
/// a replica: the next connection asks again where the master is), and
/// `OOM` (a server at its `maxmemory` that evicts nothing refuses writes
/// until records expire).
fn is_unavailable(e: &RedisError) -> bool {
    use redis::{ErrorKind as K, ServerErrorKind as S};
    e.is_io_error()
        || e.code() == Some("OOM")
        || matches!(
            e.kind(),
            K::Server(S::BusyLoading | S::TryAgain | S::MasterDown | S::ClusterDown | S::ReadOnly)
                | K::ClusterConnectionNotFound
                | K::MasterNameNotFoundBySentinel
                | K::NoValidReplicasFoundBySentinel
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
            Write::Value { value, ttl } => ("set", value.encoded()?, ttl),
            Write::Delete => ("del", &b""[..], None),
        };
        let digest = sha1_hex(expected.value.encoded()?);
        let invoke = |name: &str, script: &[u8]| {
            // The TTL has at most 20 digits.
            let bytes = script.len() + 1 + key.len() + digest.len() + mode.len() + value.len() + 20;
            let mut cmd = command(name, 7, bytes);
            cmd.arg(script)
                .arg(1)
                .arg(key)
                .arg(&digest[..])
                .arg(mode)
                .arg(value);
            match ttl {
                Some(ttl) => cmd.arg(ttl),
                None => cmd.arg(""),
            };
            cmd
        };
        match self.run(invoke("EVALSHA", &CAS_SHA[..])).await {
            Err(e) if is_noscript(&e) => self.run(invoke("EVAL", CAS_SCRIPT.as_bytes())).await,
            other => other,
        }
    }
}

impl KvBackend for RedisBackend {
    const COMBINES_SAVES: bool = true;

    async fn get(&self, key: &str) -> Result<Option<Stored>, Error> {
        let mut cmd = command("GET", 1, key.len());
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
                let value = value.encoded()?;
                // SET key value EX ttl NX; the TTL has at most 20 digits.
                let mut cmd = command("SET", 5, key.len() + value.len() + 2 + 20 + 2);
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

    async fn index_add(&self, index: &str, member: &str, ttl: Option<u64>) -> Result<(), Error> {
        // One round trip on the index's node: SADD, and EXPIRE when the
        // index must outlive an absolute lifetime.
        let mut pipe = redis::pipe();
        pipe.cmd("SADD").arg(index).arg(member).ignore();
        if let Some(ttl) = ttl {
            pipe.cmd("EXPIRE").arg(index).arg(ttl.max(1)).ignore();
        }
        self.run_query(Query::Pipe(&pipe)).await
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), Error> {
        // Redis drops a set whose last member goes.
        let mut cmd = redis::cmd("SREM");
        cmd.arg(index).arg(member);
        self.run::<u64>(cmd).await.map(drop)
    }

    async fn index_members(&self, index: &str) -> Result<Vec<String>, Error> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(index);
        self.run(cmd).await
    }

    async fn pause(&self, pause: Duration) {
        tokio::time::sleep(pause).await;
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
        // No URLs: they may carry passwords.
        let mut f = f.debug_struct("RedisBackend");
        f.field("kind", &self.source.kind());
        #[cfg(feature = "redis-sentinel")]
        if let Source::Sentinel {
            master: Some(master),
            ..
        } = &self.source
        {
            f.field("master", master);
        }
        f.field("connected", &self.slot().is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
