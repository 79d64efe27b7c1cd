//! Codec costs next to the primitives they are made of.
//!
//! `cargo bench --bench codecs --features fernet,nacl`
//!
//! Sizes: a ~200-byte session and a ~2.5 KB one (the largest that fits a
//! Fernet cookie). Each codec row has primitive rows beside it, so the
//! overhead over the bare primitives can be read off one run.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmarks"
)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyIvInit};
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use hmac::{Hmac, KeyInit as HmacKeyInit, Mac};
use http_session::stores::{
    Fernet, FernetKey, FernetStore, NaCl, NaClKey, NaClStore, Plain, Sealer,
};
use http_session::{
    render_set_cookie, Codec, CookieConfig, JsonCodec, MemoryStore, Record, SessionManager,
};
use serde_json::{json, Map, Number, Value};
use sha2::Sha256;

/// The crate's per-thread id/IV/nonce generator, measured as it is.
#[allow(
    dead_code,
    unreachable_pub,
    unused_imports,
    reason = "only the generator is used, not its unit tests"
)]
#[path = "../src/random/generator.rs"]
mod generator;

const NOW: u64 = 1_700_000_000;

/// A session map whose encoded record is about `target` bytes.
fn session(target: usize) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("user".into(), json!("ada@example.test"));
    map.insert("roles".into(), json!(["admin", "dev"]));
    map.insert("n".into(), json!(42));
    let mut i = 0;
    while serde_json::to_vec(&map).unwrap().len() + 40 < target {
        map.insert(format!("k{i}"), json!("0123456789abcdef"));
        i += 1;
    }
    map
}

fn record_bytes(map: &Map<String, Value>) -> Vec<u8> {
    let created = Number::from(NOW);
    JsonCodec
        .encode(&Record {
            created: &created,
            session: map,
            meta: None,
        })
        .unwrap()
}

