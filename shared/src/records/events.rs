//! Decision events scored elsewhere (the page's offline queue, another system), sent in
//! batches to `POST /api/v1/events`. The endpoint checks only the envelope of each event and
//! queues it; the queue consumer validates and re-scores the application itself, so an event
//! with a bad application is accepted here and ends up as a dead letter, never lost.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::contract::codes::ErrorCode;
use crate::contract::errors::ErrorBody;
use crate::contract::i18n::Message;
use crate::contract::ids::is_uuid;
use crate::contract::time::parse_rfc3339_ms;
use crate::decision::model::ModelVersion;
use crate::intake::batch::{batch_items, BatchError, BatchKind};
use crate::intake::channel::Channel;

/// Largest single event's application text, as for `POST /api/v1/score`.
pub const MAX_EVENT_APPLICATION_BYTES: usize = crate::intake::validation::MAX_BODY_BYTES;
/// How far an event time may run ahead of the edge's clock (device clocks drift).
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60_000;

/// The client's own score of an event, compared with the edge's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ClientScore {
    pub probability: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<ModelVersion>,
}

/// One event on the wire.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent<'a> {
    event_id: Option<String>,
    event_time: Option<String>,
    #[serde(borrow)]
    application: Option<&'a RawValue>,
    #[serde(default)]
    client_score: Option<ClientScore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

impl<'a> crate::intake::batch::Envelope<'a> for Envelope<'a> {
    const KIND: BatchKind = BatchKind::Events;
    fn items(self) -> Vec<&'a RawValue> {
        self.events
    }
}

/// An event whose envelope is sound, as it travels through the queue. The application is
/// kept as the client's exact JSON text, so the consumer validates the same bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct QueuedEvent {
    pub event_id: String,
    pub event_time_ms: i64,
    pub received_at_ms: i64,
    pub application: String,
    pub client_score: Option<ClientScore>,
    pub channel: Channel,
    /// Which delivery attempt this is; the consumer re-queues with one more after a
    /// transient failure.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

/// Why an event's envelope is refused (it is then not queued).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EventError {
    #[error("event is not a JSON object with the known keys")]
    Shape,
    #[error("event_id is missing or not a UUID")]
    EventId,
    #[error("event_time is missing, not RFC 3339, or in the future")]
    EventTime,
    #[error("application is missing or not an object")]
    Application,
    #[error("client_score.probability is not within 0..=1")]
    ClientScore,
}

impl EventError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EventError::Shape => ErrorCode::EventShape,
            EventError::EventId => ErrorCode::EventId,
            EventError::EventTime => ErrorCode::EventTime,
            EventError::Application => ErrorCode::EventApplication,
            EventError::ClientScore => ErrorCode::ClientScore,
        }
    }

    pub fn message(&self) -> Message {
        match self {
            EventError::Shape => Message::new(
                "El evento debe ser un objeto con event_id, event_time, application y, opcionalmente, client_score.",
                "The event must be an object with event_id, event_time, application and optionally client_score.",
            ),
            EventError::EventId => Message::new(
                "event_id debe ser un UUID.",
                "event_id must be a UUID.",
            ),
            EventError::EventTime => Message::new(
                "event_time debe ser una fecha RFC 3339 que no esté más de 5 minutos en el futuro.",
                "event_time must be an RFC 3339 time no more than 5 minutes in the future.",
            ),
            EventError::Application => Message::new(
                "application debe ser un objeto JSON de hasta 16 KiB.",
                "application must be a JSON object of up to 16 KiB.",
            ),
            EventError::ClientScore => Message::new(
                "client_score.probability debe estar entre 0 y 1.",
                "client_score.probability must be between 0 and 1.",
            ),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code().to_owned(),
            message: self.message(),
            request_id: None,
            fields: Vec::new(),
        }
    }
}

/// Each event of a batch: queued as a [`QueuedEvent`] or refused with the reason.
pub fn parse_events(
    body: &[u8],
    received_at_ms: i64,
) -> Result<Vec<Result<QueuedEvent, EventError>>, BatchError> {
    Ok(batch_items::<Envelope<'_>>(body)?
        .iter()
        .map(|raw| parse_event(raw, received_at_ms))
        .collect())
}

fn parse_event(raw: &RawValue, received_at_ms: i64) -> Result<QueuedEvent, EventError> {
    let wire: WireEvent<'_> = serde_json::from_str(raw.get()).map_err(|_| EventError::Shape)?;
    let event_id = wire
        .event_id
        .filter(|id| is_uuid(id))
        .map(|id| id.to_ascii_lowercase())
        .ok_or(EventError::EventId)?;
    let event_time_ms = wire
        .event_time
        .as_deref()
        .and_then(parse_rfc3339_ms)
        .filter(|time| *time <= received_at_ms + MAX_FUTURE_SKEW_MS)
        .ok_or(EventError::EventTime)?;
    let application = wire
        .application
        .filter(|raw| raw.get().starts_with('{') && raw.get().len() <= MAX_EVENT_APPLICATION_BYTES)
        .ok_or(EventError::Application)?;
    if let Some(score) = &wire.client_score {
        if !(0.0..=1.0).contains(&score.probability) {
            return Err(EventError::ClientScore);
        }
    }
    Ok(QueuedEvent {
        event_id,
        event_time_ms,
        received_at_ms,
        application: application.get().to_owned(),
        client_score: wire.client_score,
        channel: Channel::OfflineSync,
        attempt: 1,
    })
}

