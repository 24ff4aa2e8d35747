//! The offline queue's rules, as pure functions: what an application scored without a
//! network becomes, which ones to send next, the batch body for `POST /api/v1/events`, how
//! the edge's per-event answers change each item, and when to try again after a failure
//! (exponential backoff with jitter). `idb.rs` keeps the items in IndexedDB; the page only
//! calls these.

use serde::{Deserialize, Serialize};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::errors::ErrorBody;
use valle_shared::contract::ids::uuid_text;
use valle_shared::contract::time::format_rfc3339_ms;
use valle_shared::decision::model::ModelVersion;
use valle_shared::intake::batch::MAX_EVENTS;
use valle_shared::records::events::{ClientScore, EventsResponse};
use valle_shared::Message;

/// Events per request: well under the edge's limit, so one slow request holds few.
pub const BATCH: usize = 25;
const _: () = assert!(BATCH <= MAX_EVENTS);

/// First retry after 1 s, doubling up to 60 s.
pub const BACKOFF_BASE_MS: i64 = 1_000;
pub const BACKOFF_MAX_MS: i64 = 60_000;

/// Synced items are kept this long to show their badge, then forgotten.
pub const KEEP_SYNCED_MS: i64 = 7 * 24 * 3_600_000;

/// Where one queued application stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SyncState {
    /// Not yet accepted by the edge; `attempts` failed sends so far.
    Pending { attempts: u32, next_attempt_ms: i64 },
    /// The edge accepted it (202): it becomes exactly one decision or dead letter there.
    /// `receipt` is the applicant's proof that the decision is theirs (absent in items
    /// synced before receipts existed).
    Synced {
        at_ms: i64,
        #[serde(default)]
        receipt: Option<String>,
    },
    /// The edge refused this event; sending it again would not help.
    Refused { code: ErrorCode, message: Message },
}

/// An application scored on this device, kept until the edge has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// The idempotency key: re-sending the same event never makes a second decision.
    pub event_id: String,
    pub event_time_ms: i64,
    /// The application JSON exactly as validated and scored here.
    pub application: String,
    pub client_score: ClientScore,
    pub state: SyncState,
}

/// A version-4 UUID from 16 random bytes: the edge accepts only UUIDs as event ids.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid_text(bytes)
}

impl OutboxItem {
    pub fn new(
        event_id: String,
        now_ms: i64,
        application: String,
        probability: f32,
        model_version: ModelVersion,
    ) -> OutboxItem {
        OutboxItem {
            event_id,
            event_time_ms: now_ms,
            application,
            client_score: ClientScore {
                probability,
                model_version: Some(model_version),
            },
            state: SyncState::Pending {
                attempts: 0,
                next_attempt_ms: now_ms,
            },
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.state, SyncState::Pending { .. })
    }
}

/// The ids of the next batch: pending items that are due, oldest event first.
pub fn due(items: &[OutboxItem], now_ms: i64) -> Vec<String> {
    let mut due: Vec<&OutboxItem> = items
        .iter()
        .filter(|item| {
            matches!(item.state, SyncState::Pending { next_attempt_ms, .. } if next_attempt_ms <= now_ms)
        })
        .collect();
    due.sort_by_key(|item| item.event_time_ms);
    due.into_iter()
        .take(BATCH)
        .map(|item| item.event_id.clone())
        .collect()
}

/// When the next send is due, if anything is pending.
pub fn next_due_ms(items: &[OutboxItem]) -> Option<i64> {
    items
        .iter()
        .filter_map(|item| match item.state {
            SyncState::Pending {
                next_attempt_ms, ..
            } => Some(next_attempt_ms),
            _ => None,
        })
        .min()
}

/// The body of `POST /api/v1/events` for `ids`, in that order.
pub fn events_body(items: &[OutboxItem], ids: &[String]) -> String {
    let events: Vec<serde_json::Value> = ids
        .iter()
        .filter_map(|id| items.iter().find(|item| &item.event_id == id))
        .map(|item| {
            let application: serde_json::Value =
                serde_json::from_str(&item.application).unwrap_or(serde_json::Value::Null);
            serde_json::json!({
                "event_id": item.event_id,
                "event_time": format_rfc3339_ms(item.event_time_ms),
                "application": application,
                "client_score": item.client_score,
            })
        })
        .collect();
    serde_json::json!({ "events": events }).to_string()
}

/// The wait before attempt `attempts + 1`: `BASE · 2^attempts`, capped, then "equal
/// jitter" (half fixed, half random) so devices that reconnect together spread out.
/// `random` is uniform in `[0, 1)`.
pub fn backoff_ms(attempts: u32, random: f64) -> i64 {
    let ceiling = BACKOFF_BASE_MS
        .saturating_mul(1i64 << attempts.min(20))
        .min(BACKOFF_MAX_MS);
    let half = ceiling / 2;
    half + (half as f64 * random.clamp(0.0, 1.0)) as i64
}

