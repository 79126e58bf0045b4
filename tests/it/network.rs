//! The network scenario: two members in different regions, a Clearing
//! House, two regional hubs, and a follower instance for each feed, all in
//! one test process on 127.0.0.1.

use crate::common::{
    ap_get, api, api_token, client, eventually, follows, pending_curations, postgres_available,
    prepare, Backend, TestInstance,
};
use serde_json::{json, Value};
use std::time::Duration;
use tocsin::{
    config::FeedConfig, curation::members, db, federation::activities::follow::local_actor,
};

const WAIT: Duration = Duration::from_secs(30);

async fn start(backend: Backend, role: &str, feeds: Vec<FeedConfig>) -> TestInstance {
    let mut p = prepare(backend);
    p.config.instance.role = role.into();
    p.config.feeds = feeds;
    TestInstance::start_prepared(p).await
}

fn feed(username: &str, regions: &[&str]) -> FeedConfig {
    FeedConfig {
        username: username.into(),
        display_name: username.into(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    }
}

pub(crate) async fn copy(on: &TestInstance, ap_id: &str) -> Option<db::alerts::AlertRow> {
    let id = ap_id.to_string();
    on.server
        .state
        .db
        .run(move |c| db::alerts::by_ap_id(c, &id))
        .await
        .unwrap()
}

async fn boosts(on: &TestInstance, ap_id: &str) -> Vec<String> {
    let id = ap_id.to_string();
    on.server
        .state
        .db
        .run(move |c| {
            let Some(alert) = db::alerts::by_ap_id(c, &id)? else {
                return Ok(vec![]);
            };
            let mut names: Vec<String> = db::curation::announces_of(c, alert.id)?
                .into_iter()
                .map(|(_, a)| a.username)
                .collect();
            names.sort();
            Ok(names)
        })
        .await
        .unwrap()
}

async fn scenario(backend: Backend) {
    let member_a = start(backend, "member", vec![]).await; // Africa (Nigeria)
    let member_b = start(backend, "member", vec![]).await; // Asia-Pacific (Philippines)
    let ch = start(backend, "clearinghouse", vec![feed("world", &[])]).await;
    // The Africa hub's organisation actor is a feed too.
    let hub_africa = start(
        backend,
        "hub",
        vec![feed("africa", &["africa"]), feed("alerts", &["africa"])],
    )
    .await;
    let hub_asia = start(backend, "hub", vec![feed("asia", &["asia-pacific"])]).await;
    let f_ch = start(backend, "member", vec![]).await;
    let f_africa = start(backend, "member", vec![]).await;
    let f_asia = start(backend, "member", vec![]).await;

    // The Clearing House follows every member through its directory.
    let ch_data = &ch.server.data;
    let ch_org = local_actor(ch_data, "alerts").await.unwrap();
    members::add(
        ch_data,
        &ch_org,
        &format!("@alerts@{}", member_a.domain),
        Some("africa".into()),
        vec!["NG".into()],
    )
    .await
    .unwrap();
    members::add(
        ch_data,
        &ch_org,
        &format!("@alerts@{}", member_b.domain),
        Some("asia-pacific".into()),
        vec!["PH".into()],
    )
    .await
    .unwrap();
    let ch_token = api_token(&ch, "operator");
    let (status, listed) = api(
        reqwest::Method::GET,
        format!("{}/api/v1/members", ch.base()),
        &ch_token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["members"][1]["countries"], json!(["PH"]));
    assert_eq!(
        listed["members"][1]["handle"],
        format!("@alerts@{}", member_b.domain)
    );
    let directory: Value = client()
        .get(format!("{}/members", ch.base()))
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(directory["totalItems"], 2);
    assert_eq!(directory["orderedItems"][0]["region"], "africa");
    // Hubs import the Clearing House's directory, follow each other and the CH feed.
    for hub in [&hub_africa, &hub_asia] {
        let us = local_actor(&hub.server.data, "alerts").await.unwrap();
        let (added, failed) = members::sync(
            &hub.server.data,
            &us,
            &url::Url::parse(&format!("{}/members", ch.base())).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!((added, failed.len()), (2, 0));
        follows(hub, &format!("@world@{}", ch.domain)).await;
    }
    follows(&hub_africa, &format!("@asia@{}", hub_asia.domain)).await;
    follows(&hub_asia, &format!("@africa@{}", hub_africa.domain)).await;
    for (member, who) in [
        (&member_a, &ch),
        (&member_a, &hub_africa),
        (&member_b, &hub_asia),
    ] {
        follows(who, &format!("@alerts@{}", member.domain)).await;
    }
    follows(&f_ch, &format!("@world@{}", ch.domain)).await;
    follows(&f_africa, &format!("@africa@{}", hub_africa.domain)).await;
    follows(&f_asia, &format!("@asia@{}", hub_asia.domain)).await;

    // 1. Member A publishes; the Africa hub boosts it; the CH queues it.
    let ta = api_token(&member_a, "a");
    let (status, created) = api(reqwest::Method::POST, format!("{}/api/v1/alerts", member_a.base()), &ta, Some(json!({
        "title": "Editor arrested in Lagos", "body": "The editor was arrested.", "language": "en",
        "countries": ["NG"], "categories": ["detention"], "urgency": "action"
    }))).await;
    assert_eq!(status, 201, "{created}");
    let ap_id = created["ap_id"].as_str().unwrap().to_string();
    assert!(
        eventually(WAIT, || async { copy(&f_africa, &ap_id).await.is_some() }).await,
        "the Africa hub's follower got it"
    );
    assert_eq!(boosts(&hub_africa, &ap_id).await, vec!["africa", "alerts"]);
    assert!(
        eventually(WAIT, || async { pending_curations(&hub_africa).await == 0 }).await,
        "the hub's curation of the alert is recorded as done"
    );
    let hub_page = client()
        .get(format!("{}/@alerts", hub_africa.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        hub_page.contains("Editor arrested in Lagos"),
        "the hub organisation's page lists what it boosts"
    );

    let editor = api_token(&ch, "editor-amina");
    assert!(
        eventually(WAIT, || async {
            let pending = api(
                reqwest::Method::GET,
                format!("{}/api/v1/review", ch.base()),
                &editor,
                None,
            )
            .await
            .1;
            pending["items"].as_array().is_some_and(|i| i.len() == 1)
        })
        .await,
        "queued for review: {}",
        api(
            reqwest::Method::GET,
            format!("{}/api/v1/review?state=all", ch.base()),
            &editor,
            None
        )
        .await
        .1
    );
    let pending = api(
        reqwest::Method::GET,
        format!("{}/api/v1/review", ch.base()),
        &editor,
        None,
    )
    .await
    .1;
    let item = &pending["items"][0];
    assert_eq!(item["alert"]["ap_id"], ap_id.as_str());
    assert_eq!(item["feeds"], json!(["world"]));
    assert_eq!(item["member"], format!("@alerts@{}", member_a.domain));
    assert!(
        copy(&f_ch, &ap_id).await.is_none(),
        "nothing reaches the CH feed before review"
    );
    let id = item["id"].as_i64().unwrap();
    let (status, approved) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/review/{id}/approve", ch.base()),
        &editor,
        None,
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["decided_by"], "editor-amina");
    assert!(
        eventually(WAIT, || async { copy(&f_ch, &ap_id).await.is_some() }).await,
        "the CH feed's follower got it"
    );
    let (status, again) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/review/{id}/approve", ch.base()),
        &editor,
        None,
    )
    .await;
    assert_eq!(status, 422, "{again}");

    // 2. Member A edits; every copy changes, the CH item is flagged.
    let (status, _) = api(
        reqwest::Method::PATCH,
        format!("{}/api/v1/alerts/{}", member_a.base(), created["id"]),
        &ta,
        Some(json!({"title": "Editor arrested in Lagos, held without charge"})),
    )
    .await;
    assert_eq!(status, 200);
    for (who, name) in [
        (&f_ch, "CH follower"),
        (&f_africa, "Africa hub follower"),
        (&hub_asia, "Asia hub"),
    ] {
        assert!(
            eventually(WAIT, || async {
                copy(who, &ap_id)
                    .await
                    .is_some_and(|c| c.title == "Editor arrested in Lagos, held without charge")
            })
            .await,
            "{name} has the edit"
        );
    }
    let (_, all) = api(
        reqwest::Method::GET,
        format!("{}/api/v1/review?state=all", ch.base()),
        &editor,
        None,
    )
    .await;
    assert_eq!(all["items"][0]["edited_after_approval"], true);
    // The boosting feeds announced the edited alert again, for receivers
    // that refetch a boosted object they hold.
    let announced = |db: tocsin::db::Db| async move {
        db.run(|c| {
            use diesel::prelude::*;
            use tocsin::db::schema::outgoing_activities as o;
            Ok(o::table
                .filter(o::kind.eq("Announce"))
                .count()
                .get_result::<i64>(c)?)
        })
        .await
        .unwrap()
    };
    assert!(
        announced(ch.server.state.db.clone()).await >= 2,
        "the CH feed re-announced after the edit"
    );

    // 2b. An edit forwarded while its origin is down: the CH feed's
    // follower is down while member A edits, then member A goes down too.
    // When the follower comes back, the CH's forward of the Update reaches
    // it and is applied although the origin cannot confirm it: the
    // member's object integrity proof (FEP-8b32) carried it.
    let f_ch_paused = f_ch.pause().await;
    let (status, _) = api(
        reqwest::Method::PATCH,
        format!("{}/api/v1/alerts/{}", member_a.base(), created["id"]),
        &ta,
        Some(json!({"title": "Editor arrested in Lagos, charged with cybercrime"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        eventually(WAIT, || async {
            copy(&ch, &ap_id)
                .await
                .is_some_and(|c| c.title == "Editor arrested in Lagos, charged with cybercrime")
        })
        .await,
        "the CH has the second edit"
    );
    let member_a_paused = member_a.pause().await;
    let f_ch = f_ch_paused.resume().await;
    assert!(
        eventually(Duration::from_secs(90), || async {
            copy(&f_ch, &ap_id)
                .await
                .is_some_and(|c| c.title == "Editor arrested in Lagos, charged with cybercrime")
        })
        .await,
        "the CH follower applied the forwarded edit with the origin down"
    );
    let member_a = member_a_paused.resume().await;

    // 4. No loops, no duplicates: each feed boosted once; the Asia hub,
    // which saw the alert from the CH and the Africa hub, did not boost it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(boosts(&ch, &ap_id).await, vec!["world"]);
    assert_eq!(boosts(&hub_africa, &ap_id).await, vec!["africa", "alerts"]);
    assert!(boosts(&hub_asia, &ap_id).await.is_empty());
    assert!(
        copy(&f_asia, &ap_id).await.is_none(),
        "the Asia feed does not carry an African alert"
    );

    // Member B (Asia) reaches the Asia hub's follower; the Africa hub does not boost it.
    let tb = api_token(&member_b, "b");
    let (_, created_b) = api(reqwest::Method::POST, format!("{}/api/v1/alerts", member_b.base()), &tb, Some(json!({
        "title": "Broadcaster shot in Mindanao", "body": "A radio broadcaster was shot.", "language": "en",
        "countries": ["PH"], "categories": ["killing"], "urgency": "action"
    }))).await;
    let ap_b = created_b["ap_id"].as_str().unwrap().to_string();
    assert!(eventually(WAIT, || async { copy(&f_asia, &ap_b).await.is_some() }).await);
    assert!(boosts(&hub_africa, &ap_b).await.is_empty());

    // 5. Curate: the CH publishes its own edited version of B's alert,
    // crediting and quoting the original, and its feed boosts that.
    let mut b_item = Value::Null;
    for _ in 0..600 {
        let items = api(
            reqwest::Method::GET,
            format!("{}/api/v1/review", ch.base()),
            &editor,
            None,
        )
        .await
        .1;
        if let Some(found) = items["items"]
            .as_array()
            .and_then(|i| i.iter().find(|x| x["alert"]["ap_id"] == ap_b.as_str()))
        {
            b_item = found.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b_item_id = b_item["id"].as_i64().expect("B's alert queued at the CH");
    let (status, curated) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/review/{b_item_id}/curate", ch.base()),
        &editor,
        Some(json!({"title": "Philippines: radio broadcaster shot dead in Mindanao"})),
    )
    .await;
    assert_eq!(status, 200, "{curated}");
    assert_eq!(curated["state"], "curated");
    let curated_id = curated["curated_alert_id"].as_i64().unwrap();
    let curated_ap = ch
        .server
        .state
        .db
        .run(move |c| Ok(db::alerts::by_id(c, curated_id)?.ap_id))
        .await
        .unwrap();
    assert!(curated_ap.starts_with(&ch.base()));
    let note: Value = ap_get(&curated_ap).await;
    assert_eq!(
        note["quote"],
        ap_b.as_str(),
        "FEP-044f quote of the original"
    );
    assert!(
        note["content"]
            .as_str()
            .unwrap()
            .contains(&format!("href=\"{ap_b}\"")),
        "credits and links the original"
    );
    assert!(
        eventually(WAIT, || async {
            copy(&f_ch, &curated_ap)
                .await
                .is_some_and(|c| c.title == "Philippines: radio broadcaster shot dead in Mindanao")
        })
        .await,
        "the CH feed's follower got the curated version"
    );

    // 3. The Clearing House goes down; member B publishes and edits; the Asia
    // hub's follower still gets both. The CH comes back and catches up.
    let ch_paused = ch.pause().await;
    let (_, down) = api(reqwest::Method::POST, format!("{}/api/v1/alerts", member_b.base()), &tb, Some(json!({
        "title": "Journalist detained in Manila", "body": "Detained at a checkpoint.", "language": "en",
        "countries": ["PH"], "categories": ["detention"], "urgency": "action"
    }))).await;
    let ap_down = down["ap_id"].as_str().unwrap().to_string();
    assert!(
        eventually(WAIT, || async { copy(&f_asia, &ap_down).await.is_some() }).await,
        "hub follower got it while the CH was down"
    );
    api(
        reqwest::Method::PATCH,
        format!("{}/api/v1/alerts/{}", member_b.base(), down["id"]),
        &tb,
        Some(json!({"title": "Journalist detained in Manila, released on bail"})),
    )
    .await;
    assert!(
        eventually(WAIT, || async {
            copy(&f_asia, &ap_down)
                .await
                .is_some_and(|c| c.title == "Journalist detained in Manila, released on bail")
        })
        .await,
        "hub follower got the edit while the CH was down"
    );
    let ch = ch_paused.resume().await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            copy(&ch, &ap_down)
                .await
                .is_some_and(|c| c.title == "Journalist detained in Manila, released on bail")
        })
        .await,
        "the CH caught up"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        boosts(&hub_asia, &ap_down).await,
        vec!["asia"],
        "one boost per feed"
    );
    let queued = ch
        .server
        .state
        .db
        .run(|c| db::curation::reviews(c, None, 100))
        .await
        .unwrap();
    let down_id = copy(&ch, &ap_down).await.unwrap().id;
    assert_eq!(
        queued.iter().filter(|r| r.alert_id == down_id).count(),
        1,
        "queued once"
    );

    // A member's Delete takes every copy away.
    let (status, _) = api(
        reqwest::Method::DELETE,
        format!("{}/api/v1/alerts/{}", member_a.base(), created["id"]),
        &ta,
        None,
    )
    .await;
    assert_eq!(status, 204);
    for (who, name) in [(&f_ch, "CH follower"), (&f_africa, "Africa hub follower")] {
        assert!(
            eventually(WAIT, || async {
                copy(who, &ap_id)
                    .await
                    .is_some_and(|c| c.status == "deleted")
            })
            .await,
            "{name}'s copy deleted"
        );
    }
    for i in [
        member_a, member_b, ch, hub_africa, hub_asia, f_ch, f_africa, f_asia,
    ] {
        i.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn network_scenario_sqlite() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn network_scenario_postgres() {
    if !postgres_available() {
        return;
    }
    scenario(Backend::Postgres).await;
}
