//! Alerts, the network's unit of news: validation of what authors submit,
//! the taxonomy, Markdown rendering, and publishing (storage + federation).

pub mod import;
pub mod input;
pub mod markdown;
pub mod publish;
pub mod taxonomy;

/// Urgent appeal.
pub const URGENCY_ACTION: &str = "action";
/// The urgencies an alert may have.
pub const URGENCIES: &[&str] = &[URGENCY_ACTION, "update", "statement", "report"];

/// A draft: stored, not federated.
pub const STATUS_DRAFT: &str = "draft";
/// Published and federated.
pub const STATUS_PUBLISHED: &str = "published";
/// Deleted: answers 410 with a Tombstone.
pub const STATUS_DELETED: &str = "deleted";
