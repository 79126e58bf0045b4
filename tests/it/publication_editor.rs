//! The editors' publication pages, logged in as an editor: build a Digest
//! draft, reorder it with the up/down buttons, trim it and publish it after
//! the confirmation step; write a Communiqué, add and edit its items; and
//! an item edit refused once the issue is published, in the pages and in
//! the API (`PUT /api/v1/issues/{id}/items/{item}`). On SQLite and
//! PostgreSQL.

use crate::common::{
    alert_values, api, api_token, html_page, postgres_available, visitor::Visitor, Backend,
    TestInstance,
};
use reqwest::Method;
use tocsin::{
    accounts,
    db::{
        alerts::{insert, AlertValues},
        publications::{self, ItemRow},
    },
    federation::activities::follow::local_actor,
};

async fn user(i: &TestInstance, name: &str, role: &str) -> String {
    let password = format!("{name}-secret-password");
    accounts::add_user(&i.server.state.db, name, role, &password)
        .await
        .expect("user added");
    password
}

fn items(i: &TestInstance, issue: i64) -> Vec<ItemRow> {
    let mut conn = i.server.state.db.conn().expect("connection");
    publications::items(&mut conn, issue).expect("items")
}

fn headings(i: &TestInstance, issue: i64) -> Vec<String> {
    items(i, issue).into_iter().map(|i| i.heading).collect()
}

fn state(i: &TestInstance, issue: i64) -> String {
    let mut conn = i.server.state.db.conn().expect("connection");
    publications::issue(&mut conn, issue).expect("issue").state
}

