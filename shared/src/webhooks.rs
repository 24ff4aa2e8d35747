//! Webhooks, the rules both sides keep: which events there are, how an event is named so a
//! repeat is recognisable, how a delivery is signed and checked, how long a failed one
//! waits, and what an admin's registration must say.
//!
//! A delivery is signed as Standard Webhooks defines it ([`signature`]); where it may go is
//! [`target`]'s. Deliveries are at least once; the event id (`webhook-id`) is the same for
//! every attempt and every replay, so a receiver that keeps the ids it has seen handles each
//! event exactly once.

pub mod signature;
pub mod sources;
pub mod target;

pub use signature::{signed_headers, verify, Delivery, SignatureRefusal};
pub use target::{check_target, Reach, TargetRefusal, MAX_URL_CHARS};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::contract::body::read_object;
use crate::contract::codes::ErrorCode;
use crate::contract::errors::{FieldError, RequestError};
use crate::contract::i18n::Message;
use crate::contract::ids::uuid_text;

/// Attempts before a delivery becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 12;
/// The longest wait between two attempts.
pub const MAX_RETRY_DELAY_S: u32 = 300;
/// A registration body's limit.
pub const MAX_SUBSCRIPTION_BYTES: usize = 4 * 1024;
/// A `whsec_` secret's length bounds, in characters: the prefix and the base64 of
/// [`signature::SECRET_KEY_BYTES`].
pub const SECRET_CHARS: std::ops::RangeInclusive<usize> = 38..=94;

/// What a subscriber can hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum EventKind {
    /// A decision was stored (scored online, in a batch, or from the event stream).
    #[serde(rename = "decision.created")]
    DecisionCreated,
    /// People finished deciding an application (approved or declined, with any second
    /// approval given).
    #[serde(rename = "decision.final")]
    DecisionFinal,
    /// A loan outcome was recorded or replaced an earlier one.
    #[serde(rename = "outcome.recorded")]
    OutcomeRecorded,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [
        EventKind::DecisionCreated,
        EventKind::DecisionFinal,
        EventKind::OutcomeRecorded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DecisionCreated => "decision.created",
            EventKind::DecisionFinal => "decision.final",
            EventKind::OutcomeRecorded => "outcome.recorded",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// The id of the event `kind` about `subject` (a request id) at `version` (the review's
/// version, the outcome's observation time; 0 for a decision, which happens once): a
/// name-based UUID (version 8, from SHA-256), the same however often the event is produced.
pub fn event_id(kind: EventKind, subject: &str, version: i64) -> String {
    let digest = Sha256::digest(format!("{}\n{subject}\n{version}", kind.as_str()));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid_text(bytes)
}

/// The body a subscriber receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EventBody {
    pub id: String,
    pub kind: EventKind,
    pub occurred_at_ms: i64,
    /// The decision, the review case or the outcome, as the API's own reads answer it.
    pub data: Value,
}

/// What one attempt's answer means for the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Try again after this many seconds.
    RetryAfter(u32),
    /// Give up: a dead letter, until an admin replays it.
    DeadLetter,
}

/// The outcome of attempt number `attempt` (1 for the first) that got `status` (`None`: no
/// answer at all). A 2xx is delivered; a timeout, 429 or 5xx waits twice as long as the
/// last time (1 s, 2 s, 4 s … at most [`MAX_RETRY_DELAY_S`]); any other answer, or the
/// last attempt, is a dead letter.
pub fn after_attempt(attempt: u32, status: Option<u16>) -> AttemptOutcome {
    match status {
        Some(200..=299) => AttemptOutcome::Delivered,
        _ if attempt >= MAX_ATTEMPTS => AttemptOutcome::DeadLetter,
        None | Some(408 | 429 | 500..=599) => {
            let delay = 1u32 << attempt.saturating_sub(1).min(16);
            AttemptOutcome::RetryAfter(delay.min(MAX_RETRY_DELAY_S))
        }
        Some(_) => AttemptOutcome::DeadLetter,
    }
}

/// An admin's registration, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSubscription {
    pub url: String,
    pub secret: String,
    pub kinds: Vec<EventKind>,
}

