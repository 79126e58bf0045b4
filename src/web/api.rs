//! The JSON API under `/api/v1`, authenticated with bearer tokens from
//! `tocsin token create`. Errors are JSON: `{"error": …, "field": …}`.

use crate::{
    alerts::{
        input::{AlertInput, AlertPatch, AttachmentInput},
        publish::{self, TranslationInput},
    },
    db::{
        self,
        alerts::{AlertFilter, AlertRow},
    },
    error::Error,
    federation::{activities::follow::local_actor, objects::actor::DbActor},
    state::Data,
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Registers the API routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/api/openapi.json", aw::get().to(openapi_json));
    cfg.service(
        aw::scope("/api/v1")
            .route("/alerts", aw::post().to(create))
            .route("/alerts", aw::get().to(list))
            .route("/alerts/{id}", aw::get().to(get))
            .route("/alerts/{id}", aw::patch().to(patch))
            .route("/alerts/{id}", aw::delete().to(remove))
            .route("/alerts/{id}/translations", aw::post().to(translate))
            .route("/alerts/{id}/translations", aw::get().to(translations))
            .route("/alerts/{id}/pin", aw::post().to(pin))
            .route("/alerts/{id}/unpin", aw::post().to(unpin)),
    );
}

/// The id of the token in `Authorization: Bearer …`, or 401.
pub async fn authenticate(request: &HttpRequest, data: &Data) -> Result<i64, Error> {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .ok_or_else(|| {
            Error::Unauthorized("missing bearer token (Authorization: Bearer …)".into())
        })?;
    data.db
        .run(move |conn| db::tokens::authenticate(conn, &token))
        .await?
        .ok_or_else(|| Error::Unauthorized("invalid or revoked token".into()))
}

/// Parses a JSON request body into `T` after the depth limit; errors name
/// the offending field (422).
pub fn parse<T: serde::de::DeserializeOwned>(data: &Data, body: &[u8]) -> Result<T, Error> {
    crate::limits::check_json_depth(body, data.config.limits.max_json_depth)?;
    serde_json::from_slice(body).map_err(|e| {
        let field = e.to_string();
        let field = field
            .split('`')
            .nth(1)
            .filter(|_| e.is_data())
            .unwrap_or("body")
            .to_string();
        Error::Validation {
            field,
            message: e.to_string(),
        }
    })
}

/// Another language version of an alert.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionRef {
    /// Row id.
    pub id: i64,
    /// BCP 47 tag.
    pub language: String,
    /// ActivityPub id.
    pub ap_id: String,
}

/// An alert as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    /// Row id, used in API paths.
    pub id: i64,
    /// ActivityPub id (also the HTML page).
    pub ap_id: String,
    /// HTML page.
    pub url: Option<String>,
    /// Written on this instance.
    pub local: bool,
    /// BCP 47 tag.
    pub language: String,
    /// Headline.
    pub title: String,
    /// Markdown source (local alerts).
    pub body: Option<String>,
    /// Sanitised HTML.
    pub content_html: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// Region key derived from the first country.
    pub region: Option<String>,
    /// Category keys.
    pub categories: Vec<String>,
    /// `action`, `update`, `statement` or `report`.
    pub urgency: String,
    /// `YYYY-MM-DD`.
    pub incident_date: Option<String>,
    /// Earlier alert on the same case.
    pub case: Option<String>,
    /// Content warning.
    pub content_warning: Option<String>,
    /// `draft` or `published`.
    pub status: String,
    /// In the featured collection.
    pub pinned: bool,
    /// Row id of the original, for a translation.
    pub translation_of: Option<i64>,
    /// The other language versions.
    pub translations: Vec<VersionRef>,
    /// Links and files.
    pub attachments: Vec<AttachmentInput>,
    /// RFC 3339.
    pub published_at: Option<String>,
    /// RFC 3339.
    pub updated_at: Option<String>,
}

/// A page of alerts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    /// Newest first.
    pub alerts: Vec<AlertView>,
    /// This page's number.
    pub page: i64,
    /// URL of the next page, if any.
    pub next: Option<String>,
}

/// Every language version of an alert.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TranslationList {
    /// Original first.
    pub translations: Vec<AlertView>,
}

/// An error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The offending field, for 422.
    pub field: Option<String>,
}

