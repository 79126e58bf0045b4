//! `Accept` of an `Offer`: a co-signing organisation confirms a campaign's
//! statement. We send one when an editor confirms an offered statement;
//! a campaign of ours that receives one counts the confirmation.

use crate::{
    campaigns::statements,
    error::Error,
    federation::{objects::actor::DbActor, same_origin, Urls},
    state::{AppState, Data},
};
use activitypub_federation::{
    fetch::object_id::ObjectId, kinds::activity::AcceptType, traits::Activity,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;

/// Builds the Accept by `org` of the Offer `offer_id` sent by `campaign`.
pub fn build(urls: &Urls, org: &DbActor, campaign: &str, offer_id: &str) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": urls.new_activity("accept"),
        "type": "Accept",
        "actor": org.ap_id,
        "to": [campaign],
        "object": { "id": offer_id, "type": "Offer", "actor": campaign },
    })
}

/// The Offer being accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedOffer {
    /// The Offer's id.
    pub id: Url,
}

/// A received `Accept` of an `Offer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptOffer {
    /// Activity id.
    pub id: Url,
    /// Always `Accept`.
    #[serde(rename = "type")]
    pub kind: AcceptType,
    /// The confirming organisation.
    pub actor: ObjectId<DbActor>,
    /// The Offer.
    pub object: AcceptedOffer,
}

#[async_trait]
impl Activity for AcceptOffer {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, data: &Data) -> Result<(), Error> {
        if !same_origin(
            &self.object.id,
            &Url::parse(Urls::new(&data.config).base())?,
        ) {
            return Err(Error::BadRequest(
                "Accept of an Offer we did not send".into(),
            ));
        }
        Ok(())
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        let org = self.actor.dereference(data).await?;
        statements::on_accepted(data, self.object.id.as_str(), &org).await
    }
}
