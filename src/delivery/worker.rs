//! The delivery worker: claims due deliveries from the database, signs each
//! request (draft-cavage, RSA via aws-lc-rs, parsed keys cached) and records
//! the outcome. Bounded in total and per host.

use super::retry::{backoff, classify, parse_retry_after, Outcome};
use crate::{
    db::{self, deliveries, deliveries::ClaimedDelivery, now_ms},
    error::Error,
    signatures::cavage,
    state::AppState,
};
use aws_lc_rs::rsa::KeyPair;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};
use tokio::{
    sync::{watch, Semaphore},
    task::JoinSet,
};

/// How long a claimed delivery stays ours before another worker may take it.
const LEASE: Duration = Duration::from_secs(300);
/// How often the worker looks for due retries when nothing wakes it.
const POLL: Duration = Duration::from_millis(1000);
/// How long shutdown waits for in-flight deliveries before handing them back.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

type SigningKeys = Arc<Mutex<HashMap<i64, (String, Arc<KeyPair>)>>>;

/// Runs until `shutdown` turns true, then finishes or hands back what is in
/// flight.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let total = Arc::new(Semaphore::new(state.config.delivery.concurrency));
    let per_host: Arc<Mutex<HashMap<String, Arc<Semaphore>>>> = Default::default();
    let keys: SigningKeys = Default::default();
    let mut tasks = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        let free = total.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            let limit = free as i64;
            match state
                .db
                .run(move |conn| deliveries::claim_due(conn, limit, LEASE.as_millis() as i64))
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming deliveries failed");
                    Vec::new()
                }
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = state.delivery_wakeup.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
            continue;
        }
        for claim in claimed {
            let host_sem = {
                let mut map = per_host.lock().unwrap_or_else(|p| p.into_inner());
                map.entry(claim.delivery.host.clone())
                    .or_insert_with(|| {
                        Arc::new(Semaphore::new(state.config.delivery.per_host_concurrency))
                    })
                    .clone()
            };
            let (state, total, keys) = (state.clone(), total.clone(), keys.clone());
            tasks.spawn(async move {
                let Ok(_host) = host_sem.acquire_owned().await else {
                    return;
                };
                let Ok(_slot) = total.acquire_owned().await else {
                    return;
                };
                deliver(&state, &keys, claim).await;
            });
        }
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!("deliveries still in flight at shutdown; their leases will expire and they will be retried");
        tasks.abort_all();
    }
}

async fn signing_key(
    state: &AppState,
    keys: &SigningKeys,
    actor_id: i64,
) -> Result<(String, Arc<KeyPair>), Error> {
    if let Some(found) = keys
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
    keys.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(actor_id, entry.clone());
    Ok(entry)
}

/// Sends one delivery and records what happened.
async fn deliver(state: &AppState, keys: &SigningKeys, claim: ClaimedDelivery) {
    let ClaimedDelivery {
        delivery,
        json,
        actor_id,
    } = claim;
    let result = attempt(state, keys, &delivery.inbox, actor_id, json).await;
    let (outcome, status, error) = match result {
        Ok((status, retry_after)) => (
            classify(status, retry_after),
            Some(status as i32),
            format!("HTTP {status}"),
        ),
        Err(e) => (
            Outcome::Retry {
                at_least: None,
                host_unwell: true,
            },
            None,
            e.to_string(),
        ),
    };
    tracing::debug!(inbox = %delivery.inbox, ?outcome, "delivery attempt");
    let config = state.config.delivery.clone();
    let record = move |conn: &mut db::DbConn| -> Result<(), db::DbError> {
        let now = now_ms();
        match outcome {
            Outcome::Delivered => {
                deliveries::finish(conn, delivery.id, deliveries::DONE, status, None)?;
                deliveries::host_succeeded(conn, &delivery.host)?;
            }
            Outcome::Gone => {
                deliveries::finish(conn, delivery.id, deliveries::GONE, status, Some(&error))?;
                db::follows::remove_followers_at_inbox(conn, &delivery.inbox)?;
            }
            Outcome::Permanent => {
                deliveries::finish(conn, delivery.id, deliveries::FAILED, status, Some(&error))?;
            }
            Outcome::Retry {
                at_least,
                host_unwell,
            } => {
                let give_up_at =
                    delivery.created_at + (config.give_up_after_hours as i64) * 3_600_000;
                let wait = backoff(
                    Duration::from_secs(config.initial_backoff_secs),
                    delivery.attempts.max(0) as u32,
                    rand::random::<f64>(),
                )
                .max(at_least.unwrap_or_default());
                let next = now + wait.as_millis() as i64;
                if next > give_up_at {
                    let reason =
                        format!("gave up after {} attempts: {error}", delivery.attempts + 1);
                    deliveries::finish(
                        conn,
                        delivery.id,
                        deliveries::FAILED,
                        status,
                        Some(&reason),
                    )?;
                } else {
                    deliveries::retry_at(conn, delivery.id, next, status, &error)?;
                }
                if host_unwell {
                    deliveries::host_failed(
                        conn,
                        &delivery.host,
                        config.host_down_after_failures,
                        next,
                    )?;
                }
            }
        }
        Ok(())
    };
    if let Err(e) = state.db.run(record).await {
        tracing::error!(error = %e, "recording a delivery outcome failed; its lease will expire and it will be retried");
    }
}

/// POSTs the signed body; returns the status and any `Retry-After`.
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
    let (key_id, key) = signing_key(state, keys, actor_id).await?;
    let now = SystemTime::now();
    let signed = cavage::sign("POST", &url, Some(body.as_bytes()), &key_id, &key, now)?;
    let response = state
        .client
        .post(url)
        .header("Content-Type", "application/activity+json")
        .header("Date", signed.date)
        .header("Digest", signed.digest.unwrap_or_default())
        .header("Signature", signed.signature)
        .body(body)
        .send()
        .await
        .map_err(|e| Error::Internal(format!("delivery to {inbox} failed: {e}")))?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    Ok((response.status().as_u16(), retry_after))
}
