//! The stored payload, `{"created": <int>, "session": {...}}`, and the
//! codec that turns it into bytes.

use std::io;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Number, Value};

use crate::error::{Error, ErrorKind};

/// The session payload handed to a [`Codec`].
///
/// It serializes as aiohttp-session's `_get_session_data` does:
/// `{"created": created, "session": {...}}` with the keys in that order, or
/// `{}` when the session holds no data.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// When the session data was last modified (Unix seconds).
    pub created: &'a Number,
    /// The session data.
    pub session: &'a Map<String, Value>,
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.session.is_empty() {
            return serializer.serialize_map(Some(0))?.end();
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("created", self.created)?;
        map.serialize_entry("session", self.session)?;
        map.end()
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
            .map_err(|e| Error::with_source(ErrorKind::Encode, e))?;
        Ok(out)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Value, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::with_source(ErrorKind::Value, e))
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
}
