//! The demo's one page: plain HTML with a little inline CSS, every
//! user-supplied string escaped.

use std::fmt::Write as _;

use http_session::SessionInfo;

use crate::cli::StoreInfo;

/// What the page shows.
#[derive(Debug)]
pub(crate) struct View<'a> {
    pub(crate) store: &'a StoreInfo,
    pub(crate) visits: u64,
    /// The one-time message, if one was waiting.
    pub(crate) flash: Option<String>,
    /// Who is logged in.
    pub(crate) user: Option<String>,
    /// `identity()`: the record key of a server store once saved.
    pub(crate) identity: Option<String>,
    /// `created()`: aiohttp-session's time of the last change.
    pub(crate) created: i64,
    pub(crate) expires_at: Option<u64>,
    pub(crate) sessions: Sessions,
    pub(crate) now: u64,
}

/// The "your sessions" box.
#[derive(Debug)]
pub(crate) enum Sessions {
    /// Nobody is logged in.
    LoggedOut,
    /// The store cannot list sessions (cookie stores).
    Unsupported,
    Listed(Vec<SessionInfo>),
}

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;
 color:#1f2933;background:#eef1f5}
header{background:#1f3a5f;color:#fff;padding:14px 32px;display:flex;align-items:baseline;
 justify-content:space-between}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:0;font-size:14px;opacity:.9}
