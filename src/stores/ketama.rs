//! Ketama consistent hashing, placing keys on servers exactly as libmemcached
//! (and so pylibmc) does.
//!
//! A [`Ring`] is built from the server list, in the order the Python client
//! was given it, and [`Ring::server_for`] returns the index in that list of
//! the server libmemcached would send a key to. Which of libmemcached's
//! configurations to mirror is a [`Flavor`]; the two sides must use the same
//! one and the same server strings.
//!
//! # The scheme
//!
//! Read from libmemcached's source (awesomized/libmemcached at 374774df,
//! the 1.1.x line that Debian 12 ships as 1.1.4; the 1.0.16 that pylibmc
//! 1.6.3's wheel bundles has the same logic), `src/libmemcached/hosts.cc`
//! `update_continuum` (lines 105-285) and `src/libmemcached/hash.cc`:
//!
//! 1. **Point names.** Point `i` (from 0) of server `host:port` is named
//!    `"{host}-{i}"` when the port is 11211 (`MEMCACHED_DEFAULT_PORT`), and
//!    `"{host}:{port}-{i}"` otherwise (hosts.cc lines 235-241). `host` is the
//!    string as configured, never resolved; an IPv6 address is named without
//!    its brackets (as pylibmc passes it).
//! 2. **Unweighted continuum** ([`Flavor::Ketama`], [`Flavor::KetamaMd5`],
//!    all weights 1): `MEMCACHED_POINTS_PER_SERVER` = 100 points per server,
//!    one per name, `i` in `0..100`, each the *key* hash function applied to
//!    the name (`hashkit_digest(&ptr->hashkit, ..)`, line 256).
//! 3. **Weighted continuum** ([`Flavor::KetamaWeighted`], or any weight
//!    above 1): a server of weight `w` out of a total `W` over `n` servers
//!    gets `floor(w / W * 160 / 4 * n + 1e-10)` names, computed in `f32`
//!    (lines 179-183; `MEMCACHED_POINTS_PER_SERVER_KETAMA` = 160, so 40 names
//!    on equal weights), and each name gives 4 points from one MD5 digest:
//!    the little-endian `u32`s of digest bytes 0-3, 4-7, 8-11 and 12-15
//!    (`ketama_server_hash`, lines 74-82, with alignment 0..4, lines
//!    249-254). That is 160 points per server on equal weights. These points
//!    are always MD5, whatever the key hash.
//! 4. Points are sorted by (value, server index) (`continuum_item_cmp`,
//!    lines 84-103): on equal values the earlier server comes first.
//! 5. **Key hash.** [`Flavor::Ketama`]: Bob Jenkins' one-at-a-time hash
//!    (`src/libhashkit/one_at_a_time.cc`), libmemcached's default, with each
//!    byte sign-extended as C's `char` is on x86-64 (matters only for bytes
//!    above 0x7f). The other flavors: MD5 of the key, its first four digest
//!    bytes read little-endian (`hashkit_md5`, `src/libhashkit/md5.cc` lines
//!    322-330).
//! 6. **Lookup** (`dispatch_host`, hash.cc lines 30-53): a binary search
//!    for the first point whose value is `>=` the key's hash; past the last
//!    point it wraps around to the first. A key whose hash equals a point's
//!    value goes to that point's server. With a single server, libmemcached
//!    skips hashing and uses it (hash.cc lines 76-77).
//!
//! # Which flavor is which pylibmc configuration
//!
//! In `src/libmemcached/behavior.cc` (lines 152-172),
//! `MEMCACHED_BEHAVIOR_KETAMA` only switches the distribution to
//! `MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA` (unweighted) and does *not*
//! change the hash: libmemcached's documentation still says it selects MD5,
//! but the code stopped doing so in 2011 (commit 4b985470).
//! `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED` sets MD5 for keys and points and the
//! weighted continuum. Adding a server of weight above 1 under a consistent
//! distribution turns the weighted continuum on (hosts.cc lines 318-322);
//! pylibmc sets behaviors before it adds servers, so that applies to it.
//!
//! | pylibmc `behaviors` | flavor | key hash | points per server |
//! |---|---|---|---|
//! | `{"ketama": True}` | [`Flavor::Ketama`] | one-at-a-time | 100 (weights 1), else weighted MD5 |
//! | `{"ketama": True, "hash": "md5"}` | [`Flavor::KetamaMd5`] | MD5 | 100 (weights 1), else weighted MD5 |
//! | `{"ketama_weighted": True}` | [`Flavor::KetamaWeighted`] | MD5 | 160 = 40 MD5 digests x 4, times the weight share |
//!
//! pylibmc's default distribution is `modula` (hash modulo server count,
//! not consistent), which this module does not implement.
//!
//! [`Flavor::KetamaWeighted`] with equal weights is the classic last.fm
//! libketama scheme, except that libmemcached leaves `:11211` out of the
//! names; the pure-Python `uhashring` (`hash_fn="ketama"`) agrees with it
//! when its nodes are named the same way (`"host"` for port 11211, else
//! `"host:port"`), except for a key whose hash equals a point exactly, which
//! uhashring sends to the next point.
//!
//! The test vectors below were observed on real memcached servers through
//! pylibmc 1.6.3 with libmemcached 1.0.16 and 1.1.4 (identical results);
//! `tests/interop/ketama_vectors.py` regenerates them.

use std::fmt;

use md5::{Digest, Md5};

/// `MEMCACHED_POINTS_PER_SERVER`: points per server on the unweighted
/// continuum.
const POINTS_PER_SERVER: u32 = 100;

/// `MEMCACHED_POINTS_PER_SERVER_KETAMA`: points per server on the weighted
/// continuum, for equal weights.
const POINTS_PER_SERVER_KETAMA: u32 = 160;

/// Points taken from one MD5 digest on the weighted continuum.
const POINTS_PER_HASH: u32 = 4;

/// `MEMCACHED_DEFAULT_PORT`, left out of the point names.
const DEFAULT_PORT: u16 = 11211;

