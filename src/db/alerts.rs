//! Alerts (one row per language version), their attachments, and
//! tombstones of deletes that arrived before their object.

use super::{
    in_list::in_list,
    now_ms,
    schema::{alert_attachments, alerts, alerts_fts, tombstones},
    DbConn, DbError,
};
use diesel::prelude::*;
use std::collections::HashMap;

/// A row of `alerts`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = alerts)]
pub struct AlertRow {
    pub id: i64,
    pub ap_id: String,
    pub actor_id: i64,
    pub local: bool,
    pub translation_of: Option<i64>,
    pub language: String,
    pub title: String,
    pub content_html: String,
    pub source_markdown: Option<String>,
    pub summary: Option<String>,
    pub sensitive: bool,
    /// Comma-delimited with leading and trailing commas: `,TR,SY,`.
    pub countries: String,
    pub region: Option<String>,
    /// Comma-delimited like `countries`.
    pub categories: String,
    pub urgency: String,
    pub incident_date: Option<String>,
    pub case_ap_id: Option<String>,
    pub url: Option<String>,
    pub status: String,
    pub pinned: bool,
    pub token_id: Option<i64>,
    pub published_at: Option<i64>,
    pub updated_at: i64,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    /// Plain text of title and body, for full-text search.
    pub search_text: String,
    /// The original this curated alert quotes (FEP-044f).
    pub quote_ap_id: Option<String>,
}

impl AlertRow {
    /// The row that inserting `values` made, with id `id`.
    fn inserted(id: i64, v: AlertValues) -> AlertRow {
        AlertRow {
            id,
            ap_id: v.ap_id,
            actor_id: v.actor_id,
            local: v.local,
            translation_of: v.translation_of,
            language: v.language,
            title: v.title,
            content_html: v.content_html,
            source_markdown: v.source_markdown,
            summary: v.summary,
            sensitive: v.sensitive,
            countries: v.countries,
            region: v.region,
            categories: v.categories,
            urgency: v.urgency,
            incident_date: v.incident_date,
            case_ap_id: v.case_ap_id,
            url: v.url,
            status: v.status,
            pinned: v.pinned,
            token_id: v.token_id,
            published_at: v.published_at,
            updated_at: v.updated_at,
            created_at: v.created_at,
            deleted_at: v.deleted_at,
            search_text: v.search_text,
            quote_ap_id: v.quote_ap_id,
        }
    }

    /// A published remote alert with empty fields, for unit tests.
    #[cfg(test)]
    pub(crate) fn sample(id: i64) -> AlertRow {
        AlertRow {
            id,
            ap_id: format!("https://m.example/alerts/{id}"),
            actor_id: 1,
            local: false,
            translation_of: None,
            language: "en".into(),
            title: "t".into(),
            content_html: String::new(),
            source_markdown: None,
            summary: None,
            sensitive: false,
            countries: ",,".into(),
            region: None,
            categories: ",,".into(),
            urgency: "action".into(),
            incident_date: None,
            case_ap_id: None,
            url: None,
            status: "published".into(),
            pinned: false,
            token_id: None,
            published_at: None,
            updated_at: 0,
            created_at: 0,
            deleted_at: None,
            search_text: String::new(),
            quote_ap_id: None,
        }
    }

    /// Country codes as a list.
    pub fn country_list(&self) -> Vec<String> {
        split_list(&self.countries)
    }

    /// Category keys as a list.
    pub fn category_list(&self) -> Vec<String> {
        split_list(&self.categories)
    }

    /// Row id of the original language version (itself if it is one).
    pub fn group_id(&self) -> i64 {
        self.translation_of.unwrap_or(self.id)
    }
}

/// `,A,B,` for a list, so a `LIKE '%,A,%'` finds one member.
pub fn join_list(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    format!(",{},", items.join(","))
}

/// The inverse of [`join_list`].
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A new or changed alert.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = alerts)]
#[diesel(treat_none_as_null = true)]
// `None` inserts NULL (every such column's default) rather than leaving the
// column out: the insert's SQL is then the same for every alert, and diesel
// finds its prepared statement by type instead of building the text of 26
// columns at every insert (docs/performance.md).
#[diesel(treat_none_as_default_value = false)]
pub struct AlertValues {
    pub ap_id: String,
    pub actor_id: i64,
    pub local: bool,
    pub translation_of: Option<i64>,
    pub language: String,
    pub title: String,
    pub content_html: String,
    pub source_markdown: Option<String>,
    pub summary: Option<String>,
    pub sensitive: bool,
    pub countries: String,
    pub region: Option<String>,
    pub categories: String,
    pub urgency: String,
    pub incident_date: Option<String>,
    pub case_ap_id: Option<String>,
    pub url: Option<String>,
    pub status: String,
    pub pinned: bool,
    pub token_id: Option<i64>,
    pub published_at: Option<i64>,
    pub updated_at: i64,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    pub search_text: String,
    pub quote_ap_id: Option<String>,
}

