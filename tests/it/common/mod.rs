//! Test harness: real Tocsin instances on 127.0.0.1 ports, each with its own
//! SQLite file or PostgreSQL database, and a fake remote server that speaks
//! Mastodon's dialect from fixture payloads.

pub mod peer;
pub mod visitor;

use diesel::{Connection, PgConnection, RunQueryDsl};
use std::{net::TcpListener, time::Duration};
use tocsin::{config::Config, server::RunningServer};

/// Which database an instance under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server.
    Postgres,
}

/// URL of the PostgreSQL server used by tests (database `test` exists).
pub fn postgres_admin_url() -> String {
    std::env::var("TOCSIN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// True when PostgreSQL tests should run. When PostgreSQL is unreachable
/// they are skipped with a message, unless `TOCSIN_REQUIRE_POSTGRES=1`
/// (set by CI), in which case the test fails.
pub fn postgres_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let available =
        *AVAILABLE.get_or_init(|| PgConnection::establish(&postgres_admin_url()).is_ok());
    if !available {
        if std::env::var("TOCSIN_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!(
                "PostgreSQL is required (TOCSIN_REQUIRE_POSTGRES=1) but {} is unreachable",
                postgres_admin_url()
            );
        }
        eprintln!(
            "SKIPPED: PostgreSQL unreachable at {}",
            postgres_admin_url()
        );
    }
    available
}

/// Creates an empty PostgreSQL database; returns its URL and name.
pub fn create_postgres_database() -> (String, String) {
    let admin = postgres_admin_url();
    let name = format!("tocsin_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::establish(&admin).expect("connect to PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("URL has a database");
    (format!("{base}/{name}"), name)
}

/// Drops a database made by [`create_postgres_database`].
pub fn drop_postgres_database(name: &str) {
    if let Ok(mut conn) = PgConnection::establish(&postgres_admin_url()) {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn);
    }
}

/// A test instance's configuration and the resources behind it.
pub struct Prepared {
    /// Configuration with loopback domain and test switches on.
    pub config: Config,
    /// Bound listener on 127.0.0.1.
    pub listener: TcpListener,
    dir: tempfile::TempDir,
    pg_name: Option<String>,
}

/// A configuration for an instance on a fresh 127.0.0.1 port with its own
/// database.
pub fn prepare(backend: Backend) -> Prepared {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.server.bind = format!("127.0.0.1:{port}");
    config.server.workers = 1;
    config.instance.domain = format!("localhost:{port}");
    config.instance.name = format!("Test instance {port}");
    config.federation.allow_http = true;
    config.federation.allow_private_addresses = true;
    config.federation.request_timeout_secs = 5;
    config.delivery.initial_backoff_secs = 1;
    config.database.pool_size = 4;
    // Tests post from one address far faster than any real peer; the
    // rate-limit tests turn the limits back on.
    config.limits.inbox_per_ip_per_minute = 0;
    config.limits.inbox_per_host_per_minute = 0;
    config.limits.api_per_ip_per_minute = 0;
    config.limits.login_per_ip_per_minute = 0;
    config.limits.subscribe_per_ip_per_hour = 0;
    config.alerts.media_dir = format!("{}/media", dir.path().display());
    config.inbox.journal_dir = format!("{}/inbox-journal", dir.path().display());
    let mut pg_name = None;
    config.database.url = match backend {
        Backend::Sqlite => format!("sqlite://{}/tocsin.db", dir.path().display()),
        Backend::Postgres => {
            let (url, name) = create_postgres_database();
            pg_name = Some(name);
            url
        }
    };
    Prepared {
        config,
        listener,
        dir,
        pg_name,
    }
}

