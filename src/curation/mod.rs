//! Curation: feeds that boost matching alerts from the actors this
//! instance follows (automatically or after review), the review queue, the
//! member directory, and making edits and deletes reach every copy.

pub mod feeds;
pub mod members;

use std::collections::{HashMap, HashSet};

use crate::{
    alerts::STATUS_DELETED,
    config::{Config, FeedConfig},
    db::{
        self,
        actors::ActorRow,
        alerts::{split_list, AlertRow},
        curation::{FeedRow, ReviewRow, APPROVED, PENDING, REJECTED},
        DbConn, DbError,
    },
    delivery,
    error::Error,
    federation::{activities::announce, objects::actor::DbActor, Urls},
    state::Data,
};

/// `type` of feed actors.
pub const SERVICE: &str = "Service";

/// Which alerts a feed takes; an empty list matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedRules {
    pub regions: Vec<String>,
    pub countries: Vec<String>,
    pub categories: Vec<String>,
    pub languages: Vec<String>,
    pub urgencies: Vec<String>,
    /// Member handles, `user@host` in lower case.
    pub members: Vec<String>,
}

impl FeedRules {
    /// The rules stored for a feed.
    pub fn of(row: &FeedRow) -> FeedRules {
        FeedRules {
            regions: split_list(&row.regions),
            countries: split_list(&row.countries),
            categories: split_list(&row.categories),
            languages: split_list(&row.languages),
            urgencies: split_list(&row.urgencies),
            members: split_list(&row.members),
        }
    }

    /// True when `alert`, by the member `author` (`user@host`), passes
    /// every non-empty rule.
    pub fn matches(&self, alert: &AlertRow, author: &str) -> bool {
        let any = |rule: &[String], values: &[String]| {
            rule.is_empty() || values.iter().any(|v| rule.contains(v))
        };
        let region: Vec<String> = alert.region.iter().cloned().collect();
        any(&self.regions, &region)
            && any(&self.countries, &alert.country_list())
            && any(&self.categories, &alert.category_list())
            && any(&self.languages, std::slice::from_ref(&alert.language))
            && any(&self.urgencies, std::slice::from_ref(&alert.urgency))
            && any(&self.members, &[author.to_lowercase()])
    }
}

/// Seeds the feeds of the configuration: a `[[feeds]]` entry whose
/// username has no feed in the database yet gets its actor (with keys) and
/// its rules. Once a feed exists the database holds it: editors change or
/// retire it in the browser, and the configuration entry is not read again.
pub fn sync_feeds(conn: &mut db::DbConn, config: &Config) -> Result<(), Error> {
    for feed in &config.feeds {
        if let Some((row, _)) = db::curation::feed_by_username(conn, &feed.username)? {
            if row != feed_row(config, feed, row.actor_id, &row) {
                tracing::info!(
                    feed = %feed.username,
                    "[[feeds]] differs from the feed in the database, which wins (edit it at /editor/feeds)"
                );
            }
            continue;
        }
        let actor_id = if feed.username.eq_ignore_ascii_case(&config.actor.username) {
            // The organisation actor is a feed too: only its rules are stored.
            db::actors::local_by_username(conn, &config.actor.username)?
                .ok_or(db::DbError::Query(diesel::result::Error::NotFound))?
                .id
        } else {
            let name = if feed.display_name.is_empty() {
                feed.username.clone()
            } else {
                feed.display_name.clone()
            };
            feeds::ensure_actor(conn, config, &feed.username, &name, &feed.summary)?.id
        };
        let empty = FeedRow {
            actor_id,
            mode: String::new(),
            regions: String::new(),
            countries: String::new(),
            categories: String::new(),
            languages: String::new(),
            urgencies: String::new(),
            members: String::new(),
            retired_at: None,
        };
        db::curation::upsert_feed(conn, &feed_row(config, feed, actor_id, &empty))?;
    }
    Ok(())
}

