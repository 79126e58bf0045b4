//! The durable inbox queue. The inbox stores each accepted activity (after
//! its cheap checks, HTTP signature, shape and duplicate checks) and
//! answers 202 only once the row is committed; workers claim rows under a
//! lease and apply them. Enqueues arriving within a few milliseconds share
//! one transaction.
//!
//! Two lanes: Creates and Updates of alerts, the bulk of a busy inbox, are
//! claimed and applied many to one transaction (see
//! [`super::inbox_batch`]); every other activity is applied one at a time
//! by `[inbox] workers` tasks.

use super::{inbox::apply_queued, inbox_batch};
use crate::{
    config::InboxConfig,
    db::{
        inbox_queue::{self, NewQueued, Outcome, QueuedRow},
        now_ms, Db,
    },
    error::Error,
    state::Data,
};
use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    sync::{mpsc, oneshot, watch, Notify, Semaphore},
    task::JoinSet,
};

/// How often workers look for due retries when nothing wakes them.
const POLL: Duration = Duration::from_millis(1000);
/// How long shutdown waits for activities being applied.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Most enqueues written in one transaction.
const MAX_BATCH: usize = 512;
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

type Reply = oneshot::Sender<Result<bool, Error>>;

/// How many stored activity ids are remembered in memory.
const RECENT_IDS: usize = 16_384;

/// The ids of the activities stored (or found stored) last, oldest first.
#[derive(Default)]
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

/// Stores accepted activities, batching concurrent enqueues.
#[derive(Clone)]
pub struct Enqueuer {
    db: Db,
    batch: Option<mpsc::UnboundedSender<(NewQueued, Reply)>>,
    recent: Arc<Mutex<RecentIds>>,
    /// Wakes the one-at-a-time workers when something is stored for them.
    pub wakeup: Arc<Notify>,
    /// Wakes the batch lane when a Create or Update of an alert is stored.
    pub wakeup_batch: Arc<Notify>,
}

impl Enqueuer {
    /// A queue on `db`; with `batch_ms` > 0, enqueues arriving within that
    /// many milliseconds of the first share one transaction.
    pub fn new(db: Db, batch_ms: u64) -> Enqueuer {
        let wakeup = Arc::new(Notify::new());
        let wakeup_batch = Arc::new(Notify::new());
        let batch = (batch_ms > 0).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let wake = Wake {
                single: wakeup.clone(),
                batch: wakeup_batch.clone(),
            };
            tokio::spawn(write_batches(
                db.clone(),
                rx,
                Duration::from_millis(batch_ms),
                wake,
            ));
            tx
        });
        Enqueuer {
            db,
            batch,
            recent: Default::default(),
            wakeup,
            wakeup_batch,
        }
    }

    /// True when an activity with this id was stored lately: a copy can
    /// be dropped before any work (the queue's own check is the guarantee).
    pub fn stored_lately(&self, ap_id: &str) -> bool {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set
            .contains(ap_id)
    }

    fn remember(&self, ap_id: String) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.set.insert(ap_id.clone()) {
            recent.order.push_back(ap_id);
            if recent.order.len() > RECENT_IDS {
                if let Some(old) = recent.order.pop_front() {
                    recent.set.remove(&old);
                }
            }
        }
    }

    /// Stores `item`, committed when this returns; false if an activity
    /// with the same id is already queued or was received before.
    pub async fn enqueue(&self, item: NewQueued) -> Result<bool, Error> {
        let ap_id = item.ap_id.clone();
        let stored = self.store(item).await?;
        self.remember(ap_id);
        Ok(stored)
    }

    async fn store(&self, item: NewQueued) -> Result<bool, Error> {
        if let Some(batch) = &self.batch {
            let (reply, answer) = oneshot::channel();
            if batch.send((item, reply)).is_ok() {
                return answer
                    .await
                    .map_err(|_| Error::Internal("the inbox queue writer stopped".into()))?;
            }
            return Err(Error::Internal("the inbox queue writer stopped".into()));
        }
        let lane = item.batch;
        let stored = self
            .db
            .write(move |conn| inbox_queue::enqueue(conn, std::slice::from_ref(&item)))
            .await?;
        match lane {
            true => self.wakeup_batch.notify_one(),
            false => self.wakeup.notify_one(),
        }
        Ok(stored[0])
    }
}

/// The lanes' wake-ups, for the enqueue writer.
struct Wake {
    single: Arc<Notify>,
    batch: Arc<Notify>,
}

/// Collects enqueues for up to `window` after the first and writes them in
/// one transaction.
async fn write_batches(
    db: Db,
    mut rx: mpsc::UnboundedReceiver<(NewQueued, Reply)>,
    window: Duration,
    wake: Wake,
) {
    while let Some(first) = rx.recv().await {
        let mut pending = vec![first];
        let deadline = tokio::time::Instant::now() + window;
        while pending.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(next)) => pending.push(next),
                Ok(None) | Err(_) => break,
            }
        }
        let (items, replies): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
        let lanes: Vec<bool> = items.iter().map(|i| i.batch).collect();
        match db
            .write(move |conn| inbox_queue::enqueue(conn, &items))
            .await
        {
            Ok(stored) => {
                let stored_in =
                    |lane: bool| lanes.iter().zip(&stored).any(|(l, s)| *l == lane && *s);
                if stored_in(true) {
                    wake.batch.notify_one();
                }
                if stored_in(false) {
                    wake.single.notify_one();
                }
                for (reply, new) in replies.into_iter().zip(stored) {
                    let _ = reply.send(Ok(new));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Internal(message.clone())));
                }
            }
        }
    }
}

