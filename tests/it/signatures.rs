//! HTTP signatures: RFC 9421 (RSA and Ed25519) accepted on the inbox beside
//! draft-cavage, and the double knock on delivery (RFC 9421 first,
//! draft-cavage on refusal, remembered per host).

use crate::common::{
    eventually,
    peer::{fixture, FakePeer},
    postgres_available, Backend, TestInstance,
};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use std::time::Duration;
use tocsin::{
    db,
    federation::activities::follow::{follow_remote, local_actor},
    signatures::{ld, multikey, rfc9421::SigningKey},
};

const WAIT: Duration = Duration::from_secs(15);

async fn followers(i: &TestInstance) -> Vec<String> {
    let us = local_actor(&i.server.data, "alerts").await.unwrap();
    i.server
        .state
        .db
        .run(move |c| db::follows::followers(c, us.id))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.ap_id)
        .collect()
}

async fn signature_style(i: &TestInstance, host: &str) -> Option<String> {
    let host = host.to_string();
    i.server
        .state
        .db
        .run(move |c| db::deliveries::signature_style(c, &host))
        .await
        .unwrap()
}

/// A Follow from the Mastodon fixture actor with a fresh id.
fn follow(peer: &FakePeer, i: &TestInstance, n: u32) -> String {
    let text = peer.rewrite(
        &fixture("mastodon/follow.json"),
        "mastodon.example",
        &i.base(),
    );
    let mut json: Value = serde_json::from_str(&text).unwrap();
    json["id"] = json!(format!("{}/follows/{n}", peer.base));
    json.to_string()
}

