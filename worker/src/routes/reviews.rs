//! The review queue and officers' decisions: `GET /api/v1/reviews`,
//! `GET|POST /api/v1/reviews/{id}`, `POST /api/v1/reviews/{id}/approval`, the applicant's
//! `POST /api/v1/decisions/{id}/human-review`, and `GET /api/v1/reports/overrides`. Each
//! write reads the decision, its review and the end of the audit chain (one round trip),
//! lets `valle_shared::lending::review` say what changes, and writes the review and its audit row in
//! one transaction.

use serde_json::json;
use valle_shared::api::HumanReviewResponse;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::query::{parse_query, CURSOR, REVIEW_PAGES};
use valle_shared::contract::request::Stage;
use valle_shared::lending::audit::{append, AuditAction, AuditEvent};
use valle_shared::lending::officers::Me;
use valle_shared::lending::review::{
    confirm, decide, parse_approval_request, parse_contest_request, parse_decide_request,
    request_human_review, OverrideReport, Review, ReviewCase, ReviewPage, ReviewRefusal,
    ReviewState, Step,
};
use valle_shared::records::decisions::DecisionQuery;
use valle_shared::Message;

use super::auth::signed_in;
use super::{query_error, Request};
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::{QueueQuery, ReviewStore, ReviewWrite, ReviewWritten};

/// Audited writes that find the chain grown since they read it try again this often.
pub(super) const CHAIN_ATTEMPTS: usize = 4;

/// What a write does to the review as it stands at a given time.
type StepFn<'a> = dyn Fn(&Review, i64) -> Result<Step, ReviewRefusal> + 'a;

/// One review write: what it does to the current review, and how the audit trail names it.
struct ReviewChange<'a> {
    request_id: &'a str,
    /// Who signs the change and what the audit row calls it; `None` for the applicant's
    /// request, which stays out of the officers' audit chain (SECURITY.md).
    audited: Option<(&'a str, AuditAction)>,
    step: &'a StepFn<'a>,
}

/// The two writes an officer signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OfficerWrite {
    Decide,
    Approve,
}

