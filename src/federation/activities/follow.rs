//! `Follow`: a remote actor follows one of ours (we accept at once), or we
//! follow a remote actor (recorded as pending until Accept or Reject).

use super::accept::Accept;
use crate::{
    db::{self, follows},
    delivery,
    error::Error,
    federation::{objects::actor::DbActor, Urls},
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::{object_id::ObjectId, webfinger::webfinger_resolve_actor},
    kinds::activity::FollowType,
    traits::{Activity, Actor},
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

/// A `Follow` activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Follow {
    /// Activity id.
    pub id: Url,
    /// Always `Follow`.
    #[serde(rename = "type")]
    pub kind: FollowType,
    /// Who follows.
    #[serde(deserialize_with = "super::id_or_embedded")]
    pub actor: ObjectId<DbActor>,
    /// Who is followed.
    #[serde(deserialize_with = "super::id_or_embedded")]
    pub object: ObjectId<DbActor>,
}

impl Follow {
    /// Builds the Follow that `follower` (local) sends to `target`.
    pub fn build(urls: &Urls, follower: &DbActor, target: &DbActor) -> Follow {
        Follow {
            id: urls.new_activity("follow"),
            kind: FollowType::Follow,
            actor: follower.ap_id.clone().into(),
            object: target.ap_id.clone().into(),
        }
    }
}

#[async_trait]
impl Activity for Follow {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, data: &Data) -> Result<(), Error> {
        if !self.object.is_local(data) {
            return Err(Error::BadRequest(format!(
                "Follow of {} which is not an actor of this instance",
                self.object.inner()
            )));
        }
        self.object
            .dereference_local(data)
            .await
            .map_err(|_| Error::BadRequest(format!("no local actor {}", self.object.inner())))?;
        Ok(())
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        let follower = self.actor.dereference(data).await?;
        let target = self.object.dereference_local(data).await?;
        let (follower_id, target_id, follow_id) = (follower.id, target.id, self.id.to_string());
        data.db
            .run(move |conn| {
                follows::upsert(conn, follower_id, target_id, follows::ACCEPTED, &follow_id)
            })
            .await?;
        crate::campaigns::on_followed(data, &target, &follower).await?;
        let accept = Accept::build(&Urls::new(&data.config), &target, self);
        delivery::send(data, &target, &accept, vec![follower.inbox().to_string()]).await?;
        Ok(())
    }
}

/// Looks `handle` up (`@user@host`, `user@host` or an actor URL), records a
/// pending follow by our organisation actor and queues the Follow.
pub async fn follow_remote(
    data: &Data,
    follower: &DbActor,
    handle: &str,
) -> Result<DbActor, Error> {
    let target = resolve_actor(data, handle).await?;
    if target.local {
        return Err(Error::BadRequest(format!(
            "{handle} is an actor of this instance"
        )));
    }
    let follow = Follow::build(&Urls::new(&data.config), follower, &target);
    let activity = super::with_context(&follow)?;
    let (follower_row, target_id, follow_id) =
        (follower.row.clone(), target.id, follow.id.to_string());
    let inbox = target.inbox().to_string();
    // The pending follow is recorded where its Follow is queued.
    data.db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                follows::upsert(
                    conn,
                    follower_row.id,
                    target_id,
                    follows::PENDING,
                    &follow_id,
                )?;
                delivery::enqueue_in(conn, &follower_row, activity, &[inbox])?;
                Ok::<_, Error>(())
            }))
        })
        .await??;
    delivery::wake(data);
    Ok(target)
}

/// Finds a remote actor by handle (WebFinger) or by URL.
pub async fn resolve_actor(data: &Data, handle: &str) -> Result<DbActor, Error> {
    let handle = handle.trim();
    if handle.starts_with("https://") || handle.starts_with("http://") {
        let id: ObjectId<DbActor> = Url::parse(handle)?.into();
        return id.dereference(data).await;
    }
    let acct = handle.trim_start_matches('@');
    if acct.split('@').count() != 2 || acct.split('@').any(str::is_empty) {
        return Err(Error::BadRequest(format!(
            "{handle} is neither @user@host nor an actor URL"
        )));
    }
    webfinger_resolve_actor::<AppState, DbActor>(acct, data).await
}

/// The local actor with this username.
pub async fn local_actor(data: &Data, username: &str) -> Result<DbActor, Error> {
    let username = username.to_string();
    let row = data
        .db
        .run(move |conn| db::actors::local_by_username(conn, &username))
        .await?
        .ok_or(Error::NotFound)?;
    DbActor::new(row)
}
