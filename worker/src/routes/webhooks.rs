//! Webhook subscriptions and their dead letters (admins): register, list, remove, and
//! replay a delivery that was given up on.

use valle_shared::query::WEBHOOK_DEAD_LETTER_PAGES;
use valle_shared::webhook_events::{QueuedDelivery, SubscriptionList, WebhookDeadLetterPage};
use valle_shared::webhooks::parse_subscription;

use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::Backend;

impl<B: Backend> Request<'_, B> {
    /// `POST /api/v1/webhooks`: `{"url", "secret", "events"}`; the subscriber hears events
    /// from now on.
    pub(super) async fn subscribe(&self, body: &[u8]) -> Result<HttpResponse, ApiError> {
        let new = parse_subscription(body)?;
        let subscription = self.backend.add_subscription(&new, self.now()).await?;
        Ok(HttpResponse::json(201, &subscription, self.id))
    }

    /// `GET /api/v1/webhooks`: the subscribers, without their secrets.
    pub(super) async fn subscriptions(&self) -> Result<HttpResponse, ApiError> {
        let subscriptions = self.backend.subscriptions().await?;
        Ok(HttpResponse::json(
            200,
            &SubscriptionList { subscriptions },
            self.id,
        ))
    }

    /// `DELETE /api/v1/webhooks/{id}`: nothing more is sent to it, queued deliveries
    /// included.
    pub(super) async fn unsubscribe(&self, id: i64) -> Result<HttpResponse, ApiError> {
        let removed = self
            .backend
            .remove_subscription(id, self.now())
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(HttpResponse::json(200, &removed, self.id))
    }

    /// `GET /api/v1/webhooks/dead-letters?limit&before`.
    pub(super) async fn webhook_dead_letters(&self) -> Result<HttpResponse, ApiError> {
        let page = WEBHOOK_DEAD_LETTER_PAGES
            .parse::<i64>(&self.head.query, |_, _, _| false)
            .map_err(ApiError::Query)?;
        let letters = self.backend.webhook_dead_letters(&page).await?;
        let next_before = page.next(&letters, |letter| letter.id);
        Ok(HttpResponse::json(
            200,
            &WebhookDeadLetterPage {
                dead_letters: letters,
                next_before,
            },
            self.id,
        ))
    }

    /// `POST /api/v1/webhooks/dead-letters/{id}/replay`: queues the delivery again, from
    /// its first attempt, under the same event id (a receiver that had it drops it).
    pub(super) async fn replay_webhook(&self, id: i64) -> Result<HttpResponse, ApiError> {
        let letter = self
            .backend
            .webhook_dead_letter(id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let delivery = QueuedDelivery {
            subscription_id: letter.subscription_id,
            event_id: letter.event_id.clone(),
            kind: letter.kind,
            body: letter.body.clone(),
            attempt: 1,
        };
        self.backend.send_deliveries(&[delivery], None).await?;
        let now = self.now();
        self.backend.mark_webhook_replayed(id, now).await?;
        let replayed = valle_shared::webhook_events::WebhookDeadLetter {
            replayed_at_ms: Some(now),
            ..letter
        };
        Ok(HttpResponse::json(202, &replayed, self.id))
    }
}
