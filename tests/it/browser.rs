//! End-to-end in a real browser: headless Chromium driven by playwright-core
//! (tests/browser/e2e.mjs) against a member and a Clearing House that
//! follows it: publishing, review, the diff after an edit, feeds and
//! accounts managed in the browser, remote follow between the two through
//! WebFinger, and accessibility checks on every page it visits. Skipped,
//! with a message, when Chromium, Node or the npm packages are missing,
//! unless TOCSIN_REQUIRE_BROWSER=1 (CI).

use crate::common::{clearinghouse_with_world_feed, Backend, TestInstance};
use std::path::{Path, PathBuf};
use tocsin::{accounts, curation::members, federation::activities::follow::local_actor};

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is missing".into());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some("tests/browser/node_modules is missing (npm ci in tests/browser)".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn author_publishes_editor_approves_in_chromium() {
    if let Some(why) = missing() {
        if std::env::var("TOCSIN_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("the browser test is required but {why}");
        }
        eprintln!("SKIPPED the browser test: {why}");
        return;
    }
    let member = TestInstance::start(Backend::Sqlite).await;
    let ch = clearinghouse_with_world_feed(Backend::Sqlite).await;
    let ch_data = &ch.server.data;
    let org = local_actor(ch_data, "alerts").await.unwrap();
    members::add(
        ch_data,
        &org,
        &format!("@alerts@{}", member.domain),
        Some("africa".into()),
        vec!["NG".into()],
    )
    .await
    .unwrap();
    // The same function `tocsin user add` calls.
    let password = accounts::generate_password;
    let (author_pw, editor_pw, admin_pw, member_editor_pw) =
        (password(), password(), password(), password());
    accounts::add_user(
        &member.server.state.db,
        "amina",
        accounts::AUTHOR,
        &author_pw,
    )
    .await
    .unwrap();
    accounts::add_user(&ch.server.state.db, "eddie", accounts::EDITOR, &editor_pw)
        .await
        .unwrap();
    accounts::add_user(&ch.server.state.db, "root", accounts::ADMIN, &admin_pw)
        .await
        .unwrap();
    accounts::add_user(
        &member.server.state.db,
        "maya",
        accounts::EDITOR,
        &member_editor_pw,
    )
    .await
    .unwrap();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    let out = tokio::process::Command::new("node")
        .arg("e2e.mjs")
        .current_dir(browser_dir())
        .env("MEMBER_BASE", member.base())
        .env("CH_BASE", ch.base())
        .env("FEED", "world")
        .env("AUTHOR_NAME", "amina")
        .env("AUTHOR_PASSWORD", &author_pw)
        .env("EDITOR_NAME", "eddie")
        .env("EDITOR_PASSWORD", &editor_pw)
        .env("ADMIN_NAME", "root")
        .env("ADMIN_PASSWORD", &admin_pw)
        .env("MEMBER_EDITOR_NAME", "maya")
        .env("MEMBER_EDITOR_PASSWORD", &member_editor_pw)
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser test passed"), "{stdout}");
    assert!(stdout.contains("accessibility checked on"), "{stdout}");
    for name in [
        "author-new-alert-preview",
        "author-deliveries",
        "editor-review",
        "editor-review-diff",
        "editor-feeds",
        "editor-feed-edit",
        "interact",
        "admin-users",
        "reader-feed",
        "reader-home-arabic",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
    member.stop().await;
    ch.stop().await;
}
