//! `Offer` of a co-signed statement: a campaign sends the draft to each
//! co-signing organisation, whose editors confirm it with an `Accept`
//! (`accept_offer.rs`). We store offers addressed to our organisations when
//! they come from a campaign we follow.

use crate::{
    campaigns::{statements, GROUP},
    error::Error,
    federation::{objects::actor::DbActor, same_origin},
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::object_id::ObjectId, kinds::activity::OfferType, traits::Activity,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;

/// Builds the Offer of `statement` (a Note, without `@context`) by
/// `campaign` to `signer`, with the activity id `id`.
pub fn build(id: &str, campaign: &DbActor, signer: &str, statement: Value) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": id,
        "type": "Offer",
        "actor": campaign.ap_id,
        "to": [signer],
        "target": signer,
        "object": statement,
    })
}

/// The draft statement inside an Offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferedStatement {
    /// `Note` or `Article`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The statement's id.
    pub id: Url,
    /// Title.
    #[serde(default)]
    pub name: Option<String>,
    /// HTML text.
    #[serde(default)]
    pub content: Option<String>,
}

/// A received `Offer` of a statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// Activity id.
    pub id: Url,
    /// Always `Offer`.
    #[serde(rename = "type")]
    pub kind: OfferType,
    /// The campaign.
    pub actor: ObjectId<DbActor>,
    /// The organisation asked to co-sign.
    #[serde(deserialize_with = "super::id_or_embedded")]
    pub target: ObjectId<DbActor>,
    /// The draft.
    pub object: OfferedStatement,
}

#[async_trait]
impl Activity for Offer {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, data: &Data) -> Result<(), Error> {
        if !same_origin(&self.id, self.actor.inner()) || !same_origin(&self.object.id, &self.id) {
            return Err(Error::BadRequest(
                "Offer or its object not on its actor's host".into(),
            ));
        }
        if !self.target.is_local(data) {
            return Err(Error::BadRequest(
                "Offer to an actor of another host".into(),
            ));
        }
        Ok(())
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        let Ok(target) = self.target.dereference_local(data).await else {
            return Ok(());
        };
        let campaign = self.actor.dereference(data).await?;
        if campaign.kind != GROUP {
            return Ok(());
        }
        statements::on_offered(data, &campaign, &target, &self.id, self.object).await
    }
}
