//! Webhooks at the edge: the D1 tables and the webhooks queue behind the traits, the
//! signed POST through `fetch`, and the queue's consumer.

use futures_util::future::{select, Either};
use std::time::Duration;
use valle_shared::contract::query::Page;
use valle_shared::lending::audit::AuditEntry;
use valle_shared::records::decisions::DecisionRecord;
use valle_shared::webhooks::sources::{QueuedDelivery, Subscription, WebhookDeadLetter};
use valle_shared::webhooks::NewSubscription;
use valle_shared::webhooks::Reach;
use worker::{
    AbortController, Delay, Fetch, Headers, Message, MessageExt, Method, Request, RequestInit,
    RequestRedirect,
};

use super::backend::{d1_error, decode, rows_of, EdgeBackend};
use super::queues::send_all;
use crate::bindings;
use crate::observability::log;
use crate::sql::webhooks as sql;
use crate::sql::{audit, decisions};
use crate::store::StoreError;
use crate::webhooks::consumer::{deliver, DeliveryRound, Post, WebhookSender, DELIVERY_TIMEOUT_MS};
use crate::webhooks::{
    NewWebhookDeadLetter, SourcePage, SourcePosition, Subscriber, WebhookQueue, WebhookStore,
};

fn subscriptions_of(rows: Vec<sql::SubscriberRow>) -> Vec<Subscription> {
    decode::<_, Subscriber>(rows)
        .into_iter()
        .map(|subscriber| subscriber.subscription)
        .collect()
}

impl WebhookStore for EdgeBackend {
    async fn add_subscription(
        &self,
        new: &NewSubscription,
        now_ms: i64,
        entry: &AuditEntry,
    ) -> Result<Option<Subscription>, StoreError> {
        let statements = [sql::insert_subscription(new, now_ms), audit::insert(entry)];
        let Some(results) = self.audited_batch(&statements).await? else {
            return Ok(None);
        };
        subscriptions_of(rows_of(&results, 0)?)
            .pop()
            .map(Some)
            .ok_or_else(|| d1_error("the insert answered no row"))
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        Ok(subscriptions_of(
            self.rows(&sql::active_subscriptions()).await?,
        ))
    }

    async fn remove_subscription(
        &self,
        id: i64,
        now_ms: i64,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let statements = [
            audit::insert_if_subscribed(entry, id),
            sql::remove_subscription(id, now_ms),
        ];
        match self.audited_batch(&statements).await? {
            Some(results) => Ok(!subscriptions_of(rows_of(&results, 1)?).is_empty()),
            None => Ok(false),
        }
    }

    async fn subscribers(&self, ids: &[i64]) -> Result<Vec<Subscriber>, StoreError> {
        let rows: Vec<sql::SubscriberRow> = self.rows(&sql::subscribers(ids)).await?;
        Ok(decode(rows))
    }

    async fn webhook_sources(
        &self,
        after: SourcePosition,
        limit: usize,
    ) -> Result<SourcePage, StoreError> {
        let results = self.batch(&sql::sources(after, limit)).await?;
        let head: Vec<SourcePosition> = rows_of(&results, 1)?;
        let decided: Vec<decisions::DecisionRow> = rows_of(&results, 2)?;
        let audited: Vec<audit::AuditRow> = rows_of(&results, 3)?;
        let end: Vec<sql::PageEndRow> = rows_of(&results, 4)?;
        Ok(SourcePage {
            subscriptions: subscriptions_of(rows_of(&results, 0)?),
            head: head.first().copied().unwrap_or_default(),
            decisions: decode::<_, DecisionRecord>(decided),
            decisions_end: end.first().map_or(after.decision_seq, |row| row.seq),
            audit: decode(audited),
        })
    }

    async fn add_webhook_dead_letters(
        &self,
        letters: &[NewWebhookDeadLetter],
    ) -> Result<(), StoreError> {
        self.batch(&sql::upsert_dead_letters(letters)).await?;
        Ok(())
    }

