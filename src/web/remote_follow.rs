//! "Follow from your fediverse server": the reader gives their handle, we
//! read their server's subscribe template from WebFinger and send them
//! there with our actor's handle filled in.

use crate::{
    error::Error,
    state::Data,
    web::{
        pages::message_text,
        session::{see_other, viewer},
    },
};
use actix_web::{web as aw, HttpRequest, HttpResponse};

/// The WebFinger link relation of the subscribe template.
pub const SUBSCRIBE_REL: &str = "http://ostatus.org/schema/1.0/subscribe";

/// Query of `GET /follow`.
#[derive(Debug, serde::Deserialize)]
pub struct FollowQuery {
    /// Our local actor's username.
    account: String,
    /// The reader's `user@host` (with or without a leading `@`).
    handle: String,
}

/// `user` and `host` of `@user@host`.
pub fn split_handle(handle: &str) -> Option<(String, String)> {
    let (user, host) = handle.trim().trim_start_matches('@').split_once('@')?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    (!user.is_empty() && host_ok).then(|| (user.to_string(), host.to_string()))
}

/// The subscribe template in a WebFinger document, filled with `uri`.
pub fn subscribe_url(jrd: &serde_json::Value, uri: &str) -> Option<String> {
    let template = jrd["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == SUBSCRIBE_REL)?["template"]
        .as_str()?;
    let encoded: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    let target = template.replace("{uri}", &encoded);
    let parsed = url::Url::parse(&target).ok()?;
    matches!(parsed.scheme(), "https" | "http").then_some(target)
}

async fn lookup(data: &Data, user: &str, host: &str, ours: &str) -> Option<String> {
    let scheme = if data.config.federation.allow_http {
        "http"
    } else {
        "https"
    };
    let url = format!("{scheme}://{host}/.well-known/webfinger?resource=acct:{user}@{host}");
    let url = url::Url::parse(&url).ok()?;
    // The host is the reader's input: no private addresses, a bounded answer.
    crate::federation::ssrf::check_target(&url, &data.config)
        .await
        .ok()?;
    data.policies.check_url(&url).await.ok()?;
    let resp = data
        .client
        .get(url)
        .header("Accept", "application/jrd+json")
        .send()
        .await
        .ok()?;
    let body = crate::federation::ssrf::read_limited(
        resp.error_for_status().ok()?,
        crate::federation::ssrf::MAX_RESPONSE_BYTES,
    )
    .await
    .ok()?;
    let jrd: serde_json::Value = serde_json::from_slice(&body).ok()?;
    subscribe_url(&jrd, ours)
}

/// `GET /follow?account=…&handle=…`: a redirect to the reader's server, or
/// a page saying what to do instead.
pub async fn follow(
    request: HttpRequest,
    query: aw::Query<FollowQuery>,
    data: Data,
) -> Result<HttpResponse, Error> {
    let v = viewer(&request, &data).await?;
    let q = query.into_inner();
    let ours = format!("{}@{}", q.account, data.config.instance.domain);
    let target = match split_handle(&q.handle) {
        Some((user, host)) => lookup(&data, &user, &host, &ours).await,
        None => None,
    };
    Ok(match target {
        Some(url) => see_other(&url),
        None => message_text(
            &v,
            404,
            "follow-title",
            v.lang
                .t_args("follow-failed", &[("handle", format!("@{ours}"))]),
            Some((format!("/@{}", q.account), v.lang.t("back"))),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_templates() {
        assert_eq!(
            split_handle("@ana@social.example"),
            Some(("ana".into(), "social.example".into()))
        );
        assert_eq!(split_handle("ana"), None);
        assert_eq!(split_handle("ana@evil/x"), None);
        let jrd = serde_json::json!({"links": [
            {"rel": "self", "href": "https://social.example/users/ana"},
            {"rel": SUBSCRIBE_REL, "template": "https://social.example/authorize_interaction?uri={uri}"}
        ]});
        assert_eq!(
            subscribe_url(&jrd, "alerts@tocsin.example").as_deref(),
            Some("https://social.example/authorize_interaction?uri=alerts%40tocsin.example")
        );
        let bad = serde_json::json!({"links": [{"rel": SUBSCRIBE_REL, "template": "javascript:alert(1)//{uri}"}]});
        assert_eq!(subscribe_url(&bad, "x"), None);
    }
}
