//! SQLite's process-wide options (`db::configure_sqlite`) take effect: a
//! test binary of its own, because they can only be set before SQLite's
//! first connection in a process, which in the other test binaries any
//! test may open first.

use tocsin::db::Db;

/// With memory statistics off, SQLite counts no memory in use, however
/// much its connections hold; with them on (its default, which a
/// connection opened before `Db::open` would leave in place) it counts
/// every allocation.
#[test]
fn sqlite_keeps_no_memory_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("options.db").display());
    let db = Db::connect(&url, 2, 5_000).unwrap();
    let mut conn = db.conn().unwrap();
    let actors = tocsin::db::actors::local_actors(&mut conn).unwrap();
    assert!(actors.is_empty());
    // SAFETY: sqlite3_memory_used takes no argument and reads a counter.
    let used = unsafe { libsqlite3_sys::sqlite3_memory_used() };
    assert_eq!(
        used, 0,
        "SQLite counts {used} bytes in use: its memory statistics are on"
    );
}
