//! Publications: periodic issues made of ordered sections of items. The
//! Digest is assembled from approved alerts; the Communiqué is written by
//! editors; Advocacy Action News is assembled from the joint campaigns'
//! timelines. All share the issue tables in [`crate::db::publications`].
//! Each publication is a followable `Service` actor of the same name that
//! sends its published issues to its followers as `Article`s.

pub mod advocacy;
pub mod communique;
pub mod digest;
pub mod order;
pub mod schedule;

use crate::{
    alerts::taxonomy::Taxonomy,
    db::{
        self,
        publications::{self as rows, EditError, IssueRow},
        DbConn, DbError,
    },
    federation::objects::issue as wire,
    web::i18n::Lang,
};

/// The Digest: approved alerts of a period, by region, country and story.
pub const DIGEST: &str = "digest";
/// The Communiqué: an editor-written weekly issue.
pub const COMMUNIQUE: &str = "communique";
/// Advocacy Action News: the joint campaigns' activity of a period.
pub const ADVOCACY: &str = "advocacy";

/// What the rest of the code needs to know about one publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publication {
    /// Its name: the actor's username and the segment of its URLs.
    pub name: &'static str,
    /// Message key of its title in `locales/*.ftl`.
    pub message_key: &'static str,
    /// The actor's display name unless `[publications.NAME]` sets one.
    pub display_name: &'static str,
    /// The actor's summary unless `[publications.NAME]` sets one.
    pub summary: &'static str,
}

/// Every publication of an instance; one line adds one (its actor, pages,
/// feeds and outbox follow from it).
pub const PUBLICATIONS: &[Publication] = &[
    Publication {
        name: DIGEST,
        message_key: "publication-digest",
        display_name: "The Digest",
        summary:
            "The alerts this instance approved, by region, country and case: one issue per period.",
    },
    Publication {
        name: COMMUNIQUE,
        message_key: "publication-communique",
        display_name: "The Communiqué",
        summary: "News, conferences, awards and fellowships, written by the editors every week.",
    },
    Publication {
        name: ADVOCACY,
        message_key: "publication-advocacy",
        display_name: "Advocacy Action News",
        summary: "What the members' joint campaigns did: one issue every two months.",
    },
];

/// The display name and summary of `publication`'s actor: those of
/// `[publications.NAME]`, or the built-in ones.
pub fn profile(config: &crate::config::Config, publication: &Publication) -> (String, String) {
    let set = config.publications.get(publication.name);
    let pick = |value: Option<&String>, default: &str| {
        value
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    (
        pick(set.map(|s| &s.display_name), publication.display_name),
        pick(set.map(|s| &s.summary), publication.summary),
    )
}

/// The publication called `name`.
pub fn find(name: &str) -> Option<&'static Publication> {
    PUBLICATIONS.iter().find(|p| p.name == name)
}

/// The heading of section `key` in an issue of `publication`, in the
/// issue's language `lang`: a Communiqué section's name, a Digest region's
/// name from `taxonomy`, or "other" for the alerts without a region. Used by
/// the pages, the `Article`, the feeds and the e-mail alike.
pub fn section_name(lang: Lang, taxonomy: &Taxonomy, publication: &str, key: &str) -> String {
    if publication == COMMUNIQUE && communique::SECTIONS.contains(&key) {
        return lang.t(&format!("section-{key}"));
    }
    match taxonomy.regions.get(key) {
        Some(region) => region.name.clone(),
        None if key == digest::NO_REGION => lang.t("mail-section-other"),
        None => key.to_string(),
    }
}

/// The ActivityPub id (and web address) a published issue gets.
pub fn issue_ap_id(base_url: &str, issue: &IssueRow) -> String {
    format!(
        "{}/publications/{}/issues/{}",
        base_url.trim_end_matches('/'),
        issue.publication,
        issue.id
    )
}

/// Publishes a draft issue under this instance's `base_url`; publishing
/// twice is refused. In the same transaction the publication's actor
/// queues `Create{Article}` for its followers (sent by the delivery worker
/// of any process on this database).
pub fn publish(
    conn: &mut DbConn,
    base_url: &str,
    taxonomy: &Taxonomy,
    issue_id: i64,
) -> Result<IssueRow, EditError> {
    db::transaction(conn, |conn| {
        let issue = rows::issue(conn, issue_id)?;
        let published = match rows::publish(conn, issue_id, &issue_ap_id(base_url, &issue)) {
            Ok(published) => published,
            Err(EditError::Db(e)) => return Err(e),
            Err(refused) => return Ok(Err(refused)),
        };
        announce(conn, base_url, taxonomy, &published)?;
        Ok(Ok(published))
    })?
}

/// Queues the `Create{Article}` of a just published issue for the
/// followers of its publication's actor. An actor that does not exist yet
/// has no followers, so there is nothing to send.
fn announce(
    conn: &mut DbConn,
    base_url: &str,
    taxonomy: &Taxonomy,
    issue: &IssueRow,
) -> Result<(), DbError> {
    let Some(actor) = db::actors::local_by_username(conn, &issue.publication)? else {
        return Ok(());
    };
    let items = rows::items(conn, issue.id)?;
    let article = wire::article(
        base_url,
        issue,
        &crate::web::publication_pages::issue_html(issue, items, taxonomy),
    );
    let create = wire::create(base_url, issue, article);
    let (_, deliveries) =
        crate::delivery::enqueue_for_followers(conn, actor.id, &create).map_err(|e| match e {
            crate::error::Error::Db(e) => e,
            other => DbError::Task(other.to_string()),
        })?;
    tracing::info!(
        issue = issue.id,
        publication = %issue.publication,
        deliveries,
        "issue published; Create queued for followers"
    );
    Ok(())
}
