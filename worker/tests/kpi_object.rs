//! The KPI object on the host: it counts D1's log once whatever reads overlap, its storage
//! stays bounded, a storage failure is an error (never a silent reset), and its outbox to D1
//! sends every write readable and forgets one only once D1 has the newest copy.

mod support;

use std::collections::BTreeMap;
use valle_shared::contract::codes::ErrorCode;

use valle_shared::decision::model::{Band, Decision};
use valle_shared::intake::channel::Channel;
use valle_shared::monitoring::kpi::{
    EventWindow, KpiConfig, Observation, Outcome, Stats, View, MINUTE_MS,
};
use valle_worker::kpi::outbox::{acknowledge, is_empty, pending};
use valle_worker::kpi::pump::{Schedule, SCHEDULE};
use valle_worker::kpi::{KpiService, KvOp, KvStore, Pending};
use valle_worker::memory::MemoryKv;
use valle_worker::store::{D1Write, LogPage, LogPosition, LoggedDecision, RefusalBatch};

const START_MS: i64 = 1_795_428_000_000;

fn decided(id: usize, branch: &str, at_ms: i64) -> Observation {
    Observation {
        request_id: format!("r-{id}"),
        branch: branch.to_owned(),
        channel: Channel::Online,
        received_at_ms: at_ms,
        event_time_ms: at_ms,
        latency_ms: 3.0 + (id % 40) as f64,
        outcome: Outcome::Decided {
            band: Band::Bajo,
            decision: Decision::Approve,
            probability: 0.2,
            confidence: 0.6,
            mismatch: false,
        },
        drift_bins: Vec::new(),
    }
}

fn failed(id: usize, at_ms: i64) -> Observation {
    Observation {
        outcome: Outcome::Failed {
            code: ErrorCode::Validation,
        },
        ..decided(id, "principal", at_ms)
    }
}

fn batch(id: &str, observations: Vec<Observation>) -> RefusalBatch {
    RefusalBatch {
        id: id.to_owned(),
        observations,
    }
}

/// A page of the log holding one decision per observation, as D1 numbers them (row = id + 1).
fn page(observations: Vec<(usize, Observation)>) -> LogPage {
    LogPage {
        decisions: observations
            .into_iter()
            .map(|(id, observation)| LoggedDecision {
                seq: id as u64 + 1,
                observation,
                counted_before: false,
            })
            .collect(),
        dead_letters: Vec::new(),
    }
}

/// Counts `ids` one page each, a second apart, on branches norte and sur.
fn count_decisions(service: &mut KpiService, kv: &MemoryKv, ids: std::ops::Range<usize>) {
    for id in ids {
        let at_ms = START_MS + id as i64 * 1_000;
        let branch = ["norte", "sur"][id % 2];
        let one = page(vec![(id, decided(id, branch, at_ms))]);
        service
            .count_log(kv, &one, LogPosition::default(), at_ms)
            .expect("counted");
    }
}

/// Counts decisions about the first minute that arrive after it closed (but well within the
/// allowed lateness), so each one revises that minute's windows.
fn count_late_decisions(service: &mut KpiService, kv: &MemoryKv, ids: std::ops::Range<usize>) {
    for id in ids {
        let mut late = decided(id, "norte", START_MS + 30_000);
        late.received_at_ms = START_MS + 600_000;
        service
            .count_log(
                kv,
                &page(vec![(id, late)]),
                LogPosition::default(),
                START_MS + 600_000,
            )
            .expect("counted");
    }
}

fn decisions_counted(service: &mut KpiService, kv: &MemoryKv, now_ms: i64) -> u64 {
    service
        .snapshot(kv, now_ms)
        .expect("snapshot")
        .core
        .totals
        .decisions
}

/// The object's own copy of every closed event-time window (the ones D1 receives), by key.
/// The all-time totals the service reports at `START_MS`.
fn totals_at_start(service: &mut KpiService, kv: &MemoryKv) -> Stats {
    service
        .snapshot(kv, START_MS)
        .expect("snapshot")
        .core
        .totals
}

