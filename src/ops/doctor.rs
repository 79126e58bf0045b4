//! `tocsin doctor`: checks an installation from the configuration to the
//! public HTTPS endpoints, and says how to fix each problem it finds.

use crate::{
    config::Config,
    db::{self, Backend, Db},
    federation::{Urls, INSTANCE_ACTOR_USERNAME},
};
use std::{fmt, time::Duration};

/// The default server used to check outgoing connectivity and the clock.
pub const DEFAULT_REMOTE: &str = "https://mastodon.social/.well-known/nodeinfo";

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fine; what was seen.
    Ok(String),
    /// Works, but worth attention.
    Warn {
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// Broken: federation will not work until it is fixed.
    Fail {
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `configuration`, `database`, `clock` …
    pub name: &'static str,
    /// How it came out.
    pub outcome: Outcome,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Ok(detail.into()),
        }
    }

    fn warn(name: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Warn {
                problem: problem.into(),
                fix: fix.into(),
            },
        }
    }

    fn fail(name: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Fail {
                problem: problem.into(),
                fix: fix.into(),
            },
        }
    }

    /// True for a failed check.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Ok(detail) => write!(f, "ok    {}: {detail}", self.name),
            Outcome::Warn { problem, fix } => {
                write!(f, "WARN  {}: {problem}\n      fix: {fix}", self.name)
            }
            Outcome::Fail { problem, fix } => {
                write!(f, "FAIL  {}: {problem}\n      fix: {fix}", self.name)
            }
        }
    }
}

