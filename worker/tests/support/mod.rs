//! What the worker's host tests share: a valid application, the in-memory backend behind
//! the routes with a hand-moved clock, and helpers that deliver queued events as the
//! platform does.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};

use serde_json::Value;
use valle_shared::contract::ops::{RateClass, RateLimit, SwrCache};
use valle_shared::intake::channel::Channel;
use valle_shared::lending::access::AccessConfig;
use valle_shared::lending::officers::{Account, Role};
use valle_shared::monitoring::kpi::{CountWindow, KpiConfig, Stats};
use valle_shared::records::decisions::DecisionRecord;
use valle_shared::records::events::{parse_events, QueuedEvent};
use valle_shared::records::receipt::ReceiptKey;
use valle_shared::webhooks::Reach;
use valle_shared::{parse_application, Model};
use valle_worker::background::{self, Pacer};
use valle_worker::body::BodyError;
use valle_worker::cors::CorsPolicy;
use valle_worker::http::{HttpResponse, RequestHead};
use valle_worker::memory::{block_on, MemoryBackend};
use valle_worker::pipeline::{consume_events, Delivery, Incoming};
use valle_worker::routes::{prepare, Clock, Context, KpiCache};
use valle_worker::store::KpiSnapshot;

pub const VALID: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;
/// The admin's API token; every role has an account (see [`ACCOUNTS`]).
pub const TOKEN: &str = "officer-secret";
/// One account per role, with its token.
pub const ACCOUNTS: [(&str, Role, &str); 7] = [
    ("admin@coop.example", Role::Admin, TOKEN),
    ("ana@coop.example", Role::Officer, "tok-officer"),
    ("beto@coop.example", Role::Officer, "tok-officer-2"),
    ("sara@coop.example", Role::Supervisor, "tok-supervisor"),
    ("olga@coop.example", Role::Auditor, "tok-auditor"),
    ("loanbook@coop.example", Role::Integrator, "tok-integrator"),
    ("dpo@coop.example", Role::Dpo, "tok-dpo"),
];

/// The API token of `role`'s account in [`ACCOUNTS`].
pub fn token_of(role: Role) -> &'static str {
    ACCOUNTS
        .iter()
        .find(|(_, account_role, _)| *account_role == role)
        .map(|(_, _, token)| *token)
        .expect("an account per role")
}

/// The harness's receipt key.
pub fn receipt_key() -> ReceiptKey {
    ReceiptKey::new(b"the host tests' receipt key, 32 bytes or more").expect("long enough")
}

/// The Access team the harness trusts.
pub fn access_config() -> AccessConfig {
    AccessConfig {
        issuer: "https://coop.cloudflareaccess.com".into(),
        audience: "valle-aud".into(),
        jwks_url: "https://coop.cloudflareaccess.com/cdn-cgi/access/certs".into(),
    }
}

pub fn model() -> &'static Model {
    Model::embedded().expect("model loads")
}

pub fn incoming(id: &str, at_ms: i64) -> Incoming {
    let application = parse_application(VALID.as_bytes()).expect("valid");
    Incoming {
        branch: "norte".to_owned(),
        ..Incoming::posted(id.to_owned(), Channel::Online, application, at_ms)
    }
}

/// A scored decision of [`VALID`] under `id` (scored once, then copied).
pub fn record(id: &str) -> DecisionRecord {
    static SCORED: std::sync::OnceLock<DecisionRecord> = std::sync::OnceLock::new();
    let scored = SCORED.get_or_init(|| {
        valle_worker::pipeline::decision_record(
            model(),
            incoming("template", 1_795_428_000_000),
            Vec::new(),
            &|| 1.0,
        )
        .expect("scored")
    });
    DecisionRecord {
        request_id: id.to_owned(),
        ..scored.clone()
    }
}

/// One event with the given application JSON, as `POST /api/v1/events` would queue it.
pub fn event(id: u32, application: &str) -> QueuedEvent {
    let body = format!(
        r#"{{"events":[{{"event_id":"00000000-0000-4000-8000-{id:012}","event_time":"2026-11-23T10:00:00Z","application":{application},"client_score":{{"probability":0.5}}}}]}}"#
    );
    let mut parsed = parse_events(body.as_bytes(), 1_795_428_000_000).expect("envelope");
    parsed.remove(0).expect("event")
}

