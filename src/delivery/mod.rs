//! Outgoing activities: stored with one delivery row per inbox before
//! anything is sent, then sent by the worker with retries.

pub mod metrics;
pub mod retry;
pub mod sink;
pub mod worker;

use crate::{
    db::actors::ActorRow,
    db::{self, deliveries, DbConn},
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
    send_json(data, actor, with_context(activity)?, inboxes).await
}

/// Like [`send`], for an activity already built as JSON (with `@context`,
/// `id` and `type`).
pub async fn send_json(
    data: &Data,
    actor: &DbActor,
    activity: serde_json::Value,
    inboxes: Vec<String>,
) -> Result<i64, Error> {
    let row = actor.row.clone();
    let id = data
        .db
        .run(move |conn| Ok(enqueue_in(conn, &row, activity, &inboxes)))
        .await??;
    wake(data);
    Ok(id)
}

/// Signs `activity` for the local actor `actor` (the proof and the
/// Linked-Data signature a public activity carries) and stores it with one
/// pending delivery per distinct inbox, on `conn`. Called inside the
/// transaction that stores what the activity announces, the two are
/// stored together or not at all, so a crash between them cannot leave an
/// alert published and its followers never told. The caller wakes the
/// worker after the commit ([`wake`]). Returns the activity's row id.
pub fn enqueue_in(
    conn: &mut DbConn,
    actor: &ActorRow,
    mut activity: serde_json::Value,
    inboxes: &[String],
) -> Result<i64, Error> {
    crate::federation::proofs::attach(conn, actor, &mut activity)?;
    crate::federation::ld_signatures::attach(actor, &mut activity)?;
    let kind = activity["type"].as_str().unwrap_or("Activity");
    let ap_id = activity["id"]
        .as_str()
        .ok_or_else(|| Error::Internal("outgoing activity without id".into()))?;
    let json = serde_json::to_string(&activity)?;
    Ok(deliveries::enqueue(
        conn, ap_id, actor.id, kind, &json, inboxes,
    )?)
}

/// Wakes the delivery worker: call after committing [`enqueue_in`]'s work.
pub fn wake(data: &Data) {
    data.delivery_wakeup.notify_one();
}

/// Forwards another actor's activity unchanged (`raw` is the exact body we
/// received), signed in transport by `via`, one of our actors.
pub async fn forward(
    data: &Data,
    via: &DbActor,
    activity: &serde_json::Value,
    raw: &str,
    inboxes: Vec<String>,
) -> Result<i64, Error> {
    let kind = activity["type"].as_str().unwrap_or("Activity").to_string();
    let ap_id = activity["id"]
        .as_str()
        .ok_or_else(|| Error::BadRequest("forwarded activity without id".into()))?
        .to_string();
    let json = raw.to_string();
    let actor_id = via.id;
    let id = data
        .db
        .run(move |conn| deliveries::enqueue(conn, &ap_id, actor_id, &kind, &json, &inboxes))
        .await?;
    wake(data);
    Ok(id)
}

/// Stores `activity` (JSON with `@context`, `id` and `type`, signed later by
/// the local actor `actor_id`) with one delivery per follower inbox —
/// followers on one server share its shared inbox — in one transaction.
/// Works on a database alone, so a publisher needs no running server: the
/// worker of any process on that database sends it. Returns the activity's
/// row id and the number of deliveries.
pub fn enqueue_for_followers(
    conn: &mut DbConn,
    actor_id: i64,
    activity: &serde_json::Value,
) -> Result<(i64, usize), Error> {
    db::try_transaction(conn, |conn| {
        let actor = db::actors::by_id(conn, actor_id)?;
        let inboxes = db::follows::follower_inboxes(conn, actor_id)?;
        let id = enqueue_in(conn, &actor, activity.clone(), &inboxes)?;
        Ok((id, inboxes.len()))
    })
}
