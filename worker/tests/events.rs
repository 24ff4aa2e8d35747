//! Events on the host, over the in-memory backend: a batch of events is one write, failures
//! go back to the queue with backoff and end as dead letters, and the inbox and its sweeper
//! keep every acknowledged event until its outcome is stored, counted once.

mod support;

use serde_json::Value;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateLimit;
use valle_shared::contract::query::Page;
use valle_shared::monitoring::kpi::KpiConfig;
use valle_shared::records::decisions::DeadLetterStatus;
use valle_shared::records::events::QueuedEvent;
use valle_worker::memory::{block_on, MemoryBackend};
use valle_worker::pipeline::{
    consume_events, queue_stalled, sweep_cutoff, sweep_inbox, Delivery, Sweep, MAX_ATTEMPTS,
};
use valle_worker::store::{DeadLetterStore, EventInbox, EventQueue, InboxState};

use support::{counted, deliver, drain, event, events_body, model, Harness, VALID};

fn consume(backend: &MemoryBackend, events: &[QueuedEvent]) -> Vec<Result<(), String>> {
    let deliveries: Vec<Delivery> = events
        .iter()
        .map(|event| Delivery {
            body: serde_json::to_value(event).expect("json"),
            sent_at_ms: backend.now_ms.get(),
        })
        .collect();
    let now = backend.now_ms.get() as f64;
    block_on(consume_events(backend, model(), &deliveries, &|| now))
        .into_iter()
        .map(|outcome| outcome.map_err(|error| error.to_string()))
        .collect()
}

#[test]
fn a_batch_of_events_is_decided_and_settled_in_one_write() {
    let harness = Harness::new(RateLimit::default());
    let backend = &harness.backend;
    assert_eq!(harness.post_events(&events_body(1..101)).status, 202);
    assert_eq!(backend.d1.inbox.borrow().len(), 100);
    let writes = backend.d1.writes.get();
    assert_eq!(deliver(backend, 100), 100);
    assert_eq!(
        backend.d1.writes.get() - writes,
        1,
        "decisions, letters and inbox together"
    );
    assert!(backend.d1.inbox.borrow().is_empty());
    let letters =
        block_on(backend.list_dead_letters(Some(DeadLetterStatus::Open), &Page::first(500)))
            .expect("letters");
    assert_eq!((backend.d1.decision_count(), letters.len()), (67, 33));
    let totals = counted(backend).core.totals;
    assert_eq!((totals.decisions, totals.errors()), (67, 33));
    // A copy of a stored event with a broken application is a duplicate, not a dead letter;
    // the whole batch delivered again changes nothing.
    let copy = QueuedEvent {
        application: "{}".into(),
        ..event(1, VALID)
    };
    let first = event(1, VALID);
    assert_eq!(consume(backend, &[first.clone(), copy]), [Ok(()), Ok(())]);
    let totals = counted(backend).core.totals;
    assert_eq!((totals.decisions, totals.errors()), (67, 33));
    assert!(backend
        .d1
        .letters()
        .iter()
        .all(|l| l.event_id != first.event_id));
}

