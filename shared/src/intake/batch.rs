//! Batch requests: `{"applications": [...]}` with up to [`MAX_BATCH_ITEMS`] items. Each item
//! goes through [`parse_application`] on its own bytes, so an item gets exactly the errors it
//! would get alone.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::contract::body::{malformed, within_limit};
use crate::contract::codes::ErrorCode;
use crate::contract::errors::RequestError;
use crate::contract::i18n::Message;
use crate::intake::application::Application;
use crate::intake::validation::parse_application;

/// Most events in one batch.
pub const MAX_EVENTS: usize = 500;
/// Largest events body: 500 events of about 1.5 KiB with room to spare.
pub const MAX_EVENTS_BYTES: usize = 2 * 1024 * 1024;

/// Most applications in one batch.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// Largest batch body: a thousand applications of about 1 KiB with room to spare.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// What a batch body carries; each kind has its own key, limits and name for its items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchKind {
    /// `POST /api/v1/score/batch`.
    Applications,
    /// `POST /api/v1/events`.
    Events,
}

impl BatchKind {
    /// The envelope's one key, which is also the items' English name.
    pub fn key(self) -> &'static str {
        match self {
            BatchKind::Applications => "applications",
            BatchKind::Events => "events",
        }
    }

    pub fn max_items(self) -> usize {
        match self {
            BatchKind::Applications => MAX_BATCH_ITEMS,
            BatchKind::Events => MAX_EVENTS,
        }
    }

    pub fn max_bytes(self) -> usize {
        match self {
            BatchKind::Applications => MAX_BATCH_BYTES,
            BatchKind::Events => MAX_EVENTS_BYTES,
        }
    }

    fn spanish_name(self) -> &'static str {
        match self {
            BatchKind::Applications => "solicitudes",
            BatchKind::Events => "eventos",
        }
    }
}

/// Why a batch as a whole is refused (item errors are reported per item instead).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Body(RequestError),
    #[error("the body is not {{\"{}\": [...]}}", .0.key())]
    Envelope(BatchKind),
    #[error("{count} {}; a batch holds 1 to {}", kind.key(), kind.max_items())]
    Count { kind: BatchKind, count: usize },
}

impl BatchError {
    pub fn code(&self) -> ErrorCode {
        match self {
            BatchError::Body(error) => error.code(),
            BatchError::Envelope(_) => ErrorCode::BatchEnvelope,
            BatchError::Count { .. } => ErrorCode::BatchSize,
        }
    }

    pub fn message(&self) -> Message {
        match self {
            BatchError::Body(error) => error.message(),
            BatchError::Envelope(kind) => {
                let key = kind.key();
                Message::new(
                    format!("Se esperaba un objeto {{\"{key}\": [...]}} sin otros campos."),
                    format!("Expected an object {{\"{key}\": [...]}} with no other fields."),
                )
            }
            BatchError::Count { kind, count } => {
                let (max, es, en) = (kind.max_items(), kind.spanish_name(), kind.key());
                Message::new(
                    format!("El lote tiene {count} {es}; se admiten de 1 a {max}."),
                    format!("The batch has {count} {en}; 1 to {max} are allowed."),
                )
            }
        }
    }
}

/// A batch body's typed envelope: `{"<key>": [...]}` and no other field.
pub(crate) trait Envelope<'a>: Deserialize<'a> {
    const KIND: BatchKind;
    fn items(self) -> Vec<&'a RawValue>;
}

/// The items of a batch body, each still raw for its own parser, once the body is within
/// its size, is JSON, has the envelope's shape and holds 1 to the kind's most items.
pub(crate) fn batch_items<'a, E: Envelope<'a>>(
    body: &'a [u8],
) -> Result<Vec<&'a RawValue>, BatchError> {
    let kind = E::KIND;
    within_limit(body, kind.max_bytes()).map_err(BatchError::Body)?;
    let envelope: E = serde_json::from_slice(body).map_err(|error| {
        // The envelope's shape is checked as it is read, so a shape error can come before a
        // syntax error further on: bytes that are not JSON are told so first.
        let syntax = serde_json::from_slice::<serde::de::IgnoredAny>(body).err();
        match syntax {
            Some(syntax) => BatchError::Body(malformed(&syntax)),
            None if error.is_data() => BatchError::Envelope(kind),
            None => BatchError::Body(malformed(&error)),
        }
    })?;
    let items = envelope.items();
    if items.is_empty() || items.len() > kind.max_items() {
        return Err(BatchError::Count {
            kind,
            count: items.len(),
        });
    }
    Ok(items)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplicationsEnvelope<'a> {
    #[serde(borrow)]
    applications: Vec<&'a RawValue>,
}