/// The row a `[[feeds]]` entry describes (keeping `base`'s members and
/// retirement, which the configuration does not set).
fn feed_row(config: &Config, feed: &FeedConfig, actor_id: i64, base: &FeedRow) -> FeedRow {
    let spec = feeds::FeedSpec {
        rules: FeedRules {
            regions: feed.regions.clone(),
            countries: feed.countries.clone(),
            categories: feed.categories.clone(),
            languages: feed.languages.clone(),
            urgencies: feed.urgencies.clone(),
            members: split_list(&base.members),
        },
        ..Default::default()
    };
    FeedRow {
        retired_at: base.retired_at,
        ..spec.row(actor_id, config.feed_mode(feed))
    }
}

/// A new (or newly known) alert from elsewhere: feeds in `auto` mode boost
/// it, feeds in `review` mode queue it for an editor.
pub async fn on_incoming(data: &Data, alert: &AlertRow) -> Result<(), Error> {
    if alert.local || alert.status == STATUS_DELETED {
        return Ok(());
    }
    Curating::load(data, alert.actor_id)
        .await?
        .on_incoming(data, alert)
        .await
}

/// What curating incoming alerts reads: the feeds, who has joined which
/// local campaign, and the alerts' authors read so far. The inbox's batch
/// lane reads it once for a whole claim.
pub struct Curating {
    feeds: Vec<(FeedRow, ActorRow)>,
    /// By participant row id, the open local campaigns (actor ids) they
    /// have joined.
    joined: HashMap<i64, HashSet<String>>,
    authors: HashMap<i64, ActorRow>,
}

impl Curating {
    /// Reads the feeds and the campaigns' participants, on a connection;
    /// `authors` are rows already read.
    pub fn read(conn: &mut DbConn, authors: Vec<ActorRow>) -> Result<Curating, DbError> {
        let mut joined: HashMap<i64, HashSet<String>> = HashMap::new();
        for (campaign, participant) in db::campaigns::joined_pairs(conn)? {
            joined.entry(participant).or_default().insert(campaign);
        }
        Ok(Curating {
            feeds: db::curation::all_feeds(conn)?,
            joined,
            authors: authors.into_iter().map(|a| (a.id, a)).collect(),
        })
    }

    /// Whether curating `alert`, an incoming alert naming the campaigns
    /// `named`, may do anything: a feed that is not retired could take
    /// it, or its author joined one of those campaigns here.
    pub fn has_work(&self, alert: &AlertRow, named: &[String]) -> bool {
        let feeds = self.feeds.iter().any(|(f, _)| f.retired_at.is_none());
        !alert.local
            && alert.status != STATUS_DELETED
            && (feeds || self.joined_any(alert.actor_id, named))
    }

    /// Whether `author_id` has joined one of the local campaigns among
    /// `named` (ActivityPub ids): only then may a campaign announce the
    /// alert (see [`crate::campaigns::on_incoming`]).
    pub fn joined_any(&self, author_id: i64, named: &[String]) -> bool {
        self.joined
            .get(&author_id)
            .is_some_and(|campaigns| named.iter().any(|c| campaigns.contains(c)))
    }

    /// Reads the feeds and the author `author_id` in one database round
    /// trip.
    pub async fn load(data: &Data, author_id: i64) -> Result<Curating, Error> {
        Ok(data
            .db
            .run(move |conn| {
                let author = db::actors::by_id(conn, author_id)?;
                Curating::read(conn, vec![author])
            })
            .await?)
    }

