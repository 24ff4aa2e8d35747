//! Decisions on the host, over the in-memory backend: one write per request, replays that
//! write nothing, counting from D1 that survives a lost background step and a restart, and
//! latency kept per channel.

mod support;

use serde_json::Value;
use valle_shared::api::{BatchResponse, ScoreResponse};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateLimit;
use valle_shared::intake::channel::Channel;
use valle_shared::monitoring::kpi::{KpiConfig, PerformanceState, View};
use valle_shared::records::decisions::DecisionRecord;
use valle_worker::http::RequestHead;
use valle_worker::memory::{block_on, MemoryBackend};
use valle_worker::pipeline::decide;
use valle_worker::store::KpiSink;

use support::{counted, incoming, model, recompute_windows, Harness, VALID};

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
    let mut later = incoming("r-1", 9_000);
    later.branch = "sur".to_owned();
    let second = block_on(decide(&backend, model(), later, Vec::new(), &|| 5.0)).expect("decides");
    assert!(second.replayed);
    assert_eq!(
        second.record, first.record,
        "the stored decision, unchanged"
    );
    assert_eq!(backend.d1.decision_count(), 1);
    assert_eq!(backend.d1.writes.get(), 2, "one write per request");
    assert_eq!(counted(&backend).core.totals.decisions, 1, "counted once");
}

#[test]
fn a_score_waits_for_one_write_and_is_counted_after_the_answer() {
    let harness = Harness::new(RateLimit::default());
    let response = harness.score("s-1");
    assert_eq!(response.status, 200);
    assert_eq!(harness.backend.d1.writes.get(), 1);
    assert_eq!(
        harness.backend.pokes.get(),
        1,
        "the KPI object told after the answer"
    );
    let snapshot = block_on(harness.backend.snapshot()).expect("snapshot");
    assert_eq!(snapshot.core.totals.decisions, 1);
    let stored = harness.backend.d1.decision("s-1").expect("stored");
    assert_eq!((stored.kpi_seq, stored.kpi_window), (Some(0), Some(0)));
    // The replay writes nothing new and does not poke.
    let replay: ScoreResponse = serde_json::from_slice(&harness.score("s-1").body).expect("score");
    assert!(replay.replayed);
    assert_eq!(harness.backend.pokes.get(), 1);
}

#[test]
fn a_decision_whose_background_step_is_lost_is_counted_once_by_the_reconciler() {
    let harness = Harness::new(RateLimit::default());
    harness.background.set(false);
    assert_eq!(harness.score("lost-1").status, 200);
    assert_eq!(harness.score("lost-2").status, 200);
    let backend = &harness.backend;
    assert_eq!(backend.pokes.get(), 0, "the poke died with the isolate");
    let before = block_on(backend.snapshot()).expect("snapshot");
    assert_eq!(before.core.totals.decisions, 0, "not counted yet");
    // The KPI object's alarm runs within its reconcile interval and reads D1 anyway.
    let report = block_on(backend.kpi_alarm()).expect("alarm");
    assert_eq!(report.counted, 2);
    // Alarms, pokes and a restart after it change nothing: each row is counted once.
    block_on(backend.kpi_alarm()).expect("alarm");
    block_on(backend.poke()).expect("poke");
    backend.restart_kpi(KpiConfig::default());
    let after = counted(backend);
    assert_eq!(after.core.totals.decisions, 2);
    assert_eq!(after.core.next_seq, 2);
    let places: Vec<Option<u64>> = ["lost-1", "lost-2"]
        .iter()
        .map(|id| backend.d1.decision(id).and_then(|d| d.kpi_seq))
        .collect();
    assert_eq!(places, [Some(0), Some(1)]);
}

#[test]
fn a_kpi_object_that_cannot_be_reached_does_not_fail_a_score() {
    let harness = Harness::new(RateLimit::default());
    harness.backend.failing_kpi.set(true);
    assert_eq!(
        harness.score("k-down").status,
        200,
        "the answer needs only D1"
    );
    assert_eq!(block_on(harness.backend.kpi_alarm()).ok(), None);
    harness.backend.failing_kpi.set(false);
    assert_eq!(counted(&harness.backend).core.totals.decisions, 1);
}

#[test]
fn a_failed_write_answers_503_and_the_retry_stores_once() {
    let harness = Harness::new(RateLimit::default());
    harness.backend.d1.failing_writes.set(1);
    let failed = harness.score("w-1");
    assert_eq!(failed.status, 503);
    let body: Value = serde_json::from_slice(&failed.body).expect("json");
    assert_eq!(body["error"]["code"], ErrorCode::Store.as_str());
    assert_eq!(harness.backend.d1.decision_count(), 0);
    let retried: ScoreResponse = serde_json::from_slice(&harness.score("w-1").body).expect("score");
    assert!(!retried.replayed);
    assert_eq!(counted(&harness.backend).core.totals.decisions, 1);
}

