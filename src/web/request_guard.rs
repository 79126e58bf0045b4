//! What every request passes before and after its handler: the rate limit
//! of its kind (429 with `Retry-After`), authorized fetch for ActivityPub
//! documents when it is on, and the security headers on the answer.

use super::{
    rate_limit::{bucket_of, client_address},
    read_cache, security_headers,
};
use crate::{
    error::Error,
    federation::authorized_fetch,
    state::{AppState, Data},
};
use activitypub_federation::config::FederationConfig;
use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, VARY},
        Method,
    },
    middleware::Next,
    web as aw, ResponseError,
};

/// What the guard needs, registered as app data.
pub struct Guard {
    federation: FederationConfig<AppState>,
    csp: HeaderValue,
}

impl Guard {
    /// A guard for the instance `federation` serves.
    pub fn new(federation: FederationConfig<AppState>) -> Guard {
        let allow_http = federation.config.federation.allow_http;
        let csp = HeaderValue::from_str(&security_headers::content_security_policy(allow_http))
            .expect("the policy is ASCII");
        Guard { federation, csp }
    }
}

fn refuse(request: ServiceRequest, error: &Error) -> ServiceResponse<BoxBody> {
    let (request, _) = request.into_parts();
    ServiceResponse::new(request, error.error_response())
}

/// The middleware function (`actix_web::middleware::from_fn`).
pub async fn guard(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(guard) = request.app_data::<aw::Data<Guard>>().cloned() else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let state: &AppState = &guard.federation;
    let config = state.config.clone();
    if let Some(bucket) = bucket_of(&request) {
        let address = client_address(request.request(), config.server.trust_forwarded_for);
        if let Err(e) = state.rate_limits.check(bucket, &address) {
            return Ok(security_headers::secure(&guard.csp, refuse(request, &e)));
        }
    }
    if let Err(e) =
        authorized_fetch::refuse_blocked_reader(request.request(), &state.policies).await
    {
        return Ok(security_headers::secure(&guard.csp, refuse(request, &e)));
    }
    let mut checked = false;
    if config.federation.authorized_fetch && authorized_fetch::is_protected(request.request()) {
        let data: Data = guard.federation.to_request_data();
        if let Err(e) = authorized_fetch::check(request.request(), &data).await {
            return Ok(security_headers::secure(&guard.csp, refuse(request, &e)));
        }
        checked = true;
    }
    let mut response = next.call(request).await?.map_into_boxed_body();
    let read = matches!(*response.request().method(), Method::GET | Method::HEAD);
    if config.federation.authorized_fetch && read {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if authorized_fetch::is_protected_response(response.request().path(), content_type) {
            if !checked {
                // An ActivityPub document the request did not announce
                // (odd Accept header): check now, answer 401 rather than
                // leak it.
                let data: Data = guard.federation.to_request_data();
                if let Err(e) = authorized_fetch::check(response.request(), &data).await {
                    let (request, _) = response.into_parts();
                    let response = ServiceResponse::new(request, e.error_response());
                    return Ok(security_headers::secure(&guard.csp, response));
                }
            }
            // Only a verified requester may read it: no shared cache may
            // keep it for others.
            let headers = response.headers_mut();
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(read_cache::PRIVATE));
            headers.insert(VARY, HeaderValue::from_static(read_cache::PRIVATE_VARY));
        }
    }
    Ok(security_headers::secure(&guard.csp, response))
}
