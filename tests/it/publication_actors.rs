//! The publications on the fediverse: `@digest` is a followable `Service`
//! actor, a published issue reaches its followers as one proven and
//! signed `Create{Article}`, the issue's address serves the Article to
//! ActivityPub clients and the page to browsers; and the Digest scheduler
//! builds each due issue once.

use crate::common::{
    alert_values, ap_get, client, eventually, get_json, peer::FakePeer, postgres_available,
    Backend, TestDb, TestInstance,
};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use std::time::Duration;
use tocsin::{
    config::DigestSchedule,
    db::{self, publications as rows},
    publications::{
        self,
        schedule::{self, tick, Outcome},
        DIGEST,
    },
    signatures::{keys::parse_public_pem, ld::LdSignature, multikey, proof::Proof},
};

const WAIT: Duration = Duration::from_secs(30);
const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// Checks what Mastodon needs to show an `Article` from a remote actor:
/// an id, the type, `attributedTo` that resolves to an actor with an RSA
/// `publicKey` it owns, content, a `published` time, and the audience.
async fn assert_mastodon_can_read(article: &Value) {
    for field in [
        "id",
        "type",
        "attributedTo",
        "content",
        "published",
        "url",
        "name",
    ] {
        assert!(
            article[field].is_string(),
            "Article without {field}: {article}"
        );
    }
    assert_eq!(article["type"], "Article");
    chrono::DateTime::parse_from_rfc3339(article["published"].as_str().unwrap())
        .expect("published is RFC 3339");
    assert!(article["to"].as_array().unwrap().contains(&json!(PUBLIC)));
    assert!(article["cc"].as_array().is_some_and(|cc| !cc.is_empty()));
    let author = article["attributedTo"].as_str().unwrap();
    let actor = ap_get(author).await;
    assert_eq!(actor["id"], author);
    assert_eq!(
        actor["type"], "Service",
        "Mastodon shows a Service as a bot"
    );
    assert_eq!(actor["publicKey"]["owner"], author);
    parse_public_pem(actor["publicKey"]["publicKeyPem"].as_str().unwrap())
        .expect("a usable RSA public key");
    assert!(actor["inbox"].is_string() && actor["followers"].is_string());
}

/// Verifies the FEP-8b32 proof of `activity` with the Ed25519 key the
/// signer's actor document publishes, and the Linked-Data signature with
/// its RSA key.
async fn assert_proven(activity: &Value) {
    let proof = Proof::find(activity).unwrap().expect("a proof");
    let actor = ap_get(activity["actor"].as_str().unwrap()).await;
    let key = actor["assertionMethod"]
        .as_array()
        .expect("assertionMethod")
        .iter()
        .find(|k| k["id"].as_str() == Some(proof.verification_method.as_str()))
        .expect("the proof's key is the actor's");
    let public =
        multikey::decode_ed25519_public(key["publicKeyMultibase"].as_str().unwrap()).unwrap();
    proof.verify(activity, &public).expect("the proof verifies");
    let rsa = parse_public_pem(actor["publicKey"]["publicKeyPem"].as_str().unwrap()).unwrap();
    LdSignature::find(activity)
        .unwrap()
        .expect("a Linked-Data signature")
        .verify(activity, &rsa)
        .expect("the Linked-Data signature verifies");
}

/// A Digest issue with one local alert, published; its id.
async fn publish_digest(i: &TestInstance) -> i64 {
    let base = i.base();
    i.server
        .state
        .db
        .run(move |conn| {
            let org = db::actors::local_actors(conn)?[0].id;
            db::alerts::insert(
                conn,
                db::alerts::AlertValues {
                    title: "Reporter detained in Lagos".into(),
                    content_html: "<p>Held since Monday.</p>".into(),
                    ..alert_values(format!("{base}/alerts/digest-test"), org, true)
                },
            )?;
            let now = db::now_ms();
            let id = publications::digest::build(conn, "en", now - 86_400_000, now + 1)?;
            let taxonomy = tocsin::alerts::taxonomy::Taxonomy::load("").expect("built-in");
            publications::publish(conn, &base, &taxonomy, id)
                .map_err(|e| db::DbError::Task(e.to_string()))?;
            Ok(id)
        })
        .await
        .expect("issue published")
}

