//! The bad-input suite: a table of malformed and hostile requests against a
//! real instance on loopback, each with the one status it must get, then a
//! check that none of them stored or delivered anything.
//!
//! SSRF targets on loopback are `Canary` listeners that count connections:
//! a row "refuses to fetch" only if its canary saw none. Targets off
//! loopback (169.254.169.254, 10.0.0.1) are only used where the path that
//! would reach them is proven closed by a loopback row first, so the suite
//! never touches a non-loopback address.
//!
//! A row marked `pending(…)` waits for a feature that has not landed yet: it
//! runs, its failure is reported as PENDING and does not fail the test, and
//! once it passes the test fails asking for the mark to be removed, so no
//! row ever passes vacuously and none stays pending silently.

use crate::common::{
    client, inbox_settled,
    peer::{fixture, fixture_private_key, FakePeer},
    prepare, Backend, TestInstance,
};
use diesel::prelude::*;
use serde_json::{json, Value};
use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};
use tocsin::{
    db::{self, schema},
    signatures::{
        cavage,
        keys::{generate_rsa_keypair, rsa_sign, KeyCache},
        rfc9421,
    },
};

/// A loopback listener that counts the connections it gets: an SSRF target
/// that must never be reached.
struct Canary {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Canary {
    async fn bind(ip: &str) -> Canary {
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .unwrap_or_else(|e| panic!("bind {ip}: {e}"));
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Canary { addr, hits }
    }

    /// `ip:port` as it goes in a URL (`[::1]:port` for IPv6).
    fn authority(&self) -> String {
        self.addr.to_string()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// One request of the table.
#[derive(Clone)]
struct Req {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn get(url: impl Into<String>) -> Req {
        Req {
            method: reqwest::Method::GET,
            url: url.into(),
            headers: vec![],
            body: vec![],
        }
    }

    fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Req {
        Req {
            method: reqwest::Method::POST,
            url: url.into(),
            headers: vec![],
            body: body.into(),
        }
    }

    /// Sets (or replaces) a header.
    fn header(mut self, name: &str, value: impl Into<String>) -> Req {
        self = self.without(name);
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Replaces the body, keeping the headers (and so the old signature).
    fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }

    /// The same request sent to another URL (its signature stays).
    fn clone_to(mut self, url: &str) -> Req {
        self.url = url.to_string();
        self
    }

    fn bearer(self, token: &str) -> Req {
        self.header("Authorization", format!("Bearer {token}"))
    }
}

/// What a row checks besides the status.
#[derive(Clone, Copy, PartialEq)]
enum Check {
    Status,
    /// A JSON page of alerts with none in it (a search that matched nothing).
    NoAlerts,
    /// The body must not echo this text.
    NotEchoed(&'static str),
}

/// One hostile request and the only acceptable answer.
struct Row {
    name: String,
    req: Req,
    status: u16,
    check: Check,
    /// Accepted and queued (202), applied with no effect: its id is
    /// remembered, nothing else.
    queued: bool,
    /// Waits for this feature; see the module comment.
    pending: Option<&'static str>,
    /// Reaches off loopback unless the guard proven by the pending rows is
    /// in place: runs only when no pending row failed.
    needs_guard: bool,
}

fn row(name: impl Into<String>, req: Req, status: u16) -> Row {
    Row {
        name: name.into(),
        req,
        status,
        check: Check::Status,
        queued: false,
        pending: None,
        needs_guard: false,
    }
}

impl Row {
    fn check(mut self, check: Check) -> Row {
        self.check = check;
        self
    }

    fn queued(mut self) -> Row {
        self.queued = true;
        self
    }

    #[allow(dead_code)] // no row waits for a feature today
    fn pending(mut self, feature: &'static str) -> Row {
        self.pending = Some(feature);
        self
    }

    fn needs_guard(mut self) -> Row {
        self.needs_guard = true;
        self
    }
}

/// The SSRF guard of issue 9 (branch `hardening`): outgoing requests check
/// the address they connect to, IP literals included.
#[allow(dead_code)]
const SSRF_GUARD: &str = "SSRF guard on resolved addresses (issue 9, branch hardening)";

/// Row counts of every table a request could write to, and what the peers
/// and the media directory received.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Snapshot {
    actors: i64,
    alerts: i64,
    attachments: i64,
    follows: i64,
    received: i64,
    inbox_queue: i64,
    outgoing: i64,
    deliveries: i64,
    review_items: i64,
    announces: i64,
    tombstones: i64,
    tokens: i64,
    media_files: usize,
    peer_posts: usize,
    third_posts: usize,
}

/// Everything the table runs against.
struct World {
    instance: TestInstance,
    /// An instance with the production network settings (no private
    /// addresses, no plain http): the SSRF target of rows that need them.
    prod: TestInstance,
    peer: FakePeer,
    third: FakePeer,
    canary: Canary,
    canary6: Canary,
    key_pem: String,
    alice: String,
    alice_key: String,
    mallory_key: String,
    bob: String,
    token: String,
    revoked: String,
    media_dir: std::path::PathBuf,
}

/// Serves a copy of `peer`'s alice fixture renamed `name`, edited by
/// `edit`; returns its id.
fn serve_variant(
    peer: &FakePeer,
    tocsin_base: &str,
    name: &str,
    edit: impl FnOnce(&mut Value),
) -> String {
    let text = peer
        .rewrite(
            &fixture("mastodon/actor.json"),
            "mastodon.example",
            tocsin_base,
        )
        .replace("/users/alice", &format!("/users/{name}"))
        .replace("\"alice\"", &format!("\"{name}\""));
    let mut actor: Value = serde_json::from_str(&text).unwrap();
    edit(&mut actor);
    peer.serve(&format!("/users/{name}"), actor.to_string());
    format!("{}/users/{name}", peer.base)
}

impl World {
    async fn start(backend: Backend) -> World {
        let mut prepared = prepare(backend);
        prepared.config.server.max_body_bytes = 8 * 1024;
        let media_dir = std::path::PathBuf::from(&prepared.config.alerts.media_dir);
        let instance = TestInstance::start_prepared(prepared).await;
        let mut prepared = prepare(backend);
        prepared.config.federation.allow_private_addresses = false;
        prepared.config.federation.allow_http = false;
        let prod = TestInstance::start_prepared(prepared).await;
        let peer = FakePeer::start().await;
        let third = FakePeer::start().await;
        let base = instance.base();
        let alice = peer.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &base);
        let mallory = serve_variant(&peer, &base, "mallory", |_| {});
        let bob = third.serve_actor_fixture("mastodon/actor.json", "mastodon.example", &base);
        let token;
        let revoked;
        {
            let mut conn = instance.server.state.db.conn().unwrap();
            token = db::tokens::create(&mut conn, "bad-input").unwrap();
            revoked = db::tokens::create(&mut conn, "revoked").unwrap();
            db::tokens::revoke(&mut conn, "revoked").unwrap();
        }
        World {
            canary: Canary::bind("127.0.0.1").await,
            canary6: Canary::bind("::1").await,
            key_pem: fixture_private_key(),
            alice_key: format!("{alice}#main-key"),
            mallory_key: format!("{mallory}#main-key"),
            alice,
            bob,
            instance,
            prod,
            peer,
            third,
            token,
            revoked,
            media_dir,
        }
    }

    fn base(&self) -> String {
        self.instance.base()
    }

    fn inbox(&self) -> String {
        format!("{}/actors/alerts/inbox", self.base())
    }

    fn our_actor(&self) -> String {
        format!("{}/actors/alerts", self.base())
    }

    /// A POST of `body` to `url` signed (draft-cavage) over `signed_body`
    /// by `key_pem` as `key_id` at `at`.
    fn signed_with(
        &self,
        url: &str,
        signed_body: &[u8],
        body: &[u8],
        key_id: &str,
        key_pem: &str,
        at: SystemTime,
    ) -> Req {
        let key = KeyCache::default().private(key_pem).unwrap();
        let h = cavage::sign(
            "POST",
            &url::Url::parse(url).unwrap(),
            Some(signed_body),
            key_id,
            &key,
            at,
        )
        .unwrap();
        Req::post(url, body.to_vec())
            .header("Content-Type", "application/activity+json")
            .header("Date", h.date)
            .header("Digest", h.digest.unwrap())
            .header("Signature", h.signature)
    }

    /// `body` POSTed to our inbox, signed now by alice.
    fn signed(&self, body: &Value) -> Req {
        self.signed_raw(body.to_string().as_bytes())
    }

    fn signed_raw(&self, body: &[u8]) -> Req {
        self.signed_with(
            &self.inbox(),
            body,
            body,
            &self.alice_key,
            &self.key_pem,
            SystemTime::now(),
        )
    }

    /// `body` signed now by the fixture key as `key_id`.
    fn signed_as(&self, body: &Value, key_id: &str) -> Req {
        let text = body.to_string();
        self.signed_with(
            &self.inbox(),
            text.as_bytes(),
            text.as_bytes(),
            key_id,
            &self.key_pem,
            SystemTime::now(),
        )
    }

    /// A draft-cavage signature over exactly `lines` (name, value).
    fn custom_signature(&self, key_id: &str, algorithm: &str, lines: &[(&str, String)]) -> String {
        let key = KeyCache::default().private(&self.key_pem).unwrap();
        let string: Vec<String> = lines.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        let sig = rsa_sign(&key, string.join("\n").as_bytes()).unwrap();
        let names: Vec<&str> = lines.iter().map(|(n, _)| *n).collect();
        use base64::Engine;
        format!(
            "keyId=\"{key_id}\",algorithm=\"{algorithm}\",headers=\"{}\",signature=\"{}\"",
            names.join(" "),
            base64::engine::general_purpose::STANDARD.encode(sig)
        )
    }

    /// `body` POSTed to our inbox with an RFC 9421 signature by alice.
    fn signed_rfc9421(&self, body: &[u8]) -> (Req, rfc9421::SignedRequestHeaders) {
        let key = KeyCache::default().private(&self.key_pem).unwrap();
        let h = rfc9421::sign(
            "POST",
            &url::Url::parse(&self.inbox()).unwrap(),
            Some(body),
            &self.alice_key,
            rfc9421::SigningKey::Rsa(&key),
            SystemTime::now(),
        )
        .unwrap();
        let req = Req::post(self.inbox(), body.to_vec())
            .header("Content-Type", "application/activity+json")
            .header("Content-Digest", h.content_digest.clone().unwrap())
            .header("Signature-Input", h.signature_input.clone())
            .header("Signature", h.signature.clone());
        (req, h)
    }

    fn id(&self, base: &str) -> String {
        format!("{base}/activities/{}", uuid::Uuid::new_v4())
    }

    /// A Follow of our organisation actor by `actor`, with an id on `host`.
    fn follow(&self, actor: &str, host: &str) -> Value {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": self.id(host),
            "type": "Follow",
            "actor": actor,
            "object": self.our_actor(),
        })
    }

