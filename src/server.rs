//! Starting and stopping an instance: database, local actors, the delivery
//! worker, the Digest scheduler, the hourly upkeep and the HTTP server.

use crate::{
    config::Config,
    db::Db,
    delivery,
    error::Error,
    federation::{self, inbox_journal::Journal, routes},
    signatures::keys::KeyCache,
    state::{AppState, State},
    web,
};
use activitypub_federation::config::FederationMiddleware;
use actix_web::{dev::ServerHandle, web as aw, App, HttpServer};
use std::{net::TcpListener, sync::Arc};
use tokio::{sync::watch, task::JoinHandle};

/// Opens the database, applies migrations and creates the local actors.
/// The inbox's journal is left to the server ([`start`]): a command run
/// beside it must not take it.
pub async fn open_state(config: Config) -> Result<AppState, Error> {
    open(config, FirstStart::AllActors, false).await
}

/// What a start makes of the local actors that do not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstStart {
    /// All of them, before anything is served.
    AllActors,
    /// The organisation and instance actors before, the publication actors
    /// after the server listens: each actor's RSA key takes 50 to 250
    /// milliseconds to make (a random prime search), and a first start
    /// made five before its first answer.
    PublicationsLater,
}

/// [`open_state`], making the local actors `first` says, and opening the
/// inbox's journal when `journal` (a server).
async fn open(config: Config, first: FirstStart, journal: bool) -> Result<AppState, Error> {
    let config = Arc::new(config);
    // The HTTP client reads every system root certificate (tens of
    // milliseconds): it is built beside the database's opening, the
    // migrations and the first start's keys, not after them.
    let client_config = config.clone();
    let client = tokio::task::spawn_blocking(move || federation::http_client(&client_config));
    let early = federation::early_keys(&config);
    let db_config = config.clone();
    let db = tokio::task::spawn_blocking(move || {
        Db::connect(
            &db_config.database.url,
            db_config.database.pool_size,
            db_config.database.busy_timeout_ms,
        )
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    let actor_config = config.clone();
    db.run(move |conn| {
        let actors = match first {
            FirstStart::AllActors => federation::ensure_local_actors(conn, &actor_config, early),
            FirstStart::PublicationsLater => {
                federation::ensure_own_actors(conn, &actor_config, early)
            }
        };
        actors
            .and_then(|()| crate::curation::sync_feeds(conn, &actor_config))
            .map_err(into_db_error)
    })
    .await?;
    let reads = Arc::new(web::read_cache::ReadCache::new(
        config.server.read_cache_bytes,
        std::time::Duration::from_secs(config.server.read_cache_secs),
    ));
    let journal = match journal {
        true => open_journal(&config, &db).await?,
        false => None,
    };
    Ok(AppState::new(State {
        client: client.await.map_err(|e| Error::Internal(e.to_string()))??,
        policies: federation::policy::DomainPolicies::new(
            db.clone(),
            config.federation.allowlist_only,
            &config.instance.domain,
        ),
        rate_limits: Arc::new(web::rate_limit::RateLimits::new(&config.limits)),
        signers: Default::default(),
        inbox: federation::inbox_queue::Enqueuer::new(
            db.clone(),
            config.inbox.enqueue_batch_ms,
            reads.clone(),
            journal,
        ),
        reads,
        config,
        db,
        keys: KeyCache::default(),
        delivery_wakeup: Default::default(),
        delivery_metrics: Default::default(),
    }))
}

/// Opens the inbox's journal (`[inbox] journal_dir`) and queues what a
/// stopped process left in it, before anything is served. `None` when it
/// is off, when activities are not handed to the writer
/// (`enqueue_batch_ms = 0`), or when another process holds the directory.
async fn open_journal(config: &Config, db: &Db) -> Result<Option<Arc<Journal>>, Error> {
    let dir = &config.inbox.journal_dir;
    if dir.is_empty() || config.inbox.enqueue_batch_ms == 0 {
        return Ok(None);
    }
    let path = std::path::PathBuf::from(dir);
    let opened = tokio::task::spawn_blocking(move || Journal::open(&path))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(e.to_string()))?;
    let Some((journal, recovered)) = opened else {
        tracing::warn!(
            dir,
            "another process holds the inbox journal: this one answers each inbox POST after its commit"
        );
        return Ok(None);
    };
    if !recovered.is_empty() {
        let records = recovered.len();
        let queued = federation::inbox_queue::queue_recovered(db, recovered).await?;
        tracing::info!(
            records,
            queued,
            "queued what a stopped process left in the inbox journal"
        );
    }
    journal
        .recovered_queued()
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Some(Arc::new(journal)))
}

/// An error of start-up's database work, as the database layer's.
fn into_db_error(e: Error) -> crate::db::DbError {
    match e {
        Error::Db(db) => db,
        other => crate::db::DbError::Task(other.to_string()),
    }
}

