//! `GET /api/v1/exports/decisions.csv?from&to&branch&band&decision&channel`: decisions with
//! the officers' final decisions. The handler records the export in the audit trail and
//! answers the header line; the edge then streams the rows a page at a time
//! ([`export_chunk`]), so the file never sits in the worker's memory.

use serde_json::json;
use valle_shared::contract::query::Page;
use valle_shared::lending::audit::{AuditAction, AuditEvent};
use valle_shared::lending::export::{
    csv_header, csv_rows, CSV_MEDIA_TYPE, EXPORT_FILE_NAME, EXPORT_PAGE_ROWS,
};
use valle_shared::lending::officers::Me;
use valle_shared::records::decisions::DecisionQuery;

use super::auth::signed_in;
use super::reviews::range_query;
use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::{AuditStore, ReviewStore, StoreError};

/// The rows an export streams after its header.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportStream {
    pub query: DecisionQuery,
}

/// The CSV rows of the next page after decision row `after_seq`, and the last row it
/// holds; `None` once there are no more.
pub async fn export_chunk<B: ReviewStore>(
    backend: &B,
    query: &DecisionQuery,
    after_seq: u64,
) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
    let page = backend
        .export_page(
            query,
            &Page {
                limit: EXPORT_PAGE_ROWS,
                cursor: Some(after_seq),
            },
        )
        .await?;
    let Some(last) = page.last().map(|(seq, _)| *seq) else {
        return Ok(None);
    };
    let cases: Vec<_> = page.into_iter().map(|(_, case)| case).collect();
    Ok(Some((csv_rows(&cases), last)))
}

impl<B: AuditStore> Request<'_, B> {
    pub(super) async fn export(&self, me: Option<Me>) -> Result<HttpResponse, ApiError> {
        let me = signed_in(me)?;
        let query = range_query(&self.head.query)?;
        self.append_audit(AuditEvent {
            at_ms: self.now(),
            actor: me.account.email.clone(),
            action: AuditAction::DecisionsExported,
            subject: "decisions.csv".to_owned(),
            detail: json!({ "query": self.head.query }).to_string(),
        })
        .await?;
        let mut response = HttpResponse::json(200, &(), self.id).with_header(
            "content-disposition",
            format!("attachment; filename=\"{EXPORT_FILE_NAME}\""),
        );
        response.headers.retain(|(name, _)| name != "content-type");
        response
            .headers
            .push(("content-type".to_owned(), CSV_MEDIA_TYPE.to_owned()));
        response.body = csv_header();
        response.stream = Some(ExportStream { query });
        Ok(response)
    }
}
