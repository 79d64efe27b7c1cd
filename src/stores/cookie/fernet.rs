//! Fernet tokens (AES-128-CBC + HMAC-SHA256), as written by Python's
//! `cryptography` and aiohttp-session's `EncryptedCookieStorage`.
//!
//! Token: `base64url(0x80 ‖ timestamp_u64_be ‖ iv ‖ ciphertext ‖ hmac)`
//! with `=` padding. The 32-byte key is `signing key ‖ encryption key`.

use std::fmt;

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit as _};
use aes::Aes128;
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::key::KeyBytes;
use super::{OpenError, Sealer};
use crate::error::{Error, ErrorKind};

const VERSION: u8 = 0x80;
const HEADER: usize = 1 + 8 + 16;
const TAG: usize = 32;
/// Tokens up to this far in the future are accepted when a TTL is checked
/// (the `_MAX_CLOCK_SKEW` of Python's `cryptography`).
const MAX_CLOCK_SKEW: u64 = 60;

/// A Fernet key: 32 bytes, zeroized on drop, never printed.
#[derive(Clone)]
pub struct FernetKey(KeyBytes);

impl FernetKey {
    /// The key from its 32 raw bytes (aiohttp-session's `bytes` key).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        KeyBytes::from_slice(bytes, "a Fernet key is 32 bytes").map(Self)
    }

    /// The key from its text form: the URL-safe base64 of the 32 bytes, with
    /// `=` padding (what `Fernet.generate_key()` prints, and the `str` key
    /// aiohttp-session accepts).
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let bytes = Zeroizing::new(URL_SAFE.decode(text.trim()).map_err(|_| {
            Error::new(ErrorKind::InvalidKey).detail("expected padded URL-safe base64 of 32 bytes")
        })?);
        Self::from_bytes(&bytes)
    }

    /// A new random key from the operating system.
    pub fn generate() -> Result<Self, Error> {
        KeyBytes::generate().map(Self)
    }

    /// The key's text form (padded URL-safe base64). Handle with care.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE.encode(self.0.bytes()))
    }
}

impl fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FernetKey([redacted])")
    }
}

/// Ready-to-use state for one key: the HMAC with its key already absorbed
/// and the AES key schedule, so a request pays for neither. Both are
/// zeroized on drop (the `zeroize` features of `aes`, `hmac` and `sha2`),
/// and so is every per-call copy of the HMAC state; AES is used by
/// reference, never copied.
#[derive(Clone)]
struct KeyState {
    mac: Hmac<Sha256>,
    cipher: Aes128,
}

impl KeyState {
    fn new(key: &FernetKey) -> Self {
        let (signing, encryption) = key.0.bytes().split_at(16);
        Self {
            // HMAC accepts keys of any length; 16 bytes cannot fail.
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(signing)
                .unwrap_or_else(|_| unreachable!()),
            cipher: Aes128::new(encryption.into()),
        }
    }
}

/// The Fernet sealer, with optional key rotation: tokens are sealed with
/// the first key and opened with any of them.
///
/// Tokens interoperate with Python's `cryptography.fernet` both ways,
/// including the TTL rule (`timestamp + ttl < now` is expired, more than 60
/// seconds in the future is rejected; both only when a `max_age` is set).
/// As in Python, a token written with the standard base64 alphabet is
/// accepted; padding is required.
#[derive(Clone)]
pub struct Fernet {
    keys: Vec<KeyState>,
}

impl Fernet {
    /// A sealer with one key.
    pub fn new(key: &FernetKey) -> Self {
        Self {
            keys: vec![KeyState::new(key)],
        }
    }

