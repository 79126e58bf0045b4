//! What messages say, per language: askama templates in templates/mail/
//! (an HTML and a plain-text one each) with the fixed words from the
//! Fluent catalogues in locales/.

use super::{message::Content, MailError, Mailer};
use crate::{
    alerts::taxonomy::Taxonomy,
    db::{
        alerts::plain_text,
        publications::{IssueRow, ItemRow},
    },
    publications::{section_name, DIGEST},
    web::i18n::Lang,
};
use askama::Template;

/// One item, rendered once per issue.
#[derive(Debug, Clone)]
pub struct ItemContent {
    /// Heading.
    pub heading: String,
    /// Sanitised HTML body.
    pub html: String,
    /// The body as plain text.
    pub text: String,
    /// Link to the item.
    pub url: Option<String>,
}

/// One section of an issue.
#[derive(Debug, Clone)]
pub struct SectionContent {
    /// Section key (a region key in the Digest).
    pub key: String,
    /// Heading shown.
    pub name: String,
    /// Items in order.
    pub items: Vec<ItemContent>,
}

/// An issue prepared for sending: everything but the per-subscriber parts.
#[derive(Debug, Clone)]
pub struct IssueContent {
    /// Language of the issue.
    pub lang: Lang,
    /// Subject and heading.
    pub title: String,
    /// Sections in order.
    pub sections: Vec<SectionContent>,
    /// Sections are regions (the Digest): a subscriber who chose regions
    /// gets only those.
    pub by_region: bool,
}

/// What the issue templates show.
struct IssueParts<'a> {
    lang: Lang,
    title: &'a str,
    sections: &'a [&'a SectionContent],
    footer: &'a str,
    preferences: &'a str,
    unsubscribe: &'a str,
}

#[derive(Template)]
#[template(path = "mail/issue.html")]
struct IssueHtml<'a> {
    p: &'a IssueParts<'a>,
}

#[derive(Template)]
#[template(path = "mail/issue.txt")]
struct IssueText<'a> {
    p: &'a IssueParts<'a>,
}

/// What the notice templates show.
struct NoticeParts<'a> {
    lang: Lang,
    title: &'a str,
    text: &'a str,
    link: &'a str,
    link_label: &'a str,
    note: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notice.html")]
struct NoticeHtml<'a> {
    p: &'a NoticeParts<'a>,
}

#[derive(Template)]
#[template(path = "mail/notice.txt")]
struct NoticeText<'a> {
    p: &'a NoticeParts<'a>,
}

fn rendered(result: askama::Result<String>) -> Result<String, MailError> {
    result.map_err(|e| MailError::Invalid(format!("template: {e}")))
}

impl IssueContent {
    /// Prepares an issue: section names from the taxonomy (in the Digest),
    /// plain-text bodies.
    pub fn new(issue: &IssueRow, items: &[ItemRow], taxonomy: &Taxonomy) -> IssueContent {
        let lang = Lang::parse(&issue.language).unwrap_or_default();
        let by_region = issue.publication == DIGEST;
        let mut sections: Vec<SectionContent> = Vec::new();
        for item in items {
            if sections.last().is_none_or(|s| s.key != item.section) {
                let name = section_name(lang, taxonomy, &issue.publication, &item.section);
                sections.push(SectionContent {
                    key: item.section.clone(),
                    name,
                    items: Vec::new(),
                });
            }
            let section = sections.last_mut().expect("pushed above");
            section.items.push(ItemContent {
                heading: item.heading.clone(),
                html: ammonia::clean(&item.body_html),
                text: plain_text(&item.body_html),
                url: item.url.clone(),
            });
        }
        IssueContent {
            lang,
            title: issue.title.clone(),
            sections,
            by_region,
        }
    }

    /// The message for a subscriber who chose `regions` (empty: all), with
    /// their preferences and unsubscribe links; `None` when the issue has
    /// nothing in their regions.
    pub fn render_for(
        &self,
        mailer: &Mailer,
        regions: &[String],
        token: &str,
    ) -> Result<Option<Content>, MailError> {
        let sections: Vec<&SectionContent> = self
            .sections
            .iter()
            .filter(|s| !self.by_region || regions.is_empty() || regions.contains(&s.key))
            .collect();
        if sections.is_empty() {
            return Ok(None);
        }
        let footer = self
            .lang
            .t_args("mail-footer", &[("site", mailer.site.clone())]);
        let preferences = super::preferences_url(&mailer.base_url, token);
        let unsubscribe = super::unsubscribe_url(&mailer.base_url, token);
        let parts = IssueParts {
            lang: self.lang,
            title: &self.title,
            sections: &sections,
            footer: &footer,
            preferences: &preferences,
            unsubscribe: &unsubscribe,
        };
        let html = rendered(IssueHtml { p: &parts }.render())?;
        let text = rendered(IssueText { p: &parts }.render())?;
        Ok(Some(Content {
            subject: self.title.clone(),
            text,
            html,
        }))
    }
}

/// A short message about the subscription itself.
fn notice(
    lang: Lang,
    title: &str,
    text: &str,
    link: &str,
    link_label: &str,
    note: &str,
) -> Result<Content, MailError> {
    let parts = NoticeParts {
        lang,
        title,
        text,
        link,
        link_label,
        note,
    };
    let html = rendered(NoticeHtml { p: &parts }.render())?;
    let text = rendered(NoticeText { p: &parts }.render())?;
    Ok(Content {
        subject: title.to_string(),
        text,
        html,
    })
}

/// The double opt-in message: the confirmation link.
pub fn confirmation(mailer: &Mailer, lang: Lang, token: &str) -> Result<Content, MailError> {
    let site = [("site", mailer.site.clone())];
    notice(
        lang,
        &lang.t_args("mail-confirm-subject", &site),
        &lang.t_args("mail-confirm-text", &site),
        &super::confirm_url(&mailer.base_url, token),
        &lang.t("confirm-button"),
        &lang.t("mail-confirm-ignore"),
    )
}

/// The answer to a sign-up of an address that is already subscribed: a
/// link to its preferences page, and nothing changed.
pub fn already_subscribed(mailer: &Mailer, lang: Lang, token: &str) -> Result<Content, MailError> {
    let site = [("site", mailer.site.clone())];
    notice(
        lang,
        &lang.t_args("mail-known-subject", &site),
        &lang.t_args("mail-known-text", &site),
        &super::preferences_url(&mailer.base_url, token),
        &lang.t("mail-preferences"),
        &lang.t("mail-confirm-ignore"),
    )
}
