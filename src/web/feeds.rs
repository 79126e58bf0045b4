//! Atom and RSS feeds per actor, optionally for one language, and per
//! publication (its published issues).

use crate::{
    db::{
        self,
        alerts::{AlertFilter, AlertRow},
    },
    error::Error,
    federation::{objects::alert::country_name, Urls},
    state::Data,
};
use actix_web::{web as aw, HttpResponse};
use chrono::{TimeZone, Utc};
use serde::Deserialize;

/// Entries in a feed.
const FEED_SIZE: i64 = 50;

/// Registers the feed routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/@{name}/feed.atom", aw::get().to(atom))
        .route("/@{name}/feed.rss", aw::get().to(rss_feed))
        .route(
            "/publications/{publication}/feed.atom",
            aw::get().to(publication_atom),
        )
        .route(
            "/publications/{publication}/feed.rss",
            aw::get().to(publication_rss),
        );
}

#[derive(Debug, Deserialize)]
struct FeedQuery {
    language: Option<String>,
}

struct FeedData {
    title: String,
    description: String,
    page: String,
    self_url: String,
    entries: Vec<FeedEntry>,
}

/// One entry of a feed: an alert or a publication issue.
struct FeedEntry {
    id: String,
    title: String,
    link: String,
    language: String,
    html: String,
    published: Option<i64>,
    updated: i64,
    terms: Vec<String>,
}

impl FeedEntry {
    fn from_alert(a: &AlertRow) -> Self {
        FeedEntry {
            id: a.ap_id.clone(),
            title: a.title.clone(),
            link: a.url.clone().unwrap_or_else(|| a.ap_id.clone()),
            language: a.language.clone(),
            html: a.content_html.clone(),
            published: a.published_at,
            updated: a.updated_at,
            terms: terms(a),
        }
    }
}

async fn load(
    data: &Data,
    name: String,
    language: Option<String>,
    ext: &str,
) -> Result<FeedData, Error> {
    let actor = data
        .db
        .run(move |conn| db::actors::local_by_username(conn, &name))
        .await?
        .ok_or(Error::NotFound)?;
    if let Some(l) = &language {
        if !crate::alerts::input::is_language_tag(l) {
            return Err(Error::BadRequest(format!("{l} is not a language tag")));
        }
    }
    let urls = Urls::new(&data.config);
    let mut self_url = format!("{}/@{}/feed.{ext}", urls.base(), actor.username);
    if let Some(l) = &language {
        self_url.push_str(&format!("?language={l}"));
    }
    let filter = AlertFilter {
        language: language.clone(),
        hidden_domains: data.policies.silenced().await?,
        ..AlertFilter::for_actor(&actor)
    };
    let alerts = data
        .db
        .run(move |conn| db::alerts::list(conn, &filter, FEED_SIZE, 0))
        .await?;
    let name = actor.name.clone().unwrap_or_else(|| actor.username.clone());
    let title = match &language {
        Some(l) => format!("{name} ({l})"),
        None => name,
    };
    Ok(FeedData {
        description: format!("Alerts from {title}"),
        title,
        page: urls.profile_page(&actor.username).to_string(),
        self_url,
        entries: alerts.iter().map(FeedEntry::from_alert).collect(),
    })
}

/// The published issues of a publication as a feed.
async fn load_publication(data: &Data, publication: String, ext: &str) -> Result<FeedData, Error> {
    let title = match publication.as_str() {
        crate::publications::DIGEST => "The Digest",
        crate::publications::COMMUNIQUE => "The Communiqué",
        crate::publications::ADVOCACY => "Advocacy Action News",
        _ => return Err(Error::NotFound),
    };
    let urls = Urls::new(&data.config);
    let page = format!("{}/publications/{publication}", urls.base());
    let issues = data
        .db
        .run(move |conn| {
            let mut out = Vec::new();
            for issue in db::publications::published_issues(conn, &publication, FEED_SIZE)? {
                let items = db::publications::items(conn, issue.id)?;
                out.push((issue, items));
            }
            Ok(out)
        })
        .await?;
    Ok(FeedData {
        title: title.to_string(),
        description: format!("{title}: published issues"),
        self_url: format!("{page}/feed.{ext}"),
        page,
        entries: issues
            .into_iter()
            .map(|(issue, items)| {
                let id = issue.ap_id.clone().unwrap_or_default();
                FeedEntry {
                    link: id.clone(),
                    id,
                    title: issue.title,
                    language: issue.language,
                    html: crate::web::publication_pages::issue_html(items),
                    published: issue.published_at,
                    updated: issue.updated_at,
                    terms: Vec::new(),
                }
            })
            .collect(),
    })
}

