//! Statements co-signed by a campaign's participants. Staff of the hosting
//! instance draft a statement naming its co-signers (joined participants).
//! Each remote co-signer's organisation gets an `Offer` of the draft; its
//! editors confirm through their own instance, which sends back an
//! `Accept` of the Offer. Local co-signers are confirmed by staff here.
//! When every co-signer has confirmed, the statement is published once as
//! the campaign's own alert (urgency `statement`), listing the co-signers,
//! with a `Create` to the campaign's followers.

use super::{invalid, Campaign};
use crate::{
    alerts::{input::ValidAlert, markdown, STATUS_PUBLISHED},
    db::{
        self,
        actors::ActorRow,
        campaigns::{RequestRow, SignerRow, StatementRow, CONFIRMED, JOINED, PENDING},
    },
    delivery,
    error::Error,
    federation::{
        activities::{accept_offer, offer},
        objects::actor::DbActor,
        Urls,
    },
    state::Data,
};
use serde_json::json;

/// A statement as staff draft it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatementInput {
    /// Title.
    pub title: String,
    /// Markdown text.
    pub body: String,
    /// BCP 47 tag of title and text.
    pub language: String,
    /// Co-signing organisations (handles or actor URLs); each must have
    /// joined the campaign.
    pub signers: Vec<String>,
}

/// A statement with its co-signers.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The row.
    pub row: StatementRow,
    /// Co-signers in the order given, with their actors.
    pub signers: Vec<(SignerRow, ActorRow)>,
}

/// The id of statement `id` of `campaign` (the Note's id while a draft).
fn statement_id(urls: &Urls, campaign: &str, id: i64) -> String {
    format!("{}/statements/{id}", urls.actor(campaign))
}

/// Drafts a statement and offers it to every remote co-signer.
pub async fn draft(
    data: &Data,
    campaign: &Campaign,
    input: StatementInput,
) -> Result<Statement, Error> {
    if input.title.trim().is_empty() || input.title.len() > 300 {
        return Err(invalid("title", "must be 1 to 300 characters"));
    }
    if input.body.trim().is_empty() || input.body.len() > 100_000 {
        return Err(invalid("body", "must be 1 to 100,000 bytes"));
    }
    if !crate::alerts::input::is_language_tag(&input.language) {
        return Err(invalid("language", "must be a BCP 47 tag"));
    }
    if input.signers.is_empty() {
        return Err(invalid("signers", "a statement needs co-signers"));
    }
    let urls = Urls::new(&data.config);
    let mut signers: Vec<(ActorRow, Option<String>)> = Vec::new();
    for handle in &input.signers {
        let org = super::organisation(data, handle)
            .await
            .map_err(|_| invalid("signers", format!("cannot find {handle}")))?;
        let (campaign_id, org_id) = (campaign.row.id, org.id);
        let joined = data
            .db
            .run(move |conn| db::campaigns::participant(conn, campaign_id, org_id))
            .await?
            .is_some_and(|p| p.state == JOINED);
        if !joined {
            return Err(invalid(
                "signers",
                format!("{handle} has not joined the campaign"),
            ));
        }
        if signers.iter().any(|(a, _)| a.id == org.id) {
            continue;
        }
        let offer = (!org.local).then(|| urls.new_activity("offer").to_string());
        signers.push((org, offer));
    }
    let rows: Vec<(i64, Option<String>)> = signers.iter().map(|(a, o)| (a.id, o.clone())).collect();
    let (campaign_id, title, body, language) = (
        campaign.row.id,
        input.title.trim().to_string(),
        input.body.clone(),
        input.language.clone(),
    );
    let actor = DbActor::new(campaign.actor.clone())?;
    let statement = data
        .db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                let row = db::campaigns::insert_statement(
                    conn,
                    campaign_id,
                    &title,
                    &body,
                    &language,
                    &rows,
                )?;
                // Each remote co-signer's Offer is queued with the statement.
                let html = markdown::render(&row.body);
                let note = json!({
                    "type": "Note",
                    "id": statement_id(&urls, &actor.username, row.id),
                    "attributedTo": actor.ap_id,
                    "name": row.title,
                    "content": html,
                    "contentMap": { row.language.clone(): html },
                    "tag": signers.iter().map(|(a, _)| json!({"type": "Mention", "href": a.ap_id})).collect::<Vec<_>>(),
                });
                for (org, offer_id) in &signers {
                    let Some(offer_id) = offer_id else { continue };
                    let activity = offer::build(offer_id, &actor, &org.ap_id, note.clone());
                    let inbox = org.shared_inbox.clone().unwrap_or(org.inbox.clone());
                    delivery::enqueue_in(conn, &actor.row, activity, &[inbox])?;
                }
                Ok::<_, Error>(row.id)
            }))
        })
        .await??;
    delivery::wake(data);
    load(data, statement).await
}

