//! Prepared reads: actors, alerts, collections, WebFinger and anonymous
//! pages (alert, profile, home and archive) carry a strong ETag that stays put while nothing changes, answer
//! a matching If-None-Match with 304, and are never served stale after an
//! edit through the API or an activity in the inbox; with authorized fetch
//! they are private and still need a signature.

use crate::common::{
    api, api_token, client, inbox_settled, peer::FakePeer, postgres_available, prepare, Backend,
    TestInstance,
};
use serde_json::{json, Value};
use std::time::SystemTime;
use tocsin::signatures::cavage;

const AP: &str = "application/activity+json";

/// GETs `url` with `accept` and an optional `If-None-Match`; status,
/// ETag, Cache-Control and body.
async fn get(url: &str, accept: &str, etag: Option<&str>) -> (u16, String, String, String) {
    let mut request = client().get(url).header("Accept", accept);
    if let Some(etag) = etag {
        request = request.header("If-None-Match", etag);
    }
    let response = request.send().await.unwrap();
    let (status, etag, cache) = validators(&response);
    (status, etag, cache, response.text().await.unwrap())
}

/// Status, ETag and Cache-Control of `response`.
fn validators(response: &reqwest::Response) -> (u16, String, String) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    (
        response.status().as_u16(),
        header("etag"),
        header("cache-control"),
    )
}

/// The answer is the same (bytes and ETag) twice, and its ETag gets 304
/// with the same validators and no body; the ETag.
async fn stable(url: &str, accept: &str) -> String {
    let (status, etag, cache, body) = get(url, accept, None).await;
    assert_eq!(status, 200, "{url}: {body}");
    assert!(etag.starts_with('"') && etag.len() > 20, "{url}: {etag}");
    assert_eq!(cache, "public, max-age=60", "{url}");
    let (_, again, _, body_again) = get(url, accept, None).await;
    assert_eq!((&again, &body_again), (&etag, &body), "{url}");
    let (status, etag_304, cache_304, empty) = get(url, accept, Some(&etag)).await;
    assert_eq!(status, 304, "{url}");
    assert_eq!(
        (etag_304.as_str(), cache_304.as_str()),
        (etag.as_str(), cache.as_str())
    );
    assert!(empty.is_empty());
    let (status, _, _, _) = get(url, accept, Some("\"something-else\"")).await;
    assert_eq!(status, 200, "{url}");
    etag
}

