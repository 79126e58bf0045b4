//! RSA keys: generation, PEM encoding, and parsed keys kept in memory so
//! each signature costs one RSA operation and no parsing.

use super::SignatureError;
use aws_lc_rs::{
    encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der},
    rsa::{KeyPair, KeySize},
    signature::{self, KeyPair as _, ParsedPublicKey},
};
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

/// A freshly generated key pair as PEM text (PKCS#8 private, SPKI public).
#[derive(Debug, Clone)]
pub struct PemKeypair {
    /// `-----BEGIN PRIVATE KEY-----` …
    pub private_pem: String,
    /// `-----BEGIN PUBLIC KEY-----` …
    pub public_pem: String,
}

/// Generates an RSA-2048 key pair.
pub fn generate_rsa_keypair() -> Result<PemKeypair, SignatureError> {
    let key =
        KeyPair::generate(KeySize::Rsa2048).map_err(|e| SignatureError::Key(e.to_string()))?;
    let private: Pkcs8V1Der = key
        .as_der()
        .map_err(|e| SignatureError::Key(e.to_string()))?;
    let public: PublicKeyX509Der = key
        .public_key()
        .as_der()
        .map_err(|e| SignatureError::Key(e.to_string()))?;
    Ok(PemKeypair {
        private_pem: pem::encode(&pem::Pem::new("PRIVATE KEY", private.as_ref().to_vec())),
        public_pem: pem::encode(&pem::Pem::new("PUBLIC KEY", public.as_ref().to_vec())),
    })
}

/// Generates `n` RSA-2048 key pairs side by side ([`KeyMaker`], every
/// key wanted at once).
pub fn generate_rsa_keypairs(n: usize) -> Result<Vec<PemKeypair>, SignatureError> {
    let mut maker = KeyMaker::start(n, n);
    (0..n).map(|_| maker.take()).collect()
}

/// RSA-2048 key pairs made in the background on up to as many threads as
/// there are cores, handed out in the order they are finished. Making one
/// is a random prime search (50 to 350 ms here), so keys made side by side
/// finish far apart. The first `urgent` are wanted at once (a first start
/// answers once the organisation's and the instance actor's exist): a
/// thread that finishes while fewer than that are done starts the next key
/// instead of waiting for the slower one, and the first keys finished are
/// taken. The others wait for [`KeyMaker::rest`], so that they do not take
/// the cores the start needs.
pub struct KeyMaker {
    finished: std::sync::mpsc::Receiver<Result<PemKeypair, SignatureError>>,
    gate: Arc<Gate>,
    total: usize,
    taken: usize,
}

/// When the threads of a [`KeyMaker`] may start another key.
struct Gate {
    state: std::sync::Mutex<GateState>,
    turn: std::sync::Condvar,
}

struct GateState {
    total: usize,
    urgent: usize,
    started: usize,
    finished: usize,
    /// Every key may be made now.
    released: bool,
    /// The maker was dropped: no more keys.
    stopped: bool,
}

