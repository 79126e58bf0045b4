//! Web accounts and their login sessions. Passwords are stored as argon2id
//! PHC strings, sessions as SHA-256 hashes of the cookie value.

use super::{
    now_ms,
    schema::{sessions, users},
    tokens::hash_token,
    DbConn, DbError,
};
use diesel::prelude::*;

/// A stored account.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub failed_logins: i32,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    /// When an admin disabled it; a disabled account cannot log in.
    pub disabled_at: Option<i64>,
}

/// A live session and its CSRF token.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Stores a new account; returns it.
pub fn insert(conn: &mut DbConn, name: &str, role: &str, hash: &str) -> Result<UserRow, DbError> {
    diesel::insert_into(users::table)
        .values((
            users::name.eq(name),
            users::role.eq(role),
            users::password_hash.eq(hash),
            users::failed_logins.eq(0),
            users::created_at.eq(now_ms()),
        ))
        .execute(conn)?;
    Ok(by_name(conn, name)?.ok_or(diesel::result::Error::NotFound)?)
}

/// The account called `name`.
pub fn by_name(conn: &mut DbConn, name: &str) -> Result<Option<UserRow>, DbError> {
    Ok(users::table
        .filter(users::name.eq(name))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every account, by name.
pub fn list(conn: &mut DbConn) -> Result<Vec<UserRow>, DbError> {
    Ok(users::table
        .order(users::name.asc())
        .select(UserRow::as_select())
        .load(conn)?)
}

/// Replaces the password hash and clears any lockout.
pub fn set_password(conn: &mut DbConn, id: i64, hash: &str) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Gives the account another role.
pub fn set_role(conn: &mut DbConn, id: i64, role: &str) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set(users::role.eq(role))
        .execute(conn)?;
    Ok(())
}

/// Disables the account (ending its sessions) at `at`, or enables it.
pub fn set_disabled(conn: &mut DbConn, id: i64, at: Option<i64>) -> Result<(), DbError> {
    super::transaction(conn, |conn| {
        diesel::update(users::table.find(id))
            .set(users::disabled_at.eq(at))
            .execute(conn)?;
        if at.is_some() {
            delete_sessions_of(conn, id)?;
        }
        Ok(())
    })
}

/// Records a failed login; locks the account until `lock_until` once
/// `max_failures` is reached (the counter then starts again).
pub fn login_failed(
    conn: &mut DbConn,
    id: i64,
    max_failures: i32,
    lock_until: i64,
) -> Result<(), DbError> {
    let failures: i32 = users::table
        .find(id)
        .select(users::failed_logins)
        .first(conn)?;
    let failures = failures + 1;
    let (count, locked) = if failures >= max_failures {
        (0, Some(lock_until))
    } else {
        (failures, None)
    };
    diesel::update(users::table.find(id))
        .set((
            users::failed_logins.eq(count),
            users::locked_until.eq(locked),
        ))
        .execute(conn)?;
    Ok(())
}

/// Clears the failure counter after a good login.
pub fn login_succeeded(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Stores a session for the cookie value `session_id`.
pub fn create_session(
    conn: &mut DbConn,
    session_id: &str,
    user_id: i64,
    csrf: &str,
    expires_at: i64,
) -> Result<(), DbError> {
    // Expired sessions go as new ones come.
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now_ms()))).execute(conn)?;
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(hash_token(session_id)),
            sessions::user_id.eq(user_id),
            sessions::csrf_token.eq(csrf),
            sessions::created_at.eq(now_ms()),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The unexpired session for the cookie value and its account.
pub fn session(
    conn: &mut DbConn,
    session_id: &str,
) -> Result<Option<(SessionRow, UserRow)>, DbError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::id_hash.eq(hash_token(session_id)))
        .filter(sessions::expires_at.gt(now_ms()))
        .filter(users::disabled_at.is_null())
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?)
}

/// Ends the session for the cookie value (logout).
pub fn delete_session(conn: &mut DbConn, session_id: &str) -> Result<(), DbError> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(hash_token(session_id))))
        .execute(conn)?;
    Ok(())
}

/// Ends every session of an account (after a password change).
pub fn delete_sessions_of(conn: &mut DbConn, user_id: i64) -> Result<(), DbError> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?;
    Ok(())
}
