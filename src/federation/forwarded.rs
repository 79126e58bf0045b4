//! Activities forwarded by someone other than their actor (a hub or the
//! Clearing House passing on a member's edit). The body is not trusted: the
//! object is refetched from its origin and applied only if the origin
//! confirms it.

use super::{
    envelope::Envelope,
    inbox::Handled,
    objects::{actor::DbActor, alert::DbAlert},
};
use crate::{db, error::Error, state::Data};
use activitypub_federation::fetch::object_id::ObjectId;

/// Handles a correctly signed activity whose signer is not its actor.
pub async fn receive(
    envelope: &Envelope,
    body: &[u8],
    signer: &DbActor,
    data: &Data,
) -> Result<Handled, Error> {
    let object_type = envelope.object.kind.as_deref();
    let object_id = envelope.object.id.as_deref();
    let handled = matches!(
        (envelope.kind.as_str(), object_type),
        ("Create" | "Update", Some("Note" | "Article" | "Page")) | ("Delete", _)
    );
    let (true, Some(object_id)) = (handled, object_id) else {
        return Err(Error::Unauthorized(format!(
            "signed by {} but the activity's actor is {}",
            signer.ap_id, envelope.actor
        )));
    };
    let object_url = url::Url::parse(object_id)?;
    if !super::same_origin(&object_url, &envelope.actor) {
        return Err(Error::BadRequest(
            "forwarded object is not on its actor's host".into(),
        ));
    }
    let id = envelope.id.to_string();
    let seen = id.clone();
    if data
        .db
        .run(move |conn| db::activities::was_received(conn, &seen))
        .await?
    {
        return Ok(Handled::Duplicate);
    }
    let object: ObjectId<DbAlert> = object_url.clone().into();
    let result = if envelope.kind == "Delete" {
        confirm_delete(data, &object, &envelope.actor).await?
    } else {
        refetch(data, &object, &envelope.actor, &envelope.kind, body).await?
    };
    data.db
        .run(move |conn| db::activities::mark_received(conn, &id))
        .await?;
    Ok(result)
}

/// Fetches the object from its origin and stores it if newer; then passes
/// the edit on like a direct one.
async fn refetch(
    data: &Data,
    object: &ObjectId<DbAlert>,
    actor: &url::Url,
    kind: &str,
    body: &[u8],
) -> Result<Handled, Error> {
    let known = object.dereference_local(data).await.ok();
    let wanted_author = {
        let id = actor.to_string();
        data.db
            .run(move |conn| match db::actors::by_ap_id(conn, &id)? {
                Some(a) => Ok(db::follows::is_followed_locally(conn, a.id)?),
                None => Ok(false),
            })
            .await?
    };
    if known.is_none() && !wanted_author {
        // Neither the object nor its author is of interest here.
        return Ok(Handled::Ignored);
    }
    let before = known.as_ref().map(|k| k.row.updated_at);
    let fetched = match object.dereference_forced(data).await {
        Ok(f) => f,
        Err(e) => {
            tracing::info!(object = %object.inner(), error = %e, "forwarded activity could not be confirmed at its origin");
            return Err(Error::Unauthorized(format!(
                "could not confirm {} at its origin: {e}",
                object.inner()
            )));
        }
    };
    let note_author = {
        let id = fetched.row.actor_id;
        data.db.run(move |conn| db::actors::by_id(conn, id)).await?
    };
    if note_author.ap_id != actor.as_str() {
        return Err(Error::BadRequest(
            "forwarded object belongs to another actor".into(),
        ));
    }
    let row = fetched.row;
    if known.is_none() {
        crate::curation::on_incoming(data, &row).await?;
    } else if before.is_some_and(|b| row.updated_at > b) && kind == "Update" {
        // Confirmed at the origin: pass the member's activity on unchanged.
        crate::curation::on_edited(data, &row, &String::from_utf8_lossy(body)).await?;
    }
    Ok(Handled::Applied)
}

/// A forwarded Delete counts only if the origin says the object is gone.
async fn confirm_delete(
    data: &Data,
    object: &ObjectId<DbAlert>,
    actor: &url::Url,
) -> Result<Handled, Error> {
    let Ok(known) = object.dereference_local(data).await else {
        return Ok(Handled::Ignored);
    };
    let author = {
        let id = known.row.actor_id;
        data.db.run(move |conn| db::actors::by_id(conn, id)).await?
    };
    if author.ap_id != actor.as_str() {
        return Err(Error::BadRequest(
            "forwarded Delete of another actor's object".into(),
        ));
    }
    let gone = match object.dereference_forced(data).await {
        Err(Error::Federation(activitypub_federation::error::Error::ObjectDeleted(_))) => true,
        Err(Error::Federation(activitypub_federation::error::Error::NotFound)) => true,
        Ok(fetched) => fetched.row.status == crate::alerts::STATUS_DELETED,
        Err(e) => {
            return Err(Error::Unauthorized(format!(
                "could not confirm the Delete at the origin: {e}"
            )))
        }
    };
    if !gone {
        return Err(Error::BadRequest(
            "the origin still serves the object".into(),
        ));
    }
    let id = known.row.id;
    data.db
        .run(move |conn| db::alerts::mark_deleted(conn, id))
        .await?;
    Ok(Handled::Applied)
}
