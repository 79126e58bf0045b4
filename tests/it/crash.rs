//! Deliveries are never lost: a real `tocsin serve` process is killed with
//! SIGKILL in the middle of a fan-out to 500 inboxes, restarted, and every
//! inbox ends up with the activity. The sink deduplicates by activity id as
//! receivers do, so at-least-once delivery shows as exactly once; it also
//! reports raw POSTs, and checks every signature.

use crate::common::{
    create_note, eventually,
    peer::{fixture, FakePeer},
    postgres_available, Backend, TestDb,
};
use std::{
    collections::HashSet,
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};
use tocsin::{
    db::{activities::was_received, deliveries, inbox_queue},
    delivery::{
        enqueue_for_followers,
        sink::{seed_followers, Sink},
    },
    federation::inbox_journal,
};

const INBOXES: usize = 500;
/// Most deliveries one process has in flight, hence most duplicates a kill
/// can cause (`delivery.concurrency`).
const CONCURRENCY: usize = 64;

/// A `tocsin serve` child process, killed with SIGKILL when dropped.
struct Serve {
    child: Child,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(db: &TestDb, domain: &str, port: u16, name: &str) -> Serve {
        let log = db.dir().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .arg("serve")
            .current_dir(db.dir())
            .env_remove("TOCSIN_CONFIG")
            .env("TOCSIN_LOG", "warn")
            .env("TOCSIN_INSTANCE__DOMAIN", domain)
            .env("TOCSIN_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("TOCSIN_SERVER__WORKERS", "1")
            .env("TOCSIN_FEDERATION__ALLOW_HTTP", "true")
            .env("TOCSIN_FEDERATION__ALLOW_PRIVATE_ADDRESSES", "true")
            .env("TOCSIN_FEDERATION__REQUEST_TIMEOUT_SECS", "2")
            .env("TOCSIN_DELIVERY__LEASE_SECS", "3")
            .env("TOCSIN_INBOX__LEASE_SECS", "3")
            .env("TOCSIN_LIMITS__INBOX_PER_IP_PER_MINUTE", "0")
            .env("TOCSIN_LIMITS__INBOX_PER_HOST_PER_MINUTE", "0")
            .env("TOCSIN_DELIVERY__CONCURRENCY", CONCURRENCY.to_string())
            .env("TOCSIN_DATABASE__URL", &db.config.database.url)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("tocsin serve starts");
        Serve { child, log }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The instance's domain and port (free; nothing listens yet).
fn domain_and_port(db: &TestDb) -> (String, u16) {
    let port = db.config.server.bind.rsplit(':').next().unwrap();
    (db.config.instance.domain.clone(), port.parse().unwrap())
}

/// A database with 500 followers on the sink and one activity queued for
/// all of them, and the sink (answering in 20 ms, so a kill lands mid-way).
/// Also returns the instance's domain and port (free; nothing listens yet).
async fn fan_out(backend: Backend) -> (TestDb, Sink, String, String, u16) {
    let db = TestDb::open(backend).await;
    let (domain, port) = domain_and_port(&db);
    let actor = db.org_actor();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_addr = listener.local_addr().unwrap();
    let sink = Sink::start(
        vec![listener],
        &[(actor.public_key_id.clone(), actor.public_key_pem.clone())],
        Duration::from_millis(20),
        2,
    )
    .unwrap();
    let inboxes: Vec<String> = (0..INBOXES)
        .map(|i| format!("http://{sink_addr}/inbox/{i}"))
        .collect();
    let mut conn = db.state.db.conn().unwrap();
    seed_followers(&mut conn, actor.id, &inboxes).unwrap();
    let activity = create_note(&format!("http://{domain}"), &actor.ap_id);
    let (_, queued) = enqueue_for_followers(&mut conn, actor.id, &activity).unwrap();
    assert_eq!(queued, INBOXES);
    let id = activity["id"].as_str().unwrap().to_string();
    drop(conn);
    (db, sink, id, domain, port)
}

async fn queue_is_empty(db: &TestDb) -> bool {
    db.state
        .db
        .run(deliveries::queue_stats)
        .await
        .is_ok_and(|s| s.pending == 0)
}

/// Waits until the sink has about half the inboxes, so the kill lands in
/// the middle of the fan-out.
async fn wait_for_half(sink: &Sink, serve: &Serve) {
    let half = eventually(Duration::from_secs(60), || async {
        sink.distinct_deliveries() >= INBOXES as u64 / 2
    })
    .await;
    assert!(half, "half the fan-out never arrived:\n{}", serve.log());
}

/// Every inbox has the activity, exactly once after deduplication by id;
/// every signature verified; duplicates only from deliveries in flight at
/// the kill.
fn assert_exactly_once(sink: &Sink, activity_id: &str, kills: usize) {
    let report = sink.report();
    assert_eq!(report.bad_signatures, 0, "every signature verifies");
    assert_eq!(
        report.inboxes.len(),
        INBOXES,
        "every inbox got the activity"
    );
    for (inbox, tally) in &report.inboxes {
        assert_eq!(tally.activity_ids.len(), 1, "{inbox}");
        assert!(tally.activity_ids.contains(activity_id), "{inbox}");
    }
    let duplicates = report.posts - INBOXES as u64;
    eprintln!(
        "raw POSTs {} for {INBOXES} inboxes ({duplicates} duplicates from {kills} kill(s))",
        report.posts
    );
    assert!(
        duplicates <= (kills * CONCURRENCY) as u64,
        "{duplicates} duplicate POSTs: more than were in flight"
    );
}

async fn killed_mid_fan_out_resumes(backend: Backend) {
    let (db, sink, activity_id, domain, port) = fan_out(backend).await;

    let first = Serve::start(&db, &domain, port, "first");
    wait_for_half(&sink, &first).await;
    first.kill();
    let at_kill = sink.distinct_deliveries();
    assert!(
        at_kill < INBOXES as u64,
        "the kill came after the fan-out ended ({at_kill})"
    );
    assert!(!queue_is_empty(&db).await, "work was left at the kill");

    let second = Serve::start(&db, &domain, port, "second");
    let done = eventually(Duration::from_secs(120), || async {
        queue_is_empty(&db).await && sink.distinct_deliveries() == INBOXES as u64
    })
    .await;
    assert!(
        done,
        "{} of {INBOXES} delivered after restart:\n{}",
        sink.distinct_deliveries(),
        second.log()
    );
    assert_exactly_once(&sink, &activity_id, 1);
    let states = db.state.db.run(deliveries::counts_by_state).await.unwrap();
    assert_eq!(states, vec![(deliveries::DONE.to_string(), INBOXES as i64)]);
    second.kill();
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_fan_out_then_restart_delivers_everything_once_sqlite() {
    killed_mid_fan_out_resumes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_fan_out_then_restart_delivers_everything_once_postgres() {
    if postgres_available() {
        killed_mid_fan_out_resumes(Backend::Postgres).await;
    }
}

/// Two processes of one instance share a PostgreSQL database; one is killed
/// mid-way, the other keeps sending, the killed one comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_postgres_survive_a_sigkill_and_deliver_once() {
    if !postgres_available() {
        return;
    }
    let (db, sink, activity_id, domain, port) = fan_out(Backend::Postgres).await;

    let a = Serve::start(&db, &domain, port, "a");
    let b = Serve::start(&db, &domain, free_port(), "b");
    wait_for_half(&sink, &a).await;
    a.kill();
    assert!(sink.distinct_deliveries() < INBOXES as u64);
    let a = Serve::start(&db, &domain, port, "a-again");
    let done = eventually(Duration::from_secs(120), || async {
        queue_is_empty(&db).await && sink.distinct_deliveries() == INBOXES as u64
    })
    .await;
    assert!(
        done,
        "{} of {INBOXES} delivered:\n{}\n{}",
        sink.distinct_deliveries(),
        a.log(),
        b.log()
    );
    assert_exactly_once(&sink, &activity_id, 1);
    a.kill();
    b.kill();
    sink.stop().await;
}

/// Accepted incoming activities are never lost: Follows (applied one at a
/// time) and Creates of alerts by an actor we follow (applied many to a
/// transaction by the inbox's writer or the batch lane), all with distinct
/// ids, are posted to a `tocsin serve` child, killed with SIGKILL as soon
/// as the last 202 arrives. Every accepted activity is then either applied
/// (a Follow's id received, a Create's alert stored), still queued, or in
/// the inbox's journal (the 202 follows its write);
/// after a restart every one is applied, each Create stored once, and the
/// queue is empty.
async fn inbox_survives_sigkill_after_202(backend: Backend) {
    const FOLLOWS: usize = 200;
    const CREATES: usize = 300;
    let db = TestDb::open(backend).await;
    let (domain, port) = domain_and_port(&db);
    let peer = FakePeer::start().await;
    let base = format!("http://{domain}");
    let actor = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &base);
    let key_id = format!("{actor}#main-key");
    let rewritten = |name: &str| -> serde_json::Value {
        serde_json::from_str(&peer.rewrite(&fixture(name), "mastodon.example", &base)).unwrap()
    };
    let (follow, create) = (
        rewritten("mastodon/follow.json"),
        rewritten("mastodon/create_note.json"),
    );
    let inbox = format!("http://{domain}/inbox");
    let first = Serve::start(&db, &domain, port, "inbox-first");
    let up = eventually(Duration::from_secs(30), || async {
        reqwest::get(format!("http://127.0.0.1:{port}/.well-known/nodeinfo"))
            .await
            .is_ok()
    })
    .await;
    assert!(up, "the child never answered:\n{}", first.log());

    // The actor becomes known through a first Follow; we follow it back,
    // so its Creates are wanted.
    let (status, body) = peer.post_signed(&inbox, &follow.to_string(), &key_id).await;
    assert_eq!(status, 202, "{body}");
    let (known, state_db) = (actor.clone(), db.state.db.clone());
    let stored = eventually(Duration::from_secs(30), || {
        let (known, state_db) = (known.clone(), state_db.clone());
        async move {
            state_db
                .run(move |conn| tocsin::db::actors::by_ap_id(conn, &known))
                .await
                .unwrap()
                .is_some()
        }
    })
    .await;
    assert!(stored, "the actor was never stored:\n{}", first.log());
    let known = actor.clone();
    db.state
        .db
        .run(move |conn| {
            let us = tocsin::db::actors::local_by_username(conn, "alerts")?.unwrap();
            let them = tocsin::db::actors::by_ap_id(conn, &known)?.unwrap();
            tocsin::db::follows::upsert(
                conn,
                us.id,
                them.id,
                tocsin::db::follows::ACCEPTED,
                "http://localhost/crash-follow",
            )
        })
        .await
        .unwrap();

    let actor_base = actor.trim_end_matches('/').to_string();
    let follow_ids: Vec<String> = (0..FOLLOWS)
        .map(|n| format!("{actor_base}/follows/queued-{n}"))
        .collect();
    let create_ids: Vec<String> = (0..CREATES)
        .map(|n| format!("{actor_base}/statuses/crash-{n}/activity"))
        .collect();
    let mut bodies: Vec<String> = follow_ids
        .iter()
        .map(|id| {
            let mut body = follow.clone();
            body["id"] = serde_json::Value::String(id.clone());
            body.to_string()
        })
        .collect();
    bodies.extend(create_ids.iter().enumerate().map(|(n, id)| {
        let mut body = create.clone();
        body["id"] = serde_json::Value::String(id.clone());
        body["object"]["id"] = format!("{actor_base}/statuses/crash-{n}").into();
        body["object"]["content"] = format!("<p>Journalist detained, report {n}</p>").into();
        body.to_string()
    }));
    // Follows and Creates interleaved, as they arrive on a busy inbox.
    let half = FOLLOWS.min(CREATES);
    let mut order: Vec<usize> = (0..half).flat_map(|i| [i, FOLLOWS + i]).collect();
    order.extend(half..FOLLOWS);
    order.extend(FOLLOWS + half..FOLLOWS + CREATES);
    let posts = order.into_iter().map(|i| {
        let (peer, inbox, key_id, body) = (&peer, &inbox, &key_id, &bodies[i]);
        async move { peer.post_signed(inbox, body, key_id).await }
    });
    use futures::StreamExt as _;
    let answers: Vec<_> = futures::stream::iter(posts)
        .buffer_unordered(16)
        .collect()
        .await;
    first.kill();
    for (status, body) in &answers {
        assert_eq!(*status, 202, "{body}");
    }
    // A Follow counts as applied once its id is recorded as received; a
    // Create once its alert is stored (the writer records no id for the
    // alerts it applies: a copy is known by the alert).
    let state = || {
        let (db, follow_ids) = (db.state.db.clone(), follow_ids.clone());
        let prefix = format!("{actor_base}/statuses/crash-%");
        async move {
            db.run(move |conn| {
                use diesel::prelude::*;
                use tocsin::db::schema::alerts;
                let follows = follow_ids
                    .iter()
                    .filter(|id| was_received(conn, id).unwrap_or(false))
                    .count();
                let alerts: i64 = alerts::table
                    .filter(alerts::ap_id.like(prefix))
                    .count()
                    .get_result(conn)?;
                let (waiting, failed) = inbox_queue::counts(conn)?;
                Ok((follows, alerts as usize, waiting, failed))
            })
            .await
            .unwrap()
        }
    };
    let (follows, alerts, waiting, failed) = state().await;
    assert_eq!(failed, 0);
    // Every accepted activity is applied, queued, or in the journal (the
    // 202 follows the journal's write, and the writer's commit follows).
    let journaled: HashSet<String> = inbox_journal::read(&db.dir().join("data/inbox-journal"))
        .expect("the journal reads")
        .into_iter()
        .map(|r| r.ap_id)
        .collect();
    let in_journal = journaled.len();
    let (ids, queued_db) = (
        follow_ids
            .iter()
            .chain(&create_ids)
            .cloned()
            .collect::<Vec<_>>(),
        db.state.db.clone(),
    );
    let prefix = actor_base.clone();
    let missing: Vec<String> = queued_db
        .run(move |conn| {
            use diesel::prelude::*;
            use tocsin::db::schema::{alerts, inbox_queue as queue};
            let queued: HashSet<String> = queue::table
                .select(queue::ap_id)
                .load(conn)?
                .into_iter()
                .collect();
            let stored: HashSet<String> = alerts::table
                .select(alerts::ap_id)
                .filter(alerts::ap_id.like(format!("{prefix}/statuses/crash-%")))
                .load(conn)?
                .into_iter()
                .collect();
            Ok(ids
                .into_iter()
                .filter(|id| {
                    let alert = id.strip_suffix("/activity").map(str::to_string);
                    !(queued.contains(id)
                        || journaled.contains(id)
                        || alert.is_some_and(|a| stored.contains(&a))
                        || was_received(conn, id).unwrap_or(false))
                })
                .collect())
        })
        .await
        .unwrap();
    eprintln!(
        "at the kill: {follows} Follows applied, {alerts} alerts stored, {waiting} queued, {in_journal} journaled"
    );
    assert!(
        missing.is_empty(),
        "every accepted activity is applied, queued or journaled; not: {missing:?}"
    );
    let second = Serve::start(&db, &domain, port, "inbox-second");
    let done = eventually(Duration::from_secs(60), || async {
        state().await == (FOLLOWS, CREATES, 0, 0)
    })
    .await;
    assert!(done, "{:?} after restart:\n{}", state().await, second.log());
    second.kill();
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_inbox_202_then_restart_applies_everything_sqlite() {
    inbox_survives_sigkill_after_202(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_inbox_202_then_restart_applies_everything_postgres() {
    if postgres_available() {
        inbox_survives_sigkill_after_202(Backend::Postgres).await;
    }
}
