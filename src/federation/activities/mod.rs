//! Activities, one per file: each is a JSON type with a pure builder for
//! what we send and `verify`/`receive` for what we accept.

pub mod accept;
pub mod accept_offer;
pub mod announce;
pub mod create;
pub mod delete;
pub mod follow;
pub mod offer;
pub mod reject;
pub mod undo_follow;
pub mod update;

use super::objects::actor::DbActor;
use serde::{Deserialize, Serialize};
use url::Url;

/// The `@context` of every activity we send.
pub fn activity_context() -> serde_json::Value {
    serde_json::json!([
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1"
    ])
}

/// An embedded object or just its id, as different servers send either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ObjectOrId<T> {
    /// The whole object.
    Object(T),
    /// Only its id.
    Id(Url),
}

/// Reads an id given as a URL or as an embedded object with an `id`
/// (servers send either; Fedify embeds actors in the Follow it accepts).
pub fn id_of<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IdOrObject {
        Id(Url),
        Object { id: Url },
    }
    Ok(match IdOrObject::deserialize(d)? {
        IdOrObject::Id(u) | IdOrObject::Object { id: u } => u,
    })
}

/// [`id_of`] for an actor's `ObjectId`.
pub fn id_or_embedded<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<activitypub_federation::fetch::object_id::ObjectId<DbActor>, D::Error> {
    id_of(d).map(Into::into)
}

/// Serialises an activity with our `@context` in front.
pub fn with_context<T: Serialize>(activity: &T) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::to_value(activity)?;
    if let serde_json::Value::Object(map) = &mut value {
        let mut out = serde_json::Map::with_capacity(map.len() + 1);
        out.insert("@context".into(), activity_context());
        out.extend(std::mem::take(map));
        return Ok(serde_json::Value::Object(out));
    }
    Ok(value)
}
