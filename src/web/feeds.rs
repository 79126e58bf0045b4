//! Atom and RSS feeds per actor, optionally for one language.

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
        .route("/@{name}/feed.rss", aw::get().to(rss_feed));
}

#[derive(Debug, Deserialize)]
struct FeedQuery {
    language: Option<String>,
}

struct FeedData {
    title: String,
    page: String,
    self_url: String,
    alerts: Vec<AlertRow>,
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
    Ok(FeedData {
        title: match &language {
            Some(l) => format!("{name} ({l})"),
            None => name,
        },
        page: urls.profile_page(&actor.username).to_string(),
        self_url,
        alerts,
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
    let updated = feed.alerts.iter().map(|a| a.updated_at).max().unwrap_or(0);
    let entries: Vec<Entry> = feed
        .alerts
        .iter()
        .map(|a| {
            let mut entry = Entry::default();
            entry.set_id(a.ap_id.clone());
            entry.set_title(Text::plain(a.title.clone()));
            entry.set_updated(time(a.updated_at));
            entry.set_published(a.published_at.map(time));
            let mut link = Link::default();
            link.set_href(a.url.clone().unwrap_or_else(|| a.ap_id.clone()));
            link.set_hreflang(Some(a.language.clone()));
            entry.set_links(vec![link]);
            let mut content = Content::default();
            content.set_content_type(Some("html".to_string()));
            content.set_value(Some(a.content_html.clone()));
            content.set_lang(Some(a.language.clone()));
            entry.set_content(Some(content));
            entry.set_categories(
                terms(a)
                    .into_iter()
                    .map(|t| {
                        let mut c = Category::default();
                        c.set_term(t);
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
        .alerts
        .iter()
        .map(|a| {
            ItemBuilder::default()
                .title(Some(a.title.clone()))
                .link(Some(a.url.clone().unwrap_or_else(|| a.ap_id.clone())))
                .guid(Some(
                    GuidBuilder::default()
                        .value(a.ap_id.clone())
                        .permalink(true)
                        .build(),
                ))
                .pub_date(a.published_at.map(|p| time(p).to_rfc2822()))
                .description(Some(a.content_html.clone()))
                .categories(
                    terms(a)
                        .into_iter()
                        .map(|t| CategoryBuilder::default().name(t).build())
                        .collect::<Vec<_>>(),
                )
                .build()
        })
        .collect();
    ChannelBuilder::default()
        .title(feed.title.clone())
        .link(feed.page.clone())
        .description(format!("Alerts from {}", feed.title))
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
