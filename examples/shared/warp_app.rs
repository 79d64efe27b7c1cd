//! The example routes on warp.

use http_session::warp::{recover, session, with_session, SessionCommit};
use http_session::{Session, SessionManager};
use warp::filters::path::FullPath;
use warp::http::{header, Method, StatusCode};
use warp::hyper::body::Bytes;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::routes;

/// The example app: `/bare` never touches the session; `GET /incr` has its
/// own route; every other path goes through the shared routes.
pub fn routes(
    sessions: SessionManager,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    // As axum: GET and HEAD answer, another method gets a 405.
    let bare = warp::path!("bare").and(
        warp::get()
            .or(warp::head())
            .unify()
            .map(|| warp::reply::json(&"ok").into_response())
            .or(warp::any().map(method_not_allowed))
            .unify(),
    );
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    // `GET /incr` is a route of its own (no generic dispatch), as in the
    // other servers. The route is chosen before the session filter, so a
    // failing store is asked once.
    let incr = warp::path!("incr")
        .and(warp::get())
        .and(query)
        .map(Route::Incr);
    let shared = warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::body::bytes())
        .map(Route::Shared);
    let sessioned = incr
        .or(shared)
        .unify()
        .and(session(sessions))
        .then(handle)
        .untuple_one()
        .and_then(with_session);
    bare.or(sessioned).unify().recover(recover).unify()
}

/// A route that uses the session.
enum Route {
    Incr(Option<String>),
    Shared(Method, FullPath, Option<String>, Bytes),
}

fn method_not_allowed() -> Response {
    let reply = warp::reply::with_status(warp::reply(), StatusCode::METHOD_NOT_ALLOWED);
    warp::reply::with_header(reply, header::ALLOW, "GET,HEAD").into_response()
}

async fn handle(
    route: Route,
    session: Session,
    commit: SessionCommit,
) -> (Response, SessionCommit) {
    let (status, body, vary) = match route {
        Route::Incr(query) => {
            routes::pause(query.as_deref()).await;
            (StatusCode::OK, routes::incr(&session), None)
        }
        Route::Shared(method, path, query, body) => {
            routes::pause(query.as_deref()).await;
            let reply = routes::dispatch(
                method.as_str(),
                path.as_str(),
                query.as_deref(),
                &body,
                &session,
            )
            .await;
            let status =
                StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, reply.body, reply.vary)
        }
    };
    let mut response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if let Some(vary) = vary {
        response
            .headers_mut()
            .insert(header::VARY, warp::http::HeaderValue::from_static(vary));
    }
    (response, commit)
}
