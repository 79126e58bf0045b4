//! E-mail subscribers: sign-up with double opt-in, preferences and
//! unsubscribe through the subscriber's secret token, import of people who
//! consented before, and pausing after bounces and complaints.
//!
//! Addresses are stored here only; callers log subscriber ids.

use super::{
    alerts::{join_list, split_list},
    now_ms,
    publications::{SUB_CONFIRMED, SUB_PAUSED, SUB_PENDING, SUB_UNSUBSCRIBED},
    schema::subscribers,
    DbConn, DbError,
};
use diesel::prelude::*;

/// A row of `subscribers`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = subscribers)]
pub struct SubscriberRow {
    pub id: i64,
    pub email: String,
    pub state: String,
    pub token: String,
    pub publications: String,
    pub languages: String,
    pub regions: String,
    pub paused_reason: Option<String>,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub updated_at: i64,
    pub consent: String,
    pub notice_sent_at: Option<i64>,
}

impl SubscriberRow {
    /// The language of messages about the subscription itself: the first
    /// chosen one.
    pub fn first_language(&self) -> String {
        split_list(&self.languages)
            .into_iter()
            .next()
            .unwrap_or_else(|| "en".to_string())
    }
}

/// What a subscriber receives. An empty region list means every region.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Choices {
    /// Publication keys (`digest`, `communique`).
    pub publications: Vec<String>,
    /// Language codes.
    pub languages: Vec<String>,
    /// Region keys.
    pub regions: Vec<String>,
}

/// Consent recorded for a sign-up confirmed through its link.
pub const CONSENT_CONFIRMED: &str = "sign-up form, confirmed by e-mail link";

/// What a sign-up did.
#[derive(Debug, Clone, PartialEq)]
pub enum SignUp {
    /// New, or pending or unsubscribed before: now pending with the given
    /// choices; a confirmation link is to be sent.
    Confirm(SubscriberRow),
    /// Already confirmed or paused: nothing changed (a stranger must not
    /// change someone's subscription); a link to the preferences page is
    /// to be sent.
    Known(SubscriberRow),
}

fn new_token() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

/// The subscriber with this address (compared case-insensitively in the
/// domain, exactly in the local part, as stored by [`normalise`]).
pub fn by_email(conn: &mut DbConn, email: &str) -> Result<Option<SubscriberRow>, DbError> {
    Ok(subscribers::table
        .filter(subscribers::email.eq(normalise(email)))
        .select(SubscriberRow::as_select())
        .first(conn)
        .optional()?)
}

/// The subscriber whose secret token this is.
pub fn by_token(conn: &mut DbConn, token: &str) -> Result<Option<SubscriberRow>, DbError> {
    if token.is_empty() {
        return Ok(None);
    }
    Ok(subscribers::table
        .filter(subscribers::token.eq(token))
        .select(SubscriberRow::as_select())
        .first(conn)
        .optional()?)
}

/// One subscriber.
pub fn by_id(conn: &mut DbConn, id: i64) -> Result<SubscriberRow, DbError> {
    Ok(subscribers::table
        .find(id)
        .select(SubscriberRow::as_select())
        .first(conn)?)
}

/// An address as stored: trimmed, domain in lower case.
pub fn normalise(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => email.to_string(),
    }
}

