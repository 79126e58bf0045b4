//! Our own HTTP-signature layer, shared by the inbox and the delivery
//! worker: RSA keys (generation, PEM, a cache of parsed keys) and
//! draft-cavage signatures with `Digest`, computed with `aws-lc-rs`.

pub mod cavage;
pub mod keys;
pub mod ld;
pub mod multikey;
pub mod proof;
pub mod request;
pub mod rfc9421;

use thiserror::Error;

/// Why a signature could not be made or checked.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The request carries no `Signature` header.
    #[error("request is not signed (no Signature header)")]
    Missing,
    /// The `Signature` header cannot be parsed.
    #[error("malformed Signature header: {0}")]
    Malformed(String),
    /// A header the signature must cover is not covered or not present.
    #[error("signature does not cover required header `{0}`")]
    MissingHeader(String),
    /// `Date` is outside the accepted window.
    #[error("signature date is outside the accepted window: {0}")]
    Expired(String),
    /// `Digest` does not match the body.
    #[error("Digest header does not match the body")]
    DigestMismatch,
    /// The signature does not verify with the key.
    #[error("signature does not verify")]
    Invalid,
    /// A key could not be parsed or generated.
    #[error("key error: {0}")]
    Key(String),
}
