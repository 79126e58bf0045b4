//! E-mail: the SMTP connection (`[mail]`, through `lettre`), messages with
//! HTML and plain-text parts and RFC 8058 one-click unsubscribe headers,
//! per-language templates, resumable sending of an issue, and the import
//! of subscribers from CSV.
//!
//! No address is ever logged: log lines name subscriber ids, and SMTP
//! errors are reduced to their status code (servers often quote the
//! recipient in the text).

pub mod import;
pub mod message;
pub mod reports;
pub mod send;
pub mod templates;

use crate::config::Config;
use lettre::{
    message::Mailbox,
    transport::smtp::{authentication::Credentials, PoolConfig},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use thiserror::Error;

/// Why a message could not be made or handed over.
#[derive(Debug, Error)]
pub enum MailError {
    /// `[mail] smtp_host` is empty.
    #[error("e-mail is not configured ([mail] smtp_host is empty)")]
    NotConfigured,
    /// The configuration or an address could not be used.
    #[error("{0}")]
    Invalid(String),
    /// The server refused this message for good (5xx).
    #[error("the SMTP server refused the message ({0})")]
    Permanent(String),
    /// The server or the connection failed for now (4xx, network, TLS).
    #[error("SMTP failed for now: {0}")]
    Transient(String),
}

/// The SMTP transport and what every message shares.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Base of the links in messages, without a trailing slash.
    pub base_url: String,
    /// Address for `mailto:` unsubscribe requests, if offered.
    pub unsubscribe_mailto: Option<String>,
    /// Right-hand side of our Message-IDs.
    pub id_domain: String,
    /// The instance's name, shown in messages.
    pub site: String,
}

impl Mailer {
    /// The mailer of `config`, or [`MailError::NotConfigured`].
    pub fn from_config(config: &Config) -> Result<Mailer, MailError> {
        let mail = &config.mail;
        if mail.smtp_host.is_empty() {
            return Err(MailError::NotConfigured);
        }
        let invalid = |e: lettre::transport::smtp::Error| MailError::Invalid(e.to_string());
        let (builder, port) = match mail.security.as_str() {
            "none" => (
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&mail.smtp_host),
                25,
            ),
            "tls" => (
                AsyncSmtpTransport::<Tokio1Executor>::relay(&mail.smtp_host).map_err(invalid)?,
                465,
            ),
            _ => (
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&mail.smtp_host)
                    .map_err(invalid)?,
                587,
            ),
        };
        let port = if mail.smtp_port == 0 {
            port
        } else {
            mail.smtp_port
        };
        let mut builder = builder
            .port(port)
            .timeout(Some(std::time::Duration::from_secs(30)))
            .pool_config(PoolConfig::new().max_size(mail.connections));
        if !mail.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                mail.username.clone(),
                mail.password.clone(),
            ));
        }
        let from: Mailbox = mail
            .from
            .parse()
            .map_err(|e| MailError::Invalid(format!("[mail] from: {e}")))?;
        let id_domain = id_domain(config);
        Ok(Mailer {
            transport: builder.build(),
            from,
            base_url: config.mail_base_url(),
            unsubscribe_mailto: (!mail.unsubscribe_mailto.is_empty())
                .then(|| mail.unsubscribe_mailto.clone()),
            id_domain,
            site: config.instance.name.clone(),
        })
    }

    /// The `From` of every message.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Hands a message to the SMTP server; `Ok` means the server answered
    /// 250 to its DATA.
    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(describe(&e))),
            Err(e) => Err(MailError::Transient(describe(&e))),
        }
    }
}

/// An SMTP error without the server's text, which may quote the address.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) => format!("status {code}"),
        None => e.to_string(),
    }
}

/// The right-hand side of our Message-IDs: the instance's host, without
/// a port.
pub fn id_domain(config: &Config) -> String {
    config
        .instance
        .domain
        .rsplit_once(':')
        .map_or(config.instance.domain.as_str(), |(host, _)| host)
        .to_string()
}

/// The link that confirms a sign-up.
pub fn confirm_url(base: &str, token: &str) -> String {
    format!("{base}/subscribe/confirm/{token}")
}

/// The preferences page of a subscriber.
pub fn preferences_url(base: &str, token: &str) -> String {
    format!("{base}/subscribe/preferences/{token}")
}

/// The one-click unsubscribe URL (RFC 8058): a POST unsubscribes, a GET
/// shows a page with a button.
pub fn unsubscribe_url(base: &str, token: &str) -> String {
    format!("{base}/unsubscribe/{token}")
}