    /// A Create of a Note by alice, edited by `edit`.
    fn create(&self, edit: impl FnOnce(&mut Value)) -> Value {
        let mut create = crate::common::create_note(&self.peer.base, &self.alice);
        edit(&mut create);
        create
    }

    /// An Announce by alice of `object`.
    fn announce(&self, object: Value) -> Value {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": self.id(&self.peer.base),
            "type": "Announce",
            "actor": self.alice,
            "published": chrono::Utc::now().to_rfc3339(),
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "object": object,
        })
    }

    /// Posts alice's `create`, waits until it is applied and returns the
    /// alert it stored.
    async fn stored_create(&self, create: &Value) -> db::alerts::AlertRow {
        let (status, body) = self.send(&self.signed(create)).await;
        assert_eq!(status, 202, "{body}");
        inbox_settled(&self.instance.server.state).await;
        let note_id = create["object"]["id"].as_str().unwrap().to_string();
        self.instance
            .server
            .state
            .db
            .run(move |conn| db::alerts::by_ap_id(conn, &note_id))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{create} is stored"))
    }

    async fn snapshot(&self) -> Snapshot {
        use schema::*;
        let (
            actors_n,
            alerts_n,
            attachments_n,
            follows_n,
            received_n,
            queue_n,
            outgoing_n,
            deliveries_n,
            review_n,
            announces_n,
            tombstones_n,
            tokens_n,
        ) = self
            .instance
            .server
            .state
            .db
            .run(|conn| {
                Ok((
                    actors::table.count().get_result::<i64>(conn)?,
                    alerts::table.count().get_result::<i64>(conn)?,
                    alert_attachments::table.count().get_result::<i64>(conn)?,
                    follows::table.count().get_result::<i64>(conn)?,
                    received_activities::table.count().get_result::<i64>(conn)?,
                    inbox_queue::table.count().get_result::<i64>(conn)?,
                    outgoing_activities::table.count().get_result::<i64>(conn)?,
                    deliveries::table.count().get_result::<i64>(conn)?,
                    review_items::table.count().get_result::<i64>(conn)?,
                    announces::table.count().get_result::<i64>(conn)?,
                    tombstones::table.count().get_result::<i64>(conn)?,
                    api_tokens::table.count().get_result::<i64>(conn)?,
                ))
            })
            .await
            .unwrap();
        Snapshot {
            actors: actors_n,
            alerts: alerts_n,
            attachments: attachments_n,
            follows: follows_n,
            received: received_n,
            inbox_queue: queue_n,
            outgoing: outgoing_n,
            deliveries: deliveries_n,
            review_items: review_n,
            announces: announces_n,
            tombstones: tombstones_n,
            tokens: tokens_n,
            media_files: std::fs::read_dir(&self.media_dir).map_or(0, |d| d.count()),
            peer_posts: self.peer.received().len(),
            third_posts: self.third.received().len(),
        }
    }

    /// Sends a request; the status and body text (status 0: no answer).
    async fn send(&self, req: &Req) -> (u16, String) {
        let mut builder = client().request(req.method.clone(), &req.url);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        match builder.body(req.body.clone()).send().await {
            Ok(resp) => (
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            ),
            Err(e) => (0, e.to_string()),
        }
    }

    async fn stop(self) {
        self.instance.stop().await;
        self.prod.stop().await;
        self.peer.stop().await;
        self.third.stop().await;
    }
}

