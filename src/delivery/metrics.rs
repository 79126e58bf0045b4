//! Delivery metrics for operators: counters and histograms kept in memory
//! by the worker, queue gauges read from the database at scrape time, all
//! served as Prometheus text at `GET /metrics`.

use crate::{
    db::deliveries::{self, QueueStats},
    error::Error,
    state::Data,
};
use actix_web::{web as aw, HttpResponse};
use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// How an attempt ended, as counted in `tocsin_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// 2xx.
    Delivered,
    /// Will be tried again.
    Retried,
    /// Given up: permanent 4xx or retries exhausted.
    Failed,
    /// 410: the inbox is gone.
    Gone,
}

impl Counted {
    const ALL: [Counted; 4] = [
        Counted::Delivered,
        Counted::Retried,
        Counted::Failed,
        Counted::Gone,
    ];

    fn label(self) -> &'static str {
        match self {
            Counted::Delivered => "delivered",
            Counted::Retried => "retried",
            Counted::Failed => "failed",
            Counted::Gone => "gone",
        }
    }
}

/// A Prometheus histogram with fixed buckets (seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Adds one observation.
    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

const ATTEMPT_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const QUEUE_BOUNDS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0, 604800.0,
];

/// What the delivery worker of this process has done since it started.
#[derive(Debug)]
pub struct DeliveryMetrics {
    outcomes: [AtomicU64; 4],
    /// Time of one HTTP attempt (signing included).
    pub attempt_seconds: Histogram,
    /// Time from storing an activity to its successful delivery.
    pub queue_seconds: Histogram,
}

impl Default for DeliveryMetrics {
    fn default() -> Self {
        DeliveryMetrics {
            outcomes: Default::default(),
            attempt_seconds: Histogram::new(ATTEMPT_BOUNDS),
            queue_seconds: Histogram::new(QUEUE_BOUNDS),
        }
    }
}

impl DeliveryMetrics {
    /// Counts one attempt's outcome.
    pub fn count(&self, outcome: Counted) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Attempts that ended with `outcome` so far.
    pub fn outcomes(&self, outcome: Counted) -> u64 {
        self.outcomes[outcome as usize].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of these metrics plus the queue gauges.
    pub fn render(&self, queue: &QueueStats, hosts_down: usize, now_ms: i64) -> String {
        let mut out = String::with_capacity(4096);
        let gauges = [
            (
                "tocsin_delivery_queue_pending",
                "Deliveries waiting, due or in flight.",
                queue.pending,
            ),
            (
                "tocsin_delivery_queue_due",
                "Deliveries due now and not claimed by a worker.",
                queue.due,
            ),
            (
                "tocsin_delivery_queue_in_flight",
                "Deliveries claimed by a worker (leased).",
                queue.in_flight,
            ),
            (
                "tocsin_delivery_hosts_down",
                "Remote hosts marked down, skipped until a probe succeeds.",
                hosts_down as i64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let oldest = queue
            .oldest_pending_at
            .map_or(0.0, |at| (now_ms - at).max(0) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "# HELP tocsin_delivery_oldest_pending_seconds Age of the oldest pending delivery (0 when none).\n\
             # TYPE tocsin_delivery_oldest_pending_seconds gauge\n\
             tocsin_delivery_oldest_pending_seconds {oldest}"
        );
        let _ = writeln!(
            out,
            "# HELP tocsin_deliveries_total Delivery attempts by outcome, in this process.\n\
             # TYPE tocsin_deliveries_total counter"
        );
        for outcome in Counted::ALL {
            let _ = writeln!(
                out,
                "tocsin_deliveries_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                self.outcomes(outcome)
            );
        }
        self.attempt_seconds.render(
            &mut out,
            "tocsin_delivery_attempt_seconds",
            "Duration of one delivery attempt (sign and POST).",
        );
        self.queue_seconds.render(
            &mut out,
            "tocsin_delivery_latency_seconds",
            "Time from storing an activity to its delivery to one inbox.",
        );
        out
    }
}

/// `GET /metrics`.
pub fn configure(cfg: &mut aw::ServiceConfig) {
    cfg.route("/metrics", aw::get().to(metrics));
}

async fn metrics(data: Data) -> Result<HttpResponse, Error> {
    let (queue, down) = data
        .db
        .run(|conn| {
            Ok((
                deliveries::queue_stats(conn)?,
                deliveries::hosts_down(conn)?.len(),
            ))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(
            data.delivery_metrics
                .render(&queue, down, crate::db::now_ms()),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(5));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
        assert!(out.contains("x_sum 5.55\n"), "{out}");
    }

    #[test]
    fn exposition_names_every_series() {
        let m = DeliveryMetrics::default();
        m.count(Counted::Delivered);
        m.count(Counted::Delivered);
        m.count(Counted::Gone);
        let queue = QueueStats {
            pending: 7,
            due: 3,
            in_flight: 2,
            oldest_pending_at: Some(1_000),
        };
        let text = m.render(&queue, 1, 11_000);
        for line in [
            "tocsin_delivery_queue_pending 7",
            "tocsin_delivery_queue_due 3",
            "tocsin_delivery_queue_in_flight 2",
            "tocsin_delivery_hosts_down 1",
            "tocsin_delivery_oldest_pending_seconds 10",
            "tocsin_deliveries_total{outcome=\"delivered\"} 2",
            "tocsin_deliveries_total{outcome=\"gone\"} 1",
            "tocsin_deliveries_total{outcome=\"failed\"} 0",
            "# TYPE tocsin_delivery_attempt_seconds histogram",
            "# TYPE tocsin_delivery_latency_seconds histogram",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
