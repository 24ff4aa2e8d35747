//! Idempotency keys bound to their request, as the HTTP idempotency-key draft and Stripe
//! define them: a request id names one request *and its body*. A repeat with the same body
//! answers what the first one stored; a repeat with another body is refused with
//! [`ErrorCode::IdempotencyMismatch`](crate::contract::codes::ErrorCode::IdempotencyMismatch) and
//! learns nothing of the first: not its fields, not its score, not how far the bodies differ.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::intake::application::Application;
use crate::records::events::QueuedEvent;

/// What a request was, under its id: SHA-256 over the kind of request, the id and the
/// request's canonical form, as lowercase hex. The id is hashed in, so that one
/// application sent under two ids gives two unrelated fingerprints.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

/// The request kinds whose ids are idempotency keys; a single score and a batch never share
/// a fingerprint, even for one application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Score,
    Batch,
    Event,
}

impl Kind {
    fn tag(self) -> &'static [u8] {
        match self {
            Kind::Score => b"score",
            Kind::Batch => b"batch",
            Kind::Event => b"event",
        }
    }
}

/// One item of a batch as its fingerprint sees it: the canonical application, or the
/// item's field errors (an invalid item stores nothing, but another item changes the batch).
#[derive(Clone, Debug)]
pub enum BatchPart<'a> {
    Valid(&'a Application),
    /// [`RequestError::codes_text`](crate::contract::errors::RequestError::codes_text).
    Invalid(String),
}

impl Fingerprint {
    fn of(kind: Kind, request_id: &str, parts: &[&[u8]]) -> Fingerprint {
        let mut hash = Sha256::new();
        for part in [kind.tag(), request_id.as_bytes()].iter().chain(parts) {
            // Length-prefixed, so no two splits of the same bytes hash alike.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Fingerprint(hex::encode(hash.finalize()))
    }

    /// A single score: its validated application, written canonically (fields in their
    /// declared order, so key order and white space in the body do not matter).
    pub fn of_application(request_id: &str, application: &Application) -> Fingerprint {
        Fingerprint::of(Kind::Score, request_id, &[&canonical(application)])
    }

    /// A batch: every item in order. Its items are stored under `<id>:<index>`, each with
    /// the batch's fingerprint.
    pub fn of_batch(request_id: &str, items: &[BatchPart<'_>]) -> Fingerprint {
        let parts: Vec<Vec<u8>> = items
            .iter()
            .map(|item| match item {
                BatchPart::Valid(application) => {
                    [b"a".as_slice(), &canonical(application)].concat()
                }
                BatchPart::Invalid(errors) => [b"e".as_slice(), errors.as_bytes()].concat(),
            })
            .collect();
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        Fingerprint::of(Kind::Batch, request_id, &parts)
    }

    /// An event: its channel and its application, written canonically. Not its time or
    /// the sender's own score, which a device resending the same application may set anew,
    /// nor what the edge adds (arrival time, attempt).
    pub fn of_event(event: &QueuedEvent) -> Fingerprint {
        // The envelope check has made sure the text is a JSON object.
        let application = serde_json::from_str::<serde_json::Value>(&event.application)
            .map(|value| value.to_string())
            .unwrap_or_else(|_| event.application.clone());
        Fingerprint::of(
            Kind::Event,
            &event.event_id,
            &[event.channel.as_str().as_bytes(), application.as_bytes()],
        )
    }
}

fn canonical(application: &Application) -> Vec<u8> {
    // A struct of plain fields always serializes; an empty form would only make every
    // application one request, which no caller can reach.
    serde_json::to_vec(application).unwrap_or_default()
}

/// Whether a repeat is the request that stored `stored`. A decision stored before
/// fingerprints existed has none: then the same application is the same request.
pub fn is_same_request(
    stored: Option<&Fingerprint>,
    stored_application: &Application,
    incoming: Option<&Fingerprint>,
    incoming_application: &Application,
) -> bool {
    match (stored, incoming) {
        (Some(stored), Some(incoming)) => stored == incoming,
        _ => stored_application == incoming_application,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::channel::Channel;

    fn application(body: &str) -> Application {
        crate::intake::validation::parse_application(body.as_bytes()).expect("valid")
    }

    const BODY: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;
    const REORDERED: &str = r#"{ "price":846, "amount":800, "debt":0, "assets":0, "income":129, "expenses":73, "job":"freelance", "records":"no", "marital":"married", "age":30, "term_months":60, "home":"rent", "seniority_years":9 }"#;

    #[test]
    fn one_application_under_one_id_is_one_fingerprint_whatever_its_layout() {
        let check = |left: Fingerprint, right: Fingerprint, same: bool| {
            assert_eq!(left == right, same, "{left:?} {right:?}");
            assert_eq!(left.0.len(), 64);
        };
        let first = Fingerprint::of_application("r-1", &application(BODY));
        check(
            first.clone(),
            Fingerprint::of_application("r-1", &application(REORDERED)),
            true,
        );
        check(
            first.clone(),
            Fingerprint::of_application("r-2", &application(BODY)),
            false,
        );
        let richer = BODY.replace("\"income\":129", "\"income\":130");
        check(
            first.clone(),
            Fingerprint::of_application("r-1", &application(&richer)),
            false,
        );
        let app = application(BODY);
        check(
            first,
            Fingerprint::of_batch("r-1", &[BatchPart::Valid(&app)]),
            false,
        );
        check(
            Fingerprint::of_batch(
                "b",
                &[
                    BatchPart::Valid(&app),
                    BatchPart::Invalid("age:E_RANGE".into()),
                ],
            ),
            Fingerprint::of_batch(
                "b",
                &[
                    BatchPart::Valid(&app),
                    BatchPart::Invalid("age:E_TYPE".into()),
                ],
            ),
            false,
        );
    }

    #[test]
    fn an_event_is_its_channel_and_its_application() {
        let event = QueuedEvent {
            event_id: "0b5c4a1e-8d2f-4a8e-9a57-3c1f5e2d7b90".into(),
            event_time_ms: 1_000,
            received_at_ms: 2_000,
            application: BODY.into(),
            client_score: None,
            channel: Channel::OfflineSync,
            attempt: 1,
        };
        let resent = QueuedEvent {
            event_time_ms: 1_500,
            received_at_ms: 9_000,
            attempt: 3,
            application: REORDERED.into(),
            ..event.clone()
        };
        assert_eq!(
            Fingerprint::of_event(&event),
            Fingerprint::of_event(&resent)
        );
        let changed = QueuedEvent {
            application: BODY.replace("30", "31"),
            ..event.clone()
        };
        assert_ne!(
            Fingerprint::of_event(&event),
            Fingerprint::of_event(&changed)
        );
    }

    #[test]
    fn a_decision_without_a_fingerprint_matches_by_its_application() {
        let (app, other) = (application(BODY), application(&BODY.replace("30", "31")));
        let print = Fingerprint::of_application("r", &app);
        assert!(is_same_request(Some(&print), &app, Some(&print), &app));
        assert!(!is_same_request(
            Some(&print),
            &app,
            Some(&Fingerprint::of_application("r", &other)),
            &app
        ));
        assert!(is_same_request(None, &app, Some(&print), &app));
        assert!(!is_same_request(None, &app, Some(&print), &other));
    }
}
