//! The review routes' bodies and answers: officers' decisions and approvals, the
//! applicant's contest, each read with field codes; a case and a page of the queue.

use serde::{Deserialize, Serialize};

use super::{ApprovalAction, ReasonCode, Review, ReviewAction};
use crate::contract::body::read_object;
use crate::contract::codes::ErrorCode;
use crate::contract::errors::{FieldError, RequestError};
use crate::contract::i18n::Message;
use crate::records::decisions::DecisionRecord;

/// Longest officer's note, in characters.
pub const MAX_NOTE_CHARS: usize = 1_000;
/// Largest body of a review or approval request.
pub const MAX_REVIEW_BODY_BYTES: usize = 8 * 1024;

/// `POST /api/v1/reviews/{request_id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DecideRequest {
    pub action: ReviewAction,
    pub reason: ReasonCode,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/reviews/{request_id}/approval`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ApprovalRequest {
    pub action: ApprovalAction,
    #[serde(default)]
    pub note: String,
}

/// A decision with its review: `GET /api/v1/reviews/{request_id}`, a queue item, and the
/// answer of every review write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReviewCase {
    pub decision: DecisionRecord,
    pub review: Review,
}

/// One page of the review queue, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReviewPage {
    pub cases: Vec<ReviewCase>,
    /// Pass as `cursor` to get the next page (the queue position after which it starts);
    /// null on the last page.
    pub next_cursor: Option<u64>,
}

/// Largest comment an applicant may contest a decision with.
pub const MAX_CONTEST_CHARS: usize = 2_000;

/// Reads `POST /api/v1/decisions/{request_id}/contest`: `{"comment": "…"}`, not blank.
pub fn parse_contest_request(body: &[u8]) -> Result<String, RequestError> {
    let fields = read_object(body, MAX_REVIEW_BODY_BYTES, &["comment"])?;
    let mut errors = fields.errors;
    let comment = match fields.object.get("comment") {
        Some(serde_json::Value::String(text)) if !text.trim().is_empty() => {
            if text.chars().count() > MAX_CONTEST_CHARS {
                errors.push(FieldError::new(
                    "comment",
                    ErrorCode::Range,
                    Message::new(
                        format!("El comentario admite hasta {MAX_CONTEST_CHARS} caracteres."),
                        format!("The comment takes at most {MAX_CONTEST_CHARS} characters."),
                    ),
                ));
            }
            Some(text.trim().to_owned())
        }
        Some(serde_json::Value::String(_)) | None | Some(serde_json::Value::Null) => {
            errors.push(FieldError::required("comment"));
            None
        }
        Some(_) => {
            errors.push(FieldError::not_text("comment"));
            None
        }
    };
    match comment {
        Some(comment) if errors.is_empty() => Ok(comment),
        _ => Err(RequestError::Invalid(errors)),
    }
}

/// Reads a review or approval body: every field error at once, with stable codes.
pub fn parse_decide_request(body: &[u8]) -> Result<DecideRequest, RequestError> {
    let fields = read_object(body, MAX_REVIEW_BODY_BYTES, &["action", "reason", "note"])?;
    let mut errors = fields.errors;
    let action = required_enum(&fields.object, "action", &mut errors, ReviewAction::parse);
    let reason = required_enum(&fields.object, "reason", &mut errors, ReasonCode::parse);
    let note = note(&fields.object, "note", &mut errors);
    if reason == Some(ReasonCode::Other) && note.as_deref().is_some_and(|n| n.trim().is_empty()) {
        errors.push(FieldError::new(
            "note",
            ErrorCode::Cross,
            Message::new(
                "Explique el motivo en la nota cuando elige «Otro motivo».",
                "Explain the reason in the note when choosing \"Other\".",
            ),
        ));
    }
    match (action, reason, note) {
        (Some(action), Some(reason), Some(note)) if errors.is_empty() => Ok(DecideRequest {
            action,
            reason,
            note,
        }),
        _ => Err(RequestError::Invalid(errors)),
    }
}

pub fn parse_approval_request(body: &[u8]) -> Result<ApprovalRequest, RequestError> {
    let fields = read_object(body, MAX_REVIEW_BODY_BYTES, &["action", "note"])?;
    let mut errors = fields.errors;
    let action = required_enum(&fields.object, "action", &mut errors, ApprovalAction::parse);
    let note = note(&fields.object, "note", &mut errors);
    match (action, note) {
        (Some(action), Some(note)) if errors.is_empty() => Ok(ApprovalRequest { action, note }),
        _ => Err(RequestError::Invalid(errors)),
    }
}

fn required_enum<T>(
    object: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    errors: &mut Vec<FieldError>,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    match object.get(name) {
        None | Some(serde_json::Value::Null) => {
            errors.push(FieldError::required(name));
            None
        }
        Some(serde_json::Value::String(text)) => {
            let value = parse(text);
            if value.is_none() {
                errors.push(FieldError::new(
                    name,
                    ErrorCode::Enum,
                    Message::new("Valor no admitido.", "Value not allowed."),
                ));
            }
            value
        }
        Some(_) => {
            errors.push(FieldError::not_text(name));
            None
        }
    }
}

fn note(
    object: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match object.get(name) {
        None | Some(serde_json::Value::Null) => Some(String::new()),
        Some(serde_json::Value::String(text)) if text.chars().count() <= MAX_NOTE_CHARS => {
            Some(text.trim().to_owned())
        }
        Some(serde_json::Value::String(_)) => {
            errors.push(FieldError::new(
                name,
                ErrorCode::Range,
                Message::new(
                    format!("La nota admite hasta {MAX_NOTE_CHARS} caracteres."),
                    format!("The note takes at most {MAX_NOTE_CHARS} characters."),
                ),
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::not_text(name));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contest_bodies() {
        let codes = |body: &str| match parse_contest_request(body.as_bytes()) {
            Ok(comment) => Ok(comment),
            Err(RequestError::Invalid(errors)) => Err(errors
                .into_iter()
                .map(|e| (e.field, e.code))
                .collect::<Vec<_>>()),
            Err(other) => panic!("{body}: {other:?}"),
        };
        assert_eq!(
            codes(r#"{"comment":"  cobro más  "}"#),
            Ok("cobro más".to_owned())
        );
        assert_eq!(
            codes(r#"{"comment":"  "}"#),
            Err(vec![("comment".to_owned(), ErrorCode::Required)])
        );
        assert_eq!(
            codes(r#"{"comment":1}"#),
            Err(vec![("comment".to_owned(), ErrorCode::Type)])
        );
        let long = format!(r#"{{"comment":"{}"}}"#, "a".repeat(MAX_CONTEST_CHARS + 1));
        assert_eq!(
            codes(&long),
            Err(vec![("comment".to_owned(), ErrorCode::Range)])
        );
        assert!(codes(r#"{"comment":"x","extra":1}"#).is_err());
    }

    #[test]
    fn bodies_are_read_with_field_codes() {
        let check = |body: &str, expected: Result<DecideRequest, &[(&str, ErrorCode)]>| {
            let got = parse_decide_request(body.as_bytes());
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{body}"),
                (Err(RequestError::Invalid(errors)), Err(codes)) => {
                    let got: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
                    assert_eq!(got, codes, "{body}");
                }
                (got, _) => panic!("{body}: {got:?}"),
            }
        };
        check(
            r#"{"action":"approve","reason":"verified_income","note":" ok "}"#,
            Ok(DecideRequest {
                action: ReviewAction::Approve,
                reason: ReasonCode::VerifiedIncome,
                note: "ok".into(),
            }),
        );
        check(
            r#"{}"#,
            Err(&[
                ("action", ErrorCode::Required),
                ("reason", ErrorCode::Required),
            ]),
        );
        check(
            r#"{"action":"maybe","reason":7,"x":1}"#,
            Err(&[
                ("x", ErrorCode::UnknownField),
                ("action", ErrorCode::Enum),
                ("reason", ErrorCode::Type),
            ]),
        );
        check(
            r#"{"action":"decline","reason":"other"}"#,
            Err(&[("note", ErrorCode::Cross)]),
        );
        let long = format!(
            r#"{{"action":"decline","reason":"other","note":"{}"}}"#,
            "a".repeat(1_001)
        );
        check(&long, Err(&[("note", ErrorCode::Range)]));
        assert!(matches!(
            parse_decide_request(b"[1]"),
            Err(RequestError::NotAnObject { .. })
        ));
        assert!(matches!(
            parse_decide_request(b"{"),
            Err(RequestError::Malformed { .. })
        ));
        assert_eq!(
            parse_approval_request(br#"{"action":"confirm"}"#),
            Ok(ApprovalRequest {
                action: ApprovalAction::Confirm,
                note: String::new()
            })
        );
        assert!(parse_approval_request(br#"{"action":"approve"}"#).is_err());
    }
}
