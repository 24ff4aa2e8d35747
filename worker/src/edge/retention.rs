//! D1 behind [`RetentionStore`]: each call is one batch of [`crate::sql::retention`].

use valle_shared::lending::audit::AuditEntry;
use valle_shared::lending::review::Review;
use valle_shared::outcomes::loan_outcomes::LoanOutcome;
use valle_shared::privacy::retention::{DueDecision, Residue};
use valle_shared::privacy::subject_access::SubjectDecision;

use super::backend::{decode, rows_of, EdgeBackend};
use crate::retention::{
    BlockedNow, Blocking, Destroyable, DueSettled, RetentionStore, Run, Subject, SubjectRecords,
};
use crate::sql::{audit, retention, reviews};
use crate::store::StoreError;

impl RetentionStore for EdgeBackend {
    async fn block(&self, subject: &Subject, blocking: Blocking) -> Result<BlockedNow, StoreError> {
        let statements = retention::block(subject, blocking);
        let results = self.batch(&statements).await?;
        let blocked: Vec<retention::IdRow> = rows_of(&results, 0)?;
        let held: Vec<retention::HeldRow> = rows_of(&results, statements.len() - 1)?;
        let held = held
            .first()
            .ok_or_else(|| super::backend::d1_error("the blocking's count answered no row"))?;
        Ok(BlockedNow {
            newly: blocked.len() as u64,
            held: held.held,
            destroy_after_ms: held.destroy_after,
        })
    }

    async fn due_for_blocking(
        &self,
        run: &Run<'_>,
        limit: usize,
    ) -> Result<Vec<DueDecision>, StoreError> {
        let rows: Vec<retention::DueRow> =
            self.rows(&retention::due_for_blocking(run, limit)).await?;
        Ok(decode(rows))
    }

    async fn settle_due(&self, settled: DueSettled<'_>) -> Result<(), StoreError> {
        let statements = retention::settle_due(&settled);
        if !statements.is_empty() {
            self.batch(&statements).await?;
        }
        Ok(())
    }

    async fn due_for_destruction(
        &self,
        run: &Run<'_>,
        limit: usize,
    ) -> Result<Vec<Destroyable>, StoreError> {
        let rows: Vec<retention::DestroyableRow> = self
            .rows(&retention::due_for_destruction(run, limit))
            .await?;
        Ok(decode(rows))
    }

    async fn destroy(&self, residues: &[(String, Residue)], now_ms: i64) -> Result<(), StoreError> {
        self.batch(&retention::destroy(residues, now_ms)).await?;
        Ok(())
    }

    async fn delete_records(
        &self,
        run: &Run<'_>,
        before_ms: i64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let statements = retention::delete_records(run, before_ms, limit);
        let results = self.batch(&statements).await?;
        let deleted: Vec<retention::IdRow> = rows_of(&results, statements.len() - 1)?;
        Ok(deleted.len() as u64)
    }

    async fn subject_records(&self, subject: &Subject) -> Result<SubjectRecords, StoreError> {
        let results = self.batch(&retention::subject(subject)).await?;
        let rows: Vec<retention::SubjectRow> = rows_of(&results, 0)?;
        let reviewed: Vec<reviews::ReviewRow> = rows_of(&results, 1)?;
        let reviewed: Vec<(Review, String)> = decode(reviewed);
        let outcomes: Vec<LoanOutcome> = rows_of(&results, 2)?;
        let audit: Vec<audit::AuditRow> = rows_of(&results, 3)?;
        let audit: Vec<AuditEntry> = decode(audit);
        let decisions = rows
            .into_iter()
            .map(|row| {
                let blocked = row.blocking.blocked();
                let decision = valle_shared::records::decisions::DecisionRecord::from(row.decision);
                let id = &decision.request_id;
                let review = reviewed
                    .iter()
                    .find(|(review, _)| &review.request_id == id)
                    .map(|(review, _)| review.clone());
                let outcome = outcomes.iter().find(|o| &o.request_id == id).cloned();
                SubjectDecision::new(decision, blocked, review, outcome)
            })
            .collect();
        Ok(SubjectRecords { decisions, audit })
    }
}
