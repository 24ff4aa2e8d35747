//! `GET /api/v1/dead-letters` and `POST /api/v1/dead-letters/{id}/replay` (officers).

use valle_shared::api::ReplayRequest;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::errors::RequestError;
use valle_shared::contract::query::DEAD_LETTER_PAGES;
use valle_shared::contract::request::Stage;
use valle_shared::records::decisions::{DeadLetterPage, DeadLetterStatus, ReplayResponse};

use serde_json::json;
use valle_shared::lending::audit::{append, AuditAction, AuditEvent};
use valle_shared::lending::officers::Me;

use super::auth::signed_in;
use super::{pipeline_error, query_error, require_json, Request};
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::pipeline::{decision_record, store_decisions, Incoming, PipelineError, Replay};
use crate::sql::audit::chain_moved;
use crate::store::{
    AuditStore, DeadLetterStore, DecisionStore, NewDeadLetter, OutcomeStore, Outcomes, StoreError,
};

/// Another officer's write appended to the audit trail between this replay's read and its
/// write: nothing was stored, and the officer may simply retry.
fn busy_if_chain_moved(error: StoreError) -> ApiError {
    if chain_moved(&error) {
        ApiError::Busy
    } else {
        ApiError::Store(error)
    }
}

impl<B: AuditStore + DeadLetterStore + DecisionStore + OutcomeStore> Request<'_, B> {
    /// `GET /api/v1/dead-letters?status=open|replayed|superseded&limit&cursor`.
    pub(super) async fn dead_letters(&self) -> Result<HttpResponse, ApiError> {
        let mut status = None;
        let page = DEAD_LETTER_PAGES
            .parse::<i64>(&self.head.query, |key, value, errors| {
                if key != "status" {
                    return false;
                }
                status = DeadLetterStatus::from_name(value);
                if status.is_none() {
                    errors.push(query_error("status", ErrorCode::Enum));
                }
                true
            })
            .map_err(ApiError::Query)?;
        let letters = self.backend.list_dead_letters(status, &page).await?;
        let next_cursor = page.next(&letters, |letter| letter.id);
        Ok(HttpResponse::json(
            200,
            &DeadLetterPage {
                dead_letters: letters,
                next_cursor,
            },
            self.id,
        ))
    }

    /// `POST /api/v1/dead-letters/{id}/replay`: processes the event again, with a corrected
    /// application when the body carries one. Success stores the decision (once, by event
    /// id) and marks the letter replayed in the same write; failure keeps it open and says
    /// why.
    pub(super) async fn replay(
        &self,
        id: i64,
        body: &[u8],
        me: Option<Me>,
    ) -> Result<HttpResponse, ApiError> {
        let me = signed_in(me)?;
        let request: ReplayRequest = if body.iter().all(u8::is_ascii_whitespace) {
            ReplayRequest::default()
        } else {
            require_json(self.head)?;
            serde_json::from_slice(body).map_err(|error| RequestError::Malformed {
                detail: format!("replay body: {error}"),
            })?
        };
        let letter = self
            .backend
            .get_dead_letter(id)
            .await?
            .ok_or(ApiError::NotFound)?;
        // Replaying twice is harmless: the second answer is the decision the first stored.
        if letter.status == DeadLetterStatus::Replayed {
            if let Some(record) = self.backend.get_decision(&letter.event_id).await? {
                return Ok(HttpResponse::json(
                    200,
                    &ReplayResponse {
                        dead_letter_id: id,
                        status: DeadLetterStatus::Replayed,
                        replayed: true,
                        decision: record,
                    },
                    self.id,
                ));
            }
        }
        let mut event = letter.payload.clone();
        let corrected = request.application.is_some();
        if let Some(application) = request.application {
            event.application = application.to_string();
        }
        let now = self.now();
        let head = self.backend.chain_head().await?;
        let audit = |outcome: &str| {
            append(
                &head,
                AuditEvent {
                    at_ms: now,
                    actor: me.account.email.clone(),
                    action: AuditAction::DeadLetterReplayed,
                    subject: id.to_string(),
                    detail: json!({
                        "event_id": letter.event_id,
                        "corrected": corrected,
                        "outcome": outcome,
                    })
                    .to_string(),
                },
            )
        };
        let application = match valle_shared::parse_application(event.application.as_bytes()) {
            Ok(application) => application,
            Err(error) => {
                let again = NewDeadLetter {
                    error_code: error.code(),
                    error_message: error.to_string(),
                    attempts: 1,
                    failed_at_ms: now,
                    latency_ms: self.elapsed(),
                    payload: event,
                };
                let entry = audit(error.code().as_str());
                let write = Outcomes {
                    dead_letters: std::slice::from_ref(&again),
                    audit: Some(&entry),
                    ..Outcomes::default()
                };
                self.backend
                    .store(write, now)
                    .await
                    .map_err(busy_if_chain_moved)?;
                return Err(error.into());
            }
        };
        self.lap(Stage::Validate);
        let incoming = Incoming::from_event(&event, application);
        let stages = self.timer.borrow().stages_so_far();
        let record = decision_record(self.scorers()?, incoming, stages, &|| self.elapsed())?;
        let entry = audit("stored");
        let replay = Replay {
            letter: id,
            audit: &entry,
        };
        let decided = store_decisions(self.backend, vec![record], Some(replay), now)
            .await
            .map_err(|error| match error {
                PipelineError::Store(error) => busy_if_chain_moved(error),
                other => pipeline_error(other),
            })?
            .pop()
            .ok_or_else(|| ApiError::Internal("the write answered nothing".into()))?;
        if !decided.replayed {
            self.stored();
        }
        Ok(HttpResponse::json(
            200,
            &ReplayResponse {
                dead_letter_id: id,
                status: DeadLetterStatus::Replayed,
                replayed: decided.replayed,
                decision: decided.record,
            },
            self.id,
        ))
    }
}