fn codecs(c: &mut Criterion) {
    let fernet = Fernet::new(&FernetKey::from_bytes(&[7; 32]).unwrap());
    let nacl = NaCl::new(&NaClKey::from_bytes(&[9; 32]).unwrap());
    let created = Number::from(NOW);
    for (label, target) in [("200B", 200), ("2500B", 2500)] {
        let map = session(target);
        let record = record_bytes(&map);
        let mut g = c.benchmark_group(format!("codec/{label}"));
        g.throughput(Throughput::Bytes(record.len() as u64));

        g.bench_function("record_encode", |b| {
            b.iter(|| {
                JsonCodec
                    .encode(&Record {
                        created: &created,
                        session: black_box(&map),
                        meta: None,
                    })
                    .unwrap()
            });
        });
        g.bench_function("record_decode", |b| {
            b.iter(|| JsonCodec.decode(black_box(&record)).unwrap());
        });

        let token = fernet.seal(&record, NOW).unwrap();
        g.bench_function("fernet_seal", |b| {
            b.iter(|| fernet.seal(black_box(&record), NOW).unwrap());
        });
        g.bench_function("fernet_open", |b| {
            b.iter(|| fernet.open(black_box(&token), Some(3600), NOW).unwrap());
        });
        g.bench_function("fernet_seal_open", |b| {
            b.iter(|| {
                let t = fernet.seal(black_box(&record), NOW).unwrap();
                fernet.open(&t, Some(3600), NOW).unwrap()
            });
        });

        let boxed = nacl.seal(&record, NOW).unwrap();
        g.bench_function("nacl_seal", |b| {
            b.iter(|| nacl.seal(black_box(&record), NOW).unwrap());
        });
        g.bench_function("nacl_open", |b| {
            b.iter(|| nacl.open(black_box(&boxed), None, NOW).unwrap());
        });
        g.bench_function("nacl_seal_open", |b| {
            b.iter(|| {
                let t = nacl.seal(black_box(&record), NOW).unwrap();
                nacl.open(&t, None, NOW).unwrap()
            });
        });

        // Key rotation: a token of the previous key, opened by a rotating
        // sealer (one failed tag check first), and the re-seal a save of
        // such a session costs: open, seal with the current key, render
        // the Set-Cookie header (what a read-only request would add if it
        // re-sealed).
        let config = CookieConfig::default();
        let fernet_old = Fernet::new(&FernetKey::from_bytes(&[6; 32]).unwrap());
        let fernet_rot = Fernet::with_rotation(
            &FernetKey::from_bytes(&[7; 32]).unwrap(),
            [&FernetKey::from_bytes(&[6; 32]).unwrap()],
        );
        let old_token = fernet_old.seal(&record, NOW).unwrap();
        g.bench_function("fernet_open_previous_key", |b| {
            b.iter(|| {
                fernet_rot
                    .open(black_box(&old_token), Some(3600), NOW)
                    .unwrap()
            });
        });
        g.bench_function("fernet_reseal", |b| {
            b.iter(|| {
                let opened = fernet_rot
                    .open(black_box(&old_token), Some(3600), NOW)
                    .unwrap();
                let sealed = fernet_rot.seal(&opened, NOW).unwrap();
                render_set_cookie(&config, &sealed, Some(3600), NOW).unwrap()
            });
        });
        let nacl_old = NaCl::new(&NaClKey::from_bytes(&[8; 32]).unwrap());
        let nacl_rot = NaCl::with_rotation(
            &NaClKey::from_bytes(&[9; 32]).unwrap(),
            [&NaClKey::from_bytes(&[8; 32]).unwrap()],
        );
        let old_boxed = nacl_old.seal(&record, NOW).unwrap();
        g.bench_function("nacl_open_previous_key", |b| {
            b.iter(|| nacl_rot.open(black_box(&old_boxed), None, NOW).unwrap());
        });
        g.bench_function("nacl_reseal", |b| {
            b.iter(|| {
                let opened = nacl_rot.open(black_box(&old_boxed), None, NOW).unwrap();
                let sealed = nacl_rot.seal(&opened, NOW).unwrap();
                render_set_cookie(&config, &sealed, Some(3600), NOW).unwrap()
            });
        });

        g.bench_function("plain_seal_open", |b| {
            b.iter(|| {
                let t = Plain.seal(black_box(&record), NOW).unwrap();
                Plain.open(&t, None, NOW).unwrap()
            });
        });

        g.bench_function("set_cookie_render", |b| {
            b.iter(|| render_set_cookie(&config, black_box(&token), Some(3600), NOW).unwrap());
        });
        let header = format!("theme=dark; AIOHTTP_SESSION=\"{token}\"; lang=en");
        let manager = SessionManager::new(MemoryStore::memory());
        g.bench_function("cookie_header_parse", |b| {
            b.iter(|| manager.start([black_box(header.as_bytes())]));
        });
        g.finish();
    }
}

/// Polls a future that never waits (every store used here answers at once).
fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = TaskContext::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waited"),
    }
}

/// The session work of one load-benchmark request (`GET /incr`), without
/// the network and the framework: find the cookie, load, read `n`, write
/// `n + 1`, save, render `Set-Cookie`. W1 has no cookie (a new session), W2
/// the cookie of an existing one. Set against the cost of a `/bare` request
/// in the load benchmark, these rows give the W1/bare and W2/bare the
/// library allows.
fn requests(c: &mut Criterion) {
    let fernet_key = FernetKey::from_bytes(&[7; 32]).unwrap();
    let nacl_key = NaClKey::from_bytes(&[9; 32]).unwrap();
    let managers = [
        ("memory", SessionManager::new(MemoryStore::memory())),
        (
            "fernet",
            SessionManager::new(FernetStore::fernet(&fernet_key)),
        ),
        ("nacl", SessionManager::new(NaClStore::nacl(&nacl_key))),
    ];
    let incr = |manager: &SessionManager, header: Option<&[u8]>| {
        let lazy = manager.start(header);
        let session = ready(lazy.get()).unwrap();
        let n = session.get_value("n").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
        session.insert_value("n", json!(n));
        ready(lazy.finish()).unwrap().unwrap()
    };
    let mut g = c.benchmark_group("request");
    for (name, manager) in &managers {
        g.bench_function(format!("{name}_w1"), |b| b.iter(|| incr(manager, None)));
        let set_cookie = incr(manager, None);
        let pair = set_cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        g.bench_function(format!("{name}_w2"), |b| {
            b.iter(|| incr(manager, Some(black_box(pair.as_bytes()))));
        });
    }
    g.finish();
}

type HmacSha256 = Hmac<Sha256>;

