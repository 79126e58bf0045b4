//! `tocsin-bench read` and `tocsin-bench footprint`: the real `tocsin
//! serve` binary (a child process, as operators run it) measured with our
//! own keep-alive HTTP/1.1 client, against a bare actix-web handler that
//! returns fixed JSON of the same size in a child process with the same
//! worker count, hammered by the same client in the same run.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use tocsin::config::Config;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// What `read` is asked to do.
pub struct ReadArgs {
    /// Alerts seeded (GETs spread over them).
    pub alerts: usize,
    /// Keep-alive connections of the client.
    pub connections: usize,
    /// Seconds each measurement lasts.
    pub secs: u64,
    /// Database URL (an empty database); a temporary SQLite file if absent.
    pub database_url: Option<String>,
    /// `[server] workers` of both servers (0: one per core).
    pub workers: usize,
    /// GET the public HTML pages (home, profile, alerts) as a browser
    /// does, instead of the ActivityPub JSON.
    pub pages: bool,
    /// Alert edits a second through the API while Tocsin is measured (each
    /// drops the read cache).
    pub edits_per_sec: u32,
}

/// What the editor saw.
struct Edited {
    ok: usize,
    other: usize,
}

/// PATCHes the title and text of the alerts `ids` in turn, `per_sec` a
/// second, through the API with `token` until `deadline`, over one
/// keep-alive connection.
async fn edit(
    addr: SocketAddr,
    host: Arc<str>,
    token: String,
    ids: Vec<i64>,
    per_sec: u32,
    deadline: Instant,
) -> Edited {
    let mut seen = Edited { ok: 0, other: 0 };
    if per_sec == 0 || ids.is_empty() {
        return seen;
    }
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        seen.other += 1;
        return seen;
    };
    let _ = stream.set_nodelay(true);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_sec);
    let mut buf = Vec::with_capacity(16 * 1024);
    for n in 0.. {
        tick.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        let id = ids[n % ids.len()];
        let body = format!(
            "{{\"title\":\"Journalist detained after reporting on protests (edit {n})\",\
             \"body\":\"Security forces detained a reporter at dawn. Her lawyer was refused access.\"}}"
        );
        let request = format!(
            "PATCH /api/v1/alerts/{id} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(request.as_bytes()).await.is_err() {
            seen.other += 1;
            return seen;
        }
        match read_response(&mut stream, &mut buf).await {
            Some(200) => seen.ok += 1,
            Some(_) => seen.other += 1,
            None => {
                seen.other += 1;
                return seen;
            }
        }
    }
    seen
}

/// The `Accept` header of the ActivityPub GETs.
const ACCEPT_JSON: &str = "application/activity+json";
/// The `Accept` header of the page GETs: a browser's.
const ACCEPT_HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// What one hammering saw.
struct Hammered {
    ok: u64,
    other: u64,
    elapsed: Duration,
    micros: Vec<u32>,
}

impl Hammered {
    fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile of the latencies in ms (sorted by [`hammer`]).
    fn percentile(&self, p: f64) -> f64 {
        quantile(&self.micros, p).map_or(0.0, |micros| micros as f64 / 1000.0)
    }
}

/// The `p` quantile (0 to 1) of `sorted`, the nearest value; `None` when
/// it is empty.
fn quantile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get((last as f64 * p).round() as usize).copied()
}

/// One keep-alive connection: GETs `paths` in turn from `offset` until
/// `deadline`; answers other than 200 count apart.
async fn connection(
    addr: SocketAddr,
    host: Arc<str>,
    paths: Arc<Vec<String>>,
    accept: &'static str,
    offset: usize,
    deadline: Instant,
) -> Hammered {
    let mut seen = Hammered {
        ok: 0,
        other: 0,
        elapsed: Duration::ZERO,
        micros: Vec::with_capacity(1 << 16),
    };
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        seen.other += 1;
        return seen;
    };
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut i = offset;
    while Instant::now() < deadline {
        let path = &paths[i % paths.len()];
        i += 1;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n\r\n");
        let sent = Instant::now();
        if stream.write_all(request.as_bytes()).await.is_err() {
            seen.other += 1;
            return seen;
        }
        match read_response(&mut stream, &mut buf).await {
            Some(200) => {
                seen.ok += 1;
                seen.micros.push(sent.elapsed().as_micros() as u32);
            }
            Some(_) => seen.other += 1,
            None => {
                seen.other += 1;
                return seen;
            }
        }
    }
    seen
}

