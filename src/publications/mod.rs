//! Publications: periodic issues made of ordered sections of items. The
//! Digest is assembled from approved alerts; the Communiqué is written by
//! editors; Advocacy Action News is assembled from the joint campaigns'
//! timelines. All share the issue tables in [`crate::db::publications`].

pub mod advocacy;
pub mod communique;
pub mod digest;

/// The Digest: approved alerts of a period, by region, country and story.
pub const DIGEST: &str = "digest";
/// The Communiqué: an editor-written weekly issue.
pub const COMMUNIQUE: &str = "communique";
/// Advocacy Action News: the joint campaigns' activity of a period.
pub const ADVOCACY: &str = "advocacy";

use crate::db::{
    publications::{self as rows, EditError, IssueRow},
    DbConn,
};

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
/// twice is refused.
pub fn publish(conn: &mut DbConn, base_url: &str, issue_id: i64) -> Result<IssueRow, EditError> {
    let issue = rows::issue(conn, issue_id)?;
    rows::publish(conn, issue_id, &issue_ap_id(base_url, &issue))
}
