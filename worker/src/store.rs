//! The storage the handlers and the queue consumers need, as small traits: D1, the KPI
//! Durable Object, the queues and the rate limiter at the edge (`edge/`), in-memory fakes on
//! the host ([`crate::memory`]). Futures are not `Send`: Workers run one thread per isolate.
#![allow(async_fn_in_trait)]

use serde::{Deserialize, Serialize};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateClass;
use valle_shared::contract::query::Page;
use valle_shared::decision::simulation::StoredDecision;
use valle_shared::lending::access::{AccessConfig, Jwk, Jwks, Jwt};
use valle_shared::lending::audit::{AuditEntry, ChainHead};
use valle_shared::lending::officers::Account;
use valle_shared::lending::review::{OverrideRow, Review, ReviewCase, ReviewState};
use valle_shared::monitoring::kpi::CountWindow;
use valle_shared::outcomes::challenger::ShadowCounts;
use valle_shared::outcomes::fairness::FairnessCount;
use valle_shared::outcomes::loan_outcomes::{KnownDecision, LoanOutcome};
use valle_shared::outcomes::performance::ScoreGroup;
pub use valle_shared::records::decisions::{DeadLetter, DeadLetterStatus};
use valle_shared::records::decisions::{DecisionPage, DecisionQuery, DecisionRecord, Period};
use valle_shared::records::events::QueuedEvent;

mod kpi_log;

pub use kpi_log::{
    D1Write, DecisionLog, KpiSink, KpiSnapshot, LogPage, LogPosition, LoggedDecision, Place,
    RefusalBatch,
};

pub use crate::retention::RetentionStore;
pub use crate::webhooks::{WebhookQueue, WebhookStore};

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

/// What the queue consumer writes when it gives up on an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewDeadLetter {
    pub payload: QueuedEvent,
    pub error_code: ErrorCode,
    pub error_message: String,
    pub attempts: u32,
    pub failed_at_ms: i64,
    /// How long the consumer worked on the event before it failed, for the KPIs.
    #[serde(default)]
    pub latency_ms: f64,
}

/// Everything one piece of work stores, written as one D1 batch (one transaction): the
/// request that writes it waits for one storage round trip, whatever it holds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcomes<'a> {
    /// Decisions, each stored unless its request id is; an open dead letter of the same
    /// id is closed (`superseded`).
    pub decisions: &'a [DecisionRecord],
    /// The decisions are one request's (a score, a batch, a replay): if any of their ids is
    /// stored by another request (another fingerprint), none of them is stored.
    pub one_request: bool,
    /// Dead letters, one row per event id (a second failure updates it), never for an event
    /// that is already a decision.
    pub dead_letters: &'a [NewDeadLetter],
    /// Inbox events whose decision or dead letter this write stores.
    pub settle: &'a [String],
    /// For the events queue's consumer: the newest enqueue time among the messages it
    /// processed, its position in the queue.
    pub reached_ms: Option<i64>,
    /// A dead letter this write replays: it is marked `replayed`.
    pub replayed_letter: Option<i64>,
    /// The audit row of an officer's write, appended in the same transaction; the write
    /// fails if the chain has grown since its end was read.
    pub audit: Option<&'a AuditEntry>,
}

/// The decisions that were already stored before a write (their request ids repeat): a
/// repeat answers the stored decision and writes nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stored {
    pub existing: Vec<DecisionRecord>,
    /// Ids among the write's whose decisions were destroyed: taken, with nothing to answer.
    pub destroyed: Vec<String>,
}

impl Stored {
    pub fn existing(&self, request_id: &str) -> Option<&DecisionRecord> {
        self.existing
            .iter()
            .find(|record| record.request_id == request_id)
    }
}

