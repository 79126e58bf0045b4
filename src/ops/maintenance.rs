//! Upkeep that runs inside `tocsin serve`, once an hour, so that tables
//! which only grow stay bounded:
//!
//! - the ids of received activities older than
//!   `federation.remember_received_days` are forgotten. Senders retry for
//!   days (we give up after a week), and a signature older than
//!   `federation.signature_max_age_secs` is refused, so a forgotten id
//!   comes back only as a fresh copy signed again, which the handlers apply
//!   as they would the first (they are idempotent);
//! - outgoing activities older than `delivery.keep_sent_days`, none of
//!   whose deliveries is still pending, are forgotten with the record of
//!   where they went.

use crate::{
    db::{self, Db, DbConn, DbError},
    state::AppState,
};
use std::time::Duration;
use tokio::sync::watch;

/// How often the upkeep runs.
const EVERY: Duration = Duration::from_secs(3600);

/// The first run waits this long, away from start-up.
const FIRST_AFTER: Duration = Duration::from_secs(60);

/// Rows forgotten in one write: each batch takes the database's write turn
/// briefly, so the inbox writer waits at most one batch.
const BATCH: i64 = 5_000;

/// Outgoing activities forgotten in one write (each with all its
/// deliveries: thousands for a widely followed actor).
const SENT_BATCH: i64 = 200;

const DAY_MS: i64 = 86_400_000;

/// Runs the upkeep a minute after start and then every hour, until
/// `shutdown` turns true.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let received_days = state.config.federation.remember_received_days;
    let sent_days = state.config.delivery.keep_sent_days;
    let mut wait = FIRST_AFTER;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = EVERY;
        let now = db::now_ms();
        let received = forget_received(&state.db, now - days_ms(received_days), &shutdown).await;
        report("old received activity ids", received_days, received);
        let sent = forget_sent(&state.db, now - days_ms(sent_days), &shutdown).await;
        report("old sent activities", sent_days, sent);
    }
}

fn days_ms(days: u64) -> i64 {
    (days as i64).saturating_mul(DAY_MS)
}

/// Logs what one job of the upkeep forgot, or why it could not.
fn report(what: &str, days: u64, outcome: Result<usize, DbError>) {
    match outcome {
        Ok(0) => {}
        Ok(n) => tracing::info!(forgotten = n, days, "forgot {what}"),
        Err(e) => tracing::warn!(error = %e, "cannot forget {what}; next hour again"),
    }
}

/// Forgets every received id recorded before `before_ms`, in batches.
/// Stops early when `shutdown` turns true. Returns how many ids went.
pub async fn forget_received(
    db: &Db,
    before_ms: i64,
    shutdown: &watch::Receiver<bool>,
) -> Result<usize, DbError> {
    in_batches(
        db,
        BATCH,
        shutdown,
        move |conn| db::activities::received_before(conn, before_ms, BATCH),
        db::activities::forget_received,
    )
    .await
}

/// Forgets every outgoing activity stored before `before_ms` that has no
/// pending delivery, with its deliveries, in batches. Stops early when
/// `shutdown` turns true. Returns how many activities went.
pub async fn forget_sent(
    db: &Db,
    before_ms: i64,
    shutdown: &watch::Receiver<bool>,
) -> Result<usize, DbError> {
    in_batches(
        db,
        SENT_BATCH,
        shutdown,
        move |conn| db::deliveries::sent_before(conn, before_ms, SENT_BATCH),
        db::deliveries::forget_sent,
    )
    .await
}

/// Forgets rows batch by batch: each batch of up to `batch` keys is found
/// by `find`, a read (which does not hold up the inbox's writer, even when
/// it scans a whole table and finds nothing), and forgotten by `forget` in
/// a short write turn. Stops when a batch comes back short, or when
/// `shutdown` turns true.
async fn in_batches<K, F, G>(
    db: &Db,
    batch: i64,
    shutdown: &watch::Receiver<bool>,
    find: F,
    forget: G,
) -> Result<usize, DbError>
where
    K: Send + 'static,
    F: Fn(&mut DbConn) -> Result<Vec<K>, DbError> + Clone + Send + 'static,
    G: Fn(&mut DbConn, &[K]) -> Result<usize, DbError> + Clone + Send + 'static,
{
    let mut total = 0;
    loop {
        let old = db.run(find.clone()).await?;
        if old.is_empty() {
            return Ok(total);
        }
        let whole = old.len() as i64 == batch;
        let forget = forget.clone();
        total += db.write(move |conn| forget(conn, &old)).await?;
        if !whole || *shutdown.borrow() {
            return Ok(total);
        }
    }
}
