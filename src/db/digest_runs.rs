//! `digest_runs`: which due times of which Digest schedules were handled.
//! Claiming a due time is an insert that does nothing when the row exists,
//! so one process, once, builds each issue.

use super::{now_ms, schema::digest_runs, DbConn, DbError};
use diesel::prelude::*;

/// The schedule's first due time seen: recorded, not built.
pub const BASELINE: &str = "baseline";
/// A draft issue was built.
pub const BUILT: &str = "built";
/// An issue was built and published.
pub const PUBLISHED: &str = "published";

/// A row of `digest_runs`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = digest_runs)]
pub struct RunRow {
    pub schedule_key: String,
    pub due_at: i64,
    pub state: String,
    pub issue_id: Option<i64>,
    pub created_at: i64,
}

/// The latest handled due time of schedule `key`.
pub fn latest(conn: &mut DbConn, key: &str) -> Result<Option<RunRow>, DbError> {
    Ok(digest_runs::table
        .filter(digest_runs::schedule_key.eq(key))
        .order(digest_runs::due_at.desc())
        .select(RunRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every run of schedule `key`, oldest first.
pub fn runs(conn: &mut DbConn, key: &str) -> Result<Vec<RunRow>, DbError> {
    Ok(digest_runs::table
        .filter(digest_runs::schedule_key.eq(key))
        .order(digest_runs::due_at)
        .select(RunRow::as_select())
        .load(conn)?)
}

/// Records due time `due_at` of schedule `key` in `state`; false when it
/// was recorded already (by this process or another one).
pub fn claim(conn: &mut DbConn, key: &str, due_at: i64, state: &str) -> Result<bool, DbError> {
    let insert = diesel::insert_into(digest_runs::table).values((
        digest_runs::schedule_key.eq(key),
        digest_runs::due_at.eq(due_at),
        digest_runs::state.eq(state),
        digest_runs::created_at.eq(now_ms()),
    ));
    let inserted = match conn {
        DbConn::Pg(pg) => insert.on_conflict_do_nothing().execute(pg)?,
        DbConn::Sqlite(lite) => insert.on_conflict_do_nothing().execute(lite)?,
    };
    Ok(inserted == 1)
}

/// Sets the outcome of a claimed run.
pub fn finish(
    conn: &mut DbConn,
    key: &str,
    due_at: i64,
    state: &str,
    issue_id: i64,
) -> Result<(), DbError> {
    diesel::update(digest_runs::table.find((key, due_at)))
        .set((
            digest_runs::state.eq(state),
            digest_runs::issue_id.eq(issue_id),
        ))
        .execute(conn)?;
    Ok(())
}