/// The one write every decision, dead letter and settled event goes through.
pub trait OutcomeStore {
    async fn store(&self, outcomes: Outcomes<'_>, now_ms: i64) -> Result<Stored, StoreError>;
}

/// Decisions in D1, keyed by request id (an event's id for events).
pub trait DecisionStore {
    async fn get_decision(&self, request_id: &str) -> Result<Option<DecisionRecord>, StoreError>;
    async fn list_decisions(&self, query: &DecisionQuery) -> Result<DecisionPage, StoreError>;
    /// The most recent `limit` decisions in commit order (of one branch, when given), newest
    /// first, as a simulation re-decides them.
    async fn recent_decisions(
        &self,
        limit: usize,
        branch: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError>;
    /// Closed count windows, newest first.
    async fn list_count_windows(
        &self,
        limit: usize,
        before_index: Option<u64>,
    ) -> Result<Vec<CountWindow>, StoreError>;
}

/// Dead letters in D1, one row per event id.
pub trait DeadLetterStore {
    async fn get_dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError>;
    /// Dead letters by id descending, optionally only one status.
    async fn list_dead_letters(
        &self,
        status: Option<DeadLetterStatus>,
        page: &Page<i64>,
    ) -> Result<Vec<DeadLetter>, StoreError>;
    async fn count_open_dead_letters(&self) -> Result<u64, StoreError>;
}

/// The events queue and its dead-letter queue.
pub trait EventQueue {
    async fn enqueue(&self, events: &[QueuedEvent]) -> Result<(), StoreError>;
    /// Sends events back to the queue for another attempt, each after its delay in seconds.
    async fn requeue(&self, events: &[(QueuedEvent, u32)]) -> Result<(), StoreError>;
    /// Sends failed events to the dead-letter queue, whose consumer stores them.
    async fn send_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<(), StoreError>;
}

/// Which kept events a sweep takes: up to `limit` last sent at or before `cutoff_ms`, marked
/// sent again at `now_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsettled {
    pub cutoff_ms: i64,
    pub now_ms: i64,
    pub limit: usize,
}

/// Events acknowledged with 202, kept in D1 until their outcome is stored (the settling
/// happens in [`OutcomeStore::store`]). The queue alone is not enough for the promise behind
/// a 202: a local queue lives in its process's memory, and a send can be lost after the
/// answer. A sweeper sends again whatever stays too long.
pub trait EventInbox {
    /// Keeps the events before they are acknowledged; an id already kept stays as it is.
    /// Answers the ids another request took (kept or decided with another fingerprint):
    /// those are not kept, and must be refused.
    async fn keep(&self, events: &[QueuedEvent], now_ms: i64) -> Result<Vec<String>, StoreError>;
    /// The kept events `take` names, oldest first, now marked sent.
    async fn take_unsettled(&self, take: Unsettled) -> Result<Vec<QueuedEvent>, StoreError>;
    async fn inbox_state(&self) -> Result<InboxState, StoreError>;
    /// Makes sure the sweeper looks at the inbox within a lease (a durable alarm at the edge).
    async fn wake_sweeper(&self) -> Result<(), StoreError>;
}

/// How many events are kept, since when the oldest one is, and how far the events queue's
/// consumer has got: the newest enqueue time among the messages it processed (the queue
/// delivers in order), and when it last processed one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct InboxState {
    pub kept: u64,
    pub oldest_kept_at_ms: Option<i64>,
    pub consumer_reached_ms: Option<i64>,
    pub consumer_seen_at_ms: Option<i64>,
}

/// Rate limiting of one class by its key (a client, a decision, an account): `Err(seconds)`
/// means refused, retry after that long.
pub trait RateLimiter {
    async fn allow(
        &self,
        class: RateClass,
        key: &str,
        now_ms: i64,
    ) -> Result<Result<(), u64>, StoreError>;
}

/// Whether each backend answers, for `/healthz`.
pub trait HealthProbe {
    async fn probe(&self) -> Vec<(&'static str, Result<(), StoreError>)>;
}

/// An account as stored: revoked accounts are kept, so their credentials are refused as
/// revoked rather than unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAccount {
    pub account: Account,
    pub revoked: bool,
}

/// Officers' accounts in D1.
pub trait AccountStore {
    async fn account_by_token_hash(&self, hash: &str) -> Result<Option<StoredAccount>, StoreError>;
    async fn account_by_email(&self, email: &str) -> Result<Option<StoredAccount>, StoreError>;
}

/// The Access team's signing keys and the RS256 check (WebCrypto at the edge).
pub trait AccessKeys {
    /// The team's keys, cached; `refresh` fetches again (a token named a key not cached).
    async fn access_keys(&self, config: &AccessConfig, refresh: bool) -> Result<Jwks, StoreError>;
    /// Whether `key` signed `jwt`'s header and payload.
    async fn verify_rs256(&self, key: &Jwk, jwt: &Jwt) -> Result<bool, StoreError>;
}

/// What an officer's write on one application reads first, in one round trip.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewSnapshot {
    pub decision: Option<DecisionRecord>,
    /// The stored review and the id of the write that made it.
    pub review: Option<(Review, String)>,
    pub head: ChainHead,
}

