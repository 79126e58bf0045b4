//! Object integrity proofs (FEP-8b32): Data Integrity proofs with the
//! `eddsa-jcs-2022` cryptosuite, made with an actor's Ed25519 key and
//! checkable without HTTP, so a forwarded activity can be trusted.
//!
//! Signing (W3C vc-di-eddsa, JCS variant): the proof options carry the
//! document's `@context`; the signed bytes are
//! `SHA-256(JCS(options)) || SHA-256(JCS(document without proof))`;
//! `proofValue` is the signature in multibase base58btc (`z…`).

use super::{multikey, SignatureError};
use aws_lc_rs::{
    digest::{digest, SHA256},
    signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519},
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// The only cryptosuite we make and check.
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";
/// The context that defines `proof` and `DataIntegrityProof`.
pub const DATA_INTEGRITY_CONTEXT: &str = "https://w3id.org/security/data-integrity/v1";

/// Adds a `proof` to `document` (a JSON object), signed with `key` whose
/// public half is published as `verification_method`.
pub fn sign(
    document: &mut Value,
    key: &Ed25519KeyPair,
    verification_method: &str,
    created: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let object = document
        .as_object_mut()
        .ok_or_else(|| SignatureError::Malformed("only a JSON object can carry a proof".into()))?;
    object.remove("proof");
    let mut options = json!({
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "verificationMethod": verification_method,
        "proofPurpose": "assertionMethod",
        "created": created.to_rfc3339_opts(SecondsFormat::Secs, true),
    });
    let message = signed_bytes(object, &mut options)?;
    let signature = key.sign(&message);
    options["proofValue"] = Value::String(multikey::encode_base58btc(signature.as_ref()));
    if let Some(obj) = options.as_object_mut() {
        obj.remove("@context");
    }
    object.insert("proof".into(), options);
    Ok(())
}

/// A proof found on a document, before its key is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The key that made it (a Multikey id, usually `actor#fragment`).
    pub verification_method: String,
    /// The proof options, without `proofValue`.
    options: Value,
    /// The signature bytes.
    signature: Vec<u8>,
}

impl Proof {
    /// Reads the `eddsa-jcs-2022` proof of `document`. `Ok(None)` when the
    /// document has no proof or only proofs of other cryptosuites.
    pub fn find(document: &Value) -> Result<Option<Proof>, SignatureError> {
        let candidates: Vec<&Value> = match document.get("proof") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one) => vec![one],
        };
        let Some(proof) = candidates
            .into_iter()
            .find(|p| p.get("cryptosuite").and_then(Value::as_str) == Some(CRYPTOSUITE))
        else {
            return Ok(None);
        };
        let field = |name: &str| {
            proof
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| SignatureError::Malformed(format!("proof without `{name}`")))
        };
        if field("type")? != "DataIntegrityProof" {
            return Err(SignatureError::Malformed(
                "proof type is not DataIntegrityProof".into(),
            ));
        }
        if field("proofPurpose")? != "assertionMethod" {
            return Err(SignatureError::Malformed(
                "proof purpose is not assertionMethod".into(),
            ));
        }
        let verification_method = field("verificationMethod")?.to_string();
        let signature = multikey::decode_base58btc(field("proofValue")?)?;
        let mut options = proof.clone();
        if let Some(obj) = options.as_object_mut() {
            obj.remove("proofValue");
        }
        Ok(Some(Proof {
            verification_method,
            options,
            signature,
        }))
    }

    /// Checks the proof over `document` with the Ed25519 public key (32 bytes).
    pub fn verify(&self, document: &Value, public_key: &[u8]) -> Result<(), SignatureError> {
        let object = document
            .as_object()
            .ok_or_else(|| SignatureError::Malformed("proof on a non-object".into()))?;
        let mut unsecured = object.clone();
        unsecured.remove("proof");
        let mut options = self.options.clone();
        let message = signed_bytes(&unsecured, &mut options)?;
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&message, &self.signature)
            .map_err(|_| SignatureError::Invalid)
    }
}

