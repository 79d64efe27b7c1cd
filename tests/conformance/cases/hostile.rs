//! Hostile cookies: garbage, another key, and a mutation run.

use serde_json::json;

use crate::harness::{Fixture, Framework, StoreKind, KEY_B};

/// Every kind of hostile cookie gives a fresh session, never an error.
pub async fn bad_cookies_give_fresh_sessions<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    app.post("/set", json!({"user": "ada"})).await;
    let good = app.jar.clone().expect("cookie");
    let bare = good.trim_matches('"').to_owned();
    let mid = bare.len() / 2;
    let flipped = {
        let mut bytes = bare.clone().into_bytes();
        bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).expect("ascii")
    };
    let mut bad = vec![
        ("truncated", bare[..mid].to_owned()),
        ("unbalanced quote", format!("\"{bare}")),
        ("garbage", "%%%not-a-session%%%".to_owned()),
        ("empty", String::new()),
        ("quotes only", "\"\"".to_owned()),
        ("escape at end", "\"abc\\".to_owned()),
        ("huge", "x".repeat(8000)),
        ("binary-ish", "\\377\\000\\001".to_owned()),
        ("spaces", "a b c".to_owned()),
    ];
    if fx.store != StoreKind::Plain {
        bad.push(("tampered", flipped));
    }
    if fx.store == StoreKind::Plain {
        bad.extend([
            ("invalid json", "{\"created\": 1, ".to_owned()),
            ("json list", "[1, 2]".to_owned()),
            ("json null", "null".to_owned()),
            (
                "session not a map",
                "\"{\\\"created\\\": 1\\054 \\\"session\\\": [1]}\"".to_owned(),
            ),
        ]);
    }
    for (what, value) in bad {
        let reply = app.meta_with_cookie(&value).await;
        assert_eq!(reply.status, 200, "[{}] {what}: {}", app.label, reply.body);
        let meta = reply.json();
        assert_eq!(meta["session"], json!({}), "[{}] {what}", app.label);
        assert_eq!(meta["new"], true, "[{}] {what}", app.label);
        assert_eq!(
            reply.set_cookies,
            Vec::<String>::new(),
            "[{}] {what}",
            app.label
        );
        // And the fresh session can be used at once.
        let cookie = format!("{}={value}", app.cookie_name);
        let write = app.raw("GET", "/incr", Some(&cookie), Vec::new()).await;
        assert_eq!(write.status, 200, "[{}] {what}", app.label);
        assert_eq!(write.json(), json!({"n": 1}), "[{}] {what}", app.label);
    }
    // The untouched good cookie still works, quoted or bare.
    assert_eq!(
        app.meta_with_cookie(&good).await.json()["session"],
        json!({"user": "ada"})
    );
    if fx.store != StoreKind::Plain {
        assert_eq!(
            app.meta_with_cookie(&bare).await.json()["session"],
            json!({"user": "ada"})
        );
    }
}

/// A cookie from a server with another key (or another server store) is
/// not accepted.
pub async fn other_key_gives_fresh_session<F: Framework>(fx: Fixture<F>) {
    let mut a = fx.app().await;
    a.post("/set", json!({"user": "ada"})).await;
    let cookie = a.jar.clone().expect("cookie");
    let b = fx.app_keyed(KEY_B, |b| b).await;
    let meta = b.meta_with_cookie(&cookie).await;
    assert_eq!(meta.status, 200);
    if fx.store == StoreKind::Plain {
        // Nothing seals a plain cookie: any server reads it (tests only).
        assert_eq!(meta.json()["session"], json!({"user": "ada"}));
    } else if fx.store.is_shared() {
        // A second app process on the same Redis/memcached server shares
        // the session: that is what server stores are for.
        assert_eq!(
            meta.json()["session"],
            json!({"user": "ada"}),
            "[{}]",
            a.label
        );
    } else {
        assert_eq!(meta.json()["session"], json!({}), "[{}]", a.label);
        assert_eq!(meta.json()["new"], true);
    }
}

/// A small deterministic generator for the mutation run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of a `Cookie` header value, the kind a browser, a proxy or
/// an attacker produces (control characters, which no HTTP client can
/// send in a header, left out).
fn mutate(rng: &mut XorShift, name: &str, value: &str) -> String {
    let header = mutate_raw(rng, name, value);
    header
        .chars()
        .filter(|c| *c == '\t' || !c.is_ascii_control())
        .collect()
}

