//! The review queue's rules: what an officer may decide on an application, how a decision
//! that goes against the model is classified (high-side / low-side override), the second
//! approval a low-side override needs, and the applicant's request for a human review. All
//! transitions are pure functions of the stored review and the request, so the worker only
//! reads, calls [`decide`] or [`confirm`], and writes.
use serde::{Deserialize, Serialize};

use crate::contract::i18n::Message;
use crate::decision::model::Decision;

pub mod report;
pub mod requests;
pub mod transitions;

pub use report::{OverrideReport, OverrideRow};
pub use requests::{
    parse_approval_request, parse_contest_request, parse_decide_request, ApprovalRequest,
    DecideRequest, ReviewCase, ReviewPage, MAX_CONTEST_CHARS, MAX_NOTE_CHARS,
    MAX_REVIEW_BODY_BYTES,
};
pub use transitions::{confirm, decide, request_human_review, ReviewRefusal, Step};

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
    /// Whether an officer may decide the application now: no person's decision stands yet
    /// and none waits for a second approval.
    pub fn may_be_decided(self) -> bool {
        matches!(
            self,
            ReviewState::Automatic | ReviewState::Pending | ReviewState::InfoRequested
        )
    }

    /// Whether a supervisor's second approval is what the application waits for.
    pub fn awaits_approval(self) -> bool {
        self == ReviewState::AwaitingApproval
    }

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
