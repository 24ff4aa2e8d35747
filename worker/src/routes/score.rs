//! `POST /api/v1/score` and `POST /api/v1/score/batch`: one storage write each, however
//! many applications.

use valle_shared::api::batch::{BatchParts, ScoredItem};
use valle_shared::api::{BatchResponse, ScoreResponse};
use valle_shared::contract::errors::RequestError;
use valle_shared::contract::request::Stage;
use valle_shared::decision::disclosure::Disclosure;
use valle_shared::intake::batch::parse_batch;
use valle_shared::intake::channel::Channel;
use valle_shared::intake::validation::{parse_body, validate};
use valle_shared::records::idempotency::{BatchPart, Fingerprint};

use super::{pipeline_error, Request};
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::pipeline::{decide, decision_record, store_decisions, Incoming};
use crate::store::{OutcomeStore, RateLimiter, ReviewStore};

impl<B: OutcomeStore + RateLimiter + ReviewStore> Request<'_, B> {
    /// `POST /api/v1/score`: validates with the shared rules, scores with the shared model,
    /// and stores the decision once per `X-Request-ID`: the one awaited write. The KPI
    /// object counts it from D1 after the answer.
    pub(super) async fn score(&self, body: &[u8]) -> Result<HttpResponse, ApiError> {
        let receipts = self.receipt_key()?;
        let parsed = parse_body(body).and_then(|entries| {
            self.lap(Stage::Parse);
            validate(&entries).map_err(RequestError::Invalid)
        });
        let application = match parsed {
            Ok(application) => application,
            Err(error) => return Err(self.refused(self.id, Channel::Online, error.into())),
        };
        self.lap(Stage::Validate);
        let incoming =
            Incoming::posted(self.id.to_owned(), Channel::Online, application, self.now());
        let stages = self.timer.borrow().stages_so_far();
        let decided = decide(self.backend, self.scorers()?, incoming, stages, &|| {
            self.elapsed()
        })
        .await
        .map_err(pipeline_error)?;
        self.lap(Stage::Decide);
        if !decided.replayed {
            self.stored();
        }
        let record = decided.record;
        let answer = ScoreResponse {
            receipt: Some(receipts.receipt(&record.request_id)),
            request_id: record.request_id,
            application: record.application,
            // The stored decision keeps every reason for the officers.
            score: Disclosure::committed().for_applicant(&record.score),
            timing: if decided.replayed {
                record.timing
            } else {
                self.timer.borrow().stages()
            },
            replayed: decided.replayed,
        };
        Ok(HttpResponse::json(200, &answer, self.id))
    }

    /// `POST /api/v1/score/batch`: up to 1,000 applications, each validated and scored on
    /// its own and stored as `<request id>:<index>`, all in one write; an invalid item gets
    /// the errors it would get alone and does not fail the batch.
    pub(super) async fn score_batch(&self, body: &[u8]) -> Result<HttpResponse, ApiError> {
        let items = parse_batch(body)?;
        self.charge_batch(items.len()).await?;
        let parts: Vec<BatchPart<'_>> = items
            .iter()
            .map(|item| match item {
                Ok(application) => BatchPart::Valid(application),
                Err(error) => BatchPart::Invalid(error.codes_text()),
            })
            .collect();
        let fingerprint = Fingerprint::of_batch(self.id, &parts);
        self.lap(Stage::Validate);
        let scorers = self.scorers()?;
        let now = self.now();
        let mut records = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        let stages = self.timer.borrow().stages_so_far();
        for (index, item) in items.into_iter().enumerate() {
            let item_id = format!("{}:{index}", self.id);
            match item {
                Ok(application) => {
                    let incoming = Incoming {
                        fingerprint: fingerprint.clone(),
                        ..Incoming::posted(item_id, Channel::Batch, application, now)
                    };
                    // Each item's latency is the batch's running time until it was scored.
                    let record =
                        decision_record(scorers, incoming, stages.clone(), &|| self.elapsed())?;
                    records.push((index, record));
                }
                Err(error) => {
                    let error = self.refused(&item_id, Channel::Batch, ApiError::from(error));
                    errors.push((index, error.body(None)));
                }
            }
        }
        self.lap(Stage::Score);
        let (indexes, records): (Vec<usize>, Vec<_>) = records.into_iter().unzip();
        // Storage trouble fails the whole request, so the client retries it all with the
        // same id; stored items then answer as replays.
        let decided = store_decisions(self.backend, records, None, now)
            .await
            .map_err(pipeline_error)?;
        self.lap(Stage::Store);
        if decided.iter().any(|decided| !decided.replayed) {
            self.stored();
        }
        let scored = indexes
            .into_iter()
            .zip(decided)
            .map(|(index, decided)| ScoredItem {
                index,
                request_id: decided.record.request_id,
                replayed: decided.replayed,
                score: decided.record.score,
            })
            .collect();
        let parts = BatchParts {
            request_id: self.id.to_owned(),
            model_version: scorers.champion.version().clone(),
            scored,
            refused: errors,
            timing: self.timer.borrow().stages(),
        };
        let answer = BatchResponse::assemble(parts, Disclosure::committed());
        Ok(HttpResponse::json(200, &answer, self.id))
    }
}
