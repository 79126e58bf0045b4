//! Linked-Data signatures (`RsaSignature2017`), the signature Mastodon
//! before 4.7 needs to accept an activity forwarded by someone other than
//! its author.
//!
//! The signed message is `hex(sha256(c14n(options))) ‖
//! hex(sha256(c14n(document)))`, signed with RSASSA-PKCS1-v1_5 and SHA-256,
//! where `c14n` is JSON-LD → RDF → RDF Dataset Canonicalization (RDFC-1.0,
//! the published form of URDNA2015) written as N-Quads, `options` is the
//! signature's `creator` and `created` under the identity/v1 context, and
//! `document` is the activity without its `signature`.
//!
//! JSON-LD processing uses only the contexts bundled in
//! `src/signatures/contexts/` ([`PRELOADED_CONTEXTS`]); a document that
//! names any other remote context cannot be canonicalised
//! ([`LdError::Canonicalise`]) and is never fetched.

use super::{keys, SignatureError};
use aws_lc_rs::{rsa::KeyPair, signature::ParsedPublicKey};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use chrono::{DateTime, SecondsFormat, Utc};
use json_syntax::Parse;
use locspan::{Location, Meta};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sophia_api::source::QuadSource;
use sophia_inmem::dataset::LightDataset;
use sophia_iri::Iri;
use sophia_jsonld::{
    loader::StaticLoader, loader_factory::ClosureLoaderFactory, JsonLdOptions, JsonLdParser,
};
use std::sync::{Arc, LazyLock};

/// The signature type we make and check.
pub const SIGNATURE_TYPE: &str = "RsaSignature2017";

/// The context of the signature options.
const OPTIONS_CONTEXT: &str = "https://w3id.org/identity/v1";

/// The remote contexts JSON-LD processing knows (URL, document), bundled
/// with the binary and never fetched.
pub const PRELOADED_CONTEXTS: &[(&str, &str)] = &[
    (
        "https://www.w3.org/ns/activitystreams",
        include_str!("contexts/activitystreams.jsonld"),
    ),
    (
        "https://w3id.org/security/v1",
        include_str!("contexts/security-v1.jsonld"),
    ),
    (
        "https://w3id.org/identity/v1",
        include_str!("contexts/identity-v1.jsonld"),
    ),
    (
        "https://w3id.org/security/data-integrity/v1",
        include_str!("contexts/data-integrity-v1.jsonld"),
    ),
    (
        "https://w3id.org/security/multikey/v1",
        include_str!("contexts/multikey-v1.jsonld"),
    ),
    (
        "https://www.w3.org/ns/did/v1",
        include_str!("contexts/did-v1.jsonld"),
    ),
    (
        "https://gotosocial.org/ns",
        include_str!("contexts/gotosocial.jsonld"),
    ),
    (
        "https://join-lemmy.org/context.json",
        include_str!("contexts/lemmy.jsonld"),
    ),
];

