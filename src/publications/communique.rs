//! The Communiqué: an editor-written issue in one of its languages, with
//! items in fixed sections.

use crate::db::{
    publications::{self, NewIssue, NewItem},
    DbConn, DbError,
};

/// The Communiqué's sections, in reading order.
pub const SECTIONS: [&str; 4] = [
    "regional-news",
    "conferences-workshops",
    "awards",
    "fellowships",
];

/// The Communiqué's languages.
pub const LANGUAGES: [&str; 5] = ["en", "fr", "es", "ar", "ru"];

/// An item as an editor writes it: Markdown body.
#[derive(Debug, Clone)]
pub struct WrittenItem {
    pub section: String,
    pub heading: String,
    pub body_markdown: String,
    pub url: Option<String>,
}

/// Why a Communiqué draft was refused: the field and the reason.
pub fn check(language: &str, items: &[WrittenItem]) -> Result<(), (String, String)> {
    if !LANGUAGES.contains(&language) {
        return Err((
            "language".into(),
            format!("must be one of {}", LANGUAGES.join(", ")),
        ));
    }
    for (n, item) in items.iter().enumerate() {
        if !SECTIONS.contains(&item.section.as_str()) {
            return Err((
                format!("items[{n}].section"),
                format!("must be one of {}", SECTIONS.join(", ")),
            ));
        }
        if item.heading.trim().is_empty() {
            return Err((format!("items[{n}].heading"), "must not be empty".into()));
        }
    }
    Ok(())
}

/// Creates a draft Communiqué; items are placed in section order, keeping
/// the editor's order within a section. Returns the issue id.
pub fn create(
    conn: &mut DbConn,
    language: &str,
    title: &str,
    now: i64,
    items: &[WrittenItem],
) -> Result<i64, DbError> {
    let mut sorted: Vec<&WrittenItem> = items.iter().collect();
    sorted.sort_by_key(|i| SECTIONS.iter().position(|s| *s == i.section));
    let rows: Vec<NewItem> = sorted
        .into_iter()
        .map(|i| NewItem {
            section: i.section.clone(),
            story: None,
            alert_id: None,
            heading: i.heading.trim().to_string(),
            body_html: crate::alerts::markdown::render(&i.body_markdown),
            url: i.url.clone(),
        })
        .collect();
    publications::create_issue(
        conn,
        &NewIssue {
            publication: super::COMMUNIQUE,
            language,
            period_start: now,
            period_end: now,
            title,
        },
        &rows,
    )
}
