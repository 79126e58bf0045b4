//! Joint campaigns: the `campaigns` rows behind local `Group` actors, their
//! participants, and the campaigns a local alert names.

use super::{
    actors::ActorRow,
    now_ms,
    schema::{
        actors, alert_campaigns, campaign_actions, campaign_participants, campaign_statements,
        campaigns, statement_requests, statement_signers,
    },
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

/// Every open local campaign's actor id, with the row id of each actor
/// who has joined it: what [`joined_among`] would find, read once for many
/// incoming alerts.
pub fn joined_pairs(conn: &mut DbConn) -> Result<Vec<(String, i64)>, DbError> {
    Ok(campaigns::table
        .inner_join(actors::table)
        .inner_join(
            campaign_participants::table.on(campaign_participants::campaign_id.eq(campaigns::id)),
        )
        .filter(actors::local.eq(true))
        .filter(campaigns::closed_at.is_null())
        .filter(campaign_participants::state.eq(JOINED))
        .select((actors::ap_id, campaign_participants::actor_id))
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

/// A statement waiting for its co-signers.
pub const DRAFT: &str = "draft";
/// A statement every co-signer confirmed, now published.
pub const PUBLISHED: &str = "published";
/// A co-signer (or a request on its side) not yet answered.
pub const PENDING: &str = "pending";
/// A co-signer that confirmed.
pub const CONFIRMED: &str = "confirmed";

/// A row of `campaign_statements`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = campaign_statements)]
pub struct StatementRow {
    pub id: i64,
    pub campaign_id: i64,
    pub title: String,
    pub body: String,
    pub language: String,
    pub state: String,
    pub alert_id: Option<i64>,
    pub created_at: i64,
    pub published_at: Option<i64>,
}

/// A row of `statement_signers`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = statement_signers)]
pub struct SignerRow {
    pub id: i64,
    pub statement_id: i64,
    pub actor_id: i64,
    pub offer_ap_id: Option<String>,
    pub state: String,
    pub confirmed_at: Option<i64>,
}

/// A row of `statement_requests`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = statement_requests)]
pub struct RequestRow {
    pub id: i64,
    pub offer_ap_id: String,
    pub campaign_actor_id: i64,
    pub actor_id: i64,
    pub title: String,
    pub content_html: String,
    pub state: String,
    pub received_at: i64,
    pub answered_at: Option<i64>,
}

/// Stores a draft statement with its co-signers (actor id, Offer id).
pub fn insert_statement(
    conn: &mut DbConn,
    campaign_id: i64,
    title: &str,
    body: &str,
    language: &str,
    signers: &[(i64, Option<String>)],
) -> Result<StatementRow, DbError> {
    super::transaction(conn, |conn| {
        let now = now_ms();
        let id: i64 = diesel::insert_into(campaign_statements::table)
            .values((
                campaign_statements::campaign_id.eq(campaign_id),
                campaign_statements::title.eq(title),
                campaign_statements::body.eq(body),
                campaign_statements::language.eq(language),
                campaign_statements::state.eq(DRAFT),
                campaign_statements::created_at.eq(now),
            ))
            .returning(campaign_statements::id)
            .get_result(conn)?;
        for (actor_id, offer) in signers {
            diesel::insert_into(statement_signers::table)
                .values((
                    statement_signers::statement_id.eq(id),
                    statement_signers::actor_id.eq(actor_id),
                    statement_signers::offer_ap_id.eq(offer),
                    statement_signers::state.eq(PENDING),
                ))
                .execute(conn)?;
        }
        statement(conn, id)?.ok_or(DbError::Query(diesel::NotFound))
    })
}

/// A statement by id.
pub fn statement(conn: &mut DbConn, id: i64) -> Result<Option<StatementRow>, DbError> {
    Ok(campaign_statements::table
        .find(id)
        .select(StatementRow::as_select())
        .first(conn)
        .optional()?)
}

/// A campaign's statements, newest first.
pub fn statements(conn: &mut DbConn, campaign_id: i64) -> Result<Vec<StatementRow>, DbError> {
    Ok(campaign_statements::table
        .filter(campaign_statements::campaign_id.eq(campaign_id))
        .order(campaign_statements::id.desc())
        .select(StatementRow::as_select())
        .load(conn)?)
}

/// A statement's co-signers with their actors, in the order given.
pub fn signers(
    conn: &mut DbConn,
    statement_id: i64,
) -> Result<Vec<(SignerRow, ActorRow)>, DbError> {
    Ok(statement_signers::table
        .inner_join(actors::table.on(actors::id.eq(statement_signers::actor_id)))
        .filter(statement_signers::statement_id.eq(statement_id))
        .order(statement_signers::id)
        .select((SignerRow::as_select(), ActorRow::as_select()))
        .load(conn)?)
}

/// Marks the co-signer `actor_id` of `statement_id` confirmed; false if it
/// is not one or had confirmed already.
pub fn confirm_signer(
    conn: &mut DbConn,
    statement_id: i64,
    actor_id: i64,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        statement_signers::table
            .filter(statement_signers::statement_id.eq(statement_id))
            .filter(statement_signers::actor_id.eq(actor_id))
            .filter(statement_signers::state.eq(PENDING)),
    )
    .set((
        statement_signers::state.eq(CONFIRMED),
        statement_signers::confirmed_at.eq(Some(now_ms())),
    ))
    .execute(conn)?
        > 0)
}

/// The statement an Offer was sent for, with the co-signer it went to.
pub fn signer_by_offer(conn: &mut DbConn, offer_ap_id: &str) -> Result<Option<SignerRow>, DbError> {
    Ok(statement_signers::table
        .filter(statement_signers::offer_ap_id.eq(offer_ap_id))
        .select(SignerRow::as_select())
        .first(conn)
        .optional()?)
}

/// Marks a draft published as `alert_id`; false if another call did first.
pub fn mark_published(conn: &mut DbConn, id: i64, alert_id: i64) -> Result<bool, DbError> {
    Ok(diesel::update(
        campaign_statements::table
            .find(id)
            .filter(campaign_statements::state.eq(DRAFT)),
    )
    .set((
        campaign_statements::state.eq(PUBLISHED),
        campaign_statements::alert_id.eq(Some(alert_id)),
        campaign_statements::published_at.eq(Some(now_ms())),
    ))
    .execute(conn)?
        > 0)
}

/// Records a statement offered to the local actor `actor_id`; false if the
/// Offer was already recorded.
pub fn record_request(
    conn: &mut DbConn,
    offer_ap_id: &str,
    campaign_actor_id: i64,
    actor_id: i64,
    title: &str,
    content_html: &str,
) -> Result<bool, DbError> {
    let exists = statement_requests::table
        .filter(statement_requests::offer_ap_id.eq(offer_ap_id))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(statement_requests::table)
        .values((
            statement_requests::offer_ap_id.eq(offer_ap_id),
            statement_requests::campaign_actor_id.eq(campaign_actor_id),
            statement_requests::actor_id.eq(actor_id),
            statement_requests::title.eq(title),
            statement_requests::content_html.eq(content_html),
            statement_requests::state.eq(PENDING),
            statement_requests::received_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Statements offered to local organisations, newest first.
pub fn requests(conn: &mut DbConn) -> Result<Vec<(RequestRow, ActorRow)>, DbError> {
    Ok(statement_requests::table
        .inner_join(actors::table.on(actors::id.eq(statement_requests::campaign_actor_id)))
        .order(statement_requests::id.desc())
        .select((RequestRow::as_select(), ActorRow::as_select()))
        .load(conn)?)
}

/// One offered statement.
pub fn request(conn: &mut DbConn, id: i64) -> Result<Option<RequestRow>, DbError> {
    Ok(statement_requests::table
        .find(id)
        .select(RequestRow::as_select())
        .first(conn)
        .optional()?)
}

/// Marks an offered statement answered with `state`.
pub fn answer_request(conn: &mut DbConn, id: i64, state: &str) -> Result<(), DbError> {
    diesel::update(statement_requests::table.find(id))
        .set((
            statement_requests::state.eq(state),
            statement_requests::answered_at.eq(Some(now_ms())),
        ))
        .execute(conn)?;
    Ok(())
}

/// A row of `campaign_actions`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = campaign_actions)]
pub struct ActionRow {
    pub id: i64,
    pub campaign_id: i64,
    pub title: String,
    pub body: String,
    pub content_html: String,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub created_at: i64,
}

/// Stores a call to action.
pub fn insert_action(
    conn: &mut DbConn,
    campaign_id: i64,
    title: &str,
    body: &str,
    content_html: &str,
    starts_at: Option<i64>,
    ends_at: Option<i64>,
) -> Result<ActionRow, DbError> {
    let id: i64 = diesel::insert_into(campaign_actions::table)
        .values((
            campaign_actions::campaign_id.eq(campaign_id),
            campaign_actions::title.eq(title),
            campaign_actions::body.eq(body),
            campaign_actions::content_html.eq(content_html),
            campaign_actions::starts_at.eq(starts_at),
            campaign_actions::ends_at.eq(ends_at),
            campaign_actions::created_at.eq(now_ms()),
        ))
        .returning(campaign_actions::id)
        .get_result(conn)?;
    Ok(campaign_actions::table
        .find(id)
        .select(ActionRow::as_select())
        .first(conn)?)
}

/// A campaign's calls to action, newest first.
pub fn actions(conn: &mut DbConn, campaign_id: i64) -> Result<Vec<ActionRow>, DbError> {
    Ok(campaign_actions::table
        .filter(campaign_actions::campaign_id.eq(campaign_id))
        .order(campaign_actions::id.desc())
        .select(ActionRow::as_select())
        .load(conn)?)
}

/// One call to action of a campaign.
pub fn action(conn: &mut DbConn, campaign_id: i64, id: i64) -> Result<Option<ActionRow>, DbError> {
    Ok(campaign_actions::table
        .find(id)
        .filter(campaign_actions::campaign_id.eq(campaign_id))
        .select(ActionRow::as_select())
        .first(conn)
        .optional()?)
}
