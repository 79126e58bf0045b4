//! A fake remote server on 127.0.0.1 that serves a fixture actor (e.g. a
//! Mastodon `Person`), signs what it posts with the fixture key, and records
//! what it receives, checking each request's signature.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use std::{
    collections::HashMap,
    net::TcpListener,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};
use tocsin::signatures::{cavage, keys::KeyCache, rfc9421};

/// One request the peer received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request path.
    pub path: String,
    /// Parsed JSON body.
    pub body: serde_json::Value,
    /// The signature's keyId.
    pub key_id: Option<String>,
    /// Whether the signature verified against the key fetched from keyId.
    pub signature_ok: bool,
}

/// What the peer answers to inbox POSTs: a list of statuses used in turn
/// (the last one repeats), with an optional `Retry-After`.
#[derive(Debug, Clone)]
pub struct InboxBehaviour {
    /// Statuses in order of attempts; 0 means "never answer".
    pub statuses: Vec<u16>,
    /// `Retry-After` header value sent with every non-2xx answer.
    pub retry_after: Option<String>,
}

impl Default for InboxBehaviour {
    fn default() -> Self {
        InboxBehaviour {
            statuses: vec![202],
            retry_after: None,
        }
    }
}

#[derive(Clone)]
struct PeerState {
    documents: Arc<Mutex<HashMap<String, String>>>,
    redirects: Arc<Mutex<HashMap<String, String>>>,
    received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<InboxBehaviour>>,
    attempts: Arc<Mutex<usize>>,
    rfc9421_refused: Arc<Mutex<usize>>,
    fetches: Arc<Mutex<usize>>,
}

/// A running fake peer.
pub struct FakePeer {
    /// `http://localhost:PORT`.
    pub base: String,
    /// `localhost:PORT`.
    pub domain: String,
    state: PeerState,
    handle: actix_web::dev::ServerHandle,
    private_pem: String,
}

/// The fixture private key that signs for every fixture actor.
pub fn fixture_private_key() -> String {
    std::fs::read_to_string(fixture_path("keys/fixture_actor_private.pem")).expect("fixture key")
}

