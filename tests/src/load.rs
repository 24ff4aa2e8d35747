//! The load generator's engine: what to send, when, and what came back.
//!
//! Open loop: request `i` is due at `start + i / rate`, whether or not earlier answers have
//! arrived, and its latency counts from that due time. A server that stalls therefore shows
//! the stall in every request that waited behind it, instead of quietly slowing the sender
//! (coordinated omission). Without a rate, each connection sends back to back (closed loop),
//! which measures the best case.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sample::{Rng, Sampler};
use crate::Client;

mod send;
mod verify;

use send::{Outcome, Sender};
pub use verify::{
    branch_decisions, counted_decisions, family_sum, gauge, metric, verify, wait_until_settled,
    Verification,
};

/// What the generator posts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `POST /api/v1/score`, one application per request.
    Score,
    /// `POST /api/v1/events`, a batch of decision events per request.
    Events,
    /// `POST /api/v1/score/batch`, a batch of applications per request.
    Batch,
    /// `GET /api/v1/kpis?window=5m` with the officers' token.
    Kpis,
    Healthz,
    /// A route that does not exist: the worker's smallest answer (no I/O).
    Floor,
}

impl Target {
    pub fn parse(text: &str) -> Option<Target> {
        Some(match text {
            "score" => Target::Score,
            "events" => Target::Events,
            "batch" => Target::Batch,
            "kpis" => Target::Kpis,
            "healthz" => Target::Healthz,
            "floor" => Target::Floor,
            _ => return None,
        })
    }
}

/// Everything a run needs to know.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub target: Target,
    /// Requests per second (open loop); `None` sends back to back on each connection.
    pub rate: Option<f64>,
    pub connections: usize,
    /// Stop after this many requests …
    pub count: Option<u64>,
    /// … or after this long, whichever comes first.
    pub duration: Option<Duration>,
    /// Events (or applications) per request for [`Target::Events`] ([`Target::Batch`]).
    pub batch: usize,
    /// Shares (0..=1) of invalid applications, repeated ids and late events.
    pub invalid: f64,
    pub duplicate: f64,
    pub late: f64,
    pub late_hours: f64,
    /// Distinct client addresses to spread requests over (`cf-connecting-ip`, as many
    /// devices would); the worker rate-limits per client.
    pub clients: usize,
    pub seed: u64,
    pub branch: Option<String>,
    pub base_url: String,
}

/// Requests and records by fate; the report shows them as they are.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub sent: u64,
    pub records: u64,
    pub accepted_records: u64,
    pub replayed: u64,
    pub rejected_by_code: BTreeMap<String, u64>,
    pub transport_errors: u64,
    /// Requests the runtime failed (a plain 5xx, not Valle's answer) and that were sent
    /// once more with the same idempotency key.
    pub runtime_retries: u64,
}

/// What the run saw, for the final table, `--json`, and verification.
#[derive(Debug, Default)]
pub struct Tally {
    pub counts: Counts,
    pub latencies_ms: Vec<f64>,
    /// Distinct ids the server accepted, and which of them carried an invalid application.
    pub accepted_ids: BTreeSet<String>,
    pub accepted_invalid_ids: BTreeSet<String>,
    /// Ids sent in requests that got no answer (the server died, the connection broke).
    pub unanswered_ids: BTreeSet<String>,
    /// Each request's due time (seconds from the start) and latency, for per-minute figures.
    pub timeline: Vec<(f64, f64)>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        let counts = &mut self.counts;
        counts.sent += 1;
        counts.records += outcome.records;
        counts.accepted_records += outcome.accepted;
        counts.replayed += outcome.replayed;
        for code in outcome.rejected {
            *counts.rejected_by_code.entry(code).or_default() += 1;
        }
        counts.transport_errors += u64::from(outcome.transport_error);
        counts.runtime_retries += outcome.runtime_retries;
        let latency_ms = outcome.latency.as_secs_f64() * 1_000.0;
        self.latencies_ms.push(latency_ms);
        self.timeline.push((outcome.due_s, latency_ms));
        self.accepted_ids.extend(outcome.accepted_ids);
        self.accepted_invalid_ids.extend(outcome.accepted_invalid);
        self.unanswered_ids.extend(outcome.unanswered_ids);
    }
}

