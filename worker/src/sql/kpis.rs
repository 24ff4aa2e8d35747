//! What the KPI object writes to D1 (its outbox: decisions' places, closed count windows,
//! event-time windows, late events; every statement idempotent) and the officers' reads of
//! closed count windows.

use serde::Deserialize;
use serde_json::json as object;
use valle_shared::monitoring::kpi::{CountWindow, EventWindow, LateEvent, Summary};

use super::{json, json_arrays, JsonText, Statement};
use crate::store::{D1Write, Place};

/// The D1 side of one outbox entry.
pub fn write(write: &D1Write, now_ms: i64) -> Vec<Statement> {
    match write {
        D1Write::DecisionPlaces { places } => decision_places(places),
        D1Write::DecisionPlace {
            request_id,
            seq,
            count_window,
        } => vec![Statement::new(
            "UPDATE decisions SET kpi_seq = ?2, kpi_window = ?3 WHERE request_id = ?1",
            vec![
                request_id.as_str().into(),
                (*seq).into(),
                (*count_window).into(),
            ],
        )],
        D1Write::CountWindow(window) => vec![count_window(window, now_ms)],
        D1Write::EventWindow(window) => vec![event_window(window, now_ms)],
        D1Write::Late(late) => vec![late_event(late)],
    }
}

/// Each decision's place in the KPI stream, by its row, in one statement per JSON chunk.
fn decision_places(places: &[Place]) -> Vec<Statement> {
    let rows = places.iter().map(|place| {
        object!({"row": place.row, "seq": place.seq, "window": place.window}).to_string()
    });
    json_arrays(rows)
        .into_iter()
        .map(|rows| {
            Statement::new(
                "UPDATE decisions SET kpi_seq = p.value ->> '$.seq', kpi_window = p.value ->> '$.window' \
                 FROM json_each(?1) AS p WHERE decisions.seq = p.value ->> '$.row'",
                vec![rows.into()],
            )
        })
        .collect()
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
    pub window_index: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub duration_ms: i64,
    pub message_count: u64,
    pub rate_per_s: f64,
    pub summary: JsonText<Summary>,
}

impl From<CountWindowRow> for CountWindow {
    fn from(row: CountWindowRow) -> CountWindow {
        CountWindow {
            index: row.window_index,
            first_seq: row.first_seq,
            last_seq: row.last_seq,
            start_ms: row.start_ms,
            end_ms: row.end_ms,
            duration_ms: row.duration_ms,
            count: row.message_count,
            rate_per_s: row.rate_per_s,
            summary: row.summary.0,
        }
    }
}

pub fn list_count_windows(limit: usize, before_index: Option<u64>) -> Statement {
    Statement::new(
        "SELECT * FROM kpi_windows WHERE (?1 IS NULL OR window_index < ?1) ORDER BY window_index DESC LIMIT ?2",
        vec![before_index.into(), (limit as i64).into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::SqlValue;

    #[test]
    fn a_round_of_places_is_one_statement() {
        let places: Vec<Place> = (0..500)
            .map(|i| Place {
                row: 1_000 + i,
                seq: i,
                window: i / 20,
            })
            .collect();
        let statements = write(&D1Write::DecisionPlaces { places }, 0);
        assert_eq!(statements.len(), 1);
        let SqlValue::Text(bound) = &statements[0].params[0] else {
            panic!("not text")
        };
        let rows: Vec<serde_json::Value> = serde_json::from_str(bound).expect("json");
        assert_eq!(rows.len(), 500);
        assert_eq!(rows[499], object!({"row": 1_499, "seq": 499, "window": 24}));
    }
}