/// Reads `{"url", "secret", "events": [...]}`: a URL `reach` may deliver to
/// ([`check_target`]), a `whsec_` secret of 24 to 64 bytes, and at least one known event
/// kind. Every problem is reported at once, on its field.
pub fn parse_subscription(body: &[u8], reach: Reach) -> Result<NewSubscription, RequestError> {
    let fields = read_object(body, MAX_SUBSCRIPTION_BYTES, &["url", "secret", "events"])?;
    let mut errors = fields.errors;
    let text = |name: &str, errors: &mut Vec<FieldError>| match fields.object.get(name) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(field_error(
                name,
                ErrorCode::Type,
                "Debe ser un texto.",
                "Must be a string.",
            ));
            None
        }
        None => {
            errors.push(field_error(
                name,
                ErrorCode::Required,
                "Falta este campo.",
                "This field is missing.",
            ));
            None
        }
    };
    let url = text("url", &mut errors).filter(|url| match check_target(url, reach) {
        Ok(()) => true,
        Err(TargetRefusal::Internal) => {
            errors.push(field_error(
                "url",
                ErrorCode::Target,
                "La dirección apunta dentro de una red (loopback, privada, de enlace local…); use un servidor público.",
                "The address points inside a network (loopback, private, link-local…); use a public server.",
            ));
            false
        }
        Err(_) => {
            errors.push(field_error(
                "url",
                ErrorCode::Format,
                "Use una dirección https:// pública, sin usuario ni contraseña.",
                "Use a public https:// address, without user or password.",
            ));
            false
        }
    });
    let secret = text("secret", &mut errors).filter(|secret| {
        let usable = signature::secret_key(secret).is_some();
        if !usable {
            errors.push(field_error(
                "secret",
                ErrorCode::Range,
                "Debe ser whsec_ y de 24 a 64 bytes en base64.",
                "Must be whsec_ and 24 to 64 bytes in base64.",
            ));
        }
        usable
    });
    let kinds = match fields.object.get("events") {
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut kinds: Vec<EventKind> = Vec::new();
            for (index, item) in items.iter().enumerate() {
                match item.as_str().and_then(EventKind::parse) {
                    Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
                    Some(_) => errors.push(field_error(
                        &format!("events[{index}]"),
                        ErrorCode::Duplicate,
                        "Este evento ya está en la lista.",
                        "This event is already listed.",
                    )),
                    None => errors.push(field_error(
                        &format!("events[{index}]"),
                        ErrorCode::Enum,
                        "Use decision.created, decision.final u outcome.recorded.",
                        "Use decision.created, decision.final or outcome.recorded.",
                    )),
                }
            }
            Some(kinds)
        }
        Some(_) => {
            errors.push(field_error(
                "events",
                ErrorCode::Range,
                "Debe ser una lista de al menos un evento.",
                "Must be a list of at least one event.",
            ));
            None
        }
        None => {
            errors.push(field_error(
                "events",
                ErrorCode::Required,
                "Falta este campo.",
                "This field is missing.",
            ));
            None
        }
    };
    match (url, secret, kinds) {
        (Some(url), Some(secret), Some(kinds)) if errors.is_empty() => {
            Ok(NewSubscription { url, secret, kinds })
        }
        _ => Err(RequestError::Invalid(errors)),
    }
}

