//! `tocsin backup` under a stream of writes, restored into a new instance on
//! the same or the other back end: keys, followers, alerts, the delivery
//! queue and uploaded files survive, and a remote follower still verifies
//! the restored instance's signatures.

use crate::common::{
    client, eventually,
    peer::{fixture, FakePeer},
    postgres_available, prepare, Backend, TestInstance,
};
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use tocsin::{
    db::{self, Db},
    ops::backup::{backup_to_file, restore_from_file, Record},
};

/// A tiny valid PNG (1×1), so the upload passes the content check.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

fn alert(n: usize) -> Value {
    json!({
        "title": format!("Journalist detained, case {n}"),
        "body": format!("Appeal number {n}."),
        "language": "en",
        "countries": ["TR"],
        "categories": ["detention"],
        "urgency": "action"
    })
}

async fn post_alert(base: &str, token: &str, n: usize) -> u16 {
    client()
        .post(format!("{base}/api/v1/alerts"))
        .bearer_auth(token)
        .json(&alert(n))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Reads an archive back as records.
fn records(file: &Path) -> Vec<Record> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rows_of(records: &[Record], table: &str) -> Vec<serde_json::Map<String, Value>> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Row { table: t, row } if t == table => Some(row.clone()),
            _ => None,
        })
        .collect()
}

