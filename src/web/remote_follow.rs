//! Remote following, both ways.
//!
//! "Follow from your fediverse server": a reader gives their handle
//! (Mastodon, GoToSocial, Lemmy… as `@user@host`, `user@host`, `acct:` or a
//! profile URL); we read their server's subscribe template from WebFinger
//! and send them there with our actor's URL filled in. A server without a
//! template (GoToSocial) gets a page saying what to search for instead.
//!
//! Our own remote-interaction page, `/interact?uri=…`, is the template our
//! WebFinger answers carry: an editor of this instance, sent here by
//! another server's follow box, confirms that our organisation follows.

use crate::{
    accounts::EDITOR,
    error::Error,
    federation::{
        activities::follow::{follow_remote, local_actor, resolve_actor},
        Urls,
    },
    state::Data,
    web::{
        author_pages::allowed,
        pages::{message_text, render},
        session::{require, require_post, see_other, viewer, Form, Viewer},
    },
};
use actix_web::{web as aw, HttpRequest, HttpResponse};
use askama::Template;

/// The WebFinger link relation of the subscribe template.
pub const SUBSCRIBE_REL: &str = "http://ostatus.org/schema/1.0/subscribe";

/// Registers the routes.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/follow", aw::get().to(follow))
        .route("/interact", aw::get().to(interact_form))
        .route("/interact", aw::post().to(interact));
}

/// Query of `GET /follow`.
#[derive(Debug, serde::Deserialize)]
pub struct FollowQuery {
    /// Our local actor's username.
    account: String,
    /// The reader's handle or profile URL.
    handle: String,
}

fn user_ok(user: &str) -> bool {
    !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_alphanumeric() || "_.-".contains(c))
}

fn host_ok(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
}

/// `user` and `host` of a handle as people write it: `@user@host`,
/// `user@host`, `acct:user@host`, or a profile URL (`https://host/@user`
/// for Mastodon and GoToSocial, `https://host/u/user` for Lemmy,
/// `https://host/users/user`).
pub fn split_handle(handle: &str) -> Option<(String, String)> {
    let handle = handle.trim();
    if handle.starts_with("https://") || handle.starts_with("http://") {
        let url = url::Url::parse(handle).ok()?;
        let host = url.authority().to_string();
        let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
        let user = match (segments.next()?, segments.next()) {
            (first, None) => first.strip_prefix('@')?.to_string(),
            ("u" | "users", Some(name)) => name.to_string(),
            _ => return None,
        };
        return (user_ok(&user) && host_ok(&host)).then_some((user, host));
    }
    let acct = handle.strip_prefix("acct:").unwrap_or(handle);
    let (user, host) = acct.trim_start_matches('@').split_once('@')?;
    (user_ok(user) && host_ok(host)).then(|| (user.to_string(), host.to_string()))
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

/// What the reader's server said.
enum Lookup {
    /// Send the reader here.
    Template(String),
    /// The account exists but its server has no follow page.
    NoTemplate,
    /// No answer, or no such account.
    Failed,
}

async fn lookup(data: &Data, user: &str, host: &str, ours: &str) -> Lookup {
    let scheme = if data.config.federation.allow_http {
        "http"
    } else {
        "https"
    };
    let url = format!("{scheme}://{host}/.well-known/webfinger?resource=acct:{user}@{host}");
    let Ok(url) = url::Url::parse(&url) else {
        return Lookup::Failed;
    };
    // The host is the reader's input: no private addresses, a bounded answer.
    if crate::federation::ssrf::check_target(&url, &data.config)
        .await
        .is_err()
        || data.policies.check_url(&url).await.is_err()
    {
        return Lookup::Failed;
    }
    let Ok(resp) = data
        .client
        .get(url)
        .header("Accept", "application/jrd+json")
        .send()
        .await
    else {
        return Lookup::Failed;
    };
    let Ok(resp) = resp.error_for_status() else {
        return Lookup::Failed;
    };
    let Ok(body) =
        crate::federation::ssrf::read_limited(resp, crate::federation::ssrf::MAX_RESPONSE_BYTES)
            .await
    else {
        return Lookup::Failed;
    };
    let Ok(jrd) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Lookup::Failed;
    };
    match subscribe_url(&jrd, ours) {
        Some(target) => Lookup::Template(target),
        None if jrd["links"].is_array() => Lookup::NoTemplate,
        None => Lookup::Failed,
    }
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
    let ours = format!("@{}@{}", q.account, data.config.instance.domain);
    let actor_url = Urls::new(&data.config).actor(&q.account).to_string();
    let found = match split_handle(&q.handle) {
        Some((user, host)) => lookup(&data, &user, &host, &actor_url).await,
        None => Lookup::Failed,
    };
    let back = Some((format!("/@{}", q.account), v.lang.t("back")));
    Ok(match found {
        Lookup::Template(url) => see_other(&url),
        Lookup::NoTemplate => message_text(
            &v,
            200,
            "follow-title",
            v.lang.t_args("follow-search-app", &[("handle", ours)]),
            back,
        ),
        Lookup::Failed => message_text(
            &v,
            404,
            "follow-title",
            v.lang.t_args("follow-failed", &[("handle", ours)]),
            back,
        ),
    })
}