/// An events body; every third application is invalid (age 17): it must end as a dead
/// letter.
pub fn events_body(ids: std::ops::Range<u32>) -> String {
    let events: Vec<String> = ids
        .map(|i| {
            let application = if i % 3 == 0 {
                VALID.replace(r#""age":30"#, r#""age":17"#)
            } else {
                VALID.to_owned()
            };
            format!(
                r#"{{"event_id":"00000000-0000-4000-8000-{i:012}","event_time":"2026-11-23T09:59:00Z","application":{application}}}"#
            )
        })
        .collect();
    format!(r#"{{"events":[{}]}}"#, events.join(","))
}

/// Delivers the first `count` queued messages to the events consumer, as one batch; answers
/// how many it delivered.
pub fn deliver(backend: &MemoryBackend, count: usize) -> usize {
    let batch: Vec<Delivery> = backend
        .queued
        .borrow_mut()
        .drain(..count)
        .map(|(event, sent_at_ms)| Delivery {
            body: serde_json::to_value(event).expect("event json"),
            sent_at_ms,
        })
        .collect();
    let now = backend.now_ms.get() as f64;
    let outcomes = block_on(consume_events(backend, model(), &batch, &|| now));
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    batch.len()
}

/// Delivers everything queued, in batches of at most 100 as the platform does, until the
/// queue is empty (re-queued retries included); answers how many messages it delivered.
pub fn drain(backend: &MemoryBackend) -> usize {
    let mut delivered = 0;
    loop {
        let count = backend.queued.borrow().len().min(100);
        if count == 0 {
            return delivered;
        }
        delivered += deliver(backend, count);
    }
}

/// The KPI object's state after its alarm has read D1 to the end.
pub fn counted(backend: &MemoryBackend) -> KpiSnapshot {
    block_on(backend.kpi_alarm()).expect("the alarm counts");
    block_on(valle_worker::store::KpiSink::snapshot(backend)).expect("snapshot")
}

/// Groups stored decisions by count window, in stream order, and closes each full window.
pub fn recompute_windows(decisions: &[DecisionRecord], size: u64) -> Vec<CountWindow> {
    let mut sorted: Vec<&DecisionRecord> =
        decisions.iter().filter(|d| d.kpi_seq.is_some()).collect();
    sorted.sort_by_key(|d| d.kpi_seq);
    sorted
        .chunk_by(|a, b| a.kpi_window == b.kpi_window)
        .filter(|chunk| chunk.len() as u64 == size)
        .map(|chunk| {
            let mut stats = Stats::default();
            chunk.iter().for_each(|d| stats.add(&d.observation()));
            let (first, last) = (
                chunk[0].kpi_seq.unwrap_or(0),
                chunk[chunk.len() - 1].kpi_seq.unwrap_or(0),
            );
            CountWindow::close(chunk[0].kpi_window.unwrap_or(0), first, last, &stats)
        })
        .collect()
}

/// A clock for route tests: moved by hand (`.0`), and on by `.1` milliseconds at every
/// reading, which is zero unless a test times a request's stages.
/// The JSON body of an answer that must be a 200; anything else fails with the body shown.
pub fn ok_json(response: &HttpResponse) -> Value {
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    serde_json::from_slice(&response.body).expect("a JSON body")
}

pub struct ManualClock(pub Cell<f64>, pub Cell<f64>);

impl Clock for ManualClock {
    fn now_ms(&self) -> f64 {
        let now = self.0.get();
        self.0.set(now + self.1.get());
        now
    }
}

/// The routes over the in-memory backend, with the isolate's pacer. What an answer leaves
/// to do runs right after it, unless `background` is switched off (the step is lost).
pub struct Harness {
    pub backend: MemoryBackend,
    pub clock: ManualClock,
    pub cache: KpiCache,
    pub pacer: Pacer,
    pub background: Cell<bool>,
    pub access: AccessConfig,
    /// `ALLOWED_ORIGINS`: none unless a test allows some.
    pub cors: CorsPolicy,
    pub monitored_branches: Vec<String>,
    /// `SHADOW_MODEL`: on unless a test switches it off.
    pub shadow: Cell<bool>,
    /// `RECEIPT_KEY`: set unless a test takes it away.
    pub receipts: RefCell<Option<ReceiptKey>>,
    ids: Cell<u32>,
}

impl Harness {
    pub fn new(rate_limit: RateLimit) -> Harness {
        let mut backend = MemoryBackend::new(KpiConfig::default());
        backend.rate_limits.insert(RateClass::Public, rate_limit);
        for (id, (email, role, token)) in ACCOUNTS.into_iter().enumerate() {
            let account = Account {
                id: id as i64 + 1,
                email: email.into(),
                name: email.into(),
                role,
            };
            backend.d1.add_account(account, token);
        }
        Harness {
            access: access_config(),
            clock: ManualClock(Cell::new(backend.now_ms.get() as f64), Cell::new(0.0)),
            cors: CorsPolicy::default(),
            backend,
            cache: RefCell::new(SwrCache::new(8)),
            pacer: Pacer::new("harness"),
            background: Cell::new(true),
            monitored_branches: vec!["principal".to_owned(), "norte".to_owned()],
            shadow: Cell::new(true),
            receipts: RefCell::new(Some(receipt_key())),
            ids: Cell::new(0),
        }
    }

    /// Moves both clocks on.
    pub fn advance(&self, ms: i64) {
        self.clock.0.set(self.clock.0.get() + ms as f64);
        self.backend.now_ms.set(self.clock.0.get() as i64);
    }

    pub fn send(&self, head: RequestHead, body: &str) -> HttpResponse {
        self.send_read(head, Ok(body.as_bytes().to_vec()))
    }

    /// Like [`Self::send`], with the body as the platform's read of it gave it (`Err` for a
    /// read that failed); a route that reads no body gets none.
    pub fn send_read(&self, head: RequestHead, body: Result<Vec<u8>, BodyError>) -> HttpResponse {
        self.backend.now_ms.set(self.clock.0.get() as i64);
        let new_id = || {
            self.ids.set(self.ids.get() + 1);
            format!("gen-{}", self.ids.get())
        };
        let receipts = self.receipts.borrow();
        let context = Context {
            receipts: receipts.as_ref(),
            webhook_reach: Reach::Local,
            clock: &self.clock,
            new_request_id: &new_id,
            access: Some(&self.access),
            kpi_cache: &self.cache,
            cors: &self.cors,
            monitored_branches: &self.monitored_branches,
            shadow: self.shadow.get(),
        };
        let prepared = prepare(&head, &context);
        let body = match prepared.needs_body() {
            true => body,
            false => Ok(Vec::new()),
        };
        let (response, after) = block_on(prepared.finish(body, &context, &self.backend));
        let now = self.clock.0.get() as i64;
        let tasks = self.pacer.plan(after, now);
        // Switched off, the tasks are lost, as with an isolate that dies after answering.
        if self.background.get() {
            for task in tasks {
                block_on(background::run(
                    task,
                    &self.backend,
                    &self.pacer,
                    &self.cache,
                    now,
                ));
            }
        }
        response
    }

    pub fn officer(&self, target: &str) -> (u16, Value) {
        self.as_account(TOKEN, "GET", target, "")
    }

    /// A request with `token`'s credentials (and a JSON body for a POST); status and body.
    pub fn as_account(&self, token: &str, method: &str, target: &str, body: &str) -> (u16, Value) {
        let mut head = RequestHead::new(method, target)
            .with_header("authorization", &format!("Bearer {token}"));
        if method == "POST" {
            head = head.with_header("content-type", "application/json");
        }
        let response = self.send(head, body);
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        )
    }

    pub fn score(&self, id: &str) -> HttpResponse {
        self.score_body(id, VALID)
    }

    pub fn score_body(&self, id: &str, body: &str) -> HttpResponse {
        let head = RequestHead::new("POST", "/api/v1/score")
            .with_header("content-type", "application/json")
            .with_header("x-request-id", id)
            .with_header("cf-connecting-ip", "203.0.113.9");
        self.send(head, body)
    }

    pub fn post_events(&self, body: &str) -> HttpResponse {
        let head = RequestHead::new("POST", "/api/v1/events")
            .with_header("content-type", "application/json");
        self.send(head, body)
    }
}
