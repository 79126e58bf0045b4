//! Prepared answers to public reads. An actor, an alert, a collection page,
//! a WebFinger answer or an anonymous page (alert, profile, home, archive)
//! is serialized once, with a strong `ETag` of its bytes, and served from
//! memory until a write may have changed it.
//!
//! Invalidation is by generation: every write this process makes (any
//! request other than GET/HEAD/OPTIONS and inbox POSTs that was not
//! [`refused`], and every activity the inbox workers apply) bumps
//! the generation and empties the cache; an answer built while a write ran
//! is not kept (its generation is old).
//! Writes by another process (the CLI, a second `tocsin` on the same
//! PostgreSQL) cannot bump it, so entries also expire after
//! `[server] read_cache_secs`.
//!
//! A miss is shared: while one request builds an answer, the others
//! asking for the same key in the same generation wait for it instead of
//! building it too ([`ReadCache::miss`]), so a spike of readers after a
//! write costs one database read and one rendering, not one each.
//!
//! A GET whose answer is kept is answered before routing
//! ([`answer_before_routing`], a middleware inside the request guard): the
//! same bytes the route's handler would serve from the cache, without
//! matching routes or extracting the handler's arguments.

use crate::{error::Error, state::Data};
use actix_web::{
    http::{
        header::{self, HeaderName, HeaderValue},
        StatusCode,
    },
    web::Bytes,
    HttpRequest, HttpResponse,
};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tokio::sync::watch;

/// `Cache-Control` of public documents: shared caches may keep them a
/// minute.
pub const PUBLIC: &str = "public, max-age=60";
/// `Cache-Control` of documents only a verified requester may read
/// (authorized fetch): never kept by a shared cache, revalidated each time.
pub const PRIVATE: &str = "private, no-cache";
/// `Vary` of documents under authorized fetch: the answer depends on the
/// signature too.
pub const PRIVATE_VARY: &str = "Accept, Signature, Signature-Input, Authorization";

/// An answer ready to send: its bytes and the headers that describe them.
#[derive(Debug)]
pub struct Prepared {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    etag: HeaderValue,
    body: Bytes,
}

impl Prepared {
    /// `body` as `content_type` with open CORS (documents are public
    /// data) and a strong `ETag` of its bytes; `vary` names the request
    /// headers the answer depends on.
    pub fn new(
        status: StatusCode,
        content_type: &str,
        vary: Option<&'static str>,
        body: Bytes,
    ) -> Prepared {
        let mut headers = vec![
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ];
        if let Some(vary) = vary {
            headers.push((header::VARY, HeaderValue::from_static(vary)));
        }
        Prepared {
            status,
            headers,
            etag: etag_of(&body),
            body,
        }
    }

    /// `value` serialized as JSON.
    pub fn json(
        status: StatusCode,
        content_type: &str,
        vary: Option<&'static str>,
        value: &serde_json::Value,
    ) -> Prepared {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Prepared::new(status, content_type, vary, Bytes::from(body))
    }

    /// A handler's answer, when anyone may be given the same bytes: 200
    /// or 410, no cookie set, not marked private. Otherwise the answer
    /// back, untouched.
    pub async fn from_response(response: HttpResponse) -> Result<Prepared, HttpResponse> {
        let private = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("private") || v.contains("no-store"));
        let shareable = matches!(response.status(), StatusCode::OK | StatusCode::GONE)
            && !private
            && !response.headers().contains_key(header::SET_COOKIE);
        if !shareable {
            return Err(response);
        }
        let status = response.status();
        let headers: Vec<_> = response
            .headers()
            .iter()
            .filter(|(name, _)| {
                !matches!(
                    *name,
                    &header::ETAG
                        | &header::CACHE_CONTROL
                        | &header::CONTENT_LENGTH
                        | &header::DATE
                )
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap_or_default();
        Ok(Prepared {
            status,
            headers,
            etag: etag_of(&body),
            body,
        })
    }

    /// The strong validator of the bytes.
    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    /// The answer, with `Cache-Control: public, max-age=60` (authorized
    /// fetch makes it private in the request guard).
    pub fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response
            .insert_header((header::ETAG, self.etag.clone()))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(PUBLIC)))
            .body(self.body.clone())
    }

    fn weight(&self, key: &str) -> usize {
        // The body, the key, and the map slot and headers around them.
        self.body.len() + key.len() + 256
    }
}

