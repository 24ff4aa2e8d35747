//! The event inbox: events acknowledged with 202 wait here until their decision or dead
//! letter is stored, and the events consumer's position in its queue.

use serde::Deserialize;
use valle_shared::records::events::QueuedEvent;

use valle_shared::records::idempotency::Fingerprint;

use super::{json, json_arrays, json_strings, Statement};
use crate::store::Unsettled;

/// One event as a JSON object for `json_each`: its id, its fingerprint and the event.
fn kept_json(event: &QueuedEvent) -> String {
    serde_json::json!({
        "id": event.event_id,
        "fingerprint": Fingerprint::of_event(event),
        "event": json(event),
    })
    .to_string()
}

/// Whether the event `j` names was made a decision, or kept, by another request (another
/// fingerprint). Rows stored without a fingerprint never count.
const TAKEN_BY_ANOTHER: &str = "EXISTS (SELECT 1 FROM decisions AS d \
     WHERE d.request_id = j.value ->> '$.id' AND d.fingerprint <> j.value ->> '$.fingerprint') \
     OR EXISTS (SELECT 1 FROM event_inbox AS i \
     WHERE i.event_id = j.value ->> '$.id' AND i.fingerprint <> j.value ->> '$.fingerprint')";

/// Keeps acknowledged events until they are settled; an id already kept stays as it is,
/// and an id another request took (see [`TAKEN_BY_ANOTHER`]) is not kept. Each chunk is
/// one statement that first names the taken ids, then keeps the rest: the batch's results
/// alternate, taken ids first ([`KEEP_RESULTS_PER_CHUNK`]).
pub fn keep(events: &[QueuedEvent], now_ms: i64) -> Vec<Statement> {
    json_arrays(events.iter().map(kept_json))
        .into_iter()
        .flat_map(|rows| {
            [
                Statement::new(
                    format!(
                        "SELECT j.value ->> '$.id' AS event_id FROM json_each(?1) AS j \
                         WHERE {TAKEN_BY_ANOTHER}"
                    ),
                    vec![rows.clone().into()],
                ),
                Statement::new(
                    format!(
                        "INSERT INTO event_inbox (event_id, event, kept_at, sent_at, sends, fingerprint) \
                         SELECT j.value ->> '$.id', j.value ->> '$.event', ?2, ?2, 1, \
                         j.value ->> '$.fingerprint' FROM json_each(?1) AS j \
                         WHERE NOT ({TAKEN_BY_ANOTHER}) ON CONFLICT(event_id) DO NOTHING"
                    ),
                    vec![rows.into(), now_ms.into()],
                ),
            ]
        })
        .collect()
}

/// Statements [`keep`] makes per chunk; the first of each answers the taken ids.
pub const KEEP_RESULTS_PER_CHUNK: usize = 2;

/// A row of the taken ids [`keep`] answers.
#[derive(Clone, Debug, Deserialize)]
pub struct TakenRow {
    pub event_id: String,
}

/// Forgets events whose outcome is stored.
pub fn settle(event_ids: &[String]) -> Statement {
    Statement::new(
        "DELETE FROM event_inbox WHERE event_id IN (SELECT value FROM json_each(?1))",
        vec![json_strings(event_ids.iter().map(String::as_str)).into()],
    )
}

/// Moves the events queue consumer's mark to `reached_ms` (the newest enqueue time among the
/// messages it processed); the mark only moves forward.
pub fn progress(reached_ms: i64, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT INTO inbox_progress (id, reached, reached_at) VALUES (1, ?1, ?2) \
         ON CONFLICT(id) DO UPDATE SET reached = MAX(reached, excluded.reached), reached_at = excluded.reached_at",
        vec![reached_ms.into(), now_ms.into()],
    )
}

/// Takes the kept events `take` names, oldest first, and marks them sent, in one statement
/// so two sweeps never take the same event.
pub fn take_unsettled(take: Unsettled) -> Statement {
    Statement::new(
        "UPDATE event_inbox SET sent_at = ?2, sends = sends + 1 WHERE event_id IN \
         (SELECT event_id FROM event_inbox WHERE sent_at <= ?1 ORDER BY sent_at, event_id LIMIT ?3) \
         RETURNING event",
        vec![
            take.cutoff_ms.into(),
            take.now_ms.into(),
            (take.limit as i64).into(),
        ],
    )
}

pub fn state() -> Statement {
    Statement::new(
        "SELECT (SELECT COUNT(*) FROM event_inbox) AS kept, \
         (SELECT MIN(kept_at) FROM event_inbox) AS oldest_kept_at_ms, \
         p.reached AS consumer_reached_ms, p.reached_at AS consumer_seen_at_ms \
         FROM (SELECT 1) LEFT JOIN inbox_progress p ON p.id = 1",
        Vec::new(),
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct KeptEventRow {
    pub event: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::SqlValue;

    fn queued(id: &str) -> QueuedEvent {
        QueuedEvent {
            event_id: id.to_owned(),
            event_time_ms: 1,
            received_at_ms: 2,
            channel: valle_shared::intake::channel::Channel::OfflineSync,
            application: "{}".to_owned(),
            client_score: None,
            attempt: 1,
        }
    }

    #[test]
    fn inbox_statements_bind_one_json_text_per_chunk() {
        let events: Vec<QueuedEvent> = (0..500).map(|i| queued(&format!("e-{i}"))).collect();
        let keep = keep(&events, 7);
        assert_eq!(
            keep.len(),
            KEEP_RESULTS_PER_CHUNK,
            "500 small events in one chunk"
        );
        assert!(keep[0].sql.starts_with("SELECT") && keep[0].params.len() == 1);
        assert!(keep[1].sql.starts_with("INSERT") && keep[1].sql.contains("NOT (EXISTS"));
        assert_eq!(keep[1].params[1], SqlValue::Integer(7));
        let SqlValue::Text(rows) = &keep[1].params[0] else {
            panic!("not text")
        };
        let rows: Vec<serde_json::Value> = serde_json::from_str(rows).expect("rows");
        assert_eq!(rows.len(), 500);
        let kept: QueuedEvent =
            serde_json::from_str(rows[495]["event"].as_str().expect("event text"))
                .expect("event json");
        assert_eq!(kept.event_id, "e-495");
        assert_eq!(
            rows[495]["fingerprint"],
            serde_json::json!(Fingerprint::of_event(&kept))
        );
        let ids: Vec<String> = (0..250).map(|i| format!("e-{i}")).collect();
        let settle = settle(&ids);
        assert_eq!(settle.params.len(), 1, "250 ids in one bound JSON text");
        let SqlValue::Text(bound) = &settle.params[0] else {
            panic!("not text")
        };
        let bound: Vec<String> = serde_json::from_str(bound).expect("ids");
        assert_eq!(bound, ids);
        assert_eq!(
            progress(5, 9).params,
            [SqlValue::Integer(5), SqlValue::Integer(9)]
        );
    }
}
