//! The edge pipeline on the host, over the in-memory backend: idempotent decisions, KPI
//! recovery, events to decisions or dead letters with retries, KPI restarts, officer access,
//! rate limits and the KPI cache.

use std::cell::{Cell, RefCell};

use serde_json::Value;
use valle_shared::api::{KpiResponse, ScoreResponse};
use valle_shared::decisions::DecisionRecord;
use valle_shared::events::{parse_events, QueuedEvent};
use valle_shared::kpi::{CountWindow, KpiConfig, Stats, View};
use valle_shared::ops::{RateLimit, SwrCache};
use valle_shared::{parse_application, Model};
use valle_worker::cors::CorsPolicy;
use valle_worker::http::{HttpResponse, RequestHead};
use valle_worker::kpi_object::KpiService;
use valle_worker::memory::{block_on, MemoryBackend};
use valle_worker::pipeline::{
    consume_events, decide, process_event, queue_stalled, sweep_cutoff, sweep_inbox, Delivery,
    EventFate, Incoming, Sweep, MAX_ATTEMPTS,
};
use valle_worker::routes::{prepare, refresh_view, Clock, Context};
use valle_worker::store::{DeadLetterStore, EventInbox, InboxState, KpiSink};

const VALID: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;
const TOKEN: &str = "officer-secret";

fn incoming(id: &str, at_ms: i64) -> Incoming {
    Incoming {
        request_id: id.to_owned(),
        applicant_id: None,
        branch: "norte".to_owned(),
        channel: valle_shared::events::Channel::Online,
        application: parse_application(VALID.as_bytes()).expect("valid"),
        received_at_ms: at_ms,
        event_time_ms: at_ms,
        client_score: None,
    }
}

fn model() -> &'static Model {
    Model::embedded().expect("model loads")
}

#[test]
fn a_repeated_request_id_replays_the_stored_decision_and_writes_nothing() {
    let backend = MemoryBackend::new(KpiConfig::default());
    let first = block_on(decide(
        &backend,
        model(),
        incoming("r-1", 1_000),
        Vec::new(),
        &|| 2.0,
    ))
    .expect("decides");
    assert!(!first.replayed);
    assert_eq!(first.record.kpi_seq, Some(0));
    let mut later = incoming("r-1", 9_000);
    later.branch = "sur".to_owned();
    let second = block_on(decide(&backend, model(), later, Vec::new(), &|| 5.0)).expect("decides");
    assert!(second.replayed);
    assert_eq!(
        second.record, first.record,
        "the stored decision, unchanged"
    );
    assert_eq!(backend.decisions.borrow().len(), 1);
    let snapshot = block_on(backend.snapshot()).expect("snapshot");
    assert_eq!(snapshot.core.totals.decisions, 1, "counted once");
}

#[test]
fn a_decision_stored_but_not_counted_is_counted_on_retry_once() {
    let backend = MemoryBackend::new(KpiConfig::default());
    backend.failing_kpi.set(true);
    let failed = block_on(decide(
        &backend,
        model(),
        incoming("r-1", 1_000),
        Vec::new(),
        &|| 1.0,
    ));
    assert!(
        failed.is_err(),
        "the caller learns the KPI call failed and retries"
    );
    assert_eq!(backend.decisions.borrow()["r-1"].kpi_seq, None);
    backend.failing_kpi.set(false);
    let retried = block_on(decide(
        &backend,
        model(),
        incoming("r-1", 2_000),
        Vec::new(),
        &|| 1.0,
    ))
    .expect("decides");
    assert!(retried.replayed);
    assert_eq!(retried.record.kpi_seq, Some(0));
    let again = block_on(decide(
        &backend,
        model(),
        incoming("r-1", 3_000),
        Vec::new(),
        &|| 1.0,
    ))
    .expect("decides");
    assert_eq!(again.record.kpi_seq, Some(0));
    assert_eq!(
        block_on(backend.snapshot())
            .expect("snapshot")
            .core
            .totals
            .decisions,
        1
    );
    // The KPI object itself refuses to count a decision twice.
    let observation = backend.decisions.borrow()["r-1"].observation();
    let places = block_on(backend.record(&[observation.clone(), observation])).expect("records");
    assert_eq!(places[0].seq, Some(0));
    assert_eq!(places[1].seq, Some(0));
    assert_eq!(
        block_on(backend.snapshot())
            .expect("snapshot")
            .core
            .totals
            .decisions,
        1
    );
}

