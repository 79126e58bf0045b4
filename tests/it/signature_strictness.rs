//! Signature strictness beyond the bad-input table: a Date a little in the
//! future is tolerated, further is not; a rotated key is picked up by
//! refetching the actor once, and the old key then fails; a valid key of
//! another actor does not make its owner the activity's actor; a proof on
//! a direct activity must hold.

use crate::common::{peer::fixture, peer::FakePeer, postgres_available, Backend, TestInstance};
use serde_json::Value;
use std::time::{Duration, SystemTime};
use tocsin::signatures::keys::generate_rsa_keypair;

async fn clock_skew_and_key_rotation(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let key = format!("{alice}#main-key");
    let inbox = format!("{}/inbox", i.base());

    // Ten minutes ahead is refused (the default tolerates five).
    let ahead = SystemTime::now() + Duration::from_secs(600);
    let (status, body) = peer
        .post_signed_at(&inbox, &peer.follow_of(&i.base(), 1), &key, ahead)
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("future"), "{body}");
    // Two minutes ahead (a slow clock) is tolerated.
    let slightly = SystemTime::now() + Duration::from_secs(120);
    let (status, body) = peer
        .post_signed_at(&inbox, &peer.follow_of(&i.base(), 2), &key, slightly)
        .await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;

    // Alice's server rotates her key; we hold the old one.
    let rotated = generate_rsa_keypair().unwrap();
    let old_pem = serde_json::to_string(
        serde_json::from_str::<Value>(&peer.rewrite(
            &fixture("mastodon/actor.json"),
            "mastodon.example",
            &i.base(),
        ))
        .unwrap()["publicKey"]["publicKeyPem"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let actor_doc = peer
        .rewrite(
            &fixture("mastodon/actor.json"),
            "mastodon.example",
            &i.base(),
        )
        .replace(
            &old_pem,
            &serde_json::to_string(&rotated.public_pem).unwrap(),
        );
    assert_ne!(
        actor_doc,
        peer.rewrite(
            &fixture("mastodon/actor.json"),
            "mastodon.example",
            &i.base()
        )
    );
    let path = alice.strip_prefix(&peer.base).unwrap().to_string();
    peer.serve(&path, actor_doc);
    let fetched = peer.fetches();
    let (status, body) = FakePeer::post_signed_by(
        &inbox,
        &peer.follow_of(&i.base(), 3),
        &key,
        &rotated.private_pem,
        SystemTime::now(),
    )
    .await;
    assert_eq!(
        status, 202,
        "the new key verifies after one refetch: {body}"
    );
    assert!(peer.fetches() > fetched, "the actor was fetched again");
    // The old key now fails, even after its refetch.
    let (status, body) = peer
        .post_signed(&inbox, &peer.follow_of(&i.base(), 4), &key)
        .await;
    assert_eq!(status, 401, "{body}");
    i.stop().await;
    peer.stop().await;
}

async fn the_signer_must_be_the_actor(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    // Mallory, on the same server, has a valid key of her own.
    let mallory = peer
        .rewrite(
            &fixture("mastodon/actor.json"),
            "mastodon.example",
            &i.base(),
        )
        .replace("/users/alice", "/users/mallory")
        .replace("\"alice\"", "\"mallory\"");
    peer.serve("/users/mallory", mallory);
    let mallory_key = format!("{}/users/mallory#main-key", peer.base);
    let inbox = format!("{}/inbox", i.base());
    // Alice's Follow signed by Mallory, with no proof by Alice: only
    // objects can be confirmed at their origin, so it is refused.
    let (status, body) = peer
        .post_signed(&inbox, &peer.follow_of(&i.base(), 1), &mallory_key)
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("signed by"), "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    let follows = i
        .server
        .state
        .db
        .run(|c| {
            use diesel::prelude::*;
            Ok(tocsin::db::schema::follows::table
                .count()
                .get_result::<i64>(c)?)
        })
        .await
        .unwrap();
    assert_eq!(follows, 0, "nothing was accepted in Alice's name");
    i.stop().await;
    peer.stop().await;
}

/// A direct activity (signed by its own actor) that carries an object
/// integrity proof is refused when the proof does not hold, although its
/// HTTP signature does; the same activity without the proof is accepted.
async fn a_proof_on_a_direct_activity_must_hold(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = crate::fixtures::following_alice(&i, &peer).await;
    let key = format!("{alice}#main-key");
    let inbox = format!("{}/inbox", i.base());
    let mut create = crate::common::create_note(&peer.base, &alice);
    create["proof"] = serde_json::json!({
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "verificationMethod": format!("{alice}#ed25519-key"),
        "proofPurpose": "assertionMethod",
        "proofValue": "z3MvGcVxzRzzpKF1HA11EjvfPZsN8NAb7kXBRfeTm3CBg2gcJLQM5hZNmj6Ccd9Lk4C1YueiQvVoKdKjmTFb4JWk"
    });
    let (status, body) = peer.post_signed(&inbox, &create.to_string(), &key).await;
    assert!(matches!(status, 400 | 401), "{status} {body}");
    create.as_object_mut().unwrap().remove("proof");
    let (status, body) = peer.post_signed(&inbox, &create.to_string(), &key).await;
    assert_eq!(status, 202, "{body}");
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_on_a_direct_activity_must_hold_sqlite() {
    a_proof_on_a_direct_activity_must_hold(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_on_a_direct_activity_must_hold_postgres() {
    if !postgres_available() {
        return;
    }
    a_proof_on_a_direct_activity_must_hold(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signer_must_be_the_actor_sqlite() {
    the_signer_must_be_the_actor(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signer_must_be_the_actor_postgres() {
    if postgres_available() {
        the_signer_must_be_the_actor(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_and_key_rotation_sqlite() {
    clock_skew_and_key_rotation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_and_key_rotation_postgres() {
    if postgres_available() {
        clock_skew_and_key_rotation(Backend::Postgres).await;
    }
}
