//! Batch requests: `{"applications": [...]}` with up to [`MAX_BATCH_ITEMS`] items. Each item
//! goes through [`parse_application`] on its own bytes, so an item gets exactly the errors it
//! would get alone.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::application::Application;
use crate::codes::ErrorCode;
use crate::i18n::Message;
use crate::validation::{parse_application, RequestError};

/// Most applications in one batch.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// Largest batch body: a thousand applications of about 1 KiB with room to spare.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Why a batch as a whole is refused (item errors are reported per item instead).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Body(RequestError),
    #[error("the body is not {{\"applications\": [...]}}")]
    Envelope,
    #[error("{count} applications; a batch holds 1 to {MAX_BATCH_ITEMS}")]
    Count { count: usize },
}

impl BatchError {
    pub fn code(&self) -> ErrorCode {
        match self {
            BatchError::Body(error) => error.code(),
            BatchError::Envelope => ErrorCode::BatchEnvelope,
            BatchError::Count { .. } => ErrorCode::BatchSize,
        }
    }

    pub fn message(&self) -> Message {
        match self {
            BatchError::Body(error) => error.message(),
            BatchError::Envelope => Message::new(
                "Se esperaba un objeto {\"applications\": [...]} sin otros campos.",
                "Expected an object {\"applications\": [...]} with no other fields.",
            ),
            BatchError::Count { count } => Message::new(
                format!("El lote tiene {count} solicitudes; se admiten de 1 a {MAX_BATCH_ITEMS}."),
                format!("The batch has {count} applications; 1 to {MAX_BATCH_ITEMS} are allowed."),
            ),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    applications: Vec<&'a RawValue>,
}

/// Every item of a batch, validated on its own.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Result<Application, RequestError>>, BatchError> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(BatchError::Body(RequestError::TooLarge {
            limit: MAX_BATCH_BYTES,
            actual: body.len(),
        }));
    }
    let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(|error| {
        if error.is_data() {
            BatchError::Envelope
        } else {
            BatchError::Body(RequestError::Malformed {
                detail: format!(
                    "syntax error at line {} column {}",
                    error.line(),
                    error.column()
                ),
            })
        }
    })?;
    let count = envelope.applications.len();
    if count == 0 || count > MAX_BATCH_ITEMS {
        return Err(BatchError::Count { count });
    }
    Ok(envelope
        .applications
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
}