fn closed_windows(kv: &MemoryKv) -> BTreeMap<String, EventWindow> {
    kv.scan("ew|", usize::MAX)
        .expect("scan")
        .into_iter()
        .map(|(key, json)| {
            let window: EventWindow = serde_json::from_str(&json).expect("window readable");
            (key, window)
        })
        .filter(|(_, window)| window.closed)
        .collect()
}

/// Event-time windows the outbox would send, by window key.
fn queued_windows(pending: &Pending) -> BTreeMap<String, EventWindow> {
    pending
        .writes
        .iter()
        .filter_map(|pending| match &pending.write {
            D1Write::EventWindow(window) => Some((window.key(), (**window).clone())),
            _ => None,
        })
        .collect()
}

/// The decisions' places the outbox would send, by request row.
fn queued_places(pending: &Pending) -> Vec<u64> {
    pending
        .writes
        .iter()
        .flat_map(|pending| match &pending.write {
            D1Write::DecisionPlaces { places } => places.iter().map(|place| place.row).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn a_page_read_twice_is_counted_once() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    let rows: Vec<(usize, Observation)> = (0..30)
        .map(|id| (id, decided(id, "norte", START_MS + id as i64)))
        .collect();
    let first = service
        .count_log(
            &kv,
            &page(rows[..20].to_vec()),
            LogPosition::default(),
            START_MS,
        )
        .expect("counted");
    assert_eq!(first.observations, 20);
    // A second read that overlaps the first (rows 11..30) counts only what is new.
    let second = service
        .count_log(
            &kv,
            &page(rows[10..].to_vec()),
            LogPosition::default(),
            START_MS,
        )
        .expect("counted");
    assert_eq!(second.observations, 10);
    assert_eq!(second.position.decision_seq, 30);
    assert_eq!(decisions_counted(&mut service, &kv, START_MS), 30);
    // After a restart the stored position still holds.
    let mut restarted = KpiService::new(KpiConfig::default());
    let again = restarted
        .count_log(&kv, &page(rows.clone()), LogPosition::default(), START_MS)
        .expect("counted");
    assert_eq!(again.observations, 0);
    assert_eq!(decisions_counted(&mut restarted, &kv, START_MS), 30);
    assert_eq!(
        queued_places(&pending(&kv, usize::MAX).expect("pending")),
        (1..=30).collect::<Vec<u64>>()
    );
}

#[test]
fn a_failed_write_counts_nothing_and_the_retry_counts_once() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    count_decisions(&mut service, &kv, 0..5);
    let before = kv.entries();
    kv.failing_writes.set(true);
    let one = page(vec![(5, decided(5, "norte", START_MS + 5_000))]);
    assert!(service
        .count_log(&kv, &one, LogPosition::default(), START_MS + 5_000)
        .is_err());
    assert!(service
        .count_refusals(&kv, &batch("b-1", vec![failed(900, START_MS)]), START_MS)
        .is_err());
    assert_eq!(kv.entries(), before, "nothing of either call was written");
    // The object answers from what is stored, not from the half-applied memory.
    assert_eq!(decisions_counted(&mut service, &kv, START_MS + 5_000), 5);
    kv.failing_writes.set(false);
    service
        .count_log(&kv, &one, LogPosition::default(), START_MS + 5_000)
        .expect("counted");
    service
        .count_refusals(&kv, &batch("b-1", vec![failed(900, START_MS)]), START_MS)
        .expect("counted");
    let totals = service
        .snapshot(&kv, START_MS + 5_000)
        .expect("snapshot")
        .core
        .totals;
    assert_eq!((totals.decisions, totals.errors()), (6, 1));
}

#[test]
fn unreadable_state_fails_loudly_instead_of_counting_from_zero() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    count_decisions(&mut service, &kv, 0..5);
    kv.corrupt("core", "{\"next_seq\": \"five\"");
    let mut restarted = KpiService::new(KpiConfig::default());
    let error = restarted
        .view(&kv, View::FiveMinutes, None, START_MS)
        .expect_err("an unreadable core is an error");
    assert!(error.to_string().contains("core is unreadable"), "{error}");
    let one = page(vec![(5, decided(5, "norte", START_MS))]);
    assert!(restarted
        .count_log(&kv, &one, LogPosition::default(), START_MS)
        .is_err());
    assert_eq!(
        kv.get("core").expect("get").as_deref(),
        Some("{\"next_seq\": \"five\""),
        "the broken state is left for an operator, not overwritten"
    );
}

