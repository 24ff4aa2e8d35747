//! Every stable error code: the ones the API answers with, on a whole request or on one
//! field, and the few the page gives itself when no answer came. Clients switch on these;
//! texts may change. Each code is spelled once, here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`ErrorCode`] with each variant's wire spelling written once.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        /// A stable, machine-readable error code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire spelling, such as `E_VALIDATION`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The code spelled `text`, if there is one.
            pub fn parse(text: &str) -> Option<ErrorCode> {
                match text {
                    $($code => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// A required field is missing.
    Required = "E_REQUIRED",
    /// A field has the wrong JSON type.
    Type = "E_TYPE",
    /// A number or a count is outside its range.
    Range = "E_RANGE",
    /// A value is not one of the allowed names.
    Enum = "E_ENUM",
    /// A text does not have the expected form.
    Format = "E_FORMAT",
    /// A rule relating two or more fields is broken.
    Cross = "E_CROSS",
    /// A key the body does not have.
    UnknownField = "E_UNKNOWN_FIELD",
    /// The same key twice in one object.
    DuplicateField = "E_DUPLICATE_FIELD",
    /// The same item twice in one batch.
    Duplicate = "E_DUPLICATE",
    /// The request id was used before for another body: nothing was stored, nothing of the
    /// first request is told.
    IdempotencyMismatch = "E_IDEMPOTENCY_MISMATCH",
    /// A webhook URL points inside a network (loopback, private, link-local…).
    Target = "E_TARGET",
    /// The item or route refers to something Valle does not have.
    NotFound = "E_NOT_FOUND",
    /// The item would change a value that no longer changes (a matured loan's outcome).
    Final = "E_FINAL",
    /// The body exceeds the size limit.
    TooLarge = "E_TOO_LARGE",
    /// The body is not valid JSON.
    Json = "E_JSON",
    /// The body is JSON but not an object.
    NotObject = "E_NOT_OBJECT",
    /// The body has field errors: see `fields`.
    Validation = "E_VALIDATION",
    /// A batch's envelope is not the documented object.
    BatchEnvelope = "E_BATCH_ENVELOPE",
    /// A batch holds too few or too many items.
    BatchSize = "E_BATCH_SIZE",
    /// An event is not an object of the documented shape.
    EventShape = "E_EVENT_SHAPE",
    /// An event's `event_id` is missing or malformed.
    EventId = "E_EVENT_ID",
    /// An event's `event_time` is missing, malformed or too far from now.
    EventTime = "E_EVENT_TIME",
    /// An event's `application` is missing or not an object.
    EventApplication = "E_EVENT_APPLICATION",
    /// An event's `client_score` is malformed.
    ClientScore = "E_CLIENT_SCORE",
    /// The query parameters have field errors: see `fields`.
    Query = "E_QUERY",
    /// The body is not `application/json`.
    ContentType = "E_CONTENT_TYPE",
    /// The route does not take this method.
    Method = "E_METHOD",
    /// The `X-Request-ID` header is malformed.
    RequestId = "E_REQUEST_ID",
    /// No credentials, or an unknown API token.
    Unauthorized = "E_UNAUTHORIZED",
    /// The account is revoked.
    Revoked = "E_REVOKED",
    /// No account has the Access identity's email.
    UnknownAccount = "E_UNKNOWN_ACCOUNT",
    /// The Access token is not valid for this application.
    AccessInvalid = "E_ACCESS_INVALID",
    /// The Access token has expired.
    AccessExpired = "E_ACCESS_EXPIRED",
    /// The role may not do this.
    Forbidden = "E_FORBIDDEN",
    /// A second approval must come from another person.
    FourEyes = "E_FOUR_EYES",
    /// Someone else changed the item first: see `current`.
    Conflict = "E_CONFLICT",
    /// The cross-origin request is refused.
    Origin = "E_ORIGIN",
    /// Too many requests: retry after `Retry-After`.
    RateLimited = "E_RATE_LIMITED",
    /// The audit trail is busy: retry.
    Busy = "E_BUSY",
    /// Storage is unavailable: retry with the same `X-Request-ID`.
    Store = "E_STORE",
    /// The scoring model is unavailable.
    Model = "E_MODEL",
    /// An internal error.
    Internal = "E_INTERNAL",
    /// A queued event failed every delivery attempt.
    RetriesExhausted = "E_RETRIES_EXHAUSTED",
    /// The page's own: the network did not answer.
    Network = "E_NETWORK",
    /// The page's own: an answer that is not the API's.
    Unexpected = "E_UNEXPECTED",
    /// The page's own: the edge refused a queued item without saying why.
    Refused = "E_REFUSED",
    /// The page's own: the browser could not store the decision locally.
    Storage = "E_STORAGE",
}

impl ErrorCode {
    /// Failures that say nothing about the request itself: the same request may succeed
    /// when retried later.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::Network
                | ErrorCode::Unexpected
                | ErrorCode::RateLimited
                | ErrorCode::Busy
                | ErrorCode::Store
                | ErrorCode::Model
                | ErrorCode::Internal
        )
    }

    /// Refusals after which a client's session is over: sign in again.
    pub fn ends_session(self) -> bool {
        matches!(
            self,
            ErrorCode::Unauthorized
                | ErrorCode::Revoked
                | ErrorCode::UnknownAccount
                | ErrorCode::AccessInvalid
                | ErrorCode::AccessExpired
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A text that is no error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownCode;

    fn from_str(text: &str) -> Result<ErrorCode, UnknownCode> {
        ErrorCode::parse(text).ok_or_else(|| UnknownCode(text.to_owned()))
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ErrorCode, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<ErrorCode> for &str {
    fn eq(&self, code: &ErrorCode) -> bool {
        *self == code.as_str()
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, text: &&str) -> bool {
        self.as_str() == *text
    }
}

/// Every code the API can answer, as a string enum.
#[cfg(feature = "openapi")]
impl schemars::JsonSchema for ErrorCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ErrorCode".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        schemars::json_schema!({ "type": "string", "enum": codes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_written_and_is_spelled_once() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(code.as_str().starts_with("E_"), "{code}");
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).expect("written");
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(
                serde_json::from_str::<ErrorCode>(&json).expect("read"),
                code
            );
        }
        assert!(serde_json::from_str::<ErrorCode>("\"E_NOPE\"").is_err());
        assert_eq!(
            "E_NOPE".parse::<ErrorCode>(),
            Err(UnknownCode("E_NOPE".into()))
        );
    }
}