/// Why a document could not be signed or checked.
#[derive(Debug, thiserror::Error)]
pub enum LdError {
    /// JSON-LD processing failed: an unknown remote context, or a
    /// document that is not valid JSON-LD.
    #[error("cannot canonicalise the document: {0}")]
    Canonicalise(String),
    /// The `signature` is not an `RsaSignature2017` we can read.
    #[error("malformed Linked-Data signature: {0}")]
    Malformed(String),
    /// Signing or verifying failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

type ArcIri = Iri<Arc<str>>;
type Loader = StaticLoader<ArcIri, locspan::Span>;
type Parser = JsonLdParser<ClosureLoaderFactory<Loader, Box<dyn Fn() -> Loader + Send + Sync>>>;

/// The JSON-LD parser with the preloaded contexts, built once.
static PARSER: LazyLock<Parser> = LazyLock::new(|| {
    let mut loader = Loader::new();
    for (url, text) in PRELOADED_CONTEXTS {
        let iri: ArcIri = Iri::new_unchecked(Arc::from(*url));
        let document: Meta<json_syntax::Value<Location<ArcIri>>, Location<ArcIri>> =
            json_syntax::Value::parse_str(text, |span| Location::new(iri.clone(), span))
                .unwrap_or_else(|e| panic!("bundled context {url} is not JSON: {e:?}"));
        loader = loader.with(iri, document);
    }
    let make: Box<dyn Fn() -> Loader + Send + Sync> = Box::new(move || loader.clone());
    JsonLdParser::new_with_options(
        JsonLdOptions::new().with_document_loader_factory(ClosureLoaderFactory::new(make)),
    )
});

/// The canonical N-Quads of a JSON-LD document (RDFC-1.0).
pub fn canonical_nquads(document: &Value) -> Result<String, LdError> {
    let text = document.to_string();
    // The loader answers from memory, so the future never waits.
    let quads = futures::executor::block_on(PARSER.async_parse_str(&text));
    let dataset: LightDataset = quads
        .collect_quads()
        .map_err(|e| LdError::Canonicalise(e.to_string()))?;
    let mut out = Vec::new();
    sophia_c14n::rdfc10::normalize(&dataset, &mut out)
        .map_err(|e| LdError::Canonicalise(e.to_string()))?;
    String::from_utf8(out).map_err(|e| LdError::Canonicalise(e.to_string()))
}

/// `hex(sha256(canonical N-Quads))` of a document.
pub fn canonical_hash(document: &Value) -> Result<String, LdError> {
    let nquads = canonical_nquads(document)?;
    Ok(hex::encode(Sha256::digest(nquads.as_bytes())))
}

/// The message an `RsaSignature2017` signs for `document` (without its
/// `signature`) and the signature options `creator` and `created`.
fn signed_message(document: &Value, creator: &str, created: &str) -> Result<String, LdError> {
    let options = json!({
        "@context": OPTIONS_CONTEXT,
        "creator": creator,
        "created": created,
    });
    let mut unsigned = document.clone();
    if let Some(map) = unsigned.as_object_mut() {
        map.remove("signature");
    }
    Ok(canonical_hash(&options)? + &canonical_hash(&unsigned)?)
}

/// Adds an `RsaSignature2017` by the key `creator` (a key id such as
/// `https://example.org/actors/alerts#main-key`) to `document`, replacing
/// any earlier one.
pub fn sign(
    document: &mut Value,
    key: &KeyPair,
    creator: &str,
    now: DateTime<Utc>,
) -> Result<(), LdError> {
    let created = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let message = signed_message(document, creator, &created)?;
    let signature = keys::rsa_sign(key, message.as_bytes())?;
    let map = document
        .as_object_mut()
        .ok_or_else(|| LdError::Malformed("only a JSON object can be signed".into()))?;
    map.insert(
        "signature".into(),
        json!({
            "type": SIGNATURE_TYPE,
            "creator": creator,
            "created": created,
            "signatureValue": B64.encode(signature),
        }),
    );
    Ok(())
}

/// An `RsaSignature2017` found on a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdSignature {
    /// The key id of the signer.
    pub creator: String,
    /// When it was made, as written.
    pub created: String,
    /// The RSA signature.
    pub value: Vec<u8>,
}

