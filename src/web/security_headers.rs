//! Headers every response carries: a Content-Security-Policy that allows
//! no script and nothing inline, `X-Content-Type-Options: nosniff`, no
//! framing, no referrer to other sites, and a `Content-Type` on every body.

use actix_web::{
    body::{BodySize, MessageBody},
    dev::ServiceResponse,
    http::header::{self, HeaderValue},
};

/// The policy of our pages: our own stylesheet, images from us or any
/// HTTPS host (remote attachments), forms to us or another server (remote
/// follow), no scripts, plugins, frames or `<base>`.
pub fn content_security_policy(allow_http: bool) -> String {
    let forms = if allow_http {
        "'self' https: http:"
    } else {
        "'self' https:"
    };
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
         media-src 'self' https:; form-action {forms}; base-uri 'none'; \
         frame-ancestors 'none'"
    )
}

/// Adds the headers to `response` unless the handler set them; a body
/// without a `Content-Type` gets `application/octet-stream` (with
/// `nosniff`, browsers will not guess HTML from it).
pub fn secure<B: MessageBody>(
    csp: &HeaderValue,
    mut response: ServiceResponse<B>,
) -> ServiceResponse<B> {
    let has_body = !matches!(
        response.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    );
    let headers = response.headers_mut();
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, csp.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }
    if has_body && !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    response
}