/// A running instance under test.
pub struct TestInstance {
    /// The running server.
    pub server: RunningServer,
    /// `localhost:PORT`.
    pub domain: String,
    _dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestInstance {
    /// Starts an instance on a fresh port with its own database.
    pub async fn start(backend: Backend) -> TestInstance {
        Self::start_prepared(prepare(backend)).await
    }

    /// Starts an instance from a prepared configuration.
    pub async fn start_prepared(prepared: Prepared) -> TestInstance {
        let domain = prepared.config.instance.domain.clone();
        let server = tocsin::server::start(prepared.config, prepared.listener, false)
            .await
            .expect("instance starts");
        TestInstance {
            server,
            domain,
            _dir: prepared.dir,
            pg_name: prepared.pg_name,
        }
    }

    /// Stops the server but keeps its database and port, as a server that
    /// goes down and comes back later.
    pub async fn pause(self) -> Paused {
        let config = (*self.server.state.config).clone();
        self.server.stop().await;
        Paused {
            config,
            domain: self.domain,
            dir: self._dir,
            pg_name: self.pg_name,
        }
    }

    /// `http://localhost:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.domain)
    }

    /// Stops the server and drops its PostgreSQL database.
    pub async fn stop(self) {
        self.server.stop().await;
        if let Some(name) = &self.pg_name {
            drop_postgres_database(name);
        }
    }
}

/// A stopped instance that can be started again.
pub struct Paused {
    config: Config,
    domain: String,
    dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl Paused {
    /// Starts it again on the same port and database.
    pub async fn resume(self) -> TestInstance {
        let listener = TcpListener::bind(&self.config.server.bind).expect("rebind the same port");
        let server = tocsin::server::start(self.config, listener, false)
            .await
            .expect("instance restarts");
        TestInstance {
            server,
            domain: self.domain,
            _dir: self.dir,
            pg_name: self.pg_name,
        }
    }
}

/// A Clearing House (editors review what its feeds take) with one feed,
/// `@world`, that takes every alert.
pub async fn clearinghouse_with_world_feed(backend: Backend) -> TestInstance {
    let mut p = prepare(backend);
    p.config.instance.role = "clearinghouse".into();
    p.config.feeds = vec![tocsin::config::FeedConfig {
        username: "world".into(),
        display_name: "World".into(),
        ..Default::default()
    }];
    TestInstance::start_prepared(p).await
}

/// How many incoming alerts `i` has stored but not yet curated.
pub async fn pending_curations(i: &TestInstance) -> usize {
    i.server
        .state
        .db
        .run(|conn| tocsin::db::curation::pending_before(conn, i64::MAX, 0, 1_000))
        .await
        .expect("pending curations")
        .len()
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain HTTP client for tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A database with the local actors in place and no server running: for
/// tests of the queue itself, and for seeding before a `tocsin serve`
/// child process starts on it.
pub struct TestDb {
    /// The configuration a server on this database would use.
    pub config: Config,
    /// State opened on it (pool, keys); no worker runs.
    pub state: tocsin::state::AppState,
    dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    /// A fresh database on `backend`, with the local actors created.
    pub async fn open(backend: Backend) -> TestDb {
        let Prepared {
            config,
            listener,
            dir,
            pg_name,
        } = prepare(backend);
        drop(listener);
        let state = tocsin::server::open_state(config.clone())
            .await
            .expect("database opens");
        TestDb {
            config,
            state,
            dir,
            pg_name,
        }
    }

    /// The temporary directory (SQLite file, logs).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The organisation actor's row.
    pub fn org_actor(&self) -> tocsin::db::actors::ActorRow {
        let mut conn = self.state.db.conn().expect("connection");
        tocsin::db::actors::local_by_username(&mut conn, &self.config.actor.username)
            .expect("query")
            .expect("organisation actor exists")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            drop_postgres_database(name);
        }
    }
}

/// A `Create` of a `Note` by `actor`, with a fresh id under `base`.
pub fn create_note(base: &str, actor: &str) -> serde_json::Value {
    let id = uuid::Uuid::new_v4();
    serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{base}/activities/{id}"),
        "type": "Create",
        "actor": actor,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [format!("{actor}/followers")],
        "object": {
            "id": format!("{base}/notes/{id}"),
            "type": "Note",
            "attributedTo": actor,
            "content": "<p>Journalist detained; urgent appeal.</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        },
    })
}

/// Sends a GET and parses the JSON answer.
async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON body")
}

