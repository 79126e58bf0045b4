//! What people see: HTML pages (and, later, the JSON API and feeds).

pub mod api;
pub mod feeds;
pub mod media;
pub mod members_api;
pub mod pages;
pub mod review_api;
