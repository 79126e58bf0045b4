//! Bad input at the inbox: each request gets a clear 4xx and nothing is
//! stored or delivered.

use crate::common::{
    client,
    peer::{fixture, FakePeer},
    prepare, Backend, TestInstance,
};
use diesel::prelude::*;
use std::time::{Duration, SystemTime};
use tocsin::{
    db::schema::{follows, outgoing_activities, received_activities},
    signatures::{
        cavage,
        keys::{generate_rsa_keypair, KeyCache},
    },
};

/// Rows in the tables an accepted Follow writes to.
async fn stored(i: &TestInstance) -> (i64, i64, i64) {
    i.server
        .state
        .db
        .run(|conn| {
            Ok((
                follows::table.count().get_result(conn)?,
                received_activities::table.count().get_result(conn)?,
                outgoing_activities::table.count().get_result(conn)?,
            ))
        })
        .await
        .unwrap()
}

struct Setup {
    instance: TestInstance,
    peer: FakePeer,
    inbox: String,
    follow: String,
    alice_key: String,
}

async fn setup() -> Setup {
    let mut prepared = prepare(Backend::Sqlite);
    prepared.config.server.max_body_bytes = 8 * 1024;
    let instance = TestInstance::start_prepared(prepared).await;
    let peer = FakePeer::start().await;
    let alice =
        peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &instance.base());
    let follow = peer.rewrite(
        &fixture("mastodon/follow.json"),
        "mastodon.example",
        &instance.base(),
    );
    Setup {
        inbox: format!("{}/actors/alerts/inbox", instance.base()),
        alice_key: format!("{alice}#main-key"),
        instance,
        peer,
        follow,
    }
}

/// POSTs `body` with a signature computed over `signed_body` by `key_pem`.
async fn post_with(
    url: &str,
    signed_body: &str,
    body: &str,
    key_id: &str,
    key_pem: &str,
    at: SystemTime,
) -> u16 {
    let key = KeyCache::default().private(key_pem).unwrap();
    let parsed = url::Url::parse(url).unwrap();
    let h = cavage::sign(
        "POST",
        &parsed,
        Some(signed_body.as_bytes()),
        key_id,
        &key,
        at,
    )
    .unwrap();
    client()
        .post(url)
        .header("Content-Type", "application/activity+json")
        .header("Date", h.date)
        .header("Digest", h.digest.unwrap())
        .header("Signature", h.signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_4xx_and_store_nothing() {
    let s = setup().await;
    let fixture_key = crate::common::peer::fixture_private_key();
    let now = SystemTime::now();

    // Unsigned.
    let unsigned = client()
        .post(&s.inbox)
        .header("Content-Type", "application/activity+json")
        .body(s.follow.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401, "unsigned POST");
    let text = unsigned.text().await.unwrap();
    assert!(text.contains("not signed"), "{text}");

    // Signed by a key that is not the actor's.
    let stranger = generate_rsa_keypair().unwrap();
    assert_eq!(
        post_with(
            &s.inbox,
            &s.follow,
            &s.follow,
            &s.alice_key,
            &stranger.private_pem,
            now
        )
        .await,
        401,
        "foreign key"
    );

    // Signed by another actor's (valid) key.
    let mallory = s
        .peer
        .rewrite(
            &fixture("mastodon/actor.json"),
            "mastodon.example",
            &s.instance.base(),
        )
        .replace("/users/alice", "/users/mallory")
        .replace("\"alice\"", "\"mallory\"");
    s.peer.serve("/users/mallory", mallory);
    let mallory_key = format!("{}/users/mallory#main-key", s.peer.base);
    assert_eq!(
        post_with(
            &s.inbox,
            &s.follow,
            &s.follow,
            &mallory_key,
            &fixture_key,
            now
        )
        .await,
        401,
        "another actor's key"
    );

    // A Date two hours old.
    let old = now - Duration::from_secs(2 * 3600);
    assert_eq!(
        post_with(
            &s.inbox,
            &s.follow,
            &s.follow,
            &s.alice_key,
            &fixture_key,
            old
        )
        .await,
        401,
        "stale Date"
    );

    // Digest of another body.
    let tampered = s.follow.replace("Follow", "Follow ");
    assert_eq!(
        post_with(
            &s.inbox,
            &s.follow,
            &tampered,
            &s.alice_key,
            &fixture_key,
            now
        )
        .await,
        401,
        "digest mismatch"
    );

    // Malformed JSON, correctly signed.
    let broken = "{\"type\": \"Follow\", ";
    assert_eq!(
        post_with(&s.inbox, broken, broken, &s.alice_key, &fixture_key, now).await,
        400,
        "malformed JSON"
    );

    // Oversized body.
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(20 * 1024));
    assert_eq!(
        post_with(&s.inbox, &huge, &huge, &s.alice_key, &fixture_key, now).await,
        413,
        "oversized body"
    );

    assert_eq!(
        stored(&s.instance).await,
        (0, 0, 0),
        "nothing stored or queued"
    );

    // The same Follow, properly signed, is accepted once; a replay changes nothing.
    let (status, _) = s.peer.post_signed(&s.inbox, &s.follow, &s.alice_key).await;
    assert_eq!(status, 202);
    crate::common::inbox_settled(&s.instance.server.state.db).await;
    assert_eq!(stored(&s.instance).await, (1, 1, 1));
    let (status, _) = s.peer.post_signed(&s.inbox, &s.follow, &s.alice_key).await;
    assert_eq!(status, 202, "replay is acknowledged");
    crate::common::inbox_settled(&s.instance.server.state.db).await;
    assert_eq!(
        stored(&s.instance).await,
        (1, 1, 1),
        "replay changes nothing"
    );

    s.instance.stop().await;
    s.peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_from_an_unreachable_actor_is_refused() {
    let s = setup().await;
    // Alice's server forgets her: the key cannot be fetched.
    let ghost = s.follow.replace("/users/alice", "/users/ghost");
    let ghost_key = format!("{}/users/ghost#main-key", s.peer.base);
    let (status, body) = s.peer.post_signed(&s.inbox, &ghost, &ghost_key).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("cannot fetch the signing actor"), "{body}");
    assert_eq!(stored(&s.instance).await, (0, 0, 0));
    s.instance.stop().await;
    s.peer.stop().await;
}
