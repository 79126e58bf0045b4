//! The inbox queue: accepted incoming activities, committed before the
//! inbox answers 202 and processed by the inbox workers under leases.

use super::{
    in_list::in_list,
    now_ms,
    schema::{inbox_queue, received_activities},
    DbConn, DbError,
};
use diesel::prelude::*;
use std::collections::HashSet;

/// An accepted activity to store.
#[derive(Debug, Clone)]
pub struct NewQueued {
    /// The activity's id (unique: a second copy is dropped).
    pub ap_id: String,
    /// The actor whose HTTP signature was verified.
    pub signer: String,
    /// The activity as received.
    pub body: String,
    /// A Create or Update of an alert: applied by the batch lane.
    pub batch: bool,
}

/// A row of `inbox_queue`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = inbox_queue)]
pub struct QueuedRow {
    pub id: i64,
    pub ap_id: String,
    pub signer: String,
    pub body: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub locked_until: Option<i64>,
    pub last_error: Option<String>,
    pub failed_at: Option<i64>,
    pub created_at: i64,
    /// In the batch lane (see [`NewQueued::batch`]).
    pub batch: bool,
}

/// The ids among `ap_ids` of activities queued, or received and applied: a
/// copy is dropped. Two queries whatever their number (the inbox's writer
/// asks for its whole group).
pub fn known_among(conn: &mut DbConn, ap_ids: &[&str]) -> Result<HashSet<String>, DbError> {
    if ap_ids.is_empty() {
        return Ok(HashSet::new());
    }
    let received: Vec<String> = super::load(
        conn,
        received_activities::table
            .select(received_activities::ap_id)
            .filter(in_list(received_activities::ap_id, ap_ids)),
    )?;
    let queued: Vec<String> = super::load(
        conn,
        inbox_queue::table
            .select(inbox_queue::ap_id)
            .filter(in_list(inbox_queue::ap_id, ap_ids)),
    )?;
    Ok(received.into_iter().chain(queued).collect())
}

/// Queues `items`, due now, known to be new (a copy already queued is
/// skipped all the same).
pub fn insert(conn: &mut DbConn, items: &[NewQueued]) -> Result<(), DbError> {
    let now = now_ms();
    for item in items {
        insert_one(conn, item, now)?;
    }
    Ok(())
}

/// Queues one item, due at `now`; false if its id is already queued.
fn insert_one(conn: &mut DbConn, item: &NewQueued, now: i64) -> Result<bool, DbError> {
    let insert = diesel::insert_into(inbox_queue::table).values((
        inbox_queue::ap_id.eq(&item.ap_id),
        inbox_queue::signer.eq(&item.signer),
        inbox_queue::body.eq(&item.body),
        inbox_queue::attempts.eq(0),
        inbox_queue::next_attempt_at.eq(now),
        inbox_queue::created_at.eq(now),
        inbox_queue::batch.eq(item.batch),
    ));
    let n = match conn {
        DbConn::Pg(pg) => insert.on_conflict_do_nothing().execute(pg)?,
        DbConn::Sqlite(lite) => insert.on_conflict_do_nothing().execute(lite)?,
    };
    Ok(n == 1)
}

/// Records activity ids as received and applied, so that a copy is
/// dropped. PostgreSQL takes [`RECEIVED_PER_INSERT`] ids a statement;
/// SQLite one id a statement, prepared once: an `INSERT` of several rows
/// makes SQLite keep a statement journal, a copy of every page the
/// statement changes in case it must be undone alone, which random ids
/// spread over as many pages as rows and which spills to a temporary
/// file beyond 64 KiB (two thirds of this function's time with 500 ids a
/// statement, measured in `tocsin-bench inbox`).
pub fn mark_received(conn: &mut DbConn, ap_ids: &[String]) -> Result<(), DbError> {
    let now = now_ms();
    let row = |ap_id| {
        (
            received_activities::ap_id.eq(ap_id),
            received_activities::received_at.eq(now),
        )
    };
    match conn {
        DbConn::Pg(pg) => {
            let rows: Vec<_> = ap_ids.iter().map(row).collect();
            for rows in rows.chunks(RECEIVED_PER_INSERT) {
                diesel::insert_into(received_activities::table)
                    .values(rows)
                    .on_conflict_do_nothing()
                    .execute(pg)?;
            }
        }
        DbConn::Sqlite(lite) => {
            for ap_id in ap_ids {
                diesel::insert_into(received_activities::table)
                    .values(row(ap_id))
                    .on_conflict_do_nothing()
                    .execute(lite)?;
            }
        }
    }
    Ok(())
}

/// Stores `items` in one transaction; for each, true if it was new (false:
/// the same activity id is already queued, or was received and applied).
pub fn enqueue(conn: &mut DbConn, items: &[NewQueued]) -> Result<Vec<bool>, DbError> {
    let now = now_ms();
    super::transaction(conn, |conn| {
        let mut stored = Vec::with_capacity(items.len());
        for item in items {
            if super::activities::was_received(conn, &item.ap_id)? {
                stored.push(false);
                continue;
            }
            stored.push(insert_one(conn, item, now)?);
        }
        Ok(stored)
    })
}