async fn digest_is_followed_and_sends_one_article(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let base = i.base();
    let digest = format!("{base}/actors/digest");

    // WebFinger and the actor document.
    let jrd = get_json(format!(
        "{base}/.well-known/webfinger?resource=acct:digest@{}",
        i.domain
    ))
    .await;
    assert_eq!(jrd["subject"], format!("acct:digest@{}", i.domain));
    assert!(jrd["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["rel"] == "self" && l["href"] == digest.as_str()));
    let actor = ap_get(&digest).await;
    assert_eq!(actor["type"], "Service");
    assert_eq!(actor["preferredUsername"], "digest");
    assert_eq!(actor["name"], "The Digest");
    assert_eq!(actor["outbox"], format!("{digest}/outbox"));
    assert_eq!(actor["followers"], format!("{digest}/followers"));
    let communique = ap_get(format!("{base}/actors/communique")).await;
    assert_eq!(communique["type"], "Service");
    // A browser is sent to the list of issues.
    let page = client().get(&digest).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.url().path(), "/publications/digest");

    // alice follows @digest: accepted at once.
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &base);
    let mut follow: Value = serde_json::from_str(&peer.follow_of(&base, 1)).unwrap();
    follow["object"] = json!(digest);
    let (status, body) = peer
        .post_signed(
            &format!("{digest}/inbox"),
            &follow.to_string(),
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let of_type = |kind: &'static str| {
        let peer = &peer;
        move || {
            peer.received()
                .into_iter()
                .filter(|r| r.body["type"] == kind)
                .collect::<Vec<_>>()
        }
    };
    let accepts = of_type("Accept");
    assert!(
        eventually(WAIT, || async { !accepts().is_empty() }).await,
        "alice gets an Accept"
    );
    assert_eq!(accepts()[0].body["actor"], digest.as_str());
    let followers = ap_get(format!("{digest}/followers")).await;
    assert_eq!(followers["totalItems"], 1);

    // An issue is published: alice's inbox gets exactly one Create.
    let issue = publish_digest(&i).await;
    let creates = of_type("Create");
    assert!(
        eventually(WAIT, || async { !creates().is_empty() }).await,
        "alice gets the Create"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = creates();
    assert_eq!(received.len(), 1, "exactly one Create");
    let create = &received[0];
    assert!(create.signature_ok, "signed by the digest actor's key");
    assert_eq!(
        create.key_id.as_deref(),
        Some(&*format!("{digest}#main-key"))
    );
    let activity = &create.body;
    let issue_id = format!("{base}/publications/digest/issues/{issue}");
    assert_eq!(activity["actor"], digest.as_str());
    assert_eq!(activity["id"], format!("{issue_id}#create"));
    let article = &activity["object"];
    assert_eq!(article["id"], issue_id.as_str());
    assert_eq!(article["type"], "Article");
    assert_eq!(article["attributedTo"], digest.as_str());
    assert!(article["name"].as_str().unwrap().starts_with("Digest "));
    let content = article["content"].as_str().unwrap();
    assert!(content.contains("Reporter detained in Lagos"), "{content}");
    assert_eq!(article["contentMap"]["en"], content);
    assert!(article["summary"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(article["url"], issue_id.as_str());
    assert_eq!(article["to"], json!([PUBLIC]));
    assert_eq!(article["cc"], json!([format!("{digest}/followers")]));
    assert_proven(activity).await;
    assert_mastodon_can_read(article).await;

    // The issue's address: the Article for ActivityPub, the page otherwise.
    let served = ap_get(&issue_id).await;
    assert_eq!(served["type"], "Article");
    assert_eq!(served["content"], article["content"]);
    assert_eq!(served["published"], article["published"]);
    let html = client().get(&issue_id).send().await.unwrap();
    assert!(html.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(html
        .text()
        .await
        .unwrap()
        .contains("Reporter detained in Lagos"));

    // The outbox lists the issue.
    let outbox = ap_get(format!("{digest}/outbox")).await;
    assert_eq!(outbox["totalItems"], 1);
    let page = ap_get(format!("{digest}/outbox?page=1")).await;
    assert_eq!(page["orderedItems"][0]["object"]["id"], issue_id.as_str());
    let empty = ap_get(format!("{base}/actors/communique/outbox")).await;
    assert_eq!(empty["totalItems"], 0);

    peer.stop().await;
    i.stop().await;
}

#[tokio::test]
async fn digest_is_followed_and_sends_one_article_sqlite() {
    digest_is_followed_and_sends_one_article(Backend::Sqlite).await;
}

#[tokio::test]
async fn digest_is_followed_and_sends_one_article_postgres() {
    if postgres_available() {
        digest_is_followed_and_sends_one_article(Backend::Postgres).await;
    }
}

/// December 2026: the 7th is a Monday, the 10th a Thursday.
fn at(d: u32, h: u32, m: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap()
}

async fn ticks(state: &tocsin::state::AppState, now: chrono::DateTime<Utc>) -> Vec<Outcome> {
    let config = state.config.clone();
    state
        .db
        .run(move |conn| tick(conn, &config, now))
        .await
        .expect("tick")
}

async fn digest_issues(state: &tocsin::state::AppState) -> Vec<rows::IssueRow> {
    state
        .db
        .run(|conn| rows::issues(conn, DIGEST, 100))
        .await
        .unwrap()
}

async fn scheduler_builds_each_due_time_once(backend: Backend) {
    // Holds the database; each state below is a process on it.
    let db = TestDb::open(backend).await;
    let mut config = db.config.clone();
    config.digests = vec![DigestSchedule {
        language: "en".into(),
        days: vec!["mon".into(), "thu".into()],
        time: "09:00".into(),
        period_days: 0,
        publish: false,
    }];
    let open = |config: tocsin::config::Config| async move {
        tocsin::server::open_state(config).await.expect("state")
    };
    let first = open(config.clone()).await;
    // First sight (a Tuesday): the schedule starts at its next due time.
    assert_eq!(ticks(&first, at(8, 12, 0)).await, vec![Outcome::Started]);
    assert_eq!(ticks(&first, at(10, 8, 59)).await, vec![Outcome::Waiting]);
    assert!(
        digest_issues(&first).await.is_empty(),
        "nothing before it is due"
    );

    // Thursday 09:00: one draft, however many ticks.
    let built = ticks(&first, at(10, 9, 0)).await;
    let [Outcome::Built(issue)] = built[..] else {
        panic!("{built:?}")
    };
    assert_eq!(ticks(&first, at(10, 9, 0)).await, vec![Outcome::Waiting]);
    assert_eq!(ticks(&first, at(10, 9, 30)).await, vec![Outcome::Waiting]);
    let issues = digest_issues(&first).await;
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].id, issue);
    assert_eq!(issues[0].state, rows::DRAFT);
    assert_eq!(
        (issues[0].period_start, issues[0].period_end),
        (
            at(7, 9, 0).timestamp_millis(),
            at(10, 9, 0).timestamp_millis()
        )
    );

    // Two processes on one database tick at the same due time.
    let second = open(config.clone()).await;
    let (a, b) = tokio::join!(ticks(&first, at(14, 9, 0)), ticks(&second, at(14, 9, 0)));
    let built: Vec<_> = a
        .iter()
        .chain(&b)
        .filter(|o| matches!(o, Outcome::Built(_)))
        .collect();
    assert_eq!(built.len(), 1, "{a:?} {b:?}");
    assert_eq!(digest_issues(&first).await.len(), 2);
    drop((first, second));

    // Down from Monday to the next Monday: at start, one issue for the
    // latest missed due time only, covering since the previous one.
    let restarted = open(config.clone()).await;
    let outcome = ticks(&restarted, at(21, 10, 0)).await;
    assert!(matches!(outcome[..], [Outcome::Built(_)]), "{outcome:?}");
    assert_eq!(
        ticks(&restarted, at(21, 10, 1)).await,
        vec![Outcome::Waiting]
    );
    let issues = digest_issues(&restarted).await;
    assert_eq!(issues.len(), 3, "the 17th was missed, not made up");
    let latest = issues.iter().max_by_key(|i| i.id).unwrap();
    assert_eq!(
        (latest.period_start, latest.period_end),
        (
            at(17, 9, 0).timestamp_millis(),
            at(21, 9, 0).timestamp_millis()
        )
    );

    // `tocsin digest status` shows what was done and what comes next.
    let status_config = config.clone();
    let lines = restarted
        .db
        .run(move |conn| schedule::status(conn, &status_config, at(21, 10, 1)))
        .await
        .unwrap();
    assert_eq!(
        lines,
        vec![format!(
            "digest/en/mon,thu/09:00\tpublish=false\tlast: 2026-12-21 09:00 built issue {}\tnext: 2026-12-24 09:00 UTC",
            latest.id
        )]
    );

    // A schedule that publishes: the issue is published at once.
    config.digests[0].publish = true;
    config.digests[0].days = vec!["fri".into()];
    let publishing = open(config).await;
    assert_eq!(
        ticks(&publishing, at(21, 10, 0)).await,
        vec![Outcome::Started]
    );
    let outcome = ticks(&publishing, at(25, 9, 0)).await;
    let [Outcome::Published(issue)] = outcome[..] else {
        panic!("{outcome:?}")
    };
    let row = publishing
        .db
        .run(move |conn| rows::issue(conn, issue))
        .await
        .unwrap();
    assert_eq!(row.state, rows::PUBLISHED);
    assert!(row.ap_id.is_some());
    drop(publishing);
    drop(db);
}

#[tokio::test]
async fn scheduler_builds_each_due_time_once_sqlite() {
    scheduler_builds_each_due_time_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn scheduler_builds_each_due_time_once_postgres() {
    if postgres_available() {
        scheduler_builds_each_due_time_once(Backend::Postgres).await;
    }
}

/// `tocsin serve` runs the scheduler: its first tick records the
/// schedule's latest due time.
async fn serve_starts_the_scheduler(backend: Backend) {
    let mut p = crate::common::prepare(backend);
    p.config.digests = vec![DigestSchedule {
        days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .map(String::from)
            .to_vec(),
        time: "00:00".into(),
        ..DigestSchedule::default()
    }];
    let i = TestInstance::start_prepared(p).await;
    let pool = i.server.state.db.clone();
    let recorded = eventually(WAIT, || async {
        pool.run(|conn| db::digest_runs::runs(conn, "digest/en/mon,tue,wed,thu,fri,sat,sun/00:00"))
            .await
            .is_ok_and(|runs| runs.len() == 1 && runs[0].state == db::digest_runs::BASELINE)
    })
    .await;
    assert!(recorded, "the scheduler ticked at start");
    i.stop().await;
}

#[tokio::test]
async fn serve_starts_the_scheduler_sqlite() {
    serve_starts_the_scheduler(Backend::Sqlite).await;
}

#[tokio::test]
async fn serve_starts_the_scheduler_postgres() {
    if postgres_available() {
        serve_starts_the_scheduler(Backend::Postgres).await;
    }
}

/// A first `tocsin serve` answers once the organisation and instance actors
/// exist, then makes the publication actors, each with its own RSA key.
async fn first_serve_makes_the_publication_actors(backend: Backend) {
    let p = crate::common::prepare(backend);
    let port = p.listener.local_addr().unwrap().port();
    let (config, dir) = (p.config.clone(), tempfile::tempdir().unwrap());
    drop(p.listener);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("TOCSIN_CONFIG")
        .env("TOCSIN_LOG", "warn")
        .env("TOCSIN_INSTANCE__DOMAIN", &config.instance.domain)
        .env("TOCSIN_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("TOCSIN_SERVER__WORKERS", "1")
        .env("TOCSIN_FEDERATION__ALLOW_HTTP", "true")
        .env("TOCSIN_DATABASE__URL", &config.database.url)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tocsin serve starts");
    let actor = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let key_of = |url: String| async move {
        let answer = client()
            .get(url)
            .header("Accept", "application/activity+json")
            .send()
            .await
            .ok()?;
        let body: Value = answer.json().await.ok()?;
        body["publicKey"]["publicKeyPem"]
            .as_str()
            .map(str::to_string)
    };
    let mut keys = Vec::new();
    for path in [
        "/actors/alerts",
        "/actor",
        "/actors/digest",
        "/actors/communique",
        "/actors/advocacy",
    ] {
        let found = eventually(WAIT, || async { key_of(actor(path)).await.is_some() }).await;
        assert!(found, "{path} never answered with a key");
        keys.push(key_of(actor(path)).await.unwrap());
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5, "every local actor has its own key");
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!log.contains("ERROR"), "{log}");
}

#[tokio::test]
async fn first_serve_makes_the_publication_actors_sqlite() {
    first_serve_makes_the_publication_actors(Backend::Sqlite).await;
}

#[tokio::test]
async fn first_serve_makes_the_publication_actors_postgres() {
    if postgres_available() {
        first_serve_makes_the_publication_actors(Backend::Postgres).await;
    }
}
