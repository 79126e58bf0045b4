//! E-mail against a real SMTP server on loopback: tests/mail/smtp_sink.py
//! (Python's aiosmtpd) records every message it accepts. Double opt-in
//! from the sign-up form to a received issue; one-click unsubscribe by the
//! RFC 8058 POST to the URL of a received `List-Unsubscribe`; and a send to
//! 2,000 subscribers killed in the middle of an SMTP transaction and
//! resumed, after which each subscriber has exactly one message.
//!
//! Without aiosmtpd the tests are skipped with a message, unless
//! `TOCSIN_REQUIRE_SMTP=1` (CI), which makes them fail.

use crate::common::{
    eventually, postgres_available, prepare, visitor::Visitor, Backend, TestDb, TestInstance,
};
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};
use tocsin::{
    config::Config,
    db::{
        now_ms,
        publications::{self, NewIssue, NewItem, SUB_CONFIRMED, SUB_PAUSED, SUB_UNSUBSCRIBED},
        subscribers::{self, Choices, Imported},
        DbConn,
    },
    mail::{
        send::{send_issue, Pace, SendReport},
        Mailer,
    },
};

/// True when the SMTP sink can run. Without aiosmtpd the test is skipped
/// with a message, unless `TOCSIN_REQUIRE_SMTP=1`, which fails it.
fn smtp_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("TOCSIN_REQUIRE_SMTP").as_deref() == Ok("1") {
            panic!("aiosmtpd is required (TOCSIN_REQUIRE_SMTP=1): pip install aiosmtpd");
        }
        eprintln!("SKIPPED: Python's aiosmtpd is not installed (pip install aiosmtpd)");
    }
    ok
}

/// The SMTP sink process, killed when dropped.
struct Sink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

/// One message the sink accepted.
struct Received {
    rcpt: String,
    data: String,
}

impl Received {
    fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.data.as_bytes())
            .expect("a message")
    }

    /// A header's raw value, unfolded.
    fn header(&self, name: &str) -> Option<String> {
        let head = &self.data[..self.data.find("\r\n\r\n").unwrap_or(self.data.len())];
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .expect("a text part")
            .into_owned()
    }

    fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .expect("an HTML part")
            .into_owned()
    }
}

impl Sink {
    fn start(args: &[&str]) -> Sink {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the sink prints its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the sink did not start: {line:?}"));
        Sink { child, dir, port }
    }

    fn messages(&self) -> Vec<Received> {
        let Ok(text) = std::fs::read_to_string(self.dir.path().join("messages.jsonl")) else {
            return Vec::new();
        };
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                let rcpts = v["rcpt_tos"].as_array().expect("recipients");
                assert_eq!(rcpts.len(), 1, "one recipient per message");
                Received {
                    rcpt: rcpts[0].as_str().expect("address").to_string(),
                    data: v["data"].as_str().expect("data").to_string(),
                }
            })
            .collect()
    }

    fn to(&self, rcpt: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.rcpt == rcpt)
            .collect()
    }

    /// Waits until `rcpt` has `n` messages and returns the last.
    async fn wait_for(&self, rcpt: &str, n: usize) -> Received {
        let arrived = eventually(Duration::from_secs(20), || async {
            self.to(rcpt).len() >= n
        })
        .await;
        assert!(arrived, "message {n} to {rcpt} never arrived");
        self.to(rcpt).pop().expect("a message")
    }

    fn held(&self) -> PathBuf {
        self.dir.path().join("held")
    }

    /// `[mail]` pointing at this sink, unpaced.
    fn configure(&self, config: &mut Config) {
        config.mail.smtp_host = "127.0.0.1".into();
        config.mail.smtp_port = self.port;
        config.mail.security = "none".into();
        config.mail.from = "Digest <digest@localhost>".into();
        config.mail.rate = 0.0;
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A published Digest issue in English with one item per region given.
fn published_issue(conn: &mut DbConn, n: u32, regions: &[&str]) -> i64 {
    let items: Vec<NewItem> = regions
        .iter()
        .enumerate()
        .map(|(i, region)| NewItem {
            section: region.to_string(),
            story: None,
            alert_id: None,
            heading: format!("Story {i} in {region}"),
            body_html: format!("<p>What happened in {region} &amp; why.</p>"),
            url: Some(format!("https://example.org/alerts/{n}/{i}")),
            body_markdown: None,
        })
        .collect();
    let now = now_ms();
    let title = format!("Digest number {n}");
    let id = publications::create_issue(
        conn,
        &NewIssue {
            publication: "digest",
            language: "en",
            period_start: now - 1000,
            period_end: now,
            title: &title,
        },
        &items,
    )
    .expect("issue created");
    publications::publish(conn, id, &format!("https://example.org/digests/{n}"))
        .expect("published");
    id
}

async fn send(config: &Config, db: &tocsin::db::Db, issue: i64) -> SendReport {
    let mailer = Mailer::from_config(config).expect("mailer");
    let taxonomy = tocsin::alerts::taxonomy::Taxonomy::load("").expect("taxonomy");
    send_issue(
        db,
        &mailer,
        &taxonomy,
        issue,
        Pace::from_config(&config.mail),
        &|_| {},
    )
    .await
    .expect("sent")
}

fn state_of(db: &tocsin::db::Db, email: &str) -> String {
    let mut conn = db.conn().expect("connection");
    subscribers::by_email(&mut conn, email)
        .expect("query")
        .expect("subscriber")
        .state
}

/// The path of the first link in `text` that contains `marker`.
fn link_path(text: &str, base: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} link in {text}"));
    let begin = text[..start].rfind("http").expect("a URL");
    let end = text[start..]
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .map_or(text.len(), |e| start + e);
    let url = &text[begin..end];
    url.strip_prefix(base)
        .unwrap_or_else(|| panic!("{url} is not under {base}"))
        .to_string()
}