#[test]
fn a_failed_write_sends_the_batch_back_with_backoff_then_to_the_dead_letters() {
    let backend = MemoryBackend::new(KpiConfig::default());
    let valid = event(1, VALID);
    let other = event(3, VALID);
    // Every consumer attempt fails; the dead-letter queue's store then works.
    backend.d1.failing_writes.set(MAX_ATTEMPTS);
    let mut batch = vec![valid.clone(), other];
    for attempt in 1..=MAX_ATTEMPTS {
        assert!(batch.iter().all(|event| event.attempt == attempt));
        let sends = backend.queue_sends.get();
        assert_eq!(
            consume(&backend, &batch),
            [Ok(()), Ok(())],
            "acked once sent on"
        );
        if attempt < MAX_ATTEMPTS {
            assert_eq!(
                backend.queue_sends.get() - sends,
                1,
                "one send for the batch"
            );
            batch = backend
                .queued
                .borrow_mut()
                .drain(..)
                .map(|(event, _)| event)
                .collect();
        }
    }
    assert_eq!(*backend.requeue_delays.borrow(), [2, 2, 4, 4]);
    assert!(backend.queued.borrow().is_empty());
    let letters =
        block_on(backend.list_dead_letters(Some(DeadLetterStatus::Open), &Page::first(10)))
            .expect("letters");
    let codes: Vec<(&str, u32)> = letters
        .iter()
        .map(|l| (l.error_code.as_str(), l.attempts))
        .collect();
    assert_eq!(
        codes,
        [
            (ErrorCode::Store.as_str(), 3),
            (ErrorCode::Store.as_str(), 3)
        ]
    );
    assert_eq!(letters[1].payload.event_id, valid.event_id);
    assert_eq!(backend.d1.decision_count(), 0);
    let totals = counted(&backend).core.totals;
    assert_eq!((totals.decisions, totals.errors()), (0, 2));
}

#[test]
fn an_invalid_event_is_a_dead_letter_even_when_its_batch_is_not_stored() {
    let backend = MemoryBackend::new(KpiConfig::default());
    let valid = event(1, VALID);
    let invalid = event(2, r#"{"age":17}"#);
    backend.d1.failing_writes.set(1);
    assert_eq!(
        consume(&backend, &[valid.clone(), invalid.clone()]),
        [Ok(()), Ok(())]
    );
    let letters =
        block_on(backend.list_dead_letters(Some(DeadLetterStatus::Open), &Page::first(10)))
            .expect("letters");
    let codes: Vec<(&str, &str)> = letters
        .iter()
        .map(|l| (l.error_code.as_str(), l.event_id.as_str()))
        .collect();
    assert_eq!(
        codes,
        [(ErrorCode::Validation.as_str(), invalid.event_id.as_str())]
    );
    let requeued: Vec<(String, u32)> = backend
        .queued
        .borrow()
        .iter()
        .map(|(event, _)| (event.event_id.clone(), event.attempt))
        .collect();
    assert_eq!(requeued, [(valid.event_id.clone(), 2)]);
    assert_eq!(drain(&backend), 1);
    assert!(backend.d1.decision(&valid.event_id).is_some());
    // A dead letter's event decided later (an officer's replay, a corrected resend) closes
    // the letter in the same write.
    let corrected = QueuedEvent {
        application: VALID.to_owned(),
        ..invalid.clone()
    };
    assert_eq!(consume(&backend, &[corrected]), [Ok(())]);
    let letter = &backend.d1.letters()[0];
    assert_eq!(letter.status, DeadLetterStatus::Superseded);
}

#[test]
fn an_unreadable_message_is_retried_by_the_platform_and_does_not_hold_up_the_rest() {
    let backend = MemoryBackend::new(KpiConfig::default());
    let deliveries = vec![
        Delivery {
            body: Value::String("not an event".into()),
            sent_at_ms: 0,
        },
        Delivery {
            body: serde_json::to_value(event(1, VALID)).expect("json"),
            sent_at_ms: 0,
        },
    ];
    let outcomes = block_on(consume_events(&backend, model(), &deliveries, &|| 0.0));
    assert!(outcomes[0].is_err());
    assert!(outcomes[1].is_ok());
    assert_eq!(backend.d1.decision_count(), 1);
}

#[test]
fn events_are_acknowledged_per_event_and_queued() {
    let harness = Harness::new(RateLimit::default());
    let body = format!(
        r#"{{"events":[{{"event_id":"00000000-0000-4000-8000-000000000001","event_time":"2026-11-23T09:59:00Z","application":{VALID}}},{{"event_id":"nope","event_time":"2026-11-23T09:59:00Z","application":{VALID}}},{{"event_id":"00000000-0000-4000-8000-000000000002","event_time":"2026-11-23T09:59:00Z","application":{{"age":17}}}}]}}"#
    );
    let response = harness.post_events(&body);
    assert_eq!(response.status, 202);
    let answer: Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        answer["results"][1]["error"]["code"],
        ErrorCode::EventId.as_str()
    );
    assert_eq!(harness.backend.queued.borrow().len(), 2);
    assert_eq!(
        harness.backend.sweeper_wakes.get(),
        1,
        "woken after the answer"
    );
    let totals = block_on(valle_worker::store::KpiSink::snapshot(&harness.backend))
        .expect("snapshot")
        .core
        .totals;
    assert_eq!(
        totals.errors_by_code.get(ErrorCode::EventId.as_str()),
        Some(&1)
    );
}