/// The legitimate traffic before the table: alice, mallory and bob follow
/// us (so they are known and got their Accept), we follow alice (so her
/// Creates and Announces would be stored), alice's Create with a script
/// is stored sanitised, and an upload with a hostile file name is stored
/// under its hash. Returns the Follow that the table replays.
async fn legitimate_traffic(w: &World) -> Value {
    let alice_follow = w.follow(&w.alice, &w.peer.base);
    for (follow, key) in [
        (alice_follow.clone(), w.alice_key.clone()),
        (
            w.follow(&w.mallory_key.replace("#main-key", ""), &w.peer.base),
            w.mallory_key.clone(),
        ),
    ] {
        let (status, body) = w.send(&w.signed_as(&follow, &key)).await;
        assert_eq!(status, 202, "legitimate Follow: {body}");
    }
    let bob_follow = w.follow(&w.bob, &w.third.base);
    let (status, body) = w
        .third
        .post_signed(
            &w.inbox(),
            &bob_follow.to_string(),
            &format!("{}#main-key", w.bob),
        )
        .await;
    assert_eq!(status, 202, "bob's Follow: {body}");
    inbox_settled(&w.instance.server.state).await;

    let (us, alice) = (w.our_actor(), w.alice.clone());
    w.instance
        .server
        .state
        .db
        .run(move |conn| {
            let us = db::actors::by_ap_id(conn, &us)?.unwrap();
            let alice = db::actors::by_ap_id(conn, &alice)?.unwrap();
            db::follows::upsert(
                conn,
                us.id,
                alice.id,
                db::follows::ACCEPTED,
                "http://localhost/follow-alice",
            )
        })
        .await
        .unwrap();

    // Script in content: stored, but sanitised.
    let hostile_html = "<p>Reporter held incommunicado</p><script>alert(1)</script>\
        <img src=x onerror=alert(2)><a href=\"javascript:alert(3)\">appeal</a>\
        <iframe src=\"https://evil.example\"></iframe><style>body{}</style>";
    let create = w.create(|c| c["object"]["content"] = json!(hostile_html));
    let stored = w.stored_create(&create).await;
    let html = stored.content_html.to_ascii_lowercase();
    assert!(html.contains("reporter held incommunicado"), "{html}");
    for bad in [
        "<script",
        "onerror",
        "javascript:",
        "<iframe",
        "<style",
        "alert(1)",
    ] {
        assert!(!html.contains(bad), "stored HTML keeps {bad}: {html}");
    }
    // And on the way out: the archive lists it without the script.
    let archive = client()
        .get(format!("{}/archive", w.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        archive.contains("Reporter held incommunicado"),
        "the alert is listed"
    );
    assert!(!archive.contains("alert(1)") && !archive.contains("onerror"));

    // NUL characters (`\u0000`) in a Note: stored without them, on
    // PostgreSQL too (its text cannot hold NUL).
    let create = w.create(|c| {
        c["object"]["content"] = json!("<p>Editor\0 arrested</p>");
        c["object"]["summary"] = json!("content\0 warning");
        c["object"]["name"] = json!("Editor\0 arrested");
        c["object"]["attachment"] = json!([{
            "type": "Document",
            "mediaType": "image/\0png",
            "url": "https://m.example/court\0.png",
            "name": "The\0 court",
        }]);
    });
    let stored = w.stored_create(&create).await;
    assert_eq!(stored.title, "Editor arrested");
    assert_eq!(stored.summary.as_deref(), Some("content warning"));
    assert!(
        !stored.content_html.contains('\0'),
        "{}",
        stored.content_html
    );
    let id = stored.id;
    let attachments = w
        .instance
        .server
        .state
        .db
        .run(move |conn| db::alerts::attachments(conn, id))
        .await
        .unwrap();
    assert_eq!(attachments.len(), 1, "the attachment is stored");
    assert_eq!(attachments[0].description.as_deref(), Some("The court"));
    assert_eq!(attachments[0].media_type.as_deref(), Some("image/png"));
    assert!(!attachments[0].url.contains('\0'));

    // Path traversal in an upload's file name: stored under its hash.
    let png = png_bytes();
    let resp = client()
        .post(format!("{}/api/v1/media", w.base()))
        .bearer_auth(&w.token)
        .header("Content-Type", "image/png")
        .header(
            "Content-Disposition",
            "attachment; filename=\"../../../../tmp/evil.png\"",
        )
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let uploaded: Value = resp.json().await.unwrap();
    let name = format!(
        "{}.png",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&png))
    );
    assert!(uploaded["url"].as_str().unwrap().ends_with(&name));
    assert!(w.media_dir.join(&name).exists(), "stored under its hash");
    let parent = w.media_dir.parent().unwrap();
    assert!(!parent.join("evil.png").exists() && !std::path::Path::new("/tmp/evil.png").exists());

    // Wait for the Accepts to reach alice, mallory and bob.
    let delivered = crate::common::eventually(Duration::from_secs(20), || async {
        w.peer.received().len() >= 2 && !w.third.received().is_empty()
    })
    .await;
    assert!(delivered, "the Accepts were delivered");
    alice_follow
}

/// The smallest valid PNG header, as `infer` recognises it.
fn png_bytes() -> Vec<u8> {
    let mut png = vec![
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
    ];
    png.extend_from_slice(b"bad-input suite");
    png
}

