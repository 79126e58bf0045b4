//! Building one message: `From`, `To`, subject, a deterministic
//! Message-ID when asked, `multipart/alternative` with a plain-text and an
//! HTML part, and the list headers of RFC 2369 and RFC 8058.

use super::{MailError, Mailer};
use lettre::{
    message::{
        header::{HeaderName, HeaderValue},
        Mailbox, MultiPart,
    },
    Message,
};

/// What a message says; the parts are already rendered.
#[derive(Debug, Clone)]
pub struct Content {
    /// Subject line.
    pub subject: String,
    /// The `text/plain` part.
    pub text: String,
    /// The `text/html` part.
    pub html: String,
}

/// The Message-ID of an issue sent to a subscriber: the same on every try,
/// so a message sent again after a crash is recognisably the same one.
pub fn issue_message_id(mailer: &Mailer, issue_id: i64, subscriber_id: i64) -> String {
    format!(
        "<issue-{issue_id}.subscriber-{subscriber_id}@{}>",
        mailer.id_domain
    )
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// A message to `to`. With `unsubscribe_token`, the message carries
/// `List-Unsubscribe` (the one-click URL, and `mailto:` when configured)
/// and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
pub fn build(
    mailer: &Mailer,
    to: &str,
    content: Content,
    message_id: Option<String>,
    unsubscribe_token: Option<&str>,
) -> Result<Message, MailError> {
    let to: Mailbox = to
        .parse()
        .map_err(|_| MailError::Permanent("the address is not valid".into()))?;
    let mut builder = Message::builder()
        .from(mailer.from().clone())
        .to(to)
        .subject(content.subject)
        .message_id(message_id.or_else(|| {
            Some(format!(
                "<{}@{}>",
                uuid::Uuid::new_v4().simple(),
                mailer.id_domain
            ))
        }));
    if let Some(token) = unsubscribe_token {
        let url = super::unsubscribe_url(&mailer.base_url, token);
        let value = match &mailer.unsubscribe_mailto {
            Some(mailto) => format!("<{url}>, <mailto:{mailto}?subject=unsubscribe>"),
            None => format!("<{url}>"),
        };
        builder = builder
            .raw_header(header("List-Unsubscribe", value))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            content.text,
            content.html,
        ))
        .map_err(|e| MailError::Invalid(e.to_string()))
}
