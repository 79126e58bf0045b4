//! Configuration: built-in defaults, layered with a TOML file and
//! `TOCSIN_<SECTION>__<KEY>` environment variables, validated once at start.

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, net::SocketAddr, path::Path};
use thiserror::Error;
use url::Url;

/// Why the configuration could not be used; the message names the key.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file or an environment variable could not be read or parsed.
    #[error("configuration: {0}")]
    Load(String),
    /// A key has a value we cannot use.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// Dotted name of the key, e.g. `instance.domain`.
        key: &'static str,
        /// What is wrong with its value.
        message: String,
    },
}

/// The whole configuration of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP listener.
    pub server: ServerConfig,
    /// Public identity of the instance.
    pub instance: InstanceConfig,
    /// Where data lives.
    pub database: DatabaseConfig,
    /// The organisation actor.
    pub actor: ActorConfig,
    /// Federation safety switches and limits.
    pub federation: FederationConfig,
    /// The persistent delivery queue.
    pub delivery: DeliveryConfig,
    /// The persistent inbox queue.
    pub inbox: InboxConfig,
    /// Alerts: taxonomy and limits.
    pub alerts: AlertsConfig,
    /// Request limits and rate limits.
    pub limits: LimitsConfig,
    /// Curated feeds (`[[feeds]]`), each a followable `Service` actor.
    pub feeds: Vec<FeedConfig>,
    /// E-mail to subscribers: SMTP server, sender, pace.
    pub mail: MailConfig,
    /// The publications' actors (`[publications.digest]` …): profiles that
    /// replace the built-in ones.
    pub publications: BTreeMap<String, PublicationConfig>,
    /// Digest schedules (`[[digests]]`): when the scheduler builds an issue.
    pub digests: Vec<DigestSchedule>,
}

/// `[publications.NAME]`: the profile of a publication's actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PublicationConfig {
    /// Display name; empty means the built-in one.
    pub display_name: String,
    /// Profile text; empty means the built-in one.
    pub summary: String,
}

/// `[[digests]]`: one schedule of Digest issues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DigestSchedule {
    /// Language of the issues.
    pub language: String,
    /// Days of the week it runs: `mon` … `sun`.
    pub days: Vec<String>,
    /// Time of day it runs, `HH:MM` in UTC.
    pub time: String,
    /// Days an issue covers, back from its due time; 0 means since the
    /// previous due time of this schedule.
    pub period_days: u32,
    /// Publish the issue at once instead of leaving a draft for an editor.
    pub publish: bool,
}

impl Default for DigestSchedule {
    fn default() -> Self {
        DigestSchedule {
            language: "en".into(),
            days: vec!["mon".into()],
            time: "09:00".into(),
            period_days: 0,
            publish: false,
        }
    }
}

/// `[mail]`: the SMTP server publications are sent through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP server host name; empty disables e-mail (sign-up answers 503).
    pub smtp_host: String,
    /// SMTP port; 0 means the usual one for `security` (25, 587 or 465).
    pub smtp_port: u16,
    /// `none` (plain text, loopback only), `starttls` or `tls`.
    pub security: String,
    /// SMTP login; empty for none.
    pub username: String,
    /// SMTP password.
    pub password: String,
    /// The `From` address, e.g. `Digest <digest@ngo.example>`.
    pub from: String,
    /// Messages handed to the server per second, at most; 0 for no limit.
    pub rate: f64,
    /// Subscribers claimed per database transaction while sending.
    pub batch_size: i64,
    /// SMTP connections used at the same time while sending.
    pub connections: u32,
    /// Base of the links in messages (confirmation, preferences,
    /// unsubscribe), e.g. `https://alerts.ngo.example`; empty means the
    /// instance's own `scheme://domain`.
    pub base_url: String,
    /// Address for `mailto:` unsubscribe requests in `List-Unsubscribe`
    /// (read by the operator); empty to offer only the one-click URL.
    pub unsubscribe_mailto: String,
    /// Seconds a sender holds an issue; a sender killed without releasing
    /// it is replaced after this long.
    pub lease_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_host: String::new(),
            smtp_port: 0,
            security: "starttls".into(),
            username: String::new(),
            password: String::new(),
            from: "Tocsin <noreply@localhost>".into(),
            rate: 20.0,
            batch_size: 200,
            connections: 2,
            base_url: String::new(),
            unsubscribe_mailto: String::new(),
            lease_secs: 120,
        }
    }
}

