//! The web pages: accounts (login, lockout, CSRF, roles, logout, password
//! change), the author's and editor's pages on their domain functions, and
//! the public pages in five languages. Each database test runs on SQLite
//! and PostgreSQL.

use crate::common::{
    eventually, postgres_available, prepare,
    visitor::{Page, Visitor},
    Backend, TestInstance,
};
use std::time::Duration;
use tocsin::{
    accounts, config::FeedConfig, curation::members, db,
    federation::activities::follow::local_actor,
};

async fn user(i: &TestInstance, name: &str, role: &str) -> String {
    let password = format!("{name}-secret-password");
    accounts::add_user(&i.server.state.db, name, role, &password)
        .await
        .unwrap();
    password
}

const PNG: [u8; 16] = [
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
];

async fn accounts_and_forms(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let author_pw = user(&i, "amina", accounts::AUTHOR).await;
    let editor_pw = user(&i, "eddie", accounts::EDITOR).await;

    // Not logged in: every private page sends to the login page.
    let mut anon = Visitor::new(&i.base());
    for path in [
        "/author",
        "/author/new",
        "/editor/queue",
        "/editor/directory",
        "/editor/hosts",
        "/account",
    ] {
        let p = anon.get(path).await;
        assert_eq!(p.status, 303, "{path}");
        assert!(
            p.location().starts_with("/login?next=%2F"),
            "{path}: {}",
            p.location()
        );
    }
    let p = anon.post("/author/new", &[("csrf", "x")]).await;
    assert_eq!(p.status, 303);

    // The login form needs its CSRF token.
    let p = anon
        .post("/login", &[("name", "amina"), ("password", &author_pw)])
        .await;
    assert_eq!(p.status, 403);

    // Session cookie: HttpOnly, SameSite=Lax, a fresh id (no fixation).
    anon.cookies
        .insert("tocsin_session".into(), "planted-by-attacker".into());
    let mut author = anon;
    let p = author.login("amina", &author_pw).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let cookie = p
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("tocsin_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http here: {cookie}");
    assert_ne!(author.cookies["tocsin_session"], "planted-by-attacker");
    assert_eq!(author.get("/author").await.status, 200);

    // The home page kept for anonymous readers is never the one a
    // logged-in reader gets, nor the other way round.
    for _ in 0..2 {
        let p = Visitor::new(&i.base()).get("/").await;
        assert_eq!(p.status, 200);
        assert!(!p.body.contains("/logout"), "anonymous: {}", p.body);
        assert!(p.headers.contains_key("etag"));
        let p = author.get("/").await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("action=\"/logout\""), "{}", p.body);
        assert_eq!(p.headers["cache-control"], "private, no-store");
    }

    // Wrong role: 403.
    for path in [
        "/editor/queue",
        "/editor/directory",
        "/editor/hosts",
        "/editor/review/1",
    ] {
        assert_eq!(author.get(path).await.status, 403, "{path}");
    }
    let mut editor = Visitor::new(&i.base());
    assert_eq!(editor.login("eddie", &editor_pw).await.status, 303);
    assert_eq!(editor.get("/author/new").await.status, 403);
    let csrf = editor.csrf("/editor/queue").await;
    let p = editor
        .post("/author/alerts/1/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 403);

    // CSRF: a POST without the token, or with another session's, is refused.
    let good = author.csrf("/author/new").await;
    let p = author
        .post_multipart("/author/new", &[("title", "x"), ("do", "publish")], None)
        .await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("Form expired"));
    let p = author
        .post_multipart(
            "/author/new",
            &[("csrf", &csrf), ("title", "x"), ("do", "publish")],
            None,
        )
        .await;
    assert_eq!(p.status, 403, "the editor's token is not the author's");
    assert_eq!(
        author
            .post("/account/password", &[("csrf", "nope")])
            .await
            .status,
        403
    );

    // Password change ends other sessions and keeps this one.
    let mut other = Visitor::new(&i.base());
    assert_eq!(other.login("amina", &author_pw).await.status, 303);
    let p = author
        .post(
            "/account/password",
            &[
                ("csrf", &good),
                ("old_password", &author_pw),
                ("new_password", "a-new-long-password"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(author
        .get("/account?changed=1")
        .await
        .body
        .contains("password was changed"));
    assert_eq!(
        other.get("/author").await.status,
        303,
        "other session ended"
    );
    let token = author.csrf("/account").await;
    let p = author
        .post(
            "/account/password",
            &[
                ("csrf", &token),
                ("old_password", "wrong"),
                ("new_password", "whatever-long"),
            ],
        )
        .await;
    assert_eq!(p.status, 422);

    // Lockout: five wrong passwords lock the account, even for the right one.
    let mut guesser = Visitor::new(&i.base());
    for _ in 0..accounts::MAX_FAILURES {
        assert_eq!(guesser.login("eddie", "wrong-password").await.status, 401);
    }
    let p = guesser.login("eddie", &editor_pw).await;
    assert_eq!(p.status, 429);
    assert!(p.body.contains("Too many failed logins"));
    assert_eq!(
        editor.get("/editor/queue").await.status,
        200,
        "existing session unaffected"
    );
    assert_eq!(guesser.login("nobody", "whatever").await.status, 401);

    // Logout ends the session.
    let csrf = author.csrf("/author").await;
    assert_eq!(author.post("/logout", &[("csrf", &csrf)]).await.status, 303);
    assert_eq!(author.get("/author").await.status, 303);
    i.stop().await;
}

async fn author_pages(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let pw = user(&i, "amina", accounts::AUTHOR).await;
    // A follower whose server does not answer (nothing listens on port 9).
    i.server
        .state
        .db
        .run(|c| {
            let dead = db::actors::upsert(
                c,
                &db::actors::NewActor::remote_person(
                    "http://127.0.0.1:9/users/gone",
                    "gone",
                    "127.0.0.1:9",
                    "http://127.0.0.1:9/users/gone/inbox",
                    "",
                ),
            )?;
            let org = db::actors::local_by_username(c, "alerts")?.unwrap();
            db::follows::upsert(
                c,
                dead.id,
                org.id,
                db::follows::ACCEPTED,
                "http://127.0.0.1:9/follows/1",
            )
        })
        .await
        .unwrap();
    let mut a = Visitor::new(&i.base());
    a.login("amina", &pw).await;
    let new = a.get("/author/new").await;
    assert_eq!(new.status, 200);
    for label in [
        "for=\"title\"",
        "for=\"body\"",
        "for=\"countries\"",
        "for=\"file\"",
        "value=\"detention\"",
    ] {
        assert!(new.body.contains(label), "{label}");
    }
    let csrf = new.csrf();
    let fields = |title: &'static str, action: &'static str| {
        vec![
            ("title", title),
            ("body", "Police held the reporter for **two days**."),
            ("language", "en"),
            ("countries", "NG"),
            ("countries", "GH"),
            ("categories", "detention"),
            ("urgency", "action"),
            ("do", action),
        ]
    };
    // Preview renders and stores nothing.
    let mut f = fields("Reporter held in Abuja", "preview");
    f.push(("csrf", &csrf));
    let p = a.post_multipart("/author/new", &f, None).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("<strong>two days</strong>"));
    let count = |i: &TestInstance| {
        let db = i.server.state.db.clone();
        async move {
            db.run(|c| {
                db::alerts::list(
                    c,
                    &db::alerts::AlertFilter {
                        include_drafts: true,
                        ..Default::default()
                    },
                    100,
                    0,
                )
            })
            .await
            .unwrap()
        }
    };
    assert!(count(&i).await.is_empty());

    // Invalid input comes back with the message and the text kept.
    let mut bad = fields("", "publish");
    bad.push(("csrf", &csrf));
    let p = a.post_multipart("/author/new", &bad, None).await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("title"), "{}", p.body);
    assert!(p.body.contains("Police held the reporter"));

    // A file of a refused type comes back with the message, the text kept.
    let mut f = fields("Reporter held in Abuja", "draft");
    f.push(("csrf", &csrf));
    let p = a
        .post_multipart("/author/new", &f, Some(b"MZ\x90\x00\x03\x00\x00\x00"))
        .await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("accepted types") && p.body.contains("Reporter held in Abuja"));
    assert!(count(&i).await.is_empty());

    // A draft with an attached file: stored, not public.
    let mut f = fields("Reporter held in Abuja", "draft");
    f.push(("csrf", &csrf));
    f.push(("file_description", "Photo of the court"));
    let p = a.post_multipart("/author/new", &f, Some(&PNG)).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let rows = count(&i).await;
    assert_eq!(rows.len(), 1);
    let draft = rows[0].clone();
    assert_eq!(draft.status, "draft");
    let atts = i
        .server
        .state
        .db
        .run(move |c| db::alerts::attachments(c, draft.id))
        .await
        .unwrap();
    assert_eq!(atts.len(), 1);
    assert!(atts[0].url.contains("/media/") && atts[0].url.ends_with(".png"));
    assert_eq!(atts[0].description.as_deref(), Some("Photo of the court"));
    assert_eq!(
        Visitor::new(&i.base())
            .get(&draft.ap_id.replace(&i.base(), ""))
            .await
            .status,
        404
    );
    let list = a.get("/author?done=draft").await;
    assert!(list.body.contains("The draft was saved.") && list.body.contains("Draft"));

    // Publish the draft from the edit page (the file stays attached).
    let edit = a.get(&format!("/author/alerts/{}", draft.id)).await;
    assert!(edit.body.contains("Photo of the court"));
    let att_line = format!("{} Photo of the court", atts[0].url);
    let mut f = fields("Reporter held in Abuja for two days", "publish");
    f.push(("csrf", &csrf));
    f.push(("attachments", &att_line));
    let p = a
        .post_multipart(&format!("/author/alerts/{}", draft.id), &f, None)
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let path = draft.ap_id.replace(&i.base(), "");
    let public = Visitor::new(&i.base()).get(&path).await;
    assert_eq!(public.status, 200);
    assert!(public.body.contains("Reporter held in Abuja for two days"));
    assert!(public.body.contains("Photo of the court"));

    // A translation, beside the original.
    let t = a
        .get(&format!("/author/alerts/{}/translate", draft.id))
        .await;
    assert!(t.body.contains("Reporter held in Abuja for two days"));
    let p = a
        .post(
            &format!("/author/alerts/{}/translate", draft.id),
            &[
                ("csrf", &csrf),
                ("language", "fr"),
                ("title", "Journaliste détenu à Abuja"),
                ("body", "Détenu deux jours."),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let p = a
        .post(
            &format!("/author/alerts/{}/translate", draft.id),
            &[
                ("csrf", &csrf),
                ("language", "fr"),
                ("title", "Encore"),
                ("body", "Encore."),
            ],
        )
        .await;
    assert_eq!(p.status, 422, "a second French version is refused");
    let public = Visitor::new(&i.base()).get(&path).await;
    assert!(public.body.contains("hreflang=\"fr\""));
    assert!(a
        .get("/author")
        .await
        .body
        .contains("Journaliste détenu à Abuja"));

    // Where it went.
    let d = a
        .get(&format!("/author/alerts/{}/deliveries", draft.id))
        .await;
    assert_eq!(d.status, 200);
    assert!(d.body.contains("Delivered") && d.body.contains("Failing"));
    // The dead server: one failing delivery however many activities went
    // (the Create, then the Update the translation made), with its error.
    let failing = |page: &Page| {
        let at = page.body.find("Failing</th><td>").unwrap() + "Failing</th><td>".len();
        page.body[at..].split('<').next().unwrap().to_string()
    };
    let where_path = format!("/author/alerts/{}/deliveries", draft.id);
    let mut d = a.get(&where_path).await;
    for _ in 0..100 {
        if failing(&d) == "1" && d.body.contains("<th scope=\"row\">127.0.0.1:9</th>") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        d = a.get(&where_path).await;
    }
    assert_eq!(failing(&d), "1", "{}", d.body);
    let line = &d.body[d
        .body
        .find("<th scope=\"row\">127.0.0.1:9</th>")
        .expect("a line for the server")..];
    let line = &line[..line.find("</tr>").unwrap()];
    let cells: Vec<&str> = line.split("<td>").skip(1).collect();
    assert!(cells[2].starts_with('1'), "failing: {line}");
    assert!(
        cells[3].trim_start().len() > "</td>".len(),
        "the last error is shown: {line}"
    );

    // Delete.
    let p = a
        .post(
            &format!("/author/alerts/{}/delete", draft.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(Visitor::new(&i.base()).get(&path).await.status, 410);
    assert_eq!(
        a.get(&format!("/author/alerts/{}", draft.id)).await.status,
        404
    );
    i.stop().await;
}

async fn editor_pages(backend: Backend) {
    let member = TestInstance::start(backend).await;
    let mut p = prepare(backend);
    p.config.instance.role = "clearinghouse".into();
    p.config.feeds = vec![
        FeedConfig {
            username: "world".into(),
            display_name: "World".into(),
            ..Default::default()
        },
        FeedConfig {
            username: "africa".into(),
            display_name: "Africa".into(),
            regions: vec!["africa".into()],
            ..Default::default()
        },
    ];
    let ch = TestInstance::start_prepared(p).await;
    let org = local_actor(&ch.server.data, "alerts").await.unwrap();
    let handle = format!("@alerts@{}", member.domain);
    members::add(
        &ch.server.data,
        &org,
        &handle,
        Some("africa".into()),
        vec!["NG".into()],
    )
    .await
    .unwrap();
    let author_pw = user(&member, "amina", accounts::AUTHOR).await;
    let editor_pw = user(&ch, "eddie", accounts::EDITOR).await;
    let admin_pw = user(&ch, "root", accounts::ADMIN).await;

    // Three alerts from the member, through the author pages.
    let mut a = Visitor::new(&member.base());
    a.login("amina", &author_pw).await;
    let csrf = a.csrf("/author/new").await;
    for (title, country) in [
        ("Radio shut in Kano", "NG"),
        ("Blogger jailed in Manila", "PH"),
        ("Editor sued in Accra", "GH"),
    ] {
        let p = a
            .post_multipart(
                "/author/new",
                &[
                    ("csrf", &csrf),
                    ("title", title),
                    ("body", "The original text of the alert."),
                    ("language", "en"),
                    ("countries", country),
                    ("urgency", "action"),
                    ("do", "publish"),
                ],
                None,
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
    }
    let db = ch.server.state.db.clone();
    assert!(
        eventually(Duration::from_secs(30), || {
            let db = db.clone();
            async move {
                db.run(|c| db::curation::reviews(c, Some("pending"), 10))
                    .await
                    .unwrap()
                    .len()
                    == 3
            }
        })
        .await,
        "three items to review"
    );

    let mut e = Visitor::new(&ch.base());
    e.login("eddie", &editor_pw).await;
    let q = e.get("/editor/queue").await;
    assert_eq!(q.status, 200);
    for t in [
        "Radio shut in Kano",
        "Blogger jailed in Manila",
        "Editor sued in Accra",
    ] {
        assert!(q.body.contains(t), "{t}");
    }
    // Filters: region, country, member, language.
    let q = e.get("/editor/queue?region=asia-pacific").await;
    assert!(q.body.contains("Manila") && !q.body.contains("Kano"));
    let q = e.get("/editor/queue?country=GH").await;
    assert!(q.body.contains("Accra") && !q.body.contains("Manila"));
    let q = e
        .get(&format!(
            "/editor/queue?member={}",
            handle.replace('@', "%40").replace(':', "%3A")
        ))
        .await;
    assert!(q.body.contains("Accra") && q.body.contains("Kano"));
    let q = e.get("/editor/queue?member=%40someone%40else").await;
    assert!(!q.body.contains("Accra"));
    let q = e.get("/editor/queue?language=fr").await;
    assert!(!q.body.contains("Kano"));

    let items = db
        .run(|c| db::curation::reviews(c, Some("pending"), 10))
        .await
        .unwrap();
    let id_of = |needle: &str| {
        let db = db.clone();
        let items = items.clone();
        let needle = needle.to_string();
        async move {
            for it in items {
                let alert_id = it.alert_id;
                let a = db
                    .run(move |c| db::alerts::by_id(c, alert_id))
                    .await
                    .unwrap();
                if a.title.contains(&needle) {
                    return it.id;
                }
            }
            panic!("no item {needle}")
        }
    };
    let (kano, manila, accra) = (
        id_of("Kano").await,
        id_of("Manila").await,
        id_of("Accra").await,
    );

    // The member translates the Accra alert; the Clearing House links the
    // French version to the original it holds.
    let member_db = member.server.state.db.clone();
    let accra_here = member_db
        .run(|c| db::alerts::list(c, &db::alerts::AlertFilter::default(), 10, 0))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.title.contains("Accra"))
        .unwrap();
    let token = csrf_of(&mut a).await;
    let p = a
        .post(
            &format!("/author/alerts/{}/translate", accra_here.id),
            &[
                ("csrf", &token),
                ("language", "fr"),
                ("title", "Rédacteur poursuivi à Accra"),
                ("body", "Le texte original, en français."),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let accra_alert = db
        .run(move |c| db::curation::review(c, accra))
        .await
        .unwrap()
        .alert_id;
    assert!(
        eventually(Duration::from_secs(30), || {
            let db = db.clone();
            async move {
                db.run(move |c| db::alerts::versions(c, accra_alert))
                    .await
                    .unwrap()
                    .len()
                    == 2
            }
        })
        .await,
        "the French version is linked to its original"
    );
    // The curate form holds the member's text as Markdown (without the
    // title line Mastodon needs) and the French version, to edit.
    let r = e.get(&format!("/editor/review/{accra}")).await;
    let body_at = r.body.find("id=\"c-body\"").unwrap();
    let body = &r.body[body_at..r.body[body_at..].find("</textarea>").unwrap() + body_at];
    assert!(body.contains("The original text of the alert."), "{body}");
    assert!(!body.contains("Editor sued in Accra"), "{body}");
    assert!(r.body.contains("name=\"tr_language_0\" value=\"fr\""));
    assert!(r.body.contains("value=\"Rédacteur poursuivi à Accra\""));
    assert!(r.body.contains("Le texte original, en français."));

    // The member's text beside the feeds it matches.
    let r = e.get(&format!("/editor/review/{kano}")).await;
    assert!(r.body.contains("The original text of the alert."));
    assert!(
        r.body.contains("<strong>africa</strong>") && r.body.contains("<strong>world</strong>")
    );
    let r = e.get(&format!("/editor/review/{manila}")).await;
    assert!(
        !r.body.contains("<strong>africa</strong>"),
        "Manila is not Africa"
    );

    let csrf = r.csrf();
    assert_eq!(
        e.post(
            &format!("/editor/review/{kano}/approve"),
            &[("feeds", "world")]
        )
        .await
        .status,
        403
    );
    let p = e
        .post(
            &format!("/editor/review/{kano}/approve"),
            &[("csrf", &csrf), ("feeds", "world"), ("feeds", "africa")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let p = e
        .post(
            &format!("/editor/review/{manila}/reject"),
            &[("csrf", &csrf), ("reason", "")],
        )
        .await;
    assert_eq!(p.status, 422, "a rejection needs a reason");
    let p = e
        .post(
            &format!("/editor/review/{manila}/reject"),
            &[("csrf", &csrf), ("reason", "Out of scope")],
        )
        .await;
    assert_eq!(p.status, 303);
    let p = e
        .post(
            &format!("/editor/review/{accra}/curate"),
            &[
                ("csrf", &csrf),
                ("title", "Editor sued for defamation in Accra"),
                ("body", "Our own summary."),
                ("tr_language_0", "fr"),
                ("tr_title_0", "Rédacteur poursuivi pour diffamation à Accra"),
                ("tr_body_0", "Notre propre résumé."),
                ("feeds", "world"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    // The curated version has its French translation.
    let curated = db
        .run(move |c| db::curation::review(c, accra))
        .await
        .unwrap()
        .curated_alert_id
        .unwrap();
    let versions = db
        .run(move |c| db::alerts::versions(c, curated))
        .await
        .unwrap();
    assert!(versions
        .iter()
        .any(|v| v.language == "fr" && v.title == "Rédacteur poursuivi pour diffamation à Accra"));
    // The member's French version waited on its own; it goes with the
    // curated original.
    let french = db
        .run(|c| db::curation::reviews(c, Some("pending"), 10))
        .await
        .unwrap();
    for item in french {
        let p = e
            .post(
                &format!("/editor/review/{}/reject", item.id),
                &[("csrf", &csrf), ("reason", "Curated with the original")],
            )
            .await;
        assert_eq!(p.status, 303);
    }
    assert!(e
        .get("/editor/queue")
        .await
        .body
        .contains("Nothing to review."));
    assert!(e
        .get("/editor/queue?state=rejected")
        .await
        .body
        .contains("Manila"));
    let r = e.get(&format!("/editor/review/{manila}")).await;
    assert!(r.body.contains("Out of scope") && r.body.contains("eddie"));

    // Feed pages list what they boosted; the curated version is ours.
    let reader = &mut Visitor::new(&ch.base());
    let world = reader.get("/@world").await;
    assert!(world.body.contains("Radio shut in Kano"));
    assert!(world.body.contains("Editor sued for defamation in Accra"));
    assert!(!world.body.contains("Manila"));
    assert!(world.body.contains("action=\"/follow\"") && world.body.contains("/@world/feed.atom"));
    assert!(!reader.get("/@africa").await.body.contains("Accra"));

    // The author sees that the Clearing House received the alert.
    let mine = a.get("/author").await;
    let at = mine.body.find("Radio shut in Kano").unwrap();
    let link = mine.body[at..].find("/deliveries").unwrap() + at;
    let start = mine.body[..link].rfind('"').unwrap() + 1;
    let deliveries_path = mine.body[start..link + "/deliveries".len()].to_string();
    let delivered = |page: &Page| {
        let row = page.body.find("Delivered</th><td>").unwrap() + "Delivered</th><td>".len();
        page.body[row..].split('<').next().unwrap().to_string()
    };
    let mut delivered_count = String::new();
    for _ in 0..100 {
        delivered_count = delivered(&a.get(&deliveries_path).await);
        if delivered_count == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered_count, "1", "one follower server received it");

    // The member edits an approved alert: the editor sees a diff.
    let kano_alert = a.get("/author").await;
    let id_at = kano_alert.body.find("Radio shut in Kano").unwrap();
    let edit_link = kano_alert.body[id_at..].find("/author/alerts/").unwrap() + id_at;
    let edit_path: String = kano_alert.body[edit_link..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let token = csrf_of(&mut a).await;
    let p = a
        .post_multipart(
            &edit_path,
            &[
                ("csrf", &token),
                ("title", "Radio shut in Kano"),
                ("body", "The corrected text of the alert."),
                ("language", "en"),
                ("countries", "NG"),
                ("urgency", "action"),
                ("do", "publish"),
            ],
            None,
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(
        eventually(Duration::from_secs(30), || {
            let db = db.clone();
            async move {
                db.run(move |c| db::curation::review(c, kano))
                    .await
                    .unwrap()
                    .edited_after_approval
            }
        })
        .await
    );
    let r = e.get(&format!("/editor/review/{kano}")).await;
    assert!(
        r.body.contains("<del>original</del>") && r.body.contains("<ins>corrected</ins>"),
        "{}",
        r.body
    );
    // Where it went: the Create and the Update reached one server, which
    // counts once, with its own line.
    for _ in 0..100 {
        if delivered(&a.get(&deliveries_path).await) == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = a.get(&deliveries_path).await;
    assert_eq!(delivered(&d), "1", "one server, however many activities");
    assert!(
        d.body
            .contains(&format!("<th scope=\"row\">{}</th>", ch.domain)),
        "{}",
        d.body
    );
    assert!(e
        .get("/editor/queue?state=all")
        .await
        .body
        .contains("Edited after approval"));

    // Directory: feeds shown, members added, changed and removed.
    let d = e.get("/editor/directory").await;
    assert!(d.body.contains(&handle) && d.body.contains("africa"));
    let q: String = url::form_urlencoded::byte_serialize(handle.as_bytes()).collect();
    let edit = e.get(&format!("/editor/directory?edit={q}")).await;
    assert!(edit.body.contains(&format!("value=\"{handle}\" required")));
    assert!(
        edit.body.contains("value=\"africa\" selected")
            && edit.body.contains("value=\"NG\" selected")
    );
    let csrf = d.csrf();
    let p = e
        .post(
            "/editor/members/remove",
            &[("csrf", &csrf), ("handle", &handle)],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(!e
        .get("/editor/directory")
        .await
        .body
        .contains(&format!("<code>{handle}</code>")));
    let p = e
        .post(
            "/editor/members/add",
            &[
                ("csrf", &csrf),
                ("handle", &handle),
                ("region", "africa"),
                ("countries", "NG"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(reader.get("/members").await.body.contains(&handle));
    let p = e
        .post(
            "/editor/members/add",
            &[("csrf", &csrf), ("handle", "@nobody@127.0.0.1:9")],
        )
        .await;
    assert_eq!(p.status, 422);

    // Delivery health per host.
    let h = e.get("/editor/hosts").await;
    assert_eq!(h.status, 200);
    assert!(h.body.contains(&member.domain), "{}", h.body);

    // An admin may do everything.
    let mut root = Visitor::new(&ch.base());
    root.login("root", &admin_pw).await;
    assert_eq!(root.get("/editor/queue").await.status, 200);
    assert_eq!(root.get("/author/new").await.status, 200);
    member.stop().await;
    ch.stop().await;
}

/// The feed row of `name`.
async fn feed_row(i: &TestInstance, name: &str) -> db::curation::FeedRow {
    let name = name.to_string();
    i.server
        .state
        .db
        .run(move |c| db::curation::feed_by_username(c, &name))
        .await
        .unwrap()
        .expect("feed exists")
        .0
}

async fn feed_and_account_pages(backend: Backend) {
    let ch = crate::common::clearinghouse_with_world_feed(backend).await;
    let author_pw = user(&ch, "amina", accounts::AUTHOR).await;
    let editor_pw = user(&ch, "eddie", accounts::EDITOR).await;
    let admin_pw = user(&ch, "root", accounts::ADMIN).await;

    // Not logged in: to the login page, the way back kept (query too).
    let mut anon = Visitor::new(&ch.base());
    for path in [
        "/editor/feeds",
        "/editor/feeds/new",
        "/editor/feeds/world",
        "/admin/users",
        "/interact?uri=acct%3Aalice%40example.org",
    ] {
        let page = anon.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(page.location(), format!("/login?next={next}"), "{path}");
    }
    for path in [
        "/editor/feeds/new",
        "/editor/feeds/world",
        "/editor/feeds/world/retire",
        "/admin/users/add",
        "/admin/users/amina/disable",
        "/interact",
    ] {
        let page = anon.post(path, &[("csrf", "x")]).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(page.location().starts_with("/login"), "{path}");
    }

    // Wrong role: 403.
    let mut author = Visitor::new(&ch.base());
    author.login("amina", &author_pw).await;
    for path in [
        "/editor/feeds",
        "/editor/feeds/new",
        "/editor/feeds/world",
        "/admin/users",
        "/interact?uri=x",
    ] {
        assert_eq!(author.get(path).await.status, 403, "{path}");
    }
    let token = author.csrf("/account").await;
    for path in [
        "/editor/feeds/new",
        "/editor/feeds/world/retire",
        "/admin/users/add",
        "/interact",
    ] {
        let page = author
            .post(path, &[("csrf", &token), ("username", "x")])
            .await;
        assert_eq!(page.status, 403, "{path}");
    }
    let mut e = Visitor::new(&ch.base());
    e.login("eddie", &editor_pw).await;
    assert_eq!(e.get("/admin/users").await.status, 403);
    let token = e.csrf("/editor/feeds").await;
    let page = e
        .post(
            "/admin/users/add",
            &[("csrf", &token), ("name", "mallory"), ("role", "admin")],
        )
        .await;
    assert_eq!(page.status, 403, "an editor adds no accounts");

    // Feeds: listed, created, edited, retired — each form checks its token.
    let list = e.get("/editor/feeds").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("@world") && list.body.contains("Review required"));
    let form = e.get("/editor/feeds/new").await;
    for label in [
        "for=\"username\"",
        "for=\"regions\"",
        "for=\"countries\"",
        "for=\"languages\"",
        "for=\"members\"",
        "name=\"review\"",
    ] {
        assert!(form.body.contains(label), "{label}");
    }
    let asia = [
        ("username", "asia"),
        ("display_name", "Asia and the Pacific"),
        ("summary", "Alerts from Asia and the Pacific."),
        ("review", "1"),
        ("regions", "asia-pacific"),
        ("countries", "PH"),
        ("categories", "detention"),
        ("languages", "en, tl"),
        ("urgencies", "action"),
        ("members", "alerts@ngo-manila.example"),
    ];
    let page = e.post("/editor/feeds/new", &asia).await;
    assert_eq!(page.status, 403, "no token");
    let mut with_token = asia.to_vec();
    with_token.push(("csrf", &token));
    let page = e.post("/editor/feeds/new", &with_token).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let row = feed_row(&ch, "asia").await;
    assert_eq!(
        (
            row.mode.as_str(),
            row.regions.as_str(),
            row.countries.as_str(),
            row.languages.as_str(),
            row.members.as_str()
        ),
        (
            "review",
            ",asia-pacific,",
            ",PH,",
            ",en,tl,",
            ",alerts@ngo-manila.example,"
        )
    );
    // A followable actor, with keys, found by WebFinger.
    let jrd = reqwest::get(format!(
        "{}/.well-known/webfinger?resource=acct:asia@{}",
        ch.base(),
        ch.domain
    ))
    .await
    .unwrap();
    assert_eq!(jrd.status(), 200);
    assert!(e.get("/@asia").await.body.contains("Asia and the Pacific"));
    let page = e.post("/editor/feeds/new", &with_token).await;
    assert_eq!(page.status, 422, "the name is taken");
    let page = e
        .post(
            "/editor/feeds/new",
            &[("csrf", &token), ("username", "Bad Name")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.body.contains("Bad Name"),
        "the form keeps what was typed"
    );
    let page = e
        .post(
            "/editor/feeds/new",
            &[("csrf", &token), ("username", "alerts")],
        )
        .await;
    assert_eq!(page.status, 422, "the organisation's name is taken");

    // Edit: the form shows the rules; saving replaces them.
    let edit = e.get("/editor/feeds/asia").await;
    assert!(edit.body.contains("value=\"asia-pacific\" selected") && edit.body.contains("en, tl"));
    let page = e
        .post(
            "/editor/feeds/asia",
            &[("csrf", "wrong"), ("languages", "fr")],
        )
        .await;
    assert_eq!(page.status, 403);
    let page = e
        .post(
            "/editor/feeds/asia",
            &[
                ("csrf", &token),
                ("display_name", "Asia"),
                ("languages", "fr"),
                ("regions", "asia-pacific"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let row = feed_row(&ch, "asia").await;
    assert_eq!(
        (
            row.mode.as_str(),
            row.languages.as_str(),
            row.members.as_str()
        ),
        ("auto", ",fr,", "")
    );
    let page = e
        .post(
            "/editor/feeds/asia",
            &[("csrf", &token), ("languages", "not a tag!")],
        )
        .await;
    assert_eq!(page.status, 422);

    // The configuration only seeds: a changed [[feeds]] entry leaves the
    // edited feed alone, a new one is created.
    let mut config = (*ch.server.state.config).clone();
    config.feeds = vec![
        FeedConfig {
            username: "asia".into(),
            languages: vec!["en".into()],
            ..Default::default()
        },
        FeedConfig {
            username: "americas".into(),
            regions: vec!["americas".into()],
            ..Default::default()
        },
    ];
    ch.server
        .state
        .db
        .run(move |c| {
            tocsin::curation::sync_feeds(c, &config).map_err(|e| db::DbError::Task(e.to_string()))
        })
        .await
        .unwrap();
    assert_eq!(
        feed_row(&ch, "asia").await.languages,
        ",fr,",
        "the database wins"
    );
    assert_eq!(feed_row(&ch, "americas").await.regions, ",americas,");
    assert!(
        feed_row(&ch, "world").await.retired_at.is_none(),
        "absent from the file, still active"
    );

    // Retire: no more boosts, gone from the review choices.
    let page = e
        .post("/editor/feeds/asia/retire", &[("csrf", "nope")])
        .await;
    assert_eq!(page.status, 403);
    let page = e
        .post("/editor/feeds/asia/retire", &[("csrf", &token)])
        .await;
    assert_eq!(page.status, 303);
    let row = feed_row(&ch, "asia").await;
    assert!(row.retired_at.is_some() && row.mode == "off");
    assert!(e
        .get("/editor/feeds?done=retired")
        .await
        .body
        .contains("Retired"));
    let page = e.post("/editor/feeds/asia", &[("csrf", &token)]).await;
    assert_eq!(page.status, 422, "a retired feed is not edited");
    assert!(!e.get("/editor/directory").await.body.contains("/@asia"));

    // Accounts: admin only.
    let mut root = Visitor::new(&ch.base());
    root.login("root", &admin_pw).await;
    let users = root.get("/admin/users").await;
    assert_eq!(users.status, 200);
    assert!(users.body.contains("amina") && users.body.contains("eddie"));
    let token = users.csrf();
    let page = root
        .post("/admin/users/add", &[("name", "zara"), ("role", "editor")])
        .await;
    assert_eq!(page.status, 403, "no token");
    let page = root
        .post(
            "/admin/users/add",
            &[("csrf", &token), ("name", "zara"), ("role", "editor")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let at = page
        .body
        .find("<code class=\"secret\">")
        .expect("the password, once")
        + "<code class=\"secret\">".len();
    let zara_pw = page.body[at..].split('<').next().unwrap().to_string();
    let mut zara = Visitor::new(&ch.base());
    assert_eq!(zara.login("zara", &zara_pw).await.status, 303);
    assert_eq!(zara.get("/editor/queue").await.status, 200);
    let page = root
        .post(
            "/admin/users/add",
            &[
                ("csrf", &token),
                ("name", "zara"),
                ("role", "author"),
                ("password", "long-enough-1"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "the name is taken");
    let page = root
        .post(
            "/admin/users/add",
            &[
                ("csrf", &token),
                ("name", "yves"),
                ("role", "king"),
                ("password", "long-enough-1"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "no such role");

    // Change a role: the author becomes an editor.
    assert_eq!(author.get("/editor/queue").await.status, 403);
    let page = root
        .post(
            "/admin/users/amina/role",
            &[("csrf", &token), ("role", "editor")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(author.get("/editor/queue").await.status, 200);

    // Reset a password: the old one and the sessions end.
    let page = root
        .post(
            "/admin/users/amina/password",
            &[("csrf", &token), ("password", "a-brand-new-password")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !page.body.contains("class=\"secret\""),
        "a given password is not shown"
    );
    assert_eq!(
        author.get("/editor/queue").await.status,
        303,
        "session ended"
    );
    assert_eq!(
        Visitor::new(&ch.base())
            .login("amina", &author_pw)
            .await
            .status,
        401
    );
    assert_eq!(
        author.login("amina", "a-brand-new-password").await.status,
        303
    );

    // Disable: sessions end, login refused; enable again.
    let page = root
        .post("/admin/users/amina/disable", &[("csrf", "bad")])
        .await;
    assert_eq!(page.status, 403);
    let page = root
        .post("/admin/users/amina/disable", &[("csrf", &token)])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(author.get("/editor/queue").await.status, 303);
    let refused = Visitor::new(&ch.base())
        .login("amina", "a-brand-new-password")
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("disabled"));
    assert!(root.get("/admin/users").await.body.contains("Disabled"));
    let page = root
        .post("/admin/users/amina/enable", &[("csrf", &token)])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        author.login("amina", "a-brand-new-password").await.status,
        303
    );

    // The last admin can neither be disabled nor demoted.
    let page = root
        .post("/admin/users/root/disable", &[("csrf", &token)])
        .await;
    assert_eq!(page.status, 422);
    let page = root
        .post(
            "/admin/users/root/role",
            &[("csrf", &token), ("role", "author")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert_eq!(root.get("/admin/users").await.status, 200);

    // Our remote-interaction page: an editor sent here by another server's
    // follow box makes our organisation follow the account.
    let peer = crate::common::peer::FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &ch.base());
    let uri = format!("acct:alice@{}", peer.domain);
    let q: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    let page = e.get(&format!("/interact?uri={q}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&format!("@alice@{}", peer.domain)));
    assert!(page
        .body
        .contains(&format!("Follow as @alerts@{}", ch.domain)));
    let token = page.csrf();
    assert_eq!(e.post("/interact", &[("uri", &uri)]).await.status, 403);
    let page = e
        .post("/interact", &[("csrf", &token), ("uri", &uri)])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(e
        .get(&page.location())
        .await
        .body
        .contains("follow request was sent"));
    assert!(
        eventually(Duration::from_secs(20), || {
            let received = peer.received();
            let alice = alice.clone();
            async move {
                received
                    .iter()
                    .any(|r| r.body["type"] == "Follow" && r.body["object"] == alice.as_str())
            }
        })
        .await,
        "the Follow reached the account's server"
    );
    let page = e.get("/interact?uri=acct%3Anobody%40127.0.0.1%3A9").await;
    assert_eq!(page.status, 404);
    peer.stop().await;
    ch.stop().await;
}

async fn csrf_of(v: &mut Visitor) -> String {
    v.csrf("/author/new").await
}

async fn public_pages(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let pw = user(&i, "amina", accounts::AUTHOR).await;
    let mut a = Visitor::new(&i.base());
    a.login("amina", &pw).await;
    let csrf = a.csrf("/author/new").await;
    let long = "Security forces raided the station and seized equipment. ".repeat(40);
    for (title, country, lang, cat) in [
        ("Station raided in Lagos", "NG", "en", "detention"),
        ("Periodista amenazado en Lima", "PE", "es", "threat"),
    ] {
        let p = a
            .post_multipart(
                "/author/new",
                &[
                    ("csrf", &csrf),
                    ("title", title),
                    ("body", &long),
                    ("language", lang),
                    ("countries", country),
                    ("categories", cat),
                    ("urgency", "report"),
                    ("do", "publish"),
                ],
                None,
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
    }
    let mut r = Visitor::new(&i.base());
    let home = r.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Station raided in Lagos") && home.body.contains("Lima"));
    assert!(home.body.contains("<html lang=\"en\" dir=\"ltr\">"));
    assert!(!home.body.contains("<script"), "no JavaScript");
    assert!(!home.body.contains("style=\""), "no inline styles");
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    // Filters: region, country, category, language.
    assert!(!r.get("/?region=americas").await.body.contains("Lagos"));
    assert!(r.get("/?country=NG").await.body.contains("Lagos"));
    assert!(!r.get("/?category=threat").await.body.contains("Lagos"));
    assert!(!r.get("/?language=es").await.body.contains("Lagos"));
    // Archive with search.
    let arch = r.get("/archive?q=Periodista").await;
    assert!(arch.body.contains("Lima") && !arch.body.contains("Lagos"));

    // An alert page with its stylesheet stays under 50 KB.
    let rows = i
        .server
        .state
        .db
        .run(|c| db::alerts::list(c, &db::alerts::AlertFilter::default(), 10, 0))
        .await
        .unwrap();
    let lagos = rows.iter().find(|r| r.title.contains("Lagos")).unwrap();
    let page = r.get(&lagos.ap_id.replace(&i.base(), "")).await;
    let css = r.get("/static/style.css").await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let total = page.body.len() + css.body.len();
    eprintln!(
        "alert page {} bytes + stylesheet {} bytes = {total} bytes",
        page.body.len(),
        css.body.len()
    );
    assert!(page.body.len() > long.len(), "the page holds the text");
    assert!(total < 50 * 1024, "alert page and CSS: {total} bytes");
    assert!(page.body.contains("Report"), "urgency shown");

    // Languages: Accept-Language, ?lang= remembered in a cookie, Arabic RTL.
    let fr = r
        .client
        .get(format!("{}/archive", i.base()))
        .header("accept-language", "de;q=1, fr;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fr.contains("<html lang=\"fr\" dir=\"ltr\">") && fr.contains("Rechercher"));
    let ar = r.get("/?lang=ar").await;
    assert!(ar.body.contains("<html lang=\"ar\" dir=\"rtl\">"));
    assert!(ar.set_cookies().iter().any(|c| c.starts_with("lang=ar")));
    assert!(
        r.get("/archive").await.body.contains("dir=\"rtl\""),
        "remembered"
    );
    let ru = r
        .get(&format!("{}?lang=ru", lagos.ap_id.replace(&i.base(), "")))
        .await;
    let month = ru.body.contains("января")
        || ru.body.contains("февраля")
        || ru.body.contains("ноября")
        || ru.body.contains("декабря")
        || ru.body.contains("мая")
        || ru.body.contains("марта")
        || ru.body.contains("апреля")
        || ru.body.contains("июня")
        || ru.body.contains("июля")
        || ru.body.contains("августа")
        || ru.body.contains("сентября")
        || ru.body.contains("октября");
    assert!(month, "the date is in Russian");
    for lang in ["en", "fr", "es", "ar", "ru"] {
        let p = r.get(&format!("/@alerts?lang={lang}")).await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains(&format!("lang=\"{lang}\"")));
    }

    // Profile page with the remote-follow box; an unknown server gets advice.
    let profile = r.get("/@alerts?lang=en").await;
    assert!(profile.body.contains("Follow from your fediverse server"));
    assert!(profile.body.contains("<label for=\"handle\">"));
    let f = r
        .get("/follow?account=alerts&handle=someone%40127.0.0.1%3A9")
        .await;
    assert_eq!(f.status, 404);
    assert!(f.body.contains(&format!("@alerts@{}", i.domain)));
    assert_eq!(r.get("/follow?account=alerts&handle=bad").await.status, 404);
    // Readers on Mastodon, Lemmy (subscribe templates) and GoToSocial (none),
    // looked up with their own WebFinger answers from a loopback server.
    let peer = crate::common::peer::FakePeer::start().await;
    let ours = format!("{}/actors/alerts", i.base());
    let encoded: String = url::form_urlencoded::byte_serialize(ours.as_bytes()).collect();
    for (fixture, host, user) in [
        ("mastodon/webfinger.json", "mastodon.example", "alice"),
        ("lemmy/webfinger.json", "lemmy.example", "carol"),
        ("gotosocial/webfinger.json", "gts.example", "bob"),
    ] {
        let jrd = peer.rewrite(&crate::common::peer::fixture(fixture), host, &i.base());
        peer.serve(
            &format!(
                "/.well-known/webfinger?resource=acct:{user}@{}",
                peer.domain
            ),
            jrd,
        );
    }
    let follow = |handle: String| {
        let q: String = url::form_urlencoded::byte_serialize(handle.as_bytes()).collect();
        format!("/follow?account=alerts&handle={q}")
    };
    for handle in [
        format!("@alice@{}", peer.domain),
        format!("acct:alice@{}", peer.domain),
        format!("{}/@alice", peer.base),
    ] {
        let f = r.get(&follow(handle.clone())).await;
        assert_eq!(f.status, 303, "{handle}: {}", f.body);
        assert_eq!(
            f.location(),
            format!("{}/authorize_interaction?uri={encoded}", peer.base),
            "{handle}"
        );
    }
    for handle in [
        format!("carol@{}", peer.domain),
        format!("{}/u/carol", peer.base),
    ] {
        let f = r.get(&follow(handle.clone())).await;
        assert_eq!(f.status, 303, "{handle}: {}", f.body);
        assert_eq!(
            f.location(),
            format!(
                "{}/activitypub/externalInteraction?uri={encoded}",
                peer.base
            ),
            "{handle}"
        );
    }
    // GoToSocial has no follow page: the reader is told what to search for.
    let f = r.get(&follow(format!("@bob@{}", peer.domain))).await;
    assert_eq!(f.status, 200, "{}", f.body);
    assert!(f.body.contains("fediverse app") && f.body.contains(&format!("@alerts@{}", i.domain)));
    peer.stop().await;

    // Our own WebFinger answers carry the template of our interaction page.
    let jrd: serde_json::Value = reqwest::get(format!(
        "{}/.well-known/webfinger?resource=acct:alerts@{}",
        i.base(),
        i.domain
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let template = jrd["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "http://ostatus.org/schema/1.0/subscribe")
        .expect("subscribe link")["template"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(template, format!("{}/interact?uri={{uri}}", i.base()));
    assert_eq!(r.get("/members").await.status, 200);
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_forms_sqlite() {
    accounts_and_forms(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_forms_postgres() {
    if postgres_available() {
        accounts_and_forms(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn author_pages_sqlite() {
    author_pages(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn author_pages_postgres() {
    if postgres_available() {
        author_pages(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn editor_pages_sqlite() {
    editor_pages(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn editor_pages_postgres() {
    if postgres_available() {
        editor_pages(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_and_account_pages_sqlite() {
    feed_and_account_pages(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_and_account_pages_postgres() {
    if postgres_available() {
        feed_and_account_pages(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_pages_sqlite() {
    public_pages(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_pages_postgres() {
    if postgres_available() {
        public_pages(Backend::Postgres).await;
    }
}

#[test]
fn user_add_reads_the_password_from_stdin_or_prints_one() {
    use std::{
        io::Write,
        process::{Command, Stdio},
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .current_dir(dir.path())
            .env_remove("TOCSIN_CONFIG")
            .env("TOCSIN_LOG", "warn")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(
        &["user", "add", "--name", "amina", "--role", "author"],
        "given-password-1\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("given-password-1"));
    let out = run(&["user", "add", "--name", "eddie", "--role", "editor"], "");
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let generated = stdout.lines().last().unwrap().trim().to_string();
    assert!(generated.len() >= accounts::MIN_PASSWORD, "{stdout}");
    let out = run(
        &["user", "add", "--name", "x", "--role", "king"],
        "long-enough-password\n",
    );
    assert!(!out.status.success());
    let out = run(
        &["user", "add", "--name", "y", "--role", "author"],
        "short\n",
    );
    assert!(!out.status.success());
    let out = run(&["user", "list"], "");
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.contains("amina\tauthor") && listed.contains("eddie\teditor"),
        "{listed}"
    );
    let out = run(
        &["user", "passwd", "--name", "amina"],
        "another-password-2\n",
    );
    assert!(out.status.success());
    // The stored hashes are argon2id, and check against the passwords.
    let db = db::Db::connect(
        &format!("sqlite://{}/data/tocsin.db", dir.path().display()),
        1,
        5000,
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let hash = db
            .run(|c| db::users::by_name(c, "amina"))
            .await
            .unwrap()
            .unwrap()
            .password_hash;
        assert!(hash.starts_with("$argon2id$"));
        assert!(accounts::login(&db, "amina", "another-password-2")
            .await
            .unwrap()
            .is_ok());
        assert!(accounts::login(&db, "amina", "given-password-1")
            .await
            .unwrap()
            .is_err());
        assert!(accounts::login(&db, "eddie", &generated)
            .await
            .unwrap()
            .is_ok());
    });
}
