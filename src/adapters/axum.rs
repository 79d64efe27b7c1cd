//! axum (and any tower stack): [`SessionLayer`] and the
//! [`Session`] extractor.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use http_session::{axum::SessionLayer, MemoryStore, Session, SessionManager};
//!
//! async fn count(session: Session) -> Result<String, http_session::Error> {
//!     let n: u64 = session.get("n")?.unwrap_or(0) + 1;
//!     session.insert("n", n)?;
//!     Ok(n.to_string())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = SessionManager::builder(MemoryStore::memory()).idle_timeout(1800).build().unwrap();
//! let app: Router = Router::new()
//!     .route("/", get(count))
//!     .layer(SessionLayer::new(sessions));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{Error, ErrorKind};
use crate::manager::{LazySession, SessionManager};
use crate::session::Session;

/// A tower layer that gives every request a lazily loaded session.
#[derive(Clone, Debug)]
pub struct SessionLayer {
    manager: SessionManager,
}

impl SessionLayer {
    /// A layer using `manager`'s store and cookie options.
    pub fn new(manager: SessionManager) -> Self {
        Self { manager }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            manager: self.manager.clone(),
        }
    }
}

/// The service made by [`SessionLayer`].
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    manager: SessionManager,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let lazy = self.manager.start_from_headers(request.headers());
        request.extensions_mut().insert(lazy.clone());
        ResponseFuture {
            inner: self.inner.call(request),
            lazy,
            finishing: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SessionService`]: the inner service's
    /// response, then the session's save and headers. A request that never
    /// asked for the session is answered as soon as the inner service is,
    /// with nothing boxed.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        lazy: LazySession,
        finishing: Option<Pin<Box<dyn Future<Output = http::Response<B>> + Send>>>,
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: From<&'static str> + Send + 'static,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.finishing.is_none() {
            let response = ready!(this.inner.poll(cx))?;
            if this.lazy.finish_untouched() {
                return Poll::Ready(Ok(response));
            }
            *this.finishing = Some(Box::pin(finish(this.lazy.clone(), response)));
        }
        let finishing = this.finishing.as_mut();
        finishing.map_or(Poll::Pending, |f| f.as_mut().poll(cx).map(Ok))
    }
}

/// Saves a loaded session and adds its headers to `response`, or answers
/// with the error's opaque status.
async fn finish<B: From<&'static str>>(
    lazy: LazySession,
    response: http::Response<B>,
) -> http::Response<B> {
    lazy.finish_http(response).await.unwrap_or_else(|err| {
        let (status, body) = err.to_response_parts();
        let mut response = http::Response::new(B::from(body));
        *response.status_mut() = status;
        response
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let lazy = parts
            .extensions
            .get::<LazySession>()
            .ok_or_else(|| Error::new(ErrorKind::MissingMiddleware))?;
        lazy.get().await
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = self.to_response_parts();
        (status, body).into_response()
    }
}
