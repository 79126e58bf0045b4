//! The persistent delivery queue: one row per (activity, inbox), claimed by
//! workers with a lease, and the health of each remote host.

use super::{
    activities::insert_outgoing,
    now_ms,
    schema::{deliveries, hosts, outgoing_activities},
    DbConn, DbError,
};
use diesel::prelude::*;
use std::collections::BTreeSet;

/// Waiting to be sent (first time or retry).
pub const PENDING: &str = "pending";
/// Accepted by the receiver (2xx).
pub const DONE: &str = "done";
/// Given up: a permanent 4xx, or retries exhausted.
pub const FAILED: &str = "failed";
/// The receiver answered 410 Gone.
pub const GONE: &str = "gone";

/// A delivery claimed by a worker, with what it needs to send it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryRow {
    pub id: i64,
    pub activity_id: i64,
    pub inbox: String,
    pub host: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub locked_until: Option<i64>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A claimed delivery joined with its activity's JSON and signing actor.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// The queue row.
    pub delivery: DeliveryRow,
    /// Body to POST.
    pub json: String,
    /// Row id of the local actor that signs.
    pub actor_id: i64,
}

/// Host part (with port) of an inbox URL, the unit of health and concurrency.
pub fn host_of(inbox: &str) -> String {
    url::Url::parse(inbox)
        .ok()
        .map(|u| u.authority().to_string())
        .unwrap_or_default()
}

/// Stores an activity and one pending delivery per distinct inbox, in one
/// transaction. Returns the activity row id.
pub fn enqueue(
    conn: &mut DbConn,
    ap_id: &str,
    actor_id: i64,
    kind: &str,
    json: &str,
    inboxes: &[String],
) -> Result<i64, DbError> {
    let unique: BTreeSet<&String> = inboxes.iter().collect();
    super::transaction(conn, |conn| {
        let activity = insert_outgoing(conn, ap_id, actor_id, kind, json)?;
        let now = now_ms();
        let rows: Vec<_> = unique
            .iter()
            .map(|inbox| {
                (
                    deliveries::activity_id.eq(activity.id),
                    deliveries::inbox.eq(inbox.as_str()),
                    deliveries::host.eq(host_of(inbox)),
                    deliveries::state.eq(PENDING),
                    deliveries::attempts.eq(0),
                    deliveries::next_attempt_at.eq(now),
                    deliveries::created_at.eq(now),
                    deliveries::updated_at.eq(now),
                )
            })
            .collect();
        // Batch inserts are written per back end: diesel's MultiConnection
        // cannot express them for both at once.
        for chunk in rows.chunks(500) {
            let insert = diesel::insert_into(deliveries::table).values(chunk);
            match conn {
                DbConn::Pg(pg) => insert.execute(pg)?,
                DbConn::Sqlite(lite) => insert.execute(lite)?,
            };
        }
        Ok(activity.id)
    })
}