/// Reads one response (headers, then `Content-Length` bytes) from
/// `stream`; its status, or `None` if the connection failed.
pub async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<u16> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(status)
}

/// `connections` keep-alive connections GET `paths` for `duration`.
async fn hammer(
    addr: SocketAddr,
    host: &str,
    paths: Vec<String>,
    accept: &'static str,
    connections: usize,
    duration: Duration,
) -> Hammered {
    let (host, paths): (Arc<str>, _) = (host.into(), Arc::new(paths));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            tokio::spawn(connection(
                addr,
                host.clone(),
                paths.clone(),
                accept,
                c * 7,
                deadline,
            ))
        })
        .collect();
    let mut all = Hammered {
        ok: 0,
        other: 0,
        elapsed: Duration::ZERO,
        micros: Vec::new(),
    };
    for task in tasks {
        if let Ok(seen) = task.await {
            all.ok += seen.ok;
            all.other += seen.other;
            all.micros.extend(seen.micros);
        }
    }
    all.elapsed = start.elapsed();
    all.micros.sort_unstable();
    all
}

/// GETs `path` once, accepting `accept`; status and body length.
async fn get_once(addr: SocketAddr, host: &str, path: &str, accept: &str) -> Option<(u16, usize)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let status = read_response(&mut stream, &mut buf).await?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    Some((status, buf.len() - head_end))
}

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`) or a count
/// (`Threads`).
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The 1-minute load average.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// A child process that is killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    started: Instant,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `path` until it answers 200; the time from spawn.
    async fn first_answer(&mut self, host: &str, path: &str) -> anyhow::Result<Duration> {
        loop {
            if let Some((200, _)) = get_once(self.addr, host, path, ACCEPT_JSON).await {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the server exited: {status}");
            }
            if self.started.elapsed() > Duration::from_secs(60) {
                anyhow::bail!("no answer from the server after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `tocsin` binary next to this one (build both with
/// `cargo build --release --bins`).
fn tocsin_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("tocsin");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: cargo build --release --bins",
        path.display()
    );
    Ok(path)
}

/// A configuration for a server on `port` with its data in `dir`.
fn config_for(port: u16, dir: &Path, database_url: Option<&str>, workers: usize) -> Config {
    let mut config = Config::default();
    config.server.bind = format!("127.0.0.1:{port}");
    config.server.workers = workers;
    config.instance.domain = format!("localhost:{port}");
    config.alerts.media_dir = format!("{}/media", dir.display());
    config.inbox.journal_dir = format!("{}/inbox-journal", dir.display());
    config.database.url = database_url
        .map(str::to_string)
        .unwrap_or_else(|| format!("sqlite://{}/tocsin.db", dir.display()));
    config
}

/// Starts `tocsin serve` with `config` (written to `dir`).
fn spawn_tocsin(config: &Config, dir: &Path) -> anyhow::Result<Server> {
    let file = dir.join("tocsin.toml");
    std::fs::write(&file, toml::to_string(config)?)?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let addr: SocketAddr = config.server.bind.parse()?;
    let started = Instant::now();
    let child = Command::new(tocsin_binary()?)
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .env("TOCSIN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    Ok(Server {
        child,
        addr,
        started,
    })
}

/// Starts this binary's bare handler answering `bytes` bytes of JSON.
fn spawn_bare(port: u16, workers: usize, bytes: usize) -> anyhow::Result<Server> {
    let started = Instant::now();
    let child = Command::new(std::env::current_exe()?)
        .args([
            "bare-server",
            "--port",
            &port.to_string(),
            "--workers",
            &workers.to_string(),
            "--bytes",
            &bytes.to_string(),
        ])
        .stdout(Stdio::null())
        .spawn()?;
    Ok(Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        started,
    })
}

/// The bare handler: one actix-web route answering fixed JSON of `bytes`
/// bytes with `workers` worker threads (0: one per core). Runs until
/// killed.
pub fn bare_server(port: u16, workers: usize, bytes: usize) -> anyhow::Result<()> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let padding = "x".repeat(bytes.saturating_sub(12));
    let body = web::Bytes::from(format!("{{\"pad\":\"{padding}\"}}"));
    let workers = tocsin::server::http_workers(workers);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let body = body.clone();
            App::new().default_service(web::to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/activity+json")
                        .body(body)
                }
            }))
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })?;
    Ok(())
}

/// Starts the bare handler, hammers it for `duration` and stops it; what
/// the client saw and the handler's peak RSS in kB.
async fn measure_bare(
    port: u16,
    workers: usize,
    bytes: usize,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Hammered, u64)> {
    let mut bare = spawn_bare(port, workers, bytes)?;
    bare.first_answer("localhost", "/").await?;
    let seen = hammer(
        bare.addr,
        "localhost",
        vec!["/".into()],
        ACCEPT_JSON,
        connections,
        duration,
    )
    .await;
    Ok((seen, proc_status(bare.pid(), "VmHWM").unwrap_or(0)))
}

/// What [`seed`] made.
struct SeededAlerts {
    /// The alerts' paths.
    paths: Vec<String>,
    /// Their ids in the API.
    ids: Vec<i64>,
    /// An API token.
    token: String,
}

/// An instance's database with its actors, `alerts` published alerts and
/// an API token.
async fn seed(config: &Config, alerts: usize) -> anyhow::Result<SeededAlerts> {
    let state = tocsin::server::open_state(config.clone()).await?;
    let base = config.base_url();
    let username = config.actor.username.clone();
    let (rows, token) = state
        .db
        .run(move |conn| {
            let actor = tocsin::db::actors::local_by_username(conn, &username)?
                .ok_or(tocsin::db::DbError::Query(diesel::result::Error::NotFound))?;
            let rows: Vec<(String, i64)> = tocsin::db::transaction(conn, |conn| {
                let now = tocsin::db::now_ms();
                (0..alerts)
                    .map(|n| {
                        let uuid = uuid::Uuid::new_v4();
                        let row =
                            tocsin::db::alerts::insert(conn, alert(&base, uuid, actor.id, n, now))?;
                        Ok((format!("/alerts/{uuid}"), row.id))
                    })
                    .collect::<Result<_, tocsin::db::DbError>>()
            })?;
            Ok((rows, tocsin::db::tokens::create(conn, "bench")?))
        })
        .await?;
    let (paths, ids) = rows.into_iter().unzip();
    Ok(SeededAlerts { paths, ids, token })
}

/// The `n`th benchmark alert, about the size of a real one.
fn alert(
    base: &str,
    uuid: uuid::Uuid,
    actor_id: i64,
    n: usize,
    now: i64,
) -> tocsin::db::alerts::AlertValues {
    tocsin::db::alerts::AlertValues {
        ap_id: format!("{base}/alerts/{uuid}"),
        actor_id,
        local: true,
        translation_of: None,
        language: "en".into(),
        title: format!("Journalist detained after reporting on protests ({n})"),
        content_html: "<p>Security forces detained a reporter at dawn after her coverage of \
                       the protests in the capital. Her colleagues have not been able to reach \
                       her since; her lawyer was refused access.</p><p>We call on the \
                       authorities to release her at once and to drop every charge.</p>"
            .into(),
        source_markdown: None,
        summary: None,
        sensitive: false,
        countries: ",NG,".into(),
        region: Some("africa".into()),
        categories: ",detention,".into(),
        urgency: "action".into(),
        incident_date: Some("2026-11-20".into()),
        case_ap_id: None,
        url: None,
        status: "published".into(),
        pinned: false,
        token_id: None,
        published_at: Some(now - n as i64 * 60_000),
        updated_at: now,
        created_at: now,
        deleted_at: None,
        search_text: String::new(),
        quote_ap_id: None,
    }
    .with_search_text()
}

/// `tocsin-bench read`.
pub async fn read(args: ReadArgs) -> anyhow::Result<()> {
    let workers = tocsin::server::http_workers(args.workers);
    let dir = std::env::temp_dir().join(format!("tocsin-bench-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let host = format!("localhost:{port}");
    let config = config_for(port, &dir, args.database_url.as_deref(), workers);
    let SeededAlerts {
        paths: alerts,
        ids,
        token,
    } = seed(&config, args.alerts.max(1)).await?;
    let actor_path = format!("/actors/{}", config.actor.username);
    // The JSON: half the GETs the actor, half alerts in turn. The pages: a
    // third each the home page, the actor's profile page and alert pages.
    let (accept, what, paths): (_, _, Vec<String>) = if args.pages {
        let profile = format!("/@{}", config.actor.username);
        let paths = alerts
            .iter()
            .flat_map(|a| ["/".to_string(), profile.clone(), a.clone()])
            .collect();
        (ACCEPT_HTML, "home, profile and alert page GETs", paths)
    } else {
        let paths = alerts
            .iter()
            .flat_map(|a| [actor_path.clone(), a.clone()])
            .collect();
        (ACCEPT_JSON, "actor and alert GETs", paths)
    };
    let duration = Duration::from_secs(args.secs);
    let load_before = load_average();

    let mut server = spawn_tocsin(&config, &dir)?;
    let to_first = server.first_answer(&host, &actor_path).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_kb = proc_status(server.pid(), "VmRSS").unwrap_or(0);
    // The answers' sizes, each of the first round's paths once: the bare
    // handler answers their mean.
    let round = if args.pages { 3 } else { 2 };
    let (mut sizes, mut bytes) = (Vec::with_capacity(round), 0);
    for path in &paths[..round] {
        match get_once(server.addr, &host, path, accept).await {
            Some((200, size)) => {
                sizes.push(format!("{path} {size} bytes"));
                bytes += size / round;
            }
            other => anyhow::bail!("GET {path}: {other:?}"),
        }
    }

    // Bare handler, Tocsin, bare handler again: a neighbour's load weighs
    // on both sides of the ratio.
    let bare_port = free_port()?;
    let (bare_before, _) =
        measure_bare(bare_port, workers, bytes, args.connections, duration).await?;
    let editor = tokio::spawn(edit(
        server.addr,
        host.as_str().into(),
        token,
        ids,
        args.edits_per_sec,
        Instant::now() + duration,
    ));
    let real = hammer(
        server.addr,
        &host,
        paths,
        accept,
        args.connections,
        duration,
    )
    .await;
    let edited = editor.await?;
    let peak_kb = proc_status(server.pid(), "VmHWM").unwrap_or(0);
    let threads = proc_status(server.pid(), "Threads").unwrap_or(0);
    drop(server);
    let (bare_after, bare_peak_kb) =
        measure_bare(bare_port, workers, bytes, args.connections, duration).await?;
    let load_after = load_average();
    if args.database_url.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }

    let bare_rate = (bare_before.per_sec() + bare_after.per_sec()) / 2.0;
    println!(
        "tocsin reads per second  {:.0} ({} {what} in {:.1} s over {} connections; {} other answers)\n\
         latency p50 / p99        {:.2} / {:.2} ms\n\
         bare handler per second  {bare_rate:.0} ({:.0} before, {:.0} after; a fixed body of {bytes} bytes; p50 / p99 {:.2} / {:.2} ms)\n\
         ratio                    {:.2} of the bare handler\n\
         answers                  {}\n\
         edits meanwhile          {} alert edits through the API ({} asked a second), {} not 200\n\
         tocsin process           start to first answer {:.0} ms; idle RSS {} MB; peak RSS {} MB under load; {threads} threads\n\
         bare process             peak RSS {} MB\n\
         workers                  {workers} actix workers in both servers; {} cores; load average {load_before} before, {load_after} after",
        real.per_sec(),
        real.ok,
        real.elapsed.as_secs_f64(),
        args.connections,
        real.other,
        real.percentile(0.5),
        real.percentile(0.99),
        bare_before.per_sec(),
        bare_after.per_sec(),
        bare_before.percentile(0.5),
        bare_before.percentile(0.99),
        real.per_sec() / bare_rate,
        sizes.join(", "),
        edited.ok,
        args.edits_per_sec,
        edited.other,
        to_first.as_secs_f64() * 1000.0,
        idle_kb / 1024,
        peak_kb / 1024,
        bare_peak_kb / 1024,
        crate::cores(),
    );
    anyhow::ensure!(real.other == 0, "{} answers were not 200", real.other);
    anyhow::ensure!(edited.other == 0, "{} edits were not 200", edited.other);
    Ok(())
}

/// `tocsin-bench footprint`: `tocsin serve` on a fresh data directory;
/// time from spawn to the first 200 of the actor, and resident memory
/// while idle.
pub async fn footprint(
    database_url: Option<String>,
    workers: usize,
    starts: usize,
) -> anyhow::Result<()> {
    if starts > 1 && database_url.is_some() {
        anyhow::bail!("--starts needs a fresh database each time: SQLite only");
    }
    let load = load_average();
    let (dir, config, server, to_first_start) =
        first_start("footprint", database_url.as_deref(), workers).await?;
    println!(
        "start to first answer    {:.0} ms (fresh data directory: migrations, actor keys, first 200 of the actor)",
        to_first_start.as_secs_f64() * 1000.0
    );
    for at in [1u64, 5, 15] {
        let since = server.started.elapsed();
        if let Some(wait) = Duration::from_secs(at).checked_sub(since) {
            tokio::time::sleep(wait).await;
        }
        println!(
            "idle RSS after {at:>2} s      {:.1} MB ({} threads)",
            proc_status(server.pid(), "VmRSS").unwrap_or(0) as f64 / 1024.0,
            proc_status(server.pid(), "Threads").unwrap_or(0),
        );
    }
    println!(
        "peak RSS (VmHWM)         {:.1} MB",
        proc_status(server.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0,
    );
    println!(
        "allocator                {} (this build)",
        tocsin::ALLOCATOR
    );
    drop(server);
    // A restart: the database and the actors' keys exist.
    let mut server = spawn_tocsin(&config, &dir)?;
    let to_first = server
        .first_answer(&config.instance.domain, &actor_path(&config))
        .await?;
    println!(
        "restart to first answer  {:.0} ms (same data directory)
         load average             {load} before, {} after; {} cores",
        to_first.as_secs_f64() * 1000.0,
        load_average(),
        crate::cores(),
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    if starts > 1 {
        let mut times = vec![to_first_start];
        for _ in 1..starts {
            let (dir, _, server, to_first) = first_start("first-start", None, workers).await?;
            drop(server);
            let _ = std::fs::remove_dir_all(&dir);
            times.push(to_first);
        }
        print_first_starts(&mut times);
    }
    Ok(())
}

/// `tocsin serve` started in a fresh data directory (named after `label`)
/// on `database_url` (SQLite in the directory when `None`): the
/// directory, the configuration, the running server and the time from
/// spawn to the actor's first 200.
async fn first_start(
    label: &str,
    database_url: Option<&str>,
    workers: usize,
) -> anyhow::Result<(PathBuf, Config, Server, Duration)> {
    let dir = std::env::temp_dir().join(format!("tocsin-bench-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = config_for(free_port()?, &dir, database_url, workers);
    let mut server = spawn_tocsin(&config, &dir)?;
    let to_first = server
        .first_answer(&config.instance.domain, &actor_path(&config))
        .await?;
    Ok((dir, config, server, to_first))
}

/// The organisation actor's path, which `footprint` GETs.
fn actor_path(config: &Config) -> String {
    format!("/actors/{}", config.actor.username)
}

/// The spread of first starts' times.
fn print_first_starts(times: &mut [Duration]) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |p: f64| quantile(times, p).map_or(0.0, ms);
    let n = times.len();
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / n as f64;
    let over = times.iter().filter(|d| ms(**d) > 200.0).count();
    println!(
        "first starts             {n}: {:.0} min, {:.0} median, {mean:.0} mean, {:.0} at the 90th percentile, {:.0} max; {over} over 200 ms",
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0),
    );
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn a_quantile_is_the_nearest_value_of_the_sorted_ones() {
        let ten: Vec<u32> = (1..=10).collect();
        assert_eq!(quantile(&ten, 0.0), Some(1));
        assert_eq!(quantile(&ten, 0.5), Some(6));
        // Of ten, the 90th percentile is the ninth value, not the largest.
        assert_eq!(quantile(&ten, 0.9), Some(9));
        assert_eq!(quantile(&ten, 1.0), Some(10));
        assert_eq!(quantile(&[7u32], 0.9), Some(7));
        assert_eq!(quantile::<u32>(&[], 0.5), None);
    }
}
