//! Pages for editors of a Clearing House or hub: the review queue with
//! filters, one item beside the feeds it matches (approve, reject with a
//! reason, curate), the diff of alerts edited after approval, feeds and the
//! member directory, and delivery health per host. Built on
//! crate::curation.

use crate::{
    accounts::EDITOR,
    curation::{self, members, CurateInput, CuratedTranslation, FeedRules},
    db::{self, curation::ReviewRow},
    error::Error,
    federation::activities::follow::local_actor,
    state::Data,
    web::{
        author_pages::allowed,
        pages::{
            choices, member_items, render, taxonomy, taxonomy_choices, Choice, MemberItem,
            TaxonomyChoices,
        },
        session::{require, require_post, see_other, Form, Viewer},
    },
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use askama::Template;

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.service(
        aw::scope("/editor")
            .route("/queue", aw::get().to(queue))
            .route("/review/{id}", aw::get().to(review))
            .route("/review/{id}/{decision}", aw::post().to(decide))
            .route("/directory", aw::get().to(directory))
            .route("/members/{action}", aw::post().to(member_action))
            .route("/hosts", aw::get().to(hosts)),
    );
}

struct QueueItem {
    id: i64,
    title: String,
    language: String,
    member: String,
    countries: String,
    feeds: String,
    received: String,
    edited: bool,
}

#[derive(Template)]
#[template(path = "editor_queue.html")]
struct QueuePage<'a> {
    v: &'a Viewer,
    title: String,
    notice: Option<String>,
    states: Vec<Choice>,
    tc: TaxonomyChoices,
    members: Vec<Choice>,
    language: String,
    items: Vec<QueueItem>,
}

/// Query of the queue page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    member: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    done: String,
}

async fn queue(
    request: HttpRequest,
    query: aw::Query<QueueQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let q = query.into_inner();
    let state = if q.state.is_empty() {
        db::curation::PENDING.to_string()
    } else {
        q.state.clone()
    };
    let wanted = (state != "all").then(|| state.clone());
    let (items, member_rows) = data
        .db
        .run(move |conn| {
            let items = db::curation::reviews(conn, wanted.as_deref(), 500)?;
            let mut out = vec![];
            for item in items {
                let alert = db::alerts::by_id(conn, item.alert_id)?;
                let author = db::actors::by_id(conn, alert.actor_id)?;
                out.push((item, alert, author));
            }
            Ok((out, db::curation::members(conn)?))
        })
        .await?;
    let handle = |a: &db::actors::ActorRow| format!("@{}@{}", a.username, a.domain);
    let shown: Vec<QueueItem> = items
        .into_iter()
        .filter(|(_, alert, author)| {
            (q.region.is_empty() || alert.region.as_deref() == Some(q.region.as_str()))
                && (q.country.is_empty() || alert.country_list().contains(&q.country))
                && (q.member.is_empty() || handle(author) == q.member)
                && (q.language.is_empty()
                    || alert.language.split('-').next() == q.language.split('-').next())
        })
        .map(|(item, alert, author)| QueueItem {
            id: item.id,
            title: alert.title.clone(),
            language: alert.language.clone(),
            member: handle(&author),
            countries: alert.country_list().join(", "),
            feeds: item.matched().join(", "),
            received: v.lang.date_time(item.created_at),
            edited: item.edited_after_approval,
        })
        .collect();
    let t = taxonomy(&data)?;
    let states = [
        db::curation::PENDING,
        db::curation::APPROVED,
        db::curation::REJECTED,
        db::curation::CURATED,
        "all",
    ];
    let page = QueuePage {
        title: v.lang.t("nav-queue"),
        notice: (!q.done.is_empty()).then(|| v.lang.t(&format!("done-{}", q.done))),
        states: choices(
            states
                .iter()
                .map(|s| (s.to_string(), v.lang.t(&format!("review-{s}"))))
                .collect(),
            std::slice::from_ref(&state),
        ),
        tc: taxonomy_choices(
            &t,
            std::slice::from_ref(&q.region),
            std::slice::from_ref(&q.country),
            &[],
        ),
        members: choices(
            member_rows
                .iter()
                .map(|(_, a)| (handle(a), handle(a)))
                .collect(),
            std::slice::from_ref(&q.member),
        ),
        language: q.language.clone(),
        items: shown,
        v: &v,
    };
    Ok(render(&v, 200, &page))
}

/// A line describing a feed's rules.
pub fn rules_text(v: &Viewer, rules: &FeedRules) -> String {
    let parts: Vec<String> = [
        ("region", &rules.regions),
        ("countries", &rules.countries),
        ("categories", &rules.categories),
        ("alert-language", &rules.languages),
        ("urgency", &rules.urgencies),
        ("members", &rules.members),
    ]
    .iter()
    .filter(|(_, values)| !values.is_empty())
    .map(|(key, values)| format!("{}: {}", v.lang.t(key), values.join(", ")))
    .collect();
    if parts.is_empty() {
        v.lang.t("feed-takes-all")
    } else {
        parts.join(" · ")
    }
}

