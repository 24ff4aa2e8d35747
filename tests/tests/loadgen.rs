//! The load generator, run as users run it (the `loadgen` binary, `--json`), against the
//! `wrangler dev` that `cargo xtask test` starts: short runs whose `--verify` proves every
//! accepted record was stored exactly once, and a drift run the monitoring must notice.

use std::process::Command;
use valle_shared::contract::codes::ErrorCode;

use serde_json::Value;
use valle_tests::{base_url, eventually, officer_token, random_uuid, Client};

/// Runs loadgen with the options `args` (as typed on a command line) on its own branch;
/// returns its exit success and JSON report.
fn loadgen(branch: &str, args: &str) -> (bool, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args.split_whitespace())
        .args(["--branch", branch, "--base-url", &base_url(), "--json"])
        .env("VALLE_OFFICER_TOKEN", officer_token())
        .output()
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "loadgen printed no JSON report ({error}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), report)
}

fn count(report: &Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no count at {pointer}: {report}"))
}

fn branch(name: &str) -> String {
    format!("lg-{name}-{}", &random_uuid()[..8])
}

#[test]
fn event_batches_with_invalid_duplicate_and_late_events_are_stored_exactly_once() {
    let (ok, report) = loadgen(
        &branch("events"),
        "--target events --batch 20 --rate 4 --count 12 --invalid-pct 10 --duplicate-pct 10 --late-pct 10 --clients 4 --verify",
    );
    assert!(ok, "{report:#}");
    assert_eq!(count(&report, "/sent"), 12);
    assert_eq!(count(&report, "/records"), 240);
    // Events are acknowledged one by one, invalid ones too: they go to the dead letters.
    assert_eq!(count(&report, "/accepted_records"), 240, "{report:#}");
    assert_eq!(count(&report, "/transport_errors"), 0);
    let verification = &report["verification"];
    let accepted = count(verification, "/accepted");
    assert_eq!(
        count(verification, "/decisions") + count(verification, "/dead_letters"),
        accepted
    );
    assert!(count(verification, "/dead_letters") > 0, "{verification:#}");
    for list in ["missing", "duplicated", "unexpected", "misrouted"] {
        assert_eq!(verification[list], Value::Array(vec![]), "{list}");
    }
}

#[test]
fn scores_at_a_steady_rate_are_stored_once_and_invalid_ones_refused() {
    let (ok, report) = loadgen(
        &branch("score"),
        "--target score --rate 20 --count 120 --invalid-pct 10 --duplicate-pct 10 --clients 8 --verify",
    );
    assert!(ok, "{report:#}");
    assert_eq!(count(&report, "/sent"), 120);
    let rejected = count(
        &report,
        &format!("/rejected_by_code/{}", ErrorCode::Validation),
    );
    assert!(rejected > 0, "{report:#}");
    assert_eq!(
        count(&report, "/accepted_records") + rejected,
        120,
        "{report:#}"
    );
    assert!(count(&report, "/replayed") > 0, "{report:#}");
    let verification = &report["verification"];
    assert_eq!(count(verification, "/dead_letters"), 0);
    assert_eq!(
        count(verification, "/decisions"),
        count(&report, "/accepted_records") - count(&report, "/replayed")
    );
    let latency = &report["latency_ms"];
    assert!(latency["p50"].as_f64() <= latency["p99"].as_f64());
}

