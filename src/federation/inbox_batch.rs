//! Creates and Updates of alerts, the bulk of what a Clearing House or a
//! hub receives, applied many to a transaction. They come two ways:
//!
//! - **At once, by the inbox's writer** ([`store_accepted`]). The inbox
//!   parses a verified Create or Update and prepares its alert (sanitised
//!   HTML) while handling the request; the writer stores everything that
//!   arrived together in one transaction, and there an alert whose author
//!   is stored and fresh is stored too. Its activity id is not recorded as
//!   received: a copy is known by the stored alert, and changes nothing
//!   ([`store_prepared`]). The 202 follows the commit, so the alert is as
//!   durable as a queued activity, without being written to the queue,
//!   claimed and deleted again.
//! - **From the queue, by the batch lane** ([`prepare`], [`commit`]): rows
//!   queued with `batch` set (by a writer that does not apply at once,
//!   `[inbox] enqueue_batch_ms = 0`, or a group whose transaction failed).
//!   A claim's rows are parsed and prepared, their actors read in one
//!   query, then every alert is stored and every row leaves the queue in
//!   the same transaction: an alert is stored exactly when its row goes.
//!
//! Both store without a savepoint per activity; should one fail, the
//! transaction is rolled back and the writer queues its group instead, the
//! batch lane applies its claim again with a savepoint per activity, so
//! only the failing one moves on. What needs more than the database (an
//! author to fetch or refresh, a domain policy that could not be read, a
//! failure) goes to the one-at-a-time lane, which fetches, retries and
//! records errors as for any activity. Curation and campaigns follow the
//! commit, as they follow the store in `Create::receive` and
//! `Update::receive` ([`store_and_follow_up`]); each path records, in the
//! transaction that stores an alert, that its curation is pending, so a
//! crash before it is curated loses nothing ([`curate_left_over`]).

use super::{
    activities::{create, update},
    envelope::Envelope,
    inbox::InboxActivity,
    objects::{
        actor::DbActor,
        alert::{
            prepare_remote, store_prepared, store_prepared_after, NoteJson, PreparedAlert, Prior,
            Stored,
        },
    },
};
use crate::{
    campaigns,
    curation::Curating,
    db::{
        self,
        actors::ActorRow,
        alerts::{AlertRow, AlertValues},
        inbox_queue::{self, NewQueued, Outcome, QueuedRow},
        now_ms, DbConn, DbError,
    },
    error::Error,
    state::Data,
};
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};
use url::Url;

/// Most rows one claim of the batch lane takes.
pub const CLAIM: i64 = 256;

/// How long a stored remote author is used without a refresh, as
/// activitypub_federation's `dereference` does (20 s in debug builds).
const AUTHOR_FRESH_MS: i64 = if cfg!(debug_assertions) {
    20_000
} else {
    24 * 3600 * 1000
};

/// A Create or Update of an alert, parsed.
pub struct Incoming {
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

impl Incoming {
    /// The Create or Update of an alert `activity` (with id `ap_id`, by
    /// `actor`); `None` for any other activity.
    pub fn from_activity(ap_id: String, actor: &Url, activity: InboxActivity) -> Option<Incoming> {
        let (update, object) = match activity {
            InboxActivity::CreateNote(a) => (None, a.object),
            InboxActivity::UpdateNote(a) => (Some(a.raw), a.object),
            _ => return None,
        };
        Some(Incoming {
            ap_id,
            actor: actor.to_string(),
            author: object.author().map(|a| a.to_string()),
            named: campaigns::named_in(&object),
            update,
            object,
        })
    }

    /// Its alert, prepared (sanitised) for storing.
    pub fn prepare(&self) -> PreparedAlert {
        PreparedAlert::new(&self.object, 0).with_update(self.update.is_some())
    }

    /// What curating its stored alert needs.
    fn followup(&self, stored: Stored) -> Followup {
        Followup {
            stored,
            named: self.named.clone(),
            update: self.update.clone(),
            marker: None,
        }
    }

