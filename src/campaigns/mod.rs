//! Joint campaigns (docs/campaigns.md): a campaign is a local `Group` actor
//! run by several member organisations. Staff invite organisations; an
//! invited organisation joins by following the campaign. Alerts of joined
//! participants that name the campaign (in `audience`, `to`, `cc` or a tag)
//! are announced by the campaign to its followers, once per alert; other
//! followers are ordinary followers, and alerts of non-participants are
//! ignored. Statements co-signed by participants are in `statements`.

pub mod actions;
pub mod statements;

use crate::{
    db::{
        self,
        actors::ActorRow,
        alerts::AlertRow,
        campaigns::{CampaignRow, ParticipantRow, INVITED, JOINED, LEFT},
    },
    error::Error,
    federation::{
        activities::follow::resolve_actor,
        objects::{actor::DbActor, alert::NoteJson},
        upsert_local_actor,
    },
    state::Data,
};
use url::Url;

/// `type` of campaign actors (FEP-1b12 groups, as Lemmy's communities).
pub const GROUP: &str = "Group";

/// A new campaign as staff describe it.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// Handle on this instance: lower-case letters, digits and `_`.
    pub username: String,
    /// Display name, e.g. "End impunity".
    pub name: String,
    /// What the campaign wants to achieve (plain text; the actor's summary).
    pub aims: String,
    /// Target country (ISO 3166-1 alpha-2), if the campaign is about one.
    #[serde(default)]
    pub country: Option<String>,
    /// Target theme (defamation laws, Internet censorship, impunity …).
    #[serde(default)]
    pub theme: Option<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Validation {
        field: field.into(),
        message: message.into(),
    }
}

impl CampaignInput {
    /// Checks every field, naming the first bad one.
    pub fn check(&self) -> Result<(), Error> {
        let name = &self.username;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid(
                "username",
                "must be 1 to 64 lower-case letters, digits or _",
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(invalid("name", "must be 1 to 200 characters"));
        }
        if self.aims.trim().is_empty() || self.aims.len() > 5000 {
            return Err(invalid("aims", "must be 1 to 5000 characters"));
        }
        if let Some(c) = &self.country {
            if isocountry::CountryCode::for_alpha2(&c.to_ascii_uppercase()).is_err() {
                return Err(invalid("country", format!("{c} is not an ISO 3166-1 code")));
            }
        }
        if self.country.is_none() && self.theme.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(invalid("theme", "a campaign targets a country or a theme"));
        }
        Ok(())
    }
}

/// A campaign with its actor.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// The `campaigns` row.
    pub row: CampaignRow,
    /// Its `Group` actor.
    pub actor: ActorRow,
}

/// Creates a campaign: a `Group` actor with keys and its row.
pub async fn create(data: &Data, input: CampaignInput) -> Result<Campaign, Error> {
    input.check()?;
    let config = data.config.clone();
    data.db
        .run(move |conn| {
            db::transaction(conn, |conn| {
                if db::actors::local_by_username(conn, &input.username)?.is_some() {
                    return Ok(Err(invalid(
                        "username",
                        format!("@{} is taken on this instance", input.username),
                    )));
                }
                let actor = match upsert_local_actor(
                    conn,
                    &config,
                    &input.username,
                    GROUP,
                    input.name.trim().to_string(),
                    input.aims.trim().to_string(),
                    None,
                ) {
                    Ok(a) => a,
                    Err(e) => return Ok(Err(e)),
                };
                let country = input.country.as_ref().map(|c| c.to_ascii_uppercase());
                let theme = input
                    .theme
                    .as_ref()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty());
                let row = db::campaigns::insert(
                    conn,
                    actor.id,
                    input.aims.trim(),
                    country.as_deref(),
                    theme.as_deref(),
                )?;
                Ok(Ok(Campaign { row, actor }))
            })
        })
        .await?
}

/// The campaign `username`, or 404.
pub async fn by_username(data: &Data, username: &str) -> Result<Campaign, Error> {
    let username = username.trim_start_matches('@').to_string();
    data.db
        .run(move |conn| db::campaigns::by_username(conn, &username))
        .await?
        .map(|(row, actor)| Campaign { row, actor })
        .ok_or(Error::NotFound)
}

/// Every campaign on this instance.
pub async fn list(data: &Data) -> Result<Vec<Campaign>, Error> {
    Ok(data
        .db
        .run(db::campaigns::all)
        .await?
        .into_iter()
        .map(|(row, actor)| Campaign { row, actor })
        .collect())
}

/// A campaign's participants (invited, joined, left) with their actors.
pub async fn participants(
    data: &Data,
    campaign: &Campaign,
) -> Result<Vec<(ParticipantRow, ActorRow)>, Error> {
    let id = campaign.row.id;
    Ok(data
        .db
        .run(move |conn| db::campaigns::participants(conn, id))
        .await?)
}

/// Finds an organisation by handle or URL: an actor of this instance
/// directly, another one by WebFinger or fetch.
pub(crate) async fn organisation(data: &Data, handle: &str) -> Result<ActorRow, Error> {
    let local_name = match crate::web::remote_follow::split_handle(handle) {
        Some((user, host)) if host.eq_ignore_ascii_case(&data.config.instance.domain) => Some(user),
        _ => None,
    };
    if let Some(user) = local_name {
        return data
            .db
            .run(move |conn| db::actors::local_by_username(conn, &user))
            .await?
            .ok_or_else(|| invalid("member", format!("no actor {handle} here")));
    }
    let actor = resolve_actor(data, handle)
        .await
        .map_err(|e| invalid("member", format!("cannot find {handle}: {e}")))?;
    Ok(actor.row)
}