    /// [`on_incoming`] with what was read; an author not read is read now.
    pub async fn on_incoming(&self, data: &Data, alert: &AlertRow) -> Result<(), Error> {
        if alert.local || alert.status == STATUS_DELETED || self.feeds.is_empty() {
            return Ok(());
        }
        // A silenced domain's alerts are kept but never boosted or reviewed.
        let authority = url::Url::parse(&alert.ap_id)
            .map(|u| u.authority().to_string())
            .unwrap_or_default();
        if data.policies.standing(&authority).await? != crate::federation::policy::Standing::Open {
            return Ok(());
        }
        let author = match self.authors.get(&alert.actor_id) {
            Some(author) => author.clone(),
            None => {
                let id = alert.actor_id;
                data.db.run(move |conn| db::actors::by_id(conn, id)).await?
            }
        };
        let author = format!("{}@{}", author.username, author.domain);
        let mut to_review = Vec::new();
        for (row, actor) in &self.feeds {
            if row.retired_at.is_some() || !FeedRules::of(row).matches(alert, &author) {
                continue;
            }
            match row.mode.as_str() {
                "auto" => boost(data, &DbActor::new(actor.clone())?, alert).await?,
                "review" => to_review.push(actor.username.clone()),
                _ => {}
            }
        }
        if !to_review.is_empty() {
            let alert_id = alert.id;
            data.db
                .run(move |conn| db::curation::queue_for_review(conn, alert_id, &to_review))
                .await?;
        }
        Ok(())
    }
}

/// `feed` boosts `alert` unless it already did; the Announce goes to the
/// feed's followers and the author. The boost is recorded in the
/// transaction that queues it, so it is never recorded yet unsent.
pub async fn boost(data: &Data, feed: &DbActor, alert: &AlertRow) -> Result<(), Error> {
    let (alert_id, author_id) = (alert.id, alert.actor_id);
    let (urls, feed, object) = (Urls::new(&data.config), feed.clone(), alert.ap_id.clone());
    data.db
        .run(move |conn| {
            Ok(db::try_transaction(conn, |conn| {
                let author = db::actors::by_id(conn, author_id)?;
                let activity = announce::build(&urls, &feed, &object, &author.ap_id);
                let ap_id = activity["id"].as_str().unwrap_or_default().to_string();
                if !db::curation::record_announce(conn, feed.id, alert_id, &ap_id)? {
                    return Ok(());
                }
                let mut inboxes = db::follows::follower_inboxes(conn, feed.id)?;
                if !author.local {
                    inboxes.push(author.shared_inbox.clone().unwrap_or(author.inbox.clone()));
                }
                delivery::enqueue_in(conn, &feed.row, activity, &inboxes)?;
                Ok::<_, Error>(())
            }))
        })
        .await??;
    delivery::wake(data);
    Ok(())
}

/// The text an approval diff compares: the title, a blank line, and the
/// text as Markdown (paragraphs kept; the title line and hashtags that a
/// Note carries for Mastodon left out).
pub fn review_text(alert: &AlertRow) -> String {
    format!(
        "{}\n\n{}",
        alert.title,
        crate::alerts::markdown::from_html(&alert.content_html, Some(&alert.title))
    )
}

/// The review item `id`, which must still be pending.
async fn pending_item(data: &Data, id: i64) -> Result<ReviewRow, Error> {
    let item = data
        .db
        .run(move |conn| db::curation::review(conn, id))
        .await?;
    if item.state != PENDING {
        return Err(Error::Validation {
            field: "id".into(),
            message: format!("the item is already {}", item.state),
        });
    }
    Ok(item)
}

/// The feed actors with these usernames; an unknown one is a field error.
async fn feeds_named(data: &Data, names: &[String]) -> Result<Vec<DbActor>, Error> {
    let all = data.db.run(db::curation::all_feeds).await?;
    names
        .iter()
        .map(|name| {
            let (_, actor) = all
                .iter()
                .find(|(f, a)| &a.username == name && f.retired_at.is_none())
                .ok_or_else(|| Error::Validation {
                    field: "feeds".into(),
                    message: format!("no feed {name}"),
                })?;
            DbActor::new(actor.clone())
        })
        .collect()
}