/// A statement with its co-signers.
pub async fn load(data: &Data, id: i64) -> Result<Statement, Error> {
    data.db
        .run(move |conn| {
            let Some(row) = db::campaigns::statement(conn, id)? else {
                return Ok(None);
            };
            let signers = db::campaigns::signers(conn, id)?;
            Ok(Some(Statement { row, signers }))
        })
        .await?
        .ok_or(Error::NotFound)
}

/// A campaign's statements, newest first.
pub async fn list(data: &Data, campaign: &Campaign) -> Result<Vec<Statement>, Error> {
    let id = campaign.row.id;
    let rows = data
        .db
        .run(move |conn| db::campaigns::statements(conn, id))
        .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(load(data, r.id).await?);
    }
    Ok(out)
}

/// Staff confirm for a co-signer of this instance.
pub async fn confirm_local(
    data: &Data,
    campaign: &Campaign,
    statement: i64,
    handle: &str,
) -> Result<Statement, Error> {
    let s = load(data, statement).await?;
    if s.row.campaign_id != campaign.row.id {
        return Err(Error::NotFound);
    }
    let org = super::organisation(data, handle).await?;
    if !org.local {
        return Err(invalid(
            "member",
            "a co-signer on another instance confirms on its own instance",
        ));
    }
    confirm(data, statement, org.id).await?;
    load(data, statement).await
}

/// A co-signer accepted our Offer `offer_id`.
pub async fn on_accepted(data: &Data, offer_id: &str, org: &DbActor) -> Result<(), Error> {
    let offer_id = offer_id.to_string();
    let signer = data
        .db
        .run(move |conn| db::campaigns::signer_by_offer(conn, &offer_id))
        .await?;
    match signer {
        Some(s) if s.actor_id == org.id => confirm(data, s.statement_id, org.id).await,
        _ => Ok(()),
    }
}

async fn confirm(data: &Data, statement: i64, org: i64) -> Result<(), Error> {
    data.db
        .run(move |conn| db::campaigns::confirm_signer(conn, statement, org))
        .await?;
    publish_if_confirmed(data, statement).await
}

/// Publishes the statement once every co-signer has confirmed.
async fn publish_if_confirmed(data: &Data, statement: i64) -> Result<(), Error> {
    let s = load(data, statement).await?;
    if s.row.state != db::campaigns::DRAFT || s.signers.iter().any(|(r, _)| r.state != CONFIRMED) {
        return Ok(());
    }
    let campaign_id = s.row.campaign_id;
    let (campaign, actor) = data
        .db
        .run(move |conn| {
            db::campaigns::all(conn)?
                .into_iter()
                .find(|(c, _)| c.id == campaign_id)
                .ok_or(db::DbError::Query(diesel::NotFound))
        })
        .await?;
    let names: Vec<String> = s
        .signers
        .iter()
        .map(|(_, a)| {
            format!(
                "[{}]({})",
                markdown_text(a.name.as_deref().unwrap_or(&a.username)),
                a.url.clone().unwrap_or(a.ap_id.clone())
            )
        })
        .collect();
    let valid = ValidAlert {
        title: s.row.title.clone(),
        body: format!("{}\n\n*Co-signed by {}.*", s.row.body, names.join(", ")),
        language: s.row.language.clone(),
        countries: campaign.country.clone().into_iter().collect(),
        region: None,
        categories: Vec::new(),
        urgency: "statement".into(),
        incident_date: None,
        case: None,
        content_warning: None,
        attachments: Vec::new(),
        status: STATUS_PUBLISHED.into(),
    };
    let actor = DbActor::new(actor)?;
    let values = crate::alerts::publish::values_for(
        &Urls::new(&data.config),
        &actor,
        &valid,
        None,
        None,
        None,
    );
    let (id, urls) = (s.row.id, Urls::new(&data.config));
    let published = data
        .db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                let alert = db::alerts::insert(conn, values)?;
                if !db::campaigns::mark_published(conn, id, alert.id)? {
                    // Another worker published it first: undo our insert.
                    return Err(Error::from(diesel::result::Error::RollbackTransaction));
                }
                // Its Create is queued in the same transaction.
                let named = crate::alerts::publish::create_in(conn, &urls, &actor, &alert)?;
                Ok((alert, named))
            }))
        })
        .await?;
    let (alert, named) = match published {
        Ok(published) => published,
        Err(Error::Db(db::DbError::Query(diesel::result::Error::RollbackTransaction))) => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    tracing::info!(statement = id, alert = %alert.ap_id, "co-signed statement published");
    crate::alerts::publish::after_commit(data, vec![(alert, named)]).await
}

