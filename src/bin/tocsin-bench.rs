//! Throughput of the delivery queue, measured end to end:
//! `tocsin-bench fanout --inboxes 10000` publishes one activity to N
//! followers on N distinct inboxes of a loopback sink (in this process,
//! spread over several 127.0.0.x hosts) that checks every signature, and
//! prints deliveries per second, time to the last delivery, peak RSS, and
//! the machine's raw RSA-2048 signing rate measured in the same run.
//! `tocsin-bench mail --subscribers 18000` renders and sends a published
//! Digest issue to N personalised recipients through the real send path
//! (database claims, templates, lettre) into an SMTP sink in this process
//! on 127.0.0.1, and prints messages per second, total time and peak RSS.
//! `tocsin-bench inbox` measures the inbox's throughput, and
//! `tocsin-bench load` is the load test of docs/fuzzing-and-load.md:
//! 1,000 signed inbox POSTs at once with API readers alongside, failing
//! unless nothing is lost and nothing answers 5xx.
//! `tocsin-bench read` hammers the actor and alerts of the real `tocsin
//! serve` binary and, in the same run, a bare actix-web handler;
//! `tocsin-bench footprint` measures start-up time and idle memory.
//! See docs/performance.md.

#[path = "bench/read.rs"]
mod read;
#[path = "bench/threads.rs"]
mod threads;

use clap::{Parser, Subcommand};
use std::{
    net::TcpListener,
    time::{Duration, Instant},
};
use tocsin::{
    config::Config,
    db::deliveries,
    delivery::{
        enqueue_for_followers,
        sink::{seed_followers, Sink},
    },
    server,
    signatures::keys::{
        generate_rsa_keypair, parse_private_pem, parse_public_pem, rsa_sign, rsa_verify,
    },
};