fn time(ms: Option<i64>) -> Option<String> {
    ms.and_then(|m| Utc.timestamp_millis_opt(m).single())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The API representation of an alert.
pub async fn alert_json(data: &Data, row: &AlertRow) -> Result<AlertView, Error> {
    let (id, group) = (row.id, row.group_id());
    let (attachments, versions) = data
        .db
        .run(move |conn| {
            Ok((
                db::alerts::attachments(conn, id)?,
                db::alerts::versions(conn, group)?,
            ))
        })
        .await?;
    Ok(AlertView {
        id: row.id,
        ap_id: row.ap_id.clone(),
        url: row.url.clone(),
        local: row.local,
        language: row.language.clone(),
        title: row.title.clone(),
        body: row.source_markdown.clone(),
        content_html: row.content_html.clone(),
        countries: row.country_list(),
        region: row.region.clone(),
        categories: row.category_list(),
        urgency: row.urgency.clone(),
        incident_date: row.incident_date.clone(),
        case: row.case_ap_id.clone(),
        content_warning: row.summary.clone(),
        status: row.status.clone(),
        pinned: row.pinned,
        translation_of: row.translation_of,
        translations: versions
            .iter()
            .filter(|v| v.id != row.id && v.status != crate::alerts::STATUS_DELETED)
            .map(|v| VersionRef {
                id: v.id,
                language: v.language.clone(),
                ap_id: v.ap_id.clone(),
            })
            .collect(),
        attachments: attachments
            .into_iter()
            .map(|a| AttachmentInput {
                url: a.url,
                media_type: a.media_type,
                description: a.description,
            })
            .collect(),
        published_at: time(row.published_at),
        updated_at: time(Some(row.updated_at)),
    })
}

/// A local alert that `token_id` may change: 404 if unknown, 403 if
/// another token made it.
async fn own_alert(data: &Data, id: i64, token_id: i64) -> Result<AlertRow, Error> {
    let row = load(data, id).await?;
    if !row.local {
        return Err(Error::Forbidden(
            "alerts of other servers cannot be changed here".into(),
        ));
    }
    if row.token_id.is_some() && row.token_id != Some(token_id) {
        return Err(Error::Forbidden(
            "this alert was made with another token".into(),
        ));
    }
    Ok(row)
}

/// The local actor who wrote `row`.
async fn author(data: &Data, row: &AlertRow) -> Result<DbActor, Error> {
    let actor_id = row.actor_id;
    DbActor::new(
        data.db
            .run(move |conn| db::actors::by_id(conn, actor_id))
            .await?,
    )
}

async fn load(data: &Data, id: i64) -> Result<AlertRow, Error> {
    let row = data.db.run(move |conn| db::alerts::by_id(conn, id)).await?;
    if row.status == crate::alerts::STATUS_DELETED {
        return Err(Error::NotFound);
    }
    Ok(row)
}

#[utoipa::path(post, path = "/api/v1/alerts", request_body = AlertInput, security(("bearer" = [])),
    responses((status = 201, description = "Created and, unless a draft, federated", body = AlertView),
        (status = 401, body = ErrorBody), (status = 422, description = "Invalid field", body = ErrorBody)))]
async fn create(request: HttpRequest, body: aw::Bytes, data: Data) -> Result<HttpResponse, Error> {
    let token = authenticate(&request, &data).await?;
    let input: AlertInput = parse(&data, &body)?;
    let actor = local_actor(&data, &data.config.actor.username).await?;
    let row = publish::create_alert(&data, &actor, input, Some(token)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/alerts/{}", row.id)))
        .json(alert_json(&data, &row).await?))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    country: Option<String>,
    region: Option<String>,
    category: Option<String>,
    language: Option<String>,
    since: Option<String>,
    until: Option<String>,
    text: Option<String>,
    local: Option<bool>,
    page: Option<i64>,
}

fn date_ms(field: &str, value: &Option<String>) -> Result<Option<i64>, Error> {
    let Some(v) = value.as_deref().filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.timestamp_millis()));
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Some(d.and_utc().timestamp_millis()))
        .ok_or_else(|| Error::Validation {
            field: field.into(),
            message: "must be YYYY-MM-DD or RFC 3339".into(),
        })
}

