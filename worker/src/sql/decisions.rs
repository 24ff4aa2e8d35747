//! The `decisions` table: the idempotent multi-row insert, the officers' reads, and the log
//! the KPI object reads in commit order (`seq`).

use serde::Deserialize;
use serde_json::json as object;
use valle_shared::contract::request::StageTiming;
use valle_shared::decision::model::reasons::Reason;
use valle_shared::decision::model::recourse::Suggestion;
use valle_shared::decision::model::{Band, Decision, ModelVersion, Score, ShadowScore};
use valle_shared::decision::policy::{PolicyVersion, RuleHit};
use valle_shared::decision::simulation::StoredDecision;
use valle_shared::intake::channel::Channel;
use valle_shared::monitoring::kpi::{Observation, Outcome};
use valle_shared::privacy::retention::{Residue, RetentionPolicy};
use valle_shared::records::decisions::{DeadLetterStatus, DecisionQuery, DecisionRecord};
use valle_shared::records::idempotency::Fingerprint;
use valle_shared::Application;

use super::{json, json_arrays, json_strings, JsonText, SqlValue, Statement};
use crate::store::LoggedDecision;

/// One decision as a JSON object of its columns, for `json_each`.
fn row_json(record: &DecisionRecord) -> String {
    let score = &record.score;
    object!({
        "request_id": record.request_id,
        "applicant_id": record.applicant_id,
        "branch": record.branch,
        "channel": record.channel.as_str(),
        "application": json(&record.application),
        "probability": f64::from(score.probability),
        "band": score.band.as_str(),
        "decision": score.decision.as_str(),
        "confidence": f64::from(score.confidence),
        "reasons": json(&score.reasons),
        "model_name": score.model_version.name,
        "model_sha256": score.model_version.sha256,
        "policy_name": score.policy_version.as_ref().map(|version| &version.name),
        "policy_sha256": score.policy_version.as_ref().map(|version| &version.sha256),
        "policy_hits": json(&score.policy_hits),
        "recourse": json(&score.recourse),
        "shadow": record.shadow.as_ref().map(json),
        "received_at": record.received_at_ms,
        "event_time": record.event_time_ms,
        "timing": json(&record.timing),
        "latency_ms": record.latency_ms(),
        "client_probability": record.client_probability.map(f64::from),
        "mismatch": i64::from(record.mismatch),
        "fingerprint": record.fingerprint,
        "readable_until": readable_until(record),
    })
    .to_string()
}

/// When the decision's personal fields stop being readable under the committed retention
/// policy; without a policy, at once, so the retention job looks at it (and fails loudly).
fn readable_until(record: &DecisionRecord) -> i64 {
    RetentionPolicy::committed().map_or(record.received_at_ms, |policy| {
        policy.stamp(
            record.received_at_ms,
            &record.application,
            record.score.decision,
        )
    })
}

/// Decisions an ordinary read may show: not blocked (blocked ones are the dpo's alone).
pub const READABLE: &str = "blocked_at IS NULL";
/// What a destroyed decision's fingerprint becomes: never a request's, so its id stays
/// taken.
pub const DESTROYED_FINGERPRINT: &str = "destroyed";

const INSERT_COLUMNS: [&str; 25] = [
    "request_id",
    "applicant_id",
    "branch",
    "channel",
    "application",
    "probability",
    "band",
    "decision",
    "confidence",
    "reasons",
    "model_name",
    "model_sha256",
    "policy_name",
    "policy_sha256",
    "policy_hits",
    "recourse",
    "shadow",
    "received_at",
    "event_time",
    "timing",
    "latency_ms",
    "client_probability",
    "mismatch",
    "fingerprint",
    "readable_until",
];

/// The decisions already stored under any of these request ids ([`ExistingRow`]).
pub fn select_existing(records: &[DecisionRecord]) -> Statement {
    Statement::new(
        "SELECT * FROM decisions WHERE request_id IN (SELECT value FROM json_each(?1))",
        vec![json_strings(records.iter().map(|r| r.request_id.as_str())).into()],
    )
}

/// A row of [`select_existing`]: a decision, or the id of one whose personal data was
/// destroyed (its application no longer reads as one).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ExistingRow {
    Destroyed {
        request_id: String,
        destroyed_at: i64,
    },
    Kept(Box<DecisionRow>),
}