/// The issue id of a redirect to its page.
fn issue_of(location: &str) -> i64 {
    location
        .strip_prefix("/editor/publications/issues/")
        .and_then(|rest| rest.split(['?', '/']).next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not an issue page: {location}"))
}

/// Posts a form with the session's CSRF token.
async fn post(
    v: &mut Visitor,
    path: &str,
    fields: &[(&str, &str)],
) -> crate::common::visitor::Page {
    let csrf = v.csrf("/editor/publications").await;
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    v.post(path, &form).await
}

async fn editor_builds_reorders_trims_and_publishes(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let editor_pw = user(&i, "eddie", accounts::EDITOR).await;
    let author_pw = user(&i, "amina", accounts::AUTHOR).await;
    let us = local_actor(&i.server.data, "alerts").await.expect("actor");
    {
        let mut conn = i.server.state.db.conn().expect("connection");
        for (n, region, country) in [(1, "africa", "NG"), (2, "mena", "TR"), (3, "mena", "EG")] {
            insert(
                &mut conn,
                AlertValues {
                    title: format!("Alert {n}"),
                    countries: format!(",{country},"),
                    region: Some(region.into()),
                    ..alert_values(format!("{}/alerts/{n}", i.base()), us.id, true)
                },
            )
            .expect("alert");
        }
    }

    // Authors may not; logged-out visitors are sent to the login page.
    let mut anon = Visitor::new(&i.base());
    assert_eq!(anon.get("/editor/publications").await.status, 303);
    let mut author = Visitor::new(&i.base());
    assert_eq!(author.login("amina", &author_pw).await.status, 303);
    assert_eq!(author.get("/editor/publications").await.status, 403);

    let mut v = Visitor::new(&i.base());
    assert_eq!(v.login("eddie", &editor_pw).await.status, 303);
    let list = v.get("/editor/publications").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("action=\"/editor/publications/digest\""));

    // Build: the page redirects to the new draft.
    let bad = post(
        &mut v,
        "/editor/publications/digest",
        &[("language", "en"), ("days", "0")],
    )
    .await;
    assert_eq!(bad.status, 422);
    let built = post(
        &mut v,
        "/editor/publications/digest",
        &[("language", "en"), ("days", "1")],
    )
    .await;
    assert_eq!(built.status, 303, "{}", built.body);
    let digest = issue_of(&built.location());
    assert_eq!(
        headings(&i, digest),
        ["NG: Alert 1", "EG: Alert 3", "TR: Alert 2"]
    );
    let page = v.get(&built.location()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("The Digest draft is built."));
    // The preview is the public page's article.
    assert!(page.body.contains("<article lang=\"en\">"), "{}", page.body);
    assert!(page.body.contains("href=\"/publications/digest\""));

    let ids: Vec<i64> = items(&i, digest).iter().map(|i| i.id).collect();
    let base = format!("/editor/publications/issues/{digest}");
    // Section mena up, then TR up within it; the first item cannot go up.
    let moved = post(
        &mut v,
        &format!("{base}/move"),
        &[("section", "mena"), ("direction", "up")],
    )
    .await;
    assert_eq!(moved.status, 303);
    assert_eq!(moved.location(), format!("{base}?done=moved"));
    let tr = ids[2].to_string();
    post(
        &mut v,
        &format!("{base}/move"),
        &[("item", &tr), ("direction", "up")],
    )
    .await;
    post(
        &mut v,
        &format!("{base}/move"),
        &[("item", &tr), ("direction", "up")],
    )
    .await;
    assert_eq!(
        headings(&i, digest),
        ["TR: Alert 2", "EG: Alert 3", "NG: Alert 1"]
    );
    // Remove NG.
    let ng = ids[0].to_string();
    let removed = post(&mut v, &format!("{base}/remove"), &[("item", &ng)]).await;
    assert_eq!(removed.location(), format!("{base}?done=removed"));
    assert_eq!(headings(&i, digest), ["TR: Alert 2", "EG: Alert 3"]);

    // Publishing asks first; a POST without the confirmation only asks.
    let ask = v.get(&format!("{base}/publish")).await;
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("name=\"confirm\" value=\"yes\""));
    let unconfirmed = post(&mut v, &format!("{base}/publish"), &[]).await;
    assert_eq!(unconfirmed.location(), format!("{base}/publish"));
    assert_eq!(state(&i, digest), "draft");
    let published = post(&mut v, &format!("{base}/publish"), &[("confirm", "yes")]).await;
    assert_eq!(published.location(), format!("{base}?done=published"));
    assert_eq!(state(&i, digest), "published");
    let public = html_page(format!("{}/publications/digest/issues/{digest}", i.base())).await;
    let (tr_at, eg_at) = (
        public.find("TR: Alert 2").expect("TR"),
        public.find("EG: Alert 3").expect("EG"),
    );
    assert!(tr_at < eg_at && !public.contains("NG: Alert 1"));
    // A published issue no longer moves.
    let eg = ids[1].to_string();
    let refused = post(
        &mut v,
        &format!("{base}/move"),
        &[("item", &eg), ("direction", "up")],
    )
    .await;
    assert_eq!(refused.location(), format!("{base}?done=refused-published"));
    assert_eq!(headings(&i, digest), ["TR: Alert 2", "EG: Alert 3"]);
    let page = v.get(&base).await;
    assert!(page.body.contains("Send by e-mail") || page.body.contains("E-mail is not set up"));

    // The Communiqué: a draft, then its items.
    let written = post(
        &mut v,
        "/editor/publications/communique",
        &[("language", "fr"), ("title", "Communiqué 51")],
    )
    .await;
    assert_eq!(written.status, 303, "{}", written.body);
    let communique = issue_of(&written.location());
    let cbase = format!("/editor/publications/issues/{communique}");
    assert_eq!(v.get(&format!("{cbase}/items/new")).await.status, 200);
    let add =
        |section: &'static str, heading: &'static str, body: &'static str, url: &'static str| {
            vec![
                ("section", section),
                ("heading", heading),
                ("body", body),
                ("url", url),
            ]
        };
    let added = post(
        &mut v,
        &format!("{cbase}/items/new"),
        &add(
            "awards",
            "Prix de la presse",
            "Le prix **2026**.",
            "https://prize.example/2026",
        ),
    )
    .await;
    assert_eq!(added.location(), format!("{cbase}?done=item-added"));
    post(
        &mut v,
        &format!("{cbase}/items/new"),
        &add("regional-news", "Nouvelles", "Une loi.", ""),
    )
    .await;
    let bad = post(
        &mut v,
        &format!("{cbase}/items/new"),
        &add("awards", "Lien", "", "javascript:alert(1)"),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("http or https"), "{}", bad.body);
    // Sections in the Communiqué's order whatever the order of writing.
    assert_eq!(headings(&i, communique), ["Nouvelles", "Prix de la presse"]);

    // Edit an item: its Markdown comes back in the form.
    let prize = items(&i, communique)[1].id;
    let form = v.get(&format!("{cbase}/items/{prize}")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Le prix **2026**."), "{}", form.body);
    let saved = post(
        &mut v,
        &format!("{cbase}/items/{prize}"),
        &add(
            "fellowships",
            "Bourse Libre",
            "Une *bourse*.",
            "https://fellow.example/",
        ),
    )
    .await;
    assert_eq!(saved.location(), format!("{cbase}?done=item-saved"));
    let edited = items(&i, communique);
    assert_eq!(edited[1].heading, "Bourse Libre");
    assert_eq!(edited[1].section, "fellowships");
    assert_eq!(edited[1].body_html.trim(), "<p>Une <em>bourse</em>.</p>");
    assert_eq!(edited[1].body_markdown.as_deref(), Some("Une *bourse*."));

    // The same through the API.
    let token = api_token(&i, "editor-api");
    let url = format!("{}/api/v1/issues/{communique}/items/{prize}", i.base());
    let body = serde_json::json!({"section": "awards", "heading": "Prix 2026", "body": "Texte", "url": null});
    let (status, issue) = api(Method::PUT, url.clone(), &token, Some(body.clone())).await;
    assert_eq!(status, 200, "{issue}");
    assert_eq!(issue["items"][1]["heading"], "Prix 2026");
    assert_eq!(issue["items"][1]["body_markdown"], "Texte");
    let (status, _) = api(
        Method::PUT,
        format!("{}/api/v1/issues/{communique}/items/999999", i.base()),
        &token,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 404);
    // Digest items come from alerts: not written, even in a draft.
    let draft = post(
        &mut v,
        "/editor/publications/digest",
        &[("language", "en"), ("days", "1")],
    )
    .await;
    let draft = issue_of(&draft.location());
    let (status, answer) = api(
        Method::PUT,
        format!(
            "{}/api/v1/issues/{draft}/items/{}",
            i.base(),
            items(&i, draft)[0].id
        ),
        &token,
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (422, Some("publication"))
    );

    // Publish the Communiqué; then edits are refused, page and API.
    post(&mut v, &format!("{cbase}/publish"), &[("confirm", "yes")]).await;
    assert_eq!(state(&i, communique), "published");
    let before = headings(&i, communique);
    let refused = post(
        &mut v,
        &format!("{cbase}/items/{prize}"),
        &add("awards", "Changed after", "", ""),
    )
    .await;
    assert_eq!(
        refused.location(),
        format!("{cbase}?done=refused-published")
    );
    let form = v.get(&format!("{cbase}/items/{prize}")).await;
    assert_eq!(form.location(), format!("{cbase}?done=refused-published"));
    let (status, answer) = api(Method::PUT, url, &token, Some(body)).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (422, Some("state")),
        "{answer}"
    );
    assert_eq!(headings(&i, communique), before);

    // The list shows both, published.
    let list = v.get("/editor/publications").await;
    assert!(list.body.contains("Communiqué 51") && list.body.contains(&format!("issues/{digest}")));
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_builds_reorders_trims_and_publishes_sqlite() {
    editor_builds_reorders_trims_and_publishes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_builds_reorders_trims_and_publishes_postgres() {
    if postgres_available() {
        editor_builds_reorders_trims_and_publishes(Backend::Postgres).await;
    }
}
