//! The Memcached backend (feature `memcached`): memcached's text protocol
//! over tokio, with a small pool of connections per server, on one server
//! or a ring of servers placed by ketama consistent hashing.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};

use crate::clock::unix_now;
use crate::error::{Error, ErrorKind};
use crate::stores::ketama::{Flavor, Ring};
use crate::stores::{Expect, KvBackend, Put, Remaining, ServerStore, Stored, Write};

/// The default time a store operation may take, connecting included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Expiry times above this many seconds are absolute Unix times in
/// memcached's protocol.
const RELATIVE_LIMIT: u64 = 30 * 24 * 3600;

/// The largest value this client accepts in a reply. memcached's own
/// default item limit is 1 MiB (`-I`); anything announced beyond this is
/// treated as a broken reply rather than allocated.
const MAX_REPLY_VALUE: usize = 64 * 1024 * 1024;

/// Sessions in memcached, laid out as aiohttp-session's `MemcachedStorage`
/// does: the record under `<cookie_name>_<id>` with flags 0, expiring after
/// the session's `max_age` (never when it has none). A `max_age` above 30
/// days is sent as an absolute Unix time, as memcached requires.
///
/// A load is one `gets`; a save one `add` (a new session) or `cas` (a
/// loaded one), each answered by the server, so no write is lost silently.
/// A logout is one `delete`. A session emptied by removals is deleted with
/// the meta command `md <key> C<cas>` (memcached 1.6 and later), so that
/// it does not delete what a concurrent request wrote.
///
/// An unreachable or unresponsive server gives [`ErrorKind::Unavailable`]
/// (a 503) within the backend's [timeout](MemcachedBackend::timeout); the
/// next request after the server is back works again, without a restart.
///
/// On a ring of servers ([`MemcachedStore::ring`]) each key lives on one
/// server, chosen by ketama consistent hashing as libmemcached (pylibmc)
/// places it; see [`MemcachedBackend::ring`].
///
/// ```no_run
/// use http_session::{MemcachedStore, SessionManager};
///
/// let sessions = SessionManager::builder(MemcachedStore::memcached("127.0.0.1:11211"))
///     .max_age(3600)
///     .build()?;
/// let ring = SessionManager::builder(MemcachedStore::ring([
///     "10.0.0.1:11211",
///     "10.0.0.2:11211",
///     "10.0.0.3:11211",
/// ])?)
/// .max_age(3600)
/// .build()?;
/// # Ok::<(), http_session::Error>(())
/// ```
pub type MemcachedStore = ServerStore<MemcachedBackend>;

impl MemcachedStore {
    /// A store on the memcached server at `addr` (`host:port`), with the
    /// default pool size and timeout. Nothing is connected until the first
    /// request.
    pub fn memcached(addr: impl Into<String>) -> Self {
        ServerStore::new(MemcachedBackend::new(addr))
    }

    /// A store on a ring of memcached servers (`host:port` each), placed
    /// with the default [`KetamaFlavor`]; see [`MemcachedBackend::ring`].
    ///
    /// [`KetamaFlavor`]: crate::stores::KetamaFlavor
    pub fn ring<I>(servers: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        MemcachedBackend::ring(servers).map(ServerStore::new)
    }
}

/// The [`KvBackend`] of [`MemcachedStore`].
///
/// It keeps a pool of connections (16 by default, opened as needed) per
/// server, each used by one request at a time; a request takes the first
/// idle one of its key's server. A request holds a connection for a round
/// trip, so the pool bounds the requests in flight to a server: with 4
/// connections, 32 parallel requests of one worker queued for them (W2 at
/// 32 wrk connections: 12,800 req/s with 4, 23,400-32,500 with 16,
/// BENCHMARKS.md). A connection that fails is closed and reopened by the
/// next request that picks it.
///
/// Item flags are not interpreted: a value written by another client with
/// non-zero flags is handed to the codec like any other, and if it is not
/// a session record the client gets a fresh session (aiohttp-session
/// answers 500).
pub struct MemcachedBackend {
    servers: Box<[Server]>,
    /// The placement of keys on `servers`; `None` for a single server.
    ring: Option<(Flavor, Ring)>,
    timeout: Duration,
}

/// One memcached server and its connection pool.
struct Server {
    addr: String,
    connections: Box<[Mutex<Option<Connection>>]>,
    next: AtomicUsize,
}

