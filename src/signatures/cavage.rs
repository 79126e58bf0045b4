//! draft-cavage HTTP signatures as Mastodon sends and expects them:
//! `(request-target) host date digest`, `Digest: SHA-256=…`, RSA-SHA256.

use super::{
    keys::{rsa_sign, rsa_verify},
    SignatureError,
};
use aws_lc_rs::{rsa::KeyPair, signature::ParsedPublicKey};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Headers we sign on every POST, in this order.
pub const POST_HEADERS: &[&str] = &["(request-target)", "host", "date", "digest"];
/// Headers we sign on every GET.
pub const GET_HEADERS: &[&str] = &["(request-target)", "host", "date"];

/// `SHA-256=<base64>`: the value of a `Digest` header for `body`.
pub fn digest_header(body: &[u8]) -> String {
    format!("SHA-256={}", B64.encode(Sha256::digest(body)))
}

/// The headers to add to a request so that it carries a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequestHeaders {
    /// `Host` value (authority of the URL).
    pub host: String,
    /// `Date` value (IMF-fixdate).
    pub date: String,
    /// `Digest` value, for requests with a body.
    pub digest: Option<String>,
    /// `Signature` value.
    pub signature: String,
}

/// Signs a request to `url` with `method` and optional `body`.
pub fn sign(
    method: &str,
    url: &url::Url,
    body: Option<&[u8]>,
    key_id: &str,
    key: &KeyPair,
    now: SystemTime,
) -> Result<SignedRequestHeaders, SignatureError> {
    let host = url.authority().to_string();
    let date = httpdate::fmt_http_date(now);
    let digest = body.map(digest_header);
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let names: &[&str] = if digest.is_some() {
        POST_HEADERS
    } else {
        GET_HEADERS
    };
    let mut lines = Vec::with_capacity(names.len());
    for name in names {
        let value = match *name {
            "(request-target)" => format!("{} {}", method.to_lowercase(), path),
            "host" => host.clone(),
            "date" => date.clone(),
            "digest" => digest.clone().unwrap_or_default(),
            _ => unreachable!("only fixed names are signed"),
        };
        lines.push(format!("{name}: {value}"));
    }
    let signing_string = lines.join("\n");
    let sig = rsa_sign(key, signing_string.as_bytes())?;
    let signature = format!(
        "keyId=\"{key_id}\",algorithm=\"rsa-sha256\",headers=\"{}\",signature=\"{}\"",
        names.join(" "),
        B64.encode(sig)
    );
    Ok(SignedRequestHeaders {
        host,
        date,
        digest,
        signature,
    })
}

/// A parsed `Signature` (or `Authorization: Signature …`) header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    /// The `keyId`, usually `<actor>#main-key`.
    pub key_id: String,
    /// `rsa-sha256`, `hs2019` or absent.
    pub algorithm: Option<String>,
    /// Covered header names, lowercase, in order.
    pub headers: Vec<String>,
    /// Raw signature bytes.
    pub signature: Vec<u8>,
    /// `created` parameter (Unix seconds), if any.
    pub created: Option<u64>,
    /// `expires` parameter (Unix seconds), if any.
    pub expires: Option<u64>,
}

/// Parses the parameters of a `Signature` header.
pub fn parse_signature_header(value: &str) -> Result<ParsedSignature, SignatureError> {
    let value = value.strip_prefix("Signature ").unwrap_or(value);
    let mut key_id = None;
    let mut algorithm = None;
    let mut headers = None;
    let mut signature = None;
    let mut created = None;
    let mut expires = None;
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| SignatureError::Malformed("expected name=value".into()))?;
        let name = name.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| {
                SignatureError::Malformed(format!("unterminated value of {name}"))
            })?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        // Parameter names in any case, compared without a lower-case copy.
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("keyid") {
            key_id = Some(val.to_string());
        } else if is("algorithm") {
            algorithm = Some(val.to_ascii_lowercase());
        } else if is("headers") {
            headers = Some(
                val.split_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect::<Vec<_>>(),
            );
        } else if is("signature") {
            signature = Some(
                B64.decode(val)
                    .map_err(|_| SignatureError::Malformed("signature is not base64".into()))?,
            );
        } else if is("created") {
            created = Some(
                val.parse()
                    .map_err(|_| SignatureError::Malformed("created is not a number".into()))?,
            );
        } else if is("expires") {
            expires = Some(
                val.parse()
                    .map_err(|_| SignatureError::Malformed("expires is not a number".into()))?,
            );
        }
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Ok(ParsedSignature {
        key_id: key_id.ok_or_else(|| SignatureError::Malformed("no keyId".into()))?,
        algorithm,
        // The draft's default when `headers` is absent.
        headers: headers.unwrap_or_else(|| vec!["date".to_string()]),
        signature: signature.ok_or_else(|| SignatureError::Malformed("no signature".into()))?,
        created,
        expires,
    })
}

