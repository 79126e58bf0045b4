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
        .route("/archive", aw::get().to(archive))
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
    let filter = db::alerts::AlertFilter::for_actor(row);
    let (followers, latest) = data
        .db
        .run(move |conn| {
            Ok((
                db::follows::follower_count(conn, id)?,
                db::alerts::list(conn, &filter, 20, 0)?,
            ))
        })
        .await?;
    let handle = format!("@{}@{}", row.username, data.config.instance.domain);
    let name = row.name.clone().unwrap_or_else(|| row.username.clone());
    let body = format!(
        "<header><h1>{}</h1><p><code>{}</code></p></header>\
         <p>{}</p><p>{} followers.</p>\
         <p>To follow, search for <code>{}</code> on your fediverse server \
         (Mastodon, GoToSocial, Lemmy …).</p>\
         <p><a href=\"{}\">ActivityPub actor</a> · <a href=\"/@{}/feed.atom\">Atom</a> · \
         <a href=\"/@{}/feed.rss\">RSS</a> · <a href=\"/archive\">Archive</a></p>{}",
        text(&name),
        text(&handle),
        text(row.summary.as_deref().unwrap_or("")),
        followers,
        text(&handle),
        attr(urls.actor(&row.username).as_str()),
        attr(&row.username),
        attr(&row.username),
        alert_list(&latest),
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

/// A list of alerts with title, date, countries and language.
fn alert_list(alerts: &[crate::db::alerts::AlertRow]) -> String {
    if alerts.is_empty() {
        return "<p>No alerts.</p>".to_string();
    }
    let items: Vec<String> = alerts
        .iter()
        .map(|a| {
            let date = a
                .published_at
                .and_then(|p| chrono::TimeZone::timestamp_millis_opt(&chrono::Utc, p).single())
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            format!(
                "<li lang=\"{}\"><a href=\"{}\">{}</a> <small>{} · {} · {}</small></li>",
                attr(&a.language),
                attr(a.url.as_deref().unwrap_or(&a.ap_id)),
                text(&a.title),
                text(&date),
                text(&a.country_list().join(", ")),
                text(&a.language),
            )
        })
        .collect();
    format!("<ul>{}</ul>", items.join(""))
}

/// Query of the archive page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ArchiveQuery {
    q: Option<String>,
    country: Option<String>,
    region: Option<String>,
    category: Option<String>,
    language: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page: Option<i64>,
}

