//! Our actor, WebFinger, NodeInfo and host-meta answers, checked field by
//! field against what Mastodon needs to look an account up and follow it
//! (app/services/activitypub/process_account_service.rb, the WebFinger and
//! NodeInfo specs).

use crate::common::{client, Backend, TestInstance};
use serde_json::Value;

async fn get(url: &str, accept: &str) -> reqwest::Response {
    client()
        .get(url)
        .header("Accept", accept)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_document_has_every_field_mastodon_reads() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let base = i.base();
    let id = format!("{base}/actors/alerts");
    for accept in [
        "application/activity+json",
        "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
    ] {
        let resp = get(&id, accept).await;
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/activity+json"), "{ct}");
        let a: Value = resp.json().await.unwrap();
        let context = a["@context"].as_array().expect("@context array");
        assert!(context.contains(&Value::from("https://www.w3.org/ns/activitystreams")));
        assert!(context.contains(&Value::from("https://w3id.org/security/v1")));
        assert_eq!(a["id"], id.as_str());
        assert_eq!(a["type"], "Organization");
        assert_eq!(a["preferredUsername"], "alerts");
        assert_eq!(a["name"], "Alerts");
        assert_eq!(a["inbox"], format!("{id}/inbox"));
        assert_eq!(a["outbox"], format!("{id}/outbox"));
        assert_eq!(a["followers"], format!("{id}/followers"));
        assert_eq!(a["following"], format!("{id}/following"));
        assert_eq!(a["featured"], format!("{id}/featured"));
        assert_eq!(a["endpoints"]["sharedInbox"], format!("{base}/inbox"));
        assert_eq!(a["url"], format!("{base}/@alerts"));
        assert_eq!(a["publicKey"]["id"], format!("{id}#main-key"));
        assert_eq!(a["publicKey"]["owner"], id.as_str());
        let pem = a["publicKey"]["publicKeyPem"].as_str().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        tocsin::signatures::keys::parse_public_pem(pem).expect("RSA public key parses");
        assert_eq!(a["discoverable"], true);
        assert_eq!(a["manuallyApprovesFollowers"], false);
        assert!(a["published"].as_str().unwrap().contains('T'));
    }
    // Conditional GET: the ETag of an unchanged document answers 304.
    let first = get(&id, "application/activity+json").await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(first.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let again = client()
        .get(&id)
        .header("Accept", "application/activity+json")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = client()
        .get(&id)
        .header("Accept", "application/activity+json")
        .header("If-None-Match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    // The same URL gives a browser HTML.
    let resp = get(&id, "text/html,application/xhtml+xml").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains(&format!("@alerts@{}", i.domain)));

    // The instance actor signs fetches.
    let inst: Value = get(&format!("{base}/actor"), "application/activity+json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inst["type"], "Application");
    assert_eq!(inst["id"], format!("{base}/actor"));
    assert_eq!(inst["publicKey"]["owner"], format!("{base}/actor"));
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webfinger_answers_like_mastodon_and_ignores_case() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let base = i.base();
    for resource in [
        format!("acct:alerts@{}", i.domain),
        format!("acct:ALERTS@{}", i.domain),
        format!("acct:@alerts@{}", i.domain),
        format!("{base}/actors/alerts"),
    ] {
        let resp = client()
            .get(
                url::Url::parse_with_params(
                    &format!("{base}/.well-known/webfinger"),
                    &[("resource", resource.as_str())],
                )
                .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{resource}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/jrd+json"));
        let w: Value = resp.json().await.unwrap();
        assert_eq!(w["subject"], format!("acct:alerts@{}", i.domain));
        let links = w["links"].as_array().unwrap();
        let own = links
            .iter()
            .find(|l| l["rel"] == "self")
            .expect("self link");
        assert_eq!(own["type"], "application/activity+json");
        assert_eq!(own["href"], format!("{base}/actors/alerts"));
        assert!(links
            .iter()
            .any(|l| l["rel"] == "http://webfinger.net/rel/profile-page"));
    }
    // Cacheable, with conditional GET.
    let url = format!(
        "{base}/.well-known/webfinger?resource=acct:alerts@{}",
        i.domain
    );
    let first = client().get(&url).send().await.unwrap();
    assert!(first.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let again = client()
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = client()
        .get(format!(
            "{base}/.well-known/webfinger?resource=acct:nobody@{}",
            i.domain
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let other_host = client()
        .get(format!(
            "{base}/.well-known/webfinger?resource=acct:alerts@elsewhere.example"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(other_host.status(), 404);
    let no_resource = client()
        .get(format!("{base}/.well-known/webfinger"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_resource.status(), 400);
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodeinfo_and_host_meta_are_served() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let base = i.base();
    let links: Value = client()
        .get(format!("{base}/.well-known/nodeinfo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hrefs: Vec<&str> = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["href"].as_str().unwrap())
        .collect();
    assert_eq!(
        hrefs,
        vec![
            format!("{base}/nodeinfo/2.0"),
            format!("{base}/nodeinfo/2.1")
        ]
    );
    for version in ["2.0", "2.1"] {
        let n: Value = client()
            .get(format!("{base}/nodeinfo/{version}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(n["version"], version);
        assert_eq!(n["software"]["name"], "tocsin");
        assert_eq!(n["software"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(n["protocols"], serde_json::json!(["activitypub"]));
        assert_eq!(n["usage"]["users"]["total"], 1);
        assert_eq!(n["openRegistrations"], false);
        assert!(n["services"]["inbound"].is_array());
    }
    let missing = client()
        .get(format!("{base}/nodeinfo/9.9"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let xrd = client()
        .get(format!("{base}/.well-known/host-meta"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(xrd.contains(&format!(
        "template=\"{base}/.well-known/webfinger?resource={{uri}}\""
    )));
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_paths_answer_404_for_what_they_lack() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let base = i.base();
    let status = |method: reqwest::Method, path: &str| {
        let request = client().request(method, format!("{base}{path}"));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(reqwest::Method::GET, "/actors/alerts").await, 200);
    for missing in [
        "/actors",
        "/actors/",
        "/actors/nobody",
        "/actors/alerts/",
        "/actors/alerts/unknown",
        "/actors/alerts/actions/not-a-number",
        "/alerts",
        "/alerts/00000000-0000-0000-0000-000000000000",
        "/nodeinfo",
    ] {
        assert_eq!(
            status(reqwest::Method::GET, missing).await,
            404,
            "{missing}"
        );
    }
    // Routes are per method: another method finds no route.
    assert_eq!(status(reqwest::Method::POST, "/actors/alerts").await, 404);
    assert_eq!(status(reqwest::Method::DELETE, "/alerts/x").await, 404);
    // The actor's inbox is reached: an unsigned POST is refused by it.
    let unsigned = client()
        .post(format!("{base}/actors/alerts/inbox"))
        .header("Content-Type", "application/activity+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400, "{:?}", unsigned.text().await);
    i.stop().await;
}
