//! One request of a run: what is drawn for it, how it is sent, and what its answer says of
//! each record it carried.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use valle_shared::contract::codes::ErrorCode;

use super::{Plan, Target};
use crate::sample::{Rng, Sampler};
use crate::{random_uuid, Answer, Client};

/// One sent request's fate.
#[derive(Clone, Debug, Default)]
pub(super) struct Outcome {
    pub latency: Duration,
    /// Records (applications or events) in the request, and how many the server took.
    pub records: u64,
    pub accepted: u64,
    pub accepted_ids: Vec<String>,
    /// Accepted records that should end as dead letters (invalid applications in events).
    pub accepted_invalid: Vec<String>,
    pub rejected: Vec<String>,
    pub replayed: u64,
    /// Sent again after the runtime (not Valle) failed it; see `Client::send_retrying`.
    pub runtime_retries: u64,
    pub transport_error: bool,
    /// Records sent in a request that got no answer: the server may or may not have them.
    pub unanswered_ids: Vec<String>,
    /// When the request was due, in seconds from the start of the run.
    pub due_s: f64,
}

impl Outcome {
    fn accept(&mut self, id: String, replayed: bool) {
        self.replayed += u64::from(replayed);
        self.accepted += 1;
        self.accepted_ids.push(id);
    }

    /// A refused item of a batch answered 200 or 202: its `error.code`.
    fn reject_item(&mut self, item: &Value) {
        let code = item["error"]["code"]
            .as_str()
            .unwrap_or(ErrorCode::Unexpected.as_str());
        self.rejected.push(code.to_owned());
    }

    /// A request refused whole: each of its `records` under the answer's code.
    fn reject_all(&mut self, answer: &Answer, records: usize) {
        let code = error_code(answer);
        self.rejected.extend((0..records).map(|_| code.clone()));
    }
}

/// The address of request `i`'s client. Each branch (each run, by default) gets its own
/// range, so runs side by side never share a rate-limit bucket.
pub(super) fn client_ip(plan: &Plan, i: usize) -> String {
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

/// A record to send: its id, the application's JSON text, and whether it is invalid.
struct Record {
    id: String,
    application: String,
    invalid: bool,
}

impl Record {
    fn application_value(&self) -> Value {
        serde_json::from_str(&self.application).unwrap_or_default()
    }
}

/// What every request of a run shares: the plan, what to draw from, and where to send.
pub(super) struct Sender<'a> {
    pub plan: &'a Plan,
    pub sampler: &'a Sampler,
    pub auth: &'a str,
    pub client: &'a Client,
    /// Records already sent, so a share of later ones can repeat one (a client retry).
    pub sent_records: &'a Mutex<Vec<(String, String)>>,
}

