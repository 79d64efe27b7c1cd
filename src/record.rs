//! The stored payload, `{"created": <int>, "session": {...}}`, and the
//! codec that turns it into bytes.

use std::io;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Number, Value};

use crate::error::{Error, ErrorKind};

/// The name of the record's member that carries [`Meta`].
pub const META_MEMBER: &str = "http_session";

/// The session payload handed to a [`Codec`].
///
/// It serializes as aiohttp-session's `_get_session_data` does:
/// `{"created": created, "session": {...}}` with the keys in that order, or
/// `{}` when the session holds no data (and is bound to no user). When the
/// session has [`Meta`], a
/// third member `"http_session"` follows; aiohttp-session ignores it on
/// load (and drops it when it rewrites the record).
#[derive(Clone, Copy)]
pub struct Record<'a> {
    /// When the session data was last modified (Unix seconds).
    pub created: &'a Number,
    /// The session data.
    pub session: &'a Map<String, Value>,
    /// What the expiry rules and the user binding need, if anything.
    pub meta: Option<&'a Meta>,
}

impl Record<'_> {
    /// Whether there is nothing to store: no data and no user binding (a
    /// session bound to a user is kept, even with no data).
    pub fn is_empty(&self) -> bool {
        self.session.is_empty() && self.meta.is_none_or(|meta| meta.user.is_none())
    }
}

/// Only the shape: the record holds session data.
impl std::fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("created", self.created)
            .field("keys", &self.session.len())
            .field("meta", &self.meta)
            .finish()
    }
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_empty() {
            return serializer.serialize_map(Some(0))?.end();
        }
        let meta = self.meta.filter(|meta| !meta.is_empty());
        let mut map = serializer.serialize_map(Some(2 + usize::from(meta.is_some())))?;
        map.serialize_entry("created", self.created)?;
        map.serialize_entry("session", self.session)?;
        if let Some(meta) = meta {
            map.serialize_entry(META_MEMBER, meta)?;
        }
        map.end()
    }
}

/// What this crate keeps beside `created` and `session`: the times the
/// expiry rules need, the session's own `max_age`, and the user it is bound
/// to. It travels as the record's top-level member `"http_session"`, which
/// aiohttp-session ignores when it loads a record and drops when it writes
/// one (a record Python rewrote has no `Meta`: see the crate docs on expiry
/// for what that means).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Meta {
    /// When the session was first created (Unix seconds): the absolute
    /// lifetime runs from here.
    pub start: Option<u64>,
    /// The last write, or touch of a rolling session (Unix seconds): the
    /// idle timeout runs from here.
    pub last: Option<u64>,
    /// The session's own `max_age` when it is not the storage's:
    /// `Some(None)` for none.
    pub max_age: Option<Option<u64>>,
    /// The id of the user the session is bound to.
    pub user: Option<String>,
}

impl Meta {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.start.is_none() && self.last.is_none() && self.max_age.is_none() && self.user.is_none()
    }

    /// Reads the member as it is written; anything malformed in it is left
    /// out (a record is never refused for its `Meta`).
    pub fn from_value(value: &Value) -> Option<Self> {
        let Value::Object(map) = value else {
            return None;
        };
        let max_age = match map.get("max_age") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => v.as_u64().map(Some),
        };
        Some(Self {
            start: map.get("start").and_then(Value::as_u64),
            last: map.get("last").and_then(Value::as_u64),
            max_age,
            user: map.get("user").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(start) = self.start {
            map.serialize_entry("start", &start)?;
        }
        if let Some(last) = self.last {
            map.serialize_entry("last", &last)?;
        }
        if let Some(max_age) = self.max_age {
            map.serialize_entry("max_age", &max_age)?;
        }
        if let Some(user) = &self.user {
            map.serialize_entry("user", user)?;
        }
        map.end()
    }
}