/// JSON nested `depth` levels deep inside an otherwise valid Follow.
fn nested(w: &World, depth: usize) -> Vec<u8> {
    let mut follow = w.follow(&w.alice, &w.peer.base).to_string();
    follow.pop();
    format!(
        "{follow},\"tag\":{}1{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes()
}

/// The signed inbox rows: who signs, when, over what.
fn signature_rows(w: &World, rows: &mut Vec<Row>) {
    let follow = w.follow(&w.alice, &w.peer.base);
    let body = follow.to_string();
    let now = SystemTime::now();
    let inbox = w.inbox();
    let at = |t: SystemTime| {
        w.signed_with(
            &inbox,
            body.as_bytes(),
            body.as_bytes(),
            &w.alice_key,
            &w.key_pem,
            t,
        )
    };
    let stranger = generate_rsa_keypair().unwrap();
    let date = httpdate::fmt_http_date(now);
    let path = "post /actors/alerts/inbox".to_string();
    let host = w.instance.domain.clone();
    let digest = cavage::digest_header(body.as_bytes());
    let lines = |names: &[&str]| -> Vec<(&'static str, String)> {
        let all = [
            ("(request-target)", path.clone()),
            ("host", host.clone()),
            ("date", date.clone()),
            ("digest", digest.clone()),
        ];
        all.into_iter().filter(|(n, _)| names.contains(n)).collect()
    };
    let plain = Req::post(&inbox, body.clone())
        .header("Content-Type", "application/activity+json")
        .header("Date", date.clone())
        .header("Digest", digest.clone());

    rows.push(row("unsigned POST", plain.clone(), 401));
    rows.push(row(
        "Signature header not a signature",
        plain.clone().header("Signature", "hello"),
        401,
    ));
    rows.push(row(
        "Signature with an empty keyId",
        plain.clone().header(
            "Signature",
            w.custom_signature(
                "",
                "rsa-sha256",
                &lines(&["(request-target)", "host", "date", "digest"]),
            ),
        ),
        401,
    ));
    rows.push(row(
        "keyId that is not a URL",
        plain.clone().header(
            "Signature",
            w.custom_signature(
                "not a url",
                "rsa-sha256",
                &lines(&["(request-target)", "host", "date", "digest"]),
            ),
        ),
        401,
    ));
    rows.push(row(
        "unknown key id (actor 404 on its server)",
        w.signed_with(
            &inbox,
            body.as_bytes(),
            body.as_bytes(),
            &format!("{}/users/nobody#main-key", w.peer.base),
            &w.key_pem,
            now,
        ),
        401,
    ));
    rows.push(row(
        "key of another actor (mallory signs alice's Follow)",
        w.signed_as(&follow, &w.mallory_key),
        401,
    ));
    rows.push(row(
        "alice's key id, a stranger's key",
        w.signed_with(
            &inbox,
            body.as_bytes(),
            body.as_bytes(),
            &w.alice_key,
            &stranger.private_pem,
            now,
        ),
        401,
    ));
    rows.push(row(
        "stale Date (2 hours old)",
        at(now - Duration::from_secs(2 * 3600)),
        401,
    ));
    rows.push(row(
        "Date just past the window (61 minutes)",
        at(now - Duration::from_secs(3660)),
        401,
    ));
    rows.push(row(
        "future Date (1 hour ahead)",
        at(now + Duration::from_secs(3600)),
        401,
    ));
    rows.push(row(
        "future Date past the skew (6 minutes ahead)",
        at(now + Duration::from_secs(360)),
        401,
    ));
    rows.push(row(
        "Date header that is not a date",
        at(now).header("Date", "yesterday"),
        401,
    ));
    rows.push(row("Date header removed", at(now).without("Date"), 401));
    rows.push(row(
        "wrong digest (body changed after signing)",
        at(now).body(body.replace("Follow", "Follow ")),
        401,
    ));
    rows.push(row("Digest header removed", at(now).without("Digest"), 401));
    rows.push(row(
        "Digest of another algorithm (MD5)",
        at(now).header("Digest", "MD5=rL0Y20zC+Fzt72VPzMSk2A=="),
        401,
    ));
    rows.push(row(
        "Digest header of another body, signed",
        {
            let other = cavage::digest_header(b"{}");
            plain.clone().header("Digest", other.clone()).header(
                "Signature",
                w.custom_signature(
                    &w.alice_key,
                    "rsa-sha256",
                    &[
                        ("(request-target)", path.clone()),
                        ("host", host.clone()),
                        ("date", date.clone()),
                        ("digest", other),
                    ],
                ),
            )
        },
        401,
    ));
    for (what, covered) in [
        (
            "signature not covering the digest",
            &["(request-target)", "host", "date"][..],
        ),
        (
            "signature not covering the request target",
            &["host", "date", "digest"],
        ),
        (
            "signature covering no date",
            &["(request-target)", "host", "digest"],
        ),
    ] {
        let signature = w.custom_signature(&w.alice_key, "rsa-sha256", &lines(covered));
        rows.push(row(what, plain.clone().header("Signature", signature), 401));
    }
    // Signed for another URL, sent to ours.
    for (what, signed_for) in [
        (
            "signature made for another host",
            "http://evil.example/actors/alerts/inbox".to_string(),
        ),
        (
            "signature made for the shared inbox, sent to the actor inbox",
            format!("{}/inbox", w.base()),
        ),
    ] {
        let req = w.signed_with(
            &signed_for,
            body.as_bytes(),
            body.as_bytes(),
            &w.alice_key,
            &w.key_pem,
            now,
        );
        rows.push(row(what, req.clone_to(&inbox), 401));
    }
    rows.push(row(
        "signature bytes corrupted",
        {
            let req = at(now);
            let sig = req
                .headers
                .iter()
                .find(|(n, _)| n == "Signature")
                .unwrap()
                .1
                .clone();
            let flipped = sig.replacen("signature=\"", "signature=\"AAAA", 1);
            req.header("Signature", flipped)
        },
        401,
    ));
    let hmac = w.custom_signature(
        &w.alice_key,
        "hmac-sha256",
        &lines(&["(request-target)", "host", "date", "digest"]),
    );
    rows.push(row(
        "algorithm hmac-sha256",
        plain.clone().header("Signature", hmac),
        401,
    ));
    rows.push(row(
        "Authorization: Signature garbage",
        plain.clone().header("Authorization", "Signature ,,,=\"\""),
        401,
    ));
    let (rfc, h) = w.signed_rfc9421(body.as_bytes());
    rows.push(row(
        "RFC 9421: wrong Content-Digest",
        rfc.clone()
            .header("Content-Digest", rfc9421::content_digest_header(b"{}")),
        401,
    ));
    rows.push(row(
        "RFC 9421: body changed after signing",
        rfc.clone().body(body.replace("Follow", "Follow ")),
        401,
    ));
    rows.push(row(
        "RFC 9421: Signature-Input garbage",
        rfc.clone().header("Signature-Input", "sig1=(((;"),
        401,
    ));
    rows.push(row(
        "RFC 9421: no created parameter",
        rfc.clone().header(
            "Signature-Input",
            remove_param(&h.signature_input, "created"),
        ),
        401,
    ));
    rows.push(row(
        "RFC 9421: created 2 hours ago",
        rfc.clone().header(
            "Signature-Input",
            replace_created(&h.signature_input, -7200),
        ),
        401,
    ));
    rows.push(row(
        "RFC 9421: created 1 hour ahead",
        rfc.clone()
            .header("Signature-Input", replace_created(&h.signature_input, 3600)),
        401,
    ));
    rows.push(row(
        "RFC 9421: signature label not in Signature-Input",
        rfc.clone()
            .header("Signature", h.signature.replacen("sig1", "sig2", 1)),
        401,
    ));
}

fn remove_param(input: &str, name: &str) -> String {
    input
        .split(';')
        .filter(|p| !p.starts_with(&format!("{name}=")))
        .collect::<Vec<_>>()
        .join(";")
}

fn replace_created(input: &str, shift: i64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    format!("{};created={}", remove_param(input, "created"), now + shift)
}

/// Bodies the inbox must refuse, all correctly signed by alice.
fn body_rows(w: &World, rows: &mut Vec<Row>, replayed: &Value) {
    let third = &w.third.base;
    rows.push(row(
        "malformed JSON",
        w.signed_raw(b"{\"type\": \"Follow\", "),
        400,
    ));
    rows.push(row(
        "invalid UTF-8",
        w.signed_raw(b"{\"type\": \"Follow\", \"id\": \"\xff\xfe\"}"),
        400,
    ));
    rows.push(row(
        "invalid UTF-8 inside an otherwise valid Follow",
        {
            let mut body = w.follow(&w.alice, &w.peer.base).to_string().into_bytes();
            let at = body.len() - 2;
            body.splice(at..at, b",\"x\":\"\xc3\x28\"".iter().copied());
            w.signed_raw(&body)
        },
        400,
    ));
    rows.push(row("empty body", w.signed_raw(b""), 400));
    rows.push(row(
        "JSON array",
        w.signed_raw(b"[{\"type\":\"Follow\"}]"),
        400,
    ));
    rows.push(row("JSON string", w.signed_raw(b"\"Follow\""), 400));
    rows.push(row("JSON null", w.signed_raw(b"null"), 400));
    rows.push(row(
        "deeply nested JSON (3,000 levels)",
        w.signed_raw(&nested(w, 3000)),
        400,
    ));
    rows.push(row(
        "oversized body (20 KiB)",
        {
            let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(20 * 1024));
            w.signed_raw(huge.as_bytes())
        },
        413,
    ));
    rows.push(row(
        "wrong content type (text/html)",
        w.signed(&w.follow(&w.alice, &w.peer.base))
            .header("Content-Type", "text/html"),
        415,
    ));
    rows.push(row(
        "wrong content type (form)",
        w.signed(&w.follow(&w.alice, &w.peer.base))
            .header("Content-Type", "application/x-www-form-urlencoded"),
        415,
    ));
    rows.push(row(
        "no content type",
        w.signed(&w.follow(&w.alice, &w.peer.base))
            .without("Content-Type"),
        415,
    ));
    // Follows of alice with one field made hostile.
    type Edit<'a> = Box<dyn Fn(&mut Value) + 'a>;
    let edits: Vec<(&str, Edit, u16)> = vec![
        (
            "missing id",
            Box::new(|f: &mut Value| {
                f.as_object_mut().unwrap().remove("id");
            }),
            400,
        ),
        (
            "id not a URL",
            Box::new(|f: &mut Value| {
                f["id"] = json!("'; DROP TABLE follows; --");
            }),
            400,
        ),
        (
            "missing actor",
            Box::new(|f: &mut Value| {
                f.as_object_mut().unwrap().remove("actor");
            }),
            400,
        ),
        (
            "actor a number",
            Box::new(|f: &mut Value| {
                f["actor"] = json!(42);
            }),
            400,
        ),
        (
            "Follow of an actor that does not exist here",
            Box::new(|f: &mut Value| {
                f["object"] = json!(format!("{}/actors/nobody", w.base()));
            }),
            400,
        ),
        (
            "Follow of an actor on a third host",
            Box::new(|f: &mut Value| {
                f["object"] = json!(w.bob);
            }),
            400,
        ),
    ];
    for (what, edit, status) in edits {
        let mut follow = w.follow(&w.alice, &w.peer.base);
        edit(&mut follow);
        rows.push(row(what, w.signed(&follow), status));
    }
    rows.push(row(
        "activity id on another host than its actor",
        w.signed(&w.follow(&w.alice, third)),
        400,
    ));
    rows.push(row(
        "forged actor: bob's Follow signed by alice",
        w.signed(&w.follow(&w.bob, third)),
        401,
    ));
    rows.push(row(
        "forged actor: our own actor, signed by alice",
        w.signed(&w.follow(&w.our_actor(), &w.base())),
        401,
    ));
    rows.push(row(
        "forged actor: embedded actor object with bob's id",
        w.signed(&{
            let mut f = w.follow(&w.bob, third);
            f["actor"] =
                json!({"id": w.bob, "type": "Person", "inbox": format!("{}/inbox", w.peer.base)});
            f
        }),
        401,
    ));
    rows.push(row(
        "replayed Follow (same id again)",
        w.signed(replayed),
        202,
    ));
    rows.push(row(
        "replayed id with another body",
        w.signed(&{
            let mut f = replayed.clone();
            f["object"] = json!(format!("{}/actors/nobody", w.base()));
            f
        }),
        202,
    ));
    rows.push(row(
        "Create with attributedTo another actor",
        w.signed(&w.create(|c| c["object"]["attributedTo"] = json!(w.bob))),
        400,
    ));
    rows.push(row(
        "Create whose object id is on a third host",
        w.signed(&w.create(|c| {
            c["object"]["id"] = json!(format!("{third}/notes/forged"));
        })),
        400,
    ));
    rows.push(row(
        "Create whose activity id is on a third host",
        w.signed(&w.create(|c| {
            c["id"] = json!(format!("{third}/activities/forged"));
        })),
        400,
    ));
    rows.push(row(
        "Create with a script, attributed to bob",
        w.signed(&w.create(|c| {
            c["object"]["attributedTo"] = json!(w.bob);
            c["object"]["content"] = json!("<script>alert(1)</script>");
        })),
        400,
    ));
    rows.push(row(
        "Create of an object with no id",
        w.signed(&w.create(|c| {
            c["object"].as_object_mut().unwrap().remove("id");
        })),
        400,
    ));
    rows.push(row(
        "Update of a Note attributed to bob",
        w.signed(&w.create(|c| {
            c["type"] = json!("Update");
            c["object"]["attributedTo"] = json!(w.bob);
        })),
        400,
    ));
    rows.push(row(
        "Delete of an object on a third host",
        w.signed(&json!({
            "id": w.id(&w.peer.base), "type": "Delete", "actor": w.alice,
            "object": format!("{third}/notes/1"),
        })),
        400,
    ));
    rows.push(row("Undo of someone else's Follow", w.signed(&json!({
        "id": w.id(&w.peer.base), "type": "Undo", "actor": w.alice,
        "object": {"id": format!("{third}/follows/1"), "type": "Follow", "actor": w.bob, "object": w.our_actor()},
    })), 400));
    rows.push(row("Accept of a Follow we never sent", w.signed(&json!({
        "id": w.id(&w.peer.base), "type": "Accept", "actor": w.alice,
        "object": {"id": format!("{third}/follows/1"), "type": "Follow", "actor": w.bob, "object": w.alice},
    })), 400));
    rows.push(row(
        "Flag (a type we do not act on)",
        w.signed(&json!({
            "id": w.id(&w.peer.base), "type": "Flag", "actor": w.alice, "object": w.our_actor(),
        })),
        202,
    ));
    rows.push(
        row(
            "Announce of a missing object on a third host, forged copy embedded",
            w.signed(&w.announce(json!({
                "id": format!("{third}/notes/missing"), "type": "Note", "attributedTo": w.bob,
                "content": "<p>Forged retraction</p><script>alert(1)</script>",
            }))),
            202,
        )
        .queued(),
    );
    rows.push(
        row(
            "Announce of an object on a third host that does not exist",
            w.signed(&w.announce(json!(format!("{third}/notes/none")))),
            202,
        )
        .queued(),
    );
    let nobody_inbox = format!("{}/actors/nobody/inbox", w.base());
    let follow = w.follow(&w.alice, &w.peer.base).to_string();
    rows.push(row(
        "POST to the inbox of an actor that does not exist",
        w.signed_with(
            &nobody_inbox,
            follow.as_bytes(),
            follow.as_bytes(),
            &w.alice_key,
            &w.key_pem,
            SystemTime::now(),
        ),
        404,
    ));
    rows.push(row("GET of an inbox", Req::get(w.inbox()), 404));
}

