//! Publications: periodic issues made of ordered sections of items. The
//! Digest is assembled from approved alerts; the Communiqué is written by
//! editors. Both share the issue tables in [`crate::db::publications`].

pub mod digest;

/// The Digest: approved alerts of a period, by region, country and story.
pub const DIGEST: &str = "digest";
/// The Communiqué: an editor-written weekly issue.
pub const COMMUNIQUE: &str = "communique";