impl LdSignature {
    /// The `RsaSignature2017` of `document`; `None` when it has no
    /// `signature` or one of another type.
    pub fn find(document: &Value) -> Result<Option<LdSignature>, LdError> {
        let Some(signature) = document.get("signature") else {
            return Ok(None);
        };
        if signature.get("type").and_then(Value::as_str) != Some(SIGNATURE_TYPE) {
            return Ok(None);
        }
        let text = |field: &str| {
            signature
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| LdError::Malformed(format!("no `{field}`")))
        };
        let value = B64
            .decode(text("signatureValue")?)
            .map_err(|e| LdError::Malformed(format!("signatureValue: {e}")))?;
        Ok(Some(LdSignature {
            creator: text("creator")?,
            created: text("created")?,
            value,
        }))
    }

    /// Checks the signature over `document` with the signer's RSA key.
    pub fn verify(&self, document: &Value, key: &ParsedPublicKey) -> Result<(), LdError> {
        let message = signed_message(document, &self.creator, &self.created)?;
        if keys::rsa_verify(key, message.as_bytes(), &self.value) {
            Ok(())
        } else {
            Err(SignatureError::Invalid.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::keys::{generate_rsa_keypair, parse_private_pem, parse_public_pem};
    use chrono::TimeZone;

    fn activity() -> Value {
        json!({
            "@context": [
                "https://www.w3.org/ns/activitystreams",
                "https://w3id.org/security/v1",
                "https://w3id.org/security/data-integrity/v1"
            ],
            "id": "https://a.example/activities/1",
            "type": "Update",
            "actor": "https://a.example/actors/alerts",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "object": {
                "@context": ["https://www.w3.org/ns/activitystreams", {"tocsin": "https://a.example/ns#", "region": "tocsin:region"}],
                "id": "https://a.example/alerts/1",
                "type": "Note",
                "attributedTo": "https://a.example/actors/alerts",
                "content": "<p>Détention — \"édité\"\n</p>",
                "contentMap": {"ar": "<p>اعتقال</p>"},
                "region": "africa"
            }
        })
    }

    #[test]
    fn canonical_form_is_n_quads_sorted_with_blank_nodes_relabelled() {
        let nquads = canonical_nquads(&json!({
            "@context": OPTIONS_CONTEXT,
            "creator": "https://a.example/actors/alerts#main-key",
            "created": "2026-11-28T00:00:00.000Z",
        }))
        .unwrap();
        assert_eq!(
            nquads,
            "_:c14n0 <http://purl.org/dc/terms/created> \"2026-11-28T00:00:00.000Z\"^^<http://www.w3.org/2001/XMLSchema#dateTime> .\n\
             _:c14n0 <http://purl.org/dc/terms/creator> <https://a.example/actors/alerts#main-key> .\n"
        );
    }

    #[test]
    fn a_signature_verifies_and_an_edit_breaks_it() {
        let pair = generate_rsa_keypair().unwrap();
        let key = parse_private_pem(&pair.private_pem).unwrap();
        let public = parse_public_pem(&pair.public_pem).unwrap();
        let mut doc = activity();
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        sign(
            &mut doc,
            &key,
            "https://a.example/actors/alerts#main-key",
            now,
        )
        .unwrap();
        let found = LdSignature::find(&doc).unwrap().unwrap();
        assert_eq!(found.created, "2026-11-28T12:00:00.000Z");
        found.verify(&doc, &public).unwrap();

        let mut edited = doc.clone();
        edited["object"]["contentMap"]["ar"] = json!("<p>مزور</p>");
        assert!(found.verify(&edited, &public).is_err());
        // Key order and whitespace do not matter: the RDF does.
        let reparsed: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        found.verify(&reparsed, &public).unwrap();
    }

    #[test]
    fn an_unknown_remote_context_is_never_fetched() {
        let doc =
            json!({"@context": "https://unknown.example/context", "id": "https://a.example/x"});
        assert!(matches!(
            canonical_nquads(&doc),
            Err(LdError::Canonicalise(_))
        ));
    }

    #[test]
    fn other_signature_types_are_not_ours_to_check() {
        let doc = json!({"signature": {"type": "Ed25519Signature2018", "creator": "x", "created": "y", "signatureValue": "AA=="}});
        assert_eq!(LdSignature::find(&doc).unwrap(), None);
        let doc = json!({"signature": {"type": SIGNATURE_TYPE, "creator": "x"}});
        assert!(LdSignature::find(&doc).is_err());
    }
}
