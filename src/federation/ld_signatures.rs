//! Linked-Data signatures (`RsaSignature2017`) on the wire: made with the
//! actor's RSA key on the same public activities that carry a proof (after
//! the proof, so it covers it, as Fedify does), and checked on a forwarded
//! activity that has no proof, so that an edit passed on by a hub or by
//! Mastodon before 4.7 is applied without a refetch from its origin.

use super::{objects::actor::DbActor, proofs};
use crate::{
    db::actors::ActorRow,
    error::Error,
    signatures::{keys, ld},
    state::Data,
};
use activitypub_federation::fetch::object_id::ObjectId;
use serde_json::Value;
use url::Url;

/// Signs `activity` as `actor` (a local actor with its private key) when it
/// is one that carries a proof; call it after the proof is attached.
pub fn attach(actor: &ActorRow, activity: &mut Value) -> Result<(), Error> {
    if !proofs::wants_proof(activity) {
        return Ok(());
    }
    let pem = actor
        .private_key_pem
        .as_deref()
        .ok_or_else(|| Error::Internal("local actor without a private key".into()))?;
    let key = keys::parse_private_pem(pem)?;
    ld::sign(activity, &key, &actor.public_key_id, chrono::Utc::now())
        .map_err(|e| Error::Internal(format!("cannot make the Linked-Data signature: {e}")))
}

/// Checks the `RsaSignature2017` of `activity` by `actor`. `Some(actor)`:
/// the signature was made with the actor's key over this very document.
/// `None`: no such signature, or one we cannot check or that does not
/// verify; the caller then treats the body as untrusted (a refetch from the
/// origin decides), so a brittle signature never loses an activity.
pub async fn verify(data: &Data, actor: &Url, activity: &Value) -> Result<Option<DbActor>, Error> {
    let found = match ld::LdSignature::find(activity) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::info!(%actor, "ignoring a Linked-Data signature: {e}");
            return Ok(None);
        }
    };
    let creator_on_actor_host =
        Url::parse(&found.creator).is_ok_and(|creator| super::same_origin(&creator, actor));
    if !creator_on_actor_host {
        tracing::info!(%actor, creator = %found.creator, "Linked-Data signature by a key on another host");
        return Ok(None);
    }
    let actor_id: ObjectId<DbActor> = actor.clone().into();
    let Ok(mut owner) = actor_id.dereference(data).await else {
        return Ok(None);
    };
    for attempt in 0..2 {
        if attempt == 1 {
            // The key may have rotated since we stored the actor.
            match actor_id.dereference_forced(data).await {
                Ok(fresh) => owner = fresh,
                Err(_) => return Ok(None),
            }
        }
        if owner.row.public_key_id != found.creator {
            continue;
        }
        let key = data.keys.public(&owner.row.public_key_pem)?;
        let (document, signature) = (activity.clone(), found.clone());
        let checked = tokio::task::spawn_blocking(move || signature.verify(&document, &key))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        match checked {
            Ok(()) => return Ok(Some(owner)),
            Err(e) => tracing::info!(%actor, "Linked-Data signature not accepted: {e}"),
        }
    }
    Ok(None)
}