/// GETs `url` with no particular `Accept` and parses the JSON.
pub async fn get_json(url: impl reqwest::IntoUrl) -> serde_json::Value {
    json_of(client().get(url)).await
}

/// GETs `url` as an ActivityPub client and parses the JSON.
pub async fn ap_get(url: impl reqwest::IntoUrl) -> serde_json::Value {
    json_of(
        client()
            .get(url)
            .header("Accept", "application/activity+json"),
    )
    .await
}

/// Waits until the inbox's writer has committed every activity answered
/// from the journal, the inbox workers have applied every accepted activity
/// (the inbox answers 202 once an activity is journaled or stored, before
/// it is applied), and every alert they stored is curated (boosts and
/// reviews follow the commit).
pub async fn inbox_settled(state: &tocsin::state::AppState) {
    let settled = eventually(Duration::from_secs(20), || async {
        if state.inbox.journaled() > 0 {
            return false;
        }
        state
            .db
            .run(|conn| {
                let (waiting, _) = tocsin::db::inbox_queue::counts(conn)?;
                let curating = tocsin::db::curation::pending_before(conn, i64::MAX, 0, 1)?;
                Ok(waiting == 0 && curating.is_empty())
            })
            .await
            .unwrap_or(false)
    })
    .await;
    assert!(
        settled,
        "the inbox queue never drained, or its alerts were never curated"
    );
}

/// A new API bearer token on `i`.
pub fn api_token(i: &TestInstance, name: &str) -> String {
    tocsin::db::tokens::create(&mut i.server.state.db.conn().expect("connection"), name)
        .expect("token")
}

/// Calls the JSON API of an instance with `token`; the status and JSON
/// answer (`Null` when there is none).
pub async fn api(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = client().request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("API call");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// `who`'s organisation actor follows `handle` and waits for the Accept.
pub async fn follows(who: &TestInstance, handle: &str) {
    use tocsin::federation::activities::follow::{follow_remote, local_actor};
    let us = local_actor(&who.server.data, "alerts")
        .await
        .expect("actor");
    let target = follow_remote(&who.server.data, &us, handle)
        .await
        .expect("follow");
    let (us_id, target_id) = (us.id, target.id);
    assert!(
        eventually(Duration::from_secs(30), || async {
            who.server
                .state
                .db
                .run(move |c| {
                    Ok(tocsin::db::follows::find(c, us_id, target_id)?
                        .is_some_and(|f| f.state == "accepted"))
                })
                .await
                .expect("query")
        })
        .await,
        "{handle} accepted"
    );
}

/// A published alert row for `insert`, now, in English about Nigeria;
/// override what a test needs with `..alert_values(…)`.
pub fn alert_values(ap_id: String, actor_id: i64, local: bool) -> tocsin::db::alerts::AlertValues {
    let now = tocsin::db::now_ms();
    tocsin::db::alerts::AlertValues {
        ap_id,
        actor_id,
        local,
        translation_of: None,
        language: "en".into(),
        title: "An alert".into(),
        content_html: "<p>A body</p>".into(),
        source_markdown: None,
        summary: None,
        sensitive: false,
        countries: ",NG,".into(),
        region: Some("africa".into()),
        categories: ",detention,".into(),
        urgency: "action".into(),
        incident_date: None,
        case_ap_id: None,
        url: None,
        status: "published".into(),
        pinned: false,
        token_id: None,
        published_at: Some(now),
        updated_at: now,
        created_at: now,
        deleted_at: None,
        search_text: String::new(),
        quote_ap_id: None,
    }
}

/// GETs `url` as a browser; the page's text.
pub async fn html_page(url: impl reqwest::IntoUrl) -> String {
    client()
        .get(url)
        .header("Accept", "text/html")
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("page text")
}

/// Runs `tocsin ARGS` as operators do (no config file, warnings only) with
/// `env` set, asserts it exited successfully and returns its stdout.
pub fn tocsin_succeeds(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .current_dir(dir)
        .env_remove("TOCSIN_CONFIG")
        .env("TOCSIN_LOG", "warn")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tocsin {args:?}: {} (stderr: {})",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
