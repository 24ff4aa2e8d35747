//! From a batch of queued events to decisions and dead letters, the dead-letter queue's
//! consumer, and the inbox sweeper that re-sends what a lost message left behind.

use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::request::{Stage, StageTiming};
use valle_shared::decision::model::ModelError;
use valle_shared::intake::validation::parse_application;
use valle_shared::records::decisions::DecisionRecord;
use valle_shared::records::events::QueuedEvent;

use serde::Deserialize;

use crate::observability::log;
use crate::store::{
    EventInbox, EventQueue, InboxState, NewDeadLetter, OutcomeStore, Outcomes, StoreError,
    Unsettled,
};

use super::{decision_record, Incoming, PipelineError, Scorers};

/// Attempts the queue makes before an event becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 3;

/// Kept events one sweep takes from the inbox at a time, and the most rounds per sweep; a
/// sweep that leaves events behind runs again after the lease.
pub const SWEEP_BATCH: usize = 200;
pub const SWEEP_ROUNDS: usize = 10;

/// Exponential backoff between attempts: 2, 4, 8… seconds.
pub fn backoff_seconds(attempt: u32) -> u32 {
    2_u32.saturating_pow(attempt.clamp(1, 10))
}

/// One queue message: its body and when it was sent to the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub body: serde_json::Value,
    pub sent_at_ms: i64,
}

/// What one event becomes before anything is written.
enum Prepared {
    // Boxed: a decision is several times larger than a dead letter.
    Decision(Box<DecisionRecord>),
    Letter(NewDeadLetter),
}

