//! The review queue's rules: what an officer may decide on an application, how a decision
//! that goes against the model is classified (high-side / low-side override), the second
//! approval a low-side override needs, and the applicant's request for a human review. All
//! transitions are pure functions of the stored review and the request, so the worker only
//! reads, calls [`decide`] or [`confirm`], and writes.

use serde::{Deserialize, Serialize};

use crate::contract::body::read_object;
use crate::contract::codes::ErrorCode;
use crate::contract::errors::{FieldError, RequestError};
use crate::contract::i18n::Message;
use crate::decision::model::{Band, Decision};
use crate::lending::officers::Account;
use crate::records::decisions::DecisionRecord;

/// Longest officer's note, in characters.
pub const MAX_NOTE_CHARS: usize = 1_000;
/// Largest body of a review or approval request.
pub const MAX_REVIEW_BODY_BYTES: usize = 8 * 1024;

/// What an officer decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    Approve,
    Decline,
    RequestInfo,
}

/// Every action, in the order an officer is offered them.
pub const REVIEW_ACTIONS: [ReviewAction; 3] = [
    ReviewAction::Approve,
    ReviewAction::Decline,
    ReviewAction::RequestInfo,
];

impl ReviewAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Approve => "approve",
            ReviewAction::Decline => "decline",
            ReviewAction::RequestInfo => "request_info",
        }
    }

    pub fn parse(text: &str) -> Option<ReviewAction> {
        REVIEW_ACTIONS
            .into_iter()
            .find(|action| action.as_str() == text)
    }

    pub fn label(self) -> Message {
        match self {
            ReviewAction::Approve => Message::new("Aprobar", "Approve"),
            ReviewAction::Decline => Message::new("Denegar", "Decline"),
            ReviewAction::RequestInfo => Message::new("Pedir información", "Request information"),
        }
    }
}

/// What a supervisor does with a low-side approval waiting for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalAction {
    /// The approval becomes final.
    Confirm,
    /// The application goes back to the queue.
    Reject,
}

impl ApprovalAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalAction::Confirm => "confirm",
            ApprovalAction::Reject => "reject",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalAction> {
        [ApprovalAction::Confirm, ApprovalAction::Reject]
            .into_iter()
            .find(|action| action.as_str() == text)
    }
}

/// Where an application stands with the people who decide on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// No one has decided and no one needs to: the model's decision stands.
    Automatic,
    /// In the queue: the model proposed review, an applicant asked for a human, or a
    /// supervisor sent an approval back.
    Pending,
    /// An officer asked the applicant for information; still in the queue.
    InfoRequested,
    /// A low-side approval waiting for a supervisor.
    AwaitingApproval,
    Approved,
    Declined,
}

/// Every state, for filters and labels.
pub const REVIEW_STATES: [ReviewState; 6] = [
    ReviewState::Automatic,
    ReviewState::Pending,
    ReviewState::InfoRequested,
    ReviewState::AwaitingApproval,
    ReviewState::Approved,
    ReviewState::Declined,
];

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Automatic => "automatic",
            ReviewState::Pending => "pending",
            ReviewState::InfoRequested => "info_requested",
            ReviewState::AwaitingApproval => "awaiting_approval",
            ReviewState::Approved => "approved",
            ReviewState::Declined => "declined",
        }
    }

    pub fn parse(text: &str) -> Option<ReviewState> {
        REVIEW_STATES
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// Whether an officer still has to act (the review queue).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ReviewState::Pending | ReviewState::InfoRequested | ReviewState::AwaitingApproval
        )
    }

    pub fn label(self) -> Message {
        match self {
            ReviewState::Automatic => Message::new("Automática", "Automatic"),
            ReviewState::Pending => Message::new("Pendiente", "Pending"),
            ReviewState::InfoRequested => {
                Message::new("Información pedida", "Information requested")
            }
            ReviewState::AwaitingApproval => Message::new("Espera aprobación", "Awaiting approval"),
            ReviewState::Approved => Message::new("Aprobada", "Approved"),
            ReviewState::Declined => Message::new("Rechazada", "Declined"),
        }
    }
}

