//! warp 0.4: the [`session`] filter, [`with_session`] to commit it into the
//! reply, and [`recover`] for the opaque error answer.
//!
//! warp 0.4 (not 0.3) because it is built on `http` 1 and hyper 1, like
//! the core and axum: the core's header types are warp's own, and no second
//! `http`/hyper stack is compiled in. (warp 0.4 has no default features; a
//! server needs warp's `server` feature, which this crate does not turn on.)
//!
//! warp filters pass values along only as extracted arguments, so the
//! commit step travels with the session: [`session`] yields the loaded
//! [`Session`] and a [`SessionCommit`], and [`with_session`] takes the reply
//! and that commit. The store is read only by routes that include the
//! [`session`] filter, when they reach it.
//!
//! ```no_run
//! use http_session::warp::{recover, session, SessionCommit};
//! use http_session::{MemoryStore, Session, SessionManager};
//! use warp::Filter;
//!
//! // The same handler body as under axum and actix-web.
//! async fn count(session: Session) -> Result<String, http_session::Error> {
//!     let n: u64 = session.get("n")?.unwrap_or(0) + 1;
//!     session.insert("n", n)?;
//!     Ok(n.to_string())
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let sessions = SessionManager::builder(MemoryStore::memory()).idle_timeout(1800).build().unwrap();
//! let routes = warp::path("count")
//!     .and(session(sessions))
//!     .then(|session: Session, commit: SessionCommit| async move {
//!         commit.reply(count(session).await).await
//!     })
//!     .recover(recover);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! warp::serve(routes).incoming(listener).run().await;
//! # Ok(()) }
//! ```
//!
//! A handler that returns `(reply, commit)` can instead be followed by
//! `.untuple_one().and_then(with_session)`.

use std::convert::Infallible;
use std::fmt;

use ::warp::http::HeaderMap;
use ::warp::reject::{Reject, Rejection};
use ::warp::reply::{Reply, Response};
use ::warp::Filter;

use crate::error::Error;
use crate::manager::{LazySession, SessionManager};
use crate::session::Session;

/// A filter that loads the request's session from its `Cookie` headers and
/// yields it with the [`SessionCommit`] that [`with_session`] needs.
///
/// A failing store rejects the request; [`recover`] turns that rejection
/// into the opaque 500/503 answer.
pub fn session(
    manager: SessionManager,
) -> impl Filter<Extract = (Session, SessionCommit), Error = Rejection> + Clone {
    ::warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let lazy = manager.start_from_headers(&headers);
            async move {
                match lazy.get().await {
                    Ok(session) => Ok((session, SessionCommit { lazy })),
                    Err(err) => Err(::warp::reject::custom(SessionRejection(err))),
                }
            }
        })
        .untuple_one()
}

/// The request's side of a session, for [`with_session`]: saves it if it
/// changed and produces the `Set-Cookie` header.
///
/// It is not `Clone`, and [`reply`](Self::reply) consumes it: a session is
/// committed once.
#[derive(Debug)]
pub struct SessionCommit {
    lazy: LazySession,
}

impl SessionCommit {
    /// Saves the session if it changed and appends its `Set-Cookie` header
    /// to `reply`; a failing save replaces the reply with the opaque
    /// 500/503 answer.
    pub async fn reply(self, reply: impl Reply) -> Response {
        let response = reply.into_response();
        (self.lazy.finish_http(response).await).unwrap_or_else(|err| opaque(&err))
    }
}

/// Commits the session into the reply; for `Filter::and_then` after a
/// handler that returns `(reply, commit)`. See [`SessionCommit::reply`].
pub async fn with_session<R: Reply>(
    reply: R,
    commit: SessionCommit,
) -> Result<Response, Infallible> {
    Ok(commit.reply(reply).await)
}

/// Answers a rejection by [`session`] with the opaque 500 (or 503 when the
/// store is unavailable) and logs its cause; other rejections pass on.
///
/// Use it with `Filter::recover` on the routes.
pub async fn recover(rejection: Rejection) -> Result<Response, Rejection> {
    match rejection.find::<SessionRejection>() {
        Some(SessionRejection(err)) => Ok(opaque(err)),
        None => Err(rejection),
    }
}

/// A session error as a reply: the opaque 500/503, cause logged; so a
/// handler may return `Result<impl Reply, Error>`.
impl Reply for Error {
    fn into_response(self) -> Response {
        opaque(&self)
    }
}

fn opaque(err: &Error) -> Response {
    let (status, body) = err.to_response_parts();
    ::warp::reply::with_status(body, status).into_response()
}

/// A store failure while loading the session.
struct SessionRejection(Error);

/// Only the kind: warp prints an unrecovered rejection's `Debug` into the
/// response body, and the cause must stay out of it.
impl fmt::Debug for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionRejection({})", self.0)
    }
}

impl Reject for SessionRejection {}
