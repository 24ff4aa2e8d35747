//! The webhook tables: subscribers and the deliveries given up on; and the reads the
//! producer makes of the decision log and the audit trail, all in one batch.

use serde::Deserialize;
use serde_json::json as object;
use valle_shared::query::Page;
use valle_shared::webhook_events::{Subscription, WebhookDeadLetter};
use valle_shared::webhooks::{EventKind, NewSubscription};

use super::{json, json_arrays, Statement};
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
    pub id: f64,
    pub url: String,
    pub secret: String,
    pub events: String,
    pub created_at: f64,
}

impl TryFrom<SubscriberRow> for Subscriber {
    type Error = String;

    fn try_from(row: SubscriberRow) -> Result<Subscriber, String> {
        let events: Vec<EventKind> = serde_json::from_str(&row.events)
            .map_err(|error| format!("webhook events {:?}: {error}", row.events))?;
        Ok(Subscriber {
            subscription: Subscription {
                id: row.id as i64,
                url: row.url,
                events,
                created_at_ms: row.created_at as i64,
            },
            secret: row.secret,
        })
    }
}

/// The producer's one read: the subscribers, the ends of both logs, and a page of each
/// after `after` (with where each page ends). While no one subscribes the pages are empty:
/// the alarm reads no decision row for nobody, and still needs one round trip.
pub fn sources(after: SourcePosition, limit: usize) -> Vec<Statement> {
    let limit = limit as i64;
    let page = |table: &str| {
        format!("SELECT * FROM {table} WHERE seq > ?1 AND {SUBSCRIBED} ORDER BY seq LIMIT ?2")
    };
    vec![
        active_subscriptions(),
        Statement::new(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM decisions) AS decision_seq, \
             (SELECT COALESCE(MAX(seq), 0) FROM audit_log) AS audit_seq",
            Vec::new(),
        ),
        Statement::new(
            page("decisions"),
            vec![after.decision_seq.into(), limit.into()],
        ),
        Statement::new(
            page("audit_log"),
            vec![after.audit_seq.into(), limit.into()],
        ),
        Statement::new(
            format!(
                "SELECT COALESCE(MAX(seq), ?1) AS seq FROM \
                 (SELECT seq FROM decisions WHERE seq > ?1 AND {SUBSCRIBED} ORDER BY seq LIMIT ?2)"
            ),
            vec![after.decision_seq.into(), limit.into()],
        ),
    ]
}

/// Where a page of the decision log ends.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct PageEndRow {
    pub seq: f64,
}

/// The ends of both logs.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct PositionRow {
    pub decision_seq: f64,
    pub audit_seq: f64,
}

impl From<PositionRow> for SourcePosition {
    fn from(row: PositionRow) -> SourcePosition {
        SourcePosition {
            decision_seq: row.decision_seq as u64,
            audit_seq: row.audit_seq as u64,
        }
    }
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

pub fn dead_letter(id: i64) -> Statement {
    Statement::new(
        "SELECT * FROM webhook_dead_letters WHERE id = ?1",
        vec![id.into()],
    )
}

pub fn dead_letters(page: &Page<i64>) -> Statement {
    Statement::new(
        "SELECT * FROM webhook_dead_letters WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
        vec![page.cursor.into(), (page.limit as i64).into()],
    )
}

pub fn mark_replayed(id: i64, now_ms: i64) -> Statement {
    Statement::new(
        "UPDATE webhook_dead_letters SET replayed_at = ?2 WHERE id = ?1",
        vec![id.into(), now_ms.into()],
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct DeadLetterRow {
    pub id: f64,
    pub subscription_id: f64,
    pub event_id: String,
    pub kind: String,
    pub body: String,
    pub attempts: f64,
    pub last_status: Option<f64>,
    pub failed_at: f64,
    pub replayed_at: Option<f64>,
}

impl TryFrom<DeadLetterRow> for WebhookDeadLetter {
    type Error = String;

    fn try_from(row: DeadLetterRow) -> Result<WebhookDeadLetter, String> {
        Ok(WebhookDeadLetter {
            id: row.id as i64,
            subscription_id: row.subscription_id as i64,
            kind: EventKind::parse(&row.kind).ok_or_else(|| format!("kind {:?}", row.kind))?,
            event_id: row.event_id,
            body: row.body,
            attempts: row.attempts as u32,
            last_status: row.last_status.map(|status| status as u16),
            failed_at_ms: row.failed_at as i64,
            replayed_at_ms: row.replayed_at.map(|ms| ms as i64),
        })
    }
}