/// Runs both lanes until `shutdown` turns true.
pub async fn run(data: Data, shutdown: watch::Receiver<bool>) {
    tokio::join!(
        run_single(data.clone(), shutdown.clone()),
        run_batches(data, shutdown)
    );
}

/// The batch lane: claims up to [`inbox_batch::CLAIM`] Creates and Updates
/// of alerts at a time and applies them together. Claims commit one after
/// another, in order (one writer, as SQLite wants), but the next claim is
/// parsed and prepared while the previous one commits.
async fn run_batches(data: Data, mut shutdown: watch::Receiver<bool>) {
    let lease_ms = Duration::from_secs(data.config.inbox.lease_secs).as_millis() as i64;
    let wakeup = data.inbox.wakeup_batch.clone();
    let mut committing: Option<tokio::task::JoinHandle<()>> = None;
    while !*shutdown.borrow() {
        let claimed = data
            .db
            .write(move |conn| inbox_queue::claim_due(conn, true, inbox_batch::CLAIM, lease_ms))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "claiming inbox activities failed");
                Vec::new()
            });
        let drained = (claimed.len() as i64) < inbox_batch::CLAIM;
        if !claimed.is_empty() {
            let ready = inbox_batch::prepare(&data, claimed).await;
            if let Some(previous) = committing.take() {
                let _ = previous.await;
            }
            let data = data.clone();
            committing = Some(tokio::spawn(async move {
                inbox_batch::commit(&data, ready).await
            }));
        }
        if drained {
            if let Some(previous) = committing.take() {
                let _ = previous.await;
            }
            tokio::select! {
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    if let Some(previous) = committing.take() {
        let _ = previous.await;
    }
}

/// The one-at-a-time lane: `[inbox] workers` activities in flight.
async fn run_single(data: Data, mut shutdown: watch::Receiver<bool>) {
    let config = data.config.inbox.clone();
    let slots = Arc::new(Semaphore::new(config.workers));
    let lease_ms = Duration::from_secs(config.lease_secs).as_millis() as i64;
    let (outcomes, outcomes_rx) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(data.db.clone(), outcomes_rx));
    let wakeup = data.inbox.wakeup.clone();
    let mut tasks = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        let mut free = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = shutdown.changed() => continue,
        };
        while let Ok(more) = slots.clone().try_acquire_owned() {
            free.merge(more);
        }
        let limit = free.num_permits() as i64;
        let claimed = data
            .db
            .write(move |conn| inbox_queue::claim_due(conn, false, limit, lease_ms))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "claiming inbox activities failed");
                Vec::new()
            });
        let drained = (claimed.len() as i64) < limit;
        for row in claimed {
            let Some(slot) = free.split(1) else { break };
            let (data, outcomes, config) = (data.clone(), outcomes.clone(), config.clone());
            tasks.spawn(async move {
                let _slot = slot;
                let outcome = apply(&row, &data, &config).await;
                let _ = outcomes.send((row.id, row.ap_id, outcome));
            });
        }
        drop(free);
        if drained {
            tokio::select! {
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    drop(outcomes);
    let _ = recorder.await;
}

/// Applies one claimed activity and says what to record.
async fn apply(row: &QueuedRow, data: &Data, config: &InboxConfig) -> Outcome {
    let applied = apply_queued(row.body.as_bytes(), data).await;
    // A follower, a boost or a removed actor changes what we serve.
    data.reads.invalidate();
    match applied {
        Ok(()) => Outcome::Done,
        Err(e) => {
            let attempts = row.attempts as u32 + 1;
            let error = e.to_string();
            if is_transient(&e) && attempts < config.max_attempts {
                let delay = Duration::from_secs(config.initial_backoff_secs)
                    .saturating_mul(1 << attempts.min(20).saturating_sub(1))
                    .min(MAX_BACKOFF);
                tracing::info!(activity = %row.ap_id, attempts, %error, "inbox activity will be retried");
                Outcome::Retry {
                    error,
                    at: now_ms() + delay.as_millis() as i64,
                }
            } else {
                tracing::warn!(activity = %row.ap_id, attempts, %error, "inbox activity given up");
                Outcome::Failed(error)
            }
        }
    }
}

/// Failures that may pass: a remote fetch or the database.
fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Federation(_) | Error::Db(_) | Error::Internal(_))
}

/// Writes outcomes, all those waiting in one transaction.
async fn record_outcomes(db: Db, mut rx: mpsc::UnboundedReceiver<(i64, String, Outcome)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if let Err(e) = db
            .write(move |conn| inbox_queue::record(conn, &batch))
            .await
        {
            tracing::warn!(error = %e, "recording inbox outcomes failed; the leases will expire");
        }
    }
}