    /// A sealer that seals with `current` and also opens tokens sealed with
    /// any of `previous`, for key rotation (Python: a `MultiFernet` with the
    /// same keys in the same order).
    ///
    /// A session opened with a previous key is sealed with `current` the
    /// next time it is saved (when the request changed it; a read-only
    /// request still sends no `Set-Cookie`). The README's "Key rotation"
    /// section gives the order of steps across several instances and Python
    /// services; a previous key must be kept until the storage `max_age`
    /// (the Fernet TTL) has passed since the last instance stopped sealing
    /// with it.
    pub fn with_rotation<'a>(
        current: &FernetKey,
        previous: impl IntoIterator<Item = &'a FernetKey>,
    ) -> Self {
        let mut keys = vec![KeyState::new(current)];
        keys.extend(previous.into_iter().map(KeyState::new));
        Self { keys }
    }

    /// Seals `plaintext` with a chosen timestamp and IV. Deterministic, so
    /// not public: [`Sealer::seal`] takes the timestamp and draws the IV.
    fn seal_with_parts(&self, plaintext: &[u8], timestamp: u64, iv: [u8; 16]) -> String {
        let key = &self.keys[0];
        let padded = (plaintext.len() / 16 + 1) * 16;
        let mut buf = Vec::with_capacity(HEADER + padded + TAG);
        buf.push(VERSION);
        buf.extend_from_slice(&timestamp.to_be_bytes());
        buf.extend_from_slice(&iv);
        buf.extend_from_slice(plaintext);
        buf.resize(HEADER + padded, 0);
        let encryptor = cbc::Encryptor::<&Aes128>::inner_iv_init(&key.cipher, &iv.into());
        // The buffer has room for a full padding block, so padding cannot fail.
        let _ = encryptor.encrypt_padded_mut::<Pkcs7>(&mut buf[HEADER..], plaintext.len());
        let tag = key.mac.clone().chain_update(&buf).finalize().into_bytes();
        buf.extend_from_slice(&tag);
        URL_SAFE.encode(&buf)
    }

    /// Opens a token as of `now`, checking the TTL when one is given.
    pub fn decrypt_at(
        &self,
        token: &str,
        ttl: Option<u64>,
        now: u64,
    ) -> Result<Vec<u8>, OpenError> {
        let mut data = decode_token(token)?;
        if data.len() < HEADER + 16 + TAG
            || !(data.len() - HEADER - TAG).is_multiple_of(16)
            || data[0] != VERSION
        {
            return Err(OpenError::Malformed);
        }
        let (signed, tag) = data.split_at(data.len() - TAG);
        let index = self
            .keys
            .iter()
            .position(|k| k.mac.clone().chain_update(signed).verify_slice(tag).is_ok())
            .ok_or(OpenError::Forged)?;
        let key = &self.keys[index];
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&data[1..9]);
        let timestamp = u64::from_be_bytes(ts);
        if let Some(ttl) = ttl {
            if timestamp.saturating_add(ttl) < now {
                return Err(OpenError::Expired);
            }
            if now.saturating_add(MAX_CLOCK_SKEW) < timestamp {
                return Err(OpenError::FromTheFuture);
            }
        }
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&data[9..HEADER]);
        let end = data.len() - TAG;
        let decryptor = cbc::Decryptor::<&Aes128>::inner_iv_init(&key.cipher, &iv.into());
        let len = decryptor
            .decrypt_padded_mut::<Pkcs7>(&mut data[HEADER..end])
            .map_err(|_| OpenError::Malformed)?
            .len();
        data.copy_within(HEADER..HEADER + len, 0);
        data.truncate(len);
        if index > 0 {
            super::opened_with_previous_key(index);
        }
        Ok(data)
    }
}

/// Decodes URL-safe base64 with canonical padding, also accepting the
/// standard alphabet as Python's `urlsafe_b64decode` does.
fn decode_token(token: &str) -> Result<Vec<u8>, OpenError> {
    let decoded = if token.bytes().any(|b| b == b'+' || b == b'/') {
        let translated: String = token
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        URL_SAFE.decode(translated)
    } else {
        URL_SAFE.decode(token)
    };
    decoded.map_err(|_| OpenError::Malformed)
}

impl Sealer for Fernet {
    fn seal(&self, record: &[u8], now: u64) -> Result<String, Error> {
        let mut iv = [0u8; 16];
        crate::random::fill(&mut iv)?;
        Ok(self.seal_with_parts(record, now, iv))
    }

    fn open(&self, value: &str, max_age: Option<u64>, now: u64) -> Result<Vec<u8>, OpenError> {
        self.decrypt_at(value, max_age, now)
    }
}

impl fmt::Debug for Fernet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fernet")
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .finish()
    }
}