/// What a verifier needs to know about the request.
pub struct RequestParts<'a> {
    /// HTTP method, any case.
    pub method: &'a str,
    /// Path and query as received.
    pub path_and_query: &'a str,
    /// Header lookup by lowercase name; several values joined with ", ".
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Request body; `Some` requires a covered, matching `Digest`.
    pub body: Option<&'a [u8]>,
}

/// Time window a signature must fall in.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Oldest accepted age.
    pub max_age: Duration,
    /// Furthest accepted point in the future (clock skew).
    pub max_skew: Duration,
    /// The verifier's clock.
    pub now: SystemTime,
}

impl Window {
    /// One hour back and five minutes ahead of `now` (the `[federation]`
    /// defaults).
    pub fn hour_at(now: SystemTime) -> Window {
        Window {
            max_age: Duration::from_secs(3600),
            max_skew: Duration::from_secs(300),
            now,
        }
    }
}

/// Checks everything that needs no key: covered headers, the date window
/// and the body digest. Returns the signing string to verify.
pub fn check_request(
    sig: &ParsedSignature,
    req: &RequestParts<'_>,
    window: Window,
) -> Result<String, SignatureError> {
    let covers = |name: &str| sig.headers.iter().any(|h| h == name);
    if !covers("(request-target)") {
        return Err(SignatureError::MissingHeader("(request-target)".into()));
    }
    if !covers("host") {
        return Err(SignatureError::MissingHeader("host".into()));
    }
    if !covers("date") && !covers("(created)") {
        return Err(SignatureError::MissingHeader("date".into()));
    }
    // The `Digest` and `Date` read for their checks are kept for the
    // signing string: a header is read (and copied) once.
    let mut digest = None;
    if let Some(body) = req.body {
        if !covers("digest") {
            return Err(SignatureError::MissingHeader("digest".into()));
        }
        let header =
            (req.header)("digest").ok_or(SignatureError::MissingHeader("digest".into()))?;
        if !digest_matches(&header, body) {
            return Err(SignatureError::DigestMismatch);
        }
        digest = Some(header);
    }
    let now_secs = window
        .now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut date = None;
    let signed_at = if covers("date") {
        let header = (req.header)("date").ok_or(SignatureError::MissingHeader("date".into()))?;
        let signed_at = httpdate::parse_http_date(&header)
            .map_err(|_| SignatureError::Malformed(format!("unparseable Date: {header}")))?
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        date = Some(header);
        signed_at
    } else {
        sig.created
            .ok_or(SignatureError::MissingHeader("(created)".into()))?
    };
    if signed_at + window.max_age.as_secs() < now_secs {
        return Err(SignatureError::Expired(format!(
            "signed {}s ago, at most {}s accepted",
            now_secs - signed_at,
            window.max_age.as_secs()
        )));
    }
    if signed_at > now_secs + window.max_skew.as_secs() {
        return Err(SignatureError::Expired(format!(
            "signed {}s in the future",
            signed_at - now_secs
        )));
    }
    if let Some(expires) = sig.expires {
        if expires < now_secs {
            return Err(SignatureError::Expired("expires is in the past".into()));
        }
    }
    // Written straight into one string: a `format!` per line and a join
    // were a fifth of the checks before the RSA one (docs/performance.md).
    let mut signing_string = String::with_capacity(256);
    for name in &sig.headers {
        if !signing_string.is_empty() {
            signing_string.push('\n');
        }
        signing_string.push_str(name);
        signing_string.push_str(": ");
        let number = |n: Option<u64>| n.ok_or_else(|| SignatureError::MissingHeader(name.clone()));
        match (name.as_str(), &date, &digest) {
            ("(request-target)", ..) => {
                signing_string.extend(req.method.chars().flat_map(char::to_lowercase));
                signing_string.push(' ');
                signing_string.push_str(req.path_and_query);
            }
            ("(created)", ..) => signing_string.push_str(&number(sig.created)?.to_string()),
            ("(expires)", ..) => signing_string.push_str(&number(sig.expires)?.to_string()),
            ("date", Some(value), _) | ("digest", _, Some(value)) => signing_string.push_str(value),
            (other, ..) => {
                let value = (req.header)(other)
                    .ok_or_else(|| SignatureError::MissingHeader(other.into()))?;
                signing_string.push_str(&value);
            }
        }
    }
    Ok(signing_string)
}

