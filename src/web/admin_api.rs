//! `/api/v1/admin/domains`: the federation policy in the JSON API, with the
//! same functions as `tocsin domain`.

use crate::{
    error::Error,
    state::Data,
    web::api::{authenticate, parse},
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.service(
        aw::scope("/api/v1/admin/domains")
            .route("", aw::get().to(list))
            .route("", aw::post().to(set))
            .route("/{domain}", aw::delete().to(remove)),
    );
}

/// A domain's policy as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainPolicyView {
    /// The domain; it covers its subdomains.
    pub domain: String,
    /// `block`, `silence` or `allow`.
    pub policy: String,
    /// Why, as given.
    pub reason: Option<String>,
    /// When it was set (RFC 3339).
    pub created_at: String,
}

/// Body of `POST /api/v1/admin/domains`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainPolicyInput {
    /// e.g. `spam.example` (a port only for a single test host).
    pub domain: String,
    /// `block`, `silence` or `allow`.
    pub policy: String,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// With `block`: also delete the domain's actors (with their alerts and
    /// follows) and its queued activities.
    #[serde(default)]
    pub purge: bool,
}

/// What `POST /api/v1/admin/domains` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainPolicyResult {
    /// The stored policy.
    pub policy: DomainPolicyView,
    /// Pending deliveries to the domain that were dropped.
    pub dropped_deliveries: usize,
    /// Remote actors purged (0 without `purge`).
    pub purged_actors: usize,
    /// Queued incoming activities purged.
    pub purged_activities: usize,
}

fn view(row: crate::db::domain_policies::DomainPolicyRow) -> DomainPolicyView {
    use chrono::TimeZone;
    DomainPolicyView {
        created_at: chrono::Utc
            .timestamp_millis_opt(row.created_at)
            .single()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        domain: row.domain,
        policy: row.policy,
        reason: row.reason,
    }
}

/// `GET /api/v1/admin/domains`
#[utoipa::path(get, path = "/api/v1/admin/domains", security(("bearer" = [])),
    responses((status = 200, description = "`{\"domains\": [DomainPolicyView]}`"), (status = 401, body = crate::web::api::ErrorBody)))]
pub async fn list(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let rows: Vec<DomainPolicyView> = data.policies.list().await?.into_iter().map(view).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "domains": rows })))
}

/// `POST /api/v1/admin/domains`
#[utoipa::path(post, path = "/api/v1/admin/domains", security(("bearer" = [])), request_body = DomainPolicyInput,
    responses((status = 200, body = DomainPolicyResult), (status = 401, body = crate::web::api::ErrorBody),
        (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn set(request: HttpRequest, body: aw::Bytes, data: Data) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let input: DomainPolicyInput = parse(&data, &body)?;
    let applied = data
        .policies
        .apply(&input.domain, &input.policy, input.reason, input.purge)
        .await?;
    let purged = applied.purged.unwrap_or_default();
    tracing::info!(domain = %applied.row.domain, policy = %applied.row.policy, purge = input.purge, "domain policy set");
    Ok(HttpResponse::Ok().json(DomainPolicyResult {
        policy: view(applied.row),
        dropped_deliveries: applied.dropped_deliveries,
        purged_actors: purged.actors,
        purged_activities: purged.queued,
    }))
}

/// `DELETE /api/v1/admin/domains/{domain}`
#[utoipa::path(delete, path = "/api/v1/admin/domains/{domain}", security(("bearer" = [])),
    params(("domain" = String, Path)),
    responses((status = 204), (status = 401, body = crate::web::api::ErrorBody), (status = 404, body = crate::web::api::ErrorBody)))]
pub async fn remove(
    request: HttpRequest,
    path: aw::Path<String>,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    if data.policies.remove(&path.into_inner()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(Error::NotFound)
    }
}
