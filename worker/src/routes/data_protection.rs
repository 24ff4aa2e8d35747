//! The data-protection routes: erasure and subject access, by the dpo for an applicant and
//! by the applicant for their own decision with its receipt, and the retention job on
//! demand. The dpo's requests are audited without naming the applicant: the audit trail
//! never carries personal data, and it outlives what it would name.

use serde_json::json;
use valle_shared::lending::audit::{AuditAction, AuditEvent};
use valle_shared::lending::officers::Me;
use valle_shared::privacy::retention::{parse_run_request, BlockedBy, Erasure, RetentionPolicy};
use valle_shared::privacy::subject_access::SubjectAccess;
use valle_shared::webhooks::Reach;

use super::auth::signed_in;
use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::retention::RetentionStore;
use crate::retention::{run, Blocking, Run, Subject};
use crate::store::{AuditStore, ReviewStore};

fn policy() -> Result<&'static RetentionPolicy, ApiError> {
    RetentionPolicy::committed().map_err(|error| ApiError::Internal(error.to_owned()))
}

impl<B: AuditStore + RetentionStore + ReviewStore> Request<'_, B> {
    /// `POST /api/v1/applicants/{applicant_id}/erasure` (dpo): blocks every decision of the
    /// applicant at once.
    pub(super) async fn erase_applicant(
        &self,
        applicant_id: &str,
        me: Option<Me>,
    ) -> Result<HttpResponse, ApiError> {
        let me = signed_in(me)?;
        let erasure_id = (self.context.new_request_id)();
        let subject = Subject::Applicant(applicant_id.to_owned());
        // Blocked first: should the audit row fail, the data is already out of reach, and
        // the dpo's retry blocks nothing more and writes the row.
        let (blocked, _) = self.block(&subject, BlockedBy::Dpo).await?;
        self.append_audit(AuditEvent {
            at_ms: self.now(),
            actor: me.account.email.clone(),
            action: AuditAction::ErasureRequested,
            subject: erasure_id.clone(),
            detail: json!({ "blocked_decisions": blocked.blocked_decisions }).to_string(),
        })
        .await?;
        Ok(HttpResponse::json(
            200,
            &Erasure {
                erasure_id: Some(erasure_id),
                ..blocked
            },
            self.id,
        ))
    }

    /// `POST /api/v1/decisions/{request_id}/erasure` with the receipt: blocks that decision.
    /// Not audited: applicants' requests never write to the officers' chain; the decision's
    /// row says it was the applicant.
    pub(super) async fn erase_decision(&self, request_id: &str) -> Result<HttpResponse, ApiError> {
        self.admit_applicant(request_id)?;
        let subject = Subject::Decision(request_id.to_owned());
        match self.block(&subject, BlockedBy::Applicant).await? {
            // A receipt for no decision held (one destroyed already): blocking wrote nothing.
            (_, 0) => Err(ApiError::NotFound),
            (blocked, _) => Ok(HttpResponse::json(200, &blocked, self.id)),
        }
    }

    /// Blocks the subject's decisions now, in one write that also says until when the
    /// blocked data is kept (the earliest of its decisions', which were blocked first) and
    /// how many of the subject's decisions are held.
    async fn block(&self, subject: &Subject, by: BlockedBy) -> Result<(Erasure, u64), ApiError> {
        let policy = policy()?;
        let now = self.now();
        let blocking = Blocking {
            by,
            at_ms: now,
            destroy_after_ms: policy.destroy_after_ms(now),
        };
        let after = self.backend.block(subject, blocking).await?;
        let erasure = Erasure {
            erasure_id: None,
            blocked_decisions: after.newly,
            destroy_after_ms: after.destroy_after_ms.unwrap_or(blocking.destroy_after_ms),
            explanation: Erasure::explanation(policy),
        };
        Ok((erasure, after.held))
    }

    /// `GET /api/v1/applicants/{applicant_id}/export` (dpo): everything held about the
    /// applicant, blocked data marked; the one read of blocked data, so it is audited.
    pub(super) async fn export_applicant(
        &self,
        applicant_id: &str,
        me: Option<Me>,
    ) -> Result<HttpResponse, ApiError> {
        let me = signed_in(me)?;
        let held = self
            .backend
            .subject_records(&Subject::Applicant(applicant_id.to_owned()))
            .await?;
        self.append_audit(AuditEvent {
            at_ms: self.now(),
            actor: me.account.email.clone(),
            action: AuditAction::SubjectExported,
            subject: (self.context.new_request_id)(),
            detail: json!({ "decisions": held.decisions.len() }).to_string(),
        })
        .await?;
        let export = SubjectAccess::new(self.now(), held.decisions, held.audit, policy()?);
        Ok(HttpResponse::json(200, &export, self.id))
    }

    /// `GET /api/v1/decisions/{request_id}/export` with the receipt: the applicant's own
    /// decision and everything attached to it.
    pub(super) async fn export_decision(&self, request_id: &str) -> Result<HttpResponse, ApiError> {
        self.admit_applicant(request_id)?;
        let held = self
            .backend
            .subject_records(&Subject::Decision(request_id.to_owned()))
            .await?;
        if held.decisions.is_empty() {
            return Err(ApiError::NotFound);
        }
        let export = SubjectAccess::new(self.now(), held.decisions, Vec::new(), policy()?);
        Ok(HttpResponse::json(200, &export.for_applicant(), self.id))
    }

    /// `POST /api/v1/retention/run` (dpo): one run of the retention job, as the Cron
    /// Trigger runs it. `now_ms` moves its clock in the local environment only, where the
    /// tests run it years ahead; elsewhere it is refused.
    pub(super) async fn run_retention(&self, body: &[u8]) -> Result<HttpResponse, ApiError> {
        let local = self.context.webhook_reach == Reach::Local;
        let request = parse_run_request(body, local)?;
        let now = request.now_ms.unwrap_or_else(|| self.now());
        let scope = Run {
            now_ms: now,
            branch: request.branch.as_deref(),
        };
        let report = run(self.backend, policy()?, scope).await?;
        Ok(HttpResponse::json(200, &report, self.id))
    }
}