    /// The actor ids it needs read: its actor and its author.
    fn actor_ids(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.actor.clone()).chain(self.author.clone())
    }

    /// `prepared` by its author's row, if the author is stored and fresh;
    /// `None` if we must fetch them first.
    fn by_author(
        &self,
        actors: &HashMap<String, ActorRow>,
        prepared: PreparedAlert,
        now: i64,
    ) -> Option<PreparedAlert> {
        let author = actors
            .get(self.author.as_ref()?)
            .filter(|a| a.local || now - a.last_refreshed_at < AUTHOR_FRESH_MS)?;
        Some(prepared.by(author.id))
    }
}

/// What is queued of an accepted activity that is not applied at once,
/// and what the inbox's journal keeps of it. The body stays the request's
/// bytes, shared and not copied: most activities the writer gets are
/// applied at once and never queued.
#[derive(Debug, PartialEq, Eq)]
pub struct AcceptedItem {
    /// The activity's id.
    pub ap_id: String,
    /// The actor whose HTTP signature was verified.
    pub signer: String,
    /// The activity as received.
    pub body: actix_web::web::Bytes,
    /// A Create or Update of an alert: the batch lane applies it.
    pub batch: bool,
}

impl AcceptedItem {
    /// The queue's row for it, in the lane `batch`: the body as text
    /// (it parsed as JSON, so it is UTF-8; anything else is replaced).
    pub fn queued(&self, batch: bool) -> NewQueued {
        NewQueued {
            ap_id: self.ap_id.clone(),
            signer: self.signer.clone(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
            batch,
        }
    }
}

/// An activity the inbox accepted, for its writer: a Create or Update of an
/// alert comes parsed, with its alert prepared.
pub struct Accepted {
    /// What is queued if it is not applied at once.
    pub item: AcceptedItem,
    /// The alert to store at once, if it is one; the writer takes the
    /// prepared values (`None` once taken) rather than copy them.
    pub alert: Option<(Incoming, Option<PreparedAlert>)>,
    /// The actor as the signature check read it (from the database, or
    /// cached for at most a minute, shared with that cache), when the actor
    /// signed: the writer need not read it again.
    pub signer: Option<Arc<DbActor>>,
}

/// What the transaction did with one activity.
enum Applied {
    /// Applied (an alert stored, or nothing to store): the row goes.
    Done(Option<Box<Stored>>),
    /// Needs the one-at-a-time lane.
    Single,
}

/// An alert stored by the transaction, with what its follow-up needs.
pub struct Followup {
    stored: Stored,
    named: Vec<String>,
    /// `Some` after an Update, with the activity to forward.
    update: Option<Option<String>>,
    /// Its `curation_pending` row, when there is curating to do.
    marker: Option<i64>,
}

impl Followup {
    /// Whether it is an edit of an alert we held (after an Update): then
    /// the Update is forwarded to the feeds' followers, not boosted anew.
    fn is_edit(&self) -> bool {
        matches!(self.stored, Stored::Updated(_)) && self.update.is_some()
    }

    /// The follow-up of a `curation_pending` row left by a process that
    /// stopped before curating `row`.
    fn left_over(pending: db::curation::PendingCuration, row: AlertRow) -> Followup {
        let named = serde_json::from_str(&pending.named).unwrap_or_default();
        let (stored, update) = match pending.edit {
            true => (Stored::Updated(row), Some(pending.raw_activity)),
            false => (Stored::New(row), None),
        };
        Followup {
            stored,
            named,
            update,
            marker: Some(pending.id),
        }
    }
}

/// The alerts a transaction stored, with what curating them reads (once
/// for them all): their curation and campaigns follow the commit.
pub struct Followups {
    curating: Curating,
    items: Vec<Followup>,
}

impl Followups {
    /// Reads what curating `items` needs, inside the transaction that
    /// stored them (`actors`: rows already read), and records in
    /// `curation_pending` each alert there is curating to do for, so that
    /// a crash before its curation is over cannot lose it. `None` when
    /// nothing was stored.
    fn read(
        conn: &mut DbConn,
        actors: Vec<ActorRow>,
        mut items: Vec<Followup>,
    ) -> Result<Option<Followups>, DbError> {
        if items.is_empty() {
            return Ok(None);
        }
        let curating = Curating::read(conn, actors)?;
        for item in &mut items {
            let (Stored::New(row) | Stored::Updated(row)) = &item.stored;
            if !curating.has_work(row, &item.named) {
                continue;
            }
            let edit = item.is_edit();
            let raw = item.update.clone().flatten().filter(|_| edit);
            item.marker = Some(db::curation::mark_pending(
                conn,
                row.id,
                edit,
                raw.as_deref(),
                &item.named,
            )?);
        }
        Ok(Some(Followups { curating, items }))
    }

