//! Throughput of the delivery queue, measured end to end:
//! `tocsin-bench fanout --inboxes 10000` publishes one activity to N
//! followers on N distinct inboxes of a loopback sink (in this process,
//! spread over several 127.0.0.x hosts) that checks every signature, and
//! prints deliveries per second, time to the last delivery, peak RSS, and
//! the machine's raw RSA-2048 signing rate measured in the same run.
//! See docs/performance.md.

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
    signatures::keys::{generate_rsa_keypair, parse_private_pem, rsa_sign},
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
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