fn is_loopback_domain(domain: &str) -> bool {
    let host = domain.rsplit_once(':').map_or(domain, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

/// Runs every check; `remote` is fetched to test outgoing connectivity and
/// the clock.
pub async fn run(config: &Config, remote: &str) -> Vec<Check> {
    let mut checks = vec![configuration(config)];
    checks.extend(database(config).await);
    checks.push(media_dir(config));
    checks.push(inbox_journal(config));
    checks.extend(outgoing(config, remote).await);
    checks.extend(public_endpoints(config).await);
    checks
}

fn configuration(config: &Config) -> Check {
    const NAME: &str = "configuration";
    if config.insecure_federation() {
        return Check::warn(
            NAME,
            "a federation test switch is on (allow_http or allow_private_addresses): \
             never run a public instance like this",
            "set [federation] allow_http = false and allow_private_addresses = false",
        );
    }
    if is_loopback_domain(&config.instance.domain) {
        return Check::warn(
            NAME,
            format!(
                "[instance] domain is {}, which no other server can reach",
                config.instance.domain
            ),
            "set [instance] domain to your public host name before you federate",
        );
    }
    if config.scheme() != "https" {
        return Check::fail(
            NAME,
            format!("public URLs are {}", config.base_url()),
            "fediverse servers require https: set [instance] scheme = \"https\" (or leave it empty) and terminate TLS in a reverse proxy",
        );
    }
    if !config.federation.extra_ca_file.is_empty() {
        return Check::warn(
            NAME,
            "[federation] extra_ca_file is set",
            "it is meant for tests; leave it empty on a public instance",
        );
    }
    Check::ok(NAME, format!("valid; public URL {}", config.base_url()))
}

async fn database(config: &Config) -> Vec<Check> {
    const NAME: &str = "database";
    let config = config.clone();
    let result = tokio::task::spawn_blocking(move || database_blocking(&config)).await;
    result.unwrap_or_else(|e| vec![Check::fail(NAME, e.to_string(), "report this as a bug")])
}

fn database_blocking(config: &Config) -> Vec<Check> {
    const NAME: &str = "database";
    let url = &config.database.url;
    if let Ok(Backend::Sqlite(path)) = Backend::from_url(url) {
        if !path.exists() {
            return vec![Check::fail(
                NAME,
                format!("the SQLite file {} does not exist", path.display()),
                "check [database] url and the working directory, or run `tocsin migrate` to create it",
            )];
        }
    }
    let db = match Db::open(url, 1, config.database.busy_timeout_ms) {
        Ok(db) => db,
        Err(e) => {
            return vec![Check::fail(
                NAME,
                format!("cannot connect: {e}"),
                "check [database] url, that the database server runs, and the credentials",
            )]
        }
    };
    let mut conn = match db.conn() {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                NAME,
                format!("cannot connect: {e}"),
                "check [database] url, that the database server runs, and the credentials",
            )]
        }
    };
    let status = match db::schema_status(&mut conn) {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::fail(
                NAME,
                format!("cannot read the migrations: {e}"),
                "check that the database user may read and create tables",
            )]
        }
    };
    let mut checks = Vec::new();
    if !status.unknown.is_empty() {
        checks.push(Check::fail(
            "migrations",
            format!(
                "the database has migrations this Tocsin ({}) does not know: {}",
                env!("CARGO_PKG_VERSION"),
                status.unknown.join(", ")
            ),
            "run the newer Tocsin that wrote them, or restore a backup made by this version",
        ));
    } else if !status.pending.is_empty() {
        checks.push(Check::warn(
            "migrations",
            format!("{} migration(s) not applied yet", status.pending.len()),
            "run `tocsin migrate` (the server also applies them when it starts)",
        ));
    } else {
        checks.push(Check::ok(
            "migrations",
            format!("all {} applied", status.known.len()),
        ));
    }
    let actors = if status.pending.is_empty() {
        db::actors::local_actors(&mut conn).map_err(|e| e.to_string())
    } else {
        Ok(Vec::new())
    };
    match actors {
        Ok(actors)
            if actors
                .iter()
                .any(|a| a.username == config.actor.username && a.private_key_pem.is_some())
                && actors.iter().any(|a| a.username == INSTANCE_ACTOR_USERNAME) =>
        {
            let ours = Urls::new(config).actor(&config.actor.username);
            if actors.iter().any(|a| a.ap_id == ours.as_str()) {
                checks.push(Check::ok(NAME, "reachable; local actors and keys present"));
            } else {
                checks.push(Check::fail(
                    NAME,
                    format!(
                        "the local actors were created for another domain than {}",
                        config.instance.domain
                    ),
                    "[instance] domain must stay the one the instance federated with; set it back",
                ));
            }
        }
        Ok(_) => checks.push(Check::warn(
            NAME,
            "reachable, but the local actors do not exist yet",
            "start the server once (`tocsin serve`) to create them and their keys",
        )),
        Err(e) => checks.push(Check::fail(
            NAME,
            format!("cannot read the actors: {e}"),
            "run `tocsin migrate`, then check the database user's rights",
        )),
    }
    checks
}

fn media_dir(config: &Config) -> Check {
    const NAME: &str = "media";
    let dir = std::path::Path::new(&config.alerts.media_dir);
    match writable_dir(NAME, dir, "the first upload", "[alerts] media_dir") {
        Ok(()) => Check::ok(NAME, format!("{} is writable", dir.display())),
        Err(check) => check,
    }
}

/// The inbox's journal: writable, and how many activities in it are not
/// stored yet (a server's in flight, or what a stopped one left, queued by
/// the next start).
fn inbox_journal(config: &Config) -> Check {
    const NAME: &str = "inbox journal";
    if config.inbox.journal_dir.is_empty() {
        return Check::ok(NAME, "off: each inbox 202 waits for its commit");
    }
    let dir = std::path::Path::new(&config.inbox.journal_dir);
    if let Err(check) = writable_dir(NAME, dir, "the first start", "[inbox] journal_dir") {
        return check;
    }
    match crate::federation::inbox_journal::read(dir) {
        Ok(records) => Check::ok(
            NAME,
            format!(
                "{} is writable; {} activities in it not stored yet",
                dir.display(),
                records.len()
            ),
        ),
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            "give the user running tocsin read access to [inbox] journal_dir",
        ),
    }
}

