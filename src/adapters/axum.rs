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
use std::task::{Context, Poll};

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderValue, Request};
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
    S::Future: Send + 'static,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let lazy = self.manager.start_from_headers(request.headers());
        request.extensions_mut().insert(lazy.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let vary = response.headers().get_all(header::VARY).iter();
            match lazy.finish_response(vary.map(HeaderValue::as_bytes)).await {
                Ok(headers) => {
                    response.headers_mut().extend(headers.into_pairs());
                    Ok(response)
                }
                Err(err) => {
                    let (status, body) = err.to_response_parts();
                    let mut response = http::Response::new(ResBody::from(body));
                    *response.status_mut() = status;
                    Ok(response)
                }
            }
        })
    }
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
