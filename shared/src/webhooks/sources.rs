//! Which stored rows become which webhook events, who hears each one, and the shapes the
//! webhook routes answer: the producer reads the decision log and the audit trail in commit
//! order and turns each row into events here, so a row read twice makes the same events
//! (the same ids) and the receiver's dedupe makes it count once.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::lending::audit::{AuditAction, AuditEntry};
use crate::lending::review::ReviewState;
use crate::records::decisions::DecisionRecord;
use crate::webhooks::{event_id, EventBody, EventKind};

/// A registered subscriber as the API lists it: the secret is never answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Subscription {
    pub id: i64,
    pub url: String,
    pub events: Vec<EventKind>,
    /// It hears events that happen from this moment on.
    pub created_at_ms: i64,
}

/// `GET /api/v1/webhooks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SubscriptionList {
    pub subscriptions: Vec<Subscription>,
}

/// One event on its way to one subscriber, as the webhooks queue carries it: `body` is
/// the exact text that is signed and sent, the same at every attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueuedDelivery {
    pub subscription_id: i64,
    pub event_id: String,
    pub kind: EventKind,
    pub body: String,
    /// 1 for the first attempt; a replay starts again at 1.
    pub attempt: u32,
}

/// A delivery given up on, kept until an admin replays it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct WebhookDeadLetter {
    pub id: i64,
    pub subscription_id: i64,
    pub event_id: String,
    pub kind: EventKind,
    /// The event as it was sent.
    pub body: String,
    pub attempts: u32,
    /// The last answer's HTTP status; none when the subscriber did not answer.
    pub last_status: Option<u16>,
    pub failed_at_ms: i64,
    pub replayed_at_ms: Option<i64>,
}

/// `GET /api/v1/webhooks/dead-letters`, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct WebhookDeadLetterPage {
    pub dead_letters: Vec<WebhookDeadLetter>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

/// A stored decision is `decision.created`, with the decision as `GET
/// /api/v1/decisions/{id}` answers it.
pub fn decision_event(record: &DecisionRecord) -> EventBody {
    EventBody {
        id: event_id(EventKind::DecisionCreated, &record.request_id, 0),
        kind: EventKind::DecisionCreated,
        occurred_at_ms: record.received_at_ms,
        data: serde_json::to_value(record).unwrap_or(Value::Null),
    }
}

