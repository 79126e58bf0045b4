//! SQLite's WAL checkpoints on a thread of their own.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a checkpoint
//! copies them into the database file so the WAL can start over. SQLite
//! runs one inside the commit that takes the WAL past 1,000 pages, so
//! every few thousand alerts the inbox's writer, which is serial, stopped
//! to copy and sync them. [`Checkpointer`] runs a passive checkpoint (it
//! takes no lock that writers or readers wait for) on its own connection
//! after the busy writers' transactions ([`super::Db::write`]) instead;
//! SQLite's own stays on, for writes that do not wake it, and finds
//! little to do.

use diesel::{connection::SimpleConnection, Connection, SqliteConnection};
use std::{
    path::PathBuf,
    sync::{mpsc, Mutex, PoisonError},
    time::Duration,
};

/// How long the thread rests after a checkpoint: what is written meanwhile
/// waits for the next one, so a busy writer does not set off one
/// checkpoint per transaction.
const PAUSE: Duration = Duration::from_millis(50);

/// A WAL smaller than this never needs the thread: SQLite's own checkpoint
/// starts at 1,000 pages (4 MiB with 4 kB pages), so an instance that
/// never writes that much between checkpoints (an idle one) runs no
/// thread and keeps no connection for it.
const START_AT_BYTES: u64 = 4 << 20;

/// Runs passive checkpoints of one SQLite database when woken. Its thread
/// and connection start with the first [`Checkpointer::wake`] that finds
/// the WAL at [`START_AT_BYTES`] or more, and end when the checkpointer is
/// dropped.
pub struct Checkpointer {
    path: PathBuf,
    busy_timeout_ms: u32,
    wake: Mutex<Option<mpsc::SyncSender<()>>>,
}

impl Checkpointer {
    /// A checkpointer for the database at `path`; nothing runs yet.
    pub fn new(path: PathBuf, busy_timeout_ms: u32) -> Checkpointer {
        Checkpointer {
            path,
            busy_timeout_ms,
            wake: Mutex::new(None),
        }
    }

    /// Asks for a checkpoint soon, without waiting for it.
    pub fn wake(&self) {
        let mut wake = self.wake.lock().unwrap_or_else(PoisonError::into_inner);
        if wake.is_none() {
            let mut wal = self.path.clone().into_os_string();
            wal.push("-wal");
            let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
            if wal_bytes < START_AT_BYTES {
                return;
            }
            *wake = self.spawn();
        }
        if let Some(sender) = wake.as_ref() {
            // Full: a checkpoint is already asked for.
            let _ = sender.try_send(());
        }
    }

    /// Starts the thread; `None` if it cannot be (SQLite then checkpoints
    /// in its commits, as without this).
    fn spawn(&self) -> Option<mpsc::SyncSender<()>> {
        let (sender, woken) = mpsc::sync_channel(1);
        let (path, busy_timeout_ms) = (self.path.clone(), self.busy_timeout_ms);
        let started = std::thread::Builder::new()
            .name("tocsin-checkpoint".into())
            .spawn(move || run(path, busy_timeout_ms, woken));
        match started {
            Ok(_) => Some(sender),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the WAL checkpoint thread");
                None
            }
        }
    }
}

/// The thread: one passive checkpoint per wake-up, then a rest.
fn run(path: PathBuf, busy_timeout_ms: u32, woken: mpsc::Receiver<()>) {
    let mut conn = match SqliteConnection::establish(&path.to_string_lossy()) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "the WAL checkpoint thread cannot open the database");
            return;
        }
    };
    let _ = conn.batch_execute(&format!("PRAGMA busy_timeout = {busy_timeout_ms};"));
    while woken.recv().is_ok() {
        if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
            tracing::warn!(error = %e, "WAL checkpoint failed; SQLite's own will run");
        }
        std::thread::sleep(PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_up_copies_the_wal_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        // This connection never checkpoints: only the checkpointer can
        // make the database file grow.
        conn.batch_execute(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
             CREATE TABLE t (x TEXT); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
             INSERT INTO t SELECT printf('%0500d', i) FROM n;",
        )
        .unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        let checkpointer = Checkpointer::new(path.clone(), 5000);
        checkpointer.wake();
        assert!(
            checkpointer.wake.lock().unwrap().is_some(),
            "the thread started"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while size() < before + 4_000_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            size() >= before + 4_000_000,
            "the WAL's megabytes never reached the database file ({before} -> {} bytes)",
            size()
        );
    }

    #[test]
    fn a_small_wal_starts_no_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        conn.batch_execute("PRAGMA journal_mode = WAL; CREATE TABLE t (x TEXT);")
            .unwrap();
        let checkpointer = Checkpointer::new(path, 5000);
        checkpointer.wake();
        assert!(checkpointer.wake.lock().unwrap().is_none());
    }
}