impl AlertValues {
    /// Fills `search_text` from the title and the HTML.
    pub fn with_search_text(self) -> AlertValues {
        let stripped = crate::alerts::markdown::strip_tags(&self.content_html);
        self.with_search_text_of(&stripped)
    }

    /// [`Self::with_search_text`] when the HTML's tags are already
    /// stripped (`stripped`, by [`crate::alerts::markdown::strip_tags`]).
    pub fn with_search_text_of(mut self, stripped: &str) -> AlertValues {
        self.search_text = format!("{} {}", self.title, plain_of_stripped(stripped));
        self
    }
}

/// Plain text of some HTML, for the search index.
pub fn plain_text(html: &str) -> String {
    plain_of_stripped(&crate::alerts::markdown::strip_tags(html))
}

/// [`plain_text`] of HTML whose tags are already stripped: entities
/// decoded, white space collapsed.
fn plain_of_stripped(stripped: &str) -> String {
    html_escape::decode_html_entities(stripped)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A row of `alert_attachments`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = alert_attachments)]
pub struct AttachmentRow {
    pub id: i64,
    pub alert_id: i64,
    pub url: String,
    pub media_type: Option<String>,
    pub description: Option<String>,
    pub position: i32,
}

/// Inserts an alert and indexes it for full-text search; returns its row.
/// On SQLite the index entry is a statement of its own (see
/// [`insert_and_index`]), run in the caller's transaction or, outside one,
/// in a transaction with the insert.
pub fn insert(conn: &mut DbConn, values: AlertValues) -> Result<AlertRow, DbError> {
    match conn {
        // PostgreSQL computes the search vector in the row itself.
        DbConn::Pg(pg) => Ok(diesel::insert_into(alerts::table)
            .values(&values)
            .returning(AlertRow::as_returning())
            .get_result(pg)?),
        DbConn::Sqlite(lite) => {
            if in_transaction(lite) {
                return Ok(insert_and_index(lite, values)?);
            }
            super::transaction(conn, |conn| insert(conn, values))
        }
    }
}

/// Inserts new alerts, as [`insert`] does each: on PostgreSQL in one
/// statement (the inbox's writer stores a group's new alerts at once; each
/// statement is a round trip). Their rows in the order of `values`.
pub fn insert_many(conn: &mut DbConn, values: Vec<AlertValues>) -> Result<Vec<AlertRow>, DbError> {
    let pg = match conn {
        DbConn::Pg(pg) if values.len() > 1 => pg,
        _ => return values.into_iter().map(|v| insert(conn, v)).collect(),
    };
    let rows: Vec<AlertRow> = diesel::insert_into(alerts::table)
        .values(&values)
        .returning(AlertRow::as_returning())
        .get_results(pg)?;
    // PostgreSQL returns the rows as it inserts them, in the order given,
    // but does not promise it: each row is put back in its place by its
    // ActivityPub id.
    let mut by_ap_id: HashMap<String, AlertRow> = rows
        .into_iter()
        .map(|row| (row.ap_id.clone(), row))
        .collect();
    values
        .iter()
        .map(|v| {
            by_ap_id.remove(&v.ap_id).ok_or_else(|| {
                DbError::Task(format!("alert {} was not returned by its insert", v.ap_id))
            })
        })
        .collect()
}

/// The SQLite insert: the row, then its FTS5 entry. Neither statement
/// opens a statement savepoint (no trigger, no `RETURNING`), and FTS5
/// writes out the terms it holds at every savepoint: a transaction that
/// stores many alerts (the inbox's) then adds one index segment, not one
/// per alert (docs/performance.md).
fn insert_and_index(
    lite: &mut SqliteConnection,
    values: AlertValues,
) -> diesel::QueryResult<AlertRow> {
    diesel::insert_into(alerts::table)
        .values(&values)
        .execute(lite)?;
    // The row is what was inserted: only its id is read back, not its
    // columns (a second seek of the `ap_id` index and every column decoded).
    let id = diesel::select(last_insert_rowid()).get_result(lite)?;
    diesel::insert_into(alerts_fts::table)
        .values((
            alerts_fts::rowid.eq(id),
            alerts_fts::title.eq(&values.title),
            alerts_fts::search_text.eq(&values.search_text),
        ))
        .execute(lite)?;
    Ok(AlertRow::inserted(id, values))
}

