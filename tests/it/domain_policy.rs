//! Federation policy: a blocked domain is refused at the inbox, gets no
//! deliveries and can be purged; a silenced domain is accepted but kept out
//! of public listings and the review queue; in allowlist mode only listed
//! domains federate. Managed through the admin API and the CLI.

use crate::authorized_fetch::signed_cavage;
use crate::common::{
    api, api_token, client, eventually, html_page, peer::FakePeer, postgres_available, prepare,
    Backend, TestInstance,
};
use diesel::prelude::*;
use serde_json::json;
use std::time::{Duration, SystemTime};
use tocsin::{
    config::FeedConfig,
    db::{
        self,
        schema::{actors, deliveries, follows, received_activities},
    },
    federation::activities::follow::local_actor,
};

const WAIT: Duration = Duration::from_secs(30);

/// `DELETE /api/v1/admin/domains/{domain}`; the status.
async fn unset(i: &TestInstance, token: &str, domain: &str) -> u16 {
    let url = format!("{}/api/v1/admin/domains/{domain}", i.base());
    api(reqwest::Method::DELETE, url, token, None).await.0
}

/// (remote actors of `domain`, follows, received activities, pending
/// deliveries to `domain`).
async fn rows(i: &TestInstance, domain: &str) -> (i64, i64, i64, i64) {
    let domain = domain.to_string();
    i.server
        .state
        .db
        .run(move |conn| {
            Ok((
                actors::table
                    .filter(actors::domain.eq(&domain))
                    .count()
                    .get_result(conn)?,
                follows::table.count().get_result(conn)?,
                received_activities::table.count().get_result(conn)?,
                deliveries::table
                    .filter(deliveries::host.eq(&domain))
                    .filter(deliveries::state.eq(db::deliveries::PENDING))
                    .count()
                    .get_result(conn)?,
            ))
        })
        .await
        .unwrap()
}

async fn blocked_domain_is_refused_undelivered_and_purged(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let key = format!("{alice}#main-key");
    let inbox = format!("{}/inbox", i.base());
    let t = api_token(&i, "operator");
    // The peer's inbox fails, so what we send it stays queued.
    peer.set_behaviour(crate::common::peer::InboxBehaviour {
        statuses: vec![503],
        retry_after: Some("3600".into()),
    });
    let (status, body) = peer
        .post_signed(&inbox, &peer.follow_of(&i.base(), 1), &key)
        .await;
    assert_eq!(status, 202, "{body}");
    crate::common::inbox_settled(&i.server.state).await;
    // The Accept to alice waits in the queue.
    assert!(
        eventually(WAIT, || async { rows(&i, &peer.domain).await.3 >= 1 }).await,
        "an Accept is queued for the peer"
    );
    assert_eq!(rows(&i, &peer.domain).await.0, 1, "alice is known");

    // Without a token the admin API refuses.
    let (status, _) = api(
        reqwest::Method::GET,
        format!("{}/api/v1/admin/domains", i.base()),
        "wrong",
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, bad) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/admin/domains", i.base()),
        &t,
        Some(json!({"domain": "not a domain", "policy": "block"})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");

    let (status, blocked) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/admin/domains", i.base()),
        &t,
        Some(json!({"domain": peer.domain, "policy": "block", "reason": "spam", "purge": true})),
    )
    .await;
    assert_eq!(status, 200, "{blocked}");
    assert_eq!(blocked["policy"]["policy"], "block");
    assert_eq!(blocked["purged_actors"], 1);
    assert!(
        blocked["dropped_deliveries"].as_u64().unwrap() >= 1,
        "{blocked}"
    );
    let (_, listed) = api(
        reqwest::Method::GET,
        format!("{}/api/v1/admin/domains", i.base()),
        &t,
        None,
    )
    .await;
    assert_eq!(listed["domains"][0]["domain"], peer.domain);
    assert_eq!(listed["domains"][0]["reason"], "spam");
    let (actors_left, follows_left, received, pending) = rows(&i, &peer.domain).await;
    assert_eq!((actors_left, follows_left, pending), (0, 0, 0), "purged");

    // Everything from the domain is refused before anything is fetched.
    let fetched = peer.fetches();
    let (status, body) = peer
        .post_signed(&inbox, &peer.follow_of(&i.base(), 2), &key)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(peer.fetches(), fetched, "no fetch for a blocked signer");
    assert_eq!(rows(&i, &peer.domain).await.2, received, "nothing stored");
    // An activity accepted before the block and still queued is dropped
    // when a worker comes to it.
    let queued = peer.follow_of(&i.base(), 9);
    tocsin::federation::inbox::apply_queued(queued.as_bytes(), &i.server.data)
        .await
        .unwrap();
    assert_eq!(
        rows(&i, &peer.domain).await.1,
        0,
        "the queued Follow was dropped"
    );
    assert_eq!(peer.fetches(), fetched, "and nothing fetched for it");

    // A delivery to the blocked domain is given up unsent.
    let org = local_actor(&i.server.data, "alerts").await.unwrap();
    let peer_inbox = format!("{}/users/alice/inbox", peer.base);
    let posts_before = peer.received().len();
    let org_id = org.id;
    i.server
        .state
        .db
        .run(move |conn| {
            db::deliveries::enqueue(
                conn,
                "http://x.invalid/a/1",
                org_id,
                "Create",
                "{}",
                &[peer_inbox],
            )
        })
        .await
        .unwrap();
    i.server.state.delivery_wakeup.notify_one();
    let domain = peer.domain.clone();
    assert!(
        eventually(WAIT, || async {
            let domain = domain.clone();
            i.server
                .state
                .db
                .run(move |conn| {
                    Ok(deliveries::table
                        .filter(deliveries::host.eq(&domain))
                        .select((deliveries::state, deliveries::last_error))
                        .load::<(String, Option<String>)>(conn)?)
                })
                .await
                .unwrap()
                .iter()
                .any(|(state, error)| {
                    state == db::deliveries::FAILED
                        && error.as_deref().is_some_and(|e| e.contains("blocked"))
                })
        })
        .await,
        "the delivery failed as blocked"
    );
    assert_eq!(peer.received().len(), posts_before, "nothing was sent");

    // Unblocked, the domain federates again.
    assert_eq!(unset(&i, &t, &peer.domain).await, 204);
    assert_eq!(
        unset(&i, &t, &peer.domain).await,
        404,
        "nothing left to remove"
    );
    let (status, body) = peer
        .post_signed(&inbox, &peer.follow_of(&i.base(), 3), &key)
        .await;
    assert_eq!(status, 202, "{body}");
    i.stop().await;
    peer.stop().await;
}

