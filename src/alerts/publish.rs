//! Writing alerts and telling the fediverse: create, translate, edit,
//! delete, pin. Each change is stored in one transaction with the matching
//! activity queued for every follower's server, so a crash cannot leave a
//! change that followers are never told about.

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
        now_ms, DbConn, DbError,
    },
    delivery,
    error::Error,
    federation::{
        activities::{create, delete, update},
        objects::{actor::DbActor, alert::note_on},
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

/// Which activity tells followers about a local alert.
#[derive(Debug, Clone, Copy)]
enum Announcement {
    Create,
    Update,
}

/// Queues, on `conn` (so inside the caller's transaction, with the change
/// it announces), the Create or Update of the local alert `row` for
/// `inboxes` (its [`audience`]). Returns the campaigns the Note names: a
/// campaign of this instance boosts it after the commit
/// (`campaigns::on_incoming`).
fn announce_in(
    conn: &mut DbConn,
    urls: &Urls,
    actor: &DbActor,
    row: &AlertRow,
    kind: Announcement,
    inboxes: &[String],
) -> Result<Vec<String>, Error> {
    let note = note_on(conn, urls, row)?;
    let named = campaign_ids(&note);
    let activity = match kind {
        Announcement::Create => create::build(urls, actor, note),
        Announcement::Update => update::build(urls, actor, note),
    };
    if !inboxes.is_empty() {
        delivery::enqueue_in(conn, &actor.row, activity, inboxes)?;
    }
    Ok(named)
}

/// Who hears about the alert group `group` of `actor`: its followers'
/// inboxes and those of the remote campaigns the group names.
fn audience(
    conn: &mut DbConn,
    urls: &Urls,
    actor: &DbActor,
    group: i64,
) -> Result<Vec<String>, DbError> {
    let own_inbox = urls.shared_inbox().to_string();
    let mut inboxes = db::follows::follower_inboxes(conn, actor.id)?;
    for (_, inbox) in db::campaigns::alert_campaigns(conn, group)? {
        if inbox != own_inbox && !inboxes.contains(&inbox) {
            inboxes.push(inbox);
        }
    }
    Ok(inboxes)
}

/// Queues, on `conn`, the Create of the local alert `row` (published in
/// the caller's transaction) for `actor`'s followers; returns the
/// campaigns its Note names, for [`after_commit`].
pub(crate) fn create_in(
    conn: &mut DbConn,
    urls: &Urls,
    actor: &DbActor,
    row: &AlertRow,
) -> Result<Vec<String>, Error> {
    let inboxes = audience(conn, urls, actor, row.group_id())?;
    announce_in(conn, urls, actor, row, Announcement::Create, &inboxes)
}

/// After a commit that queued activities: wakes the delivery worker and
/// lets this instance's campaigns boost the alerts of `announced`, each
/// with the campaigns its Note names.
pub(crate) async fn after_commit(
    data: &Data,
    announced: Vec<(AlertRow, Vec<String>)>,
) -> Result<(), Error> {
    delivery::wake(data);
    for (row, named) in announced {
        crate::campaigns::on_incoming(data, &row, named).await?;
    }
    Ok(())
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
/// House's curated version of a member's alert. The alert and its Create
/// for every follower are stored in one transaction.
pub async fn create_quoting(
    data: &Data,
    actor: &DbActor,
    input: AlertInput,
    token_id: Option<i64>,
    quote: Option<String>,
) -> Result<AlertRow, Error> {
    let campaigns = crate::campaigns::resolve_named(data, &input.campaigns).await?;
    let valid = validate(input, &taxonomy(data)?, &data.config.alerts)?;
    let urls = Urls::new(&data.config);
    let mut values = values_for(&urls, actor, &valid, None, None, token_id);
    values.quote_ap_id = quote;
    let attachments = attachment_rows(&valid.attachments);
    let actor = actor.clone();
    let (row, announced) = data
        .db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                let row = db::alerts::insert(conn, values)?;
                db::alerts::set_attachments(conn, row.id, &attachments)?;
                db::campaigns::set_alert_campaigns(conn, row.id, &campaigns)?;
                let mut announced = Vec::new();
                if row.status == STATUS_PUBLISHED {
                    let named = create_in(conn, &urls, &actor, &row)?;
                    announced.push((row.clone(), named));
                }
                Ok::<_, Error>((row, announced))
            }))
        })
        .await??;
    after_commit(data, announced).await?;
    Ok(row)
}

