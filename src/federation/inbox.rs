//! The inbox (shared and per actor): cheap checks first (content type,
//! JSON depth, recipients, blocked actor, an id stored lately), then the
//! signature with our own layer (a signer verified in the last minute needs
//! no database read), then the activity's shape and its own `verify` (each
//! giving a clear 4xx). The activity is then stored in the inbox queue,
//! unless its id was received before, and answered 202; a worker runs its
//! `receive` (see [`super::inbox_queue`]).

use super::{
    activities::{
        accept::Accept, accept_offer::AcceptOffer, announce::Announce, create::CreateNote,
        delete::Delete, follow::Follow, offer::Offer, reject::Reject, undo_follow::UndoFollow,
        update::UpdateNote,
    },
    envelope::Envelope,
    forwarded,
    inbox_batch::{Accepted, AcceptedItem, Incoming},
    ld_signatures,
    objects::actor::DbActor,
    proofs, same_origin,
};
use crate::{
    db,
    error::Error,
    signatures::{cavage, multikey, request, rfc9421, SignatureError},
    state::Data,
    web::rate_limit::Bucket,
};
use activitypub_federation::{fetch::object_id::ObjectId, traits::Activity};
use actix_web::{web::Bytes, HttpRequest, HttpResponse};
use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};
use url::Url;

/// The activities we act on, most specific first.
#[derive(Debug, Clone)]
pub enum InboxActivity {
    /// Someone follows one of our actors.
    Follow(Follow),
    /// Someone accepted our Follow.
    Accept(Accept),
    /// Someone rejected our Follow.
    Reject(Reject),
    /// A follower leaves.
    UndoFollow(UndoFollow),
    /// A new alert (Note, Article or Page).
    CreateNote(CreateNote),
    /// An edited alert.
    UpdateNote(UpdateNote),
    /// A deleted object.
    Delete(Delete),
    /// A boost: we fetch the object from its origin.
    Announce(Announce),
    /// A campaign asks one of our organisations to co-sign a statement.
    Offer(Offer),
    /// A co-signer confirmed a statement of one of our campaigns.
    AcceptOffer(AcceptOffer),
}

/// An activity's object, for an activity whose id, type and actor its
/// envelope read: the rest of the body is skipped.
#[derive(serde::Deserialize)]
struct ObjectOf<T> {
    object: T,
}

/// What the inbox did with a well-formed, correctly signed activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Verified and applied.
    Applied,
    /// Verified and stored; a worker applies it.
    Queued,
    /// The same id was processed before; nothing changed.
    Duplicate,
    /// A type we do not act on; acknowledged and dropped.
    Ignored,
}

impl InboxActivity {
    /// Picks the variant from the envelope's `type` (and, for Undo, the
    /// type of its object). `None` for activities we do not act on.
    pub(super) fn parse(envelope: &Envelope, body: &[u8]) -> Result<Option<InboxActivity>, Error> {
        let object_type = envelope.object.kind.as_deref();
        Ok(Some(match (envelope.kind.as_str(), object_type) {
            ("Follow", _) => InboxActivity::Follow(serde_json::from_slice(body)?),
            ("Accept", Some("Offer")) => InboxActivity::AcceptOffer(serde_json::from_slice(body)?),
            ("Offer", Some("Note" | "Article")) => {
                InboxActivity::Offer(serde_json::from_slice(body)?)
            }
            ("Accept", Some("Follow") | None) => {
                InboxActivity::Accept(serde_json::from_slice(body)?)
            }
            ("Reject", Some("Follow") | None) => {
                InboxActivity::Reject(serde_json::from_slice(body)?)
            }
            ("Undo", Some("Follow")) => InboxActivity::UndoFollow(serde_json::from_slice(body)?),
            // Most of what an inbox gets: the id and actor the envelope
            // read are not parsed again.
            ("Create", Some("Note" | "Article" | "Page")) => {
                InboxActivity::CreateNote(CreateNote {
                    id: envelope.id.clone(),
                    kind: Default::default(),
                    actor: envelope.actor.clone().into(),
                    object: serde_json::from_slice::<ObjectOf<_>>(body)?.object,
                })
            }
            ("Update", Some("Note" | "Article" | "Page")) => {
                InboxActivity::UpdateNote(UpdateNote {
                    id: envelope.id.clone(),
                    kind: Default::default(),
                    actor: envelope.actor.clone().into(),
                    object: serde_json::from_slice::<ObjectOf<_>>(body)?.object,
                    raw: Some(String::from_utf8_lossy(body).into_owned()),
                })
            }
            ("Delete", _) => {
                let mut delete: Delete = serde_json::from_slice(body)?;
                delete.raw = Some(String::from_utf8_lossy(body).into_owned());
                InboxActivity::Delete(delete)
            }
            ("Announce", _) => InboxActivity::Announce(serde_json::from_slice(body)?),
            _ => return Ok(None),
        }))
    }

