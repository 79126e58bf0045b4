//! The Communiqué: an editor-written issue in one of its languages, with
//! items in fixed sections.

use crate::db::{
    publications::{self, EditError, ItemText, NewIssue, NewItem},
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

impl WrittenItem {
    /// The item as stored: heading trimmed, body rendered and sanitised
    /// as alert bodies are, the Markdown kept for later edits.
    pub fn text(&self) -> ItemText {
        ItemText {
            section: self.section.clone(),
            heading: self.heading.trim().to_string(),
            body_markdown: self.body_markdown.clone(),
            body_html: crate::alerts::markdown::render(&self.body_markdown),
            url: self
                .url
                .as_ref()
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty()),
        }
    }
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
        check_item(item).map_err(|(field, why)| (format!("items[{n}].{field}"), why))?;
    }
    Ok(())
}

/// Why an item was refused: the field (`section`, `heading`, `url`) and
/// the reason.
pub fn check_item(item: &WrittenItem) -> Result<(), (String, String)> {
    if !SECTIONS.contains(&item.section.as_str()) {
        return Err((
            "section".into(),
            format!("must be one of {}", SECTIONS.join(", ")),
        ));
    }
    if item.heading.trim().is_empty() {
        return Err(("heading".into(), "must not be empty".into()));
    }
    if let Some(url) = item.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(("url".into(), "must be an http or https address".into()));
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
        .map(|i| {
            let t = i.text();
            NewItem {
                section: t.section,
                story: None,
                alert_id: None,
                heading: t.heading,
                body_html: t.body_html,
                url: t.url,
                body_markdown: Some(t.body_markdown),
            }
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

/// Adds a checked item to a draft, at the end of its section; returns its
/// id.
pub fn add_item(conn: &mut DbConn, issue_id: i64, item: &WrittenItem) -> Result<i64, EditError> {
    publications::add_item(conn, issue_id, &item.text(), &SECTIONS)
}

/// Replaces an item of a draft with a checked item; an item moved to
/// another section goes to its end.
pub fn edit_item(
    conn: &mut DbConn,
    issue_id: i64,
    item_id: i64,
    item: &WrittenItem,
) -> Result<(), EditError> {
    publications::edit_item(conn, issue_id, item_id, &item.text(), &SECTIONS)
}
