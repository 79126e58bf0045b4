//! The inbox's batch lane. Creates and Updates of alerts, the bulk of what
//! a Clearing House or a hub receives, are applied many to a transaction:
//! a claim's activities are parsed and their alerts prepared (HTML
//! sanitised) first, their actors read in one query, then every alert is
//! stored and every row leaves the queue in the same transaction: an alert
//! is stored exactly when its row goes. Should one activity fail, the claim
//! is applied again with a savepoint per activity, and only the failing one
//! moves on.
//!
//! What needs more than the database (an author to fetch or refresh, a
//! domain policy that could not be read, a failure) moves to the
//! one-at-a-time lane, which fetches, retries and records errors as for any
//! activity. Curation and campaigns follow the commit, as they follow the
//! store in `Create::receive` and `Update::receive`.

use super::{
    activities::{create, update},
    inbox::{Envelope, InboxActivity},
    objects::alert::{store_prepared, NoteJson, PreparedAlert, Stored},
};
use crate::{
    campaigns,
    curation::Curating,
    db::{
        self,
        actors::ActorRow,
        inbox_queue::{self, Outcome, QueuedRow},
        now_ms, DbConn, DbError,
    },
    error::Error,
    state::Data,
};
use std::collections::HashMap;

/// Most rows one claim of the batch lane takes.
pub const CLAIM: i64 = 256;

/// How long a stored remote author is used without a refresh, as
/// activitypub_federation's `dereference` does (20 s in debug builds).
const AUTHOR_FRESH_MS: i64 = if cfg!(debug_assertions) {
    20_000
} else {
    24 * 3600 * 1000
};

/// A claimed Create or Update of an alert, parsed.
struct Parsed {
    row_id: i64,
    ap_id: String,
    /// The activity's actor.
    actor: String,
    /// The object's `attributedTo`, if it has one.
    author: Option<String>,
    /// The campaigns the object names.
    named: Vec<String>,
    /// An Update, with the body as received (for the feeds that boosted
    /// the alert); `None` for a Create.
    update: Option<Option<String>>,
    object: NoteJson,
}

/// What the transaction did with one activity.
enum Applied {
    /// Applied (an alert stored, or nothing to store): the row goes.
    Done(Option<Box<Stored>>),
    /// Needs the one-at-a-time lane.
    Single,
}

/// An alert stored by the transaction, with what its follow-up needs.
struct Followup {
    stored: Stored,
    named: Vec<String>,
    update: Option<Option<String>>,
}

/// A claim made ready for its transaction: parsed, its alerts prepared and
/// its actors read.
pub struct Ready {
    ids: Vec<i64>,
    /// The claim's actors by ActivityPub id, or why they could not be read.
    actors: Result<HashMap<String, ActorRow>, DbError>,
    items: Vec<(Parsed, Option<PreparedAlert>)>,
    /// Rows to drop (a blocked actor's activity, accepted before the block).
    dropped: Vec<(i64, String, Outcome)>,
    /// Rows for the other lane.
    single: Vec<i64>,
}