/// A run of words that was added, removed or kept.
#[derive(Debug, PartialEq, Eq)]
pub struct DiffPart {
    /// Only in the new text.
    pub added: bool,
    /// Only in the old text.
    pub removed: bool,
    /// The words, with their spacing.
    pub text: String,
}

/// Word-level changes from `old` to `new`.
pub fn word_diff(old: &str, new: &str) -> Vec<DiffPart> {
    let diff = similar::TextDiff::from_words(old, new);
    let mut out: Vec<DiffPart> = vec![];
    for change in diff.iter_all_changes() {
        let added = change.tag() == similar::ChangeTag::Insert;
        let removed = change.tag() == similar::ChangeTag::Delete;
        match out.last_mut() {
            Some(last) if last.added == added && last.removed == removed => {
                last.text.push_str(change.value())
            }
            _ => out.push(DiffPart {
                added,
                removed,
                text: change.value().to_string(),
            }),
        }
    }
    out
}

#[derive(Template)]
#[template(path = "editor_review.html")]
struct ReviewPage<'a> {
    v: &'a Viewer,
    title: String,
    error: Option<String>,
    id: i64,
    state: String,
    pending: bool,
    reason: Option<String>,
    decided_by: Option<String>,
    alert_title: String,
    href: String,
    member: String,
    countries: String,
    categories: String,
    language: String,
    content_html: String,
    /// The member's text as Markdown, to edit when curating.
    markdown: String,
    /// The member's other language versions: (language, title, Markdown).
    translations: Vec<(String, String, String)>,
    feeds: Vec<(String, String)>,
    feed_choices: Vec<Choice>,
    diff: Option<Vec<DiffPart>>,
}

async fn review_page(
    v: &Viewer,
    data: &Data,
    item: ReviewRow,
    status: u16,
    error: Option<String>,
) -> Result<HttpResponse, Error> {
    let alert_id = item.alert_id;
    let (alert, author, feeds, versions) = data
        .db
        .run(move |conn| {
            let alert = db::alerts::by_id(conn, alert_id)?;
            let author = db::actors::by_id(conn, alert.actor_id)?;
            let versions = db::alerts::versions(conn, alert.id)?;
            Ok((alert, author, db::curation::all_feeds(conn)?, versions))
        })
        .await?;
    let matched = item.matched();
    let diff = item
        .approved_text
        .as_ref()
        .filter(|_| item.edited_after_approval)
        .map(|old| word_diff(old, &curation::review_text(&alert)));
    let page = ReviewPage {
        title: v.lang.t("review-item"),
        error,
        id: item.id,
        state: v.lang.t(&format!("review-{}", item.state)),
        pending: item.state == db::curation::PENDING,
        reason: item.reason.clone(),
        decided_by: item.decided_by.clone(),
        alert_title: alert.title.clone(),
        href: alert.url.clone().unwrap_or(alert.ap_id.clone()),
        member: format!("@{}@{}", author.username, author.domain),
        countries: alert.country_list().join(", "),
        categories: alert.category_list().join(", "),
        language: alert.language.clone(),
        content_html: crate::alerts::markdown::sanitize(&alert.content_html),
        markdown: crate::alerts::markdown::from_html(&alert.content_html, Some(&alert.title)),
        translations: versions
            .iter()
            .filter(|o| o.id != alert.id && o.status != crate::alerts::STATUS_DELETED)
            .map(|o| {
                (
                    o.language.clone(),
                    o.title.clone(),
                    crate::alerts::markdown::from_html(&o.content_html, Some(&o.title)),
                )
            })
            .collect(),
        feeds: feeds
            .iter()
            .filter(|(_, a)| matched.contains(&a.username))
            .map(|(f, a)| (a.username.clone(), rules_text(v, &FeedRules::of(f))))
            .collect(),
        feed_choices: choices(
            feeds
                .iter()
                .filter(|(f, _)| f.retired_at.is_none())
                .map(|(_, a)| (a.username.clone(), a.username.clone()))
                .collect(),
            &matched,
        ),
        diff,
        v,
    };
    Ok(render(v, status, &page))
}

async fn review(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let id = path.into_inner();
    let item = data
        .db
        .run(move |conn| db::curation::review(conn, id))
        .await?;
    review_page(&v, &data, item, 200, None).await
}

async fn decide(
    request: HttpRequest,
    path: aw::Path<(i64, String)>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let (id, decision) = path.into_inner();
    let editor = v.user.as_ref().map(|u| u.name.clone()).unwrap_or_default();
    let feeds = Some(form.all("feeds"));
    let result = match decision.as_str() {
        "approve" => curation::approve(&data, id, feeds, &editor)
            .await
            .map(|_| ()),
        "reject" => curation::reject(&data, id, &form.text("reason"), &editor)
            .await
            .map(|_| ()),
        "curate" => curation::curate(
            &data,
            id,
            CurateInput {
                title: form.get("title"),
                body: form.get("body"),
                feeds,
                translations: curated_translations(&form),
            },
            &editor,
        )
        .await
        .map(|_| ()),
        _ => return Err(Error::NotFound),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/editor/queue?done={decision}"))),
        Err(Error::Validation { field, message }) => {
            let item = data
                .db
                .run(move |conn| db::curation::review(conn, id))
                .await?;
            review_page(&v, &data, item, 422, Some(format!("{field}: {message}"))).await
        }
        Err(e) => Err(e),
    }
}

