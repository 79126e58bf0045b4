//! RFC 9421 HTTP Message Signatures as Mastodon 4.5+ and Fedify send them:
//! `Signature-Input` and `Signature` dictionaries (RFC 8941 structured
//! fields, parsed with `sfv`), components `@method`, `@target-uri`,
//! `@authority` and `content-digest` (RFC 9530), `created`, and the
//! algorithms `rsa-v1_5-sha256` and `ed25519`.

use super::{
    keys::{rsa_sign, rsa_verify},
    SignatureError,
};
use aws_lc_rs::{
    rsa::KeyPair,
    signature::{Ed25519KeyPair, ParsedPublicKey, UnparsedPublicKey, ED25519},
};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use sfv::{BareItem, Dictionary, FieldType, Item, ListEntry, Parser};
use sha2::{Digest, Sha256, Sha512};
use std::time::{SystemTime, UNIX_EPOCH};

/// The components we cover on a POST, in this order.
pub const POST_COMPONENTS: &[&str] = &["@method", "@target-uri", "@authority", "content-digest"];
/// The components we cover on a GET.
pub const GET_COMPONENTS: &[&str] = &["@method", "@target-uri", "@authority"];

/// One signature from `Signature-Input` with its `Signature` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    /// Covered component names, in order.
    pub components: Vec<String>,
    /// `keyid`.
    pub key_id: String,
    /// `alg`, when given.
    pub alg: Option<String>,
    /// `created` (Unix seconds).
    pub created: Option<i64>,
    /// `expires` (Unix seconds).
    pub expires: Option<i64>,
    /// The `@signature-params` value: the inner list with its parameters.
    params: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

fn malformed(what: impl std::fmt::Display) -> SignatureError {
    SignatureError::Malformed(what.to_string())
}

/// Reads the first signature of `Signature-Input` that `Signature` carries.
pub fn parse(signature_input: &str, signature: &str) -> Result<ParsedSignature, SignatureError> {
    let inputs: Dictionary = Parser::new(signature_input)
        .parse()
        .map_err(|e| malformed(format!("Signature-Input: {e}")))?;
    let signatures: Dictionary = Parser::new(signature)
        .parse()
        .map_err(|e| malformed(format!("Signature: {e}")))?;
    let (label, list, bytes) = inputs
        .iter()
        .find_map(|(label, entry)| match (entry, signatures.get(label)) {
            (ListEntry::InnerList(list), Some(ListEntry::Item(item))) => item
                .bare_item
                .as_byte_sequence()
                .map(|b| (label.clone(), list.clone(), b.to_vec())),
            _ => None,
        })
        .ok_or_else(|| malformed("no signature in Signature-Input has a value in Signature"))?;
    let mut components = Vec::with_capacity(list.items.len());
    for item in &list.items {
        if !item.params.is_empty() {
            return Err(malformed("component parameters are not supported"));
        }
        let name = item
            .bare_item
            .as_string()
            .ok_or_else(|| malformed("a covered component is not a string"))?;
        components.push(name.as_str().to_string());
    }
    let string_param = |name: &str| {
        list.params
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .and_then(|(_, v)| v.as_string().map(|s| s.as_str().to_string()))
    };
    let int_param = |name: &str| {
        list.params
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .and_then(|(_, v)| v.as_integer().map(i64::from))
    };
    let key_id = string_param("keyid").ok_or_else(|| malformed("no keyid"))?;
    let mut single = Dictionary::new();
    single.insert(label.clone(), ListEntry::InnerList(list.clone()));
    let serialized = single
        .serialize()
        .ok_or_else(|| malformed("empty Signature-Input"))?;
    let params = serialized
        .strip_prefix(&format!("{}=", label.as_str()))
        .unwrap_or(&serialized)
        .to_string();
    Ok(ParsedSignature {
        components,
        key_id,
        alg: string_param("alg"),
        created: int_param("created"),
        expires: int_param("expires"),
        params,
        signature: bytes,
    })
}

/// What a verifier knows of the request.
pub struct RequestParts<'a> {
    /// HTTP method, any case.
    pub method: &'a str,
    /// The full URI as the sender addressed it (our public scheme and host).
    pub target_uri: &'a str,
    /// Our public host (and port).
    pub authority: &'a str,
    /// Header lookup by lowercase name; several values joined with ", ".
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Request body; `Some` requires a covered, matching `Content-Digest`.
    pub body: Option<&'a [u8]>,
}

