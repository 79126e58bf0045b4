//! The `tocsin` binary as operators and scripts use it.

use std::process::Command;

fn tocsin(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    cmd.current_dir(dir)
        .env_remove("TOCSIN_CONFIG")
        .env("TOCSIN_LOG", "warn");
    cmd
}

/// Runs `tocsin ARGS` in `dir`, asserts it succeeded and returns stdout.
fn succeeds(dir: &std::path::Path, args: &[&str]) -> String {
    crate::common::tocsin_succeeds(dir, &[], args)
}

#[test]
fn token_create_prints_the_token_last_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = succeeds(dir.path(), &["token", "create", "--name", "ci"]);
    let token = stdout.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("tocsin_") && token.len() > 40, "{token}");
    // The default database is under data/ relative to the working directory.
    let db_path = dir.path().join("data/tocsin.db");
    assert!(db_path.exists());
    let db = tocsin::db::Db::connect(&format!("sqlite://{}", db_path.display()), 1, 5000).unwrap();
    let mut conn = db.conn().unwrap();
    assert!(tocsin::db::tokens::authenticate(&mut conn, &token)
        .unwrap()
        .is_some());
    assert!(tocsin::db::tokens::authenticate(&mut conn, "tocsin_wrong")
        .unwrap()
        .is_none());
    let raw = std::fs::read(&db_path).unwrap();
    assert!(
        !raw.windows(token.len()).any(|w| w == token.as_bytes()),
        "plain token not stored"
    );
}

#[test]
fn environment_overrides_a_single_key_and_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = tocsin(dir.path())
        .env("TOCSIN_DATABASE__URL", "sqlite://elsewhere/x.db")
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("elsewhere/x.db").exists());
    assert!(!dir.path().join("data").exists());

    let out = tocsin(dir.path())
        .env("TOCSIN_INSTANCE__DOMAIN", "https://bad/")
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("instance.domain"), "{stderr}");

    std::fs::write(dir.path().join("c.toml"), "[instance]\nnmae = \"typo\"\n").unwrap();
    let out = tocsin(dir.path())
        .args(["--config", "c.toml", "migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nmae"),
        "unknown key named"
    );
}

#[test]
fn config_file_is_layered_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[database]\nurl = \"sqlite://fromfile.db\"\n",
    )
    .unwrap();
    let out = tocsin(dir.path())
        .args(["--config", "c.toml", "migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("fromfile.db").exists());
    let out = tocsin(dir.path())
        .args(["--config", "missing.toml", "migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn review_commands_are_documented_in_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["review", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["list", "approve", "curate", "reject"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn digest_publish_publishes_a_draft_once() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = succeeds(dir.path(), &["digest", "build", "--language", "en"]);
    let id = stdout
        .strip_prefix("draft digest issue ")
        .and_then(|s| s.split(':').next())
        .unwrap_or_else(|| panic!("{stdout}"))
        .to_string();
    let stdout = succeeds(dir.path(), &["digest", "publish", &id]);
    assert!(
        stdout.contains(&format!("published issue {id}: "))
            && stdout.contains(&format!("/publications/digest/issues/{id}")),
        "{stdout}"
    );
    let again = tocsin(dir.path())
        .args(["digest", "publish", &id])
        .output()
        .unwrap();
    assert!(!again.status.success(), "publishing twice is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("is published"));
    let status = succeeds(dir.path(), &["digest", "status"]);
    assert!(status.contains(&format!("{id}\ten\tpublished")), "{status}");
}

/// A command on PostgreSQL exits with its own status, never a crash at
/// exit. r2d2 reopens a pool connection on a thread of its own after a
/// checkout; when that thread was still inside libpq as the process
/// exited, OpenSSL's exit handler freed its state under it and the command
/// died of SIGSEGV or SIGABRT after printing its output (5 to 15 runs in
/// a hundred on this machine under load).
#[test]
fn commands_on_postgres_exit_with_their_own_status() {
    if !crate::common::postgres_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (url, name) = crate::common::create_postgres_database();
    let on = [("TOCSIN_DATABASE__URL", url.as_str())];
    crate::common::tocsin_succeeds(dir.path(), &on, &["migrate"]);
    for _ in 0..40 {
        crate::common::tocsin_succeeds(dir.path(), &on, &["domain", "list"]);
    }
    crate::common::drop_postgres_database(&name);
}