/// The items `ids` after a send that failed: a transient failure (no answer, a server in
/// trouble, a rate limit) waits its backoff and tries again; any other (a refused
/// envelope) would fail the same way again, so it keeps the error for the person to see.
pub fn after_failure(
    items: &mut [OutboxItem],
    ids: &[String],
    now_ms: i64,
    random: f64,
    error: &ErrorBody,
) {
    let transient = error.code.is_transient();
    for item in items.iter_mut().filter(|item| ids.contains(&item.event_id)) {
        if let SyncState::Pending { attempts, .. } = item.state {
            if !transient {
                item.state = SyncState::Refused {
                    code: error.code,
                    message: error.message.clone(),
                };
                continue;
            }
            let wait = backoff_ms(attempts, random);
            item.state = SyncState::Pending {
                attempts: attempts + 1,
                next_attempt_ms: now_ms + wait,
            };
        }
    }
}

/// The items `ids` after the edge's 202: accepted ones are synced, refused ones keep the
/// edge's error. An event the answer does not mention stays pending for the next send.
pub fn after_answer(
    items: &mut [OutboxItem],
    ids: &[String],
    answer: &EventsResponse,
    now_ms: i64,
) {
    for ack in &answer.results {
        let Some(id) = ids.get(ack.index) else {
            continue;
        };
        let Some(item) = items.iter_mut().find(|item| &item.event_id == id) else {
            continue;
        };
        item.state = if ack.accepted {
            SyncState::Synced {
                at_ms: now_ms,
                receipt: ack.receipt.clone(),
            }
        } else {
            let error = ack.error.clone().unwrap_or_else(|| ErrorBody {
                code: ErrorCode::Refused,
                message: Message::new("Rechazada por el servidor.", "Refused by the server."),
                request_id: None,
                fields: Vec::new(),
            });
            SyncState::Refused {
                code: error.code,
                message: error.message,
            }
        };
    }
}