impl Server {
    fn new(addr: String, pool_size: usize) -> Self {
        Self {
            addr,
            connections: (0..pool_size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A connection slot: the first idle one, or else (all busy) a wait
    /// for the next in turn. Taking the first idle slot, rather than
    /// rotating, keeps the connections opened to what the load needs: a
    /// server with one request at a time has one connection.
    async fn slot(&self) -> MutexGuard<'_, Option<Connection>> {
        if let Some(guard) = self.connections.iter().find_map(|c| c.try_lock().ok()) {
            return guard;
        }
        let n = self.connections.len();
        self.connections[self.next.fetch_add(1, Ordering::Relaxed) % n]
            .lock()
            .await
    }

    async fn call(&self, op: Op<'_>) -> Result<Reply, Error> {
        let mut slot = self.slot().await;
        // The connection is taken out of its slot while in use: if the
        // operation fails or is cancelled half-way, it is dropped.
        let (mut conn, reused) = match slot.take() {
            Some(conn) => (conn, true),
            None => (connect(&self.addr).await?, false),
        };
        let reply = match op.run(&mut conn).await {
            // An idle connection may have been closed by a server restart;
            // try once more on a new one. Repeating is safe: a repeated
            // `cas` or `add` that had landed finds its own write and is
            // merged like any other.
            Err(e) if reused && !is_server_reply(&e) => {
                conn = connect(&self.addr).await?;
                op.run(&mut conn).await
            }
            other => other,
        };
        match reply {
            Ok(reply) => {
                *slot = Some(conn);
                Ok(reply)
            }
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                // The server read the item and dropped it: the connection
                // is still in step.
                *slot = Some(conn);
                Err(Error::with_source(ErrorKind::RecordTooLarge, e))
            }
            Err(e) => Err(Error::store(!is_server_reply(&e), e)),
        }
    }
}

/// The default number of connections per server.
const DEFAULT_POOL_SIZE: usize = 16;

impl MemcachedBackend {
    /// A backend on the memcached server at `addr` (`host:port`). Nothing
    /// is connected until the first request.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            servers: Box::new([Server::new(addr.into(), DEFAULT_POOL_SIZE)]),
            ring: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A backend on a ring of memcached servers (`host:port`, `[ipv6]:port`;
    /// the port defaults to 11211), each key on the server that ketama
    /// consistent hashing picks for it, with the default
    /// [`KetamaFlavor::KetamaWeighted`] (libmemcached's
    /// `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`, the libketama scheme: MD5, 160
    /// points per server). Each server has its own connection pool. Only
    /// the server strings are checked here; nothing is connected until the
    /// first request.
    ///
    /// - **Placement.** The same server strings in the same order, with the
    ///   same flavor, place every key where pylibmc (libmemcached) or
    ///   uhashring place it, so a Python service can share the ring (see
    ///   [`KetamaFlavor`]).
    /// - **A server down.** Only the sessions on that server are affected:
    ///   their requests get [`ErrorKind::Unavailable`] (503) within the
    ///   timeout, and the others keep working. Keys are not moved to
    ///   another server meanwhile: a session there would be a fresh,
    ///   logged-out one, and when the server came back its old records
    ///   would be live again, including sessions that were logged out in
    ///   between. When the server answers again, its sessions work again
    ///   without a restart (with whatever it still holds: a restarted
    ///   memcached is empty, so they start afresh).
    /// - **Adding a server** moves about 1/N of the keys (N servers after
    ///   the change) to the new server, and no key between old servers;
    ///   those sessions start afresh. Removing one moves only its keys.
    ///
    /// [`KetamaFlavor`]: crate::stores::KetamaFlavor
    /// [`KetamaFlavor::KetamaWeighted`]: crate::stores::KetamaFlavor::KetamaWeighted
    pub fn ring<I>(servers: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::ring_with(Flavor::default(), servers)
    }

    /// [`MemcachedBackend::ring`] with another ketama flavor, such as
    /// [`KetamaFlavor::Ketama`] to share the ring with pylibmc clients
    /// configured with `behaviors={"ketama": True}`.
    ///
    /// [`KetamaFlavor::Ketama`]: crate::stores::KetamaFlavor::Ketama
    pub fn ring_with<I>(flavor: Flavor, servers: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let addrs: Vec<String> = servers.into_iter().map(Into::into).collect();
        let ring =
            Ring::new(flavor, &addrs).map_err(|e| Error::with_source(ErrorKind::Config, e))?;
        Ok(Self {
            servers: addrs
                .into_iter()
                .map(|addr| Server::new(addr, DEFAULT_POOL_SIZE))
                .collect(),
            ring: Some((flavor, ring)),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Sets the number of connections per server (default 16, at least 1).
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.servers = self
            .servers
            .iter()
            .map(|server| Server::new(server.addr.clone(), connections))
            .collect();
        self
    }

    /// Sets how long one store operation may take, waiting for a free
    /// connection and connecting included (default 3 s). When it passes the
    /// request fails with [`ErrorKind::Unavailable`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The index, in the list the backend was built from, of the server
    /// that holds `key` (always 0 for a single server).
    pub fn server_for(&self, key: &str) -> usize {
        self.ring
            .as_ref()
            .map_or(0, |(_, ring)| ring.server_for(key.as_bytes()))
    }

    /// Runs `op` on its key's server, within the timeout.
    async fn run(&self, op: Op<'_>) -> Result<Reply, Error> {
        let server = &self.servers[self.server_for(op.key())];
        match tokio::time::timeout(self.timeout, server.call(op)).await {
            Ok(result) => result,
            Err(elapsed) => Err(Error::store(true, elapsed)),
        }
    }
}

async fn connect(addr: &str) -> Result<Connection, Error> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Error::store(true, e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| Error::store(true, e))?;
    Ok(Connection {
        io: BufReader::new(stream),
        out: Vec::with_capacity(256),
        line: Vec::with_capacity(64),
    })
}

/// One connection speaking memcached's text protocol.
struct Connection {
    io: BufReader<TcpStream>,
    /// The command being written, sent with one write.
    out: Vec<u8>,
    /// The reply line being read.
    line: Vec<u8>,
}

/// A reply status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    /// Meta commands: done.
    Hd,
    /// Meta commands: not found.
    Nf,
    /// Meta commands: the CAS value did not match.
    Ex,
}

/// What an operation returns.
enum Reply {
    Value(Option<Stored>),
    Timed(Option<(Stored, Remaining)>),
    Status(Status),
}

impl Connection {
    async fn send(&mut self) -> io::Result<()> {
        self.io.get_mut().write_all(&self.out).await
    }

