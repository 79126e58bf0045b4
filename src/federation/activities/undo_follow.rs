//! `Undo` of a `Follow`: a remote follower leaves.

use super::{follow::Follow, ObjectOrId};
use crate::{
    db::follows,
    error::Error,
    federation::objects::actor::DbActor,
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::object_id::ObjectId, kinds::activity::UndoType, traits::Activity,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

/// An `Undo` whose object is a Follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UndoFollow {
    /// Activity id.
    pub id: Url,
    /// Always `Undo`.
    #[serde(rename = "type")]
    pub kind: UndoType,
    /// The follower who leaves.
    pub actor: ObjectId<DbActor>,
    /// The Follow being undone (embedded, or its id).
    pub object: ObjectOrId<Follow>,
}

#[async_trait]
impl Activity for UndoFollow {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, _data: &Data) -> Result<(), Error> {
        if let ObjectOrId::Object(follow) = &self.object {
            if follow.actor.inner() != self.actor.inner() {
                return Err(Error::BadRequest("Undo of someone else's Follow".into()));
            }
        }
        Ok(())
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        let follower = self.actor.dereference(data).await?;
        let follower_id = follower.id;
        match self.object {
            ObjectOrId::Object(follow) => {
                let Ok(target) = follow.object.dereference_local(data).await else {
                    return Ok(());
                };
                let target_id = target.id;
                data.db
                    .run(move |conn| follows::delete(conn, follower_id, target_id))
                    .await?;
                crate::campaigns::on_unfollowed(data, &target, &follower).await?;
            }
            ObjectOrId::Id(id) => {
                let target = data
                    .db
                    .run(move |conn| {
                        let Some(row) = follows::by_activity(conn, id.as_str())? else {
                            return Ok(None);
                        };
                        if row.follower_id != follower_id {
                            return Ok(None);
                        }
                        follows::delete(conn, row.follower_id, row.target_id)?;
                        Ok(Some(crate::db::actors::by_id(conn, row.target_id)?))
                    })
                    .await?;
                if let Some(target) = target.filter(|t| t.local) {
                    let target = DbActor::new(target)?;
                    crate::campaigns::on_unfollowed(data, &target, &follower).await?;
                }
            }
        }
        Ok(())
    }
}
