//! Federation policy: blocked, silenced and allowed domains, and the
//! allowlist mode. The policies live in `domain_policies`; every process
//! keeps a snapshot, reloaded when this process changes it and, in the
//! background, once it is older than [`RELOAD_AFTER`] (so a change made
//! with the CLI reaches a running server within about that time).

use crate::{
    db::{self, domain_policies::DomainPolicyRow, Db},
    error::Error,
};
use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};
use url::Url;

/// Refuse everything from the domain and deliver nothing to it.
pub const BLOCK: &str = "block";
/// Accept, but keep the domain's alerts out of public listings, feeds and
/// the review queue.
pub const SILENCE: &str = "silence";
/// Federate with the domain when `[federation] allowlist_only` is on.
pub const ALLOW: &str = "allow";

/// How old a snapshot may get before it is read again.
pub const RELOAD_AFTER: Duration = Duration::from_secs(10);

/// What the policy says about one remote host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Federate normally.
    Open,
    /// Federate, but keep its alerts out of public places.
    Silenced,
    /// Blocked, or not on the allowlist in allowlist mode.
    Refused,
}

/// Normalises a domain typed by an operator: lower case, no scheme, path or
/// trailing dot; a port is kept (`localhost:8081`). `None` when it is not a
/// host name.
pub fn normalize_domain(input: &str) -> Option<String> {
    normalize(input).map(|(normal, _)| normal)
}

/// [`normalize_domain`] and the host alone (without the port).
fn normalize(input: &str) -> Option<(String, String)> {
    let trimmed = input.trim().trim_end_matches('/').to_ascii_lowercase();
    let bare = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(&trimmed);
    let url = Url::parse(&format!("https://{bare}/")).ok()?;
    let host = url.host_str()?.trim_end_matches('.');
    if host.is_empty()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.authority().trim_end_matches('.') != bare.trim_end_matches('.')
    {
        return None;
    }
    let (normal, host) = host_and_port(host, url.port());
    Some((normal.into_owned(), host.into_owned()))
}

/// [`normalize_domain`], or a validation error naming the field.
pub fn parse_domain(input: &str) -> Result<String, Error> {
    normalize_domain(input).ok_or_else(|| Error::Validation {
        field: "domain".into(),
        message: format!("{input:?} is not a domain name"),
    })
}

/// True when the policy `domain` covers `authority` (`host` or
/// `host:port`): the same host (a policy with a port only that port), or a
/// subdomain.
pub fn covers(domain: &str, authority: &str) -> bool {
    let Some((normal, host)) = normalize(authority) else {
        return false;
    };
    normal == domain || host == domain || host.ends_with(&format!(".{domain}"))
}

/// One read of the policy table.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Policy by domain (as stored, normalised).
    policies: HashMap<String, String>,
    allowlist_only: bool,
}

impl Snapshot {
    /// A snapshot of `rows`.
    pub fn new(rows: Vec<DomainPolicyRow>, allowlist_only: bool) -> Snapshot {
        Snapshot {
            policies: rows.into_iter().map(|r| (r.domain, r.policy)).collect(),
            allowlist_only,
        }
    }

    /// The policy of the longest domain that [`covers`] `authority`.
    fn most_specific(&self, authority: &str) -> Option<&str> {
        if self.policies.is_empty() {
            return None;
        }
        let (normal, host) = normalize(authority)?;
        self.lookup(&normal, &host)
    }

    /// The policy of `normal` (`host[:port]`) exactly, else of `host`,
    /// else of its nearest parent domain: the longest that covers it. A
    /// few lookups whatever the number of policies (an imported blocklist
    /// has hundreds, and the inbox asks twice a request).
    fn lookup(&self, normal: &str, host: &str) -> Option<&str> {
        if let Some(policy) = self.policies.get(normal) {
            return Some(policy);
        }
        let mut domain = host;
        loop {
            if let Some(policy) = self.policies.get(domain) {
                return Some(policy);
            }
            domain = domain.split_once('.')?.1;
        }
    }

    /// The standing a policy (or none) gives.
    fn standing_under(&self, policy: Option<&str>) -> Standing {
        match policy {
            Some(BLOCK) => Standing::Refused,
            Some(SILENCE) => Standing::Silenced,
            Some(ALLOW) => Standing::Open,
            _ if self.allowlist_only => Standing::Refused,
            _ => Standing::Open,
        }
    }

