//! Follow relations, inbound and outbound, with their state.

use super::{
    actors::ActorRow,
    in_list::in_list,
    now_ms,
    schema::{actors, follows},
    DbConn, DbError,
};
use diesel::prelude::*;

/// The follow is sent or received but not yet answered.
pub const PENDING: &str = "pending";
/// The followed actor accepted.
pub const ACCEPTED: &str = "accepted";
/// The followed actor rejected.
pub const REJECTED: &str = "rejected";

/// A row of `follows`: `follower_id` follows `target_id`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = follows)]
pub struct FollowRow {
    pub id: i64,
    pub follower_id: i64,
    pub target_id: i64,
    pub state: String,
    pub activity_ap_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Records (or renews) a follow in `state`; a repeated Follow replaces the
/// activity id, so an Undo of the newest one matches.
pub fn upsert(
    conn: &mut DbConn,
    follower_id: i64,
    target_id: i64,
    state: &str,
    activity_ap_id: &str,
) -> Result<FollowRow, DbError> {
    super::transaction(conn, |conn| {
        let now = now_ms();
        let existing = find(conn, follower_id, target_id)?;
        if let Some(row) = existing {
            diesel::update(follows::table.find(row.id))
                .set((
                    follows::state.eq(state),
                    follows::activity_ap_id.eq(activity_ap_id),
                    follows::updated_at.eq(now),
                ))
                .execute(conn)?;
        } else {
            diesel::insert_into(follows::table)
                .values((
                    follows::follower_id.eq(follower_id),
                    follows::target_id.eq(target_id),
                    follows::state.eq(state),
                    follows::activity_ap_id.eq(activity_ap_id),
                    follows::created_at.eq(now),
                    follows::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
        find(conn, follower_id, target_id)?.ok_or(DbError::Query(diesel::result::Error::NotFound))
    })
}

/// The relation between two actors, if any.
pub fn find(
    conn: &mut DbConn,
    follower_id: i64,
    target_id: i64,
) -> Result<Option<FollowRow>, DbError> {
    Ok(follows::table
        .filter(follows::follower_id.eq(follower_id))
        .filter(follows::target_id.eq(target_id))
        .select(FollowRow::as_select())
        .first(conn)
        .optional()?)
}

/// The relation created by the Follow activity with this id.
pub fn by_activity(conn: &mut DbConn, activity_ap_id: &str) -> Result<Option<FollowRow>, DbError> {
    Ok(follows::table
        .filter(follows::activity_ap_id.eq(activity_ap_id))
        .select(FollowRow::as_select())
        .first(conn)
        .optional()?)
}

/// Sets the state of a relation (Accept or Reject arrived).
pub fn set_state(conn: &mut DbConn, id: i64, state: &str) -> Result<(), DbError> {
    diesel::update(follows::table.find(id))
        .set((follows::state.eq(state), follows::updated_at.eq(now_ms())))
        .execute(conn)?;
    Ok(())
}

/// Removes a relation (Undo Follow, or a follower gone for good).
pub fn delete(conn: &mut DbConn, follower_id: i64, target_id: i64) -> Result<bool, DbError> {
    let n = diesel::delete(
        follows::table
            .filter(follows::follower_id.eq(follower_id))
            .filter(follows::target_id.eq(target_id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Accepted followers of `target_id`, oldest first.
pub fn followers(conn: &mut DbConn, target_id: i64) -> Result<Vec<ActorRow>, DbError> {
    Ok(follows::table
        .inner_join(actors::table.on(actors::id.eq(follows::follower_id)))
        .filter(follows::target_id.eq(target_id))
        .filter(follows::state.eq(ACCEPTED))
        .order(follows::id)
        .select(ActorRow::as_select())
        .load(conn)?)
}

/// Actors `follower_id` follows, with the state of each relation.
pub fn following(conn: &mut DbConn, follower_id: i64) -> Result<Vec<(ActorRow, String)>, DbError> {
    Ok(follows::table
        .inner_join(actors::table.on(actors::id.eq(follows::target_id)))
        .filter(follows::follower_id.eq(follower_id))
        .order(follows::id)
        .select((ActorRow::as_select(), follows::state))
        .load(conn)?)
}

/// Number of accepted followers of `target_id`.
pub fn follower_count(conn: &mut DbConn, target_id: i64) -> Result<i64, DbError> {
    Ok(follows::table
        .filter(follows::target_id.eq(target_id))
        .filter(follows::state.eq(ACCEPTED))
        .count()
        .get_result(conn)?)
}

/// Number of accepted relations where `follower_id` follows someone.
pub fn following_count(conn: &mut DbConn, follower_id: i64) -> Result<i64, DbError> {
    Ok(follows::table
        .filter(follows::follower_id.eq(follower_id))
        .filter(follows::state.eq(ACCEPTED))
        .count()
        .get_result(conn)?)
}

/// Removes every relation in which a remote actor whose inbox (or shared
/// inbox) is `inbox` follows someone: that inbox answered 410 Gone.
pub fn remove_followers_at_inbox(conn: &mut DbConn, inbox: &str) -> Result<usize, DbError> {
    let gone: Vec<i64> = actors::table
        .filter(actors::local.eq(false))
        .filter(actors::inbox.eq(inbox).or(actors::shared_inbox.eq(inbox)))
        .select(actors::id)
        .load(conn)?;
    if gone.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(follows::table.filter(follows::follower_id.eq_any(&gone))).execute(conn)?)
}

/// Where to deliver to `target_id`'s accepted followers: one inbox per
/// server (its shared inbox when it has one), in a stable order.
pub fn follower_inboxes(conn: &mut DbConn, target_id: i64) -> Result<Vec<String>, DbError> {
    let mut inboxes: Vec<String> = followers(conn, target_id)?
        .into_iter()
        .filter(|a| !a.local)
        .map(|a| a.shared_inbox.unwrap_or(a.inbox))
        .collect();
    inboxes.sort();
    inboxes.dedup();
    Ok(inboxes)
}

/// The actors among `actor_ids` that [`is_followed_locally`] would call
/// followed, in one query whatever their number (the inbox's writer asks
/// for its whole group's).
pub fn followed_locally_among(
    conn: &mut DbConn,
    actor_ids: &[i64],
) -> Result<std::collections::HashSet<i64>, DbError> {
    if actor_ids.is_empty() {
        return Ok(Default::default());
    }
    let query = follows::table
        .inner_join(actors::table.on(actors::id.eq(follows::follower_id)))
        .filter(follows::state.eq(ACCEPTED))
        .filter(actors::local.eq(true))
        .select(follows::target_id)
        .distinct();
    let found: Vec<i64> = super::load(conn, query.filter(in_list(follows::target_id, actor_ids)))?;
    Ok(found.into_iter().collect())
}

/// True when some local actor follows `actor_id` (accepted): their posts
/// are wanted here.
pub fn is_followed_locally(conn: &mut DbConn, actor_id: i64) -> Result<bool, DbError> {
    let query = follows::table
        .inner_join(actors::table.on(actors::id.eq(follows::follower_id)))
        .filter(follows::target_id.eq(actor_id))
        .filter(follows::state.eq(ACCEPTED))
        .filter(actors::local.eq(true))
        .count();
    let n: i64 = super::get_result(conn, query)?;
    Ok(n > 0)
}