impl super::CookieStore<Fernet> {
    /// A Fernet cookie store with one key.
    pub fn fernet(key: &FernetKey) -> Self {
        Self::new(Fernet::new(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The known-answer vector of the Fernet specification.
    const SPEC_KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    const SPEC_TOKEN: &str = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
    const SPEC_NOW: u64 = 499_162_800;

    fn spec() -> Fernet {
        Fernet::new(&FernetKey::from_base64(SPEC_KEY).unwrap())
    }

    #[test]
    fn spec_vector_encrypts() {
        let iv: [u8; 16] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        assert_eq!(spec().seal_with_parts(b"hello", SPEC_NOW, iv), SPEC_TOKEN);
    }

    /// Every authentic Fernet token aiohttp-session wrote for `vectors.json`
    /// (with its pinned time and IV), re-sealed byte for byte.
    #[test]
    fn python_vectors_re_seal_byte_for_byte() {
        let mut checked = 0;
        for v in super::super::python_vectors::of("fernet") {
            let Some(iv) = v.bytes("iv_hex") else {
                continue;
            };
            let fernet = Fernet::new(&FernetKey::from_bytes(&v.key()).unwrap());
            // Tampered and foreign-key tokens are not Python's seal of this
            // plaintext under this key.
            let Ok(opened) = fernet.decrypt_at(v.token(), None, 0) else {
                continue;
            };
            assert_eq!(opened, v.plaintext().as_bytes(), "{}", v.name());
            let token = fernet.seal_with_parts(
                v.plaintext().as_bytes(),
                v.json["ts"].as_u64().unwrap(),
                iv.try_into().unwrap(),
            );
            // One vector is Python's token rewritten in the standard
            // alphabet, which Python (and `open`) accept as well.
            let canonical = v.token().replace('+', "-").replace('/', "_");
            assert_eq!(token, canonical, "{}", v.name());
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} Fernet vectors");
    }

    #[test]
    fn key_state_is_zeroized_on_drop() {
        use zeroize::ZeroizeOnDrop;
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        // The AES-128 round keys.
        zeroized_on_drop::<Aes128>();
        // Both keyed SHA-256 states of the HMAC (inner and outer pad), and
        // its block buffer.
        zeroized_on_drop::<<Sha256 as hmac::EagerHash>::Core>();
        zeroized_on_drop::<hmac::digest::block_api::Buffer<hmac::block_api::HmacCore<Sha256>>>();
    }

    #[test]
    fn spec_vector_decrypts_with_ttl() {
        assert_eq!(
            spec()
                .decrypt_at(SPEC_TOKEN, Some(60), SPEC_NOW + 60)
                .unwrap(),
            b"hello"
        );
        assert_eq!(
            spec().decrypt_at(SPEC_TOKEN, None, u64::MAX).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn spec_invalid_cases() {
        let f = spec();
        assert_eq!(
            f.decrypt_at(SPEC_TOKEN, Some(60), SPEC_NOW + 61),
            Err(OpenError::Expired)
        );
        assert_eq!(
            f.decrypt_at(SPEC_TOKEN, Some(60), SPEC_NOW - 61),
            Err(OpenError::FromTheFuture)
        );
        let unpadded = SPEC_TOKEN.trim_end_matches('=');
        assert_eq!(
            f.decrypt_at(unpadded, None, SPEC_NOW),
            Err(OpenError::Malformed)
        );
        let mut bytes = URL_SAFE.decode(SPEC_TOKEN).unwrap();
        bytes[0] = 0x81;
        assert_eq!(
            f.decrypt_at(&URL_SAFE.encode(&bytes), None, SPEC_NOW),
            Err(OpenError::Malformed)
        );
        for i in 1..bytes.len() {
            let mut tampered = URL_SAFE.decode(SPEC_TOKEN).unwrap();
            tampered[i] ^= 1;
            assert_eq!(
                f.decrypt_at(&URL_SAFE.encode(&tampered), None, SPEC_NOW),
                Err(OpenError::Forged),
                "byte {i}"
            );
        }
        assert_eq!(f.decrypt_at("", None, SPEC_NOW), Err(OpenError::Malformed));
        assert_eq!(
            f.decrypt_at("gAAAAA==", None, SPEC_NOW),
            Err(OpenError::Malformed)
        );
        let other = Fernet::new(&FernetKey::from_bytes(&[7; 32]).unwrap());
        assert_eq!(
            other.decrypt_at(SPEC_TOKEN, None, SPEC_NOW),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn standard_alphabet_is_accepted() {
        let standard = SPEC_TOKEN.replace('-', "+").replace('_', "/");
        assert_ne!(standard, SPEC_TOKEN);
        assert_eq!(
            spec().decrypt_at(&standard, None, SPEC_NOW).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn round_trips_every_padding_length() {
        let f = Fernet::new(&FernetKey::generate().unwrap());
        for len in 0..70 {
            let msg = vec![b'x'; len];
            let token = f.seal(&msg, 100).unwrap();
            assert_eq!(f.open(&token, Some(10), 105).unwrap(), msg);
        }
    }

    #[test]
    fn rotation_opens_old_tokens_and_seals_with_the_new_key() {
        let old = FernetKey::from_bytes(&[1; 32]).unwrap();
        let new = FernetKey::from_bytes(&[2; 32]).unwrap();
        let old_token = Fernet::new(&old).seal(b"{}", 1).unwrap();
        let rotated = Fernet::with_rotation(&new, [&old]);
        assert_eq!(rotated.open(&old_token, None, 1).unwrap(), b"{}");
        let new_token = rotated.seal(b"x", 1).unwrap();
        assert_eq!(Fernet::new(&new).open(&new_token, None, 1).unwrap(), b"x");
        assert_eq!(
            Fernet::new(&old).open(&new_token, None, 1),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn keys_parse_and_never_print() {
        assert!(FernetKey::from_bytes(&[0; 31]).is_err());
        assert!(FernetKey::from_base64("not base64").is_err());
        assert!(FernetKey::from_base64(SPEC_KEY.trim_end_matches('=')).is_err());
        let key = FernetKey::from_base64(SPEC_KEY).unwrap();
        assert_eq!(key.to_base64().as_str(), SPEC_KEY);
        let debug = format!("{key:?} {:?}", Fernet::new(&key));
        assert!(
            !debug.contains(SPEC_KEY) && !debug.contains("115"),
            "{debug}"
        );
    }
}