/// An editor approves a review item: the chosen feeds (default: every
/// matched one) boost the member's original.
pub async fn approve(
    data: &Data,
    item_id: i64,
    feeds: Option<Vec<String>>,
    editor: &str,
) -> Result<ReviewRow, Error> {
    let item = pending_item(data, item_id).await?;
    let chosen = feeds.unwrap_or_else(|| item.matched());
    let boosting = feeds_named(data, &chosen).await?;
    let alert_id = item.alert_id;
    let alert = data
        .db
        .run(move |conn| db::alerts::by_id(conn, alert_id))
        .await?;
    if alert.status == STATUS_DELETED {
        return Err(Error::Validation {
            field: "id".into(),
            message: "the member deleted this alert".into(),
        });
    }
    for feed in &boosting {
        boost(data, feed, &alert).await?;
    }
    let editor = editor.to_string();
    let text = review_text(&alert);
    Ok(data
        .db
        .run(move |conn| {
            db::curation::decide(conn, item_id, APPROVED, &chosen, None, &editor, None)?;
            db::curation::record_approved_text(conn, item_id, &text)?;
            db::curation::review(conn, item_id)
        })
        .await?)
}

/// What an editor changes when curating; absent fields keep the member's.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurateInput {
    /// New headline.
    #[serde(default)]
    pub title: Option<String>,
    /// New Markdown body; a credit line linking the original is added.
    #[serde(default)]
    pub body: Option<String>,
    /// Feeds that boost the curated version (default: every matched feed).
    #[serde(default)]
    pub feeds: Option<Vec<String>>,
    /// Edited language versions, published as translations of the curated
    /// version (each credits the original too).
    #[serde(default)]
    pub translations: Vec<CuratedTranslation>,
}

/// One language version of a curated alert.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CuratedTranslation {
    /// Its language tag.
    pub language: String,
    /// Its headline.
    pub title: String,
    /// Its Markdown body.
    pub body: String,
}

/// An editor curates a review item: this instance's organisation publishes
/// its own edited version, which credits, links and quotes (FEP-044f) the
/// member's original, and the chosen feeds boost that version.
pub async fn curate(
    data: &Data,
    item_id: i64,
    input: CurateInput,
    editor: &str,
) -> Result<(ReviewRow, AlertRow), Error> {
    let item = pending_item(data, item_id).await?;
    let alert_id = item.alert_id;
    let (original, member) = data
        .db
        .run(move |conn| {
            let alert = db::alerts::by_id(conn, alert_id)?;
            let member = db::actors::by_id(conn, alert.actor_id)?;
            Ok((alert, member))
        })
        .await?;
    let link = original
        .url
        .clone()
        .unwrap_or_else(|| original.ap_id.clone());
    let member_name = member
        .name
        .clone()
        .unwrap_or_else(|| member.username.clone());
    let body = input.body.unwrap_or_else(|| {
        crate::alerts::markdown::from_html(&original.content_html, Some(&original.title))
    });
    let language = if original.language == "und" {
        "en".to_string()
    } else {
        original.language.clone()
    };
    // Checked before anything is published, so a bad translation does not
    // leave a curated version behind with the item still pending.
    let mut seen = vec![language.clone()];
    for t in &input.translations {
        let bad = |message: String| Error::Validation {
            field: "translations".into(),
            message,
        };
        if !crate::alerts::input::is_language_tag(&t.language) {
            return Err(bad(format!("{} is not a language tag", t.language)));
        }
        if seen.contains(&t.language) {
            return Err(bad(format!("{} is given twice", t.language)));
        }
        if t.title.trim().is_empty() || t.body.trim().is_empty() {
            return Err(bad(format!(
                "the {} version needs a title and a text",
                t.language
            )));
        }
        seen.push(t.language.clone());
    }
    let curated_input = crate::alerts::input::AlertInput {
        title: input.title.unwrap_or_else(|| original.title.clone()),
        body: format!("{body}\n\n*Originally published by [{member_name}]({link}).*"),
        language,
        countries: original.country_list(),
        categories: original.category_list(),
        urgency: original.urgency.clone(),
        incident_date: original.incident_date.clone(),
        case: original.case_ap_id.clone(),
        content_warning: original.summary.clone(),
        attachments: vec![],
        status: None,
        campaigns: vec![],
    };
    let us = crate::federation::activities::follow::local_actor(data, &data.config.actor.username)
        .await?;
    let curated = crate::alerts::publish::create_quoting(
        data,
        &us,
        curated_input,
        None,
        Some(original.ap_id.clone()),
    )
    .await?;
    for t in input.translations {
        crate::alerts::publish::add_translation(
            data,
            &us,
            &curated,
            crate::alerts::publish::TranslationInput {
                language: t.language,
                title: t.title,
                body: format!("{}\n\n*[{member_name}]({link})*", t.body),
                content_warning: original.summary.clone(),
            },
        )
        .await?;
    }
    let chosen = input.feeds.unwrap_or_else(|| item.matched());
    for feed in feeds_named(data, &chosen).await? {
        boost(data, &feed, &curated).await?;
    }
    let (editor, curated_id) = (editor.to_string(), curated.id);
    let text = review_text(&original);
    let item = data
        .db
        .run(move |conn| {
            db::curation::record_approved_text(conn, item_id, &text)?;
            db::curation::decide(
                conn,
                item_id,
                db::curation::CURATED,
                &chosen,
                None,
                &editor,
                Some(curated_id),
            )?;
            db::curation::review(conn, item_id)
        })
        .await?;
    Ok((item, curated))
}