impl<'a> Envelope<'a> for ApplicationsEnvelope<'a> {
    const KIND: BatchKind = BatchKind::Applications;
    fn items(self) -> Vec<&'a RawValue> {
        self.applications
    }
}

/// Every item of a batch, validated on its own.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Result<Application, RequestError>>, BatchError> {
    Ok(batch_items::<ApplicationsEnvelope<'_>>(body)?
        .iter()
        .map(|item| parse_application(item.get().as_bytes()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;

    fn check(body: &str, expected: Result<&[&str], &str>) {
        let shown = &body[..body.len().min(60)];
        match (parse_batch(body.as_bytes()), expected) {
            (Ok(items), Ok(codes)) => {
                let got: Vec<&str> = items
                    .iter()
                    .map(|item| {
                        item.as_ref()
                            .map_or_else(|error| error.code().as_str(), |_| "OK")
                    })
                    .collect();
                assert_eq!(got, codes, "{shown}");
            }
            (Err(error), Err(code)) => assert_eq!(error.code(), code, "{shown}"),
            (got, expected) => panic!("{shown}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn envelopes_and_items() {
        check(&format!(r#"{{"applications":[{VALID}]}}"#), Ok(&["OK"]));
        check(
            &format!(r#"{{"applications":[{VALID}, {{}}, [], {VALID}]}}"#),
            Ok(&[
                "OK",
                ErrorCode::Validation.as_str(),
                ErrorCode::NotObject.as_str(),
                "OK",
            ]),
        );
        check(r#"{"applications":[]}"#, Err(ErrorCode::BatchSize.as_str()));
        check(
            r#"{"applications":{}}"#,
            Err(ErrorCode::BatchEnvelope.as_str()),
        );
        check(r#"{"apps":[]}"#, Err(ErrorCode::BatchEnvelope.as_str()));
        check(
            r#"{"applications":[],"extra":1}"#,
            Err(ErrorCode::BatchEnvelope.as_str()),
        );
        check(r#"[]"#, Err(ErrorCode::BatchEnvelope.as_str()));
        check(r#"{"applications":["#, Err(ErrorCode::Json.as_str()));
        check("nope", Err(ErrorCode::Json.as_str()));
    }

    #[test]
    fn limits() {
        let items = vec![VALID; MAX_BATCH_ITEMS].join(",");
        let full = format!(r#"{{"applications":[{items}]}}"#);
        assert_eq!(
            parse_batch(full.as_bytes()).map(|items| items.len()),
            Ok(1000)
        );
        let over = format!(r#"{{"applications":[{items},{VALID}]}}"#);
        check(&over, Err(ErrorCode::BatchSize.as_str()));
        let huge = format!(
            r#"{{"applications":[{VALID}]}}{}"#,
            " ".repeat(MAX_BATCH_BYTES)
        );
        check(&huge, Err(ErrorCode::TooLarge.as_str()));
    }

    #[test]
    fn an_item_gets_the_errors_it_would_get_alone() {
        let item = r#"{"age": 17, "home": "castle"}"#;
        let batch = format!(r#"{{"applications":[{item}]}}"#);
        let items = parse_batch(batch.as_bytes()).expect("batch parses");
        let alone = parse_application(item.as_bytes()).err();
        assert!(alone.is_some());
        assert_eq!(items[0].as_ref().err(), alone.as_ref());
    }

    #[test]
    fn each_kind_names_its_own_envelope_and_limit_in_both_languages() {
        let check = |error: BatchError, display: &str, es: &str, en: &str| {
            assert_eq!(error.to_string(), display);
            assert_eq!(error.message(), Message::new(es, en));
        };
        check(
            BatchError::Envelope(BatchKind::Applications),
            r#"the body is not {"applications": [...]}"#,
            r#"Se esperaba un objeto {"applications": [...]} sin otros campos."#,
            r#"Expected an object {"applications": [...]} with no other fields."#,
        );
        check(
            BatchError::Envelope(BatchKind::Events),
            r#"the body is not {"events": [...]}"#,
            r#"Se esperaba un objeto {"events": [...]} sin otros campos."#,
            r#"Expected an object {"events": [...]} with no other fields."#,
        );
        check(
            BatchError::Count {
                kind: BatchKind::Applications,
                count: 1001,
            },
            "1001 applications; a batch holds 1 to 1000",
            "El lote tiene 1001 solicitudes; se admiten de 1 a 1000.",
            "The batch has 1001 applications; 1 to 1000 are allowed.",
        );
        check(
            BatchError::Count {
                kind: BatchKind::Events,
                count: 0,
            },
            "0 events; a batch holds 1 to 500",
            "El lote tiene 0 eventos; se admiten de 1 a 500.",
            "The batch has 0 events; 1 to 500 are allowed.",
        );
    }
}
