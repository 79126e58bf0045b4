//! What an author submits, and its validation. Every error names the field.

use super::{taxonomy::Taxonomy, STATUS_DRAFT, STATUS_PUBLISHED, URGENCIES};
use crate::config::AlertsConfig;
use serde::{Deserialize, Serialize};
use url::Url;

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `countries[1]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// A link or uploaded file shown with an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttachmentInput {
    /// Where it is (absolute http(s) URL).
    pub url: String,
    /// MIME type, e.g. `image/jpeg`, `application/pdf`.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Description (alt text).
    #[serde(default)]
    pub description: Option<String>,
}

/// A new alert (also the full replacement on PATCH after merging).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertInput {
    /// Headline.
    pub title: String,
    /// Markdown source of the body.
    pub body: String,
    /// BCP 47 language tag of title and body.
    pub language: String,
    /// ISO 3166-1 alpha-2 codes, at least one; the first decides the region.
    pub countries: Vec<String>,
    /// Category keys from the taxonomy.
    #[serde(default)]
    pub categories: Vec<String>,
    /// `action`, `update`, `statement` or `report`.
    pub urgency: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub incident_date: Option<String>,
    /// Id (URL) of an earlier alert on the same case.
    #[serde(default)]
    pub case: Option<String>,
    /// Content warning; makes the alert `sensitive`.
    #[serde(default)]
    pub content_warning: Option<String>,
    /// Links and files.
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
    /// `published` (default) or `draft`.
    #[serde(default)]
    pub status: Option<String>,
    /// Joint campaigns the alert is part of: their actor URLs or handles
    /// (`@impunity@ch.example`). Each must be a campaign (`Group`); the
    /// alert names it and is delivered to it (docs/campaigns.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaigns: Vec<String>,
}

/// A partial update: absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertPatch {
    pub title: Option<String>,
    pub body: Option<String>,
    pub language: Option<String>,
    pub countries: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    pub urgency: Option<String>,
    pub incident_date: Option<Option<String>>,
    pub case: Option<Option<String>>,
    pub content_warning: Option<Option<String>>,
    pub attachments: Option<Vec<AttachmentInput>>,
    pub status: Option<String>,
    /// Replaces the campaigns the alert names (absent: kept).
    pub campaigns: Option<Vec<String>>,
}

impl AlertInput {
    /// Applies a patch.
    pub fn apply(mut self, p: AlertPatch) -> AlertInput {
        if let Some(v) = p.title {
            self.title = v;
        }
        if let Some(v) = p.body {
            self.body = v;
        }
        if let Some(v) = p.language {
            self.language = v;
        }
        if let Some(v) = p.countries {
            self.countries = v;
        }
        if let Some(v) = p.categories {
            self.categories = v;
        }
        if let Some(v) = p.urgency {
            self.urgency = v;
        }
        if let Some(v) = p.incident_date {
            self.incident_date = v;
        }
        if let Some(v) = p.case {
            self.case = v;
        }
        if let Some(v) = p.content_warning {
            self.content_warning = v;
        }
        if let Some(v) = p.attachments {
            self.attachments = v;
        }
        if let Some(v) = p.status {
            self.status = Some(v);
        }
        if let Some(v) = p.campaigns {
            self.campaigns = v;
        }
        self
    }
}

/// A validated alert, normalised (upper-case countries, derived region).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidAlert {
    pub title: String,
    pub body: String,
    pub language: String,
    pub countries: Vec<String>,
    pub region: Option<String>,
    pub categories: Vec<String>,
    pub urgency: String,
    pub incident_date: Option<String>,
    pub case: Option<String>,
    pub content_warning: Option<String>,
    pub attachments: Vec<AttachmentInput>,
    pub status: String,
}

/// True for a well-formed BCP 47 tag (language, then 1–8 character subtags).
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// MIME types accepted for attachments.
pub const ATTACHMENT_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "application/pdf",
    "audio/mpeg",
    "audio/ogg",
    "video/mp4",
    "video/webm",
    "text/html",
];

/// Validates and normalises an alert.
pub fn validate(
    input: AlertInput,
    taxonomy: &Taxonomy,
    limits: &AlertsConfig,
) -> Result<ValidAlert, FieldError> {
    let title = input.title.trim().to_string();
    if title.is_empty() {
        return Err(err("title", "must not be empty"));
    }
    if title.chars().count() > limits.max_title_chars {
        return Err(err(
            "title",
            format!("must be at most {} characters", limits.max_title_chars),
        ));
    }
    if input.body.trim().is_empty() {
        return Err(err("body", "must not be empty"));
    }
    if input.body.len() > limits.max_body_bytes {
        return Err(err(
            "body",
            format!("must be at most {} bytes", limits.max_body_bytes),
        ));
    }
    if !is_language_tag(&input.language) {
        return Err(err(
            "language",
            "must be a BCP 47 language tag such as en, fr or pt-BR",
        ));
    }
    if input.countries.is_empty() {
        return Err(err("countries", "must name at least one country"));
    }
    let mut countries = Vec::new();
    for (i, c) in input.countries.iter().enumerate() {
        let code = c.trim().to_ascii_uppercase();
        if taxonomy.region_of(&code).is_none() {
            return Err(err(
                format!("countries[{i}]"),
                format!("{c} is not an ISO 3166-1 alpha-2 country code"),
            ));
        }
        if !countries.contains(&code) {
            countries.push(code);
        }
    }
    let region = taxonomy.region_of(&countries[0]).map(str::to_string);
    let mut categories = Vec::new();
    for (i, c) in input.categories.iter().enumerate() {
        let key = c.trim().to_ascii_lowercase();
        if !taxonomy.has_category(&key) {
            return Err(err(
                format!("categories[{i}]"),
                format!("{c} is not a category of this instance"),
            ));
        }
        if !categories.contains(&key) {
            categories.push(key);
        }
    }
    if !URGENCIES.contains(&input.urgency.as_str()) {
        return Err(err(
            "urgency",
            format!("must be one of {}", URGENCIES.join(", ")),
        ));
    }
    let incident_date = match input
        .incident_date
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(d) => {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| err("incident_date", "must be a date as YYYY-MM-DD"))?;
            Some(d.to_string())
        }
        None => None,
    };
    let case = match input
        .case
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(c) => {
            let url =
                Url::parse(c).map_err(|_| err("case", "must be the URL of an earlier alert"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(err("case", "must be an http(s) URL"));
            }
            Some(url.to_string())
        }
        None => None,
    };
    let content_warning = input
        .content_warning
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty());
    for (i, a) in input.attachments.iter().enumerate() {
        let url = Url::parse(&a.url)
            .map_err(|_| err(format!("attachments[{i}].url"), "must be an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err(
                format!("attachments[{i}].url"),
                "must be an http(s) URL",
            ));
        }
        if let Some(t) = &a.media_type {
            if !ATTACHMENT_TYPES.contains(&t.as_str()) {
                return Err(err(
                    format!("attachments[{i}].media_type"),
                    format!("{t} is not an accepted type"),
                ));
            }
        }
    }
    if input.attachments.len() > 8 {
        return Err(err("attachments", "at most 8 attachments"));
    }
    let status = input.status.unwrap_or_else(|| STATUS_PUBLISHED.to_string());
    if status != STATUS_PUBLISHED && status != STATUS_DRAFT {
        return Err(err("status", "must be published or draft"));
    }
    Ok(ValidAlert {
        title,
        body: input.body,
        language: input.language,
        countries,
        region,
        categories,
        urgency: input.urgency,
        incident_date,
        case,
        content_warning,
        attachments: input.attachments,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> AlertInput {
        AlertInput {
            title: "Journalist detained in Istanbul".into(),
            body: "**Ayşe** was detained.".into(),
            language: "en".into(),
            countries: vec!["tr".into()],
            categories: vec!["detention".into()],
            urgency: "action".into(),
            incident_date: Some("2026-11-20".into()),
            case: None,
            content_warning: None,
            attachments: vec![],
            status: None,
            campaigns: vec![],
        }
    }

    fn check(i: AlertInput) -> Result<ValidAlert, FieldError> {
        validate(
            i,
            &Taxonomy::parse(super::super::taxonomy::BUILT_IN).unwrap(),
            &AlertsConfig::default(),
        )
    }

    #[test]
    fn a_good_alert_is_normalised() {
        let v = check(input()).unwrap();
        assert_eq!(v.countries, vec!["TR"]);
        assert_eq!(v.region.as_deref(), Some("europe-central-asia"));
        assert_eq!(v.status, "published");
    }

    #[test]
    fn every_invalid_field_is_named() {
        type Mutation = Box<dyn Fn(&mut AlertInput)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|i| i.title = " ".into()), "title"),
            (Box::new(|i| i.title = "x".repeat(301)), "title"),
            (Box::new(|i| i.body = "".into()), "body"),
            (Box::new(|i| i.body = "x".repeat(100_001)), "body"),
            (Box::new(|i| i.language = "english!".into()), "language"),
            (Box::new(|i| i.countries = vec![]), "countries"),
            (
                Box::new(|i| i.countries = vec!["TR".into(), "XX".into()]),
                "countries[1]",
            ),
            (
                Box::new(|i| i.categories = vec!["gossip".into()]),
                "categories[0]",
            ),
            (Box::new(|i| i.urgency = "urgent".into()), "urgency"),
            (
                Box::new(|i| i.incident_date = Some("20/11/2026".into())),
                "incident_date",
            ),
            (Box::new(|i| i.case = Some("not a url".into())), "case"),
            (
                Box::new(|i| i.case = Some("ftp://x.example/a".into())),
                "case",
            ),
            (
                Box::new(|i| {
                    i.attachments = vec![AttachmentInput {
                        url: "x".into(),
                        media_type: None,
                        description: None,
                    }]
                }),
                "attachments[0].url",
            ),
            (
                Box::new(|i| {
                    i.attachments = vec![AttachmentInput {
                        url: "https://x.example/a.exe".into(),
                        media_type: Some("application/x-msdownload".into()),
                        description: None,
                    }]
                }),
                "attachments[0].media_type",
            ),
            (Box::new(|i| i.status = Some("secret".into())), "status"),
        ];
        for (mutate, field) in cases {
            let mut i = input();
            mutate(&mut i);
            assert_eq!(check(i).unwrap_err().field, field);
        }
    }

    #[test]
    fn language_tags() {
        for ok in ["en", "fr", "pt-BR", "zh-Hant-TW", "ast"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "e", "english", "en_US", "en-", "fr-toolongsubtag"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