/// Which ketama placement a memcached ring uses, named after the
/// libmemcached (pylibmc) configuration it reproduces key for key; a Python
/// client sharing the ring must use the same one, with the same server
/// strings in the same order.
///
/// | pylibmc `behaviors` | flavor | key hash | points per server |
/// |---|---|---|---|
/// | `{"ketama": True}` | [`Ketama`](Self::Ketama) | one-at-a-time | 100 |
/// | `{"ketama": True, "hash": "md5"}` | [`KetamaMd5`](Self::KetamaMd5) | MD5 | 100 |
/// | `{"ketama_weighted": True}` | [`KetamaWeighted`](Self::KetamaWeighted) (the default) | MD5 | 160 (40 MD5 digests x 4) |
///
/// [`KetamaWeighted`](Self::KetamaWeighted) is also the classic libketama
/// scheme, which the pure-Python `uhashring` implements
/// (`HashRing(nodes, hash_fn="ketama")`, each node named `"host"` for port
/// 11211 and `"host:port"` otherwise); uhashring sends a key whose hash
/// equals a point exactly to the next point (libmemcached to that point),
/// which for 2^32 possible hashes and 160 points per server is a rare
/// exception. pylibmc's default distribution (`modula`, hash modulo the
/// server count) is not consistent hashing and is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Flavor {
    /// `MEMCACHED_BEHAVIOR_KETAMA` with the default hash, pylibmc
    /// `{"ketama": True}`: one-at-a-time hash, 100 points per server.
    Ketama,
    /// `MEMCACHED_BEHAVIOR_KETAMA` with `MEMCACHED_BEHAVIOR_HASH` = MD5,
    /// pylibmc `{"ketama": True, "hash": "md5"}`: MD5, 100 points per server.
    KetamaMd5,
    /// `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`, pylibmc
    /// `{"ketama_weighted": True}`: MD5, 160 points per server (40 digests x
    /// 4) scaled by weight; the libketama-compatible one, and the default.
    #[default]
    KetamaWeighted,
}

/// Why a [`Ring`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RingError {
    /// The server list is empty.
    NoServers,
    /// A server string is not `host`, `host:port`, `[ipv6]` or
    /// `[ipv6]:port`.
    BadServer(String),
    /// More servers than a `u32` can index.
    TooManyServers,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoServers => f.write_str("ketama ring needs at least one server"),
            Self::BadServer(server) => write!(
                f,
                "bad memcached server {server:?}: expected host:port or [ipv6]:port"
            ),
            Self::TooManyServers => f.write_str("too many servers for a ketama ring"),
        }
    }
}

impl std::error::Error for RingError {}

/// The hash applied to keys (and, on the unweighted continuum, to point
/// names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyHash {
    /// libhashkit's `hashkit_one_at_a_time`.
    OneAtATime,
    /// libhashkit's `hashkit_md5`.
    Md5,
}

impl KeyHash {
    fn hash(self, bytes: &[u8]) -> u32 {
        match self {
            Self::OneAtATime => one_at_a_time(bytes),
            Self::Md5 => {
                let digest = Md5::digest(bytes);
                u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
            }
        }
    }
}

/// Bob Jenkins' one-at-a-time hash as libhashkit computes it: bytes go
/// through C's `char`, which is signed on x86-64, so bytes above 0x7f are
/// sign-extended.
fn one_at_a_time(bytes: &[u8]) -> u32 {
    let mut value: u32 = 0;
    for &byte in bytes {
        // `(uint32_t) *ptr` with `const char *ptr`.
        value = value.wrapping_add(i32::from(byte as i8) as u32);
        value = value.wrapping_add(value << 10);
        value ^= value >> 6;
    }
    value = value.wrapping_add(value << 3);
    value ^= value >> 11;
    value.wrapping_add(value << 15)
}

/// Splits `host:port`, `host`, `[ipv6]:port` or `[ipv6]` into the host as
/// libmemcached names it and the port (11211 when absent or 0, as
/// libmemcached does).
fn split_server(server: &str) -> Result<(&str, u16), RingError> {
    let bad = || RingError::BadServer(server.to_owned());
    let (host, port) = if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        if after.is_empty() {
            (host, None)
        } else {
            (host, Some(after.strip_prefix(':').ok_or_else(bad)?))
        }
    } else {
        match server.rsplit_once(':') {
            None => (server, None),
            // A bare IPv6 address: the port would be ambiguous.
            Some((host, _)) if host.contains(':') => return Err(bad()),
            Some((host, port)) => (host, Some(port)),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            match port.parse::<u16>() {
                Ok(0) => DEFAULT_PORT,
                Ok(port) => port,
                Err(_) => return Err(bad()),
            }
        }
        Some(_) => return Err(bad()),
    };
    Ok((host, port))
}

