//! Bounce and complaint reports in the JSON API: the mail provider's hook
//! (or the operator's script) posts the addresses, and they are paused.

use crate::{
    error::Error,
    mail::reports::{pause_all, pause_reason},
    state::Data,
    web::api::authenticate,
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/api/v1/mail/reports", aw::post().to(report));
}

/// Body of `POST /api/v1/mail/reports`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailReport {
    /// `bounce` (a hard bounce) or `complaint` (marked as spam).
    pub kind: String,
    /// The addresses concerned.
    pub addresses: Vec<String>,
}

/// Answer of `POST /api/v1/mail/reports`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MailReportResult {
    /// Subscribers paused (or already paused or unsubscribed).
    pub paused: usize,
    /// Addresses that are not subscribers.
    pub unknown: usize,
}

/// `POST /api/v1/mail/reports`
#[utoipa::path(post, path = "/api/v1/mail/reports", security(("bearer" = [])), request_body = MailReport,
    responses((status = 200, body = MailReportResult), (status = 401, body = crate::web::api::ErrorBody),
        (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn report(
    request: HttpRequest,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    let input: MailReport = serde_json::from_slice(&body).map_err(|e| Error::Validation {
        field: "body".into(),
        message: e.to_string(),
    })?;
    let reason = pause_reason(&input.kind).ok_or_else(|| Error::Validation {
        field: "kind".into(),
        message: "must be bounce or complaint".into(),
    })?;
    let (paused, unknown) = data
        .db
        .run(move |conn| pause_all(conn, &input.addresses, reason))
        .await?;
    Ok(HttpResponse::Ok().json(MailReportResult { paused, unknown }))
}
