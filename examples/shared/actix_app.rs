//! The example routes on actix-web.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse};
use http_session::actix::SessionMiddleware;
use http_session::{Session, SessionManager};

use super::routes;

/// The example app: `/bare` never touches the session; `GET /incr` has its
/// own route; every other path goes through the shared routes.
pub fn app(
    sessions: SessionManager,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .service(
            web::resource("/bare")
                .route(web::get().to(bare))
                .route(web::head().to(bare))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/incr")
                .route(web::get().to(incr))
                .default_service(web::to(handle)),
        )
        .default_service(web::to(handle))
        .wrap(SessionMiddleware::new(sessions))
}

async fn bare() -> HttpResponse {
    HttpResponse::Ok().json("ok")
}

/// As axum answers a known path with another method.
async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET,HEAD"))
        .finish()
}

async fn incr(session: Session, request: HttpRequest) -> HttpResponse {
    routes::pause(Some(request.query_string())).await;
    HttpResponse::Ok().json(routes::incr(&session))
}

async fn handle(session: Session, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    routes::pause(request.uri().query()).await;
    let reply = routes::dispatch(
        request.method().as_str(),
        request.path(),
        request.uri().query(),
        &body,
        &session,
    )
    .await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(vary) = reply.vary {
        response.insert_header((header::VARY, vary));
    }
    response.json(reply.body)
}
