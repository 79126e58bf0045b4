//! Public server-rendered pages (home, alert, profile and feed pages,
//! archive, member directory), from askama templates; no JavaScript.

use crate::{
    alerts::taxonomy::Taxonomy,
    db::{self, actors::ActorRow, alerts::AlertRow},
    error::Error,
    federation::Urls,
    state::Data,
    web::session::{viewer, Viewer},
};
use actix_web::{http::StatusCode, web as aw, HttpRequest, HttpResponse};
use askama::Template;

/// The stylesheet, served at `/static/style.css`.
pub const STYLESHEET: &str = include_str!("../../static/style.css");

/// Registers the public HTML routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/", aw::get().to(home))
        .route("/archive", aw::get().to(archive))
        .route("/static/style.css", aw::get().to(stylesheet))
        .route("/@{name}", aw::get().to(profile_by_name));
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}

/// Renders `page` as an HTML answer with `status`, remembering a language
/// chosen with `?lang=`.
pub fn render<T: Template>(v: &Viewer, status: u16, page: &T) -> HttpResponse {
    let html = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            return HttpResponse::InternalServerError().body("template error");
        }
    };
    let mut resp = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    resp.content_type("text/html; charset=utf-8")
        .insert_header(("Vary", "Accept, Accept-Language, Cookie"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if v.user.is_some() {
        resp.insert_header(("Cache-Control", "private, no-store"));
    } else if status == 200 {
        // A browser revalidates with If-None-Match and gets 304.
        resp.insert_header(("ETag", super::read_cache::etag_of(html.as_bytes())));
    }
    if v.remember_lang {
        resp.cookie(v.cookie(crate::web::session::LANG_COOKIE, v.lang.code().to_string()));
    }
    resp.body(html)
}

/// A page with a heading and a sentence.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    v: &'a Viewer,
    title: String,
    text: String,
    link: Option<(String, String)>,
}

/// A short page: the messages `title_key` and `text_key`, with `status`.
pub fn message(v: &Viewer, status: u16, title_key: &str, text_key: &str) -> HttpResponse {
    message_text(v, status, title_key, v.lang.t(text_key), None)
}

/// A short page with a text already written and an optional link.
pub fn message_text(
    v: &Viewer,
    status: u16,
    title_key: &str,
    text: String,
    link: Option<(String, String)>,
) -> HttpResponse {
    render(
        v,
        status,
        &MessagePage {
            v,
            title: v.lang.t(title_key),
            text,
            link,
        },
    )
}

/// One alert in a list.
pub struct AlertItem {
    pub title: String,
    pub href: String,
    pub date: String,
    pub countries: String,
    pub language: String,
}

/// Alert rows as list items.
pub fn alert_items(v: &Viewer, rows: &[AlertRow]) -> Vec<AlertItem> {
    rows.iter()
        .map(|a| AlertItem {
            title: a.title.clone(),
            href: a.url.clone().unwrap_or_else(|| a.ap_id.clone()),
            date: a.published_at.map(|p| v.lang.date(p)).unwrap_or_default(),
            countries: a.country_list().join(", "),
            language: a.language.clone(),
        })
        .collect()
}

/// An `<option>`.
pub struct Choice {
    /// Submitted value.
    pub value: String,
    /// Shown text.
    pub label: String,
    /// Pre-selected.
    pub selected: bool,
}

/// Options from `(value, label)` pairs, selecting those in `selected`.
pub fn choices(items: Vec<(String, String)>, selected: &[String]) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice {
            selected: selected.contains(&value),
            value,
            label,
        })
        .collect()
}

/// The taxonomy's regions, categories and countries as options.
pub struct TaxonomyChoices {
    /// Regions.
    pub regions: Vec<Choice>,
    /// Every country of every region, by name.
    pub countries: Vec<Choice>,
    /// Categories.
    pub categories: Vec<Choice>,
}

/// Loads the configured taxonomy.
pub fn taxonomy(data: &Data) -> Result<Taxonomy, Error> {
    Taxonomy::load(&data.config.alerts.taxonomy_file).map_err(Error::Internal)
}

