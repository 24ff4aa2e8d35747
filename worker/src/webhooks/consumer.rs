//! The webhooks queue's consumer: each message is one delivery. It is signed at the moment
//! it is sent, posted to the subscriber, and then acknowledged, sent again later with its
//! next attempt number ([`after_attempt`]'s backoff), or kept as a dead letter. A removed
//! subscriber's deliveries are dropped. A subscriber whose URL is no longer a target the
//! environment may reach ([`check_target`]) is not posted to: the delivery is a dead letter.

use futures_util::future::join_all;
use valle_shared::webhooks::sources::QueuedDelivery;
use valle_shared::webhooks::{after_attempt, check_target, signed_headers, AttemptOutcome, Reach};

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

/// When and from where a batch is delivered.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryRound {
    pub now_ms: i64,
    pub reach: Reach,
}

/// Delivers a batch: every post at once, then one send of the retries and one write of the
/// dead letters. An error means none of it was settled and the whole batch is to be
/// redelivered (repeating a post the subscriber may have had, under the same event id).
pub async fn deliver<S: WebhookStore + WebhookQueue, H: WebhookSender>(
    store: &S,
    sender: &H,
    deliveries: &[QueuedDelivery],
    round: DeliveryRound,
) -> Result<DeliveryReport, StoreError> {
    let DeliveryRound { now_ms, reach } = round;
    let mut ids: Vec<i64> = deliveries.iter().map(|d| d.subscription_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let subscribers = store.subscribers(&ids).await?;
    let timestamp_s = now_ms.div_euclid(1_000);
    let mut report = DeliveryReport::default();
    let mut posts = Vec::new();
    let mut refused = Vec::new();
    for delivery in deliveries {
        let Some(subscriber) = subscribers
            .iter()
            .find(|s| s.subscription.id == delivery.subscription_id)
        else {
            report.dropped += 1;
            continue;
        };
        let url = &subscriber.subscription.url;
        if check_target(url, reach).is_err() {
            refused.push(delivery);
            continue;
        }
        let mut headers = vec![("content-type", "application/json".to_owned())];
        headers.extend(signed_headers(
            &subscriber.secret,
            &delivery.event_id,
            timestamp_s,
            delivery.body.as_bytes(),
        ));
        let post = Post {
            url,
            headers,
            body: &delivery.body,
        };
        posts.push(async move { (delivery, sender.post(post).await) });
    }
    let mut retries: Vec<(u32, QueuedDelivery)> = Vec::new();
    let mut dead: Vec<NewWebhookDeadLetter> = refused
        .into_iter()
        .map(|delivery| NewWebhookDeadLetter {
            delivery: delivery.clone(),
            last_status: None,
            failed_at_ms: now_ms,
        })
        .collect();
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
