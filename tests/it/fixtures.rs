//! Real payload shapes from Mastodon, GoToSocial, WordPress and Lemmy
//! (tests/fixtures/README.md says where each comes from): parsed into our
//! types and handled end to end against a fake peer.

use crate::common::{
    eventually,
    peer::{fixture, FakePeer},
    Backend, TestInstance,
};
use std::time::Duration;
use tocsin::{
    db,
    federation::{
        activities::{
            accept::Accept,
            follow::{follow_remote, local_actor, Follow},
            undo_follow::UndoFollow,
        },
        objects::actor::ActorJson,
    },
};

#[test]
fn actors_from_every_software_parse() {
    for (file, kind) in [
        ("mastodon/actor.json", "Person"),
        ("gotosocial/actor.json", "Person"),
        ("wordpress/actor.json", ""),
        ("lemmy/actor.json", "Person"),
    ] {
        let actor: ActorJson =
            serde_json::from_str(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        if !kind.is_empty() {
            assert_eq!(actor.kind, kind, "{file}");
        }
        assert!(
            actor.public_key.public_key_pem.contains("PUBLIC KEY"),
            "{file}"
        );
        assert!(
            actor.public_key.id.starts_with(actor.id.as_str()),
            "{file}: key id"
        );
        tocsin::signatures::keys::parse_public_pem(&actor.public_key.public_key_pem)
            .unwrap_or_else(|e| panic!("{file}: key does not parse: {e}"));
    }
    let masto: ActorJson = serde_json::from_str(&fixture("mastodon/actor.json")).unwrap();
    assert!(
        masto.endpoints.unwrap().shared_inbox.is_some(),
        "Mastodon has a shared inbox"
    );
}

#[test]
fn follow_and_undo_from_mastodon_and_gotosocial_parse() {
    for dir in ["mastodon", "gotosocial"] {
        let follow: Follow = serde_json::from_str(&fixture(&format!("{dir}/follow.json"))).unwrap();
        assert_eq!(
            follow.object.inner().as_str(),
            "https://tocsin.example/actors/alerts",
            "{dir}"
        );
        let undo: UndoFollow =
            serde_json::from_str(&fixture(&format!("{dir}/undo_follow.json"))).unwrap();
        assert_eq!(undo.actor.inner(), follow.actor.inner(), "{dir}");
    }
    let accept: Accept = serde_json::from_str(&fixture("mastodon/accept_follow.json")).unwrap();
    assert!(accept
        .actor
        .inner()
        .as_str()
        .starts_with("https://mastodon.example/"));
}

/// A Follow from `dir`'s fixture actor is accepted: the follower is stored
/// and a signed Accept of that very Follow reaches the follower's inbox;
/// then the fixture Undo removes the follower.
async fn follow_then_undo(dir: &str, host: &str, user_path: &str) {
    let i = TestInstance::start(Backend::Sqlite).await;
    let peer = FakePeer::start().await;
    let actor_id = peer.serve_actor_fixture(&format!("{dir}/actor.json"), host, &i.base());
    assert!(actor_id.ends_with(user_path));
    let actor_json: serde_json::Value = serde_json::from_str(&peer.rewrite(
        &fixture(&format!("{dir}/actor.json")),
        host,
        &i.base(),
    ))
    .unwrap();
    let key_id = actor_json["publicKey"]["id"].as_str().unwrap().to_string();
    let follow = peer.rewrite(&fixture(&format!("{dir}/follow.json")), host, &i.base());
    let follow_json: serde_json::Value = serde_json::from_str(&follow).unwrap();
    let inbox = format!("{}/inbox", i.base());

    let (status, body) = peer.post_signed(&inbox, &follow, &key_id).await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    let accept_arrived = eventually(Duration::from_secs(10), || async {
        peer.received().iter().any(|r| r.body["type"] == "Accept")
    })
    .await;
    assert!(accept_arrived, "no Accept reached the follower");
    let accept = peer
        .received()
        .into_iter()
        .find(|r| r.body["type"] == "Accept")
        .unwrap();
    assert!(
        accept.signature_ok,
        "Accept signature verifies with our published key"
    );
    assert_eq!(
        accept.key_id,
        Some(format!("{}/actors/alerts#main-key", i.base()))
    );
    assert_eq!(
        accept.path,
        format!("{user_path}/inbox"),
        "sent to the follower's own inbox"
    );
    assert_eq!(accept.body["actor"], format!("{}/actors/alerts", i.base()));
    assert_eq!(accept.body["object"]["id"], follow_json["id"]);
    assert_eq!(accept.body["object"]["actor"], actor_id.as_str());

    let us = local_actor(&i.server.data, "alerts").await.unwrap();
    let us_id = us.id;
    let count = |db: tocsin::db::Db| async move {
        db.run(move |c| db::follows::follower_count(c, us_id))
            .await
            .unwrap()
    };
    assert_eq!(count(i.server.state.db.clone()).await, 1);

    let undo = peer.rewrite(
        &fixture(&format!("{dir}/undo_follow.json")),
        host,
        &i.base(),
    );
    let (status, body) = peer.post_signed(&inbox, &undo, &key_id).await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    assert_eq!(
        count(i.server.state.db.clone()).await,
        0,
        "Undo removed the follower"
    );
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mastodon_follow_and_undo_are_handled() {
    follow_then_undo("mastodon", "mastodon.example", "/users/alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gotosocial_follow_and_undo_are_handled() {
    follow_then_undo("gotosocial", "gts.example", "/users/bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mastodon_accept_and_reject_of_our_follow_are_recorded() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let us = local_actor(&i.server.data, "alerts").await.unwrap();
    follow_remote(&i.server.data, &us, &format!("@alice@{}", peer.domain))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            peer.received().iter().any(|r| r.body["type"] == "Follow")
        })
        .await
    );
    let follow = peer
        .received()
        .into_iter()
        .find(|r| r.body["type"] == "Follow")
        .unwrap();
    assert!(follow.signature_ok);
    assert_eq!(follow.body["object"], alice.as_str());
    let follow_id = follow.body["id"].as_str().unwrap().to_string();

    let state = |db: tocsin::db::Db, alice: String, us: i64| async move {
        db.run(move |c| {
            let a = db::actors::by_ap_id(c, &alice)?.unwrap();
            Ok(db::follows::find(c, us, a.id)?.map(|r| r.state))
        })
        .await
        .unwrap()
    };
    assert_eq!(
        state(i.server.state.db.clone(), alice.clone(), us.id)
            .await
            .as_deref(),
        Some("pending")
    );

    let accept = peer
        .rewrite(
            &fixture("mastodon/accept_follow.json"),
            "mastodon.example",
            &i.base(),
        )
        .replace(&format!("{}/activities/follow/1", i.base()), &follow_id);
    let (status, body) = peer
        .post_signed(
            &format!("{}/inbox", i.base()),
            &accept,
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    assert_eq!(
        state(i.server.state.db.clone(), alice.clone(), us.id)
            .await
            .as_deref(),
        Some("accepted")
    );

    let reject = peer
        .rewrite(
            &fixture("mastodon/reject_follow.json"),
            "mastodon.example",
            &i.base(),
        )
        .replace(&format!("{}/activities/follow/1", i.base()), &follow_id);
    let (status, body) = peer
        .post_signed(
            &format!("{}/inbox", i.base()),
            &reject,
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    assert_eq!(
        state(i.server.state.db.clone(), alice.clone(), us.id)
            .await
            .as_deref(),
        Some("rejected")
    );
    i.stop().await;
    peer.stop().await;
}

#[test]
fn notes_articles_and_pages_from_every_software_become_alerts() {
    use tocsin::federation::{activities::create::CreateNote, objects::alert::values_from_note};
    for (file, kind, lang) in [
        ("mastodon/create_note.json", "Note", "en"),
        ("gotosocial/create_note.json", "Note", "en"),
        ("wordpress/create_note.json", "Note", ""),
        ("wordpress/create_article.json", "Article", ""),
        ("lemmy/create_page.json", "Page", ""),
    ] {
        let create: CreateNote =
            serde_json::from_str(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(create.object.kind, kind, "{file}");
        let v = values_from_note(&create.object, 1);
        assert!(!v.title.is_empty(), "{file}: a title is derived");
        assert!(!v.content_html.is_empty(), "{file}");
        assert!(!v.content_html.contains("<script"), "{file}");
        if !lang.is_empty() {
            assert_eq!(v.language, lang, "{file}");
        }
        assert!(v.published_at.is_some(), "{file}");
    }
    let gts: CreateNote = serde_json::from_str(&fixture("gotosocial/create_note.json")).unwrap();
    assert!(!gts.object.to.is_empty(), "a lone `to` string is accepted");
}

/// Our organisation follows alice (accepted), so her posts are wanted.
pub(crate) async fn following_alice(i: &TestInstance, peer: &FakePeer) -> String {
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let us = local_actor(&i.server.data, "alerts").await.unwrap();
    follow_remote(&i.server.data, &us, &format!("@alice@{}", peer.domain))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            peer.received().iter().any(|r| r.body["type"] == "Follow")
        })
        .await
    );
    let follow_id = peer
        .received()
        .into_iter()
        .find(|r| r.body["type"] == "Follow")
        .unwrap()
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let accept = peer
        .rewrite(
            &fixture("mastodon/accept_follow.json"),
            "mastodon.example",
            &i.base(),
        )
        .replace(&format!("{}/activities/follow/1", i.base()), &follow_id);
    let (status, _) = peer
        .post_signed(
            &format!("{}/inbox", i.base()),
            &accept,
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 202);
    crate::common::inbox_settled(&i.server.state).await;
    alice
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mastodon_create_update_delete_of_a_note_change_our_copy() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let peer = FakePeer::start().await;
    let alice = following_alice(&i, &peer).await;
    let key = format!("{alice}#main-key");
    let inbox = format!("{}/inbox", i.base());
    let rw = |f: &str| peer.rewrite(&fixture(f), "mastodon.example", &i.base());
    let note_id = format!("{alice}/statuses/115569651706565133");
    let copy = |db: tocsin::db::Db, id: String| async move {
        db.run(move |c| db::alerts::by_ap_id(c, &id)).await.unwrap()
    };

    let (status, body) = peer
        .post_signed(&inbox, &rw("mastodon/create_note.json"), &key)
        .await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    let stored = copy(i.server.state.db.clone(), note_id.clone())
        .await
        .expect("stored");
    assert!(!stored.local);
    let first_html = stored.content_html.clone();

    // An Update older than our copy is ignored; a newer one replaces it.
    let update = rw("mastodon/update_note.json");
    let mut old: serde_json::Value = serde_json::from_str(&update).unwrap();
    old["id"] = serde_json::json!(format!("{alice}/statuses/115569651706565133#updates/1"));
    old["object"]["updated"] = serde_json::json!("2000-01-01T00:00:00Z");
    old["object"]["content"] = serde_json::json!("<p>stale</p>");
    old["object"]["contentMap"] = serde_json::json!({"en": "<p>stale</p>"});
    let (status, _) = peer.post_signed(&inbox, &old.to_string(), &key).await;
    assert_eq!(status, 202);
    crate::common::inbox_settled(&i.server.state).await;
    assert_eq!(
        copy(i.server.state.db.clone(), note_id.clone())
            .await
            .unwrap()
            .content_html,
        first_html,
        "older Update ignored"
    );
    let (status, body) = peer.post_signed(&inbox, &update, &key).await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    let edited = copy(i.server.state.db.clone(), note_id.clone())
        .await
        .unwrap();
    assert_ne!(edited.content_html, first_html, "newer Update applied");

    let (status, _) = peer
        .post_signed(&inbox, &rw("mastodon/delete_note.json"), &key)
        .await;
    assert_eq!(status, 202);
    crate::common::inbox_settled(&i.server.state).await;
    assert_eq!(
        copy(i.server.state.db.clone(), note_id.clone())
            .await
            .unwrap()
            .status,
        "deleted"
    );
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_before_its_create_is_remembered() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let peer = FakePeer::start().await;
    let alice = following_alice(&i, &peer).await;
    let key = format!("{alice}#main-key");
    let inbox = format!("{}/inbox", i.base());
    let rw = |f: &str| peer.rewrite(&fixture(f), "mastodon.example", &i.base());
    assert_eq!(
        peer.post_signed(&inbox, &rw("mastodon/delete_note.json"), &key)
            .await
            .0,
        202
    );
    assert_eq!(
        peer.post_signed(&inbox, &rw("mastodon/create_note.json"), &key)
            .await
            .0,
        202
    );
    let id = format!("{alice}/statuses/115569651706565133");
    let copy = i
        .server
        .state
        .db
        .run(move |c| db::alerts::by_ap_id(c, &id))
        .await
        .unwrap();
    assert!(
        copy.is_none(),
        "the late Create does not resurrect a deleted note"
    );
    i.stop().await;
    peer.stop().await;
}

/// Creates are applied many to a transaction, by the inbox's writer as
/// they arrive and by the batch lane from the queue; one that the database
/// refuses (here a trigger, standing in for any failure) must not take the
/// others with it: they are stored, and it stays queued with its error for
/// the one-at-a-time lane. Both ways are tried: Creates posted to the inbox
/// together, and Creates queued together.
async fn one_failing_create_in_a_batch_spares_the_others(backend: Backend) {
    use diesel::connection::SimpleConnection;
    const N: usize = 12;
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = following_alice(&i, &peer).await;
    let create: serde_json::Value = serde_json::from_str(&peer.rewrite(
        &fixture("mastodon/create_note.json"),
        "mastodon.example",
        &i.base(),
    ))
    .unwrap();
    let note = |way: &str, n: usize| format!("{alice}/statuses/{way}-{n}");
    let body = |way: &str, n: usize| {
        let mut body = create.clone();
        body["id"] = format!("{}/activity", note(way, n)).into();
        body["object"]["id"] = note(way, n).into();
        body["object"]["content"] = format!("<p>Journalist detained, report {n}</p>").into();
        body.to_string()
    };
    let refused = [note("inbox", 5), note("queue", 5)];
    let refuse = match backend {
        Backend::Sqlite => format!(
            "CREATE TRIGGER test_refuse BEFORE INSERT ON alerts \
             WHEN NEW.ap_id IN ('{}', '{}') \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            refused[0], refused[1]
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION test_refuse() RETURNS trigger AS $$ BEGIN \
             IF NEW.ap_id IN ('{}', '{}') THEN RAISE EXCEPTION 'refused by the test'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER test_refuse BEFORE INSERT ON alerts \
             FOR EACH ROW EXECUTE FUNCTION test_refuse();",
            refused[0], refused[1]
        ),
    };
    i.server
        .state
        .db
        .conn()
        .unwrap()
        .batch_execute(&refuse)
        .unwrap();

    // Posted to the inbox at once: the writer takes them together.
    let (inbox, key) = (format!("{}/inbox", i.base()), format!("{alice}#main-key"));
    let posts = (0..N).map(|n| {
        let (peer, inbox, key, body) = (&peer, &inbox, &key, body("inbox", n));
        async move { peer.post_signed(inbox, &body, key).await }
    });
    for (status, answer) in futures::future::join_all(posts).await {
        assert_eq!(status, 202, "{answer}");
    }
    // Queued in one transaction: the batch lane claims them together.
    let items: Vec<db::inbox_queue::NewQueued> = (0..N)
        .map(|n| db::inbox_queue::NewQueued {
            ap_id: format!("{}/activity", note("queue", n)),
            signer: alice.clone(),
            body: body("queue", n),
            batch: true,
        })
        .collect();
    i.server
        .state
        .db
        .write(move |conn| db::inbox_queue::enqueue(conn, &items))
        .await
        .unwrap();

    let state_db = i.server.state.db.clone();
    let stored = |id: String| {
        let db = state_db.clone();
        async move { db.run(move |c| db::alerts::by_ap_id(c, &id)).await.unwrap() }
    };
    let others_stored = eventually(Duration::from_secs(20), || async {
        for way in ["inbox", "queue"] {
            for n in (0..N).filter(|n| *n != 5) {
                if stored(note(way, n)).await.is_none() {
                    return false;
                }
            }
        }
        true
    })
    .await;
    assert!(others_stored, "the other Creates were not stored");
    // The refused ones are kept, in the other lane, with their error.
    let kept = eventually(Duration::from_secs(20), || async {
        let mut rows = state_db
            .run(|conn| {
                use diesel::prelude::*;
                use tocsin::db::schema::inbox_queue;
                Ok(inbox_queue::table
                    .select((
                        inbox_queue::ap_id,
                        inbox_queue::batch,
                        inbox_queue::last_error,
                    ))
                    .load::<(String, bool, Option<String>)>(conn)?)
            })
            .await
            .unwrap();
        rows.sort();
        rows.len() == 2
            && rows
                .iter()
                .zip(&refused)
                .all(|((ap_id, batch, error), note)| {
                    *ap_id == format!("{note}/activity")
                        && !batch
                        && error
                            .as_deref()
                            .is_some_and(|e| e.contains("refused by the test"))
                })
    })
    .await;
    assert!(kept, "the refused Creates are not kept with their error");
    for note in refused {
        assert!(
            stored(note).await.is_none(),
            "a refused Create has no alert"
        );
    }
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_create_in_a_batch_spares_the_others_sqlite() {
    one_failing_create_in_a_batch_spares_the_others(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_create_in_a_batch_spares_the_others_postgres() {
    if crate::common::postgres_available() {
        one_failing_create_in_a_batch_spares_the_others(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_of_actors_nobody_follows_are_not_stored() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let create = peer.rewrite(
        &fixture("mastodon/create_note.json"),
        "mastodon.example",
        &i.base(),
    );
    assert_eq!(
        peer.post_signed(
            &format!("{}/inbox", i.base()),
            &create,
            &format!("{alice}#main-key")
        )
        .await
        .0,
        202
    );
    let id = format!("{alice}/statuses/115569651706565133");
    assert!(i
        .server
        .state
        .db
        .run(move |c| db::alerts::by_ap_id(c, &id))
        .await
        .unwrap()
        .is_none());
    i.stop().await;
    peer.stop().await;
}
