//! Signatures checked against an independent implementation, Fedify 2.3.6
//! (tests/fixtures/fedify/README.md): proofs Fedify made verify with ours,
//! and the proof we make is the fixture Fedify's `verify.mjs` checks; the
//! same both ways for Linked-Data signatures (`RsaSignature2017`).

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use std::path::PathBuf;
use tocsin::signatures::{
    keys::{parse_private_pem, parse_public_pem},
    ld::{self, LdSignature},
    multikey,
    proof::{self, Proof},
    SignatureError,
};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fedify")
        .join(name)
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn proofs_made_by_fedify_verify() {
    let keys = load("signed-by-fedify/keys.json");
    let public =
        multikey::decode_ed25519_public(keys["publicKeyMultibase"].as_str().unwrap()).unwrap();
    for name in ["create-proof.json", "update-proof.json"] {
        let signed = load(&format!("signed-by-fedify/{name}"));
        let found = Proof::find(&signed).unwrap().expect("a proof");
        assert_eq!(found.verification_method, keys["ed25519KeyId"], "{name}");
        found.verify(&signed, &public).unwrap();

        let mut forged = signed.clone();
        forged["object"]["content"] = json!("<p>forged</p>");
        assert_eq!(
            found.verify(&forged, &public),
            Err(SignatureError::Invalid),
            "{name}"
        );
    }
}

/// The activity we sign for Fedify to check: an Update of a Note with
/// non-ASCII content, by a key made from a fixed seed.
fn our_signed_update() -> (Value, String) {
    let key = Ed25519KeyPair::from_seed_unchecked(&[42u8; 32]).unwrap();
    let actor = "https://tocsin.example/actors/alerts";
    let mut update = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", proof::DATA_INTEGRITY_CONTEXT],
        "id": "https://tocsin.example/activities/update/1",
        "type": "Update",
        "actor": actor,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": {
            "id": "https://tocsin.example/alerts/1",
            "type": "Note",
            "attributedTo": actor,
            "content": "<p>Détention — 🚨 mise à jour</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"]
        }
    });
    let created = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
    proof::sign(&mut update, &key, &format!("{actor}#ed25519-key"), created).unwrap();
    let public = multikey::encode_ed25519_public(key.public_key().as_ref());
    (update, public)
}

/// Our proof is exactly the committed fixture that Fedify verifies
/// (`node verify.mjs`); `TOCSIN_UPDATE_FIXTURES=1` rewrites it.
#[test]
fn our_proof_is_the_fixture_fedify_verifies() {
    let (update, public) = our_signed_update();
    let expected = json!({"publicKeyMultibase": public, "activity": update});
    let path = fixture_path("signed-by-tocsin/update-proof.json");
    if std::env::var_os("TOCSIN_UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    assert_eq!(load("signed-by-tocsin/update-proof.json"), expected);
}

#[test]
fn ld_signature_made_by_fedify_verifies() {
    let keys = load("signed-by-fedify/keys.json");
    let public = parse_public_pem(keys["rsaPublicKeyPem"].as_str().unwrap()).unwrap();
    let signed = load("signed-by-fedify/create-ld-signature.json");
    let found = LdSignature::find(&signed).unwrap().expect("a signature");
    assert_eq!(found.creator, keys["rsaKeyId"]);
    found.verify(&signed, &public).unwrap();

    let mut forged = signed.clone();
    forged["object"]["content"] = json!("<p>forged</p>");
    assert!(found.verify(&forged, &public).is_err());
}

/// Our Update as we send it: the proof first, then the Linked-Data
/// signature over it, by the fixture RSA key at a fixed time.
fn our_ld_signed_update() -> (Value, String) {
    let (mut update, _) = our_signed_update();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let private = std::fs::read_to_string(dir.join("fixture_actor_private.pem")).unwrap();
    // Every fixture actor publishes the public half of that key.
    let actor: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("../mastodon/actor.json")).unwrap())
            .unwrap();
    let public = actor["publicKey"]["publicKeyPem"]
        .as_str()
        .unwrap()
        .to_string();
    let key = parse_private_pem(&private).unwrap();
    let created = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
    let creator = "https://tocsin.example/actors/alerts#main-key";
    ld::sign(&mut update, &key, creator, created).unwrap();
    LdSignature::find(&update)
        .unwrap()
        .unwrap()
        .verify(&update, &parse_public_pem(&public).unwrap())
        .unwrap();
    (update, public)
}

/// Our Linked-Data signature is exactly the committed fixture that Fedify
/// verifies (`node verify.mjs`); `TOCSIN_UPDATE_FIXTURES=1` rewrites it.
/// The proof inside still verifies once the signature is set aside.
#[test]
fn our_ld_signature_is_the_fixture_fedify_verifies() {
    let (update, public) = our_ld_signed_update();
    let expected = json!({"publicKeyPem": public, "activity": update});
    let path = fixture_path("signed-by-tocsin/update-ld-signature.json");
    if std::env::var_os("TOCSIN_UPDATE_FIXTURES").is_some() {
        let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    assert_eq!(load("signed-by-tocsin/update-ld-signature.json"), expected);
    let (_, multibase) = our_signed_update();
    let ed = multikey::decode_ed25519_public(&multibase).unwrap();
    Proof::find(&update)
        .unwrap()
        .unwrap()
        .verify(&update, &ed)
        .unwrap();
}