/// The ids of a run, written by `loadgen --ids-out` so a later check (after a crash and a
/// restart, say) can verify what the server stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct RunIds {
    pub branch: String,
    pub accepted: BTreeSet<String>,
    pub accepted_invalid: BTreeSet<String>,
    pub unanswered: BTreeSet<String>,
}

impl RunIds {
    pub fn of(branch: &str, tally: &Tally) -> RunIds {
        RunIds {
            branch: branch.to_owned(),
            accepted: tally.accepted_ids.clone(),
            accepted_invalid: tally.accepted_invalid_ids.clone(),
            unanswered: tally.unanswered_ids.clone(),
        }
    }

    /// A tally holding only these ids, for [`verify`].
    pub fn tally(&self) -> Tally {
        Tally {
            accepted_ids: self.accepted.clone(),
            accepted_invalid_ids: self.accepted_invalid.clone(),
            unanswered_ids: self.unanswered.clone(),
            ..Tally::default()
        }
    }
}

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(latencies_ms: &[f64]) -> Percentiles {
        let mut sorted = latencies_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if sorted.is_empty() {
                return 0.0;
            }
            let rank = (q * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        };
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The final report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub plan: Plan,
    pub interrupted: bool,
    pub seconds: f64,
    #[serde(flatten)]
    pub counts: Counts,
    pub latency_ms: Percentiles,
    pub achieved_rate: f64,
    /// Latency by minute of the run (by due time), to see whether it drifts.
    pub per_minute: Vec<Minute>,
    pub verification: Option<Verification>,
    /// How long after the load the server's inbox held no event waiting for its outcome
    /// (`--settle-timeout`); none if it never emptied in time.
    pub settled_after_s: Option<f64>,
    /// The KPI object's storage rows at the end (`--settle-timeout`).
    pub kpi_object_rows: Option<f64>,
    /// Every decision the KPI object has counted on the server, once the count stopped
    /// moving (`--settle-timeout`): with the run's, those of earlier runs on the server.
    pub kpi_decisions_counted: Option<f64>,
    /// The loan outcomes posted afterwards (`--outcomes`).
    pub outcomes: Option<crate::outcomes::OutcomeRun>,
}

/// One minute of a run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Minute {
    pub minute: u64,
    pub requests: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Groups `(due seconds, latency)` pairs by minute.
pub fn per_minute(timeline: &[(f64, f64)]) -> Vec<Minute> {
    let mut minutes: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for (due_s, latency_ms) in timeline {
        minutes
            .entry((due_s.max(0.0) / 60.0) as u64)
            .or_default()
            .push(*latency_ms);
    }
    minutes
        .into_iter()
        .map(|(minute, latencies)| {
            let p = Percentiles::of(&latencies);
            Minute {
                minute,
                requests: latencies.len() as u64,
                p50: p.p50,
                p99: p.p99,
                max: p.max,
            }
        })
        .collect()
}

