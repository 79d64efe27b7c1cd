//! The crate's one error type.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error from a store backend or a codec, kept out of the public API.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong, without the details (those are in [`Error::source`]).
///
/// [`Error::source`]: std::error::Error::source
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The session store could not be reached, or did not answer in time.
    Unavailable,
    /// The session store answered with an error.
    Store,
    /// The session could not be encoded or sealed.
    Encode,
    /// The `Set-Cookie` value would exceed the size browsers keep.
    CookieTooLarge,
    /// [`Session::set_new_identity`](crate::Session::set_new_identity) was
    /// called on a session that is not new.
    IdentityNotNew,
    /// A key given to a store has the wrong length or encoding.
    InvalidKey,
    /// A value could not be converted to or from JSON.
    Value,
    /// The encoded session is larger than the server store's
    /// [maximum record size](crate::ServerStore::with_max_record_size) (or
    /// than the store server accepts). Nothing was saved.
    RecordTooLarge,
    /// A configuration value is not usable (for example a cookie name with
    /// a space in it).
    Config,
    /// The session middleware is not installed for this route.
    MissingMiddleware,
    /// Strict mode: another request changed a key this request read, after
    /// this request loaded the session, so this request's changes were not
    /// saved. Answered with `409 Conflict`; the request can be retried as it
    /// is (it will see the other request's write). See
    /// [`SessionManagerBuilder::strict`](crate::SessionManagerBuilder::strict).
    Conflict,
    /// The store cannot do what was asked: a cookie store cannot list or
    /// revoke sessions, memcached keeps no per-user index.
    Unsupported,
    /// The session record kept changing under this request's save: the
    /// compare-and-set lost to other writers of the same session more times
    /// than the retry bound allows. Answered with `503 Service Unavailable`;
    /// retrying later is safe.
    Busy,
}

/// The error type of this crate.
///
/// Its `Display` text names the kind of failure only; the underlying cause
/// (a connection error, a serde error) is reachable through
/// [`std::error::Error::source`]. No message ever contains key material or
/// cookie contents.
pub struct Error {
    kind: ErrorKind,
    detail: Option<String>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            detail: None,
            source: None,
        }
    }

    /// The same error for another request (the saves that one save carried
    /// out together each get it): the kind, and the detail or the source's
    /// text as the detail.
    pub(crate) fn shared(&self) -> Self {
        Self {
            kind: self.kind,
            detail: self
                .detail
                .clone()
                .or_else(|| self.source.as_ref().map(ToString::to_string)),
            source: None,
        }
    }

    /// An error of `kind` caused by `source`.
    pub fn with_source(kind: ErrorKind, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            detail: None,
            source: Some(source.into()),
        }
    }

    /// Adds a short, secret-free detail to the message (a size, a limit).
    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// A store backend failed; `unavailable` says whether it was unreachable
    /// (connection refused, timeout) rather than answering with an error.
    pub fn store(unavailable: bool, source: impl Into<BoxError>) -> Self {
        let kind = if unavailable {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Store
        };
        Self::with_source(kind, source)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status an adapter answers with when this error ends a
    /// request: 503 when the store is unavailable or busy, 409 for a
    /// strict-mode conflict, 500 otherwise.
    pub fn status(&self) -> http::StatusCode {
        match self.kind {
            ErrorKind::Unavailable | ErrorKind::Busy => http::StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Conflict => http::StatusCode::CONFLICT,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request may succeed if sent again: the store was
    /// unreachable or busy, or (strict mode) another request won a conflict.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unavailable | ErrorKind::Busy | ErrorKind::Conflict
        )
    }

    /// Logs this error with its cause chain and returns the status and an
    /// opaque body text for the response. Adapters call this; the body never
    /// carries internal detail.
    pub fn to_response_parts(&self) -> (http::StatusCode, &'static str) {
        let status = self.status();
        if self.kind == ErrorKind::Conflict {
            // An expected outcome of strict mode, not a failure.
            tracing::info!(
                target: "http_session",
                status = status.as_u16(),
                "session conflict answered with 409"
            );
        } else {
            tracing::error!(
                target: "http_session",
                error = %self,
                cause = %SourceChain(self),
                status = status.as_u16(),
                "session error answered with an opaque response"
            );
        }
        let body = match self.kind {
            ErrorKind::Unavailable | ErrorKind::Busy => "Service Unavailable",
            ErrorKind::Conflict => "Conflict",
            _ => "Internal Server Error",
        };
        (status, body)
    }
}