/// Delivery queue as (id → state, attempts, inbox), comparable across back ends.
fn queue_of(rows: &[serde_json::Map<String, Value>]) -> BTreeMap<i64, (String, i64, String)> {
    rows.iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                (
                    r["state"].as_str().unwrap().to_string(),
                    r["attempts"].as_i64().unwrap(),
                    r["inbox"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

async fn queue_in(i: &TestInstance) -> BTreeMap<i64, (String, i64, String)> {
    crate::delivery::all_deliveries(i)
        .await
        .into_iter()
        .map(|d| (d.id, (d.state, i64::from(d.attempts), d.inbox)))
        .collect()
}

async fn local_alerts_actor(i: &TestInstance) -> db::actors::ActorRow {
    i.server
        .state
        .db
        .run(|c| db::actors::local_by_username(c, "alerts"))
        .await
        .unwrap()
        .expect("the organisation actor")
}

async fn backup_under_writes_then_restore(source: Backend, target: Backend) {
    let a = TestInstance::start(source).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &a.base());
    let alice_json: Value = serde_json::from_str(&peer.rewrite(
        &fixture("mastodon/actor.json"),
        "mastodon.example",
        &a.base(),
    ))
    .unwrap();
    let key_id = alice_json["publicKey"]["id"].as_str().unwrap().to_string();

    // A remote follower, with its Accept delivered through the queue.
    let follow = peer.rewrite(
        &fixture("mastodon/follow.json"),
        "mastodon.example",
        &a.base(),
    );
    let (status, body) = peer
        .post_signed(&format!("{}/inbox", a.base()), &follow, &key_id)
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            peer.received().iter().any(|r| r.body["type"] == "Accept")
        })
        .await
    );

    let token = {
        let mut conn = a.server.state.db.conn().unwrap();
        db::tokens::create(&mut conn, "backup-test").unwrap()
    };
    let upload: Value = client()
        .post(format!("{}/api/v1/media", a.base()))
        .bearer_auth(&token)
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let media_url = upload["url"].as_str().expect("upload URL").to_string();
    let media_name = media_url.rsplit('/').next().unwrap().to_string();

    // A stream of writes while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written, base, token) = (stop.clone(), written.clone(), a.base(), token.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                if post_alert(&base, &token, n).await == 201 {
                    written.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            written.load(Ordering::SeqCst) >= 5
        })
        .await
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("tocsin.backup");
    let (domain, media_dir, file) = (
        a.domain.clone(),
        PathBuf::from(&a.server.state.config.alerts.media_dir),
        archive.clone(),
    );
    let counts = a
        .server
        .state
        .db
        .run(move |c| {
            backup_to_file(c, &domain, &media_dir, &file)
                .map_err(|e| db::DbError::Task(e.to_string()))
        })
        .await
        .expect("backup while the server writes");
    let during = written.load(Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(20), || async {
            written.load(Ordering::SeqCst) >= during + 2
        })
        .await,
        "writes went on after the backup"
    );
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert_eq!(counts.files, 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the archive holds private keys: owner only"
        );
    }

    let saved = records(&archive);
    let alerts_saved = rows_of(&saved, "alerts").len();
    assert!(alerts_saved >= 5, "{alerts_saved} alerts in the archive");
    let queue_saved = queue_of(&rows_of(&saved, "deliveries"));
    assert!(!queue_saved.is_empty(), "the queue is in the archive");
    let a_actor = local_alerts_actor(&a).await;
    let listen_on = a.server.addr;
    let a_domain = a.domain.clone();
    a.stop().await;

    // A new, empty instance under the same public domain and address.
    let mut prepared = prepare(target);
    prepared.listener = TcpListener::bind(listen_on).expect("rebind the old address");
    prepared.config.server.bind = listen_on.to_string();
    prepared.config.instance.domain = a_domain.clone();
    {
        let config = prepared.config.clone();
        let archive = archive.clone();
        let restored = tokio::task::spawn_blocking(move || {
            let db = Db::connect(&config.database.url, 1, 5000).unwrap();
            let mut conn = db.conn().unwrap();
            restore_from_file(
                &mut conn,
                &config.instance.domain,
                Path::new(&config.alerts.media_dir),
                &archive,
            )
        })
        .await
        .unwrap()
        .expect("restore into the empty instance");
        assert_eq!(restored, counts);
    }
    let b = TestInstance::start_prepared(prepared).await;

    let b_actor = local_alerts_actor(&b).await;
    assert_eq!(b_actor.private_key_pem, a_actor.private_key_pem, "same key");
    assert_eq!(b_actor.public_key_pem, a_actor.public_key_pem);
    let followers = b
        .server
        .state
        .db
        .run(move |c| db::follows::followers(c, b_actor.id))
        .await
        .unwrap();
    assert_eq!(followers.len(), 1);
    assert_eq!(followers[0].ap_id, alice);
    let alerts_restored = b
        .server
        .state
        .db
        .run(|c| {
            use diesel::prelude::*;
            Ok(db::schema::alerts::table.count().get_result::<i64>(c)?)
        })
        .await
        .unwrap();
    assert_eq!(alerts_restored as usize, alerts_saved);
    let (listed, found) = b
        .server
        .state
        .db
        .run(|c| {
            let all = db::alerts::AlertFilter::default();
            let search = db::alerts::AlertFilter {
                text: Some("detained".into()),
                ..Default::default()
            };
            Ok((
                db::alerts::list(c, &all, 10_000, 0)?.len(),
                db::alerts::list(c, &search, 10_000, 0)?.len(),
            ))
        })
        .await
        .unwrap();
    assert!(listed > 0);
    assert_eq!(found, listed, "every restored alert is found by a search");
    assert_eq!(
        queue_in(&b).await.len(),
        queue_saved.len(),
        "queue restored"
    );
    let served = client()
        .get(format!("{}/media/{media_name}", b.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(served.bytes().await.unwrap().as_ref(), PNG);

    // The old token still works, and the follower verifies the restored
    // instance's signature on what it sends now.
    let created: Value = client()
        .post(format!("{}/api/v1/alerts", b.base()))
        .bearer_auth(&token)
        .json(&alert(10_000))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ap_id = created["ap_id"]
        .as_str()
        .expect("alert created")
        .to_string();
    let sent = || {
        peer.received()
            .into_iter()
            .find(|r| r.body["type"] == "Create" && r.body["object"]["id"] == ap_id.as_str())
    };
    assert!(
        eventually(Duration::from_secs(15), || async { sent().is_some() }).await,
        "the follower received the new alert"
    );
    let create = sent().unwrap();
    assert!(create.signature_ok, "signature verifies after the restore");
    peer.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_writes_restores_everything_sqlite() {
    backup_under_writes_then_restore(Backend::Sqlite, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_writes_restores_everything_postgres() {
    if !postgres_available() {
        return;
    }
    backup_under_writes_then_restore(Backend::Postgres, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_restores_into_postgres() {
    if !postgres_available() {
        return;
    }
    backup_under_writes_then_restore(Backend::Sqlite, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_non_empty_database_and_a_truncated_archive() {
    let a = TestInstance::start(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.backup");
    let (domain, media, file) = (a.domain.clone(), dir.path().join("media"), archive.clone());
    a.server
        .state
        .db
        .run(move |c| {
            backup_to_file(c, &domain, &media, &file).map_err(|e| db::DbError::Task(e.to_string()))
        })
        .await
        .unwrap();
    let (domain, media, file) = (a.domain.clone(), dir.path().join("media"), archive.clone());
    let err = a
        .server
        .state
        .db
        .run(move |c| {
            Ok(restore_from_file(c, &domain, &media, &file)
                .unwrap_err()
                .to_string())
        })
        .await
        .unwrap();
    assert!(err.contains("not empty"), "{err}");

    let text = std::fs::read_to_string(&archive).unwrap();
    let truncated = dir.path().join("t.backup");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&truncated, lines[..lines.len() - 1].join("\n")).unwrap();
    let fresh = prepare(Backend::Sqlite);
    let db = Db::connect(&fresh.config.database.url, 1, 5000).unwrap();
    let mut conn = db.conn().unwrap();
    let err = restore_from_file(&mut conn, &a.domain, &dir.path().join("m"), &truncated)
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    let err = restore_from_file(&mut conn, "other.example", &dir.path().join("m"), &archive)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[instance] domain"), "{err}");
    // Nothing was left behind by the failed attempts.
    tocsin::ops::backup::ensure_empty(&mut conn).unwrap();
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_list_names_every_table() {
    let check = |url: String| {
        let db = Db::connect(&url, 1, 5000).unwrap();
        let mut conn = db.conn().unwrap();
        let mut in_db = tocsin::ops::backup::database_tables(&mut conn).unwrap();
        in_db.sort();
        let mut listed: Vec<String> = tocsin::ops::backup::TABLES
            .iter()
            .map(ToString::to_string)
            .collect();
        listed.sort();
        assert_eq!(in_db, listed, "ops::backup::TABLES must list every table");
    };
    let sqlite = prepare(Backend::Sqlite);
    check(sqlite.config.database.url.clone());
    if postgres_available() {
        let (url, name) = crate::common::create_postgres_database();
        check(url);
        crate::common::drop_postgres_database(&name);
    }
}
