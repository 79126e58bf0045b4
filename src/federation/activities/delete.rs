//! `Delete` of an alert: we send it with a `Tombstone`; a received Delete
//! removes our copy, or is remembered if the object has not arrived yet.

use crate::{
    db,
    error::Error,
    federation::{objects::actor::DbActor, same_origin, Urls},
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::object_id::ObjectId,
    kinds::{activity::DeleteType, public},
    traits::Activity,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;

/// Builds the Delete of the object `object_id` by `actor`.
pub fn build(urls: &Urls, actor: &DbActor, object_id: &str) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": urls.new_activity("delete"),
        "type": "Delete",
        "actor": actor.ap_id,
        "to": [public()],
        "cc": [urls.actor_part(&actor.username, "followers")],
        "object": { "id": object_id, "type": "Tombstone" },
    })
}

/// The object of a Delete: an id, or an object (Tombstone, Note) with one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DeletedObject {
    /// Just the id.
    Id(Url),
    /// An object carrying the id.
    Object {
        /// The deleted object's id.
        id: Url,
    },
}

impl DeletedObject {
    /// The deleted object's id.
    pub fn id(&self) -> &Url {
        match self {
            DeletedObject::Id(id) | DeletedObject::Object { id } => id,
        }
    }
}

/// A `Delete` activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delete {
    /// Activity id.
    pub id: Url,
    /// Always `Delete`.
    #[serde(rename = "type")]
    pub kind: DeleteType,
    /// Who deletes.
    pub actor: ObjectId<DbActor>,
    /// What is deleted.
    pub object: DeletedObject,
    /// The body as received, to forward unchanged.
    #[serde(skip)]
    pub raw: Option<String>,
}

#[async_trait]
impl Activity for Delete {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, _data: &Data) -> Result<(), Error> {
        if !same_origin(self.object.id(), self.actor.inner()) {
            return Err(Error::BadRequest(
                "Delete of an object on another host".into(),
            ));
        }
        Ok(())
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        let object_id = self.object.id().to_string();
        let actor_id = self.actor.inner().to_string();
        if object_id == actor_id {
            // An account deletion; alerts stay in the archive until the
            // curation layer decides otherwise.
            return Ok(());
        }
        let deleted = data
            .db
            .run(move |conn| {
                let actor = db::actors::by_ap_id(conn, &actor_id)?;
                match db::alerts::by_ap_id(conn, &object_id)? {
                    Some(alert)
                        if !alert.local
                            && alert.status != crate::alerts::STATUS_DELETED
                            && Some(alert.actor_id) == actor.map(|a| a.id) =>
                    {
                        db::alerts::mark_deleted(conn, alert.id)?;
                        Ok(Some(alert))
                    }
                    Some(_) => Ok(None),
                    None => db::alerts::remember_tombstone(conn, &object_id).map(|()| None),
                }
            })
            .await?;
        if let (Some(alert), Some(raw)) = (deleted, self.raw) {
            crate::curation::on_deleted(data, &alert, &raw).await?;
        }
        Ok(())
    }
}