/// Verifies the signature over `signing_string` with `key`.
pub fn verify(
    sig: &ParsedSignature,
    signing_string: &str,
    key: &ParsedPublicKey,
) -> Result<(), SignatureError> {
    match sig.algorithm.as_deref() {
        None | Some("rsa-sha256") | Some("hs2019") => {}
        Some(other) => {
            return Err(SignatureError::Malformed(format!(
                "unsupported algorithm {other}"
            )))
        }
    }
    if rsa_verify(key, signing_string.as_bytes(), &sig.signature) {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// True when a `Digest` header has a SHA-256 entry equal to the body's.
pub fn digest_matches(header: &str, body: &[u8]) -> bool {
    let expected = B64.encode(Sha256::digest(body));
    let mut saw_sha256 = false;
    for part in header.split(',') {
        if let Some((alg, value)) = part.trim().split_once('=') {
            if alg.eq_ignore_ascii_case("sha-256") {
                saw_sha256 = true;
                if value.trim() != expected {
                    return false;
                }
            }
        }
    }
    saw_sha256
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::keys::{generate_rsa_keypair, KeyCache};
    use std::collections::HashMap;

    fn window(now: SystemTime) -> Window {
        Window::hour_at(now)
    }

    fn signed_post(now: SystemTime, body: &[u8]) -> (HashMap<String, String>, KeyCache, String) {
        let pair = generate_rsa_keypair().unwrap();
        let cache = KeyCache::default();
        let url = url::Url::parse("https://b.example/inbox?x=1").unwrap();
        let h = sign(
            "POST",
            &url,
            Some(body),
            "https://a.example/actor#main-key",
            &cache.private(&pair.private_pem).unwrap(),
            now,
        )
        .unwrap();
        let mut map = HashMap::new();
        map.insert("host".to_string(), h.host);
        map.insert("date".to_string(), h.date);
        map.insert("digest".to_string(), h.digest.unwrap());
        map.insert("signature".to_string(), h.signature);
        (map, cache, pair.public_pem)
    }

    fn check(
        map: &HashMap<String, String>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<String, SignatureError> {
        let sig = parse_signature_header(&map["signature"])?;
        let lookup = |name: &str| map.get(name).cloned();
        check_request(
            &sig,
            &RequestParts {
                method: "POST",
                path_and_query: "/inbox?x=1",
                header: &lookup,
                body: Some(body),
            },
            window(now),
        )
    }

    #[test]
    fn a_signed_post_verifies() {
        let now = SystemTime::now();
        let (map, cache, public) = signed_post(now, b"{}");
        let signing_string = check(&map, b"{}", now).unwrap();
        assert!(signing_string.starts_with("(request-target): post /inbox?x=1\nhost: b.example\n"));
        let sig = parse_signature_header(&map["signature"]).unwrap();
        verify(&sig, &signing_string, &cache.public(&public).unwrap()).unwrap();
    }

    #[test]
    fn another_body_is_a_digest_mismatch() {
        let now = SystemTime::now();
        let (map, _, _) = signed_post(now, b"{}");
        assert_eq!(
            check(&map, b"{\"a\":1}", now),
            Err(SignatureError::DigestMismatch)
        );
    }

    #[test]
    fn two_hour_old_date_is_rejected_and_future_skew_tolerated() {
        let now = SystemTime::now();
        let (map, _, _) = signed_post(now - Duration::from_secs(7200), b"{}");
        assert!(matches!(
            check(&map, b"{}", now),
            Err(SignatureError::Expired(_))
        ));
        let (map, _, _) = signed_post(now + Duration::from_secs(120), b"{}");
        assert!(check(&map, b"{}", now).is_ok());
        let (map, _, _) = signed_post(now + Duration::from_secs(900), b"{}");
        assert!(matches!(
            check(&map, b"{}", now),
            Err(SignatureError::Expired(_))
        ));
    }

    #[test]
    fn a_tampered_header_fails_verification() {
        let now = SystemTime::now();
        let (mut map, cache, public) = signed_post(now, b"{}");
        map.insert("host".into(), "evil.example".into());
        let signing_string = check(&map, b"{}", now).unwrap();
        let sig = parse_signature_header(&map["signature"]).unwrap();
        assert_eq!(
            verify(&sig, &signing_string, &cache.public(&public).unwrap()),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn the_signing_string_lists_every_covered_header_in_its_order() {
        // Parameter names in any case; pseudo-headers, a header read for
        // its check (digest, date) and one that is not (host).
        let h = r#"KeyId="https://a.example/actor#main-key",Algorithm="hs2019",created=1700000000,expires=1700000300,HEADERS="(request-target) (created) (expires) host digest date",Signature="AAAA""#;
        let sig = parse_signature_header(h).unwrap();
        assert_eq!(sig.key_id, "https://a.example/actor#main-key");
        assert_eq!(sig.algorithm.as_deref(), Some("hs2019"));
        let body = b"{}";
        let digest = digest_header(body);
        let date = "Tue, 14 Nov 2023 22:13:20 GMT";
        let headers = HashMap::from([("host", "b.example"), ("date", date), ("digest", &digest)]);
        let lookup = |name: &str| headers.get(name).map(|v| v.to_string());
        let parts = RequestParts {
            method: "POST",
            path_and_query: "/inbox",
            header: &lookup,
            body: Some(body),
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_010);
        assert_eq!(
            check_request(&sig, &parts, window(now)).unwrap(),
            format!(
                "(request-target): post /inbox\n(created): 1700000000\n(expires): 1700000300\n\
                 host: b.example\ndigest: {digest}\ndate: {date}"
            )
        );
    }

    #[test]
    fn parses_mastodon_style_header() {
        let h = r#"keyId="https://mastodon.example/users/alice#main-key",algorithm="rsa-sha256",headers="(request-target) host date digest content-type",signature="AAAA""#;
        let sig = parse_signature_header(h).unwrap();
        assert_eq!(sig.key_id, "https://mastodon.example/users/alice#main-key");
        assert_eq!(
            sig.headers,
            vec!["(request-target)", "host", "date", "digest", "content-type"]
        );
        assert_eq!(sig.signature, vec![0, 0, 0]);
    }

    #[test]
    fn unsigned_digest_or_missing_headers_are_rejected() {
        let sig = ParsedSignature {
            key_id: "k".into(),
            algorithm: None,
            headers: vec!["(request-target)".into(), "host".into(), "date".into()],
            signature: vec![],
            created: None,
            expires: None,
        };
        let lookup = |_: &str| Some("x".to_string());
        let r = check_request(
            &sig,
            &RequestParts {
                method: "POST",
                path_and_query: "/",
                header: &lookup,
                body: Some(b"{}"),
            },
            window(SystemTime::now()),
        );
        assert_eq!(r, Err(SignatureError::MissingHeader("digest".into())));
        assert!(parse_signature_header("garbage").is_err());
    }
}