/// Absolute path of a fixture file.
pub fn fixture_path(rel: &str) -> String {
    format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// A fixture's text.
pub fn fixture(rel: &str) -> String {
    std::fs::read_to_string(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

async fn serve_document(req: HttpRequest, state: web::Data<PeerState>) -> HttpResponse {
    *state.fetches.lock().unwrap() += 1;
    let path = req
        .uri()
        .path_and_query()
        .map_or(req.path(), |p| p.as_str())
        .to_string();
    if let Some(location) = state.redirects.lock().unwrap().get(&path) {
        return HttpResponse::Found()
            .insert_header(("Location", location.clone()))
            .finish();
    }
    let docs = state.documents.lock().unwrap();
    let key = docs
        .keys()
        .find(|k| path == **k || path.starts_with(&format!("{k}?")))
        .cloned();
    match key.and_then(|k| docs.get(&k).cloned()) {
        Some(body) if path.starts_with("/.well-known/webfinger") => HttpResponse::Ok()
            .content_type("application/jrd+json")
            .body(body),
        Some(body) => HttpResponse::Ok()
            .content_type("application/activity+json")
            .body(body),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn inbox(req: HttpRequest, body: web::Bytes, state: web::Data<PeerState>) -> HttpResponse {
    if req.headers().contains_key("signature-input") {
        // Like Mastodon before 4.5: RFC 9421 is not understood; the
        // signature header does not parse as draft-cavage, so 401.
        *state.rfc9421_refused.lock().unwrap() += 1;
        return HttpResponse::Unauthorized().finish();
    }
    let sig = req
        .headers()
        .get("signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| cavage::parse_signature_header(v).ok());
    let signature_ok = match &sig {
        Some(sig) => verify(&req, &body, sig).await,
        None => false,
    };
    state.received.lock().unwrap().push(Received {
        path: req.path().to_string(),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        key_id: sig.map(|s| s.key_id),
        signature_ok,
    });
    let attempt = {
        let mut n = state.attempts.lock().unwrap();
        *n += 1;
        *n
    };
    let behaviour = state.behaviour.lock().unwrap().clone();
    let status = *behaviour
        .statuses
        .get(attempt - 1)
        .or(behaviour.statuses.last())
        .unwrap_or(&202);
    if status == 0 {
        // "Never answers": hold the connection longer than any client waits.
        tokio::time::sleep(Duration::from_secs(60)).await;
        return HttpResponse::Accepted().finish();
    }
    let mut resp = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if status >= 300 {
        if let Some(ra) = &behaviour.retry_after {
            resp.insert_header(("Retry-After", ra.clone()));
        }
    }
    resp.finish()
}

/// Verifies a request to the peer by fetching the signer's key over HTTP, as
/// a real server would.
async fn verify(req: &HttpRequest, body: &[u8], sig: &cavage::ParsedSignature) -> bool {
    let window = cavage::Window {
        max_age: Duration::from_secs(3600),
        max_skew: Duration::from_secs(300),
        now: SystemTime::now(),
    };
    let Ok((_, signing_string)) = tocsin::signatures::request::check(req, Some(body), window)
    else {
        return false;
    };
    let key_url = sig.key_id.split('#').next().unwrap_or_default().to_string();
    let Ok(resp) = super::client()
        .get(&key_url)
        .header("Accept", "application/activity+json")
        .send()
        .await
    else {
        return false;
    };
    let Ok(actor) = resp.json::<serde_json::Value>().await else {
        return false;
    };
    let Some(pem) = actor["publicKey"]["publicKeyPem"].as_str() else {
        return false;
    };
    let Ok(key) = KeyCache::default().public(pem) else {
        return false;
    };
    cavage::verify(sig, &signing_string, &key).is_ok()
}

/// Sends a signed inbox POST with `body`; the status and response text.
async fn send(request: reqwest::RequestBuilder, body: &str) -> (u16, String) {
    let resp = request
        .header("Content-Type", "application/activity+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

impl FakePeer {
    /// Starts a peer with no documents yet.
    pub async fn start() -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = PeerState {
            documents: Default::default(),
            redirects: Default::default(),
            received: Default::default(),
            behaviour: Default::default(),
            attempts: Default::default(),
            rfc9421_refused: Default::default(),
            fetches: Default::default(),
        };
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(app_state.clone()))
                .route("/inbox", web::post().to(inbox))
                .route("/users/{name}/inbox", web::post().to(inbox))
                .default_service(web::get().to(serve_document))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakePeer {
            base: format!("http://localhost:{port}"),
            domain: format!("localhost:{port}"),
            state,
            handle,
            private_pem: fixture_private_key(),
        }
    }

    /// Replaces the fixture hosts with this peer's and `tocsin_base`.
    pub fn rewrite(&self, text: &str, fixture_host: &str, tocsin_base: &str) -> String {
        text.replace(&format!("https://{fixture_host}"), &self.base)
            .replace(&format!("@{fixture_host}"), &format!("@{}", self.domain))
            .replace("https://tocsin.example", tocsin_base)
    }

    /// Serves `body` at `path` (e.g. the actor document).
    pub fn serve(&self, path: &str, body: String) {
        self.state
            .documents
            .lock()
            .unwrap()
            .insert(path.to_string(), body);
    }

    /// Answers GETs of `path` with a 302 to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        self.state
            .redirects
            .lock()
            .unwrap()
            .insert(path.to_string(), location.to_string());
    }

    /// Loads a fixture actor, rewrites its hosts and serves it at its id's
    /// path, with a WebFinger answer for `acct:<username>@<peer>`. Returns the
    /// actor id.
    pub fn serve_actor_fixture(
        &self,
        fixture_rel: &str,
        fixture_host: &str,
        tocsin_base: &str,
    ) -> String {
        let text = self.rewrite(&fixture(fixture_rel), fixture_host, tocsin_base);
        let json: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
        let id = json["id"].as_str().expect("actor id").to_string();
        let username = json["preferredUsername"]
            .as_str()
            .expect("preferredUsername")
            .to_string();
        let path = id
            .strip_prefix(&self.base)
            .expect("actor on peer")
            .to_string();
        let key_id = json["publicKey"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !key_id.contains('#') {
            // GoToSocial names its key by a path and serves a key document there.
            let key_doc = serde_json::json!({
                "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
                "id": key_id,
                "owner": id,
                "publicKeyPem": json["publicKey"]["publicKeyPem"],
            });
            let key_path = key_id
                .strip_prefix(&self.base)
                .expect("key on peer")
                .to_string();
            self.serve(&key_path, key_doc.to_string());
        }
        self.serve(&path, text);
        let webfinger = serde_json::json!({
            "subject": format!("acct:{username}@{}", self.domain),
            "links": [{ "rel": "self", "type": "application/activity+json", "href": id }]
        });
        self.serve(
            &format!(
                "/.well-known/webfinger?resource=acct:{username}@{}",
                self.domain
            ),
            webfinger.to_string(),
        );
        id
    }

    /// Sets how the inbox answers.
    pub fn set_behaviour(&self, behaviour: InboxBehaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
        *self.state.attempts.lock().unwrap() = 0;
    }

    /// How many RFC 9421-signed POSTs were refused with 401.
    pub fn rfc9421_refused(&self) -> usize {
        *self.state.rfc9421_refused.lock().unwrap()
    }

    /// How many GETs (documents, WebFinger, keys) the peer answered.
    pub fn fetches(&self) -> usize {
        *self.state.fetches.lock().unwrap()
    }

    /// Everything POSTed to the inbox with a draft-cavage signature or none.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// POSTs `body` to `url` signed with the fixture key as `key_id`, with
    /// the Date given; returns the status and response text.
    pub async fn post_signed_at(
        &self,
        url: &str,
        body: &str,
        key_id: &str,
        now: SystemTime,
    ) -> (u16, String) {
        Self::post_signed_by(url, body, key_id, &self.private_pem, now).await
    }

    /// POSTs `body` to `url` signed (draft-cavage) by `private_pem` as
    /// `key_id` at `now`; returns the status and response text.
    pub async fn post_signed_by(
        url: &str,
        body: &str,
        key_id: &str,
        private_pem: &str,
        now: SystemTime,
    ) -> (u16, String) {
        let key = KeyCache::default().private(private_pem).unwrap();
        let url = url::Url::parse(url).unwrap();
        let h = cavage::sign("POST", &url, Some(body.as_bytes()), key_id, &key, now).unwrap();
        let request = super::client()
            .post(url)
            .header("Date", h.date)
            .header("Digest", h.digest.unwrap())
            .header("Signature", h.signature);
        send(request, body).await
    }

    /// POSTs `body` to `url` with an RFC 9421 signature by `key` as
    /// `key_id`; `content_digest` replaces the right one when given.
    pub async fn post_signed_rfc9421(
        &self,
        url: &str,
        body: &str,
        key_id: &str,
        key: rfc9421::SigningKey<'_>,
        content_digest: Option<&str>,
    ) -> (u16, String) {
        let url = url::Url::parse(url).unwrap();
        let h = rfc9421::sign(
            "POST",
            &url,
            Some(body.as_bytes()),
            key_id,
            key,
            SystemTime::now(),
        )
        .unwrap();
        let request = super::client()
            .post(url)
            .header(
                "Content-Digest",
                content_digest.map_or(h.content_digest.unwrap(), str::to_string),
            )
            .header("Signature-Input", h.signature_input)
            .header("Signature", h.signature);
        send(request, body).await
    }

    /// The fixture private key, parsed.
    pub fn private_key(&self) -> std::sync::Arc<aws_lc_rs::rsa::KeyPair> {
        KeyCache::default().private(&self.private_pem).unwrap()
    }

    /// POSTs `body` signed now.
    pub async fn post_signed(&self, url: &str, body: &str, key_id: &str) -> (u16, String) {
        self.post_signed_at(url, body, key_id, SystemTime::now())
            .await
    }

    /// The fixture Follow of `tocsin_base`'s organisation actor by this
    /// peer's alice (`mastodon/actor.json`), with an id made from `n`.
    pub fn follow_of(&self, tocsin_base: &str, n: usize) -> String {
        let mut follow: serde_json::Value = serde_json::from_str(&self.rewrite(
            &fixture("mastodon/follow.json"),
            "mastodon.example",
            tocsin_base,
        ))
        .unwrap();
        follow["id"] = serde_json::json!(format!("{}/follows/{n}", self.base));
        follow.to_string()
    }

    /// Stops the peer.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}
