//! Cookie options shared by every store.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// `SameSite=Strict`
    Strict,
    /// `SameSite=Lax`
    Lax,
    /// `SameSite=None` (browsers then require `Secure`).
    None,
}

impl SameSite {
    /// The attribute value as it is sent.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SameSite {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Ok(SameSite::Strict),
            "lax" => Ok(SameSite::Lax),
            "none" => Ok(SameSite::None),
            _ => Err(Error::new(ErrorKind::Config).detail("SameSite must be Strict, Lax or None")),
        }
    }
}

/// The session cookie's name and attributes, and the storage `max_age`.
///
/// The defaults are aiohttp-session's: name `AIOHTTP_SESSION`, path `/`,
/// `HttpOnly` on, no domain, no `Secure`, no `SameSite`, no `max_age`
/// (a browser-session cookie, and no expiry in server stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    pub(crate) name: String,
    pub(crate) domain: Option<String>,
    pub(crate) path: String,
    pub(crate) max_age: Option<u64>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: Option<SameSite>,
    pub(crate) partitioned: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "AIOHTTP_SESSION".to_owned(),
            domain: None,
            path: "/".to_owned(),
            max_age: None,
            secure: false,
            http_only: true,
            same_site: None,
            partitioned: false,
        }
    }
}

impl CookieConfig {
    /// The cookie name (default `AIOHTTP_SESSION`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Domain` attribute, if any.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The `Path` attribute (default `/`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The storage-wide maximum age in seconds, if any. New sessions start
    /// with it, and loaded sessions older than it are discarded.
    pub fn max_age(&self) -> Option<u64> {
        self.max_age
    }

    /// Whether the `Secure` attribute is sent.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Whether the `HttpOnly` attribute is sent (default on).
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// The `SameSite` attribute, if any.
    pub fn same_site(&self) -> Option<SameSite> {
        self.same_site
    }

    /// Whether the `Partitioned` attribute (CHIPS) is sent.
    pub fn partitioned(&self) -> bool {
        self.partitioned
    }

    /// Checks that the name, domain and path can be sent in a header
    /// without quoting, and that the cookie keeps the rules browsers apply
    /// to it: a `__Host-` name needs `Secure`, `Path=/` and no `Domain`; a
    /// `__Secure-` name needs `Secure`; `Partitioned` needs `Secure`. A
    /// cookie breaking them would be dropped by the browser (so would its
    /// removal, and logging out would not log out).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let config = |detail: &'static str| Err(Error::new(ErrorKind::Config).detail(detail));
        if self.name.starts_with("__Host-")
            && (!self.secure || self.path != "/" || self.domain.is_some())
        {
            return config("a __Host- cookie needs secure(true), path \"/\" and no domain");
        }
        if self.name.starts_with("__Secure-") && !self.secure {
            return config("a __Secure- cookie needs secure(true)");
        }
        if self.partitioned && !self.secure {
            return config("a Partitioned cookie needs secure(true)");
        }

        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        };
        let attr =
            |s: &str| s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') && !s.contains(';');
        if !token(&self.name) {
            return Err(Error::new(ErrorKind::Config).detail("cookie name must be an HTTP token"));
        }
        if !self.domain.as_deref().is_none_or(attr) || !attr(&self.path) {
            return Err(Error::new(ErrorKind::Config)
                .detail("cookie domain and path must be printable ASCII without ';'"));
        }
        Ok(())
    }
}
