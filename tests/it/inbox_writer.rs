//! The inbox's writer keeps a connection of its own, and the federation
//! policy is read again in the background: an inbox goes on accepting
//! activities while readers hold every pooled connection.

use crate::{
    common::{create_note, inbox_settled, peer::FakePeer, Backend, TestInstance},
    fixtures::following_alice,
};
use std::time::Duration;
use tocsin::{db, federation::policy};

/// An instance whose organisation follows a Mastodon fixture actor, who
/// has posted one Create: the signer and the federation policy are then
/// in memory, as on a busy inbox, so the signature check reads nothing.
struct Busy {
    i: TestInstance,
    peer: FakePeer,
    alice: String,
    key: String,
    inbox: String,
}

impl Busy {
    async fn start(backend: Backend) -> Busy {
        let i = TestInstance::start(backend).await;
        let peer = FakePeer::start().await;
        let alice = following_alice(&i, &peer).await;
        let key = format!("{alice}#main-key");
        let inbox = format!("{}/inbox", i.base());
        let busy = Busy {
            i,
            peer,
            alice,
            key,
            inbox,
        };
        let (status, body) = busy.post_create().await;
        assert_eq!(status, 202, "{body}");
        inbox_settled(&busy.i.server.state).await;
        busy
    }

    /// Posts a new Create by alice; its status and body.
    async fn post_create(&self) -> (u16, String) {
        let create = create_note(&self.peer.base, &self.alice);
        self.peer
            .post_signed(&self.inbox, &create.to_string(), &self.key)
            .await
    }

