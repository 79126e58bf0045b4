//! Sending a published issue to its subscribers, resumably.
//!
//! One sender per issue holds it with a lease (`mail_runs`). It claims
//! batches of recipients (rows `sending`), hands each message to the SMTP
//! server at the configured rate over `[mail] connections` connections, and
//! marks each row `sent` right after the server's 250 to its DATA. A row
//! left `sending` by a sender that stopped is sent again, with the same
//! Message-ID, by the next one: nobody is skipped, and a message goes out
//! twice only if the process stopped between the server's 250 and the
//! commit of `sent`.

use super::{message, templates::IssueContent, MailError, Mailer};
use crate::{
    alerts::taxonomy::Taxonomy,
    db::{
        alerts::split_list,
        publications::{
            self, MailProgress, Recipient, RunState, PUBLISHED, SEND_FAILED, SEND_SKIPPED,
        },
        subscribers, Db, DbError,
    },
};
use futures::TryStreamExt;
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use thiserror::Error;
use tokio::sync::Mutex;

/// Why sending stopped.
#[derive(Debug, Error)]
pub enum SendError {
    /// The issue is a draft.
    #[error("issue {0} is not published")]
    NotPublished(i64),
    /// Another sender holds the issue.
    #[error("issue {0} is being sent by another process; try again when its lease ([mail] lease_secs) has run out")]
    Busy(i64),
    /// Every recipient of the issue has been dealt with already.
    #[error("issue {0} was sent completely")]
    Finished(i64),
    /// Mail failed in a way that stops the run (server down, 4xx); what
    /// was not accepted is sent when the command runs again.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// Messages the server accepted.
    pub sent: usize,
    /// Messages the server refused for good; those subscribers are paused.
    pub failed: usize,
    /// Subscribers with nothing in their regions.
    pub skipped: usize,
}

/// How a send is paced.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Messages per second at most; 0 for no limit.
    pub rate: f64,
    /// Recipients claimed per transaction.
    pub batch_size: i64,
    /// Messages in flight at once.
    pub connections: usize,
    /// How long the issue is held between renewals.
    pub lease: Duration,
}

impl Pace {
    /// The pace configured in `[mail]`.
    pub fn from_config(config: &crate::config::MailConfig) -> Pace {
        Pace {
            rate: config.rate,
            batch_size: config.batch_size,
            connections: config.connections as usize,
            lease: Duration::from_secs(config.lease_secs),
        }
    }
}

/// Hands out send times `1 / rate` apart.
struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            interval: (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate)),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// Sends a published issue to every confirmed subscriber of its
/// publication and language who has not received it, then marks the issue
/// sent completely. `progress` is called after every batch with the
/// numbers so far.
pub async fn send_issue(
    db: &Db,
    mailer: &Mailer,
    taxonomy: &Taxonomy,
    issue_id: i64,
    pace: Pace,
    progress: &(dyn Fn(&SendReport) + Sync),
) -> Result<SendReport, SendError> {
    let (issue, items) = db
        .run(move |conn| {
            let issue = publications::issue(conn, issue_id)?;
            let items = publications::items(conn, issue_id)?;
            Ok((issue, items))
        })
        .await?;
    if issue.state != PUBLISHED {
        return Err(SendError::NotPublished(issue_id));
    }
    if db
        .run(move |conn| publications::send_finished_at(conn, issue_id))
        .await?
        .is_some()
    {
        return Err(SendError::Finished(issue_id));
    }
    let content = IssueContent::new(&issue, &items, taxonomy);
    let holder = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4().simple());
    let lease_ms = pace.lease.as_millis() as i64;
    let take = |holder: String| {
        db.run(move |conn| publications::take_issue(conn, issue_id, &holder, lease_ms))
    };
    if !take(holder.clone()).await? {
        return Err(SendError::Busy(issue_id));
    }
    tracing::info!(issue = issue_id, "sending started");
    let result = send_batches(db, mailer, &content, issue_id, pace, &holder, progress).await;
    let finished = result.is_ok();
    let release = holder.clone();
    db.run(move |conn| publications::release_issue(conn, issue_id, &release, finished))
        .await?;
    match &result {
        Ok(r) => tracing::info!(
            issue = issue_id,
            sent = r.sent,
            failed = r.failed,
            skipped = r.skipped,
            "sending finished"
        ),
        Err(e) => tracing::warn!(issue = issue_id, error = %e, "sending stopped"),
    }
    result
}

/// Counters shared by the concurrent sends of a batch.
#[derive(Default)]
struct Counters {
    sent: AtomicUsize,
    failed: AtomicUsize,
    skipped: AtomicUsize,
}