/// One event's fate in the 202 answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EventAck {
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub accepted: bool,
    /// The applicant's receipt for the decision this event becomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `202 Accepted` from `POST /api/v1/events`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EventsResponse {
    pub request_id: String,
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<EventAck>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::batch::{MAX_EVENTS, MAX_EVENTS_BYTES};

    const NOW: i64 = 1_795_428_900_000;
    const APP: &str = r#"{"age":30}"#;

    fn event(id: &str, time: &str) -> String {
        format!(r#"{{"event_id":"{id}","event_time":"{time}","application":{APP}}}"#)
    }

    fn check(events: &[String], expected: &[&str]) {
        let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
        let parsed = parse_events(body.as_bytes(), NOW).expect("envelope");
        let codes: Vec<&str> = parsed
            .iter()
            .map(|item| {
                item.as_ref()
                    .map_or_else(|error| error.code().as_str(), |_| "OK")
            })
            .collect();
        assert_eq!(codes, expected, "{body}");
    }

    const ID: &str = "0b5c4a1e-8d2f-4a8e-9a57-3c1f5e2d7b90";

    #[test]
    fn envelopes() {
        check(&[event(ID, "2026-11-23T10:15:00Z")], &["OK"]);
        check(
            &[
                event("not-a-uuid", "2026-11-23T10:15:00Z"),
                event(ID, "yesterday"),
                event(ID, "2026-11-23T10:25:00Z"),
                event(ID, "2026-11-23T10:19:59Z"),
                format!(
                    r#"{{"event_id":"{ID}","event_time":"2026-11-23T10:15:00Z","application":[1]}}"#
                ),
                format!(r#"{{"event_id":"{ID}","event_time":"2026-11-23T10:15:00Z"}}"#),
                format!(
                    r#"{{"event_id":"{ID}","event_time":"2026-11-23T10:15:00Z","application":{APP},"extra":1}}"#
                ),
                format!(
                    r#"{{"event_id":"{ID}","event_time":"2026-11-23T10:15:00Z","application":{APP},"branch":"Centro"}}"#
                ),
                format!(
                    r#"{{"event_id":"{ID}","event_time":"2026-11-23T10:15:00Z","application":{APP},"client_score":{{"probability":1.5}}}}"#
                ),
                "17".to_owned(),
            ],
            &[
                ErrorCode::EventId.as_str(),
                ErrorCode::EventTime.as_str(),
                ErrorCode::EventTime.as_str(),
                "OK",
                ErrorCode::EventApplication.as_str(),
                ErrorCode::EventApplication.as_str(),
                ErrorCode::EventShape.as_str(),
                ErrorCode::EventShape.as_str(),
                ErrorCode::ClientScore.as_str(),
                ErrorCode::EventShape.as_str(),
            ],
        );
    }

    #[test]
    fn batch_limits() {
        let code = |body: &str| parse_events(body.as_bytes(), NOW).err().map(|e| e.code());
        assert_eq!(code(r#"{"events":[]}"#), Some(ErrorCode::BatchSize));
        assert_eq!(code(r#"{"events":{}}"#), Some(ErrorCode::BatchEnvelope));
        assert_eq!(code(r#"{"events":["#), Some(ErrorCode::Json));
        let many = vec![event(ID, "2026-11-23T10:15:00Z"); MAX_EVENTS + 1].join(",");
        assert_eq!(
            code(&format!(r#"{{"events":[{many}]}}"#)),
            Some(ErrorCode::BatchSize)
        );
        let huge = format!(r#"{{"events":[]}}{}"#, " ".repeat(MAX_EVENTS_BYTES));
        assert_eq!(code(&huge), Some(ErrorCode::TooLarge));
    }

    #[test]
    fn keeps_the_exact_application_text_and_normalises_the_id() {
        let body = format!(
            r#"{{"events":[{{"event_id":"{}","event_time":"2026-11-23T10:15:00.5+01:00","application":{{ "age" : 30 }},"client_score":{{"probability":0.25}}}}]}}"#,
            ID.to_ascii_uppercase()
        );
        let parsed = parse_events(body.as_bytes(), NOW).expect("envelope");
        let event = parsed[0].as_ref().expect("valid");
        assert_eq!(event.event_id, ID);
        assert_eq!(event.application, r#"{ "age" : 30 }"#);
        assert_eq!(event.event_time_ms, NOW - 3_600_000 + 500);
        assert_eq!(event.channel, Channel::OfflineSync);
    }
}