    /// Reads one line, without its `\r\n`.
    async fn read_line(&mut self) -> io::Result<&[u8]> {
        self.line.clear();
        let n = self.io.read_until(b'\n', &mut self.line).await?;
        if n == 0 || !self.line.ends_with(b"\r\n") {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(&self.line[..self.line.len() - 2])
    }

    async fn status(&mut self) -> io::Result<Status> {
        let line = self.read_line().await?;
        Ok(match line {
            b"STORED" => Status::Stored,
            b"NOT_STORED" => Status::NotStored,
            b"EXISTS" => Status::Exists,
            b"NOT_FOUND" => Status::NotFound,
            b"DELETED" => Status::Deleted,
            b"TOUCHED" => Status::Touched,
            b"HD" => Status::Hd,
            b"NF" => Status::Nf,
            b"EX" => Status::Ex,
            other if other.starts_with(b"SERVER_ERROR object too large") => {
                return Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    "memcached refused the item as too large (its -I limit)",
                ))
            }
            other => return Err(server_error(other)),
        })
    }

    /// `gets key`: the value and its CAS unique.
    async fn gets(&mut self, key: &str) -> io::Result<Option<Stored>> {
        self.out.clear();
        self.out.extend_from_slice(b"gets ");
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.send().await?;
        let line = self.read_line().await?;
        if line == b"END" {
            return Ok(None);
        }
        // VALUE <key> <flags> <bytes> <cas unique>
        let header = std::str::from_utf8(line).map_err(|_| invalid("reply header"))?;
        let mut parts = header.split(' ');
        if parts.next() != Some("VALUE") {
            return Err(server_error(line));
        }
        let mut parts = parts.skip(2);
        let len: usize = parts
            .next()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n <= MAX_REPLY_VALUE)
            .ok_or_else(|| invalid("value length"))?;
        let cas: u64 = parts
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| invalid("cas unique"))?;
        let mut value = vec![0; len + 2];
        self.io.read_exact(&mut value).await?;
        if !value.ends_with(b"\r\n") {
            return Err(invalid("value terminator"));
        }
        value.truncate(len);
        if self.read_line().await? != b"END" {
            return Err(invalid("END after the value"));
        }
        Ok(Some(Stored::versioned(value, cas)))
    }

    /// Meta get `mg key v c t`: the value, its CAS unique and its TTL.
    async fn meta_get(&mut self, key: &str) -> io::Result<Option<(Stored, Remaining)>> {
        self.out.clear();
        self.out.extend_from_slice(b"mg ");
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b" v c t\r\n");
        self.send().await?;
        let line = self.read_line().await?;
        if line == b"EN" {
            return Ok(None);
        }
        // VA <size> c<cas> t<ttl>
        let header = std::str::from_utf8(line).map_err(|_| invalid("reply header"))?;
        let mut parts = header.split(' ');
        if parts.next() != Some("VA") {
            return Err(server_error(line));
        }
        let len: usize = parts
            .next()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n <= MAX_REPLY_VALUE)
            .ok_or_else(|| invalid("value length"))?;
        let (mut cas, mut ttl) = (None, None);
        for flag in parts {
            if let Some(n) = flag.strip_prefix('c') {
                cas = n.parse::<u64>().ok();
            } else if let Some(n) = flag.strip_prefix('t') {
                ttl = n.parse::<i64>().ok();
            }
        }
        let cas = cas.ok_or_else(|| invalid("cas unique"))?;
        let mut value = vec![0; len + 2];
        self.io.read_exact(&mut value).await?;
        if !value.ends_with(b"\r\n") {
            return Err(invalid("value terminator"));
        }
        value.truncate(len);
        let remaining = match ttl {
            Some(-1) => Remaining::Never,
            Some(t) if t >= 0 => Remaining::Seconds(u64::try_from(t).unwrap_or(0)),
            _ => Remaining::Unknown,
        };
        Ok(Some((Stored::versioned(value, cas), remaining)))
    }

    /// A storage command: `add` or `cas`, flags 0.
    async fn store(
        &mut self,
        verb: &str,
        key: &str,
        exptime: u32,
        value: &[u8],
        cas: Option<u64>,
    ) -> io::Result<Status> {
        self.out.clear();
        self.out.extend_from_slice(verb.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b" 0 ");
        push_number(&mut self.out, u64::from(exptime));
        self.out.push(b' ');
        push_number(&mut self.out, value.len() as u64);
        if let Some(cas) = cas {
            self.out.push(b' ');
            push_number(&mut self.out, cas);
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
        self.send().await?;
        self.status().await
    }

    /// A one-line command with a status reply.
    async fn command(&mut self, parts: &[&[u8]]) -> io::Result<Status> {
        self.out.clear();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.out.push(b' ');
            }
            self.out.extend_from_slice(part);
        }
        self.out.extend_from_slice(b"\r\n");
        self.send().await?;
        self.status().await
    }
}