fn time(ms: i64) -> chrono::DateTime<chrono::FixedOffset> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .fixed_offset()
}

fn terms(alert: &AlertRow) -> Vec<String> {
    alert
        .country_list()
        .iter()
        .map(|c| country_name(c))
        .chain(alert.category_list())
        .collect()
}

/// The Atom document for `feed`.
fn atom_document(feed: &FeedData) -> String {
    use atom_syndication::{Category, Content, Entry, Feed, Link, Text};
    let updated = feed.entries.iter().map(|a| a.updated).max().unwrap_or(0);
    let entries: Vec<Entry> = feed
        .entries
        .iter()
        .map(|a| {
            let mut entry = Entry::default();
            entry.set_id(a.id.clone());
            entry.set_title(Text::plain(a.title.clone()));
            entry.set_updated(time(a.updated));
            entry.set_published(a.published.map(time));
            let mut link = Link::default();
            link.set_href(a.link.clone());
            link.set_hreflang(Some(a.language.clone()));
            entry.set_links(vec![link]);
            let mut content = Content::default();
            content.set_content_type(Some("html".to_string()));
            content.set_value(Some(a.html.clone()));
            content.set_lang(Some(a.language.clone()));
            entry.set_content(Some(content));
            entry.set_categories(
                a.terms
                    .iter()
                    .map(|t| {
                        let mut c = Category::default();
                        c.set_term(t.clone());
                        c
                    })
                    .collect::<Vec<_>>(),
            );
            entry
        })
        .collect();
    let mut alternate = Link::default();
    alternate.set_href(feed.page.clone());
    let mut own = Link::default();
    own.set_href(feed.self_url.clone());
    own.set_rel("self");
    let mut atom = Feed::default();
    atom.set_id(feed.self_url.clone());
    atom.set_title(Text::plain(feed.title.clone()));
    atom.set_updated(time(updated));
    atom.set_links(vec![alternate, own]);
    atom.set_entries(entries);
    atom.to_string()
}

/// The RSS 2.0 document for `feed`.
fn rss_document(feed: &FeedData) -> String {
    use rss::{CategoryBuilder, ChannelBuilder, GuidBuilder, ItemBuilder};
    let items: Vec<rss::Item> = feed
        .entries
        .iter()
        .map(|a| {
            ItemBuilder::default()
                .title(Some(a.title.clone()))
                .link(Some(a.link.clone()))
                .guid(Some(
                    GuidBuilder::default()
                        .value(a.id.clone())
                        .permalink(true)
                        .build(),
                ))
                .pub_date(a.published.map(|p| time(p).to_rfc2822()))
                .description(Some(a.html.clone()))
                .categories(
                    a.terms
                        .iter()
                        .map(|t| CategoryBuilder::default().name(t.clone()).build())
                        .collect::<Vec<_>>(),
                )
                .build()
        })
        .collect();
    ChannelBuilder::default()
        .title(feed.title.clone())
        .link(feed.page.clone())
        .description(feed.description.clone())
        .items(items)
        .build()
        .to_string()
}

async fn atom(
    path: aw::Path<String>,
    query: aw::Query<FeedQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let feed = load(
        &data,
        path.into_inner(),
        query.into_inner().language,
        "atom",
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/atom+xml; charset=utf-8")
        .body(atom_document(&feed)))
}

async fn rss_feed(
    path: aw::Path<String>,
    query: aw::Query<FeedQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let feed = load(&data, path.into_inner(), query.into_inner().language, "rss").await?;
    Ok(HttpResponse::Ok()
        .content_type("application/rss+xml; charset=utf-8")
        .body(rss_document(&feed)))
}

async fn publication_atom(path: aw::Path<String>, data: Data) -> Result<HttpResponse, Error> {
    let feed = load_publication(&data, path.into_inner(), "atom").await?;
    Ok(HttpResponse::Ok()
        .content_type("application/atom+xml; charset=utf-8")
        .body(atom_document(&feed)))
}

async fn publication_rss(path: aw::Path<String>, data: Data) -> Result<HttpResponse, Error> {
    let feed = load_publication(&data, path.into_inner(), "rss").await?;
    Ok(HttpResponse::Ok()
        .content_type("application/rss+xml; charset=utf-8")
        .body(rss_document(&feed)))
}