/// The user id is redacted: it is session data.
impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("start", &self.start)
            .field("last", &self.last)
            .field("max_age", &self.max_age)
            .field("user", &self.user.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A decoded record, owned: what the session manager reads from the bytes a
/// store returned.
///
/// `created` is `None` when the record has no numeric `created`; `session`
/// is `None` when it has no `session` object (the manager then starts a
/// fresh session, as it does for a document that is not an object).
#[derive(Clone, Default, PartialEq)]
pub struct DecodedRecord {
    /// The record's `created` (Unix seconds), when it is a number.
    pub created: Option<Number>,
    /// The record's `session` object.
    pub session: Option<Map<String, Value>>,
    /// The record's `"http_session"` member, when it has one.
    pub meta: Option<Meta>,
}

/// Only the shape: the record holds session data.
impl std::fmt::Debug for DecodedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedRecord")
            .field("created", &self.created)
            .field("keys", &self.session.as_ref().map(Map::len))
            .field("meta", &self.meta)
            .finish()
    }
}

impl DecodedRecord {
    /// Picks `created` and `session` out of a whole decoded document.
    pub fn from_value(document: Value) -> Self {
        let Value::Object(mut document) = document else {
            return Self::default();
        };
        Self {
            created: match document.remove("created") {
                Some(Value::Number(n)) => Some(n),
                _ => None,
            },
            session: match document.remove("session") {
                Some(Value::Object(map)) => Some(map),
                _ => None,
            },
            meta: document.get(META_MEMBER).and_then(Meta::from_value),
        }
    }
}

/// A record kept decoded: what the session manager hands a store to save,
/// and what a store in this process ([`MemoryBackend`]) holds, shared by
/// every request that loads it. The map is behind an `Arc`: a load copies
/// nothing, and a request copies the map only when it first writes to it.
///
/// [`MemoryBackend`]: crate::stores::MemoryBackend
#[derive(Clone, PartialEq)]
pub struct SharedRecord {
    /// When the session data was last modified (Unix seconds).
    pub created: Number,
    /// The session data.
    pub session: Arc<Map<String, Value>>,
    /// What the expiry rules and the user binding need, if anything.
    pub meta: Option<Meta>,
}

impl SharedRecord {
    /// The record as a [`Codec`] encodes it.
    pub fn as_record(&self) -> Record<'_> {
        Record {
            created: &self.created,
            session: &self.session,
            meta: self.meta.as_ref(),
        }
    }

    /// An estimate of the heap this record holds while it is shared in a
    /// store, in bytes: the `Arc`s, the map's entries and index, every
    /// string and array, each allocation rounded up as a 64-bit malloc
    /// rounds it (a 16-byte multiple with an 8-byte header, at least 32).
    /// It counts the map as it is after a decode or a copy (entries grown
    /// to a power of two), not its exact capacity, which serde_json does
    /// not expose. What a record held decoded costs against
    /// [`Capacity::Bytes`]; `tests/heap_size.rs` checks it against a
    /// counting allocator.
    ///
    /// [`Capacity::Bytes`]: crate::stores::Capacity::Bytes
    pub fn heap_size(&self) -> usize {
        use std::mem::size_of;

        /// An `Arc<T>` allocation: two counts and the value.
        const fn arc_of(value: usize) -> usize {
            allocation(2 * size_of::<usize>() + value)
        }
        fn value_heap(value: &Value) -> usize {
            match value {
                Value::Null | Value::Bool(_) | Value::Number(_) => 0,
                Value::String(s) => allocation(s.len()),
                Value::Array(items) => {
                    allocation(items.len() * size_of::<Value>())
                        + items.iter().map(value_heap).sum::<usize>()
                }
                Value::Object(map) => map_heap(map),
            }
        }
        fn map_heap(map: &Map<String, Value>) -> usize {
            let n = map.len();
            if n == 0 {
                return 0;
            }
            // indexmap: a Vec of (hash, key, value) entries and a hashbrown
            // table of indices (8 bytes and a control byte per bucket, a
            // 7/8 load factor, 16 trailing control bytes).
            let entries = allocation(
                n.next_power_of_two().max(4) * (size_of::<u64>() + size_of::<(String, Value)>()),
            );
            let buckets = (n * 8).div_ceil(7).next_power_of_two().max(4);
            let index = allocation(buckets * (size_of::<usize>() + 1) + 16);
            entries
                + index
                + map
                    .iter()
                    .map(|(key, value)| allocation(key.len()) + value_heap(value))
                    .sum::<usize>()
        }
        let user = self
            .meta
            .as_ref()
            .and_then(|meta| meta.user.as_ref())
            .map_or(0, |user| allocation(user.len()));
        arc_of(size_of::<SharedRecord>())
            + arc_of(size_of::<Map<String, Value>>())
            + map_heap(&self.session)
            + user
    }
}

