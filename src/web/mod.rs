//! What people see: HTML pages, the JSON API and feeds.

pub mod account_pages;
pub mod admin_api;
pub mod admin_pages;
pub mod api;
pub mod author_pages;
pub mod campaigns_api;
pub mod editor_pages;
pub mod feed_pages;
pub mod feeds;
pub mod i18n;
pub mod mail_api;
pub mod media;
pub mod members_api;
pub mod pages;
pub mod publication_editor_pages;
pub mod publication_pages;
pub mod publications_api;
pub mod rate_limit;
pub mod read_cache;
pub mod remote_follow;
pub mod request_guard;
pub mod review_api;
pub mod security_headers;
pub mod session;
pub mod subscribe_pages;
