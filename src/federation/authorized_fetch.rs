//! Authorized fetch (`[federation] authorized_fetch`, Mastodon's "secure
//! mode"): a GET of an ActivityPub document must be signed (draft-cavage or
//! RFC 9421) by an actor of a domain that is not refused. Discovery
//! (WebFinger, host-meta, NodeInfo), the instance actor that signs our own
//! fetches, our JSON-LD namespace, the API and HTML pages stay public.

use super::{inbox::verify_request_signature, policy::DomainPolicies, routes::wants_activity_json};
use crate::{
    error::Error,
    signatures::{cavage, rfc9421},
    state::Data,
};
use actix_web::{http::Method, HttpRequest};
use url::Url;

/// Paths that never need a signature.
fn is_public(path: &str) -> bool {
    path == "/actor"
        || path == "/ns"
        || [
            "/.well-known/",
            "/nodeinfo/",
            "/api/",
            "/static/",
            "/media/",
        ]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// `/actors/{name}/{outbox,followers,following,featured}`: JSON whatever
/// the `Accept` header says.
fn is_collection(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (
            Some("actors"),
            Some(_),
            Some("outbox" | "followers" | "following" | "featured"),
            None
        )
    )
}

/// True when `request` asks for an ActivityPub document that authorized
/// fetch protects.
pub fn is_protected(request: &HttpRequest) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD)
        && !is_public(request.path())
        && (wants_activity_json(request) || is_collection(request.path()))
}

/// True when a response of `content_type` to `path` is an ActivityPub
/// document (the check after the handler, for anything `is_protected`
/// did not foresee).
pub fn is_protected_response(path: &str, content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    !is_public(path)
        && (ct.starts_with("application/activity+json") || ct.starts_with("application/ld+json"))
}

/// Checks the request's signature and the signer's domain; every failure
/// is 401 (a blocked domain's too: it learns nothing more).
pub async fn check(request: &HttpRequest, data: &Data) -> Result<(), Error> {
    match verify_request_signature(request, None, data).await {
        Ok(_) => Ok(()),
        Err(e @ (Error::Unauthorized(_) | Error::Signature(_))) => Err(e),
        Err(e) => Err(Error::Unauthorized(format!(
            "authorized fetch: the signature could not be checked: {e}"
        ))),
    }
}

/// The key a request says it is signed with (RFC 9421 or draft-cavage),
/// without checking the signature: enough to refuse a blocked domain
/// before any work.
pub fn claimed_key(request: &HttpRequest) -> Option<Url> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let key_id = match (header("signature-input"), header("signature")) {
        (Some(input), Some(signature)) => rfc9421::parse(input, signature).ok()?.key_id,
        _ => {
            let value = header("signature")
                .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Signature ")))?;
            cavage::parse_signature_header(value).ok()?.key_id
        }
    };
    Url::parse(&key_id).ok()
}

/// A signed read from a refused domain is refused (403) whether or not
/// authorized fetch is on: the signature says who asks, and a blocked
/// server gets nothing from us. An unsigned read is answered (without
/// authorized fetch, anyone may read public documents).
pub async fn refuse_blocked_reader(
    request: &HttpRequest,
    policies: &DomainPolicies,
) -> Result<(), Error> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok(());
    }
    match claimed_key(request) {
        Some(key) => policies.check_url(&key).await.map(|_| ()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_and_the_instance_actor_stay_public() {
        for path in [
            "/actor",
            "/.well-known/webfinger",
            "/nodeinfo/2.1",
            "/api/v1/alerts",
            "/ns",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in ["/actors/alerts", "/alerts/x", "/members"] {
            assert!(!is_public(path), "{path}");
        }
        assert!(is_collection("/actors/alerts/outbox"));
        assert!(is_collection("/actors/africa/followers"));
        assert!(!is_collection("/actors/alerts"));
        assert!(!is_collection("/actors/alerts/inbox"));
        assert!(is_protected_response(
            "/alerts/x",
            "application/activity+json; charset=utf-8"
        ));
        assert!(!is_protected_response(
            "/alerts/x",
            "text/html; charset=utf-8"
        ));
    }
}
