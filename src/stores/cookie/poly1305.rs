//! Poly1305 (RFC 8439, section 2.5), one message per call, in plain
//! 64-bit arithmetic.
//!
//! The `poly1305` crate picks its AVX2 backend on any CPU that has it, and
//! that backend's per-key set-up costs more than the whole of a cookie's
//! MAC: 1.2 µs for 64 to 200 bytes on this project's machine, against
//! 0.05-0.15 µs here (`benches/codecs.rs`, `primitive/*`). Its portable
//! backend is only reachable with a `RUSTFLAGS` setting. Secretbox keys
//! are one-time keys (one per message), so a set-up is paid on every seal
//! and every open: hence this small implementation, checked against that
//! crate on random keys and messages of every length up to 600 bytes and
//! against the RFC's vectors (`tests` below).
//!
//! The accumulator and `r` are held in three limbs of 44, 44 and 42 bits,
//! products in `u128`; nothing branches on secret data, and the state is
//! zeroized when dropped.

use zeroize::{Zeroize, ZeroizeOnDrop};

const MASK44: u64 = (1 << 44) - 1;
const MASK42: u64 = (1 << 42) - 1;

/// The Poly1305 tag of `message` under the one-time `key` (`r ‖ s`).
pub(super) fn tag(key: &[u8; 32], message: &[u8]) -> [u8; 16] {
    let mut state = State::new(key);
    let mut blocks = message.chunks_exact(16);
    for block in &mut blocks {
        state.block(block, 1 << 40);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // The last, short block is padded with a 1 byte then zeros, and
        // gets no high bit.
        let mut last = [0u8; 16];
        last[..rest.len()].copy_from_slice(rest);
        last[rest.len()] = 1;
        state.block(&last, 0);
        last.zeroize();
    }
    state.finish()
}

struct State {
    r: [u64; 3],
    /// `r1` and `r2` times 5 · 4: the reduction modulo 2¹³⁰ − 5 folded
    /// into the products that overflow 2¹³⁰.
    s: [u64; 2],
    h: [u64; 3],
    pad: [u64; 2],
}

impl Drop for State {
    fn drop(&mut self) {
        self.r.zeroize();
        self.s.zeroize();
        self.h.zeroize();
        self.pad.zeroize();
    }
}

impl ZeroizeOnDrop for State {}

fn le64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

/// The low 64 bits (the carries are taken off by the shifts around it).
#[allow(
    clippy::cast_possible_truncation,
    reason = "truncation to the low limb is the arithmetic"
)]
fn low(x: u128) -> u64 {
    x as u64
}

impl State {
    fn new(key: &[u8; 32]) -> Self {
        let (t0, t1) = (le64(&key[0..8]), le64(&key[8..16]));
        // `r` clamped as the RFC says, split into limbs.
        let r = [
            t0 & 0x0ffc_0fff_ffff,
            ((t0 >> 44) | (t1 << 20)) & 0x0fff_ffc0_ffff,
            (t1 >> 24) & 0x000f_ffff_fc0f,
        ];
        Self {
            s: [r[1] * 20, r[2] * 20],
            r,
            h: [0; 3],
            pad: [le64(&key[16..24]), le64(&key[24..32])],
        }
    }

    /// Adds a 16-byte block (plus `high`, 2¹²⁸ for a full block, in the
    /// top limb's scale) and multiplies by `r`.
    fn block(&mut self, block: &[u8], high: u64) {
        let (t0, t1) = (le64(&block[0..8]), le64(&block[8..16]));
        let [r0, r1, r2] = self.r;
        let [s1, s2] = self.s;
        let h0 = self.h[0] + (t0 & MASK44);
        let h1 = self.h[1] + (((t0 >> 44) | (t1 << 20)) & MASK44);
        let h2 = self.h[2] + (((t1 >> 24) & MASK42) | high);
        let m = |a: u64, b: u64| u128::from(a) * u128::from(b);
        let d0 = m(h0, r0) + m(h1, s2) + m(h2, s1);
        let mut d1 = m(h0, r1) + m(h1, r0) + m(h2, s2);
        let mut d2 = m(h0, r2) + m(h1, r1) + m(h2, r0);
        let mut h0 = low(d0) & MASK44;
        d1 += d0 >> 44;
        let mut h1 = low(d1) & MASK44;
        d2 += d1 >> 44;
        let h2 = low(d2) & MASK42;
        h0 += low(d2 >> 42) * 5;
        h1 += h0 >> 44;
        h0 &= MASK44;
        self.h = [h0, h1, h2];
    }

