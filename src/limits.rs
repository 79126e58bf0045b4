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
    let mut at = 0;
    while let Some(&b) = body.get(at) {
        match b {
            // A string is skipped to its closing quote in jumps over what
            // cannot end it: most of an activity's bytes are in strings.
            b'"' => match string_end(body, at + 1) {
                Some(end) => at = end,
                None => return Ok(()),
            },
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
        at += 1;
    }
    Ok(())
}

/// Where the string whose text starts at `from` ends (its closing quote,
/// a backslash escaping the byte after it); `None` if it never ends.
fn string_end(body: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let found = from + memchr::memchr2(b'"', b'\\', body.get(from..)?)?;
        match body[found] {
            b'\\' => from = found + 2,
            _ => return Some(found),
        }
    }
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

    /// The byte-at-a-time count, as [`check_json_depth`] did before it
    /// jumped over strings: the two must agree on any bytes.
    fn depth_byte_by_byte(body: &[u8], max_depth: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
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
                        return false;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        true
    }

    #[test]
    fn jumping_over_strings_counts_as_reading_every_byte() {
        // Pseudo-random bodies over the bytes that matter (xorshift, fixed
        // seed): brackets, quotes, backslashes, a letter.
        let alphabet = b"[]{}\"\\a";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut refused, mut accepted) = (0, 0);
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let body: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let max = (next() % 4) as usize;
            let expected = depth_byte_by_byte(&body, max);
            assert_eq!(
                check_json_depth(&body, max).is_ok(),
                expected,
                "{:?} at most {max}",
                String::from_utf8_lossy(&body)
            );
            if expected {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        // Both answers came up often enough to mean something.
        assert!(refused > 1_000 && accepted > 1_000, "{refused} {accepted}");
        // An escape as the last byte, and an escaped quote, end nothing.
        assert!(check_json_depth(b"\"\\", 0).is_ok());
        assert!(check_json_depth(br#"["\"[["]"#, 1).is_ok());
        assert!(check_json_depth(br#"["\\"[["]"#, 1).is_err());
    }

    #[test]
    fn more_recipients_than_accepted_are_refused() {
        assert!(check_recipients(7, 7).is_ok());
        assert!(check_recipients(8, 7).is_err());
    }
}
