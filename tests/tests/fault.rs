//! Nothing acknowledged is lost when the runtime dies. `cargo xtask test` runs the load
//! generator (event batches) against `wrangler dev`, kills the server's whole process group
//! with SIGKILL in the middle of the run (no shutdown, the local queue's messages die with
//! it), restarts it on the same state, and then runs `after_a_crash` with the ids the load
//! generator wrote to the file `VALLE_FAULT_IDS` names.

use std::time::{Duration, Instant};

use valle_shared::api::KpiResponse;
use valle_tests::load::{verify, RunIds, Verification};
use valle_tests::{count_windows_match, officer_token, Client};

/// Enough for the sweeper's alarm (one lease, 20 s, after the first batch) to fire after
/// the restart, and for a second sweep of events sent just before the crash.
const RECOVERY: Duration = Duration::from_secs(150);

fn metric(client: &Client, name: &str) -> Option<f64> {
    let text = client.officer_get("/metrics").text();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
}

#[test]
fn after_a_crash() {
    let path = std::env::var_os("VALLE_FAULT_IDS")
        .expect("VALLE_FAULT_IDS names the load generator's ids (cargo xtask test sets it)");
    let text = std::fs::read_to_string(&path).expect("the load generator wrote its ids");
    let ids: RunIds = serde_json::from_str(&text).expect("ids JSON");
    assert!(
        ids.accepted.len() >= 100,
        "the load ran before the crash: {} accepted",
        ids.accepted.len()
    );
    assert!(
        !ids.unanswered.is_empty(),
        "the crash happened while requests were in flight or still to come"
    );
    assert!(
        !ids.accepted_invalid.is_empty(),
        "some accepted events must end as dead letters"
    );

    let client = Client::new();
    let auth = format!("Bearer {}", officer_token());
    let tally = ids.tally();
    let started = Instant::now();
    let mut last: Option<Verification> = None;
    let mut missing_at_first = None;
    while started.elapsed() < RECOVERY {
        let verification = verify(&client, &tally, &ids.branch, &auth).expect("read the server");
        missing_at_first.get_or_insert(verification.missing.len());
        let done = verification.passed();
        last = Some(verification);
        if done {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let verification = last.expect("verified at least once");
    assert!(
        verification.passed(),
        "{} after {:?}; missing (first 5): {:?}; duplicated: {:?}; unexpected: {:?}; misrouted: {:?}",
        verification.summary(),
        started.elapsed(),
        verification.missing.iter().take(5).collect::<Vec<_>>(),
        verification.duplicated,
        verification.unexpected,
        verification.misrouted,
    );
    eprintln!(
        "recovered in {:.1} s: {}; {} missing right after the restart; {} unanswered ids",
        started.elapsed().as_secs_f64(),
        verification.summary(),
        missing_at_first.unwrap_or_default(),
        ids.unanswered.len()
    );

    // Every settled event left the inbox.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&client, "valle_inbox_events") != Some(0.0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(metric(&client, "valle_inbox_events"), Some(0.0));

    // The KPIs counted each of the branch's decisions once: no loss, no double count. The
    // branch's decisions are the accepted valid events plus the unanswered ones the server
    // had kept before it died.
    let stored = valle_tests::all_decisions(&client)
        .expect("decisions")
        .into_iter()
        .filter(|decision| decision.branch == ids.branch)
        .count() as u64;
    assert!(stored >= verification.decisions as u64);
    // The KPI object counts after the rows are stored, and the 24-hour view is cached for
    // 30 s, so this may take a refresh or two.
    let deadline = Instant::now() + Duration::from_secs(90);
    let counted = loop {
        let answer = client.officer_get(&format!("/api/v1/kpis?window=24h&branch={}", ids.branch));
        let view: KpiResponse = serde_json::from_slice(&answer.body).expect("kpi body");
        if view.view.summary.decisions == stored || Instant::now() >= deadline {
            break view.view.summary.decisions;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        counted, stored,
        "the branch's decisions are counted once each"
    );

    // Closed count windows still equal a recomputation from the stored rows.
    if let Err(difference) = count_windows_match(&client, 20, 1, 60) {
        panic!("closed count windows vs stored decisions after the crash: {difference}");
    }
}
