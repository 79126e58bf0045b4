//! The hourly upkeep: ids of received activities older than
//! `federation.remember_received_days` are forgotten in batches, newer ones
//! stay, and a copy of a forgotten activity is applied again without
//! harm.

use crate::common::{inbox_settled, peer::FakePeer, postgres_available, Backend, TestInstance};
use diesel::prelude::*;
use tocsin::{
    db::{self, activities::was_received, actors, follows, now_ms, schema::received_activities},
    ops::maintenance::forget_received,
};

const DAY: i64 = 86_400_000;

/// More than one batch of old ids, so the batch loop must go round.
const OLD_IDS: usize = 12_345;

async fn old_ids_are_forgotten_and_a_copy_is_applied_again(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let base = i.base();
    let db = i.server.state.db.clone();
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &base);
    let key = format!("{alice}#main-key");
    let follow = peer.follow_of(&base, 1);
    let follow_id = format!("{}/follows/1", peer.base);
    let (status, body) = peer
        .post_signed(&format!("{base}/inbox"), &follow, &key)
        .await;
    assert_eq!(status, 202, "{body}");
    inbox_settled(&db).await;

    let (old, recent) = (now_ms() - 40 * DAY, now_ms() - DAY);
    let org = {
        let mut conn = db.conn().unwrap();
        actors::local_by_username(&mut conn, "alerts")
            .unwrap()
            .unwrap()
            .id
    };
    {
        let mut conn = db.conn().unwrap();
        assert!(was_received(&mut conn, &follow_id).unwrap());
        assert_eq!(follows::follower_count(&mut conn, org).unwrap(), 1);
        // The Follow was received 40 days ago, with many others; one id
        // is a day old.
        diesel::update(received_activities::table.find(&follow_id))
            .set(received_activities::received_at.eq(old))
            .execute(&mut conn)
            .unwrap();
        db::transaction(&mut conn, |conn| {
            for n in 0..OLD_IDS {
                diesel::insert_into(received_activities::table)
                    .values((
                        received_activities::ap_id
                            .eq(format!("https://old.example/activities/{n}")),
                        received_activities::received_at.eq(old),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
        .unwrap();
        diesel::insert_into(received_activities::table)
            .values((
                received_activities::ap_id.eq("https://recent.example/activities/1"),
                received_activities::received_at.eq(recent),
            ))
            .execute(&mut conn)
            .unwrap();
    }

    let (_stop, running) = tokio::sync::watch::channel(false);
    let forgotten = forget_received(&db, now_ms() - 30 * DAY, &running)
        .await
        .unwrap();
    assert_eq!(forgotten, OLD_IDS + 1, "every id older than 30 days goes");
    {
        let mut conn = db.conn().unwrap();
        assert!(!was_received(&mut conn, &follow_id).unwrap());
        assert!(was_received(&mut conn, "https://recent.example/activities/1").unwrap());
        let left: i64 = received_activities::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(left, 1, "only the recent id is left");
    }
    let again = forget_received(&db, now_ms() - 30 * DAY, &running)
        .await
        .unwrap();
    assert_eq!(again, 0);

    // After a restart (the process also remembers its latest ids in
    // memory), a fresh copy of the forgotten Follow is applied again:
    // still one follower, and its id is remembered anew.
    let i = i.pause().await.resume().await;
    let db = i.server.state.db.clone();
    let (status, body) = peer
        .post_signed(&format!("{base}/inbox"), &follow, &key)
        .await;
    assert_eq!(status, 202, "{body}");
    inbox_settled(&db).await;
    {
        let mut conn = db.conn().unwrap();
        assert!(was_received(&mut conn, &follow_id).unwrap());
        assert_eq!(follows::follower_count(&mut conn, org).unwrap(), 1);
    }
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_received_ids_are_forgotten_sqlite() {
    old_ids_are_forgotten_and_a_copy_is_applied_again(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_received_ids_are_forgotten_postgres() {
    if postgres_available() {
        old_ids_are_forgotten_and_a_copy_is_applied_again(Backend::Postgres).await;
    }
}
