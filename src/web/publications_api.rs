//! Publication issues in the JSON API: build a Digest draft, preview it,
//! reorder, trim and publish it. Every route needs an editor's bearer token.

use crate::{
    db::{
        self,
        publications::{self as rows, EditError, IssueRow, ItemRow},
    },
    error::Error,
    publications,
    state::Data,
    web::api::authenticate,
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use publications::communique::{self, WrittenItem};
use serde::{Deserialize, Serialize};

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.service(
        aw::scope("/api/v1/issues")
            .route("", aw::get().to(list))
            .route("/digest", aw::post().to(build))
            .route("/advocacy", aw::post().to(build_advocacy))
            .route("/communique", aw::post().to(write_communique))
            .route("/{id}", aw::get().to(preview))
            .route("/{id}/reorder", aw::post().to(reorder))
            .route("/{id}/trim", aw::post().to(trim))
            .route("/{id}/publish", aw::post().to(publish))
            .route("/{id}/items", aw::post().to(add_item))
            .route("/{id}/items/{item}", aw::put().to(edit_item)),
    );
}

/// An item of an issue as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    /// Item id (used by reorder and trim).
    pub id: i64,
    /// Section: a region for the Digest.
    pub section: String,
    /// The story (case) the item belongs to.
    pub story: Option<String>,
    /// The alert it was taken from.
    pub alert_id: Option<i64>,
    /// Heading.
    pub heading: String,
    /// Body, sanitised HTML.
    pub body_html: String,
    /// Link to the full text.
    pub url: Option<String>,
    /// The Markdown the body was written in (Communiqué items).
    pub body_markdown: Option<String>,
}

/// An issue as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssueView {
    /// Issue id.
    pub id: i64,
    /// `digest` or `communique`.
    pub publication: String,
    /// Language code.
    pub language: String,
    /// Title.
    pub title: String,
    /// `draft` or `published`.
    pub state: String,
    /// Start of the period, ms since the epoch.
    pub period_start: i64,
    /// End of the period (exclusive), ms since the epoch.
    pub period_end: i64,
    /// ActivityPub id, once published.
    pub ap_id: Option<String>,
    /// When it was published, ms since the epoch.
    pub published_at: Option<i64>,
    /// Items in order (sections in order, items within their section).
    pub items: Vec<ItemView>,
}

fn issue_view(issue: IssueRow, items: Vec<ItemRow>) -> IssueView {
    IssueView {
        id: issue.id,
        publication: issue.publication,
        language: issue.language,
        title: issue.title,
        state: issue.state,
        period_start: issue.period_start,
        period_end: issue.period_end,
        ap_id: issue.ap_id,
        published_at: issue.published_at,
        items: items
            .into_iter()
            .map(|i| ItemView {
                id: i.id,
                section: i.section,
                story: i.story,
                alert_id: i.alert_id,
                heading: i.heading,
                body_html: i.body_html,
                url: i.url,
                body_markdown: i.body_markdown,
            })
            .collect(),
    }
}

async fn load(data: &Data, id: i64) -> Result<IssueView, Error> {
    let (issue, items) = data
        .db
        .run(move |conn| Ok((rows::issue(conn, id)?, rows::items(conn, id)?)))
        .await?;
    Ok(issue_view(issue, items))
}

impl From<EditError> for Error {
    fn from(e: EditError) -> Self {
        match e {
            EditError::Db(e) => Error::Db(e),
            EditError::BadOrder => Error::Validation {
                field: "order".into(),
                message: e.to_string(),
            },
            EditError::Published(_) => Error::Validation {
                field: "state".into(),
                message: e.to_string(),
            },
            EditError::NotWritten(_) => Error::Validation {
                field: "publication".into(),
                message: e.to_string(),
            },
            EditError::NoItem(_) => Error::NotFound,
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Validation {
        field: "body".into(),
        message: e.to_string(),
    })
}

/// Query of `GET /api/v1/issues`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `digest` (default) or `communique`.
    pub publication: Option<String>,
}

/// `GET /api/v1/issues?publication=digest`
#[utoipa::path(get, path = "/api/v1/issues", security(("bearer" = [])),
    params(("publication" = Option<String>, Query, description = "digest (default) or communique")),
    responses((status = 200, description = "`{\"items\": [IssueView]}`, latest first, without their items"),
        (status = 401, body = crate::web::api::ErrorBody)))]