#[test]
fn a_decision_is_counted_from_its_row_only_and_refusals_need_no_position() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    service
        .count_refusals(
            &kv,
            &batch(
                "b-1",
                vec![failed(1, START_MS), decided(2, "norte", START_MS)],
            ),
            START_MS,
        )
        .expect("counted");
    let totals = totals_at_start(&mut service, &kv);
    assert_eq!((totals.decisions, totals.errors()), (0, 1));
    assert_eq!(KpiService::position(&kv).expect("position"), None);
}

#[test]
fn a_refusal_batch_sent_again_is_counted_once() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    let refusals = batch(
        "isolate-a:1",
        vec![failed(1, START_MS), failed(2, START_MS)],
    );
    service
        .count_refusals(&kv, &refusals, START_MS)
        .expect("counted");
    // Its answer was lost; the isolate sends it again.
    service
        .count_refusals(&kv, &refusals, START_MS)
        .expect("counted");
    let other = batch("isolate-b:1", vec![failed(3, START_MS)]);
    service
        .count_refusals(&kv, &other, START_MS)
        .expect("counted");
    let totals = totals_at_start(&mut service, &kv);
    assert_eq!(totals.errors(), 3);
    // The ids kept are a ring: many batches later the key holds only the newest ones.
    for n in 0..1_000 {
        let refusals = batch(&format!("isolate-c:{n}"), vec![failed(n, START_MS)]);
        service
            .count_refusals(&kv, &refusals, START_MS)
            .expect("counted");
    }
    let ids: Vec<String> =
        serde_json::from_str(&kv.get("refusal-batches").expect("get").expect("ids")).expect("json");
    assert_eq!(ids.len(), 256);
    assert_eq!(ids.last().map(String::as_str), Some("isolate-c:999"));
}

#[test]
fn storage_stays_bounded_after_100_000_decisions() {
    // 100,000 decisions at 1,000 a second on two branches, counted 500 rows a read as the
    // pump does, with refusals in between and the outbox sent after each read.
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    let check = |service: &mut KpiService, spacing_ms: i64, label: &str| -> u64 {
        let base = KpiService::position(&kv)
            .expect("position")
            .map_or(0, |position| position.decision_seq as usize);
        for chunk in 0..200 {
            let rows: Vec<(usize, Observation)> = (0..500)
                .map(|i| {
                    let id = base + chunk * 500 + i;
                    let at = START_MS + (id as i64) * spacing_ms;
                    (id, decided(id, ["norte", "sur"][id % 2], at))
                })
                .collect();
            let now = rows[rows.len() - 1].1.received_at_ms;
            service
                .count_log(&kv, &page(rows), LogPosition::default(), now)
                .expect("counted");
            service
                .count_refusals(
                    &kv,
                    &batch(&format!("{label}-{chunk}"), vec![failed(chunk, now)]),
                    now,
                )
                .expect("counted");
            loop {
                let sent = pending(&kv, 200).expect("pending");
                if sent.writes.is_empty() {
                    break;
                }
                acknowledge(&kv, &sent.writes).expect("acknowledged");
            }
        }
        let rows = kv.rows().expect("rows");
        println!("kpi object rows after 100,000 decisions {label}: {rows}");
        rows
    };
    let dense = check(&mut service, 1, "at 1,000/s (100 s of event time)");
    // Core, position, outbox sequence, and minute and hour windows of two branches and all.
    assert!(dense <= 24, "{dense} rows");
    // Another 100,000 spread over 28 hours: windows older than the allowed lateness (24 h)
    // and an hour are dropped, so the rows stay below that much of minute and hour windows
    // for each branch (norte, sur, the refusals' principal, and all).
    let spread = check(&mut service, 1_000, "spread over 28 hours");
    let bound = 4 * (25 * 60 + 5 + 26) + 3;
    assert!(spread <= bound, "{spread} rows, bound {bound}");
    assert!(
        spread > 1_000,
        "the day of minute windows is kept: {spread}"
    );
    assert_eq!(
        decisions_counted(&mut service, &kv, START_MS + 200_000_000),
        200_000
    );
}

