//! Reading the session cookie from `Cookie` headers and rendering
//! `Set-Cookie`, byte-compatible with Python's `http.cookies` as used by
//! aiohttp-session.

use std::borrow::Cow;

use crate::config::CookieConfig;
use crate::error::{Error, ErrorKind};

/// The largest `name=value` pair browsers are required to keep (RFC 6265
/// section 6.1, and what browsers and curl enforce). Larger session cookies
/// are an error rather than being sent and silently dropped by the client.
pub const MAX_COOKIE_SIZE: usize = 4096;

/// Finds the value of the cookie called `name` in a sequence of `Cookie`
/// header values, unquoting it as Python's `http.cookies` does. When the
/// name appears more than once, the last occurrence wins (as in aiohttp).
pub(crate) fn find_cookie<'a, I>(headers: I, name: &str) -> Option<Cow<'a, str>>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut found = None;
    for header in headers {
        let mut rest = header;
        while !rest.is_empty() {
            let (pair_name, value, tail) = next_pair(rest);
            rest = tail;
            if pair_name == name.as_bytes() {
                found = Some(value);
            }
        }
    }
    found.map(unquote)
}

/// Splits one `name=value` pair off the front of a `Cookie` header value.
/// A quoted value may contain `;`. Returns the name, the raw value and the
/// rest after the separating `;`.
fn next_pair(input: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let end_of =
        |s: &[u8], from: usize| memchr::memchr(b';', &s[from..]).map_or(s.len(), |p| p + from);
    // A piece without `=` has no value and matches no name.
    let Some(eq) = memchr::memchr2(b'=', b';', input) else {
        return (&[], &[], &[]);
    };
    if input[eq] == b';' {
        return (&[], &[], &input[eq + 1..]);
    }
    let name = trim(&input[..eq]);
    let after = &input[eq + 1..];
    let lead = after.len() - trim_start(after).len();
    let body = &after[lead..];
    let value_end = if body.first() == Some(&b'"') {
        // A quoted string: scan to the closing quote, skipping escapes.
        let mut i = 1;
        let mut close = None;
        while i < body.len() {
            match body[i] {
                b'\\' => i += 2,
                b'"' => {
                    close = Some(i + 1);
                    break;
                }
                _ => i += 1,
            }
        }
        match close {
            // A quoted string must end the value: anything but white space
            // between the closing quote and the next `;` makes the whole
            // piece an unquoted (and so unusable) value, as aiohttp reads it.
            Some(c) if trim(&after[lead + c..end_of(after, lead + c)]).is_empty() => lead + c,
            // Unbalanced quote: take everything up to the next `;`.
            _ => end_of(after, lead),
        }
    } else {
        end_of(after, lead)
    };
    let value = trim(&after[..value_end]);
    let tail_start = end_of(after, value_end);
    let tail = after.get(tail_start + 1..).unwrap_or(&[]);
    (name, value, tail)
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

fn trim(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &s[..end]
}

/// Removes the quotes of a `"…"` value and undoes `\NNN` (octal) and `\X`
/// escapes. A value that is not quoted is returned as it is. Invalid UTF-8
/// is replaced, so the caller sees a value that will simply fail to open.
fn unquote(raw: &[u8]) -> Cow<'_, str> {
    if raw.len() < 2 || raw[0] != b'"' || raw[raw.len() - 1] != b'"' {
        // Not quoted (a server store's id, a sealed cookie): borrowed.
        return match std::str::from_utf8(raw) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
    }
    let inner = &raw[1..raw.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(slash) = rest.iter().position(|&b| b == b'\\') {
        out.extend_from_slice(&rest[..slash]);
        let escape = &rest[slash + 1..];
        let octal = escape.get(..3).filter(|d| {
            matches!(d[0], b'0'..=b'3') && d[1..].iter().all(|c| matches!(c, b'0'..=b'7'))
        });
        rest = match (octal, escape.first()) {
            (Some(d), _) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                &escape[3..]
            }
            (None, Some(&next)) => {
                out.push(next);
                &escape[1..]
            }
            // A trailing lone backslash is kept as it is.
            (None, None) => {
                out.push(b'\\');
                &[]
            }
        };
    }
    out.extend_from_slice(rest);
    Cow::Owned(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A byte-class table: `true` for ASCII alphanumerics and `extra`.
const fn byte_table(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b: u8 = 0;
    loop {
        table[b as usize] = b.is_ascii_alphanumeric();
        if b == u8::MAX {
            break;
        }
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// Bytes Python sends without quoting (`http.cookies._LegalChars`).
const LEGAL: [bool; 256] = byte_table(b"!#$%&'*+-.^_`|~:");
/// Bytes sent as they are inside quotes (`_LegalChars` plus
/// `_UnescapedChars`' extra ` ()/<=>?@[]{}`).
const IN_QUOTES: [bool; 256] = byte_table(b"!#$%&'*+-.^_`|~: ()/<=>?@[]{}");

/// Appends `value` quoted as Python's `http.cookies._quote` does: bare when
/// every byte is legal, otherwise in double quotes with `"` and `\` escaped
/// and other unsafe bytes written as three-digit octal escapes.
fn push_quoted(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    if bytes.iter().all(|&b| LEGAL[usize::from(b)]) {
        out.push_str(value);
        return;
    }
    out.reserve(bytes.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if IN_QUOTES[usize::from(b)] {
            continue;
        }
        push_ascii(out, &bytes[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            _ => {
                out.push('\\');
                for shift in [6, 3, 0] {
                    out.push(char::from(b'0' + ((b >> shift) & 7)));
                }
            }
        }
        start = i + 1;
    }
    push_ascii(out, &bytes[start..]);
    out.push('"');
}

/// Appends a run of bytes that are all in [`IN_QUOTES`] (so ASCII).
fn push_ascii(out: &mut String, run: &[u8]) {
    out.push_str(std::str::from_utf8(run).unwrap_or_default());
}

/// Renders `Set-Cookie` for `value`, with the attributes in the order
/// Python emits them (sorted by key: Domain, expires, HttpOnly, Max-Age,
/// Partitioned, Path, SameSite, Secure).
///
/// `max_age` is the session's own value. As in aiohttp-session, when it is
/// set both `Max-Age` and `expires` are sent; when it is `None` the storage
/// `max_age` (if any) is still sent as `Max-Age`, without `expires`.
///
/// Errors with [`ErrorKind::CookieTooLarge`] when `name=value` exceeds
/// [`MAX_COOKIE_SIZE`].
pub fn render_set_cookie(
    config: &CookieConfig,
    value: &str,
    max_age: Option<u64>,
    now: u64,
) -> Result<String, Error> {
    let mut out = String::with_capacity(config.name.len() + value.len() + 128);
    out.push_str(&config.name);
    out.push('=');
    push_quoted(&mut out, value);
    let pair_len = out.len();
    if pair_len > MAX_COOKIE_SIZE {
        return Err(Error::new(ErrorKind::CookieTooLarge)
            .detail(format!("{pair_len} bytes, limit {MAX_COOKIE_SIZE}")));
    }
    if let Some(domain) = &config.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    if let Some(age) = max_age {
        out.push_str("; expires=");
        push_expires(&mut out, now.saturating_add(age));
    }
    if config.http_only {
        out.push_str("; HttpOnly");
    }
    if let Some(age) = max_age.or(config.max_age) {
        out.push_str("; Max-Age=");
        push_decimal(&mut out, age);
    }
    push_tail(&mut out, config);
    Ok(out)
}

/// The attributes after `Max-Age`, in Python's order: `Partitioned`,
/// `Path`, `SameSite`, `Secure`.
fn push_tail(out: &mut String, config: &CookieConfig) {
    if config.partitioned {
        out.push_str("; Partitioned");
    }
    out.push_str("; Path=");
    out.push_str(&config.path);
    if let Some(same_site) = config.same_site {
        out.push_str("; SameSite=");
        out.push_str(same_site.as_str());
    }
    if config.secure {
        out.push_str("; Secure");
    }
}

/// Renders the deletion cookie: an empty quoted value, the epoch `expires`,
/// `Max-Age=0`, the domain and path, and the `Partitioned`, `SameSite` and
/// `Secure` attributes of the session cookie, without which browsers ignore
/// a deletion (a `__Host-` or `Secure` cookie is only replaced by a
/// `Secure` one; a partitioned cookie only by a partitioned one). With
/// none of them configured it is byte for byte what aiohttp's `del_cookie`
/// sends (which never sends them).
pub fn render_removal(config: &CookieConfig) -> String {
    let mut out = String::with_capacity(config.name.len() + 96);
    out.push_str(&config.name);
    out.push_str("=\"\"");
    if let Some(domain) = &config.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    out.push_str("; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0");
    push_tail(&mut out, config);
    out
}

/// Writes `secs` (Unix time) as `Sat, 21-Nov-2026 20:20:16 GMT`, the format
/// aiohttp-session uses (`%a, %d-%b-%Y %T GMT`, with dashes).
fn push_expires(out: &mut String, secs: u64) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    out.push_str(DAYS[usize::try_from(days % 7).unwrap_or(0)]);
    out.push_str(", ");
    push_two(out, day);
    out.push('-');
    out.push_str(MONTHS[usize::try_from(month - 1).unwrap_or(0)]);
    out.push('-');
    push_decimal(out, year); // 1970 or later: always four digits or more
    out.push(' ');
    push_two(out, rem / 3600);
    out.push(':');
    push_two(out, rem % 3600 / 60);
    out.push(':');
    push_two(out, rem % 60);
    out.push_str(" GMT");
}

/// Appends `n` (below 100) as two digits. The cookie's numbers are written
/// by hand rather than with `write!`: formatting machinery was a tenth of
/// a request's instructions (`benches/request_cost.sh`).
fn push_two(out: &mut String, n: u64) {
    out.push(digit(n / 10 % 10));
    out.push(digit(n % 10));
}

/// Appends `n` in decimal, without leading zeros.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push_ascii(out, &buf[at..]);
}

fn digit(n: u64) -> char {
    char::from(b'0' + u8::try_from(n % 10).unwrap_or(0))
}

/// Converts days since 1970-01-01 to a (year, month, day) civil date
/// (Howard Hinnant's algorithm, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SameSite;

    fn find(header: &str) -> Option<String> {
        find_cookie([header.as_bytes()], "AIOHTTP_SESSION").map(Cow::into_owned)
    }

    #[test]
    fn finds_bare_and_quoted_values() {
        assert_eq!(
            find("a=1; AIOHTTP_SESSION=abc; b=2").as_deref(),
            Some("abc")
        );
        assert_eq!(find("AIOHTTP_SESSION=\"abc=\"").as_deref(), Some("abc="));
        assert_eq!(find("x=1").as_deref(), None);
        assert_eq!(find("").as_deref(), None);
        assert_eq!(find("AIOHTTP_SESSION").as_deref(), None);
        assert_eq!(find("AIOHTTP_SESSION=").as_deref(), Some(""));
    }

    #[test]
    fn last_occurrence_wins_across_headers() {
        let found = find_cookie(
            [
                &b"AIOHTTP_SESSION=one"[..],
                &b"x=2; AIOHTTP_SESSION=two"[..],
            ],
            "AIOHTTP_SESSION",
        );
        assert_eq!(found.as_deref(), Some("two"));
    }

    #[test]
    fn quoted_values_may_hold_semicolons_and_escapes() {
        let header = r#"AIOHTTP_SESSION="{\"a\": \"x;y\"\054 \"b\": \"\\u00e9\"}"; next=1"#;
        assert_eq!(
            find(header).as_deref(),
            Some(r#"{"a": "x;y", "b": "\u00e9"}"#)
        );
    }

    #[test]
    fn text_after_a_closing_quote_makes_the_value_raw() {
        assert_eq!(
            find("AIOHTTP_SESSION=\"abc\"xyz; b=1").as_deref(),
            Some("\"abc\"xyz")
        );
        assert_eq!(
            find("AIOHTTP_SESSION=\"abc\"  ; b=1").as_deref(),
            Some("abc")
        );
        assert_eq!(
            find("AIOHTTP_SESSION=\"a;c\"x; b=1").as_deref(),
            Some("\"a")
        );
    }

    #[test]
    fn unbalanced_quotes_do_not_panic() {
        assert_eq!(find("AIOHTTP_SESSION=\"abc; x=1").as_deref(), Some("\"abc"));
        assert_eq!(find("AIOHTTP_SESSION=\"").as_deref(), Some("\""));
        assert_eq!(find("AIOHTTP_SESSION=\"\\").as_deref(), Some("\"\\"));
        let _ = find_cookie([&[0xff, b'=', 0xfe, b'"', b'\\'][..]], "\u{fffd}");
    }

    #[test]
    fn quoting_matches_python() {
        let mut s = String::new();
        push_quoted(&mut s, "gAAAAABk-_09");
        assert_eq!(s, "gAAAAABk-_09");
        s.clear();
        push_quoted(&mut s, "abc=");
        assert_eq!(s, "\"abc=\"");
        s.clear();
        push_quoted(&mut s, r#"{"a": "b,c;d\u00e9"}"#);
        assert_eq!(s, r#""{\"a\": \"b\054c\073d\\u00e9\"}""#);
        s.clear();
        push_quoted(&mut s, "\u{e9}\n");
        assert_eq!(s, r#""\303\251\012""#);
        // And it reads back to the same text.
        assert_eq!(unquote(s.as_bytes()), "\u{e9}\n");
    }

    #[test]
    fn an_unquoted_value_is_borrowed() {
        assert!(matches!(unquote(b"0123abcd"), Cow::Borrowed("0123abcd")));
        assert!(matches!(unquote(b"\"ab\""), Cow::Owned(s) if s == "ab"));
        // Invalid UTF-8 is replaced, not borrowed.
        assert_eq!(unquote(&[b'a', 0xff]), "a\u{fffd}");
    }

    #[test]
    fn every_character_round_trips_through_quoting() {
        for code in (0..0x800).chain([0xffff, 0x1f600]) {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let value = format!("a{c}b\\\"");
            let mut quoted = String::new();
            push_quoted(&mut quoted, &value);
            assert!(quoted.is_ascii(), "{code:#x}");
            assert_eq!(unquote(quoted.as_bytes()), value, "{code:#x}");
        }
    }

    #[test]
    fn set_cookie_attribute_order_matches_python() {
        let config = CookieConfig {
            domain: Some("example.test".into()),
            path: "/app".into(),
            max_age: Some(3600),
            secure: true,
            same_site: Some(SameSite::Strict),
            ..CookieConfig::default()
        };
        let line = render_set_cookie(&config, "tok", Some(3600), 1_763_756_393).unwrap();
        assert_eq!(
            line,
            "AIOHTTP_SESSION=tok; Domain=example.test; expires=Fri, 21-Nov-2025 21:19:53 GMT; \
             HttpOnly; Max-Age=3600; Path=/app; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn hand_written_numbers_match_the_formatter() {
        // Leap days, year ends, single digits, large ages.
        let stamps = [
            0,
            59,
            951_782_400,
            1_078_012_799,
            1_709_164_800,
            4_102_444_799,
        ];
        for now in stamps.into_iter().chain((0..400).map(|i| i * 7_654_321)) {
            let mut expires = String::new();
            push_expires(&mut expires, now);
            let (days, rem) = (now / 86_400, now % 86_400);
            let (y, m, d) = civil_from_days(days);
            let reference = format!(
                "{d:02}-{m:02}-{y:04} {:02}:{:02}:{:02} GMT",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60
            );
            let month = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ][usize::try_from(m - 1).unwrap()];
            assert_eq!(
                expires[5..],
                reference.replacen(&format!("-{m:02}-"), &format!("-{month}-"), 1)
            );
            let mut decimal = String::new();
            push_decimal(&mut decimal, now * 1_000_003);
            assert_eq!(decimal, (now * 1_000_003).to_string());
        }
        let mut max = String::new();
        push_decimal(&mut max, u64::MAX);
        assert_eq!(max, u64::MAX.to_string());
    }

    #[test]
    fn storage_max_age_without_session_max_age_sends_no_expires() {
        let config = CookieConfig {
            max_age: Some(100),
            ..CookieConfig::default()
        };
        let line = render_set_cookie(&config, "k", None, 0).unwrap();
        assert_eq!(line, "AIOHTTP_SESSION=k; HttpOnly; Max-Age=100; Path=/");
        let plain = render_set_cookie(&CookieConfig::default(), "k", None, 0).unwrap();
        assert_eq!(plain, "AIOHTTP_SESSION=k; HttpOnly; Path=/");
    }

    #[test]
    fn removal_cookie_matches_aiohttp_without_secure_samesite_partitioned() {
        let config = CookieConfig {
            domain: Some("d.test".into()),
            max_age: Some(60),
            http_only: true,
            ..CookieConfig::default()
        };
        assert_eq!(
            render_removal(&config),
            "AIOHTTP_SESSION=\"\"; Domain=d.test; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
        );
    }

    #[test]
    fn removal_cookie_carries_secure_samesite_and_partitioned() {
        let config = CookieConfig {
            name: "__Host-s".into(),
            secure: true,
            same_site: Some(SameSite::Lax),
            partitioned: true,
            ..CookieConfig::default()
        };
        assert_eq!(
            render_removal(&config),
            "__Host-s=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Partitioned; Path=/; SameSite=Lax; Secure"
        );
        let line = render_set_cookie(&config, "tok", Some(60), 0).unwrap();
        assert_eq!(
            line,
            "__Host-s=tok; expires=Thu, 01-Jan-1970 00:01:00 GMT; HttpOnly; Max-Age=60; Partitioned; Path=/; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn cookie_prefix_rules_are_enforced() {
        let ok = |config: CookieConfig| config.validate().is_ok();
        let host = CookieConfig {
            name: "__Host-s".into(),
            secure: true,
            ..CookieConfig::default()
        };
        assert!(ok(host.clone()));
        assert!(!ok(CookieConfig {
            secure: false,
            ..host.clone()
        }));
        assert!(!ok(CookieConfig {
            path: "/app".into(),
            ..host.clone()
        }));
        assert!(!ok(CookieConfig {
            domain: Some("example.test".into()),
            ..host
        }));
        let secure = CookieConfig {
            name: "__Secure-s".into(),
            domain: Some("example.test".into()),
            path: "/app".into(),
            secure: true,
            ..CookieConfig::default()
        };
        assert!(ok(secure.clone()));
        assert!(!ok(CookieConfig {
            secure: false,
            ..secure
        }));
        assert!(!ok(CookieConfig {
            partitioned: true,
            ..CookieConfig::default()
        }));
        let err = CookieConfig {
            name: "__Host-s".into(),
            ..CookieConfig::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("__Host-"), "{err}");
    }

    #[test]
    fn oversized_pair_is_an_error() {
        let config = CookieConfig::default();
        let fits = "a".repeat(MAX_COOKIE_SIZE - "AIOHTTP_SESSION=".len());
        assert!(render_set_cookie(&config, &fits, None, 0).is_ok());
        let too_big = format!("{fits}a");
        let err = render_set_cookie(&config, &too_big, None, 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CookieTooLarge);
    }

    #[test]
    fn dates() {
        let mut s = String::new();
        push_expires(&mut s, 0);
        assert_eq!(s, "Thu, 01-Jan-1970 00:00:00 GMT");
        s.clear();
        push_expires(&mut s, 951_782_400); // leap day
        assert_eq!(s, "Tue, 29-Feb-2000 00:00:00 GMT");
        s.clear();
        push_expires(&mut s, 1_795_292_416);
        assert_eq!(s, "Sat, 21-Nov-2026 20:20:16 GMT");
    }
}