/// Records a sign-up from the form (see [`SignUp`]).
pub fn sign_up(conn: &mut DbConn, email: &str, choices: &Choices) -> Result<SignUp, DbError> {
    let email = normalise(email);
    super::transaction(conn, |conn| {
        let now = now_ms();
        if let Some(row) = by_email(conn, &email)? {
            if row.state == SUB_CONFIRMED || row.state == SUB_PAUSED {
                return Ok(SignUp::Known(row));
            }
            diesel::update(subscribers::table.find(row.id))
                .set((
                    subscribers::state.eq(SUB_PENDING),
                    subscribers::publications.eq(join_list(&choices.publications)),
                    subscribers::languages.eq(join_list(&choices.languages)),
                    subscribers::regions.eq(join_list(&choices.regions)),
                    subscribers::updated_at.eq(now),
                ))
                .execute(conn)?;
            return Ok(SignUp::Confirm(by_id(conn, row.id)?));
        }
        let id: i64 = diesel::insert_into(subscribers::table)
            .values((
                subscribers::email.eq(&email),
                subscribers::state.eq(SUB_PENDING),
                subscribers::token.eq(new_token()),
                subscribers::publications.eq(join_list(&choices.publications)),
                subscribers::languages.eq(join_list(&choices.languages)),
                subscribers::regions.eq(join_list(&choices.regions)),
                subscribers::created_at.eq(now),
                subscribers::updated_at.eq(now),
            ))
            .returning(subscribers::id)
            .get_result(conn)?;
        Ok(SignUp::Confirm(by_id(conn, id)?))
    })
}

/// Follows a confirmation link: a pending subscriber becomes confirmed.
/// Returns the row, or `None` for an unknown token.
pub fn confirm(conn: &mut DbConn, token: &str) -> Result<Option<SubscriberRow>, DbError> {
    let Some(row) = by_token(conn, token)? else {
        return Ok(None);
    };
    if row.state == SUB_PENDING {
        let now = now_ms();
        diesel::update(subscribers::table.find(row.id))
            .set((
                subscribers::state.eq(SUB_CONFIRMED),
                subscribers::confirmed_at.eq(now),
                subscribers::consent.eq(CONSENT_CONFIRMED),
                subscribers::updated_at.eq(now),
            ))
            .execute(conn)?;
        return Ok(Some(by_id(conn, row.id)?));
    }
    Ok(Some(row))
}

/// How long after a message about the subscription (confirmation or
/// preferences link) the next one may go to the same address.
pub const NOTICE_INTERVAL_MS: i64 = 3_600_000;

