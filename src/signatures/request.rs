//! Checking an actix-web request's draft-cavage signature up to the RSA
//! step: the header found and parsed, covered headers, date window and
//! `Digest` checked. What key to verify with is the caller's business.

use super::{cavage, SignatureError};
use actix_web::{http::header::HeaderMap, HttpRequest};

/// The request's parsed signature and the string it must sign. The
/// signature comes from `Signature`, or from `Authorization: Signature …`.
pub fn check(
    request: &HttpRequest,
    body: Option<&[u8]>,
    window: cavage::Window,
) -> Result<(cavage::ParsedSignature, String), SignatureError> {
    let headers = request.headers();
    let signature = headers
        .get("signature")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.starts_with("Signature "))
        })
        .ok_or(SignatureError::Missing)?;
    let sig = cavage::parse_signature_header(signature)?;
    let lookup = |name: &str| header_value(headers, name);
    let path = request
        .uri()
        .path_and_query()
        .map_or(request.path(), |p| p.as_str());
    let parts = cavage::RequestParts {
        method: request.method().as_str(),
        path_and_query: path,
        header: &lookup,
        body,
    };
    let signing_string = cavage::check_request(&sig, &parts, window)?;
    Ok((sig, signing_string))
}

/// A request header's value as a signature covers it: its values joined
/// by `", "` when it comes more than once; `None` when absent (a value
/// that is not visible ASCII counts as absent).
pub fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).filter_map(|v| v.to_str().ok());
    // Most headers come once: copied, without a list to join.
    let mut value = values.next()?.to_string();
    for more in values {
        value.push_str(", ");
        value.push_str(more);
    }
    Some(value)
}
