//! The hourly upkeep: ids of received activities older than
//! `federation.remember_received_days` are forgotten in batches, newer ones
//! stay, and a copy of a forgotten activity is applied again without
//! harm; outgoing activities older than `delivery.keep_sent_days` go with
//! their deliveries once none is pending.

use crate::common::{
    inbox_settled, peer::FakePeer, postgres_available, Backend, TestDb, TestInstance,
};
use diesel::prelude::*;
use tocsin::{
    db::{
        self,
        activities::was_received,
        actors,
        deliveries::{self, DONE, FAILED, GONE, PENDING},
        follows, now_ms,
        schema::{self, received_activities},
    },
    ops::maintenance::{forget_received, forget_sent},
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
    inbox_settled(&i.server.state).await;

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
    inbox_settled(&i.server.state).await;
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

/// More old sent activities than one batch of the upkeep.
const OLD_SENT: usize = 450;

/// Stores an activity `n` sent `age_ms` ago with one delivery per state in
/// `states`; returns its row id.
fn sent(conn: &mut db::DbConn, actor: i64, n: usize, age_ms: i64, states: &[&str]) -> i64 {
    let inboxes: Vec<String> = (0..states.len())
        .map(|k| format!("https://h{k}.example/inbox"))
        .collect();
    let id = deliveries::enqueue(
        conn,
        &format!("https://us.example/activities/{n}"),
        actor,
        "Create",
        "{}",
        &inboxes,
    )
    .unwrap();
    diesel::update(schema::outgoing_activities::table.find(id))
        .set(schema::outgoing_activities::created_at.eq(now_ms() - age_ms))
        .execute(conn)
        .unwrap();
    for (inbox, state) in inboxes.iter().zip(states) {
        diesel::update(
            schema::deliveries::table
                .filter(schema::deliveries::activity_id.eq(id))
                .filter(schema::deliveries::inbox.eq(inbox)),
        )
        .set(schema::deliveries::state.eq(*state))
        .execute(conn)
        .unwrap();
    }
    id
}

async fn old_sent_activities_are_forgotten(backend: Backend) {
    let test = TestDb::open(backend).await;
    let actor = test.org_actor().id;
    let db = test.state.db.clone();
    let (finished, waiting, recent) = {
        let mut conn = db.conn().unwrap();
        let conn = &mut *conn;
        let finished = sent(conn, actor, 0, 40 * DAY, &[DONE, FAILED, GONE]);
        let waiting = sent(conn, actor, 1, 40 * DAY, &[DONE, PENDING]);
        let recent = sent(conn, actor, 2, DAY, &[DONE]);
        for n in 0..OLD_SENT {
            sent(conn, actor, 100 + n, 40 * DAY, &[DONE]);
        }
        (finished, waiting, recent)
    };

    let (_stop, running) = tokio::sync::watch::channel(false);
    let forgotten = forget_sent(&db, now_ms() - 30 * DAY, &running)
        .await
        .unwrap();
    assert_eq!(
        forgotten,
        OLD_SENT + 1,
        "every finished activity older than 30 days goes"
    );
    let mut conn = db.conn().unwrap();
    let left: Vec<i64> = schema::outgoing_activities::table
        .order(schema::outgoing_activities::id)
        .select(schema::outgoing_activities::id)
        .load(&mut *conn)
        .unwrap();
    assert_eq!(left, vec![waiting, recent], "pending and recent ones stay");
    let mut kept: Vec<(i64, String)> = schema::deliveries::table
        .select((schema::deliveries::activity_id, schema::deliveries::state))
        .load(&mut *conn)
        .unwrap();
    kept.sort();
    assert_eq!(
        kept,
        vec![
            (waiting, DONE.to_string()),
            (waiting, PENDING.to_string()),
            (recent, DONE.to_string())
        ],
        "the deliveries of {finished} went with it"
    );
    drop(conn);
    let again = forget_sent(&db, now_ms() - 30 * DAY, &running)
        .await
        .unwrap();
    assert_eq!(again, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_sent_activities_are_forgotten_sqlite() {
    old_sent_activities_are_forgotten(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_sent_activities_are_forgotten_postgres() {
    if postgres_available() {
        old_sent_activities_are_forgotten(Backend::Postgres).await;
    }
}
