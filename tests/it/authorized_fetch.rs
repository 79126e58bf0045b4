//! Authorized fetch: with `[federation] authorized_fetch` every GET of an
//! ActivityPub document needs a valid HTTP signature (draft-cavage or RFC
//! 9421) from a domain that is not blocked; discovery, the instance actor
//! and HTML stay public; two such instances still federate because our
//! own fetches are signed.

use crate::common::{
    client, follows, peer::FakePeer, postgres_available, prepare, Backend, TestInstance,
};
use std::time::{Duration, SystemTime};
use tocsin::signatures::{cavage, rfc9421};

async fn strict(backend: Backend) -> TestInstance {
    let mut p = prepare(backend);
    p.config.federation.authorized_fetch = true;
    TestInstance::start_prepared(p).await
}

/// GETs `url` as an ActivityPub client; status and body.
async fn unsigned(url: &str, accept: &str) -> (u16, String) {
    let resp = client()
        .get(url)
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// GETs `url` signed (draft-cavage) by the peer's key as `key_id`, dated `at`.
pub(crate) async fn signed_cavage(
    peer: &FakePeer,
    url: &str,
    key_id: &str,
    at: SystemTime,
) -> (u16, String) {
    let parsed = url::Url::parse(url).unwrap();
    let h = cavage::sign("GET", &parsed, None, key_id, &peer.private_key(), at).unwrap();
    let resp = client()
        .get(url)
        .header("Accept", "application/activity+json")
        .header("Date", h.date)
        .header("Signature", h.signature)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn signed_rfc9421(peer: &FakePeer, url: &str, key_id: &str) -> u16 {
    let parsed = url::Url::parse(url).unwrap();
    let key = peer.private_key();
    let h = rfc9421::sign(
        "GET",
        &parsed,
        None,
        key_id,
        rfc9421::SigningKey::Rsa(&key),
        SystemTime::now(),
    )
    .unwrap();
    client()
        .get(url)
        .header("Accept", "application/activity+json")
        .header("Signature-Input", h.signature_input)
        .header("Signature", h.signature)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn documents_need_a_signature_from_an_unblocked_domain(backend: Backend) {
    let i = strict(backend).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let key = format!("{alice}#main-key");
    let base = i.base();
    let ap = "application/activity+json";

    for path in ["/actors/alerts", "/members"] {
        let (status, body) = unsigned(&format!("{base}{path}"), ap).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    // Collections are JSON whatever the Accept header says.
    for path in [
        "/actors/alerts/outbox",
        "/actors/alerts/followers",
        "/actors/alerts/outbox?page=1",
    ] {
        let (status, _) = unsigned(&format!("{base}{path}"), "*/*").await;
        assert_eq!(status, 401, "{path}");
    }
    // Public: discovery, the instance actor, HTML.
    let webfinger = format!(
        "{base}/.well-known/webfinger?resource=acct:alerts@{}",
        i.domain
    );
    assert_eq!(unsigned(&webfinger, "application/jrd+json").await.0, 200);
    assert_eq!(
        unsigned(&format!("{base}/.well-known/nodeinfo"), "*/*")
            .await
            .0,
        200
    );
    assert_eq!(
        unsigned(&format!("{base}/actor"), ap).await.0,
        200,
        "instance actor"
    );
    let (status, html) = unsigned(&format!("{base}/actors/alerts"), "text/html").await;
    assert_eq!(status, 200);
    assert!(html.contains("<html"), "HTML stays public");

    // Signed: draft-cavage and RFC 9421 GETs are accepted.
    let (status, body) = signed_cavage(
        &peer,
        &format!("{base}/actors/alerts"),
        &key,
        SystemTime::now(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"inbox\""), "{body}");
    let (status, _) = signed_cavage(
        &peer,
        &format!("{base}/actors/alerts/outbox"),
        &key,
        SystemTime::now(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        signed_rfc9421(&peer, &format!("{base}/actors/alerts"), &key).await,
        200
    );
    // A stale or a foreign signature is not.
    let stale = SystemTime::now() - Duration::from_secs(2 * 3600);
    assert_eq!(
        signed_cavage(&peer, &format!("{base}/actors/alerts"), &key, stale)
            .await
            .0,
        401
    );
    let elsewhere = format!("{base}/actors/alerts/followers");
    let parsed = url::Url::parse(&format!("{base}/actors/alerts")).unwrap();
    let h = cavage::sign(
        "GET",
        &parsed,
        None,
        &key,
        &peer.private_key(),
        SystemTime::now(),
    )
    .unwrap();
    let replayed = client()
        .get(&elsewhere)
        .header("Date", h.date)
        .header("Signature", h.signature)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401, "a signature for another path");

    // A blocked domain's signature no longer opens anything (403, as
    // without authorized fetch: see domain_policy.rs).
    i.server
        .state
        .policies
        .apply(&peer.domain, "block", None, false)
        .await
        .unwrap();
    assert_eq!(
        signed_cavage(
            &peer,
            &format!("{base}/actors/alerts"),
            &key,
            SystemTime::now()
        )
        .await
        .0,
        403
    );
    i.stop().await;
    peer.stop().await;
}

async fn two_strict_instances_still_federate(backend: Backend) {
    let (a, b) = (strict(backend).await, strict(backend).await);
    // Our fetches are signed, so a strict instance can be followed.
    follows(&b, &format!("@alerts@{}", a.domain)).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_need_a_signature_from_an_unblocked_domain_sqlite() {
    documents_need_a_signature_from_an_unblocked_domain(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_need_a_signature_from_an_unblocked_domain_postgres() {
    if postgres_available() {
        documents_need_a_signature_from_an_unblocked_domain(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_strict_instances_still_federate_sqlite() {
    two_strict_instances_still_federate(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_strict_instances_still_federate_postgres() {
    if postgres_available() {
        two_strict_instances_still_federate(Backend::Postgres).await;
    }
}
