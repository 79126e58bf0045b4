//! `Accept` of a Follow: we send one for every Follow we receive, and a
//! remote actor's Accept turns our pending follow into an accepted one.

use super::{follow::Follow, ObjectOrId};
use crate::{
    db::follows,
    error::Error,
    federation::{objects::actor::DbActor, same_origin, Urls},
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::object_id::ObjectId, kinds::activity::AcceptType, traits::Activity,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

/// An `Accept` activity whose object is a Follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accept {
    /// Activity id.
    pub id: Url,
    /// Always `Accept`.
    #[serde(rename = "type")]
    pub kind: AcceptType,
    /// The followed actor, who accepts.
    pub actor: ObjectId<DbActor>,
    /// The Follow (embedded, or its id).
    pub object: ObjectOrId<Follow>,
}

impl Accept {
    /// The Accept that `target` (local) sends for `follow`.
    pub fn build(urls: &Urls, target: &DbActor, follow: Follow) -> Accept {
        Accept {
            id: urls.new_activity("accept"),
            kind: AcceptType::Accept,
            actor: target.ap_id.clone().into(),
            object: ObjectOrId::Object(follow),
        }
    }
}

/// Applies an Accept or Reject of one of our Follows: finds the relation by
/// the Follow's id (or, if only the target is known, by the pair) and sets
/// its state. Answers from anyone but the followed actor are refused.
pub(super) async fn answer_follow(
    data: &Data,
    answering_actor: &ObjectId<DbActor>,
    object: &ObjectOrId<Follow>,
    state: &'static str,
) -> Result<(), Error> {
    if let ObjectOrId::Object(follow) = object {
        if follow.object.inner() != answering_actor.inner() {
            return Err(Error::BadRequest(
                "answer to a Follow of someone else".into(),
            ));
        }
    }
    let follow_id = match object {
        ObjectOrId::Object(f) => f.id.to_string(),
        ObjectOrId::Id(id) => id.to_string(),
    };
    let target = answering_actor.dereference(data).await?;
    let target_id = target.id;
    data.db
        .run(move |conn| {
            let row = follows::by_activity(conn, &follow_id)?;
            if let Some(row) = row.filter(|r| r.target_id == target_id) {
                follows::set_state(conn, row.id, state)?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}

#[async_trait]
impl Activity for Accept {
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
                    "Accept of a Follow we did not send".into(),
                ));
            }
        } else if let ObjectOrId::Id(id) = &self.object {
            if !same_origin(
                id,
                &crate::federation::Urls::new(&data.config).shared_inbox(),
            ) {
                return Err(Error::BadRequest(
                    "Accept of a Follow we did not send".into(),
                ));
            }
        }
        Ok(())
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        answer_follow(data, &self.actor, &self.object, follows::ACCEPTED).await
    }
}
