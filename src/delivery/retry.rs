//! What to do after an attempt: the classification of responses and the
//! backoff schedule, as pure functions.

use std::time::Duration;

/// The decision taken after one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: delivered.
    Delivered,
    /// 410: the inbox is gone for good.
    Gone,
    /// Another 4xx (not 408/429): the receiver will never accept it.
    Permanent,
    /// 429 with `Retry-After`, or 408, 5xx, timeout, connection error.
    Retry {
        /// Wait at least this long (from `Retry-After`).
        at_least: Option<Duration>,
        /// Whether the failure says the host is unwell (counts towards down).
        host_unwell: bool,
    },
}

/// Classifies an HTTP status (with `Retry-After` seconds if present).
pub fn classify(status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        410 => Outcome::Gone,
        429 => Outcome::Retry {
            at_least: retry_after,
            host_unwell: false,
        },
        408 => Outcome::Retry {
            at_least: None,
            host_unwell: true,
        },
        400..=499 => Outcome::Permanent,
        _ => Outcome::Retry {
            at_least: retry_after,
            host_unwell: true,
        },
    }
}

/// Delay before attempt number `attempts + 1`: `initial × 2^attempts`,
/// capped at a day, with ±25 % jitter from `jitter` in [0, 1).
pub fn backoff(initial: Duration, attempts: u32, jitter: f64) -> Duration {
    let base = initial.as_secs_f64() * 2f64.powi(attempts.min(30) as i32);
    let capped = base.min(24.0 * 3600.0);
    Duration::from_secs_f64(capped * (0.75 + 0.5 * jitter.clamp(0.0, 1.0)))
}

/// Parses `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    httpdate::parse_http_date(value.trim())
        .ok()
        .map(|at| at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_specified() {
        assert_eq!(classify(202, None), Outcome::Delivered);
        assert_eq!(classify(410, None), Outcome::Gone);
        assert_eq!(classify(404, None), Outcome::Permanent);
        assert_eq!(classify(401, None), Outcome::Permanent);
        assert!(matches!(
            classify(408, None),
            Outcome::Retry {
                host_unwell: true,
                ..
            }
        ));
        assert_eq!(
            classify(429, Some(Duration::from_secs(7))),
            Outcome::Retry {
                at_least: Some(Duration::from_secs(7)),
                host_unwell: false
            }
        );
        assert!(matches!(
            classify(503, None),
            Outcome::Retry {
                host_unwell: true,
                ..
            }
        ));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let d = |n| backoff(Duration::from_secs(30), n, 0.5);
        assert_eq!(d(0), Duration::from_secs(30));
        assert_eq!(d(1), Duration::from_secs(60));
        assert_eq!(d(3), Duration::from_secs(240));
        assert_eq!(d(40), Duration::from_secs(24 * 3600));
        assert!(backoff(Duration::from_secs(100), 0, 0.0) >= Duration::from_secs(75));
        assert!(backoff(Duration::from_secs(100), 0, 0.999) < Duration::from_secs(125));
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let now = std::time::SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(60));
        let parsed = parse_retry_after(&later, now).unwrap();
        assert!(parsed <= Duration::from_secs(60) && parsed >= Duration::from_secs(58));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
