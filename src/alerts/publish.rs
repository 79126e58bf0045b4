//! Writing alerts and telling the fediverse: create, translate, edit,
//! delete, pin. Each change is stored first, then the matching activity is
//! queued for every follower's server.

use super::{
    input::{validate, AlertInput, AlertPatch, AttachmentInput, FieldError, ValidAlert},
    markdown,
    taxonomy::Taxonomy,
    STATUS_DELETED, STATUS_DRAFT, STATUS_PUBLISHED,
};
use crate::{
    db::{
        self,
        alerts::{join_list, split_list, AlertRow, AlertValues},
        now_ms,
    },
    delivery,
    error::Error,
    federation::{
        activities::{create, delete, update},
        objects::{actor::DbActor, alert::local_note},
        Urls,
    },
    state::Data,
};

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Error::Validation {
            field: e.field,
            message: e.message,
        }
    }
}

fn taxonomy(data: &Data) -> Result<Taxonomy, Error> {
    Taxonomy::load(&data.config.alerts.taxonomy_file).map_err(Error::Internal)
}

/// A translation: the language-specific fields of an alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TranslationInput {
    /// BCP 47 tag, different from the other versions'.
    pub language: String,
    /// Headline in that language.
    pub title: String,
    /// Markdown body in that language.
    pub body: String,
    /// Content warning in that language.
    #[serde(default)]
    pub content_warning: Option<String>,
}

pub(crate) fn values_for(
    urls: &Urls,
    actor: &DbActor,
    v: &ValidAlert,
    ap_id: Option<String>,
    translation_of: Option<i64>,
    token_id: Option<i64>,
) -> AlertValues {
    let now = now_ms();
    let ap_id = ap_id.unwrap_or_else(|| format!("{}/alerts/{}", urls.base(), uuid::Uuid::new_v4()));
    AlertValues {
        url: Some(ap_id.clone()),
        ap_id,
        actor_id: actor.id,
        local: true,
        translation_of,
        language: v.language.clone(),
        title: v.title.clone(),
        content_html: markdown::render(&v.body),
        source_markdown: Some(v.body.clone()),
        summary: v.content_warning.clone(),
        sensitive: v.content_warning.is_some(),
        countries: join_list(&v.countries),
        region: v.region.clone(),
        categories: join_list(&v.categories),
        urgency: v.urgency.clone(),
        incident_date: v.incident_date.clone(),
        case_ap_id: v.case.clone(),
        status: v.status.clone(),
        pinned: false,
        token_id,
        published_at: (v.status == STATUS_PUBLISHED).then_some(now),
        updated_at: now,
        created_at: now,
        deleted_at: None,
        search_text: String::new(),
        quote_ap_id: None,
    }
    .with_search_text()
}

fn attachment_rows(items: &[AttachmentInput]) -> Vec<(String, Option<String>, Option<String>)> {
    items
        .iter()
        .map(|a| (a.url.clone(), a.media_type.clone(), a.description.clone()))
        .collect()
}

/// The input that would produce `row` (to apply a PATCH to).
pub fn input_of(row: &AlertRow, attachments: Vec<AttachmentInput>) -> AlertInput {
    AlertInput {
        title: row.title.clone(),
        body: row.source_markdown.clone().unwrap_or_default(),
        language: row.language.clone(),
        countries: split_list(&row.countries),
        categories: split_list(&row.categories),
        urgency: row.urgency.clone(),
        incident_date: row.incident_date.clone(),
        case: row.case_ap_id.clone(),
        content_warning: row.summary.clone(),
        attachments,
        status: Some(row.status.clone()),
        campaigns: Vec::new(),
    }
}

/// Sends `activity` to `actor`'s followers and to the inboxes of the remote
/// campaigns the alert group `group` names.
async fn fan_out(
    data: &Data,
    actor: &DbActor,
    group: i64,
    activity: serde_json::Value,
) -> Result<(), Error> {
    let actor_id = actor.id;
    let own_inbox = Urls::new(&data.config).shared_inbox().to_string();
    let inboxes = data
        .db
        .run(move |conn| {
            let mut inboxes = db::follows::follower_inboxes(conn, actor_id)?;
            for (_, inbox) in db::campaigns::alert_campaigns(conn, group)? {
                if inbox != own_inbox && !inboxes.contains(&inbox) {
                    inboxes.push(inbox);
                }
            }
            Ok(inboxes)
        })
        .await?;
    if inboxes.is_empty() {
        return Ok(());
    }
    delivery::send_json(data, actor, activity, inboxes).await?;
    Ok(())
}

pub(crate) async fn announce_create(
    data: &Data,
    actor: &DbActor,
    row: &AlertRow,
) -> Result<(), Error> {
    let note = local_note(data, row).await?;
    let named = campaign_ids(&note);
    fan_out(
        data,
        actor,
        row.group_id(),
        create::build(&Urls::new(&data.config), actor, note),
    )
    .await?;
    crate::campaigns::on_incoming(data, row, named).await
}

