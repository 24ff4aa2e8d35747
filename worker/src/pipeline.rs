//! From a validated application to a stored, counted decision; and from a queued event to a
//! decision or a dead letter. Written against the storage traits, so every path (replays,
//! KPI failures, retries) is tested on the host with the in-memory backend.

use valle_shared::api::StageTiming;
use valle_shared::decisions::{is_mismatch, DecisionRecord};
use valle_shared::events::{branch_of, Channel, ClientScore, QueuedEvent, DEFAULT_BRANCH};
use valle_shared::kpi::{Observation, Outcome};
use valle_shared::model::ModelError;
use valle_shared::validation::parse_application;
use valle_shared::{Application, Model};

use serde::Deserialize;

use crate::routes::log;
use crate::store::{
    DeadLetterStore, DecisionStore, EventInbox, EventQueue, InboxState, Inserted, KpiSink,
    NewDeadLetter, StoreError,
};

/// Attempts the queue makes before an event becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 3;

/// Kept events one sweep takes from the inbox at a time, and the most rounds per sweep; a
/// sweep that leaves events behind runs again after the lease.
pub const SWEEP_BATCH: usize = 200;
pub const SWEEP_ROUNDS: usize = 10;

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
}

/// The KPI observation of a refused request or event.
pub fn failure_observation(
    request_id: &str,
    branch: &str,
    received_at_ms: i64,
    event_time_ms: i64,
    latency_ms: f64,
    code: &str,
) -> Observation {
    Observation {
        request_id: request_id.to_owned(),
        branch: branch.to_owned(),
        received_at_ms,
        event_time_ms,
        latency_ms,
        outcome: Outcome::Failed {
            code: code.to_owned(),
        },
        drift_bins: Vec::new(),
    }
}

/// Scores, stores once, and counts once. `timing` holds the stages so far; the store stage
/// and the total are added here. A decision stored by an earlier call with the same request
/// id is returned as it was stored, marked replayed, and nothing is written. A decision
/// stored earlier but never counted (the KPI call failed) is counted now.
pub async fn decide<B: DecisionStore + KpiSink>(
    backend: &B,
    model: &Model,
    incoming: Incoming,
    mut timing: Vec<StageTiming>,
    elapsed_ms: &dyn Fn() -> f64,
) -> Result<Decided, PipelineError> {
    let score = model.score(&incoming.application)?;
    let mismatch = incoming
        .client_score
        .as_ref()
        .is_some_and(|client| is_mismatch(client, &score));
    let before_store = elapsed_ms();
    timing.push(StageTiming {
        name: "score".to_owned(),
        ms: before_store - timing.iter().map(|stage| stage.ms).sum::<f64>(),
    });
    let mut record = DecisionRecord {
        request_id: incoming.request_id,
        applicant_id: incoming.applicant_id,
        branch: incoming.branch,
        channel: incoming.channel,
        application: incoming.application,
        score,
        received_at_ms: incoming.received_at_ms,
        event_time_ms: incoming.event_time_ms,
        timing: Vec::new(),
        client_probability: incoming.client_score.map(|client| client.probability),
        mismatch,
        kpi_seq: None,
        kpi_window: None,
    };
    // The latency the KPIs count ends when the decision is stored; it is estimated as the
    // time so far, because the row must carry it before it is written.
    timing.push(StageTiming {
        name: "total".to_owned(),
        ms: before_store,
    });
    record.timing = timing;
    match backend.insert_decision(&record).await? {
        Inserted::New => {
            let recorded = backend.record(&[record.observation()]).await?;
            if let Some(place) = recorded.first() {
                record.kpi_seq = place.seq;
                record.kpi_window = place.count_window;
            }
            Ok(Decided {
                record,
                replayed: false,
            })
        }
        Inserted::Existing(mut stored) => {
            if stored.kpi_seq.is_none() {
                let recorded = backend.record(&[stored.observation()]).await?;
                if let Some(place) = recorded.first() {
                    stored.kpi_seq = place.seq;
                    stored.kpi_window = place.count_window;
                }
            }
            Ok(Decided {
                record: *stored,
                replayed: true,
            })
        }
    }
}

/// What became of one queued event.
#[derive(Clone, Debug, PartialEq)]
pub enum EventFate {
    Stored(Box<Decided>),
    /// Written to the dead letters (permanent failure, or the last attempt failed).
    DeadLettered {
        code: String,
    },
    /// A transient failure: retry after this many seconds.
    Retry {
        delay_s: u32,
        error: String,
    },
}

