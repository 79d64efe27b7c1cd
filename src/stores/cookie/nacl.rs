//! NaCl `crypto_secretbox` tokens (XSalsa20-Poly1305), as written by PyNaCl
//! and aiohttp-session's `NaClCookieStorage`.
//!
//! Token: `base64(nonce ‖ tag ‖ ciphertext)`, standard alphabet, padded.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use salsa20::XSalsa20;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::key::KeyBytes;
use super::poly1305;
use super::{OpenError, Sealer};
use crate::error::Error;

const NONCE: usize = 24;
const TAG: usize = 16;

/// A secretbox key: 32 bytes, zeroized on drop, never printed.
#[derive(Clone)]
pub struct NaClKey(KeyBytes);

impl NaClKey {
    /// The key from its 32 raw bytes (used directly, as PyNaCl does).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        KeyBytes::from_slice(bytes, "a NaCl key is 32 bytes").map(Self)
    }

    /// A new random key from the operating system.
    pub fn generate() -> Result<Self, Error> {
        KeyBytes::generate().map(Self)
    }
}

impl fmt::Debug for NaClKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NaClKey([redacted])")
    }
}

/// The NaCl secretbox sealer, with optional key rotation: tokens are sealed
/// with the first key and opened with any of them.
///
/// Tokens carry no timestamp: expiry comes from the record's `created`
/// only, so a previous key must be kept until the storage `max_age` has
/// passed since the last instance stopped sealing with it (see
/// [`with_rotation`](Self::with_rotation)).
///
/// The secretbox is built here from XSalsa20 (the `salsa20` crate) and
/// Poly1305 (this crate's, one message per call: the `poly1305` crate's
/// AVX2 set-up cost more than the rest of a short cookie's seal), exactly
/// as NaCl's `crypto_secretbox` composes them; the tokens are PyNaCl's,
/// byte for byte.
#[derive(Clone)]
pub struct NaCl {
    /// The sealing key first, then the previous keys.
    keys: Vec<NaClKey>,
}

/// XSalsa20 for `nonce`, and the Poly1305 key it yields: the first 32
/// bytes of its keystream. The message is XORed with the keystream from
/// byte 32 on.
fn secretbox(key: &NaClKey, nonce: &[u8; NONCE]) -> (XSalsa20, Zeroizing<[u8; 32]>) {
    let mut cipher = XSalsa20::new(key.0.bytes().into(), nonce.into());
    let mut mac_key = Zeroizing::new([0u8; 32]);
    cipher.apply_keystream(&mut *mac_key);
    (cipher, mac_key)
}

impl NaCl {
    /// A sealer with `key`.
    pub fn new(key: &NaClKey) -> Self {
        Self::with_rotation(key, [])
    }

    /// A sealer that seals with `current` and also opens tokens sealed with
    /// any of `previous`, for key rotation (as
    /// [`Fernet::with_rotation`](crate::stores::Fernet::with_rotation)).
    ///
    /// A session opened with a previous key is sealed with `current` the
    /// next time it is saved (when the request changed it; a read-only
    /// request still sends no `Set-Cookie`). Opening such a token costs one
    /// failed tag check per key tried before the right one. The README's
    /// "Key rotation" section gives the order of steps across several
    /// instances and Python services.
    ///
    /// ```
    /// use http_session::stores::{NaCl, NaClKey};
    /// use http_session::NaClStore;
    ///
    /// let old = NaClKey::from_bytes(&[1; 32])?;
    /// let new = NaClKey::from_bytes(&[2; 32])?;
    /// let store = NaClStore::new(NaCl::with_rotation(&new, [&old]));
    /// # let _ = store;
    /// # Ok::<(), http_session::Error>(())
    /// ```
    pub fn with_rotation<'a>(
        current: &NaClKey,
        previous: impl IntoIterator<Item = &'a NaClKey>,
    ) -> Self {
        let mut keys = vec![current.clone()];
        keys.extend(previous.into_iter().cloned());
        Self { keys }
    }

    /// Seals `plaintext` with a chosen nonce. Deterministic (a repeated
    /// nonce gives the key away), so not public: [`Sealer::seal`] draws it.
    fn seal_with_nonce(&self, plaintext: &[u8], nonce: [u8; NONCE]) -> Result<String, Error> {
        let mut buf = Vec::with_capacity(NONCE + TAG + plaintext.len());
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(&[0; TAG]);
        buf.extend_from_slice(plaintext);
        let (mut cipher, mac_key) = secretbox(&self.keys[0], &nonce);
        let body = &mut buf[NONCE + TAG..];
        cipher.apply_keystream(body);
        let tag = poly1305::tag(&mac_key, body);
        buf[NONCE..NONCE + TAG].copy_from_slice(&tag);
        Ok(STANDARD.encode(&buf))
    }
}