/// Checks everything that needs no key — covered components, `created`
/// within the window, the body's `Content-Digest` — and returns the
/// signature base to verify.
pub fn check_request(
    sig: &ParsedSignature,
    req: &RequestParts<'_>,
    window: super::cavage::Window,
) -> Result<String, SignatureError> {
    let covers = |name: &str| sig.components.iter().any(|c| c == name);
    for required in ["@method", "@target-uri", "@authority"] {
        let covered = covers(required) || (required == "@target-uri" && covers("@path"));
        if !covered {
            return Err(SignatureError::MissingHeader(required.into()));
        }
    }
    if let Some(body) = req.body {
        if !covers("content-digest") {
            return Err(SignatureError::MissingHeader("content-digest".into()));
        }
        let header = (req.header)("content-digest")
            .ok_or(SignatureError::MissingHeader("content-digest".into()))?;
        if !content_digest_matches(&header, body) {
            return Err(SignatureError::DigestMismatch);
        }
    }
    let now = window
        .now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let created = sig
        .created
        .ok_or(SignatureError::MissingHeader("created".into()))?;
    if created + (window.max_age.as_secs() as i64) < now {
        return Err(SignatureError::Expired(format!(
            "created {}s ago, at most {}s accepted",
            now - created,
            window.max_age.as_secs()
        )));
    }
    if created > now + window.max_skew.as_secs() as i64 {
        return Err(SignatureError::Expired(format!(
            "created {}s in the future",
            created - now
        )));
    }
    if sig.expires.is_some_and(|e| e < now) {
        return Err(SignatureError::Expired("expires is in the past".into()));
    }
    signature_base(sig, req.method, req.target_uri, req.authority, req.header)
}