/// Whether files can be written into `dir` (one is written and removed).
/// `Err` is the check to print: ok while the directory does not exist yet
/// (`made_by` makes it), failed when it cannot be written (`key` is the
/// setting that names it).
fn writable_dir(
    name: &'static str,
    dir: &std::path::Path,
    made_by: &str,
    key: &str,
) -> Result<(), Check> {
    if !dir.exists() {
        return Err(Check::ok(
            name,
            format!("{} does not exist yet; {made_by} creates it", dir.display()),
        ));
    }
    let probe = dir.join(".doctor-probe");
    match std::fs::write(&probe, b"x") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Check::fail(
            name,
            format!("cannot write into {}: {e}", dir.display()),
            format!("give the user running tocsin write access to {key}"),
        )),
    }
}

async fn outgoing(config: &Config, remote: &str) -> Vec<Check> {
    let client = match crate::federation::http_client(config) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "outgoing",
                e.to_string(),
                "fix [federation] extra_ca_file or leave it empty",
            )]
        }
    };
    let before = std::time::SystemTime::now();
    let response = match client.get(remote).send().await {
        Ok(r) => r,
        Err(e) => {
            return vec![
                Check::fail(
                    "outgoing",
                    format!("cannot reach {remote}: {e}"),
                    "let the server make outgoing HTTPS connections (DNS, firewall, port 443); \
                     or name a reachable server with --remote",
                ),
                Check::warn(
                    "clock",
                    "not checked: no remote server answered",
                    "keep the clock synchronised (systemd-timesyncd or chrony)",
                ),
            ]
        }
    };
    let after = std::time::SystemTime::now();
    let mut checks = vec![Check::ok(
        "outgoing",
        format!("{remote} answered {}", response.status()),
    )];
    let remote_date = response
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    checks.push(match remote_date {
        None => Check::warn(
            "clock",
            format!("not checked: {remote} sent no Date header"),
            "keep the clock synchronised (systemd-timesyncd or chrony)",
        ),
        Some(date) => {
            let skew = clock_skew(date, before, after);
            let limit = Duration::from_secs(config.federation.signature_max_skew_secs.min(60));
            if skew > limit {
                Check::fail(
                    "clock",
                    format!("our clock differs from {remote}'s by {}s", skew.as_secs()),
                    "signatures carry the time and are refused when it is off: synchronise \
                     the clock (apt install systemd-timesyncd, or chrony)",
                )
            } else {
                Check::ok("clock", format!("within {}s of {remote}", skew.as_secs()))
            }
        }
    });
    checks
}

/// How far outside [before, after] (plus the Date header's one-second
/// resolution) the remote's time lies.
fn clock_skew(
    remote: std::time::SystemTime,
    before: std::time::SystemTime,
    after: std::time::SystemTime,
) -> Duration {
    let after = after + Duration::from_secs(1);
    if remote < before {
        before.duration_since(remote).unwrap_or_default()
    } else if remote > after {
        remote.duration_since(after).unwrap_or_default()
    } else {
        Duration::ZERO
    }
}

