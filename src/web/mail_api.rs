//! Bounce and complaint reports in the JSON API: the mail provider's hook
//! (or the operator's script) posts the addresses as JSON, or relays the
//! raw report a mail system sent back (a DSN or an ARF abuse report, as
//! `message/rfc822`), and the subscribers concerned are paused.

use crate::{
    error::Error,
    mail::reports::{self, pause_all, pause_reason},
    state::Data,
    web::api::authenticate,
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/api/v1/mail/reports", aw::post().to(report));
}

/// Body of `POST /api/v1/mail/reports` as JSON.
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
    /// Subscribers paused (or already paused; an unsubscribed address
    /// stays unsubscribed).
    pub paused: usize,
    /// Addresses that are not subscribers (for a raw report: 1 when it
    /// should pause someone and names no subscriber).
    pub unknown: usize,
    /// For a raw report, what it says: `hard-bounce`, `soft-bounce`
    /// (nobody is paused), `complaint` or `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// For a raw report, the status code (DSN) or feedback type (ARF).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// True when the body is a raw message rather than JSON.
fn is_raw_message(request: &HttpRequest) -> bool {
    let content_type = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    content_type.starts_with("message/rfc822") || content_type.starts_with("multipart/report")
}

/// `POST /api/v1/mail/reports`
#[utoipa::path(post, path = "/api/v1/mail/reports", security(("bearer" = [])),
    request_body(description = "JSON, or a raw delivery status notification (RFC 3464) or abuse report (RFC 5965) as received",
        content((MailReport = "application/json"), (String = "message/rfc822"))),
    responses((status = 200, body = MailReportResult), (status = 401, body = crate::web::api::ErrorBody),
        (status = 422, body = crate::web::api::ErrorBody)))]
pub async fn report(
    request: HttpRequest,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    authenticate(&request, &data).await?;
    if is_raw_message(&request) {
        let report = reports::parse(&body).map_err(|e| Error::Validation {
            field: "body".into(),
            message: e.to_string(),
        })?;
        let base = data.config.mail_base_url();
        let id_domain = crate::mail::id_domain(&data.config);
        let applied = data
            .db
            .run(move |conn| reports::apply(conn, &report, &base, &id_domain))
            .await?;
        return Ok(HttpResponse::Ok().json(MailReportResult {
            paused: applied.paused.len(),
            unknown: usize::from(applied.unknown),
            report: Some(applied.kind.as_str().to_string()),
            detail: Some(applied.detail),
        }));
    }
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
    Ok(HttpResponse::Ok().json(MailReportResult {
        paused,
        unknown,
        report: None,
        detail: None,
    }))
}
