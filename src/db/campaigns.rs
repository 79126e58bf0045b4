//! Joint campaigns: the `campaigns` rows behind local `Group` actors, their
//! participants, and the campaigns a local alert names.

use super::{
    actors::ActorRow,
    now_ms,
    schema::{actors, alert_campaigns, campaign_participants, campaigns},
    DbConn, DbError,
};
use diesel::prelude::*;

/// Invited by the hosting staff; not yet following the campaign.
pub const INVITED: &str = "invited";
/// Invited and following: a participant whose alerts the campaign announces.
pub const JOINED: &str = "joined";
/// Stopped following after joining.
pub const LEFT: &str = "left";

/// A row of `campaigns`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = campaigns)]
pub struct CampaignRow {
    pub id: i64,
    pub actor_id: i64,
    pub aims: String,
    pub country: Option<String>,
    pub theme: Option<String>,
    pub created_at: i64,
    pub closed_at: Option<i64>,
}

/// A row of `campaign_participants`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = campaign_participants)]
pub struct ParticipantRow {
    pub id: i64,
    pub campaign_id: i64,
    pub actor_id: i64,
    pub state: String,
    pub invited_at: i64,
    pub joined_at: Option<i64>,
}

/// Stores a new campaign for the local actor `actor_id`.
pub fn insert(
    conn: &mut DbConn,
    actor_id: i64,
    aims: &str,
    country: Option<&str>,
    theme: Option<&str>,
) -> Result<CampaignRow, DbError> {
    diesel::insert_into(campaigns::table)
        .values((
            campaigns::actor_id.eq(actor_id),
            campaigns::aims.eq(aims),
            campaigns::country.eq(country),
            campaigns::theme.eq(theme),
            campaigns::created_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(campaigns::table
        .filter(campaigns::actor_id.eq(actor_id))
        .select(CampaignRow::as_select())
        .first(conn)?)
}

/// Every campaign with its actor, oldest first.
pub fn all(conn: &mut DbConn) -> Result<Vec<(CampaignRow, ActorRow)>, DbError> {
    Ok(campaigns::table
        .inner_join(actors::table)
        .order(campaigns::id)
        .select((CampaignRow::as_select(), ActorRow::as_select()))
        .load(conn)?)
}

/// The campaign whose actor is `actor_id`, if it is one.
pub fn by_actor(conn: &mut DbConn, actor_id: i64) -> Result<Option<CampaignRow>, DbError> {
    Ok(campaigns::table
        .filter(campaigns::actor_id.eq(actor_id))
        .select(CampaignRow::as_select())
        .first(conn)
        .optional()?)
}

/// The campaign of the local actor named `username`.
pub fn by_username(
    conn: &mut DbConn,
    username: &str,
) -> Result<Option<(CampaignRow, ActorRow)>, DbError> {
    let Some(actor) = super::actors::local_by_username(conn, username)? else {
        return Ok(None);
    };
    Ok(by_actor(conn, actor.id)?.map(|c| (c, actor)))
}

/// The participation of `actor_id` in `campaign_id`, if invited.
pub fn participant(
    conn: &mut DbConn,
    campaign_id: i64,
    actor_id: i64,
) -> Result<Option<ParticipantRow>, DbError> {
    Ok(campaign_participants::table
        .filter(campaign_participants::campaign_id.eq(campaign_id))
        .filter(campaign_participants::actor_id.eq(actor_id))
        .select(ParticipantRow::as_select())
        .first(conn)
        .optional()?)
}

/// Invites `actor_id`, in `state` (`invited`, or `joined` when it already
/// follows); an existing participation keeps its state unless it had left.
pub fn invite(
    conn: &mut DbConn,
    campaign_id: i64,
    actor_id: i64,
    state: &str,
) -> Result<ParticipantRow, DbError> {
    super::transaction(conn, |conn| {
        let now = now_ms();
        match participant(conn, campaign_id, actor_id)? {
            Some(p) if p.state == JOINED => {}
            Some(p) => set_state(conn, p.id, state)?,
            None => {
                diesel::insert_into(campaign_participants::table)
                    .values((
                        campaign_participants::campaign_id.eq(campaign_id),
                        campaign_participants::actor_id.eq(actor_id),
                        campaign_participants::state.eq(state),
                        campaign_participants::invited_at.eq(now),
                        campaign_participants::joined_at.eq((state == JOINED).then_some(now)),
                    ))
                    .execute(conn)?;
            }
        }
        participant(conn, campaign_id, actor_id)?.ok_or(DbError::Query(diesel::NotFound))
    })
}

/// Sets a participation's state (`joined` also records when).
pub fn set_state(conn: &mut DbConn, id: i64, state: &str) -> Result<(), DbError> {
    diesel::update(campaign_participants::table.find(id))
        .set(campaign_participants::state.eq(state))
        .execute(conn)?;
    if state == JOINED {
        diesel::update(campaign_participants::table.find(id))
            .set(campaign_participants::joined_at.eq(Some(now_ms())))
            .execute(conn)?;
    }
    Ok(())
}

/// Removes an invitation or participation; false if there was none.
pub fn remove(conn: &mut DbConn, campaign_id: i64, actor_id: i64) -> Result<bool, DbError> {
    Ok(diesel::delete(
        campaign_participants::table
            .filter(campaign_participants::campaign_id.eq(campaign_id))
            .filter(campaign_participants::actor_id.eq(actor_id)),
    )
    .execute(conn)?
        > 0)
}

/// A campaign's invited and joined organisations, in invitation order.
pub fn participants(
    conn: &mut DbConn,
    campaign_id: i64,
) -> Result<Vec<(ParticipantRow, ActorRow)>, DbError> {
    Ok(campaign_participants::table
        .inner_join(actors::table.on(actors::id.eq(campaign_participants::actor_id)))
        .filter(campaign_participants::campaign_id.eq(campaign_id))
        .order(campaign_participants::id)
        .select((ParticipantRow::as_select(), ActorRow::as_select()))
        .load(conn)?)
}

/// The local campaigns among the actor ids `named` in which `actor_id` has
/// joined, with their actors.
pub fn joined_among(
    conn: &mut DbConn,
    actor_id: i64,
    named: &[String],
) -> Result<Vec<(CampaignRow, ActorRow)>, DbError> {
    if named.is_empty() {
        return Ok(Vec::new());
    }
    Ok(campaigns::table
        .inner_join(actors::table)
        .inner_join(
            campaign_participants::table.on(campaign_participants::campaign_id.eq(campaigns::id)),
        )
        .filter(actors::ap_id.eq_any(named))
        .filter(actors::local.eq(true))
        .filter(campaigns::closed_at.is_null())
        .filter(campaign_participants::actor_id.eq(actor_id))
        .filter(campaign_participants::state.eq(JOINED))
        .select((CampaignRow::as_select(), ActorRow::as_select()))
        .load(conn)?)
}

/// Replaces the campaigns (actor id, inbox) a local alert group names.
pub fn set_alert_campaigns(
    conn: &mut DbConn,
    alert_id: i64,
    named: &[(String, String)],
) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        diesel::delete(alert_campaigns::table.filter(alert_campaigns::alert_id.eq(alert_id)))
            .execute(conn)?;
        for (ap_id, inbox) in named {
            diesel::insert_into(alert_campaigns::table)
                .values((
                    alert_campaigns::alert_id.eq(alert_id),
                    alert_campaigns::campaign_ap_id.eq(ap_id),
                    alert_campaigns::campaign_inbox.eq(inbox),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The campaigns (actor id, inbox) a local alert group names.
pub fn alert_campaigns(conn: &mut DbConn, alert_id: i64) -> Result<Vec<(String, String)>, DbError> {
    Ok(alert_campaigns::table
        .filter(alert_campaigns::alert_id.eq(alert_id))
        .order(alert_campaigns::campaign_ap_id)
        .select((
            alert_campaigns::campaign_ap_id,
            alert_campaigns::campaign_inbox,
        ))
        .load(conn)?)
}
