//! HTTP signature headers: draft-cavage `Signature` and RFC 9421
//! `Signature-Input` + `Signature`, parsed and checked (covered headers,
//! date window, digests) against arbitrary header values and body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};
use tocsin::signatures::{cavage, rfc9421};

fuzz_target!(|input: &str| {
    // Fields separated by newlines: signature, signature-input, date,
    // digest, content-digest, then the body.
    let mut fields = input.splitn(6, '\n');
    let mut next = || fields.next().unwrap_or_default().to_string();
    let (signature, signature_input, date, digest, content_digest, body) =
        (next(), next(), next(), next(), next(), next());
    let header = |name: &str| -> Option<String> {
        match name {
            "signature" => Some(signature.clone()),
            "signature-input" => Some(signature_input.clone()),
            "date" => Some(date.clone()),
            "digest" => Some(digest.clone()),
            "content-digest" => Some(content_digest.clone()),
            "host" => Some("tocsin.example".to_string()),
            _ => None,
        }
    };
    let window = cavage::Window {
        max_age: Duration::from_secs(3600),
        max_skew: Duration::from_secs(300),
        now: SystemTime::now(),
    };
    if let Ok(sig) = cavage::parse_signature_header(&signature) {
        let parts = cavage::RequestParts {
            method: "POST",
            path_and_query: "/inbox",
            header: &header,
            body: Some(body.as_bytes()),
        };
        let _ = cavage::check_request(&sig, &parts, window);
    }
    if let Ok(sig) = rfc9421::parse(&signature_input, &signature) {
        let parts = rfc9421::RequestParts {
            method: "POST",
            target_uri: "https://tocsin.example/inbox",
            authority: "tocsin.example",
            header: &header,
            body: Some(body.as_bytes()),
        };
        let _ = rfc9421::check_request(&sig, &parts, window);
    }
    let _ = rfc9421::content_digest_matches(&content_digest, body.as_bytes());
});