/// A strong `ETag`: the first 128 bits of the SHA-256 of the bytes.
pub fn etag_of(body: &[u8]) -> HeaderValue {
    use sha2::{Digest, Sha256};
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(body))[..32]);
    HeaderValue::from_str(&etag).expect("hex is a valid header value")
}

/// Serves `request` from the cache, or awaits `answer`, keeps it when
/// anyone may be given the same bytes, and serves it. Requests with a
/// session cookie (pages that show the reader) skip the cache.
pub async fn serve<F>(request: &HttpRequest, data: &Data, answer: F) -> Result<HttpResponse, Error>
where
    F: std::future::Future<Output = Result<HttpResponse, Error>>,
{
    let Some(key) = key_of(request) else {
        return answer.await;
    };
    if let Some(prepared) = data.reads.get(&key) {
        return Ok(prepared.response());
    }
    let generation = data.reads.generation();
    let mut miss = data.reads.miss(&key, generation);
    if let Some(prepared) = miss.wait().await {
        return Ok(prepared.response());
    }
    match Prepared::from_response(answer.await?).await {
        Ok(prepared) => {
            let prepared = Arc::new(prepared);
            data.reads.put(key, generation, prepared.clone());
            if let Miss::Build(building) = miss {
                building.done(prepared.clone());
            }
            Ok(prepared.response())
        }
        Err(response) => Ok(response),
    }
}

/// The kept answer to `request` if it is a GET that a handler answered
/// through [`serve`] with the same key: what that handler would serve
/// from the cache.
pub fn answer_before_routing(request: &HttpRequest, reads: &ReadCache) -> Option<HttpResponse> {
    if request.method() != actix_web::http::Method::GET {
        return None;
    }
    reads.get(&key_of(request)?).map(|p| p.response())
}

/// The cache key of a request: the variant (JSON, or an anonymous page in
/// its language) and the path with its query. `None` when the answer
/// depends on who asks.
fn key_of(request: &HttpRequest) -> Option<String> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(request.path(), |p| p.as_str());
    if crate::federation::routes::wants_activity_json(request) {
        return Some(format!("json {target}"));
    }
    let lang = super::session::anonymous_lang(request)?;
    Some(format!("html {} {target}", lang.code()))
}

struct Entry {
    generation: u64,
    stored: Instant,
    prepared: Arc<Prepared>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    bytes: usize,
}

/// The answer being built under a key: its generation and where it will
/// be handed on (`None` until it is ready).
struct Flight {
    generation: u64,
    ready: watch::Receiver<Option<Arc<Prepared>>>,
}

/// What a request that found no kept answer does.
pub enum Miss<'a> {
    /// Build the answer and hand it on with [`Building::done`].
    Build(Building<'a>),
    /// Another request is building it: wait with [`Miss::wait`].
    Wait(watch::Receiver<Option<Arc<Prepared>>>),
}

impl Miss<'_> {
    /// For [`Miss::Wait`], the answer another request built; `None` for
    /// [`Miss::Build`], or when that request failed, was cancelled or
    /// built an answer that is not for everyone (then build it).
    pub async fn wait(&mut self) -> Option<Arc<Prepared>> {
        let Miss::Wait(ready) = self else {
            return None;
        };
        ready.wait_for(Option::is_some).await.ok()?.clone()
    }
}

/// The one request building the answer to a key; those waiting for it
/// are woken when it is done or dropped.
pub struct Building<'a> {
    cache: &'a ReadCache,
    key: String,
    generation: u64,
    /// Where waiting requests get the answer; `None` once handed on, or
    /// when nobody can wait for this one (see [`ReadCache::miss`]).
    ready: Option<watch::Sender<Option<Arc<Prepared>>>>,
    /// Whether this is the flight under `key` in the cache's table.
    registered: bool,
}

