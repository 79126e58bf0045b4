//! Recently verified signers by key id, so that the inbox checks a known
//! actor's signature without reading the database: the key id's actor and
//! its row (with the public key) are kept for a minute. A signature that
//! fails with a kept actor falls back to the database and a refetch (the
//! actor may have rotated its key), and the entry is replaced. An entry is
//! shared, not copied, with each request it verifies.

use super::objects::actor::DbActor;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// How long a verified signer is trusted without reading its row again.
const TTL: Duration = Duration::from_secs(60);
/// Most signers kept; beyond, the cache starts over.
const CAPACITY: usize = 4096;

/// Signers by key id.
#[derive(Default)]
pub struct SignerCache {
    entries: Mutex<HashMap<String, (Arc<DbActor>, Instant)>>,
}

impl SignerCache {
    /// The actor that signed with `key_id` less than a minute ago.
    pub fn get(&self, key_id: &str) -> Option<Arc<DbActor>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key_id)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(actor, _)| actor.clone())
    }

    /// Keeps `actor` as the signer of `key_id`.
    pub fn put(&self, key_id: &str, actor: &Arc<DbActor>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(key_id) {
            entries.retain(|_, (_, at)| at.elapsed() < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key_id.to_string(), (actor.clone(), Instant::now()));
    }

    /// Forgets `key_id` (its signature failed).
    pub fn forget(&self, key_id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key_id);
    }
}