impl Report {
    pub fn new(plan: &Plan, tally: &Tally, seconds: f64, interrupted: bool) -> Report {
        Report {
            plan: plan.clone(),
            interrupted,
            seconds,
            counts: tally.counts.clone(),
            latency_ms: Percentiles::of(&tally.latencies_ms),
            achieved_rate: tally.counts.sent as f64 / seconds.max(1e-9),
            per_minute: per_minute(&tally.timeline),
            verification: None,
            settled_after_s: None,
            kpi_object_rows: None,
            kpi_decisions_counted: None,
            outcomes: None,
        }
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("target", format!("{:?}", self.plan.target).to_lowercase()),
            (
                "rate",
                self.plan.rate.map_or_else(
                    || format!("closed loop, {} connections", self.plan.connections),
                    |rate| {
                        format!(
                            "{rate} req/s open loop, ≤ {} in flight",
                            self.plan.connections
                        )
                    },
                ),
            ),
            (
                "duration",
                format!(
                    "{:.1} s{}",
                    self.seconds,
                    if self.interrupted {
                        " (interrupted)"
                    } else {
                        ""
                    }
                ),
            ),
            (
                "sent",
                format!(
                    "{} requests, {} records",
                    self.counts.sent, self.counts.records
                ),
            ),
            (
                "accepted",
                format!(
                    "{} records ({} replayed)",
                    self.counts.accepted_records, self.counts.replayed
                ),
            ),
        ];
        let rejected: u64 = self.counts.rejected_by_code.values().sum();
        rows.push(("rejected", format!("{rejected} records")));
        for (code, count) in &self.counts.rejected_by_code {
            rows.push(("", format!("{code:<22} {count}")));
        }
        rows.push(("transport errors", self.counts.transport_errors.to_string()));
        rows.push(("runtime retries", self.counts.runtime_retries.to_string()));
        let l = self.latency_ms;
        rows.push((
            "latency",
            format!(
                "p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                l.p50, l.p95, l.p99, l.max
            ),
        ));
        rows.push(("achieved rate", format!("{:.1} req/s", self.achieved_rate)));
        if self.per_minute.len() > 1 {
            let p99s: Vec<String> = self
                .per_minute
                .iter()
                .map(|minute| format!("{:.1}", minute.p99))
                .collect();
            rows.push(("p99 by minute", format!("{} ms", p99s.join(" / "))));
        }
        if let Some(verification) = &self.verification {
            rows.push(("verified", verification.summary()));
        }
        if let Some(settled) = self.settled_after_s {
            rows.push(("inbox empty", format!("{settled:.1} s after the load")));
        }
        if let Some(rows_held) = self.kpi_object_rows {
            rows.push(("KPI object rows", format!("{rows_held}")));
        }
        rows.iter()
            .map(|(name, value)| format!("{name:<17} {value}\n"))
            .collect()
    }
}

/// Signals and progress shared with the sender threads.
#[derive(Default)]
pub struct Control {
    pub stop: AtomicBool,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
}