impl<B: ReviewStore> Request<'_, B> {
    /// `GET /api/v1/reviews?state&requested&cursor&limit`: the open applications, oldest
    /// first; `requested=true` only those whose applicant asked for a person.
    pub(super) async fn review_queue(&self) -> Result<HttpResponse, ApiError> {
        let (mut state, mut requested) = (None, false);
        let page = REVIEW_PAGES
            .parse::<u64>(&self.head.query, |key, value, errors| {
                match key {
                    "state" => match ReviewState::parse(value).filter(|state| state.is_open()) {
                        Some(open) => state = Some(open),
                        None => errors.push(query_error("state", ErrorCode::Enum)),
                    },
                    "requested" => match value {
                        "true" | "1" => requested = true,
                        "false" | "0" => requested = false,
                        _ => errors.push(query_error("requested", ErrorCode::Format)),
                    },
                    _ => return false,
                }
                true
            })
            .map_err(ApiError::Query)?;
        let query = QueueQuery {
            state,
            requested,
            after_seq: page.cursor.unwrap_or(0),
            limit: page.limit,
        };
        let mut rows = self.backend.review_queue(&query).await?;
        let more = rows.len() > query.limit;
        rows.truncate(query.limit);
        let next_cursor = more.then(|| rows.last().map(|(seq, _)| *seq)).flatten();
        let page = ReviewPage {
            cases: rows.into_iter().map(|(_, case)| case).collect(),
            next_cursor,
        };
        Ok(HttpResponse::json(200, &page, self.id))
    }

    /// `GET /api/v1/reviews/{request_id}`: the decision and where its review stands.
    pub(super) async fn review(&self, request_id: &str) -> Result<HttpResponse, ApiError> {
        let snapshot = self.backend.review_snapshot(request_id).await?;
        let decision = snapshot.decision.ok_or(ApiError::NotFound)?;
        let review = snapshot
            .review
            .map(|(review, _)| review)
            .unwrap_or_else(|| Review::initial(request_id, decision.score.decision));
        Ok(HttpResponse::json(
            200,
            &ReviewCase { decision, review },
            self.id,
        ))
    }

    /// `POST /api/v1/reviews/{request_id}`, an officer's decision, and
    /// `POST /api/v1/reviews/{request_id}/approval`, a supervisor's second approval; each
    /// audited under the signer's address.
    pub(super) async fn officer_write(
        &self,
        write: OfficerWrite,
        request_id: &str,
        body: &[u8],
        me: Option<Me>,
    ) -> Result<HttpResponse, ApiError> {
        let me = signed_in(me)?;
        let account = &me.account;
        let (action, step): (AuditAction, Box<StepFn<'_>>) = match write {
            OfficerWrite::Decide => {
                let request = parse_decide_request(body)?;
                let step = move |current: &Review, now| decide(current, account, &request, now);
                (AuditAction::ReviewDecided, Box::new(step))
            }
            OfficerWrite::Approve => {
                let request = parse_approval_request(body)?;
                let step = move |current: &Review, now| confirm(current, account, &request, now);
                (AuditAction::ApprovalGiven, Box::new(step))
            }
        };
        let case = self
            .change_review(ReviewChange {
                request_id,
                audited: Some((&account.email, action)),
                step: &*step,
            })
            .await?;
        Ok(HttpResponse::json(200, &case, self.id))
    }

    /// `POST /api/v1/decisions/{request_id}/human-review`: the applicant's right to a
    /// person's review, and `…/contest` with their `comment`. The answer says only that it
    /// is recorded.
    pub(super) async fn human_review(
        &self,
        request_id: &str,
        comment: Option<&str>,
    ) -> Result<HttpResponse, ApiError> {
        self.admit_applicant(request_id)?;
        let step = |current: &Review, now| Ok(request_human_review(current, now, comment));
        let case = self
            .change_review(ReviewChange {
                request_id,
                audited: None,
                step: &step,
            })
            .await?;
        let requested_at_ms = case
            .review
            .human_review_requested_at_ms
            .ok_or_else(|| ApiError::Internal("the request was not recorded".into()))?;
        Ok(HttpResponse::json(
            200,
            &HumanReviewResponse {
                request_id: request_id.to_owned(),
                requested_at_ms,
                message: Message::new(
                    "Un oficial de crédito revisará su solicitud.",
                    "A loan officer will review your application.",
                ),
            },
            self.id,
        ))
    }

    /// `POST /api/v1/decisions/{request_id}/contest` with the receipt: a human review with
    /// the applicant's comment, which the officer sees on the case.
    pub(super) async fn contest(
        &self,
        request_id: &str,
        body: &[u8],
    ) -> Result<HttpResponse, ApiError> {
        self.admit_applicant(request_id)?;
        let comment = parse_contest_request(body)?;
        self.human_review(request_id, Some(&comment)).await
    }

    /// `GET /api/v1/reports/overrides?from&to`.
    pub(super) async fn overrides(&self) -> Result<HttpResponse, ApiError> {
        let query = range_query(&self.head.query)?;
        let rows = self.backend.overrides(query.from_ms, query.to_ms).await?;
        Ok(HttpResponse::json(
            200,
            &OverrideReport::new(query.from_ms, query.to_ms, rows),
            self.id,
        ))
    }

    /// Reads, steps and writes one review with its audit row; a write that another
    /// overtook answers 409 with the review as it now stands, unless this one repeats it.
    async fn change_review(&self, change: ReviewChange<'_>) -> Result<ReviewCase, ApiError> {
        let write_id = (self.context.new_request_id)();
        for _ in 0..CHAIN_ATTEMPTS {
            let snapshot = self.backend.review_snapshot(change.request_id).await?;
            self.lap(Stage::Read);
            let decision = snapshot.decision.ok_or(ApiError::NotFound)?;
            let current = match snapshot.review {
                // An earlier attempt of this very write was stored; its answer was lost.
                Some((review, written_by)) if written_by == write_id => {
                    return Ok(ReviewCase { decision, review });
                }
                Some((review, _)) => review,
                None => Review::initial(change.request_id, decision.score.decision),
            };
            let now = self.now();
            let next = match (change.step)(&current, now)? {
                Step::Unchanged => {
                    return Ok(ReviewCase {
                        decision,
                        review: current,
                    })
                }
                Step::Changed(next) => next,
            };
            let entry = change.audited.map(|(actor, action)| {
                append(
                    &snapshot.head,
                    AuditEvent {
                        at_ms: now,
                        actor: actor.to_owned(),
                        action,
                        subject: change.request_id.to_owned(),
                        detail: review_detail(&next),
                    },
                )
            });
            let written = self
                .backend
                .write_review(ReviewWrite {
                    review: &next,
                    expected_version: current.version,
                    write_id: &write_id,
                    audit: entry.as_ref(),
                })
                .await?;
            self.lap(Stage::Write);
            match written {
                ReviewWritten::Applied => {
                    return Ok(ReviewCase {
                        decision,
                        review: next,
                    })
                }
                ReviewWritten::Overtaken(now_stored) => {
                    return match (change.step)(&now_stored, now)? {
                        Step::Unchanged => Ok(ReviewCase {
                            decision,
                            review: *now_stored,
                        }),
                        Step::Changed(_) => Err(ApiError::Conflict(now_stored)),
                    };
                }
                ReviewWritten::ChainMoved => continue,
            }
        }
        Err(ApiError::Busy)
    }
}

/// What the audit row of a review write records.
fn review_detail(review: &Review) -> String {
    json!({
        "state": review.state,
        "action": review.action,
        "reason": review.reason,
        "note": review.note,
        "override": review.override_kind,
        "approval": review.approval,
        "approval_note": review.approval_note,
        "version": review.version,
    })
    .to_string()
}

/// `from` and `to` (RFC 3339), and, for exports, the decision filters; no paging.
pub(super) fn range_query(query: &str) -> Result<DecisionQuery, ApiError> {
    let mut errors: Vec<_> = parse_query(query)
        .into_iter()
        .filter(|(key, _)| key == "limit" || key == CURSOR)
        .map(|(key, _)| query_error(&key, ErrorCode::UnknownField))
        .collect();
    match DecisionQuery::parse(query) {
        Ok(parsed) if errors.is_empty() => Ok(parsed),
        Ok(_) => Err(ApiError::Query(errors)),
        Err(more) => {
            errors.extend(more);
            Err(ApiError::Query(errors))
        }
    }
}
