//! The archive: bulk import from JSON Lines, full-text search and filters on
//! both databases, and the Atom/RSS feeds (parsed back with feed-rs).

use crate::common::{self, client, postgres_available, Backend, TestInstance};
use serde_json::json;
use std::io::Write;
use tocsin::{
    alerts::import::{import, ImportError},
    db::{self, alerts::AlertFilter},
};

fn line(n: usize, country: &str, lang: &str, title: &str, body: &str, date: &str) -> String {
    json!({
        "source_id": format!("ifex-{n}"),
        "title": title,
        "body": body,
        "language": lang,
        "countries": [country],
        "categories": if n.is_multiple_of(3) { vec!["killing"] } else { vec!["detention"] },
        "urgency": "report",
        "published_at": date,
    })
    .to_string()
}

fn sample() -> String {
    [
        line(
            1,
            "TR",
            "en",
            "Journalist Ayşe Demir detained",
            "Police raided the newsroom at dawn.",
            "2014-03-02",
        ),
        line(
            2,
            "MX",
            "es",
            "Periodista asesinado en Veracruz",
            "El periodista fue asesinado.",
            "2016-07-15T10:00:00Z",
        ),
        line(
            3,
            "PH",
            "en",
            "Radio broadcaster shot dead",
            "The broadcaster was killed in Mindanao.",
            "2019-01-20",
        ),
        line(
            4,
            "EG",
            "fr",
            "Blogueur condamné au Caire",
            "Le blogueur a été condamné pour diffamation.",
            "2021-11-05",
        ),
        line(
            5,
            "TR",
            "en",
            "Newspaper closed by decree",
            "A decree closed the daily newspaper.",
            "2024-05-01",
        ),
    ]
    .join("\n")
}

async fn org_id(i: &TestInstance) -> i64 {
    i.server
        .state
        .db
        .run(|c| Ok(db::actors::local_actors(c)?[0].id))
        .await
        .unwrap()
}

async fn search(i: &TestInstance, filter: AlertFilter) -> Vec<String> {
    i.server
        .state
        .db
        .run(move |c| {
            Ok(db::alerts::list(c, &filter, 100, 0)?
                .into_iter()
                .map(|a| a.title)
                .collect())
        })
        .await
        .unwrap()
}

