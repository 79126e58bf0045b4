//! Integration tests: real instances on 127.0.0.1 talking to each other and
//! to a fake Mastodon-dialect peer built from fixture payloads.

mod common;

mod actors;
mod alerts;
mod archive;
mod authorized_fetch;
mod backup;
mod bad_input;
mod browser;
mod campaigns;
mod cli;
mod conditional_reads;
mod content_safety;
mod crash;
mod curation;
mod delivery;
mod digest;
mod discovery;
mod domain_policy;
mod fedify;
mod fixtures;
mod follow;
mod inbox_writer;
mod independent_signatures;
mod limits;
mod log_hygiene;
mod mail;
mod network;
mod operations;
mod publication_actors;
mod publication_editor;
mod queue;
mod signature_strictness;
mod signatures;
mod tls_proxy;
mod upgrade;
mod upkeep;
mod web;
