//! The errors every request can be refused with: one [`FieldError`] per problem with a
//! field, gathered in a [`RequestError`]; the worker maps each to an HTTP status in one place,
//! and [`ErrorBody`] is how every refusal travels.

use serde::{Deserialize, Serialize};

use crate::contract::codes::ErrorCode;
use crate::contract::i18n::Message;

/// Rules that relate two or more fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CrossRule {
    /// The loan cannot exceed the price of what it buys.
    AmountWithinPrice,
    /// Nobody starts with an employer before [`MIN_WORKING_AGE`].
    WorkingAge,
    /// The amount must stay within [`MAX_AMOUNT_TO_MONTHLY_INCOME`] months of income.
    AmountToIncome,
}

impl CrossRule {
    pub const ALL: [CrossRule; 3] = [
        CrossRule::AmountWithinPrice,
        CrossRule::WorkingAge,
        CrossRule::AmountToIncome,
    ];
}

/// One problem with one field (or with a relation between fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct FieldError {
    /// The JSON key, as sent (for unknown keys, cut to 64 characters).
    pub field: String,
    pub code: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<CrossRule>,
    pub message: Message,
}

/// Each error's field and code, in order: what tests compare.
pub fn field_codes(errors: &[FieldError]) -> Vec<(&str, ErrorCode)> {
    errors
        .iter()
        .map(|error| (error.field.as_str(), error.code))
        .collect()
}

impl FieldError {
    /// An error on `field` (cut to 64 characters: it may echo a caller's key) with no rule.
    pub fn new(field: &str, code: ErrorCode, message: Message) -> FieldError {
        FieldError {
            field: field.chars().take(64).collect(),
            code,
            rule: None,
            message,
        }
    }

    /// `field` is missing or null.
    pub fn required(field: &str) -> FieldError {
        FieldError::new(
            field,
            ErrorCode::Required,
            Message::new("Campo obligatorio.", "Required field."),
        )
    }

    /// `field` holds something other than a string.
    pub fn not_text(field: &str) -> FieldError {
        FieldError::new(
            field,
            ErrorCode::Type,
            Message::new("Debe ser texto.", "Must be a string."),
        )
    }

    /// The body has `field`, which it should not.
    pub fn unknown(field: &str) -> FieldError {
        FieldError::new(
            field,
            ErrorCode::UnknownField,
            Message::new("Campo desconocido.", "Unknown field."),
        )
    }
}

/// Why a request body is not an application. One error type for the shared boundary:
/// the worker maps each variant to an HTTP status in one place.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("body of {actual} bytes exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize, actual: usize },
    #[error("body is not valid JSON: {detail}")]
    Malformed { detail: String },
    #[error("body is JSON {found}, not an object")]
    NotAnObject { found: &'static str },
    #[error("{} field error(s)", .0.len())]
    Invalid(Vec<FieldError>),
}

impl RequestError {
    /// The stable code of the whole request's failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::TooLarge { .. } => ErrorCode::TooLarge,
            RequestError::Malformed { .. } => ErrorCode::Json,
            RequestError::NotAnObject { .. } => ErrorCode::NotObject,
            RequestError::Invalid(_) => ErrorCode::Validation,
        }
    }

    pub fn message(&self) -> Message {
        match self {
            RequestError::TooLarge { limit, actual } => Message::new(
                format!("La solicitud ocupa {actual} bytes; el máximo es {limit}."),
                format!("The request is {actual} bytes; the limit is {limit}."),
            ),
            RequestError::Malformed { detail } => Message::new(
                format!("El cuerpo no es JSON válido ({detail})."),
                format!("The body is not valid JSON ({detail})."),
            ),
            RequestError::NotAnObject { found } => Message::new(
                format!(
                    "Se esperaba un objeto JSON y llegó {}.",
                    spanish_json_kind(found)
                ),
                format!("Expected a JSON object, got {found}."),
            ),
            RequestError::Invalid(errors) => Message::new(
                format!("La solicitud tiene {} error(es).", errors.len()),
                format!("The application has {} error(s).", errors.len()),
            ),
        }
    }

    /// The codes of the failure and of each field, as one stable text (`E_VALIDATION
    /// age:E_RANGE income:E_TYPE`): what a batch's fingerprint keeps of an invalid item.
    pub fn codes_text(&self) -> String {
        std::iter::once(self.code().as_str().to_owned())
            .chain(
                self.field_errors()
                    .iter()
                    .map(|field| format!("{}:{}", field.field, field.code.as_str())),
            )
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The field errors, empty for body-level failures.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            RequestError::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

fn spanish_json_kind(found: &str) -> &'static str {
    match found {
        "an array" => "un array",
        "a string" => "un texto",
        "a number" => "un número",
        "a boolean" => "un booleano",
        _ => "null",
    }
}

/// Every non-2xx answer: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: Message,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level errors; empty unless `code` is [`ErrorCode::Validation`] or
    /// [`ErrorCode::Query`].
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

impl ErrorBody {
    /// A body that did not read, as the edge answers it; the page shows the same before
    /// sending.
    pub fn of_request(error: &RequestError, request_id: Option<&str>) -> ErrorBody {
        ErrorBody {
            code: error.code(),
            message: error.message(),
            request_id: request_id.map(str::to_owned),
            fields: error.field_errors().to_vec(),
        }
    }
}