/// Validates and re-scores one event with the edge's model: a decision to store, or, for an
/// invalid application, a dead letter (retrying cannot fix it).
fn prepare_event(
    model: Scorers<'_>,
    event: &QueuedEvent,
    started_ms: f64,
    now_ms: &dyn Fn() -> f64,
) -> Result<Prepared, ModelError> {
    let begun = now_ms();
    let elapsed = || now_ms() - started_ms;
    let application = match parse_application(event.application.as_bytes()) {
        Ok(application) => application,
        Err(error) => {
            let detail = match &error {
                valle_shared::RequestError::Invalid(fields) => fields
                    .iter()
                    .map(|field| format!("{}:{}", field.field, field.code.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            return Ok(Prepared::Letter(NewDeadLetter {
                payload: event.clone(),
                error_code: error.code(),
                error_message: detail.chars().take(2_000).collect(),
                attempts: event.attempt,
                failed_at_ms: now_ms() as i64,
                latency_ms: elapsed(),
            }));
        }
    };
    let timing = vec![
        StageTiming::new(Stage::Queue, begun - started_ms),
        StageTiming::new(Stage::Validate, now_ms() - begun),
    ];
    let incoming = Incoming::from_event(event, application);
    Ok(Prepared::Decision(Box::new(decision_record(
        model, incoming, timing, &elapsed,
    )?)))
}

/// The events queue's consumer, for one batch of messages: all are validated and scored,
/// then their decisions and dead letters are stored and their inbox entries settled in one
/// write. `Ok` means the message may be acknowledged; a message whose body is not an event
/// is an `Err`, so the platform's retries move it to the dead-letter queue.
pub async fn consume_events<'a, B: OutcomeStore + EventQueue>(
    backend: &B,
    model: impl Into<Scorers<'a>>,
    deliveries: &[Delivery],
    now_ms: &dyn Fn() -> f64,
) -> Vec<Result<(), StoreError>> {
    let reached = deliveries.iter().map(|delivery| delivery.sent_at_ms).max();
    decide_events(backend, model.into(), deliveries, reached, now_ms).await
}

/// Decides a batch of events in one write; `reached` is the queue position to record, if
/// the events came from the queue. If the write fails, every event goes back to the queue
/// with backoff in one send, or, on its last attempt, to the dead-letter queue.
async fn decide_events<B: OutcomeStore + EventQueue>(
    backend: &B,
    model: Scorers<'_>,
    deliveries: &[Delivery],
    reached: Option<i64>,
    now_ms: &dyn Fn() -> f64,
) -> Vec<Result<(), StoreError>> {
    let started = now_ms();
    let mut outcomes: Vec<Result<(), StoreError>> = Vec::with_capacity(deliveries.len());
    let mut events = Vec::new();
    for delivery in deliveries {
        match serde_json::from_value::<QueuedEvent>(delivery.body.clone()) {
            Ok(event) => {
                events.push((outcomes.len(), event));
                outcomes.push(Ok(()));
            }
            Err(error) => outcomes.push(Err(StoreError::new(
                "queue",
                format!("unreadable message: {error}"),
            ))),
        }
    }
    let mut decisions = Vec::new();
    let mut letters = Vec::new();
    let mut failure: Option<PipelineError> = None;
    for (_, event) in &events {
        match prepare_event(model, event, started, now_ms) {
            Ok(Prepared::Decision(record)) => decisions.push(*record),
            Ok(Prepared::Letter(letter)) => letters.push(letter),
            Err(error) => {
                failure = Some(error.into());
                break;
            }
        }
    }
    if failure.is_none() {
        let settle: Vec<String> = events
            .iter()
            .map(|(_, event)| event.event_id.clone())
            .collect();
        let write = Outcomes {
            decisions: &decisions,
            dead_letters: &letters,
            settle: &settle,
            reached_ms: reached,
            ..Outcomes::default()
        };
        match backend.store(write, now_ms() as i64).await {
            Ok(_) => return outcomes,
            Err(error) => failure = Some(error.into()),
        }
    }
    let Some(failure) = failure else {
        return outcomes;
    };
    log(&format!(
        "events: a batch of {} was not stored, sent back with backoff: {failure}",
        events.len()
    ));
    let failed_at = now_ms();
    let code = match failure {
        PipelineError::Model(_) => ErrorCode::Model,
        PipelineError::Store(_) => ErrorCode::Store,
        PipelineError::IdempotencyMismatch => ErrorCode::IdempotencyMismatch,
    };
    // Nothing of the batch was stored. Invalid applications are dead letters whatever
    // happens; the rest is a transient failure: back to the queue with backoff, or, on the
    // last attempt, to the dead letters too.
    let invalid: std::collections::BTreeSet<&str> = letters
        .iter()
        .map(|letter| letter.payload.event_id.as_str())
        .collect();
    let mut again = Vec::new();
    let mut given_up = letters.clone();
    for (_, event) in &events {
        if invalid.contains(event.event_id.as_str()) {
            continue;
        }
        if event.attempt >= MAX_ATTEMPTS {
            given_up.push(NewDeadLetter {
                payload: event.clone(),
                error_code: code,
                error_message: failure.to_string().chars().take(2_000).collect(),
                attempts: event.attempt,
                failed_at_ms: failed_at as i64,
                latency_ms: failed_at - started,
            });
        } else {
            let next = QueuedEvent {
                attempt: event.attempt + 1,
                ..event.clone()
            };
            again.push((next, backoff_seconds(event.attempt)));
        }
    }
    let requeued = if again.is_empty() {
        Ok(())
    } else {
        backend.requeue(&again).await
    };
    let lettered = if given_up.is_empty() {
        Ok(())
    } else {
        backend.send_dead_letters(&given_up).await
    };
    let lettered_ids: std::collections::BTreeSet<&str> = given_up
        .iter()
        .map(|letter| letter.payload.event_id.as_str())
        .collect();
    for (index, event) in &events {
        let sent = if lettered_ids.contains(event.event_id.as_str()) {
            &lettered
        } else {
            &requeued
        };
        outcomes[*index] = sent.clone();
    }
    outcomes
}

/// What the dead-letter queue carries: our own letters, or events the platform moved there
/// after their retries ran out.
#[derive(Deserialize)]
#[serde(untagged)]
enum DeadLetterMessage {
    Letter(NewDeadLetter),
    Exhausted(QueuedEvent),
}

/// The dead-letter queue's consumer: stores the batch's letters (one row per event id) and
/// settles their events in the inbox, in one write.
pub async fn consume_dead_letters<B: OutcomeStore>(
    backend: &B,
    deliveries: &[Delivery],
    now_ms: i64,
) -> Vec<Result<(), StoreError>> {
    let mut letters = Vec::new();
    let mut unreadable = 0;
    for delivery in deliveries {
        match serde_json::from_value(delivery.body.clone()) {
            Ok(DeadLetterMessage::Letter(letter)) => letters.push(letter),
            Ok(DeadLetterMessage::Exhausted(event)) => letters.push(NewDeadLetter {
                error_code: ErrorCode::RetriesExhausted,
                error_message: "the queue gave up after its retries".to_owned(),
                attempts: event.attempt,
                failed_at_ms: now_ms,
                latency_ms: 0.0,
                payload: event,
            }),
            Err(_) => unreadable += 1,
        }
    }
    if unreadable > 0 {
        log(&format!(
            "dead-letter queue: {unreadable} unreadable messages acknowledged"
        ));
    }
    let settle: Vec<String> = letters
        .iter()
        .map(|letter| letter.payload.event_id.clone())
        .collect();
    let write = Outcomes {
        dead_letters: &letters,
        settle: &settle,
        ..Outcomes::default()
    };
    // The dead-letter queue has its own order: it says nothing of the events queue's.
    let stored = if letters.is_empty() {
        Ok(())
    } else {
        backend.store(write, now_ms).await.map(|_| ())
    };
    deliveries.iter().map(|_| stored.clone()).collect()
}

/// What one sweep of the inbox did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Events sent to the queue again.
    pub resent: usize,
    /// Events the sweeper decided itself because the queue made no progress.
    pub decided: usize,
    /// Events still kept after the sweep (in flight or just re-sent).
    pub kept: u64,
}

/// The last-send time at or before which a kept event counts as lost. The queue delivers
/// in order, so while the consumer is working (it processed a message within the last
/// lease), an event sent a lease before the newest message it processed was skipped: its
/// message is gone. A consumer that is merely behind is left alone, since copies of a
/// backlog would only grow it. If the consumer processed nothing for a lease (it is down,
/// or the queue lost everything in a crash), every event sent a lease ago counts as lost.
pub fn sweep_cutoff(state: &InboxState, now_ms: i64, lease_ms: i64) -> i64 {
    let idle_cutoff = now_ms - lease_ms;
    match (state.consumer_reached_ms, state.consumer_seen_at_ms) {
        (Some(reached), Some(seen_at)) if seen_at > idle_cutoff => {
            (reached - lease_ms).min(idle_cutoff)
        }
        _ => idle_cutoff,
    }
}

/// Whether the queue has made no progress for two leases while events wait: re-sending
/// has not helped (the consumer is down, or a local queue stalled), so the sweeper decides
/// the events itself.
pub fn queue_stalled(state: &InboxState, now_ms: i64, lease_ms: i64) -> bool {
    let stalled_before = now_ms - 2 * lease_ms;
    let waiting = state
        .oldest_kept_at_ms
        .is_some_and(|kept_at| kept_at <= stalled_before);
    let progressed = state
        .consumer_seen_at_ms
        .is_some_and(|seen_at| seen_at > stalled_before);
    waiting && !progressed
}

/// Sends again every kept event the consumer has lost (see [`sweep_cutoff`]), or, when the
/// queue has stalled (see [`queue_stalled`]), decides up to [`SWEEP_BATCH`] of them itself,
/// the same way the consumer does. Copies are harmless because an event id is stored once.
/// The inbox is the durable record; the queue is only the fast path.
pub async fn sweep_inbox<'a, B: OutcomeStore + EventQueue + EventInbox>(
    backend: &B,
    model: impl Into<Scorers<'a>>,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Sweep, StoreError> {
    let state = backend.inbox_state().await?;
    let take = Unsettled {
        cutoff_ms: sweep_cutoff(&state, now_ms, lease_ms),
        now_ms,
        limit: SWEEP_BATCH,
    };
    let mut sweep = Sweep::default();
    if queue_stalled(&state, now_ms, lease_ms) {
        let stale = backend.take_unsettled(take).await?;
        let deliveries: Vec<Delivery> = stale
            .iter()
            .filter_map(|event| {
                Some(Delivery {
                    body: serde_json::to_value(event).ok()?,
                    sent_at_ms: now_ms,
                })
            })
            .collect();
        // Not from the queue: no queue position to record.
        let clock = || now_ms as f64;
        let outcomes = decide_events(backend, model.into(), &deliveries, None, &clock).await;
        sweep.decided = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    } else {
        for _ in 0..SWEEP_ROUNDS {
            let stale = backend.take_unsettled(take).await?;
            if stale.is_empty() {
                break;
            }
            backend.enqueue(&stale).await?;
            sweep.resent += stale.len();
            if stale.len() < SWEEP_BATCH {
                break;
            }
        }
    }
    sweep.kept = backend.inbox_state().await?.kept;
    Ok(sweep)
}
