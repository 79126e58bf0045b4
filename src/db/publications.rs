//! Publication tables: issues of the Digest and the Communiqué with their
//! ordered items, e-mail subscribers, and the per-(issue, subscriber) send
//! rows that make sending resumable.

use super::{
    alerts::AlertRow,
    now_ms,
    schema::{alerts, mail_sends, publication_issues, publication_items, review_items},
    DbConn, DbError,
};
use diesel::prelude::*;

/// An issue being prepared.
pub const DRAFT: &str = "draft";
/// A published issue; its items no longer change.
pub const PUBLISHED: &str = "published";

/// A row of `publication_issues`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = publication_issues)]
pub struct IssueRow {
    pub id: i64,
    pub publication: String,
    pub language: String,
    pub period_start: i64,
    pub period_end: i64,
    pub title: String,
    pub state: String,
    pub ap_id: Option<String>,
    pub published_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A row of `publication_items`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = publication_items)]
pub struct ItemRow {
    pub id: i64,
    pub issue_id: i64,
    pub section: String,
    pub section_position: i32,
    pub position: i32,
    pub story: Option<String>,
    pub alert_id: Option<i64>,
    pub heading: String,
    pub body_html: String,
    pub url: Option<String>,
    pub body_markdown: Option<String>,
}

/// An item to insert; positions come from its place in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    pub section: String,
    pub story: Option<String>,
    pub alert_id: Option<i64>,
    pub heading: String,
    pub body_html: String,
    pub url: Option<String>,
    /// The Markdown an editor wrote (Communiqué items), kept for edits.
    pub body_markdown: Option<String>,
}

/// What an editor writes of an item: added to a draft, or replacing an
/// item's text and section.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemText {
    pub section: String,
    pub heading: String,
    pub body_markdown: String,
    pub body_html: String,
    pub url: Option<String>,
}

/// A new issue's header.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue<'a> {
    pub publication: &'a str,
    pub language: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    pub title: &'a str,
}

/// Creates a draft issue with its items: sections are numbered in order of
/// first appearance, items in list order within their section.
pub fn create_issue(
    conn: &mut DbConn,
    issue: &NewIssue<'_>,
    items: &[NewItem],
) -> Result<i64, DbError> {
    super::transaction(conn, |conn| {
        let now = now_ms();
        let id: i64 = diesel::insert_into(publication_issues::table)
            .values((
                publication_issues::publication.eq(issue.publication),
                publication_issues::language.eq(issue.language),
                publication_issues::period_start.eq(issue.period_start),
                publication_issues::period_end.eq(issue.period_end),
                publication_issues::title.eq(issue.title),
                publication_issues::state.eq(DRAFT),
                publication_issues::created_at.eq(now),
                publication_issues::updated_at.eq(now),
            ))
            .returning(publication_issues::id)
            .get_result(conn)?;
        insert_items(conn, id, items)?;
        Ok(id)
    })
}

/// Numbers sections in order of first appearance and items within each.
#[derive(Default)]
struct Positions<'a> {
    sections: Vec<(&'a str, i32)>,
}

impl<'a> Positions<'a> {
    /// (section position, item position) of the next item in `section`.
    fn next(&mut self, section: &'a str) -> (i32, i32) {
        let s = match self.sections.iter().position(|(name, _)| *name == section) {
            Some(s) => s,
            None => {
                self.sections.push((section, 0));
                self.sections.len() - 1
            }
        };
        let position = self.sections[s].1;
        self.sections[s].1 += 1;
        (s as i32, position)
    }
}