impl Counters {
    fn report(&self) -> SendReport {
        SendReport {
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }
}

async fn send_batches(
    db: &Db,
    mailer: &Mailer,
    content: &IssueContent,
    issue_id: i64,
    pace: Pace,
    holder: &str,
    progress: &(dyn Fn(&SendReport) + Sync),
) -> Result<SendReport, SendError> {
    let pacer = Pacer::new(pace.rate);
    let counters = Arc::new(Counters::default());
    let lease_ms = pace.lease.as_millis() as i64;
    loop {
        let renew = holder.to_string();
        if !db
            .run(move |conn| publications::take_issue(conn, issue_id, &renew, lease_ms))
            .await?
        {
            return Err(SendError::Busy(issue_id));
        }
        let limit = pace.batch_size;
        let batch = db
            .run(move |conn| publications::claim_batch(conn, issue_id, limit))
            .await?;
        if batch.is_empty() {
            return Ok(counters.report());
        }
        futures::stream::iter(batch.into_iter().map(Ok::<Recipient, SendError>))
            .try_for_each_concurrent(pace.connections.max(1), |r| {
                let counters = counters.clone();
                let pacer = &pacer;
                async move { send_one(db, mailer, content, issue_id, r, pacer, &counters).await }
            })
            .await?;
        progress(&counters.report());
    }
}

async fn send_one(
    db: &Db,
    mailer: &Mailer,
    content: &IssueContent,
    issue_id: i64,
    r: Recipient,
    pacer: &Pacer,
    counters: &Counters,
) -> Result<(), SendError> {
    let subscriber = r.id;
    let regions = split_list(&r.regions);
    let Some(body) = content.render_for(mailer, &regions, &r.token)? else {
        db.run(move |conn| publications::mark_send(conn, issue_id, subscriber, SEND_SKIPPED))
            .await?;
        counters.skipped.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    let message_id = message::issue_message_id(mailer, issue_id, subscriber);
    let built = message::build(mailer, &r.email, body, Some(message_id), Some(&r.token));
    pacer.wait().await;
    let outcome = match built {
        Ok(m) => mailer.send(m).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => {
            db.run(move |conn| publications::mark_sent(conn, issue_id, subscriber))
                .await?;
            counters.sent.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(MailError::Permanent(why)) => {
            tracing::warn!(issue = issue_id, subscriber, %why, "message refused; subscriber paused");
            let reason = format!("hard bounce: {why}");
            db.run(move |conn| {
                crate::db::transaction(conn, |conn| {
                    publications::mark_send(conn, issue_id, subscriber, SEND_FAILED)?;
                    subscribers::pause_id(conn, subscriber, &reason)
                })
            })
            .await?;
            counters.failed.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Starts sending a published issue in this process's background: the
/// same resumable run as `tocsin digest send`, under the same lease, so a
/// second start (a double click, or a command already at work) is refused
/// with [`SendError::Busy`] by the run itself and sends nothing twice.
pub fn start_in_background(
    db: Db,
    mailer: Mailer,
    taxonomy: Taxonomy,
    issue_id: i64,
    pace: Pace,
) -> tokio::task::JoinHandle<Result<SendReport, SendError>> {
    tokio::spawn(async move {
        let progress = |r: &SendReport| {
            tracing::info!(
                issue = issue_id,
                sent = r.sent,
                failed = r.failed,
                skipped = r.skipped,
                "sending: batch done"
            );
        };
        send_issue(&db, &mailer, &taxonomy, issue_id, pace, &progress).await
    })
}

/// A time in UTC for the status lines.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// The mail line of `tocsin digest status` for one issue: the figures the
/// issue's web page shows.
pub fn status_line(id: i64, p: &MailProgress, now: i64) -> String {
    let run = match p.run_state(now) {
        RunState::NotStarted => "not started".to_string(),
        RunState::Sending => "sending now".to_string(),
        RunState::Stopped => "stopped: run `tocsin digest send` again to continue".to_string(),
        RunState::Finished => "finished".to_string(),
    };
    let mut when = String::new();
    if let Some(started) = p.started_at {
        when = format!("; started {}", utc(started));
    }
    if let Some(finished) = p.finished_at {
        when = format!("{when}, finished {}", utc(finished));
    }
    format!(
        "mail issue {id}: {} sent, {} sending, {} refused, {} skipped, {} waiting, {} paused; {run}{when}",
        p.sent, p.sending, p.failed, p.skipped, p.waiting, p.paused
    )
}

/// The mail lines of `tocsin digest status` for the issues `ids` that were
/// ever sent (see [`status_line`]).
pub async fn status_report(db: &Db, ids: &[i64]) -> Result<String, DbError> {
    let ids = ids.to_vec();
    let rows = db
        .run(move |conn| {
            let mut rows = Vec::new();
            for id in ids {
                let progress = publications::mail_progress(conn, id)?;
                if progress.started_at.is_some() {
                    rows.push((id, progress));
                }
            }
            Ok(rows)
        })
        .await?;
    let now = crate::db::now_ms();
    Ok(rows
        .iter()
        .map(|(id, p)| status_line(*id, p, now) + "\n")
        .collect())
}