    /// Curates every stored alert (feeds' boosts, the review queue,
    /// campaigns), in order; a failure is logged and the rest go on. Then
    /// their `curation_pending` rows go.
    pub async fn run(self, data: &Data) {
        let mut done = Vec::new();
        for followup in self.items {
            done.extend(followup.marker);
            if let Err(e) = follow_up(data, &self.curating, followup).await {
                tracing::warn!(error = %e, "curating an incoming alert failed");
            }
        }
        if done.is_empty() {
            return;
        }
        if let Err(e) = data
            .db
            .write(move |conn| db::curation::forget_pending(conn, &done))
            .await
        {
            tracing::warn!(error = %e, "cannot forget curated alerts; they are curated again at the next start");
        }
    }
}

/// Stores an incoming alert `json` (from a Create, or from an Update when
/// `update` is `Some`, with the activity to forward) for the one-at-a-time
/// lane, and curates it: its pending curation is recorded in the
/// transaction that stores it, as the batch lane and the writer do. A copy
/// that changes nothing is not curated again.
pub async fn store_and_follow_up(
    data: &Data,
    json: NoteJson,
    named: Vec<String>,
    update: Option<Option<String>>,
) -> Result<(), Error> {
    let (actor, prepared) = prepare_remote(data, &json).await?;
    let prepared = prepared.with_update(update.is_some());
    let followups = data
        .db
        .run(move |conn| {
            db::transaction(conn, |conn| {
                let Some(stored) = store_prepared(conn, prepared)? else {
                    return Ok(None);
                };
                let item = Followup {
                    stored,
                    named,
                    update,
                    marker: None,
                };
                Followups::read(conn, vec![actor.row], vec![item])
            })
        })
        .await?;
    if let Some(followups) = followups {
        followups.run(data).await;
    }
    Ok(())
}

/// Pending curations read at a time by [`curate_left_over`].
const LEFT_OVER_BATCH: i64 = 256;

/// Curates the alerts whose curation a process that stopped (a crash, a
/// kill) left unfinished: the `curation_pending` rows recorded before
/// `before_ms`, the start of this process. Curating twice is harmless: a
/// feed boosts an alert once, and the review queue holds it once. Returns
/// how many were curated. Each row is taken once, even if forgetting it
/// fails.
pub async fn curate_left_over(data: &Data, before_ms: i64) -> Result<usize, Error> {
    let (mut total, mut after) = (0, 0);
    loop {
        let followups = data
            .db
            .run(move |conn| {
                let pending =
                    db::curation::pending_before(conn, before_ms, after, LEFT_OVER_BATCH)?;
                let last = pending.last().map(|p| p.id);
                let mut items = Vec::with_capacity(pending.len());
                for p in pending {
                    let row = db::alerts::by_id(conn, p.alert_id)?;
                    items.push(Followup::left_over(p, row));
                }
                let count = items.len();
                let followups = match items.is_empty() {
                    true => None,
                    false => Some(Followups {
                        curating: Curating::read(conn, Vec::new())?,
                        items,
                    }),
                };
                Ok((followups, count, last))
            })
            .await?;
        let (Some(followups), count, Some(last)) = followups else {
            return Ok(total);
        };
        (total, after) = (total + count, last);
        followups.run(data).await;
    }
}

/// What the inbox's writer did with a group of accepted activities.
pub struct Written {
    /// Per activity, in order: false if the same id was received or queued
    /// before (a copy, dropped).
    pub new: Vec<bool>,
    /// Some were queued for the batch lane.
    pub queued_batch: bool,
    /// Some were queued for the one-at-a-time lane.
    pub queued_single: bool,
    /// The alerts stored, to curate.
    pub followups: Option<Followups>,
}

/// Stores a group of accepted activities in one transaction, for the
/// inbox's writer: a Create or Update of an alert whose author is stored
/// and fresh is applied at once (nothing queued, its id not recorded: a
/// copy is known by its alert); any other activity, and an alert that
/// needs a fetch, is queued. A copy of an activity received or queued
/// before is dropped. No savepoint per activity: on an error the caller
/// queues the whole group instead ([`queue_accepted`]).
pub fn store_accepted(conn: &mut DbConn, group: &mut [Accepted]) -> Result<Written, DbError> {
    db::transaction(conn, |conn| store_group(conn, group))
}

/// [`store_accepted`] inside its transaction.
fn store_group(conn: &mut DbConn, group: &mut [Accepted]) -> Result<Written, DbError> {
    let mut actors: HashMap<String, ActorRow> = HashMap::new();
    for signer in group.iter().filter_map(|a| a.signer.as_ref()) {
        actors
            .entry(signer.row.ap_id.clone())
            .or_insert_with(|| signer.row.clone());
    }
    // Authors who did not sign (rare) are read.
    let urls: Vec<String> = actor_ids(
        group
            .iter()
            .filter_map(|a| a.alert.as_ref().map(|(i, _)| i)),
    )
    .into_iter()
    .filter(|url| !actors.contains_key(url))
    .collect();
    actors.extend(read_actors(conn, &urls)?);
    let now = now_ms();
    let ids: Vec<&str> = group.iter().map(|a| a.item.ap_id.as_str()).collect();
    let alerts: Vec<&str> = group
        .iter()
        .filter_map(|a| a.alert.as_ref()?.1.as_ref())
        .map(PreparedAlert::ap_id)
        .collect();
    // PostgreSQL inserts the group's plain new alerts in one statement.
    let defer = matches!(conn, DbConn::Pg(_));
    let mut prior = GroupPrior::read(conn, &ids, &alerts, &actors, defer)?;
    // Taken, not copied: if the transaction fails, the group is queued
    // from its items alone.
    let mut taken: Vec<Option<PreparedAlert>> = group
        .iter_mut()
        .map(|a| a.alert.as_mut().and_then(|(_, prepared)| prepared.take()))
        .collect();
    let group: &[Accepted] = group;
    let (mut new, mut seen) = (Vec::with_capacity(group.len()), HashSet::new());
    let (mut queue, mut followups) = (Vec::new(), Vec::new());
    for (n, Accepted { item, alert, .. }) in group.iter().enumerate() {
        let ap_id = item.ap_id.as_str();
        if !seen.insert(ap_id) || prior.known.contains(ap_id) {
            new.push(false);
            continue;
        }
        new.push(true);
        if let Some((incoming, _)) = alert {
            let prepared = taken[n]
                .take()
                .and_then(|prepared| incoming.by_author(&actors, prepared, now));
            // What is about to be read (an Update's object, an alert
            // stored now) may be among the deferred alerts.
            let stored_now = prepared.as_ref().is_some_and(|p| !prior.defers(p));
            if incoming.update.is_some() || stored_now {
                insert_deferred(conn, &mut prior, group, &mut followups)?;
            }
            if let Applied::Done(stored) =
                store_one(conn, &actors, incoming, prepared, &mut prior, n)?
            {
                followups.extend(stored.map(|stored| incoming.followup(*stored)));
                continue;
            }
        }
        // An alert that needs its author fetched, or any other activity.
        queue.push(item.queued(false));
    }
    insert_deferred(conn, &mut prior, group, &mut followups)?;
    inbox_queue::insert(conn, &queue)?;
    Ok(Written {
        new,
        queued_batch: false,
        queued_single: !queue.is_empty(),
        followups: Followups::read(conn, actors.into_values().collect(), followups)?,
    })
}

/// Inserts the alerts `prior` deferred, and adds their follow-ups (`group`:
/// the items their tags index).
fn insert_deferred(
    conn: &mut DbConn,
    prior: &mut GroupPrior,
    group: &[Accepted],
    followups: &mut Vec<Followup>,
) -> Result<(), DbError> {
    for (n, row) in prior.write_deferred(conn)? {
        if let Some((incoming, _)) = &group[n].alert {
            followups.push(incoming.followup(Stored::New(row)));
        }
    }
    Ok(())
}

/// Whether some local actor follows each of `actors`, by row id, in one
/// query (`create::stores` asks it of every alert's actor).
fn followed_among(
    conn: &mut DbConn,
    actors: &HashMap<String, ActorRow>,
) -> Result<HashMap<i64, bool>, DbError> {
    let ids: Vec<i64> = actors.values().map(|a| a.id).collect();
    let followed = db::follows::followed_locally_among(conn, &ids)?;
    Ok(ids
        .into_iter()
        .map(|id| (id, followed.contains(&id)))
        .collect())
}

/// What the database held of a group's (or a batch claim's) activities,
/// alerts and actors when its transaction began, read in five queries
/// rather than three per activity (on PostgreSQL each was a round trip),
/// and what the group has written since.
struct GroupPrior {
    /// The group's activity ids received or queued before.
    known: HashSet<String>,
    /// Its alerts' ids that a Delete removed earlier.
    tombstoned: HashSet<String>,
    /// Its alerts stored before, by id.
    stored: HashMap<String, AlertRow>,
    /// Whether a local actor follows each of the actors, by row id.
    followed: HashMap<i64, bool>,
    /// Alert ids this transaction wrote: what was read of them is stale,
    /// so a second copy in the group reads them again.
    written: HashSet<String>,
    /// Whether new alerts with nothing else to write wait in `deferred`
    /// to be inserted together.
    defer: bool,
    /// New alerts not yet inserted, each with the caller's tag.
    deferred: Vec<(usize, AlertValues)>,
}

impl GroupPrior {
    /// Reads what is known of the activities `ids` (none for rows already
    /// in the queue), of the alerts `alerts` and of `actors`. With `defer`,
    /// a new alert with nothing else to write waits for
    /// [`GroupPrior::write_deferred`]; the caller calls it before anything
    /// that may read such an alert.
    fn read(
        conn: &mut DbConn,
        ids: &[&str],
        alerts: &[&str],
        actors: &HashMap<String, ActorRow>,
        defer: bool,
    ) -> Result<GroupPrior, DbError> {
        Ok(GroupPrior {
            known: inbox_queue::known_among(conn, ids)?,
            tombstoned: db::alerts::tombstoned_among(conn, alerts)?,
            stored: db::alerts::by_ap_ids(conn, alerts)?
                .into_iter()
                .map(|row| (row.ap_id.clone(), row))
                .collect(),
            followed: followed_among(conn, actors)?,
            written: HashSet::new(),
            defer,
            deferred: Vec::new(),
        })
    }