#[test]
fn acknowledged_events_survive_a_lost_queue_and_count_once() {
    let harness = Harness::new(RateLimit::default());
    let backend = &harness.backend;
    let lease = 20_000;
    let response = harness.post_events(&events_body(1..10));
    assert_eq!(response.status, 202);
    let accepted_at = backend.now_ms.get();
    assert_eq!(backend.d1.inbox.borrow().len(), 9, "kept before the answer");
    assert_eq!(backend.queued.borrow().len(), 9);
    // The runtime dies after answering: its in-memory queue is gone.
    let lost: Vec<(QueuedEvent, i64)> = backend.queued.borrow_mut().drain(..).collect();
    // What a sweep at `at` did: resent, decided, kept.
    let sweep_at = |at| {
        let sweep = block_on(sweep_inbox(backend, model(), at, lease)).expect("sweep");
        (sweep.resent, sweep.decided, sweep.kept)
    };
    // Within the lease the events may still be in flight: nothing is sent again.
    assert_eq!(sweep_at(accepted_at + lease - 1), (0, 0, 9));
    // After it they are, once; a second sweep at the same time finds them freshly sent.
    assert_eq!(sweep_at(accepted_at + lease), (9, 0, 9));
    assert_eq!(sweep_at(accepted_at + lease), (0, 0, 9));
    let state = block_on(backend.inbox_state()).expect("inbox");
    assert_eq!(
        (state.kept, state.oldest_kept_at_ms),
        (9, Some(accepted_at))
    );
    // D1 fails once on the way: that batch is retried, not lost.
    backend.d1.failing_writes.set(1);
    assert_eq!(
        drain(backend),
        15,
        "9 deliveries, 6 retries (3 invalid: dead letters at once)"
    );
    let check_stored = || {
        let letters = block_on(backend.list_dead_letters(None, &Page::first(50))).expect("letters");
        for (event, _) in &lost {
            let decided = usize::from(backend.d1.decision(&event.event_id).is_some());
            let dead = letters
                .iter()
                .filter(|l| l.event_id == event.event_id)
                .count();
            assert_eq!(decided + dead, 1, "{} stored once", event.event_id);
        }
        assert_eq!((backend.d1.decision_count(), letters.len()), (6, 3));
        let totals = counted(backend).core.totals;
        assert_eq!((totals.decisions, totals.errors()), (6, 3));
        assert!(
            backend.d1.inbox.borrow().is_empty(),
            "every outcome settled"
        );
    };
    check_stored();
    // The lost messages turn up after all, twice (a whole batch redelivered), and the client
    // resends its batch: nothing is stored or counted again.
    backend.queued.borrow_mut().extend(lost.iter().cloned());
    backend.queued.borrow_mut().extend(lost.iter().cloned());
    assert_eq!(harness.post_events(&events_body(1..10)).status, 202);
    assert_eq!(drain(backend), 27);
    check_stored();
    assert_eq!(sweep_at(accepted_at + 3 * lease), (0, 0, 0));
}