fn event(id: u32, application: &str) -> QueuedEvent {
    let body = format!(
        r#"{{"events":[{{"event_id":"00000000-0000-4000-8000-{id:012}","event_time":"2026-11-23T10:00:00Z","application":{application},"client_score":{{"probability":0.5}}}}]}}"#
    );
    let mut parsed = parse_events(body.as_bytes(), 1_795_428_000_000).expect("envelope");
    parsed.remove(0).expect("event")
}

#[test]
fn events_become_decisions_or_dead_letters_and_retries_back_off() {
    let backend = MemoryBackend::new(KpiConfig::default());
    let now = || 1_795_428_000_500.0;
    let valid = event(1, VALID);
    let fate = block_on(process_event(&backend, model(), &valid, &now)).expect("processed");
    let EventFate::Stored(decided) = fate else {
        panic!("stored: {fate:?}")
    };
    assert!(decided.record.mismatch, "client said 0.5");
    assert_eq!(decided.record.request_id, valid.event_id);
    // Redelivery of the same event: the same decision, nothing new.
    let fate = block_on(process_event(&backend, model(), &valid, &now)).expect("processed");
    assert!(matches!(fate, EventFate::Stored(ref d) if d.replayed));
    // An invalid application is dead-lettered at once.
    let invalid = event(2, r#"{"age":17}"#);
    let fate = block_on(process_event(&backend, model(), &invalid, &now)).expect("processed");
    assert_eq!(
        fate,
        EventFate::DeadLettered {
            code: "E_VALIDATION".into()
        }
    );
    // Storage failures are retried with backoff, then dead-lettered on the last attempt.
    let flaky = event(3, VALID);
    backend.failing_inserts.set(10);
    let delays: Vec<EventFate> = (1..=MAX_ATTEMPTS)
        .map(|attempt| {
            let delivery = QueuedEvent {
                attempt,
                ..flaky.clone()
            };
            block_on(process_event(&backend, model(), &delivery, &now)).expect("processed")
        })
        .collect();
    assert!(matches!(delays[0], EventFate::Retry { delay_s: 2, .. }));
    assert!(matches!(delays[1], EventFate::Retry { delay_s: 4, .. }));
    assert_eq!(
        delays[2],
        EventFate::DeadLettered {
            code: "E_STORE".into()
        }
    );
    backend.failing_inserts.set(0);
    let letters = block_on(backend.list_dead_letters(Some("open"), 10, None)).expect("letters");
    let codes: Vec<(&str, u32)> = letters
        .iter()
        .map(|l| (l.error_code.as_str(), l.attempts))
        .collect();
    assert_eq!(codes, [("E_STORE", 3), ("E_VALIDATION", 1)]);
    assert_eq!(letters[1].payload, invalid);
    // A copy of a stored event with a broken application is a duplicate, not a dead letter.
    let copy = QueuedEvent {
        application: "{}".into(),
        ..valid.clone()
    };
    let fate = block_on(process_event(&backend, model(), &copy, &now)).expect("processed");
    assert!(matches!(fate, EventFate::Stored(ref d) if d.replayed));
    // Every event is exactly one decision or one open dead letter.
    for event in [&valid, &invalid, &flaky] {
        let decisions = usize::from(backend.decisions.borrow().contains_key(&event.event_id));
        let open = letters
            .iter()
            .filter(|l| l.event_id == event.event_id)
            .count();
        assert_eq!(decisions + open, 1, "{}", event.event_id);
    }
    let totals = block_on(backend.snapshot()).expect("snapshot").core.totals;
    assert_eq!((totals.decisions, totals.errors()), (1, 2));
}

/// Groups stored decisions by count window, in stream order, and closes each full window.
fn recompute_windows(decisions: &[DecisionRecord], size: u64) -> Vec<CountWindow> {
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

#[test]
fn count_windows_survive_a_restart_and_match_the_stored_decisions() {
    let backend = MemoryBackend::new(KpiConfig::default());
    for i in 0..30 {
        let at = 1_795_428_000_000 + i * 250;
        block_on(decide(
            &backend,
            model(),
            incoming(&format!("r-{i}"), at),
            Vec::new(),
            &|| 1.0 + i as f64,
        ))
        .expect("decides");
    }
    let before = block_on(backend.view(View::OneHour, None)).expect("view");
    // A restart: the object's memory is gone, its storage is not.
    *backend.kpi.borrow_mut() = KpiService::new(KpiConfig::default());
    assert_eq!(
        block_on(backend.view(View::OneHour, None)).expect("view"),
        before
    );
    for i in 30..45 {
        let at = 1_795_428_000_000 + i * 250;
        block_on(decide(
            &backend,
            model(),
            incoming(&format!("r-{i}"), at),
            Vec::new(),
            &|| 2.0,
        ))
        .expect("decides");
    }
    let stored: Vec<DecisionRecord> = backend.decisions.borrow().values().cloned().collect();
    let mut windows = backend.count_windows.borrow().clone();
    windows.sort_by_key(|w| w.index);
    assert_eq!(windows.len(), 2);
    assert_eq!(recompute_windows(&stored, 20), windows);
    let seqs: Vec<u64> = stored.iter().filter_map(|d| d.kpi_seq).collect();
    assert_eq!(seqs.len(), 45);
    assert_eq!(
        block_on(backend.snapshot())
            .expect("snapshot")
            .core
            .next_seq,
        45
    );
}

/// A clock for route tests: fixed, moved by hand.
struct ManualClock(Cell<f64>);

impl Clock for ManualClock {
    fn now_ms(&self) -> f64 {
        self.0.get()
    }
}

struct Harness {
    backend: MemoryBackend,
    clock: ManualClock,
    cache: valle_worker::routes::KpiCache,
    ids: Cell<u32>,
}

impl Harness {
    fn new(rate_limit: RateLimit) -> Harness {
        let mut backend = MemoryBackend::new(KpiConfig::default());
        backend.rate_limit = rate_limit;
        Harness {
            clock: ManualClock(Cell::new(backend.now_ms.get() as f64)),
            backend,
            cache: RefCell::new(SwrCache::new(8)),
            ids: Cell::new(0),
        }
    }

    fn send(&self, head: RequestHead, body: &str) -> HttpResponse {
        self.backend.now_ms.set(self.clock.0.get() as i64);
        let new_id = || {
            self.ids.set(self.ids.get() + 1);
            format!("gen-{}", self.ids.get())
        };
        let context = Context {
            clock: &self.clock,
            new_request_id: &new_id,
            officer_token: Some(TOKEN),
            kpi_cache: &self.cache,
            cors: &CorsPolicy::default(),
        };
        let prepared = prepare(&head, &context);
        let (response, refresh) =
            block_on(prepared.finish(Ok(body.as_bytes().to_vec()), &context, &self.backend));
        if let Some(refresh) = refresh {
            block_on(refresh_view(
                &refresh,
                &self.backend,
                &self.cache,
                self.clock.0.get() as i64,
            ));
        }
        response
    }

    fn officer(&self, target: &str) -> (u16, Value) {
        let head = RequestHead::new("GET", target)
            .with_header("authorization", &format!("Bearer {TOKEN}"));
        let response = self.send(head, "");
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        )
    }

    fn score(&self, id: &str) -> HttpResponse {
        let head = RequestHead::new("POST", "/api/v1/score")
            .with_header("content-type", "application/json")
            .with_header("x-request-id", id)
            .with_header("cf-connecting-ip", "203.0.113.9");
        self.send(head, VALID)
    }
}

#[test]
fn officer_routes_need_the_token() {
    let harness = Harness::new(RateLimit::default());
    for target in [
        "/api/v1/decisions",
        "/api/v1/decisions/x",
        "/api/v1/dead-letters",
        "/api/v1/kpis",
        "/api/v1/kpis/windows",
        "/api/v1/drift",
        "/metrics",
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic b2ZmaWNlcg=="),
            Some("Bearer officer-secre"),
        ] {
            let mut head = RequestHead::new("GET", target);
            if let Some(auth) = auth {
                head = head.with_header("authorization", auth);
            }
            let response = harness.send(head, "");
            assert_eq!(response.status, 401, "{target} {auth:?}");
            assert_eq!(
                response.header("www-authenticate"),
                Some("Bearer realm=\"valle\"")
            );
        }
    }
    let post = RequestHead::new("POST", "/api/v1/dead-letters/1/replay");
    assert_eq!(harness.send(post, "").status, 401);
    assert_eq!(harness.officer("/api/v1/kpis").0, 200);
    assert_eq!(harness.officer("/api/v1/decisions/missing").0, 404);
}