/// How an officer's final decision relates to the model's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Override {
    /// The officer agrees with the model, or the model referred the case.
    None,
    /// The model approves, the officer declines.
    HighSide,
    /// The model declines, the officer approves.
    LowSide,
}

pub const OVERRIDES: [Override; 3] = [Override::None, Override::HighSide, Override::LowSide];

impl Override {
    pub fn as_str(self) -> &'static str {
        match self {
            Override::None => "none",
            Override::HighSide => "high_side",
            Override::LowSide => "low_side",
        }
    }

    pub fn parse(text: &str) -> Option<Override> {
        OVERRIDES.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn label(self) -> Message {
        match self {
            Override::None => Message::new("sin excepción", "no override"),
            Override::HighSide => Message::new(
                "excepción al alza (deniega lo aprobado)",
                "high-side override",
            ),
            Override::LowSide => Message::new(
                "excepción a la baja (aprueba lo denegado)",
                "low-side override",
            ),
        }
    }
}

/// The override an officer's action makes against the model's proposal. A referral
/// (`review`) is the model asking for a person, so neither answer overrides it.
pub fn classify(proposed: Decision, action: ReviewAction) -> Override {
    match (proposed, action) {
        (Decision::Approve, ReviewAction::Decline) => Override::HighSide,
        (Decision::Decline, ReviewAction::Approve) => Override::LowSide,
        _ => Override::None,
    }
}

/// Why an officer decided as they did: a fixed list, so reports can count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    VerifiedIncome,
    SufficientCollateral,
    MemberHistory,
    InsufficientIncome,
    HighDebtBurden,
    AdversePaymentHistory,
    UnverifiableInformation,
    MissingDocuments,
    PolicyException,
    Other,
}

pub const REASON_CODES: [ReasonCode; 10] = [
    ReasonCode::VerifiedIncome,
    ReasonCode::SufficientCollateral,
    ReasonCode::MemberHistory,
    ReasonCode::InsufficientIncome,
    ReasonCode::HighDebtBurden,
    ReasonCode::AdversePaymentHistory,
    ReasonCode::UnverifiableInformation,
    ReasonCode::MissingDocuments,
    ReasonCode::PolicyException,
    ReasonCode::Other,
];

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::VerifiedIncome => "verified_income",
            ReasonCode::SufficientCollateral => "sufficient_collateral",
            ReasonCode::MemberHistory => "member_history",
            ReasonCode::InsufficientIncome => "insufficient_income",
            ReasonCode::HighDebtBurden => "high_debt_burden",
            ReasonCode::AdversePaymentHistory => "adverse_payment_history",
            ReasonCode::UnverifiableInformation => "unverifiable_information",
            ReasonCode::MissingDocuments => "missing_documents",
            ReasonCode::PolicyException => "policy_exception",
            ReasonCode::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<ReasonCode> {
        REASON_CODES.into_iter().find(|code| code.as_str() == text)
    }

    pub fn label(self) -> Message {
        match self {
            ReasonCode::VerifiedIncome => Message::new("Ingresos verificados", "Income verified"),
            ReasonCode::SufficientCollateral => {
                Message::new("Garantía suficiente", "Sufficient collateral")
            }
            ReasonCode::MemberHistory => {
                Message::new("Buen historial como socio", "Good history as a member")
            }
            ReasonCode::InsufficientIncome => {
                Message::new("Ingresos insuficientes", "Insufficient income")
            }
            ReasonCode::HighDebtBurden => Message::new("Endeudamiento elevado", "High debt burden"),
            ReasonCode::AdversePaymentHistory => {
                Message::new("Historial de pagos adverso", "Adverse payment history")
            }
            ReasonCode::UnverifiableInformation => Message::new(
                "Información no verificable",
                "Information cannot be verified",
            ),
            ReasonCode::MissingDocuments => Message::new("Faltan documentos", "Documents missing"),
            ReasonCode::PolicyException => {
                Message::new("Excepción a la política", "Policy exception")
            }
            ReasonCode::Other => Message::new("Otro motivo (ver nota)", "Other (see note)"),
        }
    }
}

