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

/// With the `jemalloc` feature, every binary and test linking this crate
/// allocates with jemalloc (Rust's allocations; C libraries such as SQLite
/// keep the C library's malloc).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The global allocator of this build, as the benchmarks print it.
pub const ALLOCATOR: &str = if cfg!(feature = "jemalloc") {
    "jemalloc (Cargo feature `jemalloc`)"
} else {
    "the C library's malloc"
};