impl ExistingRow {
    /// The decisions, and the destroyed ids.
    pub fn split(rows: Vec<ExistingRow>) -> (Vec<DecisionRecord>, Vec<String>) {
        let mut kept = Vec::new();
        let mut destroyed = Vec::new();
        for row in rows {
            match row {
                ExistingRow::Destroyed { request_id, .. } => destroyed.push(request_id),
                ExistingRow::Kept(row) => kept.push(DecisionRecord::from(*row)),
            }
        }
        (kept, destroyed)
    }
}

/// Whether a write's decisions are one request's ([`Outcomes::one_request`]).
///
/// [`Outcomes::one_request`]: crate::store::Outcomes::one_request
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Each decision is stored unless its id is (the queue's events, each its own request).
    EachOnItsOwn,
    /// None is stored if any of their ids is stored by another request (another
    /// fingerprint); decisions stored without a fingerprint never block.
    OneRequest,
}

/// The condition under which a guarded write stores anything, over the write's `[id,
/// fingerprint]` pairs bound at `?{param}`.
fn no_other_request(param: usize) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM json_each(?{param}) AS k JOIN decisions AS d \
         ON d.request_id = k.value ->> '$[0]' WHERE d.fingerprint <> k.value ->> '$[1]')"
    )
}

/// The `[id, fingerprint]` pairs of a write, for [`no_other_request`].
fn fingerprints(records: &[DecisionRecord]) -> SqlValue {
    json(
        &records
            .iter()
            .map(|record| (&record.request_id, &record.fingerprint))
            .collect::<Vec<_>>(),
    )
    .into()
}

/// Stores each decision unless its request id is stored: one statement per JSON chunk.
pub fn insert(records: &[DecisionRecord], guard: Guard) -> Vec<Statement> {
    let columns = INSERT_COLUMNS.join(", ");
    let values = INSERT_COLUMNS
        .iter()
        .map(|column| format!("j.value ->> '$.{column}'"))
        .collect::<Vec<_>>()
        .join(", ");
    // SQLite needs a WHERE on an INSERT … SELECT with an upsert clause.
    let condition = match guard {
        Guard::EachOnItsOwn => "true".to_owned(),
        Guard::OneRequest => no_other_request(2),
    };
    let sql = format!(
        "INSERT INTO decisions ({columns}) SELECT {values} FROM json_each(?1) AS j \
         WHERE {condition} ON CONFLICT(request_id) DO NOTHING"
    );
    let pairs = (guard == Guard::OneRequest).then(|| fingerprints(records));
    json_arrays(records.iter().map(row_json))
        .into_iter()
        .map(|rows| {
            let mut params = vec![rows.into()];
            params.extend(pairs.clone());
            Statement::new(sql.clone(), params)
        })
        .collect()
}

/// Closes the open dead letters of events that are now decisions.
pub fn supersede_dead_letters(records: &[DecisionRecord], guard: Guard) -> Statement {
    let mut params = vec![
        json_strings(records.iter().map(|r| r.request_id.as_str())).into(),
        DeadLetterStatus::Superseded.as_str().into(),
        DeadLetterStatus::Open.as_str().into(),
    ];
    let condition = match guard {
        Guard::EachOnItsOwn => String::new(),
        Guard::OneRequest => {
            params.push(fingerprints(records));
            format!(" AND {}", no_other_request(4))
        }
    };
    Statement::new(
        // `+status`: look the letters up by event id, not by scanning every open one.
        format!(
            "UPDATE dead_letters SET status = ?2 WHERE +status = ?3 \
             AND event_id IN (SELECT value FROM json_each(?1)){condition}"
        ),
        params,
    )
}

/// The most recent decisions in commit order, of one branch or all, with what a simulation
/// re-decides them from.
pub fn recent(limit: usize, branch: Option<&str>) -> Statement {
    let columns = "SELECT request_id, application, probability, decision, \
                   shadow ->> '$.probability' AS shadow_probability FROM decisions";
    match branch {
        // `decisions_by_branch` finds the branch's rows; they are sorted by seq after.
        Some(branch) => Statement::new(
            format!("{columns} WHERE branch = ?2 AND {READABLE} ORDER BY seq DESC LIMIT ?1"),
            vec![(limit as i64).into(), branch.into()],
        ),
        None => Statement::new(
            format!("{columns} WHERE {READABLE} ORDER BY seq DESC LIMIT ?1"),
            vec![(limit as i64).into()],
        ),
    }
}