#[test]
fn refused_requests_are_counted_together_after_the_answer() {
    let harness = Harness::new(RateLimit::default());
    harness.background.set(false);
    for i in 0..5 {
        let response = harness.score_body(&format!("bad-{i}"), r#"{"age":17}"#);
        assert_eq!(response.status, 400);
    }
    assert_eq!(
        harness.pacer.buffered(),
        5,
        "buffered in the isolate, no write each"
    );
    // Their flush was lost with the step; the next refusal after a while sends them all.
    harness.background.set(true);
    harness.advance(10_000);
    assert_eq!(harness.score_body("bad-5", r#"{"age":17}"#).status, 400);
    let totals = block_on(harness.backend.snapshot())
        .expect("snapshot")
        .core
        .totals;
    assert_eq!(
        totals.errors_by_code.get(ErrorCode::Validation.as_str()),
        Some(&6)
    );
    assert_eq!(harness.pacer.buffered(), 0);
    assert_eq!(
        harness.backend.d1.writes.get(),
        0,
        "a refusal writes nothing to D1"
    );
}

#[test]
fn count_windows_survive_a_restart_and_match_the_stored_decisions() {
    let backend = MemoryBackend::new(KpiConfig::default());
    // Decides application `r-{i}`, arrived 250 ms after the one before, in `latency_ms`.
    let decide_nth = |i: i64, latency_ms: f64| {
        let at = 1_795_428_000_000 + i * 250;
        block_on(decide(
            &backend,
            model(),
            incoming(&format!("r-{i}"), at),
            Vec::new(),
            &|| latency_ms,
        ))
        .expect("decides");
    };
    for i in 0..30 {
        decide_nth(i, 1.0 + i as f64);
    }
    counted(&backend);
    let before = block_on(backend.view(View::OneHour, None)).expect("view");
    backend.restart_kpi(KpiConfig::default());
    assert_eq!(
        block_on(backend.view(View::OneHour, None)).expect("view"),
        before
    );
    for i in 30..45 {
        decide_nth(i, 2.0);
    }
    let snapshot = counted(&backend);
    let stored: Vec<DecisionRecord> = backend.d1.decisions.borrow().values().cloned().collect();
    let windows: Vec<_> = backend
        .d1
        .count_windows
        .borrow()
        .values()
        .cloned()
        .collect();
    assert_eq!(windows.len(), 2);
    assert_eq!(recompute_windows(&stored, 20), windows);
    let seqs: Vec<u64> = stored.iter().filter_map(|d| d.kpi_seq).collect();
    assert_eq!(seqs, (0..45).collect::<Vec<u64>>(), "in commit order");
    assert_eq!(snapshot.core.next_seq, 45);
}

#[test]
fn a_batch_of_1000_is_one_write_and_its_latency_is_not_an_online_answers() {
    let harness = Harness::new(RateLimit::default());
    let items: Vec<String> = (0..1_000)
        .map(|i| {
            if i % 100 == 7 {
                r#"{"age":17}"#.to_owned()
            } else {
                VALID.to_owned()
            }
        })
        .collect();
    let body = format!(r#"{{"applications":[{}]}}"#, items.join(","));
    let head = RequestHead::new("POST", "/api/v1/score/batch")
        .with_header("content-type", "application/json")
        .with_header("x-request-id", "batch-1")
        .with_header("cf-connecting-ip", "203.0.113.10");
    let response = harness.send(head.clone(), &body);
    assert_eq!(response.status, 200);
    let answer: BatchResponse = serde_json::from_slice(&response.body).expect("batch");
    assert_eq!((answer.accepted, answer.rejected), (990, 10));
    assert_eq!(
        answer.results[7].error.as_ref().map(|e| e.code.as_str()),
        Some(ErrorCode::Validation.as_str())
    );
    assert_eq!(answer.results[8].request_id.as_deref(), Some("batch-1:8"));
    assert_eq!(
        harness.backend.d1.writes.get(),
        1,
        "one write for the whole batch"
    );
    assert_eq!(harness.backend.d1.decision_count(), 990);
    // Sent again: every item replays, nothing is written twice.
    let again: BatchResponse =
        serde_json::from_slice(&harness.send(head, &body).body).expect("batch");
    assert!(again
        .results
        .iter()
        .filter(|item| item.score.is_some())
        .all(|item| item.replayed));
    assert_eq!(harness.backend.d1.decision_count(), 990);
    let snapshot = counted(&harness.backend);
    assert_eq!(snapshot.core.totals.decisions, 990);
    // 990 decisions once, and the 10 refused items of each of the two requests.
    assert_eq!(
        snapshot.core.totals.latency(Channel::Batch).count(),
        990 + 20
    );
    assert_eq!(snapshot.core.totals.latency(Channel::Online).count(), 0);
    // The refused items raise the error rate; the batch's running time raises no latency
    // alert, which only online answers can.
    let alerts: Vec<&str> = snapshot
        .recent
        .alerts
        .iter()
        .map(|a| a.metric.as_str())
        .collect();
    assert_eq!(alerts, ["error_rate"]);
    assert_eq!(snapshot.recent.state, PerformanceState::Bueno);
}

#[test]
fn flooding_a_client_gets_429_with_retry_after_and_other_clients_do_not() {
    let harness = Harness::new(RateLimit {
        limit: 5,
        period_s: 10,
    });
    let statuses: Vec<u16> = (0..8)
        .map(|i| harness.score(&format!("flood-{i}")).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let limited = harness.score("flood-9");
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("retry-after");
    assert!((1..=10).contains(&retry), "{retry}");
    let other = RequestHead::new("POST", "/api/v1/score")
        .with_header("content-type", "application/json")
        .with_header("cf-connecting-ip", "198.51.100.1");
    assert_eq!(harness.send(other, VALID).status, 200);
    harness.advance(retry as i64 * 1_000);
    assert_eq!(harness.score("flood-10").status, 200, "a new window");
}