    /// The standing of `authority` (`host[:port]`). The most specific
    /// policy wins (`a.example` over `example`).
    pub fn standing(&self, authority: &str) -> Standing {
        self.standing_under(self.most_specific(authority))
    }

    /// The standing of the host of `url`, read from the parsed URL: a
    /// user name in it (`https://name@host/`) does not hide the host.
    pub fn standing_of_url(&self, url: &Url) -> Standing {
        match self.policies.is_empty() {
            true => self.standing_under(None),
            false => self.standing_of_parts(url_parts(url).as_ref()),
        }
    }

    /// [`Self::standing_of_url`] of a URL's [`url_parts`].
    fn standing_of_parts(&self, parts: Option<&(Cow<str>, Cow<str>)>) -> Standing {
        self.standing_under(parts.and_then(|(normal, host)| self.lookup(normal, host)))
    }
}

/// The `host[:port]` and the host of `url`, as [`normalize_domain`] makes
/// them (lower case, no trailing dot, no default port).
fn url_parts(url: &Url) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    Some(host_and_port(url.host_str()?, url.port()))
}

/// `host[:port]` and the host alone, lower case and without a trailing
/// dot, from a parsed host and its explicit port. Both are borrowed when
/// the host is already so and there is no port, as for the inbox's URLs
/// (it asks twice a request); `host[:port]` is made only with a port.
fn host_and_port(host: &str, port: Option<u16>) -> (Cow<'_, str>, Cow<'_, str>) {
    let host = host.trim_end_matches('.');
    let host = match host.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(host.to_ascii_lowercase()),
        false => Cow::Borrowed(host),
    };
    let normal = match port {
        Some(port) => Cow::Owned(format!("{host}:{port}")),
        None => host.clone(),
    };
    (normal, host)
}

/// The shared, periodically reloaded snapshot.
#[derive(Clone)]
pub struct DomainPolicies {
    db: Db,
    allowlist_only: bool,
    local_domain: String,
    current: Arc<RwLock<(Arc<Snapshot>, Option<Instant>)>>,
    /// A reload is under way in the background.
    reloading: Arc<AtomicBool>,
    /// The snapshot is to be read again, however recent ([`Self::expire`]).
    expired: Arc<AtomicBool>,
}

impl DomainPolicies {
    /// Policies read from `db`; `local_domain` is never refused.
    pub fn new(db: Db, allowlist_only: bool, local_domain: &str) -> DomainPolicies {
        DomainPolicies {
            db,
            allowlist_only,
            local_domain: local_domain.to_ascii_lowercase(),
            current: Arc::new(RwLock::new((Arc::default(), None))),
            reloading: Arc::default(),
            expired: Arc::default(),
        }
    }

    /// The current snapshot. The first is read before it is used; one
    /// older than [`RELOAD_AFTER`] is still used while a background task
    /// reads the table again, so that no request waits for a database
    /// connection (readers holding the whole pool would otherwise hold up
    /// the inbox every ten seconds).
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, Error> {
        let (snapshot, read_at) = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match read_at {
            None => self.reload().await,
            Some(at) if at.elapsed() < RELOAD_AFTER && !self.expired.load(Ordering::Acquire) => {
                Ok(snapshot)
            }
            Some(_) => {
                self.reload_in_background();
                Ok(snapshot)
            }
        }
    }

    /// Starts a [`reload`](Self::reload) unless one is under way.
    fn reload_in_background(&self) {
        if self.reloading.swap(true, Ordering::AcqRel) {
            return;
        }
        let policies = self.clone();
        tokio::spawn(async move {
            if let Err(e) = policies.reload().await {
                tracing::warn!(error = %e, "cannot read the federation policies again; the last ones stay in force");
            }
            policies.reloading.store(false, Ordering::Release);
        });
    }

    /// Marks the snapshot as old: the next check reloads it in the
    /// background (as [`RELOAD_AFTER`] after its reading would).
    pub fn expire(&self) {
        self.expired.store(true, Ordering::Release);
    }

    /// Reads the table now (after a change made by this process).
    pub async fn reload(&self) -> Result<Arc<Snapshot>, Error> {
        self.expired.store(false, Ordering::Release);
        let rows = self.db.run(db::domain_policies::all).await?;
        let snapshot = Arc::new(Snapshot::new(rows, self.allowlist_only));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            (snapshot.clone(), Some(Instant::now()));
        Ok(snapshot)
    }

