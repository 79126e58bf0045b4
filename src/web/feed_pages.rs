//! Editors manage the curated feeds in the browser: the list (active and
//! retired), a form to create one, the same form to change its rules
//! (regions, countries, categories, languages, urgencies, members, review
//! required), and retiring it. Built on crate::curation::feeds.

use crate::{
    accounts::EDITOR,
    alerts::URGENCIES,
    curation::feeds::{self, FeedSpec},
    db,
    error::Error,
    state::Data,
    web::{
        author_pages::{allowed, error_text},
        editor_pages::rules_text,
        pages::{choices, render, taxonomy, taxonomy_choices, Choice, TaxonomyChoices},
        session::{require, require_post, see_other, Form, Viewer},
    },
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use askama::Template;

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/editor/feeds", aw::get().to(list))
        .route("/editor/feeds/new", aw::get().to(new_form))
        .route("/editor/feeds/new", aw::post().to(create))
        .route("/editor/feeds/{name}", aw::get().to(edit_form))
        .route("/editor/feeds/{name}", aw::post().to(edit))
        .route("/editor/feeds/{name}/retire", aw::post().to(retire));
}

struct FeedItem {
    name: String,
    title: String,
    rules: String,
    review: bool,
    retired: Option<String>,
}

#[derive(Template)]
#[template(path = "editor_feeds.html")]
struct ListPage<'a> {
    v: &'a Viewer,
    title: String,
    notice: Option<String>,
    feeds: Vec<FeedItem>,
}

async fn list(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let rows = data.db.run(db::curation::all_feeds).await?;
    let notice = url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, d)| v.lang.t(&format!("done-feed-{d}")));
    let page = ListPage {
        title: v.lang.t("nav-feeds"),
        notice,
        feeds: rows
            .iter()
            .map(|(f, a)| FeedItem {
                name: a.username.clone(),
                title: a.name.clone().unwrap_or(a.username.clone()),
                rules: rules_text(&v, &crate::curation::FeedRules::of(f)),
                review: f.mode == feeds::REVIEW,
                retired: f.retired_at.map(|t| v.lang.date(t)),
            })
            .collect(),
        v: &v,
    };
    Ok(render(&v, 200, &page))
}

#[derive(Template)]
#[template(path = "editor_feed.html")]
struct FeedPage<'a> {
    v: &'a Viewer,
    title: String,
    error: Option<String>,
    /// None when creating.
    editing: Option<String>,
    action: String,
    f: FeedSpec,
    languages: String,
    tc: TaxonomyChoices,
    urgencies: Vec<Choice>,
    members: Vec<Choice>,
}

async fn feed_page(
    v: &Viewer,
    data: &Data,
    status: u16,
    editing: Option<String>,
    f: FeedSpec,
    error: Option<String>,
) -> Result<HttpResponse, Error> {
    let rows = data.db.run(db::curation::members).await?;
    let t = taxonomy(data)?;
    let handle = |a: &db::actors::ActorRow| format!("{}@{}", a.username, a.domain).to_lowercase();
    let page = FeedPage {
        title: match &editing {
            Some(name) => v.lang.t_args("edit-feed", &[("name", format!("@{name}"))]),
            None => v.lang.t("new-feed"),
        },
        error,
        action: editing
            .as_ref()
            .map_or("/editor/feeds/new".to_string(), |n| {
                format!("/editor/feeds/{n}")
            }),
        editing,
        languages: f.rules.languages.join(", "),
        tc: taxonomy_choices(
            &t,
            &f.rules.regions,
            &f.rules.countries,
            &f.rules.categories,
        ),
        urgencies: choices(
            URGENCIES
                .iter()
                .map(|u| (u.to_string(), v.lang.t(&format!("urgency-{u}"))))
                .collect(),
            &f.rules.urgencies,
        ),
        members: choices(
            rows.iter()
                .map(|(_, a)| (handle(a), format!("@{}", handle(a))))
                .collect(),
            &f.rules.members,
        ),
        f,
        v,
    };
    Ok(render(v, status, &page))
}

/// The feed described by a submitted form.
fn spec_of_form(form: &Form, username: String) -> FeedSpec {
    FeedSpec {
        username,
        display_name: form.text("display_name"),
        summary: form.text("summary"),
        review: form.get("review").is_some(),
        rules: crate::curation::FeedRules {
            regions: form.all("regions"),
            countries: form.all("countries"),
            categories: form.all("categories"),
            languages: form
                .text("languages")
                .split([',', ' '])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            urgencies: form.all("urgencies"),
            members: form.all("members"),
        },
    }
}

async fn new_form(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let spec = FeedSpec {
        review: true,
        ..Default::default()
    };
    feed_page(&v, &data, 200, None, spec, None).await
}

async fn create(request: HttpRequest, body: aw::Bytes, data: Data) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let spec = spec_of_form(&form, form.text("username"));
    match feeds::create(&data, spec.clone()).await {
        Ok(()) => Ok(see_other("/editor/feeds?done=created")),
        Err(e) => match error_text(&e) {
            Some(msg) => feed_page(&v, &data, 422, None, spec, Some(msg)).await,
            None => Err(e),
        },
    }
}

async fn load(data: &Data, name: String) -> Result<FeedSpec, Error> {
    let (row, actor) = data
        .db
        .run(move |conn| db::curation::feed_by_username(conn, &name))
        .await?
        .ok_or(Error::NotFound)?;
    Ok(feeds::spec_of(&row, &actor))
}

async fn edit_form(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let spec = load(&data, path.into_inner()).await?;
    feed_page(&v, &data, 200, Some(spec.username.clone()), spec, None).await
}

async fn edit(
    request: HttpRequest,
    path: aw::Path<String>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let name = load(&data, path.into_inner()).await?.username;
    let spec = spec_of_form(&form, name.clone());
    match feeds::update(&data, spec.clone()).await {
        Ok(()) => Ok(see_other("/editor/feeds?done=saved")),
        Err(e) => match error_text(&e) {
            Some(msg) => feed_page(&v, &data, 422, Some(name), spec, Some(msg)).await,
            None => Err(e),
        },
    }
}

async fn retire(
    request: HttpRequest,
    path: aw::Path<String>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    allowed!(require_post(&request, &data, EDITOR, &Form::parse(&body)).await?);
    feeds::retire(&data, &path.into_inner()).await?;
    Ok(see_other("/editor/feeds?done=retired"))
}