#[test]
fn flooding_a_client_gets_429_with_retry_after_and_other_clients_do_not() {
    let harness = Harness::new(RateLimit {
        capacity: 5.0,
        per_second: 1.0,
    });
    let statuses: Vec<u16> = (0..8)
        .map(|i| harness.score(&format!("flood-{i}")).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let limited = harness.score("flood-9");
    assert_eq!(limited.header("retry-after"), Some("1"));
    let other = RequestHead::new("POST", "/api/v1/score")
        .with_header("content-type", "application/json")
        .with_header("cf-connecting-ip", "198.51.100.1");
    assert_eq!(harness.send(other, VALID).status, 200);
    harness.clock.0.set(harness.clock.0.get() + 1_000.0);
    assert_eq!(harness.score("flood-10").status, 200);
}

#[test]
fn kpis_are_cached_then_served_stale_while_refreshing() {
    let harness = Harness::new(RateLimit::default());
    harness.score("k-1");
    let (status, first) = harness.officer("/api/v1/kpis?window=5m");
    assert_eq!(status, 200);
    let first: KpiResponse = serde_json::from_value(first).expect("kpis");
    assert_eq!((first.stale, first.view.summary.decisions), (false, 1));
    assert_eq!(first.cache_key, "kpis|window=5m|branch=*");
    harness.score("k-2");
    // Within the TTL: the cached view, still one decision.
    let (_, cached) = harness.officer("/api/v1/kpis?window=5m");
    let cached: KpiResponse = serde_json::from_value(cached).expect("kpis");
    assert_eq!(
        (
            cached.stale,
            cached.view.summary.decisions,
            cached.cache.hits
        ),
        (false, 1, 1)
    );
    // Past the TTL: the stale view, marked, and a refresh behind it.
    harness.clock.0.set(harness.clock.0.get() + 1_500.0);
    let (_, stale) = harness.officer("/api/v1/kpis?window=5m");
    let stale: KpiResponse = serde_json::from_value(stale).expect("kpis");
    assert_eq!((stale.stale, stale.view.summary.decisions), (true, 1));
    let (_, fresh) = harness.officer("/api/v1/kpis?window=5m");
    let fresh: KpiResponse = serde_json::from_value(fresh).expect("kpis");
    assert_eq!((fresh.stale, fresh.view.summary.decisions), (false, 2));
    let (status, bad) = harness.officer("/api/v1/kpis?window=7m&branch=%20Norte&x=1");
    assert_eq!(status, 400);
    let fields: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["window", "branch", "x"]);
}

