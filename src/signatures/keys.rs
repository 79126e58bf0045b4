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

/// Generates `n` RSA-2048 key pairs on up to as many threads as there are
/// cores (see [`KeyMaker`]).
pub fn generate_rsa_keypairs(n: usize) -> Result<Vec<PemKeypair>, SignatureError> {
    KeyMaker::start(n).take(n)
}

/// RSA-2048 key pairs in the making on background threads, up to as many
/// as there are cores. A key takes 20 to 200 milliseconds to make (a
/// random prime search; half of them under 60 here), so when several are
/// made side by side the slowest sets the time. A thread that has made its
/// key while others are still searching starts another, and the first
/// made are taken: a slow search is overtaken rather than waited for. The
/// threads stop once as many keys as asked for are made or the maker is
/// dropped; a search still under way then ends in the background and its
/// key is dropped.
pub struct KeyMaker {
    made: std::sync::mpsc::Receiver<Result<PemKeypair, SignatureError>>,
    /// How many of the keys started for are still to be taken.
    left: usize,
    /// How many keys are still to be made; the threads stop at zero.
    wanted: Arc<std::sync::atomic::AtomicUsize>,
}

impl KeyMaker {
    /// Starts making `n` key pairs.
    pub fn start(n: usize) -> KeyMaker {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (sender, made) = std::sync::mpsc::channel();
        let wanted = Arc::new(AtomicUsize::new(n));
        // Asked for nothing (every restart), it reads no core count: Linux
        // answers that from cgroup files.
        let threads = match n {
            0 => 0,
            n => std::thread::available_parallelism().map_or(1, |c| c.get().min(n)),
        };
        for _ in 0..threads {
            let (sender, wanted) = (sender.clone(), wanted.clone());
            let make = move || {
                while wanted.load(Ordering::Relaxed) > 0 {
                    let pair = generate_rsa_keypair();
                    let counted = wanted
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| w.checked_sub(1));
                    // A key made after the last was wanted is dropped.
                    if counted.is_err() || sender.send(pair).is_err() {
                        break;
                    }
                }
            };
            // Without a thread, `take` makes the keys itself.
            let _ = std::thread::Builder::new()
                .name("tocsin-keys".into())
                .spawn(make);
        }
        KeyMaker {
            made,
            left: n,
            wanted,
        }
    }

    /// Up to `n` of the key pairs started for, as they are made.
    pub fn take(&mut self, n: usize) -> Result<Vec<PemKeypair>, SignatureError> {
        let n = n.min(self.left);
        self.left -= n;
        let mut pairs = Vec::with_capacity(n);
        while pairs.len() < n {
            match self.made.recv() {
                Ok(pair) => pairs.push(pair?),
                // No thread could start: made here instead.
                Err(_) => pairs.push(generate_rsa_keypair()?),
            }
        }
        Ok(pairs)
    }
}

impl Drop for KeyMaker {
    fn drop(&mut self) {
        self.wanted.store(0, std::sync::atomic::Ordering::Relaxed);
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

    /// A maker gives the keys it was started for and no more: the caller
    /// makes any others.
    #[test]
    fn a_key_maker_gives_as_many_keys_as_it_was_started_for() {
        let mut maker = KeyMaker::start(2);
        let first = maker.take(1).unwrap();
        let rest = maker.take(5).unwrap();
        assert_eq!((first.len(), rest.len()), (1, 1));
        assert_ne!(first[0].private_pem, rest[0].private_pem);
        assert!(maker.take(1).unwrap().is_empty());
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
