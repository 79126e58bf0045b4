//! Activities: ids we have received (for deduplication) and the outgoing
//! activities we have stored before sending.

use super::{
    now_ms,
    schema::{outgoing_activities, received_activities},
    DbConn, DbError,
};
use diesel::prelude::*;

/// True when an activity with this id was already processed.
pub fn was_received(conn: &mut DbConn, ap_id: &str) -> Result<bool, DbError> {
    let n: i64 = received_activities::table
        .filter(received_activities::ap_id.eq(ap_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Records that an activity was processed; false if it already was.
pub fn mark_received(conn: &mut DbConn, ap_id: &str) -> Result<bool, DbError> {
    super::transaction(conn, |conn| {
        if was_received(conn, ap_id)? {
            return Ok(false);
        }
        diesel::insert_into(received_activities::table)
            .values((
                received_activities::ap_id.eq(ap_id),
                received_activities::received_at.eq(now_ms()),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

/// At most `limit` received ids recorded before `before_ms`. There is no
/// index on the time (the inbox's writes stay as they are): rows are
/// stored roughly in the order they came, so the scan meets the old ones
/// first and stops at `limit`.
pub fn received_before(
    conn: &mut DbConn,
    before_ms: i64,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(received_activities::table
        .filter(received_activities::received_at.lt(before_ms))
        .select(received_activities::ap_id)
        .limit(limit)
        .load(conn)?)
}

/// Forgets the received ids `ap_ids`; returns how many went.
pub fn forget_received(conn: &mut DbConn, ap_ids: &[String]) -> Result<usize, DbError> {
    Ok(
        diesel::delete(
            received_activities::table.filter(received_activities::ap_id.eq_any(ap_ids)),
        )
        .execute(conn)?,
    )
}

/// A row of `outgoing_activities`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = outgoing_activities)]
pub struct OutgoingActivityRow {
    pub id: i64,
    pub ap_id: String,
    pub actor_id: i64,
    pub kind: String,
    pub json: String,
    pub created_at: i64,
}

/// The outgoing activity with this ActivityPub id.
pub fn outgoing_by_ap_id(
    conn: &mut DbConn,
    ap_id: &str,
) -> Result<Option<OutgoingActivityRow>, DbError> {
    Ok(outgoing_activities::table
        .filter(outgoing_activities::ap_id.eq(ap_id))
        .select(OutgoingActivityRow::as_select())
        .first(conn)
        .optional()?)
}

/// Stores an outgoing activity; returns its row.
pub fn insert_outgoing(
    conn: &mut DbConn,
    ap_id: &str,
    actor_id: i64,
    kind: &str,
    json: &str,
) -> Result<OutgoingActivityRow, DbError> {
    diesel::insert_into(outgoing_activities::table)
        .values((
            outgoing_activities::ap_id.eq(ap_id),
            outgoing_activities::actor_id.eq(actor_id),
            outgoing_activities::kind.eq(kind),
            outgoing_activities::json.eq(json),
            outgoing_activities::created_at.eq(now_ms()),
        ))
        .execute(conn)?;
    outgoing_by_ap_id(conn, ap_id)?.ok_or(DbError::Query(diesel::result::Error::NotFound))
}