impl Sealer for NaCl {
    fn seal(&self, record: &[u8], _now: u64) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE];
        crate::random::fill(&mut nonce)?;
        self.seal_with_nonce(record, nonce)
    }

    fn open(&self, value: &str, _max_age: Option<u64>, _now: u64) -> Result<Vec<u8>, OpenError> {
        let mut data = STANDARD.decode(value).map_err(|_| OpenError::Malformed)?;
        if data.len() < NONCE + TAG {
            return Err(OpenError::Malformed);
        }
        let (head, body) = data.split_at_mut(NONCE + TAG);
        let (nonce, tag) = head.split_at(NONCE);
        let nonce: &[u8; NONCE] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        // The tag is checked before anything is decrypted, so a key that
        // fails leaves `body` as it was for the next one.
        let (index, mut cipher) = self
            .keys
            .iter()
            .enumerate()
            .find_map(|(index, key)| {
                let (cipher, mac_key) = secretbox(key, nonce);
                let authentic: bool = poly1305::tag(&mac_key, body).ct_eq(tag).into();
                authentic.then_some((index, cipher))
            })
            .ok_or(OpenError::Forged)?;
        cipher.apply_keystream(body);
        if index > 0 {
            super::opened_with_previous_key(index);
        }
        data.drain(..NONCE + TAG);
        Ok(data)
    }
}

impl fmt::Debug for NaCl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NaCl")
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .finish()
    }
}

