//! Webhook subscriptions and their dead letters (admins): register, list, remove, and
//! replay a delivery that was given up on. Each write is audited in the same write, and
//! the audit row never holds a subscriber's secret.

use serde_json::json;
use valle_shared::contract::query::WEBHOOK_DEAD_LETTER_PAGES;
use valle_shared::lending::audit::{AuditAction, AuditEvent};
use valle_shared::lending::officers::Me;
use valle_shared::webhooks::parse_subscription;
use valle_shared::webhooks::sources::{
    QueuedDelivery, Subscription, SubscriptionList, WebhookDeadLetter, WebhookDeadLetterPage,
};

use super::auth::signed_in;
use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::AuditStore;
use crate::webhooks::{WebhookQueue, WebhookStore};

/// An admin's webhook write as the audit trail names it.
struct AdminWrite<'m> {
    me: &'m Me,
    action: AuditAction,
    subject: String,
    detail: serde_json::Value,
}

impl AdminWrite<'_> {
    fn event(&self, at_ms: i64) -> AuditEvent {
        AuditEvent {
            at_ms,
            actor: self.me.account.email.clone(),
            action: self.action,
            subject: self.subject.clone(),
            detail: self.detail.to_string(),
        }
    }
}

impl<B: AuditStore + WebhookQueue + WebhookStore> Request<'_, B> {
    /// `POST /api/v1/webhooks`: `{"url", "secret", "events"}`; the subscriber hears events
    /// from now on.
    pub(super) async fn subscribe(
        &self,
        body: &[u8],
        me: Option<Me>,
    ) -> Result<HttpResponse, ApiError> {
        let me = signed_in(me)?;
        let new = parse_subscription(body, self.context.webhook_reach)?;
        let write = AdminWrite {
            me: &me,
            action: AuditAction::WebhookSubscribed,
            subject: new.url.clone(),
            detail: json!({ "events": new.kinds }),
        };
        let subscription = self
            .audited(
                |now| write.event(now),
                |entry, now| {
                    let new = &new;
                    async move { Ok(self.backend.add_subscription(new, now, &entry).await?) }
                },
            )
            .await?;
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
    pub(super) async fn unsubscribe(
        &self,
        id: i64,
        me: Option<Me>,
    ) -> Result<HttpResponse, ApiError> {
        let me = signed_in(me)?;
        let subscribed =
            |subscriptions: Vec<Subscription>| subscriptions.into_iter().find(|s| s.id == id);
        let subscription =
            subscribed(self.backend.subscriptions().await?).ok_or(ApiError::NotFound)?;
        let write = AdminWrite {
            me: &me,
            action: AuditAction::WebhookUnsubscribed,
            subject: subscription.url.clone(),
            detail: json!({ "subscription_id": id }),
        };
        self.audited(
            |now| write.event(now),
            |entry, now| async move {
                if self.backend.remove_subscription(id, now, &entry).await? {
                    return Ok(Some(()));
                }
                // Not removed now: the chain moved, or another write removed it first.
                match subscribed(self.backend.subscriptions().await?) {
                    Some(_) => Ok(None),
                    None => Err(ApiError::NotFound),
                }
            },
        )
        .await?;
        Ok(HttpResponse::json(200, &subscription, self.id))
    }

    /// `GET /api/v1/webhooks/dead-letters?limit&cursor`.
    pub(super) async fn webhook_dead_letters(&self) -> Result<HttpResponse, ApiError> {
        let page = WEBHOOK_DEAD_LETTER_PAGES
            .parse::<i64>(&self.head.query, |_, _, _| false)
            .map_err(ApiError::Query)?;
        let letters = self.backend.webhook_dead_letters(&page).await?;
        let next_cursor = page.next(&letters, |letter| letter.id);
        Ok(HttpResponse::json(
            200,
            &WebhookDeadLetterPage {
                dead_letters: letters,
                next_cursor,
            },
            self.id,
        ))
    }

    /// `POST /api/v1/webhooks/dead-letters/{id}/replay`: queues the delivery again, from
    /// its first attempt, under the same event id (a receiver that had it drops it). The
    /// delivery is queued before the mark: a replay retried after a failed mark sends it
    /// again under the same event id, which the receiver drops.
    pub(super) async fn replay_webhook(
        &self,
        id: i64,
        me: Option<Me>,
    ) -> Result<HttpResponse, ApiError> {
        let me = signed_in(me)?;
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
        let write = AdminWrite {
            me: &me,
            action: AuditAction::WebhookReplayed,
            subject: id.to_string(),
            detail: json!({
                "event_id": letter.event_id,
                "subscription_id": letter.subscription_id,
                "kind": letter.kind,
            }),
        };
        let replayed_at_ms = self
            .audited(
                |now| write.event(now),
                |entry, now| async move {
                    let marked = self.backend.mark_webhook_replayed(id, now, &entry).await?;
                    Ok(marked.then_some(now))
                },
            )
            .await?;
        let replayed = WebhookDeadLetter {
            replayed_at_ms: Some(replayed_at_ms),
            ..letter
        };
        Ok(HttpResponse::json(202, &replayed, self.id))
    }
}
