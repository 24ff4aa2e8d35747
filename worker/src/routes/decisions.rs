//! `GET /api/v1/decisions` and `GET /api/v1/decisions/{request_id}` (officers).

use valle_shared::records::decisions::DecisionQuery;

use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::DecisionStore;

impl<B: DecisionStore> Request<'_, B> {
    /// `GET /api/v1/decisions?from&to&branch&band&decision&channel&limit&cursor`.
    pub(super) async fn decisions(&self) -> Result<HttpResponse, ApiError> {
        let query = DecisionQuery::parse(&self.head.query).map_err(ApiError::Query)?;
        let page = self.backend.list_decisions(&query).await?;
        Ok(HttpResponse::json(200, &page, self.id))
    }

    /// `GET /api/v1/decisions/{request_id}`.
    pub(super) async fn decision(&self, request_id: &str) -> Result<HttpResponse, ApiError> {
        match self.backend.get_decision(request_id).await? {
            Some(record) => Ok(HttpResponse::json(200, &record, self.id)),
            None => Err(ApiError::NotFound),
        }
    }
}
