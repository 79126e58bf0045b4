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
/// cores: a first start makes one for each local actor, and one takes tens
/// of milliseconds (a random prime search), so in turn they took most of
/// the start. Each thread takes the next key to make until all are made,
/// so one slow prime search does not hold a whole share back.
pub fn generate_rsa_keypairs(n: usize) -> Result<Vec<PemKeypair>, SignatureError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .min(n);
    let next = AtomicUsize::new(0);
    let make = || {
        let mut made = Vec::new();
        while next.fetch_add(1, Ordering::Relaxed) < n {
            made.push(generate_rsa_keypair()?);
        }
        Ok::<_, SignatureError>(made)
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(make)).collect();
        let mut pairs = make()?;
        for worker in workers {
            let made = worker
                .join()
                .map_err(|_| SignatureError::Key("key generation panicked".into()))??;
            pairs.extend(made);
        }
        Ok(pairs)
    })
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