async fn filters_and_search(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let actor = org_id(&i).await;
    let config = i.server.state.config.clone();
    let report = i
        .server
        .state
        .db
        .run(move |c| Ok(import(c, &config, actor, std::io::Cursor::new(sample())).unwrap()))
        .await
        .unwrap();
    assert_eq!((report.imported, report.skipped), (5, 0));
    let f = |f: AlertFilter| f;
    assert_eq!(
        search(
            &i,
            f(AlertFilter {
                text: Some("newsroom".into()),
                ..Default::default()
            })
        )
        .await,
        vec!["Journalist Ayşe Demir detained"]
    );
    assert_eq!(
        search(
            &i,
            f(AlertFilter {
                text: Some("Demir".into()),
                ..Default::default()
            })
        )
        .await
        .len(),
        1,
        "title words are indexed"
    );
    assert_eq!(
        search(
            &i,
            f(AlertFilter {
                text: Some("blogueur diffamation".into()),
                ..Default::default()
            })
        )
        .await,
        vec!["Blogueur condamné au Caire"]
    );
    assert!(
        search(
            &i,
            f(AlertFilter {
                text: Some("'; DROP TABLE alerts; --".into()),
                ..Default::default()
            })
        )
        .await
        .is_empty(),
        "SQL-looking text is just text"
    );
    assert!(search(
        &i,
        f(AlertFilter {
            text: Some("\"unbalanced AND (".into()),
            ..Default::default()
        })
    )
    .await
    .is_empty());
    assert_eq!(
        search(
            &i,
            f(AlertFilter {
                country: Some("tr".into()),
                ..Default::default()
            })
        )
        .await
        .len(),
        2
    );
    assert_eq!(
        search(
            &i,
            f(AlertFilter {
                region: Some("mena".into()),
                ..Default::default()
            })
        )
        .await,
        vec!["Blogueur condamné au Caire"]
    );
    assert_eq!(
        search(
            &i,
            f(AlertFilter {
                category: Some("killing".into()),
                ..Default::default()
            })
        )
        .await,
        vec!["Radio broadcaster shot dead"]
    );
    assert_eq!(
        search(
            &i,
            f(AlertFilter {
                language: Some("es".into()),
                ..Default::default()
            })
        )
        .await,
        vec!["Periodista asesinado en Veracruz"]
    );
    let y2016 = chrono::NaiveDate::from_ymd_opt(2016, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let y2020 = chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    assert_eq!(
        search(
            &i,
            f(AlertFilter {
                since: Some(y2016),
                until: Some(y2020),
                ..Default::default()
            })
        )
        .await,
        vec![
            "Radio broadcaster shot dead",
            "Periodista asesinado en Veracruz"
        ],
        "newest first within the period"
    );

    // The archive page finds the same, without JavaScript.
    let html = client()
        .get(format!(
            "{}/archive?q=newsroom&region=europe-central-asia",
            i.base()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Journalist Ayşe Demir detained"));
    assert!(!html.contains("Newspaper closed by decree"));
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_filters_sqlite() {
    filters_and_search(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_filters_postgres() {
    if !postgres_available() {
        return;
    }
    filters_and_search(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_line_imports_nothing_and_is_named() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let actor = org_id(&i).await;
    let config = i.server.state.config.clone();
    let bad = format!(
        "{}\n{}\nnot json\n",
        line(1, "TR", "en", "Fine", "Body", "2020-01-01"),
        line(2, "XX", "en", "Bad country", "Body", "2020-01-01")
    );
    let err = i
        .server
        .state
        .db
        .run(move |c| Ok(import(c, &config, actor, std::io::Cursor::new(bad))))
        .await
        .unwrap()
        .unwrap_err();
    let ImportError::Invalid(lines) = err else {
        panic!("{err}")
    };
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0].line, lines[0].field.as_str()),
        (2, "countries[0]")
    );
    assert_eq!((lines[1].line, lines[1].field.as_str()), (3, "line"));
    assert!(
        search(&i, AlertFilter::default()).await.is_empty(),
        "nothing imported"
    );
    i.stop().await;
}

#[test]
fn import_command_loads_ten_thousand_alerts_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    let countries = ["TR", "MX", "PH", "EG", "NG", "RU", "BR", "IN"];
    for n in 0..10_000 {
        let year = 2010 + n % 15;
        writeln!(
            file,
            "{}",
            line(
                n,
                countries[n % countries.len()],
                "en",
                &format!("Alert {n}"),
                &format!("Historical alert number {n}."),
                &format!("{year}-06-01")
            )
        )
        .unwrap();
    }
    drop(file);
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .current_dir(dir.path())
            .env("TOCSIN_LOG", "warn")
            .args(["import", "archive.jsonl"])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("imported 10000 alerts"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let again = run();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("imported 0 alerts, skipped 10000"),
        "re-import is idempotent"
    );
    let db = tocsin::db::Db::connect(
        &format!("sqlite://{}/data/tocsin.db", dir.path().display()),
        1,
        5000,
    )
    .unwrap();
    let mut conn = db.conn().unwrap();
    let tr = db::alerts::list(
        &mut conn,
        &AlertFilter {
            country: Some("TR".into()),
            text: Some("Historical".into()),
            ..Default::default()
        },
        10_000,
        0,
    )
    .unwrap();
    assert_eq!(tr.len(), 1250);
    assert_eq!(
        db::alerts::local_published_count(&mut conn).unwrap(),
        10_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atom_and_rss_feeds_parse_and_filter_by_language() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let actor = org_id(&i).await;
    let config = i.server.state.config.clone();
    i.server
        .state
        .db
        .run(move |c| Ok(import(c, &config, actor, std::io::Cursor::new(sample())).unwrap()))
        .await
        .unwrap();
    for (ext, lang, expected) in [
        ("atom", None, 5),
        ("rss", None, 5),
        ("atom", Some("fr"), 1),
        ("rss", Some("es"), 1),
    ] {
        let mut url = format!("{}/@alerts/feed.{ext}", i.base());
        if let Some(l) = lang {
            url.push_str(&format!("?language={l}"));
        }
        let resp = client().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(&format!("application/{ext}+xml")), "{ct}");
        let bytes = resp.bytes().await.unwrap();
        let feed = feed_rs::parser::parse(&bytes[..]).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(feed.entries.len(), expected, "{url}");
        let first = &feed.entries[0];
        assert!(first.title.as_ref().is_some_and(|t| !t.content.is_empty()));
        assert!(first
            .links
            .iter()
            .any(|l| l.href.starts_with(&format!("{}/alerts/", i.base()))));
        assert!(!first.categories.is_empty());
        if lang == Some("fr") {
            assert_eq!(
                first.title.as_ref().unwrap().content,
                "Blogueur condamné au Caire"
            );
        }
    }
    let missing = client()
        .get(format!("{}/@nobody/feed.atom", i.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    i.stop().await;
}

/// Alerts stored in one transaction add one segment to SQLite's full-text
/// index, not one each (a statement savepoint makes FTS5 write out what it
/// holds; docs/performance.md), and every one of them is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_stored_together_make_one_index_segment_sqlite() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let actor = org_id(&i).await;
    let base = i.base();
    let (segments, found) = i
        .server
        .state
        .db
        .run(move |c| {
            use diesel::{connection::SimpleConnection, dsl::sql, sql_types::BigInt, RunQueryDsl};
            // No merges: each segment written stays one.
            c.batch_execute(
                "INSERT INTO alerts_fts (alerts_fts, rank) VALUES ('automerge', 0); \
                 INSERT INTO alerts_fts (alerts_fts, rank) VALUES ('crisismerge', 2000);",
            )?;
            let count = |c: &mut db::DbConn| -> Result<i64, db::DbError> {
                Ok(
                    diesel::select(sql::<BigInt>("(SELECT count(*) FROM alerts_fts_idx)"))
                        .get_result(c)?,
                )
            };
            let before = count(c)?;
            db::transaction(c, |c| {
                for n in 0..40 {
                    let values = db::alerts::AlertValues {
                        title: format!("Broadcaster jailed in Tbilisi ({n})"),
                        ..common::alert_values(format!("{base}/alerts/segment-{n}"), actor, true)
                    };
                    db::alerts::insert(c, values.with_search_text())?;
                }
                Ok(())
            })?;
            let search = AlertFilter {
                text: Some("Tbilisi".into()),
                ..Default::default()
            };
            Ok((
                count(c)? - before,
                db::alerts::list(c, &search, 100, 0)?.len(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(found, 40, "every alert is in the index");
    assert_eq!(segments, 1, "one index segment for the transaction");
    i.stop().await;
}

/// The row `insert` returns is the row stored, column for column, inside a
/// transaction and outside one, with every optional column set and with
/// none set (SQLite makes it from the values and reads back only its id).
async fn inserted_row_is_the_stored_row(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let actor = org_id(&i).await;
    let base = i.base();
    let (returned, stored) = i
        .server
        .state
        .db
        .run(move |c| {
            let bare = common::alert_values(format!("{base}/alerts/bare"), actor, false);
            let original = db::alerts::insert(c, bare.with_search_text())?;
            let full = db::alerts::AlertValues {
                translation_of: Some(original.id),
                language: "fr".into(),
                source_markdown: Some("**Détenu**".into()),
                summary: Some("Avertissement".into()),
                sensitive: true,
                incident_date: Some("2026-11-30".into()),
                case_ap_id: Some(format!("{base}/cases/1")),
                url: Some(format!("{base}/alerts/full.html")),
                pinned: true,
                token_id: Some(7),
                deleted_at: Some(1),
                quote_ap_id: Some(format!("{base}/alerts/quoted")),
                ..common::alert_values(format!("{base}/alerts/full"), actor, true)
            };
            let in_transaction =
                db::transaction(c, |c| db::alerts::insert(c, full.with_search_text()))?;
            let mut returned = vec![original, in_transaction];
            returned.sort_by_key(|r| r.id);
            let stored = returned
                .iter()
                .map(|r| db::alerts::by_id(c, r.id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((returned, stored))
        })
        .await
        .unwrap();
    assert_eq!(returned.len(), 2);
    assert_ne!(returned[0].id, returned[1].id);
    assert_eq!(returned, stored, "insert returns the row as stored");
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserted_row_is_the_stored_row_sqlite() {
    inserted_row_is_the_stored_row(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserted_row_is_the_stored_row_postgres() {
    if !postgres_available() {
        return;
    }
    inserted_row_is_the_stored_row(Backend::Postgres).await;
}

/// On SQLite every statement of an alert's insert is prepared once per
/// connection and then reused, none is SQL text that diesel prepares anew
/// at each run: the inbox's writer inserts every alert it stores this way.
/// (PostgreSQL inserts with one statement, `RETURNING` the row.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_inserts_reuse_their_prepared_statements_sqlite() {
    use diesel::connection::{Connection, InstrumentationEvent};
    use std::sync::{Arc, Mutex};
    let i = TestInstance::start(Backend::Sqlite).await;
    let actor = org_id(&i).await;
    let path = i.server.state.config.database.url["sqlite://".len()..].to_string();
    // A connection of its own, on which no statement was prepared yet.
    let mut lite = diesel::SqliteConnection::establish(&path).unwrap();
    // The instance's own tasks write too: wait for them as its pool does.
    diesel::connection::SimpleConnection::batch_execute(&mut lite, "PRAGMA busy_timeout = 10000;")
        .unwrap();
    // (statements run, statements cached), transaction control left out.
    let seen: Arc<Mutex<(Vec<String>, Vec<String>)>> = Arc::default();
    let log = seen.clone();
    lite.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        let mut log = log.lock().unwrap();
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let sql = query.to_string();
                let control = ["BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK"];
                if !control.iter().any(|c| sql.starts_with(c)) {
                    log.0.push(sql);
                }
            }
            InstrumentationEvent::CacheQuery { sql, .. } => log.1.push(sql.to_string()),
            _ => {}
        }
    });
    let mut conn = db::DbConn::Sqlite(lite);
    let base = i.base();
    for n in 0..2 {
        let values = common::alert_values(format!("{base}/alerts/{n}"), actor, false);
        db::transaction(&mut conn, |c| {
            db::alerts::insert(c, values.with_search_text())
        })
        .unwrap();
    }
    let (run, cached) = seen.lock().unwrap().clone();
    assert_eq!(
        run.len(),
        6,
        "two inserts of three statements each: {run:#?}"
    );
    assert_eq!(
        cached.len(),
        3,
        "each statement prepared once and cached: {run:#?} {cached:#?}"
    );
    i.stop().await;
}