/// Parses a claim and prepares its alerts (the costly part: sanitising
/// HTML), spread over the runtime's threads, then reads its actors in one
/// query. Needs no write: it can run while the previous claim commits.
pub async fn prepare(data: &Data, rows: Vec<QueuedRow>) -> Ready {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
    let per_part = rows.len().div_ceil(parts).max(1);
    let mut rows = rows.into_iter();
    let mut tasks = Vec::new();
    loop {
        let part: Vec<QueuedRow> = rows.by_ref().take(per_part).collect();
        if part.is_empty() {
            break;
        }
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(part.len());
            for row in part {
                let parsed = parse(&data, &row).await.map(|p| {
                    p.map(|p| {
                        let prepared = PreparedAlert::new(&p.object, 0);
                        (p, prepared)
                    })
                });
                out.push((row.id, row.ap_id, parsed));
            }
            out
        }));
    }
    let (mut dropped, mut single, mut parsed) = (Vec::new(), Vec::new(), Vec::new());
    for task in tasks {
        let Ok(part) = task.await else {
            // A panic while parsing: the whole claim takes the other lane.
            return Ready {
                single: ids.clone(),
                ids,
                actors: Ok(HashMap::new()),
                items: Vec::new(),
                dropped: Vec::new(),
            };
        };
        for (id, ap_id, result) in part {
            match result {
                Ok(Some(p)) => parsed.push(p),
                Ok(None) => dropped.push((id, ap_id, Outcome::Done)),
                Err(_) => single.push(id),
            }
        }
    }
    let actors = load_actors(data, parsed.iter().map(|(p, _)| p)).await;
    let now = now_ms();
    let items = parsed
        .into_iter()
        .map(|(p, prepared)| {
            // Stored by its author's row; none if we must fetch them first.
            let author = actors.as_ref().ok().and_then(|actors| {
                actors
                    .get(p.author.as_ref()?)
                    .filter(|a| a.local || now - a.last_refreshed_at < AUTHOR_FRESH_MS)
            });
            let prepared = author.map(|a| prepared.by(a.id));
            (p, prepared)
        })
        .collect();
    Ready {
        ids,
        actors,
        items,
        dropped,
        single,
    }
}

/// Applies a prepared claim in one transaction, then curates what it
/// stored. Never fails: what cannot be applied here moves to the other
/// lane.
pub async fn commit(data: &Data, ready: Ready) {
    let Ready {
        ids,
        actors,
        items,
        dropped,
        single,
    } = ready;
    let result = match actors {
        Ok(actors) => {
            data.db
                .write(move |conn| {
                    // Optimistic first: no savepoint per activity. Should one
                    // fail, the claim is applied again with a savepoint each,
                    // so that only the failing one moves to the other lane.
                    let plain = db::transaction(conn, |conn| {
                        let (done, single) = (dropped.clone(), single.clone());
                        store_all(conn, &actors, &items, done, single, Isolation::None)
                    });
                    let applied = match plain {
                        Ok(applied) => applied,
                        Err(e) => {
                            tracing::info!(error = %e, "an activity of a batch failed; applying the batch again one savepoint per activity");
                            db::transaction(conn, |conn| {
                                store_all(conn, &actors, &items, dropped, single, Isolation::Savepoint)
                            })?
                        }
                    };
                    // What curation reads, once for the claim.
                    let curating = match applied.0.is_empty() {
                        true => None,
                        false => Some(Curating::read(conn, actors.into_values().collect())?),
                    };
                    Ok((applied, curating))
                })
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(((followups, moved), curating)) => {
            data.reads.invalidate();
            if moved {
                data.inbox.wakeup.notify_one();
            }
            if let Some(curating) = curating {
                for followup in followups {
                    if let Err(e) = follow_up(data, &curating, followup).await {
                        tracing::warn!(error = %e, "curating an incoming alert failed");
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "applying a batch of inbox activities failed; they move to the one-at-a-time lane");
            match data
                .db
                .write(move |conn| inbox_queue::to_single_lane(conn, &ids))
                .await
            {
                Ok(()) => data.inbox.wakeup.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "moving inbox activities failed; their leases will expire")
                }
            }
        }
    }
}

/// Parses a claimed row; `None` when its actor's domain is now blocked
/// (dropped, as the other lane drops it).
async fn parse(data: &Data, row: &QueuedRow) -> Result<Option<Parsed>, Error> {
    let body = row.body.as_bytes();
    let envelope: Envelope = serde_json::from_slice(body)?;
    match data.policies.check_url(&envelope.actor).await {
        Err(Error::Forbidden(_)) => return Ok(None),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let (update, object) = match InboxActivity::parse(&envelope, body)? {
        Some(InboxActivity::CreateNote(a)) => (None, a.object),
        Some(InboxActivity::UpdateNote(a)) => (Some(a.raw), a.object),
        _ => return Err(Error::Internal("not a Create or Update of an alert".into())),
    };
    Ok(Some(Parsed {
        row_id: row.id,
        ap_id: row.ap_id.clone(),
        actor: envelope.actor.to_string(),
        author: object.author().map(|a| a.to_string()),
        named: campaigns::named_in(&object),
        update,
        object,
    }))
}

/// The stored actors and authors of `parsed`, by ActivityPub id.
async fn load_actors<'a>(
    data: &Data,
    parsed: impl Iterator<Item = &'a Parsed>,
) -> Result<HashMap<String, ActorRow>, DbError> {
    let mut urls: Vec<String> = parsed
        .flat_map(|p| std::iter::once(p.actor.clone()).chain(p.author.clone()))
        .collect();
    urls.sort();
    urls.dedup();
    let rows = data
        .db
        .run(move |conn| db::actors::by_ap_ids(conn, &urls))
        .await?;
    Ok(rows.into_iter().map(|a| (a.ap_id.clone(), a)).collect())
}

/// How [`store_all`] keeps one activity's failure from the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// Not at all: the first failure fails the whole claim. A savepoint
    /// makes SQLite's full-text index (FTS5) write out what it holds, one
    /// small segment per alert, which then costs merges: a savepoint per
    /// activity took a quarter of the batch's time.
    None,
    /// One savepoint per activity: one that fails is rolled back alone and
    /// moves to the other lane.
    Savepoint,
}

