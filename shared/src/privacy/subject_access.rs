//! A subject-access export (GDPR art. 15): everything Valle holds about one applicant, in
//! one document. The dpo exports an applicant by their applicant id, blocked data included
//! and marked as such; an applicant exports their own decision with its receipt.

use serde::{Deserialize, Serialize};

use crate::contract::i18n::Message;
use crate::decision::disclosure::Disclosure;
use crate::lending::audit::AuditEntry;
use crate::lending::review::{Review, ReviewState};
use crate::outcomes::loan_outcomes::LoanOutcome;
use crate::privacy::retention::{BlockedBy, RetentionPolicy};
use crate::records::decisions::DecisionRecord;
use crate::webhooks::{event_id, EventKind};

/// Where one decision's blocked personal data stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Blocked {
    pub blocked_at_ms: i64,
    pub blocked_by: BlockedBy,
    /// When the retention job destroys it.
    pub destroy_after_ms: i64,
}

/// A webhook event Valle produced about a decision: every subscriber of its kind at the
/// time received it, the decision or case with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct WebhookEventRef {
    pub id: String,
    pub kind: EventKind,
}

/// One decision and everything attached to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SubjectDecision {
    /// The decision with its application, model and policy versions and reasons.
    pub decision: DecisionRecord,
    /// Set when its personal data is blocked: kept only for legal claims, until then.
    pub blocked: Option<Blocked>,
    /// The officers' review, its overrides and their reasons, and the applicant's requests.
    pub review: Option<Review>,
    pub outcome: Option<LoanOutcome>,
    /// Events sent to the cooperative's other systems about this decision.
    pub webhook_events: Vec<WebhookEventRef>,
}

impl SubjectDecision {
    pub fn new(
        decision: DecisionRecord,
        blocked: Option<Blocked>,
        review: Option<Review>,
        outcome: Option<LoanOutcome>,
    ) -> SubjectDecision {
        let id = &decision.request_id;
        let mut webhook_events = vec![WebhookEventRef {
            id: event_id(EventKind::DecisionCreated, id, 0),
            kind: EventKind::DecisionCreated,
        }];
        let decided = |review: &&Review| {
            matches!(review.state, ReviewState::Approved | ReviewState::Declined)
        };
        if let Some(review) = review.as_ref().filter(decided) {
            webhook_events.push(WebhookEventRef {
                id: event_id(EventKind::DecisionFinal, id, i64::from(review.version)),
                kind: EventKind::DecisionFinal,
            });
        }
        if let Some(outcome) = &outcome {
            webhook_events.push(WebhookEventRef {
                id: event_id(EventKind::OutcomeRecorded, id, outcome.observed_at_ms),
                kind: EventKind::OutcomeRecorded,
            });
        }
        SubjectDecision {
            decision,
            blocked,
            review,
            outcome,
            webhook_events,
        }
    }
}

/// `GET /api/v1/applicants/{applicant_id}/export` (dpo) and
/// `GET /api/v1/decisions/{request_id}/export` (the applicant, with the receipt).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SubjectAccess {
    pub generated_at_ms: i64,
    pub decisions: Vec<SubjectDecision>,
    /// The audit rows naming these decisions (the dpo's export only).
    pub audit: Vec<AuditEntry>,
    /// How the decisions were made.
    pub how_decided: Message,
    /// How long the data is kept, and why.
    pub retention: Message,
}

impl SubjectAccess {
    pub fn new(
        generated_at_ms: i64,
        decisions: Vec<SubjectDecision>,
        audit: Vec<AuditEntry>,
        policy: &RetentionPolicy,
    ) -> SubjectAccess {
        SubjectAccess {
            generated_at_ms,
            decisions,
            audit,
            how_decided: Message::new(
                "Cada solicitud se puntúa con un modelo estadístico (regresión logística) que \
                 estima la probabilidad de impago a partir de los datos de la solicitud; unas \
                 reglas de la cooperativa pueden denegarla o enviarla a un oficial. Los motivos \
                 indican qué datos pesaron más. Un oficial de crédito revisa los casos dudosos y \
                 cualquier decisión cuya revisión se pida, y su decisión prevalece.",
                "Each application is scored by a statistical model (logistic regression) that \
                 estimates the probability of default from the application's data; the \
                 cooperative's rules may decline it or send it to an officer. The reasons say \
                 which data weighed most. A loan officer reviews borderline cases and any \
                 decision whose review is asked for, and their decision prevails.",
            ),
            retention: policy.basis.clone(),
        }
    }

    /// The export as the applicant sees it: no audit rows (the officers' own record), no
    /// officers' names, no shadow score, and the reasons the disclosure setting allows.
    pub fn for_applicant(mut self) -> SubjectAccess {
        self.audit.clear();
        for entry in &mut self.decisions {
            entry.decision.shadow = None;
            entry.decision.score = Disclosure::committed().for_applicant(&entry.decision.score);
            if let Some(review) = &mut entry.review {
                review.decided_by = None;
                review.approved_by = None;
            }
        }
        self
    }
}
