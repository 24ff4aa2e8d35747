//! The D1 statements and row mappings, as plain values: SQL text with bound parameters only
//! (never a value spliced into SQL), built and decoded on the host where they are tested.

use serde::{Deserialize, Serialize};
use valle_shared::api::StageTiming;
use valle_shared::decisions::{DecisionQuery, DecisionRecord};
use valle_shared::events::{Channel, QueuedEvent};
use valle_shared::kpi::{CountWindow, EventWindow, LateEvent};
use valle_shared::model::reasons::Reason;
use valle_shared::model::{ModelVersion, Score};

use crate::store::{DeadLetter, NewDeadLetter};

/// A bound parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

impl From<&str> for SqlValue {
    fn from(text: &str) -> SqlValue {
        SqlValue::Text(text.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(text: String) -> SqlValue {
        SqlValue::Text(text)
    }
}

impl From<i64> for SqlValue {
    fn from(n: i64) -> SqlValue {
        SqlValue::Integer(n)
    }
}

impl From<u64> for SqlValue {
    fn from(n: u64) -> SqlValue {
        SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<f64> for SqlValue {
    fn from(x: f64) -> SqlValue {
        SqlValue::Real(x)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> SqlValue {
        value.map_or(SqlValue::Null, Into::into)
    }
}

/// One statement and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Statement {
    pub fn new(sql: impl Into<String>, params: Vec<SqlValue>) -> Statement {
        Statement {
            sql: sql.into(),
            params,
        }
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

const DECISION_COLUMNS: &str = "request_id, applicant_id, branch, channel, application, probability, band, decision, confidence, reasons, model_name, model_sha256, received_at, event_time, timing, latency_ms, client_probability, mismatch";

/// Stores a decision unless its request id is stored; an open dead letter of the same event
/// is closed in the same batch, so an event is never both a decision and an open letter.
pub fn insert_decision(record: &DecisionRecord) -> Vec<Statement> {
    let score = &record.score;
    let insert = Statement::new(
        format!("INSERT INTO decisions ({DECISION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) ON CONFLICT(request_id) DO NOTHING"),
        vec![
            record.request_id.as_str().into(),
            record.applicant_id.clone().into(),
            record.branch.as_str().into(),
            record.channel.as_str().into(),
            json(&record.application).into(),
            f64::from(score.probability).into(),
            json(&score.band).trim_matches('"').into(),
            json(&score.decision).trim_matches('"').into(),
            f64::from(score.confidence).into(),
            json(&score.reasons).into(),
            score.model_version.name.as_str().into(),
            score.model_version.sha256.as_str().into(),
            record.received_at_ms.into(),
            record.event_time_ms.into(),
            json(&record.timing).into(),
            record.latency_ms().into(),
            record.client_probability.map(f64::from).into(),
            i64::from(record.mismatch).into(),
        ],
    );
    let supersede = Statement::new(
        "UPDATE dead_letters SET status = 'superseded' WHERE event_id = ?1 AND status = 'open'",
        vec![record.request_id.as_str().into()],
    );
    vec![insert, supersede]
}

pub fn select_decision(request_id: &str) -> Statement {
    Statement::new(
        "SELECT * FROM decisions WHERE request_id = ?1",
        vec![request_id.into()],
    )
}

/// One page of decisions, newest first; asks for one row more than the page to know whether
/// another page follows.
pub fn list_decisions(query: &DecisionQuery) -> Statement {
    let mut sql = String::from("SELECT * FROM decisions WHERE 1 = 1");
    let mut params: Vec<SqlValue> = Vec::new();
    let mut condition = |clause: &str, values: Vec<SqlValue>, sql: &mut String| {
        let mut clause = clause.to_owned();
        for value in values {
            params.push(value);
            clause = clause.replacen('#', &format!("?{}", params.len()), 1);
        }
        sql.push_str(" AND ");
        sql.push_str(&clause);
    };
    if let Some(from) = query.from_ms {
        condition("received_at >= #", vec![from.into()], &mut sql);
    }
    if let Some(to) = query.to_ms {
        condition("received_at <= #", vec![to.into()], &mut sql);
    }
    if let Some(branch) = &query.branch {
        condition("branch = #", vec![branch.as_str().into()], &mut sql);
    }
    if let Some(band) = query.band {
        condition(
            "band = #",
            vec![json(&band).trim_matches('"').into()],
            &mut sql,
        );
    }
    if let Some(decision) = query.decision {
        condition(
            "decision = #",
            vec![json(&decision).trim_matches('"').into()],
            &mut sql,
        );
    }
    if let Some(channel) = query.channel {
        condition("channel = #", vec![channel.as_str().into()], &mut sql);
    }
    if let Some(cursor) = &query.cursor {
        condition(
            "(received_at < # OR (received_at = # AND request_id < #))",
            vec![
                cursor.received_at_ms.into(),
                cursor.received_at_ms.into(),
                cursor.request_id.as_str().into(),
            ],
            &mut sql,
        );
    }
    params.push(SqlValue::Integer(query.limit as i64 + 1));
    sql.push_str(&format!(
        " ORDER BY received_at DESC, request_id DESC LIMIT ?{}",
        params.len()
    ));
    Statement::new(sql, params)
}

/// A `decisions` row as D1 returns it (numbers arrive as JavaScript numbers).
#[derive(Clone, Debug, Deserialize)]
pub struct DecisionRow {
    pub request_id: String,
    pub applicant_id: Option<String>,
    pub branch: String,
    pub channel: String,
    pub application: String,
    pub probability: f64,
    pub band: String,
    pub decision: String,
    pub confidence: f64,
    pub reasons: String,
    pub model_name: String,
    pub model_sha256: String,
    pub received_at: f64,
    pub event_time: f64,
    pub timing: String,
    pub client_probability: Option<f64>,
    pub mismatch: f64,
    pub kpi_seq: Option<f64>,
    pub kpi_window: Option<f64>,
}

impl TryFrom<DecisionRow> for DecisionRecord {
    type Error = String;

    fn try_from(row: DecisionRow) -> Result<DecisionRecord, String> {
        let text = |value: &str| serde_json::Value::String(value.to_owned());
        let reasons: Vec<Reason> =
            serde_json::from_str(&row.reasons).map_err(|e| format!("reasons: {e}"))?;
        let timing: Vec<StageTiming> =
            serde_json::from_str(&row.timing).map_err(|e| format!("timing: {e}"))?;
        Ok(DecisionRecord {
            application: serde_json::from_str(&row.application)
                .map_err(|e| format!("application: {e}"))?,
            score: Score {
                probability: row.probability as f32,
                band: serde_json::from_value(text(&row.band)).map_err(|e| format!("band: {e}"))?,
                decision: serde_json::from_value(text(&row.decision))
                    .map_err(|e| format!("decision: {e}"))?,
                confidence: row.confidence as f32,
                reasons,
                model_version: ModelVersion {
                    name: row.model_name,
                    sha256: row.model_sha256,
                },
            },
            channel: Channel::parse(&row.channel)
                .ok_or_else(|| format!("channel {:?}", row.channel))?,
            request_id: row.request_id,
            applicant_id: row.applicant_id,
            branch: row.branch,
            received_at_ms: row.received_at as i64,
            event_time_ms: row.event_time as i64,
            timing,
            client_probability: row.client_probability.map(|p| p as f32),
            mismatch: row.mismatch != 0.0,
            kpi_seq: row.kpi_seq.map(|n| n as u64),
            kpi_window: row.kpi_window.map(|n| n as u64),
        })
    }
}

/// Records a failed event, unless the event is already a decision; a second failure of the
/// same event updates its row.
pub fn upsert_dead_letter(letter: &NewDeadLetter) -> Statement {
    Statement::new(
        "INSERT INTO dead_letters (event_id, payload, error_code, error_message, attempts, status, first_failed_at, last_failed_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, 'open', ?6, ?6 WHERE NOT EXISTS (SELECT 1 FROM decisions WHERE request_id = ?1) \
         ON CONFLICT(event_id) DO UPDATE SET payload = excluded.payload, error_code = excluded.error_code, \
         error_message = excluded.error_message, attempts = dead_letters.attempts + excluded.attempts, \
         status = 'open', last_failed_at = excluded.last_failed_at, replayed_at = NULL",
        vec![
            letter.payload.event_id.as_str().into(),
            json(&letter.payload).into(),
            letter.error_code.as_str().into(),
            letter.error_message.as_str().into(),
            i64::from(letter.attempts).into(),
            letter.failed_at_ms.into(),
        ],
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct DeadLetterRow {
    pub id: f64,
    pub event_id: String,
    pub payload: String,
    pub error_code: String,
    pub error_message: String,
    pub attempts: f64,
    pub status: String,
    pub first_failed_at: f64,
    pub last_failed_at: f64,
    pub replayed_at: Option<f64>,
}

impl TryFrom<DeadLetterRow> for DeadLetter {
    type Error = String;

    fn try_from(row: DeadLetterRow) -> Result<DeadLetter, String> {
        let payload: QueuedEvent =
            serde_json::from_str(&row.payload).map_err(|e| format!("payload: {e}"))?;
        Ok(DeadLetter {
            id: row.id as i64,
            event_id: row.event_id,
            payload,
            error_code: row.error_code,
            error_message: row.error_message,
            attempts: row.attempts as u32,
            status: row.status,
            first_failed_at_ms: row.first_failed_at as i64,
            last_failed_at_ms: row.last_failed_at as i64,
            replayed_at_ms: row.replayed_at.map(|t| t as i64),
        })
    }
}

pub fn list_dead_letters(status: Option<&str>, limit: usize, before_id: Option<i64>) -> Statement {
    Statement::new(
        "SELECT * FROM dead_letters WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        vec![status.into(), before_id.into(), (limit as i64).into()],
    )
}

/// The D1 side of one KPI outbox entry; every statement is idempotent.
pub fn kpi_write(write: &crate::kpi_object::D1Write, now_ms: i64) -> Statement {
    use crate::kpi_object::D1Write;
    match write {
        D1Write::DecisionPlace {
            request_id,
            seq,
            count_window,
        } => Statement::new(
            "UPDATE decisions SET kpi_seq = ?2, kpi_window = ?3 WHERE request_id = ?1",
            vec![
                request_id.as_str().into(),
                (*seq).into(),
                (*count_window).into(),
            ],
        ),
        D1Write::CountWindow(window) => count_window(window, now_ms),
        D1Write::EventWindow(window) => event_window(window, now_ms),
        D1Write::Late(late) => late_event(late),
    }
}

fn count_window(window: &CountWindow, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT OR REPLACE INTO kpi_windows (window_index, first_seq, last_seq, start_ms, end_ms, duration_ms, message_count, rate_per_s, summary, closed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        vec![
            window.index.into(),
            window.first_seq.into(),
            window.last_seq.into(),
            window.start_ms.into(),
            window.end_ms.into(),
            window.duration_ms.into(),
            window.count.into(),
            window.rate_per_s.into(),
            json(&window.summary).into(),
            now_ms.into(),
        ],
    )
}

fn event_window(window: &EventWindow, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT OR REPLACE INTO kpi_event_windows (span, branch, start_ms, end_ms, message_count, decisions, revised, summary, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        vec![
            window.span.as_str().into(),
            window.branch.as_str().into(),
            window.start_ms.into(),
            window.end_ms.into(),
            window.stats.count.into(),
            window.stats.decisions.into(),
            i64::from(window.revised).into(),
            json(&window.stats.summary()).into(),
            now_ms.into(),
        ],
    )
}

fn late_event(late: &LateEvent) -> Statement {
    Statement::new(
        "INSERT OR IGNORE INTO late_events (request_id, branch, event_time, received_at, watermark) VALUES (?1, ?2, ?3, ?4, ?5)",
        vec![
            late.request_id.as_str().into(),
            late.branch.as_str().into(),
            late.event_time_ms.into(),
            late.received_at_ms.into(),
            late.watermark_ms.into(),
        ],
    )
}

/// A `kpi_windows` row as D1 returns it.
#[derive(Clone, Debug, Deserialize)]
pub struct CountWindowRow {
    pub window_index: f64,
    pub first_seq: f64,
    pub last_seq: f64,
    pub start_ms: f64,
    pub end_ms: f64,
    pub duration_ms: f64,
    pub message_count: f64,
    pub rate_per_s: f64,
    pub summary: String,
}

impl TryFrom<CountWindowRow> for CountWindow {
    type Error = String;

    fn try_from(row: CountWindowRow) -> Result<CountWindow, String> {
        Ok(CountWindow {
            index: row.window_index as u64,
            first_seq: row.first_seq as u64,
            last_seq: row.last_seq as u64,
            start_ms: row.start_ms as i64,
            end_ms: row.end_ms as i64,
            duration_ms: row.duration_ms as i64,
            count: row.message_count as u64,
            rate_per_s: row.rate_per_s,
            summary: serde_json::from_str(&row.summary).map_err(|e| format!("summary: {e}"))?,
        })
    }
}

pub fn list_count_windows(limit: usize, before_index: Option<u64>) -> Statement {
    Statement::new(
        "SELECT * FROM kpi_windows WHERE (?1 IS NULL OR window_index < ?1) ORDER BY window_index DESC LIMIT ?2",
        vec![before_index.into(), (limit as i64).into()],
    )
}

/// D1 binds at most 100 parameters per statement.
const MAX_PARAMS: usize = 100;

/// Keeps acknowledged events until they are settled; an id already kept stays as it is. A
/// few multi-row statements rather than one per event: D1 counts statements per invocation.
pub fn keep_events(events: &[QueuedEvent], now_ms: i64) -> Vec<Statement> {
    events
        .chunks(MAX_PARAMS / 3)
        .map(|chunk| {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "(?{}, ?{}, ?{}, ?{}, 1)",
                        3 * i + 1,
                        3 * i + 2,
                        3 * i + 3,
                        3 * i + 3
                    )
                })
                .collect();
            let params = chunk
                .iter()
                .flat_map(|event| {
                    [
                        SqlValue::from(event.event_id.as_str()),
                        json(event).into(),
                        now_ms.into(),
                    ]
                })
                .collect();
            Statement::new(
                format!(
                    "INSERT INTO event_inbox (event_id, event, kept_at, sent_at, sends) VALUES {} \
                     ON CONFLICT(event_id) DO NOTHING",
                    rows.join(", ")
                ),
                params,
            )
        })
        .collect()
}

/// Forgets events whose outcome is stored and, for the events queue's consumer, moves its
/// progress mark to `reached_ms` (the newest enqueue time among the messages it processed).
pub fn settle_events(event_ids: &[String], reached_ms: Option<i64>, now_ms: i64) -> Vec<Statement> {
    let mut statements = Vec::new();
    if let Some(reached) = reached_ms {
        statements.push(Statement::new(
            "INSERT INTO inbox_progress (id, reached, reached_at) VALUES (1, ?1, ?2) \
             ON CONFLICT(id) DO UPDATE SET reached = MAX(reached, excluded.reached), reached_at = excluded.reached_at",
            vec![reached.into(), now_ms.into()],
        ));
    }
    statements.extend(event_ids.chunks(MAX_PARAMS).map(|chunk| {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
        Statement::new(
            format!(
                "DELETE FROM event_inbox WHERE event_id IN ({})",
                marks.join(", ")
            ),
            chunk.iter().map(|id| id.as_str().into()).collect(),
        )
    }));
    statements
}

/// Takes the kept events last sent at or before `cutoff_ms`, oldest first, and marks them
/// sent at `now_ms`, in one statement so two sweeps never take the same event.
pub fn take_unsettled_events(cutoff_ms: i64, now_ms: i64, limit: usize) -> Statement {
    Statement::new(
        "UPDATE event_inbox SET sent_at = ?2, sends = sends + 1 WHERE event_id IN \
         (SELECT event_id FROM event_inbox WHERE sent_at <= ?1 ORDER BY sent_at, event_id LIMIT ?3) \
         RETURNING event",
        vec![cutoff_ms.into(), now_ms.into(), (limit as i64).into()],
    )
}

pub fn inbox_state() -> Statement {
    Statement::new(
        "SELECT (SELECT COUNT(*) FROM event_inbox) AS n, (SELECT MIN(kept_at) FROM event_inbox) AS oldest, \
         p.reached, p.reached_at FROM (SELECT 1) LEFT JOIN inbox_progress p ON p.id = 1",
        Vec::new(),
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct InboxStateRow {
    pub n: f64,
    pub oldest: Option<f64>,
    pub reached: Option<f64>,
    pub reached_at: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct KeptEventRow {
    pub event: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use valle_shared::decisions::Cursor;
    use valle_shared::model::Band;

    #[test]
    fn decision_queries_bind_every_value() {
        let query = DecisionQuery {
            from_ms: Some(10),
            branch: Some("norte'; DROP TABLE decisions; --".into()),
            band: Some(Band::Alto),
            limit: 5,
            cursor: Some(Cursor {
                received_at_ms: 99,
                request_id: "r-9".into(),
            }),
            ..DecisionQuery::default()
        };
        let statement = list_decisions(&query);
        assert_eq!(
            statement.sql,
            "SELECT * FROM decisions WHERE 1 = 1 AND received_at >= ?1 AND branch = ?2 AND band = ?3 \
             AND (received_at < ?4 OR (received_at = ?5 AND request_id < ?6)) \
             ORDER BY received_at DESC, request_id DESC LIMIT ?7"
        );
        assert!(!statement.sql.contains("DROP"));
        assert_eq!(
            statement.params[1],
            SqlValue::Text("norte'; DROP TABLE decisions; --".into())
        );
        assert_eq!(statement.params[2], SqlValue::Text("alto".into()));
        assert_eq!(statement.params[6], SqlValue::Integer(6));
    }

    fn queued(id: &str) -> QueuedEvent {
        QueuedEvent {
            event_id: id.to_owned(),
            event_time_ms: 1,
            received_at_ms: 2,
            channel: valle_shared::events::Channel::OfflineSync,
            application: "{}".to_owned(),
            client_score: None,
            attempt: 1,
        }
    }

    #[test]
    fn inbox_statements_stay_within_the_parameter_limit() {
        let events: Vec<QueuedEvent> = (0..500).map(|i| queued(&format!("e-{i}"))).collect();
        let keep = keep_events(&events, 7);
        assert_eq!(keep.len(), 16);
        assert!(keep.iter().all(|s| s.params.len() <= MAX_PARAMS));
        assert_eq!(keep.iter().map(|s| s.params.len()).sum::<usize>(), 1_500);
        assert!(keep[0].sql.contains("(?4, ?5, ?6, ?6, 1)"));
        assert_eq!(keep[0].params[2], SqlValue::Integer(7));
        let kept: QueuedEvent = match &keep[15].params[1] {
            SqlValue::Text(text) => serde_json::from_str(text).expect("event json"),
            other => panic!("not text: {other:?}"),
        };
        assert_eq!(kept.event_id, "e-495");
        let ids: Vec<String> = (0..250).map(|i| format!("e-{i}")).collect();
        let settle = settle_events(&ids, Some(5), 9);
        // The progress mark, then the deletes in chunks of 100 ids.
        assert_eq!(
            settle.iter().map(|s| s.params.len()).collect::<Vec<_>>(),
            [2, 100, 100, 50]
        );
        assert_eq!(
            settle[0].params,
            [SqlValue::Integer(5), SqlValue::Integer(9)]
        );
        assert!(settle[3].sql.ends_with("?49, ?50)"));
        assert_eq!(settle_events(&ids[..3], None, 9).len(), 1);
    }
}