#[test]
fn counts_from_a_version_that_counted_on_the_request_path_are_kept() {
    use valle_worker::kpi::pump::pump;
    use valle_worker::memory::{block_on, MemoryBackend};
    let backend = MemoryBackend::new(KpiConfig::default());
    // The earlier version left counts, per-request keys and no log position; D1 has two
    // decisions it already counted.
    backend
        .kv
        .apply(vec![
            KvOp::put(
                "core",
                serde_json::to_string(&valle_shared::monitoring::kpi::Core::default())
                    .expect("json"),
            ),
            KvOp::put("seen|r-1", "{}"),
            KvOp::put("failed|r-2", "1"),
        ])
        .expect("written");
    let model = valle_shared::Model::embedded().expect("model");
    for id in ["r-1", "r-2"] {
        let application =
            valle_shared::parse_application(support::VALID.as_bytes()).expect("valid");
        let incoming = valle_worker::pipeline::Incoming::posted(
            id.into(),
            Channel::Online,
            application,
            START_MS,
        );
        let record = valle_worker::pipeline::decision_record(model, incoming, Vec::new(), &|| 1.0)
            .expect("scored");
        block_on(valle_worker::pipeline::store_decisions(
            &backend,
            vec![record],
            None,
            START_MS,
        ))
        .expect("stored");
    }
    let now = || START_MS;
    let report = block_on(pump(&backend.kpi, &backend.kv, &backend, &now)).expect("pumped");
    assert_eq!(
        report.counted, 0,
        "the log up to now was counted by the earlier version"
    );
    assert_eq!(report.position.decision_seq, 2);
    let keys: Vec<String> = backend.kv.entries().into_keys().collect();
    assert!(
        keys.iter()
            .all(|key| !key.starts_with("seen|") && !key.starts_with("failed|")),
        "{keys:?}"
    );
}

#[test]
fn the_alarm_comes_soon_while_there_is_work_and_backs_off_while_there_is_none() {
    let check = |schedule: &Schedule, quiet: u32, worked: bool, expected: (i64, u32)| {
        assert_eq!(schedule.next(quiet, worked), expected, "{quiet} {worked}");
    };
    check(&SCHEDULE, 7, true, (250, 0));
    check(&SCHEDULE, 0, false, (250, 1));
    check(&SCHEDULE, 1, false, (500, 2));
    check(&SCHEDULE, 3, false, (2_000, 4));
    check(&SCHEDULE, 5, false, (5_000, 6));
    check(&SCHEDULE, 60, false, (5_000, 61));
}

#[test]
fn every_queued_write_reads_back_including_windows_with_latencies() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    count_decisions(&mut service, &kv, 0..200);
    count_late_decisions(&mut service, &kv, 1_000..1_003);
    let queued = kv.scan("outbox|", usize::MAX).expect("scan").len();
    let pending = pending(&kv, usize::MAX).expect("pending");
    assert_eq!(pending.set_aside, 0);
    assert_eq!(pending.writes.len(), queued);
    assert_eq!(queued_places(&pending).len(), 203);
    let count_windows = pending
        .writes
        .iter()
        .filter(|pending| matches!(pending.write, D1Write::CountWindow(_)))
        .count();
    assert_eq!(count_windows, 10);
    let windows = queued_windows(&pending);
    // Minutes 0, 1 and 2 closed, for all branches, "norte" and "sur".
    assert_eq!(windows.len(), 9);
    assert!(windows
        .values()
        .all(|window| window.stats.latency(Channel::Online).count() > 0));
    assert_eq!(windows, closed_windows(&kv));
}