async fn announce_update(data: &Data, actor: &DbActor, row: &AlertRow) -> Result<(), Error> {
    let note = local_note(data, row).await?;
    let named = campaign_ids(&note);
    fan_out(
        data,
        actor,
        row.group_id(),
        update::build(&Urls::new(&data.config), actor, note),
    )
    .await?;
    crate::campaigns::on_incoming(data, row, named).await
}

/// The campaigns a Note we built names (for campaigns of this instance).
fn campaign_ids(note: &serde_json::Value) -> Vec<String> {
    note["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == "Mention")
        .filter_map(|t| t["href"].as_str().map(str::to_string))
        .collect()
}

/// Creates an alert by `actor`; publishes it unless it is a draft.
pub async fn create_alert(
    data: &Data,
    actor: &DbActor,
    input: AlertInput,
    token_id: Option<i64>,
) -> Result<AlertRow, Error> {
    create_quoting(data, actor, input, token_id, None).await
}

/// Creates an alert that quotes another (`quote`, FEP-044f): a Clearing
/// House's curated version of a member's alert.
pub async fn create_quoting(
    data: &Data,
    actor: &DbActor,
    input: AlertInput,
    token_id: Option<i64>,
    quote: Option<String>,
) -> Result<AlertRow, Error> {
    let campaigns = crate::campaigns::resolve_named(data, &input.campaigns).await?;
    let valid = validate(input, &taxonomy(data)?, &data.config.alerts)?;
    let mut values = values_for(
        &Urls::new(&data.config),
        actor,
        &valid,
        None,
        None,
        token_id,
    );
    values.quote_ap_id = quote;
    let attachments = attachment_rows(&valid.attachments);
    let row = data
        .db
        .run(move |conn| {
            db::transaction(conn, |conn| {
                let row = db::alerts::insert(conn, &values)?;
                db::alerts::set_attachments(conn, row.id, &attachments)?;
                db::campaigns::set_alert_campaigns(conn, row.id, &campaigns)?;
                Ok(row)
            })
        })
        .await?;
    if row.status == STATUS_PUBLISHED {
        announce_create(data, actor, &row).await?;
    }
    Ok(row)
}

/// Adds a language version to the alert `original`.
pub async fn add_translation(
    data: &Data,
    actor: &DbActor,
    original: &AlertRow,
    t: TranslationInput,
) -> Result<AlertRow, Error> {
    if original.translation_of.is_some() {
        return Err(Error::Validation {
            field: "id".into(),
            message: "translations are added to the original alert".into(),
        });
    }
    let group = original.id;
    let versions = data
        .db
        .run(move |conn| db::alerts::versions(conn, group))
        .await?;
    if has_live_version(&versions, &t.language) {
        return Err(language_taken(&t.language));
    }
    let attachments = data
        .db
        .run({
            let id = original.id;
            move |conn| db::alerts::attachments(conn, id)
        })
        .await?
        .into_iter()
        .map(|a| AttachmentInput {
            url: a.url,
            media_type: a.media_type,
            description: a.description,
        })
        .collect();
    let mut input = input_of(original, attachments);
    input.language = t.language;
    input.title = t.title;
    input.body = t.body;
    input.content_warning = t.content_warning;
    let valid = validate(input, &taxonomy(data)?, &data.config.alerts)?;
    let values = values_for(
        &Urls::new(&data.config),
        actor,
        &valid,
        None,
        Some(original.id),
        original.token_id,
    );
    let attachment_rows = attachment_rows(&valid.attachments);
    // Checked again where the version is stored: of two translations into
    // one language at once, the second finds the first.
    let language = valid.language.clone();
    let stored = data
        .db
        .run(move |conn| {
            db::transaction(conn, |conn| {
                db::alerts::lock_group(conn, group)?;
                let versions = db::alerts::versions(conn, group)?;
                if has_live_version(&versions, &values.language) {
                    return Ok(None);
                }
                let row = db::alerts::insert(conn, &values)?;
                db::alerts::set_attachments(conn, row.id, &attachment_rows)?;
                Ok(Some((row, versions)))
            })
        })
        .await?;
    let Some((row, versions)) = stored else {
        return Err(language_taken(&language));
    };
    if row.status == STATUS_PUBLISHED {
        announce_create(data, actor, &row).await?;
        // The other versions now link to this one: tell followers.
        for v in versions.iter().filter(|v| v.status == STATUS_PUBLISHED) {
            let fresh = touch(data, v.id).await?;
            announce_update(data, actor, &fresh).await?;
        }
    }
    Ok(row)
}

/// True if `versions` hold a version in `language` that is not deleted.
fn has_live_version(versions: &[AlertRow], language: &str) -> bool {
    versions
        .iter()
        .any(|v| v.language == language && v.status != STATUS_DELETED)
}

/// The error for a second version in `language`.
fn language_taken(language: &str) -> Error {
    Error::Validation {
        field: "language".into(),
        message: format!("the alert already has a {language} version"),
    }
}

async fn touch(data: &Data, id: i64) -> Result<AlertRow, Error> {
    Ok(data
        .db
        .run(move |conn| {
            use crate::db::schema::alerts;
            use diesel::prelude::*;
            diesel::update(alerts::table.find(id))
                .set(alerts::updated_at.eq(now_ms()))
                .execute(conn)?;
            db::alerts::by_id(conn, id)
        })
        .await?)
}

/// Edits an alert. A published alert sends `Update`; a draft that becomes
/// published sends `Create`; a published alert cannot go back to draft.
pub async fn update_alert(
    data: &Data,
    actor: &DbActor,
    row: &AlertRow,
    patch: AlertPatch,
) -> Result<AlertRow, Error> {
    if row.status == STATUS_DELETED {
        return Err(Error::NotFound);
    }
    if row.status == STATUS_PUBLISHED && patch.status.as_deref() == Some(STATUS_DRAFT) {
        return Err(Error::Validation {
            field: "status".into(),
            message: "a published alert cannot become a draft again; delete it instead".into(),
        });
    }
    let id = row.id;
    let attachments = data
        .db
        .run(move |conn| db::alerts::attachments(conn, id))
        .await?
        .into_iter()
        .map(|a| AttachmentInput {
            url: a.url,
            media_type: a.media_type,
            description: a.description,
        })
        .collect();
    if patch.campaigns.is_some() && row.translation_of.is_some() {
        return Err(Error::Validation {
            field: "campaigns".into(),
            message: "campaigns are named on the original alert".into(),
        });
    }
    let campaigns = match &patch.campaigns {
        Some(named) => Some(crate::campaigns::resolve_named(data, named).await?),
        None => None,
    };
    let input = input_of(row, attachments).apply(patch);
    let valid = validate(input, &taxonomy(data)?, &data.config.alerts)?;
    let mut values = values_for(
        &Urls::new(&data.config),
        actor,
        &valid,
        Some(row.ap_id.clone()),
        row.translation_of,
        row.token_id,
    );
    values.created_at = row.created_at;
    values.pinned = row.pinned;
    values.published_at = row.published_at.or(values.published_at);
    // `updated` must grow on every edit, or Mastodon ignores the Update.
    values.updated_at = values.updated_at.max(row.updated_at + 1);
    let attachments = attachment_rows(&valid.attachments);
    let was_published = row.status == STATUS_PUBLISHED;
    let updated = data
        .db
        .run(move |conn| {
            let row = db::alerts::update(conn, id, &values)?;
            db::alerts::set_attachments(conn, id, &attachments)?;
            if let Some(c) = &campaigns {
                db::campaigns::set_alert_campaigns(conn, id, c)?;
            }
            Ok(row)
        })
        .await?;
    match (was_published, updated.status == STATUS_PUBLISHED) {
        (true, _) => announce_update(data, actor, &updated).await?,
        (false, true) => announce_create(data, actor, &updated).await?,
        (false, false) => {}
    }
    Ok(updated)
}

/// Deletes an alert (and, for an original, all its language versions);
/// followers get a `Delete` with a Tombstone for each published one.
pub async fn delete_alert(data: &Data, actor: &DbActor, row: &AlertRow) -> Result<(), Error> {
    let (id, group, is_original) = (row.id, row.group_id(), row.translation_of.is_none());
    let deleted = data
        .db
        .run(move |conn| {
            let targets: Vec<AlertRow> = if is_original {
                db::alerts::versions(conn, group)?
            } else {
                vec![db::alerts::by_id(conn, id)?]
            };
            let mut published = Vec::new();
            for t in targets.iter().filter(|t| t.status != STATUS_DELETED) {
                if t.status == STATUS_PUBLISHED {
                    published.push(t.ap_id.clone());
                }
                db::alerts::mark_deleted(conn, t.id)?;
            }
            Ok(published)
        })
        .await?;
    let urls = Urls::new(&data.config);
    for ap_id in deleted {
        fan_out(data, actor, group, delete::build(&urls, actor, &ap_id)).await?;
    }
    Ok(())
}

/// Pins or unpins an alert in the actor's featured collection.
pub async fn set_pinned(data: &Data, row: &AlertRow, pinned: bool) -> Result<(), Error> {
    if row.status != STATUS_PUBLISHED {
        return Err(Error::Validation {
            field: "id".into(),
            message: "only published alerts can be pinned".into(),
        });
    }
    let id = row.id;
    data.db
        .run(move |conn| db::alerts::set_pinned(conn, id, pinned))
        .await?;
    Ok(())
}