fn primitives(c: &mut Criterion) {
    let key = [7u8; 32];
    for (label, target) in [("200B", 200), ("2500B", 2500)] {
        let record = record_bytes(&session(target));
        let mut g = c.benchmark_group(format!("primitive/{label}"));
        g.throughput(Throughput::Bytes(record.len() as u64));

        let padded = (record.len() / 16 + 1) * 16;
        // Key schedules and the keyed HMAC are prepared once, as the Fernet
        // codec prepares them once per key: the rows are the per-call work
        // (AES by reference, the keyed HMAC cloned and zeroized on drop).
        let aes_key = aes::Aes128::new(key[16..].into());
        let keyed_mac = <HmacSha256 as HmacKeyInit>::new_from_slice(&key[..16]).unwrap();
        g.bench_function("aes128cbc_encrypt", |b| {
            let mut buf = vec![0u8; padded];
            b.iter(|| {
                buf[..record.len()].copy_from_slice(&record);
                let enc =
                    cbc::Encryptor::<&aes::Aes128>::inner_iv_init(&aes_key, &[1u8; 16].into());
                enc.encrypt_padded_mut::<Pkcs7>(&mut buf, record.len())
                    .unwrap()
                    .len()
            });
        });
        let mut ct = vec![0u8; padded];
        ct[..record.len()].copy_from_slice(&record);
        cbc::Encryptor::<aes::Aes128>::new(key[16..].into(), &[1u8; 16].into())
            .encrypt_padded_mut::<Pkcs7>(&mut ct, record.len())
            .unwrap();
        g.bench_function("aes128cbc_decrypt", |b| {
            let mut buf = ct.clone();
            b.iter(|| {
                buf.copy_from_slice(&ct);
                let dec =
                    cbc::Decryptor::<&aes::Aes128>::inner_iv_init(&aes_key, &[1u8; 16].into());
                dec.decrypt_padded_mut::<Pkcs7>(&mut buf).unwrap().len()
            });
        });
        let signed = vec![0x80u8; 25 + padded];
        g.bench_function("hmac_sha256", |b| {
            b.iter(|| {
                let mut mac = keyed_mac.clone();
                mac.update(black_box(&signed));
                mac.finalize().into_bytes()
            });
        });
        let cipher = XSalsa20Poly1305::new((&key).into());
        g.bench_function("xsalsa20poly1305_encrypt", |b| {
            let mut buf = record.clone();
            b.iter(|| {
                buf.copy_from_slice(&record);
                cipher
                    .encrypt_in_place_detached(Nonce::from_slice(&[3; 24]), b"", &mut buf)
                    .unwrap()
            });
        });
        let raw = vec![0x5au8; 57 + padded + 32];
        g.bench_function("base64url_encode", |b| {
            b.iter(|| URL_SAFE.encode(black_box(&raw)));
        });
        let text = URL_SAFE.encode(&raw);
        g.bench_function("base64url_decode", |b| {
            b.iter(|| URL_SAFE.decode(black_box(&text)).unwrap());
        });
        let std_text = STANDARD.encode(&raw);
        g.bench_function("base64_decode", |b| {
            b.iter(|| STANDARD.decode(black_box(&std_text)).unwrap());
        });
        // Nonces, IVs and ids come from a per-thread ChaCha20 generator
        // keyed by the OS, checking for a fork on every call (the crate's
        // `random` module); the OS read is shown for comparison and is not
        // in the sums.
        let mut generator = generator::Generator::new(generator::os_source);
        g.bench_function("chacha20_random_24B", |b| {
            b.iter(|| {
                let mut nonce = [0u8; 24];
                generator.fill(&mut nonce).unwrap();
                nonce
            });
        });
        g.bench_function("os_random_24B", |b| {
            b.iter(|| {
                let mut nonce = [0u8; 24];
                getrandom::getrandom(&mut nonce).unwrap();
                nonce
            });
        });
        let value: Value = serde_json::from_slice(&record).unwrap();
        g.bench_function("serde_json_to_vec_compact", |b| {
            b.iter(|| serde_json::to_vec(black_box(&value)).unwrap());
        });
        g.bench_function("serde_json_from_slice", |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(&record)).unwrap());
        });
        g.finish();
    }
}

criterion_group!(benches, codecs, primitives, requests);
criterion_main!(benches);
