//! Limits: rate limits (429 with Retry-After) on the inbox per client
//! address and per remote host, on the API and on logins; JSON depth and
//! recipient limits; security headers on every answer; no connection to
//! private addresses unless the test switch is on (SSRF).

use crate::common::{
    client, eventually, peer::FakePeer, postgres_available, prepare, Backend, TestInstance,
};
use diesel::prelude::*;
use serde_json::{json, Value};
use std::time::Duration;
use tocsin::{
    db::{self, schema::deliveries},
    federation::activities::follow::local_actor,
};

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let mut p = prepare(backend);
    p.config.limits.inbox_per_ip_per_minute = 5;
    p.config.limits.inbox_per_host_per_minute = 3;
    p.config.limits.api_per_ip_per_minute = 4;
    p.config.limits.login_per_ip_per_minute = 2;
    let i = TestInstance::start_prepared(p).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let key = format!("{alice}#main-key");
    let inbox = format!("{}/inbox", i.base());

    // Per remote host: the peer's fourth post within a minute.
    for n in 0..3 {
        let (status, body) = peer
            .post_signed(&inbox, &peer.follow_of(&i.base(), n), &key)
            .await;
        assert_eq!(status, 202, "post {n}: {body}");
    }
    let (status, body) = peer
        .post_signed(&inbox, &peer.follow_of(&i.base(), 3), &key)
        .await;
    assert_eq!(status, 429, "per host: {body}");
    // Per client address: the fifth and sixth inbox POSTs from 127.0.0.1.
    let unsigned = client()
        .post(&inbox)
        .header("Content-Type", "application/activity+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        unsigned.status(),
        400,
        "fifth post, under the address limit: checked and refused"
    );
    let over = client()
        .post(&inbox)
        .header("Content-Type", "application/activity+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 429, "sixth post from the address");
    assert!(
        (1..=60).contains(&retry_after(&over)),
        "Retry-After in seconds"
    );

    // The API and the login form have their own limits.
    for n in 0..4 {
        let resp = client()
            .get(format!("{}/api/v1/alerts", i.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "API call {n}");
    }
    let resp = client()
        .get(format!("{}/api/v1/alerts", i.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(retry_after(&resp) >= 1);
    for _ in 0..2 {
        let resp = client()
            .post(format!("{}/login", i.base()))
            .body("name=a&password=b")
            .send()
            .await
            .unwrap();
        assert_ne!(resp.status(), 429);
    }
    let resp = client()
        .post(format!("{}/login", i.base()))
        .body("name=a&password=b")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429, "third login attempt in a minute");
    assert!(retry_after(&resp) >= 1);
    // A person at the login form gets a page, not JSON.
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = resp.text().await.unwrap();
    assert!(page.contains("Too many login attempts"), "{page}");
    assert!(page.contains("<form"), "the form is shown again: {page}");
    // Pages are not limited.
    for _ in 0..10 {
        assert_eq!(client().get(i.base()).send().await.unwrap().status(), 200);
    }
    i.stop().await;
    peer.stop().await;
}

async fn hostile_bodies_are_refused_and_answers_carry_security_headers(backend: Backend) {
    let mut p = prepare(backend);
    p.config.limits.max_recipients = 5;
    let i = TestInstance::start_prepared(p).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let key = format!("{alice}#main-key");
    let inbox = format!("{}/inbox", i.base());

    // Deep nesting, signed correctly: refused before it is parsed.
    let mut deep: Value = serde_json::from_str(&peer.follow_of(&i.base(), 1)).unwrap();
    deep["tag"] = serde_json::from_str(&format!("{}1{}", "[".repeat(40), "]".repeat(40))).unwrap();
    let (status, body) = peer.post_signed(&inbox, &deep.to_string(), &key).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("deeper"), "{body}");
    // Too many recipients.
    let mut crowded: Value = serde_json::from_str(&peer.follow_of(&i.base(), 2)).unwrap();
    crowded["cc"] = json!((0..6)
        .map(|n| format!("{}/users/u{n}", peer.base))
        .collect::<Vec<_>>());
    let (status, body) = peer.post_signed(&inbox, &crowded.to_string(), &key).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("recipients"), "{body}");
    // The same activity within the limits is accepted.
    let (status, body) = peer
        .post_signed(&inbox, &peer.follow_of(&i.base(), 3), &key)
        .await;
    assert_eq!(status, 202, "{body}");
    // The API refuses deep JSON too.
    let token = db::tokens::create(&mut i.server.state.db.conn().unwrap(), "t").unwrap();
    let resp = client()
        .post(format!("{}/api/v1/alerts", i.base()))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(format!(
            "{{\"title\": {}1{}}}",
            "[".repeat(64),
            "]".repeat(64)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Security headers on pages, JSON documents and errors.
    for (path, accept) in [
        ("/", "text/html"),
        ("/actors/alerts", "application/activity+json"),
        ("/nowhere", "text/html"),
    ] {
        let resp = client()
            .get(format!("{}{path}", i.base()))
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let empty = h.get("content-length").is_some_and(|l| l == "0");
        assert!(
            h.contains_key("content-type") || empty,
            "{path}: a body has a type"
        );
    }
    let page = client().get(i.base()).send().await.unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html; charset=utf-8"));
    i.stop().await;
    peer.stop().await;
}

async fn private_addresses_are_refused_without_the_test_switch(backend: Backend) {
    let mut p = prepare(backend);
    p.config.federation.allow_private_addresses = false;
    let i = TestInstance::start_prepared(p).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    // The signer lives on loopback: its key is never fetched.
    let (status, body) = peer
        .post_signed(
            &format!("{}/inbox", i.base()),
            &peer.follow_of(&i.base(), 1),
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    // Deliveries to a literal loopback address and to a name that resolves
    // to one are never sent.
    let port = peer.domain.rsplit_once(':').unwrap().1.to_string();
    let literal = format!("http://127.0.0.1:{port}/inbox");
    let named = format!("http://localhost:{port}/users/alice/inbox");
    let org = local_actor(&i.server.data, "alerts").await.unwrap().id;
    let inboxes = vec![literal.clone(), named.clone()];
    i.server
        .state
        .db
        .run(move |c| {
            db::deliveries::enqueue(c, "http://x.invalid/ssrf/1", org, "Create", "{}", &inboxes)
        })
        .await
        .unwrap();
    i.server.state.delivery_wakeup.notify_one();
    let outcome = |inbox: String| {
        let db = i.server.state.db.clone();
        async move {
            db.run(move |c| {
                Ok(deliveries::table
                    .filter(deliveries::inbox.eq(&inbox))
                    .select((
                        deliveries::state,
                        deliveries::attempts,
                        deliveries::last_error,
                    ))
                    .first::<(String, i32, Option<String>)>(c)?)
            })
            .await
            .unwrap()
        }
    };
    assert!(
        eventually(Duration::from_secs(30), || async {
            let (state, _, error) = outcome(literal.clone()).await;
            state == db::deliveries::FAILED
                && error.is_some_and(|e| e.contains("not a public address"))
        })
        .await,
        "the literal address is refused for good: {:?}",
        outcome(literal.clone()).await
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            outcome(named.clone()).await.1 >= 1
        })
        .await,
        "the named one was tried"
    );
    assert!(
        peer.received().is_empty(),
        "nothing reached the loopback peer"
    );
    assert_eq!(peer.fetches(), 0, "nothing was fetched from it");
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_sqlite() {
    rate_limits_answer_429_with_retry_after(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_postgres() {
    if postgres_available() {
        rate_limits_answer_429_with_retry_after(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_refused_and_answers_carry_security_headers_sqlite() {
    hostile_bodies_are_refused_and_answers_carry_security_headers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_refused_and_answers_carry_security_headers_postgres() {
    if postgres_available() {
        hostile_bodies_are_refused_and_answers_carry_security_headers(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_without_the_test_switch_sqlite() {
    private_addresses_are_refused_without_the_test_switch(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_without_the_test_switch_postgres() {
    if postgres_available() {
        private_addresses_are_refused_without_the_test_switch(Backend::Postgres).await;
    }
}