impl Building<'_> {
    /// Hands `prepared` to the requests waiting for it.
    pub fn done(mut self, prepared: Arc<Prepared>) {
        if let Some(ready) = self.ready.take() {
            ready.send_replace(Some(prepared));
        }
    }
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        let mut flights = self.cache.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights
            .get(&self.key)
            .is_some_and(|f| f.generation == self.generation)
        {
            flights.remove(&self.key);
        }
    }
}

/// Prepared answers by key (the variant and the path with its query),
/// bounded in bytes.
pub struct ReadCache {
    generation: AtomicU64,
    entries: Mutex<Entries>,
    /// Answers being built, by key.
    flights: Mutex<HashMap<String, Flight>>,
    max_bytes: usize,
    ttl: Duration,
}

impl ReadCache {
    /// A cache of at most `max_bytes` (0: nothing is kept) whose entries
    /// live at most `ttl`.
    pub fn new(max_bytes: usize, ttl: Duration) -> ReadCache {
        ReadCache {
            generation: AtomicU64::new(0),
            entries: Mutex::new(Entries::default()),
            flights: Mutex::new(HashMap::new()),
            max_bytes,
            ttl,
        }
    }

    /// The current generation; read it before reading the database for an
    /// answer and pass it to [`ReadCache::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The answer kept under `key`, if it is of this generation and young
    /// enough.
    pub fn get(&self, key: &str) -> Option<Arc<Prepared>> {
        if self.max_bytes == 0 {
            return None;
        }
        let generation = self.generation();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .map
            .get(key)
            .filter(|e| e.generation == generation && e.stored.elapsed() < self.ttl)
            .map(|e| e.prepared.clone())
    }

    /// Keeps `prepared` under `key` unless a write happened since
    /// `generation` was read, or it is larger than a sixteenth of the
    /// cache; older entries make room.
    pub fn put(&self, key: String, generation: u64, prepared: Arc<Prepared>) {
        let weight = prepared.weight(&key);
        if weight > self.max_bytes / 16 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if generation != self.generation() {
            return;
        }
        if let Some(old) = entries.map.remove(&key) {
            entries.bytes -= old.prepared.weight(&key);
        }
        while entries.bytes + weight > self.max_bytes {
            // Expired entries first, then any.
            let victim = entries
                .map
                .iter()
                .find(|(_, e)| e.stored.elapsed() >= self.ttl)
                .or_else(|| entries.map.iter().next())
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            if let Some(old) = entries.map.remove(&victim) {
                entries.bytes -= old.prepared.weight(&victim);
            }
        }
        entries.bytes += weight;
        entries.map.insert(
            key,
            Entry {
                generation,
                stored: Instant::now(),
                prepared,
            },
        );
    }

