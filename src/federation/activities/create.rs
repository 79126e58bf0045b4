//! `Create` of an alert: we send one per language version to our
//! followers; we store those of actors we follow.

use crate::{
    campaigns,
    curation::Curating,
    db,
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
    fetch::object_id::ObjectId, kinds::activity::CreateType, traits::Activity,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use url::Url;

/// Builds the Create of `note` (a Note built by `build_note`) by `actor`.
pub fn build(urls: &Urls, actor: &DbActor, note: Value) -> Value {
    json!({
        "@context": note_context(urls),
        "id": urls.new_activity("create"),
        "type": "Create",
        "actor": actor.ap_id,
        "published": note["published"],
        "to": note["to"],
        "cc": note["cc"],
        "object": note,
    })
}

/// A `Create` whose object is a Note, Article or Page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateNote {
    /// Activity id.
    pub id: Url,
    /// Always `Create`.
    #[serde(rename = "type")]
    pub kind: CreateType,
    /// The author.
    pub actor: ObjectId<DbActor>,
    /// The object.
    pub object: NoteJson,
}

/// True when we want `actor`'s objects: some local actor follows them, or
/// the object names one of our campaigns (`campaigns`, from
/// `campaigns::named_in`; empty when it names none) that the actor has
/// joined. One database round trip.
pub(super) async fn is_wanted(
    data: &Data,
    actor: &ObjectId<DbActor>,
    campaigns: &[String],
) -> Result<bool, Error> {
    to_store(data, actor, campaigns, None).await
}

/// [`is_wanted`], or for an Update of the object `update_of`, also true
/// when we hold a copy of it (it came by a boost, say). One database round
/// trip.
pub(super) async fn to_store(
    data: &Data,
    actor: &ObjectId<DbActor>,
    campaigns: &[String],
    update_of: Option<&Url>,
) -> Result<bool, Error> {
    let id = actor.inner().to_string();
    let campaigns = campaigns.to_vec();
    let update_of = update_of.map(Url::to_string);
    Ok(data
        .db
        .run(move |conn| {
            let actor = db::actors::by_ap_id(conn, &id)?;
            let followed = &mut HashMap::new();
            stores(
                conn,
                followed,
                actor.map(|a| a.id),
                &campaigns,
                update_of.as_deref(),
            )
        })
        .await?)
}

/// [`to_store`] on a connection, for the actor stored as `actor_id` (`None`:
/// an actor we do not know). The one rule for both inbox lanes. `followed`
/// remembers, by actor row id, whether a local actor follows them, for
/// many activities applied in one transaction.
pub fn stores(
    conn: &mut db::DbConn,
    followed: &mut HashMap<i64, bool>,
    actor_id: Option<i64>,
    campaigns: &[String],
    update_of: Option<&str>,
) -> Result<bool, db::DbError> {
    if let Some(actor_id) = actor_id {
        let is_followed = match followed.get(&actor_id) {
            Some(known) => *known,
            None => {
                let known = db::follows::is_followed_locally(conn, actor_id)?;
                followed.insert(actor_id, known);
                known
            }
        };
        if is_followed
            || (!campaigns.is_empty()
                && !db::campaigns::joined_among(conn, actor_id, campaigns)?.is_empty())
        {
            return Ok(true);
        }
    }
    match update_of {
        Some(object) => Ok(db::alerts::by_ap_id(conn, object)?.is_some()),
        None => Ok(false),
    }
}

/// What follows storing a new or changed alert from a Create: the feeds'
/// curation (with what `curating` read) and the campaigns it names
/// (`named`).
pub async fn after_store(
    data: &Data,
    curating: &Curating,
    stored: Stored,
    named: Vec<String>,
) -> Result<(), Error> {
    let (Stored::New(row) | Stored::Updated(row)) = stored;
    curating.on_incoming(data, &row).await?;
    if !curating.joined_any(row.actor_id, &named) {
        return Ok(());
    }
    campaigns::on_incoming(data, &row, named).await
}

#[async_trait]
impl Activity for CreateNote {
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
        let named = campaigns::named_in(&self.object);
        if !is_wanted(data, &self.actor, &named).await? {
            tracing::debug!(object = %self.object.id, "Create from an actor nobody here follows; ignored");
            return Ok(());
        }
        inbox_batch::store_and_follow_up(data, self.object, named, None).await
    }
}