/// Answers a GET whose `If-None-Match` names the response's `ETag` with
/// 304 and no body, keeping the headers a 304 must repeat (RFC 9110
/// 15.4.5: `ETag`, `Vary`, `Cache-Control`, `Expires`, `Content-Location`).
pub fn not_modified(
    request_etags: Option<String>,
    response: actix_web::dev::ServiceResponse,
) -> actix_web::dev::ServiceResponse {
    use actix_web::http::header::{CACHE_CONTROL, CONTENT_LOCATION, ETAG, EXPIRES, VARY};
    let Some(etag) = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return response;
    };
    let matches = request_etags.is_some_and(|wanted| {
        wanted
            .split(',')
            .any(|w| w.trim() == etag || w.trim() == "*")
    });
    if !matches || response.status() != actix_web::http::StatusCode::OK {
        return response;
    }
    let (request, full) = response.into_parts();
    let mut reply = actix_web::HttpResponse::NotModified();
    for name in [ETAG, VARY, CACHE_CONTROL, EXPIRES, CONTENT_LOCATION] {
        for value in full.headers().get_all(&name) {
            reply.append_header((name.clone(), value.clone()));
        }
    }
    actix_web::dev::ServiceResponse::new(request, reply.finish())
}

/// How long a stopping server waits for the inbox's writer to commit what
/// was answered from the journal (what is left is queued by the next start).
const JOURNAL_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A running instance.
pub struct RunningServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its state, for tests and the CLI.
    pub state: AppState,
    /// activitypub_federation's request data, for tests.
    pub data: crate::state::Data,
    http: ServerHandle,
    http_task: JoinHandle<std::io::Result<()>>,
    shutdown: watch::Sender<bool>,
    worker: JoinHandle<()>,
    inbox_workers: JoinHandle<()>,
    scheduler: JoinHandle<()>,
    upkeep: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting requests, lets the inbox's writer commit what it
    /// was handed, lets the delivery worker finish or hand back what is in
    /// flight, and waits for them.
    pub async fn stop(self) {
        self.http.stop(true).await;
        self.state.inbox.settle(JOURNAL_GRACE).await;
        let _ = self.shutdown.send(true);
        let _ = self.worker.await;
        let _ = self.inbox_workers.await;
        let _ = self.scheduler.await;
        let _ = self.upkeep.await;
        let _ = self.http_task.await;
    }

    /// Waits until the HTTP server ends (on SIGINT/SIGTERM when signals are
    /// handled), then shuts the worker down.
    pub async fn wait(self) -> Result<(), Error> {
        let result = self.http_task.await;
        self.state.inbox.settle(JOURNAL_GRACE).await;
        let _ = self.shutdown.send(true);
        let _ = self.worker.await;
        let _ = self.inbox_workers.await;
        let _ = self.scheduler.await;
        let _ = self.upkeep.await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Internal(format!("HTTP server: {e}"))),
            Err(e) => Err(Error::Internal(format!("HTTP server task: {e}"))),
        }
    }
}

/// Starts an instance on `listener`, every local actor made before it
/// listens. `handle_signals` is false for instances inside tests.
pub async fn start(
    config: Config,
    listener: TcpListener,
    handle_signals: bool,
) -> Result<RunningServer, Error> {
    launch(config, listener, handle_signals, FirstStart::AllActors).await
}

/// Starts `tocsin serve` on `listener`: signals handled, and on a first
/// start the publication actors made once it listens (until then, theirs
/// are the only URLs that answer 404), then the memory that start-up left
/// free handed back ([`release_free_memory`]).
pub async fn start_serving(config: Config, listener: TcpListener) -> Result<RunningServer, Error> {
    let running = launch(config, listener, true, FirstStart::PublicationsLater).await?;
    release_free_memory();
    let (db, config) = (running.state.db.clone(), running.state.config.clone());
    tokio::spawn(async move {
        match federation::ensure_publication_actors(&db, config).await {
            Ok(()) => release_free_memory(),
            Err(e) => tracing::error!(
                error = %e,
                "cannot make the publication actors; the next start tries again"
            ),
        }
    });
    Ok(running)
}

/// The HTTP worker threads for `[server] workers` (`configured`): 0 means
/// one per core.
pub fn http_workers(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
}