    /// After [`ReadCache::get`] found nothing under `key`: build the answer
    /// (read from the database at `generation`), or wait for the request
    /// already building it in that generation. A cache that keeps nothing
    /// shares nothing, and a request that read an older generation than
    /// the one being built builds alone.
    pub fn miss(&self, key: &str, generation: u64) -> Miss<'_> {
        let building = |ready: Option<_>| {
            Miss::Build(Building {
                cache: self,
                key: key.to_string(),
                generation,
                registered: ready.is_some(),
                ready,
            })
        };
        if self.max_bytes == 0 {
            return building(None);
        }
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        match flights.get(key) {
            Some(flight) if flight.generation == generation => Miss::Wait(flight.ready.clone()),
            Some(flight) if flight.generation > generation => building(None),
            // None, or one of an older generation whose answer is stale.
            _ => {
                let (sender, ready) = watch::channel(None);
                flights.insert(key.to_string(), Flight { generation, ready });
                building(Some(sender))
            }
        }
    }

    /// Something may have changed: every kept answer is dropped.
    pub fn invalidate(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        if !entries.map.is_empty() {
            *entries = Entries::default();
        }
    }

    /// Bytes held now (bodies, keys and overhead).
    pub fn bytes(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

/// True when `response` refused its request, which then wrote nothing: a
/// 4xx, or the redirect to the login page that answers a form posted
/// without a session. Such answers do not drop the cache, or anyone could
/// empty it with junk POSTs.
pub fn refused(response: &HttpResponse) -> bool {
    response.status().is_client_error()
        || (response.status().is_redirection()
            && response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .is_some_and(|l| l.starts_with(super::session::LOGIN_REDIRECT)))
}

/// True when a request with `method` to `path` may write: everything but
/// reads and inbox POSTs (those only queue; the inbox workers invalidate
/// when they apply).
pub fn may_write(method: &actix_web::http::Method, path: &str) -> bool {
    use actix_web::http::Method;
    !(matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || path == "/inbox"
        || path.ends_with("/inbox"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> Arc<Prepared> {
        Arc::new(Prepared::new(
            StatusCode::OK,
            "application/activity+json",
            Some("Accept"),
            Bytes::from(text.to_string()),
        ))
    }

    #[test]
    fn a_write_drops_answers_and_refuses_those_built_before_it() {
        let cache = ReadCache::new(1 << 20, Duration::from_secs(60));
        let g = cache.generation();
        cache.put("json /actors/a".into(), g, answer("one"));
        assert!(cache.get("json /actors/a").is_some());
        cache.invalidate();
        assert!(cache.get("json /actors/a").is_none());
        assert_eq!(cache.bytes(), 0);
        // Built from a read that started before the write: not kept.
        cache.put("json /actors/a".into(), g, answer("one"));
        assert!(cache.get("json /actors/a").is_none());
        cache.put("json /actors/a".into(), cache.generation(), answer("two"));
        assert_eq!(cache.get("json /actors/a").unwrap().body, "two");
    }

    #[tokio::test]
    async fn a_miss_is_built_once_while_the_others_wait_for_it() {
        let cache = ReadCache::new(1 << 20, Duration::from_secs(60));
        let g = cache.generation();
        let Miss::Build(building) = cache.miss("html en /", g) else {
            panic!("the first miss builds");
        };
        let mut waiting: Vec<_> = (0..3).map(|_| cache.miss("html en /", g)).collect();
        assert!(waiting.iter().all(|m| matches!(m, Miss::Wait(_))));
        assert!(matches!(cache.miss("html en /archive", g), Miss::Build(_)));
        let (answers, ()) = tokio::join!(
            async {
                let mut answers = Vec::new();
                for miss in &mut waiting {
                    answers.push(miss.wait().await.map(|p| p.body.clone()));
                }
                answers
            },
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                building.done(answer("built once"));
            }
        );
        assert_eq!(answers, vec![Some(Bytes::from("built once")); 3]);
        // Done: the next miss builds again.
        assert!(matches!(cache.miss("html en /", g), Miss::Build(_)));
    }

    #[tokio::test]
    async fn a_failed_or_stale_build_is_not_waited_for() {
        let cache = ReadCache::new(1 << 20, Duration::from_secs(60));
        let g = cache.generation();
        let building = cache.miss("json /actors/a", g);
        let mut waiting = cache.miss("json /actors/a", g);
        drop(building);
        assert!(waiting.wait().await.is_none(), "the builder gave up");

        let _building = cache.miss("json /actors/a", g);
        cache.invalidate();
        assert!(
            matches!(
                cache.miss("json /actors/a", cache.generation()),
                Miss::Build(_)
            ),
            "an answer read before a write is not waited for"
        );
        let newer = cache.generation();
        let _newer = cache.miss("json /actors/a", newer);
        assert!(
            matches!(cache.miss("json /actors/a", g), Miss::Build(_)),
            "a request that read before the write builds alone"
        );
        assert!(
            matches!(cache.miss("json /actors/a", newer), Miss::Wait(_)),
            "and leaves the newer build in place"
        );
        let off = ReadCache::new(0, Duration::from_secs(60));
        let _one = off.miss("k", 0);
        assert!(matches!(off.miss("k", 0), Miss::Build(_)));
    }

    #[test]
    fn only_a_get_with_a_kept_answer_is_answered_before_routing() {
        use actix_web::{body::MessageBody, test::TestRequest};
        let cache = ReadCache::new(1 << 20, Duration::from_secs(60));
        cache.put("json /actors/a".into(), cache.generation(), answer("kept"));
        let json = |r: TestRequest| {
            r.uri("/actors/a")
                .insert_header(("Accept", "application/activity+json"))
                .to_http_request()
        };
        let hit = answer_before_routing(&json(TestRequest::get()), &cache).expect("kept");
        assert_eq!(hit.into_body().try_into_bytes().unwrap(), "kept");
        assert!(answer_before_routing(&json(TestRequest::post()), &cache).is_none());
        assert!(answer_before_routing(&json(TestRequest::delete()), &cache).is_none());
        let other = TestRequest::get()
            .uri("/actors/b")
            .insert_header(("Accept", "application/activity+json"))
            .to_http_request();
        assert!(answer_before_routing(&other, &cache).is_none());
        cache.invalidate();
        assert!(answer_before_routing(&json(TestRequest::get()), &cache).is_none());
    }

    #[test]
    fn the_cache_stays_within_its_bytes_and_entries_expire() {
        let cache = ReadCache::new(16 * 1024, Duration::from_secs(60));
        let body = "x".repeat(700);
        for n in 0..100 {
            cache.put(
                format!("json /alerts/{n}"),
                cache.generation(),
                answer(&body),
            );
            assert!(cache.bytes() <= 16 * 1024);
        }
        assert!(cache.get("json /alerts/99").is_some());
        // Larger than a sixteenth: never kept.
        cache.put("big".into(), cache.generation(), answer(&"y".repeat(2000)));
        assert!(cache.get("big").is_none());

        let short = ReadCache::new(1 << 20, Duration::from_millis(0));
        short.put("k".into(), short.generation(), answer("z"));
        assert!(short.get("k").is_none());
        let off = ReadCache::new(0, Duration::from_secs(60));
        off.put("k".into(), off.generation(), answer("z"));
        assert!(off.get("k").is_none());
    }

    #[test]
    fn refused_requests_are_told_apart() {
        let with = |status: StatusCode, location: Option<&str>| {
            let mut response = HttpResponse::build(status);
            if let Some(location) = location {
                response.insert_header((header::LOCATION, location));
            }
            refused(&response.finish())
        };
        assert!(with(StatusCode::UNAUTHORIZED, None));
        assert!(with(StatusCode::UNPROCESSABLE_ENTITY, None));
        assert!(with(StatusCode::NOT_FOUND, None));
        assert!(with(
            StatusCode::SEE_OTHER,
            Some("/login?next=%2Fauthor%2Fnew")
        ));
        assert!(!with(StatusCode::SEE_OTHER, Some("/author")));
        assert!(!with(StatusCode::OK, None));
        assert!(!with(StatusCode::CREATED, None));
        assert!(!with(StatusCode::INTERNAL_SERVER_ERROR, None));
    }

    #[test]
    fn etags_follow_the_bytes() {
        assert_eq!(answer("a").etag(), answer("a").etag());
        assert_ne!(answer("a").etag(), answer("b").etag());
        assert!(answer("a").etag().to_str().unwrap().starts_with('"'));
        assert!(may_write(&actix_web::http::Method::POST, "/api/v1/alerts"));
        assert!(!may_write(&actix_web::http::Method::POST, "/inbox"));
        assert!(!may_write(
            &actix_web::http::Method::POST,
            "/actors/alerts/inbox"
        ));
        assert!(!may_write(&actix_web::http::Method::GET, "/actors/alerts"));
    }
}
