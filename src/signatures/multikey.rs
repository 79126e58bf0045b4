//! Ed25519 keys as FEP-521a `Multikey`s: `publicKeyMultibase` is `z` +
//! base58btc(0xed 0x01 ‖ 32-byte key). Also key generation and storage
//! encoding (PKCS#8 DER in base64) for our own actors.

use super::SignatureError;
use aws_lc_rs::{
    encoding::AsBigEndian,
    signature::{Ed25519KeyPair, KeyPair},
};
use base64::Engine;

/// The multicodec prefix of an Ed25519 public key.
const ED25519_PUB: [u8; 2] = [0xed, 0x01];

/// `z` + base58btc of `bytes` (multibase).
pub fn encode_base58btc(bytes: &[u8]) -> String {
    format!("z{}", bs58::encode(bytes).into_string())
}

/// Decodes a multibase base58btc (`z…`) string.
pub fn decode_base58btc(text: &str) -> Result<Vec<u8>, SignatureError> {
    let rest = text
        .strip_prefix('z')
        .ok_or_else(|| SignatureError::Malformed("multibase value is not base58btc (z…)".into()))?;
    bs58::decode(rest)
        .into_vec()
        .map_err(|e| SignatureError::Malformed(format!("bad base58btc: {e}")))
}

/// The `publicKeyMultibase` of an Ed25519 public key.
pub fn encode_ed25519_public(key: &[u8]) -> String {
    let mut bytes = ED25519_PUB.to_vec();
    bytes.extend_from_slice(key);
    encode_base58btc(&bytes)
}

/// The 32 raw bytes of an Ed25519 `publicKeyMultibase`; other key types
/// are refused.
pub fn decode_ed25519_public(multibase: &str) -> Result<Vec<u8>, SignatureError> {
    let bytes = decode_base58btc(multibase)?;
    match bytes.strip_prefix(&ED25519_PUB) {
        Some(key) if key.len() == 32 => Ok(key.to_vec()),
        _ => Err(SignatureError::Key(
            "publicKeyMultibase is not an Ed25519 key".into(),
        )),
    }
}

/// A new Ed25519 key: (private key for storage, `publicKeyMultibase`).
pub fn generate_ed25519() -> Result<(String, String), SignatureError> {
    let key = Ed25519KeyPair::generate().map_err(|e| SignatureError::Key(e.to_string()))?;
    let seed = key
        .seed()
        .and_then(|s| s.as_be_bytes())
        .map_err(|e| SignatureError::Key(e.to_string()))?;
    let private = base64::engine::general_purpose::STANDARD.encode(seed.as_ref());
    Ok((private, encode_ed25519_public(key.public_key().as_ref())))
}

/// Parses a private key stored by [`generate_ed25519`].
pub fn parse_ed25519_private(stored: &str) -> Result<Ed25519KeyPair, SignatureError> {
    let seed = base64::engine::general_purpose::STANDARD
        .decode(stored.trim())
        .map_err(|e| SignatureError::Key(e.to_string()))?;
    Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|e| SignatureError::Key(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multikey_round_trip_and_known_vector() {
        // FEP-521a / Multikey example: the all-zero-prefixed form of a known key.
        let key = [0u8; 32];
        let text = encode_ed25519_public(&key);
        assert!(text.starts_with("z6Mk"), "{text}");
        assert_eq!(decode_ed25519_public(&text).unwrap(), key.to_vec());
        assert!(decode_ed25519_public("zQ3s").is_err());
        assert!(decode_ed25519_public("u6Mk").is_err());
    }

    #[test]
    fn generated_keys_survive_storage() {
        let (private, public) = generate_ed25519().unwrap();
        let key = parse_ed25519_private(&private).unwrap();
        assert_eq!(encode_ed25519_public(key.public_key().as_ref()), public);
    }
}
