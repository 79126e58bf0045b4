//! The durable inbox queue. The inbox hands each accepted activity (after
//! its cheap checks, HTTP signature, shape and duplicate checks) to the
//! writer ([`super::inbox_writer`]) and answers 202 once the activity is
//! in the journal ([`super::inbox_journal`]), or, without a journal (or
//! with [`JOURNAL_BACKLOG`] activities journaled and not yet committed),
//! once the writer's transaction is committed. Activities arriving within
//! a few milliseconds share one transaction, and in it a Create or Update
//! of an alert whose author we know is applied at once (see
//! [`super::inbox_batch`]); every other activity is queued, and workers
//! claim queued rows under a lease and apply them.
//!
//! Two lanes: Creates and Updates of alerts that were queued (the writer
//! does not apply at once when `[inbox] enqueue_batch_ms` is 0, or when its
//! group failed) are claimed and applied many to one transaction; every
//! other activity is applied one at a time by `[inbox] workers` tasks.

use super::{
    inbox::apply_queued,
    inbox_batch::{self, Accepted, AcceptedItem, Followups},
    inbox_journal::Journal,
    inbox_writer::{self, Handed, Reply, Wakes},
};
use crate::{
    config::InboxConfig,
    db::{
        inbox_queue::{self, NewQueued, Outcome, QueuedRow},
        now_ms, Db,
    },
    error::Error,
    state::Data,
    web::read_cache::ReadCache,
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
pub(super) const MAX_BATCH: usize = 512;
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// Most activities answered from the journal and not yet committed: past
/// it, requests wait for their commit, which bounds the memory the writer's
/// backlog holds (a few kilobytes an activity).
pub const JOURNAL_BACKLOG: usize = 2048;

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
    batch: Option<std::sync::mpsc::Sender<Handed>>,
    /// Where accepted activities are appended before their 202, when the
    /// writer runs.
    journal: Option<Arc<Journal>>,
    recent: Arc<Mutex<RecentIds>>,
    /// The alerts the writer stored, for [`run`] to curate.
    followups: Arc<Mutex<Option<mpsc::UnboundedReceiver<Followups>>>>,
    /// Wakes the one-at-a-time workers when something is stored for them.
    pub wakeup: Arc<Notify>,
    /// Wakes the batch lane when a Create or Update of an alert is queued.
    pub wakeup_batch: Arc<Notify>,
}

impl Enqueuer {
    /// A queue on `db`; with `batch_ms` > 0, enqueues arriving within that
    /// many milliseconds of the first share one transaction, which applies
    /// Creates and Updates of alerts at once (and empties `reads`, the
    /// prepared public answers, when it stores one), and with a `journal`
    /// they are answered once journaled.
    pub fn new(
        db: Db,
        batch_ms: u64,
        reads: Arc<ReadCache>,
        journal: Option<Arc<Journal>>,
    ) -> Enqueuer {
        let wakeup = Arc::new(Notify::new());
        let wakeup_batch = Arc::new(Notify::new());
        let (followups, followups_rx) = mpsc::unbounded_channel();
        let batch = (batch_ms > 0)
            .then(|| {
                let wakes = Wakes {
                    single: wakeup.clone(),
                    batch: wakeup_batch.clone(),
                    reads,
                    followups,
                    journal: journal.clone(),
                };
                inbox_writer::start(db.clone(), Duration::from_millis(batch_ms), wakes)
            })
            .flatten();
        Enqueuer {
            journal: journal.filter(|_| batch.is_some()),
            db,
            batch,
            recent: Default::default(),
            followups: Arc::new(Mutex::new(Some(followups_rx))),
            wakeup,
            wakeup_batch,
        }
    }

