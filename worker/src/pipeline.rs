//! From a validated application to a stored decision; and (`events.rs`) from a batch of
//! queued events to decisions and dead letters. Each piece of work ends in one storage write
//! ([`OutcomeStore::store`]); counting is the KPI object's, which reads the stored rows.
//! Written against the storage traits, so every path (replays, retries, lost messages) is
//! tested on the host with the in-memory backend.

use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::request::{Stage, StageTiming};
use valle_shared::decision::model::ModelError;
use valle_shared::intake::branch::{branch_of, DEFAULT_BRANCH};
use valle_shared::intake::channel::Channel;
use valle_shared::lending::audit::AuditEntry;
use valle_shared::monitoring::kpi::{Observation, Outcome};
use valle_shared::records::decisions::{is_mismatch, DecisionRecord};
use valle_shared::records::events::{ClientScore, QueuedEvent};
use valle_shared::records::idempotency::Fingerprint;
use valle_shared::{Application, Model};

use crate::store::{OutcomeStore, Outcomes, StoreError};

mod events;

pub use events::{
    backoff_seconds, consume_dead_letters, consume_events, queue_stalled, sweep_cutoff,
    sweep_inbox, Delivery, Sweep, MAX_ATTEMPTS, SWEEP_BATCH, SWEEP_ROUNDS,
};

/// An application ready to become a decision.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub request_id: String,
    pub applicant_id: Option<String>,
    pub branch: String,
    pub channel: Channel,
    pub application: Application,
    pub received_at_ms: i64,
    pub event_time_ms: i64,
    pub client_score: Option<ClientScore>,
    /// The request it came from, bound to its id ([`Fingerprint`]).
    pub fingerprint: Fingerprint,
}

impl Incoming {
    /// A queued event whose application passed validation; its id is the decision's.
    pub fn from_event(event: &QueuedEvent, application: Application) -> Incoming {
        Incoming {
            request_id: event.event_id.clone(),
            applicant_id: application.applicant_id.clone(),
            branch: branch_of(&application),
            channel: event.channel,
            application,
            received_at_ms: event.received_at_ms,
            event_time_ms: event.event_time_ms,
            client_score: event.client_score.clone(),
            fingerprint: Fingerprint::of_event(event),
        }
    }

    /// An application posted to the API now, on its own.
    pub fn posted(
        request_id: String,
        channel: Channel,
        application: Application,
        now_ms: i64,
    ) -> Incoming {
        Incoming {
            fingerprint: Fingerprint::of_application(&request_id, &application),
            request_id,
            applicant_id: application.applicant_id.clone(),
            branch: branch_of(&application),
            channel,
            application,
            received_at_ms: now_ms,
            event_time_ms: now_ms,
            client_score: None,
        }
    }
}

/// A stored decision, and whether an earlier request had already stored it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    pub record: DecisionRecord,
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request id stored before came with another body; nothing was written.
    #[error("the request id was used before for another request")]
    IdempotencyMismatch,
}

/// A refused request or a failed event, as the KPIs count it.
pub struct FailedRequest<'a> {
    pub request_id: &'a str,
    pub channel: Channel,
    pub received_at_ms: i64,
    pub event_time_ms: i64,
    pub latency_ms: f64,
    pub code: ErrorCode,
}

/// The KPI observation of a failure; failures count on the default branch.
pub fn failure_observation(failed: &FailedRequest<'_>) -> Observation {
    Observation {
        request_id: failed.request_id.to_owned(),
        branch: DEFAULT_BRANCH.to_owned(),
        channel: failed.channel,
        received_at_ms: failed.received_at_ms,
        event_time_ms: failed.event_time_ms,
        latency_ms: failed.latency_ms,
        outcome: Outcome::Failed { code: failed.code },
        drift_bins: Vec::new(),
    }
}

/// The models a decision runs: the champion, whose score is the answer, and the shadow
/// challenger when it is on, whose verdict is only stored.
#[derive(Clone, Copy)]
pub struct Scorers<'a> {
    pub champion: &'a Model,
    pub shadow: Option<&'a Model>,
}

impl Scorers<'static> {
    /// The embedded champion, and the challenger when `shadow` is on. A challenger that does
    /// not load leaves decisions without a shadow score; it never stops a decision.
    pub fn embedded(shadow: bool) -> Result<Scorers<'static>, ModelError> {
        Ok(Scorers {
            champion: Model::embedded()?,
            shadow: shadow.then(|| Model::challenger().ok()).flatten(),
        })
    }
}

impl<'a> From<&'a Model> for Scorers<'a> {
    fn from(champion: &'a Model) -> Scorers<'a> {
        Scorers {
            champion,
            shadow: None,
        }
    }
}

