//! The demo: a counter, a one-time message, and log in / log out, on the
//! embedded in-memory store. Run it with
//!
//! ```text
//! cargo run --example demo --features axum            # http://127.0.0.1:8000
//! cargo run --example demo --features axum -- 9000    # another port
//! ```

#![allow(clippy::print_stdout, reason = "the demo prints its URL")]

use std::collections::HashMap;

use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use http_session::axum::SessionLayer;
use http_session::{MemoryStore, SameSite, Session, SessionManager};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,http_session=debug".into()),
        )
        .init();
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 8000,
    };
    let sessions = SessionManager::builder(MemoryStore::memory())
        .max_age(30 * 60)
        .same_site(SameSite::Lax)
        .build()?;
    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(SessionLayer::new(sessions));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!("demo listening on http://{}", listener.local_addr()?);
    println!("demo listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn home(session: Session) -> Result<Html<String>, http_session::Error> {
    let visits: u64 = session.get("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    // A one-time message: shown once, then gone.
    let flash: Option<String> = session.remove_as("flash")?;
    let user: Option<String> = session.get("user")?;
    let flash = flash
        .map(|m| format!("<p class=flash>{}</p>", escape(&m)))
        .unwrap_or_default();
    let account = match user {
        Some(name) => format!(
            "<p>Logged in as <b>{}</b>.</p>\
             <form method=post action=/logout><button>Log out</button></form>",
            escape(&name)
        ),
        None => "<form method=post action=/login>\
                 <input name=name placeholder='your name' required> <button>Log in</button></form>"
            .to_owned(),
    };
    Ok(Html(format!(
        "<!doctype html><title>http-session demo</title>\
         <h1>http-session demo</h1>{flash}\
         <p>You have visited this page <b>{visits}</b> time{s} in this session.</p>{account}",
        s = if visits == 1 { "" } else { "s" }
    )))
}

async fn login(session: Session, Form(form): Form<HashMap<String, String>>) -> Response {
    let name = form.get("name").map(|n| n.trim()).filter(|n| !n.is_empty());
    let Some(name) = name else {
        return Redirect::to("/").into_response();
    };
    // A fresh session (and id) at login: a planted id is never promoted.
    session.renew();
    session.insert_value("user", name.into());
    session.insert_value("flash", format!("Welcome, {name}!").into());
    Redirect::to("/").into_response()
}

async fn logout(session: Session) -> Redirect {
    session.renew();
    session.insert_value("flash", "You are logged out.".into());
    Redirect::to("/")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
