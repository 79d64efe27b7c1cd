//! The Memcached backend (feature `memcached`): memcached's text protocol
//! over tokio, with one pipelined connection per server, on one server
//! or a ring of servers placed by ketama consistent hashing.

use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::AbortHandle;
use tokio::time::Instant;

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
/// A load is one meta get (`mg <key> v c t`); a save one `add` (a new session) or `cas` (a
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
    /// default connection count and timeout. Nothing is connected until
    /// the first request.
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
/// Each server gets one connection (by default; see
/// [`pool_size`](MemcachedBackend::pool_size)) shared by every request:
/// their commands are written in order, those that arrive together in
/// one write, and memcached answers them in the same order on the same
/// connection. Concurrent requests therefore cost neither a connection
/// each nor a round trip of their own, and memcached reads and answers
/// them in batches. A connection is opened by the first request that
/// needs it; one that fails, or whose reply does not come within the
/// [timeout](MemcachedBackend::timeout), is closed, and the next request
/// opens a new one.
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

/// One memcached server and its connections.
struct Server {
    addr: String,
    connections: Box<[Slot]>,
    next: AtomicUsize,
}

/// A connection, once opened. The lock is held only to look at it, and
/// while one request opens it.
type Slot = Mutex<Option<Arc<Mux>>>;

impl Server {
    fn new(addr: String, connections: usize) -> Self {
        Self {
            addr,
            connections: (0..connections.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The connection of `slot`, opened if it is not open; `true` with one
    /// this call opened.
    async fn mux(&self, slot: &Slot, deadline: Instant) -> Result<(Arc<Mux>, bool), Error> {
        let mut held = tokio::time::timeout_at(deadline, slot.lock())
            .await
            .map_err(|elapsed| Error::store(true, elapsed))?;
        if let Some(mux) = held.as_ref().filter(|mux| mux.is_open()) {
            return Ok((Arc::clone(mux), false));
        }
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(&self.addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(Error::store(true, e)),
            Err(elapsed) => return Err(Error::store(true, elapsed)),
        };
        stream
            .set_nodelay(true)
            .map_err(|e| Error::store(true, e))?;
        let mux = Arc::new(Mux::start(stream));
        *held = Some(Arc::clone(&mux));
        Ok((mux, true))
    }

    async fn call(&self, op: Op<'_>, timeout: Duration) -> Result<Reply, Error> {
        let deadline = Instant::now() + timeout;
        let n = self.connections.len();
        let slot = &self.connections[if n == 1 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        }];
        let (mut mux, fresh) = self.mux(slot, deadline).await?;
        let mut reply = mux.call(op, deadline).await;
        if !fresh && matches!(reply, Err(Failure::Lost(_))) {
            // A connection opened earlier may have been closed by a server
            // restart since; try once more on a new one. Repeating is safe:
            // a repeated `cas` or `add` that had landed finds its own write
            // and is merged like any other.
            close(slot, &mux);
            mux = self.mux(slot, deadline).await?.0;
            reply = mux.call(op, deadline).await;
        }
        reply.map_err(|failure| match failure {
            Failure::Reply(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                Error::with_source(ErrorKind::RecordTooLarge, e)
            }
            Failure::Reply(e) => Error::store(false, e),
            Failure::Lost(e) => {
                close(slot, &mux);
                Error::store(true, e)
            }
            Failure::TimedOut(elapsed) => {
                // No reply in time: the server is stuck, or the connection
                // half-open. Later requests get a new one.
                close(slot, &mux);
                Error::store(true, elapsed)
            }
        })
    }
}

/// Closes `mux` and empties `slot` if it still holds it.
fn close(slot: &Slot, mux: &Arc<Mux>) {
    mux.close();
    if let Ok(mut held) = slot.try_lock() {
        if held.as_ref().is_some_and(|m| Arc::ptr_eq(m, mux)) {
            *held = None;
        }
    }
}

/// Why a call on a connection failed.
enum Failure {
    /// The server answered with an error, or with something this client
    /// cannot parse.
    Reply(io::Error),
    /// The connection failed or was closed before the reply came.
    Lost(io::Error),
    TimedOut(tokio::time::error::Elapsed),
}

/// A connection shared by concurrent requests. A task of its own writes
/// the queued commands and hands each reply, in order, to its request.
struct Mux {
    queue: mpsc::Sender<Request>,
    task: AbortHandle,
    /// Set by [`Mux::close`]; the task may take a moment to end.
    closed: AtomicBool,
}

/// A command on its way, what its reply looks like and where it goes.
struct Request {
    command: Vec<u8>,
    expects: Expects,
    reply: oneshot::Sender<io::Result<Reply>>,
}

/// The commands a connection takes at most before its senders wait.
const QUEUE: usize = 1024;

/// The bytes written at most in one write.
const BATCH: usize = 64 * 1024;

impl Mux {
    fn start(stream: TcpStream) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        let task = tokio::spawn(drive(stream, requests)).abort_handle();
        Self {
            queue,
            task,
            closed: AtomicBool::new(false),
        }
    }

    fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Relaxed) && !self.queue.is_closed()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.task.abort();
    }

    async fn call(&self, op: Op<'_>, deadline: Instant) -> Result<Reply, Failure> {
        let mut command = Vec::with_capacity(op.size_hint());
        op.encode(&mut command);
        let (reply, answer) = oneshot::channel();
        let request = Request {
            command,
            expects: op.expects(),
            reply,
        };
        let lost = || Failure::Lost(io::ErrorKind::ConnectionAborted.into());
        match tokio::time::timeout_at(deadline, self.queue.send(request)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(lost()),
            Err(elapsed) => return Err(Failure::TimedOut(elapsed)),
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(e))) if is_server_reply(&e) => Err(Failure::Reply(e)),
            Ok(Ok(Err(e))) => Err(Failure::Lost(e)),
            Ok(Err(_)) => Err(lost()),
            Err(elapsed) => Err(Failure::TimedOut(elapsed)),
        }
    }
}

