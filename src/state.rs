//! Everything a request handler or worker needs, cloned cheaply.

use crate::{config::Config, db::Db, signatures::keys::KeyCache};
use std::sync::Arc;
use tokio::sync::Notify;

/// Shared application state, the `app_data` of activitypub_federation.
/// activitypub_federation clones it for every request: one reference
/// count, not one per field (docs/performance.md, reads). Its fields are
/// [`State`]'s, reached through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<State>);

impl AppState {
    /// Shares `state`.
    pub fn new(state: State) -> AppState {
        AppState(Arc::new(state))
    }
}

impl std::ops::Deref for AppState {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct State {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Database pool.
    pub db: Db,
    /// Parsed RSA keys, shared by the inbox and the delivery worker.
    pub keys: KeyCache,
    /// HTTP client for deliveries (no redirects, SSRF-checked resolver).
    pub client: reqwest::Client,
    /// Wakes the delivery worker when something is queued.
    pub delivery_wakeup: Arc<Notify>,
    /// What this process's delivery worker has done, for `GET /metrics`.
    pub delivery_metrics: Arc<crate::delivery::metrics::DeliveryMetrics>,
    /// Stores accepted incoming activities for the inbox workers.
    pub inbox: crate::federation::inbox_queue::Enqueuer,
    /// Blocked, silenced and allowed domains.
    pub policies: crate::federation::policy::DomainPolicies,
    /// Per-client and per-host request rates.
    pub rate_limits: Arc<crate::web::rate_limit::RateLimits>,
    /// Recently verified signers of inbox POSTs, by key id.
    pub signers: Arc<crate::federation::signer_cache::SignerCache>,
    /// Prepared answers to public reads, dropped on every write.
    pub reads: Arc<crate::web::read_cache::ReadCache>,
}

/// Request data as activitypub_federation passes it around.
pub type Data = activitypub_federation::config::Data<AppState>;
