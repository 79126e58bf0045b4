//! Ed25519 keys of actors (FEP-521a Multikeys): ours with their private
//! half, remote ones as published in `assertionMethod`.

use super::{now_ms, schema::actor_keys, DbConn, DbError};
use diesel::prelude::*;

/// A row of `actor_keys`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = actor_keys)]
pub struct ActorKeyRow {
    pub id: i64,
    pub actor_id: i64,
    pub key_id: String,
    pub public_key_multibase: String,
    pub private_key: Option<String>,
    pub created_at: i64,
}

/// The key with this id, if known.
pub fn by_key_id(conn: &mut DbConn, key_id: &str) -> Result<Option<ActorKeyRow>, DbError> {
    Ok(actor_keys::table
        .filter(actor_keys::key_id.eq(key_id))
        .select(ActorKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Our actor's signing key; when it has none yet, stores `new_key`
/// (key id, public multibase, private) and returns that.
pub fn ensure_local(
    conn: &mut DbConn,
    actor_id: i64,
    new_key: (&str, &str, &str),
) -> Result<ActorKeyRow, DbError> {
    super::transaction(conn, |conn| {
        let existing = local(conn, actor_id)?;
        if let Some(row) = existing {
            return Ok(row);
        }
        let (key_id, public, private) = new_key;
        diesel::insert_into(actor_keys::table)
            .values((
                actor_keys::actor_id.eq(actor_id),
                actor_keys::key_id.eq(key_id),
                actor_keys::public_key_multibase.eq(public),
                actor_keys::private_key.eq(Some(private)),
                actor_keys::created_at.eq(now_ms()),
            ))
            .execute(conn)?;
        by_key_id(conn, key_id)?.ok_or(DbError::Query(diesel::result::Error::NotFound))
    })
}

/// Our actor's signing key, if it has one.
pub fn local(conn: &mut DbConn, actor_id: i64) -> Result<Option<ActorKeyRow>, DbError> {
    Ok(actor_keys::table
        .filter(actor_keys::actor_id.eq(actor_id))
        .filter(actor_keys::private_key.is_not_null())
        .order(actor_keys::id.asc())
        .select(ActorKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Replaces the published keys of a remote actor by `keys`
/// (key id, public multibase), as its latest actor document lists them.
pub fn replace_remote(
    conn: &mut DbConn,
    actor_id: i64,
    keys: &[(String, String)],
) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        diesel::delete(
            actor_keys::table
                .filter(actor_keys::actor_id.eq(actor_id))
                .filter(actor_keys::private_key.is_null()),
        )
        .execute(conn)?;
        for (key_id, public) in keys {
            // A key id already held by another actor is not this actor's.
            if by_key_id(conn, key_id)?.is_some() {
                continue;
            }
            let insert = diesel::insert_into(actor_keys::table).values((
                actor_keys::actor_id.eq(actor_id),
                actor_keys::key_id.eq(key_id),
                actor_keys::public_key_multibase.eq(public),
                actor_keys::private_key.eq(None::<String>),
                actor_keys::created_at.eq(now_ms()),
            ));
            // A concurrent refresh of the same actor may have stored it.
            match conn {
                DbConn::Pg(pg) => insert.on_conflict_do_nothing().execute(pg)?,
                DbConn::Sqlite(lite) => insert.on_conflict_do_nothing().execute(lite)?,
            };
        }
        Ok(())
    })
}

/// The published keys of an actor (ours or remote).
pub fn of_actor(conn: &mut DbConn, actor_id: i64) -> Result<Vec<ActorKeyRow>, DbError> {
    Ok(actor_keys::table
        .filter(actor_keys::actor_id.eq(actor_id))
        .order(actor_keys::id.asc())
        .select(ActorKeyRow::as_select())
        .load(conn)?)
}
