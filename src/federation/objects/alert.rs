//! Alerts on the wire: each language version is its own `Note` that
//! Mastodon renders well (title first in `content`, `contentMap` for its one
//! language, hashtags, attachments, content warning), with the structured
//! fields in our own JSON-LD namespace. Notes, Articles and Pages from other
//! software are accepted and stored as alerts.

use super::actor::DbActor;
use crate::{
    alerts::{markdown, STATUS_DELETED, STATUS_PUBLISHED},
    db::{
        self,
        alerts::{join_list, AlertRow, AlertValues, AttachmentRow},
        now_ms, DbConn,
    },
    error::Error,
    federation::{same_origin, Urls},
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::object_id::ObjectId, kinds::public, protocol::helpers::deserialize_skip_error,
    traits::Object,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use url::Url;

/// Object types we store as alerts.
pub const ALERT_OBJECT_TYPES: &[&str] = &["Note", "Article", "Page"];

/// The `@context` of our Notes: ActivityStreams, Mastodon's terms, and our
/// namespace (served at `<base>/ns`).
pub fn note_context(urls: &Urls) -> Value {
    json!([
        "https://www.w3.org/ns/activitystreams",
        {
            "sensitive": "as:sensitive",
            "Hashtag": "as:Hashtag",
            "toot": "http://joinmastodon.org/ns#",
            "tocsin": format!("{}/ns#", urls.base()),
            "alertTitle": "tocsin:alertTitle",
            "countries": "tocsin:countries",
            "region": "tocsin:region",
            "categories": "tocsin:categories",
            "urgency": "tocsin:urgency",
            "incidentDate": "tocsin:incidentDate",
            "case": { "@id": "tocsin:case", "@type": "@id" },
            "translations": { "@id": "tocsin:translations", "@type": "@id" },
            "quote": { "@id": "https://w3id.org/fep/044f#quote", "@type": "@id" },
            "quoteUrl": "as:quoteUrl",
            "_misskey_quote": "https://misskey-hub.net/ns#_misskey_quote",
        }
    ])
}

/// The context document served at `<base>/ns`.
pub fn namespace_document(urls: &Urls) -> Value {
    let ctx = note_context(urls);
    json!({ "@context": ctx[1].clone() })
}

/// A Note (or Article/Page) as we accept it; lenient about shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteJson {
    /// `Note`, `Article` or `Page`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Object id.
    pub id: Url,
    /// Author (the first one, if several).
    #[serde(deserialize_with = "urls_one_or_many")]
    pub attributed_to: Vec<Url>,
    /// Primary audience.
    #[serde(default, deserialize_with = "urls_one_or_many")]
    pub to: Vec<Url>,
    /// Secondary audience.
    #[serde(default, deserialize_with = "urls_one_or_many")]
    pub cc: Vec<Url>,
    /// The group it is posted to (FEP-1b12): campaigns it names.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "urls_one_or_many"
    )]
    pub audience: Vec<Url>,
    /// Title (Article, Page; our `alertTitle` for Notes).
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub name: Option<String>,
    /// HTML content.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub content: Option<String>,
    /// Content by language.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub content_map: Option<BTreeMap<String, String>>,
    /// Content warning.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub summary: Option<String>,
    /// Whether the content warning hides the content.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub sensitive: Option<bool>,
    /// HTML page (string or Link object).
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub url: Option<Value>,
    /// First publication.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub published: Option<DateTime<Utc>>,
    /// Last edit.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub updated: Option<DateTime<Utc>>,
    /// Hashtags, mentions … (GoToSocial sends a lone object unwrapped).
    #[serde(default, deserialize_with = "one_or_many_values")]
    pub tag: Vec<Value>,
    /// Attachments (likewise one or many).
    #[serde(default, deserialize_with = "one_or_many_values")]
    pub attachment: Vec<Value>,
    /// Our extension: title of the alert.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub alert_title: Option<String>,
    /// Our extension: ISO country codes.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub countries: Vec<String>,
    /// Our extension: region key.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub region: Option<String>,
    /// Our extension: category keys.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub categories: Vec<String>,
    /// Our extension: urgency.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub urgency: Option<String>,
    /// Our extension: incident date.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub incident_date: Option<String>,
    /// Our extension: earlier alert on the same case.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub case: Option<Url>,
    /// Our extension: the other language versions of the alert.
    #[serde(default, deserialize_with = "deserialize_skip_error")]
    pub translations: Vec<Url>,
}

