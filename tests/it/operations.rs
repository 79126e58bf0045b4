//! The operator's commands end to end: `tocsin backup`, `restore`,
//! `migrate-db --to postgres://…` and `tocsin doctor` finding problems.

use crate::common::{client, eventually, postgres_available, prepare, Backend, TestInstance};
use std::{path::Path, process::Command};
use tocsin::{config::Config, db};

fn tocsin(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    cmd.env_remove("TOCSIN_CONFIG")
        .env("TOCSIN_LOG", "warn")
        .arg("--config")
        .arg(config);
    cmd
}

fn write_config(config: &Config, file: &Path) {
    std::fs::write(file, toml::to_string(config).unwrap()).unwrap();
}

fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{cmd:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn org_key(url: &str) -> (Option<String>, i64) {
    use diesel::prelude::*;
    let db = db::Db::connect(url, 1, 5000).unwrap();
    let mut conn = db.conn().unwrap();
    let actor = db::actors::local_by_username(&mut conn, "alerts")
        .unwrap()
        .unwrap();
    let alerts: i64 = db::schema::alerts::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    (actor.private_key_pem, alerts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_and_move_to_postgres_from_the_command_line() {
    let prepared = prepare(Backend::Sqlite);
    let config = prepared.config.clone();
    let a = TestInstance::start_prepared(prepared).await;
    let token = {
        let mut conn = a.server.state.db.conn().unwrap();
        db::tokens::create(&mut conn, "cli").unwrap()
    };
    let created = client()
        .post(format!("{}/api/v1/alerts", a.base()))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "title": "Radio station closed", "body": "Closed by decree.",
            "language": "en", "countries": ["UG"], "categories": ["censorship"],
            "urgency": "action"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    // The instance keeps running (stopping it would delete its temporary
    // directory); the commands read one consistent snapshot.
    let (key, alerts) = org_key(&config.database.url);
    assert!(key.is_some() && alerts == 1);

    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("tocsin.toml");
    write_config(&config, &config_file);
    let archive = dir.path().join("tocsin.backup");
    let out = succeeds(tocsin(&config_file).arg("backup").arg(&archive));
    assert!(out.contains("backup written"), "{out}");

    // Restore into a fresh SQLite instance with the same domain.
    let mut other = config.clone();
    other.database.url = format!("sqlite://{}/restored.db", dir.path().display());
    other.alerts.media_dir = format!("{}/restored-media", dir.path().display());
    let other_file = dir.path().join("restored.toml");
    write_config(&other, &other_file);
    succeeds(tocsin(&other_file).arg("restore").arg(&archive));
    assert_eq!(org_key(&other.database.url), (key.clone(), alerts));
    let again = tocsin(&other_file)
        .arg("restore")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // Move the SQLite instance to PostgreSQL.
    if postgres_available() {
        let (pg_url, pg_name) = crate::common::create_postgres_database();
        let out = succeeds(tocsin(&config_file).args(["migrate-db", "--to", &pg_url]));
        assert!(out.contains("[database] url"), "{out}");
        assert_eq!(org_key(&pg_url), (key, alerts));
        let again = tocsin(&config_file)
            .args(["migrate-db", "--to", &pg_url])
            .output()
            .unwrap();
        assert!(!again.status.success(), "a second move is refused");
        crate::common::drop_postgres_database(&pg_name);
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_what_is_wrong_and_how_to_fix_it() {
    let prepared = prepare(Backend::Sqlite);
    let mut config = prepared.config.clone();
    let i = TestInstance::start_prepared(prepared).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tocsin.toml");
    let remote = format!("{}/.well-known/nodeinfo", i.base());

    // Healthy (apart from the test switches, which are warnings).
    write_config(&config, &file);
    let stdout = succeeds(tocsin(&file).args(["doctor", "--remote", &remote]));
    assert!(stdout.contains("ok    actor"), "{stdout}");
    assert!(stdout.contains("WARN  configuration"), "{stdout}");
    // The running instance made its journal; nothing waits in it.
    assert!(
        stdout.contains("ok    inbox journal") && stdout.contains("0 activities in it not stored"),
        "{stdout}"
    );

    // The public domain points nowhere, and nothing answers the remote.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.instance.domain = format!("localhost:{closed}");
    write_config(&config, &file);
    let out = tocsin(&file)
        .args(["doctor", "--remote", &format!("http://127.0.0.1:{closed}/")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    for expected in [
        "FAIL  webfinger",
        "FAIL  outgoing",
        "created for another domain",
        "fix: check that DNS",
    ] {
        assert!(stdout.contains(expected), "{expected}:\n{stdout}");
    }
    i.stop().await;
}

/// Runs `tocsin serve` in `dir` with `TOCSIN_LOG` set to `log` (unset:
/// the default filter), GETs `/.well-known/nodeinfo` once it answers, and
/// returns what the process wrote to standard error once it holds
/// `awaited` (or after a few seconds; `None`: after a short while).
async fn serve_log_of_one_request(dir: &Path, log: Option<&str>, awaited: Option<&str>) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let stderr = dir.join(format!("serve-{port}.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    cmd.arg("serve")
        .current_dir(dir)
        .env_remove("TOCSIN_CONFIG")
        .env_remove("TOCSIN_LOG")
        .env("TOCSIN_INSTANCE__DOMAIN", format!("localhost:{port}"))
        .env("TOCSIN_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("TOCSIN_SERVER__WORKERS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap());
    if let Some(log) = log {
        cmd.env("TOCSIN_LOG", log);
    }
    let mut child = cmd.spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}/.well-known/nodeinfo");
    let mut answered = false;
    for _ in 0..200 {
        if let Ok(response) = client().get(&url).send().await {
            assert_eq!(response.status(), 200);
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The access log's line is written once the answer's body is sent.
    let written = || std::fs::read_to_string(&stderr).unwrap_or_default();
    match awaited {
        Some(line) => {
            let present = || std::future::ready(written().contains(line));
            eventually(std::time::Duration::from_secs(10), present).await;
        }
        None => tokio::time::sleep(std::time::Duration::from_millis(300)).await,
    }
    let _ = child.kill();
    let _ = child.wait();
    let written = written();
    assert!(answered, "tocsin serve never answered: {written}");
    written
}

/// The access log (`tocsin::http`) is off at the default level and written
/// when `TOCSIN_LOG` turns it on: status, request line and duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_written_only_when_turned_on() {
    let dir = tempfile::tempdir().unwrap();
    let request_line = "200 GET /.well-known/nodeinfo HTTP/1.1";
    let on = serve_log_of_one_request(
        dir.path(),
        Some("warn,tocsin::http=info"),
        Some(request_line),
    )
    .await;
    assert!(on.contains(request_line), "no access log line: {on}");
    let default = serve_log_of_one_request(dir.path(), None, None).await;
    assert!(
        !default.contains(request_line) && default.contains("INFO"),
        "the default level writes the access log, or nothing at all: {default}"
    );
}
