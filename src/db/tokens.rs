//! API bearer tokens, stored as SHA-256 hashes and revocable.

use super::{now_ms, schema::api_tokens, DbConn, DbError};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of a token; only this is stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Stores a new token under `name`; returns the plain token (shown once).
pub fn create(conn: &mut DbConn, name: &str) -> Result<String, DbError> {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("tocsin_{}", hex::encode(bytes));
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::name.eq(name),
            api_tokens::token_hash.eq(hash_token(&token)),
            api_tokens::created_at.eq(now_ms()),
            api_tokens::revoked.eq(false),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The id of the live token matching `token`, noting its use.
pub fn authenticate(conn: &mut DbConn, token: &str) -> Result<Option<i64>, DbError> {
    let id: Option<i64> = api_tokens::table
        .filter(api_tokens::token_hash.eq(hash_token(token)))
        .filter(api_tokens::revoked.eq(false))
        .select(api_tokens::id)
        .first(conn)
        .optional()?;
    if let Some(id) = id {
        diesel::update(api_tokens::table.find(id))
            .set(api_tokens::last_used_at.eq(now_ms()))
            .execute(conn)?;
    }
    Ok(id)
}

/// Revokes every token called `name`; returns how many.
pub fn revoke(conn: &mut DbConn, name: &str) -> Result<usize, DbError> {
    Ok(
        diesel::update(api_tokens::table.filter(api_tokens::name.eq(name)))
            .set(api_tokens::revoked.eq(true))
            .execute(conn)?,
    )
}

/// The name of token `id` (who made an editorial decision).
pub fn name_of(conn: &mut DbConn, id: i64) -> Result<String, DbError> {
    Ok(api_tokens::table
        .find(id)
        .select(api_tokens::name)
        .first(conn)?)
}
