//! CPU time by kind of thread over a measured part, read from Linux's
//! `/proc/self/task/*/schedstat` (nanoseconds each thread has run): where
//! an inbox run's time went, without a profiler, in every run.

use std::{collections::HashMap, time::Duration};

/// The kinds of thread an inbox run has, as printed, in this order, each
/// with the name its threads start with; any other thread is [`OTHER`].
const KINDS: [(&str, &str); 4] = [
    ("actix-server worker", "HTTP workers"),
    (
        tocsin::federation::inbox_writer::THREAD_NAME,
        "inbox writer",
    ),
    (tocsin::db::checkpoints::THREAD_NAME, "WAL checkpoints"),
    (BENCH_RUNTIME_THREAD, "client and background tasks"),
];

/// The kind of the threads no other kind names.
const OTHER: &str = "other";

/// The name the bench gives its own runtime's threads, which run the
/// posting client and the server's background tasks (curation, queues).
pub const BENCH_RUNTIME_THREAD: &str = "tocsin-bench-rt";

/// Each live thread's CPU time so far, by thread id, with its name.
pub struct Snapshot(HashMap<u64, (String, Duration)>);

impl Snapshot {
    /// Reads every thread of this process; empty where Linux has no
    /// `schedstat` (the line is then left out).
    pub fn now() -> Snapshot {
        let mut threads = HashMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Snapshot(threads);
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let ran = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
            if let Some(ns) = ran {
                threads.insert(tid, (name.trim().to_string(), Duration::from_nanos(ns)));
            }
        }
        Snapshot(threads)
    }

    /// CPU time by kind between `self` and `later`, in [`KINDS`] order,
    /// then [`OTHER`].
    /// A thread that ended in between is not counted.
    pub fn until(&self, later: &Snapshot) -> Vec<(&'static str, Duration)> {
        let mut by_kind = [Duration::ZERO; KINDS.len() + 1];
        for (tid, (name, ran)) in &later.0 {
            let before = self.0.get(tid).map_or(Duration::ZERO, |(_, d)| *d);
            by_kind[kind(name)] += ran.saturating_sub(before);
        }
        let labels = KINDS.iter().map(|(_, label)| *label).chain([OTHER]);
        labels.zip(by_kind).collect()
    }
}

/// The index in [`KINDS`] of a thread named `name`, or `KINDS.len()` for
/// [`OTHER`]. Linux keeps a thread's name to its first 15 bytes.
fn kind(name: &str) -> usize {
    KINDS
        .iter()
        .position(|(start, _)| name.starts_with(&start[..start.len().min(15)]))
        .unwrap_or(KINDS.len())
}

/// One line: each kind's CPU time per activity, and how many of the cores
/// were busy on average over `elapsed`.
pub fn describe(
    by_kind: &[(&'static str, Duration)],
    activities: usize,
    elapsed: Duration,
) -> Option<String> {
    let total: Duration = by_kind.iter().map(|(_, d)| *d).sum();
    if total.is_zero() || activities == 0 || elapsed.is_zero() {
        return None;
    }
    let parts: Vec<String> = by_kind
        .iter()
        .map(|(kind, d)| format!("{kind} {:.0}", d.as_secs_f64() * 1e6 / activities as f64))
        .collect();
    Some(format!(
        "{} µs per activity; {:.2} of {} cores busy",
        parts.join(", "),
        total.as_secs_f64() / elapsed.as_secs_f64(),
        super::cores(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_sorted_by_their_names() {
        assert_eq!(kind("actix-server wo"), 0);
        assert_eq!(kind("tocsin-inbox-wr"), 1);
        assert_eq!(kind("tocsin-checkpoi"), 2);
        assert_eq!(kind(BENCH_RUNTIME_THREAD), 3);
        assert_eq!(kind("tokio-rt-worker"), 4);
    }

    #[test]
    fn a_busy_thread_shows_its_time_and_an_ended_one_none() {
        let before = Snapshot(HashMap::from([
            (
                1,
                ("actix-server wo".to_string(), Duration::from_millis(10)),
            ),
            (2, ("tocsin-inbox-wr".to_string(), Duration::from_millis(5))),
            (3, ("tokio-rt-worker".to_string(), Duration::from_millis(7))),
        ]));
        let after = Snapshot(HashMap::from([
            (
                1,
                ("actix-server wo".to_string(), Duration::from_millis(30)),
            ),
            (
                2,
                ("tocsin-inbox-wr".to_string(), Duration::from_millis(15)),
            ),
            (
                4,
                (BENCH_RUNTIME_THREAD.to_string(), Duration::from_millis(4)),
            ),
        ]));
        let by_kind = before.until(&after);
        assert_eq!(
            by_kind,
            vec![
                ("HTTP workers", Duration::from_millis(20)),
                ("inbox writer", Duration::from_millis(10)),
                ("WAL checkpoints", Duration::ZERO),
                ("client and background tasks", Duration::from_millis(4)),
                ("other", Duration::ZERO),
            ]
        );
        let line = describe(&by_kind, 1000, Duration::from_millis(34)).unwrap();
        assert!(
            line.starts_with("HTTP workers 20, inbox writer 10, WAL checkpoints 0, client and background tasks 4, other 0 µs per activity; 1.00 of "),
            "{line}"
        );
    }

    /// This thread's CPU time by its own clock, which schedstat must agree
    /// with.
    fn thread_cpu_time() -> Duration {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid timespec for the call to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }

    #[test]
    fn this_thread_is_seen_running() {
        let before = Snapshot::now();
        // 30 ms of this thread's CPU, however busy the machine is (a wall
        // clock's 30 ms may hold a third of that under a parallel build).
        let start = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time() - start < Duration::from_millis(30) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let after = Snapshot::now();
        if before.0.is_empty() {
            return; // no schedstat here: nothing to check
        }
        let total: Duration = before.until(&after).iter().map(|(_, d)| *d).sum();
        assert!(total >= Duration::from_millis(20), "{total:?} ({x})");
    }
}