/// Drops synced items older than [`KEEP_SYNCED_MS`]; pending and refused ones stay until
/// the edge has them or someone looks.
pub fn prune(items: &mut Vec<OutboxItem>, now_ms: i64) {
    items.retain(|item| match item.state {
        SyncState::Synced { at_ms, .. } => now_ms - at_ms <= KEEP_SYNCED_MS,
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use valle_shared::records::events::EventAck;

    const NOW: i64 = 1_795_428_900_000;

    fn item(id: &str, time: i64) -> OutboxItem {
        OutboxItem::new(
            id.to_owned(),
            time,
            r#"{"age":30}"#.to_owned(),
            0.25,
            ModelVersion {
                name: "valle-logit".into(),
                sha256: "ab".into(),
            },
        )
    }

    const A: &str = "0b5c4a1e-8d2f-4a8e-9a57-3c1f5e2d7b90";
    const B: &str = "9f1c2d3e-4b5a-4c6d-8e7f-001122334455";

    #[test]
    fn generated_ids_are_uuids_the_edge_accepts() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        let body = events_body(&[item(&id, NOW)], std::slice::from_ref(&id));
        let parsed =
            valle_shared::records::events::parse_events(body.as_bytes(), NOW).expect("envelope");
        assert!(parsed[0].is_ok(), "{:?}", parsed[0]);
    }

    #[test]
    fn due_items_go_oldest_first_in_batches() {
        let mut items: Vec<OutboxItem> = (0..30).map(|i| item(&format!("e{i}"), NOW - i)).collect();
        items[0].state = SyncState::Synced {
            at_ms: NOW,
            receipt: None,
        };
        items[1].state = SyncState::Pending {
            attempts: 1,
            next_attempt_ms: NOW + 5_000,
        };
        let ids = due(&items, NOW);
        assert_eq!(ids.len(), BATCH);
        assert_eq!(ids[0], "e29", "the oldest event first");
        assert!(!ids.contains(&"e0".to_owned()) && !ids.contains(&"e1".to_owned()));
        assert_eq!(next_due_ms(&items), Some(NOW - 29));
        assert_eq!(due(&items[..2], NOW), Vec::<String>::new());
        assert_eq!(next_due_ms(&items[..2]), Some(NOW + 5_000));
        assert_eq!(next_due_ms(&items[..1]), None);
    }

    #[test]
    fn the_batch_body_is_what_the_edge_parses() {
        let items = vec![item(A, NOW), item(B, NOW - 1_000)];
        let body = events_body(&items, &[B.to_owned(), A.to_owned()]);
        let parsed =
            valle_shared::records::events::parse_events(body.as_bytes(), NOW).expect("envelope");
        let events: Vec<_> = parsed
            .into_iter()
            .map(|event| event.expect("a sound event"))
            .collect();
        assert_eq!(events[0].event_id, B);
        assert_eq!(events[0].event_time_ms, NOW - 1_000);
        assert_eq!(events[1].application, r#"{"age":30}"#);
        assert_eq!(events[1].client_score, Some(items[0].client_score.clone()));
    }

    #[test]
    fn backoff_doubles_to_a_cap_with_equal_jitter() {
        for (attempts, random, want) in [
            (0, 0.0, 500),
            (0, 0.999_999, 999),
            (1, 0.0, 1_000),
            (2, 0.5, 3_000),
            (5, 1.0, 32_000),
            (6, 0.0, 30_000),
            (6, 1.0, 60_000),
            (40, 1.0, 60_000),
            (3, 7.0, 8_000),
        ] {
            assert_eq!(backoff_ms(attempts, random), want, "{attempts} {random}");
        }
    }

    #[test]
    fn failures_wait_and_answers_settle_each_item() {
        let mut items = vec![item("a", NOW), item("b", NOW), item("c", NOW)];
        let ids: Vec<String> = ["a", "b", "c"].map(str::to_owned).to_vec();
        let offline = error(ErrorCode::Network);
        after_failure(&mut items, &ids[..2], NOW, 0.0, &offline);
        assert_eq!(
            items[0].state,
            SyncState::Pending {
                attempts: 1,
                next_attempt_ms: NOW + 500
            }
        );
        after_failure(
            &mut items,
            &ids[..1],
            NOW,
            1.0,
            &error(ErrorCode::RateLimited),
        );
        assert_eq!(
            items[0].state,
            SyncState::Pending {
                attempts: 2,
                next_attempt_ms: NOW + 2_000
            }
        );
        assert!(items[2].is_pending());

        let refused = ErrorBody {
            code: ErrorCode::EventTime,
            message: Message::new("x", "y"),
            request_id: None,
            fields: Vec::new(),
        };
        let answer = EventsResponse {
            request_id: "r".into(),
            accepted: 1,
            rejected: 1,
            results: vec![
                EventAck {
                    index: 0,
                    event_id: Some("a".into()),
                    accepted: true,
                    receipt: Some("vr1_a".into()),
                    error: None,
                },
                EventAck {
                    index: 1,
                    event_id: Some("b".into()),
                    accepted: false,
                    receipt: None,
                    error: Some(refused),
                },
                EventAck {
                    index: 9,
                    event_id: None,
                    accepted: true,
                    receipt: None,
                    error: None,
                },
            ],
        };
        after_answer(&mut items, &ids, &answer, NOW + 1);
        assert_eq!(
            items[0].state,
            SyncState::Synced {
                at_ms: NOW + 1,
                receipt: Some("vr1_a".into())
            }
        );
        assert!(
            matches!(&items[1].state, SyncState::Refused { code, .. } if *code == ErrorCode::EventTime)
        );
        assert!(items[2].is_pending(), "not in the answer: still pending");
        // Once synced, a failure report for the same id changes nothing.
        after_failure(&mut items, &ids, NOW, 0.0, &offline);
        assert_eq!(
            items[0].state,
            SyncState::Synced {
                at_ms: NOW + 1,
                receipt: Some("vr1_a".into())
            }
        );
        // A refused envelope is not retried: the item shows the edge's error.
        after_failure(&mut items, &ids[2..], NOW, 0.0, &error(ErrorCode::TooLarge));
        assert!(
            matches!(&items[2].state, SyncState::Refused { code, .. } if *code == ErrorCode::TooLarge)
        );
    }

    fn error(code: ErrorCode) -> ErrorBody {
        ErrorBody {
            code,
            message: Message::new("x", "y"),
            request_id: None,
            fields: Vec::new(),
        }
    }

    #[test]
    fn old_synced_items_are_forgotten_and_others_kept() {
        let mut items = vec![item("old", NOW), item("new", NOW), item("pending", NOW)];
        items[0].state = SyncState::Synced {
            at_ms: NOW - KEEP_SYNCED_MS - 1,
            receipt: None,
        };
        items[1].state = SyncState::Synced {
            at_ms: NOW - 1,
            receipt: None,
        };
        prune(&mut items, NOW);
        let ids: Vec<&str> = items.iter().map(|i| i.event_id.as_str()).collect();
        assert_eq!(ids, ["new", "pending"]);
    }

    #[test]
    fn items_survive_a_round_trip_through_storage_json() {
        let mut original = item("a", NOW);
        original.state = SyncState::Refused {
            code: ErrorCode::EventShape,
            message: Message::new("es", "en"),
        };
        let text = serde_json::to_string(&original).expect("json");
        assert_eq!(
            serde_json::from_str::<OutboxItem>(&text).expect("back"),
            original
        );
    }
}