/// What malloc takes for `n` requested bytes on a 64-bit system: nothing
/// for none, else `n` and an 8-byte header rounded up to 16, at least 32
/// (glibc's chunk sizes; other allocators round within a few bytes of it).
pub(crate) const fn allocation(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let chunk = (n + 8).div_ceil(16) * 16;
    if chunk < 32 {
        32
    } else {
        chunk
    }
}

/// Only the shape: the record holds session data.
impl std::fmt::Debug for SharedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRecord")
            .field("keys", &self.session.len())
            .field("meta", &self.meta)
            .finish()
    }
}

/// Turns a [`Record`] into bytes and bytes back into a JSON value; the
/// `encoder`/`decoder` pair of aiohttp-session.
///
/// Decoding returns the whole JSON document; the session manager reads
/// `created` and `session` from it and treats anything else as an unusable
/// record (a fresh session).
pub trait Codec: Send + Sync + 'static {
    /// Encodes a record.
    fn encode(&self, record: &Record<'_>) -> Result<Vec<u8>, Error>;
    /// Decodes bytes written by [`Codec::encode`] (or by aiohttp-session).
    fn decode(&self, bytes: &[u8]) -> Result<Value, Error>;
    /// Decodes bytes straight into the parts the manager uses. The default
    /// goes through [`Codec::decode`]; a codec can skip building the whole
    /// document, as [`JsonCodec`] does.
    fn decode_record(&self, bytes: &[u8]) -> Result<DecodedRecord, Error> {
        self.decode(bytes).map(DecodedRecord::from_value)
    }
}

/// JSON exactly as Python's `json.dumps` writes it by default: `", "` and
/// `": "` separators, non-ASCII escaped as `\uXXXX` (so the text is always
/// ASCII and fits a cookie), and floats in Python's `repr` form (`1e-07`,
/// `1e+100`, `3.0`). Byte-identical output makes known-answer tests against
/// aiohttp-session possible; any JSON decodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn encode(&self, record: &Record<'_>) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(128);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
        record
            .serialize(&mut ser)
            .map_err(|e| Error::json(ErrorKind::Encode, &e))?;
        Ok(out)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Value, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::json(ErrorKind::Value, &e))
    }

    fn decode_record(&self, bytes: &[u8]) -> Result<DecodedRecord, Error> {
        // serde skips ignored members without checking their UTF-8; the
        // whole-document decode (and Python) refuse invalid UTF-8 anywhere.
        let text =
            std::str::from_utf8(bytes).map_err(|e| Error::with_source(ErrorKind::Value, e))?;
        serde_json::from_str::<Direct>(text)
            .map(|direct| direct.0)
            .map_err(|e| Error::json(ErrorKind::Value, &e))
    }
}

/// Deserializes an object straight into a [`DecodedRecord`], with the same
/// result as [`DecodedRecord::from_value`] on the whole document: other
/// members are skipped unbuilt and a later duplicate member wins. A
/// document that is not an object is an error here (an empty record there);
/// the manager starts a fresh session for either.
struct Direct(DecodedRecord);

impl<'de> Deserialize<'de> for Direct {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DirectVisitor)
    }
}

struct DirectVisitor;

impl<'de> Visitor<'de> for DirectVisitor {
    type Value = Direct;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Direct, A::Error> {
        let mut record = DecodedRecord::default();
        while let Some(key) = map.next_key::<Member>()? {
            match key {
                Member::Created => {
                    record.created = match map.next_value::<Value>()? {
                        Value::Number(n) => Some(n),
                        _ => None,
                    };
                }
                Member::Session => {
                    record.session = match map.next_value::<Value>()? {
                        Value::Object(m) => Some(m),
                        _ => None,
                    };
                }
                Member::Meta => {
                    record.meta = Meta::from_value(&map.next_value::<Value>()?);
                }
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Direct(record))
    }
}

/// The member names of a record, read without allocating.
enum Member {
    Created,
    Session,
    Meta,
    Other,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;
        impl Visitor<'_> for MemberVisitor {
            type Value = Member;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, name: &str) -> Result<Member, E> {
                Ok(match name {
                    "created" => Member::Created,
                    "session" => Member::Session,
                    META_MEMBER => Member::Meta,
                    _ => Member::Other,
                })
            }
        }
        deserializer.deserialize_str(MemberVisitor)
    }
}

