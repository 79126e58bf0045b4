//! Limits on what one request may carry, checked on the raw body before
//! it is parsed: JSON nesting depth, and the number of recipients of an
//! activity.

use crate::error::Error;

/// `BadRequest` when arrays and objects in `body` nest deeper than
/// `max_depth`. Strings are skipped, so brackets inside them do not count.
/// Works on bytes: it needs no valid JSON, only stops hostile nesting
/// before a parser recurses into it.
pub fn check_json_depth(body: &[u8], max_depth: usize) -> Result<(), Error> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Error::BadRequest(format!(
                        "JSON nests deeper than {max_depth} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// `BadRequest` when an activity names `total` recipients (in `to`, `cc`,
/// `bto`, `bcc` and `audience`, on the activity and on an embedded object;
/// see [`crate::federation::envelope::Envelope::recipients`]) and at most
/// `max` are accepted.
pub fn check_recipients(total: usize, max: usize) -> Result<(), Error> {
    if total > max {
        return Err(Error::BadRequest(format!(
            "activity names {total} recipients; at most {max} are accepted"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(check_json_depth(deep.as_bytes(), 32).is_err());
        assert!(check_json_depth(deep.as_bytes(), 40).is_ok());
        let quoted = format!("{{\"a\": \"{}\\\"{}\"}}", "[".repeat(100), "{".repeat(100));
        assert!(check_json_depth(quoted.as_bytes(), 2).is_ok());
        assert!(check_json_depth(br#"{"a": {"b": {"c": 1}}}"#, 2).is_err());
    }

    #[test]
    fn more_recipients_than_accepted_are_refused() {
        assert!(check_recipients(7, 7).is_ok());
        assert!(check_recipients(8, 7).is_err());
    }
}