/// Options for the taxonomy, with the given selections.
pub fn taxonomy_choices(
    t: &Taxonomy,
    regions: &[String],
    countries: &[String],
    categories: &[String],
) -> TaxonomyChoices {
    let mut all_countries: Vec<(String, String)> = t
        .regions
        .values()
        .flat_map(|r| r.countries.iter())
        .map(|c| {
            (
                c.clone(),
                crate::federation::objects::alert::country_name(c),
            )
        })
        .collect();
    all_countries.sort_by(|a, b| a.1.cmp(&b.1));
    all_countries.dedup();
    TaxonomyChoices {
        regions: choices(
            t.regions
                .iter()
                .map(|(k, r)| (k.clone(), r.name.clone()))
                .collect(),
            regions,
        ),
        countries: choices(all_countries, countries),
        categories: choices(
            t.categories
                .iter()
                .map(|(k, n)| (k.clone(), n.clone()))
                .collect(),
            categories,
        ),
    }
}

/// The profile or feed page of a local actor.
#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage<'a> {
    v: &'a Viewer,
    title: String,
    handle: String,
    summary: String,
    followers: String,
    username: String,
    actor_url: String,
    items: Vec<AlertItem>,
    campaign: Option<CampaignInfo>,
}

/// What a campaign's page shows above its timeline.
struct CampaignInfo {
    /// Target country name and/or theme.
    target: String,
    /// Joined participants: name and page.
    participants: Vec<(String, String)>,
    /// Calls to action, newest first: anchor, title, date (may be empty),
    /// HTML details.
    actions: Vec<(String, String, String, String)>,
}

/// The target and joined participants of the campaign whose actor is `row`.
async fn campaign_info(data: &Data, row: &ActorRow) -> Result<Option<CampaignInfo>, Error> {
    if row.kind != crate::campaigns::GROUP {
        return Ok(None);
    }
    let actor_id = row.id;
    let found = data
        .db
        .run(move |conn| {
            let Some(c) = db::campaigns::by_actor(conn, actor_id)? else {
                return Ok(None);
            };
            let participants = db::campaigns::participants(conn, c.id)?;
            let actions = db::campaigns::actions(conn, c.id)?;
            Ok(Some((c, participants, actions)))
        })
        .await?;
    Ok(found.map(|(c, participants, actions)| CampaignInfo {
        actions: actions
            .into_iter()
            .map(|a| {
                let when = a
                    .starts_at
                    .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
                    .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default();
                (format!("action-{}", a.id), a.title, when, a.content_html)
            })
            .collect(),
        target: c
            .country
            .as_deref()
            .map(crate::federation::objects::alert::country_name)
            .into_iter()
            .chain(c.theme.clone())
            .collect::<Vec<_>>()
            .join(" · "),
        participants: participants
            .into_iter()
            .filter(|(p, _)| p.state == db::campaigns::JOINED)
            .map(|(_, a)| {
                (
                    a.name.clone().unwrap_or(a.username.clone()),
                    a.url.clone().unwrap_or(a.ap_id.clone()),
                )
            })
            .collect(),
    }))
}

/// The profile page of a local actor (a feed lists what it boosted; a
/// campaign also shows its target and participants).
pub async fn profile(
    request: &HttpRequest,
    data: &Data,
    row: &ActorRow,
) -> Result<HttpResponse, Error> {
    let v = viewer(request, data).await?;
    let urls = Urls::new(&data.config);
    let id = row.id;
    let filter = db::alerts::AlertFilter {
        hidden_domains: data.policies.silenced().await?,
        ..db::alerts::AlertFilter::for_actor(row)
    };
    let (followers, latest) = data
        .db
        .run(move |conn| {
            Ok((
                db::follows::follower_count(conn, id)?,
                db::alerts::list(conn, &filter, 20, 0)?,
            ))
        })
        .await?;
    let page = ProfilePage {
        title: row.name.clone().unwrap_or_else(|| row.username.clone()),
        handle: format!("@{}@{}", row.username, data.config.instance.domain),
        summary: row.summary.clone().unwrap_or_default(),
        followers: v
            .lang
            .t_args("followers", &[("count", v.lang.number(followers))]),
        username: row.username.clone(),
        actor_url: urls.actor(&row.username).to_string(),
        items: alert_items(&v, &latest),
        campaign: campaign_info(data, row).await?,
        v: &v,
    };
    Ok(render(&v, 200, &page))
}