/// The base of a server's point names: `host` for port 11211, else
/// `host:port`.
fn point_base(host: &str, port: u16) -> String {
    if port == DEFAULT_PORT {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

/// A ketama continuum over a fixed list of servers.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    /// Point values, ascending.
    values: Box<[u32]>,
    /// `owners[i]` is the server index of `values[i]`.
    owners: Box<[u32]>,
    /// The hash applied to keys.
    hash: KeyHash,
    /// How many servers the ring was built from.
    servers: usize,
}

impl Ring {
    /// Builds the ring for `servers` (`host:port` strings, weight 1 each) in
    /// the order the other client lists them.
    pub(crate) fn new<S: AsRef<str>>(flavor: Flavor, servers: &[S]) -> Result<Self, RingError> {
        let weighted: Vec<(&str, u32)> = servers.iter().map(|s| (s.as_ref(), 1)).collect();
        Self::with_weights(flavor, &weighted)
    }

    /// Builds the ring for `(server, weight)` pairs, where `server` is
    /// `host:port` (pylibmc's `"host:port:weight"`). A weight of 0 counts as
    /// 1, as in libmemcached; any weight above 1 selects the weighted
    /// continuum whatever the flavor (the key hash stays the flavor's).
    pub(crate) fn with_weights<S: AsRef<str>>(
        flavor: Flavor,
        servers: &[(S, u32)],
    ) -> Result<Self, RingError> {
        if servers.is_empty() {
            return Err(RingError::NoServers);
        }
        let live = u32::try_from(servers.len()).map_err(|_| RingError::TooManyServers)?;
        let mut parsed = Vec::with_capacity(servers.len());
        for (server, weight) in servers {
            let (host, port) = split_server(server.as_ref())?;
            parsed.push((point_base(host, port), (*weight).max(1)));
        }
        let hash = match flavor {
            Flavor::Ketama => KeyHash::OneAtATime,
            Flavor::KetamaMd5 | Flavor::KetamaWeighted => KeyHash::Md5,
        };
        let weighted = flavor == Flavor::KetamaWeighted || parsed.iter().any(|(_, w)| *w > 1);

        let per_server = if weighted {
            POINTS_PER_SERVER_KETAMA
        } else {
            POINTS_PER_SERVER
        };
        let mut points: Vec<(u32, u32)> = Vec::with_capacity(servers.len() * per_server as usize);
        let total_weight: u64 = parsed.iter().map(|(_, w)| u64::from(*w)).sum();
        for (index, (base, weight)) in (0..live).zip(&parsed) {
            if weighted {
                // hosts.cc: float pct = weight / total_weight;
                // floor((float)(pct * 160 / 4 * (float)live + 1e-10F)) * 4
                let pct = *weight as f32 / total_weight as f32;
                let share = pct * POINTS_PER_SERVER_KETAMA as f32 / POINTS_PER_HASH as f32
                    * live as f32
                    + 1e-10_f32;
                // C's float-to-unsigned conversion: the share is small and
                // non-negative, the truncation is the point.
                #[allow(clippy::cast_possible_truncation, reason = "as libmemcached does")]
                let names = share.floor() as u32;
                for i in 0..names {
                    let digest = Md5::digest(format!("{base}-{i}").as_bytes());
                    for quad in digest.chunks_exact(4) {
                        let value = u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]);
                        points.push((value, index));
                    }
                }
            } else {
                for i in 0..POINTS_PER_SERVER {
                    points.push((hash.hash(format!("{base}-{i}").as_bytes()), index));
                }
            }
        }
        points.sort_unstable();
        let (values, owners): (Vec<u32>, Vec<u32>) = points.into_iter().unzip();
        Ok(Self {
            values: values.into_boxed_slice(),
            owners: owners.into_boxed_slice(),
            hash,
            servers: servers.len(),
        })
    }

    /// The index (into the server list given to the constructor) of the
    /// server that holds `key`, the full key as sent to memcached.
    pub(crate) fn server_for(&self, key: &[u8]) -> usize {
        if self.servers == 1 {
            return 0;
        }
        let hash = self.hash.hash(key);
        let at = self.values.partition_point(|&value| value < hash);
        // Past the last point: wrap around to the first.
        let at = if at == self.values.len() { 0 } else { at };
        self.owners.get(at).map_or(0, |&owner| owner as usize)
    }

    /// How many servers the ring was built from.
    #[cfg(test)]
    pub(crate) fn server_count(&self) -> usize {
        self.servers
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `n` keys in aiohttp-session's format: `AIOHTTP_SESSION_` and 32
    /// lowercase hex digits.
    fn session_keys(n: u32) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let digest = Md5::digest(format!("session-{i}").as_bytes());
                let mut key = b"AIOHTTP_SESSION_".to_vec();
                for byte in digest {
                    key.extend_from_slice(format!("{byte:02x}").as_bytes());
                }
                key
            })
            .collect()
    }

    const FLAVORS: [Flavor; 3] = [Flavor::Ketama, Flavor::KetamaMd5, Flavor::KetamaWeighted];

    const THREE: [&str; 3] = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"];
    const FOUR: [&str; 4] = [
        "10.0.0.1:11211",
        "10.0.0.2:11211",
        "10.0.0.3:11211",
        "10.0.0.4:11211",
    ];

    #[test]
    fn known_placements_from_pylibmc() {
        assert!(KEYS.len() >= 200);
        for (name, flavor, servers, expected) in CASES {
            assert_eq!(expected.len(), KEYS.len(), "{name}");
            let ring = Ring::with_weights(*flavor, servers).unwrap();
            assert_eq!(ring.server_count(), servers.len());
            let mut wrong = Vec::new();
            for (key, want) in KEYS.iter().zip(expected.bytes()) {
                let got = ring.server_for(key);
                if got != usize::from(want - b'0') {
                    wrong.push((String::from_utf8_lossy(key).into_owned(), got, want as char));
                }
            }
            assert!(wrong.is_empty(), "{name}: {} wrong: {wrong:?}", wrong.len());
        }
    }

    #[test]
    fn adding_a_fourth_server_moves_a_quarter_to_it() {
        let keys = session_keys(10_000);
        for flavor in FLAVORS {
            let three = Ring::new(flavor, &THREE).unwrap();
            let four = Ring::new(flavor, &FOUR).unwrap();
            let mut moved = 0;
            for key in &keys {
                let (before, after) = (three.server_for(key), four.server_for(key));
                if before != after {
                    assert_eq!(after, 3, "{flavor:?}: a key moved between old servers");
                    moved += 1;
                }
            }
            let share = f64::from(moved) / keys.len() as f64;
            assert!((0.18..=0.32).contains(&share), "{flavor:?}: {share}");
        }
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let keys = session_keys(10_000);
        for flavor in FLAVORS {
            let four = Ring::new(flavor, &FOUR).unwrap();
            let rest = [FOUR[0], FOUR[2], FOUR[3]];
            let three = Ring::new(flavor, &rest).unwrap();
            let mut orphans = 0;
            for key in &keys {
                let before = FOUR[four.server_for(key)];
                let after = rest[three.server_for(key)];
                if before == FOUR[1] {
                    orphans += 1;
                } else {
                    assert_eq!(before, after, "{flavor:?}: a key of a kept server moved");
                }
            }
            assert!(orphans > 1_500, "{flavor:?}: {orphans}");
        }
    }

    #[test]
    fn distribution_over_three_servers() {
        let keys = session_keys(10_000);
        for flavor in FLAVORS {
            let ring = Ring::new(flavor, &THREE).unwrap();
            let mut counts = [0_u32; 3];
            for key in &keys {
                counts[ring.server_for(key)] += 1;
            }
            for count in counts {
                assert!((2_500..=4_200).contains(&count), "{flavor:?}: {counts:?}");
            }
        }
    }

    #[test]
    fn weights_scale_the_share() {
        let keys = session_keys(10_000);
        let servers = [("10.0.0.1:11211", 1), ("10.0.0.2:11211", 3)];
        let ring = Ring::with_weights(Flavor::KetamaWeighted, &servers).unwrap();
        assert_eq!(ring.values.len(), 80 + 240);
        let heavy = keys.iter().filter(|k| ring.server_for(k) == 1).count();
        assert!((6_800..=8_200).contains(&heavy), "{heavy}");
    }

    #[test]
    fn point_counts() {
        let three = Ring::new(Flavor::Ketama, &THREE).unwrap();
        assert_eq!(three.values.len(), 300);
        let three = Ring::new(Flavor::KetamaWeighted, &THREE).unwrap();
        assert_eq!(three.values.len(), 480);
        assert!(three.values.windows(2).all(|w| w[0] <= w[1]));
        // A weight above 1 selects the weighted continuum (160 per share).
        let mixed = [("a:1", 2), ("b:1", 2)];
        let ring = Ring::with_weights(Flavor::Ketama, &mixed).unwrap();
        assert_eq!(ring.values.len(), 320);
        assert_eq!(ring.hash, KeyHash::OneAtATime);
    }

    #[test]
    fn wraps_around_past_the_last_point() {
        let ring = Ring::new(Flavor::KetamaWeighted, &THREE).unwrap();
        let last = *ring.values.last().unwrap();
        let first_owner = ring.owners[0] as usize;
        // Find a key hashing above the last point: it must go to the owner of
        // the first point.
        let key = (0..)
            .map(|i| format!("wrap-{i}").into_bytes())
            .find(|k| KeyHash::Md5.hash(k) > last)
            .unwrap();
        assert_eq!(ring.server_for(&key), first_owner);
    }

    #[test]
    fn exact_hit_goes_to_that_point() {
        // The key equal to the first point name of server 1 hashes to that
        // point's value exactly (MD5, first four bytes).
        let ring = Ring::new(Flavor::KetamaWeighted, &THREE).unwrap();
        assert_eq!(ring.server_for(b"10.0.0.2-0"), 1);
        let ring = Ring::new(Flavor::Ketama, &FOUR).unwrap();
        assert_eq!(ring.server_for(b"10.0.0.4-7"), 3);
    }

    #[test]
    fn single_server_takes_everything() {
        let ring = Ring::new(Flavor::Ketama, &["127.0.0.1:11211"]).unwrap();
        assert_eq!(ring.server_for(b"anything"), 0);
        assert_eq!(ring.server_for(b""), 0);
    }

    #[test]
    fn one_at_a_time_sign_extends_like_c_char() {
        // Known values of libhashkit's one-at-a-time (x86-64).
        assert_eq!(one_at_a_time(b""), 0);
        // Values from Debian's libhashkit 1.1.4 (libhashkit_one_at_a_time and
        // libhashkit_md5 through ctypes, x86-64).
        assert_eq!(one_at_a_time(b"a"), 0xca2e_9442);
        assert_eq!(one_at_a_time(b"AIOHTTP_SESSION_"), 0xf3af_9fa2);
        assert_eq!(one_at_a_time(b"\xc3"), 0x7740_365a);
        assert_eq!(one_at_a_time(b"C"), 0xa69e_cd2b);
        assert_eq!(one_at_a_time("cl\u{e9}".as_bytes()), 0x754f_6019);
        assert_eq!(KeyHash::Md5.hash(b"a"), 0xb975_c10c);
    }

    #[test]
    fn server_strings() {
        assert_eq!(split_server("127.0.0.1:21201"), Ok(("127.0.0.1", 21201)));
        assert_eq!(split_server("cache"), Ok(("cache", 11211)));
        assert_eq!(split_server("cache:0"), Ok(("cache", 11211)));
        assert_eq!(split_server("[::1]:22122"), Ok(("::1", 22122)));
        assert_eq!(split_server("[::1]"), Ok(("::1", 11211)));
        let bad_ones = [
            "",
            ":11211",
            "::1:11211",
            "host:",
            "host:+1",
            "host:9x",
            "[::1",
        ];
        for bad in bad_ones.into_iter().chain(["host:70000", "[::1]11211"]) {
            assert!(split_server(bad).is_err(), "{bad}");
        }
        assert_eq!(point_base("127.0.0.1", 11211), "127.0.0.1");
        assert_eq!(point_base("127.0.0.1", 21201), "127.0.0.1:21201");
        assert_eq!(
            Ring::new::<&str>(Flavor::Ketama, &[]).unwrap_err(),
            RingError::NoServers
        );
        assert!(matches!(
            Ring::new(Flavor::Ketama, &["a:1", "b:x"]),
            Err(RingError::BadServer(s)) if s == "b:x"
        ));
    }

    // BEGIN GENERATED by tests/interop/ketama_vectors.py; do not edit.
    // Observed with pylibmc 1.6.3, libmemcached 1.1.4.
    /// Keys of the known-answer vectors.
    const KEYS: &[&[u8]] = &[
        b"AIOHTTP_SESSION_e118244150b73385b526a0c997904682",
        b"AIOHTTP_SESSION_6190eb3c32965b6be60466f81380b870",
        b"AIOHTTP_SESSION_bfd65f3d1c17534e82eaba1be1519fc5",
        b"AIOHTTP_SESSION_ac9f4ad0fe231659109b030cb151359e",
        b"AIOHTTP_SESSION_e13d84dd2d1919a530ebd7bc3b3ac3ae",
        b"AIOHTTP_SESSION_98a47701b01238def782094e7d1d4095",
        b"AIOHTTP_SESSION_0bb54cf6916efdfd91403039491961a4",
        b"AIOHTTP_SESSION_3815ae98c560f2f91ad3956add84a4fb",
        b"AIOHTTP_SESSION_bac78b4187a83add56a48888bbedd90b",
        b"AIOHTTP_SESSION_b8d99b5150000c21ee2fde03bb7152ac",
        b"AIOHTTP_SESSION_5e72421cf40e398dfe32d6541b782ffa",
        b"AIOHTTP_SESSION_c03f3460651b11cafd978baba335eeb2",
        b"AIOHTTP_SESSION_b711911569a4a1bfed7a1c6180ae63fd",
        b"AIOHTTP_SESSION_1116d7218583643c96f967888454d7fe",
        b"AIOHTTP_SESSION_652b125c7cd3eed96095d0ed116b856e",
        b"AIOHTTP_SESSION_dd44d7df8e7768177279cf2a1d1ccd86",
        b"AIOHTTP_SESSION_da547565c8915e629092382d0c568ba3",
        b"AIOHTTP_SESSION_cebf71f53b46941a39d5baf1a2d1089e",
        b"AIOHTTP_SESSION_e918793984bdbeacebf5d4d5a14d92ee",
        b"AIOHTTP_SESSION_4067e7695f2abaebfc9b5416781ca71f",
        b"AIOHTTP_SESSION_ded43b139b823bde1b849a42c2a8c591",
        b"AIOHTTP_SESSION_12d741918e65aec713dc7a59f1df7c02",
        b"AIOHTTP_SESSION_8323047ac183aa7240e03cde28b6fec9",
        b"AIOHTTP_SESSION_40fafd2d346d926dbf5e85f2bf1787f7",
        b"AIOHTTP_SESSION_1a19df4a6b469c52cb113579f74e01a2",
        b"AIOHTTP_SESSION_589bbe4d77ecb6807a5c5f195ea28bcc",
        b"AIOHTTP_SESSION_efc49e0492dd72d809f915dcb1526ad0",
        b"AIOHTTP_SESSION_02bf05926d07979d7c8e1d0aacfc9c69",
        b"AIOHTTP_SESSION_8d15a9baed34770834c990ec6b12ba29",
        b"AIOHTTP_SESSION_213004e318922e94dc655a539386153f",
        b"AIOHTTP_SESSION_9f28b858bcd4da96e6020cbb231ead04",
        b"AIOHTTP_SESSION_85f8246919a0e35b5c5b976c85a97e98",
        b"AIOHTTP_SESSION_433f71a2877680f607541c0403613d98",
        b"AIOHTTP_SESSION_5d9986c437eb4374b924be5c3eac6329",
        b"AIOHTTP_SESSION_a774fc2e891860f59e34022448d8534d",
        b"AIOHTTP_SESSION_c806ad2169033ddf6eec75642b495dc5",
        b"AIOHTTP_SESSION_42a66567dada300f9c54edcd4e0e742f",
        b"AIOHTTP_SESSION_d46bfd96a27d3f0da001e81a479ee5db",
        b"AIOHTTP_SESSION_a6aa671919f534eba3b1bd682028a22a",
        b"AIOHTTP_SESSION_9d11ac928547a52ac8028085194b22de",
        b"AIOHTTP_SESSION_c7ff830f5bca05a041aa76c8199b8bd2",
        b"AIOHTTP_SESSION_18108854b3dbe5c205e2fec1b6c6da0f",
        b"AIOHTTP_SESSION_d0704d5b053886757e55fcc4704379a0",
        b"AIOHTTP_SESSION_8ab43e8423d8527939462426bbd48fe6",
        b"AIOHTTP_SESSION_9fc55ad51d430b81b7d5547505a954dd",
        b"AIOHTTP_SESSION_e6a8c36b38eaf2a98f2eea42241c843f",
        b"AIOHTTP_SESSION_885c8ff593db085ea5e7b26c55f130ba",
        b"AIOHTTP_SESSION_29f396b779b00093c3983df3f66d52d7",
        b"AIOHTTP_SESSION_bc768c01cd12a478c2fcfab54560fa15",
        b"AIOHTTP_SESSION_d655a240e94370c7f2e8fe6578bec83d",
        b"AIOHTTP_SESSION_cf01f60f613c2836b234bc94351967d9",
        b"AIOHTTP_SESSION_3eb7d373af3df152c6bf9aa3e3d853b2",
        b"AIOHTTP_SESSION_e161394c5751724d67a8dcb31a830862",
        b"AIOHTTP_SESSION_53b18b8454e4c4ce06f967d30b6fa2ce",
        b"AIOHTTP_SESSION_4562ac1bfc42ee7f169ffcb4eee65cba",
        b"AIOHTTP_SESSION_a701b092d07bc801ed7a235d04631aec",
        b"AIOHTTP_SESSION_df647d17f343fc274f7e1ba88a0a0198",
        b"AIOHTTP_SESSION_94d22a3eb762012b3d65bf37acf459ad",
        b"AIOHTTP_SESSION_3515aedc4133abb263eea6302c7c525e",
        b"AIOHTTP_SESSION_531d4189fd339ce76208503b00dc7741",
        b"AIOHTTP_SESSION_beabf3c5f9d10981bd18cc2e7697e654",
        b"AIOHTTP_SESSION_26903344e6e9c3244dcfcda56046d37a",
        b"AIOHTTP_SESSION_e291cb0ab44ce5011154e20aee740e28",
        b"AIOHTTP_SESSION_4617dba0b9f1d61fdc434fc6d5b8b6ad",
        b"AIOHTTP_SESSION_c95e447e555e7fc9348c28208734f8b9",
        b"AIOHTTP_SESSION_7db10139843963e82a5f171a38610891",
        b"AIOHTTP_SESSION_36f9e4c60247c66f5bec764d5538176a",
        b"AIOHTTP_SESSION_8427c167a862e29c34e81cae58fea45e",
        b"AIOHTTP_SESSION_497c9429cd3e7f17b0d0b837afd05509",
        b"AIOHTTP_SESSION_a6516af5a7b8876dcf073841ff55511b",
        b"AIOHTTP_SESSION_aefadecacb9736f5b8d751c8ed1f4b35",
        b"AIOHTTP_SESSION_35b88dcd8851fb010c4a83d177859d98",
        b"AIOHTTP_SESSION_464bb3d7923d80a3c6bb86060cc8b198",
        b"AIOHTTP_SESSION_062ab60d6b6510cdee30c2a568767c34",
        b"AIOHTTP_SESSION_07e807f9022f087dfebef364bb026fb4",
        b"AIOHTTP_SESSION_b2a2daa61dbdb01df07a19710625fd5e",
        b"AIOHTTP_SESSION_757901c512fe02d9670ea9d0833f46db",
        b"AIOHTTP_SESSION_dbcb6c87471850407dcff838a7f7fc81",
        b"AIOHTTP_SESSION_e931ad3ca1029662974ff2061d659c39",
        b"AIOHTTP_SESSION_6e7da1da3202958fcca583eb534f9e29",
        b"AIOHTTP_SESSION_a72a85f6298d8eb0319c37f73fa5d139",
        b"AIOHTTP_SESSION_cdf2e66e3c95e4ba18fda186ba0810e8",
        b"AIOHTTP_SESSION_49901aa539f9141f1b1a5ba9340de3f5",
        b"AIOHTTP_SESSION_7f9e88429ef9ec820487cf5122d189a2",
        b"AIOHTTP_SESSION_0a30a5b7bb83cd959bc165dcc8cc2fb6",
        b"AIOHTTP_SESSION_335c1c1ff6a9354d3f437075914b0452",
        b"AIOHTTP_SESSION_8c2d4aa6c1c131a5521bd665bdafe39b",
        b"AIOHTTP_SESSION_6b061191447c4113c21b32583b5d01a5",
        b"AIOHTTP_SESSION_780df9f38b11e437d0d54cdefdb6cab9",
        b"AIOHTTP_SESSION_e22d3debd56e6d3767874dafc1f5706a",
        b"AIOHTTP_SESSION_3f5ae9e85ae4c41ea9f1bda8a05155bc",
        b"AIOHTTP_SESSION_bb98c6f9f94d4827e0eeadec07849d0d",
        b"AIOHTTP_SESSION_71235989be6f23ffba4a15a2078c5e63",
        b"AIOHTTP_SESSION_5d7c31d196795c33d07f8c47d755a9b6",
        b"AIOHTTP_SESSION_e68fa58ae71e59d02cfec3d5e111a2f2",
        b"AIOHTTP_SESSION_856306fe8db1cf0725153fdbedc41089",
        b"AIOHTTP_SESSION_b3a3333f79cae180db41f50fd8b17894",
        b"AIOHTTP_SESSION_c399bbf5c6473fa4e9d95b98ee200a42",
        b"AIOHTTP_SESSION_2e139b3ac6e8a58a740f0694487914d8",
        b"AIOHTTP_SESSION_1a74fc8a40269268e1068c63a7019529",
        b"AIOHTTP_SESSION_2ffa40b2678d8e9e750ec120b0621a0b",
        b"AIOHTTP_SESSION_544b27bca57f91530bc881d479ee6965",
        b"AIOHTTP_SESSION_7b1d2728a65aed9bafd74c5198a2227c",
        b"AIOHTTP_SESSION_3072fa9916a1727017d7a5e5e537389a",
        b"AIOHTTP_SESSION_979cb6ba73aba0f9aea090c81b659b4f",
        b"AIOHTTP_SESSION_a3564ceccf447c6d8bab5d07b661298e",
        b"AIOHTTP_SESSION_6743805092218571243746fbf9d9fd19",
        b"AIOHTTP_SESSION_fa9219cfd5b582496a3279e32b44e04e",
        b"AIOHTTP_SESSION_a9ec8e9926901366ce54f11a8601b4c6",
        b"AIOHTTP_SESSION_0e10680191ac4ba057222c79c7d6227c",
        b"AIOHTTP_SESSION_db741a31740f2fcfff8eebe723b8e4df",
        b"AIOHTTP_SESSION_0633ac3eb0439f6be1e842e4b69cd6db",
        b"AIOHTTP_SESSION_7c48aabe938c434a8ba1157d799f0cb6",
        b"AIOHTTP_SESSION_da3a6f38cd05f078f13e493a5f0723ce",
        b"AIOHTTP_SESSION_e8fb00b15331018401dbcbc1a02396ac",
        b"AIOHTTP_SESSION_062fbb1b4bceb4c5eadc7ad9c7cb9d56",
        b"AIOHTTP_SESSION_be103fc2641ec29ab07712fbd0b2a652",
        b"AIOHTTP_SESSION_e5e19264b11cca8b5769b57f67b7d783",
        b"AIOHTTP_SESSION_b6d90b6f62138550ead2e26942dff536",
        b"AIOHTTP_SESSION_cb37a8214e5bd585241cabcb10ed9ae5",
        b"AIOHTTP_SESSION_e772e7cad346c6a68b6512acf7eec20f",
        b"AIOHTTP_SESSION_08f1c1c095c405b1729d6d2b1286601e",
        b"AIOHTTP_SESSION_9708759941f7676ec6dd39f07155f8de",
        b"AIOHTTP_SESSION_317d0024fe0bc30d047dbcbb4e3a1106",
        b"AIOHTTP_SESSION_dc168abfbe80902c12c84f1be8f4c887",
        b"AIOHTTP_SESSION_c3bafd94fd3079c30e90d1790755dd05",
        b"AIOHTTP_SESSION_9aa69dd2e807cbfdeb92bdccb6b5aac5",
        b"AIOHTTP_SESSION_2230cdde1458d03bd640322f8f4640f9",
        b"AIOHTTP_SESSION_e5f6e7052e155717b3609f4daf753d62",
        b"AIOHTTP_SESSION_e3390450436588f1393989c9a62c85e9",
        b"AIOHTTP_SESSION_ab1dae410f7298b65bf56af81fd6c27b",
        b"AIOHTTP_SESSION_99c13a4b324b34e11812deddc806698b",
        b"AIOHTTP_SESSION_70ab32c31e3f54c37cf27eca58f5f0d0",
        b"AIOHTTP_SESSION_c0b4470220ded72b93fed85dea6112b7",
        b"AIOHTTP_SESSION_c9f24c472b4c5c7ac4721c7a3842d57e",
        b"AIOHTTP_SESSION_b835744a28d90515d5e4cb9ec6265703",
        b"AIOHTTP_SESSION_f94904c1e0ad0520ff39891c14d839b9",
        b"AIOHTTP_SESSION_83202e94800989b27557d20337aac1b9",
        b"AIOHTTP_SESSION_87c126bb053979af5c2b175c3ee2a763",
        b"AIOHTTP_SESSION_ab0e9d30f89a3f6389a6c7e02c617b5b",
        b"AIOHTTP_SESSION_e72da61d4fc07340177a70c788bd1646",
        b"AIOHTTP_SESSION_89f029c88e2677cb05e9a1e070cff1a4",
        b"AIOHTTP_SESSION_7bed843f1f6df0fc161eb36b6f0c34b2",
        b"AIOHTTP_SESSION_80eeb342d9878201ae5b93533562142a",
        b"AIOHTTP_SESSION_7b08e77105c7eb84ec81f1cda6c939a0",
        b"AIOHTTP_SESSION_6e570d1e5d69a44f98aa3f5e63b0d70a",
        b"AIOHTTP_SESSION_1f5fee247d37cf1356eea298894f3c22",
        b"AIOHTTP_SESSION_dc07208925be00a2df84c99d796194fd",
        b"AIOHTTP_SESSION_256810633b1e71bfb82306a929d7b1f8",
        b"AIOHTTP_SESSION_62cd553ab2029b15b92e3a0be507b8b4",
        b"AIOHTTP_SESSION_1cdbcb835d1a975ba8d0271851c5e3f1",
        b"AIOHTTP_SESSION_91f7bbb0a53cd214dfb416e9128d7be6",
        b"AIOHTTP_SESSION_8080c121ed75bb9f0e4907f4de0b8df5",
        b"AIOHTTP_SESSION_4d3e03dc521cf220d2043c79a6b18995",
        b"AIOHTTP_SESSION_106c51a06d5a5d750bf0b809eb1eca89",
        b"AIOHTTP_SESSION_1a330298db73264ba42e33f17a1d7877",
        b"AIOHTTP_SESSION_797326bae394034241fef1004aeaef51",
        b"AIOHTTP_SESSION_23a07ea07e03aab7f46475d722ebbbed",
        b"AIOHTTP_SESSION_389642a202cc617137b9469a1b8ae238",
        b"AIOHTTP_SESSION_0720fa0368d647adce9d331441e1e54a",
        b"AIOHTTP_SESSION_c067951b6840e384ecd1c2764794b90e",
        b"AIOHTTP_SESSION_231379884ad66c1052b32170be049c04",
        b"AIOHTTP_SESSION_dbb2b8bd1817175e5855af3063a223d1",
        b"AIOHTTP_SESSION_da9adca8a5931f5b7b8b784efb2c63c1",
        b"AIOHTTP_SESSION_49901d7c343ed045516952fdab9502ac",
        b"AIOHTTP_SESSION_ce8ca8616a146f8ccf33c720ea193dfe",
        b"AIOHTTP_SESSION_4a432d0a0190c190e3d5a916bd51c992",
        b"AIOHTTP_SESSION_e27d116651abc3a34519f1a8c5ec0e41",
        b"AIOHTTP_SESSION_5a8249dde5f40e31af5a2813154b8b41",
        b"AIOHTTP_SESSION_c01617dfd54a8b56a7c7002820b25644",
        b"AIOHTTP_SESSION_20788a0e1dae496f79e69d3d1bec96e4",
        b"AIOHTTP_SESSION_75012f4d85d25cdf545be1d3f10592e9",
        b"AIOHTTP_SESSION_d422c246bd670edb216fea7c1baef229",
        b"AIOHTTP_SESSION_844d58e7fd52033ae5bff556b2f4c769",
        b"AIOHTTP_SESSION_3337f7afc9ff02a97d71ab2ccb8aaac5",
        b"AIOHTTP_SESSION_8895c2fabf34f7d7b705a2ff778304e5",
        b"AIOHTTP_SESSION_e89e96450ec14e5d8270fc49568e0439",
        b"AIOHTTP_SESSION_980e79c8320a455c0b9c50e8ae8bfb25",
        b"AIOHTTP_SESSION_503437f1d85ec4c5afc54e18da47b2cb",
        b"AIOHTTP_SESSION_69318415bd526634c783288fbedc66ed",
        b"AIOHTTP_SESSION_99f7b50f0984c95bc5620f5883c4db18",
        b"AIOHTTP_SESSION_c6f45168b066dc9d03f1ea9c4a3f81bd",
        b"AIOHTTP_SESSION_6b9646555eee3f7ae90b5b77602584e2",
        b"AIOHTTP_SESSION_d2ba678915e311811c987688e84a5030",
        b"AIOHTTP_SESSION_75be54939dc7465fefaad03fcbe8aa42",
        b"AIOHTTP_SESSION_41ff82ad8ae03b5103ce1bf47e326931",
        b"AIOHTTP_SESSION_760bd8f76d29496b19a947a1a44b279e",
        b"AIOHTTP_SESSION_d77337d0775b5fc5c203aa4b6afbae20",
        b"AIOHTTP_SESSION_2b016cfe0d17fb6d6f2cf4b3c878ec57",
        b"AIOHTTP_SESSION_89bd4959c2a558ab7a69e33a32010498",
        b"AIOHTTP_SESSION_972930bf5f14cddf0bd2f8c4c4b6b7b4",
        b"AIOHTTP_SESSION_06bede8915b9f3a37622b5a51eaf10ec",
        b"AIOHTTP_SESSION_e6b81274ff2825dcd075b88da846634f",
        b"AIOHTTP_SESSION_edc589a99544c8816e4cfd49ae6464da",
        b"AIOHTTP_SESSION_c4990cf82166f0dd2a5658f5ecc2de8d",
        b"AIOHTTP_SESSION_325560991ac371190d48b263e656d1e9",
        b"AIOHTTP_SESSION_17cc32ff36de797ee81eaeeebaf2d832",
        b"AIOHTTP_SESSION_ddc55fca52a008b51dca1997a9a7b325",
        b"AIOHTTP_SESSION_d311d0515c549ddf7ddc67240ceafa21",
        b"AIOHTTP_SESSION_e50d903e3742d5f01557af92d96e5659",
        b"a",
        b"0",
        b"-",
        b"AIOHTTP_SESSION_",
        b"AIOHTTP_SESSION_00000000000000000000000000000000",
        b"AIOHTTP_SESSION_ffffffffffffffffffffffffffffffff",
        b"AIOHTTP_SESSION_0123456789ABCDEF0123456789ABCDEF",
        b"aiohttp_session_0123456789abcdef0123456789abcdef",
        b"127.0.0.1:21201-0",
        b"key:with:colons/and/slashes",
        b"~!@#$%^&*()_+={}[]|;'<>,.?",
        b"cl\xc3\xa9-\xc3\xbc\xc3\x9f",
        b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x82\xad\xe3\x83\xbc",
        b"emoji-\xf0\x9f\x98\x80",
        &[b'k'; 250],
        b"xxxxxxxxxxxxxxxxx",
    ];

    /// (name, flavor, servers with weights, server index of KEYS[i] as digit i).
    type Case = (
        &'static str,
        Flavor,
        &'static [(&'static str, u32)],
        &'static str,
    );

    const CASES: &[Case] = &[
        (
            "ketama_a3",
            Flavor::Ketama,
            &[
                ("127.0.0.1:21201", 1),
                ("127.0.0.1:21202", 1),
                ("127.0.0.1:21203", 1),
            ],
            concat!(
                "201012222010200012102222211121201102011000000012201110101011002102212010",
                "021111111222012222020020021211221122210001200222100102201211201100201201",
                "111201200121111001111000211002021210222222112221110111201022202002101202",
            ),
        ),
        (
            "ketama_a4",
            Flavor::Ketama,
            &[
                ("127.0.0.1:21201", 1),
                ("127.0.0.1:21202", 1),
                ("127.0.0.1:21203", 1),
                ("127.0.0.1:21204", 1),
            ],
            concat!(
                "233012222010203012302322211121201102011000000013301110103013002102312010",
                "021131111322013222020020021211223122310003300322100133203211203100231301",
                "111201200321113003131000213002021233222233113323110131233032202002331202",
            ),
        ),
        (
            "ketama_d3",
            Flavor::Ketama,
            &[
                ("127.0.0.2:11211", 1),
                ("127.0.0.3:11211", 1),
                ("127.0.0.4:11211", 1),
            ],
            concat!(
                "022200212102000210010111122122110010010020101110111221120212202210201122",
                "001002001111000201220110222001211122210010122200220120200122102100001201",
                "120201210121001100221121201012101200121022120011112210021221011000211222",
            ),
        ),
        (
            "ketama_m5",
            Flavor::Ketama,
            &[
                ("127.0.0.1:21201", 1),
                ("127.0.0.2:11211", 1),
                ("127.0.0.1:21202", 1),
                ("127.0.0.3:11211", 1),
                ("127.0.0.1:21203", 1),
            ],
            concat!(
                "112024444320111321101334422242401134032101303034302223201322011204424020",
                "042222222343111414041341042423443244431031300441201234402422302310112302",
                "222402131343113001222000113134343121444444324143230222403014134101232404",
            ),
        ),
        (
            "ketama_a3_w123",
            Flavor::Ketama,
            &[
                ("127.0.0.1:21201", 1),
                ("127.0.0.1:21202", 2),
                ("127.0.0.1:21203", 3),
            ],
            concat!(
                "222022012220222111212222212201202022101222022102221220221121112021122222",
                "210222021222222002222210222121111122012202012220111221221102210222121121",
                "122211221222120211202122220212221112202112222222222020212112001222111221",
            ),
        ),
        (
            "ketama_md5_a3",
            Flavor::KetamaMd5,
            &[
                ("127.0.0.1:21201", 1),
                ("127.0.0.1:21202", 1),
                ("127.0.0.1:21203", 1),
            ],
            concat!(
                "122200020200210201210201212002001220020201202102002120102121222002112220",
                "000222120102201210022210022012012220112002212102110200210220020011220211",
                "202000012211121011210120211000011022202222202122102202021012021102200102",
            ),
        ),
        (
            "ketama_md5_d3",
            Flavor::KetamaMd5,
            &[
                ("127.0.0.2:11211", 1),
                ("127.0.0.3:11211", 1),
                ("127.0.0.4:11211", 1),
            ],
            concat!(
                "222221121221222011022121012211102112001000121011212202112202221012010122",
                "011212011112212000222021221221100220100020102102010202020201020112121200",
                "222112202001022002021202221211021102201012120211021102111101101221212002",
            ),
        ),
        (
            "weighted_a3",
            Flavor::KetamaWeighted,
            &[
                ("127.0.0.1:21201", 1),
                ("127.0.0.1:21202", 1),
                ("127.0.0.1:21203", 1),
            ],
            concat!(
                "022210020120001002222022221211001201022002002201000111202101011110110001",
                "000222100101112022022202010212010210222222000112210200221000220212112120",
                "000010012211021111210122211100002101202220000220101201011011001002200001",
            ),
        ),
        (
            "weighted_a4",
            Flavor::KetamaWeighted,
            &[
                ("127.0.0.1:21201", 1),
                ("127.0.0.1:21202", 1),
                ("127.0.0.1:21203", 1),
                ("127.0.0.1:21204", 1),
            ],
            concat!(
                "032313030130001002332332221211001233323033302201000113303131031110110001",
                "330332130131333322033232033233010213222323330133210200231303323213112320",
                "330330032331321311210132211300002101332320000230101231311011001003300001",
            ),
        ),
        (
            "weighted_d3",
            Flavor::KetamaWeighted,
            &[
                ("127.0.0.2:11211", 1),
                ("127.0.0.3:11211", 1),
                ("127.0.0.4:11211", 1),
            ],
            concat!(
                "022112222010012000202111011112110202001212110112221201012002221210010101",
                "120022102110220002000202011221110220101022110100021102022121010222222102",
                "000222200211210002200012111111122021211020120022012120021102121222210002",
            ),
        ),
        (
            "weighted_m5",
            Flavor::KetamaWeighted,
            &[
                ("127.0.0.1:21201", 1),
                ("127.0.0.2:11211", 1),
                ("127.0.0.1:21202", 1),
                ("127.0.0.3:11211", 1),
                ("127.0.0.1:21203", 1),
            ],
            concat!(
                "044333340130102101444333143422032412043004301402003213104212013120221013",
                "331144210232121144114414023423321421414144300311130300442303141423224211",
                "001320021432041112420244422203304102434141001440232412122012002104300012",
            ),
        ),
        (
            "weighted_a3_w123",
            Flavor::KetamaWeighted,
            &[
                ("127.0.0.1:21201", 1),
                ("127.0.0.1:21202", 2),
                ("127.0.0.1:21203", 3),
            ],
            concat!(
                "022210220120201002222022222211201221222102002201012122212121121112110221",
                "002222121121212222222222010222010210222222000122210201221212222212112122",
                "102012012211021211210122211201022111202222102222121201011012011202200021",
            ),
        ),
        (
            "weighted_a4_w5115",
            Flavor::KetamaWeighted,
            &[
                ("127.0.0.1:21201", 5),
                ("127.0.0.1:21202", 1),
                ("127.0.0.1:21203", 1),
                ("127.0.0.1:21204", 5),
            ],
            concat!(
                "030303030000000303332333303203000333323033303303000003303033033000100000",
                "333300330132333322033332033230310330321333330303310000333003313233113330",
                "330330003331333003310332313300000301332300000200131232313013000000300003",
            ),
        ),
    ];
    // END GENERATED
}