async fn answers_change_with_every_edit(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let base = i.base();
    let token = api_token(&i, "author");
    let (status, created) = api(
        reqwest::Method::POST,
        format!("{base}/api/v1/alerts"),
        &token,
        Some(json!({
            "title": "Journalist detained in Harare",
            "body": "A reporter was detained at dawn.",
            "language": "en",
            "countries": ["ZW"],
            "categories": ["detention"],
            "urgency": "action",
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (id, alert) = (
        created["id"].as_i64().unwrap(),
        created["ap_id"].as_str().unwrap().to_string(),
    );
    let actor = format!("{base}/actors/alerts");
    let outbox = format!("{actor}/outbox?page=1");
    let followers = format!("{actor}/followers");
    let webfinger = format!(
        "{base}/.well-known/webfinger?resource=acct:alerts@{}",
        i.domain
    );

    let alert_json = stable(&alert, AP).await;
    let alert_html = stable(&alert, "text/html").await;
    let profile_html = stable(&format!("{base}/@alerts"), "text/html").await;
    let home = format!("{base}/");
    let archive = format!("{base}/archive?country=ZW");
    let home_html = stable(&home, "text/html").await;
    let archive_html = stable(&archive, "text/html").await;
    let outbox_etag = stable(&outbox, AP).await;
    let followers_etag = stable(&followers, AP).await;
    stable(&actor, AP).await;
    stable(&webfinger, "application/jrd+json").await;
    assert_ne!(
        alert_json, alert_html,
        "JSON and HTML are different answers"
    );

    // Refused writes (no token, no such route, a form without a session)
    // drop nothing; the cache holds what was just read.
    let kept = i.server.state.reads.bytes();
    assert!(kept > 0);
    let refused = [
        client()
            .post(format!("{base}/api/v1/alerts"))
            .json(&json!({"title": "x"}))
            .send()
            .await
            .unwrap(),
        client()
            .delete(format!("{base}/api/v1/alerts/{id}"))
            .send()
            .await
            .unwrap(),
        client()
            .post(format!("{base}/nowhere"))
            .send()
            .await
            .unwrap(),
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{base}/author/new"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("csrf=x")
            .send()
            .await
            .unwrap(),
    ];
    for response in refused {
        let to_login = response.status() == 303
            && response.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?");
        assert!(
            response.status().is_client_error() || to_login,
            "{response:?}"
        );
    }
    assert_eq!(i.server.state.reads.bytes(), kept, "refused writes kept it");

    // An edit: the next read shows it, under a new ETag; the old one no
    // longer gets 304.
    let (status, patched) = api(
        reqwest::Method::PATCH,
        format!("{base}/api/v1/alerts/{id}"),
        &token,
        Some(json!({"title": "Journalist released in Harare"})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    for (url, accept, old) in [
        (&alert, AP, &alert_json),
        (&alert, "text/html", &alert_html),
        (&outbox, AP, &outbox_etag),
        (&home, "text/html", &home_html),
        (&archive, "text/html", &archive_html),
    ] {
        let (status, etag, _, body) = get(url, accept, Some(old)).await;
        assert_eq!(status, 200, "{url} {accept}: the old ETag must not match");
        assert_ne!(&etag, old);
        assert!(
            body.contains("Journalist released in Harare"),
            "{url} {accept}: {body}"
        );
        assert!(
            !body.contains("detained in Harare"),
            "{url} {accept}: stale"
        );
    }
    let (_, _, _, page) = get(&format!("{base}/@alerts"), "text/html", None).await;
    assert!(
        page.contains("Journalist released in Harare"),
        "profile page is fresh"
    );
    assert_ne!(
        stable(&format!("{base}/@alerts"), "text/html").await,
        profile_html
    );

    // A follower arriving through the inbox changes the followers
    // collection as soon as the worker applied it.
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &base);
    let (status, body) = peer
        .post_signed(
            &format!("{base}/inbox"),
            &peer.follow_of(&base, 1),
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    inbox_settled(&i.server.state).await;
    let (status, etag, _, body) = get(&followers, AP, Some(&followers_etag)).await;
    assert_eq!(status, 200);
    assert_ne!(etag, followers_etag);
    let collection: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(collection["totalItems"], 1, "{body}");

    // A deleted alert: 410 from then on, never the cached Note.
    let (status, _) = api(
        reqwest::Method::DELETE,
        format!("{base}/api/v1/alerts/{id}"),
        &token,
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status}");
    let (status, _, _, body) = get(&alert, AP, None).await;
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("Tombstone"));
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_change_with_every_edit_sqlite() {
    answers_change_with_every_edit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_change_with_every_edit_postgres() {
    if postgres_available() {
        answers_change_with_every_edit(Backend::Postgres).await;
    }
}

/// GETs `url` signed by the peer's alice; status, ETag, Cache-Control.
async fn signed_get(
    peer: &FakePeer,
    url: &str,
    key: &str,
    etag: Option<&str>,
) -> (u16, String, String) {
    let h = cavage::sign(
        "GET",
        &url::Url::parse(url).unwrap(),
        None,
        key,
        &peer.private_key(),
        SystemTime::now(),
    )
    .unwrap();
    let mut request = client()
        .get(url)
        .header("Accept", AP)
        .header("Date", h.date)
        .header("Signature", h.signature);
    if let Some(etag) = etag {
        request = request.header("If-None-Match", etag);
    }
    validators(&request.send().await.unwrap())
}

async fn authorized_fetch_answers_stay_private_and_checked(backend: Backend) {
    let mut p = prepare(backend);
    p.config.federation.authorized_fetch = true;
    let i = TestInstance::start_prepared(p).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let key = format!("{alice}#main-key");
    let actor = format!("{}/actors/alerts", i.base());

    // Signed: 200, then 304 on the ETag; never for a shared cache.
    let (status, etag, cache) = signed_get(&peer, &actor, &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(cache, "private, no-cache");
    let (status, again, _) = signed_get(&peer, &actor, &key, Some(&etag)).await;
    assert_eq!((status, again.as_str()), (304, etag.as_str()));

    // The answer is prepared now; unsigned requests still get nothing,
    // not even a 304 for the right ETag.
    let (status, _, _, _) = get(&actor, AP, None).await;
    assert_eq!(status, 401);
    let (status, _, _, _) = get(&actor, AP, Some(&etag)).await;
    assert_eq!(status, 401);
    let (status, _, _, _) = get(&format!("{actor}/outbox"), "*/*", None).await;
    assert_eq!(status, 401);
    // Discovery stays public and cacheable.
    let webfinger = format!(
        "{}/.well-known/webfinger?resource=acct:alerts@{}",
        i.base(),
        i.domain
    );
    stable(&webfinger, "application/jrd+json").await;

    // Blocked: the signature opens nothing, prepared or not (403, as for
    // any read signed by a blocked domain).
    i.server
        .state
        .policies
        .apply(&peer.domain, "block", None, false)
        .await
        .unwrap();
    assert_eq!(signed_get(&peer, &actor, &key, None).await.0, 403);
    assert_eq!(signed_get(&peer, &actor, &key, Some(&etag)).await.0, 403);
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_fetch_answers_stay_private_and_checked_sqlite() {
    authorized_fetch_answers_stay_private_and_checked(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_fetch_answers_stay_private_and_checked_postgres() {
    if postgres_available() {
        authorized_fetch_answers_stay_private_and_checked(Backend::Postgres).await;
    }
}
