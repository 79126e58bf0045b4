//! Digest schedules (`[[digests]]`): at each due time the scheduler builds
//! one Digest issue of the period that ends then, and publishes it when the
//! schedule says so. A due time is claimed in `digest_runs` in the same
//! transaction as the build, so it is built once even with two processes
//! on one database; after a restart only the latest missed due time is
//! built. A schedule seen for the first time starts at its next due time.

use crate::{
    alerts::taxonomy::Taxonomy,
    config::{Config, DigestSchedule},
    db::{self, digest_runs, publications::EditError, DbConn, DbError},
    state::AppState,
};
use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};
use std::sync::Arc;
use tokio::sync::watch;

/// How often the scheduler looks at the clock.
const TICK: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the scheduler reads the time: the system clock, or a test's.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A checked schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Language of its issues.
    pub language: String,
    /// Days it runs, Monday first.
    pub days: Vec<Weekday>,
    /// Time of day, UTC.
    pub time: NaiveTime,
    /// Days an issue covers; 0: since the previous due time.
    pub period_days: u32,
    /// Publish at once.
    pub publish: bool,
}

const DAY_NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

impl Plan {
    /// Checks a `[[digests]]` entry; the error says what is wrong.
    pub fn parse(s: &DigestSchedule) -> Result<Plan, String> {
        if s.language.is_empty()
            || !s
                .language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!("language {:?} is not a language tag", s.language));
        }
        if s.days.is_empty() {
            return Err("days must name at least one day (mon … sun)".into());
        }
        let mut days = Vec::new();
        for day in &s.days {
            let wanted = day.to_ascii_lowercase();
            let Some((_, weekday)) = DAY_NAMES.iter().find(|(name, _)| *name == wanted) else {
                return Err(format!("day {day:?} is not one of mon … sun"));
            };
            if !days.contains(weekday) {
                days.push(*weekday);
            }
        }
        days.sort_by_key(Weekday::num_days_from_monday);
        let time = NaiveTime::parse_from_str(&s.time, "%H:%M")
            .map_err(|_| format!("time {:?} is not HH:MM", s.time))?;
        if s.period_days > 366 {
            return Err("period_days must be at most 366".into());
        }
        Ok(Plan {
            language: s.language.clone(),
            days,
            time,
            period_days: s.period_days,
            publish: s.publish,
        })
    }

    /// The key of the schedule's runs in `digest_runs`: what it builds and
    /// when, so an edited schedule starts afresh.
    pub fn key(&self) -> String {
        let days: Vec<&str> = self
            .days
            .iter()
            .map(|d| DAY_NAMES[d.num_days_from_monday() as usize].0)
            .collect();
        format!(
            "digest/{}/{}/{}",
            self.language,
            days.join(","),
            self.time.format("%H:%M")
        )
    }

    /// The latest due time at or before `now`.
    pub fn last_due(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        (0..=7)
            .map(|back| {
                (now.date_naive() - Duration::days(back))
                    .and_time(self.time)
                    .and_utc()
            })
            .find(|due| *due <= now && self.days.contains(&due.weekday()))
            .expect("a weekly schedule is due once in any eight days")
    }

    /// The first due time after `now`.
    pub fn next_due(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        (0..=7)
            .map(|ahead| {
                (now.date_naive() + Duration::days(ahead))
                    .and_time(self.time)
                    .and_utc()
            })
            .find(|due| *due > now && self.days.contains(&due.weekday()))
            .expect("a weekly schedule is due once in any eight days")
    }

    /// The due time before `due`.
    pub fn previous_due(&self, due: DateTime<Utc>) -> DateTime<Utc> {
        self.last_due(due - Duration::milliseconds(1))
    }

    /// The period `[start, end)` of the issue due at `due`, in ms.
    pub fn period(&self, due: DateTime<Utc>) -> (i64, i64) {
        let start = match self.period_days {
            0 => self.previous_due(due),
            days => due - Duration::days(i64::from(days)),
        };
        (start.timestamp_millis(), due.timestamp_millis())
    }
}

/// A line per schedule of `config` for `tocsin digest status`: its key,
/// the latest due time handled (and how) and the next due time.
pub fn status(
    conn: &mut DbConn,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<String>, DbError> {
    let mut lines = Vec::new();
    for schedule in &config.digests {
        let Ok(plan) = Plan::parse(schedule) else {
            continue;
        };
        let key = plan.key();
        let last = match digest_runs::latest(conn, &key)? {
            Some(run) => {
                let when = DateTime::from_timestamp_millis(run.due_at).unwrap_or_default();
                let issue = run
                    .issue_id
                    .map(|i| format!(" issue {i}"))
                    .unwrap_or_default();
                format!("{} {}{issue}", when.format("%Y-%m-%d %H:%M"), run.state)
            }
            None => "never".into(),
        };
        lines.push(format!(
            "{key}\tpublish={}\tlast: {last}\tnext: {}",
            plan.publish,
            plan.next_due(now).format("%Y-%m-%d %H:%M UTC")
        ));
    }
    Ok(lines)
}

/// What one tick did for one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not due: its latest due time was handled already.
    Waiting,
    /// First sight of the schedule: its latest due time was recorded and
    /// the first issue comes at the next one.
    Started,
    /// A draft issue was built.
    Built(i64),
    /// An issue was built and published.
    Published(i64),
}

