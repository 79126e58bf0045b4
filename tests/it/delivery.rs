//! The persistent delivery queue against receivers that fail: each outcome
//! as specified (retry with backoff, 410, 429 + Retry-After, timeouts,
//! permanent 4xx).

use crate::common::{
    eventually,
    peer::{FakePeer, InboxBehaviour},
    prepare, Backend, TestInstance,
};
use diesel::prelude::*;
use std::time::Duration;
use tocsin::{
    db::{self, deliveries::DeliveryRow, schema::deliveries},
    federation::activities::follow::{follow_remote, local_actor},
};

async fn start(backend: Backend) -> (TestInstance, FakePeer, String) {
    let mut prepared = prepare(backend);
    prepared.config.federation.request_timeout_secs = 1;
    prepared.config.delivery.initial_backoff_secs = 1;
    let i = TestInstance::start_prepared(prepared).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    (i, peer, alice)
}

pub(crate) async fn all_deliveries(i: &TestInstance) -> Vec<DeliveryRow> {
    i.server
        .state
        .db
        .run(|c| {
            Ok(deliveries::table
                .order(deliveries::id)
                .select(DeliveryRow::as_select())
                .load(c)?)
        })
        .await
        .unwrap()
}

/// Queues a Follow of alice, whose inbox behaves as `behaviour`.
async fn send_follow(i: &TestInstance, peer: &FakePeer, behaviour: InboxBehaviour) {
    peer.set_behaviour(behaviour);
    let us = local_actor(&i.server.data, "alerts").await.unwrap();
    follow_remote(&i.server.data, &us, &format!("@alice@{}", peer.domain))
        .await
        .unwrap();
}

async fn retries_then_succeeds(backend: Backend) {
    let (i, peer, _) = start(backend).await;
    send_follow(
        &i,
        &peer,
        InboxBehaviour {
            statuses: vec![503, 500, 202],
            retry_after: None,
        },
    )
    .await;
    let done = eventually(Duration::from_secs(20), || async {
        all_deliveries(&i)
            .await
            .first()
            .is_some_and(|d| d.state == "done")
    })
    .await;
    assert!(
        done,
        "delivery never succeeded: {:?}",
        all_deliveries(&i).await
    );
    let d = &all_deliveries(&i).await[0];
    assert_eq!(d.attempts, 3);
    assert_eq!(d.last_status, Some(202));
    let follows = peer
        .received()
        .iter()
        .filter(|r| r.body["type"] == "Follow")
        .count();
    assert_eq!(follows, 3, "one POST per attempt");
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receiver_is_retried_until_it_accepts_sqlite() {
    retries_then_succeeds(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receiver_is_retried_until_it_accepts_postgres() {
    if !crate::common::postgres_available() {
        return;
    }
    retries_then_succeeds(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_inbox_removes_the_follower() {
    let (i, peer, alice) = start(Backend::Sqlite).await;
    // Her server answers 410 to everything, the Accept of her Follow
    // included. Set before she follows: the worker may send the Accept
    // before the Follow's answer reaches the test.
    peer.set_behaviour(InboxBehaviour {
        statuses: vec![410],
        retry_after: None,
    });
    // Alice follows us.
    let follow = peer.rewrite(
        &crate::common::peer::fixture("mastodon/follow.json"),
        "mastodon.example",
        &i.base(),
    );
    let (status, _) = peer
        .post_signed(
            &format!("{}/inbox", i.base()),
            &follow,
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 202);
    let us = local_actor(&i.server.data, "alerts").await.unwrap();
    let us_id = us.id;
    let followers = |db: tocsin::db::Db| async move {
        db.run(move |c| db::follows::follower_count(c, us_id))
            .await
            .unwrap()
    };
    let gone = eventually(Duration::from_secs(10), || async {
        all_deliveries(&i).await.iter().any(|d| d.state == "gone")
    })
    .await;
    assert!(gone, "{:?}", all_deliveries(&i).await);
    assert_eq!(
        followers(i.server.state.db.clone()).await,
        0,
        "follower removed after 410"
    );
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_for_retry_after() {
    let (i, peer, _) = start(Backend::Sqlite).await;
    send_follow(
        &i,
        &peer,
        InboxBehaviour {
            statuses: vec![429],
            retry_after: Some("30".into()),
        },
    )
    .await;
    let attempted = eventually(Duration::from_secs(10), || async {
        all_deliveries(&i)
            .await
            .first()
            .is_some_and(|d| d.attempts == 1)
    })
    .await;
    assert!(attempted);
    let d = &all_deliveries(&i).await[0];
    assert_eq!(d.state, "pending");
    assert_eq!(d.last_status, Some(429));
    assert!(
        d.next_attempt_at - d.updated_at >= 29_000,
        "next attempt only after Retry-After: {} ms",
        d.next_attempt_at - d.updated_at
    );
    // The 429 does not count against the host's health.
    let down = i
        .server
        .state
        .db
        .run(db::deliveries::hosts_down)
        .await
        .unwrap();
    assert!(down.is_empty());
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_receiver_times_out_and_is_retried() {
    let (i, peer, _) = start(Backend::Sqlite).await;
    send_follow(
        &i,
        &peer,
        InboxBehaviour {
            statuses: vec![0],
            retry_after: None,
        },
    )
    .await;
    let attempted = eventually(Duration::from_secs(15), || async {
        all_deliveries(&i)
            .await
            .first()
            .is_some_and(|d| d.attempts >= 1)
    })
    .await;
    assert!(attempted);
    let d = &all_deliveries(&i).await[0];
    assert_eq!(d.state, "pending", "a timeout is retried");
    assert_eq!(d.last_status, None);
    assert!(
        d.last_error.as_deref().unwrap_or("").contains("failed"),
        "{:?}",
        d.last_error
    );
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_client_error_is_recorded_and_not_retried() {
    let (i, peer, _) = start(Backend::Sqlite).await;
    send_follow(
        &i,
        &peer,
        InboxBehaviour {
            statuses: vec![403],
            retry_after: None,
        },
    )
    .await;
    let failed = eventually(Duration::from_secs(10), || async {
        all_deliveries(&i)
            .await
            .first()
            .is_some_and(|d| d.state == "failed")
    })
    .await;
    assert!(failed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let d = &all_deliveries(&i).await[0];
    assert_eq!(d.attempts, 1);
    assert_eq!(d.last_status, Some(403));
    i.stop().await;
    peer.stop().await;
}