/// Fetches the inbox must refuse (SSRF), through keyIds, actor documents,
/// redirects, Announces and the remote-follow page.
fn ssrf_rows(w: &World, rows: &mut Vec<Row>) {
    let follow = w.follow(&w.alice, &w.peer.base);
    let (c4, c6) = (w.canary.authority(), w.canary6.authority());
    for (what, key_id) in [
        (
            "keyId on 127.0.0.1",
            format!("http://{c4}/users/x#main-key"),
        ),
        ("keyId on [::1]", format!("http://{c6}/users/x#main-key")),
        (
            "keyId on 0.0.0.0",
            format!("http://0.0.0.0:{}/users/x#main-key", w.canary.addr.port()),
        ),
        (
            "keyId on 127.1 (short form)",
            format!("http://127.1:{}/users/x#main-key", w.canary.addr.port()),
        ),
        (
            "keyId on 2130706433 (decimal 127.0.0.1)",
            format!(
                "http://2130706433:{}/users/x#main-key",
                w.canary.addr.port()
            ),
        ),
        (
            "keyId on 0x7f.0.0.1 (hex)",
            format!(
                "http://0x7f.0.0.1:{}/users/x#main-key",
                w.canary.addr.port()
            ),
        ),
        (
            "keyId on [::ffff:127.0.0.1]",
            format!(
                "http://[::ffff:127.0.0.1]:{}/users/x#main-key",
                w.canary.addr.port()
            ),
        ),
        (
            "key document (no fragment) on 127.0.0.1",
            format!("http://{c4}/keys/1"),
        ),
        (
            "keyId on 169.254.169.254 (cloud metadata)",
            "http://169.254.169.254/latest/meta-data/x#main-key".to_string(),
        ),
        (
            "keyId on 10.0.0.1",
            "http://10.0.0.1/users/x#main-key".to_string(),
        ),
        (
            "keyId with the file scheme",
            "file:///etc/passwd#main-key".to_string(),
        ),
        (
            "keyId with the gopher scheme",
            format!("gopher://{c4}/_x#main-key"),
        ),
    ] {
        rows.push(row(
            format!("SSRF: {what}"),
            w.signed_as(&follow, &key_id),
            401,
        ));
    }
    // Actor documents pointing elsewhere, served by the peer.
    let base = w.base();
    let inbox_meta = serve_variant(&w.peer, &base, "meta", |a| {
        a["inbox"] = json!("http://169.254.169.254/inbox")
    });
    let inbox_private = serve_variant(&w.peer, &base, "private", |a| {
        a["inbox"] = json!("http://10.0.0.1/inbox")
    });
    let inbox_canary = serve_variant(&w.peer, &base, "loopback", |a| {
        a["inbox"] = json!(format!("http://{c6}/inbox"))
    });
    let imposter = serve_variant(&w.peer, &base, "imposter", |a| a["id"] = json!(w.bob));
    let key_thief = serve_variant(&w.peer, &base, "thief", |a| {
        a["publicKey"]["owner"] = json!(w.alice)
    });
    let not_actor = serve_variant(&w.peer, &base, "tombstone", |a| {
        a["type"] = json!("Tombstone")
    });
    for (what, actor) in [
        ("actor whose inbox is 169.254.169.254", &inbox_meta),
        ("actor whose inbox is 10.0.0.1", &inbox_private),
        ("actor whose inbox is on [::1]", &inbox_canary),
        (
            "actor document whose id is bob's on a third host",
            &imposter,
        ),
        ("actor whose key is owned by alice", &key_thief),
        ("actor of type Tombstone", &not_actor),
    ] {
        let f = w.follow(actor, &w.peer.base);
        rows.push(row(
            format!("hostile actor: {what}"),
            w.signed_as(&f, &format!("{actor}#main-key")),
            401,
        ));
    }
    w.peer
        .redirect("/users/redirected", &format!("http://{c4}/users/x"));
    let redirected = format!("{}/users/redirected", w.peer.base);
    rows.push(row(
        "SSRF: actor URL redirecting to 127.0.0.1",
        w.signed_as(
            &w.follow(&redirected, &w.peer.base),
            &format!("{redirected}#main-key"),
        ),
        401,
    ));
    // Announces whose object the worker would fetch.
    for (what, object) in [
        (
            "Announce of an object on 127.0.0.1",
            format!("http://{c4}/notes/1"),
        ),
        (
            "Announce of an object on [::1]",
            format!("http://{c6}/notes/1"),
        ),
        (
            "Announce of an object on 169.254.169.254",
            "http://169.254.169.254/notes/1".to_string(),
        ),
        ("Announce of an object redirecting to 127.0.0.1", {
            w.peer
                .redirect("/notes/redirected", &format!("http://{c4}/notes/1"));
            format!("{}/notes/redirected", w.peer.base)
        }),
    ] {
        rows.push(
            row(
                format!("SSRF: {what}"),
                w.signed(&w.announce(json!(object))),
                202,
            )
            .queued(),
        );
    }
    // The production instance: no private addresses, no plain http.
    let prod_inbox = format!("{}/actors/alerts/inbox", w.prod.base());
    let body = json!({
        "id": format!("https://{c4}/follows/1"), "type": "Follow",
        "actor": format!("https://localhost:{}/users/x", w.canary.addr.port()),
        "object": format!("{}/actors/alerts", w.prod.base()),
    })
    .to_string();
    for (what, key_id) in [
        (
            "production: keyId on localhost",
            format!(
                "https://localhost:{}/users/x#main-key",
                w.canary.addr.port()
            ),
        ),
        (
            "production: keyId on 127.0.0.1",
            format!("https://{c4}/users/x#main-key"),
        ),
        (
            "production: keyId over plain http",
            format!("http://{c4}/users/x#main-key"),
        ),
    ] {
        rows.push(row(
            format!("SSRF: {what}"),
            w.signed_with(
                &prod_inbox,
                body.as_bytes(),
                body.as_bytes(),
                &key_id,
                &w.key_pem,
                SystemTime::now(),
            ),
            401,
        ));
    }
    // "Follow from your server" reads WebFinger from the host the visitor
    // names: the production instance must not reach loopback or private
    // addresses for anyone who asks.
    let remote_follow = |handle: String| {
        Req::get(format!(
            "{}/follow?account=alerts&handle={}",
            w.prod.base(),
            url::form_urlencoded::byte_serialize(handle.as_bytes()).collect::<String>()
        ))
    };
    rows.push(row(
        "SSRF: remote follow via localhost",
        remote_follow(format!("x@localhost:{}", w.canary.addr.port())),
        404,
    ));
    rows.push(row(
        "SSRF: remote follow via 127.0.0.1",
        remote_follow(format!("x@{c4}")),
        404,
    ));
    rows.push(row(
        "SSRF: remote follow via [::1]",
        remote_follow(format!("x@{c6}")),
        404,
    ));
    rows.push(
        row(
            "SSRF: remote follow via 169.254.169.254",
            remote_follow("x@169.254.169.254".into()),
            404,
        )
        .needs_guard(),
    );
    rows.push(
        row(
            "SSRF: remote follow via 10.0.0.1",
            remote_follow("x@10.0.0.1".into()),
            404,
        )
        .needs_guard(),
    );
}