/// A review written over the version its writer read, with its audit row.
#[derive(Clone, Copy, Debug)]
pub struct ReviewWrite<'a> {
    pub review: &'a Review,
    pub expected_version: u32,
    /// Unique to this write; the audit row is appended only if the review carries it.
    pub write_id: &'a str,
    /// The audit row to chain with the write; none for the applicant's request.
    pub audit: Option<&'a AuditEntry>,
}

/// How a review write ended.
#[derive(Clone, Debug, PartialEq)]
pub enum ReviewWritten {
    Applied,
    /// Someone else wrote the review first: nothing of this write is stored.
    Overtaken(Box<Review>),
    /// Another audited write appended first: nothing is stored; read and try again.
    ChainMoved,
}

/// What the review queue lists: every open state, or one.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueQuery {
    pub state: Option<ReviewState>,
    /// Only the applications whose applicant asked for a person's review.
    pub requested: bool,
    /// Decisions after this row (`decisions.seq`), oldest first.
    pub after_seq: u64,
    pub limit: usize,
}

/// Reviews in D1, with the decisions they are about.
pub trait ReviewStore {
    async fn review_snapshot(&self, request_id: &str) -> Result<ReviewSnapshot, StoreError>;
    async fn write_review(&self, write: ReviewWrite<'_>) -> Result<ReviewWritten, StoreError>;
    /// Up to `limit + 1` cases, each with its decision's row number, oldest first.
    async fn review_queue(&self, query: &QueueQuery) -> Result<Vec<(u64, ReviewCase)>, StoreError>;
    /// Up to `page.limit` decisions after row `page.cursor` that match `query`, with their
    /// reviews.
    async fn export_page(
        &self,
        query: &DecisionQuery,
        page: &Page<u64>,
    ) -> Result<Vec<(u64, ReviewCase)>, StoreError>;
    async fn overrides(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<OverrideRow>, StoreError>;
}

/// The audit trail in D1.
pub trait AuditStore {
    async fn chain_head(&self) -> Result<ChainHead, StoreError>;
    /// Appends a row after the head it was made from; `false` if the chain has grown since.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<bool, StoreError>;
    /// Newest first, before row `before`.
    async fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// Oldest first, from row `from` on.
    async fn audit_from(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

/// What `POST /api/v1/outcomes` reads first, in one round trip: the decisions the batch
/// names with their stored outcomes, and the end of the audit chain.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomeSnapshot {
    pub known: Vec<KnownDecision>,
    pub head: ChainHead,
}

/// Outcomes written with their audit row, in one transaction.
#[derive(Clone, Copy, Debug)]
pub struct OutcomeWrite<'a> {
    pub outcomes: &'a [LoanOutcome],
    pub actor: &'a str,
    pub now_ms: i64,
    pub audit: &'a AuditEntry,
}

/// Loan outcomes in D1, joined to the decisions they label.
pub trait LoanBook {
    async fn outcome_snapshot(&self, request_ids: &[String])
        -> Result<OutcomeSnapshot, StoreError>;
    /// Writes the outcomes and the audit row; `false` if the chain has grown since its end
    /// was read, and then nothing is stored.
    async fn record_outcomes(&self, write: OutcomeWrite<'_>) -> Result<bool, StoreError>;
    /// Decisions counted by branch, vintage, probability and outcome.
    async fn score_groups(&self, period: &Period) -> Result<Vec<(String, ScoreGroup)>, StoreError>;
    /// Decisions counted by branch, age band, marital status, decision and outcome.
    async fn fairness_counts(
        &self,
        period: &Period,
    ) -> Result<Vec<(String, FairnessCount)>, StoreError>;
    /// The decisions the shadow scored: both decisions counted, and grouped by each model's
    /// probability and outcome.
    async fn shadow_counts(&self, period: &Period) -> Result<ShadowCounts, StoreError>;
}

/// Declares `Backend` as the sum of the stores and its blanket impl, from one list.
macro_rules! backend {
    ($($store:ident),+ $(,)?) => {
        /// Everything a request or a queue consumer may touch.
        pub trait Backend: $($store +)+ {}

        impl<T: $($store +)+> Backend for T {}
    };
}

backend!(
    OutcomeStore,
    LoanBook,
    AccountStore,
    AccessKeys,
    ReviewStore,
    AuditStore,
    DecisionStore,
    DeadLetterStore,
    KpiSink,
    EventQueue,
    EventInbox,
    RateLimiter,
    HealthProbe,
    WebhookStore,
    WebhookQueue,
    RetentionStore,
);