#[test]
fn the_sweeper_leaves_a_busy_consumer_alone_and_finds_what_it_skipped() {
    let harness = Harness::new(RateLimit::default());
    let backend = &harness.backend;
    let lease = 20_000;
    let t0 = backend.now_ms.get();
    assert_eq!(harness.post_events(&events_body(1..31)).status, 202);
    // The consumer is behind: after 25 s it has done 10 of the 30 (a lease has passed for
    // all of them). The other 20 are still queued behind, not lost: nothing is sent again.
    backend.now_ms.set(t0 + 25_000);
    assert_eq!(deliver(backend, 10), 10);
    let sweep = block_on(sweep_inbox(backend, model(), t0 + 30_000, lease)).expect("sweep");
    assert_eq!((sweep.resent, sweep.decided, sweep.kept), (0, 0, 20));
    // A crash loses the queued 20; new events keep the consumer busy. Once it has settled
    // events sent a lease after the lost ones, those count as skipped and go again, once.
    backend.queued.borrow_mut().clear();
    harness.clock.0.set((t0 + 60_000) as f64);
    assert_eq!(harness.post_events(&events_body(100..103)).status, 202);
    backend.now_ms.set(t0 + 61_000);
    assert_eq!(drain(backend), 3);
    let sweep = block_on(sweep_inbox(backend, model(), t0 + 62_000, lease)).expect("sweep");
    assert_eq!((sweep.resent, sweep.decided, sweep.kept), (20, 0, 20));
    let sweep = block_on(sweep_inbox(backend, model(), t0 + 63_000, lease)).expect("sweep");
    assert_eq!(sweep.resent, 0, "sent again once, not on every sweep");
    assert_eq!(drain(backend), 20);
    assert_eq!(
        block_on(sweep_inbox(backend, model(), t0 + 90_000, lease)).expect("sweep"),
        Sweep::default()
    );
    assert_eq!(backend.d1.decision_count() + backend.d1.letters().len(), 33);
}

#[test]
fn the_sweeper_decides_events_itself_when_the_queue_stalls() {
    let harness = Harness::new(RateLimit::default());
    let backend = &harness.backend;
    let lease = 20_000;
    let t0 = backend.now_ms.get();
    assert_eq!(harness.post_events(&events_body(1..13)).status, 202);
    // The queue holds the messages but never delivers them (a stalled consumer).
    let sweep = block_on(sweep_inbox(backend, model(), t0 + lease, lease)).expect("sweep");
    assert_eq!(
        (sweep.resent, sweep.decided),
        (12, 0),
        "first, the fast path again"
    );
    let writes = backend.d1.writes.get();
    let sweep = block_on(sweep_inbox(backend, model(), t0 + 2 * lease, lease)).expect("sweep");
    assert_eq!(
        sweep,
        Sweep {
            resent: 0,
            decided: 12,
            kept: 0
        }
    );
    assert_eq!(
        backend.d1.writes.get() - writes,
        1,
        "the sweeper's batch is one write too"
    );
    assert_eq!(
        (backend.d1.decision_count(), backend.d1.letters().len()),
        (8, 4)
    );
    // The stuck messages are delivered after all: nothing changes, nothing is counted twice.
    assert_eq!(drain(backend), 24);
    assert_eq!(
        (backend.d1.decision_count(), backend.d1.letters().len()),
        (8, 4)
    );
    let totals = counted(backend).core.totals;
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
    harness.backend.d1.failing_inbox.set(true);
    let response = harness.post_events(&events_body(1..4));
    assert_eq!(response.status, 503);
    let answer: Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(answer["error"]["code"], ErrorCode::Store.as_str());
    assert!(harness.backend.queued.borrow().is_empty());
    harness.backend.d1.failing_inbox.set(false);
    assert_eq!(harness.post_events(&events_body(1..4)).status, 202);
    assert_eq!(harness.backend.d1.inbox.borrow().len(), 3);
    // Requeue and dead-letter sends are used by the consumer, not here.
    assert!(block_on(harness.backend.requeue(&[])).is_ok());
}
