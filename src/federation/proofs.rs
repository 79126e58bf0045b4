//! FEP-8b32 object integrity proofs on the wire: our actors' Ed25519
//! keys, the proof on our public Create/Update/Delete/Announce, and the
//! check of a proof on an incoming activity (which lets a forwarded
//! activity be trusted without a refetch from its origin).

use super::objects::actor::DbActor;
use crate::{
    db::{self, actor_keys::ActorKeyRow, actors::ActorRow, DbConn},
    error::Error,
    signatures::{multikey, proof, SignatureError},
    state::Data,
};
use activitypub_federation::fetch::object_id::ObjectId;
use serde_json::Value;
use url::Url;

/// Activity types we sign with a proof when they are public.
const PROVEN_TYPES: &[&str] = &["Create", "Update", "Delete", "Announce"];
const PUBLIC: &[&str] = &[
    "https://www.w3.org/ns/activitystreams#Public",
    "as:Public",
    "Public",
];

/// The id of our actor's Ed25519 key.
pub fn key_id(actor_ap_id: &str) -> String {
    format!("{actor_ap_id}#ed25519-key")
}

/// Our actor's Ed25519 key, made on first use.
pub fn signing_key(conn: &mut DbConn, actor: &ActorRow) -> Result<ActorKeyRow, Error> {
    if let Some(key) = db::actor_keys::local(conn, actor.id)? {
        return Ok(key);
    }
    let (private, public) = multikey::generate_ed25519()?;
    let id = key_id(&actor.ap_id);
    Ok(db::actor_keys::ensure_local(
        conn,
        actor.id,
        (&id, &public, &private),
    )?)
}

/// [`signing_key`] from async code.
pub async fn local_signing_key(data: &Data, actor: &ActorRow) -> Result<ActorKeyRow, Error> {
    let actor_id = actor.id;
    if let Some(key) = data
        .db
        .run(move |conn| db::actor_keys::local(conn, actor_id))
        .await?
    {
        return Ok(key);
    }
    let (private, public) = multikey::generate_ed25519()?;
    let id = key_id(&actor.ap_id);
    Ok(data
        .db
        .run(move |conn| db::actor_keys::ensure_local(conn, actor_id, (&id, &public, &private)))
        .await?)
}

/// True for the activities that carry a proof: public Create, Update,
/// Delete and Announce.
pub fn wants_proof(activity: &Value) -> bool {
    let kind = activity["type"].as_str().unwrap_or_default();
    let addressed_publicly = ["to", "cc"].iter().any(|field| match &activity[*field] {
        Value::String(s) => PUBLIC.contains(&s.as_str()),
        Value::Array(items) => items
            .iter()
            .any(|i| i.as_str().is_some_and(|s| PUBLIC.contains(&s))),
        _ => false,
    });
    PROVEN_TYPES.contains(&kind) && addressed_publicly
}

/// Adds the data-integrity context and a proof by `actor` (a local actor)
/// to `activity` when it is one that carries a proof.
pub fn attach(conn: &mut DbConn, actor: &ActorRow, activity: &mut Value) -> Result<(), Error> {
    if !wants_proof(activity) {
        return Ok(());
    }
    sign_with(activity, &signing_key(conn, actor)?)
}

fn sign_with(activity: &mut Value, key_row: &ActorKeyRow) -> Result<(), Error> {
    let private = key_row
        .private_key
        .as_deref()
        .ok_or_else(|| Error::Internal("local key without private half".into()))?;
    let key = multikey::parse_ed25519_private(private)?;
    add_context(activity);
    proof::sign(activity, &key, &key_row.key_id, chrono::Utc::now())?;
    Ok(())
}

/// Appends the data-integrity context (which defines `proof`).
fn add_context(activity: &mut Value) {
    let context = activity
        .as_object_mut()
        .map(|o| o.entry("@context").or_insert(Value::Null));
    let Some(context) = context else { return };
    let wanted = Value::String(proof::DATA_INTEGRITY_CONTEXT.into());
    if *context == wanted {
        return;
    }
    match context {
        Value::Array(items) => {
            if !items.contains(&wanted) {
                items.push(wanted);
            }
        }
        Value::Null => *context = Value::Array(vec![wanted]),
        other => *other = Value::Array(vec![other.take(), wanted]),
    }
}

/// Checks the `eddsa-jcs-2022` proof of `activity` against the keys of
/// `actor`. `Ok(None)`: no proof we know how to check. `Ok(Some(actor))`:
/// the proof was made by the actor's key. An invalid proof is an error.
pub async fn verify(data: &Data, actor: &Url, activity: &Value) -> Result<Option<DbActor>, Error> {
    let Some(found) = proof::Proof::find(activity)? else {
        return Ok(None);
    };
    let method = Url::parse(&found.verification_method).map_err(|_| {
        SignatureError::Malformed(format!(
            "verificationMethod {} is not a URL",
            found.verification_method
        ))
    })?;
    if !super::same_origin(&method, actor) {
        return Err(Error::Unauthorized(format!(
            "proof key {method} is not on the host of {actor}"
        )));
    }
    let actor_id: ObjectId<DbActor> = actor.clone().into();
    let mut owner = actor_id.dereference(data).await.map_err(|e| {
        Error::Unauthorized(format!("cannot fetch {actor} to check its proof: {e}"))
    })?;
    let mut key = key_of(data, &owner, &found.verification_method).await?;
    if key.is_none() {
        // Perhaps a key published since we last fetched the actor.
        if let Ok(fresh) = actor_id.dereference_forced(data).await {
            owner = fresh;
            key = key_of(data, &owner, &found.verification_method).await?;
        }
    }
    let key = key.ok_or_else(|| {
        Error::Unauthorized(format!(
            "{} is not a key of {actor}",
            found.verification_method
        ))
    })?;
    let public = multikey::decode_ed25519_public(&key.public_key_multibase)?;
    found.verify(activity, &public)?;
    Ok(Some(owner))
}

/// The key `key_id` if it belongs to `owner`.
async fn key_of(data: &Data, owner: &DbActor, key_id: &str) -> Result<Option<ActorKeyRow>, Error> {
    let key_id = key_id.to_string();
    let owner_id = owner.id;
    Ok(data
        .db
        .run(move |conn| db::actor_keys::by_key_id(conn, &key_id))
        .await?
        .filter(|k| k.actor_id == owner_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_public_create_update_delete_announce_carry_proofs() {
        let public = "https://www.w3.org/ns/activitystreams#Public";
        assert!(wants_proof(&json!({"type": "Create", "to": [public]})));
        assert!(wants_proof(&json!({"type": "Announce", "cc": public})));
        assert!(wants_proof(&json!({"type": "Delete", "to": ["as:Public"]})));
        assert!(!wants_proof(&json!({"type": "Follow", "to": [public]})));
        assert!(!wants_proof(
            &json!({"type": "Create", "to": ["https://a.example/u"]})
        ));
    }

    #[test]
    fn the_context_gains_data_integrity_once() {
        let mut a = json!({"@context": "https://www.w3.org/ns/activitystreams"});
        add_context(&mut a);
        add_context(&mut a);
        assert_eq!(
            a["@context"],
            json!([
                "https://www.w3.org/ns/activitystreams",
                proof::DATA_INTEGRITY_CONTEXT
            ])
        );
    }
}
