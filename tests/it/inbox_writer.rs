//! The inbox's writer keeps a connection of its own: an inbox goes on
//! accepting activities while readers hold every pooled connection.

use crate::{
    common::{create_note, inbox_settled, peer::FakePeer, Backend, TestInstance},
    fixtures::following_alice,
};
use std::time::Duration;
use tocsin::db;

/// Holds every pooled connection of `i` (the tests' pool has four) while a
/// followed Mastodon actor posts a Create: it is answered 202 and stored
/// without waiting for a pooled connection (before the writer had its own,
/// it waited for one, up to the pool's 30-second timeout).
async fn inbox_answers_while_the_pool_is_taken(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = following_alice(&i, &peer).await;
    let key = format!("{alice}#main-key");
    let inbox = format!("{}/inbox", i.base());
    // A first Create: the signer and the federation policy are then in
    // memory, as on a busy inbox, so the signature check reads nothing.
    let first = create_note(&peer.base, &alice);
    let (status, body) = peer.post_signed(&inbox, &first.to_string(), &key).await;
    assert_eq!(status, 202, "{body}");
    inbox_settled(&i.server.state.db).await;

    let pool_size = i.server.state.config.database.pool_size;
    let database = i.server.state.db.clone();
    let held = tokio::task::spawn_blocking(move || {
        (0..pool_size)
            .map(|_| database.conn().expect("a pooled connection"))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let second = create_note(&peer.base, &alice);
    let answered = tokio::time::timeout(
        Duration::from_secs(8),
        peer.post_signed(&inbox, &second.to_string(), &key),
    )
    .await;
    drop(held);
    let (status, body) = answered.expect("the inbox waited for a pooled connection");
    assert_eq!(status, 202, "{body}");

    inbox_settled(&i.server.state.db).await;
    let note = second["object"]["id"].as_str().unwrap().to_string();
    let stored = i
        .server
        .state
        .db
        .run(move |conn| db::alerts::by_ap_id(conn, &note))
        .await
        .unwrap();
    assert!(stored.is_some(), "the second alert was not stored");
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_answers_while_the_pool_is_taken_sqlite() {
    inbox_answers_while_the_pool_is_taken(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_answers_while_the_pool_is_taken_postgres() {
    if !crate::common::postgres_available() {
        return;
    }
    inbox_answers_while_the_pool_is_taken(Backend::Postgres).await;
}
