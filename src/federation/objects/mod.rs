//! Objects joined to their database rows.

pub mod actor;
pub mod alert;
pub mod issue;