    async fn verify(&self, data: &Data) -> Result<(), Error> {
        match self {
            InboxActivity::Follow(a) => a.verify(data).await,
            InboxActivity::Accept(a) => a.verify(data).await,
            InboxActivity::Reject(a) => a.verify(data).await,
            InboxActivity::UndoFollow(a) => a.verify(data).await,
            InboxActivity::CreateNote(a) => a.verify(data).await,
            InboxActivity::UpdateNote(a) => a.verify(data).await,
            InboxActivity::Delete(a) => a.verify(data).await,
            InboxActivity::Announce(a) => a.verify(data).await,
            InboxActivity::Offer(a) => a.verify(data).await,
            InboxActivity::AcceptOffer(a) => a.verify(data).await,
        }
    }

    async fn receive(self, data: &Data) -> Result<(), Error> {
        match self {
            InboxActivity::Follow(a) => a.receive(data).await,
            InboxActivity::Accept(a) => a.receive(data).await,
            InboxActivity::Reject(a) => a.receive(data).await,
            InboxActivity::UndoFollow(a) => a.receive(data).await,
            InboxActivity::CreateNote(a) => a.receive(data).await,
            InboxActivity::UpdateNote(a) => a.receive(data).await,
            InboxActivity::Delete(a) => a.receive(data).await,
            InboxActivity::Announce(a) => a.receive(data).await,
            InboxActivity::Offer(a) => a.receive(data).await,
            InboxActivity::AcceptOffer(a) => a.receive(data).await,
        }
    }
}

/// `POST /inbox` and `POST /actors/{name}/inbox`.
pub async fn post_inbox(
    request: HttpRequest,
    body: Bytes,
    data: Data,
) -> Result<HttpResponse, Error> {
    check_content_type(&request)?;
    if let Some(name) = request.match_info().get("name") {
        let name = name.to_string();
        data.db
            .run(move |conn| db::actors::local_by_username(conn, &name))
            .await?
            .ok_or(Error::NotFound)?;
    }
    let handled = receive(&request, &body, &data).await?;
    tracing::debug!(?handled, "inbox");
    Ok(HttpResponse::Accepted().finish())
}

/// Media types an activity may be posted as: ActivityStreams, JSON-LD
/// (with any profile) and plain JSON, as servers send them.
const ACTIVITY_MEDIA_TYPES: &[&str] = &[
    "application/activity+json",
    "application/ld+json",
    "application/json",
];

/// Refuses (415) a body that does not say it is JSON: a form or a page
/// posted at the inbox is never an activity.
fn check_content_type(request: &HttpRequest) -> Result<(), Error> {
    let value = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = value.split(';').next().unwrap_or_default().trim();
    if ACTIVITY_MEDIA_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(essence))
    {
        return Ok(());
    }
    Err(Error::UnsupportedMediaType(format!(
        "an activity must be posted as application/activity+json, not {:?}",
        value
    )))
}

/// How deeply an activity's JSON may nest. Real activities stay under ten
/// levels; serde skips unknown fields without a limit, so a body of
/// thousands of nested arrays would otherwise be accepted and stored.
pub const MAX_JSON_DEPTH: usize = 64;

