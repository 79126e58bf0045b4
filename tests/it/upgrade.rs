//! Upgrades: every migration applied forward from the first schema over
//! data written in the older schemas (tests/fixtures/upgrade/), on SQLite
//! and PostgreSQL; and a database newer than the binary is refused.

use crate::common::{
    create_postgres_database, drop_postgres_database, peer::fixture_path, postgres_available,
    prepare, Backend,
};
use diesel::connection::SimpleConnection;
use tocsin::db::{self, alerts::AlertFilter, Db};

fn upgrade_fixture(version: &str) -> Option<String> {
    std::fs::read_to_string(fixture_path(&format!("upgrade/{version}.sql"))).ok()
}

fn every_migration_runs_over_older_data(url: &str) {
    let db = Db::open(url, 1, 5000).unwrap();
    let mut conn = db.conn().unwrap();
    let known = db::schema_status(&mut conn).unwrap().known;
    assert!(
        upgrade_fixture(&known[0]).is_some(),
        "the first schema has data"
    );
    let mut steps = Vec::new();
    while let Some(version) = db::migrate_one_step(&mut conn)
        .unwrap_or_else(|e| panic!("migration after {steps:?} failed over existing data: {e}"))
    {
        if let Some(sql) = upgrade_fixture(&version) {
            conn.batch_execute(&sql)
                .unwrap_or_else(|e| panic!("data for schema {version}: {e}"));
        }
        steps.push(version);
    }
    assert_eq!(steps, known, "each migration ran, in order");
    drop(conn);

    // The application reads the old data through the final schema.
    let db = Db::connect(url, 1, 5000).unwrap();
    let mut conn = db.conn().unwrap();
    let ours = db::actors::local_by_username(&mut conn, "alerts")
        .unwrap()
        .expect("local actor survives");
    assert_eq!(ours.private_key_pem.as_deref(), Some("PRIVATE KEY 1"));
    assert_eq!(db::follows::follower_count(&mut conn, ours.id).unwrap(), 1);
    let queue = db::deliveries::for_activity(&mut conn, 1).unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!((queue[0].state.as_str(), queue[0].attempts), ("pending", 2));
    let all = db::alerts::list(&mut conn, &AlertFilter::default(), 20, 0).unwrap();
    assert_eq!(all.len(), 2);
    // Alerts written before full-text search existed are found by it, by
    // title and by body.
    for words in ["Istanbul", "dawn"] {
        let filter = AlertFilter {
            text: Some(words.into()),
            ..Default::default()
        };
        let found = db::alerts::list(&mut conn, &filter, 20, 0).unwrap();
        assert!(
            found
                .iter()
                .any(|a| a.ap_id == "https://ngo.example/alerts/1"),
            "search for {words:?} finds the old alert"
        );
    }
}

#[test]
fn every_migration_runs_forward_over_data_sqlite() {
    let prepared = prepare(Backend::Sqlite);
    every_migration_runs_over_older_data(&prepared.config.database.url);
}

#[test]
fn every_migration_runs_forward_over_data_postgres() {
    if !postgres_available() {
        return;
    }
    let (url, name) = create_postgres_database();
    every_migration_runs_over_older_data(&url);
    drop_postgres_database(&name);
}

fn newer_database_is_refused(url: &str) {
    Db::connect(url, 1, 5000).unwrap();
    {
        let db = Db::open(url, 1, 5000).unwrap();
        let mut conn = db.conn().unwrap();
        conn.batch_execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000001')",
        )
        .unwrap();
    }
    let err = Db::connect(url, 1, 5000)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("newer Tocsin"), "{err}");
    assert!(err.contains("29991231000001"), "{err}");
}

#[test]
fn a_database_from_a_newer_tocsin_is_refused_sqlite() {
    let prepared = prepare(Backend::Sqlite);
    newer_database_is_refused(&prepared.config.database.url);

    // The operator sees it from the command line too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        format!(
            "[server]\nbind = \"127.0.0.1:0\"\n[database]\nurl = \"{}\"\n",
            prepared.config.database.url
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .current_dir(dir.path())
        .env_remove("TOCSIN_CONFIG")
        .args(["--config", "c.toml", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("newer Tocsin"), "{stderr}");
}

#[test]
fn a_database_from_a_newer_tocsin_is_refused_postgres() {
    if !postgres_available() {
        return;
    }
    let (url, name) = create_postgres_database();
    newer_database_is_refused(&url);
    drop_postgres_database(&name);
}
