//! The operator's command line: `tocsin serve`, `migrate`, `token`, `follow`.

use crate::{
    config::Config,
    db::{self, Db},
    error::Error,
    federation::{activities::follow, objects::actor::DbActor},
    server,
};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Tocsin: federated alerts about threats to journalists and free expression.
#[derive(Debug, Parser)]
#[command(name = "tocsin", version, about)]
pub struct Cli {
    /// Configuration file layered over the defaults (see config/default.toml).
    #[arg(long, global = true, env = "TOCSIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the instance: HTTP server and delivery worker.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API bearer tokens.
    Token {
        /// Token action.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Follow a remote actor (`@user@host` or an actor URL) as the
    /// organisation actor; the Follow is queued and sent by the server.
    Follow {
        /// `@user@host` or `https://host/actor-url`.
        handle: String,
    },
    /// List whom the organisation actor follows, and each follow's state.
    Following,
    /// Show the delivery queue (depth, due, in flight, oldest, failing hosts)
    /// and the inbox queue (waiting, given up).
    Queue,
    /// Load historical alerts from a JSON Lines file into the archive
    /// (docs/import.md); they are not federated. Nothing is imported if any
    /// line is invalid.
    Import {
        /// The JSON Lines file.
        file: PathBuf,
    },
    /// Write a consistent backup (database, actors' keys, uploaded files)
    /// to FILE while the server runs; the same archive restores on SQLite
    /// and PostgreSQL.
    Backup {
        /// Archive to write (readable by its owner only: it holds keys).
        file: PathBuf,
    },
    /// Restore a backup archive into an empty database and media directory.
    Restore {
        /// Archive written by `tocsin backup`.
        file: PathBuf,
    },
    /// Copy every row of the configured database into another, empty one
    /// (e.g. SQLite to PostgreSQL); stop the server first.
    MigrateDb {
        /// Database URL to copy into, e.g. postgres://tocsin@127.0.0.1/tocsin.
        #[arg(long)]
        to: String,
    },
    /// Check the configuration, database, clock, outgoing connectivity and
    /// the public HTTPS endpoints; exit status 1 when something is wrong.
    Doctor {
        /// A remote server to reach, testing outgoing HTTPS and the clock.
        #[arg(long, default_value = crate::ops::doctor::DEFAULT_REMOTE)]
        remote: String,
    },
    /// Web accounts (authors, editors, admins).
    User {
        /// Account action.
        #[command(subcommand)]
        action: UserAction,
    },
    /// The member directory: organisations followed as members.
    Members {
        /// Directory action.
        #[command(subcommand)]
        action: MembersAction,
    },
    /// Joint campaigns hosted here: create, invite member organisations,
    /// list campaigns and participants (docs/campaigns.md).
    Campaign {
        /// Campaign action.
        #[command(subcommand)]
        action: CampaignAction,
    },
    /// The editorial review queue of curated feeds.
    Review {
        /// Review action.
        #[command(subcommand)]
        action: ReviewAction,
    },
    /// Digest issues: build a draft, publish it, send a published issue by
    /// e-mail, show issues and their send progress.
    Digest {
        /// Digest action.
        #[command(subcommand)]
        action: DigestAction,
    },
    /// Federation policy: block, silence or allow a remote domain (and its
    /// subdomains). A running server picks a change up within 10 seconds.
    Domain {
        /// Policy action.
        #[command(subcommand)]
        action: DomainAction,
    },
    /// E-mail subscribers: import, bounces and complaints, counts.
    Subscribers {
        /// Subscribers action.
        #[command(subcommand)]
        action: SubscribersAction,
    },
}

/// `tocsin domain …`
#[derive(Debug, Subcommand)]
pub enum DomainAction {
    /// Refuse everything from DOMAIN and deliver nothing to it (pending
    /// deliveries are dropped).
    Block {
        /// e.g. `spam.example`.
        domain: String,
        /// Why (shown by `list`).
        #[arg(long)]
        reason: Option<String>,
        /// Also delete its actors with their alerts and follows, and its
        /// activities waiting in the inbox queue.
        #[arg(long)]
        purge: bool,
    },
    /// Accept DOMAIN but keep its alerts out of public listings, feeds and
    /// the review queue.
    Silence {
        /// e.g. `loud.example`.
        domain: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Put DOMAIN on the allowlist (used when `allowlist_only` is on).
    Allow {
        /// e.g. `member.example`.
        domain: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove DOMAIN's policy (block, silence or allow).
    Unblock {
        /// The domain.
        domain: String,
    },
    /// List every policy.
    List,
}

/// `tocsin subscribers …`
#[derive(Debug, Subcommand)]
pub enum SubscribersAction {
    /// Import people who consented before (e.g. to the list this instance
    /// replaces) from CSV: `email,language,publications,regions`, lists
    /// separated by `;`. They are imported as confirmed; addresses already
    /// present are left alone. Nothing is imported if a line is invalid.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The record of their consent kept with each subscriber.
        #[arg(long)]
        consent: Option<String>,
    },
    /// Record a hard bounce: the address receives nothing more.
    Bounce {
        /// The address.
        address: String,
    },
    /// Record a complaint (marked as spam): the address receives nothing
    /// more.
    Complaint {
        /// The address.
        address: String,
    },
    /// Read bounce and complaint reports as received (one raw message per
    /// file, `-` for standard input): a delivery status notification
    /// (RFC 3464) whose recipient failed with 5.x.x, or an abuse report
    /// (RFC 5965), pauses the subscriber it is about; a delay or 4.x.x
    /// changes nothing.
    Report {
        /// Files holding one message each.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Count subscribers by state.
    Status,
}

/// `tocsin digest …`
#[derive(Debug, Subcommand)]
pub enum DigestAction {
    /// Build a draft issue from the approved and local alerts of the last
    /// DAYS days in LANGUAGE; prints its id and items.
    Build {
        /// Language code, e.g. `en`.
        #[arg(long)]
        language: String,
        /// Length of the period, ending now.
        #[arg(long, default_value_t = 7)]
        days: i64,
    },
    /// Publish a draft issue (Digest or Communiqué) by its id.
    Publish {
        /// Issue id, as printed by `build` and `status`.
        issue: i64,
    },
    /// List the latest issues (Digest and Communiqué) with state, item
    /// count and mail progress: the figures of the issue's web page.
    Status,
    /// Send a published issue by e-mail to its confirmed subscribers, at
    /// `[mail] rate`. Run it again after a crash or a stop: it continues
    /// where the last run stopped.
    Send {
        /// Issue id (see `tocsin digest status`).
        issue: i64,
    },
}

/// `tocsin members …`
#[derive(Debug, Subcommand)]
pub enum MembersAction {
    /// Follow an organisation and record it as a member.
    Add {
        /// `@alerts@ngo.example` or an actor URL.
        handle: String,
        /// Region key from the taxonomy.
        #[arg(long)]
        region: Option<String>,
        /// ISO country code; repeat for several.
        #[arg(long = "country")]
        countries: Vec<String>,
    },
    /// List the directory.
    List,
    /// Remove a member from the directory.
    Remove {
        /// `@alerts@ngo.example` or an actor URL.
        handle: String,
    },
    /// Follow every member of another instance's directory.
    Sync {
        /// The directory's URL, e.g. `https://ch.example/members`.
        url: String,
    },
}

/// `tocsin campaign …`
#[derive(Debug, Subcommand)]
pub enum CampaignAction {
    /// Create a campaign: a followable `Group` actor `@USERNAME@<domain>`.
    Create {
        /// Handle on this instance, e.g. `impunity`.
        username: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The campaign's aims (plain text).
        #[arg(long)]
        aims: String,
        /// Target country (ISO 3166-1 alpha-2).
        #[arg(long)]
        country: Option<String>,
        /// Target theme, e.g. "defamation laws".
        #[arg(long)]
        theme: Option<String>,
    },
    /// Invite a member organisation; it joins when it follows the campaign.
    Invite {
        /// The campaign's username.
        campaign: String,
        /// `@alerts@ngo.example` or an actor URL.
        member: String,
    },
    /// Withdraw an invitation or remove a participant.
    Remove {
        /// The campaign's username.
        campaign: String,
        /// `@alerts@ngo.example` or an actor URL.
        member: String,
    },
    /// List the campaigns, or one campaign's participants.
    List {
        /// A campaign's username: list its participants.
        campaign: Option<String>,
    },
}

/// `tocsin review …`
#[derive(Debug, Subcommand)]
pub enum ReviewAction {
    /// List pending items.
    List,
    /// Approve an item: the chosen feeds boost the member's original.
    Approve {
        /// Item id.
        id: i64,
        /// Feed to boost it in; repeat for several (default: every match).
        #[arg(long = "feed")]
        feeds: Vec<String>,
    },
    /// Curate an item: publish this instance's own edited version, which
    /// credits and quotes the member's original, and boost it.
    Curate {
        /// Item id.
        id: i64,
        /// New headline (default: the member's).
        #[arg(long)]
        title: Option<String>,
        /// File with the new Markdown body (default: the member's text).
        #[arg(long)]
        body_file: Option<PathBuf>,
        /// Feed to boost it in; repeat for several (default: every match).
        #[arg(long = "feed")]
        feeds: Vec<String>,
    },
    /// Reject an item, with a reason.
    Reject {
        /// Item id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// `tocsin user …`
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account. The password is read from standard input (one
    /// line) or, when none is given, generated and printed on the last line.
    Add {
        /// Login name (one word).
        #[arg(long)]
        name: String,
        /// `admin`, `editor` or `author`.
        #[arg(long)]
        role: String,
    },
    /// List the accounts and their roles.
    List,
    /// Set a new password (read from standard input, or generated and
    /// printed); the account's sessions end.
    Passwd {
        /// Login name.
        #[arg(long)]
        name: String,
    },
}

/// `tocsin token …`
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token; it is printed once, as the last line of output.
    Create {
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
    },
    /// Revoke every token with this name.
    Revoke {
        /// The token's name.
        #[arg(long)]
        name: String,
    },
}

/// Parses arguments, runs the command and maps errors to an exit status.
pub fn main() -> ! {
    let cli = Cli::parse();
    init_tracing();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    exit_skipping_c_handlers(code)
}

/// Ends the process without the C libraries' exit handlers.
///
/// r2d2 opens pool connections on threads of its own, which nothing can
/// join. When one of them is still connecting to PostgreSQL as the process
/// exits, the exit handler that OpenSSL registered (through libpq) frees
/// state that thread is using, and the process dies of a segfault after
/// its work is done (diesel-rs/diesel#3441, sfackler/r2d2#137); a CLI
/// command then fails with nothing on stderr. By the time this runs,
/// `run` has dropped the runtime, its tasks, the pools and their
/// connections; what is left to flush is flushed here.
fn exit_skipping_c_handlers(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` only ends the process; no Rust state is used after.
    unsafe { libc::_exit(code) }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOCSIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tocsin::http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), Error> {
    let config = Config::load(cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Migrate => {
                let db = open_db(&config).await?;
                let applied = db.migrate()?;
                println!("database is up to date ({applied} migrations applied now)");
                Ok(())
            }
            Command::Token { action } => {
                let db = open_db(&config).await?;
                match action {
                    TokenAction::Create { name } => {
                        let token = db.run(move |conn| db::tokens::create(conn, &name)).await?;
                        println!("Created an API token. Keep it secret; it is shown only once:");
                        println!("{token}");
                    }
                    TokenAction::Revoke { name } => {
                        let n = db.run(move |conn| db::tokens::revoke(conn, &name)).await?;
                        println!("revoked {n} token(s)");
                    }
                }
                Ok(())
            }
            Command::Follow { handle } => follow_command(config, &handle).await,
            Command::Following => following_command(config).await,
            Command::Import { file } => import_command(config, file).await,
            Command::User { action } => user_command(config, action).await,
            Command::Members { action } => members_command(config, action).await,
            Command::Campaign { action } => campaign_command(config, action).await,
            Command::Review { action } => review_command(config, action).await,
            Command::Digest { action } => digest_command(&config, action).await,
            Command::Subscribers { action } => subscribers_command(&config, action).await,
            Command::Queue => queue_command(&config).await,
            Command::Backup { file } => backup_command(config, file).await,
            Command::Restore { file } => restore_command(config, file).await,
            Command::MigrateDb { to } => migrate_db_command(config, to).await,
            Command::Doctor { remote } => doctor_command(config, &remote).await,
            Command::Domain { action } => domain_command(config, action).await,
        }
    })
}

/// A password from standard input (first line), or a generated one and
/// whether it was generated.
fn password_from_stdin() -> (String, bool) {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).is_ok() {
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            if !line.is_empty() {
                return (line, false);
            }
        }
    }
    (crate::accounts::generate_password(), true)
}

/// Runs `tocsin user …`; `user add` and `user passwd` call the same
/// functions as the web pages.
pub async fn user_command(config: Config, action: UserAction) -> Result<(), Error> {
    let db = open_db(&config).await?;
    match action {
        UserAction::Add { name, role } => {
            let (password, generated) = password_from_stdin();
            let user = crate::accounts::add_user(&db, &name, &role, &password).await?;
            println!("created {} ({})", user.name, user.role);
            if generated {
                println!("Password (shown once):");
                println!("{password}");
            }
        }
        UserAction::List => {
            for u in db.run(db::users::list).await? {
                println!("{}\t{}", u.name, u.role);
            }
        }
        UserAction::Passwd { name } => {
            let (password, generated) = password_from_stdin();
            crate::accounts::set_password(&db, &name, &password).await?;
            println!("password of {name} changed");
            if generated {
                println!("Password (shown once):");
                println!("{password}");
            }
        }
    }
    Ok(())
}

async fn digest_command(config: &Config, action: DigestAction) -> Result<(), Error> {
    use crate::db::publications;
    let db = open_db(config).await?;
    match action {
        DigestAction::Build { language, days } => {
            let end = db::now_ms();
            let start = end - days * 86_400_000;
            let (id, items) = db
                .run(move |conn| {
                    let id = crate::publications::digest::build(conn, &language, start, end)?;
                    Ok((id, publications::items(conn, id)?))
                })
                .await?;
            println!("draft digest issue {id}: {} item(s)", items.len());
            for item in items {
                println!("{}\t{}\t{}", item.id, item.section, item.heading);
            }
        }
        DigestAction::Publish { issue } => {
            let base = config.base_url();
            let taxonomy = crate::alerts::taxonomy::Taxonomy::load(&config.alerts.taxonomy_file)
                .map_err(Error::Internal)?;
            let published = db
                .run(move |conn| Ok(crate::publications::publish(conn, &base, &taxonomy, issue)))
                .await?
                .map_err(|e| Error::BadRequest(e.to_string()))?;
            println!(
                "published issue {}: {}",
                published.id,
                published.ap_id.unwrap_or_default()
            );
        }
        DigestAction::Status => {
            let rows = db
                .run(|conn| {
                    let mut rows = Vec::new();
                    for issue in publications::latest_issues(conn, 20)? {
                        let items = publications::items(conn, issue.id)?.len();
                        let progress = publications::send_progress(conn, issue.id)?;
                        rows.push((issue, items, progress));
                    }
                    Ok(rows)
                })
                .await?;
            println!("id\tlanguage\tstate\titems\tsent\tsending\ttitle");
            for (issue, items, (sent, sending)) in &rows {
                println!(
                    "{}\t{}\t{}\t{items}\t{sent}\t{sending}\t{}",
                    issue.id, issue.language, issue.state, issue.title
                );
            }
            let ids: Vec<i64> = rows.iter().map(|(issue, _, _)| issue.id).collect();
            print!("{}", crate::mail::send::status_report(&db, &ids).await?);
            let schedules = config.clone();
            let lines = db
                .run(move |conn| {
                    crate::publications::schedule::status(conn, &schedules, chrono::Utc::now())
                })
                .await?;
            if !lines.is_empty() {
                println!("schedules ([[digests]]):");
                for line in lines {
                    println!("{line}");
                }
            }
        }
        DigestAction::Send { issue } => send_command(config, &db, issue).await?,
    }
    Ok(())
}

/// `tocsin digest send ISSUE`.
async fn send_command(config: &Config, db: &Db, issue: i64) -> Result<(), Error> {
    use crate::mail::send::{send_issue, Pace, SendReport};
    let mailer =
        crate::mail::Mailer::from_config(config).map_err(|e| Error::BadRequest(e.to_string()))?;
    let taxonomy = crate::alerts::taxonomy::Taxonomy::load(&config.alerts.taxonomy_file)
        .map_err(Error::Internal)?;
    let progress = |r: &SendReport| {
        println!(
            "issue {issue}: {} sent, {} refused, {} skipped so far",
            r.sent, r.failed, r.skipped
        );
    };
    let pace = Pace::from_config(&config.mail);
    let report = send_issue(db, &mailer, &taxonomy, issue, pace, &progress)
        .await
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    println!(
        "issue {issue} sent completely: {} sent, {} refused, {} skipped in this run",
        report.sent, report.failed, report.skipped
    );
    Ok(())
}

async fn subscribers_command(config: &Config, action: SubscribersAction) -> Result<(), Error> {
    use crate::db::subscribers;
    let db = open_db(config).await?;
    match action {
        SubscribersAction::Import { file, consent } => {
            let taxonomy = crate::alerts::taxonomy::Taxonomy::load(&config.alerts.taxonomy_file)
                .map_err(Error::Internal)?;
            let handle = std::fs::File::open(&file)
                .map_err(|e| Error::BadRequest(format!("cannot open {}: {e}", file.display())))?;
            let rows = match crate::mail::import::parse(handle, &taxonomy) {
                Ok(rows) => rows,
                Err(bad) => {
                    for b in bad.iter().take(50) {
                        eprintln!("line {}: {}", b.line, b.message);
                    }
                    return Err(Error::BadRequest(format!(
                        "{} invalid line(s); nothing was imported",
                        bad.len()
                    )));
                }
            };
            let consent = consent.unwrap_or_else(|| {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                format!(
                    "imported from {} on {}: consented before, to the list this instance replaces",
                    name.unwrap_or_default(),
                    chrono::Utc::now().format("%Y-%m-%d")
                )
            });
            let total = rows.len();
            let (added, present) = db
                .run(move |conn| subscribers::import(conn, &rows, &consent))
                .await?;
            println!(
                "{total} subscriber(s) read: {added} imported as confirmed, {present} already present"
            );
        }
        SubscribersAction::Bounce { address } => pause_command(&db, address, "bounce").await?,
        SubscribersAction::Complaint { address } => {
            pause_command(&db, address, "complaint").await?
        }
        SubscribersAction::Report { files } => report_command(config, &db, files).await?,
        SubscribersAction::Status => {
            for (state, n) in db.run(subscribers::counts).await? {
                println!("{state}\t{n}");
            }
        }
    }
    Ok(())
}

/// `tocsin subscribers report FILE…`: applies each raw report; fails if a
/// file is not a report.
async fn report_command(config: &Config, db: &Db, files: Vec<PathBuf>) -> Result<(), Error> {
    use crate::mail::reports;
    use std::io::Read as _;
    for file in files {
        let mut raw = Vec::new();
        let read = if file.as_os_str() == "-" {
            std::io::stdin().read_to_end(&mut raw)
        } else {
            std::fs::File::open(&file).and_then(|mut f| f.read_to_end(&mut raw))
        };
        read.map_err(|e| Error::BadRequest(format!("cannot read {}: {e}", file.display())))?;
        let report = reports::parse(&raw)
            .map_err(|e| Error::BadRequest(format!("{}: {e}", file.display())))?;
        let base = config.mail_base_url();
        let id_domain = crate::mail::id_domain(config);
        let applied = db
            .run(move |conn| reports::apply(conn, &report, &base, &id_domain))
            .await?;
        let what = match (applied.kind.pause_reason(), applied.paused.as_slice()) {
            (None, _) => "nobody paused".to_string(),
            (Some(_), []) if applied.unknown => "no subscriber matches it".to_string(),
            (Some(_), []) => "the subscriber is unsubscribed already".to_string(),
            (Some(_), ids) => format!(
                "paused subscriber(s) {}",
                ids.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        println!(
            "{}: {} {}: {what}",
            file.display(),
            applied.kind.as_str(),
            applied.detail
        );
    }
    Ok(())
}

/// Pauses an address after a bounce or complaint report (`kind`).
async fn pause_command(db: &Db, address: String, kind: &'static str) -> Result<(), Error> {
    use crate::mail::reports::{pause_all, pause_reason};
    let reason = pause_reason(kind).expect("a known kind");
    let (paused, _) = db
        .run(move |conn| pause_all(conn, &[address], reason))
        .await?;
    if paused == 0 {
        return Err(Error::BadRequest("no subscriber has this address".into()));
    }
    println!("paused: {reason}");
    Ok(())
}

async fn open_db(config: &Config) -> Result<Db, Error> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        Db::connect(
            &config.database.url,
            config.database.pool_size,
            config.database.busy_timeout_ms,
        )
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(Error::from)
}

async fn serve(config: Config) -> Result<(), Error> {
    let listener = std::net::TcpListener::bind(&config.server.bind)
        .map_err(|e| Error::Internal(format!("cannot listen on {}: {e}", config.server.bind)))?;
    server::start_serving(config, listener).await?.wait().await
}

async fn follow_command(config: Config, handle: &str) -> Result<(), Error> {
    let username = config.actor.username.clone();
    let data = command_data(config).await?;
    let us: DbActor = follow::local_actor(&data, &username).await?;
    let target = follow::follow_remote(&data, &us, handle).await?;
    println!(
        "Follow of {} queued; the running server sends it and records the answer.",
        target.ap_id
    );
    Ok(())
}

async fn following_command(config: Config) -> Result<(), Error> {
    let username = config.actor.username.clone();
    let state = server::open_state(config).await?;
    let rows = state
        .db
        .run(move |conn| {
            let us = db::actors::local_by_username(conn, &username)?
                .ok_or(db::DbError::Query(diesel::result::Error::NotFound))?;
            db::follows::following(conn, us.id)
        })
        .await?;
    for (actor, state) in rows {
        println!(
            "{state}\t@{}@{}\t{}",
            actor.username, actor.domain, actor.ap_id
        );
    }
    Ok(())
}

async fn import_command(config: Config, file: PathBuf) -> Result<(), Error> {
    use crate::alerts::import::{import, ImportError};
    let username = config.actor.username.clone();
    let state = server::open_state(config).await?;
    let handle = std::fs::File::open(&file)
        .map_err(|e| Error::BadRequest(format!("cannot open {}: {e}", file.display())))?;
    let config = state.config.clone();
    let report = state
        .db
        .run(move |conn| {
            let actor = db::actors::local_by_username(conn, &username)?
                .ok_or(db::DbError::Query(diesel::result::Error::NotFound))?;
            Ok(import(
                conn,
                &config,
                actor.id,
                std::io::BufReader::new(handle),
            ))
        })
        .await?;
    match report {
        Ok(r) => {
            println!(
                "imported {} alerts, skipped {} already imported",
                r.imported, r.skipped
            );
            Ok(())
        }
        Err(ImportError::Invalid(lines)) => {
            for l in lines.iter().take(50) {
                eprintln!("line {}: {}: {}", l.line, l.field, l.message);
            }
            Err(Error::BadRequest(format!(
                "{} invalid line(s); nothing was imported",
                lines.len()
            )))
        }
        Err(e) => Err(Error::Internal(e.to_string())),
    }
}

/// activitypub_federation request data for a command that talks to others.
async fn command_data(config: Config) -> Result<crate::state::Data, Error> {
    let state = server::open_state(config).await?;
    Ok(crate::federation::federation_config(state)
        .await?
        .to_request_data())
}

async fn members_command(config: Config, action: MembersAction) -> Result<(), Error> {
    use crate::curation::members;
    let username = config.actor.username.clone();
    let data = command_data(config).await?;
    match action {
        MembersAction::Add {
            handle,
            region,
            countries,
        } => {
            let us = follow::local_actor(&data, &username).await?;
            let member = members::add(&data, &us, &handle, region, countries).await?;
            println!(
                "{} added to the directory; the Follow is queued",
                member.ap_id
            );
        }
        MembersAction::List => {
            for (member, actor) in data.db.run(db::curation::members).await? {
                println!(
                    "@{}@{}\t{}\t{}\t{}",
                    actor.username,
                    actor.domain,
                    member.region.unwrap_or_default(),
                    db::alerts::split_list(&member.countries).join(","),
                    actor.ap_id
                );
            }
        }
        MembersAction::Remove { handle } => {
            let removed = members::remove(&data, &handle).await?;
            println!("{}", if removed { "removed" } else { "not a member" });
        }
        MembersAction::Sync { url } => {
            let us = follow::local_actor(&data, &username).await?;
            let (added, failed) = members::sync(&data, &us, &url::Url::parse(&url)?).await?;
            println!("{added} members added");
            for f in &failed {
                eprintln!("failed: {f}");
            }
        }
    }
    Ok(())
}

async fn campaign_command(config: Config, action: CampaignAction) -> Result<(), Error> {
    use crate::campaigns::{self, CampaignInput};
    let domain = config.instance.domain.clone();
    let data = command_data(config).await?;
    match action {
        CampaignAction::Create {
            username,
            name,
            aims,
            country,
            theme,
        } => {
            let input = CampaignInput {
                username,
                name,
                aims,
                country,
                theme,
            };
            let c = campaigns::create(&data, input).await?;
            println!("created @{}@{domain}\t{}", c.actor.username, c.actor.ap_id);
        }
        CampaignAction::Invite { campaign, member } => {
            let c = campaigns::by_username(&data, &campaign).await?;
            let (p, org) = campaigns::invite(&data, &c, &member).await?;
            println!("{}\t{}", p.state, org.ap_id);
        }
        CampaignAction::Remove { campaign, member } => {
            let c = campaigns::by_username(&data, &campaign).await?;
            campaigns::remove(&data, &c, &member).await?;
            println!("removed");
        }
        CampaignAction::List { campaign: None } => {
            for c in campaigns::list(&data).await? {
                println!(
                    "@{}@{domain}\t{}\t{}",
                    c.actor.username,
                    c.actor.name.unwrap_or_default(),
                    c.row.country.or(c.row.theme).unwrap_or_default()
                );
            }
        }
        CampaignAction::List {
            campaign: Some(name),
        } => {
            let c = campaigns::by_username(&data, &name).await?;
            for (p, org) in campaigns::participants(&data, &c).await? {
                println!(
                    "{}\t@{}@{}\t{}",
                    p.state, org.username, org.domain, org.ap_id
                );
            }
        }
    }
    Ok(())
}

async fn review_command(config: Config, action: ReviewAction) -> Result<(), Error> {
    let data = command_data(config).await?;
    let who = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    );
    match action {
        ReviewAction::List => {
            let items = data
                .db
                .run(|conn| db::curation::reviews(conn, Some(db::curation::PENDING), 500))
                .await?;
            for item in items {
                let alert_id = item.alert_id;
                let alert = data
                    .db
                    .run(move |conn| db::alerts::by_id(conn, alert_id))
                    .await?;
                println!(
                    "{}\t{}\t{}\t{}",
                    item.id,
                    item.matched().join(","),
                    alert.title,
                    alert.ap_id
                );
            }
        }
        ReviewAction::Approve { id, feeds } => {
            let feeds = (!feeds.is_empty()).then_some(feeds);
            let item = crate::curation::approve(&data, id, feeds, &who).await?;
            println!("approved; boosted in {}", item.approved().join(", "));
        }
        ReviewAction::Curate {
            id,
            title,
            body_file,
            feeds,
        } => {
            let body = match body_file {
                Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                    Error::BadRequest(format!("cannot read {}: {e}", path.display()))
                })?),
                None => None,
            };
            let input = crate::curation::CurateInput {
                title,
                body,
                feeds: (!feeds.is_empty()).then_some(feeds),
                translations: vec![],
            };
            let (_, curated) = crate::curation::curate(&data, id, input, &who).await?;
            println!("curated: {}", curated.ap_id);
        }
        ReviewAction::Reject { id, reason } => {
            crate::curation::reject(&data, id, &reason, &who).await?;
            println!("rejected");
        }
    }
    Ok(())
}

async fn queue_command(config: &Config) -> Result<(), Error> {
    let db = open_db(config).await?;
    let (stats, states, hosts, (inbox_waiting, inbox_failed)) = db
        .run(|conn| {
            Ok((
                db::deliveries::queue_stats(conn)?,
                db::deliveries::counts_by_state(conn)?,
                db::deliveries::failing_hosts(conn)?,
                db::inbox_queue::counts(conn)?,
            ))
        })
        .await?;
    print!("{}", queue_report(&stats, &states, &hosts, db::now_ms()));
    println!("inbox waiting\t{inbox_waiting}");
    println!("inbox given up\t{inbox_failed}");
    Ok(())
}

/// The text of `tocsin queue`.
pub fn queue_report(
    stats: &db::deliveries::QueueStats,
    states: &[(String, i64)],
    hosts: &[db::deliveries::HostRow],
    now: i64,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let ago = |at: i64| {
        let secs = (now - at).max(0) / 1000;
        format!(
            "{}h{:02}m{:02}s ago",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    };
    let count = |state: &str| {
        states
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n)
    };
    let _ = writeln!(out, "pending\t{}", stats.pending);
    let _ = writeln!(out, "due now\t{}", stats.due);
    let _ = writeln!(out, "in flight\t{}", stats.in_flight);
    let oldest = stats
        .oldest_pending_at
        .map_or_else(|| "-".to_string(), &ago);
    let _ = writeln!(out, "oldest pending\t{oldest}");
    for state in [
        db::deliveries::DONE,
        db::deliveries::FAILED,
        db::deliveries::GONE,
    ] {
        let _ = writeln!(out, "{state}\t{}", count(state));
    }
    let _ = writeln!(out, "failing hosts\t{}", hosts.len());
    for host in hosts {
        let status = match host.down_until {
            Some(at) if at > now => format!("down, next probe in {}s", (at - now) / 1000),
            Some(_) => "down, probe due".to_string(),
            None => "up".to_string(),
        };
        let last = host
            .last_success_at
            .map_or_else(|| "never".to_string(), &ago);
        let _ = writeln!(
            out,
            "  {}\t{} failures in a row\t{status}\tlast success {last}",
            host.host, host.consecutive_failures
        );
    }
    out
}

async fn backup_command(config: Config, file: PathBuf) -> Result<(), Error> {
    let counts = with_archive(config, file, crate::ops::backup::backup_to_file).await?;
    println!(
        "backup written: {} rows, {} files",
        counts.rows, counts.files
    );
    Ok(())
}

async fn restore_command(config: Config, file: PathBuf) -> Result<(), Error> {
    let counts = with_archive(config, file, crate::ops::backup::restore_from_file).await?;
    println!(
        "restored {} rows and {} files; start the server with `tocsin serve`",
        counts.rows, counts.files
    );
    Ok(())
}

/// An archive operation on the configured database, domain and media.
type ArchiveOp = fn(
    &mut db::DbConn,
    &str,
    &std::path::Path,
    &std::path::Path,
) -> Result<crate::ops::backup::Counts, crate::ops::backup::BackupError>;

async fn with_archive(
    config: Config,
    file: PathBuf,
    op: ArchiveOp,
) -> Result<crate::ops::backup::Counts, Error> {
    let db = open_db(&config).await?;
    db.run(move |conn| {
        let media = std::path::Path::new(&config.alerts.media_dir);
        op(conn, &config.instance.domain, media, &file)
            .map_err(|e| db::DbError::Task(e.to_string()))
    })
    .await
    .map_err(ops_error)
}

async fn migrate_db_command(config: Config, to: String) -> Result<(), Error> {
    let source = open_db(&config).await?;
    let mut target_config = config.clone();
    target_config.database.url = to.clone();
    let target = open_db(&target_config).await?;
    let domain = config.instance.domain.clone();
    let counts = tokio::task::spawn_blocking(move || -> Result<_, db::DbError> {
        let mut source = source.conn()?;
        let mut target = target.conn()?;
        crate::ops::backup::copy_database(&mut source, &mut target, &domain)
            .map_err(|e| db::DbError::Task(e.to_string()))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(ops_error)?;
    println!(
        "copied {} rows; now set [database] url = \"{to}\" and start the server",
        counts.rows
    );
    Ok(())
}

/// Backup and restore errors are whole sentences for the operator.
fn ops_error(e: db::DbError) -> Error {
    match e {
        db::DbError::Task(message) => Error::BadRequest(message),
        other => other.into(),
    }
}

async fn doctor_command(config: Config, remote: &str) -> Result<(), Error> {
    let checks = crate::ops::doctor::run(&config, remote).await;
    for check in &checks {
        println!("{check}");
    }
    let failed = checks.iter().filter(|c| c.failed()).count();
    if failed > 0 {
        return Err(Error::BadRequest(format!(
            "{failed} check(s) failed; fix them and run `tocsin doctor` again"
        )));
    }
    println!("all checks passed");
    Ok(())
}

/// Runs `tocsin domain …` with the same functions as the admin API.
pub async fn domain_command(config: Config, action: DomainAction) -> Result<(), Error> {
    use crate::federation::policy::{self, DomainPolicies};
    let db = open_db(&config).await?;
    let policies = DomainPolicies::new(
        db,
        config.federation.allowlist_only,
        &config.instance.domain,
    );
    let (domain, kind, reason, purge) = match action {
        DomainAction::List => {
            for row in policies.list().await? {
                println!(
                    "{}\t{}\t{}",
                    row.domain,
                    row.policy,
                    row.reason.unwrap_or_default()
                );
            }
            return Ok(());
        }
        DomainAction::Unblock { domain } => {
            let removed = policies.remove(&domain).await?;
            println!(
                "{}",
                if removed {
                    "policy removed"
                } else {
                    "no policy for that domain"
                }
            );
            return Ok(());
        }
        DomainAction::Block {
            domain,
            reason,
            purge,
        } => (domain, policy::BLOCK, reason, purge),
        DomainAction::Silence { domain, reason } => (domain, policy::SILENCE, reason, false),
        DomainAction::Allow { domain, reason } => (domain, policy::ALLOW, reason, false),
    };
    let applied = policies.apply(&domain, kind, reason, purge).await?;
    println!("{} is now {}", applied.row.domain, applied.row.policy);
    if kind == policy::BLOCK {
        println!("dropped {} pending deliveries", applied.dropped_deliveries);
    }
    if let Some(p) = applied.purged {
        println!(
            "purged {} actors (with their alerts and follows) and {} queued activities",
            p.actors, p.queued
        );
    }
    Ok(())
}