/// [`start`], making the local actors `first` says before it listens.
async fn launch(
    config: Config,
    listener: TcpListener,
    handle_signals: bool,
    first: FirstStart,
) -> Result<RunningServer, Error> {
    if config.insecure_federation() {
        tracing::warn!(
            allow_http = config.federation.allow_http,
            allow_private_addresses = config.federation.allow_private_addresses,
            "INSECURE: federation test switches are on; never run a public instance like this"
        );
    }
    let workers = http_workers(config.server.workers);
    let max_body = config.server.max_body_bytes;
    let max_upload = config.alerts.max_upload_bytes;
    let state = open(config, first, true).await?;
    let federation = federation::federation_config(state.clone()).await?;
    let data = federation.to_request_data();
    let guard = aw::Data::new(web::request_guard::Guard::new(federation.clone()));
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("listener: {e}")))?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let worker = tokio::spawn(delivery::worker::run(state.clone(), shutdown_rx.clone()));
    let scheduler = tokio::spawn(crate::publications::schedule::run(
        state.clone(),
        shutdown_rx.clone(),
        Arc::new(crate::publications::schedule::SystemClock),
    ));
    let upkeep = tokio::spawn(crate::ops::maintenance::run(
        state.clone(),
        shutdown_rx.clone(),
    ));
    let inbox_workers = tokio::spawn(federation::inbox_queue::run(data.clone(), shutdown_rx));

    let reads = state.reads.clone();
    // actix's Logger formats every request line whether or not its lines
    // are written: it runs only when the access log is on (`TOCSIN_LOG`
    // with `tocsin::http=info`; off by default).
    let access_log = tracing::enabled!(target: "tocsin::http", tracing::Level::INFO);
    let mut server = HttpServer::new(move || {
        let reads = reads.clone();
        let kept = reads.clone();
        App::new()
            .wrap(FederationMiddleware::new(federation.clone()))
            // Inside the guard (rate limits, authorized fetch), before the
            // routes: a kept answer needs no route matched.
            .wrap_fn(move |request, service| {
                use actix_web::dev::Service;
                use futures::future::{ready, Either};
                match web::read_cache::answer_before_routing(request.request(), &kept) {
                    Some(response) => Either::Left(ready(Ok(request.into_response(response)))),
                    None => Either::Right(service.call(request)),
                }
            })
            .wrap(actix_web::middleware::from_fn(web::request_guard::guard))
            // Outside the guard, so that authorized fetch has checked the
            // request before a 304 says anything about the document.
            .wrap_fn(move |request, service| {
                use actix_web::dev::Service;
                let wanted = (request.method() == actix_web::http::Method::GET)
                    .then(|| request.headers().get("if-none-match"))
                    .flatten()
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let writes = web::read_cache::may_write(request.method(), request.path());
                let reads = reads.clone();
                let call = service.call(request);
                async move {
                    let response = call.await;
                    let refused = response
                        .as_ref()
                        .is_ok_and(|r| web::read_cache::refused(r.response()));
                    if writes && !refused {
                        // After the handler's commit, before the client
                        // hears of it: its next read sees the change.
                        reads.invalidate();
                    }
                    Ok(not_modified(wanted, response?.map_into_boxed_body()))
                }
            })
            .wrap(actix_web::middleware::Condition::new(
                access_log,
                actix_web::middleware::Logger::new("%s %r %Dms").log_target("tocsin::http"),
            ))
            .app_data(guard.clone())
            .app_data(aw::PayloadConfig::new(max_body))
            .configure(routes::configure)
            .configure(|cfg| web::media::configure(cfg, max_upload))
            // More specific /api/v1/… scopes before the general one: actix
            // hands a request to the first scope whose prefix matches.
            .configure(web::admin_api::configure)
            .configure(web::review_api::configure)
            .configure(web::members_api::configure)
            .configure(web::campaigns_api::configure)
            .configure(web::mail_api::configure)
            .configure(web::subscribe_pages::configure)
            .configure(web::publications_api::configure)
            .configure(web::publication_pages::configure)
            .configure(web::api::configure)
            .configure(web::feeds::configure)
            .configure(delivery::metrics::configure)
            .configure(web::account_pages::configure)
            .configure(|cfg| web::author_pages::configure(cfg, max_upload))
            // Before the /editor scope, which answers 404 for what it lacks.
            .configure(web::feed_pages::configure)
            .configure(web::publication_editor_pages::configure)
            .configure(web::editor_pages::configure)
            .configure(web::admin_pages::configure)
            .configure(web::remote_follow::configure)
            .configure(web::pages::configure)
    })
    .workers(workers)
    .listen(listener)
    .map_err(|e| Error::Internal(format!("listen: {e}")))?;
    if !handle_signals {
        server = server.disable_signals();
    }
    let mut server = Box::pin(server.run());
    let http = server.handle();
    // The first poll starts the workers and returns once each has built its
    // App (actix-server waits for them): when `start` returns, start-up is
    // over and `release_free_memory` can hand back what it left free.
    let http_task = match futures::poll!(server.as_mut()) {
        std::task::Poll::Ready(result) => tokio::spawn(async move { result }),
        std::task::Poll::Pending => tokio::spawn(server),
    };
    tracing::info!(%addr, base = %state.config.base_url(), "tocsin is listening");
    Ok(RunningServer {
        addr,
        state,
        data,
        http,
        http_task,
        shutdown,
        worker,
        inbox_workers,
        scheduler,
        upkeep,
    })
}

/// Hands the memory that malloc keeps free back to the kernel (glibc's
/// `malloc_trim(0)`: free pages anywhere in each arena, not only at its
/// top). `tocsin serve` calls it once start-up is over: migrations, key
/// generation, configuration and the workers' routers leave freed chunks
/// that glibc would otherwise keep resident for good (docs/performance.md,
/// footprint). A no-op on other C libraries. With the `jemalloc` feature
/// it trims only what C code (SQLite, aws-lc) allocated; jemalloc returns
/// its own free pages over time.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only returns unused pages of
    // the allocator's own arenas; it locks each arena while it works.
    unsafe {
        libc::malloc_trim(0);
    }
}
