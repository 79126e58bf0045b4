//! Federation policy per remote domain (block, silence, allow) and the
//! purge of a blocked domain's data.

use super::{
    now_ms,
    schema::{actors, deliveries, domain_policies, inbox_queue},
    DbConn, DbError,
};
use diesel::prelude::*;

/// A row of `domain_policies`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = domain_policies)]
pub struct DomainPolicyRow {
    pub domain: String,
    pub policy: String,
    pub reason: Option<String>,
    pub created_at: i64,
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Remote actors (their alerts, follows, keys and boosts went with them).
    pub actors: usize,
    /// Pending deliveries to the domain.
    pub deliveries: usize,
    /// Incoming activities from the domain not yet applied.
    pub queued: usize,
}

/// Sets (or replaces) the policy of `domain`.
pub fn set(
    conn: &mut DbConn,
    domain: &str,
    policy: &str,
    reason: Option<&str>,
) -> Result<DomainPolicyRow, DbError> {
    super::transaction(conn, |conn| {
        diesel::delete(domain_policies::table.find(domain)).execute(conn)?;
        diesel::insert_into(domain_policies::table)
            .values((
                domain_policies::domain.eq(domain),
                domain_policies::policy.eq(policy),
                domain_policies::reason.eq(reason),
                domain_policies::created_at.eq(now_ms()),
            ))
            .execute(conn)?;
        Ok(domain_policies::table
            .find(domain)
            .select(DomainPolicyRow::as_select())
            .first(conn)?)
    })
}

/// Removes the policy of `domain`; false if it had none.
pub fn remove(conn: &mut DbConn, domain: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(domain_policies::table.find(domain)).execute(conn)? > 0)
}

/// Every policy, by domain.
pub fn all(conn: &mut DbConn) -> Result<Vec<DomainPolicyRow>, DbError> {
    Ok(domain_policies::table
        .order(domain_policies::domain)
        .select(DomainPolicyRow::as_select())
        .load(conn)?)
}

/// Deletes the pending deliveries whose host `covered` accepts; returns how
/// many.
pub fn drop_deliveries(
    conn: &mut DbConn,
    covered: &dyn Fn(&str) -> bool,
) -> Result<usize, DbError> {
    let hosts: Vec<String> = deliveries::table
        .filter(deliveries::state.eq(super::deliveries::PENDING))
        .select(deliveries::host)
        .distinct()
        .load(conn)?;
    let hosts: Vec<String> = hosts.into_iter().filter(|h| covered(h)).collect();
    if hosts.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(
        deliveries::table
            .filter(deliveries::state.eq(super::deliveries::PENDING))
            .filter(deliveries::host.eq_any(hosts)),
    )
    .execute(conn)?)
}

/// Deletes what came from the hosts `covered` accepts: remote actors (with,
/// by cascade, their alerts, follows, keys and the boosts of their alerts),
/// pending deliveries to them and their activities waiting in the inbox
/// queue. One transaction.
pub fn purge(conn: &mut DbConn, covered: &dyn Fn(&str) -> bool) -> Result<Purged, DbError> {
    super::transaction(conn, |conn| {
        let remote: Vec<(i64, String)> = actors::table
            .filter(actors::local.eq(false))
            .select((actors::id, actors::domain))
            .load(conn)?;
        let ids: Vec<i64> = remote
            .into_iter()
            .filter(|(_, domain)| covered(domain))
            .map(|(id, _)| id)
            .collect();
        let mut purged = Purged {
            deliveries: drop_deliveries(conn, covered)?,
            ..Default::default()
        };
        for chunk in ids.chunks(500) {
            purged.actors +=
                diesel::delete(actors::table.filter(actors::id.eq_any(chunk))).execute(conn)?;
        }
        let queued: Vec<(i64, String)> = inbox_queue::table
            .filter(inbox_queue::failed_at.is_null())
            .select((inbox_queue::id, inbox_queue::signer))
            .load(conn)?;
        let queued: Vec<i64> = queued
            .into_iter()
            .filter(|(_, signer)| covered(&super::deliveries::host_of(signer)))
            .map(|(id, _)| id)
            .collect();
        for chunk in queued.chunks(500) {
            purged.queued +=
                diesel::delete(inbox_queue::table.filter(inbox_queue::id.eq_any(chunk)))
                    .execute(conn)?;
        }
        Ok(purged)
    })
}