#[test]
fn a_drifted_population_is_flagged_on_its_branch_and_a_normal_one_is_not() {
    let normal = branch("steady");
    let drifted = branch("drift");
    for (name, drift) in [(&normal, None), (&drifted, Some("income*0.4"))] {
        let mut args =
            "--target events --batch 50 --rate 4 --count 4 --clients 4 --verify".to_owned();
        if let Some(shift) = drift {
            args.push_str(&format!(" --drift {shift}"));
        }
        let (ok, report) = loadgen(name, &args);
        assert!(ok, "{report:#}");
    }
    let client = Client::new();
    let psi = |branch: &str, feature: &str| {
        // Stored decisions are counted just after they are stored.
        let drift = eventually(30, "the drift report to count every decision", || {
            let drift = client
                .officer_get(&format!("/api/v1/drift?branch={branch}"))
                .json();
            (drift["rolling_24h"]["decisions"] == 200).then_some(drift)
        });
        let summary = &drift["rolling_24h"];
        assert_eq!(summary["enough_data"], true);
        let feature = summary["features"]
            .as_array()
            .and_then(|features| features.iter().find(|f| f["feature"] == feature))
            .unwrap_or_else(|| panic!("no {feature} in {drift:#}"));
        (
            feature["psi"].as_f64().unwrap_or(f64::NAN),
            summary["alerts"].as_array().map_or(0, Vec::len),
        )
    };
    let (steady_income, steady_alerts) = psi(&normal, "income");
    assert!(steady_income < 0.1, "steady income PSI {steady_income}");
    assert_eq!(steady_alerts, 0);
    let (drifted_income, drifted_alerts) = psi(&drifted, "income");
    assert!(drifted_income >= 0.2, "drifted income PSI {drifted_income}");
    assert!(drifted_alerts >= 1);
}

/// `GET /api/v1/performance` and `/api/v1/fairness` of one branch, as an auditor.
fn figures(client: &Client, branch: &str) -> (Value, Value) {
    let get = |path: String| {
        let answer = client.officer_get(&path);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        answer.json()
    };
    (
        get(format!("/api/v1/performance?branch={branch}")),
        get(format!("/api/v1/fairness?branch={branch}")),
    )
}

fn calibration_alert(performance: &Value) -> bool {
    performance["vintages"]
        .as_array()
        .is_some_and(|vintages| vintages.iter().any(|v| v["alert"] == true))
}

fn fairness_alert(fairness: &Value, attribute: &str) -> (bool, f64) {
    let entry = fairness["attributes"]
        .as_array()
        .and_then(|all| all.iter().find(|a| a["attribute"] == attribute))
        .unwrap_or_else(|| panic!("no {attribute} in {fairness:#}"));
    (
        entry["alert"] == true,
        entry["min_ratio"].as_f64().unwrap_or(f64::NAN),
    )
}

/// A population whose loans default more than the model predicts raises the calibration
/// alert on its branch; one skewed against an age band breaks the four-fifths rule there;
/// a population like the training one raises neither. `norte` and `sur` are monitored
/// branches (`MONITORED_BRANCHES`), so `/metrics` names them too.
#[test]
fn load_populations_raise_the_calibration_and_fairness_alerts_they_should() {
    let steady = branch("steady");
    let runs = [
        ("norte", "--drift income*0.4 --outcomes 0.15"),
        ("sur", "--skew-age 46-55 --outcomes 0"),
        (&steady, "--outcomes 0"),
    ];
    for (name, extra) in runs {
        let args = format!("--target batch --batch 500 --count 2 {extra}");
        let (ok, report) = loadgen(name, &args);
        assert!(ok, "{report:#}");
        assert_eq!(count(&report, "/outcomes/recorded"), 1000, "{report:#}");
    }
    let client = Client::new();
    let (drifted, _) = figures(&client, "norte");
    assert!(calibration_alert(&drifted), "{drifted:#}");
    let (skewed_performance, skewed) = figures(&client, "sur");
    assert!(
        !calibration_alert(&skewed_performance),
        "{skewed_performance:#}"
    );
    let (skewed_alert, skewed_ratio) = fairness_alert(&skewed, "age_band");
    assert!(skewed_alert && skewed_ratio < 0.8, "{skewed:#}");
    let (steady_performance, steady_fairness) = figures(&client, &steady);
    assert!(
        !calibration_alert(&steady_performance),
        "{steady_performance:#}"
    );
    let (steady_alert, steady_ratio) = fairness_alert(&steady_fairness, "age_band");
    eprintln!("age-band disparate impact: skewed {skewed_ratio:.3}, steady {steady_ratio:.3}");
    assert!(!steady_alert && steady_ratio >= 0.8, "{steady_fairness:#}");
    let metrics = client.officer_get("/metrics").text();
    for line in [
        "valle_calibration_alert{branch=\"norte\"} 1",
        "valle_calibration_alert{branch=\"sur\"} 0",
        "valle_fairness_alert{branch=\"sur\",attribute=\"age_band\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from /metrics");
    }
}