    /// The standing of `authority`; our own domain is always open.
    pub async fn standing(&self, authority: &str) -> Result<Standing, Error> {
        if authority.eq_ignore_ascii_case(&self.local_domain) {
            return Ok(Standing::Open);
        }
        Ok(self.snapshot().await?.standing(authority))
    }

    /// `Forbidden` when the host of `url` is refused.
    pub async fn check_url(&self, url: &Url) -> Result<Standing, Error> {
        // The URL's parts are made once, for both questions.
        let parts = url_parts(url);
        let ours = parts
            .as_ref()
            .is_some_and(|(normal, _)| *normal == self.local_domain);
        let standing = match ours {
            true => Standing::Open,
            false => self.snapshot().await?.standing_of_parts(parts.as_ref()),
        };
        match standing {
            Standing::Refused => Err(Error::Forbidden(format!(
                "{} is blocked by this instance's federation policy",
                url.authority()
            ))),
            other => Ok(other),
        }
    }
}

/// Refuses activitypub_federation's fetches (objects, actors, WebFinger)
/// from refused domains. The policies are shared: activitypub_federation
/// clones its verifier twice for every request, and a clone of
/// [`DomainPolicies`] copies its database handle and domain.
#[derive(Clone)]
pub struct PolicyVerifier(pub Arc<DomainPolicies>);