    /// Whether [`GroupPrior::store`] would defer `prepared`: a new plain
    /// alert (its row alone), not written, stored or deleted before.
    fn defers(&self, prepared: &PreparedAlert) -> bool {
        let ap_id = prepared.ap_id();
        self.defer
            && prepared.is_plain()
            && !self.written.contains(ap_id)
            && !self.tombstoned.contains(ap_id)
            && !self.stored.contains_key(ap_id)
    }

    /// Stores `prepared` by what was read before, unless this transaction
    /// already wrote the same alert. A new alert with nothing else to write
    /// may be deferred (see [`GroupPrior::read`]), under `tag`: `None` then.
    fn store(
        &mut self,
        conn: &mut DbConn,
        prepared: PreparedAlert,
        tag: usize,
    ) -> Result<Option<Stored>, DbError> {
        let ap_id = prepared.ap_id();
        if self.written.contains(ap_id) {
            return store_prepared(conn, prepared);
        }
        if self.defers(&prepared) {
            let values = prepared.into_plain_row();
            self.written.insert(values.ap_id.clone());
            self.deferred.push((tag, values));
            return Ok(None);
        }
        let prior = match self.tombstoned.contains(ap_id) {
            true => Prior::Tombstoned,
            false => Prior::Stored(self.stored.remove(ap_id)),
        };
        self.written.insert(ap_id.to_string());
        store_prepared_after(conn, prepared, prior)
    }