#[utoipa::path(get, path = "/api/v1/alerts", security(("bearer" = [])),
    params(("country" = Option<String>, Query, description = "ISO 3166-1 alpha-2"),
        ("region" = Option<String>, Query), ("category" = Option<String>, Query),
        ("language" = Option<String>, Query), ("since" = Option<String>, Query, description = "YYYY-MM-DD or RFC 3339"),
        ("until" = Option<String>, Query), ("text" = Option<String>, Query, description = "full-text search"),
        ("local" = Option<bool>, Query), ("page" = Option<i64>, Query)),
    responses((status = 200, body = AlertPage), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    request: HttpRequest,
    query: aw::Query<ListQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let q = query.into_inner();
    let page = q.page.unwrap_or(1);
    if page < 1 {
        return Err(Error::Validation {
            field: "page".into(),
            message: "must be 1 or more".into(),
        });
    }
    let filter = AlertFilter {
        country: q.country.clone(),
        region: q.region.clone(),
        category: q.category.clone(),
        language: q.language.clone(),
        since: date_ms("since", &q.since)?,
        until: date_ms("until", &q.until)?,
        text: q.text.clone().filter(|t| !t.trim().is_empty()),
        local: q.local,
        hidden_domains: data.policies.silenced().await?,
        ..Default::default()
    };
    let size = data.config.alerts.page_size;
    let rows = data
        .db
        .run(move |conn| db::alerts::list(conn, &filter, size + 1, db::page_offset(page, size)))
        .await?;
    let more = rows.len() as i64 > size;
    let mut items = Vec::new();
    for row in rows.iter().take(size as usize) {
        items.push(alert_json(&data, row).await?);
    }
    let next = more.then(|| {
        let mut url = url::Url::parse(&format!(
            "{}{}",
            crate::federation::Urls::new(&data.config).base(),
            request.uri()
        ))
        .expect("request URI");
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(pairs)
            .append_pair("page", &(page + 1).to_string());
        url.to_string()
    });
    Ok(HttpResponse::Ok().json(AlertPage {
        alerts: items,
        page,
        next,
    }))
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = AlertView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get(request: HttpRequest, path: aw::Path<i64>, data: Data) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let row = load(&data, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(alert_json(&data, &row).await?))
}

#[utoipa::path(patch, path = "/api/v1/alerts/{id}", request_body = AlertPatch, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "Edited; followers get an Update", body = AlertView), (status = 401, body = ErrorBody),
        (status = 403, description = "Made with another token", body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn patch(
    request: HttpRequest,
    path: aw::Path<i64>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let token = authenticate(&request, &data).await?;
    let row = own_alert(&data, path.into_inner(), token).await?;
    let patch: AlertPatch = parse(&data, &body)?;
    let actor = author(&data, &row).await?;
    let row = publish::update_alert(&data, &actor, &row, patch).await?;
    Ok(HttpResponse::Ok().json(alert_json(&data, &row).await?))
}

#[utoipa::path(delete, path = "/api/v1/alerts/{id}", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted; followers get a Delete"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let token = authenticate(&request, &data).await?;
    let row = own_alert(&data, path.into_inner(), token).await?;
    let actor = author(&data, &row).await?;
    publish::delete_alert(&data, &actor, &row).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/translations", request_body = TranslationInput, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 201, body = AlertView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn translate(
    request: HttpRequest,
    path: aw::Path<i64>,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let token = authenticate(&request, &data).await?;
    let row = own_alert(&data, path.into_inner(), token).await?;
    let input: TranslationInput = parse(&data, &body)?;
    let actor = author(&data, &row).await?;
    let t = publish::add_translation(&data, &actor, &row, input).await?;
    Ok(HttpResponse::Created().json(alert_json(&data, &t).await?))
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}/translations", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = TranslationList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn translations(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let row = load(&data, path.into_inner()).await?;
    let group = row.group_id();
    let versions = data
        .db
        .run(move |conn| db::alerts::versions(conn, group))
        .await?;
    let mut items = Vec::new();
    for v in versions
        .iter()
        .filter(|v| v.status != crate::alerts::STATUS_DELETED)
    {
        items.push(alert_json(&data, v).await?);
    }
    Ok(HttpResponse::Ok().json(TranslationList {
        translations: items,
    }))
}

async fn set_pin(
    request: HttpRequest,
    id: i64,
    data: Data,
    pinned: bool,
) -> Result<HttpResponse, Error> {
    let token = authenticate(&request, &data).await?;
    let row = own_alert(&data, id, token).await?;
    publish::set_pinned(&data, &row, pinned).await?;
    let row = load(&data, id).await?;
    Ok(HttpResponse::Ok().json(alert_json(&data, &row).await?))
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/pin", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = AlertView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn pin(request: HttpRequest, path: aw::Path<i64>, data: Data) -> Result<HttpResponse, Error> {
    set_pin(request, path.into_inner(), data, true).await
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/unpin", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = AlertView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn unpin(
    request: HttpRequest,
    path: aw::Path<i64>,
    data: Data,
) -> Result<HttpResponse, Error> {
    set_pin(request, path.into_inner(), data, false).await
}

