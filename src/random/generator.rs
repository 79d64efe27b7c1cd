//! The per-thread generator behind session ids, Fernet IVs and NaCl nonces.
//!
//! ChaCha20 keyed from the operating system, with:
//!
//! - **fork detection on every call**: a `pthread_atfork` child handler bumps
//!   a process-wide counter (the `forkguard` crate; `getpid` comparison if
//!   the handler cannot be registered, nothing where there is no `fork`).
//!   A child process never hands out a byte its parent's generator held: its
//!   first call sees the new count and rekeys from the OS first;
//! - **a reseed from the OS** every [`RESEED_AFTER`] bytes of output;
//! - **fast key erasure**: every 256-byte ChaCha20 output starts with the
//!   key of the next one, and output is wiped from the buffer as it is
//!   handed out, so the state never holds what was already handed out nor
//!   what it derives from;
//! - **errors, not panics**: when the OS source fails, the call fails, and
//!   the generator hands out nothing until a reseed succeeds.
//!
//! This file uses nothing of the crate around it, so the codec bench can
//! measure it as it is.

use rand_chacha::rand_core::block::BlockRngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Core;
use zeroize::{Zeroize, Zeroizing};

/// Output after which the generator rekeys from the OS.
pub(crate) const RESEED_AFTER: usize = 64 * 1024;

/// One ChaCha20Core output: four 64-byte blocks.
const BLOCK: usize = 256;
/// The key of the next output, taken from the front of each output.
const KEY: usize = 32;

/// Fills a buffer from the operating system's CSPRNG.
pub(crate) type OsSource = fn(&mut [u8]) -> Result<(), getrandom::Error>;

/// The operating system's CSPRNG.
pub(crate) fn os_source(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::getrandom(buf)
}

/// Tells whether this process is a fork child that has not rekeyed yet.
enum ForkCheck {
    #[cfg(unix)]
    Atfork(forkguard::atfork::Guard),
    #[cfg(unix)]
    Pid(forkguard::pid::Guard),
    #[cfg(not(unix))]
    None,
}

impl ForkCheck {
    fn new() -> Self {
        #[cfg(unix)]
        {
            match forkguard::atfork::Guard::try_new() {
                Ok(guard) => ForkCheck::Atfork(guard),
                // pthread_atfork failed (out of memory): compare process
                // ids instead, a system call per draw.
                Err(_) => ForkCheck::Pid(forkguard::pid::Guard::default()),
            }
        }
        #[cfg(not(unix))]
        {
            ForkCheck::None
        }
    }

    fn forked(&mut self) -> bool {
        match self {
            #[cfg(unix)]
            ForkCheck::Atfork(guard) => guard.detected_fork(),
            #[cfg(unix)]
            ForkCheck::Pid(guard) => guard.detected_fork(),
            #[cfg(not(unix))]
            ForkCheck::None => false,
        }
    }
}

/// ChaCha20 with fork detection, periodic reseeding and fast key erasure.
pub(crate) struct Generator {
    core: ChaCha20Core,
    /// ChaCha20's output words, copied to `buf` and wiped at once (a field,
    /// not a local, so no copy of the next key is left on the stack).
    words: <ChaCha20Core as BlockRngCore>::Results,
    /// The current output; bytes before `pos` are already wiped.
    buf: Zeroizing<[u8; BLOCK]>,
    pos: usize,
    /// Output left before the next reseed.
    left: usize,
    /// False until the first reseed, after a detected fork and after a
    /// failed reseed: nothing is handed out until a reseed succeeds.
    seeded: bool,
    forks: ForkCheck,
    source: OsSource,
}

impl Generator {
    /// A generator keyed from `source` on its first use.
    pub(crate) fn new(source: OsSource) -> Self {
        Self {
            core: ChaCha20Core::from_seed([0; KEY]),
            words: Default::default(),
            buf: Zeroizing::new([0; BLOCK]),
            pos: BLOCK,
            left: 0,
            seeded: false,
            forks: ForkCheck::new(),
            source,
        }
    }

