//! `Announce` (a boost): a feed boosts a member's original Note — a plain
//! Announce of the object, which Mastodon shows as a boost. Received
//! Announces from actors we follow bring us the object itself.

use crate::{
    curation, db,
    error::Error,
    federation::{
        objects::{actor::DbActor, alert::DbAlert},
        Urls,
    },
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::object_id::ObjectId,
    kinds::{activity::AnnounceType, public},
    traits::Activity,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;

/// Builds the Announce of `object_id` by `feed`, addressed to the public,
/// the feed's followers and the object's author.
pub fn build(urls: &Urls, feed: &DbActor, object_id: &str, author: &str) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": urls.new_activity("announce"),
        "type": "Announce",
        "actor": feed.ap_id,
        "published": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "to": [public()],
        "cc": [urls.actor_part(&feed.username, "followers"), author],
        "object": object_id,
    })
}

/// Builds the Undo of a boost.
pub fn build_undo(urls: &Urls, feed: &DbActor, announce_id: &str, object_id: &str) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": urls.new_activity("undo"),
        "type": "Undo",
        "actor": feed.ap_id,
        "to": [public()],
        "cc": [urls.actor_part(&feed.username, "followers")],
        "object": {
            "id": announce_id,
            "type": "Announce",
            "actor": feed.ap_id,
            "object": object_id,
        },
    })
}

/// The object of an Announce: its id, or the object with one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnnouncedObject {
    /// Just the id.
    Id(Url),
    /// An embedded object.
    Object {
        /// Its id.
        id: Url,
    },
}

/// A received `Announce`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Announce {
    /// Activity id.
    pub id: Url,
    /// Always `Announce`.
    #[serde(rename = "type")]
    pub kind: AnnounceType,
    /// Who boosts.
    pub actor: ObjectId<DbActor>,
    /// What is boosted.
    pub object: AnnouncedObject,
    /// When it was sent.
    #[serde(
        default,
        deserialize_with = "activitypub_federation::protocol::helpers::deserialize_skip_error"
    )]
    pub published: Option<chrono::DateTime<chrono::Utc>>,
}

#[async_trait]
impl Activity for Announce {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, _data: &Data) -> Result<(), Error> {
        Ok(())
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        if !super::create::is_wanted(data, &self.actor, &[]).await? {
            return Ok(());
        }
        let object_id = match &self.object {
            AnnouncedObject::Id(id) | AnnouncedObject::Object { id } => id.clone(),
        };
        if data.config.instance.domain == object_id.authority() {
            return Ok(());
        }
        // Never trust an embedded copy: the object comes from its origin. A
        // boost newer than our copy may follow an edit: refetch then.
        let object: ObjectId<DbAlert> = object_id.into();
        let known = object.dereference_local(data).await.ok();
        let stale = match (&known, self.published) {
            (Some(k), Some(p)) => p.timestamp_millis() > k.row.updated_at,
            _ => false,
        };
        let fetched = if stale {
            object.dereference_forced(data).await
        } else {
            object.dereference(data).await
        };
        if let (Some(before), Ok(after)) = (&known, &fetched) {
            if after.row.updated_at > before.row.updated_at {
                // An edit reached us through a boost: flag it and boost again.
                curation::on_refetched_edit(data, &after.row).await?;
                return Ok(());
            }
        }
        let alert = match fetched {
            Ok(alert) => alert,
            Err(e) => {
                tracing::debug!(error = %e, "boosted object could not be fetched; ignored");
                return Ok(());
            }
        };
        if alert.row.status == crate::alerts::STATUS_DELETED {
            return Ok(());
        }
        let row = alert.row;
        let id = row.id;
        let fresh = data.db.run(move |conn| db::alerts::by_id(conn, id)).await?;
        curation::on_incoming(data, &fresh).await
    }
}