/// Parses the envelope of a body: depth first (at most `max_depth`), then
/// the fields every activity has.
fn parse_envelope(body: &[u8], max_depth: usize) -> Result<Envelope, Error> {
    crate::limits::check_json_depth(body, max_depth)?;
    parse_body(body)
}

/// A body (its depth already checked) as `T`: the envelope, or the whole
/// JSON tree for the checks that read any part of it (proofs and
/// Linked-Data signatures). Malformed JSON is a 400.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("not an activity: {e}")))
}

/// Checks and applies one incoming activity.
pub async fn receive(request: &HttpRequest, bytes: &Bytes, data: &Data) -> Result<Handled, Error> {
    let body: &[u8] = bytes;
    let limits = &data.config.limits;
    let envelope = parse_envelope(body, limits.max_json_depth)?;
    crate::limits::check_recipients(envelope.recipients(), limits.max_recipients)?;
    // A copy of an activity stored lately (a retry, or the same activity
    // forwarded by several servers): dropped before any other work.
    if data.inbox.stored_lately(envelope.id.as_str()) {
        return Ok(Handled::Duplicate);
    }
    // A blocked actor's activity is refused even when another server
    // forwards it.
    data.policies.check_url(&envelope.actor).await?;
    let signer = verify_request_signature(request, Some(body), data).await?;
    if signer.ap_id != envelope.actor || envelope.has_proof() {
        // Boxed, as every path that may fetch: inline, its state would
        // make every request's future (allocated and copied per request)
        // several kilobytes larger.
        if let Some(handled) = Box::pin(check_vouchers(&envelope, body, &signer, data)).await? {
            return Ok(handled);
        }
    }
    if !same_origin(&envelope.id, &envelope.actor) {
        return Err(Error::BadRequest(format!(
            "activity id {} is not on its actor's host",
            envelope.id
        )));
    }
    let id = envelope.id.to_string();
    let Some(activity) = InboxActivity::parse(&envelope, body)? else {
        return Ok(Handled::Ignored);
    };
    activity.verify(data).await?;
    let batch = matches!(
        activity,
        InboxActivity::CreateNote(_) | InboxActivity::UpdateNote(_)
    );
    let item = AcceptedItem {
        ap_id: id.clone(),
        signer: signer.ap_id.to_string(),
        body: bytes.clone(),
        batch,
    };
    // The writer stores an alert in the transaction that accepts it: its
    // HTML is sanitised here, on the request's thread.
    let alert = match batch && data.inbox.applies_at_once() {
        true => Incoming::from_activity(id, &envelope.actor, activity).map(|incoming| {
            let prepared = incoming.prepare();
            (incoming, Some(prepared))
        }),
        false => None,
    };
    let accepted = Box::new(Accepted {
        item,
        alert,
        signer: (signer.ap_id == envelope.actor).then_some(signer),
    });
    Ok(match data.inbox.enqueue(accepted).await? {
        true => Handled::Queued,
        false => Handled::Duplicate,
    })
}

/// The checks of an activity signed by another actor than its own
/// (forwarded) or carrying an object integrity proof. Forwarded: a proof
/// or a Linked-Data signature by the actor vouches for the body; without
/// one, the origin must confirm it (`Some`: handed to [`forwarded`]). A
/// proof on a direct activity must hold too.
async fn check_vouchers(
    envelope: &Envelope,
    body: &[u8],
    signer: &DbActor,
    data: &Data,
) -> Result<Option<Handled>, Error> {
    let value: serde_json::Value = parse_body(body)?;
    if signer.ap_id == envelope.actor {
        proofs::verify(data, &envelope.actor, &value).await?;
        return Ok(None);
    }
    let vouched = proofs::verify(data, &envelope.actor, &value)
        .await?
        .is_some()
        || ld_signatures::verify(data, &envelope.actor, &value)
            .await?
            .is_some();
    if vouched {
        return Ok(None);
    }
    forwarded::receive(envelope, body, signer, data)
        .await
        .map(Some)
}

