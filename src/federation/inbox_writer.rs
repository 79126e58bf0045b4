//! The inbox's writer: threads of their own that store what the inbox
//! accepted, many activities to a transaction, and answer each request once
//! its transaction is committed (see [`super::inbox_queue`]).
//!
//! A thread, not a task: a task handed each transaction to tokio's
//! blocking pool, and waking a pool thread on a busy machine took about
//! half a millisecond, a third of the time a group of twenty activities
//! took to write (docs/performance.md). The writer's thread goes straight
//! from one commit to the next group while activities keep coming, and
//! keeps one connection whose page cache and prepared statements stay
//! warm. One thread on SQLite, which has one writer at a time; on
//! PostgreSQL up to four, each with its own connection.
//!
//! With the inbox's journal ([`super::inbox_journal`]) a request was
//! answered once its activity was journaled: the writer then hands the
//! record back after the commit, and gathers such activities into larger
//! groups, since nobody waits for them. A group whose transaction fails
//! keeps them and writes them again, alone, before the next group (they
//! are still in the journal should the process stop first).

use super::{
    inbox_batch::{self, Accepted, Followups, Written},
    inbox_journal::{Journal, Ticket},
    inbox_queue::MAX_BATCH,
};
use crate::{
    db::{Backend, Db, DbConn, DbError, DedicatedConn},
    error::Error,
    web::read_cache::ReadCache,
};
use std::{
    sync::{
        mpsc::{self, Receiver, Sender},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::sync::{mpsc::UnboundedSender, oneshot, Notify};

/// A group of journaled activities gathers up to this many…
const GATHER: usize = 256;

/// …for at most this long after its first.
const GATHER_WAIT: Duration = Duration::from_millis(10);

/// …looking for more every this often (so a request that waits for its
/// commit waits at most this much longer).
const GATHER_TICK: Duration = Duration::from_millis(1);

/// How long activities carried from a failed group wait for others.
const RETRY: Duration = Duration::from_secs(1);

/// The writer threads' name, before each one's number.
pub const THREAD_NAME: &str = "tocsin-inbox-writer";

/// Where the writer answers one accepted activity.
pub enum Reply {
    /// The request waits for the commit: true if the activity was new,
    /// false for a copy.
    Waiting(oneshot::Sender<Result<bool, Error>>),
    /// The request was answered once the activity was journaled; the
    /// ticket goes back to the journal after the commit.
    Journaled(Ticket),
}

/// What the inbox hands the writer: an accepted activity and where to
/// answer. Boxed: an `Accepted` is about two kilobytes, which every
/// request's future and the channel's slots would otherwise hold.
pub type Handed = (Box<Accepted>, Reply);

/// Where the writer's threads wake the rest of the inbox.
pub struct Wakes {
    /// Wakes the one-at-a-time lane.
    pub single: Arc<Notify>,
    /// Wakes the batch lane.
    pub batch: Arc<Notify>,
    /// The prepared public answers, emptied when an alert is stored.
    pub reads: Arc<ReadCache>,
    /// The stored alerts, to curate.
    pub followups: UnboundedSender<Followups>,
    /// The journal, told what was committed.
    pub journal: Option<Arc<Journal>>,
}

/// Starts the writer threads on `db`; an activity alone waits up to
/// `window` for others to share its transaction. The threads end when
/// every sender is dropped. `None` if no thread could start.
pub fn start(db: Db, window: Duration, wakes: Wakes) -> Option<Sender<Handed>> {
    // SQLite has one writer at a time; PostgreSQL takes several
    // transactions at once, each a few round trips per activity.
    let threads = match db.backend() {
        Backend::Sqlite(_) => 1,
        Backend::Postgres(_) => (db.pool_size() as usize / 2).clamp(1, 4),
    };
    let (tx, rx) = mpsc::channel();
    let writer = Arc::new(Writer {
        db,
        window,
        wakes,
        rx: Mutex::new(rx),
    });
    let mut started = 0;
    for n in 0..threads {
        let writer = writer.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{THREAD_NAME}-{n}"))
            .spawn(move || writer.run());
        match spawned {
            Ok(_) => started += 1,
            Err(e) => tracing::warn!(error = %e, "cannot start an inbox writer thread"),
        }
    }
    (started > 0).then_some(tx)
}

struct Writer {
    db: Db,
    window: Duration,
    wakes: Wakes,
    /// Shared by the threads: one at a time forms its group.
    rx: Mutex<Receiver<Handed>>,
}

impl Writer {
    /// Writes groups until every sender is gone. The connection is opened
    /// at the first group and again after one broke.
    fn run(&self) {
        let mut conn: Option<DedicatedConn> = None;
        // Journaled activities whose group failed, written again before
        // the next group and apart from it: one that cannot be stored
        // holds up no other.
        let mut carried: Vec<(Accepted, Reply)> = Vec::new();
        loop {
            if !carried.is_empty() {
                carried = self.write_and_answer(&mut conn, std::mem::take(&mut carried));
            }
            let Some(pending) = self.next_group(!carried.is_empty()) else {
                return;
            };
            let group = pending.into_iter().map(|(a, reply)| (*a, reply)).collect();
            carried.extend(self.write_and_answer(&mut conn, group));
        }
    }

    /// Writes a group and answers it. When it fails, the requests waiting
    /// get the error and the journaled activities are returned, to carry.
    fn write_and_answer(
        &self,
        conn: &mut Option<DedicatedConn>,
        pending: Vec<(Accepted, Reply)>,
    ) -> Vec<(Accepted, Reply)> {
        if pending.is_empty() {
            return pending;
        }
        let (mut group, replies): (Vec<_>, Vec<_>) = pending.into_iter().unzip();
        // A panic (a bug) fails its group, not the thread: the inbox
        // would otherwise answer 500 to everything until a restart.
        let write = std::panic::AssertUnwindSafe(|| self.write(conn, &mut group));
        let written = std::panic::catch_unwind(write).unwrap_or_else(|_| {
            *conn = None;
            Err(DbError::Task("the inbox writer panicked".into()))
        });
        let e = match written {
            Ok(written) => {
                self.answer(written, replies);
                return Vec::new();
            }
            Err(e) => e,
        };
        tracing::warn!(error = %e, activities = group.len(), "the inbox's writer could not store a group");
        let message = e.to_string();
        let mut carried = Vec::new();
        for (mut accepted, reply) in group.into_iter().zip(replies) {
            match reply {
                Reply::Waiting(reply) => {
                    let _ = reply.send(Err(Error::Internal(message.clone())));
                }
                Reply::Journaled(ticket) => {
                    // Its prepared alert may be spent: queued next time,
                    // not applied at once.
                    accepted.alert = None;
                    carried.push((accepted, Reply::Journaled(ticket)));
                }
            }
        }
        carried
    }

    /// The next group: everything waiting (up to [`MAX_BATCH`]); when only
    /// one was waiting, the writer was idle, so others get `window` to
    /// come. Busy, the group formed while the last one was written, and
    /// waiting longer would only delay its answers, unless none is waited
    /// for: a group of journaled activities gathers up to [`GATHER`] for
    /// at most [`GATHER_WAIT`]. With activities `carried` from a failed
    /// group, a second is the longest wait, and the group may be empty.
    /// `None` once every sender is gone.
    fn next_group(&self, carried: bool) -> Option<Vec<Handed>> {
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        let first = match carried {
            false => rx.recv().ok()?,
            true => match rx.recv_timeout(RETRY) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => return Some(Vec::new()),
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            },
        };
        let mut pending = vec![first];
        take_waiting(&rx, &mut pending);
        if pending.len() == 1 {
            if let Ok(next) = rx.recv_timeout(self.window) {
                pending.push(next);
                take_waiting(&rx, &mut pending);
            }
        }
        // Journaled activities were answered: nobody waits for them, and a
        // larger group costs less an activity (about 150 µs a group, and 17
        // µs an activity, docs/performance.md). A request that waits for
        // its commit ends the gathering. The writer sleeps between looks
        // rather than waiting on the channel: a waiting receiver is woken
        // by every send, and each wake-up cost the sending HTTP worker a
        // system call and often its core (docs/performance.md).
        let deadline = std::time::Instant::now() + GATHER_WAIT;
        let mut looked = 0;
        while pending.len() < GATHER && pending[looked..].iter().all(is_journaled) {
            looked = pending.len();
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(GATHER_TICK));
            take_waiting(&rx, &mut pending);
        }
        Some(pending)
    }

    /// Stores one group in this process's turn to write, applying what it
    /// can at once; queues it all if that fails.
    fn write(
        &self,
        conn: &mut Option<DedicatedConn>,
        group: &mut [Accepted],
    ) -> Result<Written, DbError> {
        let lent = match conn {
            Some(lent) => lent,
            None => conn.insert(self.db.dedicated_connection()?),
        };
        let started = std::time::Instant::now();
        let written = self
            .db
            .write_blocking(lent, |lent| write_group(lent, group));
        tracing::debug!(
            activities = group.len(),
            micros = started.elapsed().as_micros() as u64,
            ok = written.is_ok(),
            "inbox group written"
        );
        if written.is_err() && lent.is_broken() {
            *conn = None;
        }
        written
    }

    /// Wakes the lanes that got work, hands the stored alerts on, and
    /// answers every waiting request.
    fn answer(&self, written: Written, replies: Vec<Reply>) {
        if written.queued_batch {
            self.wakes.batch.notify_one();
        }
        if written.queued_single {
            self.wakes.single.notify_one();
        }
        if let Some(followups) = written.followups {
            // Before the 202s: a reader who got one sees the new alert.
            self.wakes.reads.invalidate();
            let _ = self.wakes.followups.send(followups);
        }
        let mut tickets = Vec::new();
        for (reply, new) in replies.into_iter().zip(written.new) {
            match reply {
                Reply::Waiting(reply) => {
                    let _ = reply.send(Ok(new));
                }
                Reply::Journaled(ticket) => tickets.push(ticket),
            }
        }
        if let Some(journal) = self.wakes.journal.as_ref().filter(|_| !tickets.is_empty()) {
            journal.committed(tickets);
        }
    }
}

/// Whether the request of `handed` was answered once it was journaled.
fn is_journaled(handed: &Handed) -> bool {
    matches!(handed.1, Reply::Journaled(_))
}

/// Adds to `pending` what is already waiting, up to [`MAX_BATCH`].
fn take_waiting<T>(rx: &Receiver<T>, pending: &mut Vec<T>) {
    while pending.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(next) => pending.push(next),
            Err(_) => break,
        }
    }
}

/// Stores a group, applying what it can at once; queues it all if that
/// fails.
fn write_group(conn: &mut DbConn, group: &mut [Accepted]) -> Result<Written, DbError> {
    inbox_batch::store_accepted(conn, group).or_else(|e| {
        tracing::info!(error = %e, "applying accepted activities at once failed; they are queued instead");
        inbox_batch::queue_accepted(conn, group)
    })
}