/// Handles every schedule of `config` at time `now`: builds the issue of a
/// due time not handled yet. Each schedule is one transaction.
pub fn tick(
    conn: &mut DbConn,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>, DbError> {
    let base_url = config.base_url();
    let mut outcomes = Vec::new();
    if config.digests.is_empty() {
        return Ok(outcomes);
    }
    let taxonomy = Taxonomy::load(&config.alerts.taxonomy_file).map_err(DbError::Task)?;
    for schedule in &config.digests {
        // Validated at start; a bad entry is skipped, not fatal here.
        let Ok(plan) = Plan::parse(schedule) else {
            continue;
        };
        outcomes.push(db::transaction(conn, |conn| {
            run_due(conn, &plan, &base_url, &taxonomy, now)
        })?);
    }
    Ok(outcomes)
}

fn run_due(
    conn: &mut DbConn,
    plan: &Plan,
    base_url: &str,
    taxonomy: &Taxonomy,
    now: DateTime<Utc>,
) -> Result<Outcome, DbError> {
    let key = plan.key();
    let due = plan.last_due(now);
    let due_ms = due.timestamp_millis();
    match digest_runs::latest(conn, &key)? {
        None => {
            digest_runs::claim(conn, &key, due_ms, digest_runs::BASELINE)?;
            return Ok(Outcome::Started);
        }
        // Handled, or the clock went back.
        Some(last) if last.due_at >= due_ms => return Ok(Outcome::Waiting),
        Some(_) => {}
    }
    if !digest_runs::claim(conn, &key, due_ms, digest_runs::BUILT)? {
        return Ok(Outcome::Waiting);
    }
    let (start, end) = plan.period(due);
    let issue = super::digest::build(conn, &plan.language, start, end)?;
    if !plan.publish {
        digest_runs::finish(conn, &key, due_ms, digest_runs::BUILT, issue)?;
        tracing::info!(schedule = %key, issue, "scheduled Digest draft built");
        return Ok(Outcome::Built(issue));
    }
    super::publish(conn, base_url, taxonomy, issue).map_err(|e| match e {
        EditError::Db(e) => e,
        other => DbError::Task(other.to_string()),
    })?;
    digest_runs::finish(conn, &key, due_ms, digest_runs::PUBLISHED, issue)?;
    tracing::info!(schedule = %key, issue, "scheduled Digest built and published");
    Ok(Outcome::Published(issue))
}

/// The scheduler task of `tocsin serve`: a tick now and every 30 seconds
/// until `shutdown`. Does nothing without `[[digests]]`.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>, clock: Arc<dyn Clock>) {
    if state.config.digests.is_empty() {
        return;
    }
    loop {
        let now = clock.now();
        let config = state.config.clone();
        match state.db.run(move |conn| tick(conn, &config, now)).await {
            Ok(outcomes) => {
                if outcomes.iter().any(|o| matches!(o, Outcome::Published(_))) {
                    state.delivery_wakeup.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %e, "Digest scheduler tick failed; trying again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn plan(days: &[&str], time: &str, period_days: u32) -> Plan {
        Plan::parse(&DigestSchedule {
            language: "en".into(),
            days: days.iter().map(|d| d.to_string()).collect(),
            time: time.into(),
            period_days,
            publish: false,
        })
        .expect("valid schedule")
    }

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        // December 2026: the 7th is a Monday, the 10th a Thursday.
        Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap()
    }

    #[test]
    fn last_due_is_the_latest_slot_not_after_now() {
        let p = plan(&["thu", "mon"], "09:00", 0);
        assert_eq!(p.last_due(at(7, 9, 0)), at(7, 9, 0));
        assert_eq!(p.last_due(at(7, 8, 59)), at(3, 9, 0));
        assert_eq!(p.last_due(at(9, 23, 0)), at(7, 9, 0));
        assert_eq!(p.last_due(at(13, 12, 0)), at(10, 9, 0));
        assert_eq!(p.previous_due(at(10, 9, 0)), at(7, 9, 0));
        assert_eq!(p.next_due(at(7, 9, 0)), at(10, 9, 0));
        assert_eq!(p.next_due(at(7, 8, 59)), at(7, 9, 0));
        assert_eq!(p.next_due(at(11, 0, 0)), at(14, 9, 0));
        assert_eq!(p.key(), "digest/en/mon,thu/09:00");
    }

    #[test]
    fn the_period_runs_from_the_previous_due_time_or_back_period_days() {
        let p = plan(&["mon", "thu"], "09:00", 0);
        assert_eq!(
            p.period(at(10, 9, 0)),
            (
                at(7, 9, 0).timestamp_millis(),
                at(10, 9, 0).timestamp_millis()
            )
        );
        let week = plan(&["mon"], "06:30", 7);
        assert_eq!(
            week.period(at(14, 6, 30)),
            (
                at(7, 6, 30).timestamp_millis(),
                at(14, 6, 30).timestamp_millis()
            )
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_a_reason() {
        let base = DigestSchedule::default();
        for (bad, word) in [
            (
                DigestSchedule {
                    days: vec![],
                    ..base.clone()
                },
                "days",
            ),
            (
                DigestSchedule {
                    days: vec!["monday".into()],
                    ..base.clone()
                },
                "day",
            ),
            (
                DigestSchedule {
                    time: "9".into(),
                    ..base.clone()
                },
                "time",
            ),
            (
                DigestSchedule {
                    time: "25:00".into(),
                    ..base.clone()
                },
                "time",
            ),
            (
                DigestSchedule {
                    language: "".into(),
                    ..base.clone()
                },
                "language",
            ),
            (
                DigestSchedule {
                    period_days: 400,
                    ..base.clone()
                },
                "period_days",
            ),
        ] {
            let err = Plan::parse(&bad).unwrap_err();
            assert!(err.contains(word), "{err}");
        }
        let config = Config {
            digests: vec![DigestSchedule {
                time: "noon".into(),
                ..base
            }],
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("digests"), "{err}");
    }
}