/// The stored state of one application's review. An application no one has touched has
/// none stored; [`Review::initial`] is what it stands at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Review {
    pub request_id: String,
    pub state: ReviewState,
    /// The model's decision, copied so the review reads alone.
    pub proposed: Decision,
    pub action: Option<ReviewAction>,
    pub reason: Option<ReasonCode>,
    pub note: String,
    pub override_kind: Override,
    pub decided_by: Option<String>,
    pub decided_at_ms: Option<i64>,
    pub approval: Option<ApprovalAction>,
    pub approval_note: String,
    pub approved_by: Option<String>,
    pub approved_at_ms: Option<i64>,
    pub human_review_requested_at_ms: Option<i64>,
    /// What the applicant wrote when they contested the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contest_comment: Option<String>,
    /// Grows with every write; a write applies only over the version it read.
    pub version: u32,
}

impl Review {
    pub fn initial(request_id: &str, proposed: Decision) -> Review {
        Review {
            request_id: request_id.to_owned(),
            state: if proposed == Decision::Review {
                ReviewState::Pending
            } else {
                ReviewState::Automatic
            },
            proposed,
            action: None,
            reason: None,
            note: String::new(),
            override_kind: Override::None,
            decided_by: None,
            decided_at_ms: None,
            approval: None,
            approval_note: String::new(),
            approved_by: None,
            approved_at_ms: None,
            human_review_requested_at_ms: None,
            contest_comment: None,
            version: 0,
        }
    }

    /// The decision that stands: a person's if final, the model's if no one needs to decide,
    /// none while the application is in the queue.
    pub fn final_decision(&self) -> Option<Decision> {
        match self.state {
            ReviewState::Approved => Some(Decision::Approve),
            ReviewState::Declined => Some(Decision::Decline),
            ReviewState::Automatic => Some(self.proposed),
            ReviewState::Pending | ReviewState::InfoRequested | ReviewState::AwaitingApproval => {
                None
            }
        }
    }
}

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
    /// The decision row after which the next page starts.
    pub next_after: Option<u64>,
}

/// What a write does to a review.
#[derive(Clone, Debug, PartialEq)]
// A step lives for one write, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// The new review, one version on.
    Changed(Review),
    /// The request repeats what is already stored: nothing is written.
    Unchanged,
}

/// Why a review write is refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ReviewRefusal {
    /// The application is not where the request expects it (another officer was first, or
    /// it is final): the answer carries the current review.
    #[error("the review is {}", .0.state.as_str())]
    Conflict(Box<Review>),
    /// The officer who made a low-side approval cannot also confirm it.
    #[error("the second approval must come from another person")]
    SameOfficer,
}

/// An officer's decision on an application.
pub fn decide(
    current: &Review,
    actor: &Account,
    request: &DecideRequest,
    now_ms: i64,
) -> Result<Step, ReviewRefusal> {
    let override_kind = classify(current.proposed, request.action);
    let state = match request.action {
        ReviewAction::RequestInfo => ReviewState::InfoRequested,
        ReviewAction::Decline => ReviewState::Declined,
        ReviewAction::Approve if override_kind == Override::LowSide => {
            ReviewState::AwaitingApproval
        }
        ReviewAction::Approve => ReviewState::Approved,
    };
    let repeats = current.state == state
        && current.action == Some(request.action)
        && current.reason == Some(request.reason)
        && current.note == request.note
        && current.decided_by.as_deref() == Some(actor.email.as_str());
    if repeats {
        return Ok(Step::Unchanged);
    }
    if !matches!(
        current.state,
        ReviewState::Automatic | ReviewState::Pending | ReviewState::InfoRequested
    ) {
        return Err(ReviewRefusal::Conflict(Box::new(current.clone())));
    }
    Ok(Step::Changed(Review {
        state,
        action: Some(request.action),
        reason: Some(request.reason),
        note: request.note.clone(),
        override_kind,
        decided_by: Some(actor.email.clone()),
        decided_at_ms: Some(now_ms),
        approval: None,
        approval_note: String::new(),
        approved_by: None,
        approved_at_ms: None,
        version: current.version + 1,
        ..current.clone()
    }))
}