/// `SHA-256(JCS(options with the document's @context)) || SHA-256(JCS(document))`.
fn signed_bytes(
    document: &Map<String, Value>,
    options: &mut Value,
) -> Result<Vec<u8>, SignatureError> {
    if let (Some(context), Some(obj)) = (document.get("@context"), options.as_object_mut()) {
        obj.insert("@context".into(), context.clone());
    }
    let options_bytes = serde_json_canonicalizer::to_vec(options)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let document_bytes = serde_json_canonicalizer::to_vec(document)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let mut message = digest(&SHA256, &options_bytes).as_ref().to_vec();
    message.extend_from_slice(digest(&SHA256, &document_bytes).as_ref());
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap()
    }

    fn activity() -> Value {
        json!({
            "@context": ["https://www.w3.org/ns/activitystreams", DATA_INTEGRITY_CONTEXT],
            "id": "https://a.example/activities/update/1",
            "type": "Update",
            "actor": "https://a.example/actors/alerts",
            "object": {"id": "https://a.example/alerts/1", "type": "Note", "content": "<p>ç — 🚨</p>"}
        })
    }

    fn public(key: &Ed25519KeyPair) -> Vec<u8> {
        use aws_lc_rs::signature::KeyPair;
        key.public_key().as_ref().to_vec()
    }

    #[test]
    fn signs_and_verifies_whatever_the_key_order() {
        let key = key();
        let mut doc = activity();
        let created = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        sign(
            &mut doc,
            &key,
            "https://a.example/actors/alerts#ed25519-key",
            created,
        )
        .unwrap();
        assert_eq!(doc["proof"]["cryptosuite"], CRYPTOSUITE);
        assert!(doc["proof"]["proofValue"]
            .as_str()
            .unwrap()
            .starts_with('z'));
        assert!(doc["proof"].get("@context").is_none());
        // Re-serialised with other key order and whitespace: still valid (JCS).
        let reparsed: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        let proof = Proof::find(&reparsed).unwrap().unwrap();
        assert_eq!(
            proof.verification_method,
            "https://a.example/actors/alerts#ed25519-key"
        );
        proof.verify(&reparsed, &public(&key)).unwrap();
    }

    #[test]
    fn any_change_breaks_the_proof() {
        let key = key();
        let mut doc = activity();
        sign(&mut doc, &key, "https://a.example/k", Utc::now()).unwrap();
        let mut edited = doc.clone();
        edited["object"]["content"] = json!("<p>forged</p>");
        let proof = Proof::find(&edited).unwrap().unwrap();
        assert_eq!(
            proof.verify(&edited, &public(&key)),
            Err(SignatureError::Invalid)
        );
        let mut moved = doc.clone();
        moved["proof"]["created"] = json!("2020-01-01T00:00:00Z");
        let proof = Proof::find(&moved).unwrap().unwrap();
        assert_eq!(
            proof.verify(&moved, &public(&key)),
            Err(SignatureError::Invalid)
        );
        let other = Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).unwrap();
        let proof = Proof::find(&doc).unwrap().unwrap();
        assert_eq!(
            proof.verify(&doc, &public(&other)),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn other_cryptosuites_and_malformed_proofs() {
        let doc = json!({"type": "Create", "proof": {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022"}});
        assert_eq!(Proof::find(&doc).unwrap(), None);
        assert_eq!(Proof::find(&json!({"type": "Create"})).unwrap(), None);
        let bad = json!({"proof": {"type": "DataIntegrityProof", "cryptosuite": CRYPTOSUITE,
            "proofPurpose": "assertionMethod", "verificationMethod": "https://a/k", "proofValue": "x0OIl"}});
        assert!(matches!(
            Proof::find(&bad),
            Err(SignatureError::Malformed(_))
        ));
        let purpose = json!({"proof": {"type": "DataIntegrityProof", "cryptosuite": CRYPTOSUITE,
            "proofPurpose": "authentication", "verificationMethod": "https://a/k", "proofValue": "z1"}});
        assert!(matches!(
            Proof::find(&purpose),
            Err(SignatureError::Malformed(_))
        ));
    }
}