/// A URL or an array of them, as a list without repeats (the first one
/// kept); `Public` and `as:Public` name the public collection. As lenient
/// as activitypub_federation's `deserialize_one_or_many`, which buffered
/// each entry twice (as serde content, then as a JSON value) and a set of
/// copies: a dozen allocations per Note for its `to` and `cc` alone.
fn urls_one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Url>, D::Error> {
    struct UrlList;
    impl<'de> serde::de::Visitor<'de> for UrlList {
        type Value = Vec<Url>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a URL or an array of URLs")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<Url>, E> {
            audience_url(v).map(|url| vec![url])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Url>, A::Error> {
            let mut urls = Vec::new();
            while let Some(AudienceUrl(url)) = seq.next_element()? {
                urls.push(url);
            }
            Ok(without_repeats(urls))
        }
    }
    d.deserialize_any(UrlList)
}

/// One entry of [`urls_one_or_many`], read from the text in place.
struct AudienceUrl(Url);

impl<'de> Deserialize<'de> for AudienceUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entry;
        impl serde::de::Visitor<'_> for Entry {
            type Value = AudienceUrl;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a URL")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AudienceUrl, E> {
                audience_url(v).map(AudienceUrl)
            }
        }
        d.deserialize_str(Entry)
    }
}

/// `text` as a URL, `Public` and `as:Public` as the public collection.
fn audience_url<E: serde::de::Error>(text: &str) -> Result<Url, E> {
    match text {
        // Named by nearly every incoming Note, and parsing it costs more
        // than copying it.
        "Public" | "as:Public" | "https://www.w3.org/ns/activitystreams#Public" => {
            Ok(public_collection())
        }
        _ => Url::parse(text).map_err(E::custom),
    }
}

/// The public collection, parsed once.
fn public_collection() -> Url {
    static PUBLIC: std::sync::LazyLock<Url> = std::sync::LazyLock::new(public);
    PUBLIC.clone()
}

/// `urls` with every repeat removed, the first of each kept.
fn without_repeats(urls: Vec<Url>) -> Vec<Url> {
    // A few recipients (the usual case): compared pairwise, no set built.
    if urls.len() <= 16 {
        let mut kept: Vec<Url> = Vec::with_capacity(urls.len());
        for url in urls {
            if !kept.contains(&url) {
                kept.push(url);
            }
        }
        return kept;
    }
    let mut seen = std::collections::HashSet::with_capacity(urls.len());
    let first: Vec<bool> = urls.iter().map(|u| seen.insert(u.as_str())).collect();
    drop(seen);
    urls.into_iter()
        .zip(first)
        .filter_map(|(url, first)| first.then_some(url))
        .collect()
}

/// A JSON value or an array of them, as a list.
fn one_or_many_values<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    })
}

impl NoteJson {
    /// The author.
    pub fn author(&self) -> Option<&Url> {
        self.attributed_to.first()
    }
}

/// A hashtag name from free text: letters and digits only.
pub fn hashtag(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Display name of an ISO country code (English).
pub fn country_name(code: &str) -> String {
    isocountry::CountryCode::for_alpha2(code)
        .map(|c| c.name().to_string())
        .unwrap_or_else(|_| code.to_string())
}

/// Millisecond timestamp as RFC 3339, keeping the milliseconds: two edits
/// within one second must still compare as newer.
pub(crate) fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Everything needed to render one language version as a Note.
pub struct NoteParts<'a> {
    /// The version to render.
    pub alert: &'a AlertRow,
    /// Its author.
    pub actor: &'a DbActor,
    /// Ids of the other language versions.
    pub other_versions: Vec<String>,
    /// Its attachments.
    pub attachments: &'a [AttachmentRow],
    /// Ids of the campaigns it names (`audience`, `cc`, a Mention each).
    pub campaigns: Vec<String>,
}

