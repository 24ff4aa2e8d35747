//! Loan outcomes against `wrangler dev` and its real D1: the model's 1,114 held-out rows
//! scored through `/api/v1/score/batch` and labelled give scikit-learn's figures through
//! `/api/v1/performance`, posting them again changes nothing, and bad batches get 4xx with
//! field codes and write nothing. Calibration and fairness alerts from load-generated
//! populations are in `loadgen.rs`.

mod accounts;

use serde_json::{json, Value};
use valle_shared::contract::codes::ErrorCode;
use valle_tests::{now_ms, random_uuid, Client};

use accounts::{call, score, Who, APPROVED};

/// The card's figures are rounded to four places; the edge's must be that close.
const TOLERANCE: f64 = 1e-4;

fn holdout() -> Value {
    serde_json::from_str(include_str!("../../models/holdout.json")).expect("holdout.json")
}

fn today() -> String {
    valle_shared::contract::time::format_rfc3339_ms(now_ms())
}

fn post_outcomes(client: &Client, who: Who, outcomes: &[Value]) -> valle_tests::Answer {
    let body = json!({ "outcomes": outcomes }).to_string();
    call(client, Some(who), "POST", "/api/v1/outcomes", Some(&body))
}

#[test]
fn the_held_out_rows_give_the_model_cards_figures_and_a_repeat_changes_nothing() {
    let client = Client::new();
    let holdout = holdout();
    let branch = format!("holdout-{}", &random_uuid()[..8]);
    let mut outcomes = Vec::new();
    let rows = holdout["rows"].as_array().expect("rows");
    for (chunk, rows) in rows.chunks(600).enumerate() {
        let applications: Vec<Value> = rows
            .iter()
            .map(|row| {
                let mut application = row["application"].clone();
                application["branch"] = json!(branch);
                application
            })
            .collect();
        let body = json!({ "applications": applications }).to_string();
        let answer = client.send(
            "POST",
            "/api/v1/score/batch",
            &[
                ("content-type", "application/json"),
                ("x-request-id", &format!("{branch}-{chunk}")),
                ("cf-connecting-ip", "10.0.77.1"),
            ],
            Some(body.as_bytes()),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let answer = answer.json();
        for (row, item) in rows
            .iter()
            .zip(answer["results"].as_array().expect("results"))
        {
            match item["request_id"].as_str() {
                Some(id) => {
                    let status = if row["bad"] == 1 { "bad" } else { "good" };
                    outcomes.push(
                        json!({ "request_id": id, "status": status, "observed_at": today() }),
                    );
                }
                None => {
                    assert_eq!(row["valid"], false, "{}", row["application"]);
                    assert_eq!(item["error"]["code"], ErrorCode::Validation.as_str());
                }
            }
        }
    }
    assert_eq!(
        outcomes.len(),
        1113,
        "one held-out row breaks amount ≤ 100 × income"
    );
    for chunk in outcomes.chunks(1000) {
        let answer = post_outcomes(&client, Who::Integrator, chunk);
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["recorded"], chunk.len());
    }
    let performance = |client: &Client| {
        let answer = call(
            client,
            Some(Who::Auditor),
            "GET",
            &format!("/api/v1/performance?branch={branch}&vintage=month"),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()
    };
    let report = performance(&client);
    assert_eq!(report["matured"], 1113);
    let reference = &holdout["valid_rows"];
    let card = &holdout["all_rows"];
    for figure in ["roc_auc", "ks", "brier"] {
        let edge = report["realized"][figure].as_f64().expect(figure);
        let want = reference[figure].as_f64().expect(figure);
        assert!(
            (edge - want).abs() <= TOLERANCE,
            "{figure}: edge {edge}, scikit-learn on the same 1,113 rows {want}"
        );
        eprintln!(
            "{figure}: edge {edge:.6}, scikit-learn (1,113 rows) {want:.6}, model card (1,114 rows) {:.6}",
            card[figure].as_f64().unwrap_or(f64::NAN)
        );
    }
    for chunk in outcomes.chunks(1000) {
        let answer = post_outcomes(&client, Who::Officer, chunk);
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["recorded"], 0);
        assert_eq!(answer.json()["unchanged"], chunk.len());
    }
    assert_eq!(performance(&client), report);
}

#[test]
fn bad_outcome_batches_get_field_codes_and_write_nothing() {
    let client = Client::new();
    let (id, _) = score(&client, APPROVED);
    let (other, _) = score(&client, APPROVED);
    let now = today();
    let future = valle_shared::contract::time::format_rfc3339_ms(now_ms() + 86_400_000);
    let item = |id: &str, status: &str, at: &str| json!({ "request_id": id, "status": status, "observed_at": at });
    let many: Vec<Value> = (0..1001)
        .map(|i| item(&format!("x-{i}"), "open", &now))
        .collect();
    // Each batch, and the field errors it gets.
    type Case = (Vec<Value>, &'static [(&'static str, ErrorCode)]);
    let cases: Vec<Case> = vec![
        (
            vec![
                item(&id, "good", &now),
                item("no-such-decision", "bad", &now),
            ],
            &[("outcomes[1].request_id", ErrorCode::NotFound)],
        ),
        (
            vec![item(&id, "paid", &now)],
            &[("outcomes[0].status", ErrorCode::Enum)],
        ),
        (
            vec![item(&id, "good", &future)],
            &[("outcomes[0].observed_at", ErrorCode::Range)],
        ),
        (
            vec![item(&id, "good", "2001-01-01")],
            &[("outcomes[0].observed_at", ErrorCode::Range)],
        ),
        (
            vec![
                item(&id, "good", &now),
                item(&other, "bad", &now),
                item(&id, "bad", &now),
            ],
            &[("outcomes[2].request_id", ErrorCode::Duplicate)],
        ),
        (many, &[("outcomes", ErrorCode::Range)]),
    ];
    for (items, fields) in cases {
        let answer = post_outcomes(&client, Who::Integrator, &items);
        assert_eq!(answer.status, 400, "{}", answer.text());
        let body = answer.json();
        assert_eq!(body["error"]["code"], ErrorCode::Validation.as_str());
        let got: Vec<(String, String)> = body["error"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| {
                (
                    f["field"].as_str().unwrap_or_default().to_owned(),
                    f["code"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = fields
            .iter()
            .map(|(f, c)| ((*f).to_owned(), c.as_str().to_owned()))
            .collect();
        assert_eq!(got, want);
    }
    let oversize = format!(r#"{{"outcomes":["{}"]}}"#, "x".repeat(300 * 1024));
    let answer = call(
        &client,
        Some(Who::Integrator),
        "POST",
        "/api/v1/outcomes",
        Some(&oversize),
    );
    assert_eq!(answer.status, 413, "{}", answer.text());
    // Nothing of the refused batches was stored: both outcomes are new now.
    let answer = post_outcomes(
        &client,
        Who::Integrator,
        &[item(&id, "good", &now), item(&other, "open", &now)],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["recorded"], 2);
    let decision = call(
        &client,
        Some(Who::Auditor),
        "GET",
        &format!("/api/v1/decisions/{id}"),
        None,
    );
    assert_eq!(decision.status, 200);
}
