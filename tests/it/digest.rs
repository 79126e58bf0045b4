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
        AlertValues {
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

async fn issue_api(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = crate::common::client().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("response");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

async fn get_text(url: &str) -> String {
    let resp = crate::common::client().get(url).send().await.expect("page");
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    resp.text().await.expect("text")
}

fn item_ids(issue: &serde_json::Value) -> Vec<i64> {
    issue["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_i64().expect("id"))
        .collect()
}

/// Build, preview, reorder, trim and publish through the API; every route
/// refuses a request without a valid editor token, and a published issue
/// no longer changes.
async fn api_edits_and_publishes_a_draft(backend: Backend) {
    use reqwest::Method;
    use serde_json::json;
    let instance = crate::common::TestInstance::start(backend).await;
    let base = instance.base();
    let token = {
        let mut conn = instance.server.state.db.conn().expect("connection");
        let conn = &mut *conn;
        let actor = tocsin::db::actors::local_by_username(
            conn,
            &instance.server.state.config.actor.username,
        )
        .expect("query")
        .expect("organisation actor")
        .id;
        alert(conn, actor, 1, true, "en", "TR");
        alert(conn, actor, 2, true, "en", "EG");
        alert(conn, actor, 3, true, "en", "SY");
        alert(conn, actor, 4, true, "fr", "SY");
        tocsin::db::tokens::create(conn, "editor").expect("token")
    };
    let t = Some(token.as_str());

    for (method, path) in [
        (Method::GET, "/api/v1/issues"),
        (Method::POST, "/api/v1/issues/digest"),
        (Method::GET, "/api/v1/issues/1"),
        (Method::POST, "/api/v1/issues/1/reorder"),
        (Method::POST, "/api/v1/issues/1/trim"),
        (Method::POST, "/api/v1/issues/1/publish"),
    ] {
        for bad in [None, Some("tocsin_forged")] {
            let (status, _) = issue_api(
                method.clone(),
                format!("{base}{path}"),
                bad,
                Some(json!({})),
            )
            .await;
            assert_eq!(status, 401, "{method} {path} with {bad:?}");
        }
    }

    let (status, body) = issue_api(
        Method::POST,
        format!("{base}/api/v1/issues/digest"),
        t,
        Some(json!({"language": "English"})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("language")),
        "{body}"
    );

    let (status, draft) = issue_api(
        Method::POST,
        format!("{base}/api/v1/issues/digest"),
        t,
        Some(json!({"language": "en", "days": 2})),
    )
    .await;
    assert_eq!(status, 201, "{draft}");
    assert_eq!(draft["state"], "draft");
    let id = draft["id"].as_i64().expect("id");
    let headings: Vec<&str> = draft["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["heading"].as_str().expect("heading"))
        .collect();
    assert_eq!(headings, ["EG: Alert 2", "SY: Alert 3", "TR: Alert 1"]);
    let ids = item_ids(&draft);

    let (status, preview) =
        issue_api(Method::GET, format!("{base}/api/v1/issues/{id}"), t, None).await;
    assert_eq!((status, item_ids(&preview)), (200, ids.clone()));
    let (status, _) = issue_api(Method::GET, format!("{base}/api/v1/issues/999999"), t, None).await;
    assert_eq!(status, 404);

    let (status, body) = issue_api(
        Method::POST,
        format!("{base}/api/v1/issues/{id}/reorder"),
        t,
        Some(json!({"order": [ids[2], ids[0]]})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("order")),
        "{body}"
    );
    let reversed = vec![ids[2], ids[1], ids[0]];
    let (status, body) = issue_api(
        Method::POST,
        format!("{base}/api/v1/issues/{id}/reorder"),
        t,
        Some(json!({"order": reversed})),
    )
    .await;
    assert_eq!((status, item_ids(&body)), (200, reversed.clone()), "{body}");

    let (status, body) = issue_api(
        Method::POST,
        format!("{base}/api/v1/issues/{id}/trim"),
        t,
        Some(json!({"remove": [ids[1]]})),
    )
    .await;
    assert_eq!(
        (status, item_ids(&body)),
        (200, vec![ids[2], ids[0]]),
        "{body}"
    );

    let page_url = format!("{base}/publications/digest/issues/{id}");
    let draft_page = crate::common::client()
        .get(&page_url)
        .send()
        .await
        .expect("page");
    assert_eq!(
        draft_page.status().as_u16(),
        404,
        "a draft has no public page"
    );

    let (status, published) = issue_api(
        Method::POST,
        format!("{base}/api/v1/issues/{id}/publish"),
        t,
        None,
    )
    .await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["state"], "published");
    assert_eq!(
        published["ap_id"].as_str(),
        Some(format!("{base}/publications/digest/issues/{id}").as_str())
    );
    assert!(published["published_at"].as_i64().is_some());
    for (path, body) in [
        ("publish", None),
        ("trim", Some(json!({"remove": [ids[0]]}))),
        ("reorder", Some(json!({"order": [ids[0], ids[2]]}))),
    ] {
        let (status, refused) = issue_api(
            Method::POST,
            format!("{base}/api/v1/issues/{id}/{path}"),
            t,
            body,
        )
        .await;
        assert_eq!(
            (status, refused["field"].as_str()),
            (422, Some("state")),
            "{path}: {refused}"
        );
    }
    let (status, listed) = issue_api(Method::GET, format!("{base}/api/v1/issues"), t, None).await;
    assert_eq!(status, 200);
    let listed: Vec<(i64, &str)> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().expect("id"),
                i["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert_eq!(listed, vec![(id, "published")]);

    // The issue's page: items in the edited order, the trimmed one gone,
    // localised (Arabic right to left).
    let page = get_text(&page_url).await;
    let (tr, eg) = (
        page.find("TR: Alert 1").expect("TR item"),
        page.find("EG: Alert 2").expect("EG item"),
    );
    assert!(tr < eg, "edited order");
    assert!(!page.contains("SY: Alert 3"), "trimmed");
    // Sections are headed by the region's name, not its key.
    assert!(
        page.contains("<p>Body 1</p>") && page.contains("<h2>Middle East and North Africa</h2>"),
        "{page}"
    );
    let arabic = get_text(&format!("{page_url}?lang=ar")).await;
    assert!(
        arabic.contains(r#"dir="rtl""#) && arabic.contains("الموجز"),
        "{arabic}"
    );
    let index = get_text(&format!("{base}/publications/digest")).await;
    assert!(index.contains(&format!(r#"href="{page_url}""#)), "{index}");
    assert!(index.contains(published["title"].as_str().expect("title")));
    // Atom and RSS of the publication carry the issue with its body.
    let atom = get_text(&format!("{base}/publications/digest/feed.atom")).await;
    let atom = atom_syndication::Feed::read_from(atom.as_bytes()).expect("Atom");
    assert_eq!(atom.entries().len(), 1);
    let entry = &atom.entries()[0];
    assert_eq!(entry.id(), page_url);
    assert_eq!(entry.links()[0].href(), page_url);
    let html = entry.content().and_then(|c| c.value()).expect("content");
    assert!(
        html.contains("TR: Alert 1") && !html.contains("SY: Alert 3"),
        "{html}"
    );
    let rss = get_text(&format!("{base}/publications/digest/feed.rss")).await;
    let rss = rss::Channel::read_from(rss.as_bytes()).expect("RSS");
    assert_eq!(rss.items().len(), 1);
    assert_eq!(rss.items()[0].link(), Some(page_url.as_str()));
    assert!(rss.items()[0]
        .description()
        .is_some_and(|d| d.contains("EG: Alert 2")));
    let empty = get_text(&format!("{base}/publications/communique")).await;
    assert!(empty.contains("No issues published yet."), "{empty}");
    let unknown = crate::common::client()
        .get(format!("{base}/publications/nothing"))
        .send()
        .await
        .expect("page");
    assert_eq!(unknown.status().as_u16(), 404);
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_edits_and_publishes_a_draft_sqlite() {
    api_edits_and_publishes_a_draft(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_edits_and_publishes_a_draft_postgres() {
    if !postgres_available() {
        return;
    }
    api_edits_and_publishes_a_draft(Backend::Postgres).await;
}

/// A Communiqué written through the API: languages and sections checked,
/// items placed in section order, Markdown rendered and sanitised, then
/// published and shown on its page.
async fn api_writes_a_communique(backend: Backend) {
    use reqwest::Method;
    use serde_json::json;
    let instance = crate::common::TestInstance::start(backend).await;
    let base = instance.base();
    let token = {
        let mut conn = instance.server.state.db.conn().expect("connection");
        tocsin::db::tokens::create(&mut conn, "editor").expect("token")
    };
    let t = Some(token.as_str());
    let url = format!("{base}/api/v1/issues/communique");
    let (status, _) = issue_api(Method::POST, url.clone(), None, Some(json!({}))).await;
    assert_eq!(status, 401);
    for (body, field) in [
        (
            json!({"language": "de", "title": "W", "items": []}),
            "language",
        ),
        (
            json!({"language": "ar", "title": "W", "items": [{"section": "sports", "heading": "x"}]}),
            "items[0].section",
        ),
        (
            json!({"language": "ar", "title": "W", "items": [{"section": "awards", "heading": " "}]}),
            "items[0].heading",
        ),
        (json!({"language": "ar", "title": "", "items": []}), "title"),
    ] {
        let (status, refused) = issue_api(Method::POST, url.clone(), t, Some(body)).await;
        assert_eq!(
            (status, refused["field"].as_str()),
            (422, Some(field)),
            "{refused}"
        );
    }
    let (status, draft) = issue_api(
        Method::POST,
        url.clone(),
        t,
        Some(json!({"language": "ar", "title": "البلاغ الأسبوعي", "items": [
            {"section": "fellowships", "heading": "Fellowship A", "body": "Apply **now**"},
            {"section": "regional-news", "heading": "News B", "body": "<script>x()</script>Text"},
            {"section": "awards", "heading": "Award C", "url": "https://awards.example/c"},
            {"section": "regional-news", "heading": "News D"}
        ]})),
    )
    .await;
    assert_eq!(status, 201, "{draft}");
    assert_eq!(
        (draft["publication"].as_str(), draft["language"].as_str()),
        (Some("communique"), Some("ar"))
    );
    let headings: Vec<(&str, &str)> = draft["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["section"].as_str().expect("section"),
                i["heading"].as_str().expect("heading"),
            )
        })
        .collect();
    assert_eq!(
        headings,
        [
            ("regional-news", "News B"),
            ("regional-news", "News D"),
            ("awards", "Award C"),
            ("fellowships", "Fellowship A")
        ]
    );
    // The rendered bodies are sanitised; the Markdown is kept as written,
    // for the editor's next edit.
    let bodies: String = draft["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["body_html"].as_str().expect("body").to_string())
        .collect();
    assert!(bodies.contains("<strong>now</strong>"), "{bodies}");
    assert!(!bodies.contains("<script"), "{bodies}");
    assert!(draft["items"][0]["body_markdown"]
        .as_str()
        .is_some_and(|m| m.starts_with("<script>")));
    let id = draft["id"].as_i64().expect("id");
    let (status, _) = issue_api(
        Method::POST,
        format!("{base}/api/v1/issues/{id}/publish"),
        t,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let page = get_text(&format!("{base}/publications/communique/issues/{id}")).await;
    assert!(
        page.contains(r#"<article lang="ar">"#) && page.contains("البلاغ الأسبوعي"),
        "{page}"
    );
    // Sections are headed by their names in the issue's language.
    assert!(
        page.contains("<h2>أخبار إقليمية</h2>") && !page.contains("<h2>regional-news</h2>"),
        "{page}"
    );
    assert!(
        page.contains(r#"<a href="https://awards.example/c">Award C</a>"#),
        "{page}"
    );
    let (status, listed) = issue_api(
        Method::GET,
        format!("{base}/api/v1/issues?publication=communique"),
        t,
        None,
    )
    .await;
    assert_eq!(
        (status, listed["items"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_writes_a_communique_sqlite() {
    api_writes_a_communique(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_writes_a_communique_postgres() {
    if !postgres_available() {
        return;
    }
    api_writes_a_communique(Backend::Postgres).await;
}
