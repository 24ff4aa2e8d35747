//! D1 behind [`LoanBook`]: outcomes with their audit row in one batch, and the grouped reads
//! of the performance and fairness figures.

use valle_shared::lending::audit::{AuditEntry, ChainHead};
use valle_shared::outcomes::challenger::ShadowCounts;
use valle_shared::outcomes::fairness::FairnessCount;
use valle_shared::outcomes::loan_outcomes::KnownDecision;
use valle_shared::outcomes::performance::ScoreGroup;
use valle_shared::records::decisions::Period;

use super::backend::{decode, rows_of, EdgeBackend};
use crate::sql::{audit, loan_outcomes};
use crate::store::{LoanBook, OutcomeSnapshot, OutcomeWrite, StoreError};

impl LoanBook for EdgeBackend {
    async fn outcome_snapshot(
        &self,
        request_ids: &[String],
    ) -> Result<OutcomeSnapshot, StoreError> {
        let results = self
            .batch(&[loan_outcomes::known(request_ids), audit::head()])
            .await?;
        let known: Vec<loan_outcomes::KnownRow> = rows_of(&results, 0)?;
        let known: Vec<KnownDecision> = decode(known);
        let head: Vec<audit::AuditRow> = rows_of(&results, 1)?;
        let head: Vec<AuditEntry> = decode(head);
        Ok(OutcomeSnapshot {
            known,
            head: ChainHead::after(head.into_iter().next()),
        })
    }

    async fn record_outcomes(&self, write: OutcomeWrite<'_>) -> Result<bool, StoreError> {
        let mut statements = loan_outcomes::upsert(write.outcomes, write.actor, write.now_ms);
        statements.push(audit::insert(write.audit));
        Ok(self.audited_batch(&statements).await?.is_some())
    }

    async fn score_groups(&self, period: &Period) -> Result<Vec<(String, ScoreGroup)>, StoreError> {
        let rows: Vec<loan_outcomes::ScoreGroupRow> =
            self.rows(&loan_outcomes::score_groups(period)).await?;
        Ok(decode(rows))
    }

    async fn shadow_counts(&self, period: &Period) -> Result<ShadowCounts, StoreError> {
        let results = self.batch(&loan_outcomes::shadow_counts(period)).await?;
        let agreement: Vec<loan_outcomes::AgreementRow> = rows_of(&results, 0)?;
        let champion: Vec<loan_outcomes::ScoreGroupRow> = rows_of(&results, 1)?;
        let challenger: Vec<loan_outcomes::ScoreGroupRow> = rows_of(&results, 2)?;
        let groups = |rows: Vec<loan_outcomes::ScoreGroupRow>| -> Vec<ScoreGroup> {
            let grouped: Vec<(String, ScoreGroup)> = decode(rows);
            grouped.into_iter().map(|(_, group)| group).collect()
        };
        Ok(ShadowCounts {
            agreement: decode(agreement),
            champion: groups(champion),
            challenger: groups(challenger),
        })
    }

    async fn fairness_counts(
        &self,
        period: &Period,
    ) -> Result<Vec<(String, FairnessCount)>, StoreError> {
        let rows: Vec<loan_outcomes::FairnessRow> =
            self.rows(&loan_outcomes::fairness_counts(period)).await?;
        Ok(decode(rows))
    }
}
