//! D1 behind the officers' traits: accounts, reviews with their audit rows, the review
//! queue, the export's pages, the overrides report and the audit trail.

use valle_shared::contract::query::Page;
use valle_shared::lending::audit::{AuditEntry, ChainHead};
use valle_shared::lending::review::{OverrideRow, Review, ReviewCase};
use valle_shared::records::decisions::{DecisionQuery, DecisionRecord};

use super::backend::{d1_error, decode, rows_of, EdgeBackend};
use crate::sql::{accounts, audit, decisions, reviews, Statement};
use crate::store::{
    AccountStore, AuditStore, QueueQuery, ReviewSnapshot, ReviewStore, ReviewWrite, ReviewWritten,
    StoreError, StoredAccount,
};

impl EdgeBackend {
    /// A page of decisions and the reviews among them, as cases with their row numbers.
    async fn cases(
        &self,
        statements: [Statement; 2],
    ) -> Result<Vec<(u64, ReviewCase)>, StoreError> {
        let results = self.batch(&statements).await?;
        let decided: Vec<decisions::DecisionRow> = rows_of(&results, 0)?;
        let reviewed: Vec<reviews::ReviewRow> = rows_of(&results, 1)?;
        let reviewed: Vec<(Review, String)> = decode(reviewed);
        decided
            .into_iter()
            .map(|row| {
                let seq = row.seq.unwrap_or_default();
                let decision = DecisionRecord::from(row);
                let review = reviewed
                    .iter()
                    .find(|(review, _)| review.request_id == decision.request_id)
                    .map(|(review, _)| review.clone())
                    .unwrap_or_else(|| {
                        Review::initial(&decision.request_id, decision.score.decision)
                    });
                Ok((seq, ReviewCase { decision, review }))
            })
            .collect()
    }
}

impl AccountStore for EdgeBackend {
    async fn account_by_token_hash(&self, hash: &str) -> Result<Option<StoredAccount>, StoreError> {
        let rows: Vec<accounts::AccountRow> = self.rows(&accounts::by_token_hash(hash)).await?;
        Ok(decode(rows).into_iter().next())
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<StoredAccount>, StoreError> {
        let rows: Vec<accounts::AccountRow> = self.rows(&accounts::by_email(email)).await?;
        Ok(decode(rows).into_iter().next())
    }
}

impl ReviewStore for EdgeBackend {
    async fn review_snapshot(&self, request_id: &str) -> Result<ReviewSnapshot, StoreError> {
        let results = self
            .batch(&[
                decisions::select(request_id),
                reviews::select(request_id),
                audit::head(),
            ])
            .await?;
        let decided: Vec<decisions::DecisionRow> = rows_of(&results, 0)?;
        let reviewed: Vec<reviews::ReviewRow> = rows_of(&results, 1)?;
        let head: Vec<audit::AuditRow> = rows_of(&results, 2)?;
        let head: Vec<AuditEntry> = decode(head);
        Ok(ReviewSnapshot {
            decision: decode(decided).into_iter().next(),
            review: decode(reviewed).into_iter().next(),
            head: ChainHead::after(head.into_iter().next()),
        })
    }

    async fn write_review(&self, write: ReviewWrite<'_>) -> Result<ReviewWritten, StoreError> {
        let id = &write.review.request_id;
        let upsert = reviews::upsert(write.review, write.expected_version, write.write_id);
        let results = match write.audit {
            Some(entry) => {
                let statements = [
                    upsert,
                    audit::insert_if_review_written(entry, id, write.write_id),
                    reviews::select(id),
                ];
                let Some(results) = self.audited_batch(&statements).await? else {
                    return Ok(ReviewWritten::ChainMoved);
                };
                results
            }
            None => self.batch(&[upsert, reviews::select(id)]).await?,
        };
        // The review as stored is the last statement's answer in either batch.
        let stored: Vec<reviews::ReviewRow> = rows_of(&results, results.len().saturating_sub(1))?;
        let stored: Vec<(Review, String)> = decode(stored);
        match stored.into_iter().next() {
            Some((_, written_by)) if written_by == write.write_id => Ok(ReviewWritten::Applied),
            Some((review, _)) => Ok(ReviewWritten::Overtaken(Box::new(review))),
            None => Err(d1_error("the review write stored no row")),
        }
    }

    async fn review_queue(&self, query: &QueueQuery) -> Result<Vec<(u64, ReviewCase)>, StoreError> {
        self.cases(reviews::queue(query)).await
    }

    async fn export_page(
        &self,
        query: &DecisionQuery,
        page: &Page<u64>,
    ) -> Result<Vec<(u64, ReviewCase)>, StoreError> {
        self.cases(reviews::export_page(query, page)).await
    }

    async fn overrides(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<OverrideRow>, StoreError> {
        let rows: Vec<reviews::OverrideRowSql> =
            self.rows(&reviews::overrides(from_ms, to_ms)).await?;
        Ok(decode(rows))
    }
}

impl AuditStore for EdgeBackend {
    async fn chain_head(&self) -> Result<ChainHead, StoreError> {
        let rows: Vec<audit::AuditRow> = self.rows(&audit::head()).await?;
        let rows: Vec<AuditEntry> = decode(rows);
        Ok(ChainHead::after(rows.into_iter().next()))
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<bool, StoreError> {
        Ok(self.audited_batch(&[audit::insert(entry)]).await?.is_some())
    }

    async fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<audit::AuditRow> = self.rows(&audit::page(before, limit)).await?;
        Ok(decode(rows))
    }

    async fn audit_from(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<audit::AuditRow> = self.rows(&audit::from(from, limit)).await?;
        Ok(decode(rows))
    }
}