/// An editor rejects a review item, with a reason kept.
pub async fn reject(
    data: &Data,
    item_id: i64,
    reason: &str,
    editor: &str,
) -> Result<ReviewRow, Error> {
    if reason.trim().is_empty() {
        return Err(Error::Validation {
            field: "reason".into(),
            message: "a rejection needs a reason".into(),
        });
    }
    pending_item(data, item_id).await?;
    let (reason, editor) = (reason.to_string(), editor.to_string());
    Ok(data
        .db
        .run(move |conn| {
            db::curation::decide(conn, item_id, REJECTED, &[], Some(&reason), &editor, None)?;
            db::curation::review(conn, item_id)
        })
        .await?)
}

/// A member edited an alert we hold: flag approved review items and
/// forward the member's own activity, unchanged, to the followers of every
/// feed that boosted it (their servers hold a copy a boost alone would not
/// refresh).
pub async fn on_edited(data: &Data, alert: &AlertRow, raw_activity: &str) -> Result<(), Error> {
    let alert_id = alert.id;
    data.db
        .run(move |conn| db::curation::mark_edited_after_approval(conn, alert_id))
        .await?;
    forward_to_boosters(data, alert_id, raw_activity).await?;
    reannounce(data, alert).await
}

/// An edit we learned by refetching (no activity to forward): flag
/// approved items and let our feeds announce it again.
pub async fn on_refetched_edit(data: &Data, alert: &AlertRow) -> Result<(), Error> {
    let alert_id = alert.id;
    data.db
        .run(move |conn| db::curation::mark_edited_after_approval(conn, alert_id))
        .await?;
    reannounce(data, alert).await
}

/// Every feed that boosted `alert` announces it again, so that receivers
/// which refetch a boosted object they hold (Tocsin does, when the Announce
/// is newer than its copy) pick the edit up even if the forwarded Update
/// did not reach them. Mastodon keeps one boost per account and ignores it.
async fn reannounce(data: &Data, alert: &AlertRow) -> Result<(), Error> {
    let alert_id = alert.id;
    let boosts = data
        .db
        .run(move |conn| db::curation::announces_of(conn, alert_id))
        .await?;
    let urls = Urls::new(&data.config);
    for (_, actor) in boosts {
        let feed = DbActor::new(actor)?;
        let author_id = alert.actor_id;
        let author = data
            .db
            .run(move |conn| db::actors::by_id(conn, author_id))
            .await?;
        let activity = announce::build(&urls, &feed, &alert.ap_id, &author.ap_id);
        let feed_id = feed.id;
        let inboxes = data
            .db
            .run(move |conn| db::follows::follower_inboxes(conn, feed_id))
            .await?;
        if !inboxes.is_empty() {
            delivery::send_json(data, &feed, activity, inboxes).await?;
        }
    }
    Ok(())
}

