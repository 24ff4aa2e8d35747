//! Webhooks, the worker's side: the storage they need as small traits, the producer that
//! turns the decision log and the audit trail into deliveries after the answer
//! ([`producer`]), and the queue consumer that signs and sends them ([`consumer`]).
//!
//! Nothing here runs on a request's path but an admin's registration and replay: events
//! are read from D1 by the KPI object's alarm, by cursor, so a lost step is taken again at
//! the next alarm and an event is produced again with the same id, never lost.
#![allow(async_fn_in_trait)]

pub mod consumer;
pub mod producer;

use serde::{Deserialize, Serialize};
use valle_shared::contract::query::Page;
use valle_shared::lending::audit::AuditEntry;
use valle_shared::records::decisions::DecisionRecord;
use valle_shared::webhooks::sources::{QueuedDelivery, Subscription, WebhookDeadLetter};
use valle_shared::webhooks::NewSubscription;

use crate::store::StoreError;

/// A subscriber with the secret its deliveries are signed with.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscriber {
    pub subscription: Subscription,
    pub secret: String,
}

/// How far the producer has read: the newest decision row and audit row it turned into
/// deliveries. Both only grow, in commit order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    pub decision_seq: u64,
    pub audit_seq: u64,
}

/// What the producer reads in one round trip.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourcePage {
    pub subscriptions: Vec<Subscription>,
    /// The ends of both logs.
    pub head: SourcePosition,
    /// Decisions after the position, in commit order, and the last one's row.
    pub decisions: Vec<DecisionRecord>,
    pub decisions_end: u64,
    pub audit: Vec<AuditEntry>,
}

/// A delivery given up on.
#[derive(Clone, Debug, PartialEq)]
pub struct NewWebhookDeadLetter {
    pub delivery: QueuedDelivery,
    pub last_status: Option<u16>,
    pub failed_at_ms: i64,
}

/// Subscribers and dead letters in D1, and the producer's read.
///
/// An admin's write appends its audit row in the same write: it is applied whole, or not
/// at all when the chain grew since the row was made (the caller reads the end again).
pub trait WebhookStore {
    /// The new subscriber; none when the chain moved.
    async fn add_subscription(
        &self,
        new: &NewSubscription,
        now_ms: i64,
        audit: &AuditEntry,
    ) -> Result<Option<Subscription>, StoreError>;
    /// Subscribers not removed, oldest first.
    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;
    /// Whether the subscriber was removed now; not when the chain moved or it was removed
    /// by another write first.
    async fn remove_subscription(
        &self,
        id: i64,
        now_ms: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
    /// The named subscribers that are not removed, with their secrets.
    async fn subscribers(&self, ids: &[i64]) -> Result<Vec<Subscriber>, StoreError>;
    /// The subscribers, the logs' ends and up to `limit` rows of each log after `after`.
    async fn webhook_sources(
        &self,
        after: SourcePosition,
        limit: usize,
    ) -> Result<SourcePage, StoreError>;
    async fn add_webhook_dead_letters(
        &self,
        letters: &[NewWebhookDeadLetter],
    ) -> Result<(), StoreError>;
    /// Dead letters by id descending.
    async fn webhook_dead_letters(
        &self,
        page: &Page<i64>,
    ) -> Result<Vec<WebhookDeadLetter>, StoreError>;
    async fn webhook_dead_letter(&self, id: i64) -> Result<Option<WebhookDeadLetter>, StoreError>;
    /// Whether the mark and its audit row were written; not when the chain moved.
    async fn mark_webhook_replayed(
        &self,
        id: i64,
        now_ms: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}

/// The webhooks queue: each message is one delivery, sent after `delay_s` seconds.
pub trait WebhookQueue {
    async fn send_deliveries(
        &self,
        deliveries: &[QueuedDelivery],
        delay_s: Option<u32>,
    ) -> Result<(), StoreError>;
}