/// Verifies with an RSA key (`rsa-v1_5-sha256`, or no `alg`).
pub fn verify_rsa(
    sig: &ParsedSignature,
    base: &str,
    key: &ParsedPublicKey,
) -> Result<(), SignatureError> {
    match sig.alg.as_deref() {
        None | Some("rsa-v1_5-sha256") => {}
        Some(other) => return Err(malformed(format!("algorithm {other} with an RSA key"))),
    }
    if rsa_verify(key, base.as_bytes(), &sig.signature) {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// Verifies with an Ed25519 key (32 raw bytes; `ed25519`, or no `alg`).
pub fn verify_ed25519(sig: &ParsedSignature, base: &str, key: &[u8]) -> Result<(), SignatureError> {
    match sig.alg.as_deref() {
        None | Some("ed25519") => {}
        Some(other) => return Err(malformed(format!("algorithm {other} with an Ed25519 key"))),
    }
    UnparsedPublicKey::new(&ED25519, key)
        .verify(base.as_bytes(), &sig.signature)
        .map_err(|_| SignatureError::Invalid)
}

/// `sha-256=:<base64>:`, the `Content-Digest` of `body`.
pub fn content_digest_header(body: &[u8]) -> String {
    format!("sha-256=:{}:", B64.encode(Sha256::digest(body)))
}

/// True when `Content-Digest` has a SHA-256 or SHA-512 entry and every
/// such entry matches the body.
pub fn content_digest_matches(header: &str, body: &[u8]) -> bool {
    let Ok(dict) = Parser::new(header).parse::<Dictionary>() else {
        return false;
    };
    let mut checked = false;
    for (name, entry) in &dict {
        let ListEntry::Item(Item {
            bare_item: BareItem::ByteSequence(bytes),
            ..
        }) = entry
        else {
            continue;
        };
        let expected: Vec<u8> = match name.as_str() {
            "sha-256" => Sha256::digest(body).to_vec(),
            "sha-512" => Sha512::digest(body).to_vec(),
            _ => continue,
        };
        if *bytes != expected {
            return false;
        }
        checked = true;
    }
    checked
}

/// The headers that sign a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequestHeaders {
    /// `Content-Digest`, for requests with a body.
    pub content_digest: Option<String>,
    /// `Signature-Input`.
    pub signature_input: String,
    /// `Signature`.
    pub signature: String,
}

/// A private key that can make an RFC 9421 signature.
#[derive(Clone, Copy)]
pub enum SigningKey<'a> {
    /// RSA, `rsa-v1_5-sha256`.
    Rsa(&'a KeyPair),
    /// Ed25519, `ed25519`.
    Ed25519(&'a Ed25519KeyPair),
}

impl SigningKey<'_> {
    fn alg(&self) -> &'static str {
        match self {
            SigningKey::Rsa(_) => "rsa-v1_5-sha256",
            SigningKey::Ed25519(_) => "ed25519",
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        match self {
            SigningKey::Rsa(key) => rsa_sign(key, message),
            SigningKey::Ed25519(key) => Ok(key.sign(message).as_ref().to_vec()),
        }
    }
}

/// Signs a request (label `sig1`): our deliveries use the RSA key.
pub fn sign(
    method: &str,
    url: &url::Url,
    body: Option<&[u8]>,
    key_id: &str,
    key: SigningKey<'_>,
    now: SystemTime,
) -> Result<SignedRequestHeaders, SignatureError> {
    let content_digest = body.map(content_digest_header);
    let names = if body.is_some() {
        POST_COMPONENTS
    } else {
        GET_COMPONENTS
    };
    let created = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let quoted = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let covered: Vec<String> = names.iter().map(|n| quoted(n)).collect();
    let signature_input = format!(
        "sig1=({});created={created};keyid={};alg=\"{}\"",
        covered.join(" "),
        quoted(key_id),
        key.alg()
    );
    // Parsed back, so the signed parameters are exactly what a verifier reads.
    let parsed = parse(&signature_input, "sig1=:AA==:")?;
    let authority = url.authority().to_string();
    let digest = content_digest.clone();
    let lookup = move |name: &str| (name == "content-digest").then(|| digest.clone()).flatten();
    let base = signature_base(&parsed, method, url.as_str(), &authority, &lookup)?;
    let signature = key.sign(base.as_bytes())?;
    Ok(SignedRequestHeaders {
        content_digest,
        signature_input,
        signature: format!("sig1=:{}:", B64.encode(signature)),
    })
}

/// The signature base (RFC 9421 §2.5): one line per covered component,
/// then `@signature-params`.
fn signature_base(
    sig: &ParsedSignature,
    method: &str,
    target_uri: &str,
    authority: &str,
    header: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SignatureError> {
    let mut lines = Vec::with_capacity(sig.components.len() + 1);
    for name in &sig.components {
        let value = match name.as_str() {
            "@method" => method.to_uppercase(),
            "@target-uri" => target_uri.to_string(),
            "@authority" => authority.to_lowercase(),
            "@path" => url::Url::parse(target_uri)
                .map_err(|_| malformed("target URI"))?
                .path()
                .to_string(),
            other if other.starts_with('@') => {
                return Err(malformed(format!("unsupported component {other}")))
            }
            other => header(other)
                .ok_or_else(|| SignatureError::MissingHeader(other.into()))?
                .trim()
                .to_string(),
        };
        lines.push(format!("\"{name}\": {value}"));
    }
    lines.push(format!("\"@signature-params\": {}", sig.params));
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::{cavage::Window, keys};
    use std::time::Duration;

    fn window(now: SystemTime) -> Window {
        Window::hour_at(now)
    }

    /// RFC 9421 appendix B.2.6: the request of B.2 signed with the
    /// test key `test-key-ed25519` (B.1.4).
    #[test]
    fn rfc_9421_ed25519_test_vector() {
        let sig = parse(
            r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#,
            "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:",
        )
        .unwrap();
        assert_eq!(sig.key_id, "test-key-ed25519");
        assert_eq!(sig.created, Some(1618884473));
        let header = |name: &str| {
            Some(
                match name {
                    "date" => "Tue, 20 Apr 2021 02:07:55 GMT",
                    "content-type" => "application/json",
                    "content-length" => "18",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let base = signature_base(
            &sig,
            "POST",
            "https://example.com/foo?param=Value&Pet=dog",
            "example.com",
            &header,
        )
        .unwrap();
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs")
            .unwrap();
        verify_ed25519(&sig, &base, &key).unwrap();
        let mut forged = sig.clone();
        forged.components.pop();
        let short = signature_base(
            &forged,
            "POST",
            "https://example.com/foo",
            "example.com",
            &header,
        )
        .unwrap();
        assert_eq!(
            verify_ed25519(&sig, &short, &key),
            Err(SignatureError::Invalid)
        );
    }

    /// RFC 9530 example: `{"hello": "world"}` and its SHA-512 digest.
    #[test]
    fn content_digest_rfc_9530() {
        let body = br#"{"hello": "world"}"#;
        let header = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
        assert!(content_digest_matches(header, body));
        assert!(!content_digest_matches(header, b"{}"));
        assert!(content_digest_matches(&content_digest_header(body), body));
        assert!(
            !content_digest_matches("md5=:AAAA:", body),
            "no known algorithm"
        );
        assert!(!content_digest_matches("not a dictionary ((", body));
    }

    fn signed(now: SystemTime) -> (SignedRequestHeaders, aws_lc_rs::signature::ParsedPublicKey) {
        let pair = keys::generate_rsa_keypair().unwrap();
        let key = keys::parse_private_pem(&pair.private_pem).unwrap();
        let url = url::Url::parse("https://hub.example/inbox").unwrap();
        let headers = sign(
            "POST",
            &url,
            Some(b"{\"type\":\"Create\"}"),
            "https://ngo.example/actors/alerts#main-key",
            SigningKey::Rsa(&key),
            now,
        )
        .unwrap();
        (headers, keys::parse_public_pem(&pair.public_pem).unwrap())
    }

    fn check(
        headers: &SignedRequestHeaders,
        body: &[u8],
        target: &str,
        now: SystemTime,
    ) -> Result<(ParsedSignature, String), SignatureError> {
        let sig = parse(&headers.signature_input, &headers.signature)?;
        let digest = headers.content_digest.clone();
        let lookup = move |n: &str| (n == "content-digest").then(|| digest.clone()).flatten();
        let parts = RequestParts {
            method: "post",
            target_uri: target,
            authority: "hub.example",
            header: &lookup,
            body: Some(body),
        };
        let base = check_request(&sig, &parts, window(now))?;
        Ok((sig, base))
    }

    #[test]
    fn what_we_sign_verifies() {
        let now = SystemTime::now();
        let (headers, public) = signed(now);
        assert!(headers.signature_input.starts_with(
            r#"sig1=("@method" "@target-uri" "@authority" "content-digest");created="#
        ));
        let (sig, base) = check(
            &headers,
            b"{\"type\":\"Create\"}",
            "https://hub.example/inbox",
            now,
        )
        .unwrap();
        verify_rsa(&sig, &base, &public).unwrap();
        // Another target: the base differs and the signature fails.
        let (sig, base) = check(
            &headers,
            b"{\"type\":\"Create\"}",
            "https://hub.example/other",
            now,
        )
        .unwrap();
        assert_eq!(
            verify_rsa(&sig, &base, &public),
            Err(SignatureError::Invalid)
        );
        assert!(matches!(
            verify_ed25519(&sig, &base, &[0u8; 32]),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_digest_stale_and_future_signatures_are_refused() {
        let now = SystemTime::now();
        let (headers, _) = signed(now);
        assert_eq!(
            check(
                &headers,
                b"{\"type\":\"Delete\"}",
                "https://hub.example/inbox",
                now
            )
            .err(),
            Some(SignatureError::DigestMismatch)
        );
        let (old, _) = signed(now - Duration::from_secs(7200));
        assert!(matches!(
            check(
                &old,
                b"{\"type\":\"Create\"}",
                "https://hub.example/inbox",
                now
            ),
            Err(SignatureError::Expired(_))
        ));
        let (future, _) = signed(now + Duration::from_secs(900));
        assert!(matches!(
            check(
                &future,
                b"{\"type\":\"Create\"}",
                "https://hub.example/inbox",
                now
            ),
            Err(SignatureError::Expired(_))
        ));
    }

    #[test]
    fn malformed_inputs() {
        assert!(parse("sig1=(", "sig1=:AA==:").is_err());
        assert!(
            parse(r#"sig1=("@method");created=1"#, "sig1=:AA==:").is_err(),
            "no keyid"
        );
        assert!(
            parse(r#"sig1=("@method");keyid="k""#, "sig2=:AA==:").is_err(),
            "no value"
        );
        assert!(parse(r#"sig1=("@method";req);keyid="k""#, "sig1=:AA==:").is_err());
        let sig = parse(
            r#"sig1=("@method" "@authority");keyid="k";created=1"#,
            "sig1=:AA==:",
        )
        .unwrap();
        let none = |_: &str| None;
        let parts = RequestParts {
            method: "GET",
            target_uri: "https://a.example/x",
            authority: "a.example",
            header: &none,
            body: None,
        };
        assert_eq!(
            check_request(&sig, &parts, window(SystemTime::now())).err(),
            Some(SignatureError::MissingHeader("@target-uri".into()))
        );
    }
}