#[async_trait::async_trait]
impl activitypub_federation::config::UrlVerifier for PolicyVerifier {
    async fn verify(&self, url: &Url) -> Result<(), activitypub_federation::error::Error> {
        match self.0.check_url(url).await {
            Err(Error::Forbidden(_)) => {
                Err(activitypub_federation::error::Error::UrlVerificationError(
                    "the domain is blocked by this instance's federation policy",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The result of setting a policy.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The stored policy.
    pub row: DomainPolicyRow,
    /// Pending deliveries to the domain dropped by a block.
    pub dropped_deliveries: usize,
    /// What `--purge` removed.
    pub purged: Option<db::domain_policies::Purged>,
}

impl DomainPolicies {
    /// Gives `domain` the `policy` (block, silence or allow). A block drops
    /// the pending deliveries to it and, with `purge`, deletes its actors
    /// (their alerts, follows and keys) and its queued activities.
    pub async fn apply(
        &self,
        domain: &str,
        policy: &str,
        reason: Option<String>,
        purge: bool,
    ) -> Result<Applied, Error> {
        let domain = parse_domain(domain)?;
        if !matches!(policy, BLOCK | SILENCE | ALLOW) {
            return Err(Error::Validation {
                field: "policy".into(),
                message: "must be block, silence or allow".into(),
            });
        }
        if purge && policy != BLOCK {
            return Err(Error::Validation {
                field: "purge".into(),
                message: "only a blocked domain's data can be purged".into(),
            });
        }
        if domain == self.local_domain {
            return Err(Error::Validation {
                field: "domain".into(),
                message: "this is our own domain".into(),
            });
        }
        let policy = policy.to_string();
        let applied = self
            .db
            .run(move |conn| {
                let row = db::domain_policies::set(conn, &domain, &policy, reason.as_deref())?;
                let covered = |authority: &str| covers(&domain, authority);
                let (dropped_deliveries, purged) = match (policy.as_str(), purge) {
                    (BLOCK, true) => {
                        let p = db::domain_policies::purge(conn, &covered)?;
                        (p.deliveries, Some(p))
                    }
                    (BLOCK, false) => (db::domain_policies::drop_deliveries(conn, &covered)?, None),
                    _ => (0, None),
                };
                Ok(Applied {
                    row,
                    dropped_deliveries,
                    purged,
                })
            })
            .await?;
        self.reload().await?;
        Ok(applied)
    }

    /// Removes `domain`'s policy; false when it had none.
    pub async fn remove(&self, domain: &str) -> Result<bool, Error> {
        let domain = parse_domain(domain)?;
        let removed = self
            .db
            .run(move |conn| db::domain_policies::remove(conn, &domain))
            .await?;
        self.reload().await?;
        Ok(removed)
    }

    /// Every policy, by domain.
    pub async fn list(&self) -> Result<Vec<DomainPolicyRow>, Error> {
        Ok(self.db.run(db::domain_policies::all).await?)
    }

    /// The silenced domains, for filtering public listings.
    pub async fn silenced(&self) -> Result<Vec<String>, Error> {
        let mut silenced: Vec<String> = self
            .snapshot()
            .await?
            .policies
            .iter()
            .filter(|(_, policy)| *policy == SILENCE)
            .map(|(domain, _)| domain.clone())
            .collect();
        silenced.sort();
        Ok(silenced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(domain: &str, policy: &str) -> DomainPolicyRow {
        DomainPolicyRow {
            domain: domain.into(),
            policy: policy.into(),
            reason: None,
            created_at: 0,
        }
    }

    #[test]
    fn domains_are_normalised_and_cover_their_subdomains() {
        assert_eq!(
            normalize_domain(" HTTPS://Bad.Example./ ").as_deref(),
            Some("bad.example")
        );
        assert_eq!(
            normalize_domain("localhost:8081").as_deref(),
            Some("localhost:8081")
        );
        assert_eq!(normalize_domain("bad.example/path"), None);
        assert_eq!(normalize_domain("user@bad.example"), None);
        assert_eq!(normalize_domain(""), None);
        assert!(covers("bad.example", "bad.example"));
        assert!(covers("bad.example", "social.bad.example:8443"));
        assert!(!covers("bad.example", "notbad.example"));
        assert!(covers("localhost:8081", "localhost:8081"));
        assert!(!covers("localhost:8081", "localhost:8082"));
    }

    #[test]
    fn the_most_specific_policy_wins_and_allowlist_mode_refuses_the_rest() {
        let s = Snapshot::new(
            vec![row("example", BLOCK), row("good.example", ALLOW)],
            false,
        );
        assert_eq!(s.standing("x.example"), Standing::Refused);
        assert_eq!(s.standing("a.good.example"), Standing::Open);
        assert_eq!(s.standing("other.org"), Standing::Open);
        let s = Snapshot::new(
            vec![row("member.example", ALLOW), row("loud.example", SILENCE)],
            true,
        );
        assert_eq!(s.standing("member.example"), Standing::Open);
        assert_eq!(s.standing("loud.example"), Standing::Silenced);
        assert_eq!(s.standing("stranger.example"), Standing::Refused);
    }

    /// The lookup by domain finds what the definition says: the covering
    /// policy with the longest domain.
    #[test]
    fn the_lookup_agrees_with_covers() {
        let rows = vec![
            row("example", BLOCK),
            row("good.example", ALLOW),
            row("loud.good.example", SILENCE),
            row("localhost:8081", BLOCK),
            row("127.0.0.1", SILENCE),
            row("0.1", BLOCK),
        ];
        let s = Snapshot::new(rows.clone(), false);
        for authority in [
            "example",
            "EXAMPLE.",
            "x.example:8443",
            "good.example",
            "a.good.example",
            "loud.good.example",
            "very.loud.good.example:443",
            "notgood.example",
            "example.org",
            "localhost:8081",
            "localhost:8082",
            "localhost",
            "127.0.0.1:8081",
            "10.0.0.1",
            "[::1]:8081",
            "bad/path",
            "",
        ] {
            let expected = rows
                .iter()
                .filter(|r| covers(&r.domain, authority))
                .max_by_key(|r| r.domain.len())
                .map(|r| r.policy.as_str());
            assert_eq!(s.most_specific(authority), expected, "{authority}");
        }
        assert_eq!(s.standing("127.0.0.1:8081"), Standing::Silenced);
        assert_eq!(s.standing("10.0.0.1"), Standing::Refused);
    }

    /// A URL's host is the one checked, whatever else its authority holds:
    /// a user name in an actor's or key's URL once made it match no policy.
    #[test]
    fn a_user_name_in_a_url_does_not_hide_its_host() {
        let s = Snapshot::new(vec![row("bad.example", BLOCK)], false);
        for url in [
            "https://bad.example/users/x",
            "https://mallory@bad.example/users/x#main-key",
            "https://mallory:pw@social.BAD.example./users/x",
            "https://bad.example:443/users/x",
        ] {
            let url = Url::parse(url).unwrap();
            assert_eq!(s.standing_of_url(&url), Standing::Refused, "{url}");
        }
        let good = Url::parse("https://good.example/users/x").unwrap();
        assert_eq!(s.standing_of_url(&good), Standing::Open);
        let s = Snapshot::new(vec![row("localhost:8081", BLOCK)], false);
        let port = Url::parse("http://localhost:8081/inbox").unwrap();
        assert_eq!(s.standing_of_url(&port), Standing::Refused);
        let other = Url::parse("http://localhost:8082/inbox").unwrap();
        assert_eq!(s.standing_of_url(&other), Standing::Open);
    }
}