/// Runs the plan; returns what happened and how long it took. `control.stop` ends the run
/// early (Ctrl-C); requests already in flight finish and are counted.
pub fn run(plan: &Plan, sampler: &Sampler, auth: &str, control: &Control) -> (Tally, f64) {
    let tally = Mutex::new(Tally::default());
    // Ids already sent, so a share of later requests can repeat one (a client retry).
    let sent_records: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let limit = plan.count.unwrap_or(u64::MAX);
    let connections = plan.connections.max(1);
    std::thread::scope(|scope| {
        // Connection `c` sends requests c, c + connections, …: which applications a run
        // sends depends on the seed alone, not on which thread the scheduler ran first.
        for connection in 0..connections {
            let (tally, sent_records) = (&tally, &sent_records);
            scope.spawn(move || {
                let client = Client::unchecked(&plan.base_url);
                let sender = Sender {
                    plan,
                    sampler,
                    auth,
                    client: &client,
                    sent_records,
                };
                let mut rng = Rng::new(plan.seed ^ (connection as u64).wrapping_mul(0x9E37));
                let mut i = connection;
                loop {
                    if control.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if i as u64 >= limit {
                        break;
                    }
                    let due = match plan.rate {
                        Some(rate) => started + Duration::from_secs_f64(i as f64 / rate),
                        None => Instant::now(),
                    };
                    if plan
                        .duration
                        .is_some_and(|d| due.duration_since(started) >= d)
                    {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let mut outcome = sender.send(&mut rng, i, due);
                    outcome.due_s = due.saturating_duration_since(started).as_secs_f64();
                    control.sent.fetch_add(1, Ordering::Relaxed);
                    if outcome.transport_error || !outcome.rejected.is_empty() {
                        control.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Ok(mut tally) = tally.lock() {
                        tally.add(outcome);
                    }
                    i += connections;
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    (tally.into_inner().unwrap_or_default(), seconds)
}

#[cfg(test)]
mod tests {
    use super::send::client_ip;
    use super::*;
    use valle_shared::contract::codes::ErrorCode;

    #[test]
    fn each_branch_has_its_own_client_addresses() {
        let plan = |branch: &str| Plan {
            branch: Some(branch.to_owned()),
            clients: 300,
            ..test_plan()
        };
        let (a, b) = (plan("lg-score-1"), plan("lg-events-2"));
        assert_eq!(
            client_ip(&a, 0),
            client_ip(&a, 300),
            "addresses cycle per run"
        );
        assert_ne!(client_ip(&a, 0), client_ip(&a, 1));
        assert_eq!(client_ip(&a, 260).split('.').nth(2), Some("1"));
        let range = |ip: String| ip.split('.').nth(1).map(str::to_owned);
        assert_ne!(range(client_ip(&a, 0)), range(client_ip(&b, 0)));
        assert!(client_ip(&a, 299).starts_with("10."));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let latencies: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&latencies);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
        assert_eq!(Percentiles::of(&[7.0]).p99, 7.0);
    }

    #[test]
    fn tallies_count_codes_and_ids_once() {
        let mut tally = Tally::default();
        tally.add(Outcome {
            latency: Duration::from_millis(5),
            records: 3,
            accepted: 2,
            accepted_ids: vec!["a".into(), "b".into()],
            accepted_invalid: vec!["b".into()],
            rejected: vec![ErrorCode::EventId.as_str().into()],
            ..Outcome::default()
        });
        tally.add(Outcome {
            latency: Duration::from_millis(9),
            records: 1,
            accepted: 1,
            accepted_ids: vec!["a".into()],
            replayed: 1,
            ..Outcome::default()
        });
        assert_eq!(
            (
                tally.counts.sent,
                tally.counts.records,
                tally.counts.accepted_records
            ),
            (2, 4, 3)
        );
        assert_eq!(tally.accepted_ids.len(), 2);
        assert_eq!(
            tally.counts.rejected_by_code[ErrorCode::EventId.as_str()],
            1
        );
        assert_eq!(tally.counts.replayed, 1);
    }

    #[test]
    fn latencies_are_grouped_by_minute_of_due_time() {
        let timeline: Vec<(f64, f64)> = (0..150).map(|s| (s as f64, (s % 60) as f64)).collect();
        let minutes = per_minute(&timeline);
        assert_eq!(
            minutes
                .iter()
                .map(|m| (m.minute, m.requests))
                .collect::<Vec<_>>(),
            [(0, 60), (1, 60), (2, 30)]
        );
        assert_eq!((minutes[0].p50, minutes[0].max), (29.0, 59.0));
        assert_eq!(minutes[2].p99, 29.0);
        assert!(per_minute(&[]).is_empty());
    }

    #[test]
    fn run_ids_round_trip_into_a_tally() {
        let mut tally = Tally::default();
        tally.add(Outcome {
            accepted_ids: vec!["a".into(), "b".into()],
            accepted_invalid: vec!["b".into()],
            ..Outcome::default()
        });
        tally.add(Outcome {
            transport_error: true,
            unanswered_ids: vec!["c".into(), "d".into()],
            ..Outcome::default()
        });
        let ids = RunIds::of("fault", &tally);
        let json = serde_json::to_string(&ids).expect("json");
        let back: RunIds = serde_json::from_str(&json).expect("back");
        assert_eq!(back, ids);
        let again = back.tally();
        assert_eq!(again.accepted_ids, tally.accepted_ids);
        assert_eq!(again.accepted_invalid_ids.len(), 1);
        assert_eq!(again.unanswered_ids.len(), 2);
    }

    fn test_plan() -> Plan {
        Plan {
            target: Target::Score,
            rate: None,
            connections: 1,
            count: None,
            duration: None,
            batch: 1,
            invalid: 0.0,
            duplicate: 0.0,
            late: 0.0,
            late_hours: 2.0,
            clients: 600,
            seed: 1,
            branch: None,
            base_url: String::new(),
        }
    }

    #[test]
    fn client_addresses_spread_and_stay_valid() {
        let plan = test_plan();
        let ips: BTreeSet<String> = (0..600).map(|i| client_ip(&plan, i)).collect();
        assert_eq!(ips.len(), 600);
        assert!(ips
            .iter()
            .all(|ip| ip.split('.').all(|part| part.parse::<u8>().is_ok())));
    }
}