#[test]
fn the_outbox_keeps_one_copy_of_each_window_the_newest() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    count_decisions(&mut service, &kv, 0..500);
    count_late_decisions(&mut service, &kv, 1_000..1_050);
    let pending = pending(&kv, usize::MAX).expect("pending");
    let event_window_writes = pending
        .writes
        .iter()
        .filter(|pending| matches!(pending.write, D1Write::EventWindow(_)))
        .count();
    let windows = queued_windows(&pending);
    assert_eq!(event_window_writes, windows.len());
    assert_eq!(windows, closed_windows(&kv));
    let first_minute = &windows[&format!("ew|1m|*|{START_MS:015}")];
    assert!(first_minute.revised);
    assert_eq!(first_minute.stats.count, 60 + 50);
}

#[test]
fn a_flush_reads_only_the_head_of_the_outbox_in_order() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    count_decisions(&mut service, &kv, 0..300);
    let all = pending(&kv, usize::MAX).expect("pending").writes;
    let head = pending(&kv, 200).expect("pending").writes;
    assert_eq!(head.len(), 200);
    assert_eq!(head[..], all[..200]);
    assert!(!is_empty(&kv).expect("outbox"));
    let mut rounds = 0;
    loop {
        let round = pending(&kv, 200).expect("pending").writes;
        if round.is_empty() {
            break;
        }
        acknowledge(&kv, &round).expect("acknowledged");
        rounds += 1;
    }
    assert_eq!(rounds, all.len().div_ceil(200));
    assert!(is_empty(&kv).expect("outbox"));
}

#[test]
fn a_window_changed_while_it_was_being_sent_is_sent_again() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    count_decisions(&mut service, &kv, 0..200);
    let sent = pending(&kv, usize::MAX).expect("pending").writes;
    // A late decision revises the first minute while the batch is on its way to D1.
    count_late_decisions(&mut service, &kv, 1_000..1_001);
    acknowledge(&kv, &sent).expect("acknowledged");
    let left = pending(&kv, usize::MAX).expect("pending");
    assert_eq!(queued_places(&left), [1_001]);
    let windows = queued_windows(&left);
    let revised: Vec<_> = windows.keys().map(String::as_str).collect();
    let minute = format!("{START_MS:015}");
    assert_eq!(
        revised,
        [format!("ew|1m|*|{minute}"), format!("ew|1m|norte|{minute}")]
    );
    let newest = closed_windows(&kv);
    for (key, window) in &windows {
        assert_eq!(Some(window), newest.get(key));
    }
    let counts: Vec<u64> = windows.values().map(|window| window.stats.count).collect();
    assert_eq!(counts, [60 + 1, 30 + 1]);
}

#[test]
fn an_unreadable_entry_is_moved_aside_and_does_not_block_the_rest() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    kv.apply(vec![
        KvOp::put("outbox|00000000000000000000", "{\"kind\":\"mystery\"}"),
        KvOp::put("outbox-seq", "1"),
    ])
    .expect("written");
    count_decisions(&mut service, &kv, 0..3);
    let head = pending(&kv, 2).expect("pending");
    assert_eq!(head.set_aside, 1);
    assert_eq!(head.writes.len(), 1);
    assert_eq!(
        kv.get("outbox-unreadable|outbox|00000000000000000000")
            .expect("get")
            .as_deref(),
        Some("{\"kind\":\"mystery\"}")
    );
    assert_eq!(kv.get("outbox|00000000000000000000").expect("get"), None);
    assert_eq!(pending(&kv, usize::MAX).expect("pending").set_aside, 0);
}

#[test]
fn minute_windows_are_evicted_once_past_the_lateness() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig {
        allowed_lateness_ms: 10 * MINUTE_MS,
        ..KpiConfig::default()
    });
    for id in 0..120 {
        let at = START_MS + id as i64 * MINUTE_MS;
        let one = page(vec![(id, decided(id, "norte", at))]);
        service
            .count_log(&kv, &one, LogPosition::default(), at)
            .expect("counted");
    }
    let minutes = kv.scan("ew|1m|norte|", usize::MAX).expect("scan").len();
    assert!(minutes <= 10 + 60 + 2, "{minutes} minute windows kept");
}