/// Parses a body as the inbox does before any network or database work:
/// the envelope, then the variant for its type (`None`: a type we do not act
/// on). The entry point of the `inbox_activity` fuzz target.
pub fn parse_activity(body: &[u8]) -> Result<Option<InboxActivity>, Error> {
    InboxActivity::parse(&parse_envelope(body, MAX_JSON_DEPTH)?, body)
}

/// Applies an activity the inbox stored (its checks passed then).
pub async fn apply_queued(body: &[u8], data: &Data) -> Result<(), Error> {
    let envelope: Envelope = serde_json::from_slice(body)?;
    match data.policies.check_url(&envelope.actor).await {
        Err(Error::Forbidden(_)) => {
            // Blocked after it was accepted: dropped.
            tracing::info!(actor = %envelope.actor, "queued activity of a blocked domain dropped");
            return Ok(());
        }
        // The policy could not be read: the worker tries again later.
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    match InboxActivity::parse(&envelope, body)? {
        Some(activity) => activity.receive(data).await,
        None => Ok(()),
    }
}

/// A request signature whose key-independent checks passed.
enum CheckedSignature {
    /// draft-cavage, with its signing string.
    Cavage(cavage::ParsedSignature, String),
    /// RFC 9421, with its signature base.
    Rfc9421(rfc9421::ParsedSignature, String),
}

impl CheckedSignature {
    fn key_id(&self) -> &str {
        match self {
            CheckedSignature::Cavage(sig, _) => &sig.key_id,
            CheckedSignature::Rfc9421(sig, _) => &sig.key_id,
        }
    }

    /// Verifies with `actor`'s key named by the key id: its RSA key, or
    /// (RFC 9421 only) one of its Ed25519 `assertionMethod` keys.
    async fn verify_with(&self, actor: &DbActor, data: &Data) -> Result<(), Error> {
        let key_id = self.key_id();
        let rsa = actor.public_key_id == key_id || actor.ap_id.as_str() == key_id;
        match self {
            CheckedSignature::Cavage(sig, signing_string) if rsa => {
                let key = data.keys.public(&actor.public_key_pem)?;
                Ok(cavage::verify(sig, signing_string, &key)?)
            }
            CheckedSignature::Rfc9421(sig, base) if rsa => {
                let key = data.keys.public(&actor.public_key_pem)?;
                Ok(rfc9421::verify_rsa(sig, base, &key)?)
            }
            CheckedSignature::Rfc9421(sig, base) => {
                let lookup = key_id.to_string();
                let key = data
                    .db
                    .run(move |conn| db::actor_keys::by_key_id(conn, &lookup))
                    .await?
                    .filter(|k| k.actor_id == actor.id)
                    .ok_or_else(|| {
                        Error::Unauthorized(format!("key {key_id} is not a key of {}", actor.ap_id))
                    })?;
                let public = multikey::decode_ed25519_public(&key.public_key_multibase)?;
                Ok(rfc9421::verify_ed25519(sig, base, &public)?)
            }
            CheckedSignature::Cavage(..) => Err(Error::Unauthorized(format!(
                "key {key_id} is not the key of {}",
                actor.ap_id
            ))),
        }
    }
}

/// Checks what needs no key: the RFC 9421 signature when the request has
/// `Signature-Input`, else the draft-cavage one.
fn check_signature(
    request: &HttpRequest,
    body: Option<&[u8]>,
    data: &Data,
) -> Result<CheckedSignature, Error> {
    let headers = request.headers();
    // The signer signed our public URL. A reverse proxy may forward another
    // Host (its upstream's), so the covered host is always our configured
    // domain: that also refuses signatures meant for others.
    let public_host = data.config.instance.domain.clone();
    let lookup = |name: &str| -> Option<String> {
        if name.eq_ignore_ascii_case("host") {
            return Some(public_host.clone());
        }
        request::header_value(headers, name)
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or(request.path(), |p| p.as_str());
    let window = cavage::Window {
        max_age: Duration::from_secs(data.config.federation.signature_max_age_secs),
        max_skew: Duration::from_secs(data.config.federation.signature_max_skew_secs),
        now: SystemTime::now(),
    };
    // `Signature-Input` first: a draft-cavage request (the usual one) has
    // none, and its `Signature` is then read once, below.
    let rfc9421_headers =
        lookup("signature-input").and_then(|input| Some((input, lookup("signature")?)));
    if let Some((input, signature)) = rfc9421_headers {
        let sig = rfc9421::parse(&input, &signature)?;
        let target_uri = format!("{}{path}", data.config.base_url());
        let parts = rfc9421::RequestParts {
            method: request.method().as_str(),
            target_uri: &target_uri,
            authority: &data.config.instance.domain,
            header: &lookup,
            body,
        };
        let base = rfc9421::check_request(&sig, &parts, window)?;
        return Ok(CheckedSignature::Rfc9421(sig, base));
    }
    let header_value = lookup("signature")
        .or_else(|| lookup("authorization").filter(|v| v.starts_with("Signature ")))
        .ok_or(SignatureError::Missing)?;
    let sig = cavage::parse_signature_header(&header_value)?;
    let parts = cavage::RequestParts {
        method: request.method().as_str(),
        path_and_query: path,
        header: &lookup,
        body,
    };
    let signing_string = cavage::check_request(&sig, &parts, window)?;
    Ok(CheckedSignature::Cavage(sig, signing_string))
}

/// Verifies the request's HTTP signature (RFC 9421 or draft-cavage) and
/// returns the signing actor. A key that fails is refetched once (the
/// actor may have rotated it).
pub async fn verify_request_signature(
    request: &HttpRequest,
    body: Option<&[u8]>,
    data: &Data,
) -> Result<Arc<DbActor>, Error> {
    let checked = check_signature(request, body, data)?;
    let key_id = checked.key_id().to_string();
    // Before anything is fetched: the key's host must not be blocked, nor
    // post faster than its share.
    if let Ok(key_url) = Url::parse(&key_id) {
        data.policies.check_url(&key_url).await?;
        if body.is_some() {
            data.rate_limits
                .check(Bucket::InboxByHost, key_url.authority())?;
        }
    }
    // A signer verified lately: no database read.
    if let Some(actor) = data.signers.get(&key_id) {
        if checked.verify_with(&actor, data).await.is_ok() {
            return Ok(actor);
        }
        data.signers.forget(&key_id);
    }
    // Boxed: the fetches' state would otherwise be part of every
    // request's future, also when the signer is known.
    Box::pin(look_up_signer_and_verify(checked, key_id, data)).await
}

/// [`verify_request_signature`] when the signer is not in memory: the
/// actor owning the key from the database or fetched, its key refetched
/// once if it fails (the actor may have rotated it).
async fn look_up_signer_and_verify(
    checked: CheckedSignature,
    key_id: String,
    data: &Data,
) -> Result<Arc<DbActor>, Error> {
    let actor_id = signing_actor_id(&key_id, data).await?;
    let actor = actor_id.dereference(data).await.map_err(|e| {
        Error::Unauthorized(format!("cannot fetch the signing actor {key_id}: {e}"))
    })?;
    if checked.verify_with(&actor, data).await.is_ok() {
        let actor = Arc::new(actor);
        data.signers.put(&key_id, &actor);
        return Ok(actor);
    }
    // The actor may have rotated its key since we stored it.
    let refreshed = actor_id
        .dereference_forced(data)
        .await
        .map_err(|_| SignatureError::Invalid)?;
    checked.verify_with(&refreshed, data).await?;
    let refreshed = Arc::new(refreshed);
    data.signers.put(&key_id, &refreshed);
    Ok(refreshed)
}

/// The actor owning `key_id`: known from the database, or the key id
/// without its fragment (`…#main-key`, Mastodon), or the `owner` of the key
/// document the id names (`…/main-key`, GoToSocial).
async fn signing_actor_id(key_id: &str, data: &Data) -> Result<ObjectId<DbActor>, Error> {
    let lookup = key_id.to_string();
    if let Some(ap_id) = data
        .db
        .run(move |conn| {
            if let Some(row) = db::actors::by_key_id(conn, &lookup)? {
                return Ok(Some(row.ap_id));
            }
            match db::actor_keys::by_key_id(conn, &lookup)? {
                Some(key) => Ok(Some(db::actors::by_id(conn, key.actor_id)?.ap_id)),
                None => Ok(None),
            }
        })
        .await?
    {
        return Ok(Url::parse(&ap_id)?.into());
    }
    let mut url = Url::parse(key_id)
        .map_err(|_| SignatureError::Malformed(format!("keyId {key_id} is not a URL")))?;
    if url.fragment().is_some() {
        url.set_fragment(None);
        return Ok(url.into());
    }
    let doc = activitypub_federation::fetch::fetch_object_http::<_, serde_json::Value>(&url, data)
        .await
        .map_err(|e| Error::Unauthorized(format!("cannot fetch the signing key {key_id}: {e}")))?
        .object;
    let owner = doc["owner"]
        .as_str()
        .or_else(|| doc["publicKey"]["owner"].as_str())
        .ok_or_else(|| Error::Unauthorized(format!("key {key_id} names no owner")))?;
    let owner = Url::parse(owner)?;
    if !same_origin(&owner, &url) {
        return Err(Error::Unauthorized(format!(
            "key {key_id} is owned by another host"
        )));
    }
    Ok(owner.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert!(crate::limits::check_json_depth(br#"{"a":[{"b":1}]}"#, 3).is_ok());
        assert!(crate::limits::check_json_depth(br#"{"a":[{"b":1}]}"#, 2).is_err());
        assert!(crate::limits::check_json_depth(br#"{"a":"[[[[[[\"[[[["}"#, 1).is_ok());
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(crate::limits::check_json_depth(deep.as_bytes(), MAX_JSON_DEPTH).is_err());
        assert!(matches!(
            parse_activity(deep.as_bytes()),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn a_create_takes_its_id_and_actor_from_the_envelope() {
        let body = serde_json::json!({
            "id": "https://a.example/activities/1", "type": "Create",
            "actor": {"id": "https://a.example/actor", "type": "Organization"},
            "object": {"id": "https://a.example/notes/1", "type": "Note",
                "attributedTo": "https://a.example/actor", "content": "<p>x</p>"}});
        let Some(InboxActivity::CreateNote(create)) =
            parse_activity(body.to_string().as_bytes()).unwrap()
        else {
            panic!("not a CreateNote");
        };
        assert_eq!(create.id.as_str(), "https://a.example/activities/1");
        assert_eq!(create.actor.inner().as_str(), "https://a.example/actor");
        assert_eq!(create.object.id.as_str(), "https://a.example/notes/1");
        // A Delete still needs its actor's id.
        let delete = serde_json::json!({
            "id": "https://a.example/activities/2", "type": "Delete",
            "actor": {"id": "https://a.example/actor"}, "object": "https://a.example/notes/1"});
        assert!(parse_activity(delete.to_string().as_bytes()).is_err());
    }

    /// The size of what `f` returns, without calling it.
    fn returned_size<F, A, B, C, R>(_: F) -> usize
    where
        F: Fn(A, B, C) -> R,
    {
        std::mem::size_of::<R>()
    }

    /// actix allocates every request's handler future and copies it as it
    /// goes: the paths that fetch (an unknown signer, a forwarded
    /// activity) and the accepted activity are boxed so that it stays a
    /// few kilobytes. Inline, it was 10 KiB in a debug build.
    #[test]
    fn the_inbox_future_stays_small() {
        let handler = returned_size(post_inbox);
        assert!(handler <= 4096, "post_inbox's future is {handler} bytes");
        let signature =
            returned_size::<_, &HttpRequest, Option<&[u8]>, &Data, _>(verify_request_signature);
        assert!(
            signature <= 2048,
            "verify_request_signature's future is {signature} bytes"
        );
    }
}
