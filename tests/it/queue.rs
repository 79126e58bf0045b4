//! The queue itself, without a worker: leases left by a dead process are
//! taken again, a down host is probed with one delivery before the rest,
//! concurrent claimers never share a row; and what operators see of it
//! (`GET /metrics`, `tocsin queue`).

use crate::common::{create_note, postgres_available, Backend, TestDb, TestInstance};
use diesel::prelude::*;
use std::collections::HashSet;
use tocsin::{
    db::{
        deliveries::{self, AttemptRecord, HostHealth, NextStep},
        now_ms,
        schema::{deliveries as deliveries_table, hosts},
        DbConn,
    },
    delivery::{enqueue_for_followers, sink::seed_followers},
};

const MINUTE: i64 = 60_000;

/// A database whose organisation actor has followers at `inboxes`, and one
/// activity queued for all of them.
async fn queued(backend: Backend, inboxes: &[String]) -> TestDb {
    let db = TestDb::open(backend).await;
    let actor = db.org_actor();
    let mut conn = db.state.db.conn().unwrap();
    seed_followers(&mut conn, actor.id, inboxes).unwrap();
    let (_, n) =
        enqueue_for_followers(&mut conn, actor.id, &create_note("http://x", &actor.ap_id)).unwrap();
    assert_eq!(n, inboxes.len());
    drop(conn);
    db
}

fn inboxes(host: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("http://{host}/inbox/{i}")).collect()
}

fn claim(conn: &mut DbConn, limit: i64) -> Vec<deliveries::ClaimedDelivery> {
    deliveries::claim_due(conn, limit, 5 * MINUTE).unwrap()
}

fn set_down_until(conn: &mut DbConn, host: &str, at: i64) {
    diesel::update(hosts::table.find(host))
        .set(hosts::down_until.eq(Some(at)))
        .execute(conn)
        .unwrap();
}

fn record(conn: &mut DbConn, claim: &deliveries::ClaimedDelivery, ok: bool) {
    let d = &claim.delivery;
    let (next, host_health) = if ok {
        (NextStep::Final(deliveries::DONE), HostHealth::Answered)
    } else {
        let at = now_ms() + 10 * MINUTE;
        (NextStep::RetryAt(at), HostHealth::Unwell { probe_at: at })
    };
    let r = AttemptRecord {
        id: d.id,
        host: d.host.clone(),
        inbox: d.inbox.clone(),
        next,
        status: Some(if ok { 202 } else { 503 }),
        error: None,
        host_health,
    };
    deliveries::record_attempts(conn, &[r], 1).unwrap();
}