/// Leases up to `limit` due rows of one lane (`batch`) for `lease_ms` and
/// returns them, oldest first. A process that dies loses its leases when
/// they expire.
pub fn claim_due(
    conn: &mut DbConn,
    batch: bool,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<QueuedRow>, DbError> {
    let now = now_ms();
    let due = inbox_queue::table
        .filter(inbox_queue::batch.eq(batch))
        .filter(inbox_queue::failed_at.is_null())
        .filter(inbox_queue::next_attempt_at.le(now))
        .filter(
            inbox_queue::locked_until
                .is_null()
                .or(inbox_queue::locked_until.lt(now)),
        )
        .order(inbox_queue::id)
        .limit(limit)
        // Columns in the struct's order (QueuedRow is Queryable).
        .select(inbox_queue::all_columns);
    let locked_until = now + lease_ms;
    let lease = |ids: Vec<i64>| {
        diesel::update(inbox_queue::table.filter(inbox_queue::id.eq_any(ids)))
            .set(inbox_queue::locked_until.eq(locked_until))
    };
    let ids = |rows: &[QueuedRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    let mut rows = match conn {
        DbConn::Pg(pg) => pg.transaction(|pg| {
            let rows: Vec<QueuedRow> = due.for_update().skip_locked().load(pg)?;
            lease(ids(&rows)).execute(pg)?;
            Ok::<_, diesel::result::Error>(rows)
        })?,
        DbConn::Sqlite(lite) => lite.immediate_transaction(|lite| {
            let rows: Vec<QueuedRow> = due.load(lite)?;
            lease(ids(&rows)).execute(lite)?;
            Ok::<_, diesel::result::Error>(rows)
        })?,
    };
    for row in &mut rows {
        row.locked_until = Some(locked_until);
    }
    Ok(rows)
}

/// Moves claimed rows to the one-at-a-time lane, due now and unleased: the
/// batch lane found they need more than it does (a fetch, a retry).
pub fn to_single_lane(conn: &mut DbConn, ids: &[i64]) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(inbox_queue::table.filter(inbox_queue::id.eq_any(ids)))
        .set((
            inbox_queue::batch.eq(false),
            inbox_queue::locked_until.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(())
}

/// What became of one claimed row.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Processed (or dropped for good reason): the row goes.
    Done,
    /// Failed for a passing reason; tried again at `at`.
    Retry {
        /// Why.
        error: String,
        /// When, in ms since the epoch.
        at: i64,
    },
    /// Failed for good: kept with its error for the operator.
    Failed(String),
}

/// Most ids one `received_activities` insert names (two parameters each,
/// far under SQLite's limit).
const RECEIVED_PER_INSERT: usize = 500;

/// Records the outcomes of claimed rows (id, activity id, outcome) in one
/// transaction; a done row leaves the queue and its id is remembered as
/// received.
pub fn record(conn: &mut DbConn, outcomes: &[(i64, String, Outcome)]) -> Result<(), DbError> {
    let now = now_ms();
    super::transaction(conn, |conn| {
        let (mut done, mut received) = (Vec::new(), Vec::new());
        for (id, ap_id, outcome) in outcomes {
            if matches!(outcome, Outcome::Done) {
                done.push(*id);
                received.push(ap_id.clone());
            }
        }
        mark_received(conn, &received)?;
        if !done.is_empty() {
            diesel::delete(inbox_queue::table.filter(inbox_queue::id.eq_any(done)))
                .execute(conn)?;
        }
        for (id, _, outcome) in outcomes {
            let row = inbox_queue::table.filter(inbox_queue::id.eq(*id));
            let bump = inbox_queue::attempts.eq(inbox_queue::attempts + 1);
            match outcome {
                Outcome::Done => {}
                Outcome::Retry { error, at } => {
                    diesel::update(row)
                        .set((
                            bump,
                            inbox_queue::last_error.eq(error),
                            inbox_queue::next_attempt_at.eq(at),
                            inbox_queue::locked_until.eq(None::<i64>),
                        ))
                        .execute(conn)?;
                }
                Outcome::Failed(error) => {
                    diesel::update(row)
                        .set((
                            bump,
                            inbox_queue::last_error.eq(error),
                            inbox_queue::failed_at.eq(now),
                            inbox_queue::locked_until.eq(None::<i64>),
                        ))
                        .execute(conn)?;
                }
            }
        }
        Ok(())
    })
}

/// Counts for `tocsin queue`: (waiting, failed).
pub fn counts(conn: &mut DbConn) -> Result<(i64, i64), DbError> {
    let waiting = inbox_queue::table
        .filter(inbox_queue::failed_at.is_null())
        .count()
        .get_result(conn)?;
    let failed = inbox_queue::table
        .filter(inbox_queue::failed_at.is_not_null())
        .count()
        .get_result(conn)?;
    Ok((waiting, failed))
}
