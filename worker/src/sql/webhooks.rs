//! The webhook tables: subscribers and the deliveries given up on; and the reads the
//! producer makes of the decision log and the audit trail, all in one batch.

use serde::Deserialize;
use serde_json::json as object;
use valle_shared::contract::query::Page;
use valle_shared::webhooks::sources::Subscription;
use valle_shared::webhooks::{EventKind, NewSubscription};

use super::{json, json_arrays, JsonText, Statement};
use crate::webhooks::{NewWebhookDeadLetter, SourcePosition, Subscriber};

pub fn insert_subscription(new: &NewSubscription, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT INTO webhook_subscriptions (url, secret, events, created_at) VALUES (?1, ?2, ?3, ?4) \
         RETURNING id, url, secret, events, created_at",
        vec![
            new.url.as_str().into(),
            new.secret.as_str().into(),
            json(&new.kinds).into(),
            now_ms.into(),
        ],
    )
}

/// Subscribers that are not removed, oldest first.
/// True while anyone subscribes.
const SUBSCRIBED: &str = "EXISTS (SELECT 1 FROM webhook_subscriptions WHERE removed_at IS NULL)";

pub fn active_subscriptions() -> Statement {
    Statement::new(
        "SELECT id, url, secret, events, created_at FROM webhook_subscriptions \
         WHERE removed_at IS NULL ORDER BY id",
        Vec::new(),
    )
}

/// The named subscribers that are not removed.
pub fn subscribers(ids: &[i64]) -> Statement {
    Statement::new(
        "SELECT id, url, secret, events, created_at FROM webhook_subscriptions \
         WHERE removed_at IS NULL AND id IN (SELECT value FROM json_each(?1))",
        vec![json(&ids).into()],
    )
}

pub fn remove_subscription(id: i64, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE webhook_subscriptions SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL \
         RETURNING id, url, secret, events, created_at",
        vec![id.into(), now_ms.into()],
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct SubscriberRow {
    pub id: i64,
    pub url: String,
    pub secret: String,
    pub events: JsonText<Vec<EventKind>>,
    pub created_at: i64,
}

impl From<SubscriberRow> for Subscriber {
    fn from(row: SubscriberRow) -> Subscriber {
        Subscriber {
            subscription: Subscription {
                id: row.id,
                url: row.url,
                events: row.events.0,
                created_at_ms: row.created_at,
            },
            secret: row.secret,
        }
    }
}

/// The producer's one read: the subscribers, the ends of both logs, and a page of each
/// after `after` (with where each page ends). While no one subscribes the pages are empty:
/// the alarm reads no decision row for nobody, and still needs one round trip.
pub fn sources(after: SourcePosition, limit: usize) -> Vec<Statement> {
    let limit = limit as i64;
    // A blocked decision is never sent: its page and its page's end skip it alike.
    let page = |table: &str, condition: &str| {
        format!(
            "SELECT * FROM {table} WHERE seq > ?1 AND {SUBSCRIBED}{condition} ORDER BY seq LIMIT ?2"
        )
    };
    let readable = format!(" AND {}", super::decisions::READABLE);
    vec![
        active_subscriptions(),
        Statement::new(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM decisions) AS decision_seq, \
             (SELECT COALESCE(MAX(seq), 0) FROM audit_log) AS audit_seq",
            Vec::new(),
        ),
        Statement::new(
            page("decisions", &readable),
            vec![after.decision_seq.into(), limit.into()],
        ),
        Statement::new(
            page("audit_log", ""),
            vec![after.audit_seq.into(), limit.into()],
        ),
        Statement::new(
            format!(
                "SELECT COALESCE(MAX(seq), ?1) AS seq FROM \
                 (SELECT seq FROM decisions WHERE seq > ?1 AND {SUBSCRIBED}{readable} \
                 ORDER BY seq LIMIT ?2)"
            ),
            vec![after.decision_seq.into(), limit.into()],
        ),
    ]
}