impl Sender<'_> {
    /// Sends request `i`, due at `due`, and reads its answer.
    pub fn send(&self, rng: &mut Rng, i: usize, due: Instant) -> Outcome {
        let ip = client_ip(self.plan, i);
        let mut outcome = Outcome::default();
        let answer = match self.plan.target {
            Target::Score => self.score(rng, &ip, &mut outcome),
            Target::Events => self.events(rng, &ip, &mut outcome),
            Target::Batch => self.batch(rng, &ip, &mut outcome),
            Target::Kpis => self.client.try_send(
                "GET",
                "/api/v1/kpis?window=5m",
                &[("authorization", self.auth)],
                None,
            ),
            Target::Healthz => self.client.try_send("GET", "/healthz", &[], None),
            Target::Floor => self
                .client
                .try_send("GET", "/api/v1/no-such-route", &[], None),
        };
        outcome.latency = due.elapsed();
        match answer {
            Err(_) => outcome.transport_error = true,
            Ok(answer) => {
                let expected = match self.plan.target {
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

    /// A new record, or (a share of the time) one sent before, repeated exactly.
    fn draw(&self, rng: &mut Rng) -> Record {
        if rng.chance(self.plan.duplicate) {
            if let Ok(sent) = self.sent_records.lock() {
                if !sent.is_empty() {
                    let (id, application) = sent[rng.below(sent.len())].clone();
                    return Record {
                        id,
                        application,
                        invalid: false,
                    };
                }
            }
        }
        let invalid = rng.chance(self.plan.invalid);
        let application = if invalid {
            self.sampler.invalid(rng)
        } else {
            self.sampler.valid(rng)
        };
        let id = random_uuid();
        if let Ok(mut sent) = self.sent_records.lock() {
            // Invalid records are not repeated: their fate is already a refusal.
            if !invalid && sent.len() < 100_000 {
                sent.push((id.clone(), application.clone()));
            }
        }
        Record {
            id,
            application,
            invalid,
        }
    }

    /// A JSON `POST` from client `ip`, sent again once if the runtime failed it.
    fn post(
        &self,
        outcome: &mut Outcome,
        path: &str,
        request_id: Option<&str>,
        ip: &str,
        body: &[u8],
    ) -> Result<Answer, String> {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(request_id.map(|id| ("x-request-id", id)));
        headers.push(("cf-connecting-ip", ip));
        let (answer, retries) = self
            .client
            .send_retrying("POST", path, &headers, Some(body));
        outcome.runtime_retries += retries;
        answer
    }

    fn score(&self, rng: &mut Rng, ip: &str, outcome: &mut Outcome) -> Result<Answer, String> {
        let record = self.draw(rng);
        outcome.records = 1;
        let answer = self.post(
            outcome,
            "/api/v1/score",
            Some(&record.id),
            ip,
            record.application.as_bytes(),
        );
        match &answer {
            Err(_) => outcome.unanswered_ids.push(record.id),
            Ok(answer) if answer.status == 200 => {
                let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                outcome.accept(record.id, body["replayed"].as_bool() == Some(true));
            }
            Ok(answer) => outcome.reject_all(answer, 1),
        }
        answer
    }

    fn events(&self, rng: &mut Rng, ip: &str, outcome: &mut Outcome) -> Result<Answer, String> {
        let plan = self.plan;
        let now_ms = crate::now_ms();
        let mut invalid_ids = BTreeSet::new();
        let events: Vec<Value> = (0..plan.batch.max(1))
            .map(|_| {
                let record = self.draw(rng);
                if record.invalid {
                    invalid_ids.insert(record.id.clone());
                }
                let late = rng.chance(plan.late);
                let offset_ms = if late {
                    (plan.late_hours * 3_600_000.0) as i64 + rng.below(60_000) as i64
                } else {
                    rng.below(2_000) as i64
                };
                json!({
                    "event_id": record.id,
                    "event_time": valle_shared::contract::time::format_rfc3339_ms(now_ms - offset_ms),
                    "application": record.application_value(),
                })
            })
            .collect();
        outcome.records = events.len() as u64;
        let body = json!({ "events": events }).to_string();
        let answer = self.post(outcome, "/api/v1/events", None, ip, body.as_bytes());
        match &answer {
            Err(_) => outcome.unanswered_ids.extend(
                events
                    .iter()
                    .filter_map(|event| event["event_id"].as_str().map(str::to_owned)),
            ),
            Ok(answer) if answer.status == 202 => {
                let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                for ack in body["results"].as_array().into_iter().flatten() {
                    let id = ack["event_id"].as_str().unwrap_or_default().to_owned();
                    if ack["accepted"].as_bool() == Some(true) {
                        if invalid_ids.contains(&id) {
                            outcome.accepted_invalid.push(id.clone());
                        }
                        outcome.accept(id, false);
                    } else {
                        outcome.reject_item(ack);
                    }
                }
            }
            Ok(answer) => outcome.reject_all(answer, events.len()),
        }
        answer
    }

    fn batch(&self, rng: &mut Rng, ip: &str, outcome: &mut Outcome) -> Result<Answer, String> {
        let request_id = random_uuid();
        let applications: Vec<Value> = (0..self.plan.batch.max(1))
            .map(|_| self.draw(rng).application_value())
            .collect();
        outcome.records = applications.len() as u64;
        let body = json!({ "applications": applications }).to_string();
        let answer = self.post(
            outcome,
            "/api/v1/score/batch",
            Some(&request_id),
            ip,
            body.as_bytes(),
        );
        match &answer {
            Err(_) => outcome
                .unanswered_ids
                .extend((0..applications.len()).map(|index| format!("{request_id}:{index}"))),
            Ok(answer) if answer.status == 200 => {
                let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                for item in body["results"].as_array().into_iter().flatten() {
                    match item["request_id"].as_str() {
                        Some(id) => {
                            outcome.accept(id.to_owned(), item["replayed"].as_bool() == Some(true))
                        }
                        None => outcome.reject_item(item),
                    }
                }
            }
            Ok(answer) => outcome.reject_all(answer, applications.len()),
        }
        answer
    }
}