/// Stores every item and records the claim's rows: done ones leave the
/// queue (with `done`), the others (`single`, and items that need more)
/// move to the other lane. Returns the follow-ups and whether any row moved.
fn store_all(
    conn: &mut DbConn,
    actors: &HashMap<String, ActorRow>,
    items: &[(Parsed, Option<PreparedAlert>)],
    mut done: Vec<(i64, String, Outcome)>,
    mut single: Vec<i64>,
    isolation: Isolation,
) -> Result<(Vec<Followup>, bool), DbError> {
    let mut followups = Vec::new();
    for (item, prepared) in items {
        let applied = match isolation {
            Isolation::None => store_one(conn, actors, item, prepared.clone())?,
            Isolation::Savepoint => {
                match db::transaction(conn, |conn| store_one(conn, actors, item, prepared.clone()))
                {
                    Ok(applied) => applied,
                    Err(e) => {
                        tracing::info!(activity = %item.ap_id, error = %e, "inbox activity moves to the one-at-a-time lane");
                        Applied::Single
                    }
                }
            }
        };
        match applied {
            Applied::Done(stored) => {
                done.push((item.row_id, item.ap_id.clone(), Outcome::Done));
                if let Some(stored) = stored {
                    followups.push(Followup {
                        stored: *stored,
                        named: item.named.clone(),
                        update: item.update.clone(),
                    });
                }
            }
            Applied::Single => single.push(item.row_id),
        }
    }
    inbox_queue::record(conn, &done)?;
    inbox_queue::to_single_lane(conn, &single)?;
    Ok((followups, !single.is_empty()))
}

/// Applies one item by the rule `Create::receive` and `Update::receive`
/// follow (`create::stores`): ignored unless we want the actor's objects
/// (or, for an Update, hold the object); stored if its author is known and
/// fresh, else left to the other lane, which fetches.
fn store_one(
    conn: &mut DbConn,
    actors: &HashMap<String, ActorRow>,
    item: &Parsed,
    prepared: Option<PreparedAlert>,
) -> Result<Applied, DbError> {
    let actor_id = actors.get(&item.actor).map(|a| a.id);
    let update_of = item.update.is_some().then(|| item.object.id.as_str());
    if !create::stores(conn, actor_id, &item.named, update_of)? {
        return Ok(Applied::Done(None));
    }
    match prepared {
        Some(prepared) => Ok(Applied::Done(store_prepared(conn, prepared)?.map(Box::new))),
        None => Ok(Applied::Single),
    }
}

/// Curation and campaigns for a stored alert, as after a Create or Update.
async fn follow_up(data: &Data, curating: &Curating, followup: Followup) -> Result<(), Error> {
    let Followup {
        stored,
        named,
        update,
    } = followup;
    match update {
        None => create::after_store(data, curating, stored, named).await,
        Some(raw) => update::after_store(data, curating, stored, named, raw.as_deref()).await,
    }
}
