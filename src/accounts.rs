//! Web accounts: roles, argon2id passwords, logins with lockout, and
//! sessions with a CSRF token each.

use crate::{
    db::{self, users::UserRow, Db},
    error::Error,
};
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use rand::RngCore;

/// May do everything, including managing accounts.
pub const ADMIN: &str = "admin";
/// Works the review queue, feeds and member directory.
pub const EDITOR: &str = "editor";
/// Writes alerts.
pub const AUTHOR: &str = "author";
/// Any logged-in account (for pages every role may see).
pub const ANY: &str = "any";
/// Every role.
pub const ROLES: &[&str] = &[ADMIN, EDITOR, AUTHOR];

/// Failed logins in a row that lock an account.
pub const MAX_FAILURES: i32 = 5;
/// How long a lockout lasts.
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// How long a session lasts.
pub const SESSION_MS: i64 = 14 * 24 * 3600 * 1000;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

/// Whether an account with `role` may do what `needed` allows (admins may
/// do everything).
pub fn allows(role: &str, needed: &str) -> bool {
    needed == ANY || role == ADMIN || role == needed
}

/// The argon2id PHC string of `password`.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A random secret, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A password for `tocsin user add` when none is given.
pub fn generate_password() -> String {
    random_token()[..20].to_string()
}

fn check_password(password: &str) -> Result<(), Error> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(Error::Validation {
            field: "password".into(),
            message: format!("must be at least {MIN_PASSWORD} characters"),
        });
    }
    Ok(())
}

/// Creates an account.
pub async fn add_user(db: &Db, name: &str, role: &str, password: &str) -> Result<UserRow, Error> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(Error::Validation {
            field: "name".into(),
            message: "must be one word".into(),
        });
    }
    if !ROLES.contains(&role) {
        return Err(Error::Validation {
            field: "role".into(),
            message: format!("must be one of {}", ROLES.join(", ")),
        });
    }
    check_password(password)?;
    let hash = hash_password(password)?;
    let role = role.to_string();
    let taken = name.clone();
    if db
        .run(move |conn| db::users::by_name(conn, &taken))
        .await?
        .is_some()
    {
        return Err(Error::Validation {
            field: "name".into(),
            message: "an account with this name exists".into(),
        });
    }
    Ok(db
        .run(move |conn| db::users::insert(conn, &name, &role, &hash))
        .await?)
}

/// Sets a new password and ends the account's sessions.
pub async fn set_password(db: &Db, name: &str, password: &str) -> Result<(), Error> {
    check_password(password)?;
    let hash = hash_password(password)?;
    let name = name.to_string();
    db.run(move |conn| {
        let user = db::users::by_name(conn, &name)?.ok_or(diesel::result::Error::NotFound)?;
        db::users::set_password(conn, user.id, &hash)?;
        db::users::delete_sessions_of(conn, user.id)
    })
    .await?;
    Ok(())
}

/// Whether a change leaves at least one enabled admin besides `user`.
async fn another_admin(db: &Db, user: &UserRow) -> Result<bool, Error> {
    let id = user.id;
    Ok(db
        .run(db::users::list)
        .await?
        .iter()
        .any(|u| u.id != id && u.role == ADMIN && u.disabled_at.is_none()))
}

/// The account called `name`, or a field error.
async fn existing(db: &Db, name: &str) -> Result<UserRow, Error> {
    let name = name.to_string();
    db.run(move |conn| db::users::by_name(conn, &name))
        .await?
        .ok_or_else(|| Error::Validation {
            field: "name".into(),
            message: "no such account".into(),
        })
}

/// Gives account `name` another role; the last enabled admin keeps its.
pub async fn set_role(db: &Db, name: &str, role: &str) -> Result<(), Error> {
    if !ROLES.contains(&role) {
        return Err(Error::Validation {
            field: "role".into(),
            message: format!("must be one of {}", ROLES.join(", ")),
        });
    }
    let user = existing(db, name).await?;
    if user.role == ADMIN && role != ADMIN && !another_admin(db, &user).await? {
        return Err(Error::Validation {
            field: "role".into(),
            message: "the last admin stays an admin".into(),
        });
    }
    let (id, role) = (user.id, role.to_string());
    db.run(move |conn| db::users::set_role(conn, id, &role))
        .await?;
    Ok(())
}

/// Disables account `name` (its sessions end) or enables it again; the
/// last enabled admin cannot be disabled.
pub async fn set_disabled(db: &Db, name: &str, disabled: bool) -> Result<(), Error> {
    let user = existing(db, name).await?;
    if disabled && user.role == ADMIN && !another_admin(db, &user).await? {
        return Err(Error::Validation {
            field: "name".into(),
            message: "the last admin cannot be disabled".into(),
        });
    }
    let at = disabled.then(db::now_ms);
    db.run(move |conn| db::users::set_disabled(conn, user.id, at))
        .await?;
    Ok(())
}

/// Why a login failed.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown name or wrong password (not told apart).
    Wrong,
    /// Too many failures; try again after this time (ms).
    Locked(i64),
    /// The right password, but an admin disabled the account.
    Disabled,
}

/// A new session: the cookie value and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Cookie value (only its hash is stored).
    pub id: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// Checks a name and password; on success opens a fresh session.
pub async fn login(
    db: &Db,
    name: &str,
    password: &str,
) -> Result<Result<NewSession, LoginError>, Error> {
    let lookup = name.trim().to_string();
    let Some(user) = db
        .run(move |conn| db::users::by_name(conn, &lookup))
        .await?
    else {
        // Spend the same effort as for a real account.
        let _ = hash_password(password);
        return Ok(Err(LoginError::Wrong));
    };
    let now = db::now_ms();
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        return Ok(Err(LoginError::Locked(until)));
    }
    if !verify_password(password, &user.password_hash) {
        let id = user.id;
        db.run(move |conn| db::users::login_failed(conn, id, MAX_FAILURES, now + LOCKOUT_MS))
            .await?;
        return Ok(Err(LoginError::Wrong));
    }
    if user.disabled_at.is_some() {
        return Ok(Err(LoginError::Disabled));
    }
    let session = NewSession {
        id: random_token(),
        csrf: random_token(),
    };
    let (id, s) = (user.id, session.clone());
    db.run(move |conn| {
        db::users::login_succeeded(conn, id)?;
        db::users::create_session(conn, &s.id, id, &s.csrf, now + SESSION_MS)
    })
    .await?;
    Ok(Ok(session))
}

/// Changes the password of a logged-in account after checking the old one;
/// the account's other sessions end, and a fresh one is returned.
pub async fn change_password(
    db: &Db,
    user: &UserRow,
    old: &str,
    new: &str,
) -> Result<NewSession, Error> {
    if !verify_password(old, &user.password_hash) {
        return Err(Error::Validation {
            field: "old_password".into(),
            message: "the current password is wrong".into(),
        });
    }
    set_password(db, &user.name, new).await?;
    match login(db, &user.name, new).await? {
        Ok(s) => Ok(s),
        Err(_) => Err(Error::Internal("login after password change failed".into())),
    }
}