async fn profile_by_name(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let name = path.into_inner();
    super::read_cache::serve(&request, &data, async {
        let row = data
            .db
            .run(move |conn| db::actors::local_by_username(conn, &name))
            .await?
            .ok_or(Error::NotFound)?;
        profile(&request, &data, &row).await
    })
    .await
}

/// 410 page for a deleted alert.
pub async fn gone(request: &HttpRequest, data: &Data) -> Result<HttpResponse, Error> {
    let v = viewer(request, data).await?;
    Ok(message(&v, 410, "gone-title", "gone-text"))
}

/// The public page of an alert.
#[derive(Template)]
#[template(path = "alert.html")]
struct AlertPage<'a> {
    v: &'a Viewer,
    title: String,
    author_name: String,
    author_href: String,
    language: String,
    urgency: String,
    countries: String,
    date: String,
    warning: Option<String>,
    content_html: String,
    attachments: Vec<(String, String)>,
    others: Vec<(String, String)>,
}

/// The public page of an alert, with links to its other language versions.
pub async fn alert(
    request: &HttpRequest,
    data: &Data,
    row: &AlertRow,
) -> Result<HttpResponse, Error> {
    let v = viewer(request, data).await?;
    let (group, actor_id, id) = (row.group_id(), row.actor_id, row.id);
    let (versions, actor, attachments) = data
        .db
        .run(move |conn| {
            Ok((
                db::alerts::versions(conn, group)?,
                db::actors::by_id(conn, actor_id)?,
                db::alerts::attachments(conn, id)?,
            ))
        })
        .await?;
    let page = AlertPage {
        title: row.title.clone(),
        author_name: actor.name.clone().unwrap_or(actor.username.clone()),
        author_href: actor.url.clone().unwrap_or(actor.ap_id.clone()),
        language: row.language.clone(),
        urgency: v.lang.t(&format!("urgency-{}", row.urgency)),
        countries: row
            .country_list()
            .iter()
            .map(|c| crate::federation::objects::alert::country_name(c))
            .collect::<Vec<_>>()
            .join(", "),
        date: row
            .published_at
            .map(|p| v.lang.date(p))
            .or(row.incident_date.clone())
            .unwrap_or_default(),
        warning: row.summary.clone(),
        // Sanitised when stored, and again here: stored HTML from an older
        // version, an import or a restore passes the same filter.
        content_html: crate::alerts::markdown::sanitize(&row.content_html),
        attachments: attachments
            .into_iter()
            .map(|a| {
                let label = a.description.clone().unwrap_or(a.url.clone());
                (a.url, label)
            })
            .collect(),
        others: versions
            .iter()
            .filter(|o| o.id != row.id && o.status == crate::alerts::STATUS_PUBLISHED)
            .map(|o| (o.ap_id.clone(), o.language.clone()))
            .collect(),
        v: &v,
    };
    Ok(render(&v, 200, &page))
}

/// Query of the home and archive pages.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ArchiveQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    page: Option<i64>,
}

fn day_ms(value: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

fn nonempty(v: &str) -> Option<String> {
    Some(v.trim().to_string()).filter(|s| !s.is_empty())
}

/// The home page and the archive: alerts with filters (and, in the
/// archive, search and dates).
#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage<'a> {
    v: &'a Viewer,
    title: String,
    intro: Option<String>,
    action: &'static str,
    archive: bool,
    q: ArchiveQuery,
    regions: Vec<Choice>,
    countries: Vec<Choice>,
    categories: Vec<Choice>,
    items: Vec<AlertItem>,
    prev: Option<String>,
    next: Option<String>,
    feed: Option<String>,
}

