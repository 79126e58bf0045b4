//! The Digest: which alerts a period's issue takes, in which order, and the
//! editor's reorder, trim and publish on a draft.

use crate::common::{alert_values, postgres_available, Backend, TestDb};
use tocsin::db::{
    alerts::{insert, AlertValues},
    curation, now_ms,
    publications::{self, EditError},
    DbConn,
};
use tocsin::publications::digest;

fn alert(conn: &mut DbConn, actor: i64, n: u32, local: bool, lang: &str, country: &str) -> i64 {
    insert(
        conn,
        &AlertValues {
            language: lang.into(),
            title: format!("Alert {n}"),
            content_html: format!("<p>Body {n}</p>"),
            countries: format!(",{country},"),
            region: Some("mena".into()),
            ..alert_values(format!("https://m.example/alerts/{n}"), actor, local)
        },
    )
    .expect("alert inserted")
    .id
}

fn review(conn: &mut DbConn, alert_id: i64, state: &str) {
    let item = curation::queue_for_review(conn, alert_id, &["mena".into()]).expect("queued");
    if state != curation::PENDING {
        curation::decide(conn, item.id, state, &[], None, "editor", None).expect("decided");
    }
}

async fn digest_takes_approved_and_local_alerts(backend: Backend) {
    let db = TestDb::open(backend).await;
    let actor = db.org_actor().id;
    let mut conn = db.state.db.conn().expect("connection");
    let conn = &mut *conn;
    let approved = alert(conn, actor, 1, false, "en", "TR");
    review(conn, approved, curation::APPROVED);
    let pending = alert(conn, actor, 2, false, "en", "EG");
    review(conn, pending, curation::PENDING);
    let rejected = alert(conn, actor, 3, false, "en", "EG");
    review(conn, rejected, curation::REJECTED);
    let local = alert(conn, actor, 4, true, "en", "EG");
    let french = alert(conn, actor, 5, true, "fr", "EG");
    let unreviewed_remote = alert(conn, actor, 6, false, "en", "EG");

    let (start, end) = (now_ms() - 3_600_000, now_ms() + 3_600_000);
    let id = digest::build(conn, "en", start, end).expect("built");
    let items = publications::items(conn, id).expect("items");
    let ids: Vec<i64> = items.iter().filter_map(|i| i.alert_id).collect();
    // EG before TR; the pending, rejected, French and unreviewed ones are out.
    assert_eq!(ids, vec![local, approved]);
    assert!(!ids.contains(&unreviewed_remote));
    let issue = publications::issue(conn, id).expect("issue");
    assert_eq!(
        (issue.language.as_str(), issue.state.as_str()),
        ("en", "draft")
    );

    let fr = digest::build(conn, "fr", start, end).expect("built");
    let fr_ids: Vec<i64> = publications::items(conn, fr)
        .expect("items")
        .iter()
        .filter_map(|i| i.alert_id)
        .collect();
    assert_eq!(fr_ids, vec![french]);

    // A period that ended before the decisions has nothing.
    let old = digest::build(conn, "en", start - 7_200_000, start).expect("built");
    assert!(publications::items(conn, old).expect("items").is_empty());

    // Reorder, trim, publish; a published issue no longer changes.
    let (first, second) = (items[0].id, items[1].id);
    assert!(matches!(
        publications::reorder(conn, id, &[second]),
        Err(EditError::BadOrder)
    ));
    publications::reorder(conn, id, &[second, first]).expect("reordered");
    let order: Vec<i64> = publications::items(conn, id)
        .expect("items")
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(order, vec![second, first]);
    assert_eq!(publications::trim(conn, id, &[first]).expect("trimmed"), 1);
    let published =
        publications::publish(conn, id, "https://x.example/digests/1").expect("published");
    assert_eq!(published.state, publications::PUBLISHED);
    assert!(matches!(
        publications::trim(conn, id, &[second]),
        Err(EditError::Published(_))
    ));
    assert_eq!(publications::items(conn, id).expect("items").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_takes_approved_and_local_alerts_sqlite() {
    digest_takes_approved_and_local_alerts(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_takes_approved_and_local_alerts_postgres() {
    if !postgres_available() {
        return;
    }
    digest_takes_approved_and_local_alerts(Backend::Postgres).await;
}

async fn sends_left_sending_are_claimed_again(backend: Backend) {
    let db = TestDb::open(backend).await;
    let mut conn = db.state.db.conn().expect("connection");
    let conn = &mut *conn;
    let list = |s: &str| vec![s.to_string()];
    let mut wanted = Vec::new();
    for n in 0..5 {
        let id = publications::add_subscriber(
            conn,
            &format!("s{n}@example.org"),
            publications::SUB_CONFIRMED,
            &list("digest"),
            &list("en"),
            &[],
        )
        .expect("added");
        wanted.push(id);
    }
    let again = publications::add_subscriber(
        conn,
        "s0@example.org",
        publications::SUB_PENDING,
        &list("digest"),
        &list("en"),
        &[],
    )
    .expect("added");
    assert_eq!(again, wanted[0], "an address is stored once");
    // Not receiving: unconfirmed, other language, other publication.
    publications::add_subscriber(
        conn,
        "p@example.org",
        publications::SUB_PENDING,
        &list("digest"),
        &list("en"),
        &[],
    )
    .expect("added");
    publications::add_subscriber(
        conn,
        "f@example.org",
        publications::SUB_CONFIRMED,
        &list("digest"),
        &list("fr"),
        &[],
    )
    .expect("added");
    publications::add_subscriber(
        conn,
        "c@example.org",
        publications::SUB_CONFIRMED,
        &list("communique"),
        &list("en"),
        &[],
    )
    .expect("added");

    let now = now_ms();
    let issue = digest::build(conn, "en", now - 1000, now).expect("built");
    let first = publications::claim_batch(conn, issue, 2).expect("claimed");
    assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), wanted[..2]);
    publications::mark_sent(conn, issue, first[0].id).expect("marked");
    // first[1] stays "sending", as after a crash before the server's 250
    // (or before it was recorded): the next claim takes it again, first.
    let rest = publications::claim_batch(conn, issue, 100).expect("claimed");
    assert_eq!(rest.iter().map(|r| r.id).collect::<Vec<_>>(), wanted[1..]);
    for r in &rest {
        publications::mark_sent(conn, issue, r.id).expect("marked");
    }
    // Sent rows are never claimed again.
    assert!(publications::claim_batch(conn, issue, 100)
        .expect("claimed")
        .is_empty());
    assert_eq!(
        publications::send_progress(conn, issue).expect("progress"),
        (5, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_left_sending_are_claimed_again_sqlite() {
    sends_left_sending_are_claimed_again(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_left_sending_are_claimed_again_postgres() {
    if !postgres_available() {
        return;
    }
    sends_left_sending_are_claimed_again(Backend::Postgres).await;
}

#[test]
fn cli_builds_a_draft_and_shows_it_in_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .current_dir(dir.path())
            .env_remove("TOCSIN_CONFIG")
            .env("TOCSIN_LOG", "warn")
            .args(args)
            .output()
            .expect("tocsin runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let built = run(&["digest", "build", "--language", "fr", "--days", "3"]);
    assert!(
        built.starts_with("draft digest issue 1: 0 item(s)"),
        "{built}"
    );
    let status = run(&["digest", "status"]);
    let row = status.lines().nth(1).expect("one issue listed");
    let cols: Vec<&str> = row.split('\t').collect();
    assert_eq!(cols[..6], ["1", "fr", "draft", "0", "0", "0"], "{status}");
}
