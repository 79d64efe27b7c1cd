//! Randomness from the operating system.

use crate::error::{Error, ErrorKind};

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::getrandom(buf).map_err(|e| Error::with_source(ErrorKind::Encode, e))
}