async fn silenced_domain_is_accepted_but_not_shown(backend: Backend) {
    let member = TestInstance::start(backend).await;
    let mut p = prepare(backend);
    p.config.instance.role = "clearinghouse".into();
    p.config.feeds = vec![FeedConfig {
        username: "world".into(),
        display_name: "World".into(),
        ..Default::default()
    }];
    let ch = TestInstance::start_prepared(p).await;
    crate::common::follows(&ch, &format!("@alerts@{}", member.domain)).await;
    let (ct, mt) = (api_token(&ch, "operator"), api_token(&member, "operator"));
    let (status, _) = api(
        reqwest::Method::POST,
        format!("{}/api/v1/admin/domains", ch.base()),
        &ct,
        Some(json!({"domain": member.domain, "policy": "silence"})),
    )
    .await;
    assert_eq!(status, 200);

    let publish = |title: &'static str| {
        let (base, mt) = (member.base(), mt.clone());
        async move {
            let (status, created) = api(
                reqwest::Method::POST,
                format!("{base}/api/v1/alerts"),
                &mt,
                Some(json!({
                    "title": title, "body": "Detained at the border.", "language": "en",
                    "countries": ["NG"], "categories": ["detention"], "urgency": "action"
                })),
            )
            .await;
            assert_eq!(status, 201, "{created}");
            created["ap_id"].as_str().unwrap().to_string()
        }
    };
    let has_copy = |ap_id: String| {
        let db = ch.server.state.db.clone();
        async move {
            db.run(move |c| db::alerts::by_ap_id(c, &ap_id))
                .await
                .unwrap()
                .is_some()
        }
    };
    let quiet = publish("Silenced editor detained").await;
    assert!(
        eventually(WAIT, || has_copy(quiet.clone())).await,
        "accepted and stored"
    );
    crate::common::inbox_settled(&ch.server.state).await;
    let shown = |what: &'static str| {
        let (base, ct) = (ch.base(), ct.clone());
        async move {
            let (_, review) = api(
                reqwest::Method::GET,
                format!("{base}/api/v1/review"),
                &ct,
                None,
            )
            .await;
            let (_, listed) = api(
                reqwest::Method::GET,
                format!("{base}/api/v1/alerts"),
                &ct,
                None,
            )
            .await;
            let archive = html_page(format!("{base}/archive")).await;
            (
                review.to_string().contains(what),
                listed.to_string().contains(what),
                archive.contains(what),
            )
        }
    };
    assert_eq!(
        shown("Silenced editor").await,
        (false, false, false),
        "kept out of review, API and archive"
    );

    // The same domain, no longer silenced: its next alert is shown.
    assert_eq!(unset(&ch, &ct, &member.domain).await, 204);
    let loud = publish("Heard editor detained").await;
    assert!(eventually(WAIT, || has_copy(loud.clone())).await);
    crate::common::inbox_settled(&ch.server.state).await;
    assert_eq!(
        shown("Heard editor").await,
        (true, true, true),
        "shown once the silence is lifted"
    );
    member.stop().await;
    ch.stop().await;
}