/// One `[[feeds]]` entry: a feed actor and which incoming alerts it boosts.
/// Empty lists match everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// Handle: `@username@domain`. The organisation's own username makes
    /// the organisation actor a feed too.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Biography, plain text.
    pub summary: String,
    /// `auto` (boost every match) or `review` (matches wait for an editor);
    /// empty takes the role's default.
    pub mode: String,
    /// Region keys.
    pub regions: Vec<String>,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// Category keys.
    pub categories: Vec<String>,
    /// Language tags.
    pub languages: Vec<String>,
    /// Urgencies.
    pub urgencies: Vec<String>,
}

/// `[alerts]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Taxonomy file (regions, countries, categories); empty means the
    /// built-in `config/taxonomy.toml`.
    pub taxonomy_file: String,
    /// Longest accepted title, in characters.
    pub max_title_chars: usize,
    /// Largest accepted Markdown body, in bytes.
    pub max_body_bytes: usize,
    /// Alerts per page in the API and the outbox.
    pub page_size: i64,
    /// Where uploaded files are kept.
    pub media_dir: String,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            taxonomy_file: String::new(),
            max_title_chars: 300,
            max_body_bytes: 100_000,
            page_size: 20,
            media_dir: "data/media".into(),
            max_upload_bytes: 10 * 1024 * 1024,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: String,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Take the client address for rate limits from the last
    /// `X-Forwarded-For` entry (set by our reverse proxy) instead of the
    /// connection.
    pub trust_forwarded_for: bool,
    /// Bytes of prepared public answers (actors, alerts, collections,
    /// WebFinger, anonymous alert, profile, home and archive pages) kept in
    /// memory; 0 turns the cache off.
    pub read_cache_bytes: usize,
    /// Seconds a prepared answer is kept at most: the bound on how long a
    /// change made by another process (the CLI, a second server on the same
    /// PostgreSQL) may go unseen. Changes made by this server drop the
    /// cache at once.
    pub read_cache_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 256 * 1024,
            workers: 0,
            trust_forwarded_for: false,
            read_cache_bytes: 8 * 1024 * 1024,
            read_cache_secs: 10,
        }
    }
}

/// `[instance]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceConfig {
    /// Public host name (with port if not 443/80), e.g. `alerts.ngo.example`.
    pub domain: String,
    /// `https` or `http`; empty means `http` for localhost and loopback, `https` otherwise.
    pub scheme: String,
    /// Human-readable name of the instance.
    pub name: String,
    /// One-paragraph description shown in NodeInfo and on the home page.
    pub description: String,
    /// `member`, `clearinghouse` or `hub`: a preset of defaults (feeds of a
    /// Clearing House wait for review; a hub's boost automatically).
    pub role: String,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        InstanceConfig {
            domain: "localhost:8080".into(),
            scheme: String::new(),
            name: "Tocsin".into(),
            description: "Alerts about threats to journalists and free expression.".into(),
            role: "member".into(),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (relative to the working directory) or `postgres://…`.
    pub url: String,
    /// Connections kept in the pool.
    pub pool_size: u32,
    /// How long SQLite waits for a lock before failing, in milliseconds.
    pub busy_timeout_ms: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/tocsin.db".into(),
            pool_size: 8,
            busy_timeout_ms: 5000,
        }
    }
}

/// `[actor]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActorConfig {
    /// Local part of the organisation's handle: `@alerts@domain`.
    pub username: String,
    /// Display name shown by fediverse clients.
    pub display_name: String,
    /// Short biography (plain text).
    pub summary: String,
    /// URL of an avatar image; empty for none.
    pub icon: String,
}

impl Default for ActorConfig {
    fn default() -> Self {
        ActorConfig {
            username: "alerts".into(),
            display_name: "Alerts".into(),
            summary: "Alerts about threats to journalists and free expression.".into(),
            icon: String::new(),
        }
    }
}

/// `[federation]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FederationConfig {
    /// Accept and fetch `http://` URLs. Only for tests and local development.
    pub allow_http: bool,
    /// Allow fetching and delivering to loopback and private addresses and
    /// explicit ports. Only for tests and local development.
    pub allow_private_addresses: bool,
    /// Timeout of every outgoing request, in seconds.
    pub request_timeout_secs: u64,
    /// Accepted clock difference of a signature's `Date`, in seconds (past).
    pub signature_max_age_secs: u64,
    /// Accepted clock skew of a signature's `Date` into the future, in seconds.
    pub signature_max_skew_secs: u64,
    /// PEM file of extra CA certificates trusted for outgoing HTTPS, besides
    /// the system's. Only for tests and development (self-signed proxies).
    pub extra_ca_file: String,
    /// Every GET of an ActivityPub document must carry a valid HTTP
    /// signature from a domain that is not refused (secure mode).
    pub authorized_fetch: bool,
    /// Federate only with domains whose policy is `allow` (or `silence`).
    pub allowlist_only: bool,
    /// Days the id of a received activity is remembered, so that a copy
    /// is dropped; older ids are forgotten (at least 1).
    pub remember_received_days: u64,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            allow_http: false,
            allow_private_addresses: false,
            request_timeout_secs: 10,
            signature_max_age_secs: 3600,
            signature_max_skew_secs: 300,
            extra_ca_file: String::new(),
            authorized_fetch: false,
            allowlist_only: false,
            remember_received_days: 30,
        }
    }
}

