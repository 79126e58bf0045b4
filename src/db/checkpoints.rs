//! SQLite's WAL checkpoints on a thread of their own.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a checkpoint
//! copies them into the database file so the WAL can start over. SQLite
//! runs one inside the commit that takes the WAL past 1,000 pages, so
//! every few thousand alerts the inbox's writer, which is serial, stopped
//! to copy and sync them. [`Checkpointer`] runs a passive checkpoint (it
//! takes no lock that writers or readers wait for) on its own connection
//! after the busy writers' transactions ([`super::Db::write`],
//! [`super::Db::write_blocking`]) instead.
//! Once the thread runs, those writers' commits checkpoint only when the
//! WAL has grown ten times larger than SQLite's threshold (the thread
//! fell behind); other writes keep SQLite's own, which finds little to do.

use super::{DbConn, DbError};
use diesel::{connection::SimpleConnection, Connection, SqliteConnection};
use std::{
    path::PathBuf,
    sync::{mpsc, Mutex, PoisonError},
    time::Duration,
};

/// The checkpoint thread's name.
pub const THREAD_NAME: &str = "tocsin-checkpoint";

/// How long the thread rests after a checkpoint: what is written meanwhile
/// waits for the next one, so a busy writer does not set off one
/// checkpoint per transaction.
const PAUSE: Duration = Duration::from_millis(50);

/// A WAL smaller than this never needs the thread: SQLite's own checkpoint
/// starts at 1,000 pages (4 MiB with 4 kB pages), so an instance that
/// never writes that much between checkpoints (an idle one) runs no
/// thread and keeps no connection for it.
const START_AT_BYTES: u64 = 4 << 20;

/// SQLite's own checkpoint threshold, in WAL pages (its default).
const SQLITE_AUTOCHECKPOINT_PAGES: u32 = 1_000;

/// The busy writers' threshold while the thread runs (about 40 MB of WAL
/// with 4 kB pages): their commits copy and sync the WAL only if the
/// thread has fallen that far behind.
const BUSY_WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

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

    /// True once the thread has started.
    pub fn is_running(&self) -> bool {
        self.wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Starts the thread; `None` if it cannot be (SQLite then checkpoints
    /// in its commits, as without this).
    fn spawn(&self) -> Option<mpsc::SyncSender<()>> {
        let (sender, woken) = mpsc::sync_channel(1);
        let (path, busy_timeout_ms) = (self.path.clone(), self.busy_timeout_ms);
        let started = std::thread::Builder::new()
            .name(THREAD_NAME.into())
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

/// Runs `f` on `conn` with SQLite's checkpoint threshold raised to
/// [`BUSY_WRITER_AUTOCHECKPOINT_PAGES`], then sets it back, so that `f`'s
/// commits leave checkpoints to the thread: a checkpoint in the commit
/// copies and syncs the WAL while the serial writer waits (about a tenth
/// of the inbox's rate, docs/performance.md). Not a PostgreSQL connection's
/// concern.
pub fn with_checkpoints_left_to_the_thread<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, DbError>,
) -> Result<T, DbError> {
    leave_checkpoints_to_the_thread(conn)?;
    let result = f(conn);
    // `f` may have committed: its result stands whatever happens here.
    if let Err(e) = set_autocheckpoint(conn, SQLITE_AUTOCHECKPOINT_PAGES) {
        tracing::warn!(error = %e, "cannot set SQLite's checkpoint threshold back");
    }
    result
}

/// Leaves `conn`'s commits' checkpoints to the thread until it is set
/// back: kept for good on a writer's connection of its own
/// ([`super::DedicatedConn`]), which no other code uses.
pub fn leave_checkpoints_to_the_thread(conn: &mut DbConn) -> Result<(), DbError> {
    set_autocheckpoint(conn, BUSY_WRITER_AUTOCHECKPOINT_PAGES)
}

fn set_autocheckpoint(conn: &mut DbConn, pages: u32) -> Result<(), DbError> {
    if let DbConn::Sqlite(lite) = conn {
        lite.batch_execute(&format!("PRAGMA wal_autocheckpoint = {pages};"))?;
    }
    Ok(())
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
    fn the_busy_writer_leaves_checkpoints_to_the_thread_then_sets_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let lite = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        let mut conn = DbConn::Sqlite(lite);
        conn.batch_execute("PRAGMA journal_mode = WAL; CREATE TABLE t (x TEXT);")
            .unwrap();
        // About 5 MB: 1,200 pages, past SQLite's own threshold of 1,000.
        let five_megabytes = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                              WHERE i < 10000) INSERT INTO t SELECT printf('%0500d', i) FROM n;";
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        with_checkpoints_left_to_the_thread(&mut conn, |conn| {
            Ok(conn.batch_execute(five_megabytes)?)
        })
        .unwrap();
        assert!(
            size() < before + 1_000_000,
            "the commit copied the WAL into the database ({before} -> {} bytes)",
            size()
        );
        // Set back: the next such commit checkpoints by itself.
        conn.batch_execute(five_megabytes).unwrap();
        assert!(
            size() >= before + 4_000_000,
            "SQLite's own checkpoint did not run after ({before} -> {} bytes)",
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
