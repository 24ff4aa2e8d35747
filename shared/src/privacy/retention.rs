//! How long Valle keeps an applicant's personal data, and what is left once it is gone.
//!
//! A decision's personal fields (the application, the applicant id, the recourse built from
//! them, the request's fingerprint) stay readable until its retention ends
//! ([`RetentionPolicy::readable_until_ms`]): after a decline for a short period, after a
//! loan's maturity for a longer one. Then, or at once when the applicant or the
//! data-protection officer asks for erasure, they are *blocked* (LOPDGDD art. 32): no
//! ordinary read path shows them, only the dpo's audited subject-access export. After the
//! blocking period the retention job destroys them, leaving the [`Residue`] the aggregates
//! need; after the record period it deletes the rest. The periods are `models/retention.json`.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::contract::body::read_object;
use crate::contract::codes::ErrorCode;
use crate::contract::errors::{FieldError, RequestError};
use crate::contract::i18n::Message;
use crate::decision::model::Decision;
use crate::intake::application::{Application, Marital};
use crate::lending::review::ReviewState;
use crate::outcomes::fairness::age_band;

/// The policy, as committed beside the model and the strategy.
pub const RETENTION_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/retention.json"
));
pub const DAY_MS: i64 = 86_400_000;
/// An average Gregorian month, so a term in months becomes a maturity date.
pub const MONTH_MS: i64 = 2_629_746_000;
/// The most decisions one step of the retention job reads or writes at once.
pub const RETENTION_PAGE: usize = 200;
/// The most pages a run takes per step, so one run stays within a Worker's limits; the next
/// run goes on where it stopped.
pub const RETENTION_PAGES_PER_RUN: usize = 25;

/// `models/retention.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    pub name: String,
    pub version: u32,
    /// Days a declined application's personal data stays readable after the decision.
    pub readable_after_decline_days: u32,
    /// Days a loan's personal data stays readable after the loan matures.
    pub readable_after_maturity_days: u32,
    /// Days blocked data is kept for legal claims before it is destroyed.
    pub blocked_days: u32,
    /// Days the record without personal data is kept after the decision.
    pub record_days: u32,
    /// Why these periods, for the applicant and the dpo.
    pub basis: Message,
}

static COMMITTED: LazyLock<Result<RetentionPolicy, String>> =
    LazyLock::new(|| serde_json::from_str(RETENTION_JSON).map_err(|error| error.to_string()));

/// The policy's decision on one decision whose readable period seemed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its personal data is blocked now.
    Block,
    /// Not yet: look again at this time.
    LookAgainAt(i64),
}

/// A decision whose stamped readable period has passed, with what decides whether it
/// really has: the application's term and the officers' review, which may have changed the
/// decision since it was stamped.
#[derive(Clone, Debug, PartialEq)]
pub struct DueDecision {
    pub request_id: String,
    pub received_at_ms: i64,
    pub term_months: u32,
    pub decision: Decision,
    pub review: Option<ReviewState>,
}

impl RetentionPolicy {
    /// The committed policy. A test keeps the file parsing; should it not, erasure requests
    /// and the retention job fail with its error rather than guess a period.
    pub fn committed() -> Result<&'static RetentionPolicy, &'static str> {
        COMMITTED.as_ref().map_err(String::as_str)
    }

    /// When the personal data of a decision made `received_at_ms` on a loan of
    /// `term_months` stops being readable, if its final decision is `decision`.
    pub fn readable_until_ms(
        &self,
        received_at_ms: i64,
        term_months: u32,
        decision: Decision,
    ) -> i64 {
        match decision {
            Decision::Decline => {
                received_at_ms + i64::from(self.readable_after_decline_days) * DAY_MS
            }
            Decision::Approve | Decision::Review => {
                received_at_ms
                    + i64::from(term_months) * MONTH_MS
                    + i64::from(self.readable_after_maturity_days) * DAY_MS
            }
        }
    }

    /// When the readable period of a new decision ends, as stored with it.
    pub fn stamp(&self, received_at_ms: i64, application: &Application, decision: Decision) -> i64 {
        self.readable_until_ms(received_at_ms, application.term_months, decision)
    }

    /// Whether a decision whose stamp has passed is due now: its final decision is the
    /// review's when an officer has decided, and an open review keeps it readable.
    pub fn verdict(&self, due: &DueDecision, now_ms: i64) -> Verdict {
        let decision = match due.review {
            Some(ReviewState::Approved) => Decision::Approve,
            Some(ReviewState::Declined) => Decision::Decline,
            Some(ReviewState::Automatic) | None => due.decision,
            Some(
                ReviewState::Pending | ReviewState::InfoRequested | ReviewState::AwaitingApproval,
            ) => {
                return Verdict::LookAgainAt(
                    now_ms + i64::from(self.readable_after_decline_days) * DAY_MS,
                );
            }
        };
        let until = self.readable_until_ms(due.received_at_ms, due.term_months, decision);
        if until <= now_ms {
            Verdict::Block
        } else {
            Verdict::LookAgainAt(until)
        }
    }

