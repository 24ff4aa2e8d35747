//! `GET /api/v1/audit` (newest first) and `GET /api/v1/audit/verify` (the whole chain
//! checked a page at a time; the first broken link named).

use std::future::Future;

use valle_shared::contract::query::AUDIT_PAGES;
use valle_shared::lending::audit::{
    append, AuditEntry, AuditEvent, AuditPage, ChainHead, Verifier,
};

use super::reviews::CHAIN_ATTEMPTS;
use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::AuditStore;

/// Rows the verifier reads at a time.
const VERIFY_PAGE: usize = 500;

impl<B: AuditStore> Request<'_, B> {
    /// `GET /api/v1/audit?cursor&limit`.
    pub(super) async fn audit(&self) -> Result<HttpResponse, ApiError> {
        let page = AUDIT_PAGES
            .parse::<u64>(&self.head.query, |_, _, _| false)
            .map_err(ApiError::Query)?;
        let entries = self.backend.audit_page(page.cursor, page.limit).await?;
        let next_cursor = page.next(&entries, |entry| entry.seq);
        Ok(HttpResponse::json(
            200,
            &AuditPage {
                entries,
                next_cursor,
            },
            self.id,
        ))
    }

    /// `GET /api/v1/audit/verify`.
    pub(super) async fn audit_verify(&self) -> Result<HttpResponse, ApiError> {
        let mut verifier = Verifier::default();
        loop {
            let rows = self
                .backend
                .audit_from(verifier.next_seq(), VERIFY_PAGE)
                .await?;
            verifier.check(&rows);
            if rows.len() < VERIFY_PAGE || verifier.is_broken() {
                break;
            }
        }
        Ok(HttpResponse::json(200, &verifier.report(), self.id))
    }

    /// Appends a row for a write that stores nothing else (an export), at the end of the
    /// chain however many writers append at once.
    pub(super) async fn append_audit(&self, event: AuditEvent) -> Result<(), ApiError> {
        self.audited(
            |_| event.clone(),
            |entry, _| async move { Ok(self.backend.append_audit(&entry).await?.then_some(())) },
        )
        .await
    }

    /// Makes `write` together with its audit row at the end of the chain. A write answers
    /// `None` when the chain grew since its end was read; it is then made again at the new
    /// end, a few times at most before the answer is `Busy`.
    pub(super) async fn audited<T, Written>(
        &self,
        event: impl Fn(i64) -> AuditEvent,
        write: impl Fn(AuditEntry, i64) -> Written,
    ) -> Result<T, ApiError>
    where
        Written: Future<Output = Result<Option<T>, ApiError>>,
    {
        for _ in 0..CHAIN_ATTEMPTS {
            let head: ChainHead = self.backend.chain_head().await?;
            let now = self.now();
            if let Some(written) = write(append(&head, event(now)), now).await? {
                return Ok(written);
            }
        }
        Err(ApiError::Busy)
    }
}