/// A member deleted an alert we hold: its Delete is forwarded to the
/// feeds' followers and every feed undoes its boost.
pub async fn on_deleted(data: &Data, alert: &AlertRow, raw_activity: &str) -> Result<(), Error> {
    let alert_id = alert.id;
    forward_to_boosters(data, alert_id, raw_activity).await?;
    let boosts = data
        .db
        .run(move |conn| db::curation::announces_of(conn, alert_id))
        .await?;
    let urls = Urls::new(&data.config);
    for (row, actor) in boosts {
        let feed = DbActor::new(actor)?;
        let undo = announce::build_undo(&urls, &feed, &row.ap_id, &alert.ap_id);
        let id = row.id;
        // The boost is marked undone where its Undo is queued.
        data.db
            .run(move |conn| {
                Ok(db::try_transaction(conn, |conn| {
                    db::curation::mark_undone(conn, id)?;
                    let inboxes = db::follows::follower_inboxes(conn, feed.id)?;
                    if !inboxes.is_empty() {
                        delivery::enqueue_in(conn, &feed.row, undo, &inboxes)?;
                    }
                    Ok::<_, Error>(())
                }))
            })
            .await??;
    }
    delivery::wake(data);
    Ok(())
}

async fn forward_to_boosters(data: &Data, alert_id: i64, raw_activity: &str) -> Result<(), Error> {
    let boosts = data
        .db
        .run(move |conn| db::curation::announces_of(conn, alert_id))
        .await?;
    let Some((_, via)) = boosts.first() else {
        return Ok(());
    };
    let mut inboxes = Vec::new();
    for (_, feed) in &boosts {
        let feed_id = feed.id;
        inboxes.extend(
            data.db
                .run(move |conn| db::follows::follower_inboxes(conn, feed_id))
                .await?,
        );
    }
    inboxes.sort();
    inboxes.dedup();
    if inboxes.is_empty() {
        return Ok(());
    }
    let activity: serde_json::Value = serde_json::from_str(raw_activity)?;
    let id = activity["id"].as_str().unwrap_or_default().to_string();
    let already = data
        .db
        .run(move |conn| db::activities::outgoing_by_ap_id(conn, &id))
        .await?
        .is_some();
    if already {
        return Ok(());
    }
    delivery::forward(
        data,
        &DbActor::new(via.clone())?,
        &activity,
        raw_activity,
        inboxes,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::alerts::join_list;

    fn alert(region: &str, country: &str, category: &str, language: &str) -> AlertRow {
        AlertRow {
            language: language.into(),
            countries: join_list(&[country.to_string()]),
            region: Some(region.into()),
            categories: join_list(&[category.to_string()]),
            ..AlertRow::sample(1)
        }
    }

    #[test]
    fn empty_rules_match_everything_and_each_rule_narrows() {
        let a = alert("africa", "NG", "detention", "en");
        assert!(FeedRules::default().matches(&a, "alerts@ngo.example"));
        let africa = FeedRules {
            regions: vec!["africa".into()],
            ..Default::default()
        };
        assert!(africa.matches(&a, "alerts@ngo.example"));
        assert!(!africa.matches(
            &alert("mena", "EG", "detention", "en"),
            "alerts@ngo.example"
        ));
        let french_killings = FeedRules {
            categories: vec!["killing".into()],
            languages: vec!["fr".into()],
            ..Default::default()
        };
        assert!(!french_killings.matches(&a, "alerts@ngo.example"));
        assert!(french_killings.matches(
            &alert("africa", "SN", "killing", "fr"),
            "alerts@ngo.example"
        ));
        let urgent = FeedRules {
            urgencies: vec!["update".into()],
            ..Default::default()
        };
        assert!(!urgent.matches(&a, "alerts@ngo.example"));
        let one_member = FeedRules {
            members: vec!["alerts@ngo.example".into()],
            ..Default::default()
        };
        assert!(one_member.matches(&a, "Alerts@NGO.example"));
        assert!(!one_member.matches(&a, "alerts@other.example"));
    }
}