/// Where a page of the decision log ends.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct PageEndRow {
    pub seq: u64,
}

/// Records deliveries given up on; one that failed before (and was replayed) is updated.
pub fn upsert_dead_letters(letters: &[NewWebhookDeadLetter]) -> Vec<Statement> {
    let rows = letters.iter().map(|letter| {
        object!({
            "subscription_id": letter.delivery.subscription_id,
            "event_id": letter.delivery.event_id,
            "kind": letter.delivery.kind,
            "body": letter.delivery.body,
            "attempts": letter.delivery.attempt,
            "last_status": letter.last_status,
            "failed_at": letter.failed_at_ms,
        })
        .to_string()
    });
    json_arrays(rows)
        .into_iter()
        .map(|rows| {
            Statement::new(
                "INSERT INTO webhook_dead_letters (subscription_id, event_id, kind, body, attempts, last_status, failed_at) \
                 SELECT j.value ->> '$.subscription_id', j.value ->> '$.event_id', j.value ->> '$.kind', \
                 j.value ->> '$.body', j.value ->> '$.attempts', j.value ->> '$.last_status', j.value ->> '$.failed_at' \
                 FROM json_each(?1) AS j WHERE true \
                 ON CONFLICT(subscription_id, event_id) DO UPDATE SET attempts = webhook_dead_letters.attempts + excluded.attempts, \
                 last_status = excluded.last_status, failed_at = excluded.failed_at, replayed_at = NULL",
                vec![rows.into()],
            )
        })
        .collect()
}

/// The columns of `webhook_dead_letters` under the names of the fields of
/// [`WebhookDeadLetter`](valle_shared::webhooks::sources::WebhookDeadLetter), so a row reads as one.
const DEAD_LETTER_COLUMNS: &str = "id, subscription_id, event_id, kind, body, attempts, \
     last_status, failed_at AS failed_at_ms, replayed_at AS replayed_at_ms";

pub fn dead_letter(id: i64) -> Statement {
    Statement::new(
        format!("SELECT {DEAD_LETTER_COLUMNS} FROM webhook_dead_letters WHERE id = ?1"),
        vec![id.into()],
    )
}

pub fn dead_letters(page: &Page<i64>) -> Statement {
    Statement::new(
        format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM webhook_dead_letters \
             WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2"
        ),
        vec![page.cursor.into(), (page.limit as i64).into()],
    )
}

pub fn mark_replayed(id: i64, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE webhook_dead_letters SET replayed_at = ?2 WHERE id = ?1",
        vec![id.into(), now_ms.into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{answered_row, SqlValue};
    use valle_shared::webhooks::sources::WebhookDeadLetter;

    #[test]
    fn a_dead_letter_row_reads_as_the_wire_type() {
        let check = |last_status: Option<u16>, replayed_at_ms: Option<i64>| {
            let letter = WebhookDeadLetter {
                id: 4,
                subscription_id: 2,
                event_id: "decision.created:9".into(),
                kind: EventKind::DecisionCreated,
                body: "{\"seq\":9}".into(),
                attempts: 8,
                last_status,
                failed_at_ms: 1_795_428_000_123,
                replayed_at_ms,
            };
            let values = [
                SqlValue::Integer(letter.id),
                SqlValue::Integer(letter.subscription_id),
                letter.event_id.as_str().into(),
                letter.kind.as_str().into(),
                letter.body.as_str().into(),
                SqlValue::Integer(i64::from(letter.attempts)),
                last_status.map(i64::from).into(),
                SqlValue::Integer(letter.failed_at_ms),
                replayed_at_ms.into(),
            ];
            let row = answered_row(DEAD_LETTER_COLUMNS, &values);
            let read: Result<WebhookDeadLetter, _> = serde_json::from_value(row.clone());
            assert_eq!(read.ok(), Some(letter), "{row}");
        };
        check(Some(503), None);
        check(None, Some(1_795_428_100_000));
    }
}