/// One row of [`recent`].
#[derive(Clone, Debug, Deserialize)]
pub struct RecentRow {
    pub request_id: String,
    pub application: JsonText<Application>,
    pub probability: f32,
    pub decision: Decision,
    #[serde(default)]
    pub shadow_probability: Option<f32>,
}

impl From<RecentRow> for StoredDecision {
    fn from(row: RecentRow) -> StoredDecision {
        StoredDecision {
            application: row.application.0,
            probability: row.probability,
            decision: row.decision,
            shadow_probability: row.shadow_probability,
            request_id: row.request_id,
        }
    }
}

pub fn select(request_id: &str) -> Statement {
    Statement::new(
        format!("SELECT * FROM decisions WHERE request_id = ?1 AND {READABLE}"),
        vec![request_id.into()],
    )
}

/// The filters of a decision query (time, branch, band, decision, channel) as ` AND …`
/// clauses over the `decisions` columns, numbering parameters after `params`; blocked
/// decisions never match.
pub fn filter_clauses(query: &DecisionQuery, params: &mut Vec<SqlValue>) -> String {
    let mut sql = format!(" AND {READABLE}");
    let mut condition = |clause: &str, values: Vec<SqlValue>| {
        let mut clause = clause.to_owned();
        for value in values {
            params.push(value);
            clause = clause.replacen('#', &format!("?{}", params.len()), 1);
        }
        sql.push_str(" AND ");
        sql.push_str(&clause);
    };
    if let Some(from) = query.from_ms {
        condition("received_at >= #", vec![from.into()]);
    }
    if let Some(to) = query.to_ms {
        condition("received_at <= #", vec![to.into()]);
    }
    if let Some(branch) = &query.branch {
        condition("branch = #", vec![branch.as_str().into()]);
    }
    if let Some(band) = query.band {
        condition("band = #", vec![band.as_str().into()]);
    }
    if let Some(decision) = query.decision {
        condition("decision = #", vec![decision.as_str().into()]);
    }
    if let Some(channel) = query.channel {
        condition("channel = #", vec![channel.as_str().into()]);
    }
    if let Some(cursor) = &query.cursor {
        condition(
            "(received_at < # OR (received_at = # AND request_id < #))",
            vec![
                cursor.received_at_ms.into(),
                cursor.received_at_ms.into(),
                cursor.request_id.as_str().into(),
            ],
        );
    }
    sql
}

/// One page of decisions, newest first; asks for one row more than the page to know whether
/// another page follows.
pub fn list(query: &DecisionQuery) -> Statement {
    let mut params: Vec<SqlValue> = Vec::new();
    let mut sql = String::from("SELECT * FROM decisions WHERE 1 = 1");
    sql.push_str(&filter_clauses(query, &mut params));
    params.push(SqlValue::Integer(query.limit as i64 + 1));
    sql.push_str(&format!(
        " ORDER BY received_at DESC, request_id DESC LIMIT ?{}",
        params.len()
    ));
    Statement::new(sql, params)
}

/// The columns of a `decisions` row that every read takes: the full read for officers and
/// webhooks, and the KPI object's narrow read of the log.
#[derive(Clone, Debug, Deserialize)]
pub struct DecisionColumns {
    pub request_id: String,
    pub branch: String,
    pub channel: Channel,
    pub probability: f32,
    pub band: Band,
    pub decision: Decision,
    pub confidence: f32,
    pub received_at: i64,
    pub event_time: i64,
    /// 1 when the browser's score differed from the edge's, else 0.
    pub mismatch: i64,
    pub kpi_seq: Option<u64>,
}

/// A `decisions` row as D1 returns it. The columns added by migration 0008 are NULL in
/// older rows.
#[derive(Clone, Debug, Deserialize)]
pub struct DecisionRow {
    /// The row's number in commit order (absent in rows built on the host).
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(flatten)]
    pub columns: DecisionColumns,
    pub application: JsonText<Application>,
    pub applicant_id: Option<String>,
    pub reasons: JsonText<Vec<Reason>>,
    pub model_name: String,
    pub model_sha256: String,
    #[serde(default)]
    pub policy_name: Option<String>,
    #[serde(default)]
    pub policy_sha256: Option<String>,
    #[serde(default)]
    pub policy_hits: Option<JsonText<Vec<RuleHit>>>,
    #[serde(default)]
    pub recourse: Option<JsonText<Vec<Suggestion>>>,
    #[serde(default)]
    pub shadow: Option<JsonText<ShadowScore>>,
    pub timing: JsonText<Vec<StageTiming>>,
    pub client_probability: Option<f32>,
    pub kpi_window: Option<u64>,
    /// NULL in rows stored before migration 0010.
    #[serde(default)]
    pub fingerprint: Option<Fingerprint>,
}

