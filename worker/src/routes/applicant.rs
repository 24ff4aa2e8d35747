//! What only an applicant may do, proven by the receipt their answer carried
//! ([`valle_shared::records::receipt`]): read back their decision, ask for a person's review.
//! Without the decision's receipt the answer is the 404 of an unknown id, decided before
//! any storage is read, so neither the answer nor its timing says whether the id exists.

use valle_shared::api::ApplicantDecision;
use valle_shared::decision::disclosure::Disclosure;
use valle_shared::lending::review::Review;
use valle_shared::records::receipt::{ReceiptKey, RECEIPT_HEADER};

use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::observability::log;
use crate::store::ReviewStore;

impl<B: ReviewStore> Request<'_, B> {
    /// The key applicants' receipts are made with. Without one the environment cannot
    /// give applicants their receipts, so their requests fail before anything is stored.
    pub(super) fn receipt_key(&self) -> Result<&ReceiptKey, ApiError> {
        self.context.receipts.ok_or_else(|| {
            log("receipts: RECEIPT_KEY is not set; applicants' requests are refused");
            ApiError::Internal("no receipt key".into())
        })
    }

    /// Admits the applicant of `request_id`: the request carries that decision's receipt.
    pub(super) fn admit_applicant(&self, request_id: &str) -> Result<(), ApiError> {
        let shown = self.head.header(RECEIPT_HEADER).unwrap_or_default();
        match self.context.receipts {
            Some(key) if key.verifies(request_id, shown) => Ok(()),
            _ => Err(ApiError::NotFound),
        }
    }

    /// `GET /api/v1/decisions/{request_id}/applicant` with `Valle-Receipt`: the decision
    /// and the application it was made from, as the applicant may see them.
    pub(super) async fn applicant_decision(
        &self,
        request_id: &str,
    ) -> Result<HttpResponse, ApiError> {
        self.admit_applicant(request_id)?;
        let snapshot = self.backend.review_snapshot(request_id).await?;
        let record = snapshot.decision.ok_or(ApiError::NotFound)?;
        let review = snapshot
            .review
            .map(|(review, _)| review)
            .unwrap_or_else(|| Review::initial(request_id, record.score.decision));
        let answer = ApplicantDecision {
            request_id: record.request_id,
            received_at_ms: record.received_at_ms,
            application: record.application,
            score: Disclosure::committed().for_applicant(&record.score),
            review_state: review.state,
            human_review_requested_at_ms: review.human_review_requested_at_ms,
        };
        Ok(HttpResponse::json(200, &answer, self.id))
    }
}
