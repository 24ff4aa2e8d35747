//! KPIs and decisions survive a restart of `wrangler dev`: `cargo xtask test` runs
//! `before_restart`, restarts the server on the same local state, then `after_restart`.
//! The snapshot between the two lives in the file `VALLE_RESTART_SNAPSHOT` names.

use serde_json::{json, Value};
use valle_tests::{eventually, random_uuid, wait_until_counted, Client};

const VALID: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;

fn snapshot_path() -> std::path::PathBuf {
    std::env::var_os("VALLE_RESTART_SNAPSHOT")
        .map(Into::into)
        .unwrap_or_else(|| std::env::temp_dir().join("valle-kpi-before-restart.json"))
}

/// What must not change across a restart: all-time counters, the last closed count
/// window, the aggregator's stream position, and one stored decision.
fn observe(client: &Client, decision_id: &str) -> Value {
    let metrics = client.officer_get("/metrics").text();
    let counters: Vec<String> = metrics
        .lines()
        .filter(|line| {
            // The rolling 5-minute figures move with the clock; the all-time ones must not.
            line.starts_with("valle_")
                && !line.starts_with("valle_recent")
                && (line.contains("_total") || line.contains("_count ") || line.contains("_count{"))
        })
        .map(str::to_owned)
        .collect();
    let windows = client.officer_get("/api/v1/kpis/windows?limit=1").json();
    let decision = client
        .officer_get(&format!("/api/v1/decisions/{decision_id}"))
        .json();
    json!({ "decision_id": decision_id, "counters": counters, "last_window": windows["windows"][0], "decision": decision })
}

/// Scores the valid application under `id` from one fixed address.
fn score(client: &Client, id: &str) -> valle_tests::Answer {
    client.send(
        "POST",
        "/api/v1/score",
        &[
            ("content-type", "application/json"),
            ("x-request-id", id),
            ("cf-connecting-ip", "10.0.9.1"),
        ],
        Some(VALID.as_bytes()),
    )
}

fn decisions_total(snapshot: &Value) -> u64 {
    snapshot["counters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|line| line.starts_with("valle_decisions_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn before_restart() {
    let client = Client::new();
    let id = random_uuid();
    let answer = score(&client, &id);
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Counting happens after the answers; the snapshot waits until nothing moves any more.
    wait_until_counted(&client, &[&id], 30);
    let snapshot = eventually(60, "the counters to settle", || {
        let first = observe(&client, &id);
        std::thread::sleep(std::time::Duration::from_millis(1_500));
        (observe(&client, &id) == first).then_some(first)
    });
    assert!(
        decisions_total(&snapshot) > 0,
        "the earlier tests made decisions"
    );
    assert!(
        snapshot["last_window"].is_object(),
        "the earlier tests closed a count window"
    );
    std::fs::write(snapshot_path(), snapshot.to_string()).expect("write the snapshot");
}

#[test]
fn after_restart() {
    let client = Client::new();
    let text = std::fs::read_to_string(snapshot_path())
        .expect("before_restart ran first and wrote its snapshot");
    let before: Value = serde_json::from_str(&text).expect("snapshot JSON");
    let id = before["decision_id"]
        .as_str()
        .expect("decision id")
        .to_owned();
    let after = observe(&client, &id);
    assert_eq!(
        after, before,
        "KPIs and the stored decision are unchanged by the restart"
    );
    // Counting goes on from where it stopped.
    let next = random_uuid();
    let answer = score(&client, &next);
    assert_eq!(answer.status, 200, "{}", answer.text());
    wait_until_counted(&client, &[&next], 30);
    let later = observe(&client, &id);
    assert_eq!(decisions_total(&later), decisions_total(&before) + 1);
    // A replay of the decision made before the restart is still a replay.
    let replay = score(&client, &id);
    assert_eq!(replay.json()["replayed"], true);
}