/// Builds the Note of a local alert (without `@context`).
pub fn build_note(parts: &NoteParts<'_>, urls: &Urls) -> Value {
    let a = parts.alert;
    let followers = urls.actor_part(&parts.actor.username, "followers");
    let mut tags: Vec<(String, String)> = Vec::new();
    for c in a.country_list() {
        tags.push((hashtag(&country_name(&c)), c.to_lowercase()));
    }
    for c in a.category_list() {
        tags.push((hashtag(&c), c));
    }
    let tag_links: Vec<String> = tags
        .iter()
        .map(|(name, _)| {
            format!(
                "<a href=\"{}/tags/{}\" class=\"mention hashtag\" rel=\"tag\">#<span>{}</span></a>",
                urls.base(),
                name.to_lowercase(),
                markdown::escape(name)
            )
        })
        .collect();
    let mut content = format!(
        "<p><strong>{}</strong></p>{}",
        markdown::escape(&a.title),
        a.content_html
    );
    if !tag_links.is_empty() {
        content.push_str(&format!("<p>{}</p>", tag_links.join(" ")));
    }
    let mut tag_json: Vec<Value> = tags
        .iter()
        .map(|(name, _)| {
            json!({
                "type": "Hashtag",
                "href": format!("{}/tags/{}", urls.base(), name.to_lowercase()),
                "name": format!("#{name}"),
            })
        })
        .collect();
    tag_json.extend(
        parts
            .campaigns
            .iter()
            .map(|c| json!({ "type": "Mention", "href": c })),
    );
    let mut cc = vec![json!(followers)];
    cc.extend(parts.campaigns.iter().map(|c| json!(c)));
    let attachment_json: Vec<Value> = parts
        .attachments
        .iter()
        .map(|at| {
            let kind = match at.media_type.as_deref() {
                Some(t) if t.starts_with("image/") => "Image",
                _ => "Document",
            };
            let mut v = json!({ "type": kind, "url": at.url });
            if let Some(t) = &at.media_type {
                v["mediaType"] = json!(t);
            }
            if let Some(d) = &at.description {
                v["name"] = json!(d);
            }
            v
        })
        .collect();
    let mut note = json!({
        "id": a.ap_id,
        "type": "Note",
        "attributedTo": parts.actor.ap_id,
        "to": [public()],
        "cc": cc,
        "content": content,
        "contentMap": { a.language.clone(): content },
        "url": a.url.clone().unwrap_or_else(|| a.ap_id.clone()),
        "published": rfc3339(a.published_at.unwrap_or(a.created_at)),
        "sensitive": a.sensitive,
        "tag": tag_json,
        "attachment": attachment_json,
        "alertTitle": a.title,
        "countries": a.country_list(),
        "categories": a.category_list(),
        "urgency": a.urgency,
    });
    if a.updated_at > a.published_at.unwrap_or(a.created_at) {
        note["updated"] = json!(rfc3339(a.updated_at));
    }
    if let Some(s) = &a.summary {
        note["summary"] = json!(s);
    }
    if let Some(r) = &a.region {
        note["region"] = json!(r);
    }
    if let Some(d) = &a.incident_date {
        note["incidentDate"] = json!(d);
    }
    if let Some(c) = &a.case_ap_id {
        note["case"] = json!(c);
    }
    if !parts.other_versions.is_empty() {
        note["translations"] = json!(parts.other_versions);
    }
    match parts.campaigns.as_slice() {
        [] => {}
        [one] => note["audience"] = json!(one),
        many => note["audience"] = json!(many),
    }
    if let Some(q) = &a.quote_ap_id {
        // FEP-044f, with the older forms Misskey and Fedibird read.
        note["quote"] = json!(q);
        note["quoteUrl"] = json!(q);
        note["_misskey_quote"] = json!(q);
    }
    note
}

/// The first line of some HTML's text (`text`: its tags stripped, by
/// [`markdown::text_of_sanitized`]), for a title when there is none.
fn title_from_text(text: &str) -> String {
    let first = text.trim().lines().next().unwrap_or_default();
    let decoded = html_escape::decode_html_entities(first).to_string();
    let mut title: String = decoded.chars().take(120).collect();
    if decoded.chars().count() > 120 {
        title.push('…');
    }
    title
}

/// Removes NUL characters from `text`: PostgreSQL text cannot hold them,
/// so a Note carrying one (`\u0000`) could otherwise never be stored.
fn drop_nul(text: &mut String) {
    if text.contains('\0') {
        text.retain(|c| c != '\0');
    }
}

