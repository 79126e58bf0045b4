//! Hard bounces and complaints pause the subscribers concerned: named by
//! address (`tocsin subscribers bounce|complaint`, the JSON form of
//! `POST /api/v1/mail/reports`), or read from the report a mail system
//! sends back (`tocsin subscribers report FILE`, or the raw message posted
//! to the same endpoint):
//!
//! - a delivery status notification (RFC 3464: `multipart/report;
//!   report-type=delivery-status`): a recipient with `Action: failed` and a
//!   `5.x.x` status is a hard bounce; `4.x.x` (or `Action: delayed`) is a
//!   soft bounce, which changes nothing;
//! - an abuse report (ARF, RFC 5965: `multipart/report;
//!   report-type=feedback-report`) with `Feedback-Type: abuse` is a
//!   complaint.
//!
//! The subscriber is found from the returned original message: the token
//! in its `List-Unsubscribe` URL (secret, so the surest), else our
//! Message-ID `<issue-I.subscriber-S@DOMAIN>`, else the recipient address
//! the report names.

use crate::db::{
    publications::SUB_UNSUBSCRIBED,
    subscribers::{self, SubscriberRow},
    DbConn, DbError,
};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use thiserror::Error;

/// The reason recorded for a report kind, if the kind is known.
pub fn pause_reason(kind: &str) -> Option<&'static str> {
    match kind {
        "bounce" => Some("hard bounce reported"),
        "complaint" => Some("complaint reported"),
        _ => None,
    }
}

/// Pauses the subscribers with these addresses; (paused, unknown).
pub fn pause_all(
    conn: &mut DbConn,
    addresses: &[String],
    reason: &str,
) -> Result<(usize, usize), DbError> {
    let (mut paused, mut unknown) = (0, 0);
    for address in addresses {
        match subscribers::pause(conn, address, reason)? {
            Some(id) => {
                tracing::info!(subscriber = id, reason, "subscriber paused");
                paused += 1;
            }
            None => unknown += 1,
        }
    }
    Ok((paused, unknown))
}

/// Why a message could not be read as a report.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReportError {
    /// Not a MIME message at all.
    #[error("not an e-mail message")]
    NotMessage,
    /// A message, but neither a delivery status notification nor an abuse
    /// report.
    #[error("neither a delivery status notification (RFC 3464) nor an abuse report (RFC 5965)")]
    NotReport,
}

/// What a report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// A recipient failed for good (`Action: failed`, status 5.x.x).
    HardBounce,
    /// Delayed or failed for now (4.x.x): nothing to do.
    SoftBounce,
    /// The recipient reported the message as abuse.
    Complaint,
    /// Another feedback type (fraud, virus, not-spam …) or a DSN that
    /// reports success: nothing to do.
    Other,
}

impl ReportKind {
    /// The name used in answers and command output.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportKind::HardBounce => "hard-bounce",
            ReportKind::SoftBounce => "soft-bounce",
            ReportKind::Complaint => "complaint",
            ReportKind::Other => "other",
        }
    }

    /// The reason recorded when the report pauses someone; `None` when it
    /// pauses nobody.
    pub fn pause_reason(&self) -> Option<&'static str> {
        match self {
            ReportKind::HardBounce => pause_reason("bounce"),
            ReportKind::Complaint => pause_reason("complaint"),
            ReportKind::SoftBounce | ReportKind::Other => None,
        }
    }
}

/// A report, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What it says.
    pub kind: ReportKind,
    /// The status code (DSN) or feedback type (ARF) it was decided on.
    pub detail: String,
    /// Recipient addresses the report names (for a hard bounce: only the
    /// failed ones).
    pub addresses: Vec<String>,
    /// The `Message-ID` of the original message, if it came back.
    pub message_id: Option<String>,
    /// The `List-Unsubscribe` header of the original message, if it came
    /// back.
    pub list_unsubscribe: Option<String>,
}

