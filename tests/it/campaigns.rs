//! Joint campaigns: three member instances and a campaign on the Clearing
//! House. Two members are invited and join by following; the third
//! follows without an invitation. Participants' alerts that name the
//! campaign reach its followers once; the non-participant's do not.

use crate::common::{
    ap_get, api, api_token, eventually, follows, peer::FakePeer, postgres_available, Backend,
    TestInstance,
};
use crate::network::copy;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// `GET` of an API path on `i` with `token`: status and JSON.
async fn get(i: &TestInstance, path: &str, token: &str) -> (u16, Value) {
    api(
        reqwest::Method::GET,
        format!("{}{path}", i.base()),
        token,
        None,
    )
    .await
}

/// Publishes an alert on `member` through the API with `token`; its id.
async fn publish(member: &TestInstance, token: &str, title: &str, campaigns: &[&str]) -> String {
    let (status, created) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/alerts", member.base()),
        token,
        Some(json!({
            "title": title, "body": "Details of the case.", "language": "en",
            "countries": ["MX"], "categories": ["killing"], "urgency": "action",
            "campaigns": campaigns,
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["ap_id"].as_str().unwrap().to_string()
}

/// The Announces of `object` the peer received.
fn announces_of(peer: &FakePeer, object: &str) -> usize {
    peer.received()
        .iter()
        .filter(|r| r.body["type"] == "Announce" && r.body["object"] == object)
        .count()
}

async fn participants(ch: &TestInstance, token: &str) -> Vec<(String, String)> {
    let (status, c) = get(ch, "/api/v1/campaigns/impunity", token).await;
    assert_eq!(status, 200, "{c}");
    c["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["ap_id"].as_str().unwrap().to_string(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn scenario(backend: Backend) {
    let m1 = TestInstance::start(backend).await;
    let m2 = TestInstance::start(backend).await;
    let m3 = TestInstance::start(backend).await;
    let ch = crate::common::clearinghouse_with_world_feed(backend).await;
    let reader = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &ch.base());
    let token = api_token(&ch, "staff");

    // Staff create the campaign: a Group actor found by WebFinger.
    let (status, bad) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/campaigns", ch.base()),
        &token,
        Some(json!({"username": "impunity", "name": "End impunity", "aims": "Justice."})),
    )
    .await;
    assert_eq!(status, 422, "a campaign needs a country or a theme: {bad}");
    assert_eq!(bad["field"], "theme");
    let (status, created) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/campaigns", ch.base()),
        &token,
        Some(json!({
            "username": "impunity", "name": "End impunity",
            "aims": "Justice for murdered journalists.", "theme": "impunity",
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let campaign = created["ap_id"].as_str().unwrap().to_string();
    let handle = format!("@impunity@{}", ch.domain);
    assert_eq!(created["handle"], handle);
    let actor = ap_get(&campaign).await;
    assert_eq!(actor["type"], "Group");
    assert_eq!(actor["summary"], "<p>Justice for murdered journalists.</p>");
    let finger = ap_get(format!(
        "{}/.well-known/webfinger?resource=acct:impunity@{}",
        ch.base(),
        ch.domain
    ))
    .await;
    assert!(finger["links"].to_string().contains(&campaign));

    // Two members are invited; all three follow; only the invited join.
    let org = |m: &TestInstance| format!("{}/actors/alerts", m.base());
    for m in [&m1, &m2] {
        let (status, p) = api(
            reqwest::Method::POST,
            format!("{}/api/v1/campaigns/impunity/participants", ch.base()),
            &token,
            Some(json!({ "member": format!("@alerts@{}", m.domain) })),
        )
        .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["state"], "invited");
    }
    for m in [&m1, &m2, &m3] {
        follows(m, &handle).await;
    }
    follows(&reader, &handle).await;
    let follow = {
        let mut f: Value = serde_json::from_str(&peer.follow_of(&ch.base(), 1)).unwrap();
        f["object"] = json!(campaign);
        f
    };
    let (status, body) = peer
        .post_signed(
            &format!("{}/inbox", ch.base()),
            &follow.to_string(),
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        eventually(WAIT, || async {
            participants(&ch, &token).await
                == vec![
                    (org(&m1), "joined".to_string()),
                    (org(&m2), "joined".to_string()),
                ]
        })
        .await,
        "the invited members joined, the other did not: {:?}",
        participants(&ch, &token).await
    );
    let ch_id = ch.server.state.config.instance.domain.clone();
    assert!(
        eventually(WAIT, || async {
            peer.received()
                .iter()
                .any(|r| r.body["type"] == "Accept" && r.body["actor"] == campaign)
        })
        .await,
        "the campaign accepted the peer on {ch_id}"
    );

    // Participants publish alerts that name the campaign; the third member
    // names it too, and a participant publishes one that does not.
    let token1 = api_token(&m1, "author");
    let a1 = publish(&m1, &token1, "Reporter killed in Guerrero", &[&handle]).await;
    let token2 = api_token(&m2, "author");
    let a2 = publish(&m2, &token2, "Investigation stalls", &[&campaign]).await;
    let a3 = publish(
        &m3,
        &api_token(&m3, "author"),
        "Not a participant",
        &[&handle],
    )
    .await;
    let plain = publish(&m1, &token1, "Unrelated alert", &[]).await;
    let note = ap_get(&a1).await;
    assert_eq!(note["audience"], campaign);
    assert!(note["cc"].to_string().contains(&campaign));
    assert!(note["tag"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["type"] == "Mention" && t["href"] == campaign));

    assert!(
        eventually(WAIT, || async {
            copy(&reader, &a1).await.is_some() && copy(&reader, &a2).await.is_some()
        })
        .await,
        "the campaign's Tocsin follower got both participants' alerts"
    );
    assert!(
        eventually(WAIT, || async {
            announces_of(&peer, &a1) >= 1 && announces_of(&peer, &a2) >= 1
        })
        .await,
        "the peer got the announces"
    );
    crate::common::inbox_settled(&ch.server.state).await;
    // m1's alerts also reach the Clearing House through an ordinary follow:
    // a second way in changes nothing.
    follows(&ch, &format!("@alerts@{}", m1.domain)).await;
    let (status, edited) = api(
        reqwest::Method::PATCH,
        format!("{}/api/v1/alerts/{}", m1.base(), {
            let row = copy(&m1, &a1).await.unwrap();
            row.id
        }),
        &token1,
        Some(json!({"title": "Reporter killed in Guerrero: suspects named"})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert!(
        eventually(WAIT, || async {
            copy(&reader, &a1)
                .await
                .is_some_and(|r| r.title.ends_with("suspects named"))
        })
        .await,
        "the edit reached the campaign's follower"
    );
    assert!(
        eventually(WAIT, || async {
            peer.received().iter().any(|r| {
                r.body["type"] == "Update" && r.body["object"]["id"] == a1 && r.signature_ok
            })
        })
        .await,
        "the member's Update was forwarded to the campaign's followers"
    );
    assert!(
        eventually(WAIT, || async { announces_of(&peer, &a1) == 2 }).await,
        "the edit was announced again"
    );
    crate::common::inbox_settled(&ch.server.state).await;

    // Exactly one boost per alert in the campaign's outbox; the edit
    // announced again but did not boost twice.
    let outbox = ap_get(format!("{campaign}/outbox?page=1")).await;
    let objects: Vec<&str> = outbox["orderedItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["object"].as_str().unwrap())
        .collect();
    assert_eq!(objects, vec![a2.as_str(), a1.as_str()], "{outbox}");
    assert_eq!(announces_of(&peer, &a2), 1, "a2 announced exactly once");
    // The first announce of a1, plus the re-announce of its edit (as a feed
    // does), never more.
    assert_eq!(
        announces_of(&peer, &a1),
        2,
        "a1 announced once, then once for the edit"
    );
    // The non-participant's alert and the untagged one: no announce, and the
    // Clearing House keeps no copy of the non-participant's.
    assert_eq!(announces_of(&peer, &a3), 0);
    assert_eq!(announces_of(&peer, &plain), 0);
    assert!(
        copy(&ch, &a3).await.is_none(),
        "nothing recorded of m3's alert"
    );
    assert!(copy(&reader, &a3).await.is_none());
    assert!(copy(&reader, &plain).await.is_none());

    // The campaign's page and feed list its timeline.
    let page = crate::common::html_page(format!("{}/@impunity", ch.base())).await;
    assert!(page.contains("Investigation stalls"), "{page}");
    assert!(!page.contains("Not a participant"));
    assert!(
        page.contains("Run by") && page.contains("Target:"),
        "{page}"
    );
    for (m, listed) in [(&m1, true), (&m2, true), (&m3, false)] {
        let link = format!("href=\"{}/@alerts\"", m.base());
        assert_eq!(page.contains(&link), listed, "{link} in {page}");
    }
    let atom = crate::common::client()
        .get(format!("{}/@impunity/feed.atom", ch.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(atom.contains("suspects named"), "{atom}");

    // Calls to action: with a date an Event, without one a Note.
    let actions = format!("{}/api/v1/campaigns/impunity/actions", ch.base());
    let (status, bad) = api(
        reqwest::Method::POST,
        actions.clone(),
        &token,
        Some(json!({"title": "Vigil", "starts_at": "next week"})),
    )
    .await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (422, Some("starts_at")),
        "{bad}"
    );
    let (status, vigil) = api(
        reqwest::Method::POST,
        actions.clone(),
        &token,
        Some(json!({"title": "Vigil outside the prosecutor's office",
            "body": "Bring candles.", "starts_at": "2027-01-15T18:00:00Z",
            "ends_at": "2027-01-15T20:00:00Z"})),
    )
    .await;
    assert_eq!(status, 201, "{vigil}");
    let (status, letter) = api(
        reqwest::Method::POST,
        actions,
        &token,
        Some(json!({"title": "Write to your MP", "body": "A model letter follows."})),
    )
    .await;
    assert_eq!(status, 201, "{letter}");
    let event = ap_get(vigil["ap_id"].as_str().unwrap()).await;
    assert_eq!(event["type"], "Event");
    assert_eq!(event["startTime"], "2027-01-15T18:00:00Z");
    assert_eq!(event["endTime"], "2027-01-15T20:00:00Z");
    assert_eq!(event["attributedTo"], campaign);
    assert_eq!(
        ap_get(letter["ap_id"].as_str().unwrap()).await["type"],
        "Note"
    );
    assert!(
        eventually(WAIT, || async {
            peer.received().iter().any(|r| {
                r.body["type"] == "Create"
                    && r.body["object"]["type"] == "Event"
                    && r.body["object"]["id"] == vigil["ap_id"]
            })
        })
        .await,
        "the Event reached the campaign's followers"
    );
    let page = crate::common::html_page(format!("{}/@impunity", ch.base())).await;
    assert!(
        page.contains("Vigil outside the prosecutor") && page.contains("2027-01-15 18:00 UTC"),
        "{page}"
    );

    // A statement co-signed by both participants; the third member cannot
    // co-sign.
    let statements = format!("{}/api/v1/campaigns/impunity/statements", ch.base());
    let statement = |signers: Vec<String>| {
        json!({"title": "Joint statement on impunity", "language": "en",
            "body": "We call for justice.", "signers": signers})
    };
    let (status, bad) = api(
        reqwest::Method::POST,
        statements.clone(),
        &token,
        Some(statement(vec![org(&m1), org(&m3)])),
    )
    .await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (422, Some("signers")),
        "{bad}"
    );
    let (status, drafted) = api(
        reqwest::Method::POST,
        statements.clone(),
        &token,
        Some(statement(vec![
            format!("@alerts@{}", m1.domain),
            format!("@alerts@{}", m2.domain),
        ])),
    )
    .await;
    assert_eq!(status, 201, "{drafted}");
    assert_eq!(drafted["state"], "draft");
    let signers_state = || async {
        let (_, listed) = get(&ch, "/api/v1/campaigns/impunity/statements", &token).await;
        listed["statements"][0].clone()
    };
    let mut offered = Vec::new();
    for (m, t) in [(&m1, &token1), (&m2, &token2)] {
        assert!(
            eventually(WAIT, || async {
                get(m, "/api/v1/statement-requests", t).await.1["requests"]
                    .as_array()
                    .is_some_and(|r| r.len() == 1)
            })
            .await,
            "the Offer reached {}",
            m.domain
        );
        let (_, requests) = get(m, "/api/v1/statement-requests", t).await;
        assert_eq!(requests["requests"][0]["campaign"], campaign);
        assert_eq!(
            requests["requests"][0]["title"],
            "Joint statement on impunity"
        );
        offered.push(requests["requests"][0]["id"].as_i64().unwrap());
    }
    assert!(get(&m3, "/api/v1/statement-requests", &api_token(&m3, "x"))
        .await
        .1["requests"]
        .as_array()
        .unwrap()
        .is_empty());
    let creates = || {
        peer.received()
            .iter()
            .filter(|r| {
                r.body["type"] == "Create"
                    && r.body["actor"] == campaign
                    && r.body["object"]["id"]
                        .as_str()
                        .is_some_and(|id| !id.contains("/actions/"))
            })
            .count()
    };
    let (status, confirmed) = api(
        reqwest::Method::POST,
        format!(
            "{}/api/v1/statement-requests/{}/confirm",
            m1.base(),
            offered[0]
        ),
        &token1,
        None,
    )
    .await;
    assert_eq!(
        (status, confirmed["state"].as_str()),
        (200, Some("confirmed"))
    );
    assert!(
        eventually(WAIT, || async {
            signers_state().await["signers"][0]["state"] == "confirmed"
        })
        .await,
        "m1's confirmation arrived"
    );
    crate::common::inbox_settled(&ch.server.state).await;
    assert_eq!(
        signers_state().await["state"],
        "draft",
        "m2 has not confirmed"
    );
    assert_eq!(signers_state().await["signers"][1]["state"], "pending");
    assert_eq!(
        creates(),
        0,
        "nothing published before every co-signer confirmed"
    );
    let (status, _) = api(
        reqwest::Method::POST,
        format!(
            "{}/api/v1/statement-requests/{}/confirm",
            m2.base(),
            offered[1]
        ),
        &token2,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        eventually(WAIT, || async { creates() == 1 }).await,
        "the statement went out once both confirmed"
    );
    let published = signers_state().await;
    assert_eq!(published["state"], "published");
    let create = peer
        .received()
        .into_iter()
        .find(|r| {
            r.body["type"] == "Create"
                && r.body["actor"] == campaign
                && r.body["object"]["type"] == "Note"
                && !r.body["object"]["id"]
                    .as_str()
                    .unwrap()
                    .contains("/actions/")
        })
        .unwrap();
    let content = create.body["object"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        content.contains(&m1.base()) && content.contains(&m2.base()),
        "the statement lists its co-signers: {content}"
    );
    let statement_id = create.body["object"]["id"].as_str().unwrap().to_string();
    assert!(
        eventually(WAIT, || async {
            copy(&reader, &statement_id).await.is_some()
        })
        .await,
        "the campaign's follower got the statement"
    );
    crate::common::inbox_settled(&ch.server.state).await;
    assert_eq!(creates(), 1, "published exactly once");

    // A second campaign with one participant and one alert.
    let (status, _) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/campaigns", ch.base()),
        &token,
        Some(json!({"username": "netfree", "name": "Free the Net",
            "aims": "No more shutdowns.", "country": "mx"})),
    )
    .await;
    assert_eq!(status, 201);
    let netfree = format!("@netfree@{}", ch.domain);
    follows(&m2, &netfree).await;
    let (status, _) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/campaigns/netfree/participants", ch.base()),
        &token,
        Some(json!({ "member": org(&m2) })),
    )
    .await;
    assert_eq!(status, 200);
    let a4 = publish(&m2, &token2, "Shutdown in Oaxaca", &[&netfree]).await;
    assert!(
        eventually(WAIT, || async {
            get(&ch, "/api/v1/campaigns/netfree", &token).await.1["participants"][0]["state"]
                == "joined"
                && copy(&ch, &a4).await.is_some()
        })
        .await,
        "m2 joined at once and its alert reached the second campaign"
    );
    crate::common::inbox_settled(&ch.server.state).await;

    // Advocacy Action News groups the period's activity by campaign.
    let (status, issue) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/issues/advocacy", ch.base()),
        &token,
        Some(json!({"language": "en", "days": 1})),
    )
    .await;
    assert_eq!(status, 201, "{issue}");
    assert_eq!(issue["publication"], "advocacy");
    let items: Vec<(String, String)> = issue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["section"].as_str().unwrap().to_string(),
                i["heading"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let item = |section: &str, heading: &str| (section.to_string(), heading.to_string());
    assert_eq!(
        items,
        vec![
            item(
                "End impunity",
                "Reporter killed in Guerrero: suspects named"
            ),
            item("End impunity", "Investigation stalls"),
            item("End impunity", "Joint statement on impunity"),
            item("Free the Net", "Shutdown in Oaxaca"),
        ],
        "{issue}"
    );
    let issue_id = issue["id"].as_i64().unwrap();
    let (status, published) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/issues/{issue_id}/publish", ch.base()),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{published}");
    let page = crate::common::html_page(format!(
        "{}/publications/advocacy/issues/{issue_id}",
        ch.base()
    ))
    .await;
    assert!(
        page.contains("Free the Net") && page.contains("Shutdown in Oaxaca"),
        "{page}"
    );
    let feed = crate::common::client()
        .get(format!("{}/publications/advocacy/feed.atom", ch.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(feed.contains("Advocacy Action News"), "{feed}");

    // A follower that is invited joins at once; its Undo makes it leave.
    let (status, p) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/campaigns/impunity/participants", ch.base()),
        &token,
        Some(json!({ "member": alice })),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["state"], "joined");
    let undo = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/undo/1", peer.base),
        "type": "Undo",
        "actor": alice,
        "object": follow,
    });
    let (status, body) = peer
        .post_signed(
            &format!("{}/inbox", ch.base()),
            &undo.to_string(),
            &format!("{alice}#main-key"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        eventually(WAIT, || async {
            participants(&ch, &token)
                .await
                .contains(&(alice.clone(), "left".to_string()))
        })
        .await,
        "alice left"
    );

    // Staff list the campaigns; without a token the API refuses.
    let (status, list) = get(&ch, "/api/v1/campaigns", &token).await;
    assert_eq!(status, 200);
    assert_eq!(list["campaigns"][0]["theme"], "impunity");
    assert_eq!(get(&ch, "/api/v1/campaigns", "wrong").await.0, 401);

    peer.stop().await;
    for i in [m1, m2, m3, ch, reader] {
        i.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_announces_participants_alerts_once_sqlite() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_announces_participants_alerts_once_postgres() {
    if !postgres_available() {
        return;
    }
    scenario(Backend::Postgres).await;
}