diesel::define_sql_function! {
    /// SQLite's id of the row this connection inserted last. A function
    /// and not SQL text: diesel prepares a query holding SQL text at every
    /// run, and this one runs for every alert the inbox stores.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

/// True inside a transaction (or savepoint) of this connection.
fn in_transaction(lite: &mut SqliteConnection) -> bool {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    <AnsiTransactionManager as TransactionManager<SqliteConnection>>::transaction_manager_status_mut(lite)
        .transaction_depth()
        .is_ok_and(|depth| depth.is_some())
}

/// Replaces every column of alert `id`.
pub fn update(conn: &mut DbConn, id: i64, values: &AlertValues) -> Result<AlertRow, DbError> {
    diesel::update(alerts::table.find(id))
        .set(values)
        .execute(conn)?;
    by_id(conn, id)
}

/// The alert with this row id.
pub fn by_id(conn: &mut DbConn, id: i64) -> Result<AlertRow, DbError> {
    Ok(alerts::table
        .find(id)
        .select(AlertRow::as_select())
        .first(conn)?)
}

/// The alert with this ActivityPub id.
pub fn by_ap_id(conn: &mut DbConn, ap_id: &str) -> Result<Option<AlertRow>, DbError> {
    // On the back end's own connection (see `db::get_result`); a row
    // selected with `as_select` names its back end.
    let query = alerts::table.filter(alerts::ap_id.eq(ap_id)).limit(1);
    let row = match conn {
        DbConn::Sqlite(lite) => query.select(AlertRow::as_select()).get_result(lite),
        DbConn::Pg(pg) => query.select(AlertRow::as_select()).get_result(pg),
    };
    Ok(row.optional()?)
}

/// The alerts with these ActivityPub ids, in one query whatever their
/// number (the inbox's writer reads its group's this way).
pub fn by_ap_ids(conn: &mut DbConn, ap_ids: &[&str]) -> Result<Vec<AlertRow>, DbError> {
    if ap_ids.is_empty() {
        return Ok(Vec::new());
    }
    // A row selected with `as_select` names its back end (see `by_ap_id`).
    let query = alerts::table.filter(in_list(alerts::ap_id, ap_ids));
    Ok(match conn {
        DbConn::Sqlite(lite) => query.select(AlertRow::as_select()).load(lite)?,
        DbConn::Pg(pg) => query.select(AlertRow::as_select()).load(pg)?,
    })
}

/// Inside a transaction, makes other transactions that lock the same
/// alert group wait until this one ends. SQLite needs nothing: its write
/// transactions ([`super::transaction`]) already run one at a time; on
/// PostgreSQL the original alert's row is locked (`FOR UPDATE`).
pub fn lock_group(conn: &mut DbConn, group_id: i64) -> Result<(), DbError> {
    if let DbConn::Pg(pg) = conn {
        alerts::table
            .find(group_id)
            .select(alerts::id)
            .for_update()
            .load::<i64>(pg)?;
    }
    Ok(())
}

/// Every language version of the alert group `group_id`, original first.
pub fn versions(conn: &mut DbConn, group_id: i64) -> Result<Vec<AlertRow>, DbError> {
    Ok(alerts::table
        .filter(
            alerts::id
                .eq(group_id)
                .or(alerts::translation_of.eq(group_id)),
        )
        .order(alerts::id)
        .select(AlertRow::as_select())
        .load(conn)?)
}

/// Marks an alert deleted (it then answers 410 with a Tombstone).
pub fn mark_deleted(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    let now = now_ms();
    diesel::update(alerts::table.find(id))
        .set((
            alerts::status.eq(crate::alerts::STATUS_DELETED),
            alerts::deleted_at.eq(Some(now)),
            alerts::updated_at.eq(now),
            alerts::pinned.eq(false),
        ))
        .execute(conn)?;
    Ok(())
}

/// Pins or unpins an alert (Mastodon's featured collection).
pub fn set_pinned(conn: &mut DbConn, id: i64, pinned: bool) -> Result<(), DbError> {
    diesel::update(alerts::table.find(id))
        .set(alerts::pinned.eq(pinned))
        .execute(conn)?;
    Ok(())
}

/// Replaces the attachments of an alert.
pub fn set_attachments(
    conn: &mut DbConn,
    alert_id: i64,
    items: &[(String, Option<String>, Option<String>)],
) -> Result<(), DbError> {
    diesel::delete(alert_attachments::table.filter(alert_attachments::alert_id.eq(alert_id)))
        .execute(conn)?;
    for (i, (url, media_type, description)) in items.iter().enumerate() {
        diesel::insert_into(alert_attachments::table)
            .values((
                alert_attachments::alert_id.eq(alert_id),
                alert_attachments::url.eq(url),
                alert_attachments::media_type.eq(media_type),
                alert_attachments::description.eq(description),
                alert_attachments::position.eq(i as i32),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Attachments of an alert, in order.
pub fn attachments(conn: &mut DbConn, alert_id: i64) -> Result<Vec<AttachmentRow>, DbError> {
    Ok(alert_attachments::table
        .filter(alert_attachments::alert_id.eq(alert_id))
        .order(alert_attachments::position)
        .select(AttachmentRow::as_select())
        .load(conn)?)
}

/// Filters of an alert listing; all optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    /// Only this actor's alerts.
    pub actor_id: Option<i64>,
    /// Only local (or only remote) alerts.
    pub local: Option<bool>,
    /// ISO country code.
    pub country: Option<String>,
    /// Region key.
    pub region: Option<String>,
    /// Category key.
    pub category: Option<String>,
    /// Language tag.
    pub language: Option<String>,
    /// Published at or after (ms).
    pub since: Option<i64>,
    /// Published before (ms).
    pub until: Option<i64>,
    /// Words that must occur in the title or text.
    pub text: Option<String>,
    /// Include drafts (the author's own listing).
    pub include_drafts: bool,
    /// Only pinned alerts.
    pub pinned_only: bool,
    /// Only alerts this feed boosts.
    pub boosted_by: Option<i64>,
    /// Alerts by this actor or boosted by it (an organisation that is a
    /// feed too).
    pub by_or_boosted_by: Option<i64>,
    /// Leave out alerts of actors on these domains (and their subdomains):
    /// the silenced ones, in public listings.
    pub hidden_domains: Vec<String>,
}

impl AlertFilter {
    /// What an actor's page, feed and outbox show: its own alerts, or for a
    /// feed actor (`Service`) the alerts it boosts.
    pub fn for_actor(actor: &super::actors::ActorRow) -> AlertFilter {
        if actor.kind == crate::curation::SERVICE {
            AlertFilter {
                boosted_by: Some(actor.id),
                ..Default::default()
            }
        } else {
            AlertFilter {
                by_or_boosted_by: Some(actor.id),
                ..Default::default()
            }
        }
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

type FullTextCondition = diesel::expression::SqlLiteral<
    diesel::sql_types::Bool,
    diesel::expression::UncheckedBind<
        diesel::expression::SqlLiteral<diesel::sql_types::Bool>,
        diesel::dsl::AsExprOf<String, diesel::sql_types::Text>,
    >,
>;

/// `text` without NUL characters, which PostgreSQL text cannot hold (a
/// filter with one would fail the query instead of matching nothing).
fn no_nul(text: &str) -> String {
    text.replace('\0', "")
}

/// The full-text condition for `text`: FTS5 on SQLite (each word quoted,
/// so no query syntax gets through), `plainto_tsquery` on PostgreSQL.
fn full_text_match(is_pg: bool, text: &str) -> FullTextCondition {
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Text};
    if is_pg {
        // PostgreSQL text cannot hold NUL: a query with one would fail.
        return sql::<Bool>("alerts.search_vector @@ plainto_tsquery('simple', ")
            .bind::<Text, _>(no_nul(text))
            .sql(")");
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\""))
        .collect();
    let query = if words.is_empty() {
        "\"\"".to_string()
    } else {
        words.join(" ")
    };
    sql::<Bool>("alerts.id IN (SELECT rowid FROM alerts_fts WHERE alerts_fts MATCH ")
        .bind::<Text, _>(query)
        .sql(")")
}

/// Alerts matching `filter`, newest first, `limit` after skipping `offset`.
pub fn list(
    conn: &mut DbConn,
    filter: &AlertFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<AlertRow>, DbError> {
    let is_pg = matches!(conn, DbConn::Pg(_));
    let mut q = alerts::table.into_boxed();
    q = if filter.include_drafts {
        q.filter(alerts::status.ne(crate::alerts::STATUS_DELETED))
    } else {
        q.filter(alerts::status.eq(crate::alerts::STATUS_PUBLISHED))
    };
    if let Some(a) = filter.actor_id {
        q = q.filter(alerts::actor_id.eq(a));
    }
    if let Some(l) = filter.local {
        q = q.filter(alerts::local.eq(l));
    }
    if let Some(c) = &filter.country {
        q = q.filter(
            alerts::countries
                .like(format!(
                    "%,{},%",
                    like_escape(&no_nul(&c.to_ascii_uppercase()))
                ))
                .escape('\\'),
        );
    }
    if let Some(r) = &filter.region {
        q = q.filter(alerts::region.eq(no_nul(r)));
    }
    if let Some(c) = &filter.category {
        q = q.filter(
            alerts::categories
                .like(format!(
                    "%,{},%",
                    like_escape(&no_nul(&c.to_ascii_lowercase()))
                ))
                .escape('\\'),
        );
    }
    if let Some(l) = &filter.language {
        q = q.filter(alerts::language.eq(no_nul(l)));
    }
    if let Some(s) = filter.since {
        q = q.filter(alerts::published_at.ge(s));
    }
    if let Some(u) = filter.until {
        q = q.filter(alerts::published_at.lt(u));
    }
    if let Some(feed) = filter.boosted_by {
        use super::schema::announces;
        q = q.filter(
            alerts::id.eq_any(
                announces::table
                    .filter(announces::feed_actor_id.eq(feed))
                    .filter(announces::undone.eq(false))
                    .select(announces::alert_id),
            ),
        );
    }
    if let Some(actor) = filter.by_or_boosted_by {
        use super::schema::announces;
        q = q.filter(
            alerts::actor_id.eq(actor).or(alerts::id.eq_any(
                announces::table
                    .filter(announces::feed_actor_id.eq(actor))
                    .filter(announces::undone.eq(false))
                    .select(announces::alert_id),
            )),
        );
    }
    if filter.pinned_only {
        q = q.filter(alerts::pinned.eq(true));
    }
    for domain in &filter.hidden_domains {
        use super::schema::actors;
        let escaped = like_escape(domain);
        q = q.filter(
            alerts::actor_id.ne_all(
                actors::table
                    .filter(
                        actors::domain
                            .eq(domain.clone())
                            .or(actors::domain.like(format!("%.{escaped}")).escape('\\'))
                            .or(actors::domain.like(format!("%.{escaped}:%")).escape('\\'))
                            .or(actors::domain.like(format!("{escaped}:%")).escape('\\')),
                    )
                    .select(actors::id),
            ),
        );
    }
    if let Some(text) = &filter.text {
        q = q.filter(full_text_match(is_pg, text));
    }
    Ok(q.order((alerts::published_at.desc(), alerts::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(AlertRow::as_select())
        .load(conn)?)
}

/// Number of published alerts of an actor.
pub fn published_count(conn: &mut DbConn, actor_id: i64) -> Result<i64, DbError> {
    Ok(alerts::table
        .filter(alerts::actor_id.eq(actor_id))
        .filter(alerts::status.eq(crate::alerts::STATUS_PUBLISHED))
        .count()
        .get_result(conn)?)
}

/// Number of local published alerts (NodeInfo `localPosts`).
pub fn local_published_count(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(alerts::table
        .filter(alerts::local.eq(true))
        .filter(alerts::status.eq(crate::alerts::STATUS_PUBLISHED))
        .count()
        .get_result(conn)?)
}

/// Remembers a Delete of an object we do not have (yet).
pub fn remember_tombstone(conn: &mut DbConn, ap_id: &str) -> Result<(), DbError> {
    if is_tombstoned(conn, ap_id)? {
        return Ok(());
    }
    diesel::insert_into(tombstones::table)
        .values((
            tombstones::ap_id.eq(ap_id),
            tombstones::deleted_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The ids among `ap_ids` that [`is_tombstoned`] would call deleted, in
/// one query whatever their number.
pub fn tombstoned_among(
    conn: &mut DbConn,
    ap_ids: &[&str],
) -> Result<std::collections::HashSet<String>, DbError> {
    if ap_ids.is_empty() {
        return Ok(Default::default());
    }
    let found: Vec<String> = super::load(
        conn,
        tombstones::table
            .select(tombstones::ap_id)
            .filter(in_list(tombstones::ap_id, ap_ids)),
    )?;
    Ok(found.into_iter().collect())
}

/// True when a Delete of this object arrived earlier.
pub fn is_tombstoned(conn: &mut DbConn, ap_id: &str) -> Result<bool, DbError> {
    let query = tombstones::table
        .filter(tombstones::ap_id.eq(ap_id))
        .count();
    let n: i64 = super::get_result(conn, query)?;
    Ok(n > 0)
}