async fn alerts_page(
    request: HttpRequest,
    q: ArchiveQuery,
    data: Data,
    archive: bool,
) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    let page = q.page.unwrap_or(1).max(1);
    let filter = db::alerts::AlertFilter {
        text: nonempty(&q.q).filter(|_| archive),
        country: nonempty(&q.country),
        region: nonempty(&q.region),
        category: nonempty(&q.category),
        language: nonempty(&q.language),
        since: day_ms(&q.since).filter(|_| archive),
        until: day_ms(&q.until).filter(|_| archive).map(|u| u + 86_400_000),
        hidden_domains: data.policies.silenced().await?,
        ..Default::default()
    };
    let size = data.config.alerts.page_size;
    let rows = data
        .db
        .run(move |conn| db::alerts::list(conn, &filter, size + 1, db::page_offset(page, size)))
        .await?;
    let more = rows.len() as i64 > size;
    let shown: Vec<_> = rows.into_iter().take(size as usize).collect();
    let action = if archive { "/archive" } else { "/" };
    let link = |p: i64| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, val) in [
            ("q", &q.q),
            ("country", &q.country),
            ("region", &q.region),
            ("category", &q.category),
            ("language", &q.language),
            ("since", &q.since),
            ("until", &q.until),
        ] {
            if let Some(val) = nonempty(val) {
                s.append_pair(k, &val);
            }
        }
        s.append_pair("page", &p.to_string());
        format!("{action}?{}", s.finish())
    };
    let t = taxonomy(&data)?;
    let tc = taxonomy_choices(
        &t,
        std::slice::from_ref(&q.region),
        std::slice::from_ref(&q.country),
        std::slice::from_ref(&q.category),
    );
    let body = AlertsPage {
        title: if archive {
            v.lang.t("nav-archive")
        } else {
            data.config.instance.name.clone()
        },
        intro: (!archive).then(|| data.config.instance.description.clone()),
        action,
        archive,
        regions: tc.regions,
        countries: tc.countries,
        categories: tc.categories,
        items: alert_items(&v, &shown),
        prev: (page > 1).then(|| link(page - 1)),
        next: more.then(|| link(page + 1)),
        feed: Some(data.config.actor.username.clone()),
        q,
        v: &v,
    };
    Ok(render(&v, 200, &body))
}

/// The home page: the latest alerts. Kept for anonymous readers like the
/// profile and alert pages, so a spike of readers costs one rendering.
async fn home(
    request: HttpRequest,
    query: aw::Query<ArchiveQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let answer = alerts_page(request.clone(), query.into_inner(), data.clone(), false);
    super::read_cache::serve(&request, &data, answer).await
}

/// The archive: every alert, searched and filtered; kept like the home page.
async fn archive(
    request: HttpRequest,
    query: aw::Query<ArchiveQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let answer = alerts_page(request.clone(), query.into_inner(), data.clone(), true);
    super::read_cache::serve(&request, &data, answer).await
}

/// One member in the directory.
pub struct MemberItem {
    pub href: String,
    pub name: String,
    pub handle: String,
    pub region: String,
    pub countries: String,
}

/// The member directory page.
#[derive(Template)]
#[template(path = "directory.html")]
struct DirectoryPage<'a> {
    v: &'a Viewer,
    title: String,
    members: Vec<MemberItem>,
}

/// The members as directory items.
pub fn member_items(rows: &[(db::curation::MemberRow, ActorRow)]) -> Vec<MemberItem> {
    rows.iter()
        .map(|(m, a)| MemberItem {
            href: a.url.clone().unwrap_or(a.ap_id.clone()),
            name: a.name.clone().unwrap_or(a.username.clone()),
            handle: format!("@{}@{}", a.username, a.domain),
            region: m.region.clone().unwrap_or_default(),
            countries: db::alerts::split_list(&m.countries).join(", "),
        })
        .collect()
}

/// The member directory page.
pub async fn directory(
    request: &HttpRequest,
    data: &Data,
    rows: &[(db::curation::MemberRow, ActorRow)],
) -> Result<HttpResponse, Error> {
    let v = viewer(request, data).await?;
    let page = DirectoryPage {
        title: v.lang.t("members"),
        members: member_items(rows),
        v: &v,
    };
    Ok(render(&v, 200, &page))
}