impl From<DecisionRow> for DecisionRecord {
    fn from(row: DecisionRow) -> DecisionRecord {
        let policy_version = row
            .policy_name
            .zip(row.policy_sha256)
            .map(|(name, sha256)| PolicyVersion { name, sha256 });
        let columns = row.columns;
        DecisionRecord {
            application: row.application.0,
            score: Score {
                probability: columns.probability,
                band: columns.band,
                decision: columns.decision,
                confidence: columns.confidence,
                reasons: row.reasons.0,
                model_version: ModelVersion {
                    name: row.model_name,
                    sha256: row.model_sha256,
                },
                policy_version,
                policy_hits: row.policy_hits.unwrap_or_default().0,
                recourse: row.recourse.unwrap_or_default().0,
            },
            channel: columns.channel,
            request_id: columns.request_id,
            applicant_id: row.applicant_id,
            branch: columns.branch,
            received_at_ms: columns.received_at,
            event_time_ms: columns.event_time,
            timing: row.timing.0,
            client_probability: row.client_probability,
            mismatch: columns.mismatch != 0,
            kpi_seq: columns.kpi_seq,
            kpi_window: row.kpi_window,
            shadow: row.shadow.map(|shadow| shadow.0),
            fingerprint: row.fingerprint,
        }
    }
}

/// Decisions stored after row `after`, in commit order, with only the columns the KPI
/// object counts (no reasons, no timing).
pub fn read_log(after: u64, limit: usize) -> Statement {
    Statement::new(
        "SELECT seq, request_id, branch, channel, \
         CASE WHEN destroyed_at IS NULL THEN application END AS application, residue, \
         probability, band, decision, confidence, received_at, event_time, latency_ms, \
         mismatch, kpi_seq FROM decisions WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        vec![after.into(), (limit as i64).into()],
    )
}

/// A row of [`read_log`].
#[derive(Clone, Debug, Deserialize)]
pub struct LogRow {
    pub seq: u64,
    #[serde(flatten)]
    pub columns: DecisionColumns,
    /// NULL once destroyed; the residue then has the bins.
    pub application: Option<JsonText<Application>>,
    #[serde(default)]
    pub residue: Option<JsonText<Residue>>,
    pub latency_ms: f64,
}

impl From<LogRow> for LoggedDecision {
    /// The same observation [`DecisionRecord::observation`] makes of the whole record.
    fn from(row: LogRow) -> LoggedDecision {
        let columns = row.columns;
        let probability = columns.probability;
        let drift_bins = match (row.residue, row.application) {
            (Some(residue), _) => residue.0.drift_bins,
            (None, Some(application)) => {
                valle_shared::monitoring::drift::Binning::embedded_bins_of(
                    &application.0,
                    probability,
                )
            }
            (None, None) => Vec::new(),
        };
        LoggedDecision {
            seq: row.seq,
            counted_before: columns.kpi_seq.is_some(),
            observation: Observation {
                drift_bins,
                request_id: columns.request_id,
                branch: columns.branch,
                channel: columns.channel,
                received_at_ms: columns.received_at,
                event_time_ms: columns.event_time,
                latency_ms: row.latency_ms,
                outcome: Outcome::Decided {
                    band: columns.band,
                    decision: columns.decision,
                    probability,
                    confidence: columns.confidence,
                    mismatch: columns.mismatch != 0,
                },
            },
        }
    }
}

/// Where the decision and dead-letter logs end.
pub fn log_head() -> Statement {
    Statement::new(
        "SELECT (SELECT COALESCE(MAX(seq), 0) FROM decisions) AS decision_seq, \
         (SELECT COALESCE(MAX(id), 0) FROM dead_letters) AS dead_letter_id",
        Vec::new(),
    )
}

#[cfg(test)]
mod tests;
