//! Curation tables: the member directory, feeds and their rules, the review
//! queue, and the boosts (announces) each feed made.

use super::{
    actors::ActorRow,
    alerts::{join_list, split_list},
    now_ms,
    schema::{actors, announces, curation_pending, feeds, members, review_items},
    DbConn, DbError,
};
use diesel::prelude::*;

/// A review item waits for an editor.
pub const PENDING: &str = "pending";
/// Approved: the chosen feeds boosted the member's original.
pub const APPROVED: &str = "approved";
/// Rejected, with a reason.
pub const REJECTED: &str = "rejected";
/// Curated: an edited version by this instance was published and boosted.
pub const CURATED: &str = "curated";

/// A row of `feeds`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = feeds)]
pub struct FeedRow {
    pub actor_id: i64,
    pub mode: String,
    pub regions: String,
    pub countries: String,
    pub categories: String,
    pub languages: String,
    pub urgencies: String,
    /// Member handles (`user@host`) whose alerts it takes; empty: every one.
    pub members: String,
    /// When an editor retired it (it then boosts nothing).
    pub retired_at: Option<i64>,
}

/// Inserts or replaces a feed's rules.
pub fn upsert_feed(conn: &mut DbConn, feed: &FeedRow) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        let exists: i64 = feeds::table.find(feed.actor_id).count().get_result(conn)?;
        if exists > 0 {
            diesel::update(feeds::table.find(feed.actor_id))
                .set(feed)
                .execute(conn)?;
        } else {
            diesel::insert_into(feeds::table)
                .values(feed)
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Every feed with its actor.
pub fn all_feeds(conn: &mut DbConn) -> Result<Vec<(FeedRow, ActorRow)>, DbError> {
    Ok(feeds::table
        .inner_join(actors::table)
        .order(feeds::actor_id)
        .select((FeedRow::as_select(), ActorRow::as_select()))
        .load(conn)?)
}

/// The feed whose actor is the local `username`.
pub fn feed_by_username(
    conn: &mut DbConn,
    username: &str,
) -> Result<Option<(FeedRow, ActorRow)>, DbError> {
    Ok(feeds::table
        .inner_join(actors::table)
        .filter(actors::local.eq(true))
        .filter(actors::username.eq(username))
        .select((FeedRow::as_select(), ActorRow::as_select()))
        .first(conn)
        .optional()?)
}

/// A row of `members`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = members)]
pub struct MemberRow {
    pub actor_id: i64,
    pub region: Option<String>,
    pub countries: String,
    pub added_at: i64,
}

/// Adds (or updates) a member.
pub fn upsert_member(
    conn: &mut DbConn,
    actor_id: i64,
    region: Option<&str>,
    countries: &[String],
) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        diesel::delete(members::table.find(actor_id)).execute(conn)?;
        diesel::insert_into(members::table)
            .values((
                members::actor_id.eq(actor_id),
                members::region.eq(region),
                members::countries.eq(join_list(countries)),
                members::added_at.eq(now_ms()),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// Removes a member; true if it was one.
pub fn remove_member(conn: &mut DbConn, actor_id: i64) -> Result<bool, DbError> {
    Ok(diesel::delete(members::table.find(actor_id)).execute(conn)? > 0)
}

/// The directory: members with their actors, in the order added.
pub fn members(conn: &mut DbConn) -> Result<Vec<(MemberRow, ActorRow)>, DbError> {
    Ok(members::table
        .inner_join(actors::table)
        .order(members::added_at)
        .select((MemberRow::as_select(), ActorRow::as_select()))
        .load(conn)?)
}

/// A row of `review_items`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = review_items)]
pub struct ReviewRow {
    pub id: i64,
    pub alert_id: i64,
    pub state: String,
    /// Usernames of the feeds whose rules matched, `,a,b,`.
    pub matched_feeds: String,
    /// Usernames of the feeds that boosted it on approval.
    pub approved_feeds: String,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub curated_alert_id: Option<i64>,
    pub edited_after_approval: bool,
    pub created_at: i64,
    /// Title and text of the alert when it was approved or curated.
    pub approved_text: Option<String>,
}

impl ReviewRow {
    /// Matched feed usernames.
    pub fn matched(&self) -> Vec<String> {
        split_list(&self.matched_feeds)
    }

    /// Feeds that boosted on approval.
    pub fn approved(&self) -> Vec<String> {
        split_list(&self.approved_feeds)
    }
}

/// Queues `alert_id` for review (once); adds feeds to an existing item.
pub fn queue_for_review(
    conn: &mut DbConn,
    alert_id: i64,
    feeds: &[String],
) -> Result<ReviewRow, DbError> {
    super::transaction(conn, |conn| {
        if let Some(item) = review_for_alert(conn, alert_id)? {
            let mut matched = item.matched();
            for f in feeds {
                if !matched.contains(f) {
                    matched.push(f.clone());
                }
            }
            diesel::update(review_items::table.find(item.id))
                .set(review_items::matched_feeds.eq(join_list(&matched)))
                .execute(conn)?;
        } else {
            diesel::insert_into(review_items::table)
                .values((
                    review_items::alert_id.eq(alert_id),
                    review_items::state.eq(PENDING),
                    review_items::matched_feeds.eq(join_list(feeds)),
                    review_items::approved_feeds.eq(""),
                    review_items::edited_after_approval.eq(false),
                    review_items::created_at.eq(now_ms()),
                ))
                .execute(conn)?;
        }
        review_for_alert(conn, alert_id)?.ok_or(DbError::Query(diesel::result::Error::NotFound))
    })
}

/// The review item of an alert.
pub fn review_for_alert(conn: &mut DbConn, alert_id: i64) -> Result<Option<ReviewRow>, DbError> {
    Ok(review_items::table
        .filter(review_items::alert_id.eq(alert_id))
        .select(ReviewRow::as_select())
        .first(conn)
        .optional()?)
}

/// A review item by id.
pub fn review(conn: &mut DbConn, id: i64) -> Result<ReviewRow, DbError> {
    Ok(review_items::table
        .find(id)
        .select(ReviewRow::as_select())
        .first(conn)?)
}

/// Review items in `state` (all when `None`), oldest first.
pub fn reviews(
    conn: &mut DbConn,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<ReviewRow>, DbError> {
    let mut q = review_items::table.into_boxed();
    if let Some(s) = state {
        q = q.filter(review_items::state.eq(s.to_string()));
    }
    Ok(q.order(review_items::created_at)
        .limit(limit)
        .select(ReviewRow::as_select())
        .load(conn)?)
}

/// Records an editor's decision.
pub fn decide(
    conn: &mut DbConn,
    id: i64,
    state: &str,
    approved_feeds: &[String],
    reason: Option<&str>,
    decided_by: &str,
    curated_alert_id: Option<i64>,
) -> Result<(), DbError> {
    diesel::update(review_items::table.find(id))
        .set((
            review_items::state.eq(state),
            review_items::approved_feeds.eq(join_list(approved_feeds)),
            review_items::reason.eq(reason),
            review_items::decided_by.eq(Some(decided_by)),
            review_items::decided_at.eq(Some(now_ms())),
            review_items::curated_alert_id.eq(curated_alert_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// Keeps what the alert said when it was approved or curated.
pub fn record_approved_text(conn: &mut DbConn, id: i64, text: &str) -> Result<(), DbError> {
    diesel::update(review_items::table.find(id))
        .set(review_items::approved_text.eq(Some(text)))
        .execute(conn)?;
    Ok(())
}

/// Flags an approved (or curated) item whose alert the member edited.
pub fn mark_edited_after_approval(conn: &mut DbConn, alert_id: i64) -> Result<(), DbError> {
    diesel::update(
        review_items::table
            .filter(review_items::alert_id.eq(alert_id))
            .filter(review_items::state.eq_any([APPROVED, CURATED])),
    )
    .set(review_items::edited_after_approval.eq(true))
    .execute(conn)?;
    Ok(())
}

/// A row of `announces`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = announces)]
pub struct AnnounceRow {
    pub id: i64,
    pub feed_actor_id: i64,
    pub alert_id: i64,
    pub ap_id: String,
    pub undone: bool,
    pub created_at: i64,
}

/// Records that `feed_actor_id` boosts `alert_id` as `ap_id`; false if it
/// already did (each object at most once per feed).
pub fn record_announce(
    conn: &mut DbConn,
    feed_actor_id: i64,
    alert_id: i64,
    ap_id: &str,
) -> Result<bool, DbError> {
    super::transaction(conn, |conn| {
        let exists: i64 = announces::table
            .filter(announces::feed_actor_id.eq(feed_actor_id))
            .filter(announces::alert_id.eq(alert_id))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            return Ok(false);
        }
        diesel::insert_into(announces::table)
            .values((
                announces::feed_actor_id.eq(feed_actor_id),
                announces::alert_id.eq(alert_id),
                announces::ap_id.eq(ap_id),
                announces::undone.eq(false),
                announces::created_at.eq(now_ms()),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

/// Live boosts of an alert, with the boosting feed's actor.
pub fn announces_of(
    conn: &mut DbConn,
    alert_id: i64,
) -> Result<Vec<(AnnounceRow, ActorRow)>, DbError> {
    Ok(announces::table
        .inner_join(actors::table.on(actors::id.eq(announces::feed_actor_id)))
        .filter(announces::alert_id.eq(alert_id))
        .filter(announces::undone.eq(false))
        .select((AnnounceRow::as_select(), ActorRow::as_select()))
        .load(conn)?)
}

/// Marks a boost undone.
pub fn mark_undone(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    diesel::update(announces::table.find(id))
        .set(announces::undone.eq(true))
        .execute(conn)?;
    Ok(())
}

/// Ids of alerts a feed boosts (live), newest boost first.
pub fn boosted_alert_ids(conn: &mut DbConn, feed_actor_id: i64) -> Result<Vec<i64>, DbError> {
    Ok(announces::table
        .filter(announces::feed_actor_id.eq(feed_actor_id))
        .filter(announces::undone.eq(false))
        .order(announces::id.desc())
        .select(announces::alert_id)
        .load(conn)?)
}

/// A feed's live boosts with their alerts, newest first.
pub fn boosts_of_feed(
    conn: &mut DbConn,
    feed_actor_id: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<(AnnounceRow, super::alerts::AlertRow)>, DbError> {
    use super::schema::alerts;
    Ok(announces::table
        .inner_join(alerts::table.on(alerts::id.eq(announces::alert_id)))
        .filter(announces::feed_actor_id.eq(feed_actor_id))
        .filter(announces::undone.eq(false))
        .filter(alerts::status.eq(crate::alerts::STATUS_PUBLISHED))
        .order(announces::id.desc())
        .limit(limit)
        .offset(offset)
        .select((
            AnnounceRow::as_select(),
            super::alerts::AlertRow::as_select(),
        ))
        .load(conn)?)
}

/// Number of a feed's live boosts.
pub fn boost_count(conn: &mut DbConn, feed_actor_id: i64) -> Result<i64, DbError> {
    Ok(announces::table
        .filter(announces::feed_actor_id.eq(feed_actor_id))
        .filter(announces::undone.eq(false))
        .count()
        .get_result(conn)?)
}

/// A row of `curation_pending`: an incoming alert stored but not yet
/// curated (feeds' boosts, the review queue, campaigns).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = curation_pending)]
pub struct PendingCuration {
    pub id: i64,
    pub alert_id: i64,
    /// The alert was already here: an edit.
    pub edit: bool,
    /// For an edit, the activity to forward to the feeds' followers.
    pub raw_activity: Option<String>,
    /// The campaigns the object names, as a JSON array of ids.
    pub named: String,
    pub created_at: i64,
}

/// Records, in the transaction that stored the alert `alert_id`, that it
/// awaits curation; returns the row's id.
pub fn mark_pending(
    conn: &mut DbConn,
    alert_id: i64,
    edit: bool,
    raw_activity: Option<&str>,
    named: &[String],
) -> Result<i64, DbError> {
    let named = serde_json::to_string(named).unwrap_or_else(|_| "[]".into());
    Ok(diesel::insert_into(curation_pending::table)
        .values((
            curation_pending::alert_id.eq(alert_id),
            curation_pending::edit.eq(edit),
            curation_pending::raw_activity.eq(raw_activity),
            curation_pending::named.eq(named),
            curation_pending::created_at.eq(now_ms()),
        ))
        .returning(curation_pending::id)
        .get_result(conn)?)
}

/// Up to `limit` curations still pending that were recorded before
/// `before_ms`, with a row id above `after_id`, oldest first.
pub fn pending_before(
    conn: &mut DbConn,
    before_ms: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<PendingCuration>, DbError> {
    Ok(curation_pending::table
        .filter(curation_pending::created_at.lt(before_ms))
        .filter(curation_pending::id.gt(after_id))
        .order(curation_pending::id)
        .limit(limit)
        .select(PendingCuration::as_select())
        .load(conn)?)
}

/// Forgets the pending curations `ids`: they are done.
pub fn forget_pending(conn: &mut DbConn, ids: &[i64]) -> Result<usize, DbError> {
    Ok(
        diesel::delete(curation_pending::table.filter(curation_pending::id.eq_any(ids)))
            .execute(conn)?,
    )
}