/// A supervisor's answer to a low-side approval: four eyes, so never the decider's own.
pub fn confirm(
    current: &Review,
    actor: &Account,
    request: &ApprovalRequest,
    now_ms: i64,
) -> Result<Step, ReviewRefusal> {
    let state = match request.action {
        ApprovalAction::Confirm => ReviewState::Approved,
        ApprovalAction::Reject => ReviewState::Pending,
    };
    let repeats = current.state == state
        && current.approval == Some(request.action)
        && current.approval_note == request.note
        && current.approved_by.as_deref() == Some(actor.email.as_str());
    if repeats {
        return Ok(Step::Unchanged);
    }
    if current.state != ReviewState::AwaitingApproval {
        return Err(ReviewRefusal::Conflict(Box::new(current.clone())));
    }
    if current.decided_by.as_deref() == Some(actor.email.as_str()) {
        return Err(ReviewRefusal::SameOfficer);
    }
    Ok(Step::Changed(Review {
        state,
        approval: Some(request.action),
        approval_note: request.note.clone(),
        approved_by: Some(actor.email.clone()),
        approved_at_ms: Some(now_ms),
        version: current.version + 1,
        ..current.clone()
    }))
}

/// The applicant asks for a person to look at the decision (EU 2023/2225, art. 18), or
/// contests it with a comment (GDPR art. 22(3)): the application joins the queue unless a
/// person has already decided it or it is there. A first comment is kept; a repeat changes
/// nothing.
pub fn request_human_review(current: &Review, now_ms: i64, comment: Option<&str>) -> Step {
    let comment = comment.filter(|_| current.contest_comment.is_none());
    if current.human_review_requested_at_ms.is_some() && comment.is_none() {
        return Step::Unchanged;
    }
    Step::Changed(Review {
        contest_comment: comment
            .map(str::to_owned)
            .or(current.contest_comment.clone()),
        human_review_requested_at_ms: current.human_review_requested_at_ms.or(Some(now_ms)),
        state: if current.state == ReviewState::Automatic {
            ReviewState::Pending
        } else {
            current.state
        },
        version: current.version + 1,
        ..current.clone()
    })
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

/// One officer's decisions in one band, for the overrides report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OverrideRow {
    pub officer: String,
    pub band: Band,
    /// Final approvals and declines the officer made (information requests are not).
    pub decided: u64,
    pub high_side: u64,
    pub low_side: u64,
}

impl OverrideRow {
    pub fn high_side_rate(&self) -> f64 {
        rate(self.high_side, self.decided)
    }

    pub fn low_side_rate(&self) -> f64 {
        rate(self.low_side, self.decided)
    }
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// `GET /api/v1/reports/overrides?from&to`: rows by officer and band, and their total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OverrideReport {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub rows: Vec<OverrideRow>,
    pub decided: u64,
    pub high_side: u64,
    pub low_side: u64,
    pub high_side_rate: f64,
    pub low_side_rate: f64,
}