main{max-width:1216px;margin:0 auto;padding:20px 32px}
.flash{margin:0 0 16px;padding:10px 16px;border-radius:6px;background:#e3f4e8;
 border:1px solid #9fd5ae;color:#16502a;overflow-wrap:anywhere}
.grid{display:grid;grid-template-columns:400px minmax(0,1fr);gap:20px;align-items:start}
.col{display:grid;gap:20px}
section{background:#fff;border:1px solid #d5dbe3;border-radius:8px;padding:16px 20px}
h2{margin:0 0 10px;font-size:17px;color:#1f3a5f}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0;font-size:14px}
dt{color:#52606d}
dd{margin:0;overflow-wrap:anywhere}
code,td.mono{font-family:'DejaVu Sans Mono',ui-monospace,monospace;font-size:13px}
.stat{display:flex;align-items:center;gap:14px;margin:0 0 14px}
.stat b{font-size:40px;line-height:1;color:#1f3a5f;min-width:1em}
.stat span{font-size:15px;color:#3e4c59}
.scroll{overflow-x:auto}
.soft{color:#7b8794}
ol{margin:0;padding-left:20px;font-size:14px}
li{margin:2px 0}
.user{font-weight:600;overflow-wrap:anywhere}
form{margin:0}
.row{display:flex;gap:8px;flex-wrap:wrap;margin-top:12px}
input{font:inherit;padding:6px 10px;border:1px solid #9aa5b1;border-radius:5px;width:220px}
button{font:inherit;font-size:14px;padding:6px 14px;border-radius:5px;border:1px solid #1f3a5f;
 background:#1f3a5f;color:#fff;cursor:pointer}
button.quiet{background:#fff;color:#1f3a5f}
button.danger{background:#fff;color:#9b1c1c;border-color:#9b1c1c}
table{border-collapse:collapse;width:100%;font-size:14px}
th{text-align:left;font-weight:600;color:#52606d;border-bottom:2px solid #d5dbe3;padding:6px 8px}
td{border-bottom:1px solid #e4e7eb;padding:6px 8px;white-space:nowrap}
tr.current td{background:#f0f6ff}
.tag{font-size:12px;background:#1f3a5f;color:#fff;border-radius:10px;padding:1px 8px}
.note{margin:10px 0 0;font-size:13px;color:#52606d}
";

/// What to try, beside the sessions.
const TRY: &str = "<section id=try><h2>Try this</h2><ol>\
<li>Reload: the counter goes up, the one-time message goes away.</li>\
<li>Log in: <code>renew()</code> gives the session a new id, then \
<code>set_user()</code> binds it to your name.</li>\
<li>Log in with the same name in a private window: both sessions show above.</li>\
<li>Log out everywhere else: the other window is logged out on its next request.</li>\
</ol></section>";

/// The whole page.
pub(crate) fn render(view: &View<'_>) -> String {
    let flash = view
        .flash
        .as_deref()
        .map(|m| format!("<p class=flash id=flash>{}</p>", escape(m)))
        .unwrap_or_default();
    format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>http-session demo</title><style>{STYLE}</style></head><body>\
         <header><h1>http-session demo</h1><p>store: <b id=store>{store}</b></p></header>\
         <main>{flash}<div class=grid><div class=col>{session}{account}</div>\
         <div class=col>{sessions}{TRY}</div></div></main>\
         </body></html>\n",
        store = escape(&view.store.label),
        session = this_session(view),
        account = account(view),
        sessions = your_sessions(view),
    )
}

fn this_session(view: &View<'_>) -> String {
    let id = if view.store.in_cookie {
        "in the cookie".to_owned()
    } else {
        match &view.identity {
            Some(id) => format!("<code>{}…</code>", escape(id.get(..8).unwrap_or(id))),
            None => "new (set when it is first saved)".to_owned(),
        }
    };
    let created = u64::try_from(view.created).map_or_else(|_| "-".to_owned(), utc);
    let expires = match view.expires_at {
        Some(at) => format!("{} ({})", utc(at), relative(at, view.now)),
        None => "never".to_owned(),
    };
    format!(
        "<section id=this-session><h2>This session</h2>\
         <div class=stat><b id=visits>{visits}</b><span>visit{s} to this page in this \
         session<br>(a <code>Typed&lt;Visits&gt;</code> value)</span></div>\
         <dl><dt>session id</dt><dd id=session-id>{id}</dd>\
         <dt>created</dt><dd id=created>{created}</dd>\
         <dt>expires</dt><dd id=expires>{expires}</dd></dl>\
         <p class=note>\"created\" is aiohttp-session's: the time of the last change. \
         The session ends after 15 minutes without a write, or an hour after its last change.</p>\
         </section>",
        visits = view.visits,
        s = if view.visits == 1 { "" } else { "s" },
    )
}

fn account(view: &View<'_>) -> String {
    match &view.user {
        Some(user) => format!(
            "<section id=account><h2>Account</h2>\
             <p>Logged in as <span class=user id=user>{}</span>.</p>\
             <form method=post action=/logout class=row><button id=logout>Log out</button></form>\
             </section>",
            escape(user)
        ),
        None => "<section id=account><h2>Account</h2>\
                 <form method=post action=/login id=login>\
                 <div class=row><input name=name id=name placeholder=\"your name\" required \
                 maxlength=64 autocomplete=off><button id=login-button>Log in</button></div></form>\
                 <p class=note>Logging in renews the session: a new id, the old record deleted. \
                 Your visit count comes along; logging out starts afresh.</p></section>"
            .to_owned(),
    }
}

fn your_sessions(view: &View<'_>) -> String {
    let body = match &view.sessions {
        Sessions::LoggedOut => "<p class=note>Log in to see the sessions of your name: log in \
                                with the same name in another browser and both show here.</p>"
            .to_owned(),
        Sessions::Unsupported => format!(
            "<p class=note id=unsupported>{}</p>",
            view.store.cannot_list()
        ),
        Sessions::Listed(list) => listed(list, view.now),
    };
    format!("<section id=sessions><h2>Your sessions</h2>{body}</section>")
}

fn listed(list: &[SessionInfo], now: u64) -> String {
    let mut rows = String::new();
    for info in list {
        let time = |t: Option<u64>| t.map_or_else(|| "-".to_owned(), clock);
        let expires = info.expires.map_or_else(
            || "-".to_owned(),
            |at| {
                format!(
                    "{} <span class=soft>{}</span>",
                    clock(at),
                    relative(at, now)
                )
            },
        );
        let _ = write!(
            rows,
            "<tr{class}><td class=mono>{handle}</td><td>{created}</td><td>{last}</td>\
             <td>{expires}</td><td>{tag}</td></tr>",
            class = if info.current { " class=current" } else { "" },
            handle = escape(info.handle.short()),
            created = time(info.created),
            last = time(info.last_write),
            tag = if info.current {
                "<span class=tag>this one</span>"
            } else {
                ""
            },
        );
    }
    format!(
        "<div class=scroll><table><thead><tr><th>session</th><th>created</th>\
         <th>last write</th><th>expires</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table></div>\
         <div class=row>\
         <form method=post action=/logout-others><button class=quiet id=logout-others>\
         Log out everywhere else</button></form>\
         <form method=post action=/logout-everywhere><button class=danger id=logout-everywhere>\
         Log out everywhere</button></form></div>\
         <p class=note>Each row is one browser logged in with your name, newest write first; \
         a session is shown by its handle, never by its cookie. Times are UTC.</p>"
    )
}

/// Text for HTML, in an element or a quoted attribute.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Unix seconds as the time of day, `12:34:56` (UTC).
fn clock(secs: u64) -> String {
    let rem = secs % 86_400;
    format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Unix seconds as `2026-11-01 12:34:56 UTC`.
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let (year, month, day) = civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `in 14 min`, `in 40 s`, `3 min ago`.
fn relative(at: u64, now: u64) -> String {
    let (delta, future) = if at >= now {
        (at - now, true)
    } else {
        (now - at, false)
    };
    let amount = match delta {
        0..=89 => format!("{delta} s"),
        90..=5399 => format!("{} min", (delta + 30) / 60),
        _ => format!("{} h", (delta + 1800) / 3600),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}