/// `text` without NUL characters ([`drop_nul`]).
fn nul_free(mut text: String) -> String {
    drop_nul(&mut text);
    text
}

/// `values` without NUL characters in any text ([`drop_nul`]). Looking at
/// each value costs a scan of a few short strings; looking at the Note
/// before (serialised to find a `\u0000`) cost more than its JSON parse.
fn without_nul(mut values: AlertValues) -> AlertValues {
    let v = &mut values;
    let texts = [
        &mut v.ap_id,
        &mut v.language,
        &mut v.title,
        &mut v.content_html,
        &mut v.countries,
        &mut v.categories,
        &mut v.urgency,
        &mut v.status,
        &mut v.search_text,
    ];
    texts.into_iter().for_each(drop_nul);
    let optional = [
        &mut v.source_markdown,
        &mut v.summary,
        &mut v.region,
        &mut v.incident_date,
        &mut v.case_ap_id,
        &mut v.url,
        &mut v.quote_ap_id,
    ];
    optional.into_iter().flatten().for_each(drop_nul);
    values
}

/// Turns a remote Note/Article/Page into alert values (sanitised, without
/// NUL characters).
pub fn values_from_note(json: &NoteJson, actor_id: i64) -> AlertValues {
    let (language, content) = match (&json.content_map, &json.content) {
        (Some(map), content) if !map.is_empty() => {
            let (lang, text) = map
                .iter()
                .next()
                .map(|(l, t)| (l.clone(), t.clone()))
                .unwrap_or_default();
            (lang, content.clone().unwrap_or(text))
        }
        (_, Some(content)) => ("und".to_string(), content.clone()),
        _ => ("und".to_string(), String::new()),
    };
    let content_html = markdown::sanitize(&content);
    // Stripped once, for the title (when there is none) and the search text.
    let text = markdown::text_of_sanitized(&content_html);
    let title = json
        .alert_title
        .clone()
        .or_else(|| json.name.clone())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| title_from_text(&text));
    let now = now_ms();
    let published = json.published.map(|p| p.timestamp_millis()).unwrap_or(now);
    let url = match &json.url {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("href").and_then(|h| h.as_str()).map(str::to_string),
        Some(Value::Array(a)) => a
            .iter()
            .find_map(|v| v.as_str().or_else(|| v.get("href")?.as_str()))
            .map(str::to_string),
        _ => None,
    };
    let countries: Vec<String> = json
        .countries
        .iter()
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_uppercase()))
        .collect();
    let categories: Vec<String> = json
        .categories
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c.len() <= 64 && !c.contains(','))
        .collect();
    let values = AlertValues {
        ap_id: json.id.to_string(),
        actor_id,
        local: false,
        translation_of: None,
        language,
        title,
        content_html,
        source_markdown: None,
        summary: json.summary.clone().filter(|s| !s.is_empty()),
        sensitive: json.sensitive.unwrap_or(false),
        countries: join_list(&countries),
        region: json.region.clone().filter(|r| r.len() <= 64),
        categories: join_list(&categories),
        urgency: json
            .urgency
            .clone()
            .filter(|u| crate::alerts::URGENCIES.contains(&u.as_str()))
            .unwrap_or_else(|| "report".to_string()),
        incident_date: json
            .incident_date
            .clone()
            .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()),
        case_ap_id: json.case.as_ref().map(|c| c.to_string()),
        url,
        status: STATUS_PUBLISHED.to_string(),
        pinned: false,
        token_id: None,
        published_at: Some(published),
        updated_at: json
            .updated
            .map(|u| u.timestamp_millis())
            .unwrap_or(published),
        created_at: now,
        deleted_at: None,
        search_text: String::new(),
        quote_ap_id: None,
    }
    .with_search_text_of(&text);
    without_nul(values)
}

/// An alert row with its id parsed, as activitypub_federation wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DbAlert {
    /// The parsed `ap_id`.
    pub ap_id: Url,
    /// The stored row.
    pub row: AlertRow,
}

impl DbAlert {
    /// Wraps a row.
    pub fn new(row: AlertRow) -> Result<DbAlert, Error> {
        Ok(DbAlert {
            ap_id: Url::parse(&row.ap_id)?,
            row,
        })
    }
}

