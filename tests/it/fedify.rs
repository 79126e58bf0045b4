//! Interoperability with a live, independent implementation: Fedify 2.3.6
//! (npm, tests/interop/fedify/peer.mjs) on Node, on loopback.
//!
//! Skipped with a message when Node or the npm packages are missing, unless
//! `TOCSIN_REQUIRE_FEDIFY=1` (CI), which makes that a failure.

use crate::common::{client, eventually, prepare, Backend, TestInstance};
use serde_json::{json, Value};
use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};
use tocsin::{
    config::FeedConfig,
    db,
    federation::activities::follow::{follow_remote, local_actor},
};

const WAIT: Duration = Duration::from_secs(30);

/// The Fedify peer, killed when dropped.
struct Peer {
    child: Child,
    base: String,
    domain: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/fedify")
}

/// Starts the peer, or explains why it cannot run here.
async fn start_peer() -> Option<Peer> {
    let required = std::env::var("TOCSIN_REQUIRE_FEDIFY").as_deref() == Ok("1");
    let installed = peer_dir().join("node_modules/@fedify/fedify").is_dir();
    let node = Command::new("node").arg("--version").output().is_ok();
    if !(installed && node) {
        let why = "Fedify interop test SKIPPED: needs node and `npm ci` in tests/interop/fedify";
        assert!(!required, "{why} (TOCSIN_REQUIRE_FEDIFY=1)");
        eprintln!("{why}");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("node")
        .arg("peer.mjs")
        .current_dir(peer_dir())
        .env("PORT", port.to_string())
        .env("NODE_NO_WARNINGS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let peer = Peer {
        child,
        base: format!("http://localhost:{port}"),
        domain: format!("localhost:{port}"),
    };
    let url = format!("{}/control/received", peer.base);
    let up = eventually(WAIT, || async { client().get(&url).send().await.is_ok() }).await;
    assert!(up, "the Fedify peer did not start");
    Some(peer)
}

impl Peer {
    async fn control(&self, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/control/{path}", self.base);
        let request = match body {
            Some(b) => client().post(url).json(&b),
            None => client().get(url),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "peer {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn received(&self) -> Vec<Value> {
        self.control("received", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits for an activity of `kind` by `actor` whose object (or its id)
    /// satisfies `matches`.
    async fn wait_for(&self, kind: &str, actor: &str, matches: impl Fn(&Value) -> bool) -> bool {
        eventually(WAIT, || async {
            self.received()
                .await
                .iter()
                .any(|a| a["type"] == kind && a["actor"] == actor && matches(&a["object"]))
        })
        .await
    }
}

fn object_id(object: &Value) -> String {
    object["id"]
        .as_str()
        .or(object.as_str())
        .unwrap_or_default()
        .to_string()
}

async fn instance(role: &str, feeds: Vec<FeedConfig>) -> TestInstance {
    let mut p = prepare(Backend::Sqlite);
    p.config.instance.role = role.into();
    p.config.feeds = feeds;
    TestInstance::start_prepared(p).await
}

async fn token(i: &TestInstance) -> String {
    i.server
        .state
        .db
        .run(|c| db::tokens::create(c, "interop"))
        .await
        .unwrap()
}

async fn api(
    i: &TestInstance,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request = client()
        .request(method, format!("{}{path}", i.base()))
        .bearer_auth(token);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn alert(title: &str) -> Value {
    json!({
        "title": title, "body": "Held at a police station.", "language": "en",
        "countries": ["NG"], "categories": ["detention"], "urgency": "action"
    })
}

async fn followed_by(i: &TestInstance, username: &str, follower: &str) -> bool {
    let us = local_actor(&i.server.data, username).await.unwrap();
    let follower = follower.to_string();
    i.server
        .state
        .db
        .run(move |c| {
            Ok(db::follows::followers(c, us.id)?
                .iter()
                .any(|a| a.ap_id == follower))
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn fedify_follows_tocsin_and_tocsin_follows_fedify() {
    let Some(peer) = start_peer().await else {
        return;
    };
    let peer_actor = format!("{}/users/peer", peer.base);
    let member = instance("member", vec![]).await;
    let member_actor = format!("{}/actors/alerts", member.base());
    let token = token(&member).await;

    // (a) Fedify looks up @alerts@member by WebFinger and follows it.
    let followed = peer
        .control(
            "follow",
            Some(json!({"handle": format!("@alerts@{}", member.domain)})),
        )
        .await;
    assert_eq!(followed["id"], member_actor.as_str());
    assert!(
        eventually(WAIT, || followed_by(&member, "alerts", &peer_actor)).await,
        "Tocsin accepted Fedify's Follow"
    );
    assert!(
        peer.wait_for("Accept", &member_actor, |_| true).await,
        "Fedify verified our Accept"
    );
    // Create, Update, Delete reach Fedify, which verified each signature
    // (its listeners run only for verified activities).
    let created = api(
        &member,
        &token,
        reqwest::Method::POST,
        "/api/v1/alerts",
        Some(alert("Reporter detained in Abuja")),
    )
    .await;
    let note_id = created["ap_id"].as_str().unwrap().to_string();
    assert!(
        peer.wait_for("Create", &member_actor, |o| object_id(o) == note_id)
            .await,
        "Fedify got the Create: {:?}",
        peer.received().await
    );
    api(
        &member,
        &token,
        reqwest::Method::PATCH,
        &format!("/api/v1/alerts/{}", created["id"]),
        Some(json!({"title": "Reporter detained in Abuja, released"})),
    )
    .await;
    assert!(
        peer.wait_for("Update", &member_actor, |o| object_id(o) == note_id)
            .await,
        "Fedify got the Update"
    );
    api(
        &member,
        &token,
        reqwest::Method::DELETE,
        &format!("/api/v1/alerts/{}", created["id"]),
        None,
    )
    .await;
    assert!(
        peer.wait_for("Delete", &member_actor, |o| object_id(o) == note_id)
            .await,
        "Fedify got the Delete"
    );

    // (c) Tocsin follows the Fedify actor and accepts its posts signed with
    // RFC 9421 at the first knock.
    let us = local_actor(&member.server.data, "alerts").await.unwrap();
    follow_remote(&member.server.data, &us, &format!("@peer@{}", peer.domain))
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || followed_by_peer(&peer, &member_actor)).await,
        "Fedify accepted Tocsin's Follow"
    );
    // Fedify has sent its Accept; wait until Tocsin has applied it (its
    // inbox queue is asynchronous), so the post below comes from an actor
    // Tocsin follows.
    let accepted = eventually(WAIT, || async {
        let id = peer_actor.clone();
        member
            .server
            .state
            .db
            .run(move |c| match db::actors::by_ap_id(c, &id)? {
                Some(a) => db::follows::is_followed_locally(c, a.id),
                None => Ok(false),
            })
            .await
            .unwrap()
    })
    .await;
    assert!(accepted, "Tocsin applied Fedify's Accept");
    let note = peer
        .control("note", Some(json!({"content": "<p>Press freedom day</p>"})))
        .await;
    let fedify_note = note["id"].as_str().unwrap().to_string();
    let stored = eventually(WAIT, || async {
        let id = fedify_note.clone();
        member
            .server
            .state
            .db
            .run(move |c| db::alerts::by_ap_id(c, &id))
            .await
            .unwrap()
            .is_some()
    })
    .await;
    assert!(stored, "Tocsin stored the Fedify actor's post");
    let to_member: Vec<Value> = peer
        .control("outgoing", None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["url"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&member.base())
        })
        .cloned()
        .collect();
    assert!(!to_member.is_empty());
    assert!(
        to_member
            .iter()
            .all(|p| p["rfc9421"] == true && p["status"].as_u64().is_some_and(|s| s < 300)),
        "every POST to Tocsin was RFC 9421-signed and accepted at the first knock: {to_member:?}"
    );
    member.stop().await;
}

/// True once the peer has received an Accept from... us, i.e. Fedify
/// recorded Tocsin's Follow of the peer.
async fn followed_by_peer(peer: &Peer, member_actor: &str) -> bool {
    peer.received()
        .await
        .iter()
        .any(|a| a["type"] == "Follow" && a["actor"] == member_actor)
}

#[tokio::test]
async fn fedify_follows_a_feed_and_gets_the_boost_and_the_forwarded_edit() {
    let Some(peer) = start_peer().await else {
        return;
    };
    let member = instance("member", vec![]).await;
    let hub = instance(
        "hub",
        vec![FeedConfig {
            username: "world".into(),
            display_name: "World".into(),
            ..Default::default()
        }],
    )
    .await;
    let member_actor = format!("{}/actors/alerts", member.base());
    let feed_actor = format!("{}/actors/world", hub.base());
    let us = local_actor(&hub.server.data, "alerts").await.unwrap();
    follow_remote(&hub.server.data, &us, &format!("@alerts@{}", member.domain))
        .await
        .unwrap();
    let hub_org = format!("{}/actors/alerts", hub.base());
    assert!(eventually(WAIT, || followed_by(&member, "alerts", &hub_org)).await);
    peer.control(
        "follow",
        Some(json!({"handle": format!("@world@{}", hub.domain)})),
    )
    .await;
    let peer_actor = format!("{}/users/peer", peer.base);
    assert!(eventually(WAIT, || followed_by(&hub, "world", &peer_actor)).await);

    let token = token(&member).await;
    let created = api(
        &member,
        &token,
        reqwest::Method::POST,
        "/api/v1/alerts",
        Some(alert("Editor abducted in Kano")),
    )
    .await;
    let note_id = created["ap_id"].as_str().unwrap().to_string();
    assert!(
        peer.wait_for("Announce", &feed_actor, |o| object_id(o) == note_id)
            .await,
        "Fedify verified the feed's boost: {:?}",
        peer.received().await
    );
    api(
        &member,
        &token,
        reqwest::Method::PATCH,
        &format!("/api/v1/alerts/{}", created["id"]),
        Some(json!({"title": "Editor abducted in Kano, found alive"})),
    )
    .await;
    // The hub forwards the member's Update unchanged; Fedify's inbox checks
    // it (the HTTP signer is the feed, the actor the member: the member's
    // object integrity proof vouches for it).
    assert!(
        peer.wait_for("Update", &member_actor, |o| object_id(o) == note_id)
            .await,
        "Fedify accepted the forwarded Update: {:?}",
        peer.received().await
    );
    member.stop().await;
    hub.stop().await;
}