fn insert_items(conn: &mut DbConn, issue_id: i64, items: &[NewItem]) -> Result<(), DbError> {
    let mut positions = Positions::default();
    for item in items {
        let (s, position) = positions.next(&item.section);
        diesel::insert_into(publication_items::table)
            .values((
                publication_items::issue_id.eq(issue_id),
                publication_items::section.eq(&item.section),
                publication_items::section_position.eq(s),
                publication_items::position.eq(position),
                publication_items::story.eq(&item.story),
                publication_items::alert_id.eq(item.alert_id),
                publication_items::heading.eq(&item.heading),
                publication_items::body_html.eq(&item.body_html),
                publication_items::url.eq(&item.url),
                publication_items::body_markdown.eq(&item.body_markdown),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// One issue.
pub fn issue(conn: &mut DbConn, id: i64) -> Result<IssueRow, DbError> {
    Ok(publication_issues::table
        .find(id)
        .select(IssueRow::as_select())
        .first(conn)?)
}

/// Issues of a publication, newest period first.
pub fn issues(conn: &mut DbConn, publication: &str, limit: i64) -> Result<Vec<IssueRow>, DbError> {
    Ok(publication_issues::table
        .filter(publication_issues::publication.eq(publication))
        .order((
            publication_issues::period_end.desc(),
            publication_issues::id.desc(),
        ))
        .limit(limit)
        .select(IssueRow::as_select())
        .load(conn)?)
}

/// Published issues of a publication, latest first.
pub fn published_issues(
    conn: &mut DbConn,
    publication: &str,
    limit: i64,
) -> Result<Vec<IssueRow>, DbError> {
    published_page(conn, publication, limit, 0)
}

/// Published issues of `publication`, latest first, `limit` from `offset`.
pub fn published_page(
    conn: &mut DbConn,
    publication: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<IssueRow>, DbError> {
    Ok(publication_issues::table
        .filter(publication_issues::publication.eq(publication))
        .filter(publication_issues::state.eq(PUBLISHED))
        .order((
            publication_issues::published_at.desc(),
            publication_issues::id.desc(),
        ))
        .limit(limit)
        .offset(offset)
        .select(IssueRow::as_select())
        .load(conn)?)
}

/// How many issues of `publication` are published.
pub fn published_count(conn: &mut DbConn, publication: &str) -> Result<i64, DbError> {
    Ok(publication_issues::table
        .filter(publication_issues::publication.eq(publication))
        .filter(publication_issues::state.eq(PUBLISHED))
        .count()
        .get_result(conn)?)
}

/// Items of an issue in reading order.
pub fn items(conn: &mut DbConn, issue_id: i64) -> Result<Vec<ItemRow>, DbError> {
    Ok(publication_items::table
        .filter(publication_items::issue_id.eq(issue_id))
        .order((
            publication_items::section_position,
            publication_items::position,
            publication_items::id,
        ))
        .select(ItemRow::as_select())
        .load(conn)?)
}

/// Why an editor action on an issue was refused.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The issue is published and can no longer change.
    #[error("issue {0} is published")]
    Published(i64),
    /// The new order does not name exactly the issue's items.
    #[error("the order must list every item of the issue exactly once")]
    BadOrder,
    /// The issue has no item with this id.
    #[error("the issue has no item {0}")]
    NoItem(i64),
    /// The issue's items are taken from alerts (the Digest): they are
    /// reordered and trimmed, not written.
    #[error("the items of issue {0} are taken from alerts and cannot be written")]
    NotWritten(i64),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Runs an edit of a draft in one transaction. Refusals are decided before
/// any write, so they travel out of the transaction as its value.
fn edit_draft<T, F>(conn: &mut DbConn, issue_id: i64, f: F) -> Result<T, EditError>
where
    F: FnOnce(&mut DbConn) -> Result<Result<T, EditError>, DbError>,
{
    super::transaction(conn, |conn| {
        if issue(conn, issue_id)?.state != DRAFT {
            return Ok(Err(EditError::Published(issue_id)));
        }
        f(conn)
    })?
}

/// Reorders a draft: `order` lists every item id once; each item keeps its
/// section, sections take the order of their first item in `order`.
pub fn reorder(conn: &mut DbConn, issue_id: i64, order: &[i64]) -> Result<(), EditError> {
    edit_draft(conn, issue_id, |conn| {
        let current = items(conn, issue_id)?;
        let mut wanted = order.to_vec();
        wanted.sort_unstable();
        let mut have: Vec<i64> = current.iter().map(|i| i.id).collect();
        have.sort_unstable();
        if wanted != have {
            return Ok(Err(EditError::BadOrder));
        }
        write_order(conn, &current, order)?;
        touch(conn, issue_id)?;
        Ok(Ok(()))
    })
}

/// Numbers `current` (every item of an issue) in the order of `order`,
/// which names each of them once.
fn write_order(conn: &mut DbConn, current: &[ItemRow], order: &[i64]) -> Result<(), DbError> {
    let mut positions = Positions::default();
    for id in order {
        let item = current
            .iter()
            .find(|i| i.id == *id)
            .expect("order names the current items");
        let (s, position) = positions.next(&item.section);
        diesel::update(publication_items::table.find(id))
            .set((
                publication_items::section_position.eq(s),
                publication_items::position.eq(position),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Where `item` goes when it is (re)placed in `section`: after the last
/// item of that section, or, when the issue has none, before the first
/// item of a section that comes later in `section_order` (else at the
/// end). `order` is the issue's items in reading order with their
/// sections; the answer is every item id in the new order.
pub fn placed(order: &[(i64, &str)], item: i64, section: &str, section_order: &[&str]) -> Vec<i64> {
    let rank = |s: &str| section_order.iter().position(|o| *o == s);
    let rest: Vec<(i64, &str)> = order
        .iter()
        .copied()
        .filter(|(id, _)| *id != item)
        .collect();
    let at = match rest.iter().rposition(|(_, s)| *s == section) {
        Some(last) => last + 1,
        None => rest
            .iter()
            .position(|(_, s)| match (rank(s), rank(section)) {
                (Some(theirs), Some(ours)) => theirs > ours,
                _ => false,
            })
            .unwrap_or(rest.len()),
    };
    let mut ids: Vec<i64> = rest.iter().map(|(id, _)| *id).collect();
    ids.insert(at, item);
    ids
}

/// Puts an edited or added item in its section (see [`placed`]) and
/// renumbers the issue.
fn place(
    conn: &mut DbConn,
    issue_id: i64,
    item: i64,
    section: &str,
    section_order: &[&str],
) -> Result<(), DbError> {
    let current = items(conn, issue_id)?;
    let order: Vec<(i64, &str)> = current.iter().map(|i| (i.id, i.section.as_str())).collect();
    let order = placed(&order, item, section, section_order);
    write_order(conn, &current, &order)
}

/// Refuses to write items into an issue whose items come from alerts.
fn written(conn: &mut DbConn, issue_id: i64) -> Result<Result<(), EditError>, DbError> {
    Ok(
        if issue(conn, issue_id)?.publication == crate::publications::DIGEST {
            Err(EditError::NotWritten(issue_id))
        } else {
            Ok(())
        },
    )
}

/// Adds an item to a draft, at the end of its section (a new section
/// takes its place in `section_order`). Returns the item's id.
pub fn add_item(
    conn: &mut DbConn,
    issue_id: i64,
    text: &ItemText,
    section_order: &[&str],
) -> Result<i64, EditError> {
    edit_draft(conn, issue_id, |conn| {
        if let Err(e) = written(conn, issue_id)? {
            return Ok(Err(e));
        }
        let id: i64 = diesel::insert_into(publication_items::table)
            .values((
                publication_items::issue_id.eq(issue_id),
                publication_items::section.eq(&text.section),
                publication_items::section_position.eq(i32::MAX),
                publication_items::position.eq(i32::MAX),
                publication_items::heading.eq(&text.heading),
                publication_items::body_html.eq(&text.body_html),
                publication_items::body_markdown.eq(&text.body_markdown),
                publication_items::url.eq(&text.url),
            ))
            .returning(publication_items::id)
            .get_result(conn)?;
        place(conn, issue_id, id, &text.section, section_order)?;
        touch(conn, issue_id)?;
        Ok(Ok(id))
    })
}

/// Replaces the text of an item of a draft. An item moved to another
/// section goes to the end of it, as [`add_item`] places it.
pub fn edit_item(
    conn: &mut DbConn,
    issue_id: i64,
    item_id: i64,
    text: &ItemText,
    section_order: &[&str],
) -> Result<(), EditError> {
    edit_draft(conn, issue_id, |conn| {
        if let Err(e) = written(conn, issue_id)? {
            return Ok(Err(e));
        }
        let Some(before) = items(conn, issue_id)?.into_iter().find(|i| i.id == item_id) else {
            return Ok(Err(EditError::NoItem(item_id)));
        };
        diesel::update(publication_items::table.find(item_id))
            .set((
                publication_items::section.eq(&text.section),
                publication_items::heading.eq(&text.heading),
                publication_items::body_html.eq(&text.body_html),
                publication_items::body_markdown.eq(&text.body_markdown),
                publication_items::url.eq(&text.url),
            ))
            .execute(conn)?;
        if before.section != text.section {
            place(conn, issue_id, item_id, &text.section, section_order)?;
        }
        touch(conn, issue_id)?;
        Ok(Ok(()))
    })
}

/// Removes items from a draft (trim).
pub fn trim(conn: &mut DbConn, issue_id: i64, remove: &[i64]) -> Result<usize, EditError> {
    edit_draft(conn, issue_id, |conn| {
        let n = diesel::delete(
            publication_items::table
                .filter(publication_items::issue_id.eq(issue_id))
                .filter(publication_items::id.eq_any(remove)),
        )
        .execute(conn)?;
        touch(conn, issue_id)?;
        Ok(Ok(n))
    })
}

/// Marks a draft published with its ActivityPub id. Publishing twice is
/// refused.
pub fn publish(conn: &mut DbConn, issue_id: i64, ap_id: &str) -> Result<IssueRow, EditError> {
    edit_draft(conn, issue_id, |conn| {
        let now = now_ms();
        diesel::update(publication_issues::table.find(issue_id))
            .set((
                publication_issues::state.eq(PUBLISHED),
                publication_issues::ap_id.eq(ap_id),
                publication_issues::published_at.eq(now),
                publication_issues::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(Ok(issue(conn, issue_id)?))
    })
}

fn touch(conn: &mut DbConn, issue_id: i64) -> Result<(), DbError> {
    diesel::update(publication_issues::table.find(issue_id))
        .set(publication_issues::updated_at.eq(now_ms()))
        .execute(conn)?;
    Ok(())
}

/// Alerts for a Digest of `[start, end)`: published alerts this instance
/// approved or curated in review (by decision time), and its own local
/// alerts (by publication time), in the given language.
pub fn digest_alerts(
    conn: &mut DbConn,
    language: &str,
    start: i64,
    end: i64,
) -> Result<Vec<AlertRow>, DbError> {
    use crate::db::curation::{APPROVED, CURATED};
    let reviewed: Vec<(Option<i64>, i64, String)> = review_items::table
        .filter(review_items::state.eq_any([APPROVED, CURATED]))
        .filter(review_items::decided_at.ge(start))
        .filter(review_items::decided_at.lt(end))
        .select((
            review_items::curated_alert_id,
            review_items::alert_id,
            review_items::state,
        ))
        .load(conn)?;
    // A curated item is shown as this instance's edited version, which is
    // local and so also found below; the member original is left out.
    let mut ids: Vec<i64> = reviewed
        .iter()
        .filter(|(_, _, state)| state == APPROVED)
        .map(|(_, alert, _)| *alert)
        .collect();
    let local: Vec<i64> = alerts::table
        .filter(alerts::local.eq(true))
        .filter(alerts::published_at.ge(start))
        .filter(alerts::published_at.lt(end))
        .select(alerts::id)
        .load(conn)?;
    ids.extend(local);
    ids.extend(reviewed.iter().filter_map(|(curated, _, _)| *curated));
    ids.sort_unstable();
    ids.dedup();
    Ok(alerts::table
        .filter(alerts::id.eq_any(ids))
        .filter(alerts::language.eq(language))
        .filter(alerts::status.eq(crate::alerts::STATUS_PUBLISHED))
        .order(alerts::id)
        .select(AlertRow::as_select())
        .load(conn)?)
}

/// Send progress of an issue: (sent, sending) rows.
pub fn send_progress(conn: &mut DbConn, issue_id: i64) -> Result<(i64, i64), DbError> {
    let counts = send_counts(conn, issue_id)?;
    let count = |state: &str| {
        counts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n)
    };
    Ok((count(SEND_SENT), count(SEND_SENDING)))
}

/// Send rows of an issue by state.
pub fn send_counts(conn: &mut DbConn, issue_id: i64) -> Result<Vec<(String, i64)>, DbError> {
    Ok(mail_sends::table
        .filter(mail_sends::issue_id.eq(issue_id))
        .group_by(mail_sends::state)
        .select((mail_sends::state, diesel::dsl::count_star()))
        .load(conn)?)
}

/// A subscriber waits for the confirmation link (double opt-in).
pub const SUB_PENDING: &str = "pending";
/// A confirmed subscriber receives issues.
pub const SUB_CONFIRMED: &str = "confirmed";
/// Paused after a hard bounce or a complaint.
pub const SUB_PAUSED: &str = "paused";
/// Unsubscribed.
pub const SUB_UNSUBSCRIBED: &str = "unsubscribed";

/// A send row claimed for the SMTP hand-over and not yet accepted: sent
/// (again) by the next claim.
pub const SEND_SENDING: &str = "sending";
/// A send row after the SMTP server answered 250 to the message's DATA.
pub const SEND_SENT: &str = "sent";
/// The SMTP server refused the message for good (5xx); not retried.
pub const SEND_FAILED: &str = "failed";
/// Nothing in the issue for the subscriber's regions; no message.
pub const SEND_SKIPPED: &str = "skipped";

/// Adds a subscriber with a fresh random token (for confirmation,
/// preferences and unsubscribe links) and returns its id; an address
/// already present keeps its row and its id is returned.
pub fn add_subscriber(
    conn: &mut DbConn,
    email: &str,
    state: &str,
    publications: &[String],
    languages: &[String],
    regions: &[String],
) -> Result<i64, DbError> {
    use super::alerts::join_list;
    use super::schema::subscribers;
    super::transaction(conn, |conn| {
        if let Some(id) = subscribers::table
            .filter(subscribers::email.eq(email))
            .select(subscribers::id)
            .first::<i64>(conn)
            .optional()?
        {
            return Ok(id);
        }
        let now = now_ms();
        let token = hex::encode(rand::random::<[u8; 24]>());
        Ok(diesel::insert_into(subscribers::table)
            .values((
                subscribers::email.eq(email),
                subscribers::state.eq(state),
                subscribers::token.eq(token),
                subscribers::publications.eq(join_list(publications)),
                subscribers::languages.eq(join_list(languages)),
                subscribers::regions.eq(join_list(regions)),
                subscribers::created_at.eq(now),
                subscribers::confirmed_at.eq((state == SUB_CONFIRMED).then_some(now)),
                subscribers::updated_at.eq(now),
            ))
            .returning(subscribers::id)
            .get_result(conn)?)
    })
}

/// One recipient of a claimed batch.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = super::schema::subscribers)]
pub struct Recipient {
    /// Subscriber id (the only thing about a subscriber that is logged).
    pub id: i64,
    /// Address.
    pub email: String,
    /// Secret of the preferences and unsubscribe links.
    pub token: String,
    /// Chosen regions as stored (`,a,b,`; empty list: all).
    pub regions: String,
}

/// Claims up to `limit` recipients of an issue: first the rows left
/// `sending` (claimed by a sender that stopped before the server accepted
/// them, or before we recorded that it did), then confirmed subscribers of
/// the issue's publication and language that have no send row yet, which
/// are recorded as `sending` in the same transaction.
///
/// Rows left `sending` are sent again with the same Message-ID: a message
/// is lost only if never accepted, and sent twice only if the server
/// accepted it and the process stopped before [`mark_sent`] committed.
/// Only one sender may claim for an issue at a time ([`take_issue`]).
pub fn claim_batch(
    conn: &mut DbConn,
    issue_id: i64,
    limit: i64,
) -> Result<Vec<Recipient>, DbError> {
    use super::schema::subscribers;
    super::transaction(conn, |conn| {
        let issue = issue(conn, issue_id)?;
        let mut batch: Vec<Recipient> = mail_sends::table
            .inner_join(subscribers::table.on(subscribers::id.eq(mail_sends::subscriber_id)))
            .filter(mail_sends::issue_id.eq(issue_id))
            .filter(mail_sends::state.eq(SEND_SENDING))
            .order(subscribers::id)
            .limit(limit)
            .select(Recipient::as_select())
            .load(conn)?;
        let room = limit - batch.len() as i64;
        if room <= 0 {
            return Ok(batch);
        }
        let claimed = mail_sends::table
            .filter(mail_sends::issue_id.eq(issue_id))
            .select(mail_sends::subscriber_id);
        let fresh: Vec<Recipient> = subscribers::table
            .filter(subscribers::state.eq(SUB_CONFIRMED))
            .filter(subscribers::publications.like(format!("%,{},%", issue.publication)))
            .filter(subscribers::languages.like(format!("%,{},%", issue.language)))
            .filter(subscribers::id.ne_all(claimed))
            .order(subscribers::id)
            .limit(room)
            .select(Recipient::as_select())
            .load(conn)?;
        let now = now_ms();
        // One statement per row: multi-row inserts are not available on
        // diesel's two-back-end connection.
        for r in &fresh {
            diesel::insert_into(mail_sends::table)
                .values((
                    mail_sends::issue_id.eq(issue_id),
                    mail_sends::subscriber_id.eq(r.id),
                    mail_sends::state.eq(SEND_SENDING),
                    mail_sends::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
        batch.extend(fresh);
        Ok(batch)
    })
}

/// Records the final state of a claimed send: [`SEND_SENT`] right after the
/// server's 250, [`SEND_FAILED`] or [`SEND_SKIPPED`].
pub fn mark_send(
    conn: &mut DbConn,
    issue_id: i64,
    subscriber_id: i64,
    state: &str,
) -> Result<(), DbError> {
    diesel::update(mail_sends::table.find((issue_id, subscriber_id)))
        .set((
            mail_sends::state.eq(state),
            mail_sends::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks a claimed send as accepted by the SMTP server.
pub fn mark_sent(conn: &mut DbConn, issue_id: i64, subscriber_id: i64) -> Result<(), DbError> {
    mark_send(conn, issue_id, subscriber_id, SEND_SENT)
}

/// Makes `holder` the only sender of an issue until `now + lease_ms`:
/// true if the issue had no sender, its sender's lease ran out, or
/// `holder` already held it (renewal). A finished issue is never taken.
pub fn take_issue(
    conn: &mut DbConn,
    issue_id: i64,
    holder: &str,
    lease_ms: i64,
) -> Result<bool, DbError> {
    use super::schema::mail_runs;
    let now = now_ms();
    // Each statement is atomic on both back ends: the update takes a lease
    // that ran out (or renews our own), the insert a first one.
    let renewed = diesel::update(
        mail_runs::table
            .find(issue_id)
            .filter(mail_runs::finished_at.is_null())
            .filter(
                mail_runs::holder
                    .eq(holder)
                    .or(mail_runs::lease_until.le(now)),
            ),
    )
    .set((
        mail_runs::holder.eq(holder),
        mail_runs::lease_until.eq(now + lease_ms),
    ))
    .execute(conn)?;
    if renewed == 1 {
        return Ok(true);
    }
    let insert = diesel::insert_into(mail_runs::table).values((
        mail_runs::issue_id.eq(issue_id),
        mail_runs::holder.eq(holder),
        mail_runs::lease_until.eq(now + lease_ms),
        mail_runs::started_at.eq(now),
    ));
    let inserted = match conn {
        DbConn::Pg(pg) => insert.on_conflict_do_nothing().execute(pg)?,
        DbConn::Sqlite(lite) => insert.on_conflict_do_nothing().execute(lite)?,
    };
    Ok(inserted == 1)
}

/// Ends `holder`'s hold on an issue; `finished` records that every
/// recipient has a final state.
pub fn release_issue(
    conn: &mut DbConn,
    issue_id: i64,
    holder: &str,
    finished: bool,
) -> Result<(), DbError> {
    use super::schema::mail_runs;
    let now = now_ms();
    diesel::update(
        mail_runs::table
            .find(issue_id)
            .filter(mail_runs::holder.eq(holder)),
    )
    .set((
        mail_runs::lease_until.eq(now),
        mail_runs::finished_at.eq(finished.then_some(now)),
    ))
    .execute(conn)?;
    Ok(())
}

/// When an issue's sending finished, if it did.
pub fn send_finished_at(conn: &mut DbConn, issue_id: i64) -> Result<Option<i64>, DbError> {
    use super::schema::mail_runs;
    Ok(mail_runs::table
        .find(issue_id)
        .select(mail_runs::finished_at)
        .first::<Option<i64>>(conn)
        .optional()?
        .flatten())
}

/// Confirmed subscribers of an issue's publication and language who have
/// no send row for it yet.
pub fn waiting_count(conn: &mut DbConn, issue_id: i64) -> Result<i64, DbError> {
    use super::schema::subscribers;
    let issue = issue(conn, issue_id)?;
    let claimed = mail_sends::table
        .filter(mail_sends::issue_id.eq(issue_id))
        .select(mail_sends::subscriber_id);
    Ok(subscribers::table
        .filter(subscribers::state.eq(SUB_CONFIRMED))
        .filter(subscribers::publications.like(format!("%,{},%", issue.publication)))
        .filter(subscribers::languages.like(format!("%,{},%", issue.language)))
        .filter(subscribers::id.ne_all(claimed))
        .count()
        .get_result(conn)?)
}

/// Where the sending of an issue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Never started.
    NotStarted,
    /// A sender holds the issue (its lease runs).
    Sending,
    /// Started, not finished, and nobody holds it: it continues when
    /// started again.
    Stopped,
    /// Every recipient has a final state.
    Finished,
}

/// The e-mail progress of an issue, as the issue's page and
/// `tocsin digest status` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailProgress {
    /// Accepted by the SMTP server.
    pub sent: i64,
    /// Claimed and not yet accepted (sent again by the next run).
    pub sending: i64,
    /// Refused for good; those subscribers were paused.
    pub failed: i64,
    /// Nothing in the issue for the subscriber's regions.
    pub skipped: i64,
    /// Confirmed subscribers of the issue's publication and language
    /// without a send row yet.
    pub waiting: i64,
    /// Paused subscribers of the issue's publication and language without
    /// a send row: they do not receive it.
    pub paused: i64,
    /// When the first run started.
    pub started_at: Option<i64>,
    /// Until when the current sender holds the issue.
    pub lease_until: Option<i64>,
    /// When every recipient had a final state.
    pub finished_at: Option<i64>,
}

impl MailProgress {
    /// The state of the sending at `now`.
    pub fn run_state(&self, now: i64) -> RunState {
        match (self.started_at, self.finished_at, self.lease_until) {
            (None, _, _) => RunState::NotStarted,
            (_, Some(_), _) => RunState::Finished,
            (_, None, Some(lease)) if lease > now => RunState::Sending,
            _ => RunState::Stopped,
        }
    }
}

/// The e-mail progress of an issue.
pub fn mail_progress(conn: &mut DbConn, issue_id: i64) -> Result<MailProgress, DbError> {
    use super::schema::{mail_runs, subscribers};
    let counts = send_counts(conn, issue_id)?;
    let count = |state: &str| {
        counts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n)
    };
    let issue = issue(conn, issue_id)?;
    let claimed = mail_sends::table
        .filter(mail_sends::issue_id.eq(issue_id))
        .select(mail_sends::subscriber_id);
    let paused: i64 = subscribers::table
        .filter(subscribers::state.eq(SUB_PAUSED))
        .filter(subscribers::publications.like(format!("%,{},%", issue.publication)))
        .filter(subscribers::languages.like(format!("%,{},%", issue.language)))
        .filter(subscribers::id.ne_all(claimed))
        .count()
        .get_result(conn)?;
    let run: Option<(i64, i64, Option<i64>)> = mail_runs::table
        .find(issue_id)
        .select((
            mail_runs::started_at,
            mail_runs::lease_until,
            mail_runs::finished_at,
        ))
        .first(conn)
        .optional()?;
    Ok(MailProgress {
        sent: count(SEND_SENT),
        sending: count(SEND_SENDING),
        failed: count(SEND_FAILED),
        skipped: count(SEND_SKIPPED),
        waiting: waiting_count(conn, issue_id)?,
        paused,
        started_at: run.map(|r| r.0),
        lease_until: run.map(|r| r.1),
        finished_at: run.and_then(|r| r.2),
    })
}

/// The latest issues of every publication, newest first.
pub fn latest_issues(conn: &mut DbConn, limit: i64) -> Result<Vec<IssueRow>, DbError> {
    Ok(publication_issues::table
        .order((
            publication_issues::updated_at.desc(),
            publication_issues::id.desc(),
        ))
        .limit(limit)
        .select(IssueRow::as_select())
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: [&str; 3] = ["news", "events", "awards"];

    #[test]
    fn an_item_moved_to_a_section_goes_to_its_end() {
        let order = [(1, "news"), (2, "news"), (3, "events"), (4, "awards")];
        assert_eq!(placed(&order, 1, "events", &ORDER), [2, 3, 1, 4]);
        assert_eq!(placed(&order, 4, "news", &ORDER), [1, 2, 4, 3]);
    }

    #[test]
    fn a_new_section_takes_its_place_in_the_section_order() {
        let order = [(1, "news"), (2, "awards")];
        assert_eq!(placed(&order, 9, "events", &ORDER), [1, 9, 2]);
        assert_eq!(placed(&order, 1, "events", &ORDER), [1, 2]);
        assert_eq!(placed(&order, 9, "unknown", &ORDER), [1, 2, 9]);
        assert_eq!(placed(&[], 9, "news", &ORDER), [9]);
    }

    #[test]
    fn run_state_follows_the_lease() {
        let mut p = MailProgress {
            sent: 0,
            sending: 0,
            failed: 0,
            skipped: 0,
            waiting: 3,
            paused: 0,
            started_at: None,
            lease_until: None,
            finished_at: None,
        };
        assert_eq!(p.run_state(100), RunState::NotStarted);
        p.started_at = Some(10);
        p.lease_until = Some(200);
        assert_eq!(p.run_state(100), RunState::Sending);
        assert_eq!(p.run_state(300), RunState::Stopped);
        p.finished_at = Some(250);
        assert_eq!(p.run_state(300), RunState::Finished);
    }
}