/// The account a remote-interaction `uri` names (`acct:` stripped).
fn interaction_target(request: &HttpRequest) -> Option<String> {
    url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(k, _)| k == "uri")
        .map(|(_, u)| u.trim().trim_start_matches("acct:").to_string())
        .filter(|u| !u.is_empty())
}

#[derive(Template)]
#[template(path = "interact.html")]
struct InteractPage<'a> {
    v: &'a Viewer,
    title: String,
    notice: Option<String>,
    uri: String,
    name: String,
    handle: String,
    profile: String,
    summary: String,
    follow_label: String,
}

/// `GET /interact?uri=…`: who would be followed, and the button.
async fn interact_form(request: HttpRequest, data: Data) -> Result<HttpResponse, Error> {
    let v = allowed!(require(&request, &data, EDITOR).await?);
    let Some(uri) = interaction_target(&request) else {
        return Err(Error::BadRequest("missing uri".into()));
    };
    let target = match resolve_actor(&data, &uri).await {
        Ok(t) => t,
        Err(_) => {
            return Ok(message_text(
                &v,
                404,
                "interact-title",
                v.lang.t_args("interact-unknown", &[("uri", uri)]),
                None,
            ))
        }
    };
    let row = &target.row;
    let sent = request.query_string().contains("sent=1");
    let page = InteractPage {
        title: v.lang.t("interact-title"),
        notice: sent.then(|| v.lang.t("interact-sent")),
        name: row.name.clone().unwrap_or(row.username.clone()),
        handle: format!("@{}@{}", row.username, row.domain),
        profile: row.url.clone().unwrap_or(row.ap_id.clone()),
        summary: crate::db::alerts::plain_text(row.summary.as_deref().unwrap_or_default()),
        follow_label: v.lang.t_args(
            "interact-follow",
            &[(
                "us",
                format!(
                    "@{}@{}",
                    data.config.actor.username, data.config.instance.domain
                ),
            )],
        ),
        uri,
        v: &v,
    };
    Ok(render(&v, 200, &page))
}

/// `POST /interact`: our organisation follows the account.
async fn interact(
    request: HttpRequest,
    body: aw::Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    let form = Form::parse(&body);
    let v = allowed!(require_post(&request, &data, EDITOR, &form).await?);
    let uri = form.text("uri").trim_start_matches("acct:").to_string();
    let us = local_actor(&data, &data.config.actor.username).await?;
    match follow_remote(&data, &us, &uri).await {
        Ok(_) => {
            let q: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
            Ok(see_other(&format!("/interact?uri={q}&sent=1")))
        }
        Err(e) => Ok(message_text(
            &v,
            422,
            "interact-title",
            format!("{uri}: {e}"),
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_as_people_write_them() {
        let ana = Some(("ana".to_string(), "social.example".to_string()));
        for h in [
            "@ana@social.example",
            "ana@social.example",
            " acct:ana@social.example ",
            "https://social.example/@ana",
            "https://social.example/u/ana",
            "https://social.example/users/ana/",
        ] {
            assert_eq!(split_handle(h), ana, "{h}");
        }
        assert_eq!(split_handle("ana"), None);
        assert_eq!(split_handle("ana@evil/x"), None);
        assert_eq!(split_handle("https://social.example/about"), None);
        assert_eq!(split_handle("https://social.example/c/news"), None);
        assert_eq!(split_handle("ftp://social.example/@ana"), None);
    }

    #[test]
    fn subscribe_templates_are_filled_and_checked() {
        let jrd = serde_json::json!({"links": [
            {"rel": "self", "href": "https://social.example/users/ana"},
            {"rel": SUBSCRIBE_REL, "template": "https://social.example/authorize_interaction?uri={uri}"}
        ]});
        assert_eq!(
            subscribe_url(&jrd, "https://tocsin.example/actors/alerts").as_deref(),
            Some("https://social.example/authorize_interaction?uri=https%3A%2F%2Ftocsin.example%2Factors%2Falerts")
        );
        let bad = serde_json::json!({"links": [{"rel": SUBSCRIBE_REL, "template": "javascript:alert(1)//{uri}"}]});
        assert_eq!(subscribe_url(&bad, "x"), None);
    }
}
