//! The example routes on axum.

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http_session::axum::SessionLayer;
use http_session::{Session, SessionManager};

use super::routes;

/// The example app: `/bare` never touches the session; `GET /incr` has its
/// own route; every other path goes through the shared routes.
pub fn router(sessions: SessionManager) -> Router {
    Router::new()
        .route("/bare", get(|| async { Json("ok") }))
        .route("/incr", get(incr).fallback(handle))
        .fallback(handle)
        .layer(SessionLayer::new(sessions))
}

async fn incr(session: Session, RawQuery(query): RawQuery) -> Json<serde_json::Value> {
    routes::pause(query.as_deref()).await;
    Json(routes::incr(&session))
}

async fn handle(session: Session, method: Method, uri: Uri, body: Bytes) -> Response {
    routes::pause(uri.query()).await;
    let reply = routes::dispatch(method.as_str(), uri.path(), uri.query(), &body, &session).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(reply.body)).into_response();
    if let Some(vary) = reply.vary {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static(vary));
    }
    response
}