/// The part of a review's audit detail that says where it ended.
#[derive(Deserialize)]
struct ReviewDetail {
    state: ReviewState,
    version: i64,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// The outcomes an `outcomes_recorded` row lists: `[request_id, status, observed_at_ms]`.
#[derive(Deserialize)]
struct OutcomesDetail {
    #[serde(default)]
    recorded: Vec<(String, Value, i64)>,
    #[serde(default)]
    replaced_open: Vec<(String, Value, i64)>,
}

/// The events an audit row makes: a review or an approval that leaves the application
/// approved or declined is `decision.final`; an outcomes row is one `outcome.recorded` per
/// outcome it recorded or replaced. Other rows make none.
pub fn audit_events(entry: &AuditEntry) -> Vec<EventBody> {
    let event = &entry.event;
    match event.action {
        AuditAction::ReviewDecided | AuditAction::ApprovalGiven => {
            let Ok(detail) = serde_json::from_str::<ReviewDetail>(&event.detail) else {
                return Vec::new();
            };
            if !matches!(detail.state, ReviewState::Approved | ReviewState::Declined) {
                return Vec::new();
            }
            let mut data = detail.rest;
            data.insert("request_id".into(), json!(event.subject));
            data.insert("state".into(), json!(detail.state));
            data.insert("version".into(), json!(detail.version));
            data.insert("decided_by".into(), json!(event.actor));
            vec![EventBody {
                id: event_id(EventKind::DecisionFinal, &event.subject, detail.version),
                kind: EventKind::DecisionFinal,
                occurred_at_ms: event.at_ms,
                data: Value::Object(data),
            }]
        }
        AuditAction::OutcomesRecorded => {
            let Ok(detail) = serde_json::from_str::<OutcomesDetail>(&event.detail) else {
                return Vec::new();
            };
            detail
                .recorded
                .into_iter()
                .chain(detail.replaced_open)
                .map(|(request_id, status, observed_at_ms)| EventBody {
                    id: event_id(EventKind::OutcomeRecorded, &request_id, observed_at_ms),
                    kind: EventKind::OutcomeRecorded,
                    occurred_at_ms: event.at_ms,
                    data: json!({
                        "request_id": request_id,
                        "status": status,
                        "observed_at_ms": observed_at_ms,
                        "recorded_by": event.actor,
                    }),
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// One delivery per event and subscriber that listens to its kind and existed when it
/// happened, in event order.
pub fn fan_out(events: &[EventBody], subscriptions: &[Subscription]) -> Vec<QueuedDelivery> {
    let mut deliveries = Vec::new();
    for event in events {
        let listeners = subscriptions.iter().filter(|subscription| {
            subscription.events.contains(&event.kind)
                && subscription.created_at_ms <= event.occurred_at_ms
        });
        let Ok(body) = serde_json::to_string(event) else {
            continue;
        };
        for subscription in listeners {
            deliveries.push(QueuedDelivery {
                subscription_id: subscription.id,
                event_id: event.id.clone(),
                kind: event.kind,
                body: body.clone(),
                attempt: 1,
            });
        }
    }
    deliveries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lending::audit::AuditEvent;

    fn entry(action: AuditAction, subject: &str, detail: Value) -> AuditEntry {
        AuditEntry {
            seq: 7,
            event: AuditEvent {
                at_ms: 5_000,
                actor: "ana@coop.example".into(),
                action,
                subject: subject.into(),
                detail: detail.to_string(),
            },
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// The kinds and subjects of the events a row makes.
    fn check(row: AuditEntry, expected: &[(EventKind, &str)]) {
        let events = audit_events(&row);
        let got: Vec<_> = events
            .iter()
            .map(|event| (event.kind, event.data["request_id"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(got, expected, "{row:?}");
        // The same row makes the same ids, however often it is read.
        assert_eq!(audit_events(&row), events);
    }

    #[test]
    fn audit_rows_make_final_decisions_and_outcomes() {
        let review = |state: &str| json!({"state": state, "version": 2, "action": "approve"});
        check(
            entry(AuditAction::ReviewDecided, "r1", review("approved")),
            &[(EventKind::DecisionFinal, "r1")],
        );
        check(
            entry(AuditAction::ApprovalGiven, "r1", review("declined")),
            &[(EventKind::DecisionFinal, "r1")],
        );
        check(
            entry(
                AuditAction::ReviewDecided,
                "r1",
                review("awaiting_approval"),
            ),
            &[],
        );
        check(
            entry(AuditAction::ReviewDecided, "r1", review("info_requested")),
            &[],
        );
        check(
            entry(
                AuditAction::OutcomesRecorded,
                "outcomes",
                json!({"recorded": [["r1", "good", 10], ["r2", "bad", 11]],
                       "replaced_open": [["r3", "bad", 12]], "unchanged": 1}),
            ),
            &[
                (EventKind::OutcomeRecorded, "r1"),
                (EventKind::OutcomeRecorded, "r2"),
                (EventKind::OutcomeRecorded, "r3"),
            ],
        );
        check(
            entry(AuditAction::AccountAdded, "b@coop.example", json!({})),
            &[],
        );
        check(
            entry(AuditAction::ReviewDecided, "r1", json!("not a review")),
            &[],
        );
    }

    #[test]
    fn a_final_decision_and_its_later_change_are_two_events() {
        let at = |version: i64| {
            audit_events(&entry(
                AuditAction::ReviewDecided,
                "r1",
                json!({"state": "approved", "version": version}),
            ))[0]
                .id
                .clone()
        };
        assert_ne!(at(2), at(3));
    }

    #[test]
    fn each_subscriber_hears_its_kinds_from_its_registration_on() {
        let event = |kind: EventKind, at: i64| EventBody {
            id: format!("{kind:?}{at}"),
            kind,
            occurred_at_ms: at,
            data: json!({}),
        };
        let subscription = |id: i64, events: Vec<EventKind>, created_at_ms: i64| Subscription {
            id,
            url: "https://hooks.coop.example/valle".into(),
            events,
            created_at_ms,
        };
        let events = [
            event(EventKind::DecisionCreated, 10),
            event(EventKind::OutcomeRecorded, 20),
            event(EventKind::DecisionCreated, 30),
        ];
        let subscriptions = [
            subscription(1, EventKind::ALL.to_vec(), 0),
            subscription(2, vec![EventKind::DecisionCreated], 15),
        ];
        let sent: Vec<_> = fan_out(&events, &subscriptions)
            .into_iter()
            .map(|delivery| (delivery.subscription_id, delivery.event_id))
            .collect();
        let expected: Vec<(i64, String)> = vec![
            (1, "DecisionCreated10".into()),
            (1, "OutcomeRecorded20".into()),
            (1, "DecisionCreated30".into()),
            (2, "DecisionCreated30".into()),
        ];
        assert_eq!(sent, expected);
        let body: EventBody = serde_json::from_str(&fan_out(&events, &subscriptions)[0].body)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(body, events[0]);
    }
}