impl Gate {
    /// Waits until this thread may start a key; false when there is none
    /// left to start.
    fn next_turn(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if state.stopped || state.started >= state.total {
                return false;
            }
            if state.released || state.finished < state.urgent {
                state.started += 1;
                return true;
            }
            state = self.turn.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn update(&self, change: impl FnOnce(&mut GateState)) {
        change(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.turn.notify_all();
    }
}

impl KeyMaker {
    /// Starts making `total` keys, the first `urgent` of them at once.
    pub fn start(total: usize, urgent: usize) -> KeyMaker {
        let (sender, finished) = std::sync::mpsc::channel();
        let gate = Arc::new(Gate {
            state: std::sync::Mutex::new(GateState {
                total,
                urgent,
                started: 0,
                finished: 0,
                released: false,
                stopped: false,
            }),
            turn: std::sync::Condvar::new(),
        });
        let threads = std::thread::available_parallelism()
            .map_or(1, |c| c.get())
            .min(total);
        for _ in 0..threads {
            let (sender, gate) = (sender.clone(), gate.clone());
            let spawned = std::thread::Builder::new()
                .name("tocsin-keys".into())
                .spawn(move || {
                    while gate.next_turn() {
                        let made = generate_rsa_keypair();
                        gate.update(|s| s.finished += 1);
                        if sender.send(made).is_err() {
                            return;
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a key-making thread");
            }
        }
        KeyMaker {
            finished,
            gate,
            total,
            taken: 0,
        }
    }

    /// The next key finished, waiting for it; made on this thread if no
    /// thread could start. An error once all `total` were taken.
    pub fn take(&mut self) -> Result<PemKeypair, SignatureError> {
        if self.taken >= self.total {
            return Err(SignatureError::Key("every key made was taken".into()));
        }
        self.taken += 1;
        self.finished
            .recv()
            .unwrap_or_else(|_| generate_rsa_keypair())
    }

    /// Lets every key be made and waits for those not taken yet.
    pub fn rest(mut self) -> Result<Vec<PemKeypair>, SignatureError> {
        self.gate.update(|s| s.released = true);
        let left = self.total - self.taken;
        (0..left).map(|_| self.take()).collect()
    }
}

impl Drop for KeyMaker {
    /// Threads waiting for their turn end; one making a key ends after it.
    fn drop(&mut self) {
        self.gate.update(|s| s.stopped = true);
    }
}

/// Parses a PKCS#8 PEM private key (as we store it).
pub fn parse_private_pem(private_pem: &str) -> Result<KeyPair, SignatureError> {
    let parsed = pem::parse(private_pem).map_err(|e| SignatureError::Key(e.to_string()))?;
    KeyPair::from_pkcs8(parsed.contents()).map_err(|e| SignatureError::Key(e.to_string()))
}

/// Parses an SPKI (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`) PEM public key.
pub fn parse_public_pem(public_pem: &str) -> Result<ParsedPublicKey, SignatureError> {
    let parsed = pem::parse(public_pem.trim()).map_err(|e| SignatureError::Key(e.to_string()))?;
    ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, parsed.contents())
        .map_err(|e| SignatureError::Key(e.to_string()))
}

/// Parsed keys by PEM text, so a hot inbox or a fan-out parses each key once.
/// Keyed by the PEM itself: a rotated key is a different entry.
#[derive(Default, Clone)]
pub struct KeyCache {
    public: Arc<RwLock<HashMap<String, Arc<ParsedPublicKey>>>>,
    private: Arc<RwLock<HashMap<String, Arc<KeyPair>>>>,
}

/// Entries kept before the cache is cleared; bounds memory under abuse.
const MAX_CACHED_KEYS: usize = 20_000;

impl KeyCache {
    /// The parsed public key for this PEM.
    pub fn public(&self, pem: &str) -> Result<Arc<ParsedPublicKey>, SignatureError> {
        if let Some(key) = self.public.read().ok().and_then(|m| m.get(pem).cloned()) {
            return Ok(key);
        }
        let key = Arc::new(parse_public_pem(pem)?);
        if let Ok(mut map) = self.public.write() {
            if map.len() >= MAX_CACHED_KEYS {
                map.clear();
            }
            map.insert(pem.to_string(), key.clone());
        }
        Ok(key)
    }

    /// The parsed private key for this PEM.
    pub fn private(&self, pem: &str) -> Result<Arc<KeyPair>, SignatureError> {
        if let Some(key) = self.private.read().ok().and_then(|m| m.get(pem).cloned()) {
            return Ok(key);
        }
        let key = Arc::new(parse_private_pem(pem)?);
        if let Ok(mut map) = self.private.write() {
            if map.len() >= MAX_CACHED_KEYS {
                map.clear();
            }
            map.insert(pem.to_string(), key.clone());
        }
        Ok(key)
    }
}

/// Signs `message` with RSASSA-PKCS1-v1_5 SHA-256.
pub fn rsa_sign(key: &KeyPair, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        message,
        &mut sig,
    )
    .map_err(|e| SignatureError::Key(e.to_string()))?;
    Ok(sig)
}

/// Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature.
pub fn rsa_verify(key: &ParsedPublicKey, message: &[u8], sig: &[u8]) -> bool {
    key.verify_sig(message, sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_generated_together_are_distinct_and_as_many_as_asked() {
        for n in [0, 1, 2, 5] {
            let pairs = generate_rsa_keypairs(n).unwrap();
            assert_eq!(pairs.len(), n);
            let distinct: std::collections::HashSet<_> =
                pairs.iter().map(|p| p.private_pem.clone()).collect();
            assert_eq!(distinct.len(), n);
            for pair in &pairs {
                parse_private_pem(&pair.private_pem).unwrap();
            }
        }
    }

    #[test]
    fn a_maker_makes_the_urgent_keys_first_and_the_rest_when_released() {
        let threads = std::thread::available_parallelism().map_or(1, |c| c.get());
        let mut maker = KeyMaker::start(4, 1);
        let first = maker.take().unwrap();
        // Before the release, only keys started while none was finished:
        // one a thread.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let started = maker.gate.state.lock().unwrap().started;
        assert!(started <= threads.min(4), "{started} keys started");
        let rest = maker.rest().unwrap();
        assert_eq!(rest.len(), 3);
        let mut pems: Vec<_> = rest.iter().map(|p| p.public_pem.clone()).collect();
        pems.push(first.public_pem);
        pems.sort();
        pems.dedup();
        assert_eq!(pems.len(), 4, "every key is its own");
    }

    #[test]
    fn a_maker_gives_no_more_keys_than_asked_and_its_threads_end_when_dropped() {
        let mut maker = KeyMaker::start(3, 1);
        assert!(maker.take().is_ok());
        let gate = Arc::downgrade(&maker.gate);
        drop(maker);
        // The threads hold the gate until they end: one waiting for its
        // turn ends at once, one making a key once it is made.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while gate.upgrade().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "a key thread never ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut none = KeyMaker::start(1, 1);
        assert!(none.take().is_ok());
        assert!(none.take().is_err(), "a second key from a maker of one");
    }

    #[test]
    fn generated_keys_sign_and_verify_through_pem() {
        let pair = generate_rsa_keypair().unwrap();
        assert!(pair.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let cache = KeyCache::default();
        let sig = rsa_sign(&cache.private(&pair.private_pem).unwrap(), b"hello").unwrap();
        let public = cache.public(&pair.public_pem).unwrap();
        assert!(rsa_verify(&public, b"hello", &sig));
        assert!(!rsa_verify(&public, b"hellO", &sig));
    }

    #[test]
    fn garbage_pem_is_an_error() {
        assert!(parse_public_pem("not a key").is_err());
        assert!(
            parse_private_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
    }
}
