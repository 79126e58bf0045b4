//! Actors on the wire (`Organization`, `Application`, `Service`, `Person`,
//! `Group`) joined to `actors` rows.

use crate::{
    db::{
        self,
        actor_keys::ActorKeyRow,
        actors::{ActorRow, NewActor},
        now_ms,
    },
    error::Error,
    federation::{same_origin, Urls, APPLICATION},
    state::{AppState, Data},
};
use activitypub_federation::{
    protocol::{helpers::deserialize_skip_error, public_key::PublicKey},
    traits::{Actor, Object},
};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

/// Actor types we follow and accept follows from.
pub const ACTOR_TYPES: &[&str] = &["Person", "Organization", "Service", "Application", "Group"];

/// `endpoints` of an actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// Shared inbox, for one delivery per server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_inbox: Option<Url>,
}

/// An image (avatar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Always `Image`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the image is.
    pub url: Url,
    /// MIME type, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// An Ed25519 public key (FEP-521a).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Multikey {
    /// Key id, `actor#fragment`.
    pub id: Url,
    /// Always `Multikey`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The actor the key belongs to.
    pub controller: Url,
    /// `z` + base58btc of the multicodec-prefixed key.
    pub public_key_multibase: String,
}

/// `assertionMethod` may be one key, a list, or key ids; we keep the
/// Multikeys and skip what we cannot read.
fn multikeys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Multikey>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    Ok(items
        .into_iter()
        .filter_map(|i| serde_json::from_value::<Multikey>(i).ok())
        .filter(|k| k.kind == "Multikey")
        .collect())
}

/// An actor as JSON, as we publish it and as we accept it from others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorJson {
    /// `Organization`, `Person`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The actor's id.
    pub id: Url,
    /// Local part of the handle.
    pub preferred_username: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Biography (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Personal inbox.
    pub inbox: Url,
    /// Outbox collection.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub outbox: Option<Url>,
    /// Followers collection.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub followers: Option<Url>,
    /// Following collection.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub following: Option<Url>,
    /// Pinned objects (Mastodon's `featured`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub featured: Option<Url>,
    /// Shared inbox and friends.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub endpoints: Option<Endpoints>,
    /// The RSA key that signs this actor's requests.
    pub public_key: PublicKey,
    /// Ed25519 keys for object integrity proofs (FEP-521a).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "multikeys"
    )]
    pub assertion_method: Vec<Multikey>,
    /// HTML profile page.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub url: Option<Url>,
    /// Avatar.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub icon: Option<Image>,
    /// Whether follows need approval (never, for us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manually_approves_followers: Option<bool>,
    /// Listed in directories (Mastodon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discoverable: Option<bool>,
    /// Posts may be indexed by search (Mastodon 4.2+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexable: Option<bool>,
    /// When the actor was created.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_skip_error"
    )]
    pub published: Option<DateTime<Utc>>,
}

/// The JSON-LD context of actor documents: ActivityStreams, the security
/// vocabulary for `publicKey`, and Mastodon's extension terms.
pub fn actor_context() -> serde_json::Value {
    serde_json::json!([
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
        "https://w3id.org/security/multikey/v1",
        {
            "toot": "http://joinmastodon.org/ns#",
            "discoverable": "toot:discoverable",
            "indexable": "toot:indexable",
            "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
            "featured": { "@id": "toot:featured", "@type": "@id" }
        }
    ])
}

impl ActorJson {
    /// The JSON of a local actor row with its Ed25519 keys.
    pub fn from_local(
        row: &ActorRow,
        keys: &[ActorKeyRow],
        urls: &Urls,
    ) -> Result<ActorJson, Error> {
        let id = Url::parse(&row.ap_id)?;
        let is_instance = row.kind == APPLICATION;
        Ok(ActorJson {
            kind: row.kind.clone(),
            id: id.clone(),
            preferred_username: row.username.clone(),
            name: row.name.clone(),
            summary: row
                .summary
                .as_ref()
                .map(|s| format!("<p>{}</p>", html_escape::encode_text(s))),
            inbox: Url::parse(&row.inbox)?,
            outbox: Some(urls.actor_part(&row.username, "outbox")),
            followers: Some(urls.actor_part(&row.username, "followers")),
            following: Some(urls.actor_part(&row.username, "following")),
            featured: (!is_instance).then(|| urls.actor_part(&row.username, "featured")),
            endpoints: Some(Endpoints {
                shared_inbox: Some(urls.shared_inbox()),
            }),
            public_key: PublicKey {
                id: row.public_key_id.clone(),
                owner: id.clone(),
                public_key_pem: row.public_key_pem.clone(),
            },
            assertion_method: keys
                .iter()
                .map(|k| {
                    Ok(Multikey {
                        id: Url::parse(&k.key_id)?,
                        kind: "Multikey".into(),
                        controller: id.clone(),
                        public_key_multibase: k.public_key_multibase.clone(),
                    })
                })
                .collect::<Result<_, Error>>()?,
            url: Some(urls.profile_page(&row.username)),
            icon: row
                .icon
                .as_ref()
                .and_then(|i| Url::parse(i).ok())
                .map(|url| Image {
                    kind: "Image".into(),
                    url,
                    media_type: None,
                }),
            manually_approves_followers: Some(false),
            discoverable: Some(!is_instance),
            indexable: Some(!is_instance),
            published: Utc.timestamp_millis_opt(row.created_at).single(),
        })
    }
}