    /// Posts a new Create by alice while every pooled connection is held
    /// (the tests' pool has four); the answer, which must come within 8 s
    /// (`waited_for` says what it would have waited for), and the Note's id.
    async fn post_create_while_the_pool_is_taken(&self, waited_for: &str) -> (u16, String, String) {
        let pool_size = self.i.server.state.config.database.pool_size;
        let database = self.i.server.state.db.clone();
        let held = tokio::task::spawn_blocking(move || {
            (0..pool_size)
                .map(|_| database.conn().expect("a pooled connection"))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        let create = create_note(&self.peer.base, &self.alice);
        let answered = tokio::time::timeout(
            Duration::from_secs(8),
            self.peer
                .post_signed(&self.inbox, &create.to_string(), &self.key),
        )
        .await;
        drop(held);
        let (status, body) =
            answered.unwrap_or_else(|_| panic!("the inbox waited for {waited_for}"));
        let note = create["object"]["id"].as_str().unwrap().to_string();
        (status, body, note)
    }
}

/// A followed actor's Create posted while the pool is taken is answered
/// 202 and stored without waiting for a pooled connection (before the
/// writer had its own, it waited for one, up to the pool's 30-second
/// timeout).
async fn inbox_answers_while_the_pool_is_taken(backend: Backend) {
    let busy = Busy::start(backend).await;
    let (status, body, note) = busy
        .post_create_while_the_pool_is_taken("a pooled connection")
        .await;
    assert_eq!(status, 202, "{body}");

    let db = &busy.i.server.state.db;
    inbox_settled(&busy.i.server.state).await;
    let stored = db
        .run(move |conn| db::alerts::by_ap_id(conn, &note))
        .await
        .unwrap();
    assert!(stored.is_some(), "the second alert was not stored");
    busy.i.stop().await;
}

/// A policy snapshot due to be read again does not hold up the inbox
/// while the pool is taken (it is used while a background task reads the
/// table), and the change it missed is in force once that read is done: a
/// block written behind the server's back (as the CLI of another process
/// does) refuses the actor's next activity.
async fn stale_policies_are_read_again_in_the_background(backend: Backend) {
    let busy = Busy::start(backend).await;
    let authority = url::Url::parse(&busy.peer.base)
        .unwrap()
        .authority()
        .to_string();
    let domain = authority.clone();
    busy.i
        .server
        .state
        .db
        .run(move |conn| db::domain_policies::set(conn, &domain, policy::BLOCK, None))
        .await
        .unwrap();
    let policies = busy.i.server.state.policies.clone();
    policies.expire();

    let (status, body, _) = busy
        .post_create_while_the_pool_is_taken("the policies' reading")
        .await;
    assert_eq!(status, 202, "{body}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snapshot = policies.snapshot().await.unwrap();
        if snapshot.standing(&authority) == policy::Standing::Refused {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the block was not read within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = busy.post_create().await;
    assert_eq!(status, 403, "{body}");
    busy.i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_policies_are_read_again_in_the_background_sqlite() {
    stale_policies_are_read_again_in_the_background(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_policies_are_read_again_in_the_background_postgres() {
    if !crate::common::postgres_available() {
        return;
    }
    stale_policies_are_read_again_in_the_background(Backend::Postgres).await;
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

/// Every alert `i` holds, by id, and how many activities its queue holds
/// (waiting, failed).
async fn alerts_and_queue(i: &TestInstance) -> (Vec<db::alerts::AlertRow>, (i64, i64)) {
    i.server
        .state
        .db
        .run(|conn| {
            use diesel::{QueryDsl, RunQueryDsl, SelectableHelper};
            use tocsin::db::schema::alerts;
            let rows = match conn {
                db::DbConn::Sqlite(c) => alerts::table
                    .order(alerts::id)
                    .select(db::alerts::AlertRow::as_select())
                    .load(c)?,
                db::DbConn::Pg(c) => alerts::table
                    .order(alerts::id)
                    .select(db::alerts::AlertRow::as_select())
                    .load(c)?,
            };
            Ok((rows, db::inbox_queue::counts(conn)?))
        })
        .await
        .unwrap()
}

/// The writer records no activity id for the Creates and Updates of alerts
/// it applies: a copy that comes once the inbox has forgotten the id (here
/// after a restart, which empties its memory of recent ids) is known by its
/// object. Copies of a Create and of the Update that edited its alert then
/// change nothing and fail nothing, though the Note, as some servers send
/// it, says neither when it was published nor when it was updated (it is
/// dated on arrival, so its copy arrives "newer" than the edit).
async fn copies_of_applied_alerts_change_nothing(backend: Backend) {
    let i = crate::common::clearinghouse_with_world_feed(backend).await;
    let peer = FakePeer::start().await;
    let alice = following_alice(&i, &peer).await;
    let key = format!("{alice}#main-key");
    let inbox = format!("{}/inbox", i.base());
    let (peer_, inbox_, key_) = (&peer, &inbox, &key);
    let post = |activity: &serde_json::Value| {
        let body = activity.to_string();
        async move { peer_.post_signed(inbox_, &body, key_).await }
    };
    let create = create_note(&peer.base, &alice);
    assert!(create["object"].get("published").is_none());
    let (status, body) = post(&create).await;
    assert_eq!(status, 202, "{body}");
    inbox_settled(&i.server.state).await;
    let (created, _) = alerts_and_queue(&i).await;
    // Edited a second after the Create arrived.
    let edited_at = chrono::DateTime::from_timestamp_millis(created[0].updated_at + 1_000).unwrap();
    let mut update = create.clone();
    update["id"] = format!("{}#update", create["id"].as_str().unwrap()).into();
    update["type"] = "Update".into();
    update["object"]["content"] = "<p>Journalist detained; released on bail.</p>".into();
    update["object"]["updated"] = edited_at.to_rfc3339().into();
    let (status, body) = post(&update).await;
    assert_eq!(status, 202, "{body}");
    inbox_settled(&i.server.state).await;
    let (before, queue) = alerts_and_queue(&i).await;
    assert_eq!(before.len(), 1, "one alert");
    assert!(
        before[0].content_html.contains("released on bail"),
        "edited"
    );
    assert_eq!(queue, (0, 0));

    let i = i.pause().await.resume().await;
    while chrono::Utc::now() <= edited_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for activity in [&create, &update] {
        let (status, body) = post(activity).await;
        assert_eq!(status, 202, "a copy is acknowledged: {body}");
        inbox_settled(&i.server.state).await;
    }
    let (after, queue) = alerts_and_queue(&i).await;
    assert_eq!(after, before, "the copies changed nothing");
    assert_eq!(queue, (0, 0), "nothing waits or failed");
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_applied_alerts_change_nothing_sqlite() {
    copies_of_applied_alerts_change_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_applied_alerts_change_nothing_postgres() {
    if !crate::common::postgres_available() {
        return;
    }
    copies_of_applied_alerts_change_nothing(Backend::Postgres).await;
}

/// The writer's group as the inbox hands it over: each activity parsed,
/// its alert prepared, signed by `signer`.
fn group_of(
    activities: &[&serde_json::Value],
    signer: &db::actors::ActorRow,
) -> Vec<tocsin::federation::inbox_batch::Accepted> {
    use tocsin::federation::{inbox, inbox_batch};
    activities
        .iter()
        .map(|activity| {
            let body = activity.to_string();
            let parsed = inbox::parse_activity(body.as_bytes()).unwrap().unwrap();
            let id = activity["id"].as_str().unwrap().to_string();
            let actor = url::Url::parse(activity["actor"].as_str().unwrap()).unwrap();
            let incoming =
                inbox_batch::Incoming::from_activity(id.clone(), &actor, parsed).unwrap();
            let prepared = incoming.prepare();
            inbox_batch::Accepted {
                item: inbox_batch::AcceptedItem {
                    ap_id: id,
                    signer: signer.ap_id.clone(),
                    body: body.into(),
                    batch: true,
                },
                alert: Some((incoming, Some(prepared))),
                signer: Some(std::sync::Arc::new(
                    tocsin::federation::objects::actor::DbActor::new(signer.clone()).unwrap(),
                )),
            }
        })
        .collect()
}

/// The writer reads what the database holds of a whole group before it
/// writes (ids received or queued, deleted objects, stored alerts), and
/// what the group itself writes is not hidden by that reading: a Create and
/// the Update that edits it in one group leave the edited alert, a copy in
/// the group and ids known before are dropped, an object deleted earlier is
/// not stored, a stored alert's copy changes nothing, and the alert of an
/// actor nobody here follows is not stored.
async fn one_group_sees_what_it_wrote(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = following_alice(&i, &peer).await;
    let db = i.server.state.db.clone();
    let lookup = alice.clone();
    let alice_row = db
        .run(move |conn| db::actors::by_ap_id(conn, &lookup))
        .await
        .unwrap()
        .expect("alice is stored");

    // Stored by an earlier group.
    let stored = create_note(&peer.base, &alice);
    let mut group = group_of(&[&stored], &alice_row);
    db.run(move |conn| tocsin::federation::inbox_batch::store_accepted(conn, &mut group))
        .await
        .unwrap();

    let created = create_note(&peer.base, &alice);
    let mut update = created.clone();
    update["id"] = format!("{}#update", created["id"].as_str().unwrap()).into();
    update["type"] = "Update".into();
    update["object"]["content"] = "<p>Journalist detained; released on bail.</p>".into();
    update["object"]["updated"] = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339()
        .into();
    let deleted = create_note(&peer.base, &alice);
    let received = create_note(&peer.base, &alice);
    let mut stored_copy = stored.clone();
    stored_copy["id"] = format!("{}#again", stored["id"].as_str().unwrap()).into();
    let (deleted_note, received_id) = (
        deleted["object"]["id"].as_str().unwrap().to_string(),
        received["id"].as_str().unwrap().to_string(),
    );
    db.run(move |conn| {
        db::alerts::remember_tombstone(conn, &deleted_note)?;
        db::inbox_queue::mark_received(conn, &[received_id])
    })
    .await
    .unwrap();
    // An actor we know but nobody here follows.
    let bob = format!("{}/users/bob", peer.base);
    let bob_person = db::actors::NewActor::remote_person(
        &bob,
        "bob",
        &peer.domain,
        &format!("{bob}/inbox"),
        &alice_row.public_key_pem,
    );
    let bob_row = db
        .run(move |conn| db::actors::upsert(conn, &bob_person))
        .await
        .unwrap();
    let unfollowed = create_note(&peer.base, &bob);
    let (before, _) = alerts_and_queue(&i).await;

    let mut group = group_of(
        &[
            &created,
            &update,
            &created,
            &deleted,
            &received,
            &stored_copy,
        ],
        &alice_row,
    );
    group.extend(group_of(&[&unfollowed], &bob_row));
    let written = db
        .run(move |conn| tocsin::federation::inbox_batch::store_accepted(conn, &mut group))
        .await
        .expect("the group is stored");
    assert_eq!(written.new, [true, true, false, true, false, true, true]);

    let (after, queue) = alerts_and_queue(&i).await;
    assert_eq!(queue, (0, 0), "nothing queued");
    assert_eq!(after.len(), 2, "one alert added: {after:?}");
    assert_eq!(
        after[0], before[0],
        "the stored alert's copy changed nothing"
    );
    assert_eq!(after[1].ap_id, created["object"]["id"].as_str().unwrap());
    assert!(
        after[1].content_html.contains("released on bail"),
        "the Update in the same group edited the new alert: {}",
        after[1].content_html
    );
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_group_sees_what_it_wrote_sqlite() {
    one_group_sees_what_it_wrote(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_group_sees_what_it_wrote_postgres() {
    if !crate::common::postgres_available() {
        return;
    }
    one_group_sees_what_it_wrote(Backend::Postgres).await;
}

/// The statements PostgreSQL keeps prepared on `conn`'s session.
fn prepared_statements(conn: &mut db::DbConn) -> Vec<String> {
    use diesel::{sql_types::Text, QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Prepared {
        #[diesel(sql_type = Text)]
        statement: String,
    }
    let db::DbConn::Pg(pg) = conn else {
        panic!("a PostgreSQL connection")
    };
    diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load::<Prepared>(pg)
        .unwrap()
        .into_iter()
        .map(|p| p.statement)
        .collect()
}

/// On PostgreSQL the writer's reads by a list of ids are planned at each
/// run, with the list: a plan kept from the first runs, made while the
/// tables were empty, scanned every alert for each group
/// (docs/performance.md). An ordinary read on the same session is kept
/// prepared, so the view does show this session's statements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_reads_are_planned_with_their_list_postgres() {
    if !crate::common::postgres_available() {
        return;
    }
    let test = crate::common::TestDb::open(Backend::Postgres).await;
    let mut conn = test.state.db.conn().unwrap();
    let ids = ["https://a.example/1", "https://a.example/2"];
    let owned: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    // More runs than PostgreSQL's five before it may keep one plan.
    for _ in 0..7 {
        db::inbox_queue::known_among(&mut conn, &ids).unwrap();
        db::alerts::tombstoned_among(&mut conn, &ids).unwrap();
        db::alerts::by_ap_ids(&mut conn, &ids).unwrap();
        db::actors::by_ap_ids(&mut conn, &owned).unwrap();
        db::follows::followed_locally_among(&mut conn, &[1, 2]).unwrap();
        db::actors::by_ap_id(&mut conn, ids[0]).unwrap();
    }
    let kept = prepared_statements(&mut conn);
    assert!(
        kept.iter()
            .any(|s| s.contains(r#"FROM "actors" WHERE ("actors"."ap_id" = $1)"#)),
        "the single read is kept prepared: {kept:#?}"
    );
    let by_list: Vec<&String> = kept.iter().filter(|s| s.contains("ANY(")).collect();
    assert!(by_list.is_empty(), "kept with a plan: {by_list:#?}");
}

/// Counts the statements that insert into `alerts`.
#[derive(Default, Clone)]
struct AlertInserts(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl diesel::connection::Instrumentation for AlertInserts {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
            let sql = query.to_string().replace(['"', '`'], "");
            if sql.starts_with("INSERT INTO alerts ") {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
}

/// On PostgreSQL the writer inserts a group's new alerts in one statement
/// (each statement is a round trip), except when something is about to
/// read them: a translation whose original came earlier in the group
/// finds it. SQLite inserts each alone. Every alert keeps its own text.
async fn new_alerts_are_inserted_together(backend: Backend) {
    use diesel::Connection;
    let postgres = matches!(backend, Backend::Postgres);
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = following_alice(&i, &peer).await;
    let db = i.server.state.db.clone();
    let lookup = alice.clone();
    let alice_row = db
        .run(move |conn| db::actors::by_ap_id(conn, &lookup))
        .await
        .unwrap()
        .expect("alice is stored");
    let notes: Vec<serde_json::Value> = (0..5)
        .map(|n| {
            let mut create = create_note(&peer.base, &alice);
            create["object"]["content"] = format!("<p>Alert number {n}.</p>").into();
            create
        })
        .collect();
    let (mut original, mut translation) = (notes[0].clone(), notes[1].clone());
    original["object"]["translations"] = serde_json::json!([translation["object"]["id"]]);
    translation["object"]["translations"] = serde_json::json!([original["object"]["id"]]);
    let mut group = group_of(
        &[&notes[4], &notes[2], &original, &translation, &notes[3]],
        &alice_row,
    );
    let inserts = AlertInserts::default();
    let counted = inserts.clone();
    db.run(move |conn| {
        conn.set_instrumentation(counted);
        tocsin::federation::inbox_batch::store_accepted(conn, &mut group)
    })
    .await
    .unwrap();
    // PostgreSQL: the first two together, before the original looks up
    // its versions; the original and its translation (which finds it) each
    // alone; the last.
    let expected = if postgres { 4 } else { 5 };
    assert_eq!(
        inserts.0.load(std::sync::atomic::Ordering::SeqCst),
        expected
    );

    let (alerts, _) = alerts_and_queue(&i).await;
    assert_eq!(alerts.len(), 5, "{alerts:?}");
    let by_id = |note: &serde_json::Value| {
        alerts
            .iter()
            .find(|a| a.ap_id == note["object"]["id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{} is stored", note["object"]["id"]))
    };
    for (n, note) in notes.iter().enumerate() {
        assert!(
            by_id(note)
                .content_html
                .contains(&format!("Alert number {n}.")),
            "{n}: {}",
            by_id(note).content_html
        );
    }
    assert_eq!(
        by_id(&translation).translation_of,
        Some(by_id(&original).id)
    );
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_alerts_are_inserted_together_sqlite() {
    new_alerts_are_inserted_together(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_alerts_are_inserted_together_postgres() {
    if !crate::common::postgres_available() {
        return;
    }
    new_alerts_are_inserted_together(Backend::Postgres).await;
}

/// A Create answered from the journal while another process holds
/// SQLite's write lock: the writer's group fails (the lock outlasts the
/// busy timeout), the activity stays journaled and is not lost, and once
/// the lock is released the writer stores it from what it carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_activity_outlives_a_failed_group_sqlite() {
    let mut prepared = crate::common::prepare(Backend::Sqlite);
    prepared.config.database.busy_timeout_ms = 100;
    let i = TestInstance::start_prepared(prepared).await;
    let peer = FakePeer::start().await;
    let alice = following_alice(&i, &peer).await;
    let (key, inbox) = (format!("{alice}#main-key"), format!("{}/inbox", i.base()));
    let state = i.server.state.clone();
    inbox_settled(&state).await;

    // Another writer, as another process would be: SQLite's write lock.
    let mut holder = state.db.conn().expect("a connection");
    let begin = match &mut *holder {
        db::DbConn::Sqlite(c) => {
            use diesel::RunQueryDsl;
            diesel::sql_query("BEGIN IMMEDIATE").execute(c)
        }
        db::DbConn::Pg(_) => unreachable!("SQLite"),
    };
    begin.expect("the write lock");

    let create = create_note(&peer.base, &alice);
    let note = create["object"]["id"].as_str().unwrap().to_string();
    let (status, body) = peer.post_signed(&inbox, &create.to_string(), &key).await;
    assert_eq!(status, 202, "answered from the journal: {body}");
    // Past a few of the writer's tries (each gives up after 100 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(state.inbox.journaled(), 1, "still journaled, not lost");
    let journal = std::path::PathBuf::from(&state.config.inbox.journal_dir);
    let left = tocsin::federation::inbox_journal::read(&journal).unwrap();
    assert!(left.iter().any(|r| r.ap_id == create["id"]), "{left:?}");

    match &mut *holder {
        db::DbConn::Sqlite(c) => {
            use diesel::RunQueryDsl;
            diesel::sql_query("ROLLBACK").execute(c).expect("released");
        }
        db::DbConn::Pg(_) => unreachable!("SQLite"),
    }
    drop(holder);
    inbox_settled(&state).await;
    let stored = state
        .db
        .run(move |conn| db::alerts::by_ap_id(conn, &note))
        .await
        .unwrap();
    assert!(stored.is_some(), "the carried Create was stored");
    assert_eq!(state.inbox.journaled(), 0);
    i.stop().await;
}
