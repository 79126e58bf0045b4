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

/// `BadRequest` when the activity names more than `max` recipients in
/// `to`, `cc`, `bto`, `bcc` and `audience` together (on the activity and
/// on an embedded object).
pub fn check_recipients(activity: &serde_json::Value, max: usize) -> Result<(), Error> {
    fn count(value: &serde_json::Value) -> usize {
        ["to", "cc", "bto", "bcc", "audience"]
            .iter()
            .map(|field| match value.get(field) {
                Some(serde_json::Value::Array(items)) => items.len(),
                Some(serde_json::Value::Null) | None => 0,
                Some(_) => 1,
            })
            .sum()
    }
    let total = count(activity) + activity.get("object").map_or(0, count);
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
    use serde_json::json;

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
    fn recipients_of_the_activity_and_its_object_are_counted() {
        let many: Vec<String> = (0..6).map(|n| format!("https://x.example/u/{n}")).collect();
        let activity = json!({"to": many[..3], "cc": "https://x.example/f",
            "object": {"to": many[3..], "bcc": null}});
        assert!(check_recipients(&activity, 7).is_ok());
        assert!(check_recipients(&activity, 6).is_err());
    }
}