/// Scores an application into the record that will be stored. `timing` holds the stages
/// so far; the score stage and the total are added here. The latency the KPIs count ends
/// when the decision is ready to store; it is the time so far, because the row must carry
/// it before it is written. Recourse is searched only for an applicant waiting online; the
/// shadow's verdict, when on, is stored beside the score and never changes it.
pub fn decision_record<'a>(
    scorers: impl Into<Scorers<'a>>,
    incoming: Incoming,
    mut timing: Vec<StageTiming>,
    elapsed_ms: &dyn Fn() -> f64,
) -> Result<DecisionRecord, ModelError> {
    let Scorers { champion, shadow } = scorers.into();
    let score = if incoming.channel == Channel::Online {
        champion.score(&incoming.application)?
    } else {
        champion.assess(&incoming.application)?
    };
    let shadow = shadow.and_then(|challenger| challenger.shadow_score(&incoming.application).ok());
    let mismatch = incoming
        .client_score
        .as_ref()
        .is_some_and(|client| is_mismatch(client, &score));
    let total = elapsed_ms();
    timing.push(StageTiming::new(
        Stage::Score,
        total - timing.iter().map(|stage| stage.ms).sum::<f64>(),
    ));
    timing.push(StageTiming::new(Stage::Total, total));
    Ok(DecisionRecord {
        request_id: incoming.request_id,
        applicant_id: incoming.applicant_id,
        branch: incoming.branch,
        channel: incoming.channel,
        application: incoming.application,
        score,
        received_at_ms: incoming.received_at_ms,
        event_time_ms: incoming.event_time_ms,
        timing,
        client_probability: incoming.client_score.map(|client| client.probability),
        mismatch,
        kpi_seq: None,
        kpi_window: None,
        shadow,
        fingerprint: Some(incoming.fingerprint),
    })
}

/// A dead letter an officer replays: the same write marks it replayed and appends the
/// audit row.
#[derive(Clone, Copy, Debug)]
pub struct Replay<'a> {
    pub letter: i64,
    pub audit: &'a AuditEntry,
}

/// Stores decisions in one write; a request id stored before by the same request answers
/// its stored decision, marked replayed, and nothing is written for it. A request id stored
/// before by another request fails the whole call with
/// [`PipelineError::IdempotencyMismatch`]: none of the records is written, and the caller
/// learns nothing of the stored ones. An officer's replay of a dead letter is not bound so:
/// it answers the decision stored under the event's id, whatever request made it, since
/// officers may read every decision.
pub async fn store_decisions<B: OutcomeStore>(
    backend: &B,
    records: Vec<DecisionRecord>,
    replay: Option<Replay<'_>>,
    now_ms: i64,
) -> Result<Vec<Decided>, PipelineError> {
    let outcomes = Outcomes {
        decisions: &records,
        one_request: replay.is_none(),
        replayed_letter: replay.map(|replay| replay.letter),
        audit: replay.map(|replay| replay.audit),
        ..Outcomes::default()
    };
    let stored = backend.store(outcomes, now_ms).await?;
    let mismatch = replay.is_none()
        && records.iter().any(|record| {
            stored
                .existing(&record.request_id)
                .is_some_and(|existing| !existing.is_repeated_by(record))
        });
    // An id whose decision was destroyed stays taken, and says nothing of what it was.
    let destroyed = records
        .iter()
        .any(|record| stored.destroyed.contains(&record.request_id));
    let mismatch = mismatch || destroyed;
    if mismatch {
        return Err(PipelineError::IdempotencyMismatch);
    }
    Ok(records
        .into_iter()
        .map(|record| match stored.existing(&record.request_id) {
            Some(existing) => Decided {
                record: existing.clone(),
                replayed: true,
            },
            None => Decided {
                record,
                replayed: false,
            },
        })
        .collect())
}

/// Scores and stores one decision: the one storage round trip of `POST /api/v1/score`.
pub async fn decide<'a, B: OutcomeStore>(
    backend: &B,
    model: impl Into<Scorers<'a>>,
    incoming: Incoming,
    timing: Vec<StageTiming>,
    elapsed_ms: &dyn Fn() -> f64,
) -> Result<Decided, PipelineError> {
    let now_ms = incoming.received_at_ms;
    let record = decision_record(model, incoming, timing, elapsed_ms)?;
    let mut decided = store_decisions(backend, vec![record], None, now_ms).await?;
    decided
        .pop()
        .ok_or_else(|| PipelineError::Store(StoreError::new("d1", "the write answered nothing")))
}
