//! The storage the handlers and the queue consumer need, as small traits: D1, the KPI
//! Durable Object, the Queue and the rate limiter at the edge (`edge.rs`), in-memory fakes on
//! the host ([`crate::memory`]). Futures are not `Send`: Workers run one thread per isolate.
#![allow(async_fn_in_trait)]

use serde::{Deserialize, Serialize};
pub use valle_shared::decisions::DeadLetter;
use valle_shared::decisions::{DecisionPage, DecisionQuery, DecisionRecord};
use valle_shared::drift::DriftReport;
use valle_shared::events::QueuedEvent;
use valle_shared::kpi::{CountWindow, KpiView, Observation};
use valle_shared::metrics::Extra;

/// A storage call failed; the message goes to the log, never to the client.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{backend}: {message}")]
pub struct StoreError {
    pub backend: &'static str,
    pub message: String,
}

impl StoreError {
    pub fn new(backend: &'static str, message: impl std::fmt::Display) -> StoreError {
        StoreError {
            backend,
            message: message.to_string(),
        }
    }
}

/// What an idempotent insert found.
#[derive(Clone, Debug, PartialEq)]
pub enum Inserted {
    /// This call stored the record.
    New,
    /// A record with the same request id was already stored; here it is, unchanged.
    Existing(Box<DecisionRecord>),
}

/// Decisions in D1, keyed by request id (an event's id for events).
pub trait DecisionStore {
    /// Stores the record unless its request id is already stored; never writes twice.
    async fn insert_decision(&self, record: &DecisionRecord) -> Result<Inserted, StoreError>;
    async fn get_decision(&self, request_id: &str) -> Result<Option<DecisionRecord>, StoreError>;
    async fn list_decisions(&self, query: &DecisionQuery) -> Result<DecisionPage, StoreError>;
    /// Closed count windows, newest first.
    async fn list_count_windows(
        &self,
        limit: usize,
        before_index: Option<u64>,
    ) -> Result<Vec<CountWindow>, StoreError>;
}

/// What the queue consumer writes when it gives up on an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewDeadLetter {
    pub payload: QueuedEvent,
    pub error_code: String,
    pub error_message: String,
    pub attempts: u32,
    pub failed_at_ms: i64,
}

/// Dead letters in D1, one row per event id: a second failure of the same event updates it.
pub trait DeadLetterStore {
    async fn put_dead_letter(&self, letter: &NewDeadLetter) -> Result<(), StoreError>;
    async fn get_dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError>;
    /// Dead letters by id descending, optionally only one status.
    async fn list_dead_letters(
        &self,
        status: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<DeadLetter>, StoreError>;
    async fn mark_replayed(&self, id: i64, at_ms: i64) -> Result<(), StoreError>;
    async fn count_open_dead_letters(&self) -> Result<u64, StoreError>;
}

/// Where a decision landed in the KPI stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub seq: Option<u64>,
    pub count_window: Option<u64>,
    pub late: bool,
}

/// Everything `/metrics` needs from the aggregator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KpiSnapshot {
    pub core: valle_shared::kpi::Core,
    pub recent: KpiView,
    /// Drift of all branches; absent only if the embedded drift bins are broken.
    #[serde(default)]
    pub drift: Option<DriftReport>,
    /// The object's wasm linear memory (none on the host).
    #[serde(default)]
    pub memory_bytes: Option<u64>,
}

/// The KPI aggregator (a Durable Object at the edge).
pub trait KpiSink {
    /// Counts observations, each once: an observation whose request id was already counted
    /// answers its earlier place and changes nothing.
    async fn record(&self, observations: &[Observation]) -> Result<Vec<Recorded>, StoreError>;
    async fn view(
        &self,
        window: valle_shared::kpi::View,
        branch: Option<&str>,
    ) -> Result<KpiView, StoreError>;
    async fn snapshot(&self) -> Result<KpiSnapshot, StoreError>;
    /// PSI per monitored field for the last 24 h of one branch (or all).
    async fn drift(&self, branch: Option<&str>) -> Result<Option<DriftReport>, StoreError>;
}