async fn allowlist_mode_federates_only_with_listed_domains(backend: Backend) {
    let mut p = prepare(backend);
    p.config.federation.allowlist_only = true;
    let i = TestInstance::start_prepared(p).await;
    let (listed, stranger) = (FakePeer::start().await, FakePeer::start().await);
    let inbox = format!("{}/inbox", i.base());
    i.server
        .state
        .policies
        .apply(&listed.domain, "allow", None, false)
        .await
        .unwrap();
    for (peer, expected) in [(&stranger, 403), (&listed, 202)] {
        let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
        let (status, body) = peer
            .post_signed(
                &inbox,
                &peer.follow_of(&i.base(), 1),
                &format!("{alice}#main-key"),
            )
            .await;
        assert_eq!(status, expected, "{}: {body}", peer.domain);
    }
    assert_eq!(
        stranger.fetches(),
        0,
        "nothing fetched from a domain not on the list"
    );
    i.stop().await;
    listed.stop().await;
    stranger.stop().await;
}

/// `tocsin domain block` on the database of a running server: the server
/// refuses the domain within the snapshot's reload time.
async fn cli_block_reaches_a_running_server(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let inbox = format!("{}/inbox", i.base());
    let dir = tempfile::tempdir().unwrap();
    let env = [
        (
            "TOCSIN_DATABASE__URL",
            i.server.state.config.database.url.as_str(),
        ),
        ("TOCSIN_INSTANCE__DOMAIN", i.domain.as_str()),
    ];
    let tocsin = |args: &[&str]| crate::common::tocsin_succeeds(dir.path(), &env, args);
    let said = tocsin(&["domain", "block", &peer.domain, "--reason", "forgeries"]);
    assert!(said.contains("is now block"), "{said}");
    let list = tocsin(&["domain", "list"]);
    assert!(
        list.contains(&format!("{}\tblock\tforgeries", peer.domain)),
        "{list}"
    );
    let mut n = 0;
    let refused = eventually(Duration::from_secs(20), || {
        n += 1;
        let body = peer.follow_of(&i.base(), n);
        let (peer, inbox, key) = (&peer, &inbox, format!("{alice}#main-key"));
        async move { peer.post_signed(inbox, &body, &key).await.0 == 403 }
    })
    .await;
    assert!(refused, "the server picked the block up");
    let said = tocsin(&["domain", "unblock", &peer.domain]);
    assert!(said.contains("policy removed"), "{said}");
    assert_eq!(tocsin(&["domain", "list"]).trim(), "");
    i.stop().await;
    peer.stop().await;
}

/// Without authorized fetch anyone may read public documents, but a read
/// signed by a blocked domain's key says who asks, and is refused.
async fn signed_reads_from_a_blocked_domain_are_refused(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let peer = FakePeer::start().await;
    let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &i.base());
    let key = format!("{alice}#main-key");
    let actor = format!("{}/actors/alerts", i.base());
    let get = || signed_cavage(&peer, &actor, &key, SystemTime::now());
    assert_eq!(get().await.0, 200, "a signed read from an open domain");
    i.server
        .state
        .policies
        .apply(&peer.domain, "block", None, false)
        .await
        .unwrap();
    let (status, body) = get().await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("blocked"), "{body}");
    let unsigned = client()
        .get(&actor)
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 200, "unsigned reads stay public");
    i.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_reads_from_a_blocked_domain_are_refused_sqlite() {
    signed_reads_from_a_blocked_domain_are_refused(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_reads_from_a_blocked_domain_are_refused_postgres() {
    if postgres_available() {
        signed_reads_from_a_blocked_domain_are_refused(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_domain_is_refused_undelivered_and_purged_sqlite() {
    blocked_domain_is_refused_undelivered_and_purged(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_domain_is_refused_undelivered_and_purged_postgres() {
    if postgres_available() {
        blocked_domain_is_refused_undelivered_and_purged(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silenced_domain_is_accepted_but_not_shown_sqlite() {
    silenced_domain_is_accepted_but_not_shown(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silenced_domain_is_accepted_but_not_shown_postgres() {
    if postgres_available() {
        silenced_domain_is_accepted_but_not_shown(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_mode_federates_only_with_listed_domains_sqlite() {
    allowlist_mode_federates_only_with_listed_domains(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_mode_federates_only_with_listed_domains_postgres() {
    if postgres_available() {
        allowlist_mode_federates_only_with_listed_domains(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_block_reaches_a_running_server_sqlite() {
    cli_block_reaches_a_running_server(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_block_reaches_a_running_server_postgres() {
    if postgres_available() {
        cli_block_reaches_a_running_server(Backend::Postgres).await;
    }
}
