//! Tocsin: a federated ActivityPub server for networks of free-expression
//! organisations. See `docs/architecture.md` for a map of the modules.

pub mod accounts;
pub mod alerts;
pub mod campaigns;
pub mod cli;
pub mod config;
pub mod curation;
pub mod db;
pub mod delivery;
pub mod error;
pub mod federation;
pub mod limits;
pub mod mail;
pub mod ops;
pub mod publications;
pub mod server;
pub mod signatures;
pub mod state;
pub mod web;