    /// When data blocked at `blocked_at_ms` is destroyed.
    pub fn destroy_after_ms(&self, blocked_at_ms: i64) -> i64 {
        blocked_at_ms + i64::from(self.blocked_days) * DAY_MS
    }

    /// Destroyed records of decisions made before this time are deleted at `now_ms`.
    pub fn records_before_ms(&self, now_ms: i64) -> i64 {
        now_ms - i64::from(self.record_days) * DAY_MS
    }
}

/// What destruction leaves of a decision's application: what the fairness report and the
/// drift windows count, coarsened to the same bins they use. With the score, band,
/// decision, reasons and outcome, no applicant id, exact value or free text remains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Residue {
    pub age_band: String,
    pub marital: Marital,
    /// One bin per monitored field ([`crate::monitoring::drift::Binning::bins_of`]).
    pub drift_bins: Vec<u8>,
}

impl Residue {
    pub fn of(application: &Application, probability: f32) -> Residue {
        Residue {
            age_band: age_band(application.age),
            marital: application.marital,
            drift_bins: crate::monitoring::drift::Binning::embedded_bins_of(
                application,
                probability,
            ),
        }
    }
}

/// Who blocked a decision's personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlockedBy {
    /// The applicant, with their receipt.
    Applicant,
    /// The data-protection officer.
    Dpo,
    /// The retention schedule.
    Retention,
}

impl BlockedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedBy::Applicant => "applicant",
            BlockedBy::Dpo => "dpo",
            BlockedBy::Retention => "retention",
        }
    }
}

/// The answer to an erasure request: the applicant's decisions are blocked now and
/// destroyed after `destroy_after_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Erasure {
    /// Names the dpo's request in the audit trail, which never names the applicant; an
    /// applicant's own request is not in the trail and has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_id: Option<String>,
    /// Decisions this request blocked; 0 when they were blocked already.
    pub blocked_decisions: u64,
    pub destroy_after_ms: i64,
    pub explanation: Message,
}

impl Erasure {
    pub fn explanation(policy: &RetentionPolicy) -> Message {
        Message::new(
            format!(
                "Sus datos personales quedan bloqueados: nadie de la cooperativa puede verlos ni \
                 usarlos. Se guardan {} días solo por si hubiera una reclamación legal y después \
                 se destruyen.",
                policy.blocked_days
            ),
            format!(
                "Your personal data is blocked: nobody at the cooperative can see or use it. It \
                 is kept {} days only in case of a legal claim, then destroyed.",
                policy.blocked_days
            ),
        )
    }
}

/// `POST /api/v1/retention/run`: runs the retention job now. In the local environment only
/// (tests), `now_ms` sets its clock and `branch` confines it to one branch's decisions, so
/// a test moves its clock years ahead without touching the decisions of tests beside it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RetentionRunRequest {
    #[serde(default)]
    pub now_ms: Option<i64>,
    #[serde(default)]
    pub branch: Option<String>,
}

/// Reads a [`RetentionRunRequest`]. Outside the local environment (`local` false) the
/// clock is the edge's own, so `now_ms` is a field the route does not know.
pub fn parse_run_request(body: &[u8], local: bool) -> Result<RetentionRunRequest, RequestError> {
    let known: &[&str] = if local { &["now_ms", "branch"] } else { &[] };
    let fields = read_object(body, MAX_RUN_BODY_BYTES, known)?;
    let mut errors = fields.errors;
    let now_ms = match fields.object.get("now_ms") {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => {
            let now = value.as_i64().filter(|now| *now >= 0);
            if now.is_none() && local {
                errors.push(FieldError::new(
                    "now_ms",
                    ErrorCode::Type,
                    Message::new(
                        "Debe ser un entero de milisegundos.",
                        "Must be a whole number of milliseconds.",
                    ),
                ));
            }
            now
        }
    };
    let branch = match fields.object.get("branch") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(branch)) if crate::intake::branch::is_branch(branch) => {
            Some(branch.clone())
        }
        Some(_) => {
            if local {
                errors.push(FieldError::new(
                    "branch",
                    ErrorCode::Type,
                    Message::new(
                        "Debe ser el nombre de una sucursal.",
                        "Must be a branch name.",
                    ),
                ));
            }
            None
        }
    };
    if errors.is_empty() {
        Ok(RetentionRunRequest { now_ms, branch })
    } else {
        Err(RequestError::Invalid(errors))
    }
}