pub async fn list(
    request: HttpRequest,
    query: aw::Query<ListQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let publication = query
        .into_inner()
        .publication
        .unwrap_or_else(|| publications::DIGEST.to_string());
    let issues = data
        .db
        .run(move |conn| rows::issues(conn, &publication, 50))
        .await?;
    let out: Vec<IssueView> = issues
        .into_iter()
        .map(|i| issue_view(i, Vec::new()))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": out })))
}

/// Body of `POST /api/v1/issues/digest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildInput {
    /// Language code, e.g. `en`.
    pub language: String,
    /// Length of the period in days, ending now (default 7).
    #[serde(default)]
    pub days: Option<i64>,
}

/// `POST /api/v1/issues/digest`: builds a draft Digest.
#[utoipa::path(post, path = "/api/v1/issues/digest", security(("bearer" = [])),
    request_body = BuildInput,
    responses((status = 201, body = IssueView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn build(
    request: HttpRequest,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    build_with(request, bytes, data, publications::digest::build).await
}

/// `POST /api/v1/issues/advocacy`: builds a draft Advocacy Action News
/// from the campaigns' timelines of the period.
#[utoipa::path(post, path = "/api/v1/issues/advocacy", security(("bearer" = [])),
    request_body = BuildInput,
    responses((status = 201, body = IssueView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn build_advocacy(
    request: HttpRequest,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    build_with(request, bytes, data, publications::advocacy::build).await
}

/// A function that assembles a draft issue for a language and period.
type Builder = fn(&mut db::DbConn, &str, i64, i64) -> Result<i64, db::DbError>;

async fn build_with(
    request: HttpRequest,
    bytes: aw::Bytes,
    data: Data,
    builder: Builder,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let input: BuildInput = parse(&bytes)?;
    if !crate::alerts::input::is_language_tag(&input.language) {
        return Err(Error::Validation {
            field: "language".into(),
            message: format!("{} is not a language tag", input.language),
        });
    }
    let days = input.days.unwrap_or(7);
    if !(1..=366).contains(&days) {
        return Err(Error::Validation {
            field: "days".into(),
            message: "must be between 1 and 366".into(),
        });
    }
    let end = db::now_ms();
    let start = end - days * 86_400_000;
    let language = input.language;
    let id = data
        .db
        .run(move |conn| builder(conn, &language, start, end))
        .await?;
    Ok(HttpResponse::Created().json(load(&data, id).await?))
}

/// An item of a Communiqué as an editor writes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommuniqueItemInput {
    /// `regional-news`, `conferences-workshops`, `awards` or `fellowships`.
    pub section: String,
    /// Heading.
    pub heading: String,
    /// Body in Markdown.
    #[serde(default)]
    pub body: String,
    /// Link to more.
    #[serde(default)]
    pub url: Option<String>,
}

fn written(i: CommuniqueItemInput) -> WrittenItem {
    WrittenItem {
        section: i.section,
        heading: i.heading,
        body_markdown: i.body,
        url: i.url,
    }
}

/// Body of `POST /api/v1/issues/communique`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommuniqueInput {
    /// `en`, `fr`, `es`, `ar` or `ru`.
    pub language: String,
    /// Title of the issue.
    pub title: String,
    /// Items; placed in section order, the given order kept within a section.
    pub items: Vec<CommuniqueItemInput>,
}

/// `POST /api/v1/issues/communique`: writes a draft Communiqué.
#[utoipa::path(post, path = "/api/v1/issues/communique", security(("bearer" = [])),
    request_body = CommuniqueInput,
    responses((status = 201, body = IssueView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn write_communique(
    request: HttpRequest,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    use publications::communique;
    authenticate(&request, &data).await?;
    let input: CommuniqueInput = parse(&bytes)?;
    let items: Vec<WrittenItem> = input.items.into_iter().map(written).collect();
    communique::check(&input.language, &items)
        .map_err(|(field, message)| Error::Validation { field, message })?;
    if input.title.trim().is_empty() {
        return Err(Error::Validation {
            field: "title".into(),
            message: "must not be empty".into(),
        });
    }
    let (language, title) = (input.language, input.title.trim().to_string());
    let id = data
        .db
        .run(move |conn| communique::create(conn, &language, &title, db::now_ms(), &items))
        .await?;
    Ok(HttpResponse::Created().json(load(&data, id).await?))
}

/// `GET /api/v1/issues/{id}`: the issue with its items (the preview).
#[utoipa::path(get, path = "/api/v1/issues/{id}", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = IssueView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody)))]
pub async fn preview(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    Ok(HttpResponse::Ok().json(load(&data, path.into_inner()).await?))
}

/// Body of a reorder.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderInput {
    /// Every item id of the issue once, in the new order.
    pub order: Vec<i64>,
}

/// `POST /api/v1/issues/{id}/reorder`
#[utoipa::path(post, path = "/api/v1/issues/{id}/reorder", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ReorderInput,
    responses((status = 200, body = IssueView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn reorder(
    request: HttpRequest,
    path: aw::Path<i64>,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    edit(
        request,
        path,
        bytes,
        data,
        |conn, id, input: ReorderInput| rows::reorder(conn, id, &input.order),
    )
    .await
}

/// Body of a trim.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrimInput {
    /// Item ids to remove.
    pub remove: Vec<i64>,
}

/// `POST /api/v1/issues/{id}/trim`
#[utoipa::path(post, path = "/api/v1/issues/{id}/trim", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = TrimInput,
    responses((status = 200, body = IssueView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn trim(
    request: HttpRequest,
    path: aw::Path<i64>,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    edit(request, path, bytes, data, |conn, id, input: TrimInput| {
        rows::trim(conn, id, &input.remove).map(|_| ())
    })
    .await
}

/// Runs one editor action with a JSON body on a draft, answering with the
/// issue as it is afterwards.
async fn edit<T, F>(
    request: HttpRequest,
    path: aw::Path<i64>,
    bytes: aw::Bytes,
    data: Data,
    action: F,
) -> Result<HttpResponse, Error>
where
    T: serde::de::DeserializeOwned + Send + 'static,
    F: FnOnce(&mut db::DbConn, i64, T) -> Result<(), EditError> + Send + 'static,
{
    authenticate(&request, &data).await?;
    let input: T = parse(&bytes)?;
    let id = path.into_inner();
    data.db
        .run(move |conn| Ok(action(conn, id, input)))
        .await??;
    Ok(HttpResponse::Ok().json(load(&data, id).await?))
}

/// `POST /api/v1/issues/{id}/publish`
#[utoipa::path(post, path = "/api/v1/issues/{id}/publish", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = IssueView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn publish(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let id = path.into_inner();
    let base = data.config.base_url();
    let taxonomy = crate::web::pages::taxonomy(&data)?;
    data.db
        .run(move |conn| Ok(publications::publish(conn, &base, &taxonomy, id)))
        .await??;
    Ok(HttpResponse::Ok().json(load(&data, id).await?))
}

/// A checked item of a request body, or the field it fails on.
fn checked_item(bytes: &[u8]) -> Result<WrittenItem, Error> {
    let item = written(parse::<CommuniqueItemInput>(bytes)?);
    communique::check_item(&item)
        .map_err(|(field, message)| Error::Validation { field, message })?;
    Ok(item)
}

/// `POST /api/v1/issues/{id}/items`: adds an item to a draft Communiqué,
/// at the end of its section.
#[utoipa::path(post, path = "/api/v1/issues/{id}/items", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = CommuniqueItemInput,
    responses((status = 201, body = IssueView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody),
        (status = 422, description = "invalid item, a published issue, or a Digest", body = crate::web::api::ErrorBody)))]
pub async fn add_item(
    request: HttpRequest,
    path: aw::Path<i64>,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let item = checked_item(&bytes)?;
    let id = path.into_inner();
    data.db
        .run(move |conn| Ok(communique::add_item(conn, id, &item)))
        .await??;
    Ok(HttpResponse::Created().json(load(&data, id).await?))
}

/// `PUT /api/v1/issues/{id}/items/{item}`: replaces an item of a draft
/// Communiqué (section, heading, Markdown body, link); refused once the
/// issue is published.
#[utoipa::path(put, path = "/api/v1/issues/{id}/items/{item}", security(("bearer" = [])),
    params(("id" = i64, Path), ("item" = i64, Path)),
    request_body = CommuniqueItemInput,
    responses((status = 200, body = IssueView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody),
        (status = 422, description = "invalid item, a published issue, or a Digest", body = crate::web::api::ErrorBody)))]
pub async fn edit_item(
    request: HttpRequest,
    path: aw::Path<(i64, i64)>,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let item = checked_item(&bytes)?;
    let (id, item_id) = path.into_inner();
    data.db
        .run(move |conn| Ok(communique::edit_item(conn, id, item_id, &item)))
        .await??;
    Ok(HttpResponse::Ok().json(load(&data, id).await?))
}