/// WebFinger, search, tokens, uploads and paths.
fn web_rows(w: &World, rows: &mut Vec<Row>) {
    let base = w.base();
    let domain = &w.instance.domain;
    let wf = |resource: &str| {
        Req::get(format!(
            "{base}/.well-known/webfinger?resource={}",
            url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
        ))
    };
    rows.push(row(
        "WebFinger without resource",
        Req::get(format!("{base}/.well-known/webfinger")),
        400,
    ));
    for (what, resource, status) in [
        (
            "WebFinger resource acct: with nothing",
            "acct:".to_string(),
            400,
        ),
        (
            "WebFinger acct without host",
            "acct:alerts".to_string(),
            400,
        ),
        (
            "WebFinger acct on another host",
            "acct:alerts@evil.example".to_string(),
            404,
        ),
        (
            "WebFinger acct with empty user",
            format!("acct:@{domain}"),
            400,
        ),
        (
            "WebFinger acct with a doubled @",
            format!("acct:alerts@@{domain}"),
            404,
        ),
        (
            "WebFinger acct with path traversal",
            format!("acct:../../etc/passwd@{domain}"),
            404,
        ),
        (
            "WebFinger acct with SQL",
            format!("acct:alerts' OR '1'='1@{domain}"),
            404,
        ),
        (
            "WebFinger acct with a NUL",
            format!("acct:alerts\0@{domain}"),
            404,
        ),
        (
            "WebFinger URL on another host",
            "https://evil.example/actors/alerts".to_string(),
            404,
        ),
        (
            "WebFinger javascript: URL",
            "javascript:alert(1)".to_string(),
            404,
        ),
        (
            "WebFinger resource neither acct nor URL",
            "alerts".to_string(),
            400,
        ),
        (
            "WebFinger unknown user",
            format!("acct:nobody@{domain}"),
            404,
        ),
    ] {
        rows.push(row(what, wf(&resource), status));
    }
    rows.push(
        row(
            "WebFinger acct with a script",
            wf(&format!("acct:<script>alert(1)</script>@{domain}")),
            404,
        )
        .check(Check::NotEchoed("<script>")),
    );
    rows.push(row(
        "WebFinger 4 KiB resource",
        wf(&format!("acct:{}@{domain}", "a".repeat(4096))),
        404,
    ));

    // Search: SQL and FTS syntax are words, never query language. The
    // stored alerts match none of these, so every page must be empty.
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let mut empty_pages: Vec<(String, String)> = [
        "' OR 1=1 --",
        "\"; DROP TABLE alerts; --",
        "*",
        "NEAR(reporter held)",
        "reporter\" OR \"x",
        "%",
        "_",
        "\\",
        ") OR (1=1",
        "alerts_fts MATCH 'reporter'",
        "'",
        "a\0b",
    ]
    .iter()
    .map(|text| {
        (
            format!("search for {text:?}"),
            format!("text={}", encode(text)),
        )
    })
    .collect();
    for (what, query) in [
        ("country filter with a NUL", "country=%00"),
        ("country filter with SQL", "country=%25'%20OR%20'1'%3D'1"),
        ("API page whose offset overflows", "page=922337203685477580"),
    ] {
        empty_pages.push((what.to_string(), query.to_string()));
    }
    for (what, query) in empty_pages {
        let req = Req::get(format!("{base}/api/v1/alerts?{query}")).bearer(&w.token);
        rows.push(row(what, req, 200).check(Check::NoAlerts));
    }
    for (what, query) in [
        ("archive search with SQL", "q=%27%20OR%201%3D1%20--"),
        (
            "archive filters with NULs",
            "q=%00&country=%00&region=%00&category=%00&language=%00",
        ),
        (
            "archive page whose offset overflows",
            "page=922337203685477580",
        ),
    ] {
        let req = Req::get(format!("{base}/archive?{query}"));
        rows.push(row(what, req, 200).check(Check::NotEchoed("Reporter held incommunicado")));
    }
    rows.push(row(
        "API page 0",
        Req::get(format!("{base}/api/v1/alerts?page=0")).bearer(&w.token),
        422,
    ));
    rows.push(row(
        "API page beyond i64",
        Req::get(format!("{base}/api/v1/alerts?page=99999999999999999999")).bearer(&w.token),
        400,
    ));

    // Bearer tokens.
    let alert = json!({"title": "Forged", "body": "x", "language": "en", "countries": ["TR"], "categories": ["detention"], "urgency": "action"}).to_string();
    let create = || {
        Req::post(format!("{base}/api/v1/alerts"), alert.clone())
            .header("Content-Type", "application/json")
    };
    let hash = db::tokens::hash_token(&w.token);
    rows.push(row("API without a token", create(), 401));
    rows.push(row(
        "API with an empty bearer token",
        create().header("Authorization", "Bearer "),
        401,
    ));
    rows.push(row(
        "API with a garbage bearer token",
        create().bearer("garbage"),
        401,
    ));
    rows.push(row(
        "API with SQL as the token",
        create().bearer("' OR '1'='1"),
        401,
    ));
    rows.push(row(
        "API with the stored hash as the token",
        create().bearer(&hash),
        401,
    ));
    rows.push(row(
        "API with a revoked token",
        create().bearer(&w.revoked),
        401,
    ));
    rows.push(row(
        "API with a token and a suffix",
        create().bearer(&format!("{}x", w.token)),
        401,
    ));
    rows.push(row(
        "API with Basic auth",
        create().header("Authorization", "Basic YWRtaW46YWRtaW4="),
        401,
    ));
    rows.push(row(
        "API with the token in the query string",
        Req::post(
            format!("{base}/api/v1/alerts?access_token={}", w.token),
            alert.clone(),
        )
        .header("Content-Type", "application/json"),
        401,
    ));
    rows.push(row(
        "API with a 4 KiB token",
        create().bearer(&"a".repeat(4096)),
        401,
    ));

    // Uploads and media paths.
    let media = format!("{base}/api/v1/media");
    let upload = |body: &[u8], name: &str| {
        Req::post(&media, body.to_vec()).bearer(&w.token).header(
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        )
    };
    rows.push(row(
        "upload without a token",
        Req::post(&media, png_bytes()),
        401,
    ));
    rows.push(row(
        "upload of HTML named ../../index.html",
        upload(
            b"<html><script>alert(1)</script></html>",
            "../../index.html",
        ),
        422,
    ));
    rows.push(row(
        "upload of an executable named photo.png",
        upload(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "photo.png"),
        422,
    ));
    rows.push(row(
        "upload of SVG with a script",
        upload(
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            "x.svg",
        ),
        422,
    ));
    rows.push(row(
        "empty upload named ../x.png",
        upload(b"", "../x.png"),
        422,
    ));
    let hash_name = "a".repeat(64);
    for (what, path) in [
        (
            "encoded ../ in a media path",
            "/media/..%2F..%2Fetc%2Fpasswd".to_string(),
        ),
        (
            "encoded dots in a media path",
            "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd".to_string(),
        ),
        (
            "backslashes in a media path",
            "/media/..%5C..%5Cetc%5Cpasswd".to_string(),
        ),
        ("a known hash with .exe", format!("/media/{hash_name}.exe")),
        (
            "a NUL in a media path",
            format!("/media/{hash_name}.png%00.html"),
        ),
        (
            "encoded ../ in an actor path",
            "/actors/..%2F..%2Fetc%2Fpasswd".to_string(),
        ),
        ("a NUL in a profile path", "/@alerts%00".to_string()),
    ] {
        rows.push(row(
            format!("path: {what}"),
            Req::get(format!("{base}{path}")),
            404,
        ));
    }
}