async fn get_json(
    client: &reqwest::Client,
    url: &str,
    accept: &str,
) -> Result<serde_json::Value, String> {
    let response = client
        .get(url)
        .header("Accept", accept)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: status {}", response.status()));
    }
    let body = crate::federation::ssrf::read_limited(
        response,
        crate::federation::ssrf::MAX_RESPONSE_BYTES,
    )
    .await
    .map_err(|e| format!("GET {url}: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

async fn public_endpoints(config: &Config) -> Vec<Check> {
    let Ok(client) = crate::federation::http_client(config) else {
        return Vec::new();
    };
    let urls = Urls::new(config);
    let base = urls.base().to_string();
    let domain = &config.instance.domain;
    let username = &config.actor.username;
    let unreachable_fix = format!(
        "check that DNS for {domain} points at this server, that the reverse proxy \
         listens on 443 with a valid certificate and passes requests to [server] bind \
         (see docs/self-hosting.md)"
    );
    let mut checks = Vec::new();

    let webfinger_url = format!("{base}/.well-known/webfinger?resource=acct:{username}@{domain}");
    let actor_id = urls.actor(username).to_string();
    match get_json(&client, &webfinger_url, "application/jrd+json").await {
        Ok(jrd) => {
            let self_link = jrd["links"].as_array().and_then(|links| {
                links
                    .iter()
                    .find(|l| l["rel"] == "self")
                    .and_then(|l| l["href"].as_str())
            });
            checks.push(if self_link == Some(actor_id.as_str()) {
                Check::ok("webfinger", format!("@{username}@{domain} → {actor_id}"))
            } else {
                Check::fail(
                    "webfinger",
                    format!("the self link is {self_link:?}, expected {actor_id}"),
                    "another server answers for this domain: point the proxy at tocsin",
                )
            });
        }
        Err(e) => checks.push(Check::fail("webfinger", e, unreachable_fix.clone())),
    }

    let nodeinfo = async {
        let links = get_json(
            &client,
            &format!("{base}/.well-known/nodeinfo"),
            "application/json",
        )
        .await?;
        let href = links["links"]
            .as_array()
            .and_then(|l| l.last())
            .and_then(|l| l["href"].as_str())
            .ok_or("no NodeInfo link")?
            .to_string();
        if !href.starts_with(&base) {
            return Err(format!("the NodeInfo link {href} is not under {base}"));
        }
        let doc = get_json(&client, &href, "application/json").await?;
        Ok::<_, String>(doc["software"]["name"].as_str().unwrap_or("").to_string())
    };
    checks.push(match nodeinfo.await {
        Ok(name) if name == "tocsin" => Check::ok("nodeinfo", "served by tocsin"),
        Ok(name) => Check::fail(
            "nodeinfo",
            format!("served by {name:?}, not tocsin"),
            "another server answers for this domain: point the proxy at tocsin",
        ),
        Err(e) => Check::fail("nodeinfo", e, unreachable_fix.clone()),
    });

    checks.push(
        match get_json(&client, &actor_id, "application/activity+json").await {
            Ok(actor) if actor["id"] == actor_id.as_str() => {
                let key_owner = actor["publicKey"]["owner"].as_str();
                if key_owner == Some(actor_id.as_str()) {
                    Check::ok("actor", format!("{actor_id} serves its id and key"))
                } else {
                    Check::fail(
                        "actor",
                        format!("the key's owner is {key_owner:?}"),
                        "report this as a bug",
                    )
                }
            }
            Ok(actor) => Check::fail(
                "actor",
                format!("{actor_id} says its id is {}", actor["id"]),
                "ids come from [instance] domain and scheme: make them the public address \
                 the proxy serves",
            ),
            Err(e) => Check::fail("actor", e, unreachable_fix),
        },
    );
    if urls.base().starts_with("http://") && !is_loopback_domain(domain) {
        checks.push(Check::fail(
            "https",
            format!("the public URL {base} is not https"),
            "terminate TLS in a reverse proxy and set [instance] scheme = \"https\"",
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn clock_skew_is_zero_inside_the_request_window() {
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(clock_skew(t(100), t(100), t(101)), Duration::ZERO);
        assert_eq!(clock_skew(t(102), t(100), t(101)), Duration::ZERO);
        assert_eq!(clock_skew(t(40), t(100), t(101)), Duration::from_secs(60));
        assert_eq!(clock_skew(t(200), t(100), t(101)), Duration::from_secs(98));
    }

    #[test]
    fn a_test_switch_is_reported_with_its_fix() {
        let mut config = Config::default();
        config.instance.domain = "alerts.ngo.example".into();
        assert!(matches!(configuration(&config).outcome, Outcome::Ok(_)));
        config.federation.allow_http = true;
        let check = configuration(&config);
        assert!(matches!(check.outcome, Outcome::Warn { .. }), "{check}");
        assert!(check.to_string().contains("fix: set [federation]"));
    }

    #[test]
    fn a_loopback_domain_is_a_warning() {
        let check = configuration(&Config::default());
        assert!(matches!(check.outcome, Outcome::Warn { .. }), "{check}");
    }
}
