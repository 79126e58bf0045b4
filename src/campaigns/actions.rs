//! Calls to action of a campaign: what participants and followers are
//! asked to do, with a date when there is one. Each goes to the
//! campaign's followers in a `Create`: an `Event` (`startTime`, and
//! `endTime` when given) if it has a date, else a `Note`. Its id is
//! `<campaign>/actions/<n>` and dereferences.

use super::{invalid, Campaign};
use crate::{
    alerts::markdown,
    db::{self, campaigns::ActionRow},
    delivery,
    error::Error,
    federation::{activities::create, objects::actor::DbActor, Urls},
    state::Data,
};
use activitypub_federation::kinds::public;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// A call to action as staff write it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    /// What to do, in a line.
    pub title: String,
    /// Markdown details.
    #[serde(default)]
    pub body: String,
    /// When it starts (RFC 3339); makes it an `Event`.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// When it ends (RFC 3339), after `starts_at`.
    #[serde(default)]
    pub ends_at: Option<String>,
}

fn instant(field: &str, value: &Option<String>) -> Result<Option<i64>, Error> {
    value
        .as_deref()
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|d| d.timestamp_millis())
                .map_err(|_| invalid(field, "must be an RFC 3339 date and time"))
        })
        .transpose()
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The id of call to action `id` of the campaign actor `username`.
pub fn action_id(urls: &Urls, username: &str, id: i64) -> String {
    format!("{}/actions/{id}", urls.actor(username))
}

/// The object of a call to action (without `@context`): an `Event` when it
/// has a start, else a `Note`.
pub fn build_object(urls: &Urls, campaign: &str, row: &ActionRow) -> Value {
    let content = format!(
        "<p><strong>{}</strong></p>{}",
        markdown::escape(&row.title),
        row.content_html
    );
    let mut object = json!({
        "id": action_id(urls, campaign, row.id),
        "type": if row.starts_at.is_some() { "Event" } else { "Note" },
        "attributedTo": urls.actor(campaign),
        "name": row.title,
        "content": content,
        "url": urls.profile_page(campaign),
        "published": rfc3339(row.created_at),
        "to": [public()],
        "cc": [urls.actor_part(campaign, "followers")],
    });
    if let Some(start) = row.starts_at {
        object["startTime"] = json!(rfc3339(start));
    }
    if let Some(end) = row.ends_at {
        object["endTime"] = json!(rfc3339(end));
    }
    object
}

/// Stores a call to action and sends it to the campaign's followers.
pub async fn create(
    data: &Data,
    campaign: &Campaign,
    input: ActionInput,
) -> Result<ActionRow, Error> {
    let title = input.title.trim().to_string();
    if title.is_empty() || title.len() > 300 {
        return Err(invalid("title", "must be 1 to 300 characters"));
    }
    if input.body.len() > 100_000 {
        return Err(invalid("body", "must be at most 100,000 bytes"));
    }
    let starts_at = instant("starts_at", &input.starts_at)?;
    let ends_at = instant("ends_at", &input.ends_at)?;
    match (starts_at, ends_at) {
        (None, Some(_)) => return Err(invalid("ends_at", "needs starts_at")),
        (Some(s), Some(e)) if e < s => return Err(invalid("ends_at", "is before starts_at")),
        _ => {}
    }
    let html = markdown::render(&input.body);
    let (campaign_id, body) = (campaign.row.id, input.body);
    let actor = DbActor::new(campaign.actor.clone())?;
    let urls = Urls::new(&data.config);
    // The call to action and its Create are stored together.
    let row = data
        .db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                let row = db::campaigns::insert_action(
                    conn,
                    campaign_id,
                    &title,
                    &body,
                    &html,
                    starts_at,
                    ends_at,
                )?;
                let object = build_object(&urls, &actor.username, &row);
                let mut activity = create::build(&urls, &actor, object);
                activity["@context"] = json!("https://www.w3.org/ns/activitystreams");
                let inboxes = db::follows::follower_inboxes(conn, actor.id)?;
                if !inboxes.is_empty() {
                    delivery::enqueue_in(conn, &actor.row, activity, &inboxes)?;
                }
                Ok::<_, Error>(row)
            }))
        })
        .await??;
    delivery::wake(data);
    Ok(row)
}

/// A campaign's calls to action, newest first.
pub async fn list(data: &Data, campaign: &Campaign) -> Result<Vec<ActionRow>, Error> {
    let id = campaign.row.id;
    Ok(data
        .db
        .run(move |conn| db::campaigns::actions(conn, id))
        .await?)
}

/// The object of call to action `id` of campaign `username`, with its
/// `@context`.
pub async fn object(data: &Data, username: &str, id: i64) -> Result<Value, Error> {
    let campaign = super::by_username(data, username).await?;
    let campaign_id = campaign.row.id;
    let row = data
        .db
        .run(move |conn| db::campaigns::action(conn, campaign_id, id))
        .await?
        .ok_or(Error::NotFound)?;
    let mut object = build_object(&Urls::new(&data.config), &campaign.actor.username, &row);
    object["@context"] = json!("https://www.w3.org/ns/activitystreams");
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(starts_at: Option<i64>, ends_at: Option<i64>) -> ActionRow {
        ActionRow {
            id: 3,
            campaign_id: 1,
            title: "Write to the prosecutor".into(),
            body: String::new(),
            content_html: "<p>Ask for the case to be reopened.</p>".into(),
            starts_at,
            ends_at,
            created_at: 0,
        }
    }

    fn urls() -> Urls {
        let mut config = crate::config::Config::default();
        config.instance.domain = "ch.example".into();
        Urls::new(&config)
    }

    #[test]
    fn a_dated_call_to_action_is_an_event() {
        let o = build_object(
            &urls(),
            "impunity",
            &row(Some(1_767_225_600_000), Some(1_767_229_200_000)),
        );
        assert_eq!(o["type"], "Event");
        assert_eq!(o["id"], "https://ch.example/actors/impunity/actions/3");
        assert_eq!(o["attributedTo"], "https://ch.example/actors/impunity");
        assert_eq!(o["startTime"], "2026-01-01T00:00:00Z");
        assert_eq!(o["endTime"], "2026-01-01T01:00:00Z");
        assert_eq!(o["cc"][0], "https://ch.example/actors/impunity/followers");
    }

    #[test]
    fn an_undated_call_to_action_is_a_note() {
        let o = build_object(&urls(), "impunity", &row(None, None));
        assert_eq!(o["type"], "Note");
        assert!(o.get("startTime").is_none());
        assert!(o["content"]
            .as_str()
            .unwrap()
            .contains("Write to the prosecutor"));
    }
}
