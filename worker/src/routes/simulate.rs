//! `POST /api/v1/simulate` (supervisors): the last stored applications re-decided under a
//! candidate strategy, one D1 read, the maths in `valle_shared::decision::simulation`. A what-if
//! writes nothing.

use valle_shared::contract::request::Stage;
use valle_shared::decision::simulation::{parse_simulation, simulate};
use valle_shared::Model;

use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::DecisionStore;

impl<B: DecisionStore> Request<'_, B> {
    pub(super) async fn simulate(&self, body: &[u8]) -> Result<HttpResponse, ApiError> {
        let model = Model::embedded()?;
        let request = parse_simulation(body, model.thresholds())?;
        let stored = self
            .backend
            .recent_decisions(request.last, request.branch.as_deref())
            .await?;
        self.lap(Stage::Read);
        let report = simulate(&stored, &request.strategy, model.policy());
        self.lap(Stage::Simulate);
        Ok(HttpResponse::json(200, &report, self.id))
    }
}