fn mutate_raw(rng: &mut XorShift, name: &str, value: &str) -> String {
    const NOISE: &[&str] = &[
        "\"",
        "\\",
        ";",
        ",",
        "=",
        " ",
        "\t",
        "\\054",
        "\\073",
        "\\377",
        "%",
        "+",
        "/",
        "-",
        "_",
        "\u{e9}",
        "\u{1f600}",
    ];
    let mut bytes = value.as_bytes().to_vec();
    match rng.below(9) {
        0 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] ^= 1 << rng.below(7);
        }
        1 => bytes.truncate(rng.below(bytes.len() + 1)),
        2 => {
            let at = rng.below(bytes.len() + 1);
            let noise = NOISE[rng.below(NOISE.len())];
            bytes.splice(at..at, noise.bytes());
        }
        3 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes.remove(at);
        }
        4 => bytes = bytes.iter().map(|b| b.to_ascii_uppercase()).collect(),
        5 => {
            let swapped = String::from_utf8_lossy(&bytes)
                .replace('-', "+")
                .replace('_', "/")
                .replace('+', "-");
            bytes = swapped.into_bytes();
        }
        6 => bytes.extend(std::iter::repeat_n(b'A', rng.below(6000))),
        7 => {
            // The name twice, the mutated value last (the last one wins).
            let junk = NOISE[rng.below(NOISE.len())];
            return format!(
                "{name}={value}; {name}={junk}{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        _ => {
            let end = bytes.len();
            let len = rng.below(end + 1);
            bytes.rotate_left(len.min(end));
        }
    }
    format!("{name}={}", String::from_utf8_lossy(&bytes))
}

/// The token a cookie value spells, as Python reads it: `"…"` unquoted
/// (`\NNN` octal, `\X`), and for Fernet the URL-safe alphabet.
fn canonical(store: StoreKind, value: &str) -> String {
    let value = value.trim();
    // A bare value ends at the first `;`.
    let value = if value.starts_with('"') {
        value
    } else {
        value.split(';').next().unwrap_or("").trim()
    };
    let token = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = Vec::new();
            let bytes = inner.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                let octal = bytes.get(i + 1..i + 4).filter(|d| {
                    (b'0'..=b'3').contains(&d[0])
                        && d[1..].iter().all(|c| (b'0'..=b'7').contains(c))
                });
                match (bytes[i], octal) {
                    (b'\\', Some(d)) => {
                        out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                        i += 4;
                    }
                    (b'\\', None) if i + 1 < bytes.len() => {
                        out.push(bytes[i + 1]);
                        i += 2;
                    }
                    (b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        None => value.to_owned(),
    };
    if store == StoreKind::Fernet {
        token.replace('+', "-").replace('/', "_")
    } else {
        token
    }
}

/// 300 mutations (`HTTP_SESSION_MUTATIONS=N`: N) of a valid session cookie over HTTP: every answer is a
/// 2xx, and every mutated cookie that is not the original token gives a
/// fresh session with no data (for the plain store, which anyone can forge,
/// only the 2xx: a mutation may well be another valid session).
pub async fn mutated_cookies_get_fresh_sessions<F: Framework>(fx: Fixture<F>) {
    let mut app = fx.app().await;
    app.post("/set", json!({"user": "ada", "n": 7})).await;
    let good = app.jar.clone().expect("a cookie");
    // HTTP_SESSION_MUTATIONS=N runs N rounds (and another seed) instead.
    let rounds: u64 = std::env::var("HTTP_SESSION_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ good.len() as u64 ^ rounds);
    for round in 0..rounds {
        let header = mutate(&mut rng, &app.cookie_name, &good);
        let reply = app.raw("GET", "/meta", Some(&header), Vec::new()).await;
        assert!(
            (200..300).contains(&reply.status),
            "[{}] round {round}: {} for Cookie {header:?}: {}",
            app.label,
            reply.status,
            reply.body
        );
        if fx.store == StoreKind::Plain {
            continue;
        }
        let sent = header
            .rsplit(&format!("{}=", app.cookie_name))
            .next()
            .unwrap_or("");
        let meta = reply.json();
        // Another spelling of the same token (an escape of a plain
        // character, Fernet's other base64 alphabet) is the same session.
        if canonical(fx.store, sent) == canonical(fx.store, &good) {
            continue;
        }
        assert_eq!(
            meta["session"],
            json!({}),
            "[{}] round {round}: {header:?}",
            app.label
        );
        assert_eq!(
            meta["new"], true,
            "[{}] round {round}: {header:?}",
            app.label
        );
    }
}
