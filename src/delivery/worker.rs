//! The delivery worker: claims due deliveries from the database, signs each
//! request (RFC 9421, or draft-cavage where a host needs it; RSA via aws-lc-rs, parsed keys cached) and records
//! the outcome. Bounded in total and per host.

use super::{
    metrics::Counted,
    retry::{backoff, classify, parse_retry_after, Outcome},
};
use crate::{
    config::DeliveryConfig,
    db::{
        self,
        deliveries::{self, AttemptRecord, ClaimedDelivery, DeliveryRow, HostHealth, NextStep},
        now_ms,
    },
    error::Error,
    signatures::{cavage, rfc9421},
    state::AppState,
};
use aws_lc_rs::rsa::KeyPair;

/// Which HTTP signature a host accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStyle {
    /// RFC 9421 HTTP Message Signatures.
    Rfc9421,
    /// draft-cavage HTTP Signatures.
    Cavage,
}

impl SignatureStyle {
    /// As stored in `hosts.signature_style`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureStyle::Rfc9421 => "rfc9421",
            SignatureStyle::Cavage => "cavage",
        }
    }

    /// From `hosts.signature_style`.
    pub fn parse(text: &str) -> Option<SignatureStyle> {
        match text {
            "rfc9421" => Some(SignatureStyle::Rfc9421),
            "cavage" => Some(SignatureStyle::Cavage),
            _ => None,
        }
    }
}
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};
use tokio::{
    sync::{mpsc, watch, Semaphore},
    task::JoinSet,
};

/// How often the worker looks for due retries when nothing wakes it.
const POLL: Duration = Duration::from_millis(1000);
/// How long shutdown waits for in-flight deliveries before handing them back.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Most deliveries claimed in one transaction.
const MAX_CLAIM: usize = 256;
/// Most outcomes written in one transaction.
const RECORD_BATCH: usize = 512;

/// An actor's key id and parsed private key.
type KeyEntry = (String, Arc<KeyPair>);

/// What the worker keeps between deliveries to sign them: parsed private
/// keys by actor, and the signature style each host accepted.
#[derive(Clone, Default)]
struct SigningKeys {
    keys: Arc<Mutex<HashMap<i64, KeyEntry>>>,
    styles: Arc<Mutex<HashMap<String, SignatureStyle>>>,
}