/// A connection's task: writes the queued commands, those queued together
/// in one write, and reads the replies in the same order. It ends when the
/// connection fails or falls out of step, or when its [`Mux`] is gone;
/// requests still waiting then see their reply channel closed.
async fn drive(stream: TcpStream, mut requests: mpsc::Receiver<Request>) {
    let (read, mut write) = stream.into_split();
    let (waiting, mut replies) = mpsc::unbounded_channel::<(Expects, oneshot::Sender<_>)>();
    let writer = async move {
        let mut out = Vec::with_capacity(4096);
        while let Some(first) = requests.recv().await {
            let mut next = Some(first);
            while let Some(request) = next.take() {
                out.extend_from_slice(&request.command);
                // The reader outlives this loop, so the send cannot fail.
                let _ = waiting.send((request.expects, request.reply));
                if out.len() < BATCH {
                    next = requests.try_recv().ok();
                }
            }
            write.write_all(&out).await?;
            out.clear();
        }
        Ok::<(), io::Error>(())
    };
    let reader = async move {
        let mut conn = Connection {
            io: BufReader::new(read),
            line: Vec::with_capacity(64),
        };
        while let Some((expects, reply)) = replies.recv().await {
            let result = conn.read(expects).await;
            // After an error reply other than "too large" (which memcached
            // sends once it has read the whole item) the stream may be out
            // of step: end the connection.
            let in_step = match &result {
                Ok(_) => true,
                Err(e) => e.kind() == io::ErrorKind::FileTooLarge,
            };
            // A request that gave up no longer listens; that is fine.
            let _ = reply.send(result);
            if !in_step {
                return;
            }
        }
    };
    let (mut writer, mut reader) = (pin!(writer), pin!(reader));
    // Both run until the reader ends, or the writer: with no more
    // requests the reader still reads the replies due, then ends too.
    let written = poll_fn(|cx| match reader.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(None),
        Poll::Pending => writer.as_mut().poll(cx).map(Some),
    })
    .await;
    if let Some(Ok(())) = written {
        reader.await;
    }
}

/// The default number of connections per server.
const DEFAULT_POOL_SIZE: usize = 1;

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
    /// points per server). Each server has its own connection. Only
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

    /// Sets the number of connections per server (default 1, at least 1).
    /// Requests take them in turn, each shared by all requests that use
    /// it, so more than one is worth it only when one connection's
    /// memcached thread or task cannot keep up.
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
        self.servers[self.server_for(op.key())]
            .call(op, self.timeout)
            .await
    }
}

/// The reading side of a connection: memcached's text-protocol replies.
struct Connection {
    io: BufReader<OwnedReadHalf>,
    /// The reply line being read.
    line: Vec<u8>,
}

/// The reply a command expects.
#[derive(Debug, Clone, Copy)]
enum Expects {
    /// `mg ... v c t`: a value, its CAS unique and TTL, or none.
    Value,
    /// A status line.
    Status,
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
    Value(Option<(Stored, Remaining)>),
    Status(Status),
}

impl Connection {
    async fn read(&mut self, expects: Expects) -> io::Result<Reply> {
        Ok(match expects {
            Expects::Value => Reply::Value(self.value().await?),
            Expects::Status => Reply::Status(self.status().await?),
        })
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

    /// The reply to meta get `mg key v c t`: the value, its CAS unique
    /// and its TTL.
    async fn value(&mut self) -> io::Result<Option<(Stored, Remaining)>> {
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
    /// Meta get `mg key v c t`: the value, its CAS unique and TTL. Not
    /// `gets`: memcached 1.6 answers each `gets` with a send of its own,
    /// and pipelined `mg` commands together.
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
            Op::MetaGet(key)
            | Op::Add(key, ..)
            | Op::Cas(key, ..)
            | Op::DeleteIf(key, _)
            | Op::Delete(key)
            | Op::Touch(key, _) => key,
        }
    }