    /// Inserts the deferred alerts; their rows, with their tags.
    fn write_deferred(&mut self, conn: &mut DbConn) -> Result<Vec<(usize, AlertRow)>, DbError> {
        if self.deferred.is_empty() {
            return Ok(Vec::new());
        }
        let (tags, values): (Vec<usize>, Vec<AlertValues>) = self.deferred.drain(..).unzip();
        Ok(tags
            .into_iter()
            .zip(db::alerts::insert_many(conn, values)?)
            .collect())
    }
}

/// Queues a whole group as received (Creates and Updates of alerts for the
/// batch lane), when [`store_accepted`] failed.
pub fn queue_accepted(conn: &mut DbConn, group: &[Accepted]) -> Result<Written, DbError> {
    let items: Vec<NewQueued> = group.iter().map(|a| a.item.queued(a.item.batch)).collect();
    let new = inbox_queue::enqueue(conn, &items)?;
    let queued = |lane: bool| items.iter().zip(&new).any(|(i, n)| *n && i.batch == lane);
    Ok(Written {
        queued_batch: queued(true),
        queued_single: queued(false),
        new,
        followups: None,
    })
}

/// A claim made ready for its transaction: parsed, its alerts prepared and
/// its actors read.
pub struct Ready {
    ids: Vec<i64>,
    /// The claim's actors by ActivityPub id, or why they could not be read.
    actors: Result<HashMap<String, ActorRow>, DbError>,
    /// (queue row id, activity, its alert if its author is stored and fresh).
    items: Vec<(i64, Incoming, Option<PreparedAlert>)>,
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
                        let prepared = p.prepare();
                        (row.id, p, prepared)
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
    let actors = load_actors(data, parsed.iter().map(|(_, p, _)| p)).await;
    let now = now_ms();
    let items = parsed
        .into_iter()
        .map(|(row_id, p, prepared)| {
            let prepared = actors
                .as_ref()
                .ok()
                .and_then(|actors| p.by_author(actors, prepared, now));
            (row_id, p, prepared)
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
                        let (followups, moved) =
                            store_all(conn, &actors, &items, done, single, Isolation::None)?;
                        Ok((Followups::read(conn, actors.values().cloned().collect(), followups)?, moved))
                    });
                    match plain {
                        Ok(applied) => Ok(applied),
                        Err(e) => {
                            tracing::info!(error = %e, "an activity of a batch failed; applying the batch again one savepoint per activity");
                            db::transaction(conn, |conn| {
                                let (followups, moved) = store_all(
                                    conn,
                                    &actors,
                                    &items,
                                    dropped,
                                    single,
                                    Isolation::Savepoint,
                                )?;
                                Ok((Followups::read(conn, actors.values().cloned().collect(), followups)?, moved))
                            })
                        }
                    }
                })
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((followups, moved)) => {
            data.reads.invalidate();
            if moved {
                data.inbox.wakeup.notify_one();
            }
            if let Some(followups) = followups {
                followups.run(data).await;
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
async fn parse(data: &Data, row: &QueuedRow) -> Result<Option<Incoming>, Error> {
    let body = row.body.as_bytes();
    let envelope: Envelope = serde_json::from_slice(body)?;
    match data.policies.check_url(&envelope.actor).await {
        Err(Error::Forbidden(_)) => return Ok(None),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let activity = InboxActivity::parse(&envelope, body)?
        .ok_or_else(|| Error::Internal("not a Create or Update of an alert".into()))?;
    Incoming::from_activity(row.ap_id.clone(), &envelope.actor, activity)
        .map(Some)
        .ok_or_else(|| Error::Internal("not a Create or Update of an alert".into()))
}

/// The stored actors and authors of `parsed`, by ActivityPub id.
async fn load_actors<'a>(
    data: &Data,
    parsed: impl Iterator<Item = &'a Incoming>,
) -> Result<HashMap<String, ActorRow>, DbError> {
    let urls = actor_ids(parsed);
    data.db.run(move |conn| read_actors(conn, &urls)).await
}

/// The actor ids `items` need read, once each.
fn actor_ids<'a>(items: impl Iterator<Item = &'a Incoming>) -> Vec<String> {
    let mut urls: Vec<String> = items.flat_map(Incoming::actor_ids).collect();
    urls.sort();
    urls.dedup();
    urls
}

/// The stored actors among `urls`, by ActivityPub id.
fn read_actors(conn: &mut DbConn, urls: &[String]) -> Result<HashMap<String, ActorRow>, DbError> {
    if urls.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = db::actors::by_ap_ids(conn, urls)?;
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
    items: &[(i64, Incoming, Option<PreparedAlert>)],
    mut done: Vec<(i64, String, Outcome)>,
    mut single: Vec<i64>,
    isolation: Isolation,
) -> Result<(Vec<Followup>, bool), DbError> {
    let alerts: Vec<&str> = items
        .iter()
        .filter_map(|(_, _, prepared)| prepared.as_ref())
        .map(PreparedAlert::ap_id)
        .collect();
    // Each item may be in a savepoint of its own: nothing is deferred.
    let mut prior = GroupPrior::read(conn, &[], &alerts, actors, false)?;
    let mut followups = Vec::new();
    for (row_id, item, prepared) in items {
        // One short name for both arms (the closure below borrows it).
        let prior = &mut prior;
        let applied = match isolation {
            Isolation::None => store_one(conn, actors, item, prepared.clone(), prior, 0)?,
            Isolation::Savepoint => {
                let store =
                    |conn: &mut DbConn| store_one(conn, actors, item, prepared.clone(), prior, 0);
                match db::transaction(conn, store) {
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
                done.push((*row_id, item.ap_id.clone(), Outcome::Done));
                followups.extend(stored.map(|stored| item.followup(*stored)));
            }
            Applied::Single => single.push(*row_id),
        }
    }
    inbox_queue::record(conn, &done)?;
    inbox_queue::to_single_lane(conn, &single)?;
    Ok((followups, !single.is_empty()))
}

/// Applies one item by the rule `Create::receive` and `Update::receive`
/// follow (`create::stores`): ignored unless we want the actor's objects
/// (or, for an Update, hold the object); stored if its author is known and
/// fresh, else left to the other lane, which fetches. `prior`: what was
/// read of the whole group or claim; `tag` names the item if `prior`
/// defers its alert.
fn store_one(
    conn: &mut DbConn,
    actors: &HashMap<String, ActorRow>,
    item: &Incoming,
    prepared: Option<PreparedAlert>,
    prior: &mut GroupPrior,
    tag: usize,
) -> Result<Applied, DbError> {
    let actor_id = actors.get(&item.actor).map(|a| a.id);
    let update_of = item.update.is_some().then(|| item.object.id.as_str());
    if !create::stores(conn, &mut prior.followed, actor_id, &item.named, update_of)? {
        return Ok(Applied::Done(None));
    }
    let Some(prepared) = prepared else {
        return Ok(Applied::Single);
    };
    Ok(Applied::Done(
        prior.store(conn, prepared, tag)?.map(Box::new),
    ))
}

/// Curation and campaigns for a stored alert, as after a Create or Update.
async fn follow_up(data: &Data, curating: &Curating, followup: Followup) -> Result<(), Error> {
    let Followup {
        stored,
        named,
        update,
        ..
    } = followup;
    match update {
        None => create::after_store(data, curating, stored, named).await,
        Some(raw) => update::after_store(data, curating, stored, named, raw.as_deref()).await,
    }
}