async fn rfc9421_on_the_inbox_and_the_double_knock(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let actor = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let rsa_key_id = format!("{actor}#main-key");
    let inbox = format!("{}/inbox", i.base());

    // A wrong Content-Digest is refused and stores nothing.
    let key = peer.private_key();
    let (status, body) = peer
        .post_signed_rfc9421(
            &inbox,
            &follow(&peer, &i, 1),
            &rsa_key_id,
            SigningKey::Rsa(&key),
            Some("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(followers(&i).await.is_empty());

    // RSA (rsa-v1_5-sha256), as Mastodon 4.5+ and Fedify sign.
    let (status, body) = peer
        .post_signed_rfc9421(
            &inbox,
            &follow(&peer, &i, 2),
            &rsa_key_id,
            SigningKey::Rsa(&key),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    assert_eq!(followers(&i).await, vec![actor.clone()]);

    // Our Accept knocks twice at this draft-cavage-only peer: RFC 9421 is
    // refused, draft-cavage is accepted and remembered for the host.
    assert!(
        eventually(WAIT, || async {
            peer.received().iter().any(|r| r.body["type"] == "Accept")
        })
        .await,
        "the Accept arrived"
    );
    assert!(peer.received().iter().all(|r| r.signature_ok));
    assert_eq!(peer.rfc9421_refused(), 1);
    assert!(
        eventually(WAIT, || async {
            signature_style(&i, &peer.domain).await.as_deref() == Some("cavage")
        })
        .await
    );

    // Ed25519 (`ed25519`) with the key the actor publishes in assertionMethod.
    let ed = Ed25519KeyPair::from_seed_unchecked(&[42u8; 32]).unwrap();
    let mut doc: Value = serde_json::from_str(&peer.rewrite(
        &fixture("mastodon/actor.json"),
        "mastodon.example",
        &i.base(),
    ))
    .unwrap();
    let ed_key_id = format!("{actor}#ed25519-key");
    doc["assertionMethod"] = json!([{
        "id": ed_key_id,
        "type": "Multikey",
        "controller": actor,
        "publicKeyMultibase": multikey::encode_ed25519_public(ed.public_key().as_ref()),
    }]);
    peer.serve(actor.strip_prefix(&peer.base).unwrap(), doc.to_string());
    let (status, body) = peer
        .post_signed_rfc9421(
            &inbox,
            &follow(&peer, &i, 3),
            &ed_key_id,
            SigningKey::Ed25519(&ed),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    // A key the actor does not publish is refused.
    let other = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
    let (status, _) = peer
        .post_signed_rfc9421(
            &inbox,
            &follow(&peer, &i, 4),
            &ed_key_id,
            SigningKey::Ed25519(&other),
            None,
        )
        .await;
    assert_eq!(status, 401);

    // The second Accept goes straight with draft-cavage: no new refusal.
    assert!(
        eventually(WAIT, || async {
            peer.received()
                .iter()
                .filter(|r| r.body["type"] == "Accept")
                .count()
                == 2
        })
        .await
    );
    assert_eq!(peer.rfc9421_refused(), 1, "the host's style was remembered");
    peer.stop().await;
    i.stop().await;
}

/// Between two Tocsin instances the first knock (RFC 9421) is accepted.
async fn instances_speak_rfc9421(backend: Backend) {
    let a = TestInstance::start(backend).await;
    let b = TestInstance::start(backend).await;
    let us = local_actor(&a.server.data, "alerts").await.unwrap();
    follow_remote(&a.server.data, &us, &format!("@alerts@{}", b.domain))
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || async { followers(&b).await.len() == 1 }).await,
        "b stored the follower"
    );
    assert!(
        eventually(WAIT, || async {
            signature_style(&a, &b.domain).await.as_deref() == Some("rfc9421")
        })
        .await,
        "the first knock was accepted: {:?}",
        signature_style(&a, &b.domain).await
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn rfc9421_on_the_inbox_and_the_double_knock_sqlite() {
    rfc9421_on_the_inbox_and_the_double_knock(Backend::Sqlite).await;
}

#[tokio::test]
async fn rfc9421_on_the_inbox_and_the_double_knock_postgres() {
    if postgres_available() {
        rfc9421_on_the_inbox_and_the_double_knock(Backend::Postgres).await;
    }
}

#[tokio::test]
async fn instances_speak_rfc9421_sqlite() {
    instances_speak_rfc9421(Backend::Sqlite).await;
}

#[tokio::test]
async fn instances_speak_rfc9421_postgres() {
    if postgres_available() {
        instances_speak_rfc9421(Backend::Postgres).await;
    }
}

/// A Mastodon edit forwarded by another server with only a Linked-Data
/// signature by its author (what Mastodon before 4.7 relies on) is applied
/// without a refetch: the origin does not serve the note, so nothing but
/// the signature can vouch for it. A copy changed after signing is not.
async fn forwarded_edit_with_an_ld_signature(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = crate::fixtures::following_alice(&i, &peer).await;
    let inbox = format!("{}/inbox", i.base());
    let rw = |f: &str| peer.rewrite(&fixture(f), "mastodon.example", &i.base());
    let (status, body) = peer
        .post_signed(
            &inbox,
            &rw("mastodon/create_note.json"),
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    let note_id = format!("{alice}/statuses/115569651706565133");
    let stored_html = || {
        let (db, id) = (i.server.state.db.clone(), note_id.clone());
        async move {
            db.run(move |c| db::alerts::by_ap_id(c, &id))
                .await
                .unwrap()
                .expect("stored")
                .content_html
        }
    };
    let before = stored_html().await;

    // Bob, on another account, passes alice's edit on.
    let bob = peer.serve_actor_fixture("gotosocial/actor.json", "gts.example", &i.base());
    let bob_key = format!("{bob}/main-key");
    let mut update: Value = serde_json::from_str(&rw("mastodon/update_note.json")).unwrap();
    update.as_object_mut().unwrap().remove("signature");
    update["object"]["content"] = json!("<p>forwarded edit</p>");
    update["object"]["contentMap"] = json!({"en": "<p>forwarded edit</p>"});
    ld::sign(
        &mut update,
        &peer.private_key(),
        &format!("{alice}#main-key"),
        chrono::Utc::now(),
    )
    .unwrap();

    let mut forged = update.clone();
    forged["id"] = json!(format!("{note_id}#updates/forged"));
    forged["object"]["content"] = json!("<p>forged</p>");
    forged["object"]["contentMap"] = json!({"en": "<p>forged</p>"});
    let (status, body) = peer
        .post_signed(&inbox, &forged.to_string(), &bob_key)
        .await;
    assert_ne!(
        status, 202,
        "a forged forward needs the origin, which is silent: {body}"
    );
    crate::common::inbox_settled(&i.server.state).await;
    assert_eq!(stored_html().await, before, "forged edit not applied");

    let (status, body) = peer
        .post_signed(&inbox, &update.to_string(), &bob_key)
        .await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    let after = stored_html().await;
    assert!(after.contains("forwarded edit"), "edit applied: {after}");
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_edit_with_an_ld_signature_sqlite() {
    forwarded_edit_with_an_ld_signature(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_edit_with_an_ld_signature_postgres() {
    if postgres_available() {
        forwarded_edit_with_an_ld_signature(Backend::Postgres).await;
    }
}