impl Error {
    /// A session value under `key` that did not convert to or from `T` in
    /// `op`. serde's message quotes the value (`invalid type: string
    /// "...", expected u64`): only the key, the type and serde's category
    /// are kept.
    pub(crate) fn value<T: ?Sized>(op: &'static str, key: &str, e: &serde_json::Error) -> Self {
        Self::with_source(
            ErrorKind::Value,
            ValueError {
                op,
                key: key.to_owned(),
                ty: std::any::type_name::<T>(),
                category: e.classify(),
            },
        )
    }

    /// A record that did not encode or decode as JSON, by `kind`: serde's
    /// message can quote a value, so only its category and position are
    /// kept.
    pub(crate) fn json(kind: ErrorKind, e: &serde_json::Error) -> Self {
        Self::with_source(
            kind,
            JsonError {
                category: e.classify(),
                line: e.line(),
                column: e.column(),
            },
        )
    }
}

/// The secret-free source of [`Error::value`].
#[derive(Debug)]
struct ValueError {
    op: &'static str,
    key: String,
    ty: &'static str,
    category: serde_json::error::Category,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.category {
            serde_json::error::Category::Data => "the value does not fit the type",
            serde_json::error::Category::Syntax => "a JSON syntax error",
            serde_json::error::Category::Eof => "the JSON ended early",
            serde_json::error::Category::Io => "an I/O error",
        };
        write!(
            f,
            "{} of session key {:?} as `{}` failed: {why}",
            self.op, self.key, self.ty
        )
    }
}

impl StdError for ValueError {}

/// The secret-free source of [`Error::json`].
#[derive(Debug)]
struct JsonError {
    category: serde_json::error::Category,
    line: usize,
    column: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.category {
            serde_json::error::Category::Data => "a value of the wrong kind",
            serde_json::error::Category::Syntax => "a syntax error",
            serde_json::error::Category::Eof => "an early end",
            serde_json::error::Category::Io => "an I/O error",
        };
        write!(
            f,
            "record JSON: {what} at line {} column {}",
            self.line, self.column
        )
    }
}

impl StdError for JsonError {}

/// Formats the `source()` chain of an error, for logs.
struct SourceChain<'a>(&'a Error);

impl fmt::Display for SourceChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut next = StdError::source(self.0);
        let mut first = true;
        while let Some(err) = next {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{err}")?;
            first = false;
            next = err.source();
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.kind {
            ErrorKind::Unavailable => "session store unavailable",
            ErrorKind::Store => "session store error",
            ErrorKind::Encode => "session could not be encoded",
            ErrorKind::CookieTooLarge => "session cookie too large",
            ErrorKind::IdentityNotNew => "can't change the identity of a session which is not new",
            ErrorKind::InvalidKey => "invalid session key",
            ErrorKind::Value => "session value conversion failed",
            ErrorKind::RecordTooLarge => "session record too large",
            ErrorKind::Config => "invalid session configuration",
            ErrorKind::MissingMiddleware => "session middleware is not installed",
            ErrorKind::Conflict => "session changed by a concurrent request",
            ErrorKind::Busy => "session store busy: too many concurrent writers",
            ErrorKind::Unsupported => "not supported by this session store",
        };
        f.write_str(text)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .field("source", &self.source)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_hides_the_source_text() {
        let err = Error::store(
            true,
            "connection refused to 127.0.0.1:6379 password=hunter2",
        );
        assert_eq!(err.to_string(), "session store unavailable");
        assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(StdError::source(&err).is_some());
        let (status, body) = err.to_response_parts();
        assert_eq!(status, 503);
        assert!(!body.contains("hunter2"));
    }

    #[test]
    fn serde_sources_keep_no_value() {
        let e = serde_json::from_str::<u64>(r#""hunter2""#).unwrap_err();
        assert!(e.to_string().contains("hunter2"), "serde quotes the value");
        let ours = Error::value::<u64>("get", "pw", &e);
        let chain = SourceChain(&ours).to_string();
        assert_eq!(
            chain,
            r#"get of session key "pw" as `u64` failed: the value does not fit the type"#
        );
        assert!(!format!("{ours:?}").contains("hunter2"));
        let ours = Error::json(ErrorKind::Value, &e);
        let text = format!("{} {ours:?}", SourceChain(&ours));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("line 1 column 9"), "{text}");
    }

    #[test]
    fn detail_is_appended() {
        let err = Error::new(ErrorKind::CookieTooLarge).detail("5000 bytes, limit 4096");
        assert_eq!(
            err.to_string(),
            "session cookie too large (5000 bytes, limit 4096)"
        );
        assert_eq!(err.status(), 500);
    }
}