fn day_ms(value: &Option<String>) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(value.as_deref()?.trim(), "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The archive: every published alert here, local and from followed
/// members, with filters and full-text search.
async fn archive(query: aw::Query<ArchiveQuery>, data: Data) -> Result<HttpResponse, Error> {
    let q = query.into_inner();
    let page = q.page.unwrap_or(1).max(1);
    let taxonomy = crate::alerts::taxonomy::Taxonomy::load(&data.config.alerts.taxonomy_file)
        .map_err(Error::Internal)?;
    let filter = db::alerts::AlertFilter {
        text: nonempty(&q.q),
        country: nonempty(&q.country),
        region: nonempty(&q.region),
        category: nonempty(&q.category),
        language: nonempty(&q.language),
        since: day_ms(&q.since),
        until: day_ms(&q.until).map(|u| u + 86_400_000),
        ..Default::default()
    };
    let size = data.config.alerts.page_size;
    let rows = data
        .db
        .run(move |conn| db::alerts::list(conn, &filter, size + 1, (page - 1) * size))
        .await?;
    let value = |v: &Option<String>| attr(v.as_deref().unwrap_or("")).to_string();
    let options = |items: Vec<(String, String)>, selected: &Option<String>| -> String {
        let mut out = String::from("<option value=\"\">Any</option>");
        for (key, name) in items {
            let sel = if selected.as_deref() == Some(key.as_str()) {
                " selected"
            } else {
                ""
            };
            out.push_str(&format!(
                "<option value=\"{}\"{sel}>{}</option>",
                attr(&key),
                text(&name)
            ));
        }
        out
    };
    let regions = options(
        taxonomy
            .regions
            .iter()
            .map(|(k, r)| (k.clone(), r.name.clone()))
            .collect(),
        &q.region,
    );
    let categories = options(
        taxonomy
            .categories
            .iter()
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect(),
        &q.category,
    );
    let form = format!(
        "<form method=\"get\" action=\"/archive\">\
         <p><label for=\"q\">Search</label> <input id=\"q\" name=\"q\" type=\"search\" value=\"{}\"></p>\
         <p><label for=\"country\">Country (ISO code)</label> <input id=\"country\" name=\"country\" size=\"2\" maxlength=\"2\" value=\"{}\"> \
         <label for=\"region\">Region</label> <select id=\"region\" name=\"region\">{regions}</select> \
         <label for=\"category\">Category</label> <select id=\"category\" name=\"category\">{categories}</select></p>\
         <p><label for=\"language\">Language</label> <input id=\"language\" name=\"language\" size=\"5\" value=\"{}\"> \
         <label for=\"since\">From</label> <input id=\"since\" name=\"since\" type=\"date\" value=\"{}\"> \
         <label for=\"until\">To</label> <input id=\"until\" name=\"until\" type=\"date\" value=\"{}\"></p>\
         <p><button type=\"submit\">Search the archive</button></p></form>",
        value(&q.q), value(&q.country), value(&q.language), value(&q.since), value(&q.until),
    );
    let more = rows.len() as i64 > size;
    let shown: Vec<_> = rows.into_iter().take(size as usize).collect();
    let mut nav = String::new();
    if page > 1 || more {
        let params = |p: i64| {
            let pairs = [
                ("q", &q.q),
                ("country", &q.country),
                ("region", &q.region),
                ("category", &q.category),
                ("language", &q.language),
                ("since", &q.since),
                ("until", &q.until),
            ];
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                if let Some(v) = nonempty(v) {
                    s.append_pair(k, &v);
                }
            }
            s.append_pair("page", &p.to_string());
            s.finish()
        };
        if page > 1 {
            nav.push_str(&format!(
                "<a href=\"/archive?{}\" rel=\"prev\">Newer</a> ",
                attr(&params(page - 1))
            ));
        }
        if more {
            nav.push_str(&format!(
                "<a href=\"/archive?{}\" rel=\"next\">Older</a>",
                attr(&params(page + 1))
            ));
        }
    }
    let body = format!(
        "<header><h1>Archive</h1><p><a href=\"/\">{}</a></p></header>{form}<h2>Alerts</h2>{}<nav>{nav}</nav>",
        text(&data.config.instance.name),
        alert_list(&shown),
    );
    Ok(layout("Archive", &body))
}

/// The member directory page.
pub fn directory(
    data: &Data,
    rows: &[(db::curation::MemberRow, ActorRow)],
) -> Result<HttpResponse, Error> {
    let items: Vec<String> = rows
        .iter()
        .map(|(m, a)| {
            format!(
                "<li><a href=\"{}\">{}</a> <code>@{}@{}</code> <small>{} {}</small></li>",
                attr(a.url.as_deref().unwrap_or(&a.ap_id)),
                text(a.name.as_deref().unwrap_or(&a.username)),
                text(&a.username),
                text(&a.domain),
                text(m.region.as_deref().unwrap_or("")),
                text(&db::alerts::split_list(&m.countries).join(", ")),
            )
        })
        .collect();
    let body = format!(
        "<header><h1>Members</h1><p><a href=\"/\">{}</a></p></header>{}",
        text(&data.config.instance.name),
        if items.is_empty() {
            "<p>No members yet.</p>".to_string()
        } else {
            format!("<ul>{}</ul>", items.join(""))
        }
    );
    Ok(layout("Members", &body))
}
