//! The review queue and the member directory in the JSON API.

use crate::{
    curation,
    db::{self, curation::ReviewRow},
    error::Error,
    state::Data,
    web::api::{alert_json, authenticate, AlertView},
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.service(
        aw::scope("/api/v1/review")
            .route("", aw::get().to(list))
            .route("/{id}/approve", aw::post().to(approve))
            .route("/{id}/reject", aw::post().to(reject))
            .route("/{id}/curate", aw::post().to(curate)),
    );
}

/// A review item as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    /// Item id.
    pub id: i64,
    /// `pending`, `approved`, `rejected` or `curated`.
    pub state: String,
    /// The member's alert.
    pub alert: AlertView,
    /// The member: `@user@host`.
    pub member: String,
    /// Feeds whose rules the alert matches.
    pub feeds: Vec<String>,
    /// Feeds that boosted it.
    pub approved_feeds: Vec<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The member edited the alert after approval.
    pub edited_after_approval: bool,
    /// Row id of this instance's curated version, if curated.
    pub curated_alert_id: Option<i64>,
}

async fn view(data: &Data, item: ReviewRow) -> Result<ReviewView, Error> {
    let alert_id = item.alert_id;
    let (alert, author) = data
        .db
        .run(move |conn| {
            let alert = db::alerts::by_id(conn, alert_id)?;
            let author = db::actors::by_id(conn, alert.actor_id)?;
            Ok((alert, author))
        })
        .await?;
    Ok(ReviewView {
        id: item.id,
        state: item.state.clone(),
        alert: alert_json(data, &alert).await?,
        member: format!("@{}@{}", author.username, author.domain),
        feeds: item.matched(),
        approved_feeds: item.approved(),
        reason: item.reason,
        decided_by: item.decided_by,
        edited_after_approval: item.edited_after_approval,
        curated_alert_id: item.curated_alert_id,
    })
}

/// Query of `GET /api/v1/review`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `pending` (default), `approved`, `rejected`, `curated` or `all`.
    pub state: Option<String>,
}

async fn editor(request: &HttpRequest, data: &Data) -> Result<String, Error> {
    let token = authenticate(request, data).await?;
    Ok(data
        .db
        .run(move |conn| db::tokens::name_of(conn, token))
        .await?)
}

/// `GET /api/v1/review?state=pending`
#[utoipa::path(get, path = "/api/v1/review", security(("bearer" = [])),
    params(("state" = Option<String>, Query, description = "pending (default), approved, rejected, curated or all")),
    responses((status = 200, description = "`{\"items\": [ReviewView]}`"), (status = 401, body = crate::web::api::ErrorBody)))]
pub async fn list(
    request: HttpRequest,
    query: aw::Query<ListQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    editor(&request, &data).await?;
    let state = query
        .into_inner()
        .state
        .unwrap_or_else(|| db::curation::PENDING.to_string());
    let filter = (state != "all").then_some(state);
    let items = data
        .db
        .run(move |conn| db::curation::reviews(conn, filter.as_deref(), 200))
        .await?;
    let mut out = Vec::new();
    for item in items {
        out.push(view(&data, item).await?);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": out })))
}

/// Body of an approval.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveInput {
    /// Feeds that should boost it; default every matched feed.
    #[serde(default)]
    pub feeds: Option<Vec<String>>,
}

/// Body of a rejection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectInput {
    /// Kept with the decision.
    pub reason: String,
}

fn body<T: serde::de::DeserializeOwned + Default>(data: &Data, bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    crate::limits::check_json_depth(bytes, data.config.limits.max_json_depth)?;
    serde_json::from_slice(bytes).map_err(|e| Error::Validation {
        field: "body".into(),
        message: e.to_string(),
    })
}

/// `POST /api/v1/review/{id}/approve`
#[utoipa::path(post, path = "/api/v1/review/{id}/approve", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body(content = ApproveInput, description = "optional"),
    responses((status = 200, body = ReviewView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn approve(
    request: HttpRequest,
    path: aw::Path<i64>,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let who = editor(&request, &data).await?;
    let input: ApproveInput = body(&data, &bytes)?;
    let item = curation::approve(&data, path.into_inner(), input.feeds, &who).await?;
    Ok(HttpResponse::Ok().json(view(&data, item).await?))
}

/// `POST /api/v1/review/{id}/reject`
#[utoipa::path(post, path = "/api/v1/review/{id}/reject", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = RejectInput,
    responses((status = 200, body = ReviewView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn reject(
    request: HttpRequest,
    path: aw::Path<i64>,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let who = editor(&request, &data).await?;
    crate::limits::check_json_depth(&bytes, data.config.limits.max_json_depth)?;
    let input: RejectInput = serde_json::from_slice(&bytes).map_err(|e| Error::Validation {
        field: "reason".into(),
        message: e.to_string(),
    })?;
    let item = curation::reject(&data, path.into_inner(), &input.reason, &who).await?;
    Ok(HttpResponse::Ok().json(view(&data, item).await?))
}

/// `POST /api/v1/review/{id}/curate`
#[utoipa::path(post, path = "/api/v1/review/{id}/curate", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body(content = curation::CurateInput, description = "optional"),
    responses((status = 200, body = ReviewView), (status = 401, body = crate::web::api::ErrorBody),
        (status = 404, body = crate::web::api::ErrorBody), (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn curate(
    request: HttpRequest,
    path: aw::Path<i64>,
    bytes: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let who = editor(&request, &data).await?;
    let input: curation::CurateInput = body(&data, &bytes)?;
    let (item, _) = curation::curate(&data, path.into_inner(), input, &who).await?;
    Ok(HttpResponse::Ok().json(view(&data, item).await?))
}