/// Exponential backoff between attempts: 2, 4, 8… seconds.
pub fn backoff_seconds(attempt: u32) -> u32 {
    2_u32.saturating_pow(attempt.clamp(1, 10))
}

/// Validates and re-scores a queued event with the edge's model, stores it once by event id,
/// and counts it. An invalid application is dead-lettered at once (retrying cannot fix it);
/// a storage failure is retried with backoff and dead-lettered after [`MAX_ATTEMPTS`].
pub async fn process_event<B: DecisionStore + EventQueue + KpiSink>(
    backend: &B,
    model: &Model,
    event: &QueuedEvent,
    now_ms: &dyn Fn() -> f64,
) -> Result<EventFate, StoreError> {
    let attempt = event.attempt;
    let started = now_ms();
    let elapsed = || now_ms() - started;
    let application = match parse_application(event.application.as_bytes()) {
        Ok(application) => application,
        Err(error) => {
            let code = error.code().to_owned();
            let detail = match &error {
                valle_shared::RequestError::Invalid(fields) => fields
                    .iter()
                    .map(|field| format!("{}:{}", field.field, field.code.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            return dead_letter(backend, event, &code, &detail, attempt, started, elapsed()).await;
        }
    };
    let timing = vec![
        StageTiming {
            name: "queue".to_owned(),
            ms: 0.0,
        },
        StageTiming {
            name: "validate".to_owned(),
            ms: elapsed(),
        },
    ];
    let incoming = Incoming::from_event(event, application);
    match decide(backend, model, incoming, timing, &elapsed).await {
        Ok(decided) => Ok(EventFate::Stored(Box::new(decided))),
        Err(error) if attempt >= MAX_ATTEMPTS => {
            let code = match error {
                PipelineError::Model(_) => "E_MODEL",
                PipelineError::Store(_) => "E_STORE",
            };
            dead_letter(
                backend,
                event,
                code,
                &error.to_string(),
                attempt,
                started,
                elapsed(),
            )
            .await
        }
        Err(error) => Ok(EventFate::Retry {
            delay_s: backoff_seconds(attempt),
            error: error.to_string(),
        }),
    }
}

async fn dead_letter<B: DecisionStore + EventQueue + KpiSink>(
    backend: &B,
    event: &QueuedEvent,
    code: &str,
    detail: &str,
    attempt: u32,
    now_ms: f64,
    latency_ms: f64,
) -> Result<EventFate, StoreError> {
    // The event id is the idempotency key: once an event is a decision, a later copy with
    // different (even invalid) content is a duplicate, not a failure.
    if let Some(stored) = backend.get_decision(&event.event_id).await? {
        return Ok(EventFate::Stored(Box::new(Decided {
            record: stored,
            replayed: true,
        })));
    }
    backend
        .send_dead_letter(&NewDeadLetter {
            payload: event.clone(),
            error_code: code.to_owned(),
            error_message: detail.chars().take(2_000).collect(),
            attempts: attempt,
            failed_at_ms: now_ms as i64,
        })
        .await?;
    // The failure is counted only once it is safely stored as a dead letter.
    let failure = failure_observation(
        &event.event_id,
        DEFAULT_BRANCH,
        event.received_at_ms,
        event.event_time_ms,
        latency_ms,
        code,
    );
    backend.record(&[failure]).await?;
    Ok(EventFate::DeadLettered {
        code: code.to_owned(),
    })
}

/// One queue message: its body and when it was sent to the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub body: serde_json::Value,
    pub sent_at_ms: i64,
}

/// The events queue's consumer, for one batch of messages: each becomes a decision, a dead
/// letter or a delayed retry. `Ok` means the message may be acknowledged. Events whose
/// decision is stored are settled in the inbox, all in one call, which also records how far
/// the consumer has got in the queue (the newest enqueue time in the batch).
pub async fn consume_events<B: DecisionStore + EventQueue + KpiSink + EventInbox>(
    backend: &B,
    model: &Model,
    deliveries: &[Delivery],
    now_ms: &dyn Fn() -> f64,
) -> Vec<Result<(), StoreError>> {
    let reached = deliveries.iter().map(|delivery| delivery.sent_at_ms).max();
    decide_events(backend, model, deliveries, reached, now_ms).await
}

/// Decides each event and settles the stored ones; `reached` is the queue position to
/// record, if the events came from the queue.
async fn decide_events<B: DecisionStore + EventQueue + KpiSink + EventInbox>(
    backend: &B,
    model: &Model,
    deliveries: &[Delivery],
    reached: Option<i64>,
    now_ms: &dyn Fn() -> f64,
) -> Vec<Result<(), StoreError>> {
    let mut outcomes = Vec::with_capacity(deliveries.len());
    let mut settled = Vec::new();
    for delivery in deliveries {
        outcomes.push(consume_event(backend, model, &delivery.body, now_ms, &mut settled).await);
    }
    settle(backend, &settled, reached, now_ms() as i64).await;
    outcomes
}

async fn consume_event<B: DecisionStore + EventQueue + KpiSink>(
    backend: &B,
    model: &Model,
    body: &serde_json::Value,
    now_ms: &dyn Fn() -> f64,
    settled: &mut Vec<String>,
) -> Result<(), StoreError> {
    // Not an event this worker sent: retrying cannot help, so the platform's retries move it
    // to the dead-letter queue, which logs it.
    let event: QueuedEvent = serde_json::from_value(body.clone())
        .map_err(|error| StoreError::new("queue", format!("unreadable message: {error}")))?;
    match process_event(backend, model, &event, now_ms).await? {
        EventFate::Stored(_) => {
            settled.push(event.event_id);
            Ok(())
        }
        // Settled once the dead-letter queue's consumer has stored the letter.
        EventFate::DeadLettered { .. } => Ok(()),
        EventFate::Retry { delay_s, error } => {
            log(&format!(
                "event {} attempt {} failed, retrying in {delay_s} s: {error}",
                event.event_id, event.attempt
            ));
            let next = QueuedEvent {
                attempt: event.attempt + 1,
                ..event
            };
            backend.requeue(&next, delay_s).await
        }
    }
}

/// What the dead-letter queue carries: our own letters, or events the platform moved there
/// after their retries ran out.
#[derive(Deserialize)]
#[serde(untagged)]
enum DeadLetterMessage {
    Letter(NewDeadLetter),
    Exhausted(QueuedEvent),
}

/// The dead-letter queue's consumer: stores each letter (one row per event id) and settles
/// its event in the inbox.
pub async fn consume_dead_letters<B: DeadLetterStore + EventInbox>(
    backend: &B,
    deliveries: &[Delivery],
    now_ms: i64,
) -> Vec<Result<(), StoreError>> {
    let mut outcomes = Vec::with_capacity(deliveries.len());
    let mut settled = Vec::new();
    for delivery in deliveries {
        let letter = match serde_json::from_value(delivery.body.clone()) {
            Ok(DeadLetterMessage::Letter(letter)) => letter,
            Ok(DeadLetterMessage::Exhausted(event)) => NewDeadLetter {
                error_code: "E_RETRIES_EXHAUSTED".to_owned(),
                error_message: "the queue gave up after its retries".to_owned(),
                attempts: event.attempt,
                failed_at_ms: now_ms,
                payload: event,
            },
            Err(error) => {
                log(&format!(
                    "dead-letter queue: unreadable message acknowledged: {error}"
                ));
                outcomes.push(Ok(()));
                continue;
            }
        };
        let stored = backend.put_dead_letter(&letter).await;
        if stored.is_ok() {
            settled.push(letter.payload.event_id);
        }
        outcomes.push(stored);
    }
    // The dead-letter queue has its own order: it says nothing of the events queue's.
    settle(backend, &settled, None, now_ms).await;
    outcomes
}

async fn settle<B: EventInbox>(
    backend: &B,
    event_ids: &[String],
    reached_ms: Option<i64>,
    now_ms: i64,
) {
    if event_ids.is_empty() && reached_ms.is_none() {
        return;
    }
    // The outcomes are stored either way: events left in the inbox are sent again by the
    // sweeper and replay their stored outcome.
    if let Err(error) = backend.settle(event_ids, reached_ms, now_ms).await {
        log(&format!(
            "inbox: {} settled events kept for the sweeper: {error}",
            event_ids.len()
        ));
    }
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
/// the same way the consumer does. Copies are harmless because an event id is stored and
/// counted once. The inbox is the durable record; the queue is only the fast path.
pub async fn sweep_inbox<B: DecisionStore + EventQueue + KpiSink + EventInbox>(
    backend: &B,
    model: &Model,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Sweep, StoreError> {
    let state = backend.inbox_state().await?;
    let cutoff = sweep_cutoff(&state, now_ms, lease_ms);
    let mut sweep = Sweep::default();
    if queue_stalled(&state, now_ms, lease_ms) {
        let stale = backend.take_unsettled(cutoff, now_ms, SWEEP_BATCH).await?;
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
        let outcomes = decide_events(backend, model, &deliveries, None, &clock).await;
        sweep.decided = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    } else {
        for _ in 0..SWEEP_ROUNDS {
            let stale = backend.take_unsettled(cutoff, now_ms, SWEEP_BATCH).await?;
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
