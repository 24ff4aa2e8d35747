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
use valle_shared::codes::ErrorCode;

use serde::Serialize;
use serde_json::{json, Value};

use crate::sample::{Rng, Sampler};
use crate::{random_uuid, Answer, Client};

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

/// One sent request's fate.
#[derive(Clone, Debug, Default)]
struct Outcome {
    latency: Duration,
    /// Records (applications or events) in the request, and how many the server took.
    records: u64,
    accepted: u64,
    accepted_ids: Vec<String>,
    /// Accepted records that should end as dead letters (invalid applications in events).
    accepted_invalid: Vec<String>,
    rejected: Vec<String>,
    replayed: u64,
    /// Sent again after the runtime (not Valle) failed it; see `Client::send_retrying`.
    runtime_retries: u64,
    transport_error: bool,
    /// Records sent in a request that got no answer: the server may or may not have them.
    unanswered_ids: Vec<String>,
    /// When the request was due, in seconds from the start of the run.
    due_s: f64,
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
                    let mut outcome =
                        send_one(plan, sampler, auth, &client, &mut rng, i, sent_records, due);
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

/// The address of request `i`'s client. Each branch (each run, by default) gets its own
/// range, so runs side by side never share a rate-limit bucket.
fn client_ip(plan: &Plan, i: usize) -> String {
    let client = i % plan.clients.max(1);
    // FNV-1a of the branch name picks the second octet.
    let range = plan.branch.as_deref().map_or(0, |branch| {
        branch
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            })
            % 200
    });
    format!("10.{}.{}.{}", 20 + range, client / 250, client % 250 + 1)
}

/// The error code of a refused answer: the body's `error.code`, else the status.
fn error_code(answer: &Answer) -> String {
    serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|body| body["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP_{}", answer.status))
}

