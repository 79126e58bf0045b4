//! Follow across instances by handle, on SQLite, PostgreSQL and both.

use crate::common::{eventually, postgres_available, Backend, TestInstance};
use std::time::Duration;
use tocsin::{
    db,
    federation::activities::follow::{follow_remote, local_actor},
};

/// The state of `follower`'s follow of `target` (by actor id), as stored by
/// `on`.
pub(crate) async fn follow_state(
    on: &TestInstance,
    follower: &str,
    target: &str,
) -> Option<String> {
    let (follower, target) = (follower.to_string(), target.to_string());
    on.server
        .state
        .db
        .run(move |conn| {
            let (Some(f), Some(t)) = (
                db::actors::by_ap_id(conn, &follower)?,
                db::actors::by_ap_id(conn, &target)?,
            ) else {
                return Ok(None);
            };
            Ok(db::follows::find(conn, f.id, t.id)?.map(|r| r.state))
        })
        .await
        .unwrap()
}

/// A follows B by `@alerts@B`; B records an accepted follower and answers
/// with an Accept that A records.
async fn a_follows_b(a: &TestInstance, b: &TestInstance) {
    let us = local_actor(&a.server.data, "alerts").await.unwrap();
    let target = follow_remote(&a.server.data, &us, &format!("@alerts@{}", b.domain))
        .await
        .expect("WebFinger lookup and Follow queued");
    let a_actor = us.ap_id.to_string();
    let b_actor = target.ap_id.to_string();
    assert_eq!(b_actor, format!("{}/actors/alerts", b.base()));
    assert_eq!(
        follow_state(a, &a_actor, &b_actor).await.as_deref(),
        Some("pending")
    );

    let accepted = eventually(Duration::from_secs(20), || async {
        follow_state(a, &a_actor, &b_actor).await.as_deref() == Some("accepted")
    })
    .await;
    assert!(accepted, "A never recorded B's Accept");
    assert_eq!(
        follow_state(b, &a_actor, &b_actor).await.as_deref(),
        Some("accepted")
    );

    let followers: serde_json::Value = crate::common::client()
        .get(format!("{}/actors/alerts/followers", b.base()))
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(followers["totalItems"].as_i64().unwrap() >= 1);
}

async fn two_instances(a: Backend, b: Backend) {
    let a = TestInstance::start(a).await;
    let b = TestInstance::start(b).await;
    a_follows_b(&a, &b).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_by_handle_sqlite_to_sqlite() {
    two_instances(Backend::Sqlite, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_by_handle_postgres_to_postgres() {
    if !postgres_available() {
        return;
    }
    two_instances(Backend::Postgres, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_by_handle_sqlite_to_postgres_and_back() {
    if !postgres_available() {
        return;
    }
    two_instances(Backend::Sqlite, Backend::Postgres).await;
    two_instances(Backend::Postgres, Backend::Sqlite).await;
}

async fn three_instances(backend: Backend) {
    let a = TestInstance::start(backend).await;
    let b = TestInstance::start(backend).await;
    let c = TestInstance::start(backend).await;
    a_follows_b(&a, &b).await;
    a_follows_b(&c, &b).await;
    a_follows_b(&b, &c).await;
    let b_id = b
        .server
        .state
        .db
        .run(db::actors::local_actors)
        .await
        .unwrap()[0]
        .id;
    let count = b
        .server
        .state
        .db
        .run(move |conn| db::follows::follower_count(conn, b_id))
        .await
        .unwrap();
    assert_eq!(count, 2, "B has A and C as followers");
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_follow_each_other_sqlite() {
    three_instances(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_follow_each_other_postgres() {
    if !postgres_available() {
        return;
    }
    three_instances(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_an_unknown_handle_is_a_clear_error() {
    let a = TestInstance::start(Backend::Sqlite).await;
    let us = local_actor(&a.server.data, "alerts").await.unwrap();
    let err = follow_remote(&a.server.data, &us, &format!("@nobody@{}", a.domain)).await;
    assert!(err.is_err());
    let err = follow_remote(&a.server.data, &us, "not a handle")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("neither @user@host nor an actor URL"),
        "{err}"
    );
    a.stop().await;
}
