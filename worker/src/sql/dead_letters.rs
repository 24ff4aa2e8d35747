//! The `dead_letters` table: one row per event id, written in batches, read by officers and
//! by the KPI object, which counts each event's first failure once (by its row id).

use serde::Deserialize;
use serde_json::json as object;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::query::Page;
use valle_shared::monitoring::kpi::Observation;
use valle_shared::records::decisions::DeadLetterStatus;
use valle_shared::records::events::QueuedEvent;

use super::{json, json_arrays, JsonText, Statement};
use crate::pipeline::{failure_observation, FailedRequest};
use crate::store::{DeadLetter, NewDeadLetter};

/// Records failed events, never for an event that is already a decision; a second failure
/// of the same event updates its row (and reopens it). The payload of the first failure is
/// kept as it came; a later one whose application differs (an officer's correction, a
/// resend) is kept beside it as `latest_payload`.
pub fn upsert(letters: &[NewDeadLetter]) -> Vec<Statement> {
    let rows = letters.iter().map(|letter| {
        object!({
            "event_id": letter.payload.event_id,
            "payload": json(&letter.payload),
            "error_code": letter.error_code,
            "error_message": letter.error_message,
            "attempts": letter.attempts,
            "failed_at": letter.failed_at_ms,
            "latency_ms": letter.latency_ms,
        })
        .to_string()
    });
    json_arrays(rows)
        .into_iter()
        .map(|rows| {
            Statement::new(
                "INSERT INTO dead_letters (event_id, payload, error_code, error_message, attempts, status, first_failed_at, last_failed_at, latency_ms) \
                 SELECT j.value ->> '$.event_id', j.value ->> '$.payload', j.value ->> '$.error_code', \
                 j.value ->> '$.error_message', j.value ->> '$.attempts', ?2, j.value ->> '$.failed_at', \
                 j.value ->> '$.failed_at', j.value ->> '$.latency_ms' \
                 FROM json_each(?1) AS j \
                 WHERE NOT EXISTS (SELECT 1 FROM decisions WHERE request_id = j.value ->> '$.event_id') \
                 ON CONFLICT(event_id) DO UPDATE SET \
                 latest_payload = CASE WHEN excluded.payload ->> '$.application' = dead_letters.payload ->> '$.application' \
                 THEN dead_letters.latest_payload \
                 ELSE excluded.payload END, error_code = excluded.error_code, \
                 error_message = excluded.error_message, attempts = dead_letters.attempts + excluded.attempts, \
                 status = ?2, last_failed_at = excluded.last_failed_at, replayed_at = NULL",
                vec![rows.into(), DeadLetterStatus::Open.as_str().into()],
            )
        })
        .collect()
}

pub fn mark_replayed(id: i64, at_ms: i64) -> Statement {
    Statement::new(
        "UPDATE dead_letters SET status = ?3, replayed_at = ?2 WHERE id = ?1",
        vec![
            id.into(),
            at_ms.into(),
            DeadLetterStatus::Replayed.as_str().into(),
        ],
    )
}

pub fn select(id: i64) -> Statement {
    Statement::new("SELECT * FROM dead_letters WHERE id = ?1", vec![id.into()])
}

pub fn list(status: Option<DeadLetterStatus>, page: &Page<i64>) -> Statement {
    Statement::new(
        "SELECT * FROM dead_letters WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        vec![
            status.map(DeadLetterStatus::as_str).into(),
            page.cursor.into(),
            (page.limit as i64).into(),
        ],
    )
}

pub fn count_open() -> Statement {
    Statement::new(
        "SELECT COUNT(*) AS open FROM dead_letters WHERE status = ?1",
        vec![DeadLetterStatus::Open.as_str().into()],
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct CountRow {
    pub open: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct DeadLetterRow {
    pub id: i64,
    pub event_id: String,
    pub payload: JsonText<QueuedEvent>,
    /// NULL until a later failure came with another payload (and in rows before 0010).
    #[serde(default)]
    pub latest_payload: Option<JsonText<QueuedEvent>>,
    pub error_code: ErrorCode,
    pub error_message: String,
    pub attempts: u32,
    pub status: DeadLetterStatus,
    pub first_failed_at: i64,
    pub last_failed_at: i64,
    pub replayed_at: Option<i64>,
}

impl From<DeadLetterRow> for DeadLetter {
    fn from(row: DeadLetterRow) -> DeadLetter {
        DeadLetter {
            id: row.id,
            event_id: row.event_id,
            payload: row.payload.0,
            latest_payload: row.latest_payload.map(|latest| latest.0),
            error_code: row.error_code,
            error_message: row.error_message,
            attempts: row.attempts,
            status: row.status,
            first_failed_at_ms: row.first_failed_at,
            last_failed_at_ms: row.last_failed_at,
            replayed_at_ms: row.replayed_at,
        }
    }
}

/// Dead letters stored after row `after`, in commit order, for the KPI object.
pub fn read_log(after: u64, limit: usize) -> Statement {
    Statement::new(
        "SELECT id, payload, error_code, latency_ms FROM dead_letters WHERE id > ?1 ORDER BY id LIMIT ?2",
        vec![after.into(), (limit as i64).into()],
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct LogRow {
    pub id: u64,
    pub payload: JsonText<QueuedEvent>,
    pub error_code: ErrorCode,
    pub latency_ms: f64,
}

/// The KPI observation of an event's failure, from what the consumer stored.
impl From<LogRow> for (u64, Observation) {
    fn from(row: LogRow) -> (u64, Observation) {
        let event = row.payload.0;
        (
            row.id,
            failure_observation(&FailedRequest {
                request_id: &event.event_id,
                channel: event.channel,
                received_at_ms: event.received_at_ms,
                event_time_ms: event.event_time_ms,
                latency_ms: row.latency_ms,
                code: row.error_code,
            }),
        )
    }
}
