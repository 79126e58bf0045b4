//! Actors: our own, with their private keys, and remote ones we fetched.

use super::{in_list::in_list, schema::actors, DbConn, DbError};
use diesel::prelude::*;

/// A row of `actors`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, AsChangeset)]
#[diesel(table_name = actors)]
pub struct ActorRow {
    pub id: i64,
    pub ap_id: String,
    pub kind: String,
    pub username: String,
    pub domain: String,
    pub local: bool,
    pub name: Option<String>,
    pub summary: Option<String>,
    pub inbox: String,
    pub shared_inbox: Option<String>,
    pub outbox: Option<String>,
    pub followers_url: Option<String>,
    pub url: Option<String>,
    pub icon: Option<String>,
    pub public_key_id: String,
    pub public_key_pem: String,
    pub private_key_pem: Option<String>,
    pub last_refreshed_at: i64,
    pub created_at: i64,
}

/// A new or refreshed actor, before it has a row id.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = actors)]
pub struct NewActor {
    pub ap_id: String,
    pub kind: String,
    pub username: String,
    pub domain: String,
    pub local: bool,
    pub name: Option<String>,
    pub summary: Option<String>,
    pub inbox: String,
    pub shared_inbox: Option<String>,
    pub outbox: Option<String>,
    pub followers_url: Option<String>,
    pub url: Option<String>,
    pub icon: Option<String>,
    pub public_key_id: String,
    pub public_key_pem: String,
    pub private_key_pem: Option<String>,
    pub last_refreshed_at: i64,
    pub created_at: i64,
}

impl NewActor {
    /// A remote `Person` known only by its id, inbox and public key (the
    /// audience of tests and benchmarks); its key id is `<ap_id>#main-key`.
    pub fn remote_person(
        ap_id: &str,
        username: &str,
        domain: &str,
        inbox: &str,
        public_key_pem: &str,
    ) -> NewActor {
        let now = super::now_ms();
        NewActor {
            public_key_id: format!("{ap_id}#main-key"),
            ap_id: ap_id.to_string(),
            kind: "Person".into(),
            username: username.to_string(),
            domain: domain.to_string(),
            local: false,
            name: None,
            summary: None,
            inbox: inbox.to_string(),
            shared_inbox: None,
            outbox: None,
            followers_url: None,
            url: None,
            icon: None,
            public_key_pem: public_key_pem.to_string(),
            private_key_pem: None,
            last_refreshed_at: now,
            created_at: now,
        }
    }
}

/// The actor with this ActivityPub id, if we know it.
pub fn by_ap_id(conn: &mut DbConn, ap_id: &str) -> Result<Option<ActorRow>, DbError> {
    Ok(actors::table
        .filter(actors::ap_id.eq(ap_id))
        .select(ActorRow::as_select())
        .first(conn)
        .optional()?)
}

/// The actors we know among these ActivityPub ids.
pub fn by_ap_ids(conn: &mut DbConn, ap_ids: &[String]) -> Result<Vec<ActorRow>, DbError> {
    // One statement for any number of ids (`in_list`); the batch lane reads
    // every claim's actors this way. A row selected with `as_select` names
    // its back end.
    let query = actors::table.filter(in_list(actors::ap_id, ap_ids));
    Ok(match conn {
        DbConn::Sqlite(lite) => query.select(ActorRow::as_select()).load(lite)?,
        DbConn::Pg(pg) => query.select(ActorRow::as_select()).load(pg)?,
    })
}

/// The actor with this row id.
pub fn by_id(conn: &mut DbConn, id: i64) -> Result<ActorRow, DbError> {
    Ok(actors::table
        .find(id)
        .select(ActorRow::as_select())
        .first(conn)?)
}

/// The actor whose public key has this id (`…#main-key`).
pub fn by_key_id(conn: &mut DbConn, key_id: &str) -> Result<Option<ActorRow>, DbError> {
    Ok(actors::table
        .filter(actors::public_key_id.eq(key_id))
        .select(ActorRow::as_select())
        .first(conn)
        .optional()?)
}

/// A local actor by username, compared case-insensitively as WebFinger
/// clients expect (Mastodon, Misskey lowercase handles).
pub fn local_by_username(conn: &mut DbConn, username: &str) -> Result<Option<ActorRow>, DbError> {
    let wanted = username.to_lowercase();
    Ok(local_actors(conn)?
        .into_iter()
        .find(|a| a.username.to_lowercase() == wanted))
}

/// Every local actor (the organisation, the instance actor, feeds).
pub fn local_actors(conn: &mut DbConn) -> Result<Vec<ActorRow>, DbError> {
    Ok(actors::table
        .filter(actors::local.eq(true))
        .order(actors::id)
        .select(ActorRow::as_select())
        .load(conn)?)
}

/// Inserts the actor, or refreshes the row with the same `ap_id`.
pub fn upsert(conn: &mut DbConn, actor: &NewActor) -> Result<ActorRow, DbError> {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    match upsert_once(conn, actor) {
        // Two requests fetched the same new actor at once (PostgreSQL's
        // read committed lets both see no row): the other one inserted
        // it, so this one updates it.
        Err(DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))) => {
            upsert_once(conn, actor)
        }
        other => other,
    }
}

fn upsert_once(conn: &mut DbConn, actor: &NewActor) -> Result<ActorRow, DbError> {
    super::transaction(conn, |conn| {
        if let Some(existing) = by_ap_id(conn, &actor.ap_id)? {
            let mut changes = actor.clone();
            changes.created_at = existing.created_at;
            // A remote refresh never carries our private key; keep what we have.
            if changes.private_key_pem.is_none() {
                changes.private_key_pem = existing.private_key_pem.clone();
            }
            diesel::update(actors::table.find(existing.id))
                .set(&changes)
                .execute(conn)?;
            by_id(conn, existing.id)
        } else {
            diesel::insert_into(actors::table)
                .values(actor)
                .execute(conn)?;
            by_ap_id(conn, &actor.ap_id)?.ok_or(DbError::Query(diesel::result::Error::NotFound))
        }
    })
}

/// Counts local and remote actors: (local, remote).
pub fn counts(conn: &mut DbConn) -> Result<(i64, i64), DbError> {
    let local: i64 = actors::table
        .filter(actors::local.eq(true))
        .count()
        .get_result(conn)?;
    let remote: i64 = actors::table
        .filter(actors::local.eq(false))
        .count()
        .get_result(conn)?;
    Ok((local, remote))
}
