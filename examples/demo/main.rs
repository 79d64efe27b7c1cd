//! The demo: what a session can do, on one page. A visit counter (a typed
//! session value, `Typed<Visits>`), a one-time message, log in / log out
//! with `renew()`, the session's id, `created` and expiry, and the
//! logged-in user's sessions in every browser, with "log out everywhere
//! else" and "log out everywhere". Run it with
//!
//! ```text
//! cargo run --example demo --features axum                        # http://127.0.0.1:8000
//! cargo run --example demo --features axum -- 9000                # another port
//! cargo run --example demo --features axum,fernet -- --store fernet
//! cargo run --example demo --features axum,redis -- --store redis --redis-url redis://127.0.0.1:6379/
//! ```
//!
//! `--help` lists the options. Log in with the same name in two browsers
//! (or a private window) to see both sessions listed.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the demo prints its URL and its command-line errors"
)]

mod cli;
mod page;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use http_session::axum::SessionLayer;
use http_session::{Error, ErrorKind, Session, SessionData, Typed};
use serde::{Deserialize, Serialize};

use crate::cli::StoreInfo;
use crate::page::{Sessions, View};

/// The visit counter, a typed session value: a plain number under
/// `"visits"`, as a Python service would read it.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
struct Visits(u64);

impl SessionData for Visits {
    const KEY: &'static str = "visits";
}

/// The key of the one-time message.
const FLASH: &str = "flash";
/// The key of the logged-in user's name, as typed.
const NAME: &str = "name";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,http_session=debug".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{}", cli::USAGE);
            return Ok(());
        }
        Err(message) => fail(&message),
    };
    let (sessions, store) = cli::manager(&args).unwrap_or_else(|message| fail(&message));
    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/logout-others", post(logout_others))
        .route("/logout-everywhere", post(logout_everywhere))
        .layer(SessionLayer::new(sessions))
        .with_state(Arc::new(store));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    tracing::info!("demo listening on http://{addr}");
    // The one line on stdout; tests wait for it.
    println!("listening on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Reports a command-line error with the usage, and exits with status 2.
fn fail(message: &str) -> ! {
    eprintln!("demo: {message}\n\n{}", cli::USAGE);
    std::process::exit(2)
}

async fn home(
    State(store): State<Arc<StoreInfo>>,
    session: Session,
    mut visits: Typed<Visits>,
) -> Result<Html<String>, Error> {
    visits.0 += 1;
    // Written back now (dropping it would too), so that `created` and the
    // expiry below count this visit.
    visits.save()?;
    let flash: Option<String> = session.remove_as(FLASH)?;
    let sessions = match session.user() {
        None => Sessions::LoggedOut,
        Some(_) => match session.sessions().await {
            Ok(list) => Sessions::Listed(list),
            Err(e) if e.kind() == ErrorKind::Unsupported => Sessions::Unsupported,
            Err(e) => return Err(e),
        },
    };
    let view = View {
        store: &store,
        visits: visits.0,
        flash,
        user: match session.user() {
            Some(_) => session.get(NAME)?,
            None => None,
        },
        identity: session.identity(),
        created: session.created(),
        expires_at: session.expires_at(),
        sessions,
        now: now(),
    };
    Ok(Html(page::render(&view)))
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
}

async fn login(session: Session, Form(form): Form<LoginForm>) -> Result<Redirect, Error> {
    let name: String = form.name.trim().chars().take(64).collect();
    if name.is_empty() {
        return Ok(Redirect::to("/"));
    }
    let visits: Option<Visits> = session.get(Visits::KEY)?;
    // A fresh session (and id) at login: a planted id is never promoted.
    session.renew();
    session.set_user(user_id(&name));
    session.insert(NAME, &name)?;
    // What the old session held is gone; the demo carries the count over.
    if let Some(visits) = visits {
        session.insert(Visits::KEY, visits)?;
    }
    session.insert(
        FLASH,
        format!("Welcome, {name}! Your session was renewed at login."),
    )?;
    Ok(Redirect::to("/"))
}

async fn logout(session: Session) -> Result<Redirect, Error> {
    session.renew();
    session.insert(FLASH, "You are logged out.")?;
    Ok(Redirect::to("/"))
}

async fn logout_others(
    State(store): State<Arc<StoreInfo>>,
    session: Session,
) -> Result<Redirect, Error> {
    let message = match session.revoke_others().await {
        Ok(0) => "There was no other session to log out.".to_owned(),
        Ok(1) => "Logged out 1 other session.".to_owned(),
        Ok(n) => format!("Logged out {n} other sessions."),
        Err(e) if e.kind() == ErrorKind::Unsupported => store.cannot_list().to_owned(),
        Err(e) => return Err(e),
    };
    session.insert(FLASH, message)?;
    Ok(Redirect::to("/"))
}

async fn logout_everywhere(
    State(store): State<Arc<StoreInfo>>,
    session: Session,
) -> Result<Redirect, Error> {
    let message = match session.revoke_everywhere().await {
        // This session was one of them, and is a new one now.
        Ok(n) => format!("Logged out everywhere ({n} session{}).", plural(n)),
        Err(e) if e.kind() == ErrorKind::Unsupported => store.cannot_list().to_owned(),
        Err(e) => return Err(e),
    };
    session.insert(FLASH, message)?;
    Ok(Redirect::to("/"))
}

/// The id a name logs in as: the same name, the same user, in every
/// browser. (A real application binds its own user ids, such as a
/// primary key; an id must make a valid store key, so a typed name, which
/// may hold spaces, is hashed.)
fn user_id(name: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