/// Escapes Markdown's link-text characters in a name.
fn markdown_text(name: &str) -> String {
    name.replace(['[', ']', '*', '_'], " ")
}

/// A campaign we follow offered a statement to our organisation `target`.
pub async fn on_offered(
    data: &Data,
    campaign: &DbActor,
    target: &DbActor,
    offer_id: &url::Url,
    statement: offer::OfferedStatement,
) -> Result<(), Error> {
    let (campaign_id, target_id) = (campaign.id, target.id);
    let follows = data
        .db
        .run(move |conn| db::follows::find(conn, target_id, campaign_id))
        .await?
        .is_some_and(|f| f.state == db::follows::ACCEPTED);
    if !follows {
        tracing::debug!(offer = %offer_id, "statement offered by a campaign we do not follow; ignored");
        return Ok(());
    }
    let title = statement.name.unwrap_or_default();
    let html = markdown::sanitize(&statement.content.unwrap_or_default());
    let offer_id = offer_id.to_string();
    data.db
        .run(move |conn| {
            db::campaigns::record_request(conn, &offer_id, campaign_id, target_id, &title, &html)
        })
        .await?;
    Ok(())
}

/// Statements offered to our organisations, with the offering campaign.
pub async fn requests(data: &Data) -> Result<Vec<(RequestRow, ActorRow)>, Error> {
    Ok(data.db.run(db::campaigns::requests).await?)
}

/// Our editors confirm an offered statement: the Accept goes to the
/// campaign.
pub async fn confirm_request(data: &Data, id: i64) -> Result<RequestRow, Error> {
    let (request, campaign, org) = data
        .db
        .run(move |conn| {
            let Some(r) = db::campaigns::request(conn, id)? else {
                return Ok(None);
            };
            let campaign = db::actors::by_id(conn, r.campaign_actor_id)?;
            let org = db::actors::by_id(conn, r.actor_id)?;
            Ok(Some((r, campaign, org)))
        })
        .await?
        .ok_or(Error::NotFound)?;
    if request.state != PENDING {
        return Err(invalid("id", "this statement was answered already"));
    }
    let org = DbActor::new(org)?;
    let accept = accept_offer::build(
        &Urls::new(&data.config),
        &org,
        &campaign.ap_id,
        &request.offer_ap_id,
    );
    let inbox = campaign
        .shared_inbox
        .clone()
        .unwrap_or(campaign.inbox.clone());
    // The request is answered where the Accept is queued.
    data.db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                db::campaigns::answer_request(conn, id, CONFIRMED)?;
                delivery::enqueue_in(conn, &org.row, accept, &[inbox])?;
                Ok::<_, Error>(())
            }))
        })
        .await??;
    delivery::wake(data);
    data.db
        .run(move |conn| db::campaigns::request(conn, id))
        .await?
        .ok_or(Error::NotFound)
}
