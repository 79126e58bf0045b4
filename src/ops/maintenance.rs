//! Upkeep that runs inside `tocsin serve`: once an hour, the ids of
//! received activities older than `federation.remember_received_days` are
//! forgotten, so the table that drops copies of an activity does not grow
//! without bound. Senders retry for days (we give up after a week), and a
//! signature older than `federation.signature_max_age_secs` is refused, so
//! a forgotten id comes back only as a fresh copy signed again, which the
//! handlers apply as they would the first (they are idempotent).

use crate::{
    db::{self, Db, DbError},
    state::AppState,
};
use std::time::Duration;
use tokio::sync::watch;

/// How often the upkeep runs.
const EVERY: Duration = Duration::from_secs(3600);

/// The first run waits this long, away from start-up.
const FIRST_AFTER: Duration = Duration::from_secs(60);

/// Ids forgotten in one write: each batch takes the database's write turn
/// briefly, so the inbox writer waits at most one batch.
const BATCH: i64 = 5_000;

/// Runs the upkeep a minute after start and then every hour, until
/// `shutdown` turns true.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let days = state.config.federation.remember_received_days;
    let mut wait = FIRST_AFTER;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = EVERY;
        let before = db::now_ms() - (days as i64).saturating_mul(86_400_000);
        match forget_received(&state.db, before, &shutdown).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(forgotten = n, days, "forgot old received activity ids"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot forget old received activity ids; next hour again")
            }
        }
    }
}

/// Forgets every received id recorded before `before_ms`, in batches:
/// each batch is found by a read (which does not hold up the inbox's
/// writer) and forgotten in a short write turn. Stops early when
/// `shutdown` turns true. Returns how many ids went.
pub async fn forget_received(
    db: &Db,
    before_ms: i64,
    shutdown: &watch::Receiver<bool>,
) -> Result<usize, DbError> {
    let mut total = 0;
    loop {
        let old = db
            .run(move |conn| db::activities::received_before(conn, before_ms, BATCH))
            .await?;
        if old.is_empty() {
            return Ok(total);
        }
        let whole = old.len() as i64 == BATCH;
        total += db
            .write(move |conn| db::activities::forget_received(conn, &old))
            .await?;
        if !whole || *shutdown.borrow() {
            return Ok(total);
        }
    }
}