impl super::CookieStore<NaCl> {
    /// A NaCl secretbox cookie store.
    pub fn nacl(key: &NaClKey) -> Self {
        Self::new(NaCl::new(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> NaCl {
        NaCl::new(&NaClKey::from_bytes(&[9; 32]).unwrap())
    }

    #[test]
    fn round_trip_and_layout() {
        let token = sealer().seal_with_nonce(b"hello", [3; NONCE]).unwrap();
        let raw = STANDARD.decode(&token).unwrap();
        assert_eq!(raw.len(), NONCE + TAG + 5);
        assert_eq!(&raw[..NONCE], &[3; NONCE]);
        assert_eq!(sealer().open(&token, None, 0).unwrap(), b"hello");
        let random = sealer().seal(b"", 0).unwrap();
        assert_eq!(sealer().open(&random, None, 0).unwrap(), b"");
    }

    #[test]
    fn rejects_tampering_wrong_key_alphabet_and_truncation() {
        let s = sealer();
        let token = s.seal_with_nonce(b"hello world!!", [0xfb; NONCE]).unwrap();
        let raw = STANDARD.decode(&token).unwrap();
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 0x20;
            assert_eq!(
                s.open(&STANDARD.encode(&t), None, 0),
                Err(OpenError::Forged),
                "byte {i}"
            );
        }
        let other = NaCl::new(&NaClKey::from_bytes(&[8; 32]).unwrap());
        assert_eq!(other.open(&token, None, 0), Err(OpenError::Forged));
        assert!(token.contains('+') || token.contains('/'));
        let url_safe = token.replace('+', "-").replace('/', "_");
        assert_eq!(s.open(&url_safe, None, 0), Err(OpenError::Malformed));
        assert_eq!(
            s.open(token.trim_end_matches('='), None, 0),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            s.open(&STANDARD.encode(&raw[..39]), None, 0),
            Err(OpenError::Malformed)
        );
        assert_eq!(s.open("", None, 0), Err(OpenError::Malformed));
    }

    /// Every authentic NaCl token aiohttp-session wrote for `vectors.json`
    /// (with its pinned nonce), re-sealed byte for byte.
    #[test]
    fn python_vectors_re_seal_byte_for_byte() {
        let mut checked = 0;
        for v in super::super::python_vectors::of("nacl") {
            let Some(nonce) = v.bytes("nonce_hex") else {
                continue;
            };
            let nacl = NaCl::new(&NaClKey::from_bytes(&v.key()).unwrap());
            // Tampered and foreign-key tokens are not Python's seal of this
            // plaintext under this key.
            let Ok(opened) = nacl.open(v.token(), None, 0) else {
                continue;
            };
            assert_eq!(opened, v.plaintext().as_bytes(), "{}", v.name());
            let token = nacl
                .seal_with_nonce(v.plaintext().as_bytes(), nonce.try_into().unwrap())
                .unwrap();
            assert_eq!(token, v.token(), "{}", v.name());
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} NaCl vectors");
    }

    #[test]
    fn per_message_cipher_state_is_zeroized_on_drop() {
        use zeroize::ZeroizeOnDrop;
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        // The XSalsa20 keystream state built per message (the Poly1305 key
        // it yields is held in `Zeroizing`, the Poly1305 state zeroizes on
        // drop, and the keys are `KeyBytes`).
        zeroized_on_drop::<salsa20::XSalsa20>();
    }

    /// The same boxes as the `crypto_secretbox` crate, for random keys,
    /// nonces and every length up to 300 bytes; and its boxes open here.
    #[test]
    fn matches_the_crypto_secretbox_crate() {
        use crypto_secretbox::aead::{AeadInPlace, KeyInit};
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(20);
        for len in 0..300 {
            let (mut key, mut nonce) = ([0u8; 32], [0u8; NONCE]);
            rng.fill_bytes(&mut key);
            rng.fill_bytes(&mut nonce);
            let mut plaintext = vec![0u8; len];
            rng.fill_bytes(&mut plaintext);
            let ours = NaCl::new(&NaClKey::from_bytes(&key).unwrap());
            let token = ours.seal_with_nonce(&plaintext, nonce).unwrap();
            let theirs = crypto_secretbox::XSalsa20Poly1305::new((&key).into());
            let mut body = plaintext.clone();
            let tag = theirs
                .encrypt_in_place_detached((&nonce).into(), b"", &mut body)
                .unwrap();
            let expected = [&nonce[..], &tag[..], &body[..]].concat();
            assert_eq!(STANDARD.decode(&token).unwrap(), expected, "{len} bytes");
            assert_eq!(
                ours.open(&STANDARD.encode(&expected), None, 0).unwrap(),
                plaintext
            );
        }
    }

    #[test]
    fn rotation_opens_old_tokens_and_seals_with_the_new_key() {
        let old = NaClKey::from_bytes(&[1; 32]).unwrap();
        let new = NaClKey::from_bytes(&[2; 32]).unwrap();
        let other = NaClKey::from_bytes(&[3; 32]).unwrap();
        let old_token = NaCl::new(&old).seal(b"{}", 0).unwrap();
        let rotated = NaCl::with_rotation(&new, [&other, &old]);
        assert_eq!(rotated.open(&old_token, None, 0).unwrap(), b"{}");
        let new_token = rotated.seal(b"x", 0).unwrap();
        assert_eq!(NaCl::new(&new).open(&new_token, None, 0).unwrap(), b"x");
        assert_eq!(
            NaCl::new(&old).open(&new_token, None, 0),
            Err(OpenError::Forged)
        );
        // A token of none of the keys, and a tampered one, stay forged.
        let foreign = NaCl::new(&NaClKey::from_bytes(&[4; 32]).unwrap())
            .seal(b"{}", 0)
            .unwrap();
        assert_eq!(rotated.open(&foreign, None, 0), Err(OpenError::Forged));
        let mut raw = STANDARD.decode(&old_token).unwrap();
        raw[NONCE + TAG] ^= 1;
        assert_eq!(
            rotated.open(&STANDARD.encode(&raw), None, 0),
            Err(OpenError::Forged)
        );
        let text = format!("{rotated:?}");
        assert_eq!(text, "NaCl { keys: [3 redacted] }");
    }

    #[test]
    fn keys_never_print() {
        let key = NaClKey::from_bytes(&[0xab; 32]).unwrap();
        let text = format!("{key:?} {:?}", NaCl::new(&key));
        assert!(!text.contains("171") && !text.contains("ab"), "{text}");
        assert!(NaClKey::from_bytes(&[0; 16]).is_err());
    }
}