    fn expects(&self) -> Expects {
        match self {
            Op::MetaGet(_) => Expects::Value,
            _ => Expects::Status,
        }
    }

    /// About the length of the command, to allocate it once.
    fn size_hint(&self) -> usize {
        let value = match self {
            Op::Add(_, value, _) | Op::Cas(_, value, ..) => value.len(),
            _ => 0,
        };
        self.key().len() + value + 64
    }

    /// Appends the command to `out`.
    fn encode(&self, out: &mut Vec<u8>) {
        let line = |out: &mut Vec<u8>, verb: &[u8], key: &str| {
            out.extend_from_slice(verb);
            out.push(b' ');
            out.extend_from_slice(key.as_bytes());
        };
        let number = |out: &mut Vec<u8>, n: u64| {
            out.push(b' ');
            push_number(out, n);
        };
        match *self {
            Op::MetaGet(key) => {
                line(out, b"mg", key);
                out.extend_from_slice(b" v c t");
            }
            Op::Add(key, value, exptime) | Op::Cas(key, value, exptime, _) => {
                let verb: &[u8] = if matches!(self, Op::Add(..)) {
                    b"add"
                } else {
                    b"cas"
                };
                line(out, verb, key);
                out.extend_from_slice(b" 0");
                number(out, u64::from(exptime));
                number(out, value.len() as u64);
                if let Op::Cas(.., cas) = *self {
                    number(out, cas);
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(value);
            }
            Op::DeleteIf(key, cas) => {
                line(out, b"md", key);
                out.extend_from_slice(b" C");
                push_number(out, cas);
            }
            Op::Delete(key) => line(out, b"delete", key),
            Op::Touch(key, exptime) => {
                line(out, b"touch", key);
                number(out, u64::from(exptime));
            }
        }
        out.extend_from_slice(b"\r\n");
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

/// The exptime a record is written with: one second beyond its TTL.
/// memcached's clock ticks once a second, and an item expires when that
/// clock reaches the exptime, so an item written with exptime `ttl` lives
/// between `ttl - 1` and `ttl` seconds. With `ttl + 1` it lives at least
/// its TTL, as the crate's whole-second expiry rule counts it (alive while
/// `now - last <= ttl`), and a read right after a write or touch never
/// sees the record aged by a tick that fell between them (which would
/// make a rolling session refresh twice within its interval).
/// aiohttp-session writes `ttl` itself (a difference listed in the README).
fn item_exptime(ttl: Option<u64>, now: u64) -> u32 {
    exptime(ttl.map(|ttl| ttl.saturating_add(1)), now)
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
        Ok(self
            .get_with_remaining(key)
            .await?
            .map(|(stored, _)| stored))
    }

    async fn get_with_remaining(&self, key: &str) -> Result<Option<(Stored, Remaining)>, Error> {
        match self.run(Op::MetaGet(key)).await? {
            Reply::Value(found) => Ok(found),
            Reply::Status(status) => Err(unexpected(status)),
        }
    }

    async fn put(&self, key: &str, write: Write<'_>, expect: Expect<'_>) -> Result<Put, Error> {
        let op = match (write, expect) {
            (Write::Value { value, ttl }, Expect::Absent) => {
                Op::Add(key, value.encoded()?, item_exptime(ttl, unix_now()))
            }
            (Write::Value { value, ttl }, Expect::Current(held)) => Op::Cas(
                key,
                value.encoded()?,
                item_exptime(ttl, unix_now()),
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
            Reply::Value(_) => Err(unexpected_value()),
        }
    }

    async fn touch(&self, key: &str, ttl: u64) -> Result<bool, Error> {
        match self
            .run(Op::Touch(key, item_exptime(Some(ttl), unix_now())))
            .await?
        {
            Reply::Status(Status::Touched) => Ok(true),
            Reply::Status(Status::NotFound) => Ok(false),
            Reply::Status(other) => Err(unexpected(other)),
            Reply::Value(_) => Err(unexpected_value()),
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
            .detail("memcached compare-and-set needs a value read with its CAS unique")
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
    fn items_are_written_a_second_beyond_their_ttl() {
        assert_eq!(item_exptime(Some(0), NOW), 1);
        assert_eq!(item_exptime(Some(120), NOW), 121);
        assert_eq!(item_exptime(Some(2_591_999), NOW), 2_592_000);
        // One second past 30 days: absolute.
        assert_eq!(item_exptime(Some(2_592_000), NOW), 1_702_592_001);
        assert_eq!(item_exptime(None, NOW), 0);
        assert_eq!(item_exptime(Some(u64::MAX), NOW), u32::MAX);
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