/// What running the table gave.
struct Outcome {
    failures: Vec<String>,
    /// Pending rows still failing, and rows not run because of them.
    pending: Vec<String>,
    passed: usize,
    /// Canary connections made by pending rows (expected while they fail).
    pending_hits: usize,
}

/// Runs every row.
async fn run_table(w: &World, rows: &[Row]) -> Outcome {
    let mut failures = Vec::new();
    let mut pending = Vec::new();
    let mut passed = 0;
    let mut pending_hits = 0;
    let canaries = [&w.canary, &w.canary6];
    for r in rows.iter().filter(|r| !r.needs_guard) {
        let hits_before: usize = canaries.iter().map(|c| c.hits()).sum();
        let (status, body) = w.send(&r.req).await;
        let hits = canaries.iter().map(|c| c.hits()).sum::<usize>() - hits_before;
        let mut problems = Vec::new();
        if status != r.status {
            problems.push(format!("status {status}, expected {}", r.status));
        }
        if status >= 500 || status == 0 {
            problems.push("a server error".to_string());
        }
        if hits > 0 {
            problems.push(format!("reached a loopback canary {hits} time(s)"));
        }
        match r.check {
            Check::Status => {}
            Check::NoAlerts => {
                let page: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if page["alerts"].as_array().is_none_or(|a| !a.is_empty()) {
                    problems.push(format!("expected an empty page of alerts: {body:.300}"));
                }
            }
            Check::NotEchoed(text) => {
                if body.contains(text) {
                    problems.push(format!("the answer contains {text:?}"));
                }
            }
        }
        match (r.pending, problems.is_empty()) {
            (None, true) => passed += 1,
            (None, false) => failures.push(format!(
                "{}: {} ({body:.200})",
                r.name,
                problems.join("; ")
            )),
            (Some(feature), false) => {
                pending_hits += hits;
                pending.push(format!(
                    "{} [waits for {feature}]: {}",
                    r.name,
                    problems.join("; ")
                ));
            }
            (Some(feature), true) => failures.push(format!(
                "{} passes now: {feature} has landed; remove `.pending(…)` from this row in tests/it/bad_input.rs",
                r.name
            )),
        }
    }
    for r in rows.iter().filter(|r| r.needs_guard) {
        if !pending.is_empty() {
            pending.push(format!(
                "{} [not run: it would leave loopback without the SSRF guard]",
                r.name
            ));
            continue;
        }
        let (status, body) = w.send(&r.req).await;
        if status == r.status {
            passed += 1;
        } else {
            failures.push(format!(
                "{}: status {status}, expected {} ({body:.200})",
                r.name, r.status
            ));
        }
    }
    Outcome {
        failures,
        pending,
        passed,
        pending_hits,
    }
}

