//! `tocsin import FILE`: bulk-loads historical alerts from JSON Lines into
//! the archive without federating them. Every line is validated before
//! anything is written; a file with errors imports nothing.

use super::{
    input::{validate, AlertInput, FieldError},
    markdown,
    taxonomy::Taxonomy,
    STATUS_PUBLISHED,
};
use crate::{
    config::Config,
    db::{
        self,
        alerts::{join_list, AlertValues},
        DbConn, DbError,
    },
    federation::Urls,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::BufRead;

/// One line of an import file: an alert as the API takes it, plus when it
/// was published and an optional stable id that makes re-imports skip it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportLine {
    /// The alert itself.
    #[serde(flatten)]
    pub alert: ImportAlert,
    /// RFC 3339 or `YYYY-MM-DD`.
    pub published_at: String,
    /// An id in the old system; the same id is imported once.
    #[serde(default)]
    pub source_id: Option<String>,
}

/// The alert fields of an import line (the API's, without `status`).
#[derive(Debug, Deserialize)]
pub struct ImportAlert {
    pub title: String,
    pub body: String,
    pub language: String,
    pub countries: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    pub urgency: String,
    #[serde(default)]
    pub incident_date: Option<String>,
    #[serde(default)]
    pub case: Option<String>,
    #[serde(default)]
    pub content_warning: Option<String>,
}

/// What went wrong on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// The field, or `line` for JSON errors.
    pub field: String,
    /// Why.
    pub message: String,
}

/// Why an import did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read the import file: {0}")]
    Io(#[from] std::io::Error),
    /// Some lines are invalid; nothing was imported.
    #[error("{} invalid line(s); nothing was imported", .0.len())]
    Invalid(Vec<LineError>),
    /// Storage failed; the batch in progress was rolled back.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The taxonomy could not be loaded.
    #[error("taxonomy: {0}")]
    Taxonomy(String),
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Alerts written.
    pub imported: usize,
    /// Lines skipped because their `source_id` was imported before.
    pub skipped: usize,
}

fn parse_time(value: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(t.timestamp_millis());
    }
    let d = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// Validates every line of `reader`, then stores them by `actor_id` in
/// transactions of 500.
pub fn import(
    conn: &mut DbConn,
    config: &Config,
    actor_id: i64,
    reader: impl BufRead,
) -> Result<ImportReport, ImportError> {
    let taxonomy = Taxonomy::load(&config.alerts.taxonomy_file).map_err(ImportError::Taxonomy)?;
    let urls = Urls::new(config);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        let number = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: ImportLine = match serde_json::from_str(&line) {
            Ok(p) => p,
            Err(e) => {
                errors.push(LineError {
                    line: number,
                    field: "line".into(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let Some(published) = parse_time(&parsed.published_at) else {
            errors.push(LineError {
                line: number,
                field: "published_at".into(),
                message: "must be RFC 3339 or YYYY-MM-DD".into(),
            });
            continue;
        };
        let a = parsed.alert;
        let input = AlertInput {
            title: a.title,
            body: a.body,
            language: a.language,
            countries: a.countries,
            categories: a.categories,
            urgency: a.urgency,
            incident_date: a.incident_date,
            case: a.case,
            content_warning: a.content_warning,
            attachments: vec![],
            status: None,
            campaigns: vec![],
        };
        let valid = match validate(input, &taxonomy, &config.alerts) {
            Ok(v) => v,
            Err(FieldError { field, message }) => {
                errors.push(LineError {
                    line: number,
                    field,
                    message,
                });
                continue;
            }
        };
        let key = match &parsed.source_id {
            Some(id) => format!(
                "import-{}",
                &hex::encode(Sha256::digest(id.as_bytes()))[..32]
            ),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let ap_id = format!("{}/alerts/{key}", urls.base());
        rows.push(
            AlertValues {
                url: Some(ap_id.clone()),
                ap_id,
                actor_id,
                local: true,
                translation_of: None,
                language: valid.language.clone(),
                title: valid.title.clone(),
                content_html: markdown::render(&valid.body),
                source_markdown: Some(valid.body.clone()),
                summary: valid.content_warning.clone(),
                sensitive: valid.content_warning.is_some(),
                countries: join_list(&valid.countries),
                region: valid.region.clone(),
                categories: join_list(&valid.categories),
                urgency: valid.urgency.clone(),
                incident_date: valid.incident_date.clone(),
                case_ap_id: valid.case.clone(),
                status: STATUS_PUBLISHED.to_string(),
                pinned: false,
                token_id: None,
                published_at: Some(published),
                updated_at: published,
                created_at: db::now_ms(),
                deleted_at: None,
                search_text: String::new(),
                quote_ap_id: None,
            }
            .with_search_text(),
        );
    }
    if !errors.is_empty() {
        return Err(ImportError::Invalid(errors));
    }
    let mut report = ImportReport::default();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        // Taken, not borrowed: each alert's values go to its insert.
        let batch: Vec<_> = rows.by_ref().take(500).collect();
        let counts = db::transaction(conn, |conn| {
            let mut done = ImportReport::default();
            for values in batch {
                if db::alerts::by_ap_id(conn, &values.ap_id)?.is_some() {
                    done.skipped += 1;
                } else {
                    db::alerts::insert(conn, values)?;
                    done.imported += 1;
                }
            }
            Ok(done)
        })?;
        report.imported += counts.imported;
        report.skipped += counts.skipped;
    }
    Ok(report)
}