/// Checks that a received Note may be stored as coming from `actor`.
pub fn verify_note(json: &NoteJson, actor: &Url) -> Result<(), Error> {
    if !ALERT_OBJECT_TYPES.contains(&json.kind.as_str()) {
        return Err(Error::BadRequest(format!(
            "unsupported object type {}",
            json.kind
        )));
    }
    if json.author() != Some(actor) {
        return Err(Error::BadRequest(format!(
            "object {} is attributed to someone other than {actor}",
            json.id
        )));
    }
    if !same_origin(&json.id, actor) {
        return Err(Error::BadRequest(format!(
            "object id {} is not on its actor's host",
            json.id
        )));
    }
    Ok(())
}

/// The original of a remote alert that names its other language versions:
/// one of them, by the same author, stored here as an original and
/// published before it. (A translation comes after its original; the
/// original names its translations too, so the order decides.)
fn original_among(
    conn: &mut db::DbConn,
    alert: &AlertValues,
    versions: &[String],
) -> Result<Option<i64>, db::DbError> {
    for ap_id in versions {
        if let Some(other) = db::alerts::by_ap_id(conn, ap_id)? {
            let earlier = other.published_at.unwrap_or(other.created_at)
                <= alert.published_at.unwrap_or(alert.created_at);
            if other.actor_id == alert.actor_id
                && other.translation_of.is_none()
                && !other.local
                && earlier
                && other.ap_id != alert.ap_id
            {
                return Ok(Some(other.id));
            }
        }
    }
    Ok(None)
}

/// What [`store_remote`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// The object was new here.
    New(AlertRow),
    /// A newer version replaced our copy.
    Updated(AlertRow),
}

/// A remote Note made ready to store: its values (with the author's
/// database id), the ids of its language versions and its attachments.
#[derive(Debug, Clone)]
pub struct PreparedAlert {
    values: AlertValues,
    versions: Vec<String>,
    attachments: Vec<(String, Option<String>, Option<String>)>,
    /// Whether it may replace a stored copy that is older. A Note that
    /// says neither when it was published nor when it was updated is dated
    /// when it arrives: a copy of it (a retry of its Create, a boost) would
    /// always look newer, so only an Update edits with it.
    may_edit: bool,
}

impl PreparedAlert {
    /// The ActivityPub id of the alert (its object's id).
    pub fn ap_id(&self) -> &str {
        &self.values.ap_id
    }

    /// The same alert, written by the actor stored as `author_id`.
    pub fn by(mut self, author_id: i64) -> PreparedAlert {
        self.values.actor_id = author_id;
        self
    }

    /// Whether, new, this alert is its row alone: no attachments to write,
    /// no language versions to look up.
    pub fn is_plain(&self) -> bool {
        self.attachments.is_empty() && self.versions.is_empty()
    }

    /// The row [`store_prepared_after`] inserts when this alert is new and
    /// [plain](PreparedAlert::is_plain).
    pub fn into_plain_row(self) -> AlertValues {
        self.values
    }

    /// The same alert as an Update brings it when `update`: it replaces
    /// an older stored copy even when the Note is undated.
    pub fn with_update(mut self, update: bool) -> PreparedAlert {
        self.may_edit |= update;
        self
    }

    /// Prepares `json`, written by the actor stored as `author_id`.
    pub fn new(json: &NoteJson, author_id: i64) -> PreparedAlert {
        let attachments = json
            .attachment
            .iter()
            .filter_map(|a| {
                let url = a.get("url").and_then(|u| {
                    u.as_str()
                        .map(str::to_string)
                        .or_else(|| u.get("href")?.as_str().map(str::to_string))
                })?;
                let parsed = Url::parse(&url).ok()?;
                matches!(parsed.scheme(), "http" | "https").then(|| {
                    (
                        nul_free(url),
                        a.get("mediaType")
                            .and_then(|m| m.as_str())
                            .map(|m| nul_free(m.to_string())),
                        a.get("name")
                            .and_then(|m| m.as_str())
                            .map(|s| nul_free(s.chars().take(1500).collect())),
                    )
                })
            })
            .take(16)
            .collect();
        PreparedAlert {
            values: values_from_note(json, author_id),
            versions: json.translations.iter().map(|u| u.to_string()).collect(),
            attachments,
            may_edit: json.published.is_some() || json.updated.is_some(),
        }
    }
}