async fn expired_lease_is_claimed_again(backend: Backend) {
    let db = queued(backend, &inboxes("dead.example", 3)).await;
    let mut conn = db.state.db.conn().unwrap();
    let first = claim(&mut conn, 10);
    assert_eq!(first.len(), 3);
    assert!(
        claim(&mut conn, 10).is_empty(),
        "leased rows are not claimed"
    );
    // The claiming process dies; its lease runs out.
    let one = first[0].delivery.id;
    diesel::update(deliveries_table::table.find(one))
        .set(deliveries_table::locked_until.eq(Some(now_ms() - 1)))
        .execute(&mut conn)
        .unwrap();
    let again = claim(&mut conn, 10);
    assert_eq!(again.len(), 1, "only the expired lease is taken");
    assert_eq!(again[0].delivery.id, one);
    assert_eq!(again[0].delivery.state, deliveries::PENDING);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_of_a_dead_process_is_claimed_again_sqlite() {
    expired_lease_is_claimed_again(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_of_a_dead_process_is_claimed_again_postgres() {
    if postgres_available() {
        expired_lease_is_claimed_again(Backend::Postgres).await;
    }
}

async fn down_host_is_probed_with_one_delivery(backend: Backend) {
    let mut all = inboxes("down.example:8443", 5);
    all.extend(inboxes("up.example", 2));
    let db = queued(backend, &all).await;
    let mut conn = db.state.db.conn().unwrap();
    let down = "down.example:8443";
    deliveries::host_failed(&mut conn, down, 1, now_ms() + 10 * MINUTE).unwrap();
    let claimed = claim(&mut conn, 100);
    assert_eq!(claimed.len(), 2, "a down host is skipped");
    assert!(claimed.iter().all(|c| c.delivery.host == "up.example"));

    // Probe time: exactly one delivery goes, the rest wait for its answer.
    set_down_until(&mut conn, down, now_ms() - 1);
    let probe = claim(&mut conn, 100);
    assert_eq!(probe.len(), 1, "{probe:?}");
    assert_eq!(probe[0].delivery.host, down);
    assert!(
        claim(&mut conn, 100).is_empty(),
        "nothing else while probing"
    );

    // The probe fails: the host stays down until the next probe.
    record(&mut conn, &probe[0], false);
    assert!(claim(&mut conn, 100).is_empty());
    assert_eq!(deliveries::hosts_down(&mut conn).unwrap().len(), 1);

    // The next probe succeeds: the host is up and the rest are released.
    set_down_until(&mut conn, down, now_ms() - 1);
    let probe = claim(&mut conn, 100);
    assert_eq!(probe.len(), 1);
    record(&mut conn, &probe[0], true);
    assert!(deliveries::hosts_down(&mut conn).unwrap().is_empty());
    let rest = claim(&mut conn, 100);
    assert_eq!(rest.len(), 3, "the remaining deliveries of the host");
    assert!(rest.iter().all(|c| c.delivery.host == down));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_host_is_probed_with_one_delivery_before_the_rest_sqlite() {
    down_host_is_probed_with_one_delivery(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_host_is_probed_with_one_delivery_before_the_rest_postgres() {
    if postgres_available() {
        down_host_is_probed_with_one_delivery(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_on_postgres_never_share_a_delivery() {
    if !postgres_available() {
        return;
    }
    let db = queued(Backend::Postgres, &inboxes("many.example", 300)).await;
    let claimers: Vec<_> = (0..4)
        .map(|_| {
            let pool = db.state.db.clone();
            std::thread::spawn(move || {
                let mut conn = pool.conn().unwrap();
                let mut mine = Vec::new();
                loop {
                    let got = claim(&mut conn, 7);
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|c| c.delivery.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for claimer in claimers {
        for id in claimer.join().unwrap() {
            assert!(seen.insert(id), "delivery {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_prometheus_text_format() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let resp = crate::common::client()
        .get(format!("{}/metrics", i.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = resp.text().await.unwrap();
    for series in [
        "tocsin_delivery_queue_pending 0",
        "tocsin_delivery_queue_due 0",
        "tocsin_delivery_hosts_down 0",
        "tocsin_deliveries_total{outcome=\"delivered\"} 0",
        "tocsin_delivery_attempt_seconds_count 0",
        "tocsin_delivery_latency_seconds_bucket{le=\"+Inf\"} 0",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    i.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_command_shows_depth_due_and_failing_hosts() {
    let mut all = inboxes("slow.example", 2);
    all.extend(inboxes("dead.example", 1));
    let db = queued(Backend::Sqlite, &all).await;
    {
        let mut conn = db.state.db.conn().unwrap();
        deliveries::host_failed(&mut conn, "dead.example", 1, now_ms() + 10 * MINUTE).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .arg("queue")
        .current_dir(db.dir())
        .env_remove("TOCSIN_CONFIG")
        .env("TOCSIN_LOG", "warn")
        .env("TOCSIN_DATABASE__URL", &db.config.database.url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "pending\t3\n",
        "due now\t3\n",
        "in flight\t0\n",
        "done\t0\n",
        "failing hosts\t1\n",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    assert!(stdout.contains("oldest pending\t0h00m"), "{stdout}");
    assert!(
        stdout.contains("  dead.example\t1 failures in a row\tdown, next probe in"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_finishes_or_hands_back_every_claimed_delivery() {
    let i = TestInstance::start(Backend::Sqlite).await;
    let state = i.server.state.clone();
    let actor = {
        let mut conn = state.db.conn().unwrap();
        tocsin::db::actors::local_by_username(&mut conn, &state.config.actor.username)
            .unwrap()
            .unwrap()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_host = listener.local_addr().unwrap().to_string();
    let sink = tocsin::delivery::sink::Sink::start(
        vec![listener],
        &[(actor.public_key_id.clone(), actor.public_key_pem.clone())],
        std::time::Duration::from_millis(20),
        1,
    )
    .unwrap();
    {
        let mut conn = state.db.conn().unwrap();
        seed_followers(&mut conn, actor.id, &inboxes(&sink_host, 300)).unwrap();
        enqueue_for_followers(&mut conn, actor.id, &create_note(&i.base(), &actor.ap_id)).unwrap();
    }
    state.delivery_wakeup.notify_one();
    let started = crate::common::eventually(std::time::Duration::from_secs(30), || async {
        sink.distinct_deliveries() >= 30
    })
    .await;
    assert!(started);
    i.stop().await;

    let mut conn = state.db.conn().unwrap();
    let stats = deliveries::queue_stats(&mut conn).unwrap();
    assert_eq!(
        stats.in_flight, 0,
        "nothing stays leased after a graceful stop"
    );
    let leased: i64 = deliveries_table::table
        .filter(deliveries_table::locked_until.is_not_null())
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(leased, 0);
    let done = deliveries::counts_by_state(&mut conn)
        .unwrap()
        .into_iter()
        .find(|(s, _)| s == deliveries::DONE)
        .map_or(0, |(_, n)| n);
    assert_eq!(
        done as u64,
        sink.distinct_deliveries(),
        "every delivery the sink accepted was recorded as done"
    );
    assert_eq!(done + stats.pending, 300);
    sink.stop().await;
}

async fn host_failures_from_many_writers_all_count(backend: Backend) {
    let db = TestDb::open(backend).await;
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let pool = db.state.db.clone();
            std::thread::spawn(move || {
                let mut conn = pool.conn().unwrap();
                for _ in 0..25 {
                    deliveries::host_failed(&mut conn, "flaky.example", 1000, 0).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut conn = db.state.db.conn().unwrap();
    let hosts = deliveries::failing_hosts(&mut conn).unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].consecutive_failures, 100);
    assert_eq!(hosts[0].down_until, None, "below the threshold");
    deliveries::host_succeeded(&mut conn, "flaky.example").unwrap();
    assert!(deliveries::failing_hosts(&mut conn).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_failures_from_many_writers_all_count_sqlite() {
    host_failures_from_many_writers_all_count(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_failures_from_many_writers_all_count_postgres() {
    if postgres_available() {
        host_failures_from_many_writers_all_count(Backend::Postgres).await;
    }
}

/// Many requests from one new remote actor fetch and store it at once:
/// every store succeeds and there is one row (PostgreSQL's read committed
/// lets concurrent inserts collide; the loser updates instead).
async fn concurrent_stores_of_a_new_actor_all_succeed(backend: Backend) {
    let db = TestDb::open(backend).await;
    for round in 0..5 {
        let ap_id = format!("https://new.example/users/u{round}");
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let pool = db.state.db.clone();
                let ap_id = ap_id.clone();
                std::thread::spawn(move || {
                    let mut conn = pool.conn().unwrap();
                    tocsin::db::actors::upsert(
                        &mut conn,
                        &tocsin::db::actors::NewActor::remote_person(
                            &ap_id,
                            "u",
                            "new.example",
                            &format!("{ap_id}/inbox"),
                            "",
                        ),
                    )
                    .map(|row| row.id)
                })
            })
            .collect();
        let ids: Vec<i64> = writers
            .into_iter()
            .map(|w| w.join().unwrap().expect("every store succeeds"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one row: {ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_stores_of_a_new_actor_all_succeed_sqlite() {
    concurrent_stores_of_a_new_actor_all_succeed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_stores_of_a_new_actor_all_succeed_postgres() {
    if postgres_available() {
        concurrent_stores_of_a_new_actor_all_succeed(Backend::Postgres).await;
    }
}