const READER: &str = "reader@example.org";

/// Moves every subscriber's last subscription message more than an hour
/// back, as if an hour had passed.
fn an_hour_later(db: &tocsin::db::Db) {
    use diesel::connection::SimpleConnection;
    db.conn()
        .expect("connection")
        .batch_execute("UPDATE subscribers SET notice_sent_at = notice_sent_at - 3600001")
        .expect("updated");
}

/// Signs READER up through the form and follows the confirmation link.
async fn sign_up_and_confirm(i: &TestInstance, sink: &Sink, v: &mut Visitor) {
    let form = v.get("/subscribe").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.csrf();
    // Without the cookie's token the form is refused.
    let mut stranger = Visitor::new(&i.base());
    let forged = stranger
        .post("/subscribe", &[("csrf", "forged"), ("email", READER)])
        .await;
    assert_eq!(forged.status, 403);
    let bad = v
        .post(
            "/subscribe",
            &[
                ("csrf", &csrf),
                ("email", "not-an-address"),
                ("publications", "digest"),
                ("languages", "en"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    let csrf = bad.csrf();
    let done = v
        .post(
            "/subscribe",
            &[
                ("csrf", &csrf),
                ("email", READER),
                ("publications", "digest"),
                ("languages", "en"),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(state_of(&i.server.state.db, READER), "pending");

    let confirmation = sink.wait_for(READER, 1).await;
    assert!(confirmation.header("List-Unsubscribe").is_none());
    let path = link_path(&confirmation.text(), &i.base(), "/subscribe/confirm/");
    assert_eq!(
        path,
        link_path(&confirmation.html(), &i.base(), "/subscribe/confirm/")
    );
    // Following the link shows a button; only its POST confirms (a link
    // checker's GET does not).
    let page = v.get(&path).await;
    assert_eq!(page.status, 200);
    assert_eq!(state_of(&i.server.state.db, READER), "pending");
    let confirmed = v.post(&path, &[]).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(state_of(&i.server.state.db, READER), SUB_CONFIRMED);
    assert_eq!(
        v.post("/subscribe/confirm/not-a-token", &[]).await.status,
        404
    );
}

async fn double_opt_in_round_trip(backend: Backend) {
    let sink = Sink::start(&["--reject-rcpt", "bounce"]);
    let mut prepared = prepare(backend);
    sink.configure(&mut prepared.config);
    let config = prepared.config.clone();
    let i = TestInstance::start_prepared(prepared).await;
    let db = i.server.state.db.clone();
    // An address the SMTP server refuses: a hard bounce while sending.
    {
        let mut conn = db.conn().expect("connection");
        subscribers::import(
            &mut conn,
            &[Imported {
                email: "bounce@example.org".into(),
                choices: Choices {
                    publications: vec!["digest".into()],
                    languages: vec!["en".into()],
                    regions: vec![],
                },
            }],
            "test",
        )
        .expect("imported");
    }
    let mut v = Visitor::new(&i.base());
    let form = v.get("/subscribe").await;
    let csrf = form.csrf();
    v.post(
        "/subscribe",
        &[
            ("csrf", &csrf),
            ("email", READER),
            ("publications", "digest"),
            ("languages", "en"),
        ],
    )
    .await;
    sink.wait_for(READER, 1).await;
    // Not confirmed yet: an issue sent now does not reach the reader.
    let before = {
        let mut conn = db.conn().expect("connection");
        published_issue(&mut conn, 1, &["africa"])
    };
    let report = send(&config, &db, before).await;
    assert_eq!((report.sent, report.failed), (0, 1));
    assert_eq!(state_of(&db, "bounce@example.org"), SUB_PAUSED);
    assert_eq!(sink.to(READER).len(), 1, "only the confirmation");

    // The same flow from a fresh form. The second sign-up of the pending
    // address within the hour sends no new confirmation (one message an
    // hour per address, whoever asks); the first link still works.
    sign_up_and_confirm(&i, &sink, &mut v).await;
    assert_eq!(sink.to(READER).len(), 1, "one confirmation an hour");
    let subscriber = {
        let mut conn = db.conn().expect("connection");
        subscribers::by_email(&mut conn, READER)
            .expect("query")
            .expect("row")
    };
    assert_eq!(subscriber.consent, subscribers::CONSENT_CONFIRMED);

    let issue = {
        let mut conn = db.conn().expect("connection");
        published_issue(&mut conn, 2, &["africa", "asia-pacific"])
    };
    let report = send(&config, &db, issue).await;
    assert_eq!(
        (report.sent, report.failed),
        (1, 0),
        "the paused address is left out"
    );
    let got = sink.wait_for(READER, 2).await;
    assert_eq!(got.header("Subject").as_deref(), Some("Digest number 2"));
    assert_eq!(
        got.header("Message-ID"),
        Some(format!(
            "<issue-{issue}.subscriber-{}@localhost>",
            subscriber.id
        ))
    );
    assert!(got
        .header("Content-Type")
        .expect("type")
        .starts_with("multipart/alternative"));
    let text = got.text();
    let html = got.html();
    for body in [&text, &html] {
        assert!(body.contains("Story 1 in asia-pacific"), "{body}");
        assert!(body.contains(&format!("/subscribe/preferences/{}", subscriber.token)));
        assert!(body.contains(&format!("/unsubscribe/{}", subscriber.token)));
    }
    assert!(text.contains("What happened in africa & why."), "{text}");
    // Sending the issue again sends nothing.
    let mailer = Mailer::from_config(&config).expect("mailer");
    let taxonomy = tocsin::alerts::taxonomy::Taxonomy::load("").expect("taxonomy");
    let again = send_issue(
        &db,
        &mailer,
        &taxonomy,
        issue,
        Pace::from_config(&config.mail),
        &|_| {},
    )
    .await;
    assert!(matches!(
        again,
        Err(tocsin::mail::send::SendError::Finished(_))
    ));

    // An hour later, a sign-up of a confirmed address changes nothing and
    // mails a link to the preferences page instead; once an hour.
    an_hour_later(&db);
    for _ in 0..2 {
        let csrf = v.get("/subscribe").await.csrf();
        let page = v
            .post(
                "/subscribe",
                &[
                    ("csrf", &csrf),
                    ("email", READER),
                    ("publications", "communique"),
                    ("languages", "fr"),
                ],
            )
            .await;
        assert_eq!(page.status, 200);
    }
    let known = sink.wait_for(READER, 3).await;
    assert_eq!(sink.to(READER).len(), 3, "one message an hour");
    let prefs = link_path(&known.text(), &i.base(), "/subscribe/preferences/");
    let row = {
        let mut conn = db.conn().expect("connection");
        subscribers::by_email(&mut conn, READER)
            .expect("query")
            .expect("row")
    };
    assert_eq!(
        (row.state.as_str(), row.languages.as_str()),
        (SUB_CONFIRMED, ",en,")
    );
    // The preferences page changes the choices.
    assert_eq!(v.get(&prefs).await.status, 200);
    let saved = v
        .post(
            &prefs,
            &[
                ("publications", "digest"),
                ("languages", "en"),
                ("languages", "fr"),
                ("regions", "asia-pacific"),
            ],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let row = {
        let mut conn = db.conn().expect("connection");
        subscribers::by_email(&mut conn, READER)
            .expect("query")
            .expect("row")
    };
    assert_eq!(
        (row.languages.as_str(), row.regions.as_str()),
        (",en,fr,", ",asia-pacific,")
    );

    // A complaint reported through the API pauses the address.
    let token = {
        let mut conn = db.conn().expect("connection");
        tocsin::db::tokens::create(&mut conn, "mail-hook").expect("token")
    };
    let url = format!("{}/api/v1/mail/reports", i.base());
    let report = serde_json::json!({"kind": "complaint", "addresses": [READER, "x@example.org"]});
    let http = reqwest::Client::new();
    let anonymous = http.post(&url).json(&report).send().await.expect("POST");
    assert_eq!(anonymous.status(), 401);
    let bad_kind = http
        .post(&url)
        .bearer_auth(&token)
        .json(&serde_json::json!({"kind": "spam", "addresses": [READER]}))
        .send()
        .await
        .expect("POST");
    assert_eq!(bad_kind.status(), 422);
    assert_eq!(state_of(&db, READER), SUB_CONFIRMED);
    let answer: serde_json::Value = http
        .post(&url)
        .bearer_auth(&token)
        .json(&report)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer, serde_json::json!({"paused": 1, "unknown": 1}));
    assert_eq!(state_of(&db, READER), SUB_PAUSED);
    i.stop().await;
}

async fn sign_up_page_says_when_mail_is_off(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let mut v = Visitor::new(&i.base());
    let page = v.get("/subscribe").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("not set up"), "{}", page.body);
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_page_says_when_mail_is_off_sqlite() {
    sign_up_page_says_when_mail_is_off(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_page_says_when_mail_is_off_postgres() {
    if postgres_available() {
        sign_up_page_says_when_mail_is_off(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_opt_in_round_trip_sqlite() {
    if smtp_available() {
        double_opt_in_round_trip(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_opt_in_round_trip_postgres() {
    if smtp_available() && postgres_available() {
        double_opt_in_round_trip(Backend::Postgres).await;
    }
}

async fn one_click_unsubscribe(backend: Backend) {
    let sink = Sink::start(&[]);
    let mut prepared = prepare(backend);
    sink.configure(&mut prepared.config);
    let config = prepared.config.clone();
    let i = TestInstance::start_prepared(prepared).await;
    let db = i.server.state.db.clone();
    let mut v = Visitor::new(&i.base());
    sign_up_and_confirm(&i, &sink, &mut v).await;
    let issue = {
        let mut conn = db.conn().expect("connection");
        published_issue(&mut conn, 1, &["mena"])
    };
    assert_eq!(send(&config, &db, issue).await.sent, 1);
    let got = sink.wait_for(READER, 2).await;
    assert_eq!(
        got.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let header = got.header("List-Unsubscribe").expect("List-Unsubscribe");
    let url = header
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("a URL")
        .to_string();
    assert!(
        url.starts_with(&format!("{}/unsubscribe/", i.base())),
        "{header}"
    );
    // The page behind a GET only asks.
    let page = reqwest::get(&url).await.expect("GET");
    assert_eq!(page.status(), 200);
    assert_eq!(state_of(&db, READER), SUB_CONFIRMED);
    // RFC 8058: a POST with `List-Unsubscribe=One-Click`, no cookie, no
    // CSRF token, as a mail provider sends it.
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    assert_eq!(state_of(&db, READER), SUB_UNSUBSCRIBED);
    let next = {
        let mut conn = db.conn().expect("connection");
        published_issue(&mut conn, 2, &["mena"])
    };
    assert_eq!(send(&config, &db, next).await.sent, 0);
    assert_eq!(sink.to(READER).len(), 2);
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_sqlite() {
    if smtp_available() {
        one_click_unsubscribe(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_postgres() {
    if smtp_available() && postgres_available() {
        one_click_unsubscribe(Backend::Postgres).await;
    }
}

const SUBSCRIBERS: usize = 2000;
/// The sink never answers this message: the sender is killed while the
/// server owes the reply to its DATA.
const HELD: usize = 1001;
/// Seconds the killed sender's hold on the issue lasts.
const LEASE_SECS: u64 = 8;

/// Runs `tocsin ARGS` on the test database with `[mail]` at the sink.
fn tocsin(db: &TestDb, sink: &Sink, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    cmd.args(args)
        .current_dir(db.dir())
        .env_remove("TOCSIN_CONFIG")
        .env("TOCSIN_LOG", "warn")
        .env("TOCSIN_DATABASE__URL", &db.config.database.url)
        .env("TOCSIN_INSTANCE__DOMAIN", &db.config.instance.domain)
        .env("TOCSIN_MAIL__SMTP_HOST", "127.0.0.1")
        .env("TOCSIN_MAIL__SMTP_PORT", sink.port.to_string())
        .env("TOCSIN_MAIL__SECURITY", "none")
        .env("TOCSIN_MAIL__RATE", "0")
        .env("TOCSIN_MAIL__CONNECTIONS", "1")
        .env("TOCSIN_MAIL__BATCH_SIZE", "100")
        .env("TOCSIN_MAIL__LEASE_SECS", LEASE_SECS.to_string());
    cmd
}

async fn killed_send_resumes(backend: Backend) {
    let sink = Sink::start(&["--hold", &HELD.to_string()]);
    let db = TestDb::open(backend).await;
    let issue = {
        let mut conn = db.state.db.conn().expect("connection");
        let rows: Vec<Imported> = (0..SUBSCRIBERS)
            .map(|n| Imported {
                email: format!("s{n:04}@example.org"),
                choices: Choices {
                    publications: vec!["digest".into()],
                    languages: vec!["en".into()],
                    regions: vec![],
                },
            })
            .collect();
        let (added, _) = subscribers::import(&mut conn, &rows, "test").expect("imported");
        assert_eq!(added, SUBSCRIBERS);
        published_issue(&mut conn, 1, &["africa", "asia-pacific", "mena"])
    };
    let issue_arg = issue.to_string();
    let log = std::fs::File::create(db.dir().join("send-1.log")).expect("log");
    let mut first = tocsin(&db, &sink, &["digest", "send", &issue_arg])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("tocsin digest send starts");
    let held = eventually(Duration::from_secs(180), || async { sink.held().exists() }).await;
    assert!(held, "the sender never reached message {HELD}");
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    assert_eq!(sink.messages().len(), HELD - 1);
    let (sent, sending) = {
        let mut conn = db.state.db.conn().expect("connection");
        publications::send_progress(&mut conn, issue).expect("progress")
    };
    // Marked sent after each 250: exactly the messages the server accepted.
    assert_eq!(sent as usize, HELD - 1);
    assert!(sending >= 1, "the message in flight is still `sending`");

    // The dead sender's hold on the issue has not run out: a second sender
    // started at once is refused rather than racing it.
    let refused = tocsin(&db, &sink, &["digest", "send", &issue_arg])
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("another process"));
    tokio::time::sleep(Duration::from_secs(LEASE_SECS)).await;
    let resumed = tocsin(&db, &sink, &["digest", "send", &issue_arg])
        .output()
        .expect("runs");
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );

    let messages = sink.messages();
    let mut by_rcpt = std::collections::HashMap::<String, Vec<String>>::new();
    for m in &messages {
        by_rcpt
            .entry(m.rcpt.clone())
            .or_default()
            .push(m.header("Message-ID").expect("Message-ID"));
    }
    assert_eq!(messages.len(), SUBSCRIBERS, "one message per subscriber");
    assert_eq!(by_rcpt.len(), SUBSCRIBERS);
    assert!(by_rcpt.values().all(|ids| ids.len() == 1));
    let mut conn = db.state.db.conn().expect("connection");
    for n in [0, HELD - 1, SUBSCRIBERS - 1] {
        let email = format!("s{n:04}@example.org");
        let row = subscribers::by_email(&mut conn, &email)
            .expect("query")
            .expect("row");
        assert_eq!(
            by_rcpt[&email],
            [format!("<issue-{issue}.subscriber-{}@localhost>", row.id)]
        );
    }
    assert_eq!(
        publications::send_progress(&mut conn, issue).expect("progress"),
        (SUBSCRIBERS as i64, 0)
    );
    drop(conn);
    let status = tocsin(&db, &sink, &["digest", "status"])
        .output()
        .expect("runs");
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains(&format!("mail issue {issue}: {SUBSCRIBERS} sent, 0 sending, 0 refused, 0 skipped, 0 waiting, 0 paused; finished; started ")),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_send_resumes_with_one_message_each_sqlite() {
    if smtp_available() {
        killed_send_resumes(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_send_resumes_with_one_message_each_postgres() {
    if smtp_available() && postgres_available() {
        killed_send_resumes(Backend::Postgres).await;
    }
}

#[test]
fn cli_imports_subscribers_idempotently_and_pauses_bounces() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .current_dir(dir.path())
            .env_remove("TOCSIN_CONFIG")
            .env("TOCSIN_LOG", "info")
            .args(args)
            .output()
            .expect("tocsin runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let csv = dir.path().join("list.csv");
    std::fs::write(
        &csv,
        "email,language,publications,regions\n\
         one@example.org,en,digest;communique,africa\n\
         two@example.org,fr;es,communique,\n",
    )
    .expect("written");
    let csv = csv.to_str().expect("path");
    let (ok, out, err) = run(&["subscribers", "import", csv]);
    assert!(ok, "{err}");
    assert!(
        out.contains("2 subscriber(s) read: 2 imported as confirmed, 0 already present"),
        "{out}"
    );
    let (ok, out, _) = run(&["subscribers", "import", csv]);
    assert!(ok);
    assert!(
        out.contains("0 imported as confirmed, 2 already present"),
        "{out}"
    );
    let (ok, _, err) = run(&["subscribers", "bounce", "one@example.org"]);
    assert!(ok, "{err}");
    assert!(
        !err.contains("one@example.org"),
        "an address in the log: {err}"
    );
    let (ok, _, _) = run(&["subscribers", "complaint", "nobody@example.org"]);
    assert!(!ok, "an unknown address is an error");
    let (_, status, _) = run(&["subscribers", "status"]);
    assert!(
        status.contains("confirmed\t1") && status.contains("paused\t1"),
        "{status}"
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "three@example.org,en,digest,\nfour@example.org,xx,digest,\n",
    )
    .expect("written");
    let (ok, _, err) = run(&["subscribers", "import", bad.to_str().expect("path")]);
    assert!(!ok);
    assert!(err.contains("line 2") && !err.contains("four@"), "{err}");
}

/// Runs `tocsin` against the database of a running instance.
fn tocsin_on(i: &TestInstance, args: &[&str]) -> (bool, String, String) {
    let config = &i.server.state.config;
    let out = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(args)
        .env_remove("TOCSIN_CONFIG")
        .env("TOCSIN_LOG", "warn")
        .env("TOCSIN_DATABASE__URL", &config.database.url)
        .env("TOCSIN_INSTANCE__DOMAIN", &config.instance.domain)
        .output()
        .expect("tocsin runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Imports confirmed Digest subscribers in English.
fn import_readers(db: &tocsin::db::Db, emails: &[String]) {
    let rows: Vec<Imported> = emails
        .iter()
        .map(|email| Imported {
            email: email.clone(),
            choices: Choices {
                publications: vec!["digest".into()],
                languages: vec!["en".into()],
                regions: vec![],
            },
        })
        .collect();
    let mut conn = db.conn().expect("connection");
    subscribers::import(&mut conn, &rows, "test").expect("imported");
}

async fn send_button_sends_each_subscriber_once(backend: Backend) {
    const READERS: usize = 40;
    let sink = Sink::start(&[]);
    let mut prepared = prepare(backend);
    sink.configure(&mut prepared.config);
    // Several batches, slow enough for the clicks to meet a running send.
    prepared.config.mail.batch_size = 7;
    prepared.config.mail.rate = 100.0;
    let config = prepared.config.clone();
    let i = TestInstance::start_prepared(prepared).await;
    let db = i.server.state.db.clone();
    let emails: Vec<String> = (0..READERS)
        .map(|n| format!("r{n:02}@example.org"))
        .collect();
    import_readers(&db, &emails);
    import_readers(&db, &["paused@example.org".to_string()]);
    let issue = {
        let mut conn = db.conn().expect("connection");
        subscribers::pause(&mut conn, "paused@example.org", "test").expect("paused");
        published_issue(&mut conn, 7, &["africa"])
    };
    tocsin::accounts::add_user(&db, "eddie", "editor", "eddie-secret-password")
        .await
        .expect("user");
    let mut v = Visitor::new(&i.base());
    assert_eq!(v.login("eddie", "eddie-secret-password").await.status, 303);
    let page_path = format!("/editor/publications/issues/{issue}");
    let page = v.get(&page_path).await;
    assert!(page.body.contains("Send by e-mail"), "{}", page.body);
    assert!(page.body.contains("Not sent by e-mail yet"));
    let csrf = page.csrf();

    // Two clicks at once from two tabs, and a run like `tocsin digest send`
    // in this process at the same time: the lease lets one of them send.
    let mut tab = Visitor::new(&i.base());
    tab.cookies = v.cookies.clone();
    let send_path = format!("{page_path}/send");
    let form = [("csrf", csrf.as_str())];
    let mailer = Mailer::from_config(&config).expect("mailer");
    let taxonomy = tocsin::alerts::taxonomy::Taxonomy::load("").expect("taxonomy");
    let pace = Pace::from_config(&config.mail);
    let (first, second, command) = tokio::join!(
        v.post(&send_path, &form),
        tab.post(&send_path, &form),
        send_issue(&db, &mailer, &taxonomy, issue, pace, &|_| {}),
    );
    for click in [&first, &second] {
        assert_eq!(click.status, 303);
        let done = click.location();
        assert!(
            ["send-started", "send-busy", "send-finished"]
                .iter()
                .any(|d| done.ends_with(&format!("done={d}"))),
            "{done}"
        );
    }
    assert!(
        matches!(
            command,
            Ok(_)
                | Err(tocsin::mail::send::SendError::Busy(_))
                | Err(tocsin::mail::send::SendError::Finished(_))
        ),
        "{command:?}"
    );
    let finished = eventually(Duration::from_secs(30), || async {
        let mut conn = db.conn().expect("connection");
        publications::mail_progress(&mut conn, issue)
            .expect("progress")
            .finished_at
            .is_some()
    })
    .await;
    assert!(finished, "the send never finished");
    // One more click after the end sends nothing.
    let late = v.post(&send_path, &form).await;
    assert!(
        late.location().ends_with("done=send-finished"),
        "{}",
        late.location()
    );

    let messages = sink.messages();
    assert_eq!(messages.len(), READERS, "one message each, nobody twice");
    for email in &emails {
        assert_eq!(sink.to(email).len(), 1, "{email}");
    }
    assert!(sink.to("paused@example.org").is_empty());

    // The page and `tocsin digest status` show the same figures.
    let page = v.get(&page_path).await;
    assert!(page.body.contains("Sent to everyone"), "{}", page.body);
    assert!(
        page.body.contains(&format!(
            "<tr><td>{READERS}</td><td>0</td><td>0</td><td>0</td><td>0</td><td>1</td></tr>"
        )),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&format!("action=\"{send_path}\"")));
    let (ok, status, err) = tocsin_on(&i, &["digest", "status"]);
    assert!(ok, "{err}");
    assert!(
        status.contains(&format!(
            "mail issue {issue}: {READERS} sent, 0 sending, 0 refused, 0 skipped, 0 waiting, 1 paused; finished; started "
        )),
        "{status}"
    );
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_button_sends_each_subscriber_once_sqlite() {
    if smtp_available() {
        send_button_sends_each_subscriber_once(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_button_sends_each_subscriber_once_postgres() {
    if smtp_available() && postgres_available() {
        send_button_sends_each_subscriber_once(Backend::Postgres).await;
    }
}

fn mail_fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mail")
            .join(name),
    )
    .expect("fixture")
}

/// Posts a raw report to the API.
async fn post_report(i: &TestInstance, token: &str, raw: String) -> (u16, serde_json::Value) {
    let resp = crate::common::client()
        .post(format!("{}/api/v1/mail/reports", i.base()))
        .bearer_auth(token)
        .header("Content-Type", "message/rfc822")
        .body(raw)
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

async fn reports_pause_hard_bounces_and_complaints(backend: Backend) {
    let i = TestInstance::start(backend).await;
    let db = i.server.state.db.clone();
    let people: Vec<String> = ["ana", "bob", "carol", "dave"]
        .iter()
        .map(|n| format!("{n}@example.org"))
        .collect();
    import_readers(&db, &people);
    let token = crate::common::api_token(&i, "mail-relay");

    // A DSN: ana's server refused with 5.1.1. Neither its Message-ID nor its
    // unsubscribe URL is this instance's: found by the recipient address.
    let (status, answer) = post_report(&i, &token, mail_fixture("dsn-hard-bounce.eml")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["report"].as_str(),
            answer["detail"].as_str(),
            answer["paused"].as_u64()
        ),
        (Some("hard-bounce"), Some("5.1.1"), Some(1))
    );
    assert_eq!(state_of(&db, "ana@example.org"), SUB_PAUSED);

    // A delay (4.2.2) is a soft bounce: bob keeps receiving.
    let (status, answer) = post_report(&i, &token, mail_fixture("dsn-delayed.eml")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (answer["report"].as_str(), answer["paused"].as_u64()),
        (Some("soft-bounce"), Some(0))
    );
    assert_eq!(state_of(&db, "bob@example.org"), SUB_CONFIRMED);

    // An abuse report with the recipient redacted names nobody we know…
    let arf = mail_fixture("arf-abuse.eml");
    let (_, answer) = post_report(&i, &token, arf.clone()).await;
    assert_eq!(
        (
            answer["report"].as_str(),
            answer["paused"].as_u64(),
            answer["unknown"].as_u64()
        ),
        (Some("complaint"), Some(0), Some(1))
    );
    // …until its original is one of our messages to carol: the token of its
    // List-Unsubscribe URL finds her.
    let carol = {
        let mut conn = db.conn().expect("connection");
        subscribers::by_email(&mut conn, "carol@example.org")
            .expect("query")
            .expect("row")
    };
    let ours = arf
        .replace(
            "https://alerts.example",
            &i.server.state.config.mail_base_url(),
        )
        .replace(
            "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978",
            &carol.token,
        );
    let (_, answer) = post_report(&i, &token, ours).await;
    assert_eq!(
        (answer["report"].as_str(), answer["paused"].as_u64()),
        (Some("complaint"), Some(1)),
        "{answer}"
    );
    assert_eq!(state_of(&db, "carol@example.org"), SUB_PAUSED);
    // Not a report: refused; without a token: 401.
    let (status, _) = post_report(&i, &token, "Subject: hi\r\n\r\nhello\r\n".into()).await;
    assert_eq!(status, 422);
    let (status, _) = post_report(&i, "wrong", mail_fixture("dsn-hard-bounce.eml")).await;
    assert_eq!(status, 401);

    // The command reads the same reports from files.
    let dir = tempfile::tempdir().expect("temp dir");
    let hard = dir.path().join("dave.eml");
    std::fs::write(
        &hard,
        mail_fixture("dsn-hard-bounce.eml").replace("ana@example.org", "dave@example.org"),
    )
    .expect("written");
    let soft = dir.path().join("delayed.eml");
    std::fs::write(&soft, mail_fixture("dsn-delayed.eml")).expect("written");
    let (ok, out, err) = tocsin_on(
        &i,
        &[
            "subscribers",
            "report",
            hard.to_str().expect("path"),
            soft.to_str().expect("path"),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("hard-bounce 5.1.1: paused subscriber(s) "),
        "{out}"
    );
    assert!(out.contains("soft-bounce 4.2.2: nobody paused"), "{out}");
    assert!(
        !err.contains("dave@example.org"),
        "an address in the log: {err}"
    );
    assert_eq!(state_of(&db, "dave@example.org"), SUB_PAUSED);
    assert_eq!(state_of(&db, "bob@example.org"), SUB_CONFIRMED);
    let text = dir.path().join("note.txt");
    std::fs::write(&text, "just a note").expect("written");
    let (ok, _, _) = tocsin_on(&i, &["subscribers", "report", text.to_str().expect("path")]);
    assert!(!ok, "a file that is not a report is an error");
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_pause_hard_bounces_and_complaints_sqlite() {
    reports_pause_hard_bounces_and_complaints(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_pause_hard_bounces_and_complaints_postgres() {
    if postgres_available() {
        reports_pause_hard_bounces_and_complaints(Backend::Postgres).await;
    }
}

async fn sign_up_limit_answers_429(backend: Backend) {
    let mut prepared = prepare(backend);
    prepared.config.limits.subscribe_per_ip_per_hour = 2;
    let i = TestInstance::start_prepared(prepared).await;
    let mut v = Visitor::new(&i.base());
    let form = [("csrf", "x"), ("email", "someone@example.org")];
    for _ in 0..2 {
        assert_ne!(v.post("/subscribe", &form).await.status, 429);
    }
    let refused = v.post("/subscribe", &form).await;
    assert_eq!(refused.status, 429);
    let wait: u64 = refused
        .headers
        .get("retry-after")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!((1..=1800).contains(&wait), "{wait}");
    // The form itself is still shown.
    assert_ne!(v.get("/subscribe").await.status, 429);
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_limit_answers_429_sqlite() {
    sign_up_limit_answers_429(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_limit_answers_429_postgres() {
    if postgres_available() {
        sign_up_limit_answers_429(Backend::Postgres).await;
    }
}
