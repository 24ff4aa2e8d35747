//! The webhooks queue's consumer: each message is one delivery. It is signed at the moment
//! it is sent, posted to the subscriber, and then acknowledged, sent again later with its
//! next attempt number ([`after_attempt`]'s backoff), or kept as a dead letter. A removed
//! subscriber's deliveries are dropped.

use futures_util::future::join_all;
use valle_shared::webhook_events::QueuedDelivery;
use valle_shared::webhooks::{
    after_attempt, sign, AttemptOutcome, EVENT_ID_HEADER, SIGNATURE_HEADER,
};

use super::{NewWebhookDeadLetter, WebhookQueue, WebhookStore};
use crate::store::StoreError;

/// How long a subscriber has to answer.
pub const DELIVERY_TIMEOUT_MS: u64 = 10_000;

/// One HTTP POST to a subscriber.
pub struct Post<'a> {
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'a str,
}

/// Sends a delivery; the answer's status, or `None` when there was none in time.
pub trait WebhookSender {
    async fn post(&self, post: Post<'_>) -> Option<u16>;
}

/// What became of one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    /// Deliveries to removed subscribers, dropped.
    pub dropped: usize,
}

/// Delivers a batch: every post at once, then one send of the retries and one write of the
/// dead letters. An error means none of it was settled and the whole batch is to be
/// redelivered (repeating a post the subscriber may have had, under the same event id).
pub async fn deliver<S: WebhookStore + WebhookQueue, H: WebhookSender>(
    store: &S,
    sender: &H,
    deliveries: &[QueuedDelivery],
    now_ms: i64,
) -> Result<DeliveryReport, StoreError> {
    let mut ids: Vec<i64> = deliveries.iter().map(|d| d.subscription_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let subscribers = store.subscribers(&ids).await?;
    let timestamp_s = now_ms.div_euclid(1_000);
    let mut report = DeliveryReport::default();
    let mut posts = Vec::new();
    for delivery in deliveries {
        let Some(subscriber) = subscribers
            .iter()
            .find(|s| s.subscription.id == delivery.subscription_id)
        else {
            report.dropped += 1;
            continue;
        };
        let signature = sign(&subscriber.secret, timestamp_s, delivery.body.as_bytes());
        let post = Post {
            url: &subscriber.subscription.url,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                (EVENT_ID_HEADER, delivery.event_id.clone()),
                (SIGNATURE_HEADER, signature),
            ],
            body: &delivery.body,
        };
        posts.push(async move { (delivery, sender.post(post).await) });
    }
    let mut retries: Vec<(u32, QueuedDelivery)> = Vec::new();
    let mut dead = Vec::new();
    for (delivery, status) in join_all(posts).await {
        match after_attempt(delivery.attempt, status) {
            AttemptOutcome::Delivered => report.delivered += 1,
            AttemptOutcome::RetryAfter(delay_s) => retries.push((
                delay_s,
                QueuedDelivery {
                    attempt: delivery.attempt + 1,
                    ..delivery.clone()
                },
            )),
            AttemptOutcome::DeadLetter => dead.push(NewWebhookDeadLetter {
                delivery: delivery.clone(),
                last_status: status,
                failed_at_ms: now_ms,
            }),
        }
    }
    report.retried = retries.len();
    report.dead = dead.len();
    // Deliveries of one batch failed together usually wait alike; each delay is sent once.
    retries.sort_by_key(|(delay, _)| *delay);
    for group in retries.chunk_by(|a, b| a.0 == b.0) {
        let batch: Vec<_> = group.iter().map(|(_, delivery)| delivery.clone()).collect();
        store.send_deliveries(&batch, Some(group[0].0)).await?;
    }
    if !dead.is_empty() {
        store.add_webhook_dead_letters(&dead).await?;
    }
    Ok(report)
}
