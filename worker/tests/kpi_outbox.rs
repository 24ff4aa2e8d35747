//! The KPI object's outbox to D1: what it queues, how much of it a flush reads, and that
//! every write comes back out readable and is forgotten only once D1 has the newest copy.

use std::collections::BTreeMap;

use valle_shared::kpi::{EventWindow, KpiConfig, Observation, Outcome};
use valle_shared::model::{Band, Decision};
use valle_worker::kpi_object::{D1Write, KpiService, KvStore, Pending};
use valle_worker::memory::MemoryKv;

const START_MS: i64 = 1_795_428_000_000;

fn decided(id: usize, branch: &str, at_ms: i64) -> Observation {
    Observation {
        request_id: format!("r-{id}"),
        branch: branch.to_owned(),
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

/// Records `count` decisions one call each, a second apart, as the queue and the score
/// route do.
fn record_decisions(service: &mut KpiService, kv: &MemoryKv, ids: std::ops::Range<usize>) {
    for id in ids {
        let at_ms = START_MS + id as i64 * 1_000;
        let branch = ["norte", "sur"][id % 2];
        service.record(kv, &[decided(id, branch, at_ms)], at_ms);
    }
}

/// Records decisions about the first minute that arrive after it closed (but well within
/// the allowed lateness), so each one revises that minute's windows.
fn record_late_decisions(service: &mut KpiService, kv: &MemoryKv, ids: std::ops::Range<usize>) {
    for id in ids {
        let mut late = decided(id, "norte", START_MS + 30_000);
        late.received_at_ms = START_MS + 600_000;
        service.record(kv, &[late], START_MS + 600_000);
    }
}

/// The object's own copy of every closed event-time window (the ones D1 receives), by key.
fn closed_windows(kv: &MemoryKv) -> BTreeMap<String, EventWindow> {
    kv.scan("ew|", usize::MAX)
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

/// How many of the writes are of one kind.
fn count_of(pending: &Pending, kind: fn(&D1Write) -> bool) -> usize {
    pending
        .writes
        .iter()
        .filter(|pending| kind(&pending.write))
        .count()
}

#[test]
fn every_queued_write_reads_back_including_windows_with_latencies() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    record_decisions(&mut service, &kv, 0..200);
    record_late_decisions(&mut service, &kv, 1_000..1_003);
    let queued = kv.scan("outbox|", usize::MAX).len();
    let pending = KpiService::pending(&kv, usize::MAX);
    assert_eq!(pending.set_aside, 0);
    assert_eq!(pending.writes.len(), queued);
    let places = count_of(&pending, |w| matches!(w, D1Write::DecisionPlace { .. }));
    assert_eq!(places, 203);
    let count_windows = count_of(&pending, |w| matches!(w, D1Write::CountWindow(_)));
    assert_eq!(count_windows, 10);
    let windows = queued_windows(&pending);
    // Minutes 0, 1 and 2 closed, for all branches, "norte" and "sur".
    assert_eq!(windows.len(), 9);
    assert!(windows
        .values()
        .all(|window| window.stats.latency_ms.count() > 0));
    assert_eq!(windows, closed_windows(&kv));
}

#[test]
fn the_outbox_keeps_one_copy_of_each_window_the_newest() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    record_decisions(&mut service, &kv, 0..500);
    record_late_decisions(&mut service, &kv, 1_000..1_050);
    let pending = KpiService::pending(&kv, usize::MAX);
    let event_window_writes = count_of(&pending, |w| matches!(w, D1Write::EventWindow(_)));
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
    record_decisions(&mut service, &kv, 0..300);
    let all = KpiService::pending(&kv, usize::MAX).writes;
    let head = KpiService::pending(&kv, 200).writes;
    assert_eq!(head.len(), 200);
    assert_eq!(head[..], all[..200]);
    assert!(!KpiService::outbox_is_empty(&kv));
    let mut rounds = 0;
    loop {
        let round = KpiService::pending(&kv, 200).writes;
        if round.is_empty() {
            break;
        }
        KpiService::acknowledge(&kv, &round);
        rounds += 1;
    }
    assert_eq!(rounds, all.len().div_ceil(200));
    assert!(KpiService::outbox_is_empty(&kv));
}

#[test]
fn a_window_changed_while_it_was_being_sent_is_sent_again() {
    let kv = MemoryKv::default();
    let mut service = KpiService::new(KpiConfig::default());
    record_decisions(&mut service, &kv, 0..200);
    let sent = KpiService::pending(&kv, usize::MAX).writes;
    // A late decision revises the first minute while the batch is on its way to D1.
    record_late_decisions(&mut service, &kv, 1_000..1_001);
    KpiService::acknowledge(&kv, &sent);
    let left = KpiService::pending(&kv, usize::MAX);
    let places: Vec<_> = left
        .writes
        .iter()
        .filter_map(|pending| match &pending.write {
            D1Write::DecisionPlace { request_id, .. } => Some(request_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(places, ["r-1000"]);
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
    kv.put("outbox|00000000000000000000", "{\"kind\":\"mystery\"}");
    kv.put("outbox-seq", "1");
    record_decisions(&mut service, &kv, 0..3);
    let pending = KpiService::pending(&kv, 2);
    assert_eq!(pending.set_aside, 1);
    assert_eq!(pending.writes.len(), 1);
    assert_eq!(
        kv.get("outbox-unreadable|outbox|00000000000000000000")
            .as_deref(),
        Some("{\"kind\":\"mystery\"}")
    );
    assert_eq!(kv.get("outbox|00000000000000000000"), None);
    assert_eq!(KpiService::pending(&kv, usize::MAX).set_aside, 0);
}