/// `[delivery]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Deliveries sent at the same time, over all hosts.
    pub concurrency: usize,
    /// Deliveries sent at the same time to one host.
    pub per_host_concurrency: usize,
    /// Give a delivery up after this many hours of failures.
    pub give_up_after_hours: u64,
    /// First retry delay in seconds; doubled on every failure (with jitter).
    pub initial_backoff_secs: u64,
    /// Failures in a row after which a host is considered down.
    pub host_down_after_failures: u32,
    /// Seconds a claimed delivery stays with the process that claimed it; a
    /// process that dies loses its claims after this long and another (or
    /// the restarted one) sends them.
    pub lease_secs: u64,
    /// Days an outgoing activity and the record of where it went are kept
    /// once none of its deliveries is still pending; older ones are
    /// forgotten (at least 1).
    pub keep_sent_days: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            concurrency: 64,
            per_host_concurrency: 8,
            give_up_after_hours: 7 * 24,
            initial_backoff_secs: 30,
            host_down_after_failures: 8,
            lease_secs: 300,
            keep_sent_days: 30,
        }
    }
}

/// `[inbox]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboxConfig {
    /// Activities processed one at a time each (the batch lane is apart).
    pub workers: usize,
    /// Tries before an activity whose processing keeps failing is given up.
    pub max_attempts: u32,
    /// First retry delay in seconds; doubled on every failure.
    pub initial_backoff_secs: u64,
    /// Seconds a claimed activity stays with the process that claimed it.
    pub lease_secs: u64,
    /// Enqueues arriving within this many milliseconds share one
    /// transaction; 0 writes each on its own.
    pub enqueue_batch_ms: u64,
    /// Where accepted activities are journaled before their 202 (one
    /// process per directory); empty: the 202 waits for the commit.
    pub journal_dir: String,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            workers: 4,
            max_attempts: 5,
            initial_backoff_secs: 30,
            lease_secs: 300,
            enqueue_batch_ms: 2,
            journal_dir: "data/inbox-journal".into(),
        }
    }
}

/// `[limits]`: what one request may carry and how often a client may
/// call. A rate of 0 turns that limit off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Deepest nesting of arrays and objects in an inbox or API body.
    pub max_json_depth: usize,
    /// Most `to`, `cc`, `bto`, `bcc` and `audience` entries in one activity.
    pub max_recipients: usize,
    /// Inbox POSTs per client address per minute.
    pub inbox_per_ip_per_minute: u32,
    /// Inbox POSTs per remote host (of the signing key) per minute.
    pub inbox_per_host_per_minute: u32,
    /// API requests (`/api/…`) per client address per minute.
    pub api_per_ip_per_minute: u32,
    /// Login attempts (`POST /login`) per client address per minute.
    pub login_per_ip_per_minute: u32,
    /// E-mail sign-ups (`POST /subscribe`) per client address per hour.
    pub subscribe_per_ip_per_hour: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_json_depth: 32,
            max_recipients: 1000,
            inbox_per_ip_per_minute: 600,
            inbox_per_host_per_minute: 300,
            api_per_ip_per_minute: 300,
            login_per_ip_per_minute: 10,
            subscribe_per_ip_per_hour: 20,
        }
    }
}