/// Benchmarks of Tocsin's delivery.
#[derive(Debug, Parser)]
#[command(name = "tocsin-bench")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// One activity to N followers, each on its own inbox.
    Fanout {
        /// Number of followers (and inboxes).
        #[arg(long, default_value_t = 10_000)]
        inboxes: usize,
        /// Loopback hosts the inboxes are spread over (127.0.0.1 …).
        #[arg(long, default_value_t = 16)]
        hosts: usize,
        /// `delivery.concurrency` of the sender.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Database URL; a temporary SQLite file when absent.
        #[arg(long)]
        database: Option<String>,
        /// Milliseconds the sink waits before answering each POST.
        #[arg(long, default_value_t = 0)]
        sink_delay_ms: u64,
        /// Seconds the raw signing rate is measured for, before and after.
        #[arg(long, default_value_t = 2)]
        sign_secs: u64,
    },
    /// N known remote actors post signed Creates concurrently to the shared
    /// inbox; activities accepted and applied per second.
    Inbox {
        /// Distinct remote actors (each with its own RSA-2048 key).
        #[arg(long, default_value_t = 50)]
        actors: usize,
        /// Activities posted in all.
        #[arg(long, default_value_t = 20_000)]
        activities: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// `[inbox] workers`.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// `[server] workers`: HTTP worker threads (0: the server's default).
        #[arg(long, default_value_t = 0)]
        http_workers: usize,
        /// `[inbox] enqueue_batch_ms` (0: one transaction per activity).
        #[arg(long, default_value_t = 2)]
        batch_ms: u64,
        /// Database URL; a temporary SQLite file when absent.
        #[arg(long)]
        database_url: Option<String>,
        /// Seconds the raw verification rate is measured for, before and after.
        #[arg(long, default_value_t = 2)]
        verify_secs: u64,
        /// Domains blocked by the federation policy (none of them the
        /// posting actors'), as an imported blocklist would make.
        #[arg(long, default_value_t = 0)]
        blocked_domains: usize,
    },
    /// A published issue sent by e-mail to N subscribers, through a
    /// loopback SMTP sink in this process.
    Mail {
        /// Confirmed subscribers; every third chose a single region.
        #[arg(long, default_value_t = 18_000)]
        subscribers: usize,
        /// Items of the issue, spread over the taxonomy's regions.
        #[arg(long, default_value_t = 40)]
        items: usize,
        /// `[mail] connections`.
        #[arg(long, default_value_t = 4)]
        connections: u32,
        /// `[mail] batch_size`.
        #[arg(long, default_value_t = 500)]
        batch_size: i64,
        /// Database URL; a temporary SQLite file when absent.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// The real `tocsin serve` (a child process) answering actor and alert
    /// GETs over keep-alive connections, against a bare actix-web handler
    /// answering JSON of the same size, with the same client.
    Read {
        /// Alerts seeded; the GETs go to the actor and these in turn.
        #[arg(long, default_value_t = 100)]
        alerts: usize,
        /// Keep-alive connections of the client.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds each of the three measurements lasts.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Database URL (an empty database); a temporary SQLite file when absent.
        #[arg(long)]
        database_url: Option<String>,
        /// `[server] workers` of both servers (0: one per core).
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// GET the public HTML pages as a browser does (the home page, the
        /// actor's profile and alert pages, a third each) instead of the
        /// ActivityPub JSON.
        #[arg(long)]
        pages: bool,
        /// Alert edits a second through the API while Tocsin is measured;
        /// each one drops the read cache.
        #[arg(long, default_value_t = 0)]
        edits_per_sec: u32,
    },
    /// `tocsin serve` on a fresh data directory: time to its first answer
    /// and resident memory while idle.
    Footprint {
        /// Database URL (an empty database); a temporary SQLite file when absent.
        #[arg(long)]
        database_url: Option<String>,
        /// `[server] workers` (0: one per core).
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// First starts to time in all, each in a fresh directory: the
        /// first start waits for random prime searches, so one run says
        /// little (SQLite only).
        #[arg(long, default_value_t = 1)]
        starts: usize,
    },
    /// The bare handler `read` compares with (started by `read`).
    #[command(hide = true)]
    BareServer {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 0)]
        workers: usize,
        #[arg(long)]
        bytes: usize,
    },
    /// Load test: N signed inbox POSTs all at once from known actors while
    /// readers hammer the API and the public pages; fails unless every
    /// accepted activity is stored and no answer is a 5xx.
    Load {
        /// Signed POSTs in all.
        #[arg(long, default_value_t = 1_000)]
        posts: usize,
        /// POSTs in flight at once (all of them by default).
        #[arg(long, default_value_t = 1_000)]
        concurrency: usize,
        /// Distinct remote actors signing them.
        #[arg(long, default_value_t = 50)]
        actors: usize,
        /// Concurrent readers of the API and pages during the POSTs.
        #[arg(long, default_value_t = 32)]
        readers: usize,
        /// `[inbox] workers`.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Database URL; a temporary SQLite file when absent.
        #[arg(long)]
        database_url: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOCSIN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match cli.command {
        Bench::Fanout {
            inboxes,
            hosts,
            concurrency,
            database,
            sink_delay_ms,
            sign_secs,
        } => {
            // Before and after the fan-out, so a neighbour's load on a shared
            // machine weighs on both sides of the ratio alike.
            let before = raw_signing_rate(Duration::from_secs(sign_secs))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let fanout = runtime.block_on(fanout(
                inboxes,
                hosts.max(1),
                concurrency,
                database,
                Duration::from_millis(sink_delay_ms),
            ))?;
            let after = raw_signing_rate(Duration::from_secs(sign_secs))?;
            let signing = (before + after) / 2.0;
            let per_sec = inboxes as f64 / fanout.to_last.as_secs_f64();
            println!(
                "deliveries per second    {per_sec:.0}\n\
                 time to last delivery    {:.2} s ({inboxes} inboxes on {hosts} hosts)\n\
                 time until all recorded  {:.2} s\n\
                 raw POSTs at the sink    {} (bad signatures: {})\n\
                 peak RSS (VmHWM)         {} MB (sender and sink in one process)\n\
                 raw RSA-2048 signing     {signing:.0} signatures/s on {} cores (aws-lc-rs; {before:.0} before, {after:.0} after)\n\
                 ratio                    {:.2} of the raw signing rate",
                fanout.to_last.as_secs_f64(),
                fanout.to_recorded.as_secs_f64(),
                fanout.posts,
                fanout.bad_signatures,
                peak_rss_kb().map_or("?".into(), |kb| (kb / 1024).to_string()),
                cores(),
                per_sec / signing,
            );
        }
        Bench::Inbox {
            actors,
            activities,
            concurrency,
            workers,
            http_workers,
            batch_ms,
            database_url,
            verify_secs,
            blocked_domains,
        } => {
            let before = raw_verify_rate(Duration::from_secs(verify_secs))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .thread_name(threads::BENCH_RUNTIME_THREAD)
                .enable_all()
                .build()?;
            let run = runtime.block_on(inbox(InboxRun {
                actors: actors.max(1),
                activities,
                concurrency: concurrency.max(1),
                workers: workers.max(1),
                http_workers,
                batch_ms,
                database_url,
                blocked_domains,
            }))?;
            let after = raw_verify_rate(Duration::from_secs(verify_secs))?;
            let verify = (before + after) / 2.0;
            let per_sec = activities as f64 / run.to_processed.as_secs_f64();
            println!(
                "activities per second    {per_sec:.0} accepted and applied ({activities} Creates from {actors} actors; {blocked_domains} domains blocked)\n\
                 accepted (202) per second {:.0}\n\
                 time to last 202         {:.2} s\n\
                 time to queue empty      {:.2} s\n\
                 CPU per activity         {:.0} µs ({:.2} s of CPU in {:.2} s; server and posting client, all threads)\n\
                 CPU by thread            {}\n\
                 peak RSS (VmHWM)         {} (server and posting client in one process; at the start, the client's signed requests and the idle server)\n\
                 allocator                {}\n\
                 raw RSA-2048 verifying   {verify:.0} verifications/s on {} cores (aws-lc-rs; {before:.0} before, {after:.0} after)\n\
                 ratio                    {:.2} of the raw verification rate\n\
                 HTTP workers             {}",
                activities as f64 / run.to_accepted.as_secs_f64(),
                run.to_accepted.as_secs_f64(),
                run.to_processed.as_secs_f64(),
                run.cpu.as_secs_f64() * 1e6 / activities as f64,
                run.cpu.as_secs_f64(),
                run.to_processed.as_secs_f64(),
                threads::describe(&run.threads, activities, run.to_processed)
                    .unwrap_or_else(|| "? (no /proc/self/task/*/schedstat)".into()),
                run.memory.describe(),
                tocsin::ALLOCATOR,
                cores(),
                per_sec / verify,
                server::http_workers(http_workers),
            );
        }
        Bench::Read {
            alerts,
            connections,
            secs,
            database_url,
            workers,
            pages,
            edits_per_sec,
        } => {
            tokio::runtime::Runtime::new()?.block_on(read::read(read::ReadArgs {
                alerts,
                connections: connections.max(1),
                secs: secs.max(1),
                database_url,
                workers,
                pages,
                edits_per_sec,
            }))?;
        }
        Bench::Footprint {
            database_url,
            workers,
            starts,
        } => tokio::runtime::Runtime::new()?.block_on(read::footprint(
            database_url,
            workers,
            starts,
        ))?,
        Bench::BareServer {
            port,
            workers,
            bytes,
        } => read::bare_server(port, workers, bytes)?,
        Bench::Mail {
            subscribers,
            items,
            connections,
            batch_size,
            database_url,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let run = runtime.block_on(mail(
                subscribers,
                items,
                connections,
                batch_size,
                database_url,
            ))?;
            println!(
                "messages per second      {:.0} ({subscribers} subscribers, {items} items, {connections} SMTP connections)\n\
                 total time               {:.2} s (claim, render, SMTP hand-over, mark sent)\n\
                 messages at the sink     {} ({:.1} MB, {:.1} kB average)\n\
                 peak RSS (VmHWM)         {} MB (sender and sink in one process)",
                run.sent as f64 / run.elapsed.as_secs_f64(),
                run.elapsed.as_secs_f64(),
                run.received,
                run.bytes as f64 / 1e6,
                run.bytes as f64 / 1e3 / run.received.max(1) as f64,
                peak_rss_kb().map_or("?".into(), |kb| (kb / 1024).to_string()),
            );
        }
        Bench::Load {
            posts,
            concurrency,
            actors,
            readers,
            workers,
            database_url,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let r = runtime.block_on(load(
                InboxRun {
                    actors: actors.max(1),
                    activities: posts,
                    concurrency: concurrency.max(1),
                    workers: workers.max(1),
                    http_workers: 0,
                    batch_ms: 2,
                    database_url,
                    blocked_domains: 0,
                },
                readers,
            ))?;
            let lost = r.accepted as i64 - r.stored;
            println!(
                "signed inbox POSTs       {} ({concurrency} in flight, {actors} actors): {} accepted (202), other answers {:?}\n\
                 accepted and stored      {} of {} accepted (lost: {lost})\n\
                 API and page reads       {} by {readers} readers during the POSTs ({:.0}/s), {} without an answer\n\
                 5xx answers              {} (inbox {}, reads {})\n\
                 time to last 202         {:.2} s\n\
                 time to all stored       {:.2} s\n\
                 peak RSS (VmHWM)         {} (server, posting client and readers in one process; at the start, the client's signed requests and the idle server)",
                r.posted,
                r.accepted,
                r.inbox_other,
                r.stored,
                r.accepted,
                r.reads,
                r.reads as f64 / r.to_stored.as_secs_f64(),
                r.reads_failed,
                r.inbox_5xx as u64 + r.reads_5xx,
                r.inbox_5xx,
                r.reads_5xx,
                r.to_accepted.as_secs_f64(),
                r.to_stored.as_secs_f64(),
                r.memory.describe(),
            );
            if lost != 0 || r.inbox_5xx > 0 || r.reads_5xx > 0 || r.accepted != posts {
                anyhow::bail!("load test failed: activities lost, refused, or 5xx answers");
            }
        }
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second with every core
/// signing, on a message the size of a delivery's signing string.
fn raw_signing_rate(duration: Duration) -> anyhow::Result<f64> {
    let pem = generate_rsa_keypair()?.private_pem;
    let key = std::sync::Arc::new(parse_private_pem(&pem)?);
    let message = vec![b'x'; 300];
    let start = Instant::now();
    let threads: Vec<_> = (0..cores())
        .map(|_| {
            let (key, message) = (key.clone(), message.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed() < duration {
                    if rsa_sign(&key, &message).is_ok() {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 verifications per second with every core
/// verifying, on a message the size of an inbox request's signing string.
fn raw_verify_rate(duration: Duration) -> anyhow::Result<f64> {
    let pair = generate_rsa_keypair()?;
    let private = parse_private_pem(&pair.private_pem)?;
    let public = std::sync::Arc::new(parse_public_pem(&pair.public_pem)?);
    let message = vec![b'x'; 300];
    let signature = std::sync::Arc::new(rsa_sign(&private, &message)?);
    let start = Instant::now();
    let threads: Vec<_> = (0..cores())
        .map(|_| {
            let (public, message, signature) = (public.clone(), message.clone(), signature.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed() < duration {
                    if rsa_verify(&public, &message, &signature) {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

struct InboxRun {
    actors: usize,
    activities: usize,
    concurrency: usize,
    workers: usize,
    /// `[server] workers` (0: the server's default).
    http_workers: usize,
    batch_ms: u64,
    database_url: Option<String>,
    /// Domains blocked before the run.
    blocked_domains: usize,
}

struct InboxResult {
    to_accepted: Duration,
    to_processed: Duration,
    /// CPU time of the whole process (server and client, every thread)
    /// over the measured part.
    cpu: Duration,
    /// The same part's CPU time by kind of thread.
    threads: Vec<(&'static str, Duration)>,
    memory: RunMemory,
}

/// CPU time this process has used so far, all threads, user and system.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A signed POST, ready to send.
struct SignedPost {
    body: Vec<u8>,
    headers: tocsin::signatures::cavage::SignedRequestHeaders,
}

/// An instance's configuration and database with N known remote actors
/// (each with its own RSA-2048 key) that our organisation actor follows;
/// the server is not started yet.
struct Seeded {
    config: Config,
    listener: TcpListener,
    port: u16,
    dir: std::path::PathBuf,
    actor_ids: Vec<String>,
    keys: Vec<tocsin::signatures::keys::PemKeypair>,
    /// An API token (for the load test's readers).
    token: String,
}

async fn seed(run: &InboxRun, name: &str) -> anyhow::Result<Seeded> {
    let dir = std::env::temp_dir().join(format!("tocsin-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut config = Config::default();
    config.server.bind = format!("127.0.0.1:{port}");
    config.instance.domain = format!("localhost:{port}");
    config.federation.allow_http = true;
    config.federation.allow_private_addresses = true;
    config.inbox.workers = run.workers;
    config.server.workers = run.http_workers;
    // All the load comes from one address and host: measure throughput,
    // not the rate limits.
    config.limits.inbox_per_ip_per_minute = 0;
    config.limits.inbox_per_host_per_minute = 0;
    config.inbox.enqueue_batch_ms = run.batch_ms;
    config.inbox.journal_dir = format!("{}/inbox-journal", dir.display());
    config.database.url = run
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));

    let keys = std::thread::scope(|scope| {
        let per = run.actors.div_ceil(cores());
        let handles: Vec<_> = (0..cores())
            .map(|t| {
                scope.spawn(move || {
                    (t * per..((t + 1) * per).min(run.actors))
                        .map(|_| generate_rsa_keypair())
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("key generation"))
            .collect::<Result<Vec<_>, _>>()
    })?
    .concat();
    let state = server::open_state(config.clone()).await?;
    let remote_host = "remote.invalid";
    let actor_ids: Vec<String> = (0..run.actors)
        .map(|n| format!("http://{remote_host}/users/a{n}"))
        .collect();
    let token = {
        let mut conn = state.db.conn()?;
        let us = tocsin::db::actors::local_by_username(&mut conn, &config.actor.username)?
            .ok_or_else(|| anyhow::anyhow!("no organisation actor"))?;
        tocsin::db::transaction(&mut conn, |conn| {
            for (n, (ap_id, key)) in actor_ids.iter().zip(&keys).enumerate() {
                let actor = tocsin::db::actors::upsert(
                    conn,
                    &tocsin::db::actors::NewActor::remote_person(
                        ap_id,
                        &format!("a{n}"),
                        remote_host,
                        &format!("{ap_id}/inbox"),
                        &key.public_pem,
                    ),
                )?;
                tocsin::db::follows::upsert(
                    conn,
                    us.id,
                    actor.id,
                    tocsin::db::follows::ACCEPTED,
                    &format!("http://localhost:{port}/follows/{n}"),
                )?;
            }
            for n in 0..run.blocked_domains {
                tocsin::db::domain_policies::set(
                    conn,
                    &format!("blocked-{n}.example"),
                    tocsin::federation::policy::BLOCK,
                    None,
                )?;
            }
            Ok(())
        })?;
        tocsin::db::tokens::create(&mut conn, "bench")?
    };
    drop(state);
    Ok(Seeded {
        config,
        listener,
        port,
        dir,
        actor_ids,
        keys,
        token,
    })
}

/// `n` Creates spread over the seeded actors, each signed beforehand
/// (signing is the sender's cost, not the server's).
fn sign_posts(seeded: &Seeded, n: usize) -> anyhow::Result<Vec<SignedPost>> {
    let inbox_url = url::Url::parse(&format!("http://localhost:{}/inbox", seeded.port))?;
    let signed_at = Instant::now();
    let posts: Vec<SignedPost> = std::thread::scope(|scope| {
        let per = n.div_ceil(cores());
        let handles: Vec<_> = (0..cores())
            .map(|t| {
                let (keys, actor_ids, inbox_url) = (&seeded.keys, &seeded.actor_ids, &inbox_url);
                scope.spawn(move || {
                    let parsed: Vec<_> = keys
                        .iter()
                        .map(|k| parse_private_pem(&k.private_pem))
                        .collect::<Result<_, _>>()?;
                    (t * per..((t + 1) * per).min(n))
                        .map(|i| {
                            let a = i % actor_ids.len();
                            let body = create(&actor_ids[a], i).to_string().into_bytes();
                            let headers = tocsin::signatures::cavage::sign(
                                "POST",
                                inbox_url,
                                Some(&body),
                                &format!("{}#main-key", actor_ids[a]),
                                &parsed[a],
                                std::time::SystemTime::now(),
                            )?;
                            Ok(SignedPost { body, headers })
                        })
                        .collect::<Result<Vec<_>, tocsin::signatures::SignatureError>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signing"))
            .collect::<Result<Vec<_>, _>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    eprintln!(
        "{} actors seeded, {} activities signed in {:.1} s",
        seeded.actor_ids.len(),
        posts.len(),
        signed_at.elapsed().as_secs_f64()
    );
    Ok(posts)
}

/// The HTTP/1.1 request of `post` to the shared inbox, as bytes: rendered
/// before the measured part, so the posting client costs the two cores it
/// shares with the server little more than the socket writes and reads.
fn render(post: SignedPost) -> Vec<u8> {
    let headers = &post.headers;
    let mut request = format!(
        "POST /inbox HTTP/1.1\r\nHost: {}\r\nDate: {}\r\nSignature: {}\r\n\
         Content-Type: application/activity+json\r\nContent-Length: {}\r\n",
        headers.host,
        headers.date,
        headers.signature,
        post.body.len()
    );
    if let Some(digest) = &headers.digest {
        request.push_str(&format!("Digest: {digest}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(&post.body);
    bytes
}

/// POSTs every rendered request over `concurrency` keep-alive connections
/// (one request in flight on each); the statuses (0: no answer).
async fn post_all(port: u16, requests: Vec<Vec<u8>>, concurrency: usize) -> Vec<u16> {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };
    use tokio::io::AsyncWriteExt as _;
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let connections: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (requests, next) = (requests.clone(), next.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let mut stream = None;
                let mut buf = Vec::with_capacity(4096);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(i) else {
                        break;
                    };
                    if stream.is_none() {
                        // (Re)connects: the server may close after an error.
                        stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                            .await
                            .ok();
                        if let Some(s) = &stream {
                            let _ = s.set_nodelay(true);
                        }
                    }
                    let status = match stream.as_mut() {
                        Some(s) => match s.write_all(request).await {
                            Ok(()) => read::read_response(s, &mut buf).await,
                            Err(_) => None,
                        },
                        None => None,
                    };
                    if status.is_none() {
                        stream = None;
                    }
                    statuses.push(status.unwrap_or(0));
                }
                statuses
            })
        })
        .collect();
    let mut all = Vec::with_capacity(requests.len());
    for connection in connections {
        all.extend(connection.await.unwrap_or_default());
    }
    all
}

/// Waits until the writer has stored what was answered from the journal
/// and the inbox queue is empty; fails if an activity failed.
async fn queue_drained(running: &server::RunningServer, start: Instant) -> anyhow::Result<()> {
    loop {
        // Read first: a journaled activity leaves the journal only once it
        // is stored (applied, or queued).
        let journaled = running.state.inbox.journaled() as i64;
        let (queued, failed) = running
            .state
            .db
            .run(tocsin::db::inbox_queue::counts)
            .await?;
        let waiting = journaled + queued;
        if failed > 0 {
            anyhow::bail!("{failed} activities failed");
        }
        if waiting == 0 {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("{waiting} activities still waiting after 600 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn inbox(run: InboxRun) -> anyhow::Result<InboxResult> {
    let seeded = seed(&run, "inbox").await?;
    let posts: Vec<Vec<u8>> = sign_posts(&seeded, run.activities)?
        .into_iter()
        .map(render)
        .collect();
    let running = server::start(seeded.config, seeded.listener, false).await?;
    let memory = RunMemory::start();
    // Read before the clock starts: reading some forty files is not the
    // run's time.
    let threads_before = threads::Snapshot::now();
    let start = Instant::now();
    let cpu_before = process_cpu();
    let statuses = post_all(seeded.port, posts, run.concurrency).await;
    let to_accepted = start.elapsed();
    let refused = statuses.iter().filter(|s| **s != 202).count();
    if refused > 0 || statuses.len() != run.activities {
        let example = statuses.iter().find(|s| **s != 202);
        anyhow::bail!("{refused} activities were not accepted (e.g. status {example:?})");
    }
    queue_drained(&running, start).await?;
    let to_processed = start.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let threads = threads_before.until(&threads::Snapshot::now());
    let memory = memory.end();
    let stored = remote_alerts(&running).await?;
    if stored != run.activities as i64 {
        anyhow::bail!(
            "{stored} alerts stored for {} accepted Creates",
            run.activities
        );
    }
    running.stop().await;
    let _ = std::fs::remove_dir_all(&seeded.dir);
    Ok(InboxResult {
        to_accepted,
        to_processed,
        cpu,
        threads,
        memory,
    })
}

/// How many remote alerts the server stored.
async fn remote_alerts(running: &server::RunningServer) -> anyhow::Result<i64> {
    Ok(running
        .state
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use tocsin::db::schema::alerts;
            Ok(alerts::table
                .filter(alerts::local.eq(false))
                .count()
                .get_result::<i64>(conn)?)
        })
        .await?)
}

/// What the load test saw.
struct LoadResult {
    posted: usize,
    accepted: usize,
    stored: i64,
    inbox_5xx: usize,
    inbox_other: Vec<u16>,
    reads: u64,
    reads_5xx: u64,
    reads_failed: u64,
    to_accepted: Duration,
    to_stored: Duration,
    memory: RunMemory,
}

/// Reads the API and the public pages in a loop until `done`: alert pages,
/// a search, the archive and the actor; counts answers and 5xx.
async fn reader(
    base: String,
    token: String,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u64, u64, u64) {
    use std::sync::atomic::Ordering;
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
    else {
        return (0, 0, 1);
    };
    let paths = [
        "/api/v1/alerts",
        "/api/v1/alerts?page=2",
        "/api/v1/alerts?text=journalist",
        "/archive?q=appeal",
        "/actors/alerts/outbox?page=1",
    ];
    let (mut reads, mut errors, mut failed) = (0, 0, 0);
    let mut i = 0;
    while !done.load(Ordering::Relaxed) {
        let path = paths[i % paths.len()];
        i += 1;
        let response = client
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_server_error() => errors += 1,
            Ok(r) if r.status().is_success() => {
                if r.bytes().await.is_err() {
                    failed += 1;
                }
            }
            _ => failed += 1,
        }
        reads += 1;
    }
    (reads, errors, failed)
}

async fn load(run: InboxRun, readers: usize) -> anyhow::Result<LoadResult> {
    use std::sync::{atomic::AtomicBool, Arc};
    let seeded = seed(&run, "load").await?;
    let posts: Vec<Vec<u8>> = sign_posts(&seeded, run.activities)?
        .into_iter()
        .map(render)
        .collect();
    let running = server::start(seeded.config, seeded.listener, false).await?;
    let memory = RunMemory::start();
    let done = Arc::new(AtomicBool::new(false));
    let base = format!("http://127.0.0.1:{}", seeded.port);
    let reader_tasks: Vec<_> = (0..readers)
        .map(|_| tokio::spawn(reader(base.clone(), seeded.token.clone(), done.clone())))
        .collect();
    let start = Instant::now();
    let statuses = post_all(seeded.port, posts, run.concurrency).await;
    let to_accepted = start.elapsed();
    let drained = queue_drained(&running, start).await;
    let to_stored = start.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut reads, mut reads_5xx, mut reads_failed) = (0, 0, 0);
    for task in reader_tasks {
        let (r, e, f) = task.await?;
        (reads, reads_5xx, reads_failed) = (reads + r, reads_5xx + e, reads_failed + f);
    }
    drained?;
    let memory = memory.end();
    let stored = remote_alerts(&running).await?;
    running.stop().await;
    let _ = std::fs::remove_dir_all(&seeded.dir);
    Ok(LoadResult {
        posted: statuses.len(),
        accepted: statuses.iter().filter(|s| **s == 202).count(),
        stored,
        inbox_5xx: statuses.iter().filter(|s| **s >= 500).count(),
        inbox_other: statuses
            .iter()
            .copied()
            .filter(|s| *s != 202 && *s < 500)
            .collect(),
        reads,
        reads_5xx,
        reads_failed,
        to_accepted,
        to_stored,
        memory,
    })
}

/// The `i`th benchmark Create by `actor`.
fn create(actor: &str, i: usize) -> serde_json::Value {
    serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{actor}/activities/{i}"),
        "type": "Create",
        "actor": actor,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": {
            "id": format!("{actor}/notes/{i}"),
            "type": "Note",
            "attributedTo": actor,
            "content": "<p>Benchmark alert: journalist detained, urgent appeal for release.</p>",
            "published": "2026-11-29T10:00:00Z",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "cc": [format!("{actor}/followers")],
        },
        "cc": [format!("{actor}/followers")],
    })
}

struct FanoutResult {
    to_last: Duration,
    to_recorded: Duration,
    posts: u64,
    bad_signatures: u64,
}

async fn fanout(
    inboxes: usize,
    hosts: usize,
    concurrency: usize,
    database: Option<String>,
    sink_delay: Duration,
) -> anyhow::Result<FanoutResult> {
    let dir = std::env::temp_dir().join(format!("tocsin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut config = Config::default();
    config.server.bind = format!("127.0.0.1:{port}");
    config.server.workers = 1;
    config.instance.domain = format!("localhost:{port}");
    config.federation.allow_http = true;
    config.federation.allow_private_addresses = true;
    config.delivery.concurrency = concurrency;
    config.inbox.journal_dir = format!("{}/inbox-journal", dir.display());
    config.database.url =
        database.unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));

    // The audience: N followers, inboxes spread over loopback hosts.
    let state = server::open_state(config.clone()).await?;
    let actor = {
        let mut conn = state.db.conn()?;
        tocsin::db::actors::local_by_username(&mut conn, &config.actor.username)?
            .ok_or_else(|| anyhow::anyhow!("no organisation actor"))?
    };
    let listeners = (1..=hosts)
        .map(|h| TcpListener::bind(format!("127.0.0.{h}:0")))
        .collect::<Result<Vec<_>, _>>()?;
    let sink = Sink::start(
        listeners,
        &[(actor.public_key_id.clone(), actor.public_key_pem.clone())],
        sink_delay,
        1,
    )?;
    let urls: Vec<String> = (0..inboxes)
        .map(|i| format!("http://{}/inbox/{i}", sink.addrs[i % sink.addrs.len()]))
        .collect();
    let activity = serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("http://localhost:{port}/activities/bench-{}", uuid::Uuid::new_v4()),
        "type": "Create",
        "actor": actor.ap_id,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": {
            "type": "Note",
            "attributedTo": actor.ap_id,
            "content": "<p>Benchmark alert: journalist detained, urgent appeal for release.</p>",
        },
    });
    let seeded = Instant::now();
    {
        let mut conn = state.db.conn()?;
        seed_followers(&mut conn, actor.id, &urls)?;
        enqueue_for_followers(&mut conn, actor.id, &activity)?;
    }
    eprintln!(
        "seeded {inboxes} followers and queued the activity in {:.2} s",
        seeded.elapsed().as_secs_f64()
    );
    drop(state);

    // The measured part: from starting the server to the last delivery.
    let start = Instant::now();
    let running = server::start(config, listener, false).await?;
    while sink.distinct_deliveries() < inboxes as u64 {
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!(
                "only {} of {inboxes} delivered after 600 s",
                sink.distinct_deliveries()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let to_last = sink.last_accepted().unwrap_or_else(Instant::now) - start;
    loop {
        let stats = running.state.db.run(deliveries::queue_stats).await?;
        if stats.pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let to_recorded = start.elapsed();
    let report = sink.report();
    running.stop().await;
    sink.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(FanoutResult {
        to_last,
        to_recorded,
        posts: report.posts,
        bad_signatures: report.bad_signatures,
    })
}

/// Peak resident set size of this process in kB (`VmHWM`).
fn peak_rss_kb() -> Option<u64> {
    status_kb("VmHWM:")
}

/// A `kB` field of this process's `/proc/self/status`.
fn status_kb(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Starts the peak resident set size (`VmHWM`) again from the current
/// size, so that a peak reached while the requests were signed and
/// rendered is not taken for the run's; false where Linux does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The run's memory: the resident size when it started (the posting
/// client's rendered requests and the idle server) and its peak, in kB.
struct RunMemory {
    at_start: Option<u64>,
    peak: Option<u64>,
    /// False: the peak may be an earlier one (see [`reset_peak_rss`]).
    peak_is_the_runs: bool,
}

impl RunMemory {
    /// Called just before the run: the size now, the peak started again.
    fn start() -> RunMemory {
        RunMemory {
            at_start: status_kb("VmRSS:"),
            peak: None,
            peak_is_the_runs: reset_peak_rss(),
        }
    }

    /// Called just after the run: adds the peak.
    fn end(self) -> RunMemory {
        RunMemory {
            peak: peak_rss_kb(),
            ..self
        }
    }

    /// "PEAK MB during the run, START MB at its start".
    fn describe(&self) -> String {
        let mb = |kb: Option<u64>| kb.map_or("?".into(), |kb| (kb / 1024).to_string());
        let during = if self.peak_is_the_runs {
            "during the run"
        } else {
            "since the process started"
        };
        format!(
            "{} MB {during}, {} MB at its start",
            mb(self.peak),
            mb(self.at_start)
        )
    }
}

struct MailRun {
    sent: usize,
    received: u64,
    bytes: u64,
    elapsed: Duration,
}

/// Counts what the SMTP sink accepted.
#[derive(Default)]
struct SmtpCounts {
    messages: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

/// A minimal SMTP server on `listener`: accepts every command, reads each
/// DATA to its final dot and counts it.
async fn smtp_sink(listener: tokio::net::TcpListener, counts: std::sync::Arc<SmtpCounts>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    while let Ok((stream, _)) = listener.accept().await {
        let counts = counts.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read);
            let _ = write.write_all(b"220 bench sink\r\n").await;
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-bench sink\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        let _ = write.write_all(b"354 go on\r\n").await;
                        let mut size = 0u64;
                        loop {
                            line.clear();
                            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            size += line.len() as u64;
                        }
                        counts.messages.fetch_add(1, Ordering::Relaxed);
                        counts.bytes.fetch_add(size, Ordering::Relaxed);
                        b"250 2.0.0 accepted\r\n"
                    }
                    "QUIT" => {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    }
                    _ => b"250 ok\r\n",
                };
                if write.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn mail(
    subscribers: usize,
    items: usize,
    connections: u32,
    batch_size: i64,
    database_url: Option<String>,
) -> anyhow::Result<MailRun> {
    use tocsin::db::{publications, subscribers as subs};
    let dir = std::env::temp_dir().join(format!("tocsin-bench-mail-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let counts = std::sync::Arc::new(SmtpCounts::default());
    tokio::spawn(smtp_sink(listener, counts.clone()));

    let mut config = Config::default();
    config.instance.domain = "bench.example".into();
    config.inbox.journal_dir = format!("{}/inbox-journal", dir.display());
    config.database.url =
        database_url.unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));
    config.mail.smtp_host = "127.0.0.1".into();
    config.mail.smtp_port = port;
    config.mail.security = "none".into();
    config.mail.rate = 0.0;
    config.mail.connections = connections;
    config.mail.batch_size = batch_size;
    let taxonomy = tocsin::alerts::taxonomy::Taxonomy::load("").map_err(anyhow::Error::msg)?;
    let regions: Vec<String> = taxonomy.regions.keys().cloned().collect();
    let state = server::open_state(config.clone()).await?;
    let seeded = Instant::now();
    let issue = {
        let mut conn = state.db.conn()?;
        let rows: Vec<subs::Imported> = (0..subscribers)
            .map(|n| subs::Imported {
                email: format!("reader{n}@bench.example"),
                choices: subs::Choices {
                    publications: vec!["digest".into()],
                    languages: vec!["en".into()],
                    regions: if n % 3 == 0 {
                        vec![regions[n % regions.len()].clone()]
                    } else {
                        Vec::new()
                    },
                },
            })
            .collect();
        subs::import(&mut conn, &rows, "benchmark")?;
        let new_items: Vec<publications::NewItem> = (0..items)
            .map(|i| {
                let region = &regions[i % regions.len()];
                publications::NewItem {
                    section: region.clone(),
                    story: None,
                    alert_id: None,
                    heading: format!(
                        "Country {i}: journalist detained after reporting on protests"
                    ),
                    body_html: format!(
                        "<p>Security forces detained a reporter on day {i} after coverage of \
                         protests in the capital; colleagues call for release &amp; an inquiry.</p>"
                    ),
                    url: Some(format!("https://bench.example/alerts/{i}")),
                    body_markdown: None,
                }
            })
            .collect();
        let mut sorted = new_items;
        sorted.sort_by(|a, b| a.section.cmp(&b.section));
        let now = tocsin::db::now_ms();
        let id = publications::create_issue(
            &mut conn,
            &publications::NewIssue {
                publication: "digest",
                language: "en",
                period_start: now - 7 * 86_400_000,
                period_end: now,
                title: "Digest (benchmark)",
            },
            &sorted,
        )?;
        publications::publish(&mut conn, id, "https://bench.example/digests/1")?;
        id
    };
    eprintln!(
        "seeded {subscribers} subscribers and an issue of {items} items in {:.2} s",
        seeded.elapsed().as_secs_f64()
    );
    let mailer = tocsin::mail::Mailer::from_config(&config)?;
    let pace = tocsin::mail::send::Pace::from_config(&config.mail);
    let start = Instant::now();
    let report =
        tocsin::mail::send::send_issue(&state.db, &mailer, &taxonomy, issue, pace, &|_| {}).await?;
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(MailRun {
        sent: report.sent,
        received: counts.messages.load(std::sync::atomic::Ordering::Relaxed),
        bytes: counts.bytes.load(std::sync::atomic::Ordering::Relaxed),
        elapsed,
    })
}
