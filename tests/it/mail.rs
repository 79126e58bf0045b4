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
        status.contains(&format!("mail issue {issue}: {SUBSCRIBERS} sent, 0 sending, 0 refused, 0 skipped, 0 waiting; finished")),
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