    /// True when the writer applies Creates and Updates of alerts at once:
    /// the inbox then hands them over parsed and prepared.
    pub fn applies_at_once(&self) -> bool {
        self.batch.is_some()
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

    /// Stores `accepted` (applied or queued), committed when this returns;
    /// false if an activity with the same id is already queued or was
    /// received before.
    pub async fn enqueue(&self, accepted: Box<Accepted>) -> Result<bool, Error> {
        let ap_id = accepted.item.ap_id.clone();
        let stored = self.store(accepted).await?;
        self.remember(ap_id);
        Ok(stored)
    }

    /// How many activities were answered from the journal and are not
    /// committed yet.
    pub fn journaled(&self) -> usize {
        self.journal.as_ref().map_or(0, |j| j.uncommitted())
    }

    /// Waits (at most `grace`) until every journaled activity is
    /// committed: at shutdown, after the last request.
    pub async fn settle(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.journaled() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn store(&self, accepted: Box<Accepted>) -> Result<bool, Error> {
        if let Some(batch) = &self.batch {
            if let Some(journal) = &self.journal {
                match journal.append(&accepted.item, JOURNAL_BACKLOG) {
                    // Journaled: it survives the process from now on. A
                    // copy is known only later; it changes nothing.
                    Ok(Some(ticket)) => {
                        return match batch.send((accepted, Reply::Journaled(ticket))) {
                            Ok(()) => Ok(true),
                            // Queued by the next start.
                            Err(_) => Err(Error::Internal("the inbox queue writer stopped".into())),
                        };
                    }
                    // The writer is that far behind: this one waits.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot journal an accepted activity; its answer waits for the commit")
                    }
                }
            }
            let (reply, answer) = oneshot::channel();
            if batch.send((accepted, Reply::Waiting(reply))).is_ok() {
                return answer
                    .await
                    .map_err(|_| Error::Internal("the inbox queue writer stopped".into()))?;
            }
            return Err(Error::Internal("the inbox queue writer stopped".into()));
        }
        let lane = accepted.item.batch;
        let item = accepted.item.queued(lane);
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

    /// The writer's stored alerts to curate; `None` after the first call.
    fn take_followups(&self) -> Option<mpsc::UnboundedReceiver<Followups>> {
        self.followups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// Queues what a stopped process left in the journal, in one
/// transaction (a copy of an activity queued or received is skipped).
pub async fn queue_recovered(db: &Db, recovered: Vec<AcceptedItem>) -> Result<usize, Error> {
    let items: Vec<NewQueued> = recovered.iter().map(|r| r.queued(r.batch)).collect();
    let stored = db
        .write(move |conn| inbox_queue::enqueue(conn, &items))
        .await?;
    Ok(stored.into_iter().filter(|new| *new).count())
}

/// Runs both lanes, and the curation of what the writer stored, until
/// `shutdown` turns true.
pub async fn run(data: Data, shutdown: watch::Receiver<bool>) {
    let followups = data.inbox.take_followups();
    let started = crate::db::now_ms();
    tokio::join!(
        run_single(data.clone(), shutdown.clone()),
        run_batches(data.clone(), shutdown.clone()),
        run_followups(data, followups, started, shutdown)
    );
}

/// Curates the alerts the writer stored, in the order it stored them,
/// after those a stopped process left uncurated (recorded before
/// `started`); at shutdown (the HTTP server has stopped: nothing more is
/// written), what is left is curated first.
async fn run_followups(
    data: Data,
    rx: Option<mpsc::UnboundedReceiver<Followups>>,
    started: i64,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(mut rx) = rx else { return };
    // What a process that stopped left uncurated comes first; what this
    // one stores meanwhile waits in the channel.
    match inbox_batch::curate_left_over(&data, started).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            alerts = n,
            "curated alerts a stopped process left uncurated"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot curate alerts left uncurated; next start again")
        }
    }
    while !*shutdown.borrow() {
        tokio::select! {
            next = rx.recv() => match next {
                Some(followups) => followups.run(&data).await,
                None => return,
            },
            _ = shutdown.changed() => {}
        }
    }
    while let Ok(followups) = rx.try_recv() {
        followups.run(&data).await;
    }
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