#[test]
fn events_are_acknowledged_per_event_and_queued() {
    let harness = Harness::new(RateLimit::default());
    let body = format!(
        r#"{{"events":[{{"event_id":"00000000-0000-4000-8000-000000000001","event_time":"2026-11-23T09:59:00Z","application":{VALID}}},{{"event_id":"nope","event_time":"2026-11-23T09:59:00Z","application":{VALID}}},{{"event_id":"00000000-0000-4000-8000-000000000002","event_time":"2026-11-23T09:59:00Z","application":{{"age":17}}}}]}}"#
    );
    let head =
        RequestHead::new("POST", "/api/v1/events").with_header("content-type", "application/json");
    let response = harness.send(head, &body);
    assert_eq!(response.status, 202);
    let answer: Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(answer["results"][1]["error"]["code"], "E_EVENT_ID");
    assert_eq!(harness.backend.queued.borrow().len(), 2);
}

/// Delivers everything queued to the events consumer, as the platform does, until the
/// queue is empty (re-queued retries included); answers how many messages it delivered.
fn drain(backend: &MemoryBackend) -> usize {
    let mut delivered = 0;
    loop {
        let count = backend.queued.borrow().len();
        if count == 0 {
            return delivered;
        }
        delivered += deliver(backend, count);
    }
}