/// Adds a language version to the alert `original`. The version, its
/// Create and the Updates of the other versions (which now link to it)
/// are stored in one transaction.
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
    let urls = Urls::new(&data.config);
    let values = values_for(
        &urls,
        actor,
        &valid,
        None,
        Some(original.id),
        original.token_id,
    );
    let attachment_rows = attachment_rows(&valid.attachments);
    let language = valid.language.clone();
    let actor = actor.clone();
    let stored = data
        .db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                // Checked again where the version is stored: of two
                // translations into one language at once, the second finds
                // the first.
                db::alerts::lock_group(conn, group)?;
                let versions = db::alerts::versions(conn, group)?;
                if has_live_version(&versions, &values.language) {
                    return Ok(None);
                }
                let row = db::alerts::insert(conn, values)?;
                db::alerts::set_attachments(conn, row.id, &attachment_rows)?;
                let mut announced = Vec::new();
                if row.status == STATUS_PUBLISHED {
                    let inboxes = audience(conn, &urls, &actor, group)?;
                    let create = Announcement::Create;
                    let named = announce_in(conn, &urls, &actor, &row, create, &inboxes)?;
                    announced.push((row.clone(), named));
                    for v in versions.iter().filter(|v| v.status == STATUS_PUBLISHED) {
                        let fresh = touch(conn, v.id)?;
                        let update = Announcement::Update;
                        let named = announce_in(conn, &urls, &actor, &fresh, update, &inboxes)?;
                        announced.push((fresh, named));
                    }
                }
                Ok::<_, Error>(Some((row, announced)))
            }))
        })
        .await??;
    let Some((row, announced)) = stored else {
        return Err(language_taken(&language));
    };
    after_commit(data, announced).await?;
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

/// Moves the alert `id`'s `updated_at` to now; returns the row.
fn touch(conn: &mut DbConn, id: i64) -> Result<AlertRow, DbError> {
    use crate::db::schema::alerts;
    use diesel::prelude::*;
    diesel::update(alerts::table.find(id))
        .set(alerts::updated_at.eq(now_ms()))
        .execute(conn)?;
    db::alerts::by_id(conn, id)
}

/// Edits an alert. A published alert sends `Update`; a draft that becomes
/// published sends `Create`; a published alert cannot go back to draft.
/// The edit and its activity are stored in one transaction.
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
    let urls = Urls::new(&data.config);
    let mut values = values_for(
        &urls,
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
    let actor = actor.clone();
    let (updated, announced) = data
        .db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                let row = db::alerts::update(conn, id, &values)?;
                db::alerts::set_attachments(conn, id, &attachments)?;
                if let Some(c) = &campaigns {
                    db::campaigns::set_alert_campaigns(conn, id, c)?;
                }
                let kind = match (was_published, row.status == STATUS_PUBLISHED) {
                    (true, _) => Some(Announcement::Update),
                    (false, true) => Some(Announcement::Create),
                    (false, false) => None,
                };
                let mut announced = Vec::new();
                if let Some(kind) = kind {
                    let inboxes = audience(conn, &urls, &actor, row.group_id())?;
                    let named = announce_in(conn, &urls, &actor, &row, kind, &inboxes)?;
                    announced.push((row.clone(), named));
                }
                Ok::<_, Error>((row, announced))
            }))
        })
        .await??;
    after_commit(data, announced).await?;
    Ok(updated)
}

/// Deletes an alert (and, for an original, all its language versions);
/// followers get a `Delete` with a Tombstone for each published one, queued
/// in the transaction that marks the versions deleted.
pub async fn delete_alert(data: &Data, actor: &DbActor, row: &AlertRow) -> Result<(), Error> {
    let (id, group, is_original) = (row.id, row.group_id(), row.translation_of.is_none());
    let urls = Urls::new(&data.config);
    let actor = actor.clone();
    data.db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                let targets: Vec<AlertRow> = if is_original {
                    db::alerts::versions(conn, group)?
                } else {
                    vec![db::alerts::by_id(conn, id)?]
                };
                let inboxes = audience(conn, &urls, &actor, group)?;
                for t in targets.iter().filter(|t| t.status != STATUS_DELETED) {
                    db::alerts::mark_deleted(conn, t.id)?;
                    if t.status == STATUS_PUBLISHED && !inboxes.is_empty() {
                        let activity = delete::build(&urls, &actor, &t.ap_id);
                        delivery::enqueue_in(conn, &actor.row, activity, &inboxes)?;
                    }
                }
                Ok::<_, Error>(())
            }))
        })
        .await??;
    after_commit(data, Vec::new()).await
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
