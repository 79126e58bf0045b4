//! Hard bounces and complaints: the addresses concerned are paused, from
//! `tocsin subscribers bounce|complaint` or `POST /api/v1/mail/reports`.

use crate::db::{subscribers, DbConn, DbError};

/// The reason recorded for a report kind, if the kind is known.
pub fn pause_reason(kind: &str) -> Option<&'static str> {
    match kind {
        "bounce" => Some("hard bounce reported"),
        "complaint" => Some("complaint reported"),
        _ => None,
    }
}

/// Pauses the subscribers with these addresses; (paused, unknown).
pub fn pause_all(
    conn: &mut DbConn,
    addresses: &[String],
    reason: &str,
) -> Result<(usize, usize), DbError> {
    let (mut paused, mut unknown) = (0, 0);
    for address in addresses {
        match subscribers::pause(conn, address, reason)? {
            Some(id) => {
                tracing::info!(subscriber = id, reason, "subscriber paused");
                paused += 1;
            }
            None => unknown += 1,
        }
    }
    Ok((paused, unknown))
}
