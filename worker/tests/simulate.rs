//! What-if simulations on the host: the report covers the newest stored applications, its
//! swaps agree with re-deciding each stored decision read back through the API, and bad
//! requests are refused with field codes.

mod support;

use serde_json::{json, Value};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateLimit;
use valle_shared::decision::model::spec::Thresholds;
use valle_shared::decision::model::{classify, Decision};
use valle_shared::decision::policy::{decide, Policy};
use valle_shared::Application;
use valle_worker::http::RequestHead;

use support::Harness;

const SUPERVISOR: &str = "tok-supervisor";

/// Scores the golden rows one by one, ids `g-0`, `g-1`, …
fn score_golden(harness: &Harness, rows: usize) {
    let golden: Value =
        serde_json::from_str(include_str!("../../models/golden.json")).expect("golden");
    for (index, row) in golden["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .take(rows)
        .enumerate()
    {
        let head = RequestHead::new("POST", "/api/v1/score")
            .with_header("content-type", "application/json")
            .with_header("x-request-id", &format!("g-{index}"))
            .with_header("cf-connecting-ip", "203.0.113.9");
        let response = harness.send(head, &row["application"].to_string());
        assert_eq!(response.status, 200);
    }
}

fn simulate(harness: &Harness, body: &Value) -> (u16, Value) {
    harness.as_account(SUPERVISOR, "POST", "/api/v1/simulate", &body.to_string())
}

#[test]
fn the_swaps_are_what_re_deciding_the_stored_rows_gives() {
    let harness = Harness::new(RateLimit::default());
    score_golden(&harness, 120);
    let thresholds = Thresholds {
        review: 0.3,
        decline: 0.45,
    };
    let (status, report) = simulate(
        &harness,
        &json!({"last": 100, "thresholds": {"review": 0.3, "decline": 0.45}}),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows"], 100);
    // Independently: every stored decision read back, the newest 100 re-decided here.
    let policy = Policy::committed().expect("policy");
    let mut moves = std::collections::BTreeMap::new();
    let mut unchanged = 0;
    for index in 20..120 {
        let (status, stored) = harness.as_account(
            SUPERVISOR,
            "GET",
            &format!("/api/v1/decisions/g-{index}"),
            "",
        );
        assert_eq!(status, 200);
        let application: Application =
            serde_json::from_value(stored["application"].clone()).expect("application");
        let probability = stored["score"]["probability"].as_f64().expect("p") as f32;
        let given: Decision =
            serde_json::from_value(stored["score"]["decision"].clone()).expect("d");
        let (_, model_decision, _) = classify(probability, thresholds);
        let redecided = decide(model_decision, &policy.evaluate(&application));
        if redecided == given {
            unchanged += 1;
        } else {
            *moves
                .entry((given.as_str(), redecided.as_str()))
                .or_insert(0) += 1;
        }
    }
    assert_eq!(report["unchanged"], unchanged);
    let reported: std::collections::BTreeMap<(&str, &str), u64> = report["swaps"]
        .as_array()
        .expect("swaps")
        .iter()
        .map(|swap| {
            (
                (
                    swap["from"].as_str().expect("from"),
                    swap["to"].as_str().expect("to"),
                ),
                swap["count"].as_u64().expect("count"),
            )
        })
        .collect();
    assert!(!moves.is_empty(), "the stricter cut-offs move someone");
    assert_eq!(reported, moves);
    // Examples are the newest of each swap.
    let first = &report["swaps"][0]["examples"][0];
    assert!(
        first.as_str().is_some_and(|id| id.starts_with("g-")),
        "{report}"
    );
    // The model's own thresholds with the rules reproduce the decisions as given.
    let (_, same) = simulate(&harness, &json!({}));
    assert_eq!(
        (same["rows"].as_u64(), same["unchanged"].as_u64()),
        (Some(120), Some(120))
    );
    assert_eq!(same["current"], same["candidate"]);
}

#[test]
fn bad_simulations_are_refused_with_field_codes() {
    let harness = Harness::new(RateLimit::default());
    for (body, field, code) in [
        (json!({"last": 0}), "last", ErrorCode::Range.as_str()),
        (json!({"last": 20000}), "last", ErrorCode::Range.as_str()),
        (
            json!({"thresholds": {"review": 0.7, "decline": 0.2}}),
            "thresholds",
            ErrorCode::Cross.as_str(),
        ),
        (
            json!({"policy": "maybe"}),
            "policy",
            ErrorCode::Enum.as_str(),
        ),
        (
            json!({"strategy": 1}),
            "strategy",
            ErrorCode::UnknownField.as_str(),
        ),
    ] {
        let (status, answer) = simulate(&harness, &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(
            answer["error"]["code"],
            ErrorCode::Validation.as_str(),
            "{answer}"
        );
        assert_eq!(answer["error"]["fields"][0]["field"], field, "{answer}");
        assert_eq!(answer["error"]["fields"][0]["code"], code, "{answer}");
    }
    let (status, answer) = harness.as_account(SUPERVISOR, "POST", "/api/v1/simulate", "[");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some(ErrorCode::Json.as_str()))
    );
}
