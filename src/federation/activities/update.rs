//! `Update` of an alert: sent on every edit (with `updated`, which Mastodon
//! requires); received edits replace our copy only when newer.

use super::create::to_store;
use crate::{
    curation::Curating,
    error::Error,
    federation::{
        inbox_batch,
        objects::{
            actor::DbActor,
            alert::{note_context, verify_note, NoteJson, Stored},
        },
        same_origin, Urls,
    },
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::object_id::ObjectId, kinds::activity::UpdateType, traits::Activity,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;

/// Builds the Update of `note` by `actor`.
pub fn build(urls: &Urls, actor: &DbActor, note: Value) -> Value {
    json!({
        "@context": note_context(urls),
        "id": urls.new_activity("update"),
        "type": "Update",
        "actor": actor.ap_id,
        "published": note["updated"],
        "to": note["to"],
        "cc": note["cc"],
        "object": note,
    })
}

/// An `Update` whose object is a Note, Article or Page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateNote {
    /// Activity id.
    pub id: Url,
    /// Always `Update`.
    #[serde(rename = "type")]
    pub kind: UpdateType,
    /// The author.
    pub actor: ObjectId<DbActor>,
    /// The new version of the object.
    pub object: NoteJson,
    /// The body as received, to forward unchanged.
    #[serde(skip)]
    pub raw: Option<String>,
}

#[async_trait]
impl Activity for UpdateNote {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, _data: &Data) -> Result<(), Error> {
        verify_note(&self.object, self.actor.inner())?;
        if !same_origin(&self.id, self.actor.inner()) {
            return Err(Error::BadRequest(
                "activity id is not on its actor's host".into(),
            ));
        }
        Ok(())
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        let named = crate::campaigns::named_in(&self.object);
        if !to_store(data, &self.actor, &named, Some(&self.object.id)).await? {
            return Ok(());
        }
        // The stored copy is kept when it is as new or newer.
        let raw = self.raw.clone();
        inbox_batch::store_and_follow_up(data, self.object, named, Some(raw)).await
    }
}

/// What follows storing an alert from an Update (`raw`: the activity as
/// received): a first copy is curated as new (with what `curating` read);
/// an edit goes to the feeds that boosted it. Either may name a campaign
/// the first version did not.
pub async fn after_store(
    data: &Data,
    curating: &Curating,
    stored: Stored,
    named: Vec<String>,
    raw: Option<&str>,
) -> Result<(), Error> {
    match &stored {
        Stored::New(row) => curating.on_incoming(data, row).await?,
        Stored::Updated(row) => {
            if let Some(raw) = raw {
                crate::curation::on_edited(data, row, raw).await?;
            }
        }
    }
    let (Stored::New(row) | Stored::Updated(row)) = stored;
    if !curating.joined_any(row.actor_id, &named) {
        return Ok(());
    }
    crate::campaigns::on_incoming(data, &row, named).await
}
