//! A receiving server for tests and the benchmark: any number of inboxes
//! under `/inbox/…` on loopback listeners. It checks every request's
//! draft-cavage signature against the sender keys it was given, counts raw
//! POSTs per inbox and the distinct activity ids each inbox saw (what a
//! receiver that deduplicates by id keeps), and can answer slowly.

use crate::{
    db::{self, actors::NewActor, DbConn, DbError},
    signatures::{self, cavage, keys::parse_public_pem},
};
use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};
use aws_lc_rs::signature::ParsedPublicKey;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::{SocketAddr, TcpListener},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

/// What one inbox of the sink has received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxTally {
    /// Accepted POSTs, duplicates included.
    pub posts: u64,
    /// Distinct activity ids: what a deduplicating receiver keeps.
    pub activity_ids: HashSet<String>,
}

/// Everything the sink has received so far.
#[derive(Debug, Clone, Default)]
pub struct SinkReport {
    /// Per inbox path (`/inbox/…`).
    pub inboxes: BTreeMap<String, InboxTally>,
    /// Accepted POSTs over all inboxes.
    pub posts: u64,
    /// POSTs refused because the signature did not verify.
    pub bad_signatures: u64,
}

impl SinkReport {
    /// Sum over inboxes of the distinct activity ids each saw.
    pub fn distinct_deliveries(&self) -> u64 {
        self.inboxes
            .values()
            .map(|t| t.activity_ids.len() as u64)
            .sum()
    }
}

struct SinkState {
    keys: HashMap<String, ParsedPublicKey>,
    delay: Duration,
    inboxes: Mutex<HashMap<String, InboxTally>>,
    posts: AtomicU64,
    distinct: AtomicU64,
    bad_signatures: AtomicU64,
    last_accepted: Mutex<Option<Instant>>,
}

/// A running sink.
pub struct Sink {
    /// One address per listener.
    pub addrs: Vec<SocketAddr>,
    state: Arc<SinkState>,
    handle: ServerHandle,
}

impl Sink {
    /// Serves on `listeners`, accepting signatures by the given keys
    /// (`keyId` → PEM public key) and waiting `delay` before each answer.
    pub fn start(
        listeners: Vec<TcpListener>,
        keys: &[(String, String)],
        delay: Duration,
        workers: usize,
    ) -> std::io::Result<Sink> {
        let mut parsed = HashMap::new();
        for (key_id, pem) in keys {
            let key = parse_public_pem(pem)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            parsed.insert(key_id.clone(), key);
        }
        let state = Arc::new(SinkState {
            keys: parsed,
            delay,
            inboxes: Default::default(),
            posts: AtomicU64::new(0),
            distinct: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
            last_accepted: Mutex::new(None),
        });
        let app_state = web::Data::from(state.clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/inbox/{rest:.*}", web::post().to(inbox))
        })
        .workers(workers.max(1))
        .max_connection_rate(4096)
        .backlog(4096)
        .disable_signals();
        let mut addrs = Vec::new();
        for listener in listeners {
            addrs.push(listener.local_addr()?);
            server = server.listen(listener)?;
        }
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Sink {
            addrs,
            state,
            handle,
        })
    }

    /// Accepted POSTs so far (duplicates included).
    pub fn posts(&self) -> u64 {
        self.state.posts.load(Ordering::Relaxed)
    }

    /// Sum over inboxes of distinct activity ids received so far.
    pub fn distinct_deliveries(&self) -> u64 {
        self.state.distinct.load(Ordering::Relaxed)
    }

    /// When the last accepted POST arrived.
    pub fn last_accepted(&self) -> Option<Instant> {
        *self
            .state
            .last_accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of everything received.
    pub fn report(&self) -> SinkReport {
        let inboxes = self
            .state
            .inboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        SinkReport {
            inboxes,
            posts: self.posts(),
            bad_signatures: self.state.bad_signatures.load(Ordering::Relaxed),
        }
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

async fn inbox(req: HttpRequest, body: web::Bytes, state: web::Data<SinkState>) -> HttpResponse {
    if !signature_verifies(&req, &body, &state) {
        state.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return HttpResponse::Unauthorized().finish();
    }
    let Some(id) = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_string))
    else {
        return HttpResponse::BadRequest().finish();
    };
    let fresh = {
        let mut inboxes = state.inboxes.lock().unwrap_or_else(|p| p.into_inner());
        let tally = inboxes.entry(req.path().to_string()).or_default();
        tally.posts += 1;
        tally.activity_ids.insert(id)
    };
    state.posts.fetch_add(1, Ordering::Relaxed);
    if fresh {
        state.distinct.fetch_add(1, Ordering::Relaxed);
    }
    *state
        .last_accepted
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    HttpResponse::Accepted().finish()
}

fn signature_verifies(req: &HttpRequest, body: &[u8], state: &SinkState) -> bool {
    let window = cavage::Window {
        max_age: Duration::from_secs(3600),
        max_skew: Duration::from_secs(300),
        now: SystemTime::now(),
    };
    if let Some(base) = rfc9421_base(req, body, window) {
        return base.is_some_and(|(sig, base)| {
            state
                .keys
                .get(&sig.key_id)
                .is_some_and(|key| signatures::rfc9421::verify_rsa(&sig, &base, key).is_ok())
        });
    }
    let Ok((sig, signing_string)) = signatures::request::check(req, Some(body), window) else {
        return false;
    };
    state
        .keys
        .get(&sig.key_id)
        .is_some_and(|key| cavage::verify(&sig, &signing_string, key).is_ok())
}

/// For an RFC 9421-signed request (one with `Signature-Input`): the parsed
/// signature and its base, or `Some(None)` when the checks fail. `None`
/// for other requests.
#[allow(clippy::option_option)]
fn rfc9421_base(
    req: &HttpRequest,
    body: &[u8],
    window: cavage::Window,
) -> Option<Option<(signatures::rfc9421::ParsedSignature, String)>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let input = header("signature-input")?;
    let checked = (|| {
        let sig = signatures::rfc9421::parse(&input, &header("signature")?).ok()?;
        let authority = header("host")?;
        let target = format!("http://{authority}{}", req.uri());
        let parts = signatures::rfc9421::RequestParts {
            method: req.method().as_str(),
            target_uri: &target,
            authority: &authority,
            header: &header,
            body: Some(body),
        };
        let base = signatures::rfc9421::check_request(&sig, &parts, window).ok()?;
        Some((sig, base))
    })();
    Some(checked)
}

/// Records one remote follower of the local actor `target_id` per inbox in
/// `inboxes` (actors `…/users/fN` on the inbox's host, accepted follows),
/// in one transaction: the audience of a fan-out in tests and the benchmark.
pub fn seed_followers(
    conn: &mut DbConn,
    target_id: i64,
    inboxes: &[String],
) -> Result<(), DbError> {
    db::transaction(conn, |conn| {
        for (n, inbox) in inboxes.iter().enumerate() {
            let host = db::deliveries::host_of(inbox);
            let ap_id = format!("http://{host}/users/f{n}");
            let actor = db::actors::upsert(
                conn,
                &NewActor::remote_person(&ap_id, &format!("f{n}"), &host, inbox, ""),
            )?;
            let follow_id = format!("{ap_id}/follows/1");
            db::follows::upsert(conn, actor.id, target_id, db::follows::ACCEPTED, &follow_id)?;
        }
        Ok(())
    })
}