/// An actor row with its id parsed, as activitypub_federation wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DbActor {
    /// The parsed `ap_id`.
    pub ap_id: Url,
    /// The stored row.
    pub row: ActorRow,
}

impl DbActor {
    /// Wraps a row; fails only if the stored id is not a URL.
    pub fn new(row: ActorRow) -> Result<DbActor, Error> {
        Ok(DbActor {
            ap_id: Url::parse(&row.ap_id)?,
            row,
        })
    }
}

impl std::ops::Deref for DbActor {
    type Target = ActorRow;
    fn deref(&self) -> &ActorRow {
        &self.row
    }
}

#[async_trait]
impl Object for DbActor {
    type DataType = AppState;
    type Kind = ActorJson;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.ap_id
    }

    fn last_refreshed_at(&self) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.last_refreshed_at).single()
    }

    async fn read_from_id(object_id: Url, data: &Data) -> Result<Option<Self>, Self::Error> {
        let row = data
            .db
            .run(move |conn| db::actors::by_ap_id(conn, object_id.as_str()))
            .await?;
        row.map(DbActor::new).transpose()
    }

    async fn into_json(self, data: &Data) -> Result<ActorJson, Self::Error> {
        let keys = local_keys(data, &self.row).await?;
        ActorJson::from_local(&self, &keys, &Urls::new(&data.config))
    }

    async fn verify(
        json: &ActorJson,
        expected_domain: &Url,
        _data: &Data,
    ) -> Result<(), Self::Error> {
        if !same_origin(&json.id, expected_domain) {
            return Err(Error::BadRequest(format!(
                "actor {} was served from another host ({expected_domain})",
                json.id
            )));
        }
        if json.public_key.owner != json.id {
            return Err(Error::BadRequest(format!(
                "public key of {} belongs to {}",
                json.id, json.public_key.owner
            )));
        }
        if !same_origin(&json.inbox, &json.id) {
            return Err(Error::BadRequest(format!(
                "inbox of {} is on another host",
                json.id
            )));
        }
        if !ACTOR_TYPES.contains(&json.kind.as_str()) {
            return Err(Error::BadRequest(format!(
                "unsupported actor type {}",
                json.kind
            )));
        }
        Ok(())
    }

    async fn from_json(json: ActorJson, data: &Data) -> Result<Self, Self::Error> {
        let now = now_ms();
        let keys: Vec<(String, String)> = json
            .assertion_method
            .iter()
            .filter(|k| k.controller == json.id && same_origin(&k.id, &json.id))
            .map(|k| (k.id.to_string(), k.public_key_multibase.clone()))
            .collect();
        let actor = NewActor {
            ap_id: json.id.to_string(),
            kind: json.kind,
            username: json.preferred_username,
            domain: json.id.authority().to_string(),
            local: false,
            name: json.name,
            summary: json.summary.map(|s| ammonia::clean(&s)),
            inbox: json.inbox.to_string(),
            shared_inbox: json
                .endpoints
                .and_then(|e| e.shared_inbox)
                .filter(|s| same_origin(s, &json.id))
                .map(|s| s.to_string()),
            outbox: json.outbox.map(|u| u.to_string()),
            followers_url: json.followers.map(|u| u.to_string()),
            url: json.url.map(|u| u.to_string()),
            icon: json.icon.map(|i| i.url.to_string()),
            public_key_id: json.public_key.id,
            public_key_pem: json.public_key.public_key_pem,
            private_key_pem: None,
            last_refreshed_at: now,
            created_at: now,
        };
        DbActor::new(
            data.db
                .run(move |conn| {
                    let row = db::actors::upsert(conn, &actor)?;
                    db::actor_keys::replace_remote(conn, row.id, &keys)?;
                    Ok(row)
                })
                .await?,
        )
    }
}

/// The Ed25519 keys a local actor publishes (one, made on first use).
pub async fn local_keys(data: &Data, row: &ActorRow) -> Result<Vec<ActorKeyRow>, Error> {
    Ok(vec![
        crate::federation::proofs::local_signing_key(data, row).await?,
    ])
}

impl Actor for DbActor {
    fn public_key_pem(&self) -> &str {
        &self.row.public_key_pem
    }

    fn private_key_pem(&self) -> Option<String> {
        self.row.private_key_pem.clone()
    }

    fn inbox(&self) -> Url {
        Url::parse(&self.row.inbox).unwrap_or_else(|_| self.ap_id.clone())
    }

    fn shared_inbox(&self) -> Option<Url> {
        self.row
            .shared_inbox
            .as_ref()
            .and_then(|s| Url::parse(s).ok())
    }
}
