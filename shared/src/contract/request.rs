//! What every request carries and is timed by: its id (the idempotency key) and the stages
//! its time is split into.

use serde::{Deserialize, Serialize};

/// The header that carries a caller's idempotency key, echoed back on every answer.
pub const REQUEST_ID_HEADER: &str = "X-Request-ID";
/// Longest accepted `X-Request-ID`; a UUID has 36 characters.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// The characters a request id may use, as a JSON Schema `pattern` writes them; a test
/// holds it to [`is_valid_request_id`], character by character.
pub const REQUEST_ID_PATTERN: &str = "^[A-Za-z0-9._:-]+$";

/// Whether a caller-supplied request id is safe to store and echo: 1 to 128 ASCII letters,
/// digits, `.`, `_`, `-` or `:`.
pub fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// How long one stage of a request took. `name` is a [`Stage`]'s; stored records keep
/// whatever name they were written with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct StageTiming {
    pub name: String,
    pub ms: f64,
}

impl StageTiming {
    pub fn new(stage: Stage, ms: f64) -> StageTiming {
        StageTiming {
            name: stage.as_str().to_owned(),
            ms,
        }
    }
}

/// The stages a request's time is split into (`Server-Timing` and each stored decision).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading the request up to its body.
    Read,
    /// The rate limit.
    Throttle,
    /// Signing in.
    Auth,
    /// Splitting a batch into its items.
    Parse,
    Validate,
    /// The policy rules and the model's decision.
    Decide,
    Score,
    Store,
    Write,
    /// Keeping accepted events in the inbox.
    Keep,
    Enqueue,
    /// An event's wait in the queue.
    Queue,
    Simulate,
    Respond,
    /// The whole request.
    Total,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Throttle => "throttle",
            Stage::Auth => "auth",
            Stage::Parse => "parse",
            Stage::Validate => "validate",
            Stage::Decide => "decide",
            Stage::Score => "score",
            Stage::Store => "store",
            Stage::Write => "write",
            Stage::Keep => "keep",
            Stage::Enqueue => "enqueue",
            Stage::Queue => "queue",
            Stage::Simulate => "simulate",
            Stage::Respond => "respond",
            Stage::Total => "total",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_allows_the_characters_the_rule_allows() {
        let class = REQUEST_ID_PATTERN
            .strip_prefix("^[")
            .and_then(|rest| rest.strip_suffix("]+$"))
            .expect("one character class")
            .as_bytes();
        let in_class = |byte: u8| {
            let mut at = 0;
            while at < class.len() {
                if at + 2 < class.len() && class[at + 1] == b'-' {
                    if (class[at]..=class[at + 2]).contains(&byte) {
                        return true;
                    }
                    at += 3;
                } else {
                    if class[at] == byte {
                        return true;
                    }
                    at += 1;
                }
            }
            false
        };
        for byte in 0u8..128 {
            let text = (byte as char).to_string();
            assert_eq!(is_valid_request_id(&text), in_class(byte), "{text:?}");
        }
    }

    #[test]
    fn request_ids() {
        let check = |id: &str, valid: bool| assert_eq!(is_valid_request_id(id), valid, "{id:?}");
        check("0b5c4a1e-8d2f-4a8e-9a57-3c1f5e2d7b90", true);
        check("branch-7:2026-11-23.001_a", true);
        check(&"a".repeat(128), true);
        check(&"a".repeat(129), false);
        check("", false);
        check("has space", false);
        check("semi;colon", false);
        check("ñ", false);
    }
}