/// Stores a prepared remote Note as an alert, or updates the stored copy
/// when the new one is newer (and dated, or from an Update: see
/// [`PreparedAlert::with_update`]). Call it inside a transaction: it writes
/// several rows. Returns `None` when nothing was written (older update, a
/// copy, or deleted earlier). Whether it was new does not depend on the
/// activity: after an outage an Update may arrive before its Create.
pub fn store_prepared(
    conn: &mut db::DbConn,
    prepared: PreparedAlert,
) -> Result<Option<Stored>, db::DbError> {
    let ap_id = prepared.values.ap_id.as_str();
    let prior = match db::alerts::is_tombstoned(conn, ap_id)? {
        true => Prior::Tombstoned,
        false => Prior::Stored(db::alerts::by_ap_id(conn, ap_id)?),
    };
    store_prepared_after(conn, prepared, prior)
}

/// What the database held of an alert before it is stored.
// Made and moved once per alert stored; a box would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Prior {
    /// A Delete of it arrived earlier.
    Tombstoned,
    /// Its stored copy, if any.
    Stored(Option<db::alerts::AlertRow>),
}

/// [`store_prepared`] when what the database holds of the alert was read
/// before, in the same transaction, with nothing written to it since (the
/// inbox's writer reads a whole group's at once).
pub fn store_prepared_after(
    conn: &mut db::DbConn,
    prepared: PreparedAlert,
    prior: Prior,
) -> Result<Option<Stored>, db::DbError> {
    let PreparedAlert {
        values,
        versions,
        attachments,
        may_edit,
    } = prepared;
    let Prior::Stored(stored) = prior else {
        return Ok(None);
    };
    let row = match stored {
        Some(existing) if existing.local => return Ok(None),
        Some(existing) if existing.status == STATUS_DELETED => return Ok(None),
        Some(existing) if !may_edit || existing.updated_at >= values.updated_at => return Ok(None),
        Some(existing) => {
            let mut v = values;
            v.created_at = existing.created_at;
            v.published_at = existing.published_at.or(v.published_at);
            let row = db::alerts::update(conn, existing.id, &v)?;
            db::alerts::set_attachments(conn, row.id, &attachments)?;
            Stored::Updated(row)
        }
        None => {
            let mut v = values;
            v.translation_of = original_among(conn, &v, &versions)?;
            let row = db::alerts::insert(conn, v)?;
            // A new alert has no attachments to replace.
            if !attachments.is_empty() {
                db::alerts::set_attachments(conn, row.id, &attachments)?;
            }
            Stored::New(row)
        }
    };
    Ok(Some(row))
}

/// A remote Note's author (fetched first if we do not know them) and its
/// alert prepared for [`store_prepared`].
pub async fn prepare_remote(
    data: &Data,
    json: &NoteJson,
) -> Result<(DbActor, PreparedAlert), Error> {
    let author: ObjectId<DbActor> = json
        .author()
        .cloned()
        .ok_or_else(|| Error::BadRequest("object has no attributedTo".into()))?
        .into();
    let actor = author.dereference(data).await?;
    let prepared = PreparedAlert::new(json, actor.id);
    Ok((actor, prepared))
}

/// Stores a remote Note (see [`store_prepared`]), fetching its author
/// first if we do not know them.
pub async fn store_remote(data: &Data, json: NoteJson) -> Result<Option<Stored>, Error> {
    let (_, prepared) = prepare_remote(data, &json).await?;
    data.db
        .run(move |conn| db::transaction(conn, |conn| store_prepared(conn, prepared)))
        .await
        .map_err(Error::from)
}

