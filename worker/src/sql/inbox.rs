//! The event inbox: events acknowledged with 202 wait here until their decision or dead
//! letter is stored, and the events consumer's position in its queue.

use serde::Deserialize;
use valle_shared::events::QueuedEvent;

use super::{json, json_strings, SqlValue, Statement, MAX_PARAMS};
use crate::store::Unsettled;

/// Keeps acknowledged events until they are settled; an id already kept stays as it is. A
/// few multi-row statements rather than one per event: D1 counts statements per invocation.
pub fn keep(events: &[QueuedEvent], now_ms: i64) -> Vec<Statement> {
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
        let keep = keep(&events, 7);
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