/// Takes the right to send subscriber `id` a message about its
/// subscription at `now`: true, and recorded, if none went out in the
/// last [`NOTICE_INTERVAL_MS`]. One statement, so two sign-ups at once
/// cannot both take it.
pub fn take_notice_slot(conn: &mut DbConn, id: i64, now: i64) -> Result<bool, DbError> {
    let taken = diesel::update(
        subscribers::table.find(id).filter(
            subscribers::notice_sent_at
                .is_null()
                .or(subscribers::notice_sent_at.le(now - NOTICE_INTERVAL_MS)),
        ),
    )
    .set(subscribers::notice_sent_at.eq(now))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Gives back a slot taken at `taken_at` whose message could not be sent,
/// restoring the time of the message before it.
pub fn release_notice_slot(
    conn: &mut DbConn,
    id: i64,
    taken_at: i64,
    previous: Option<i64>,
) -> Result<(), DbError> {
    diesel::update(
        subscribers::table
            .find(id)
            .filter(subscribers::notice_sent_at.eq(taken_at)),
    )
    .set(subscribers::notice_sent_at.eq(previous))
    .execute(conn)?;
    Ok(())
}

/// Saves new choices from the preferences page.
pub fn set_choices(conn: &mut DbConn, id: i64, choices: &Choices) -> Result<(), DbError> {
    diesel::update(subscribers::table.find(id))
        .set((
            subscribers::publications.eq(join_list(&choices.publications)),
            subscribers::languages.eq(join_list(&choices.languages)),
            subscribers::regions.eq(join_list(&choices.regions)),
            subscribers::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Sets a subscriber's state (`unsubscribed`, or `confirmed` again from the
/// preferences page, which the token's owner alone can reach).
pub fn set_state(conn: &mut DbConn, id: i64, state: &str) -> Result<(), DbError> {
    let now = now_ms();
    diesel::update(subscribers::table.find(id))
        .set((
            subscribers::state.eq(state),
            subscribers::paused_reason.eq(None::<String>),
            subscribers::updated_at.eq(now),
        ))
        .execute(conn)?;
    if state == SUB_CONFIRMED {
        diesel::update(
            subscribers::table
                .find(id)
                .filter(subscribers::confirmed_at.is_null()),
        )
        .set(subscribers::confirmed_at.eq(now))
        .execute(conn)?;
    }
    Ok(())
}

/// One-click unsubscribe: true if the token was known.
pub fn unsubscribe(conn: &mut DbConn, token: &str) -> Result<Option<i64>, DbError> {
    let Some(row) = by_token(conn, token)? else {
        return Ok(None);
    };
    if row.state != SUB_UNSUBSCRIBED {
        set_state(conn, row.id, SUB_UNSUBSCRIBED)?;
    }
    Ok(Some(row.id))
}

/// Pauses the subscriber with this address after a hard bounce or a
/// complaint (`reason`); returns its id, or `None` for an unknown address.
/// An unsubscribed address stays unsubscribed.
pub fn pause(conn: &mut DbConn, email: &str, reason: &str) -> Result<Option<i64>, DbError> {
    let Some(row) = by_email(conn, email)? else {
        return Ok(None);
    };
    if row.state != SUB_UNSUBSCRIBED {
        diesel::update(subscribers::table.find(row.id))
            .set((
                subscribers::state.eq(SUB_PAUSED),
                subscribers::paused_reason.eq(reason),
                subscribers::updated_at.eq(now_ms()),
            ))
            .execute(conn)?;
    }
    Ok(Some(row.id))
}

/// Pauses a subscriber by id (a hard bounce while sending).
pub fn pause_id(conn: &mut DbConn, id: i64, reason: &str) -> Result<(), DbError> {
    diesel::update(subscribers::table.find(id))
        .set((
            subscribers::state.eq(SUB_PAUSED),
            subscribers::paused_reason.eq(reason),
            subscribers::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// One subscriber to import.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// Address.
    pub email: String,
    /// Choices.
    pub choices: Choices,
}

/// Imports people who consented before, as confirmed, with `consent` as
/// the record of that consent. Addresses already present are left as they
/// are (so a second import of the same file changes nothing). Returns
/// (added, already present). All or nothing.
pub fn import(
    conn: &mut DbConn,
    rows: &[Imported],
    consent: &str,
) -> Result<(usize, usize), DbError> {
    super::transaction(conn, |conn| {
        let now = now_ms();
        let (mut added, mut present) = (0, 0);
        for row in rows {
            let email = normalise(&row.email);
            if by_email(conn, &email)?.is_some() {
                present += 1;
                continue;
            }
            diesel::insert_into(subscribers::table)
                .values((
                    subscribers::email.eq(&email),
                    subscribers::state.eq(SUB_CONFIRMED),
                    subscribers::token.eq(new_token()),
                    subscribers::publications.eq(join_list(&row.choices.publications)),
                    subscribers::languages.eq(join_list(&row.choices.languages)),
                    subscribers::regions.eq(join_list(&row.choices.regions)),
                    subscribers::consent.eq(consent),
                    subscribers::created_at.eq(now),
                    subscribers::confirmed_at.eq(now),
                    subscribers::updated_at.eq(now),
                ))
                .execute(conn)?;
            added += 1;
        }
        Ok((added, present))
    })
}

/// Number of subscribers by state.
pub fn counts(conn: &mut DbConn) -> Result<Vec<(String, i64)>, DbError> {
    Ok(subscribers::table
        .group_by(subscribers::state)
        .select((subscribers::state, diesel::dsl::count_star()))
        .order(subscribers::state)
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_stored_with_the_domain_in_lower_case() {
        assert_eq!(normalise(" Ana.B@Example.ORG "), "Ana.B@example.org");
        assert_eq!(normalise("nodomain"), "nodomain");
    }
}