/// Delivers the first `count` queued messages to the events consumer, as one batch.
fn deliver(backend: &MemoryBackend, count: usize) -> usize {
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

fn events_body(ids: std::ops::Range<u32>) -> String {
    let events: Vec<String> = ids
        .map(|i| {
            // Every third application is invalid (age 17): it must end as a dead letter.
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

fn post_events(harness: &Harness, body: &str) -> HttpResponse {
    let head =
        RequestHead::new("POST", "/api/v1/events").with_header("content-type", "application/json");
    harness.send(head, body)
}

#[test]
fn acknowledged_events_survive_a_lost_queue_and_count_once() {
    let harness = Harness::new(RateLimit::default());
    let backend = &harness.backend;
    let lease = 20_000;
    let response = post_events(&harness, &events_body(1..10));
    assert_eq!(response.status, 202);
    let accepted_at = backend.now_ms.get();
    assert_eq!(backend.inbox.borrow().len(), 9, "kept before the answer");
    assert_eq!(backend.queued.borrow().len(), 9);
    assert_eq!(backend.sweeper_wakes.get(), 1);
    // The runtime dies after answering: its in-memory queue is gone.
    let lost: Vec<(QueuedEvent, i64)> = backend.queued.borrow_mut().drain(..).collect();
    // Within the lease the events may still be in flight: nothing is sent again.
    let sweep = block_on(sweep_inbox(
        backend,
        model(),
        accepted_at + lease - 1,
        lease,
    ))
    .expect("sweep");
    assert_eq!(
        sweep,
        Sweep {
            resent: 0,
            decided: 0,
            kept: 9
        }
    );
    // After it they are, once; a second sweep at the same time finds them freshly sent.
    let sweep = block_on(sweep_inbox(backend, model(), accepted_at + lease, lease)).expect("sweep");
    assert_eq!(
        sweep,
        Sweep {
            resent: 9,
            decided: 0,
            kept: 9
        }
    );
    let sweep = block_on(sweep_inbox(backend, model(), accepted_at + lease, lease)).expect("sweep");
    assert_eq!(
        sweep,
        Sweep {
            resent: 0,
            decided: 0,
            kept: 9
        }
    );
    let state = block_on(backend.inbox_state()).expect("inbox");
    assert_eq!(
        (state.kept, state.oldest_kept_at_ms),
        (9, Some(accepted_at))
    );
    // D1 fails twice on the way: those events are retried, not lost.
    backend.failing_inserts.set(2);
    assert_eq!(drain(backend), 11, "9 deliveries and 2 retries");
    let check_stored = || {
        let decisions = backend.decisions.borrow();
        let letters = block_on(backend.list_dead_letters(None, 50, None)).expect("letters");
        for (event, _) in &lost {
            let decided = usize::from(decisions.contains_key(&event.event_id));
            let dead = letters
                .iter()
                .filter(|l| l.event_id == event.event_id)
                .count();
            assert_eq!(decided + dead, 1, "{} stored once", event.event_id);
        }
        assert_eq!((decisions.len(), letters.len()), (6, 3));
        let totals = block_on(backend.snapshot()).expect("snapshot").core.totals;
        assert_eq!((totals.decisions, totals.errors()), (6, 3));
        assert!(backend.inbox.borrow().is_empty(), "every outcome settled");
    };
    check_stored();
    // The lost messages turn up after all, twice (a whole batch redelivered), and the client
    // resends its batch: nothing is stored or counted again.
    backend.queued.borrow_mut().extend(lost.iter().cloned());
    backend.queued.borrow_mut().extend(lost.iter().cloned());
    assert_eq!(post_events(&harness, &events_body(1..10)).status, 202);
    assert_eq!(drain(backend), 27);
    check_stored();
    let sweep = block_on(sweep_inbox(
        backend,
        model(),
        accepted_at + 3 * lease,
        lease,
    ))
    .expect("sweep");
    assert_eq!(
        sweep,
        Sweep {
            resent: 0,
            decided: 0,
            kept: 0
        }
    );
}

#[test]
fn the_sweeper_leaves_a_busy_consumer_alone_and_finds_what_it_skipped() {
    let harness = Harness::new(RateLimit::default());
    let backend = &harness.backend;
    let lease = 20_000;
    let t0 = backend.now_ms.get();
    assert_eq!(post_events(&harness, &events_body(1..31)).status, 202);
    // The consumer is behind: after 25 s it has done 10 of the 30 (a lease has passed for
    // all of them). The other 20 are still queued behind, not lost: nothing is sent again.
    backend.now_ms.set(t0 + 25_000);
    assert_eq!(deliver(backend, 10), 10);
    let sweep = block_on(sweep_inbox(backend, model(), t0 + 30_000, lease)).expect("sweep");
    assert_eq!(
        sweep,
        Sweep {
            resent: 0,
            decided: 0,
            kept: 20
        }
    );
    // A crash loses the queued 20; new events keep the consumer busy. Once it has settled
    // events sent a lease after the lost ones, those count as skipped and go again, once.
    backend.queued.borrow_mut().clear();
    harness.clock.0.set((t0 + 60_000) as f64);
    assert_eq!(post_events(&harness, &events_body(100..103)).status, 202);
    backend.now_ms.set(t0 + 61_000);
    assert_eq!(drain(backend), 3);
    let sweep = block_on(sweep_inbox(backend, model(), t0 + 62_000, lease)).expect("sweep");
    assert_eq!(
        sweep,
        Sweep {
            resent: 20,
            decided: 0,
            kept: 20
        }
    );
    let sweep = block_on(sweep_inbox(backend, model(), t0 + 63_000, lease)).expect("sweep");
    assert_eq!(sweep.resent, 0, "sent again once, not on every sweep");
    assert_eq!(drain(backend), 20);
    assert_eq!(
        block_on(sweep_inbox(backend, model(), t0 + 90_000, lease)).expect("sweep"),
        Sweep {
            resent: 0,
            decided: 0,
            kept: 0
        }
    );
    let letters = block_on(backend.list_dead_letters(None, 50, None)).expect("letters");
    assert_eq!(backend.decisions.borrow().len() + letters.len(), 33);
}

#[test]
fn the_sweeper_decides_events_itself_when_the_queue_stalls() {
    let harness = Harness::new(RateLimit::default());
    let backend = &harness.backend;
    let lease = 20_000;
    let t0 = backend.now_ms.get();
    assert_eq!(post_events(&harness, &events_body(1..13)).status, 202);
    // The queue holds the messages but never delivers them (a stalled consumer).
    let sweep = block_on(sweep_inbox(backend, model(), t0 + lease, lease)).expect("sweep");
    assert_eq!(
        (sweep.resent, sweep.decided),
        (12, 0),
        "first, the fast path again"
    );
    let sweep = block_on(sweep_inbox(backend, model(), t0 + 2 * lease, lease)).expect("sweep");
    assert_eq!(
        sweep,
        Sweep {
            resent: 0,
            decided: 12,
            kept: 0
        }
    );
    let letters = block_on(backend.list_dead_letters(None, 50, None)).expect("letters");
    assert_eq!((backend.decisions.borrow().len(), letters.len()), (8, 4));
    // The stuck messages are delivered after all: nothing changes, nothing is counted twice.
    assert_eq!(drain(backend), 24);
    let letters = block_on(backend.list_dead_letters(None, 50, None)).expect("letters");
    assert_eq!((backend.decisions.borrow().len(), letters.len()), (8, 4));
    let totals = block_on(backend.snapshot()).expect("snapshot").core.totals;
    assert_eq!((totals.decisions, totals.errors()), (8, 4));
}

#[test]
fn a_queue_is_stalled_only_when_nothing_moved_for_two_leases() {
    let lease = 20_000;
    let now = 1_000_000;
    let state = |oldest: Option<i64>, seen_at: Option<i64>| InboxState {
        kept: u64::from(oldest.is_some()),
        oldest_kept_at_ms: oldest,
        consumer_reached_ms: seen_at,
        consumer_seen_at_ms: seen_at,
    };
    for (why, inbox, stalled) in [
        ("empty inbox", state(None, None), false),
        (
            "young events, consumer never ran",
            state(Some(now - 30_000), None),
            false,
        ),
        (
            "old events, consumer never ran",
            state(Some(now - 40_000), None),
            true,
        ),
        (
            "old events, consumer ran just now",
            state(Some(now - 90_000), Some(now - 1_000)),
            false,
        ),
        (
            "old events, consumer quiet for two leases",
            state(Some(now - 90_000), Some(now - 40_000)),
            true,
        ),
    ] {
        assert_eq!(queue_stalled(&inbox, now, lease), stalled, "{why}");
    }
}

#[test]
fn the_sweep_cutoff_follows_the_consumer() {
    let lease = 20_000;
    let now = 1_000_000;
    let state = |consumer_reached_ms: Option<i64>, consumer_seen_at_ms: Option<i64>| InboxState {
        kept: 5,
        oldest_kept_at_ms: Some(0),
        consumer_reached_ms,
        consumer_seen_at_ms,
    };
    for (why, inbox, cutoff) in [
        ("the consumer never ran", state(None, None), now - lease),
        (
            "working, at messages sent 100 s ago",
            state(Some(now - 100_000), Some(now - 1_000)),
            now - 120_000,
        ),
        (
            "working, at messages sent just now",
            state(Some(now - 500), Some(now - 1_000)),
            now - 500 - lease,
        ),
        (
            "idle for a lease",
            state(Some(now - 100_000), Some(now - lease)),
            now - lease,
        ),
    ] {
        assert_eq!(sweep_cutoff(&inbox, now, lease), cutoff, "{why}");
    }
}

#[test]
fn events_are_not_acknowledged_unless_kept() {
    let harness = Harness::new(RateLimit::default());
    harness.backend.failing_inbox.set(true);
    let response = post_events(&harness, &events_body(1..4));
    assert_eq!(response.status, 503);
    let answer: Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(answer["error"]["code"], "E_STORE");
    assert!(harness.backend.queued.borrow().is_empty());
    harness.backend.failing_inbox.set(false);
    assert_eq!(post_events(&harness, &events_body(1..4)).status, 202);
    assert_eq!(harness.backend.inbox.borrow().len(), 3);
}

#[test]
fn a_dead_letter_replayed_with_a_corrected_application_becomes_a_decision() {
    let harness = Harness::new(RateLimit::default());
    let invalid = event(7, r#"{"age":17}"#);
    block_on(process_event(&harness.backend, model(), &invalid, &|| 0.0)).expect("processed");
    let replay = |body: &str| {
        let head = RequestHead::new("POST", "/api/v1/dead-letters/1/replay")
            .with_header("authorization", &format!("Bearer {TOKEN}"))
            .with_header("content-type", "application/json");
        harness.send(head, body)
    };
    // Replaying as it was fails again, with the field errors, and stays open.
    let again = replay("");
    assert_eq!(again.status, 400);
    let letter = block_on(harness.backend.get_dead_letter(1))
        .expect("get")
        .expect("letter");
    assert_eq!((letter.status.as_str(), letter.attempts), ("open", 2));
    let fixed = replay(&format!(r#"{{"application":{VALID}}}"#));
    assert_eq!(
        fixed.status,
        200,
        "{}",
        String::from_utf8_lossy(&fixed.body)
    );
    let letter = block_on(harness.backend.get_dead_letter(1))
        .expect("get")
        .expect("letter");
    assert_eq!(letter.status, "replayed");
    assert!(harness
        .backend
        .decisions
        .borrow()
        .contains_key(&invalid.event_id));
    assert_eq!(
        replay("").status,
        200,
        "a second replay answers the stored decision"
    );
    assert_eq!(harness.backend.decisions.borrow().len(), 1);
    let (status, _) = harness.officer("/api/v1/dead-letters/1/replay");
    assert_eq!(status, 405);
}

#[test]
fn decisions_are_listed_newest_first_with_a_cursor() {
    let harness = Harness::new(RateLimit::default());
    for i in 0..5 {
        harness.clock.0.set(harness.clock.0.get() + 10.0);
        let response = harness.score(&format!("list-{i}"));
        let answer: ScoreResponse = serde_json::from_slice(&response.body).expect("score");
        assert!(!answer.replayed);
    }
    let (status, page) = harness.officer("/api/v1/decisions?limit=2&branch=principal");
    assert_eq!(status, 200);
    let ids = |page: &Value| -> Vec<String> {
        page["decisions"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|r| r["request_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(ids(&page), ["list-4", "list-3"]);
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, next) = harness.officer(&format!(
        "/api/v1/decisions?limit=2&branch=principal&cursor={cursor}"
    ));
    assert_eq!(ids(&next), ["list-2", "list-1"]);
    let (status, bad) = harness.officer("/api/v1/decisions?band=negro");
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("E_QUERY"))
    );
    let (status, one) = harness.officer("/api/v1/decisions/list-0");
    assert_eq!((status, one["request_id"].as_str()), (200, Some("list-0")));
}

#[test]
fn drift_is_reported_per_field_and_in_the_metrics() {
    let harness = Harness::new(RateLimit {
        capacity: 1_000.0,
        per_second: 1_000.0,
    });
    for i in 0..5 {
        assert_eq!(harness.score(&format!("drift-{i}")).status, 200);
    }
    let (status, report) = harness.officer("/api/v1/drift");
    assert_eq!(status, 200, "{report}");
    let report: valle_shared::drift::DriftReport =
        serde_json::from_value(report).expect("drift report");
    assert_eq!(report.rolling_24h.decisions, 5);
    assert_eq!(report.rolling_24h.features.len(), 14);
    // Five identical applications are far from training, but too few to alert on.
    assert!(!report.rolling_24h.enough_data);
    assert!(report.rolling_24h.alerts.is_empty());
    assert!(report.rolling_24h.max_psi.is_some_and(|psi| psi > 0.2));
    let (status, other) = harness.officer("/api/v1/drift?branch=sur");
    assert_eq!(status, 200);
    assert_eq!(other["rolling_24h"]["decisions"], 0);
    let (status, bad) = harness.officer("/api/v1/drift?branch=%20x&window=1h");
    assert_eq!(status, 400);
    let codes: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|field| field["code"].as_str())
        .collect();
    assert_eq!(codes, ["E_FORMAT", "E_UNKNOWN_FIELD"], "{bad}");
    let head = RequestHead::new("GET", "/metrics")
        .with_header("authorization", &format!("Bearer {TOKEN}"));
    let text = String::from_utf8(harness.send(head, "").body).expect("utf-8");
    assert!(
        text.lines()
            .any(|line| line == "valle_drift_decisions{window=\"24h\"} 5"),
        "{text}"
    );
    assert!(text.contains("valle_drift_psi{feature=\"income\",window=\"1h\"} "));
}
