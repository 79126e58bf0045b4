//! Curation survives a crash: an incoming alert is stored together with a
//! record that its curation is pending, and an alert whose curation a
//! stopped process left unfinished is curated when the next one starts.

use crate::common::{
    alert_values, clearinghouse_with_world_feed, eventually, pending_curations, postgres_available,
    Backend, TestInstance,
};
use std::time::Duration;
use tocsin::db::{self, actors::NewActor};

/// The alert stored by `ch` with this id has an item in its review queue.
async fn queued_for_review(ch: &TestInstance, alert_id: i64) -> bool {
    ch.server
        .state
        .db
        .run(move |conn| db::curation::review_for_alert(conn, alert_id))
        .await
        .unwrap()
        .is_some()
}

async fn left_over_curation_is_finished_at_start(backend: Backend) {
    let ch = clearinghouse_with_world_feed(backend).await;
    // What a process that stored an alert and died before curating it
    // leaves behind: the alert and its pending curation.
    let alert_id = ch
        .server
        .state
        .db
        .run(|conn| {
            let author = db::actors::upsert(
                conn,
                &NewActor::remote_person(
                    "http://127.0.0.1:9/actors/alerts",
                    "alerts",
                    "127.0.0.1:9",
                    "http://127.0.0.1:9/inbox",
                    "",
                ),
            )?;
            let row = db::alerts::insert(
                conn,
                alert_values("http://127.0.0.1:9/alerts/1".into(), author.id, false),
            )?;
            db::curation::mark_pending(conn, row.id, false, None, &[])?;
            Ok(row.id)
        })
        .await
        .unwrap();
    // The running process leaves it: it may be another live process's.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!queued_for_review(&ch, alert_id).await);
    assert_eq!(pending_curations(&ch).await, 1);

    let ch = ch.pause().await.resume().await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            queued_for_review(&ch, alert_id).await
        })
        .await,
        "the restarted process queued the alert for review"
    );
    assert!(
        eventually(Duration::from_secs(15), || async {
            pending_curations(&ch).await == 0
        })
        .await,
        "its pending curation is forgotten"
    );
    ch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn left_over_curation_is_finished_at_start_sqlite() {
    left_over_curation_is_finished_at_start(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn left_over_curation_is_finished_at_start_postgres() {
    if postgres_available() {
        left_over_curation_is_finished_at_start(Backend::Postgres).await;
    }
}
