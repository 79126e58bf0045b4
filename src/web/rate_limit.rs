//! Request rate limits (GCRA, from `governor`): inbox POSTs per client
//! address and per remote host, API requests, login attempts and e-mail
//! sign-ups per client address. Over the limit a request gets 429 with
//! `Retry-After`: JSON from the middleware ([`bucket_of`]), an HTML page
//! from the login form, which checks its own limit.

use crate::{config::LimitsConfig, error::Error};
use actix_web::{dev::ServiceRequest, http::Method, HttpRequest};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};
use std::{
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
};

/// How many checks pass between two sweeps of idle keys.
const SWEEP_EVERY: u64 = 4096;

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Inbox POSTs by client address.
    InboxByIp,
    /// Inbox POSTs by the host of the signing key.
    InboxByHost,
    /// `/api/…` requests by client address.
    ApiByIp,
    /// `POST /login` by client address (checked by the login handler).
    LoginByIp,
    /// `POST /subscribe` (e-mail sign-up) by client address.
    SubscribeByIp,
}

/// The limiters of one process; a limit of 0 has none.
pub struct RateLimits {
    inbox_ip: Option<DefaultKeyedRateLimiter<String>>,
    inbox_host: Option<DefaultKeyedRateLimiter<String>>,
    api_ip: Option<DefaultKeyedRateLimiter<String>>,
    login_ip: Option<DefaultKeyedRateLimiter<String>>,
    subscribe_ip: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

fn limiter(per_minute: u32) -> Option<DefaultKeyedRateLimiter<String>> {
    NonZeroU32::new(per_minute).map(|n| DefaultKeyedRateLimiter::dashmap(Quota::per_minute(n)))
}

fn hourly_limiter(per_hour: u32) -> Option<DefaultKeyedRateLimiter<String>> {
    NonZeroU32::new(per_hour).map(|n| DefaultKeyedRateLimiter::dashmap(Quota::per_hour(n)))
}

impl RateLimits {
    /// Limiters for the configured rates.
    pub fn new(config: &LimitsConfig) -> RateLimits {
        RateLimits {
            inbox_ip: limiter(config.inbox_per_ip_per_minute),
            inbox_host: limiter(config.inbox_per_host_per_minute),
            api_ip: limiter(config.api_per_ip_per_minute),
            login_ip: limiter(config.login_per_ip_per_minute),
            subscribe_ip: hourly_limiter(config.subscribe_per_ip_per_hour),
            checks: AtomicU64::new(0),
        }
    }

    fn limiter(&self, bucket: Bucket) -> Option<&DefaultKeyedRateLimiter<String>> {
        match bucket {
            Bucket::InboxByIp => self.inbox_ip.as_ref(),
            Bucket::InboxByHost => self.inbox_host.as_ref(),
            Bucket::ApiByIp => self.api_ip.as_ref(),
            Bucket::LoginByIp => self.login_ip.as_ref(),
            Bucket::SubscribeByIp => self.subscribe_ip.as_ref(),
        }
    }

    /// Counts one request by `key`; `TooManyRequests` (with the seconds to
    /// wait) when it is over the limit.
    pub fn check(&self, bucket: Bucket, key: &str) -> Result<(), Error> {
        let Some(limiter) = self.limiter(bucket) else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            for l in [
                &self.inbox_ip,
                &self.inbox_host,
                &self.api_ip,
                &self.login_ip,
                &self.subscribe_ip,
            ]
            .into_iter()
            .flatten()
            {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        limiter.check_key(&key.to_string()).map_err(|not_until| {
            let now = governor::clock::DefaultClock::default().now();
            let wait = not_until.wait_time_from(now);
            Error::TooManyRequests((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
        })
    }
}

/// The limit a request counts against by its address, if any.
pub fn bucket_of(request: &ServiceRequest) -> Option<Bucket> {
    let path = request.path();
    let method = request.method();
    if *method == Method::POST && (path == "/inbox" || path.ends_with("/inbox")) {
        Some(Bucket::InboxByIp)
    } else if *method == Method::POST && path == "/subscribe" {
        Some(Bucket::SubscribeByIp)
    } else if path.starts_with("/api/") {
        Some(Bucket::ApiByIp)
    } else {
        None
    }
}

/// The client's address: the TCP peer, or with `trust_forwarded_for` the
/// last `X-Forwarded-For` entry (the one our own proxy appended).
pub fn client_address(request: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        let last = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty());
        if let Some(address) = last {
            return address.to_string();
        }
    }
    request
        .peer_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_refuses_the_request_after_the_burst_with_a_wait() {
        let limits = RateLimits::new(&LimitsConfig {
            login_per_ip_per_minute: 3,
            api_per_ip_per_minute: 0,
            ..Default::default()
        });
        for _ in 0..3 {
            limits.check(Bucket::LoginByIp, "192.0.2.1").unwrap();
        }
        match limits.check(Bucket::LoginByIp, "192.0.2.1") {
            Err(Error::TooManyRequests(secs)) => assert!((1..=20).contains(&secs), "{secs}"),
            other => panic!("expected 429, got {other:?}"),
        }
        limits.check(Bucket::LoginByIp, "192.0.2.2").unwrap();
        for _ in 0..100 {
            limits.check(Bucket::ApiByIp, "192.0.2.1").unwrap();
        }
    }
}