/// Fields of a `message/delivery-status` or `message/feedback-report`
/// body: groups of `Name: value` lines separated by blank lines (a DSN's
/// first group is about the message, each other one about a recipient).
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            if groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
            }
            continue;
        }
        let group = groups.last_mut().expect("never empty");
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The address of a `Final-Recipient: rfc822; ana@example.org` field (the
/// address type is optional in practice).
fn typed_address(value: &str) -> String {
    let address = match value.split_once(';') {
        Some((_, address)) => address,
        None => value,
    };
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

/// The text of a part, whatever MIME type the parser gave it.
fn part_text(part: &mail_parser::MessagePart<'_>) -> Option<String> {
    match &part.body {
        PartType::Text(t) | PartType::Html(t) => Some(t.to_string()),
        PartType::Binary(b) | PartType::InlineBinary(b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        _ => None,
    }
}

/// The part's `Content-Type` as `type/subtype`, lower case.
fn mime_type(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| {
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// `Message-ID` and `List-Unsubscribe` of the original message, from a
/// returned `message/rfc822` part or `text/rfc822-headers`.
fn original_headers(message: &Message<'_>) -> (Option<String>, Option<String>) {
    let from_message = |m: &Message<'_>| {
        let id = m.message_id().map(|id| format!("<{id}>"));
        // Parsed as a list of addresses in angle brackets: here, URLs.
        let unsubscribe = m.list_unsubscribe().as_address().map(|a| {
            a.iter()
                .filter_map(|u| u.address())
                .map(|u| format!("<{u}>"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        (id, unsubscribe)
    };
    for part in message.parts.iter().skip(1) {
        match &part.body {
            PartType::Message(original) => return from_message(original),
            _ if mime_type(part) == "text/rfc822-headers" => {
                if let Some(text) = part_text(part) {
                    let mut head = text;
                    head.push_str("\r\n\r\n");
                    if let Some(m) = MessageParser::default().parse_headers(head.as_bytes()) {
                        return from_message(&m);
                    }
                }
            }
            _ => {}
        }
    }
    (None, None)
}

/// Reads a raw DSN (RFC 3464) or ARF report (RFC 5965).
pub fn parse(raw: &[u8]) -> Result<Report, ReportError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ReportError::NotMessage)?;
    let report_type = message
        .content_type()
        .filter(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .and_then(|ct| ct.attribute("report-type"))
        .map(str::to_ascii_lowercase)
        .ok_or(ReportError::NotReport)?;
    let (message_id, list_unsubscribe) = original_headers(&message);
    let wanted = match report_type.as_str() {
        "delivery-status" => ["message/delivery-status", "message/global-delivery-status"],
        "feedback-report" => ["message/feedback-report", "message/feedback-report"],
        _ => return Err(ReportError::NotReport),
    };
    let fields = message
        .parts
        .iter()
        .find(|p| wanted.contains(&mime_type(p).as_str()))
        .and_then(part_text)
        .ok_or(ReportError::NotReport)?;
    let groups = field_groups(&fields);
    let (kind, detail, addresses) = if report_type == "delivery-status" {
        delivery_status(&groups)
    } else {
        feedback(&groups, &message)
    };
    Ok(Report {
        kind,
        detail,
        addresses,
        message_id,
        list_unsubscribe,
    })
}

/// A DSN's verdict: hard when a recipient failed with 5.x.x, soft when
/// one was delayed or failed with 4.x.x; the addresses concerned.
fn delivery_status(groups: &[Vec<(String, String)>]) -> (ReportKind, String, Vec<String>) {
    let recipients = groups
        .iter()
        .filter(|g| field(g, "final-recipient").is_some() || field(g, "action").is_some());
    let (mut hard, mut soft) = (Vec::new(), Vec::new());
    for g in recipients {
        let action = field(g, "action").unwrap_or_default().to_ascii_lowercase();
        let status = field(g, "status")
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        let address = field(g, "original-recipient")
            .or_else(|| field(g, "final-recipient"))
            .map(typed_address);
        if action == "failed" && status.starts_with("5.") {
            hard.push((status, address));
        } else if action == "delayed" || status.starts_with("4.") {
            soft.push((status, address));
        }
    }
    let collect = |list: Vec<(String, Option<String>)>, kind| {
        let detail = list.first().map(|(s, _)| s.clone()).unwrap_or_default();
        let addresses = list.into_iter().filter_map(|(_, a)| a).collect();
        (kind, detail, addresses)
    };
    if !hard.is_empty() {
        collect(hard, ReportKind::HardBounce)
    } else if !soft.is_empty() {
        collect(soft, ReportKind::SoftBounce)
    } else {
        (ReportKind::Other, String::new(), Vec::new())
    }
}

/// An ARF report's verdict: a complaint for `Feedback-Type: abuse`; the
/// recipient from `Original-Rcpt-To`, else the original message's `To`.
fn feedback(
    groups: &[Vec<(String, String)>],
    message: &Message<'_>,
) -> (ReportKind, String, Vec<String>) {
    let all: Vec<(String, String)> = groups.iter().flatten().cloned().collect();
    let feedback_type = field(&all, "feedback-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut addresses: Vec<String> = all
        .iter()
        .filter(|(n, _)| n == "original-rcpt-to")
        .map(|(_, v)| typed_address(v))
        .collect();
    if addresses.is_empty() {
        for part in message.parts.iter().skip(1) {
            if let PartType::Message(original) = &part.body {
                if let Some(to) = original.to() {
                    addresses.extend(to.iter().filter_map(|a| a.address().map(str::to_string)));
                }
            }
        }
    }
    let kind = if feedback_type == "abuse" {
        ReportKind::Complaint
    } else {
        ReportKind::Other
    };
    (kind, feedback_type, addresses)
}

/// The (issue, subscriber) of one of our issue Message-IDs,
/// `<issue-I.subscriber-S@DOMAIN>`, if it is ours (`id_domain`).
pub fn issue_message_id(message_id: &str, id_domain: &str) -> Option<(i64, i64)> {
    let inner = message_id.trim().strip_prefix('<')?.strip_suffix('>')?;
    let (local, domain) = inner.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(id_domain) {
        return None;
    }
    let (issue, subscriber) = local.strip_prefix("issue-")?.split_once(".subscriber-")?;
    Some((issue.parse().ok()?, subscriber.parse().ok()?))
}

/// The subscriber token of a `List-Unsubscribe` value carrying our
/// one-click URL `<BASE/unsubscribe/TOKEN>`.
pub fn unsubscribe_token(list_unsubscribe: &str, base_url: &str) -> Option<String> {
    let prefix = format!("<{}/unsubscribe/", base_url.trim_end_matches('/'));
    let start = list_unsubscribe.find(&prefix)? + prefix.len();
    let token: String = list_unsubscribe[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (!token.is_empty()).then_some(token)
}

/// What applying a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// What the report says.
    pub kind: ReportKind,
    /// Status code or feedback type.
    pub detail: String,
    /// Subscribers paused by it (an unsubscribed one stays unsubscribed
    /// and is not counted).
    pub paused: Vec<i64>,
    /// The report pauses someone but no subscriber matched it.
    pub unknown: bool,
}

/// The subscribers a report is about: by the token of the original's
/// `List-Unsubscribe`, else by our Message-ID, else by the addresses.
fn concerned(
    conn: &mut DbConn,
    report: &Report,
    base_url: &str,
    id_domain: &str,
) -> Result<Vec<SubscriberRow>, DbError> {
    if let Some(token) = report
        .list_unsubscribe
        .as_deref()
        .and_then(|v| unsubscribe_token(v, base_url))
    {
        if let Some(row) = subscribers::by_token(conn, &token)? {
            return Ok(vec![row]);
        }
    }
    if let Some((_, id)) = report
        .message_id
        .as_deref()
        .and_then(|m| issue_message_id(m, id_domain))
    {
        match subscribers::by_id(conn, id) {
            Ok(row) => return Ok(vec![row]),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let mut rows = Vec::new();
    for address in &report.addresses {
        if let Some(row) = subscribers::by_email(conn, address)? {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Pauses the subscribers a report is about, if it is a hard bounce or a
/// complaint. `base_url` is the base of our links in messages
/// (`Config::mail_base_url`), `id_domain` the right-hand side of our
/// Message-IDs.
pub fn apply(
    conn: &mut DbConn,
    report: &Report,
    base_url: &str,
    id_domain: &str,
) -> Result<Applied, DbError> {
    let mut applied = Applied {
        kind: report.kind,
        detail: report.detail.clone(),
        paused: Vec::new(),
        unknown: false,
    };
    let Some(reason) = report.kind.pause_reason() else {
        return Ok(applied);
    };
    let rows = concerned(conn, report, base_url, id_domain)?;
    applied.unknown = rows.is_empty();
    for row in rows {
        if row.state != SUB_UNSUBSCRIBED {
            subscribers::pause_id(conn, row.id, reason)?;
            tracing::info!(subscriber = row.id, reason, "subscriber paused by a report");
            applied.paused.push(row.id);
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_message_ids_name_issue_and_subscriber() {
        assert_eq!(
            issue_message_id("<issue-12.subscriber-345@ch.example>", "ch.example"),
            Some((12, 345))
        );
        assert_eq!(
            issue_message_id("<issue-12.subscriber-345@other.example>", "ch.example"),
            None
        );
        assert_eq!(issue_message_id("<abc@ch.example>", "ch.example"), None);
    }

    #[test]
    fn the_token_comes_from_our_one_click_url_only() {
        let header =
            "<https://ch.example/unsubscribe/00ff>, <mailto:u@ch.example?subject=unsubscribe>";
        assert_eq!(
            unsubscribe_token(header, "https://ch.example"),
            Some("00ff".into())
        );
        assert_eq!(unsubscribe_token(header, "https://evil.example"), None);
    }

    fn fixture(name: &str) -> Report {
        let path = format!("{}/tests/fixtures/mail/{name}", env!("CARGO_MANIFEST_DIR"));
        parse(&std::fs::read(path).expect("fixture")).expect("a report")
    }

    #[test]
    fn a_dsn_with_a_failed_5xx_recipient_is_a_hard_bounce() {
        let r = fixture("dsn-hard-bounce.eml");
        assert_eq!(r.kind, ReportKind::HardBounce);
        assert_eq!(r.detail, "5.1.1");
        assert_eq!(r.addresses, ["ana@example.org"]);
        assert_eq!(
            r.message_id.as_deref(),
            Some("<issue-3.subscriber-7@alerts.example>")
        );
        assert_eq!(
            r.list_unsubscribe
                .as_deref()
                .and_then(|v| unsubscribe_token(v, "https://alerts.example")),
            Some("a1b2c3d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081".into())
        );
    }

    #[test]
    fn a_delayed_4xx_dsn_is_a_soft_bounce_that_pauses_nobody() {
        let r = fixture("dsn-delayed.eml");
        assert_eq!(r.kind, ReportKind::SoftBounce);
        assert_eq!(r.detail, "4.2.2");
        assert_eq!(r.kind.pause_reason(), None);
    }

    #[test]
    fn an_arf_abuse_report_is_a_complaint_naming_the_original() {
        let r = fixture("arf-abuse.eml");
        assert_eq!(r.kind, ReportKind::Complaint);
        assert_eq!(r.detail, "abuse");
        assert_eq!(r.addresses, ["redacted@mail.example.com"]);
        assert_eq!(
            r.message_id
                .as_deref()
                .and_then(|m| issue_message_id(m, "alerts.example")),
            Some((51, 1234))
        );
        assert_eq!(
            r.list_unsubscribe
                .as_deref()
                .and_then(|v| unsubscribe_token(v, "https://alerts.example")),
            Some("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978".into())
        );
    }

    #[test]
    fn other_messages_are_not_reports() {
        let plain = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello\r\n";
        assert_eq!(parse(plain), Err(ReportError::NotReport));
        let arf = std::fs::read(format!(
            "{}/tests/fixtures/mail/arf-abuse.eml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        let text = String::from_utf8(arf).expect("utf-8");
        let fraud = text.replace("Feedback-Type: abuse", "Feedback-Type: fraud");
        assert_eq!(
            parse(fraud.as_bytes()).map(|r| r.kind),
            Ok(ReportKind::Other)
        );
    }

    #[test]
    fn fields_unfold_and_split_into_groups() {
        let groups = field_groups(
            "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822;\r\n  ana@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n",
        );
        assert_eq!(groups.len(), 2);
        assert_eq!(
            field(&groups[1], "final-recipient").map(typed_address),
            Some("ana@example.org".into())
        );
        assert_eq!(field(&groups[1], "status"), Some("5.1.1"));
    }
}
