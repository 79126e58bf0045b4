//! Alerts end to end: written through the API with a translation, edited and
//! deleted, and the follower instance's copies following along.

use crate::common::{ap_get, client, eventually, postgres_available, Backend, TestInstance};
use serde_json::{json, Value};
use std::time::Duration;
use tocsin::{
    db,
    federation::activities::follow::{follow_remote, local_actor},
};

fn token(i: &TestInstance, name: &str) -> String {
    let mut conn = i.server.state.db.conn().unwrap();
    db::tokens::create(&mut conn, name).unwrap()
}

async fn api(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn alert_body() -> Value {
    json!({
        "title": "Journalist detained in Istanbul",
        "body": "**Ayşe Demir** was detained at dawn. [Appeal](https://ngo.example/appeal)",
        "language": "en",
        "countries": ["TR"],
        "categories": ["detention"],
        "urgency": "action",
        "incident_date": "2026-11-20",
        "attachments": [{"url": "https://ngo.example/photo.jpg", "media_type": "image/jpeg", "description": "Ayşe Demir"}]
    })
}

/// Posts [`alert_body`] to `i` with `token`; the created alert.
async fn post_alert(i: &TestInstance, token: &str) -> Value {
    let (status, created) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/alerts", i.base()),
        Some(token),
        Some(alert_body()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn remote_copy(on: &TestInstance, ap_id: &str) -> Option<db::alerts::AlertRow> {
    let ap_id = ap_id.to_string();
    on.server
        .state
        .db
        .run(move |c| db::alerts::by_ap_id(c, &ap_id))
        .await
        .unwrap()
}

/// Edits the title of the alert `id` on `a` and waits for the follower
/// `b`'s copy of `ap_id` to change.
async fn edit_reaches(a: &TestInstance, token: &str, id: i64, b: &TestInstance, ap_id: &str) {
    let title = "Journalist Ayşe Demir detained in Istanbul";
    let (status, edited) = api(
        reqwest::Method::PATCH,
        format!("{}/api/v1/alerts/{id}", a.base()),
        Some(token),
        Some(json!({ "title": title })),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert!(
        eventually(Duration::from_secs(15), || async {
            remote_copy(b, ap_id)
                .await
                .is_some_and(|c| c.title == title)
        })
        .await,
        "follower's copy edited"
    );
}

async fn lifecycle(member: Backend, follower: Backend) {
    let a = TestInstance::start(member).await;
    let b = TestInstance::start(follower).await;
    let us = local_actor(&b.server.data, "alerts").await.unwrap();
    follow_remote(&b.server.data, &us, &format!("@alerts@{}", a.domain))
        .await
        .unwrap();
    let a_id = format!("{}/actors/alerts", a.base());
    assert!(
        eventually(Duration::from_secs(15), || async {
            let id = a_id.clone();
            b.server
                .state
                .db
                .run(move |c| {
                    let t = db::actors::by_ap_id(c, &id)?;
                    Ok(t.is_some_and(|t| {
                        db::follows::is_followed_locally(c, t.id).unwrap_or(false)
                    }))
                })
                .await
                .unwrap()
        })
        .await,
        "B follows A"
    );

    let t = token(&a, "author");
    let created = post_alert(&a, &t).await;
    let id = created["id"].as_i64().unwrap();
    let ap_id = created["ap_id"].as_str().unwrap().to_string();
    assert!(ap_id.starts_with(&format!("{}/alerts/", a.base())));
    assert_eq!(created["url"], ap_id.as_str());
    assert_eq!(created["region"], "europe-central-asia");

    let (status, fr) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/alerts/{id}/translations", a.base()),
        Some(&t),
        Some(json!({"language": "fr", "title": "Journaliste détenue à Istanbul", "body": "**Ayşe Demir** a été arrêtée."})),
    ).await;
    assert_eq!(status, 201, "{fr}");
    let fr_ap_id = fr["ap_id"].as_str().unwrap().to_string();
    assert_eq!(fr["countries"], json!(["TR"]), "structured fields copied");

    // Both versions arrive at the follower.
    assert!(
        eventually(Duration::from_secs(15), || async {
            remote_copy(&b, &ap_id).await.is_some() && remote_copy(&b, &fr_ap_id).await.is_some()
        })
        .await,
        "follower got both language versions"
    );
    let copy = remote_copy(&b, &ap_id).await.unwrap();
    assert_eq!(copy.title, "Journalist detained in Istanbul");
    assert_eq!(copy.language, "en");
    assert_eq!(copy.country_list(), vec!["TR"]);
    assert!(copy.content_html.contains("<strong>Ayşe Demir</strong>"));
    assert_eq!(remote_copy(&b, &fr_ap_id).await.unwrap().language, "fr");

    // The page shows the version and links the translation.
    let html = client()
        .get(&ap_id)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Journalist detained in Istanbul") && html.contains(&fr_ap_id));

    // The Atom feed has both versions.
    let atom = client()
        .get(format!("{}/@alerts/feed.atom", a.base()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let feed = feed_rs::parser::parse(&atom[..]).unwrap();
    let ids: Vec<&str> = feed.entries.iter().map(|e| e.id.as_str()).collect();
    assert!(
        ids.contains(&ap_id.as_str()) && ids.contains(&fr_ap_id.as_str()),
        "{ids:?}"
    );

    // Edit: the follower's copy changes.
    edit_reaches(&a, &t, id, &b, &ap_id).await;

    // Delete: the copies go, and the id answers 410 with a Tombstone.
    let (status, _) = api(
        reqwest::Method::DELETE,
        format!("{}/api/v1/alerts/{id}", a.base()),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        eventually(Duration::from_secs(15), || async {
            remote_copy(&b, &ap_id)
                .await
                .is_some_and(|c| c.status == "deleted")
                && remote_copy(&b, &fr_ap_id)
                    .await
                    .is_some_and(|c| c.status == "deleted")
        })
        .await,
        "follower's copies deleted"
    );
    let gone = client()
        .get(&ap_id)
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 410);
    let tomb: Value = gone.json().await.unwrap();
    assert_eq!(tomb["type"], "Tombstone");
    assert_eq!(tomb["id"], ap_id.as_str());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_lifecycle_reaches_the_follower_sqlite() {
    lifecycle(Backend::Sqlite, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_lifecycle_reaches_the_follower_postgres() {
    if !postgres_available() {
        return;
    }
    lifecycle(Backend::Postgres, Backend::Sqlite).await;
}

/// Makes every new delivery row fail to be stored, as a full disk or a
/// crash at that point would (`broken`), or mends that.
async fn break_deliveries(i: &TestInstance, broken: bool) {
    i.server
        .state
        .db
        .run(move |conn| {
            use diesel::connection::SimpleConnection;
            match conn {
                db::DbConn::Sqlite(lite) => lite.batch_execute(if broken {
                    "CREATE TRIGGER deliveries_broken BEFORE INSERT ON deliveries \
                     BEGIN SELECT RAISE(ABORT, 'deliveries cannot be stored'); END;"
                } else {
                    "DROP TRIGGER deliveries_broken;"
                })?,
                db::DbConn::Pg(pg) => pg.batch_execute(if broken {
                    "CREATE FUNCTION deliveries_broken() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN RAISE EXCEPTION 'deliveries cannot be stored'; END $$; \
                     CREATE TRIGGER deliveries_broken BEFORE INSERT ON deliveries \
                     FOR EACH ROW EXECUTE FUNCTION deliveries_broken();"
                } else {
                    "DROP TRIGGER deliveries_broken ON deliveries; DROP FUNCTION deliveries_broken();"
                })?,
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Every alert row on `i`, drafts and deleted ones included.
async fn alert_rows(i: &TestInstance) -> Vec<db::alerts::AlertRow> {
    i.server
        .state
        .db
        .run(|conn| {
            use diesel::prelude::*;
            Ok(db::schema::alerts::table
                .order(db::schema::alerts::id)
                .select(db::alerts::AlertRow::as_select())
                .load(conn)?)
        })
        .await
        .unwrap()
}

/// A change to an alert and the activity that tells followers about it are
/// stored together or not at all: when the activity cannot be queued, the
/// create, translation, edit and delete all fail whole (the author sees a
/// 503 and can try again), and nothing is published that followers are
/// never told about.
async fn change_and_announcement_together(backend: Backend) {
    let a = TestInstance::start(backend).await;
    let b = TestInstance::start(Backend::Sqlite).await;
    crate::common::follows(&b, &format!("@alerts@{}", a.domain)).await;
    let t = token(&a, "author");
    let created = post_alert(&a, &t).await;
    let (id, ap_id) = (
        created["id"].as_i64().unwrap(),
        created["ap_id"].as_str().unwrap().to_string(),
    );
    assert!(
        eventually(Duration::from_secs(15), || async {
            remote_copy(&b, &ap_id).await.is_some()
        })
        .await,
        "the follower got the alert"
    );
    let before = alert_rows(&a).await;

    break_deliveries(&a, true).await;
    let alert_url = format!("{}/api/v1/alerts/{id}", a.base());
    let (status, body) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/alerts", a.base()),
        Some(&t),
        Some(alert_body()),
    )
    .await;
    assert_eq!(status, 503, "create: {body}");
    let (status, body) = api(
        reqwest::Method::POST,
        format!("{alert_url}/translations"),
        Some(&t),
        Some(json!({"language": "fr", "title": "Journaliste détenue", "body": "Arrêtée."})),
    )
    .await;
    assert_eq!(status, 503, "translation: {body}");
    let (status, body) = api(
        reqwest::Method::PATCH,
        alert_url.clone(),
        Some(&t),
        Some(json!({"title": "Journalist Ayşe Demir detained in Istanbul"})),
    )
    .await;
    assert_eq!(status, 503, "edit: {body}");
    let (status, body) = api(reqwest::Method::DELETE, alert_url.clone(), Some(&t), None).await;
    assert_eq!(status, 503, "delete: {body}");
    assert_eq!(alert_rows(&a).await, before, "a failed change left a trace");

    // Mended, the same edit goes through and reaches the follower.
    break_deliveries(&a, false).await;
    edit_reaches(&a, &t, id, &b, &ap_id).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_stored_only_with_its_announcement_sqlite() {
    change_and_announcement_together(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_stored_only_with_its_announcement_postgres() {
    if postgres_available() {
        change_and_announcement_together(Backend::Postgres).await;
    }
}

/// Several translations into one language sent at once: one is stored,
/// the others are refused, and the alert keeps one version per language.
/// (`add_translation` checks again inside the transaction that stores the
/// version; the interleaving that needs that second check has not been
/// provoked through the API here, so this checks the outcome only.)
async fn concurrent_translations(backend: Backend) {
    let a = TestInstance::start(backend).await;
    let t = token(&a, "author");
    let created = post_alert(&a, &t).await;
    let id = created["id"].as_i64().unwrap();
    let url = format!("{}/api/v1/alerts/{id}/translations", a.base());
    let tries = (0..8).map(|n| {
        api(
            reqwest::Method::POST,
            url.clone(),
            Some(&t),
            Some(json!({"language": "fr", "title": format!("Journaliste détenue ({n})"), "body": "Arrêtée."})),
        )
    });
    let answers = futures::future::join_all(tries).await;
    let stored = answers.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(stored, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(*status, 422, "{body}");
        assert!(
            body.to_string().contains("already has a fr version"),
            "{body}"
        );
    }
    let versions = a
        .server
        .state
        .db
        .run(move |conn| db::alerts::versions(conn, id))
        .await
        .unwrap();
    let languages: Vec<&str> = versions.iter().map(|v| v.language.as_str()).collect();
    assert_eq!(languages, ["en", "fr"]);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_translations_into_one_language_store_one_sqlite() {
    concurrent_translations(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_translations_into_one_language_store_one_postgres() {
    if postgres_available() {
        concurrent_translations(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn note_has_what_mastodon_needs() {
    let a = TestInstance::start(Backend::Sqlite).await;
    let t = token(&a, "author");
    let mut body = alert_body();
    body["content_warning"] = json!("Violence");
    let (_, created) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/alerts", a.base()),
        Some(&t),
        Some(body),
    )
    .await;
    let ap_id = created["ap_id"].as_str().unwrap().to_string();
    let note: Value = ap_get(&ap_id).await;
    assert_eq!(note["type"], "Note");
    assert_eq!(note["id"], ap_id.as_str());
    assert_eq!(note["attributedTo"], format!("{}/actors/alerts", a.base()));
    assert_eq!(
        note["to"],
        json!(["https://www.w3.org/ns/activitystreams#Public"])
    );
    assert_eq!(
        note["cc"],
        json!([format!("{}/actors/alerts/followers", a.base())])
    );
    let content = note["content"].as_str().unwrap();
    assert!(
        content.starts_with("<p><strong>Journalist detained in Istanbul</strong></p>"),
        "{content}"
    );
    let map = note["contentMap"].as_object().unwrap();
    assert_eq!(map.len(), 1, "one language per Note");
    assert_eq!(map["en"], note["content"]);
    assert_eq!(note["url"], ap_id.as_str());
    assert!(note["published"].as_str().unwrap().ends_with('Z'));
    assert!(
        note.get("updated").is_none(),
        "no updated before the first edit"
    );
    assert_eq!(note["sensitive"], true);
    assert_eq!(note["summary"], "Violence");
    let tags = note["tag"].as_array().unwrap();
    assert!(tags
        .iter()
        .all(|t| t["type"] == "Hashtag" && t["name"].as_str().unwrap().starts_with('#')));
    assert!(tags.iter().any(|t| t["name"] == "#detention"));
    assert!(
        tags.iter()
            .any(|t| t["name"].as_str().unwrap().to_lowercase().contains("turk")),
        "{tags:?}"
    );
    let att = &note["attachment"][0];
    assert_eq!(att["type"], "Image");
    assert_eq!(att["mediaType"], "image/jpeg");
    assert_eq!(att["name"], "Ayşe Demir");
    assert_eq!(note["countries"], json!(["TR"]));
    assert_eq!(note["urgency"], "action");
    assert_eq!(note["incidentDate"], "2026-11-20");
    let ctx = note["@context"].as_array().unwrap();
    let ns = ctx[1]["tocsin"].as_str().unwrap();
    assert_eq!(ns, format!("{}/ns#", a.base()));
    let ns_doc: Value = client()
        .get(format!("{}/ns", a.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ns_doc["@context"]["countries"], "tocsin:countries");

    // An edit carries a newer `updated`.
    let id = created["id"].as_i64().unwrap();
    api(
        reqwest::Method::PATCH,
        format!("{}/api/v1/alerts/{id}", a.base()),
        Some(&t),
        Some(json!({"body": "New text"})),
    )
    .await;
    let note: Value = ap_get(&ap_id).await;
    assert!(note["updated"].as_str().unwrap() >= note["published"].as_str().unwrap());

    // The outbox pages Creates; the organisation's NodeInfo counts the post.
    let outbox: Value = client()
        .get(format!("{}/actors/alerts/outbox", a.base()))
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(outbox["totalItems"], 1);
    let page: Value = ap_get(outbox["first"].as_str().unwrap()).await;
    assert_eq!(page["orderedItems"][0]["type"], "Create");
    assert_eq!(page["orderedItems"][0]["object"]["id"], ap_id.as_str());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_bad_requests_clearly() {
    let a = TestInstance::start(Backend::Sqlite).await;
    let base = a.base();
    let t = token(&a, "one");
    let other = token(&a, "two");
    let (status, _) = api(
        reqwest::Method::POST,
        format!("{base}/api/v1/alerts"),
        None,
        Some(alert_body()),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/alerts"),
        Some("tocsin_forged"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    for (field, value, expected) in [
        ("countries", json!(["XX"]), "countries[0]"),
        ("language", json!("English"), "language"),
        ("urgency", json!("now"), "urgency"),
        ("title", json!(""), "title"),
        ("categories", json!(["gossip"]), "categories[0]"),
        ("incident_date", json!("yesterday"), "incident_date"),
    ] {
        let mut body = alert_body();
        body[field] = value;
        let (status, err) = api(
            reqwest::Method::POST,
            format!("{base}/api/v1/alerts"),
            Some(&t),
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{field}: {err}");
        assert_eq!(err["field"], expected, "{err}");
        assert!(err["error"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let mut body = alert_body();
    body["colour"] = json!("red");
    let (status, err) = api(
        reqwest::Method::POST,
        format!("{base}/api/v1/alerts"),
        Some(&t),
        Some(body),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    let malformed = client()
        .post(format!("{base}/api/v1/alerts"))
        .bearer_auth(&t)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 422);

    let (_, created) = api(
        reqwest::Method::POST,
        format!("{base}/api/v1/alerts"),
        Some(&t),
        Some(alert_body()),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let (status, _) = api(
        reqwest::Method::PATCH,
        format!("{base}/api/v1/alerts/{id}"),
        Some(&other),
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(status, 403, "another token's alert");
    let (status, _) = api(
        reqwest::Method::DELETE,
        format!("{base}/api/v1/alerts/{id}"),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/alerts/999999"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Pagination and filters.
    for n in 0..24 {
        let mut body = alert_body();
        body["title"] = json!(format!("Alert number {n}"));
        if n % 2 == 0 {
            body["countries"] = json!(["MX"]);
        }
        api(
            reqwest::Method::POST,
            format!("{base}/api/v1/alerts"),
            Some(&t),
            Some(body),
        )
        .await;
    }
    let (_, page1) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/alerts"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(page1["alerts"].as_array().unwrap().len(), 20);
    let next = page1["next"].as_str().unwrap().to_string();
    let (_, page2) = api(reqwest::Method::GET, next, Some(&t), None).await;
    assert_eq!(page2["alerts"].as_array().unwrap().len(), 5);
    assert!(page2["next"].is_null());
    let (_, mx) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/alerts?country=mx"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(mx["alerts"].as_array().unwrap().len(), 12);
    let (_, americas) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/alerts?region=americas&text=number%201"),
        Some(&t),
        None,
    )
    .await;
    assert!(americas["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["countries"] == json!(["MX"])
            && a["title"].as_str().unwrap().contains("number 1")));
    let (status, err) = api(
        reqwest::Method::GET,
        format!("{base}/api/v1/alerts?since=soon"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!((status, err["field"].as_str()), (422, Some("since")));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_checked_by_content_and_served_safely() {
    let mut prepared = crate::common::prepare(Backend::Sqlite);
    prepared.config.alerts.max_upload_bytes = 64 * 1024;
    let a = TestInstance::start_prepared(prepared).await;
    let t = token(&a, "author");
    let url = format!("{}/api/v1/media", a.base());
    let mut png = vec![
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
    ];
    png.extend_from_slice(&[0u8; 64]);
    let upload = |body: Vec<u8>, token: Option<String>, ct: &'static str| {
        let mut req = client().post(&url).header("Content-Type", ct).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let resp = upload(png.clone(), None, "image/png").await.unwrap();
    assert_eq!(resp.status(), 401);
    // A script that claims to be an image is refused for what it is.
    let resp = upload(
        b"<script>alert(1)</script>".to_vec(),
        Some(t.clone()),
        "image/png",
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 422);
    let resp = upload(vec![0u8; 100 * 1024], Some(t.clone()), "image/png")
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let resp = upload(png.clone(), Some(t.clone()), "application/octet-stream")
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let media: Value = resp.json().await.unwrap();
    assert_eq!(media["media_type"], "image/png");
    let media_url = media["url"].as_str().unwrap().to_string();
    let got = client().get(&media_url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(got.bytes().await.unwrap().to_vec(), png);
    let traversal = client()
        .get(format!("{}/media/..%2F..%2Fetc%2Fpasswd", a.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 404);

    let mut body = alert_body();
    body["attachments"] =
        json!([{"url": media_url, "media_type": "image/png", "description": "Protest"}]);
    let (status, created) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/alerts", a.base()),
        Some(&t),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let note: Value = ap_get(created["ap_id"].as_str().unwrap()).await;
    assert_eq!(note["attachment"][0]["url"], media_url.as_str());
    assert_eq!(note["attachment"][0]["type"], "Image");
    a.stop().await;
}