async fn hostile_requests_store_and_deliver_nothing(backend: Backend) {
    let w = World::start(backend).await;
    let replayed = legitimate_traffic(&w).await;
    let before = w.snapshot().await;

    let mut rows = Vec::new();
    signature_rows(&w, &mut rows);
    body_rows(&w, &mut rows, &replayed);
    ssrf_rows(&w, &mut rows);
    web_rows(&w, &mut rows);
    let Outcome {
        failures,
        pending,
        passed,
        pending_hits,
    } = run_table(&w, &rows).await;

    // Let the queued rows be applied and any delivery leave, then compare.
    inbox_settled(&w.instance.server.state).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    inbox_settled(&w.instance.server.state).await;
    let after = w.snapshot().await;
    let queued = rows.iter().filter(|r| r.queued).count() as i64;
    let expected = Snapshot {
        received: before.received + queued,
        ..before
    };
    for p in &pending {
        eprintln!("PENDING: {p}");
    }
    eprintln!(
        "bad input ({backend:?}): {} rows, {passed} passed, {} failed, {} pending",
        rows.len(),
        failures.len(),
        pending.len()
    );
    assert!(failures.is_empty(), "rows failed:\n{}", failures.join("\n"));
    assert_eq!(
        after, expected,
        "hostile requests stored or delivered something"
    );
    assert_eq!(
        w.canary.hits() + w.canary6.hits(),
        pending_hits,
        "a canary was reached after the table (a queued fetch)"
    );
    assert!(
        passed >= 60,
        "the table must hold at least 60 passing rows, {passed} passed"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_store_and_deliver_nothing_sqlite() {
    hostile_requests_store_and_deliver_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_store_and_deliver_nothing_postgres() {
    if crate::common::postgres_available() {
        hostile_requests_store_and_deliver_nothing(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_from_an_unreachable_actor_is_refused() {
    let w = World::start(Backend::Sqlite).await;
    let before = w.snapshot().await;
    // Alice's server forgets her: the key cannot be fetched.
    let ghost = format!("{}/users/ghost", w.peer.base);
    let (status, body) = w
        .send(&w.signed_as(
            &w.follow(&ghost, &w.peer.base),
            &format!("{ghost}#main-key"),
        ))
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("cannot fetch the signing actor"), "{body}");
    assert_eq!(w.snapshot().await, before);
    w.stop().await;
}
