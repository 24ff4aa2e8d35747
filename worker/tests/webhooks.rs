//! Webhooks on the host: an admin registers a subscriber; stored decisions and recorded
//! outcomes become deliveries after the answer (once each, however often the producer
//! runs); the consumer signs them, backs off while the subscriber is down, gives up on a
//! refusal and keeps a dead letter an admin can replay; a removed subscriber hears nothing.

mod support;

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_json::{json, Value};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateLimit;
use valle_shared::contract::time::format_rfc3339_ms;
use valle_shared::lending::audit::{append, AuditAction, AuditEvent};
use valle_shared::monitoring::kpi::KpiConfig;
use valle_shared::webhooks::signature::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use valle_shared::webhooks::{parse_subscription, verify, Delivery, EventBody, EventKind, Reach};
use valle_worker::memory::{block_on, MemoryBackend};
use valle_worker::webhooks::consumer::{
    deliver, DeliveryReport, DeliveryRound, Post, WebhookSender,
};
use valle_worker::webhooks::{SourcePosition, WebhookStore};

use support::{Harness, TOKEN};

/// A `whsec_` secret: base64 of 32 bytes.
const SECRET: &str = "whsec_YS1zdWJzY3JpYmVyLXNlY3JldC1vZi0zMi1ieXRlcw==";
const URL: &str = "https://hooks.coop.example/valle";

/// A delivery's headers and body, as the subscriber got them.
type Received = (Vec<(&'static str, String)>, String);

/// A subscriber that answers each post with the next status of its script (the last one
/// from then on; `None` is no answer), and keeps what it was sent.
struct Receiver {
    script: RefCell<Vec<Option<u16>>>,
    posts: RefCell<Vec<Received>>,
}

impl Receiver {
    fn answering(script: &[Option<u16>]) -> Receiver {
        Receiver {
            script: RefCell::new(script.iter().rev().copied().collect()),
            posts: RefCell::default(),
        }
    }

    /// The events it handled, by id, each checked against its signature.
    fn handled(&self, now_s: i64) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for (headers, body) in self.posts.borrow().iter() {
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.clone())
                    .unwrap_or_default()
            };
            let delivery = Delivery {
                id: &header(ID_HEADER),
                timestamp: &header(TIMESTAMP_HEADER),
                signature: &header(SIGNATURE_HEADER),
                body: body.as_bytes(),
            };
            verify(SECRET, delivery, now_s).unwrap_or_else(|refusal| panic!("{refusal:?}: {body}"));
            let event: EventBody = serde_json::from_str(body).expect("an event body");
            assert_eq!(event.id, header(ID_HEADER));
            ids.insert(event.id);
        }
        ids
    }
}

impl WebhookSender for Receiver {
    async fn post(&self, post: Post<'_>) -> Option<u16> {
        assert_eq!(post.url, URL);
        let mut script = self.script.borrow_mut();
        let status = if script.len() > 1 {
            script.pop().flatten()
        } else {
            script.last().copied().flatten()
        };
        if matches!(status, Some(200..=299)) {
            self.posts
                .borrow_mut()
                .push((post.headers, post.body.to_owned()));
        }
        status
    }
}

/// Runs the webhooks queue until it is empty, waiting out each delay; what the batches did.
fn drain(backend: &MemoryBackend, receiver: &Receiver) -> DeliveryReport {
    let mut total = DeliveryReport::default();
    loop {
        let batch: Vec<_> = backend.webhooks.queued.borrow_mut().drain(..).collect();
        if batch.is_empty() {
            return total;
        }
        let wait = batch
            .iter()
            .filter_map(|(_, delay)| *delay)
            .max()
            .unwrap_or(0);
        backend
            .now_ms
            .set(backend.now_ms.get() + i64::from(wait) * 1_000);
        let deliveries: Vec<_> = batch.into_iter().map(|(delivery, _)| delivery).collect();
        let round = DeliveryRound {
            now_ms: backend.now_ms.get(),
            reach: Reach::Public,
        };
        let report =
            block_on(deliver(backend, receiver, &deliveries, round)).expect("the batch is settled");
        total.delivered += report.delivered;
        total.retried += report.retried;
        total.dead += report.dead;
        total.dropped += report.dropped;
    }
}

