//! The error every handler returns, and its one mapping to HTTP.

use crate::{config::ConfigError, db::DbError, signatures::SignatureError};
use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde_json::json;
use thiserror::Error;

/// Application error; each layer's own enum converts into it.
#[derive(Debug, Error)]
pub enum Error {
    /// Configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A signature was missing, malformed, stale or wrong.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// Fetching, WebFinger or parsing in activitypub_federation failed.
    #[error("{0}")]
    Federation(#[from] activitypub_federation::error::Error),
    /// The request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// The request is not authenticated.
    #[error("{0}")]
    Unauthorized(String),
    /// A submitted field is invalid.
    #[error("{field}: {message}")]
    Validation {
        /// JSON path of the field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing at this address.
    #[error("not found")]
    NotFound,
    /// The request body is of a media type this route does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request body is larger than the configured limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Too many requests from one client or host; retry after this many
    /// seconds.
    #[error("too many requests; retry after {0} s")]
    TooManyRequests(u64),
    /// Anything else; logged, and answered with 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::BadRequest(format!("invalid JSON: {e}"))
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::Db(DbError::Query(e))
    }
}

impl From<url::ParseError> for Error {
    fn from(e: url::ParseError) -> Self {
        Error::BadRequest(format!("invalid URL: {e}"))
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        use activitypub_federation::error::Error as Fed;
        match self {
            Error::Config(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Db(e) if e.is_not_found() => StatusCode::NOT_FOUND,
            Error::Db(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Signature(SignatureError::Key(_)) => StatusCode::UNAUTHORIZED,
            Error::Signature(_) => StatusCode::UNAUTHORIZED,
            Error::Federation(Fed::NotFound) => StatusCode::NOT_FOUND,
            Error::Federation(Fed::ParseReceivedActivity { .. }) => StatusCode::BAD_REQUEST,
            Error::Federation(Fed::UrlVerificationError(_)) => StatusCode::BAD_REQUEST,
            Error::Federation(Fed::ActivitySignatureInvalid | Fed::ActivityBodyDigestInvalid) => {
                StatusCode::UNAUTHORIZED
            }
            Error::Federation(_) => StatusCode::BAD_GATEWAY,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "request refused");
        }
        match self {
            Error::Validation { field, message } => {
                HttpResponse::build(status).json(json!({ "error": message, "field": field }))
            }
            Error::TooManyRequests(secs) => HttpResponse::build(status)
                .insert_header(("Retry-After", secs.to_string()))
                .json(json!({ "error": self.to_string() })),
            _ => HttpResponse::build(status).json(json!({ "error": self.to_string() })),
        }
    }
}