    /// Fills `out`, rekeying from the OS first when this is the first call,
    /// the process forked, or [`RESEED_AFTER`] bytes were handed out.
    pub(crate) fn fill(&mut self, out: &mut [u8]) -> Result<(), getrandom::Error> {
        if self.forks.forked() {
            self.seeded = false;
        }
        if !self.seeded || self.left < out.len() {
            self.reseed()?;
        }
        self.left -= out.len().min(self.left);
        let mut done = 0;
        while done < out.len() {
            if self.pos == BLOCK {
                self.refill();
            }
            let n = (BLOCK - self.pos).min(out.len() - done);
            let taken = &mut self.buf[self.pos..self.pos + n];
            out[done..done + n].copy_from_slice(taken);
            // A plain store: `buf` outlives the call, so it is not elided.
            taken.fill(0);
            self.pos += n;
            done += n;
        }
        Ok(())
    }

    /// A new key from the OS; the buffered output is dropped.
    fn reseed(&mut self) -> Result<(), getrandom::Error> {
        self.seeded = false;
        self.buf.zeroize();
        self.pos = BLOCK;
        let mut key = Zeroizing::new([0u8; KEY]);
        (self.source)(key.as_mut())?;
        self.core = ChaCha20Core::from_seed(*key);
        self.left = RESEED_AFTER;
        self.seeded = true;
        Ok(())
    }

    /// The next 256 bytes of ChaCha20 output; its first 32 bytes become the
    /// next key and are wiped.
    fn refill(&mut self) {
        self.core.generate(&mut self.words);
        for (chunk, word) in self.buf.chunks_exact_mut(4).zip(self.words.as_ref()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        self.words.as_mut().fill(0);
        let mut key = Zeroizing::new([0u8; KEY]);
        key.copy_from_slice(&self.buf[..KEY]);
        self.buf[..KEY].zeroize();
        self.core = ChaCha20Core::from_seed(*key);
        self.pos = KEY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_distinct_values_across_reseeds() {
        let mut generator = Generator::new(os_source);
        let mut seen = std::collections::HashSet::new();
        // 8192 x 16 bytes = 128 KiB: crosses two reseeds.
        for _ in 0..8192 {
            let mut id = [0u8; 16];
            generator.fill(&mut id).unwrap();
            assert!(seen.insert(id), "a 16-byte value repeated");
        }
    }

    #[test]
    fn long_and_odd_sized_requests_are_filled() {
        let mut generator = Generator::new(os_source);
        for len in [0, 1, 2, 23, 24, 223, 224, 225, 1000, RESEED_AFTER + 1] {
            let mut buf = vec![0u8; len];
            generator.fill(&mut buf).unwrap();
            if len >= 16 {
                assert!(buf.iter().any(|b| *b != 0), "{len} bytes of zeros");
            }
        }
    }

    fn failing(_: &mut [u8]) -> Result<(), getrandom::Error> {
        Err(getrandom::Error::UNSUPPORTED)
    }

    fn fixed(buf: &mut [u8]) -> Result<(), getrandom::Error> {
        buf.fill(7);
        Ok(())
    }

    #[test]
    fn a_failing_os_source_is_an_error_and_nothing_is_handed_out() {
        let mut generator = Generator::new(failing);
        let mut nonce = [0u8; 24];
        assert!(generator.fill(&mut nonce).is_err());
        assert!(generator.fill(&mut nonce).is_err());
        assert_eq!(nonce, [0; 24], "nothing was written");
    }

    #[test]
    fn a_reseed_that_fails_later_stops_the_output() {
        let mut generator = Generator::new(fixed);
        let mut buf = vec![0u8; RESEED_AFTER - 8];
        generator.fill(&mut buf).unwrap();
        // The source breaks; the next call needs a reseed.
        generator.source = failing;
        let mut nonce = [0u8; 24];
        assert!(generator.fill(&mut nonce).is_err());
        // And it stays unseeded: even a small draw waits for a reseed.
        assert!(generator.fill(&mut [0u8; 1]).is_err());
        assert_eq!(nonce, [0; 24]);
        generator.source = fixed;
        generator.fill(&mut nonce).unwrap();
    }

    #[test]
    fn the_same_key_gives_the_same_stream_and_output_is_wiped() {
        let mut a = Generator::new(fixed);
        let mut b = Generator::new(fixed);
        let (mut x, mut y) = ([0u8; 300], [0u8; 300]);
        a.fill(&mut x).unwrap();
        b.fill(&mut y).unwrap();
        assert_eq!(x, y);
        // Everything before `pos` has been wiped, the next key included.
        assert!(a.buf[..a.pos].iter().all(|b| *b == 0));
        // The stream does not contain the keys it moved to.
        assert!(!x.windows(KEY).any(|w| w == [7; KEY]));
    }
}
