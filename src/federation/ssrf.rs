//! Server-side request forgery: we connect only to public addresses
//! (unless `[federation] allow_private_addresses`, for tests). Host names
//! are checked by the client's resolver when it connects (so DNS
//! rebinding gains nothing, and a redirect target is checked like any
//! other host); literal IP addresses never reach a resolver and are
//! checked here. Every response we read is size-limited.

use crate::{config::Config, error::Error};
use activitypub_federation::resolver::ValidatingDnsResolver;
use reqwest::dns::{Name, Resolve};
use std::str::FromStr;
use url::{Host, Url};

/// Largest response body we read from a remote server (the same limit as
/// activitypub_federation's fetches).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// `Forbidden` when `url` names a literal address that is not public
/// (private, loopback, link-local, unique-local, unspecified, …) and the
/// test switch is off.
pub async fn check_target(url: &Url, config: &Config) -> Result<(), Error> {
    if config.federation.allow_private_addresses {
        return Ok(());
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err(Error::BadRequest(format!("{url} has no host"))),
    };
    let name = Name::from_str(&literal)
        .map_err(|_| Error::BadRequest(format!("{url} has an invalid host")))?;
    ValidatingDnsResolver::new(vec![], true)
        .resolve(name)
        .await
        .map(|_| ())
        .map_err(|_| {
            Error::Forbidden(format!(
                "refusing to connect to {literal}: not a public address"
            ))
        })
}

/// The body of `response`, refused past `max` bytes (announced or read).
pub async fn read_limited(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, Error> {
    let too_large = || Error::BadRequest(format!("remote response is larger than {max} bytes"));
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Error::BadRequest(format!("reading the remote response failed: {e}")))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literal_private_addresses_are_refused_unless_the_test_switch_is_on() {
        let mut config = Config::default();
        for url in [
            "https://127.0.0.1/inbox",
            "https://10.1.2.3/inbox",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/inbox",
            "https://[fd00::1]/inbox",
            "https://[fe80::1]/inbox",
            "https://0.0.0.0/inbox",
            "https://[::ffff:127.0.0.1]/inbox",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(
                matches!(check_target(&url, &config).await, Err(Error::Forbidden(_))),
                "{url}"
            );
        }
        let public = Url::parse("https://192.0.3.1/inbox").unwrap();
        assert!(check_target(&public, &config).await.is_ok());
        let named = Url::parse("https://social.example/inbox").unwrap();
        assert!(
            check_target(&named, &config).await.is_ok(),
            "names are checked on connect"
        );
        config.federation.allow_private_addresses = true;
        let loopback = Url::parse("http://127.0.0.1:8080/inbox").unwrap();
        assert!(check_target(&loopback, &config).await.is_ok());
    }
}