/// Largest body of `POST /api/v1/retention/run`.
pub const MAX_RUN_BODY_BYTES: usize = 1024;

/// What one run of the retention job did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RetentionRun {
    pub now_ms: i64,
    /// Decisions whose readable period ended, now blocked.
    pub blocked: u64,
    /// Decisions looked at and not due yet (an officer's review changed their period).
    pub postponed: u64,
    /// Decisions whose blocking period ended, their personal data now destroyed.
    pub destroyed: u64,
    /// Destroyed records past the record period, deleted.
    pub deleted: u64,
    /// Whether the run reached the end of every step; if not, the next run goes on.
    pub complete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> &'static RetentionPolicy {
        RetentionPolicy::committed().expect("models/retention.json parses")
    }

    fn due(decision: Decision, review: Option<ReviewState>) -> DueDecision {
        DueDecision {
            request_id: "r-1".into(),
            received_at_ms: 0,
            term_months: 12,
            decision,
            review,
        }
    }

    #[test]
    fn the_committed_policy_parses_and_blocks_before_it_destroys() {
        let policy = policy();
        assert!(policy.readable_after_decline_days > 0);
        assert!(
            policy.blocked_days >= 5 * 365,
            "the limitation period is five years"
        );
        assert!(policy.record_days > policy.blocked_days);
        assert!(policy.destroy_after_ms(0) > 0);
    }

    #[test]
    fn verdicts() {
        let policy = policy();
        let decline_end = i64::from(policy.readable_after_decline_days) * DAY_MS;
        let loan_end = 12 * MONTH_MS + i64::from(policy.readable_after_maturity_days) * DAY_MS;
        let check = |decision, review, now, expected| {
            assert_eq!(
                policy.verdict(&due(decision, review), now),
                expected,
                "{decision:?} {review:?} at {now}"
            );
        };
        check(Decision::Decline, None, decline_end, Verdict::Block);
        check(
            Decision::Decline,
            None,
            decline_end - 1,
            Verdict::LookAgainAt(decline_end),
        );
        check(
            Decision::Approve,
            None,
            decline_end,
            Verdict::LookAgainAt(loan_end),
        );
        check(Decision::Approve, None, loan_end, Verdict::Block);
        // An officer approved an automatic decline: the loan's period applies.
        check(
            Decision::Decline,
            Some(ReviewState::Approved),
            decline_end,
            Verdict::LookAgainAt(loan_end),
        );
        check(
            Decision::Review,
            Some(ReviewState::Declined),
            decline_end,
            Verdict::Block,
        );
        // An open review keeps the case readable, and is looked at again later.
        check(
            Decision::Review,
            Some(ReviewState::Pending),
            loan_end,
            Verdict::LookAgainAt(loan_end + decline_end),
        );
        check(
            Decision::Decline,
            Some(ReviewState::Automatic),
            decline_end,
            Verdict::Block,
        );
    }

    #[test]
    fn run_requests() {
        let now = |body: &str, local| parse_run_request(body.as_bytes(), local).map(|r| r.now_ms);
        assert_eq!(now("{}", false), Ok(None));
        assert_eq!(now(r#"{"now_ms":5}"#, true), Ok(Some(5)));
        let codes = |body: &str, local| match parse_run_request(body.as_bytes(), local) {
            Err(RequestError::Invalid(errors)) => errors
                .into_iter()
                .map(|e| (e.field, e.code))
                .collect::<Vec<_>>(),
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(
            codes(r#"{"now_ms":5}"#, false),
            vec![("now_ms".to_owned(), ErrorCode::UnknownField)]
        );
        assert_eq!(
            codes(r#"{"now_ms":"x"}"#, true),
            vec![("now_ms".to_owned(), ErrorCode::Type)]
        );
    }

    #[test]
    fn a_residue_keeps_only_bins() {
        let application = crate::intake::validation::parse_application(
            br#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846,"applicant_id":"SOC-1","branch":"Norte"}"#,
        )
        .expect("valid");
        let residue = Residue::of(&application, 0.25);
        assert_eq!(residue.age_band, age_band(30));
        assert_eq!(residue.marital, Marital::Married);
        assert!(!residue.drift_bins.is_empty());
        let text = serde_json::to_string(&residue).expect("serializes");
        for value in ["SOC-1", "Norte", "129", "846", "800"] {
            assert!(!text.contains(value), "{value} survives in {text}");
        }
    }
}