/// The events queue and its dead-letter queue.
pub trait EventQueue {
    async fn enqueue(&self, events: &[QueuedEvent]) -> Result<(), StoreError>;
    /// Sends an event back to the queue for another attempt, after `delay_s` seconds.
    async fn requeue(&self, event: &QueuedEvent, delay_s: u32) -> Result<(), StoreError>;
    /// Sends a failed event to the dead-letter queue, whose consumer stores it.
    async fn send_dead_letter(&self, letter: &NewDeadLetter) -> Result<(), StoreError>;
}

/// Events acknowledged with 202, kept in D1 until their outcome is stored. The queue alone
/// is not enough for the promise behind a 202: a local queue lives in its process's memory,
/// and a send can be lost after the answer. A sweeper sends again whatever stays too long.
pub trait EventInbox {
    /// Keeps the events before they are acknowledged; an id already kept stays as it is.
    async fn keep(&self, events: &[QueuedEvent], now_ms: i64) -> Result<(), StoreError>;
    /// Forgets events whose decision or dead letter is stored. The events queue's consumer
    /// also reports `reached_ms`, the newest enqueue time among the messages it processed.
    async fn settle(
        &self,
        event_ids: &[String],
        reached_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Kept events last sent at or before `cutoff_ms`, oldest first, now marked sent at
    /// `now_ms`.
    async fn take_unsettled(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError>;
    async fn inbox_state(&self) -> Result<InboxState, StoreError>;
    /// Makes sure the sweeper looks at the inbox within a lease (a durable alarm at the edge).
    async fn wake_sweeper(&self) -> Result<(), StoreError>;
}

/// How many events are kept, since when the oldest one is, and how far the events queue's
/// consumer has got: the newest enqueue time among the messages it processed (the queue
/// delivers in order), and when it last processed one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboxState {
    pub kept: u64,
    pub oldest_kept_at_ms: Option<i64>,
    pub consumer_reached_ms: Option<i64>,
    pub consumer_seen_at_ms: Option<i64>,
}

/// Per-client rate limiting: `Err(seconds)` means refused, retry after that long.
pub trait RateLimiter {
    async fn allow(&self, client: &str, cost: u32) -> Result<Result<(), u64>, StoreError>;
}

/// Whether each backend answers, for `/healthz`.
pub trait HealthProbe {
    async fn probe(&self) -> Vec<(&'static str, Result<(), StoreError>)>;
}

/// Everything a request may touch.
pub trait Backend:
    DecisionStore + DeadLetterStore + KpiSink + EventQueue + EventInbox + RateLimiter + HealthProbe
{
}

impl<
        T: DecisionStore
            + DeadLetterStore
            + KpiSink
            + EventQueue
            + EventInbox
            + RateLimiter
            + HealthProbe,
    > Backend for T
{
}

/// Inputs of `/metrics` that live outside the aggregator.
pub fn metrics_extra(
    dead_letters_open: Option<u64>,
    inbox: Option<InboxState>,
    now_ms: i64,
    cache_hit_ratio: Option<f64>,
    model_sha256: &str,
    kpi_object_memory_bytes: Option<u64>,
) -> Extra {
    Extra {
        dead_letters_open,
        inbox_kept: inbox.map(|inbox| inbox.kept),
        inbox_oldest_age_s: inbox.map(|inbox| {
            inbox
                .oldest_kept_at_ms
                .map_or(0.0, |kept_at| (now_ms - kept_at).max(0) as f64 / 1_000.0)
        }),
        kpi_cache_hit_ratio: cache_hit_ratio,
        model_sha256: model_sha256.to_owned(),
        worker_memory_bytes: wasm_memory_bytes(),
        kpi_object_memory_bytes,
    }
}

/// This wasm instance's linear memory; none on the host.
pub fn wasm_memory_bytes() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(core::arch::wasm32::memory_size(0) as u64 * 65_536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        None
    }
}
