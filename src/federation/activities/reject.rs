//! `Reject` of a Follow: a remote actor refused (or later removed) us.

use super::{accept::answer_follow, follow::Follow, ObjectOrId};
use crate::{
    db::follows,
    error::Error,
    federation::objects::actor::DbActor,
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::object_id::ObjectId, kinds::activity::RejectType, traits::Activity,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

/// A `Reject` activity whose object is a Follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reject {
    /// Activity id.
    pub id: Url,
    /// Always `Reject`.
    #[serde(rename = "type")]
    pub kind: RejectType,
    /// The followed actor, who rejects.
    pub actor: ObjectId<DbActor>,
    /// The Follow (embedded, or its id).
    pub object: ObjectOrId<Follow>,
}

#[async_trait]
impl Activity for Reject {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, data: &Data) -> Result<(), Error> {
        if let ObjectOrId::Object(follow) = &self.object {
            if !follow.actor.is_local(data) {
                return Err(Error::BadRequest(
                    "Reject of a Follow we did not send".into(),
                ));
            }
        }
        Ok(())
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        answer_follow(data, &self.actor, &self.object, follows::REJECTED).await
    }
}