#[async_trait]
impl Object for DbAlert {
    type DataType = AppState;
    type Kind = NoteJson;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.ap_id
    }

    async fn read_from_id(object_id: Url, data: &Data) -> Result<Option<Self>, Error> {
        let row = data
            .db
            .run(move |conn| db::alerts::by_ap_id(conn, object_id.as_str()))
            .await?;
        row.map(DbAlert::new).transpose()
    }

    fn is_deleted(&self) -> bool {
        self.row.status == STATUS_DELETED
    }

    async fn into_json(self, data: &Data) -> Result<NoteJson, Error> {
        let note = local_note(data, &self.row).await?;
        Ok(serde_json::from_value(note)?)
    }

    async fn verify(json: &NoteJson, expected_domain: &Url, _data: &Data) -> Result<(), Error> {
        let author = json
            .author()
            .ok_or_else(|| Error::BadRequest("object has no attributedTo".into()))?;
        if !same_origin(&json.id, expected_domain) {
            return Err(Error::BadRequest(format!(
                "object {} was served from another host",
                json.id
            )));
        }
        verify_note(json, author)
    }

    async fn from_json(json: NoteJson, data: &Data) -> Result<Self, Error> {
        let id = json.id.to_string();
        store_remote(data, json).await?;
        let row = data
            .db
            .run(move |conn| db::alerts::by_ap_id(conn, &id))
            .await?
            .ok_or(Error::NotFound)?;
        DbAlert::new(row)
    }
}

/// The Note of a local alert, loading its author, versions and attachments.
pub async fn local_note(data: &Data, alert: &AlertRow) -> Result<Value, Error> {
    let alert = alert.clone();
    let urls = Urls::new(&data.config);
    data.db
        .run(move |conn| Ok(note_on(conn, &urls, &alert)))
        .await?
}

/// [`local_note`] on a connection (inside a transaction that has just
/// stored the alert, say).
pub fn note_on(conn: &mut DbConn, urls: &Urls, alert: &AlertRow) -> Result<Value, Error> {
    let actor = DbActor::new(db::actors::by_id(conn, alert.actor_id)?)?;
    let versions = db::alerts::versions(conn, alert.group_id())?;
    let attachments = db::alerts::attachments(conn, alert.id)?;
    let campaigns = db::campaigns::alert_campaigns(conn, alert.group_id())?;
    let other_versions = versions
        .iter()
        .filter(|v| v.id != alert.id && v.status != STATUS_DELETED)
        .map(|v| v.ap_id.clone())
        .collect();
    let parts = NoteParts {
        alert,
        actor: &actor,
        other_versions,
        attachments: &attachments,
        campaigns: campaigns.into_iter().map(|(id, _)| id).collect(),
    };
    Ok(build_note(&parts, urls))
}

#[cfg(test)]
mod tests {
    use super::*;
    use activitypub_federation::protocol::helpers::deserialize_one_or_many;

    #[derive(Deserialize)]
    struct Ours(#[serde(deserialize_with = "urls_one_or_many")] Vec<Url>);

    #[derive(Deserialize)]
    struct Theirs(#[serde(deserialize_with = "deserialize_one_or_many")] Vec<Url>);

    /// Our reading of `to`, `cc`, `audience` and `attributedTo` agrees
    /// with activitypub_federation's, which it replaces, on what that one
    /// accepts and on what it refuses.
    #[test]
    fn urls_one_or_many_reads_as_activitypub_federation_did() {
        let many: Vec<String> = (0..20)
            .map(|i| format!("\"https://ngo.example/u/{}\"", i % 7))
            .collect();
        let accepted = [
            r#""https://ngo.example/actors/alerts""#.to_string(),
            r#"["https://ngo.example/a", "https://ngo.example/b", "https://ngo.example/a"]"#
                .to_string(),
            r#"["Public", "as:Public", "https://www.w3.org/ns/activitystreams#Public"]"#
                .to_string(),
            r#""as:Public""#.to_string(),
            "[]".to_string(),
            format!("[{}]", many.join(",")),
        ];
        for text in &accepted {
            let ours: Ours = serde_json::from_str(text).unwrap();
            let theirs: Theirs = serde_json::from_str(text).unwrap();
            assert_eq!(ours.0, theirs.0, "{text}");
        }
        let twenty: Ours = serde_json::from_str(&format!("[{}]", many.join(","))).unwrap();
        let order: Vec<&str> = twenty.0.iter().map(Url::path).collect();
        assert_eq!(
            order,
            ["/u/0", "/u/1", "/u/2", "/u/3", "/u/4", "/u/5", "/u/6"]
        );
        for text in [
            "null",
            "3",
            r#""not a url""#,
            r#"{"id": "https://ngo.example/a"}"#,
            r#"["https://ngo.example/a", 3]"#,
        ] {
            assert!(serde_json::from_str::<Ours>(text).is_err(), "{text}");
            assert!(serde_json::from_str::<Theirs>(text).is_err(), "{text}");
        }
    }
}