/// A `serde_json` formatter that mimics Python's `json.dumps` defaults.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if ch.is_ascii() && ch != '\x7f' {
                continue;
            }
            w.write_all(&bytes[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + ch.len_utf8();
        }
        w.write_all(&bytes[start..])
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }
}

/// Formats a finite float as Python's `repr` does: the shortest digits that
/// round-trip, in fixed notation when the decimal exponent is in -4..16 and
/// in scientific notation with a signed, two-digit-minimum exponent
/// otherwise.
fn python_float_repr(value: f64) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d[.ddd]e[-]x`.
    let sci = format!("{:e}", value.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if value.is_sign_negative() {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n(
                '0',
                usize::try_from(-exp - 1).unwrap_or(0),
            ));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(session: Value, created: i64) -> String {
        let Value::Object(map) = session else {
            panic!("not an object")
        };
        let created = Number::from(created);
        let bytes = JsonCodec
            .encode(&Record {
                created: &created,
                session: &map,
                meta: None,
            })
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn matches_python_json_dumps() {
        let text = encode(
            json!({"a": 1, "list": [1, "x", null, true], "nested": {"k": "v"}}),
            1_700_000_000,
        );
        assert_eq!(
            text,
            r#"{"created": 1700000000, "session": {"a": 1, "list": [1, "x", null, true], "nested": {"k": "v"}}}"#
        );
    }

    #[test]
    fn escapes_like_ensure_ascii() {
        let text = encode(json!({"s": "é中😀\u{7f}\n\t\"\\/\u{1}"}), 1);
        assert_eq!(
            text,
            r#"{"created": 1, "session": {"s": "\u00e9\u4e2d\ud83d\ude00\u007f\n\t\"\\/\u0001"}}"#
        );
        let back = JsonCodec.decode(text.as_bytes()).unwrap();
        assert_eq!(back["session"]["s"], "é中😀\u{7f}\n\t\"\\/\u{1}");
    }

    #[test]
    fn meta_follows_session_and_is_left_out_when_empty() {
        let created = Number::from(7);
        let mut session = Map::new();
        session.insert("a".into(), json!(1));
        let meta = Meta {
            start: Some(1),
            last: Some(5),
            max_age: Some(None),
            user: Some("alice".into()),
        };
        let bytes = JsonCodec
            .encode(&Record {
                created: &created,
                session: &session,
                meta: Some(&meta),
            })
            .unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"created": 7, "session": {"a": 1}, "http_session": {"start": 1, "last": 5, "max_age": null, "user": "alice"}}"#
        );
        assert_eq!(JsonCodec.decode_record(&bytes).unwrap().meta, Some(meta));
        let bytes = JsonCodec
            .encode(&Record {
                created: &created,
                session: &session,
                meta: Some(&Meta::default()),
            })
            .unwrap();
        assert_eq!(bytes, br#"{"created": 7, "session": {"a": 1}}"#);
        assert!(!format!(
            "{:?}",
            Meta {
                user: Some("alice".into()),
                ..Meta::default()
            }
        )
        .contains("alice"));
    }

    #[test]
    fn empty_session_is_an_empty_object() {
        assert_eq!(encode(json!({}), 5), "{}");
    }

    #[test]
    fn floats_use_python_repr() {
        let cases = [
            (1e-7, "1e-07"),
            (1e100, "1e+100"),
            (3.0, "3.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123_456_789.123, "123456789.123"),
            (0.0001, "0.0001"),
            (1.5e-5, "1.5e-05"),
            (2.5e22, "2.5e+22"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float_repr(value), expected, "{value:e}");
        }
    }

    #[test]
    fn large_integers_round_trip() {
        let text = encode(
            json!({"max": i64::MAX, "umax": u64::MAX, "neg": i64::MIN}),
            1,
        );
        let back = JsonCodec.decode(text.as_bytes()).unwrap();
        assert_eq!(back["session"]["max"], i64::MAX);
        assert_eq!(back["session"]["umax"], u64::MAX);
        assert_eq!(back["session"]["neg"], i64::MIN);
    }

    /// Found by `tests/fuzz.rs` (`record_decode_mutated_records`): serde
    /// skips an ignored member without checking its UTF-8, so the direct
    /// decoder took a record that the whole-document decode (and Python's
    /// `json.loads`) refuse.
    #[test]
    fn invalid_utf8_anywhere_is_refused_by_both_decoders() {
        let record = b"{\"created\": 1, \"other\": {\"\xf8\": null}, \"session\": {\"a\": 1}}";
        assert!(JsonCodec.decode(record).is_err());
        assert!(JsonCodec.decode_record(record).is_err());
        let record = b"{\"session\": {\"a\": 1}, \"x\xf8\": 2}";
        assert!(JsonCodec.decode(record).is_err());
        assert!(JsonCodec.decode_record(record).is_err());
    }

    #[test]
    fn decode_errors_do_not_quote_the_record() {
        // serde's message would be `invalid type: string "s3cr3t", ...`.
        for text in [r#""s3cr3t""#, r#"["s3cr3t"]"#, r#"{"s3cr3t": }"#] {
            for err in [
                JsonCodec.decode_record(text.as_bytes()).unwrap_err(),
                JsonCodec
                    .decode(text.as_bytes())
                    .and_then(|_| JsonCodec.decode(b"{"))
                    .unwrap_err(),
            ] {
                let mut chain = format!("{err} {err:?}");
                let mut source = std::error::Error::source(&err);
                while let Some(e) = source {
                    chain.push_str(&format!(" {e}"));
                    source = e.source();
                }
                assert!(!chain.contains("s3cr3t"), "{chain}");
                assert!(chain.contains("record JSON"), "{chain}");
            }
        }
    }

    #[test]
    fn direct_decode_matches_whole_document_decode() {
        let documents = [
            r#"{"created": 1700000000, "session": {"a": 1, "b": [1, {"c": null}]}}"#,
            r#"{"session": {"a": 1}, "created": 1.5}"#,
            r#"{"created": "soon", "session": {"a": 1}}"#,
            r#"{"created": 1, "session": [1, 2]}"#,
            r#"{"created": 1, "session": {"a": 1}, "session": {"b": 2}}"#,
            r#"{"created": 1, "created": null, "session": {}}"#,
            r#"{"created": [1, {"a": 2}], "session": {"a": 1}}"#,
            r#"{"created": {"a": [1]}, "session": {"a": 1}}"#,
            r#"{"created": true, "session": {"a": 1}}"#,
            r#"{"created": -5, "session": {"a": 1}}"#,
            r#"{"created": 1e300, "session": {"a": 1}}"#,
            r#"{"created": 1700000000.25, "session": {"a": 1}}"#,
            r#"{"extra": {"deep": [1, 2, {"x": "y"}]}, "session": {"k": "\u00e9"}}"#,
            r#"{"created": 0, "session": {"n": 18446744073709551615}}"#,
            r#"{"created": 1, "session": {"a": 1}, "http_session": {"start": 1, "last": 2, "max_age": null, "user": "u"}}"#,
            r#"{"created": 1, "session": {"a": 1}, "http_session": {"start": -1, "max_age": "x", "user": 5}}"#,
            r#"{"created": 1, "session": {"a": 1}, "http_session": [1, 2]}"#,
            r#"{}"#,
        ];
        for text in documents {
            let direct = JsonCodec.decode_record(text.as_bytes()).unwrap();
            let whole = DecodedRecord::from_value(JsonCodec.decode(text.as_bytes()).unwrap());
            assert_eq!(direct, whole, "{text}");
        }
        // Valid JSON that is not an object: no record either way (an error
        // here, an empty record from the whole document).
        for text in [
            r#"[1, {"session": {}}]"#,
            r#""text""#,
            "42",
            "1.5",
            "true",
            "null",
        ] {
            assert!(JsonCodec.decode_record(text.as_bytes()).is_err(), "{text}");
            let whole = DecodedRecord::from_value(JsonCodec.decode(text.as_bytes()).unwrap());
            assert_eq!(whole, DecodedRecord::default(), "{text}");
        }
        for broken in ["", "{", r#"{"session": }"#, r#"{"created": 1} x"#, "[1,"] {
            assert!(
                JsonCodec.decode_record(broken.as_bytes()).is_err(),
                "{broken}"
            );
            assert!(JsonCodec.decode(broken.as_bytes()).is_err(), "{broken}");
        }
    }
}