fn field_error(field: &str, code: ErrorCode, es: &str, en: &str) -> FieldError {
    FieldError::new(field, code, Message::new(es, en))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::errors::field_codes;

    /// A `whsec_` secret: base64 of 32 bytes.
    const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn an_event_keeps_its_id_and_events_differ() {
        let id = event_id(EventKind::DecisionCreated, "r-1", 0);
        assert_eq!(id, event_id(EventKind::DecisionCreated, "r-1", 0));
        assert!(crate::contract::ids::is_uuid(&id), "{id}");
        assert_eq!(&id[14..15], "8", "{id}: version 8");
        for other in [
            event_id(EventKind::DecisionFinal, "r-1", 0),
            event_id(EventKind::DecisionCreated, "r-2", 0),
            event_id(EventKind::DecisionCreated, "r-1", 1),
        ] {
            assert_ne!(id, other);
        }
    }

    #[test]
    fn failed_attempts_back_off_then_become_dead_letters() {
        let cases = [
            (1, Some(200), AttemptOutcome::Delivered),
            (1, Some(204), AttemptOutcome::Delivered),
            (1, None, AttemptOutcome::RetryAfter(1)),
            (2, Some(503), AttemptOutcome::RetryAfter(2)),
            (5, Some(429), AttemptOutcome::RetryAfter(16)),
            (11, None, AttemptOutcome::RetryAfter(MAX_RETRY_DELAY_S)),
            (MAX_ATTEMPTS, Some(500), AttemptOutcome::DeadLetter),
            (MAX_ATTEMPTS, Some(200), AttemptOutcome::Delivered),
            (1, Some(400), AttemptOutcome::DeadLetter),
            (1, Some(410), AttemptOutcome::DeadLetter),
        ];
        for (attempt, status, expected) in cases {
            assert_eq!(
                after_attempt(attempt, status),
                expected,
                "{attempt} {status:?}"
            );
        }
        // A receiver down for 30 s is reached again within a minute of coming back.
        let waited: u32 = (1..=5)
            .map(|attempt| match after_attempt(attempt, None) {
                AttemptOutcome::RetryAfter(delay) => delay,
                other => panic!("{other:?}"),
            })
            .sum();
        assert_eq!(waited, 31);
    }

    fn check(body: &str, expected: Result<&[EventKind], &[(&str, ErrorCode)]>) {
        check_in(Reach::Local, body, expected);
    }

    fn check_in(reach: Reach, body: &str, expected: Result<&[EventKind], &[(&str, ErrorCode)]>) {
        match (parse_subscription(body.as_bytes(), reach), expected) {
            (Ok(subscription), Ok(kinds)) => assert_eq!(subscription.kinds, kinds, "{body}"),
            (Err(RequestError::Invalid(errors)), Err(codes)) => {
                assert_eq!(field_codes(&errors), codes, "{body}");
            }
            (got, expected) => panic!("{body}: {got:?} against {expected:?}"),
        }
    }

    #[test]
    fn registrations_are_read_with_field_codes() {
        let secret = SECRET;
        check(
            &format!(
                r#"{{"url":"https://hooks.coop.example/valle","secret":"{secret}","events":["decision.created","outcome.recorded"]}}"#
            ),
            Ok(&[EventKind::DecisionCreated, EventKind::OutcomeRecorded]),
        );
        check(
            &format!(
                r#"{{"url":"http://127.0.0.1:9000/hook","secret":"{secret}","events":["decision.final"]}}"#
            ),
            Ok(&[EventKind::DecisionFinal]),
        );
        check_in(
            Reach::Public,
            &format!(
                r#"{{"url":"http://127.0.0.1:9000/hook","secret":"{secret}","events":["decision.final"]}}"#
            ),
            Err(&[("url", ErrorCode::Target)]),
        );
        check(
            &format!(
                r#"{{"url":"https://169.254.169.254/latest","secret":"{secret}","events":["decision.final"]}}"#
            ),
            Err(&[("url", ErrorCode::Target)]),
        );
        check(
            r#"{"url":"https://hooks.coop.example","secret":"0123456789abcdef0123456789abcdef0123","events":["decision.final"]}"#,
            Err(&[("secret", ErrorCode::Range)]),
        );
        check(
            r#"{"url":"http://hooks.coop.example","secret":"short","events":[]}"#,
            Err(&[
                ("url", ErrorCode::Format),
                ("secret", ErrorCode::Range),
                ("events", ErrorCode::Range),
            ]),
        );
        check(
            &format!(
                r#"{{"url":"https://user:pw@hooks.example","secret":"{secret}","events":["decision.created","decision.created","x"],"extra":1}}"#
            ),
            Err(&[
                ("extra", ErrorCode::UnknownField),
                ("url", ErrorCode::Format),
                ("events[1]", ErrorCode::Duplicate),
                ("events[2]", ErrorCode::Enum),
            ]),
        );
        check(
            r#"{"url":7}"#,
            Err(&[
                ("url", ErrorCode::Type),
                ("secret", ErrorCode::Required),
                ("events", ErrorCode::Required),
            ]),
        );
    }
}