    /// Reduces the accumulator fully, adds `s`, and writes the tag.
    fn finish(&mut self) -> [u8; 16] {
        let [mut h0, mut h1, mut h2] = self.h;
        // Two rounds of carries leave each limb within its width.
        for _ in 0..2 {
            h2 += h1 >> 44;
            h1 &= MASK44;
            h0 += (h2 >> 42) * 5;
            h2 &= MASK42;
            h1 += h0 >> 44;
            h0 &= MASK44;
        }
        // g = h + 5 - 2¹³⁰: h ≥ p exactly when g does not go negative.
        let mut g0 = h0 + 5;
        let mut g1 = h1 + (g0 >> 44);
        g0 &= MASK44;
        let g2 = (h2 + (g1 >> 44)).wrapping_sub(1 << 42);
        g1 &= MASK44;
        let keep_g = (g2 >> 63).wrapping_sub(1); // all ones when g ≥ 0
        h0 = (h0 & !keep_g) | (g0 & keep_g);
        h1 = (h1 & !keep_g) | (g1 & keep_g);
        h2 = (h2 & !keep_g) | (g2 & keep_g);
        // h + s, modulo 2¹²⁸.
        let [p0, p1] = self.pad;
        h0 += p0 & MASK44;
        h1 += (((p0 >> 44) | (p1 << 20)) & MASK44) + (h0 >> 44);
        h0 &= MASK44;
        h2 += ((p1 >> 24) & MASK42) + (h1 >> 44);
        h1 &= MASK44;
        h2 &= MASK42;
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&(h0 | (h1 << 44)).to_le_bytes());
        out[8..].copy_from_slice(&((h1 >> 20) | (h2 << 24)).to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use poly1305::universal_hash::KeyInit;

    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_8439_vector() {
        // Section 2.5.2.
        let key = hex("85:d6:be:78:57:55:6d:33:7f:44:52:fe:42:d5:06:a8:01:03:80:8a:fb:0d:b2:fd:4a:bf:f6:af:41:49:f5:1b");
        let tag = tag(
            &key.try_into().unwrap(),
            b"Cryptographic Forum Research Group",
        );
        assert_eq!(
            tag.to_vec(),
            hex("a8:06:1d:c1:30:51:36:c6:c2:2b:8b:af:0c:01:27:a9")
        );
    }

    /// Accumulators that end at or past 2^130 - 5, and `s` that overflows
    /// 2^128: the final reduction and the carries decide these (the shape
    /// of RFC 8439's appendix A.3 vectors 5 to 11), checked against the
    /// arithmetic by hand and against the `poly1305` crate.
    #[test]
    fn edge_cases_of_the_reduction() {
        // r = 2, s = 0, one block of ones: h = 2 (2^129 - 1) = 2^130 - 2,
        // which is 3 modulo 2^130 - 5.
        let mut key = [0u8; 32];
        key[0] = 2;
        let mut three = [0u8; 16];
        three[0] = 3;
        assert_eq!(tag(&key, &[0xff; 16]), three);
        // r = 2, s = 2^128 - 1, the block 2: h = 2^129 + 4, plus s is
        // 3 modulo 2^128.
        key[16..].fill(0xff);
        let mut two = [0u8; 16];
        two[0] = 2;
        assert_eq!(tag(&key, &two), three);
        // Small r and blocks of all ones, all zeros, and near-ones, in
        // every combination of up to three blocks and a short tail.
        let blocks: [[u8; 16]; 5] = [
            [0xff; 16],
            [0; 16],
            two,
            {
                let mut b = [0xff; 16];
                b[0] = 0xfb;
                b
            },
            {
                let mut b = [0xff; 16];
                b[15] = 0xf0;
                b
            },
        ];
        for r in [1u8, 2, 3, 5, 0xff] {
            for s_ones in [false, true] {
                let mut key = [0u8; 32];
                key[0] = r;
                if s_ones {
                    key[16..].fill(0xff);
                }
                let reference = |message: &[u8]| {
                    poly1305::Poly1305::new((&key).into()).compute_unpadded(message)
                };
                for a in &blocks {
                    for b in &blocks {
                        for c in &blocks {
                            let message = [&a[..], b, c].concat();
                            for len in [16, 32, 48, 47, 33, 17, 1] {
                                let message = &message[..len];
                                assert_eq!(
                                    tag(&key, message),
                                    reference(message).as_slice(),
                                    "r {r}, s ones {s_ones}, {len} bytes"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// The same tags as the `poly1305` crate, for random keys (with limbs
    /// at their extremes) and every length up to 600 bytes.
    #[test]
    fn matches_the_poly1305_crate() {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1305);
        let mut message = vec![0u8; 600];
        for round in 0..3000 {
            // Random keys; every bit set (the largest clamped r, s
            // overflowing 2^128); r = 2 with s = 0 or all ones, where the
            // accumulator lands near 2^130 - 5 and the final reduction
            // decides.
            let mut key = [0u8; 32];
            match round % 4 {
                0 => rng.fill_bytes(&mut key),
                1 => key = [0xff; 32],
                2 => {
                    key[0] = 2;
                    if round % 8 == 6 {
                        key[16..].fill(0xff);
                    }
                }
                _ => rng.fill_bytes(&mut key[..16]),
            }
            let len = round % message.len();
            if round % 5 == 0 {
                message[..len].fill(0xff);
            } else {
                rng.fill_bytes(&mut message[..len]);
            }
            let theirs = poly1305::Poly1305::new((&key).into()).compute_unpadded(&message[..len]);
            assert_eq!(
                tag(&key, &message[..len]),
                theirs.as_slice(),
                "round {round}, {len} bytes"
            );
        }
    }
}
