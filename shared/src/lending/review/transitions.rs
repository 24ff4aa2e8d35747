//! The review's transitions as pure functions of the stored review and the request: each
//! answers the new review or "unchanged" (a repeat), so the worker reads, calls one, and
//! writes over the version it read.

use super::requests::{ApprovalRequest, DecideRequest};
use super::{classify, ApprovalAction, Override, Review, ReviewAction, ReviewState};
use crate::lending::officers::Account;

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
    if !current.state.may_be_decided() {
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
    if !current.state.awaits_approval() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::model::Decision;
    use crate::lending::officers::Role;
    use crate::lending::review::ReasonCode;

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
}
