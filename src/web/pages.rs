//! Server-rendered HTML pages; readable without JavaScript.

use crate::{
    db::{self, actors::ActorRow},
    error::Error,
    federation::Urls,
    state::Data,
};
use actix_web::{web as aw, HttpResponse};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

/// Registers the HTML routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/", aw::get().to(home))
        .route("/@{name}", aw::get().to(profile_by_name));
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}\
a{color:#0b57d0}header{border-bottom:1px solid #ccc;margin-bottom:1rem}code{background:#f2f2f2;padding:0 .2rem}";

/// Wraps `body` in the common page layout.
pub fn layout(title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        text(title)
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Vary", "Accept"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:",
        ))
        .body(html)
}

/// The profile page of a local actor.
pub async fn profile(data: &Data, row: &ActorRow) -> Result<HttpResponse, Error> {
    let urls = Urls::new(&data.config);
    let id = row.id;
    let followers = data
        .db
        .run(move |conn| db::follows::follower_count(conn, id))
        .await?;
    let handle = format!("@{}@{}", row.username, data.config.instance.domain);
    let name = row.name.clone().unwrap_or_else(|| row.username.clone());
    let body = format!(
        "<header><h1>{}</h1><p><code>{}</code></p></header>\
         <p>{}</p><p>{} followers.</p>\
         <p>To follow, search for <code>{}</code> on your fediverse server \
         (Mastodon, GoToSocial, Lemmy …).</p>\
         <p><a href=\"{}\">ActivityPub actor</a></p>",
        text(&name),
        text(&handle),
        text(row.summary.as_deref().unwrap_or("")),
        followers,
        text(&handle),
        attr(urls.actor(&row.username).as_str()),
    );
    Ok(layout(&name, &body))
}

async fn profile_by_name(path: aw::Path<String>, data: Data) -> Result<HttpResponse, Error> {
    let name = path.into_inner();
    let row = data
        .db
        .run(move |conn| db::actors::local_by_username(conn, &name))
        .await?
        .ok_or(Error::NotFound)?;
    profile(&data, &row).await
}

async fn home(data: Data) -> Result<HttpResponse, Error> {
    let urls = Urls::new(&data.config);
    let username = data.config.actor.username.clone();
    let body = format!(
        "<header><h1>{}</h1></header><p>{}</p>\
         <p>Follow <a href=\"{}\"><code>@{}@{}</code></a> from any fediverse server.</p>",
        text(&data.config.instance.name),
        text(&data.config.instance.description),
        attr(urls.profile_page(&username).as_str()),
        text(&username),
        text(&data.config.instance.domain),
    );
    Ok(layout(&data.config.instance.name, &body))
}

/// 410 page for a deleted alert.
pub fn gone() -> HttpResponse {
    let mut resp = layout("Deleted", "<h1>This alert was deleted.</h1>");
    *resp.status_mut() = actix_web::http::StatusCode::GONE;
    resp
}

/// The public page of an alert, with links to its other language versions.
pub async fn alert(data: &Data, row: &crate::db::alerts::AlertRow) -> Result<HttpResponse, Error> {
    let group = row.group_id();
    let actor_id = row.actor_id;
    let (versions, actor) = data
        .db
        .run(move |conn| {
            Ok((
                db::alerts::versions(conn, group)?,
                db::actors::by_id(conn, actor_id)?,
            ))
        })
        .await?;
    let others: Vec<String> = versions
        .iter()
        .filter(|v| v.id != row.id && v.status == crate::alerts::STATUS_PUBLISHED)
        .map(|v| {
            format!(
                "<a href=\"{}\" hreflang=\"{}\" lang=\"{}\">{}</a>",
                attr(&v.ap_id),
                attr(&v.language),
                attr(&v.language),
                text(&v.language)
            )
        })
        .collect();
    let countries: Vec<String> = row
        .country_list()
        .iter()
        .map(|c| crate::federation::objects::alert::country_name(c))
        .collect();
    let warning = row
        .summary
        .as_ref()
        .map(|s| format!("<p><strong>Content warning:</strong> {}</p>", text(s)))
        .unwrap_or_default();
    let body = format!(
        "<header><p><a href=\"{}\">{}</a></p></header><article lang=\"{}\"><h1>{}</h1>\
         <p>{} · {} · {}</p>{}{}</article>{}",
        attr(actor.url.as_deref().unwrap_or(&actor.ap_id)),
        text(actor.name.as_deref().unwrap_or(&actor.username)),
        attr(&row.language),
        text(&row.title),
        text(&row.urgency),
        text(&countries.join(", ")),
        text(row.incident_date.as_deref().unwrap_or("")),
        warning,
        row.content_html,
        if others.is_empty() {
            String::new()
        } else {
            format!("<p>Also in: {}</p>", others.join(" · "))
        },
    );
    Ok(layout(&row.title, &body))
}
