//! ActivityPub: our URL layout, local actors, the objects and activities we
//! exchange, the inbox, and the discovery routes.

pub mod activities;
pub mod authorized_fetch;
pub mod envelope;
pub mod forwarded;
pub mod inbox;
pub mod inbox_batch;
pub mod inbox_journal;
pub mod inbox_queue;
pub mod inbox_writer;
pub mod ld_signatures;
pub mod objects;
pub mod policy;
pub mod proofs;
pub mod routes;
pub mod signer_cache;
pub mod ssrf;

use crate::{
    config::Config,
    db::{self, actors::NewActor, now_ms},
    error::Error,
    signatures::keys::{generate_rsa_keypair, generate_rsa_keypairs, KeyMaker, PemKeypair},
    state::AppState,
};
use activitypub_federation::{
    config::FederationConfig as ApConfig, resolver::ValidatingDnsResolver,
};
use std::{sync::Arc, time::Duration};
use url::Url;

/// `type` of the organisation actor.
pub const ORGANIZATION: &str = "Organization";
/// `type` of the instance actor that signs fetches.
pub const APPLICATION: &str = "Application";
/// Username of the instance actor (its id is `<base>/actor`, as Mastodon's).
pub const INSTANCE_ACTOR_USERNAME: &str = "instance.actor";
/// Media type of ActivityPub documents we serve.
pub const ACTIVITY_JSON: &str = "application/activity+json; charset=utf-8";

/// Builds every public URL from the configured scheme and domain.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// URLs of the instance described by `config`.
    pub fn new(config: &Config) -> Urls {
        Urls {
            base: config.base_url(),
        }
    }

    /// URLs under `base` (`scheme://domain`), for code that has the base
    /// URL but not the configuration.
    pub fn from_base(base: &str) -> Urls {
        Urls {
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// `scheme://domain`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn parse(&self, path: &str) -> Url {
        // The base was validated at start, so joining a path cannot fail.
        Url::parse(&format!("{}{}", self.base, path)).expect("validated base URL")
    }

    /// The id of a local actor.
    pub fn actor(&self, username: &str) -> Url {
        if username == INSTANCE_ACTOR_USERNAME {
            return self.parse("/actor");
        }
        self.parse(&format!("/actors/{username}"))
    }

    /// A collection or endpoint under a local actor: `inbox`, `outbox` …
    pub fn actor_part(&self, username: &str, part: &str) -> Url {
        let mut url = self.actor(username);
        url.set_path(&format!("{}/{part}", url.path()));
        url
    }

    /// The shared inbox.
    pub fn shared_inbox(&self) -> Url {
        self.parse("/inbox")
    }

    /// The HTML profile page of a local actor.
    pub fn profile_page(&self, username: &str) -> Url {
        self.parse(&format!("/@{username}"))
    }

    /// A fresh id for an outgoing activity.
    pub fn new_activity(&self, kind: &str) -> Url {
        self.parse(&format!(
            "/activities/{}/{}",
            kind.to_lowercase(),
            uuid::Uuid::new_v4()
        ))
    }
}