/// The OpenAPI description of this API, generated from the handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Tocsin API", description = "Alerts about threats to journalists and free expression.",
        license(name = "AGPL-3.0-or-later")),
    paths(create, list, get, patch, remove, translate, translations, pin, unpin, crate::web::media::upload,
        crate::web::review_api::list, crate::web::review_api::approve, crate::web::review_api::reject,
        crate::web::review_api::curate, crate::web::members_api::list, crate::web::members_api::add,
        crate::web::members_api::remove, crate::web::admin_api::list, crate::web::admin_api::set,
        crate::web::admin_api::remove, crate::web::mail_api::report,
        crate::web::publications_api::list,
        crate::web::publications_api::build, crate::web::publications_api::build_advocacy,
        crate::web::publications_api::write_communique,
        crate::web::publications_api::preview,
        crate::web::publications_api::reorder, crate::web::publications_api::trim,
        crate::web::publications_api::publish, crate::web::publications_api::add_item,
        crate::web::publications_api::edit_item,
        crate::web::campaigns_api::list, crate::web::campaigns_api::create,
        crate::web::campaigns_api::get, crate::web::campaigns_api::invite,
        crate::web::campaigns_api::remove, crate::web::campaigns_api::list_statements,
        crate::web::campaigns_api::draft_statement, crate::web::campaigns_api::confirm_statement,
        crate::web::campaigns_api::list_requests, crate::web::campaigns_api::confirm_request,
        crate::web::campaigns_api::list_actions, crate::web::campaigns_api::create_action),
    components(schemas(AlertInput, AlertPatch, AttachmentInput, TranslationInput, AlertView, AlertPage,
        TranslationList, VersionRef, ErrorBody, crate::web::media::Uploaded,
        crate::web::review_api::ReviewView, crate::web::review_api::ApproveInput,
        crate::web::review_api::RejectInput, crate::curation::CurateInput,
        crate::web::members_api::MemberView, crate::web::members_api::MemberInput,
        crate::web::admin_api::DomainPolicyView, crate::web::admin_api::DomainPolicyInput,
        crate::web::admin_api::DomainPolicyResult, crate::web::mail_api::MailReport,
        crate::web::mail_api::MailReportResult,
        crate::web::publications_api::IssueView, crate::web::publications_api::ItemView,
        crate::web::publications_api::BuildInput, crate::web::publications_api::ReorderInput,
        crate::web::publications_api::TrimInput, crate::web::publications_api::CommuniqueInput,
        crate::web::publications_api::CommuniqueItemInput,
        crate::campaigns::CampaignInput, crate::web::campaigns_api::CampaignView,
        crate::web::campaigns_api::ParticipantView, crate::web::campaigns_api::InviteInput,
        crate::campaigns::statements::StatementInput, crate::web::campaigns_api::StatementView,
        crate::web::campaigns_api::SignerView, crate::web::campaigns_api::RequestView,
        crate::web::campaigns_api::ConfirmInput, crate::campaigns::actions::ActionInput,
        crate::web::campaigns_api::ActionView)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/openapi.json`
pub async fn openapi_json() -> HttpResponse {
    use utoipa::OpenApi;
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    /// docs/openapi.json is the generated document; regenerate it with
    /// `TOCSIN_UPDATE_OPENAPI=1 cargo test --lib openapi`.
    #[test]
    fn openapi_document_in_docs_is_current() {
        let generated = ApiDoc::openapi().to_pretty_json().unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
        if std::env::var("TOCSIN_UPDATE_OPENAPI").as_deref() == Ok("1") {
            std::fs::write(path, &generated).unwrap();
        }
        let in_docs = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            in_docs == generated,
            "docs/openapi.json is stale: run TOCSIN_UPDATE_OPENAPI=1 cargo test --lib openapi"
        );
        let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
        for path in [
            "/api/v1/alerts",
            "/api/v1/alerts/{id}",
            "/api/v1/alerts/{id}/translations",
            "/api/v1/media",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} documented");
        }
        assert!(doc["components"]["schemas"]["AlertInput"]["properties"]["countries"].is_object());
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
