//! Outgoing activities: stored with one delivery row per inbox before
//! anything is sent, then sent by the worker with retries.

pub mod retry;
pub mod worker;

use crate::{
    db::deliveries,
    error::Error,
    federation::{activities::with_context, objects::actor::DbActor},
    state::Data,
};
use activitypub_federation::traits::Activity;
use serde::Serialize;

/// Stores `activity` (signed later by `actor`) for every inbox in `inboxes`
/// and wakes the worker. Returns the activity's row id.
pub async fn send<A>(
    data: &Data,
    actor: &DbActor,
    activity: &A,
    inboxes: Vec<String>,
) -> Result<i64, Error>
where
    A: Activity + Serialize,
{
    let json = serde_json::to_string(&with_context(activity)?)?;
    let kind = serde_json::to_value(activity)?
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("Activity")
        .to_string();
    let ap_id = activity.id().to_string();
    let actor_id = actor.id;
    let id = data
        .db
        .run(move |conn| deliveries::enqueue(conn, &ap_id, actor_id, &kind, &json, &inboxes))
        .await?;
    data.delivery_wakeup.notify_one();
    Ok(id)
}
