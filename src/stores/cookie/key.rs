//! The 32 secret bytes behind `FernetKey` and `NaClKey`.

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};

/// 32 key bytes, zeroized on drop. Wrapped by the public key types, which
/// give it a redacted `Debug`.
#[derive(Clone)]
pub(crate) struct KeyBytes(Zeroizing<[u8; 32]>);

impl KeyBytes {
    /// Exactly 32 bytes, or an [`ErrorKind::InvalidKey`] naming `what`.
    pub(crate) fn from_slice(bytes: &[u8], what: &'static str) -> Result<Self, Error> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::new(ErrorKind::InvalidKey).detail(what))?;
        Ok(Self(Zeroizing::new(array)))
    }

    /// 32 random bytes from the operating system.
    pub(crate) fn generate() -> Result<Self, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        crate::random::fill_from_os(key.as_mut())?;
        Ok(Self(key))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}