fn push_number(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b"0123456789"[(n % 10) as usize];
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// An error line from the server (`ERROR`, `CLIENT_ERROR ...`,
/// `SERVER_ERROR ...`) or a reply this client does not know. The text is
/// memcached's own, which never echoes keys or values.
fn server_error(line: &[u8]) -> io::Error {
    let text: String = String::from_utf8_lossy(line).chars().take(80).collect();
    io::Error::other(format!("memcached answered: {text}"))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed memcached reply ({what})"),
    )
}

/// Whether `e` is an error line from the server or a reply that could not
/// be parsed, rather than a failed connection.
fn is_server_reply(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Other | io::ErrorKind::InvalidData | io::ErrorKind::FileTooLarge
    )
}

/// One store operation.
#[derive(Clone, Copy)]
enum Op<'a> {
    Gets(&'a str),
    MetaGet(&'a str),
    Add(&'a str, &'a [u8], u32),
    Cas(&'a str, &'a [u8], u32, u64),
    /// Delete if the CAS unique still matches (meta delete).
    DeleteIf(&'a str, u64),
    Delete(&'a str),
    Touch(&'a str, u32),
}

impl Op<'_> {
    /// The key the operation is about.
    fn key(&self) -> &str {
        match *self {
            Op::Gets(key)
            | Op::MetaGet(key)
            | Op::Add(key, ..)
            | Op::Cas(key, ..)
            | Op::DeleteIf(key, _)
            | Op::Delete(key)
            | Op::Touch(key, _) => key,
        }
    }

    async fn run(self, conn: &mut Connection) -> io::Result<Reply> {
        Ok(match self {
            Op::Gets(key) => Reply::Value(conn.gets(key).await?),
            Op::MetaGet(key) => Reply::Timed(conn.meta_get(key).await?),
            Op::Add(key, value, exptime) => {
                Reply::Status(conn.store("add", key, exptime, value, None).await?)
            }
            Op::Cas(key, value, exptime, cas) => {
                Reply::Status(conn.store("cas", key, exptime, value, Some(cas)).await?)
            }
            Op::DeleteIf(key, cas) => {
                let cas = format!("C{cas}");
                Reply::Status(
                    conn.command(&[b"md", key.as_bytes(), cas.as_bytes()])
                        .await?,
                )
            }
            Op::Delete(key) => Reply::Status(conn.command(&[b"delete", key.as_bytes()]).await?),
            Op::Touch(key, exptime) => {
                let exptime = exptime.to_string();
                Reply::Status(
                    conn.command(&[b"touch", key.as_bytes(), exptime.as_bytes()])
                        .await?,
                )
            }
        })
    }
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

fn unexpected(status: Status) -> Error {
    Error::new(ErrorKind::Store).detail(format!("unexpected memcached reply {status:?}"))
}

fn unexpected_value() -> Error {
    Error::new(ErrorKind::Store).detail("unexpected memcached value reply")
}

impl KvBackend for MemcachedBackend {
    const COMBINES_SAVES: bool = true;

    async fn get(&self, key: &str) -> Result<Option<Stored>, Error> {
        match self.run(Op::Gets(key)).await? {
            Reply::Value(value) => Ok(value),
            Reply::Status(status) => Err(unexpected(status)),
            Reply::Timed(_) => Err(unexpected_value()),
        }
    }

    async fn get_with_remaining(&self, key: &str) -> Result<Option<(Stored, Remaining)>, Error> {
        match self.run(Op::MetaGet(key)).await? {
            Reply::Timed(found) => Ok(found),
            Reply::Status(status) => Err(unexpected(status)),
            Reply::Value(_) => Err(unexpected_value()),
        }
    }

    async fn put(&self, key: &str, write: Write<'_>, expect: Expect<'_>) -> Result<Put, Error> {
        let op = match (write, expect) {
            (Write::Value { value, ttl }, Expect::Absent) => {
                Op::Add(key, value.encoded()?, exptime(ttl, unix_now()))
            }
            (Write::Value { value, ttl }, Expect::Current(held)) => Op::Cas(
                key,
                value.encoded()?,
                exptime(ttl, unix_now()),
                cas_of(held)?,
            ),
            (Write::Delete, Expect::Current(held)) => Op::DeleteIf(key, cas_of(held)?),
            (Write::Delete, Expect::Absent) => {
                return Ok(match self.get(key).await? {
                    Some(current) => Put::Changed(Some(current)),
                    None => Put::Done,
                });
            }
        };
        let Reply::Status(status) = self.run(op).await? else {
            return Err(unexpected_value());
        };
        match status {
            Status::Stored | Status::Hd => Ok(Put::Done),
            Status::NotStored | Status::Exists | Status::Ex => Ok(Put::Changed(None)),
            Status::NotFound | Status::Nf => Ok(Put::Missing),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        match self.run(Op::Delete(key)).await? {
            Reply::Status(Status::Deleted | Status::NotFound) => Ok(()),
            Reply::Status(other) => Err(unexpected(other)),
            Reply::Value(_) | Reply::Timed(_) => Err(unexpected_value()),
        }
    }

    async fn touch(&self, key: &str, ttl: u64) -> Result<bool, Error> {
        match self
            .run(Op::Touch(key, exptime(Some(ttl.max(1)), unix_now())))
            .await?
        {
            Reply::Status(Status::Touched) => Ok(true),
            Reply::Status(Status::NotFound) => Ok(false),
            Reply::Status(other) => Err(unexpected(other)),
            Reply::Value(_) | Reply::Timed(_) => Err(unexpected_value()),
        }
    }

    async fn pause(&self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }
}

/// The CAS unique a value was read with.
fn cas_of(held: &Stored) -> Result<u64, Error> {
    held.version.ok_or_else(|| {
        Error::new(ErrorKind::Store)
            .detail("memcached compare-and-set needs a value read with gets")
    })
}

impl fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addrs: Vec<&str> = self.servers.iter().map(|s| s.addr.as_str()).collect();
        let mut f = f.debug_struct("MemcachedBackend");
        match &self.ring {
            None => f.field("addr", &addrs.first()),
            Some((flavor, _)) => f.field("ring", &addrs).field("ketama", flavor),
        };
        let pool_size = self.servers.first().map_or(0, |s| s.connections.len());
        f.field("pool_size", &pool_size)
            .field("timeout", &self.timeout)
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
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 4096, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            push_number(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn debug_shows_the_settings() {
        let backend = MemcachedBackend::new("127.0.0.1:1").pool_size(0);
        let text = format!("{backend:?}");
        assert!(text.contains("pool_size: 1"), "{text}");
    }
}