#[allow(clippy::too_many_arguments)]
fn send_one(
    plan: &Plan,
    sampler: &Sampler,
    auth: &str,
    client: &Client,
    rng: &mut Rng,
    i: usize,
    sent_records: &Mutex<Vec<(String, String)>>,
    due: Instant,
) -> Outcome {
    let ip = client_ip(plan, i);
    // A record is (id, application text); a duplicate repeats an earlier one exactly.
    let draw = |rng: &mut Rng| -> (String, String, bool) {
        if rng.chance(plan.duplicate) {
            if let Ok(sent) = sent_records.lock() {
                if !sent.is_empty() {
                    let (id, application) = sent[rng.below(sent.len())].clone();
                    return (id, application, false);
                }
            }
        }
        let invalid = rng.chance(plan.invalid);
        let application = if invalid {
            sampler.invalid(rng)
        } else {
            sampler.valid(rng)
        };
        let id = random_uuid();
        if let Ok(mut sent) = sent_records.lock() {
            // Invalid records are not repeated: their fate is already a refusal.
            if !invalid && sent.len() < 100_000 {
                sent.push((id.clone(), application.clone()));
            }
        }
        (id, application, invalid)
    };
    let mut outcome = Outcome::default();
    let answer = match plan.target {
        Target::Score => {
            let (id, application, _) = draw(rng);
            outcome.records = 1;
            let headers = [
                ("content-type", "application/json"),
                ("x-request-id", id.as_str()),
                ("cf-connecting-ip", ip.as_str()),
            ];
            let (answer, retries) = client.send_retrying(
                "POST",
                "/api/v1/score",
                &headers,
                Some(application.as_bytes()),
            );
            outcome.runtime_retries += retries;
            if answer.is_err() {
                outcome.unanswered_ids.push(id.clone());
            }
            if let Ok(answer) = &answer {
                if answer.status == 200 {
                    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                    outcome.replayed += u64::from(body["replayed"].as_bool() == Some(true));
                    outcome.accepted += 1;
                    outcome.accepted_ids.push(id);
                } else {
                    outcome.rejected.push(error_code(answer));
                }
            }
            answer
        }
        Target::Events => {
            let now_ms = crate::now_ms();
            let mut invalid_ids = BTreeSet::new();
            let events: Vec<Value> = (0..plan.batch.max(1))
                .map(|_| {
                    let (id, application, invalid) = draw(rng);
                    if invalid {
                        invalid_ids.insert(id.clone());
                    }
                    let late = rng.chance(plan.late);
                    let offset_ms = if late {
                        (plan.late_hours * 3_600_000.0) as i64 + rng.below(60_000) as i64
                    } else {
                        rng.below(2_000) as i64
                    };
                    json!({
                        "event_id": id,
                        "event_time": valle_shared::time::format_rfc3339_ms(now_ms - offset_ms),
                        "application": serde_json::from_str::<Value>(&application).unwrap_or_default(),
                    })
                })
                .collect();
            outcome.records = events.len() as u64;
            let body = json!({ "events": events }).to_string();
            let headers = [
                ("content-type", "application/json"),
                ("cf-connecting-ip", ip.as_str()),
            ];
            let (answer, retries) =
                client.send_retrying("POST", "/api/v1/events", &headers, Some(body.as_bytes()));
            outcome.runtime_retries += retries;
            if answer.is_err() {
                outcome.unanswered_ids.extend(
                    events
                        .iter()
                        .filter_map(|event| event["event_id"].as_str().map(str::to_owned)),
                );
            }
            if let Ok(answer) = &answer {
                if answer.status == 202 {
                    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                    for ack in body["results"].as_array().into_iter().flatten() {
                        let id = ack["event_id"].as_str().unwrap_or_default().to_owned();
                        if ack["accepted"].as_bool() == Some(true) {
                            if invalid_ids.contains(&id) {
                                outcome.accepted_invalid.push(id.clone());
                            }
                            outcome.accepted += 1;
                            outcome.accepted_ids.push(id);
                        } else {
                            let code = ack["error"]["code"]
                                .as_str()
                                .unwrap_or(ErrorCode::Unexpected.as_str());
                            outcome.rejected.push(code.to_owned());
                        }
                    }
                } else {
                    let code = error_code(answer);
                    outcome
                        .rejected
                        .extend((0..events.len()).map(|_| code.clone()));
                }
            }
            answer
        }
        Target::Batch => {
            let request_id = random_uuid();
            let applications: Vec<Value> = (0..plan.batch.max(1))
                .map(|_| {
                    let (_, application, _) = draw(rng);
                    serde_json::from_str::<Value>(&application).unwrap_or_default()
                })
                .collect();
            outcome.records = applications.len() as u64;
            let body = json!({ "applications": applications }).to_string();
            let headers = [
                ("content-type", "application/json"),
                ("x-request-id", request_id.as_str()),
                ("cf-connecting-ip", ip.as_str()),
            ];
            let (answer, retries) = client.send_retrying(
                "POST",
                "/api/v1/score/batch",
                &headers,
                Some(body.as_bytes()),
            );
            outcome.runtime_retries += retries;
            let item_ids = (0..applications.len()).map(|index| format!("{request_id}:{index}"));
            match &answer {
                Err(_) => outcome.unanswered_ids.extend(item_ids),
                Ok(answer) if answer.status == 200 => {
                    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                    for item in body["results"].as_array().into_iter().flatten() {
                        match item["request_id"].as_str() {
                            Some(id) => {
                                outcome.replayed +=
                                    u64::from(item["replayed"].as_bool() == Some(true));
                                outcome.accepted += 1;
                                outcome.accepted_ids.push(id.to_owned());
                            }
                            None => {
                                let code = item["error"]["code"]
                                    .as_str()
                                    .unwrap_or(ErrorCode::Unexpected.as_str());
                                outcome.rejected.push(code.to_owned());
                            }
                        }
                    }
                }
                Ok(answer) => {
                    let code = error_code(answer);
                    outcome
                        .rejected
                        .extend((0..applications.len()).map(|_| code.clone()));
                }
            }
            answer
        }
        Target::Kpis => client.try_send(
            "GET",
            "/api/v1/kpis?window=5m",
            &[("authorization", auth)],
            None,
        ),
        Target::Healthz => client.try_send("GET", "/healthz", &[], None),
        Target::Floor => client.try_send("GET", "/api/v1/no-such-route", &[], None),
    };
    outcome.latency = due.elapsed();
    match answer {
        Err(_) => outcome.transport_error = true,
        Ok(answer) => {
            let expected = match plan.target {
                Target::Kpis | Target::Healthz => 200,
                Target::Floor => 404,
                Target::Score | Target::Events | Target::Batch => return outcome,
            };
            outcome.records = 1;
            if answer.status == expected {
                outcome.accepted = 1;
            } else {
                outcome.rejected.push(error_code(&answer));
            }
        }
    }
    outcome
}

/// One gauge of `GET /metrics`, without labels.
pub fn metric(client: &Client, auth: &str, name: &str) -> Result<Option<f64>, String> {
    let answer = client.try_send("GET", "/metrics", &[("authorization", auth)], None)?;
    if answer.status != 200 {
        return Err(format!("GET /metrics: {} {}", answer.status, answer.text()));
    }
    Ok(gauge(&answer.text(), name))
}