/// Invites the organisation `handle` to run `campaign`. An organisation
/// that already follows the campaign, or one of this instance, joins at
/// once; others join when their Follow arrives.
pub async fn invite(
    data: &Data,
    campaign: &Campaign,
    handle: &str,
) -> Result<(ParticipantRow, ActorRow), Error> {
    let org = organisation(data, handle).await?;
    if org.id == campaign.actor.id || org.kind == GROUP {
        return Err(invalid("member", "a campaign cannot run a campaign"));
    }
    let (campaign_id, campaign_actor, org_id, local) =
        (campaign.row.id, campaign.actor.id, org.id, org.local);
    let row = data
        .db
        .run(move |conn| {
            let follows = db::follows::find(conn, org_id, campaign_actor)?
                .is_some_and(|f| f.state == db::follows::ACCEPTED);
            let state = if follows || local { JOINED } else { INVITED };
            db::campaigns::invite(conn, campaign_id, org_id, state)
        })
        .await?;
    tracing::info!(campaign = %campaign.actor.username, member = %org.ap_id, state = %row.state, "campaign invitation");
    Ok((row, org))
}

/// Removes an organisation from a campaign; it stays a follower if it
/// follows.
pub async fn remove(data: &Data, campaign: &Campaign, handle: &str) -> Result<(), Error> {
    let org = organisation(data, handle).await?;
    let (campaign_id, org_id) = (campaign.row.id, org.id);
    if data
        .db
        .run(move |conn| db::campaigns::remove(conn, campaign_id, org_id))
        .await?
    {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// `follower` now follows the local actor `target`: if `target` is a
/// campaign that invited `follower`, it joins.
pub async fn on_followed(data: &Data, target: &DbActor, follower: &DbActor) -> Result<(), Error> {
    if target.kind != GROUP {
        return Ok(());
    }
    set_participation(data, target.id, follower.id, &[INVITED, LEFT], JOINED).await
}

/// `follower` stopped following the local actor `target`: a participant of
/// a campaign leaves it.
pub async fn on_unfollowed(data: &Data, target: &DbActor, follower: &DbActor) -> Result<(), Error> {
    if target.kind != GROUP {
        return Ok(());
    }
    set_participation(data, target.id, follower.id, &[JOINED], LEFT).await
}

async fn set_participation(
    data: &Data,
    campaign_actor: i64,
    org: i64,
    from: &'static [&'static str],
    to: &'static str,
) -> Result<(), Error> {
    data.db
        .run(move |conn| {
            let Some(campaign) = db::campaigns::by_actor(conn, campaign_actor)? else {
                return Ok(());
            };
            match db::campaigns::participant(conn, campaign.id, org)? {
                Some(p) if from.contains(&p.state.as_str()) => {
                    db::campaigns::set_state(conn, p.id, to)
                }
                _ => Ok(()),
            }
        })
        .await?;
    Ok(())
}

/// The actor ids a received object names: `to`, `cc`, `audience` and the
/// `href` of each tag (a Mention of the campaign, or a tag linking it).
pub fn named_in(note: &NoteJson) -> Vec<String> {
    let mut named: Vec<String> = note
        .to
        .iter()
        .chain(&note.cc)
        .chain(&note.audience)
        .map(Url::to_string)
        .collect();
    named.extend(
        note.tag
            .iter()
            .filter_map(|t| t.get("href")?.as_str().map(str::to_string)),
    );
    named.sort();
    named.dedup();
    named
}

/// An alert arrived, changed or was published here: every local campaign
/// it names in which its author has joined announces it to its followers,
/// at most once (edits reach them through `curation::on_edited`, as for
/// feeds).
pub async fn on_incoming(data: &Data, alert: &AlertRow, named: Vec<String>) -> Result<(), Error> {
    if alert.status != crate::alerts::STATUS_PUBLISHED || named.is_empty() {
        return Ok(());
    }
    let author = alert.actor_id;
    let campaigns = data
        .db
        .run(move |conn| db::campaigns::joined_among(conn, author, &named))
        .await?;
    for (_, actor) in campaigns {
        crate::curation::boost(data, &DbActor::new(actor)?, alert).await?;
    }
    Ok(())
}

/// Resolves the campaigns a local alert names (actor URLs or handles) to
/// (actor id, inbox); each must be a `Group`.
pub async fn resolve_named(data: &Data, named: &[String]) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for handle in named.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
        let actor = organisation(data, handle)
            .await
            .map_err(|_| invalid("campaigns", format!("cannot find campaign {handle}")))?;
        if actor.kind != GROUP {
            return Err(invalid(
                "campaigns",
                format!("{handle} is not a campaign (a Group actor)"),
            ));
        }
        let inbox = actor.shared_inbox.clone().unwrap_or(actor.inbox.clone());
        if !out
            .iter()
            .any(|(id, _): &(String, String)| *id == actor.ap_id)
        {
            out.push((actor.ap_id, inbox));
        }
    }
    Ok(out)
}