/// The HTTP client for fetches and deliveries: no redirects followed, a
/// timeout, and a resolver that refuses private addresses unless the test
/// switch allows them.
pub fn http_client(config: &Config) -> Result<reqwest::Client, Error> {
    let timeout = Duration::from_secs(config.federation.request_timeout_secs);
    let mut builder = reqwest::Client::builder();
    if !config.federation.extra_ca_file.is_empty() {
        let file = &config.federation.extra_ca_file;
        let pem = std::fs::read(file).map_err(|e| {
            Error::Internal(format!("federation.extra_ca_file: cannot read {file}: {e}"))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::Internal(format!("federation.extra_ca_file: {file} is not PEM: {e}"))
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(format!(
            "Tocsin/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            config.base_url()
        ))
        .dns_resolver(Arc::new(ValidatingDnsResolver::new(
            vec![],
            !config.federation.allow_private_addresses,
        )))
        .build()
        .map_err(|e| Error::Internal(format!("cannot build HTTP client: {e}")))
}

/// Creates the organisation, instance and publication actors on first start (with new
/// RSA keys, made side by side) and refreshes their profile from the configuration later.
/// `early`: keys started before, taken first ([`early_keys`]).
pub fn ensure_local_actors(
    conn: &mut db::DbConn,
    config: &Config,
    early: Option<KeyMaker>,
) -> Result<(), Error> {
    let mut wanted = own_actors(config);
    wanted.extend(publication_actors(config));
    ensure_actors(conn, config, wanted, early)
}

/// [`ensure_local_actors`] for the organisation and instance actors only:
/// `tocsin serve` answers once these exist, and makes the publication
/// actors' keys after ([`ensure_publication_actors`]).
pub fn ensure_own_actors(
    conn: &mut db::DbConn,
    config: &Config,
    early: Option<KeyMaker>,
) -> Result<(), Error> {
    ensure_actors(conn, config, own_actors(config), early)
}

/// On a new SQLite database, starts making the organisation and instance
/// actors' keys at once, so that they are made while the database is
/// created and migrated; `None` otherwise (a restart has its keys, and a
/// PostgreSQL database cannot be told new before connecting).
pub fn early_keys(config: &Config) -> Option<KeyMaker> {
    db::Backend::from_url(&config.database.url)
        .is_ok_and(|backend| backend.is_new_sqlite())
        .then(|| KeyMaker::start(own_actors(config).len()))
}

/// [`ensure_local_actors`] for the publication actors only, holding a
/// connection only to read and to store, not while their keys are made:
/// `tocsin serve` runs it while it answers, and a connection held through
/// the keys' making would have the pool open a second one for the first
/// requests, which would stay open (and resident) for minutes.
pub async fn ensure_publication_actors(db: &db::Db, config: Arc<Config>) -> Result<(), Error> {
    let read_config = config.clone();
    let missing = db
        .run(move |conn| {
            let wanted = publication_actors(&read_config);
            keys_missing(conn, &read_config, &wanted)
        })
        .await?;
    let fresh = tokio::task::spawn_blocking(move || generate_rsa_keypairs(missing))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    db.run(move |conn| {
        let mut fresh = fresh.into_iter();
        Ok(publication_actors(&config)
            .into_iter()
            .try_for_each(|(username, profile)| {
                upsert_with_keys(conn, &config, &username, profile, &mut fresh).map(drop)
            }))
    })
    .await?
}

/// The organisation and instance actors, as the configuration describes them.
fn own_actors(config: &Config) -> Vec<(String, Profile<'static>)> {
    vec![
        (
            config.actor.username.clone(),
            Profile {
                kind: ORGANIZATION,
                name: config.actor.display_name.clone(),
                summary: config.actor.summary.clone(),
                icon: (!config.actor.icon.is_empty()).then(|| config.actor.icon.clone()),
            },
        ),
        (
            INSTANCE_ACTOR_USERNAME.to_string(),
            Profile {
                kind: APPLICATION,
                name: config.instance.name.clone(),
                summary: config.instance.description.clone(),
                icon: None,
            },
        ),
    ]
}

/// One actor per publication (Digest, Communiqué, Advocacy).
fn publication_actors(config: &Config) -> Vec<(String, Profile<'static>)> {
    crate::publications::PUBLICATIONS
        .iter()
        .map(|publication| {
            let (name, summary) = crate::publications::profile(config, publication);
            let profile = Profile {
                kind: crate::curation::SERVICE,
                name,
                summary,
                icon: None,
            };
            (publication.name.to_string(), profile)
        })
        .collect()
}

/// Stores `wanted`, making the keys of those that have none side by side,
/// taking those `early` made first.
fn ensure_actors(
    conn: &mut db::DbConn,
    config: &Config,
    wanted: Vec<(String, Profile)>,
    early: Option<KeyMaker>,
) -> Result<(), Error> {
    let missing = keys_missing(conn, config, &wanted)?;
    let mut fresh = match early {
        Some(mut early) => early.take(missing)?,
        None => Vec::new(),
    };
    fresh.extend(generate_rsa_keypairs(missing - fresh.len())?);
    let mut fresh = fresh.into_iter();
    for (username, profile) in wanted {
        upsert_with_keys(conn, config, &username, profile, &mut fresh)?;
    }
    Ok(())
}

/// How many of `wanted` have no stored key yet.
fn keys_missing(
    conn: &mut db::DbConn,
    config: &Config,
    wanted: &[(String, Profile)],
) -> Result<usize, db::DbError> {
    let urls = Urls::new(config);
    let ids: Vec<String> = wanted
        .iter()
        .map(|(username, _)| urls.actor(username).to_string())
        .collect();
    let keyed = db::actors::by_ap_ids(conn, &ids)?
        .into_iter()
        .filter(|a| a.private_key_pem.is_some())
        .count();
    Ok(ids.len().saturating_sub(keyed))
}

/// Stores local actor `username` with its profile, keeping its RSA keys or
/// making new ones for a new actor.
pub fn upsert_local_actor(
    conn: &mut db::DbConn,
    config: &Config,
    username: &str,
    kind: &str,
    name: String,
    summary: String,
    icon: Option<String>,
) -> Result<db::actors::ActorRow, Error> {
    let profile = Profile {
        kind,
        name,
        summary,
        icon,
    };
    upsert_with_keys(conn, config, username, profile, &mut std::iter::empty())
}

/// What a local actor shows of itself.
struct Profile<'a> {
    kind: &'a str,
    name: String,
    summary: String,
    icon: Option<String>,
}

/// [`upsert_local_actor`], taking a new actor's keys from `fresh` while it
/// has some.
fn upsert_with_keys(
    conn: &mut db::DbConn,
    config: &Config,
    username: &str,
    profile: Profile,
    fresh: &mut dyn Iterator<Item = PemKeypair>,
) -> Result<db::actors::ActorRow, Error> {
    let urls = Urls::new(config);
    let ap_id = urls.actor(username);
    let existing = db::actors::by_ap_id(conn, ap_id.as_str())?;
    let (public_key_pem, private_key_pem) = match &existing {
        Some(row) if row.private_key_pem.is_some() => {
            (row.public_key_pem.clone(), row.private_key_pem.clone())
        }
        _ => {
            let pair = fresh.next().map_or_else(generate_rsa_keypair, Ok)?;
            (pair.public_pem, Some(pair.private_pem))
        }
    };
    let now = now_ms();
    let actor = NewActor {
        ap_id: ap_id.to_string(),
        kind: profile.kind.to_string(),
        username: username.to_string(),
        domain: config.instance.domain.clone(),
        local: true,
        name: Some(profile.name),
        summary: Some(profile.summary),
        inbox: urls.actor_part(username, "inbox").to_string(),
        shared_inbox: Some(urls.shared_inbox().to_string()),
        outbox: Some(urls.actor_part(username, "outbox").to_string()),
        followers_url: Some(urls.actor_part(username, "followers").to_string()),
        url: Some(urls.profile_page(username).to_string()),
        icon: profile.icon,
        public_key_id: format!("{ap_id}#main-key"),
        public_key_pem,
        private_key_pem,
        last_refreshed_at: now,
        created_at: existing.map_or(now, |r| r.created_at),
    };
    Ok(db::actors::upsert(conn, &actor)?)
}

/// activitypub_federation's configuration for our state: the state's HTTP
/// client (built once: it reads every system root certificate), fetches
/// signed by the instance actor, http and private addresses only when
/// configured.
pub async fn federation_config(state: AppState) -> Result<ApConfig<AppState>, Error> {
    let config = state.config.clone();
    let urls = Urls::new(&config);
    let instance_actor = state
        .db
        .run(move |conn| {
            db::actors::by_ap_id(conn, urls.actor(INSTANCE_ACTOR_USERNAME).as_str())?
                .ok_or(db::DbError::Query(diesel::result::Error::NotFound))
        })
        .await?;
    let client = state.client.clone();
    let state_policies = state.policies.clone();
    ApConfig::builder()
        .domain(config.instance.domain.clone())
        .app_data(state)
        .client(client.into())
        .debug(config.federation.allow_private_addresses)
        .allow_http_urls(config.federation.allow_http)
        .http_signature_compat(true)
        .request_timeout(Duration::from_secs(config.federation.request_timeout_secs))
        .signed_fetch_actor(&objects::actor::DbActor::new(instance_actor)?)
        .url_verifier(Box::new(policy::PolicyVerifier(Arc::new(state_policies))))
        .build()
        .await
        .map_err(|e| Error::Internal(format!("federation config: {e}")))
}

/// True when both URLs are on the same host and port; the port matters on
/// loopback test networks where instances differ only by port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    let same_host = match (a.host_str(), b.host_str()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (x, y) => x == y,
    };
    same_host && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_compares_host_and_port() {
        let url = |s: &str| Url::parse(s).unwrap();
        let a = url("https://ngo.example/actors/alerts");
        assert!(same_origin(&a, &url("https://ngo.example/alerts/1")));
        assert!(same_origin(&a, &url("https://ngo.example:443/x")));
        assert!(!same_origin(&a, &url("https://ngo.example:8443/x")));
        assert!(!same_origin(&a, &url("https://other.example/x")));
        assert!(!same_origin(&a, &url("https://sub.ngo.example/x")));
        assert!(!same_origin(&a, &url("http://ngo.example:80/x")));
        assert!(same_origin(
            &url("http://127.0.0.1:8080/a"),
            &url("http://127.0.0.1:8080/b")
        ));
        assert!(!same_origin(&a, &url("urn:uuid:0")));
    }
}