fn subscribe(harness: &Harness, events: &[EventKind]) -> i64 {
    let body = json!({ "url": URL, "secret": SECRET, "events": events }).to_string();
    let (status, subscription) = harness.as_account(TOKEN, "POST", "/api/v1/webhooks", &body);
    assert_eq!(status, 201, "{subscription}");
    assert!(subscription.get("secret").is_none(), "{subscription}");
    subscription["id"].as_i64().expect("an id")
}

fn alarm(harness: &Harness) {
    block_on(harness.backend.kpi_alarm()).expect("the alarm runs");
}

#[test]
fn only_admins_register_and_a_bad_registration_says_which_field() {
    let harness = Harness::new(RateLimit::default());
    let body = json!({ "url": URL, "secret": SECRET, "events": ["decision.created"] }).to_string();
    let (status, _) = harness.as_account("tok-supervisor", "POST", "/api/v1/webhooks", &body);
    assert_eq!(status, 403);
    let bad = json!({ "url": "ftp://x", "secret": "short", "events": ["decision.made"] });
    let (status, answer) = harness.as_account(TOKEN, "POST", "/api/v1/webhooks", &bad.to_string());
    assert_eq!(status, 400, "{answer}");
    let fields: Vec<(&str, &str)> = answer["error"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|field| {
            (
                field["field"].as_str().unwrap_or(""),
                field["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("url", ErrorCode::Format.as_str()),
            ("secret", ErrorCode::Range.as_str()),
            ("events[0]", ErrorCode::Enum.as_str())
        ]
    );
    let (_, list) = harness.officer("/api/v1/webhooks");
    assert_eq!(list, json!({ "subscriptions": [] }));
}

#[test]
fn every_stored_decision_reaches_a_subscriber_that_was_down_once_and_signed() {
    let harness = Harness::new(RateLimit::default());
    subscribe(&harness, &EventKind::ALL);
    let ids: Vec<String> = (0..5)
        .map(|n| format!("6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a{n:02}"))
        .collect();
    for id in &ids {
        assert_eq!(harness.score(id).status, 200);
    }
    // A repeated request and more producer runs make no second delivery.
    assert_eq!(harness.score(&ids[0]).status, 200);
    alarm(&harness);
    alarm(&harness);
    assert_eq!(harness.backend.webhooks.queued.borrow().len(), ids.len());

    // Down for its first six attempts (31 s of backoff), then up.
    let receiver = Receiver::answering(&[None, Some(503), None, Some(429), None, None, Some(200)]);
    let report = drain(&harness.backend, &receiver);
    assert_eq!(report.delivered, ids.len());
    assert_eq!(report.dead, 0);
    assert!(report.retried >= 6, "{report:?}");
    let handled = receiver.handled(harness.backend.now_ms.get() / 1_000);
    assert_eq!(handled.len(), ids.len());
    assert_eq!(receiver.posts.borrow().len(), ids.len());
}

#[test]
fn a_refusal_is_a_dead_letter_that_a_replay_delivers_once() {
    let harness = Harness::new(RateLimit::default());
    subscribe(&harness, &[EventKind::DecisionCreated]);
    assert_eq!(
        harness.score("6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b").status,
        200
    );
    alarm(&harness);
    let refusing = Receiver::answering(&[Some(410)]);
    assert_eq!(drain(&harness.backend, &refusing).dead, 1);
    let (status, page) = harness.officer("/api/v1/webhooks/dead-letters");
    assert_eq!(status, 200, "{page}");
    let letter = &page["dead_letters"][0];
    assert_eq!(
        (letter["last_status"].clone(), letter["attempts"].clone()),
        (json!(410), json!(1))
    );
    let replay = format!(
        "/api/v1/webhooks/dead-letters/{}/replay",
        letter["id"].as_i64().unwrap_or(0)
    );
    let (status, replayed) = harness.as_account(TOKEN, "POST", &replay, "");
    assert_eq!(status, 202, "{replayed}");
    assert!(replayed["replayed_at_ms"].is_i64());
    let receiver = Receiver::answering(&[Some(204)]);
    assert_eq!(drain(&harness.backend, &receiver).delivered, 1);
    let event: Value = serde_json::from_str(&receiver.posts.borrow()[0].1).expect("json");
    assert_eq!(event["id"], letter["event_id"]);
    assert_eq!(event["kind"], "decision.created");
    let (status, _) =
        harness.as_account(TOKEN, "POST", "/api/v1/webhooks/dead-letters/99/replay", "");
    assert_eq!(status, 404);
}

#[test]
fn outcomes_are_events_and_a_removed_subscriber_hears_nothing() {
    let harness = Harness::new(RateLimit::default());
    let id = subscribe(&harness, &[EventKind::OutcomeRecorded]);
    let request_id = "6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b";
    assert_eq!(harness.score(request_id).status, 200);
    harness.advance(86_400_000);
    let observed_at = format_rfc3339_ms(harness.backend.now_ms.get());
    let outcomes = json!({ "outcomes": [
        { "request_id": request_id, "status": "good", "observed_at": observed_at }
    ] });
    let (status, answer) = harness.as_account(
        "tok-integrator",
        "POST",
        "/api/v1/outcomes",
        &outcomes.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    alarm(&harness);
    let queued: Vec<_> = harness
        .backend
        .webhooks
        .queued
        .borrow()
        .iter()
        .map(|(delivery, _)| delivery.kind)
        .collect();
    assert_eq!(queued, [EventKind::OutcomeRecorded]);

    let (status, _) = harness.as_account(TOKEN, "DELETE", &format!("/api/v1/webhooks/{id}"), "");
    assert_eq!(status, 200);
    let (status, _) = harness.as_account(TOKEN, "DELETE", &format!("/api/v1/webhooks/{id}"), "");
    assert_eq!(status, 404);
    let receiver = Receiver::answering(&[Some(200)]);
    assert_eq!(drain(&harness.backend, &receiver).dropped, 1);
    assert!(receiver.posts.borrow().is_empty());
}

#[test]
fn an_admins_webhook_writes_are_audited_without_the_secret() {
    let harness = Harness::new(RateLimit::default());
    let bad = json!({ "url": "ftp://x", "secret": SECRET, "events": [] }).to_string();
    let (status, _) = harness.as_account(TOKEN, "POST", "/api/v1/webhooks", &bad);
    assert_eq!(status, 400);
    let id = subscribe(&harness, &[EventKind::DecisionCreated]);
    assert_eq!(
        harness.score("6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b").status,
        200
    );
    alarm(&harness);
    assert_eq!(
        drain(&harness.backend, &Receiver::answering(&[Some(410)])).dead,
        1
    );
    let (_, page) = harness.officer("/api/v1/webhooks/dead-letters");
    let letter = page["dead_letters"][0].clone();
    let replay = format!("/api/v1/webhooks/dead-letters/{}/replay", letter["id"]);
    let (status, _) = harness.as_account(TOKEN, "POST", &replay, "");
    assert_eq!(status, 202);
    let remove = format!("/api/v1/webhooks/{id}");
    assert_eq!(harness.as_account(TOKEN, "DELETE", &remove, "").0, 200);
    assert_eq!(harness.as_account(TOKEN, "DELETE", &remove, "").0, 404);

    let (status, audit) = harness.as_account("tok-auditor", "GET", "/api/v1/audit", "");
    assert_eq!(status, 200, "{audit}");
    assert!(!audit.to_string().contains(SECRET), "{audit}");
    let entries: Vec<(Value, Value, Value, Value)> = audit["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            let detail: Value = serde_json::from_str(entry["detail"].as_str().unwrap_or(""))
                .expect("a json detail");
            (
                entry["action"].clone(),
                entry["actor"].clone(),
                entry["subject"].clone(),
                detail,
            )
        })
        .collect();
    let admin = json!("admin@coop.example");
    assert_eq!(
        entries,
        [
            (
                json!(AuditAction::WebhookUnsubscribed.as_str()),
                admin.clone(),
                json!(URL),
                json!({ "subscription_id": id }),
            ),
            (
                json!(AuditAction::WebhookReplayed.as_str()),
                admin.clone(),
                json!(letter["id"].to_string()),
                json!({
                    "event_id": letter["event_id"],
                    "subscription_id": id,
                    "kind": "decision.created",
                }),
            ),
            (
                json!(AuditAction::WebhookSubscribed.as_str()),
                admin,
                json!(URL),
                json!({ "events": ["decision.created"] }),
            ),
        ]
    );
    let (_, report) = harness.as_account("tok-auditor", "GET", "/api/v1/audit/verify", "");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["rows_checked"], 3, "{report}");
}

#[test]
fn a_subscription_made_against_a_stale_chain_end_is_not_written() {
    let backend = MemoryBackend::new(KpiConfig::default());
    let new = parse_subscription(
        json!({ "url": URL, "secret": SECRET, "events": ["decision.created"] })
            .to_string()
            .as_bytes(),
        Reach::Public,
    )
    .expect("a valid registration");
    let event = |subject: &str| AuditEvent {
        at_ms: 1,
        actor: "admin@coop.example".into(),
        action: AuditAction::WebhookSubscribed,
        subject: subject.into(),
        detail: "{}".into(),
    };
    let head = backend.d1.chain_head();
    let first = append(&head, event(URL));
    let stale = append(&head, event("https://other.coop.example/hook"));
    let written = block_on(backend.add_subscription(&new, 1, &first)).expect("a write");
    assert!(written.is_some());
    let refused = block_on(backend.add_subscription(&new, 2, &stale)).expect("a write");
    assert_eq!(refused, None);
    let subscriptions = block_on(backend.subscriptions()).expect("a read");
    assert_eq!(subscriptions.len(), 1);
    let removed = block_on(backend.remove_subscription(subscriptions[0].id, 3, &stale));
    assert!(!removed.expect("a write"));
    assert_eq!(block_on(backend.subscriptions()).expect("a read").len(), 1);
}

#[test]
fn the_producer_reads_no_rows_while_no_one_subscribes() {
    let harness = Harness::new(RateLimit::default());
    for id in [
        "6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b",
        "7a2d3c8f-4e5b-4f60-9b0c-1d2e3f4a5b6c",
    ] {
        assert_eq!(harness.score(id).status, 200);
    }
    let start = SourcePosition::default();
    let idle = block_on(harness.backend.webhook_sources(start, 100)).expect("a read");
    assert!(idle.subscriptions.is_empty());
    assert!(
        idle.decisions.is_empty() && idle.audit.is_empty(),
        "{idle:?}"
    );
    assert_eq!((idle.head.decision_seq, idle.decisions_end), (2, 0));

    subscribe(&harness, &[EventKind::DecisionCreated]);
    let heard = block_on(harness.backend.webhook_sources(start, 100)).expect("a read");
    assert_eq!((heard.decisions.len(), heard.audit.len()), (2, 1));
    assert_eq!(heard.decisions_end, 2);
}

#[test]
fn internal_targets_are_refused_at_registration_and_again_at_delivery() {
    let harness = Harness::new(RateLimit::default());
    for url in [
        "https://169.254.169.254/latest",
        "https://10.0.0.1/",
        "https://[fd00::1]/",
    ] {
        let body = json!({ "url": url, "secret": SECRET, "events": ["decision.created"] });
        let (status, answer) =
            harness.as_account(TOKEN, "POST", "/api/v1/webhooks", &body.to_string());
        assert_eq!(status, 400, "{url}: {answer}");
        assert_eq!(
            answer["error"]["fields"][0]["code"],
            ErrorCode::Target.as_str()
        );
    }
    // Loopback is allowed in the local environment the harness is; a deployment that no
    // longer allows it posts nothing and keeps the delivery as a dead letter.
    let body = json!({ "url": "http://127.0.0.1:9/hook", "secret": SECRET, "events": ["decision.created"] });
    let (status, answer) = harness.as_account(TOKEN, "POST", "/api/v1/webhooks", &body.to_string());
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        harness.score("6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a99").status,
        200
    );
    alarm(&harness);
    let deliveries: Vec<_> = harness
        .backend
        .webhooks
        .queued
        .borrow_mut()
        .drain(..)
        .map(|(delivery, _)| delivery)
        .collect();
    assert_eq!(deliveries.len(), 1);
    let receiver = Receiver::answering(&[Some(200)]);
    let round = DeliveryRound {
        now_ms: harness.backend.now_ms.get(),
        reach: Reach::Public,
    };
    let report =
        block_on(deliver(&harness.backend, &receiver, &deliveries, round)).expect("settled");
    assert_eq!((report.delivered, report.dead), (0, 1));
    assert!(receiver.posts.borrow().is_empty());
}