/// Runs until `shutdown` turns true, then finishes or hands back what is in
/// flight.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let config = state.config.delivery.clone();
    let total = Arc::new(Semaphore::new(config.concurrency));
    // Claim when a quarter of the slots are free: one claim transaction per
    // batch rather than per delivery, while the other slots keep sending.
    let batch = (config.concurrency / 4).clamp(1, MAX_CLAIM) as u32;
    let lease_ms = Duration::from_secs(config.lease_secs).as_millis() as i64;
    let per_host: Arc<Mutex<HashMap<String, Arc<Semaphore>>>> = Default::default();
    let keys: SigningKeys = Default::default();
    let in_flight: Arc<Mutex<HashSet<i64>>> = Default::default();
    let (records, records_rx) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(state.clone(), records_rx));
    let mut tasks = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        let mut slots = tokio::select! {
            slots = total.clone().acquire_many_owned(batch) => match slots {
                Ok(slots) => slots,
                Err(_) => break,
            },
            _ = shutdown.changed() => continue,
        };
        while slots.num_permits() < MAX_CLAIM {
            match total.clone().try_acquire_owned() {
                Ok(more) => slots.merge(more),
                Err(_) => break,
            }
        }
        let limit = slots.num_permits() as i64;
        let claimed = match state
            .db
            .run(move |conn| deliveries::claim_due(conn, limit, lease_ms))
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "claiming deliveries failed");
                Vec::new()
            }
        };
        let drained = (claimed.len() as i64) < limit;
        if !claimed.is_empty() {
            tracing::debug!(count = claimed.len(), "claimed deliveries");
        }
        for claim in claimed {
            let Some(slot) = slots.split(1) else { break };
            let host_slot =
                host_semaphore(&per_host, &claim.delivery.host, config.per_host_concurrency);
            lock(&in_flight).insert(claim.delivery.id);
            let (state, keys, in_flight, records) = (
                state.clone(),
                keys.clone(),
                in_flight.clone(),
                records.clone(),
            );
            tasks.spawn(async move {
                let _slot = slot;
                let Ok(_host) = host_slot.acquire_owned().await else {
                    return;
                };
                let id = claim.delivery.id;
                let record = deliver(&state, &keys, claim).await;
                lock(&in_flight).remove(&id);
                let _ = records.send(record);
            });
        }
        drop(slots);
        if drained {
            // Nothing more is due: wait for new work, a retry coming due, or
            // the end.
            tokio::select! {
                _ = state.delivery_wakeup.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    drop(records);
    let _ = recorder.await;
    let unfinished: Vec<i64> = lock(&in_flight).drain().collect();
    if !unfinished.is_empty() {
        let count = unfinished.len();
        match state
            .db
            .run(move |conn| deliveries::release(conn, &unfinished))
            .await
        {
            Ok(_) => tracing::info!(count, "handed unfinished deliveries back to the queue"),
            Err(e) => {
                tracing::warn!(error = %e, count, "could not hand deliveries back; their leases will expire and they will be retried")
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The semaphore bounding concurrent deliveries to `host`.
fn host_semaphore(
    map: &Mutex<HashMap<String, Arc<Semaphore>>>,
    host: &str,
    per_host: usize,
) -> Arc<Semaphore> {
    let mut map = lock(map);
    if map.len() > 4096 {
        // Forget idle hosts so a long fan-out history costs no memory.
        map.retain(|_, s| Arc::strong_count(s) > 1);
    }
    map.entry(host.to_string())
        .or_insert_with(|| Arc::new(Semaphore::new(per_host)))
        .clone()
}

/// Writes outcomes as they arrive, many per transaction: whatever came in
/// while the previous batch was being written goes into the next one.
async fn record_outcomes(state: AppState, mut rx: mpsc::UnboundedReceiver<AttemptRecord>) {
    let down_after = state.config.delivery.host_down_after_failures;
    let mut buffer = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut buffer, RECORD_BATCH).await > 0 {
        let batch = std::mem::take(&mut buffer);
        let count = batch.len();
        if let Err(e) = state
            .db
            .run(move |conn| deliveries::record_attempts(conn, &batch, down_after))
            .await
        {
            tracing::error!(error = %e, count, "recording delivery outcomes failed; their leases will expire and they will be retried");
        }
    }
}

async fn signing_key(
    state: &AppState,
    keys: &SigningKeys,
    actor_id: i64,
) -> Result<(String, Arc<KeyPair>), Error> {
    if let Some(found) = keys
        .keys
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&actor_id)
        .cloned()
    {
        return Ok(found);
    }
    let row = state
        .db
        .run(move |conn| db::actors::by_id(conn, actor_id))
        .await?;
    let pem = row
        .private_key_pem
        .ok_or_else(|| Error::Internal(format!("actor {} has no private key", row.ap_id)))?;
    let key = state.keys.private(&pem)?;
    let entry = (row.public_key_id, key);
    keys.keys
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(actor_id, entry.clone());
    Ok(entry)
}

/// Sends one delivery and decides what happens to it next.
async fn deliver(state: &AppState, keys: &SigningKeys, claim: ClaimedDelivery) -> AttemptRecord {
    let ClaimedDelivery {
        delivery,
        json,
        actor_id,
    } = claim;
    let started = Instant::now();
    let refused = refusal(state, &delivery.inbox).await;
    let result = match refused {
        Some(_) => None,
        None => Some(attempt(state, keys, &delivery.inbox, actor_id, json).await),
    };
    let metrics = &state.delivery_metrics;
    metrics.attempt_seconds.observe(started.elapsed());
    let (outcome, status, error) = match (result, refused) {
        (Some(Ok((status, retry_after))), _) => (
            classify(status, retry_after),
            Some(status as i32),
            format!("HTTP {status}"),
        ),
        (Some(Err(e)), _) => (
            Outcome::Retry {
                at_least: None,
                host_unwell: true,
            },
            None,
            e.to_string(),
        ),
        // Blocked or not a public address: never sent, never retried.
        (None, refused) => (Outcome::Permanent, None, refused.unwrap_or_default()),
    };
    let now = now_ms();
    let (next, host_health) = decide(
        &delivery,
        &outcome,
        &state.config.delivery,
        now,
        rand::random(),
    );
    let counted = match next {
        NextStep::Final(deliveries::DONE) => Counted::Delivered,
        NextStep::Final(deliveries::GONE) => Counted::Gone,
        NextStep::Final(_) => Counted::Failed,
        NextStep::RetryAt(_) => Counted::Retried,
    };
    metrics.count(counted);
    if counted == Counted::Delivered {
        metrics.queue_seconds.observe(Duration::from_millis(
            (now - delivery.created_at).max(0) as u64
        ));
    }
    tracing::debug!(inbox = %delivery.inbox, attempt = delivery.attempts + 1, ?status, ?next, "delivery attempt");
    if counted == Counted::Failed {
        tracing::info!(inbox = %delivery.inbox, attempts = delivery.attempts + 1, %error, "delivery given up");
    }
    AttemptRecord {
        id: delivery.id,
        host: delivery.host,
        inbox: delivery.inbox,
        next,
        status,
        error: (counted != Counted::Delivered).then_some(error),
        host_health,
    }
}

/// Why `inbox` must not be contacted at all: its domain is refused by the
/// federation policy, or it is a literal non-public address.
async fn refusal(state: &AppState, inbox: &str) -> Option<String> {
    let url = match url::Url::parse(inbox) {
        Ok(url) => url,
        Err(e) => return Some(format!("invalid inbox URL: {e}")),
    };
    let checks = async {
        state.policies.check_url(&url).await?;
        crate::federation::ssrf::check_target(&url, &state.config).await
    };
    match checks.await {
        Err(Error::Forbidden(reason)) => Some(reason),
        // A database hiccup reading the policy is not a refusal.
        _ => None,
    }
}

/// What follows an attempt's `outcome` at `now`: the delivery's next step
/// and what it says about the host. `jitter` is uniform in [0, 1).
pub fn decide(
    delivery: &DeliveryRow,
    outcome: &Outcome,
    config: &DeliveryConfig,
    now: i64,
    jitter: f64,
) -> (NextStep, HostHealth) {
    match outcome {
        Outcome::Delivered => (NextStep::Final(deliveries::DONE), HostHealth::Answered),
        Outcome::Gone => (NextStep::Final(deliveries::GONE), HostHealth::Answered),
        Outcome::Permanent => (NextStep::Final(deliveries::FAILED), HostHealth::Answered),
        Outcome::Retry {
            at_least,
            host_unwell,
        } => {
            let wait = backoff(
                Duration::from_secs(config.initial_backoff_secs),
                delivery.attempts.max(0) as u32,
                jitter,
            )
            .max(at_least.unwrap_or_default());
            let next = now + wait.as_millis() as i64;
            let give_up_at = delivery.created_at + (config.give_up_after_hours as i64) * 3_600_000;
            let step = if next > give_up_at {
                NextStep::Final(deliveries::FAILED)
            } else {
                NextStep::RetryAt(next)
            };
            let health = if *host_unwell {
                HostHealth::Unwell { probe_at: next }
            } else {
                HostHealth::RateLimited { until: next }
            };
            (step, health)
        }
    }
}

/// POSTs the signed body; returns the status and any `Retry-After`.
/// A host not known to refuse RFC 9421 gets an RFC 9421 signature first;
/// on 400, 401 or 403 the same body goes at once with draft-cavage (the
/// "double knock"), and what worked is remembered for the host.
async fn attempt(
    state: &AppState,
    keys: &SigningKeys,
    inbox: &str,
    actor_id: i64,
    body: String,
) -> Result<(u16, Option<Duration>), Error> {
    let url = url::Url::parse(inbox)?;
    if url.scheme() == "http" && !state.config.federation.allow_http {
        return Err(Error::BadRequest(format!(
            "refusing to deliver to http URL {inbox}"
        )));
    }
    let host = deliveries::host_of(inbox);
    let known = signature_style(state, keys, &host).await?;
    if known != Some(SignatureStyle::Cavage) {
        let answer = post(state, keys, &url, actor_id, &body, SignatureStyle::Rfc9421).await?;
        if !matches!(answer.0, 400 | 401 | 403) {
            if known.is_none() && (200..300).contains(&answer.0) {
                remember_style(state, keys, &host, SignatureStyle::Rfc9421).await?;
            }
            return Ok(answer);
        }
    }
    let answer = post(state, keys, &url, actor_id, &body, SignatureStyle::Cavage).await?;
    if known != Some(SignatureStyle::Cavage) && (200..300).contains(&answer.0) {
        remember_style(state, keys, &host, SignatureStyle::Cavage).await?;
    }
    Ok(answer)
}

/// One signed POST.
async fn post(
    state: &AppState,
    keys: &SigningKeys,
    url: &url::Url,
    actor_id: i64,
    body: &str,
    style: SignatureStyle,
) -> Result<(u16, Option<Duration>), Error> {
    let (key_id, key) = signing_key(state, keys, actor_id).await?;
    let now = SystemTime::now();
    let request = state
        .client
        .post(url.clone())
        .header("Content-Type", "application/activity+json")
        .header("Date", httpdate::fmt_http_date(now));
    let request = match style {
        SignatureStyle::Cavage => {
            let signed = cavage::sign("POST", url, Some(body.as_bytes()), &key_id, &key, now)?;
            request
                .header("Digest", signed.digest.unwrap_or_default())
                .header("Signature", signed.signature)
        }
        SignatureStyle::Rfc9421 => {
            let signed = rfc9421::sign(
                "POST",
                url,
                Some(body.as_bytes()),
                &key_id,
                rfc9421::SigningKey::Rsa(&key),
                now,
            )?;
            request
                .header("Content-Digest", signed.content_digest.unwrap_or_default())
                .header("Signature-Input", signed.signature_input)
                .header("Signature", signed.signature)
        }
    };
    let response = request
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| Error::Internal(format!("delivery to {url} failed: {e}")))?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    Ok((response.status().as_u16(), retry_after))
}

/// The signature style `host` accepted last, if known.
async fn signature_style(
    state: &AppState,
    keys: &SigningKeys,
    host: &str,
) -> Result<Option<SignatureStyle>, Error> {
    if let Some(style) = keys
        .styles
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(host)
    {
        return Ok(Some(*style));
    }
    let lookup = host.to_string();
    let stored = state
        .db
        .run(move |conn| deliveries::signature_style(conn, &lookup))
        .await?
        .and_then(|s| SignatureStyle::parse(&s));
    if let Some(style) = stored {
        keys.styles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), style);
    }
    Ok(stored)
}

async fn remember_style(
    state: &AppState,
    keys: &SigningKeys,
    host: &str,
    style: SignatureStyle,
) -> Result<(), Error> {
    let previous = keys
        .styles
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(host.to_string(), style);
    if previous == Some(style) {
        // Another delivery to this host learnt it first.
        return Ok(());
    }
    let host = host.to_string();
    state
        .db
        .run(move |conn| deliveries::remember_signature_style(conn, &host, style.as_str()))
        .await?;
    Ok(())
}