/// The sum of a family's labelled series (`valle_decisions_total{band="bajo"} 9`, …).
pub fn family_sum(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{");
    let values: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Decisions the KPI object has counted, once the count has not moved for two seconds (it
/// counts just after the rows are stored); none if it kept moving for `timeout`.
pub fn counted_decisions(
    client: &Client,
    auth: &str,
    timeout: Duration,
) -> Result<Option<f64>, String> {
    let started = Instant::now();
    let read = || -> Result<Option<f64>, String> {
        let answer = client.try_send("GET", "/metrics", &[("authorization", auth)], None)?;
        Ok(family_sum(&answer.text(), "valle_decisions_total"))
    };
    let mut last = read()?;
    while started.elapsed() < timeout {
        std::thread::sleep(Duration::from_secs(2));
        let now = read()?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(None)
}

/// The value of an unlabelled series in Prometheus text.
pub fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

/// Seconds until the server's inbox holds no event waiting for its outcome, polled every
/// 100 ms; none if it still holds some after `timeout`.
pub fn wait_until_settled(
    client: &Client,
    auth: &str,
    timeout: Duration,
) -> Result<Option<f64>, String> {
    let started = Instant::now();
    loop {
        if metric(client, auth, "valle_inbox_events")? == Some(0.0) {
            return Ok(Some(started.elapsed().as_secs_f64()));
        }
        if started.elapsed() >= timeout {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether every accepted record ended up exactly once as a decision or a dead letter.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    pub accepted: usize,
    pub decisions: usize,
    pub dead_letters: usize,
    pub missing: Vec<String>,
    pub duplicated: Vec<String>,
    /// Decisions of the run's branch that no accepted or unanswered record explains.
    pub unexpected: Vec<String>,
    /// Accepted invalid applications that became decisions instead of dead letters.
    pub misrouted: Vec<String>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.unexpected.is_empty()
            && self.misrouted.is_empty()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} — {} accepted ids: {} decisions, {} dead letters, {} missing, {} duplicated, {} unexpected, {} misrouted",
            if self.passed() { "PASS" } else { "FAIL" },
            self.accepted,
            self.decisions,
            self.dead_letters,
            self.missing.len(),
            self.duplicated.len(),
            self.unexpected.len(),
            self.misrouted.len()
        )
    }
}

/// Every stored decision id of a branch (all pages).
fn decision_ids(client: &Client, branch: &str, auth: &str) -> Result<Vec<String>, String> {
    Ok(branch_decisions(client, branch, auth)?
        .iter()
        .map(|decision| {
            decision["request_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect())
}

/// Every stored decision of `branch`, as the API lists them (all pages).
pub fn branch_decisions(client: &Client, branch: &str, auth: &str) -> Result<Vec<Value>, String> {
    let mut decisions = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/decisions?branch={}&limit=500", percent(branch));
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={}", percent(cursor)));
        }
        let answer = client.try_send("GET", &path, &[("authorization", auth)], None)?;
        if answer.status != 200 {
            return Err(format!("GET {path}: {} {}", answer.status, answer.text()));
        }
        let mut page = answer.json();
        if let Some(listed) = page["decisions"].as_array_mut() {
            decisions.append(listed);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(decisions),
        }
    }
}

/// Every dead letter's event id (all pages, open and replayed).
fn dead_letter_ids(client: &Client, auth: &str) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut path = "/api/v1/dead-letters?limit=500".to_owned();
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        let answer = client.try_send("GET", &path, &[("authorization", auth)], None)?;
        if answer.status != 200 {
            return Err(format!("GET {path}: {} {}", answer.status, answer.text()));
        }
        let page = answer.json();
        for letter in page["dead_letters"].as_array().into_iter().flatten() {
            ids.push(letter["event_id"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_before"].as_i64() {
            Some(next) => before = Some(next),
            None => return Ok(ids),
        }
    }
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Compares what the server stored with what it accepted, once: call it until it passes or
/// a deadline, since queued events take a moment to land.
pub fn verify(
    client: &Client,
    tally: &Tally,
    branch: &str,
    auth: &str,
) -> Result<Verification, String> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for id in decision_ids(client, branch, auth)? {
        counts.entry(id).or_default().0 += 1;
    }
    for id in dead_letter_ids(client, auth)? {
        if tally.accepted_ids.contains(&id) {
            counts.entry(id).or_default().1 += 1;
        }
    }
    let mut verification = Verification {
        accepted: tally.accepted_ids.len(),
        ..Verification::default()
    };
    for id in &tally.accepted_ids {
        match counts.get(id).copied().unwrap_or_default() {
            (0, 0) => verification.missing.push(id.clone()),
            (1, 0) => {
                verification.decisions += 1;
                if tally.accepted_invalid_ids.contains(id) {
                    verification.misrouted.push(id.clone());
                }
            }
            (0, 1) => verification.dead_letters += 1,
            _ => verification.duplicated.push(id.clone()),
        }
    }
    verification.unexpected = counts
        .iter()
        .filter(|(id, (decisions, _))| {
            *decisions > 0
                && !tally.accepted_ids.contains(*id)
                && !tally.unanswered_ids.contains(*id)
        })
        .map(|(id, _)| id.clone())
        .collect();
    Ok(verification)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn gauges_are_read_by_their_exact_name() {
        let text = "# HELP valle_inbox_events x\n# TYPE valle_inbox_events gauge\nvalle_inbox_events_total 9\nvalle_inbox_events 3\nvalle_kpi_object_rows NaN\n";
        assert_eq!(gauge(text, "valle_inbox_events"), Some(3.0));
        assert!(gauge(text, "valle_kpi_object_rows").is_some_and(f64::is_nan));
        assert_eq!(gauge(text, "valle_missing"), None);
        let counters = "valle_decisions_total{band=\"bajo\"} 9\nvalle_decisions_total{band=\"alto\"} 3\nvalle_decisions_totally 1\n";
        assert_eq!(family_sum(counters, "valle_decisions_total"), Some(12.0));
        assert_eq!(family_sum(counters, "valle_missing"), None);
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
        assert_eq!(percent("a b/ç"), "a%20b%2F%C3%A7");
    }
}