    async fn webhook_dead_letters(
        &self,
        page: &Page<i64>,
    ) -> Result<Vec<WebhookDeadLetter>, StoreError> {
        self.rows(&sql::dead_letters(page)).await
    }

    async fn webhook_dead_letter(&self, id: i64) -> Result<Option<WebhookDeadLetter>, StoreError> {
        let mut rows: Vec<WebhookDeadLetter> = self.rows(&sql::dead_letter(id)).await?;
        Ok(rows.pop())
    }

    async fn mark_webhook_replayed(
        &self,
        id: i64,
        now_ms: i64,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let statements = [sql::mark_replayed(id, now_ms), audit::insert(entry)];
        Ok(self.audited_batch(&statements).await?.is_some())
    }
}

impl WebhookQueue for EdgeBackend {
    async fn send_deliveries(
        &self,
        deliveries: &[QueuedDelivery],
        delay_s: Option<u32>,
    ) -> Result<(), StoreError> {
        let queue = self
            .env
            .queue(bindings::WEBHOOKS)
            .map_err(|error| StoreError::new("queue", error))?;
        let messages = deliveries
            .iter()
            .map(|delivery| (delivery, delivery.body.len() + 256, delay_s))
            .collect();
        send_all(&queue, messages).await
    }
}

impl EdgeBackend {
    /// Where this environment may deliver webhooks.
    pub(crate) fn webhook_reach(&self) -> Reach {
        super::webhook_reach(&self.env)
    }
}

/// Posts with `fetch`, aborted after [`DELIVERY_TIMEOUT_MS`].
struct FetchSender;

impl WebhookSender for FetchSender {
    async fn post(&self, post: Post<'_>) -> Option<u16> {
        let headers = Headers::new();
        for (name, value) in &post.headers {
            headers.set(name, value).ok()?;
        }
        let mut init = RequestInit::new();
        // A redirect is answered as it is, a 3xx, which fails the delivery: an https URL
        // must not bounce to http or to another host.
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual)
            .with_body(Some(post.body.into()));
        let request = Request::new_with_init(post.url, &init).ok()?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let send = std::pin::pin!(fetch.send_with_signal(&signal));
        let timeout = std::pin::pin!(Delay::from(Duration::from_millis(DELIVERY_TIMEOUT_MS)));
        match select(send, timeout).await {
            Either::Left((Ok(response), _)) => Some(response.status_code()),
            Either::Left((Err(error), _)) => {
                log(&format!("webhook to {}: {error}", post.url));
                None
            }
            Either::Right(_) => {
                controller.abort();
                None
            }
        }
    }
}

/// The webhooks queue's consumer: the batch is delivered and every message acknowledged,
/// or, when its retries or dead letters could not be stored, every message redelivered.
pub(super) async fn consume(backend: &EdgeBackend, messages: &[Message<serde_json::Value>]) {
    let mut deliveries = Vec::with_capacity(messages.len());
    let mut readable = Vec::with_capacity(messages.len());
    for message in messages {
        match serde_json::from_value::<QueuedDelivery>(message.body().clone()) {
            Ok(delivery) => {
                deliveries.push(delivery);
                readable.push(message);
            }
            Err(error) => {
                log(&format!("webhooks: unreadable message dropped: {error}"));
                message.ack();
            }
        }
    }
    let round = DeliveryRound {
        now_ms: super::now_ms(),
        reach: backend.webhook_reach(),
    };
    match deliver(backend, &FetchSender, &deliveries, round).await {
        Ok(report) => {
            if report.retried + report.dead + report.dropped > 0 {
                log(&format!("webhooks: {report:?}"));
            }
            readable.iter().for_each(|message| message.ack());
        }
        Err(error) => {
            log(&format!("webhooks: batch redelivered: {error}"));
            readable.iter().for_each(|message| message.retry());
        }
    }
}