impl OverrideReport {
    pub fn new(
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        mut rows: Vec<OverrideRow>,
    ) -> OverrideReport {
        rows.sort_by(|a, b| (&a.officer, a.band as u8).cmp(&(&b.officer, b.band as u8)));
        let sum = |pick: fn(&OverrideRow) -> u64| rows.iter().map(pick).sum::<u64>();
        let (decided, high_side, low_side) = (
            sum(|r| r.decided),
            sum(|r| r.high_side),
            sum(|r| r.low_side),
        );
        OverrideReport {
            from_ms,
            to_ms,
            high_side_rate: rate(high_side, decided),
            low_side_rate: rate(low_side, decided),
            rows,
            decided,
            high_side,
            low_side,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lending::officers::Role;

    fn person(email: &str, role: Role) -> Account {
        Account {
            id: 1,
            email: email.to_owned(),
            name: email.to_owned(),
            role,
        }
    }

    fn request(action: ReviewAction, reason: ReasonCode) -> DecideRequest {
        DecideRequest {
            action,
            reason,
            note: String::new(),
        }
    }

    #[test]
    fn overrides_are_classified_against_the_model() {
        let check = |proposed: Decision, action: ReviewAction, expected: Override| {
            assert_eq!(
                classify(proposed, action),
                expected,
                "{proposed:?} {action:?}"
            );
        };
        check(Decision::Approve, ReviewAction::Approve, Override::None);
        check(Decision::Approve, ReviewAction::Decline, Override::HighSide);
        check(Decision::Approve, ReviewAction::RequestInfo, Override::None);
        check(Decision::Review, ReviewAction::Approve, Override::None);
        check(Decision::Review, ReviewAction::Decline, Override::None);
        check(Decision::Decline, ReviewAction::Approve, Override::LowSide);
        check(Decision::Decline, ReviewAction::Decline, Override::None);
    }

    #[test]
    fn decisions_move_the_review_and_repeats_change_nothing() {
        let ana = person("ana@coop.example", Role::Officer);
        let beto = person("beto@coop.example", Role::Officer);
        let check = |proposed: Decision, action: ReviewAction, state: ReviewState| {
            let start = Review::initial("r1", proposed);
            let Ok(Step::Changed(review)) = decide(
                &start,
                &ana,
                &request(action, ReasonCode::VerifiedIncome),
                7,
            ) else {
                panic!("{proposed:?} {action:?} should change the review");
            };
            assert_eq!(review.state, state, "{proposed:?} {action:?}");
            assert_eq!(review.version, 1);
            assert_eq!(review.decided_by.as_deref(), Some("ana@coop.example"));
            assert_eq!(review.decided_at_ms, Some(7));
            assert_eq!(
                decide(
                    &review,
                    &ana,
                    &request(action, ReasonCode::VerifiedIncome),
                    8
                ),
                Ok(Step::Unchanged),
                "a repeat"
            );
            review
        };
        check(
            Decision::Review,
            ReviewAction::Approve,
            ReviewState::Approved,
        );
        check(
            Decision::Approve,
            ReviewAction::Decline,
            ReviewState::Declined,
        );
        check(
            Decision::Decline,
            ReviewAction::Approve,
            ReviewState::AwaitingApproval,
        );
        let asked = check(
            Decision::Review,
            ReviewAction::RequestInfo,
            ReviewState::InfoRequested,
        );
        // After asking for information any officer may decide.
        assert!(matches!(
            decide(
                &asked,
                &beto,
                &request(ReviewAction::Decline, ReasonCode::MissingDocuments),
                9
            ),
            Ok(Step::Changed(Review {
                state: ReviewState::Declined,
                ..
            }))
        ));
        // A final decision by someone else, or a different one by the same officer, conflicts.
        let approved = check(
            Decision::Review,
            ReviewAction::Approve,
            ReviewState::Approved,
        );
        for (who, action) in [
            (&beto, ReviewAction::Approve),
            (&ana, ReviewAction::Decline),
        ] {
            assert_eq!(
                decide(
                    &approved,
                    who,
                    &request(action, ReasonCode::VerifiedIncome),
                    9
                ),
                Err(ReviewRefusal::Conflict(Box::new(approved.clone())))
            );
        }
    }

    #[test]
    fn low_side_approvals_need_another_persons_confirmation() {
        let ana = person("ana@coop.example", Role::Supervisor);
        let sara = person("sara@coop.example", Role::Supervisor);
        let start = Review::initial("r1", Decision::Decline);
        let Ok(Step::Changed(waiting)) = decide(
            &start,
            &ana,
            &request(ReviewAction::Approve, ReasonCode::PolicyException),
            1,
        ) else {
            panic!("a low-side approval is recorded");
        };
        assert_eq!(waiting.override_kind, Override::LowSide);
        assert_eq!(waiting.final_decision(), None);
        let confirm_by = |who: &Account, action: ApprovalAction, review: &Review| {
            confirm(
                review,
                who,
                &ApprovalRequest {
                    action,
                    note: String::new(),
                },
                2,
            )
        };
        assert_eq!(
            confirm_by(&ana, ApprovalAction::Confirm, &waiting),
            Err(ReviewRefusal::SameOfficer)
        );
        let Ok(Step::Changed(approved)) = confirm_by(&sara, ApprovalAction::Confirm, &waiting)
        else {
            panic!("another supervisor confirms");
        };
        assert_eq!(approved.state, ReviewState::Approved);
        assert_eq!(approved.final_decision(), Some(Decision::Approve));
        assert_eq!(
            confirm_by(&sara, ApprovalAction::Confirm, &approved),
            Ok(Step::Unchanged)
        );
        assert!(matches!(
            confirm_by(&sara, ApprovalAction::Reject, &approved),
            Err(ReviewRefusal::Conflict(_))
        ));
        let Ok(Step::Changed(back)) = confirm_by(&sara, ApprovalAction::Reject, &waiting) else {
            panic!("a rejection sends it back");
        };
        assert_eq!(back.state, ReviewState::Pending);
        assert!(matches!(
            decide(
                &back,
                &ana,
                &request(ReviewAction::Decline, ReasonCode::HighDebtBurden),
                3
            ),
            Ok(Step::Changed(Review {
                state: ReviewState::Declined,
                ..
            }))
        ));
        assert!(matches!(
            confirm_by(&sara, ApprovalAction::Confirm, &start),
            Err(ReviewRefusal::Conflict(_))
        ));
    }

    #[test]
    fn a_human_review_request_joins_the_queue_once() {
        let start = Review::initial("r1", Decision::Decline);
        assert_eq!(start.state, ReviewState::Automatic);
        let Step::Changed(asked) = request_human_review(&start, 5, None) else {
            panic!("the request is recorded");
        };
        assert_eq!(asked.state, ReviewState::Pending);
        assert_eq!(asked.human_review_requested_at_ms, Some(5));
        assert_eq!(request_human_review(&asked, 6, None), Step::Unchanged);
        // A contest after the request adds its comment once and keeps the first time.
        let Step::Changed(contested) = request_human_review(&asked, 7, Some("mis ingresos")) else {
            panic!("the comment is recorded");
        };
        assert_eq!(contested.contest_comment.as_deref(), Some("mis ingresos"));
        assert_eq!(contested.human_review_requested_at_ms, Some(5));
        assert_eq!(
            request_human_review(&contested, 8, Some("otra")),
            Step::Unchanged
        );
    }

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

    #[test]
    fn the_report_sums_its_rows() {
        let row = |officer: &str, band: Band, decided, high_side, low_side| OverrideRow {
            officer: officer.into(),
            band,
            decided,
            high_side,
            low_side,
        };
        let report = OverrideReport::new(
            None,
            None,
            vec![row("b", Band::Alto, 4, 0, 2), row("a", Band::Bajo, 6, 3, 0)],
        );
        assert_eq!(report.rows[0].officer, "a");
        assert_eq!(
            (report.decided, report.high_side, report.low_side),
            (10, 3, 2)
        );
        assert!((report.high_side_rate - 0.3).abs() < 1e-12);
        assert!((report.rows[1].low_side_rate() - 0.5).abs() < 1e-12);
        assert_eq!(
            OverrideReport::new(None, None, Vec::new()).low_side_rate,
            0.0
        );
    }
}
