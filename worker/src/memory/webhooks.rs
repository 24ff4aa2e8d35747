//! Webhook subscribers, dead letters and the webhooks queue in memory.

use std::cell::RefCell;

use valle_shared::contract::query::Page;
use valle_shared::lending::audit::AuditEntry;
use valle_shared::webhooks::sources::{QueuedDelivery, Subscription, WebhookDeadLetter};
use valle_shared::webhooks::NewSubscription;

use super::MemoryBackend;
use crate::store::StoreError;
use crate::webhooks::{
    NewWebhookDeadLetter, SourcePage, SourcePosition, Subscriber, WebhookQueue, WebhookStore,
};

#[derive(Default)]
pub struct MemoryWebhooks {
    /// Every subscriber in id order, with when it was removed.
    pub subscribers: RefCell<Vec<(Subscriber, Option<i64>)>>,
    pub dead_letters: RefCell<Vec<WebhookDeadLetter>>,
    /// Queue messages in order, each with its delay (delays are not simulated).
    pub queued: RefCell<Vec<(QueuedDelivery, Option<u32>)>>,
}

impl MemoryWebhooks {
    /// Drops the dead letters that carry a decision, as D1 does when it is blocked.
    pub fn forget_decision(&self, request_id: &str) {
        self.dead_letters.borrow_mut().retain(|letter| {
            serde_json::from_str::<serde_json::Value>(&letter.body)
                .ok()
                .and_then(|body| body["data"]["request_id"].as_str().map(str::to_owned))
                .is_none_or(|id| id != request_id)
        });
    }
}

impl WebhookStore for MemoryBackend {
    async fn add_subscription(
        &self,
        new: &NewSubscription,
        now_ms: i64,
        audit: &AuditEntry,
    ) -> Result<Option<Subscription>, StoreError> {
        if !self.d1.append_audit(audit) {
            return Ok(None);
        }
        let mut subscribers = self.webhooks.subscribers.borrow_mut();
        let subscription = Subscription {
            id: subscribers.len() as i64 + 1,
            url: new.url.clone(),
            events: new.kinds.clone(),
            created_at_ms: now_ms,
        };
        let secret = new.secret.clone();
        subscribers.push((
            Subscriber {
                subscription: subscription.clone(),
                secret,
            },
            None,
        ));
        Ok(Some(subscription))
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        Ok(self
            .webhooks
            .subscribers
            .borrow()
            .iter()
            .filter(|(_, removed)| removed.is_none())
            .map(|(subscriber, _)| subscriber.subscription.clone())
            .collect())
    }

    async fn remove_subscription(
        &self,
        id: i64,
        now_ms: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut subscribers = self.webhooks.subscribers.borrow_mut();
        let found = subscribers
            .iter_mut()
            .find(|(subscriber, removed)| subscriber.subscription.id == id && removed.is_none());
        let Some((_, removed)) = found else {
            return Ok(false);
        };
        if !self.d1.append_audit(audit) {
            return Ok(false);
        }
        *removed = Some(now_ms);
        Ok(true)
    }

    async fn subscribers(&self, ids: &[i64]) -> Result<Vec<Subscriber>, StoreError> {
        Ok(self
            .webhooks
            .subscribers
            .borrow()
            .iter()
            .filter(|(subscriber, removed)| {
                removed.is_none() && ids.contains(&subscriber.subscription.id)
            })
            .map(|(subscriber, _)| subscriber.clone())
            .collect())
    }

    async fn webhook_sources(
        &self,
        after: SourcePosition,
        limit: usize,
    ) -> Result<SourcePage, StoreError> {
        let subscriptions = self.subscriptions().await?;
        // As in D1: while no one subscribes, the pages are empty.
        let limit = if subscriptions.is_empty() { 0 } else { limit };
        let decisions = self.d1.decisions.borrow();
        let audit = self.d1.audit.borrow();
        // As in D1: a blocked decision is never sent.
        let page: Vec<_> = decisions
            .range(after.decision_seq + 1..)
            .filter(|(_, record)| !self.d1.is_blocked(&record.request_id))
            .take(limit)
            .collect();
        Ok(SourcePage {
            subscriptions,
            head: SourcePosition {
                decision_seq: decisions.keys().next_back().copied().unwrap_or(0),
                audit_seq: audit.last().map_or(0, |entry| entry.seq),
            },
            decisions_end: page.last().map_or(after.decision_seq, |(seq, _)| **seq),
            decisions: page.into_iter().map(|(_, record)| record.clone()).collect(),
            audit: audit
                .iter()
                .filter(|entry| entry.seq > after.audit_seq)
                .take(limit)
                .cloned()
                .collect(),
        })
    }

    async fn add_webhook_dead_letters(
        &self,
        letters: &[NewWebhookDeadLetter],
    ) -> Result<(), StoreError> {
        let mut stored = self.webhooks.dead_letters.borrow_mut();
        for letter in letters {
            let delivery = &letter.delivery;
            let known = stored.iter_mut().find(|row| {
                row.subscription_id == delivery.subscription_id && row.event_id == delivery.event_id
            });
            match known {
                Some(row) => {
                    row.attempts += delivery.attempt;
                    row.last_status = letter.last_status;
                    row.failed_at_ms = letter.failed_at_ms;
                    row.replayed_at_ms = None;
                }
                None => {
                    let id = stored.len() as i64 + 1;
                    stored.push(WebhookDeadLetter {
                        id,
                        subscription_id: delivery.subscription_id,
                        event_id: delivery.event_id.clone(),
                        kind: delivery.kind,
                        body: delivery.body.clone(),
                        attempts: delivery.attempt,
                        last_status: letter.last_status,
                        failed_at_ms: letter.failed_at_ms,
                        replayed_at_ms: None,
                    });
                }
            }
        }
        Ok(())
    }

    async fn webhook_dead_letters(
        &self,
        page: &Page<i64>,
    ) -> Result<Vec<WebhookDeadLetter>, StoreError> {
        Ok(self
            .webhooks
            .dead_letters
            .borrow()
            .iter()
            .rev()
            .filter(|letter| page.cursor.is_none_or(|before| letter.id < before))
            .take(page.limit)
            .cloned()
            .collect())
    }

    async fn webhook_dead_letter(&self, id: i64) -> Result<Option<WebhookDeadLetter>, StoreError> {
        Ok(self
            .webhooks
            .dead_letters
            .borrow()
            .iter()
            .find(|letter| letter.id == id)
            .cloned())
    }

    async fn mark_webhook_replayed(
        &self,
        id: i64,
        now_ms: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        if !self.d1.append_audit(audit) {
            return Ok(false);
        }
        if let Some(letter) = self
            .webhooks
            .dead_letters
            .borrow_mut()
            .iter_mut()
            .find(|letter| letter.id == id)
        {
            letter.replayed_at_ms = Some(now_ms);
        }
        Ok(true)
    }
}

impl WebhookQueue for MemoryBackend {
    async fn send_deliveries(
        &self,
        deliveries: &[QueuedDelivery],
        delay_s: Option<u32>,
    ) -> Result<(), StoreError> {
        self.webhooks.queued.borrow_mut().extend(
            deliveries
                .iter()
                .map(|delivery| (delivery.clone(), delay_s)),
        );
        Ok(())
    }
}