impl Config {
    /// Defaults, then `file` (if any), then `TOCSIN_<SECTION>__<KEY>` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Load(format!(
                    "file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only TOCSIN_<SECTION>__<KEY> variables are configuration; others
        // (TOCSIN_CONFIG, TOCSIN_LOG, test switches) are not.
        figment = figment.merge(
            Env::prefixed("TOCSIN_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value we can check without touching the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        if self.server.bind.parse::<SocketAddr>().is_err() {
            return invalid(
                "server.bind",
                "must be an address and port, e.g. 127.0.0.1:8080",
            );
        }
        if self.server.max_body_bytes < 1024 {
            return invalid("server.max_body_bytes", "must be at least 1024");
        }
        let domain = &self.instance.domain;
        if domain.is_empty()
            || Url::parse(&format!("https://{domain}/"))
                .ok()
                .and_then(|u| {
                    u.host_str()
                        .map(|h| u.authority() == domain.as_str() && !h.is_empty())
                })
                != Some(true)
        {
            return invalid(
                "instance.domain",
                "must be a bare host name with an optional port, e.g. alerts.ngo.example",
            );
        }
        if !matches!(self.instance.scheme.as_str(), "" | "http" | "https") {
            return invalid("instance.scheme", "must be \"https\", \"http\" or empty");
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return invalid(
                "database.url",
                "must start with sqlite:// or postgres:// (or postgresql://)",
            );
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1");
        }
        if self.federation.remember_received_days == 0
            || self.federation.remember_received_days > 36_500
        {
            return invalid(
                "federation.remember_received_days",
                "must be between 1 and 36500",
            );
        }
        if self.delivery.keep_sent_days == 0 || self.delivery.keep_sent_days > 36_500 {
            return invalid("delivery.keep_sent_days", "must be between 1 and 36500");
        }
        let username = &self.actor.username;
        if username.is_empty()
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return invalid(
                "actor.username",
                "must be non-empty ASCII letters, digits, '_', '-' or '.'",
            );
        }
        if !self.actor.icon.is_empty() && Url::parse(&self.actor.icon).is_err() {
            return invalid("actor.icon", "must be an absolute URL or empty");
        }
        if !matches!(
            self.instance.role.as_str(),
            "member" | "clearinghouse" | "hub"
        ) {
            return invalid("instance.role", "must be member, clearinghouse or hub");
        }
        let mut names = std::collections::HashSet::new();
        // A feed may carry the organisation's own username: the organisation
        // actor then boosts matching alerts itself.
        for feed in &self.feeds {
            if feed.username.is_empty()
                || !feed
                    .username
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return invalid(
                    "feeds.username",
                    "must be non-empty ASCII letters, digits, '_' or '-'",
                );
            }
            if !names.insert(feed.username.to_lowercase()) {
                return invalid("feeds.username", "must differ from every other feed's");
            }
            if !matches!(feed.mode.as_str(), "" | "auto" | "review") {
                return invalid("feeds.mode", "must be auto, review or empty");
            }
        }
        if self.alerts.page_size < 1 || self.alerts.page_size > 200 {
            return invalid("alerts.page_size", "must be between 1 and 200");
        }
        if self.delivery.concurrency == 0 {
            return invalid("delivery.concurrency", "must be at least 1");
        }
        if self.delivery.lease_secs <= self.federation.request_timeout_secs {
            return invalid(
                "delivery.lease_secs",
                "must be longer than federation.request_timeout_secs",
            );
        }
        if self.inbox.workers == 0 {
            return invalid("inbox.workers", "must be at least 1");
        }
        if self.inbox.lease_secs <= self.federation.request_timeout_secs {
            return invalid(
                "inbox.lease_secs",
                "must be longer than federation.request_timeout_secs",
            );
        }
        if self.limits.max_json_depth < 4 {
            return invalid("limits.max_json_depth", "must be at least 4");
        }
        if self.limits.max_recipients == 0 {
            return invalid("limits.max_recipients", "must be at least 1");
        }
        if self.delivery.per_host_concurrency == 0 {
            return invalid("delivery.per_host_concurrency", "must be at least 1");
        }
        self.validate_publications()?;
        self.validate_mail()
    }

    fn validate_publications(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        let names = || {
            crate::publications::PUBLICATIONS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for name in self.publications.keys() {
            if crate::publications::find(name).is_none() {
                return invalid(
                    "publications",
                    format!("{name} is not a publication (known: {})", names()),
                );
            }
        }
        let taken = |username: &str| {
            crate::publications::PUBLICATIONS
                .iter()
                .any(|p| p.name.eq_ignore_ascii_case(username))
        };
        if taken(&self.actor.username) {
            return invalid(
                "actor.username",
                format!("must differ from the publications' actors ({})", names()),
            );
        }
        if let Some(feed) = self.feeds.iter().find(|f| taken(&f.username)) {
            return invalid(
                "feeds.username",
                format!("{} is a publication's actor ({})", feed.username, names()),
            );
        }
        for schedule in &self.digests {
            if let Err(message) = crate::publications::schedule::Plan::parse(schedule) {
                return invalid("digests", message);
            }
        }
        Ok(())
    }

    fn validate_mail(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        let mail = &self.mail;
        if !matches!(mail.security.as_str(), "none" | "starttls" | "tls") {
            return invalid("mail.security", "must be none, starttls or tls");
        }
        if mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return invalid(
                "mail.from",
                "must be an address, e.g. Digest <digest@ngo.example>",
            );
        }
        if !mail.unsubscribe_mailto.is_empty()
            && mail.unsubscribe_mailto.parse::<lettre::Address>().is_err()
        {
            return invalid("mail.unsubscribe_mailto", "must be an address or empty");
        }
        if !(mail.rate.is_finite() && mail.rate >= 0.0) {
            return invalid("mail.rate", "must be 0 or a positive number");
        }
        if mail.batch_size < 1 {
            return invalid("mail.batch_size", "must be at least 1");
        }
        if mail.connections == 0 {
            return invalid("mail.connections", "must be at least 1");
        }
        // The lease is renewed once per batch: a batch must go out well
        // within it, or a second sender could take the issue over.
        if mail.lease_secs == 0
            || (mail.rate > 0.0
                && mail.batch_size as f64 / mail.rate * 2.0 > mail.lease_secs as f64)
        {
            return invalid(
                "mail.lease_secs",
                "must be at least twice the time of one batch (mail.batch_size / mail.rate seconds)",
            );
        }
        if !mail.base_url.is_empty()
            && !Url::parse(&mail.base_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return invalid("mail.base_url", "must be an http(s) URL or empty");
        }
        Ok(())
    }

    /// The scheme of our public URLs.
    pub fn scheme(&self) -> &str {
        match self.instance.scheme.as_str() {
            "" => {
                let host = self
                    .instance
                    .domain
                    .rsplit_once(':')
                    .map_or(self.instance.domain.as_str(), |(h, _)| h);
                if host == "localhost" || host.starts_with("127.") || host == "[::1]" {
                    "http"
                } else {
                    "https"
                }
            }
            other => other,
        }
    }

    /// `scheme://domain`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme(), self.instance.domain)
    }

    /// Base of the links in e-mail, without a trailing slash.
    pub fn mail_base_url(&self) -> String {
        if self.mail.base_url.is_empty() {
            self.base_url()
        } else {
            self.mail.base_url.trim_end_matches('/').to_string()
        }
    }

    /// The mode of a feed: its own, or the role's default.
    pub fn feed_mode<'a>(&self, feed: &'a FeedConfig) -> &'a str {
        match (feed.mode.as_str(), self.instance.role.as_str()) {
            ("", "clearinghouse") => "review",
            ("", _) => "auto",
            (mode, _) => mode,
        }
    }

    /// True when an insecure test switch is on; the server warns loudly.
    pub fn insecure_federation(&self) -> bool {
        self.federation.allow_http || self.federation.allow_private_addresses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_documents_every_default() {
        let text = include_str!("../config/default.toml");
        let from_file: toml::Value = toml::from_str(text).expect("default.toml parses");
        let defaults = toml::Value::try_from(Config::default()).expect("defaults serialise");
        assert_eq!(
            from_file, defaults,
            "config/default.toml differs from Config::default()"
        );
    }

    #[test]
    fn example_configurations_load_and_validate() {
        for (file, role, feeds) in [
            ("../config/example-clearinghouse.toml", "clearinghouse", 4),
            ("../config/example-hub.toml", "hub", 2),
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src")
                .join(file);
            let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(config.instance.role, role);
            assert_eq!(config.feeds.len(), feeds);
            let expected = if role == "clearinghouse" {
                "review"
            } else {
                "auto"
            };
            assert_eq!(config.feed_mode(&config.feeds[0]), expected);
        }
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("defaults validate");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut config = Config::default();
        config.instance.domain = "https://x.example/".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("instance.domain"), "{err}");

        let mut config = Config::default();
        config.database.url = "mysql://x".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("database.url"), "{err}");

        let mut config = Config::default();
        config.mail.rate = 1.0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("mail.lease_secs"), "{err}");
        config.mail.rate = 0.0;
        config.mail.security = "ssl".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("mail.security"), "{err}");

        for days in [0, 36_501] {
            let mut config = Config::default();
            config.federation.remember_received_days = days;
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("federation.remember_received_days"), "{err}");
            let mut config = Config::default();
            config.delivery.keep_sent_days = days;
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("delivery.keep_sent_days"), "{err}");
        }
    }

    #[test]
    fn scheme_is_http_only_for_loopback_by_default() {
        let mut config = Config::default();
        assert_eq!(config.base_url(), "http://localhost:8080");
        config.instance.domain = "alerts.ngo.example".into();
        assert_eq!(config.base_url(), "https://alerts.ngo.example");
        config.instance.scheme = "http".into();
        assert_eq!(config.base_url(), "http://alerts.ngo.example");
    }
}
