//! The persistent delivery queue: one row per (activity, inbox), claimed by
//! workers with a lease, and the health of each remote host.

use super::{
    activities::insert_outgoing,
    now_ms,
    schema::{deliveries, hosts, outgoing_activities},
    DbConn, DbError,
};
use diesel::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

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
    let ordered = interleave_hosts(inboxes);
    super::transaction(conn, |conn| {
        let activity = insert_outgoing(conn, ap_id, actor_id, kind, json)?;
        let now = now_ms();
        let rows: Vec<_> = ordered
            .iter()
            .map(|inbox| {
                (
                    deliveries::activity_id.eq(activity.id),
                    deliveries::inbox.eq(*inbox),
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

// The claim's queries are macros because the same expression is run on
// `PgConnection` (with `FOR UPDATE SKIP LOCKED`, which diesel types for that
// back end only) and on `SqliteConnection` inside an immediate transaction.

/// Takes the probe of down host `$host`: pushes its `down_until` to
/// `$until` (past the lease) so no other claim probes it at the same time.
/// Updates no row if another claim got there first.
macro_rules! start_probe {
    ($host:expr, $now:expr, $until:expr) => {
        diesel::update(
            hosts::table
                .filter(hosts::host.eq($host))
                .filter(hosts::down_until.le($now)),
        )
        .set(hosts::down_until.eq($until))
    };
}

/// Leases the rows `$ids` until `$until`.
macro_rules! lease {
    ($ids:expr, $until:expr) => {
        diesel::update(deliveries::table.filter(deliveries::id.eq_any($ids)))
            .set(deliveries::locked_until.eq($until))
    };
}

/// The ids of pending deliveries due at `$now` whose lease is free or
/// expired (a process that died holding it), oldest due first.
macro_rules! due_at {
    ($now:expr) => {
        deliveries::table
            .filter(deliveries::state.eq(PENDING))
            .filter(deliveries::next_attempt_at.le($now))
            .filter(
                deliveries::locked_until
                    .is_null()
                    .or(deliveries::locked_until.lt($now)),
            )
            .order((deliveries::next_attempt_at, deliveries::id))
            .select(deliveries::id)
    };
}

/// Distinct inboxes, one host after another in turn (a, b, c, a, b, c, …):
/// rows are claimed in id order, so a fan-out's first claims span many
/// hosts instead of filling one host's concurrency and idling the rest.
pub fn interleave_hosts(inboxes: &[String]) -> Vec<&str> {
    let mut by_host: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let unique: BTreeSet<&str> = inboxes.iter().map(String::as_str).collect();
    for inbox in unique {
        by_host.entry(host_of(inbox)).or_default().push(inbox);
    }
    let mut queues: Vec<std::vec::IntoIter<&str>> =
        by_host.into_values().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(inboxes.len());
    while !queues.is_empty() {
        queues.retain_mut(|q| match q.next() {
            Some(inbox) => {
                out.push(inbox);
                true
            }
            None => false,
        });
    }
    out
}

/// Claims up to `limit` due deliveries for `lease_ms`. Hosts marked down
/// are skipped; a down host whose probe time has come gets exactly ONE
/// delivery (the probe), and the rest of its deliveries stay put until a
/// probe succeeds. On PostgreSQL rows are locked with `FOR UPDATE SKIP
/// LOCKED`, so several processes never claim the same row; on SQLite the
/// claim is an immediate (write-locked) transaction.
pub fn claim_due(
    conn: &mut DbConn,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<ClaimedDelivery>, DbError> {
    let now = now_ms();
    let probes = probe_candidates(conn, now)?;
    let down = hosts::table
        .filter(hosts::down_until.is_not_null())
        .select(hosts::host);
    let ids: Vec<i64> = match conn {
        DbConn::Pg(pg) => pg.transaction(|pg| {
            let mut ids = Vec::new();
            for host in probes.iter().take(limit.max(0) as usize) {
                if start_probe!(host, now, now + lease_ms).execute(pg)? == 1 {
                    let probe = due_at!(now).filter(deliveries::host.eq(host)).limit(1);
                    ids.extend(probe.for_update().skip_locked().load::<i64>(pg)?);
                }
            }
            let healthy = due_at!(now)
                .filter(diesel::dsl::not(deliveries::host.eq_any(down)))
                .limit((limit - ids.len() as i64).max(0));
            ids.extend(healthy.for_update().skip_locked().load::<i64>(pg)?);
            lease!(&ids, now + lease_ms).execute(pg)?;
            Ok::<_, diesel::result::Error>(ids)
        })?,
        DbConn::Sqlite(lite) => lite.immediate_transaction(|lite| {
            let mut ids = Vec::new();
            for host in probes.iter().take(limit.max(0) as usize) {
                if start_probe!(host, now, now + lease_ms).execute(lite)? == 1 {
                    let probe = due_at!(now).filter(deliveries::host.eq(host)).limit(1);
                    ids.extend(probe.load::<i64>(lite)?);
                }
            }
            let healthy = due_at!(now)
                .filter(diesel::dsl::not(deliveries::host.eq_any(down)))
                .limit((limit - ids.len() as i64).max(0));
            ids.extend(healthy.load::<i64>(lite)?);
            lease!(&ids, now + lease_ms).execute(lite)?;
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

/// Down hosts whose probe time has come and that have something due. Only
/// a hint: [`start_probe`] decides, under the claim's lock, who probes.
fn probe_candidates(conn: &mut DbConn, now: i64) -> Result<Vec<String>, DbError> {
    let ready = hosts::table
        .filter(hosts::down_until.le(now))
        .select(hosts::host);
    Ok(deliveries::table
        .filter(deliveries::state.eq(PENDING))
        .filter(deliveries::next_attempt_at.le(now))
        .filter(deliveries::host.eq_any(ready))
        .select(deliveries::host)
        .distinct()
        .load(conn)?)
}

/// What one finished attempt leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The delivery row.
    pub id: i64,
    /// Its host, whose health the answer tells about.
    pub host: String,
    /// Its inbox (a 410 removes the followers behind it).
    pub inbox: String,
    /// Final state or the time of the next attempt.
    pub next: NextStep,
    /// HTTP status, if there was an answer.
    pub status: Option<i32>,
    /// Why it did not succeed.
    pub error: Option<String>,
    /// What the attempt says about the host.
    pub host_health: HostHealth,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// `DONE`, `FAILED` or `GONE`.
    Final(&'static str),
    /// Still `PENDING`, due again at this time (ms).
    RetryAt(i64),
}

/// What an attempt says about its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostHealth {
    /// The host answered (any status that is not a server failure): up.
    Answered,
    /// 5xx, 408, timeout or connection error; if the host goes down, it is
    /// probed again at `probe_at`.
    Unwell {
        /// When a probe may be tried.
        probe_at: i64,
    },
    /// 429: the host is alive but wants us to wait; a down host (this was its
    /// probe) is probed again at `until`.
    RateLimited {
        /// When a probe may be tried.
        until: i64,
    },
}

/// Writes the outcomes of a batch of attempts in one transaction: one commit
/// for many deliveries, which is what lets SQLite keep up with a fan-out.
pub fn record_attempts(
    conn: &mut DbConn,
    records: &[AttemptRecord],
    host_down_after: u32,
) -> Result<(), DbError> {
    if records.is_empty() {
        return Ok(());
    }
    super::transaction(conn, |conn| {
        let now = now_ms();
        for r in records {
            let (state, next_attempt_at) = match r.next {
                NextStep::Final(state) => (state, None),
                NextStep::RetryAt(at) => (PENDING, Some(at)),
            };
            let row = deliveries::table.find(r.id);
            let changes = (
                deliveries::state.eq(state),
                deliveries::attempts.eq(deliveries::attempts + 1),
                deliveries::locked_until.eq(None::<i64>),
                deliveries::last_status.eq(r.status),
                deliveries::last_error.eq(r.error.as_deref()),
                deliveries::updated_at.eq(now),
            );
            match next_attempt_at {
                Some(at) => diesel::update(row)
                    .set((changes, deliveries::next_attempt_at.eq(at)))
                    .execute(conn)?,
                None => diesel::update(row).set(changes).execute(conn)?,
            };
            if state == GONE {
                super::follows::remove_followers_at_inbox(conn, &r.inbox)?;
            }
        }
        // Host health in the order the answers came; a host that answered
        // several times in the batch is written once.
        let mut answered = BTreeSet::new();
        for r in records {
            match r.host_health {
                HostHealth::Answered => {
                    if answered.insert(r.host.as_str()) {
                        host_succeeded(conn, &r.host)?;
                    }
                }
                HostHealth::Unwell { probe_at } => {
                    answered.remove(r.host.as_str());
                    host_failed(conn, &r.host, host_down_after, probe_at)?;
                }
                HostHealth::RateLimited { until } => {
                    diesel::update(
                        hosts::table
                            .filter(hosts::host.eq(&r.host))
                            .filter(hosts::down_until.is_not_null()),
                    )
                    .set(hosts::down_until.eq(until))
                    .execute(conn)?;
                }
            }
        }
        Ok(())
    })
}

/// Hands claimed deliveries back unchanged (graceful shutdown), so the next
/// claim — in this process or another — takes them at once.
pub fn release(conn: &mut DbConn, ids: &[i64]) -> Result<usize, DbError> {
    Ok(
        diesel::update(deliveries::table.filter(deliveries::id.eq_any(ids)))
            .set(deliveries::locked_until.eq(None::<i64>))
            .execute(conn)?,
    )
}

/// The queue as an operator sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Pending deliveries (waiting, due or in flight).
    pub pending: i64,
    /// Pending deliveries due now and not leased.
    pub due: i64,
    /// Pending deliveries leased by a worker (in flight).
    pub in_flight: i64,
    /// Creation time (ms) of the oldest pending delivery.
    pub oldest_pending_at: Option<i64>,
}

/// Depth, due, in flight and oldest of the pending deliveries.
pub fn queue_stats(conn: &mut DbConn) -> Result<QueueStats, DbError> {
    let now = now_ms();
    let pending = deliveries::table.filter(deliveries::state.eq(PENDING));
    let in_flight: i64 = pending
        .filter(deliveries::locked_until.ge(now))
        .count()
        .get_result(conn)?;
    let due_or_leased: i64 = pending
        .filter(deliveries::next_attempt_at.le(now))
        .count()
        .get_result(conn)?;
    Ok(QueueStats {
        pending: pending.count().get_result(conn)?,
        due: (due_or_leased - in_flight).max(0),
        in_flight,
        oldest_pending_at: pending
            .select(diesel::dsl::min(deliveries::created_at))
            .first(conn)?,
    })
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
    if host_row(conn, host)?.is_some_and(|r| r.consecutive_failures == 0 && r.down_until.is_none())
    {
        // Nothing changes; skip the write on the hot path.
        return Ok(());
    }
    ensure_host(conn, host)?;
    diesel::update(hosts::table.find(host))
        .set((
            hosts::consecutive_failures.eq(0),
            hosts::down_until.eq(None::<i64>),
            hosts::last_success_at.eq(Some(now_ms())),
        ))
        .execute(conn)?;
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
    super::transaction(conn, |conn| {
        ensure_host(conn, host)?;
        // An increment in SQL, so processes failing at once all count.
        diesel::update(hosts::table.find(host))
            .set((
                hosts::consecutive_failures.eq(hosts::consecutive_failures + 1),
                hosts::last_failure_at.eq(Some(now_ms())),
            ))
            .execute(conn)?;
        let row = host_row(conn, host)?.ok_or(DbError::Query(diesel::result::Error::NotFound))?;
        if row.consecutive_failures < down_after as i32 {
            return Ok(row);
        }
        diesel::update(hosts::table.find(host))
            .set(hosts::down_until.eq(Some(probe_at)))
            .execute(conn)?;
        Ok(HostRow {
            down_until: Some(probe_at),
            ..row
        })
    })
}

/// Gives `host` a row (healthy) unless it has one. `ON CONFLICT DO NOTHING`
/// because another process may insert it at the same moment, and on
/// PostgreSQL a failed insert would abort the whole outcome batch.
fn ensure_host(conn: &mut DbConn, host: &str) -> Result<(), DbError> {
    let row = (hosts::host.eq(host), hosts::consecutive_failures.eq(0));
    let insert = diesel::insert_into(hosts::table).values(row);
    match conn {
        DbConn::Pg(pg) => insert.on_conflict_do_nothing().execute(pg)?,
        DbConn::Sqlite(lite) => insert.on_conflict_do_nothing().execute(lite)?,
    };
    Ok(())
}

/// The HTTP signature style `host` accepted last (`rfc9421`, `cavage`).
pub fn signature_style(conn: &mut DbConn, host: &str) -> Result<Option<String>, DbError> {
    Ok(hosts::table
        .find(host)
        .select(hosts::signature_style)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// Remembers the HTTP signature style `host` accepted.
pub fn remember_signature_style(conn: &mut DbConn, host: &str, style: &str) -> Result<(), DbError> {
    ensure_host(conn, host)?;
    diesel::update(hosts::table.find(host))
        .set(hosts::signature_style.eq(Some(style)))
        .execute(conn)?;
    Ok(())
}

/// Hosts currently marked down (skipped until a probe succeeds).
pub fn hosts_down(conn: &mut DbConn) -> Result<Vec<HostRow>, DbError> {
    Ok(hosts::table
        .filter(hosts::down_until.is_not_null())
        .order(hosts::host)
        .select(HostRow::as_select())
        .load(conn)?)
}

/// Hosts whose last attempts failed (down or not yet), most failures first.
pub fn failing_hosts(conn: &mut DbConn) -> Result<Vec<HostRow>, DbError> {
    Ok(hosts::table
        .filter(hosts::consecutive_failures.gt(0))
        .order((hosts::consecutive_failures.desc(), hosts::host))
        .select(HostRow::as_select())
        .load(conn)?)
}

/// Whether an outgoing activity's `object` is `object_ap_id` (as an id or
/// as an embedded object).
pub fn is_about(activity_json: &str, object_ap_id: &str) -> bool {
    let Ok(activity) = serde_json::from_str::<serde_json::Value>(activity_json) else {
        return false;
    };
    let object = &activity["object"];
    object.as_str() == Some(object_ap_id) || object["id"].as_str() == Some(object_ap_id)
}

/// Where the activities about `object_ap_id` (sent by this instance) went:
/// one row per receiving inbox, its latest delivery. An inbox that got the
/// Create and two Updates counts once, with the state of the last one.
pub fn latest_for_object(
    conn: &mut DbConn,
    object_ap_id: &str,
) -> Result<Vec<DeliveryRow>, DbError> {
    // A cheap textual filter first; the exact test is done on the JSON.
    let pattern = format!(
        "%{}%",
        object_ap_id
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let candidates: Vec<(i64, String)> = outgoing_activities::table
        .filter(outgoing_activities::json.like(pattern).escape('\\'))
        .select((outgoing_activities::id, outgoing_activities::json))
        .load(conn)?;
    let ids: Vec<i64> = candidates
        .into_iter()
        .filter(|(_, json)| is_about(json, object_ap_id))
        .map(|(id, _)| id)
        .collect();
    let rows: Vec<DeliveryRow> = deliveries::table
        .filter(deliveries::activity_id.eq_any(&ids))
        .order((deliveries::activity_id, deliveries::id))
        .select(DeliveryRow::as_select())
        .load(conn)?;
    let mut latest: BTreeMap<String, DeliveryRow> = BTreeMap::new();
    for row in rows {
        latest.insert(row.inbox.clone(), row);
    }
    Ok(latest.into_values().collect())
}

/// Up to `limit` outgoing activities stored before `before_ms` none of
/// whose deliveries is still pending, oldest first: their row ids.
pub fn sent_before(conn: &mut DbConn, before_ms: i64, limit: i64) -> Result<Vec<i64>, DbError> {
    Ok(outgoing_activities::table
        .filter(outgoing_activities::created_at.lt(before_ms))
        .filter(no_pending_delivery())
        .order(outgoing_activities::id)
        .select(outgoing_activities::id)
        .limit(limit)
        .load(conn)?)
}

/// Forgets the outgoing activities `ids` with their deliveries (the
/// foreign key cascades; `UNIQUE (activity_id, inbox)` indexes them); an
/// activity with a pending delivery stays. Returns how many activities
/// went.
pub fn forget_sent(conn: &mut DbConn, ids: &[i64]) -> Result<usize, DbError> {
    Ok(diesel::delete(
        outgoing_activities::table
            .filter(outgoing_activities::id.eq_any(ids))
            .filter(no_pending_delivery()),
    )
    .execute(conn)?)
}

/// True for an outgoing activity (of the enclosing query) none of whose
/// deliveries is still pending.
#[diesel::dsl::auto_type]
fn no_pending_delivery() -> _ {
    let pending: &'static str = PENDING;
    diesel::dsl::not(diesel::dsl::exists(
        deliveries::table
            .filter(deliveries::activity_id.eq(outgoing_activities::id))
            .filter(deliveries::state.eq(pending)),
    ))
}

/// Every host we have delivered to, worst first.
pub fn all_hosts(conn: &mut DbConn) -> Result<Vec<HostRow>, DbError> {
    Ok(hosts::table
        .order((hosts::consecutive_failures.desc(), hosts::host.asc()))
        .select(HostRow::as_select())
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_activity_is_about_its_object_only() {
        let alert = "https://ngo.example/alerts/1";
        assert!(is_about(
            r#"{"type":"Create","object":{"id":"https://ngo.example/alerts/1"}}"#,
            alert
        ));
        assert!(is_about(
            r#"{"type":"Delete","object":"https://ngo.example/alerts/1"}"#,
            alert
        ));
        // A translation that names the original, or another alert whose id
        // starts the same, is not about it.
        assert!(!is_about(
            r#"{"type":"Create","object":{"id":"https://ngo.example/alerts/12","translationOf":"https://ngo.example/alerts/1"}}"#,
            alert
        ));
        assert!(!is_about("not json", alert));
    }

    #[test]
    fn fan_out_rows_take_hosts_in_turn() {
        let inboxes: Vec<String> = [
            "https://a.example/inbox/1",
            "https://a.example/inbox/2",
            "https://a.example/inbox/3",
            "https://b.example/inbox",
            "https://a.example/inbox/1",
            "https://c.example:8443/inbox/1",
            "https://c.example:8443/inbox/2",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            interleave_hosts(&inboxes),
            vec![
                "https://a.example/inbox/1",
                "https://b.example/inbox",
                "https://c.example:8443/inbox/1",
                "https://a.example/inbox/2",
                "https://c.example:8443/inbox/2",
                "https://a.example/inbox/3",
            ]
        );
    }
}
