//! actix-web 4: [`SessionMiddleware`] and the [`Session`] extractor.
//!
//! actix-web 4 is built on `http` 0.2 while the core speaks `http` 1, so
//! only bytes cross: the `Cookie` header values go in as byte slices and the
//! `Set-Cookie` value comes out as bytes.
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! use http_session::{actix::SessionMiddleware, MemoryStore, Session, SessionManager};
//!
//! async fn count(session: Session) -> Result<String, http_session::Error> {
//!     let n: u64 = session.get("n")?.unwrap_or(0) + 1;
//!     session.insert("n", n)?;
//!     Ok(n.to_string())
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let sessions = SessionManager::builder(MemoryStore::memory()).idle_timeout(1800).build().unwrap();
//! HttpServer::new(move || {
//!     App::new()
//!         .route("/", web::get().to(count))
//!         .wrap(SessionMiddleware::new(sessions.clone()))
//! })
//! .bind(("127.0.0.1", 3000))?
//! .run()
//! .await
//! # }
//! ```

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::error::{Error, ErrorKind};
use crate::manager::{LazySession, SessionManager};
use crate::session::Session;

/// actix-web middleware that gives every request a lazily loaded session.
///
/// Register it with `App::wrap`; handlers then take [`Session`] as an
/// argument.
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    manager: SessionManager,
}

impl SessionMiddleware {
    /// A middleware using `manager`'s store and cookie options.
    pub fn new(manager: SessionManager) -> Self {
        Self { manager }
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            service,
            manager: self.manager.clone(),
        }))
    }
}

/// The service made by [`SessionMiddleware`].
#[derive(Debug)]
pub struct SessionService<S> {
    service: S,
    manager: SessionManager,
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let cookies = request.headers().get_all(header::COOKIE);
        let lazy = self.manager.start(cookies.map(HeaderValue::as_bytes));
        request.extensions_mut().insert(lazy.clone());
        let response = self.service.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let vary = response.headers().get_all(header::VARY);
            match lazy.finish_response(vary.map(HeaderValue::as_bytes)).await {
                Ok(headers) => {
                    // actix-web 4 has its own http 0.2 types: only bytes cross
                    // (a valid http 1 name or value is a valid http 0.2 one).
                    for (name, value) in headers.into_pairs() {
                        let name = header::HeaderName::from_bytes(name.as_str().as_bytes());
                        if let (Ok(n), Ok(v)) = (name, HeaderValue::from_bytes(value.as_bytes())) {
                            response.headers_mut().append(n, v);
                        }
                    }
                    Ok(response.map_into_left_body())
                }
                Err(err) => {
                    let (request, _) = response.into_parts();
                    let opaque = err.error_response();
                    Ok(ServiceResponse::new(request, opaque).map_into_right_body())
                }
            }
        })
    }
}

impl FromRequest for Session {
    type Error = Error;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let lazy = request.extensions().get::<LazySession>().cloned();
        Box::pin(async move {
            match lazy {
                Some(lazy) => lazy.get().await,
                None => Err(Error::new(ErrorKind::MissingMiddleware)),
            }
        })
    }
}

/// A session error answers with an opaque 500 (503 when the store is
/// unavailable); the cause is logged, never sent.
impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let (status, body) = self.to_response_parts();
        let status =
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(body)
    }
}