/// Claims up to `limit` due deliveries for `lease_ms`, skipping hosts that
/// are marked down. On PostgreSQL rows are locked with `FOR UPDATE SKIP
/// LOCKED`, so several processes never claim the same row.
pub fn claim_due(
    conn: &mut DbConn,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<ClaimedDelivery>, DbError> {
    let now = now_ms();
    let down_hosts = hosts::table
        .filter(hosts::down_until.gt(now))
        .select(hosts::host);
    let due = deliveries::table
        .filter(deliveries::state.eq(PENDING))
        .filter(deliveries::next_attempt_at.le(now))
        .filter(
            deliveries::locked_until
                .is_null()
                .or(deliveries::locked_until.lt(now)),
        )
        .filter(diesel::dsl::not(deliveries::host.eq_any(down_hosts)))
        .order(deliveries::next_attempt_at)
        .limit(limit)
        .select(deliveries::id);
    let ids: Vec<i64> = match conn {
        DbConn::Pg(pg) => pg.transaction(|pg| {
            let ids: Vec<i64> = due.for_update().skip_locked().load(pg)?;
            diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
                .set(deliveries::locked_until.eq(now + lease_ms))
                .execute(pg)?;
            Ok::<_, diesel::result::Error>(ids)
        })?,
        DbConn::Sqlite(lite) => lite.immediate_transaction(|lite| {
            let ids: Vec<i64> = due.load(lite)?;
            diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
                .set(deliveries::locked_until.eq(now + lease_ms))
                .execute(lite)?;
            Ok::<_, diesel::result::Error>(ids)
        })?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(DeliveryRow, String, i64)> = deliveries::table
        .inner_join(outgoing_activities::table)
        .filter(deliveries::id.eq_any(&ids))
        .select((
            DeliveryRow::as_select(),
            outgoing_activities::json,
            outgoing_activities::actor_id,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(delivery, json, actor_id)| ClaimedDelivery {
            delivery,
            json,
            actor_id,
        })
        .collect())
}

/// Records a final outcome (`DONE`, `FAILED` or `GONE`).
pub fn finish(
    conn: &mut DbConn,
    id: i64,
    state: &str,
    status: Option<i32>,
    error: Option<&str>,
) -> Result<(), DbError> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::state.eq(state),
            deliveries::attempts.eq(deliveries::attempts + 1),
            deliveries::locked_until.eq(None::<i64>),
            deliveries::last_status.eq(status),
            deliveries::last_error.eq(error),
            deliveries::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Schedules another attempt at `next_attempt_at`.
pub fn retry_at(
    conn: &mut DbConn,
    id: i64,
    next_attempt_at: i64,
    status: Option<i32>,
    error: &str,
) -> Result<(), DbError> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::attempts.eq(deliveries::attempts + 1),
            deliveries::next_attempt_at.eq(next_attempt_at),
            deliveries::locked_until.eq(None::<i64>),
            deliveries::last_status.eq(status),
            deliveries::last_error.eq(Some(error)),
            deliveries::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Hands a claimed delivery back unchanged (graceful shutdown).
pub fn release(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    diesel::update(deliveries::table.find(id))
        .set(deliveries::locked_until.eq(None::<i64>))
        .execute(conn)?;
    Ok(())
}

/// Deliveries of one activity, for tests and the operator's view.
pub fn for_activity(conn: &mut DbConn, activity_id: i64) -> Result<Vec<DeliveryRow>, DbError> {
    Ok(deliveries::table
        .filter(deliveries::activity_id.eq(activity_id))
        .order(deliveries::id)
        .select(DeliveryRow::as_select())
        .load(conn)?)
}

/// Number of deliveries in each state: (state, count).
pub fn counts_by_state(conn: &mut DbConn) -> Result<Vec<(String, i64)>, DbError> {
    Ok(deliveries::table
        .group_by(deliveries::state)
        .select((deliveries::state, diesel::dsl::count_star()))
        .load(conn)?)
}

/// A row of `hosts`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = hosts)]
pub struct HostRow {
    pub host: String,
    pub consecutive_failures: i32,
    pub down_until: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
}

fn host_row(conn: &mut DbConn, host: &str) -> Result<Option<HostRow>, DbError> {
    Ok(hosts::table
        .find(host)
        .select(HostRow::as_select())
        .first(conn)
        .optional()?)
}

/// A delivery to `host` succeeded: it is up again.
pub fn host_succeeded(conn: &mut DbConn, host: &str) -> Result<(), DbError> {
    let now = now_ms();
    match host_row(conn, host)? {
        Some(row) if row.consecutive_failures == 0 && row.down_until.is_none() => {
            // Nothing changes; skip the write on the hot path.
        }
        Some(_) => {
            diesel::update(hosts::table.find(host))
                .set((
                    hosts::consecutive_failures.eq(0),
                    hosts::down_until.eq(None::<i64>),
                    hosts::last_success_at.eq(Some(now)),
                ))
                .execute(conn)?;
        }
        None => {
            let _ = diesel::insert_into(hosts::table)
                .values((
                    hosts::host.eq(host),
                    hosts::consecutive_failures.eq(0),
                    hosts::last_success_at.eq(Some(now)),
                ))
                .execute(conn);
        }
    }
    Ok(())
}

/// A delivery to `host` failed in a way that says the host is unwell; after
/// `down_after` failures in a row it is marked down until `probe_at`.
pub fn host_failed(
    conn: &mut DbConn,
    host: &str,
    down_after: u32,
    probe_at: i64,
) -> Result<HostRow, DbError> {
    let now = now_ms();
    super::transaction(conn, |conn| {
        let failures = host_row(conn, host)?.map_or(0, |r| r.consecutive_failures) + 1;
        let down_until = (failures >= down_after as i32).then_some(probe_at);
        if host_row(conn, host)?.is_some() {
            diesel::update(hosts::table.find(host))
                .set((
                    hosts::consecutive_failures.eq(failures),
                    hosts::down_until.eq(down_until),
                    hosts::last_failure_at.eq(Some(now)),
                ))
                .execute(conn)?;
        } else {
            diesel::insert_into(hosts::table)
                .values((
                    hosts::host.eq(host),
                    hosts::consecutive_failures.eq(failures),
                    hosts::down_until.eq(down_until),
                    hosts::last_failure_at.eq(Some(now)),
                ))
                .execute(conn)?;
        }
        host_row(conn, host)?.ok_or(DbError::Query(diesel::result::Error::NotFound))
    })
}

/// Hosts currently marked down.
pub fn hosts_down(conn: &mut DbConn) -> Result<Vec<HostRow>, DbError> {
    Ok(hosts::table
        .filter(hosts::down_until.gt(now_ms()))
        .select(HostRow::as_select())
        .load(conn)?)
}