/// The language versions of a curate form (`tr_language_N`, `tr_title_N`,
/// `tr_body_N`); one whose title and text were both emptied is left out.
fn curated_translations(form: &Form) -> Vec<CuratedTranslation> {
    (0..)
        .map_while(|i| {
            let language = form.get(&format!("tr_language_{i}"))?;
            Some(CuratedTranslation {
                language,
                title: form.text(&format!("tr_title_{i}")),
                body: form.text(&format!("tr_body_{i}")),
            })
        })
        .filter(|t| !(t.title.is_empty() && t.body.is_empty()))
        .collect()
}

#[derive(Template)]
#[template(path = "editor_directory.html")]
struct DirectoryPage<'a> {
    v: &'a Viewer,
    title: String,
    error: Option<String>,
    feeds: Vec<(String, String, String)>,
    members: Vec<MemberItem>,
    /// The member whose region and countries the form shows, if any.
    editing: String,
    tc: TaxonomyChoices,
}

async fn directory_page(
    v: &Viewer,
    data: &Data,
    status: u16,
    error: Option<String>,
    editing: Option<String>,
) -> Result<HttpResponse, Error> {
    let (feeds, rows) = data
        .db
        .run(|conn| Ok((db::curation::all_feeds(conn)?, db::curation::members(conn)?)))
        .await?;
    let t = taxonomy(data)?;
    let items = member_items(&rows);
    let edited = editing
        .as_ref()
        .and_then(|h| rows.iter().zip(&items).find(|(_, m)| &m.handle == h));
    let (region, countries) = edited
        .map(|((m, _), _)| {
            (
                m.region.iter().cloned().collect::<Vec<_>>(),
                db::alerts::split_list(&m.countries),
            )
        })
        .unwrap_or_default();
    let page = DirectoryPage {
        title: v.lang.t("nav-directory"),
        error,
        feeds: feeds
            .iter()
            .filter(|(f, _)| f.retired_at.is_none())
            .map(|(f, a)| {
                (
                    a.username.clone(),
                    format!("/@{}", a.username),
                    rules_text(v, &FeedRules::of(f)),
                )
            })
            .collect(),
        editing: edited.map(|(_, m)| m.handle.clone()).unwrap_or_default(),
        members: items,
        tc: taxonomy_choices(&t, &region, &countries, &[]),
        v,
    };
    Ok(render(v, status, &page))
}

async fn directory(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let editing = url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(k, _)| k == "edit")
        .map(|(_, h)| h.into_owned());
    directory_page(&v, &data, 200, None, editing).await
}

async fn member_action(
    request: HttpRequest,
    path: aw::Path<String>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let handle = form.text("handle");
    let result = match path.into_inner().as_str() {
        "add" => {
            let us = local_actor(&data, &data.config.actor.username).await?;
            members::add(
                &data,
                &us,
                &handle,
                form.get("region"),
                form.all("countries"),
            )
            .await
            .map(|_| ())
        }
        "remove" => members::remove(&data, &handle).await.map(|_| ()),
        _ => return Err(Error::NotFound),
    };
    match result {
        Ok(()) => Ok(see_other("/editor/directory")),
        Err(e) => directory_page(&v, &data, 422, Some(format!("{handle}: {e}")), None).await,
    }
}

#[derive(Template)]
#[template(path = "editor_hosts.html")]
struct HostsPage<'a> {
    v: &'a Viewer,
    title: String,
    summary: String,
    hosts: Vec<(String, String, String, String, String)>,
}

async fn hosts(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let (rows, stats) = data
        .db
        .run(|conn| {
            Ok((
                db::deliveries::all_hosts(conn)?,
                db::deliveries::queue_stats(conn)?,
            ))
        })
        .await?;
    let now = db::now_ms();
    let when = |ms: Option<i64>| ms.map(|m| v.lang.date_time(m)).unwrap_or_default();
    let page = HostsPage {
        title: v.lang.t("nav-hosts"),
        summary: v.lang.t_args(
            "queue-summary",
            &[
                ("pending", v.lang.number(stats.pending)),
                ("due", v.lang.number(stats.due)),
            ],
        ),
        hosts: rows
            .iter()
            .map(|h| {
                let health = if h.down_until.is_some_and(|d| d > now) {
                    "host-down"
                } else if h.consecutive_failures > 0 {
                    "host-failing"
                } else {
                    "host-ok"
                };
                (
                    h.host.clone(),
                    v.lang.t(health),
                    v.lang.number(h.consecutive_failures.into()),
                    when(h.last_success_at),
                    when(h.last_failure_at),
                )
            })
            .collect(),
        v: &v,
    };
    Ok(render(&v, 200, &page))
}
