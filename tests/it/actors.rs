//! Actor rows read many at once (`db::actors::by_ap_ids`), as the inbox's
//! writer reads the actors of each group it stores.

use crate::common::{postgres_available, Backend, TestDb};
use std::collections::BTreeSet;
use tocsin::db::actors::{self, NewActor};

async fn reads_exactly_the_actors_asked_for(backend: Backend) {
    let db = TestDb::open(backend).await;
    let mut conn = db.state.db.conn().unwrap();
    // Ids with characters that JSON and SQL both escape.
    let ids: Vec<String> = [
        "https://a.example/users/o'brien",
        "https://b.example/users/\"quoted\"",
        "https://c.example/users/zoë\\back",
        "https://d.example/users/plain",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (n, id) in ids.iter().enumerate() {
        let actor = NewActor::remote_person(id, &format!("u{n}"), "x.example", id, "PEM");
        actors::upsert(&mut conn, &actor).unwrap();
    }
    let names = |rows: Vec<actors::ActorRow>| -> BTreeSet<String> {
        rows.into_iter().map(|r| r.ap_id).collect()
    };
    // Three of the four, one unknown, one asked twice.
    let asked = vec![
        ids[0].clone(),
        ids[1].clone(),
        ids[2].clone(),
        ids[2].clone(),
        "https://e.example/users/nobody".to_string(),
    ];
    let found = names(actors::by_ap_ids(&mut conn, &asked).unwrap());
    assert_eq!(found, ids[..3].iter().cloned().collect::<BTreeSet<_>>());
    // Another length, the same answer for the one asked.
    let one = names(actors::by_ap_ids(&mut conn, &ids[3..]).unwrap());
    assert_eq!(one, BTreeSet::from([ids[3].clone()]));
    assert!(actors::by_ap_ids(&mut conn, &[]).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_ap_ids_reads_exactly_the_actors_asked_for_sqlite() {
    reads_exactly_the_actors_asked_for(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_ap_ids_reads_exactly_the_actors_asked_for_postgres() {
    if !postgres_available() {
        return;
    }
    reads_exactly_the_actors_asked_for(Backend::Postgres).await;
}
