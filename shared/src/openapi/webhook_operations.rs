//! The webhook operations: subscribers, and the deliveries given up on.

use serde_json::json;

use super::operations::{object, operation, paging};
use super::{path_parameter, Content, Method, Operation, Schemas, Tag};
use crate::contract::paths::{REPLAY_SUFFIX, WEBHOOKS_PATH, WEBHOOK_DEAD_LETTERS_PATH};
use crate::contract::query::WEBHOOK_DEAD_LETTER_PAGES;
use crate::lending::officers::Permission;
use crate::webhooks::sources::{
    Subscription, SubscriptionList, WebhookDeadLetter, WebhookDeadLetterPage,
};
use crate::webhooks::{EventBody, EventKind, MAX_URL_CHARS, SECRET_CHARS};

const DELIVERY: &str =
    "Each event is POSTed to the subscriber as JSON (the `EventBody` schema), signed as \
    Standard Webhooks defines it: `webhook-id` (the event id, the same at every attempt and \
    replay: keep the ids you have handled), `webhook-timestamp` (Unix seconds) and \
    `webhook-signature: v1,<base64 HMAC-SHA256 of \"<id>.<timestamp>.<body>\" keyed by the \
    whsec_ secret's bytes>`; any Standard Webhooks library verifies it. A 2xx answer is a \
    delivery; no answer within 10 s, 408, 429 or 5xx is retried after 1, 2, 4 … 300 s, up to 12 \
    attempts; any other answer (a redirect included: none is followed), or the last attempt, \
    makes a dead letter.";

pub(super) fn operations(schemas: &mut Schemas) -> Vec<Operation> {
    let id = || {
        path_parameter(
            "id",
            "The subscriber's id.",
            json!({ "type": "integer", "minimum": 1 }),
        )
    };
    // The body of a delivery is listed with the components, for receivers to validate.
    schemas.of::<EventBody>();
    vec![
        Operation {
            body: Some(object(
                json!({
                    "url": { "type": "string", "maxLength": MAX_URL_CHARS, "description": "A public https:// address; in the local environment also loopback over http." },
                    "secret": { "type": "string", "minLength": SECRET_CHARS.start(), "maxLength": SECRET_CHARS.end() },
                    "events": { "type": "array", "minItems": 1, "uniqueItems": true, "items": schemas.of::<EventKind>() },
                }),
                &["url", "secret", "events"],
            )),
            ..operation(Method::Post, WEBHOOKS_PATH, "subscribe", Tag::Webhooks)
                .summary("Register a subscriber")
                .description(DELIVERY)
                .permission(Permission::ManageWebhooks)
                .success(201, Content::Json(schemas.of::<Subscription>()))
        },
        operation(Method::Get, WEBHOOKS_PATH, "subscriptions", Tag::Webhooks)
            .summary("The subscribers, without their secrets")
            .permission(Permission::ManageWebhooks)
            .success(200, Content::Json(schemas.of::<SubscriptionList>())),
        Operation {
            parameters: vec![id()],
            ..operation(
                Method::Delete,
                &format!("{WEBHOOKS_PATH}/{{id}}"),
                "unsubscribe",
                Tag::Webhooks,
            )
            .summary("Remove a subscriber")
            .description("Nothing more is sent to it, deliveries already queued included.")
            .permission(Permission::ManageWebhooks)
            .success(200, Content::Json(schemas.of::<Subscription>()))
        },
        Operation {
            parameters: paging(WEBHOOK_DEAD_LETTER_PAGES),
            ..operation(
                Method::Get,
                WEBHOOK_DEAD_LETTERS_PATH,
                "webhook_dead_letters",
                Tag::Webhooks,
            )
            .summary("Deliveries given up on, newest first")
            .description("Each keeps the event as it was sent.")
            .permission(Permission::ManageWebhooks)
            .success(200, Content::Json(schemas.of::<WebhookDeadLetterPage>()))
        },
        Operation {
            parameters: vec![path_parameter(
                "id",
                "The dead letter's id.",
                json!({ "type": "integer", "minimum": 1 }),
            )],
            ..operation(
                Method::Post,
                &format!("{WEBHOOK_DEAD_LETTERS_PATH}/{{id}}{REPLAY_SUFFIX}"),
                "replay_webhook",
                Tag::Webhooks,
            )
            .summary("Send a dead letter again")
            .description("Queued again from its first attempt, under the same event id.")
            .permission(Permission::ManageWebhooks)
            .success(202, Content::Json(schemas.of::<WebhookDeadLetter>()))
        },
    ]
}
