//! Loan outcomes on the host: the held-out rows scored in batches and labelled reproduce
//! scikit-learn's figures through `GET /api/v1/performance`, a repeat changes nothing, a
//! matured outcome replaces an open one once and is audited, and bad batches are refused
//! with field codes and write nothing.

mod support;

use std::collections::BTreeMap;
use valle_shared::contract::codes::ErrorCode;

use serde_json::{json, Value};
use valle_shared::contract::ops::RateLimit;
use valle_shared::contract::time::format_rfc3339_ms;
use valle_shared::lending::audit::AuditAction;
use valle_shared::outcomes::fairness::age_band;
use valle_worker::http::RequestHead;

use support::{ok_json, Harness, TOKEN, VALID};

const INTEGRATOR: &str = "tok-integrator";

fn post_outcomes(harness: &Harness, token: &str, body: &Value) -> (u16, Value) {
    harness.as_account(token, "POST", "/api/v1/outcomes", &body.to_string())
}

/// Scores `applications` as one batch with request id `batch`; the stored id and decision
/// of each item that was accepted, by index.
fn score_batch(
    harness: &Harness,
    batch: &str,
    applications: &[Value],
) -> Vec<Option<(String, String)>> {
    let head = RequestHead::new("POST", "/api/v1/score/batch")
        .with_header("content-type", "application/json")
        .with_header("x-request-id", batch)
        .with_header("cf-connecting-ip", "203.0.113.7");
    let body = json!({ "applications": applications }).to_string();
    let response = harness.send(head, &body);
    let answer = ok_json(&response);
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|item| {
            let id = item["request_id"].as_str()?;
            let decision = item["score"]["decision"].as_str()?;
            Some((id.to_owned(), decision.to_owned()))
        })
        .collect()
}

fn outcome(id: &str, status: &str, at: &str) -> Value {
    json!({ "request_id": id, "status": status, "observed_at": at })
}

fn audit_rows(harness: &Harness, action: AuditAction) -> usize {
    harness
        .backend
        .d1
        .audit
        .borrow()
        .iter()
        .filter(|entry| entry.event.action == action)
        .count()
}

fn today(harness: &Harness) -> String {
    format_rfc3339_ms(harness.clock.0.get() as i64)
}

#[test]
fn the_held_out_rows_reproduce_scikit_learns_figures_and_a_repeat_changes_nothing() {
    let harness = Harness::new(RateLimit::default());
    let holdout: Value =
        serde_json::from_str(include_str!("../../models/holdout.json")).expect("holdout.json");
    let rows = holdout["rows"].as_array().expect("rows");
    let mut labelled = Vec::new();
    // Decisions and declines by age band, counted from the answers.
    let mut by_band: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (chunk, rows) in rows.chunks(1000).enumerate() {
        let applications: Vec<Value> = rows.iter().map(|row| row["application"].clone()).collect();
        let ids = score_batch(&harness, &format!("holdout-{chunk}"), &applications);
        for (row, id) in rows.iter().zip(ids) {
            assert_eq!(id.is_some(), row["valid"] == true, "{}", row["application"]);
            if let Some((id, decision)) = id {
                let age = row["application"]["age"].as_u64().expect("age") as u32;
                let band = by_band.entry(age_band(age)).or_default();
                band.0 += 1;
                band.1 += u64::from(decision == "decline");
                let status = if row["bad"] == 1 { "bad" } else { "good" };
                labelled.push(outcome(&id, status, &today(&harness)));
            }
        }
    }
    assert_eq!(labelled.len(), 1113);
    harness.advance(60_000);
    let post_all = |expect_recorded: usize| {
        for chunk in labelled.chunks(1000) {
            let (status, answer) =
                post_outcomes(&harness, INTEGRATOR, &json!({ "outcomes": chunk }));
            assert_eq!(status, 200, "{answer}");
            assert_eq!(
                answer["recorded"],
                if expect_recorded > 0 { chunk.len() } else { 0 }
            );
            assert_eq!(
                answer["unchanged"],
                if expect_recorded > 0 { 0 } else { chunk.len() }
            );
        }
    };
    post_all(1113);
    let (status, report) = harness.officer("/api/v1/performance?vintage=month");
    assert_eq!(status, 200, "{report}");
    let reference = &holdout["valid_rows"];
    for figure in ["roc_auc", "ks", "brier", "gini"] {
        let got = report["realized"][figure].as_f64().expect(figure);
        let want = reference[figure].as_f64().expect(figure);
        assert!((got - want).abs() < 1e-6, "{figure}: {got} against {want}");
    }
    assert_eq!(report["matured"], 1113);
    assert_eq!(report["unreported"], 0);
    let audited = audit_rows(&harness, AuditAction::OutcomesRecorded);
    assert_eq!(audited, 2);
    post_all(0);
    assert_eq!(audit_rows(&harness, AuditAction::OutcomesRecorded), audited);
    let (_, again) = harness.officer("/api/v1/performance");
    assert_eq!(again["realized"], report["realized"]);
    let (_, fairness) = harness.officer("/api/v1/fairness");
    let age = &fairness["attributes"][0];
    let reported: BTreeMap<String, (u64, u64)> = age["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            let decisions = g["decisions"].as_u64().expect("decisions");
            let declined = g["declined"].as_u64().expect("declined");
            (
                g["group"].as_str().expect("group").to_owned(),
                (decisions, declined),
            )
        })
        .collect();
    assert_eq!(reported, by_band);
    eprintln!(
        "held-out rows: age disparate impact {} (most favoured {}), TPR gap {}; marital {}",
        age["min_ratio"],
        age["most_favoured"],
        age["tpr_gap"],
        fairness["attributes"][1]["min_ratio"]
    );
}

#[test]
fn a_matured_outcome_replaces_an_open_one_once_and_is_audited() {
    let harness = Harness::new(RateLimit::default());
    assert_eq!(harness.score("loan-1").status, 200);
    harness.advance(86_400_000);
    let open = json!({ "outcomes": [outcome("loan-1", "open", &today(&harness))] });
    assert_eq!(post_outcomes(&harness, TOKEN, &open).1["recorded"], 1);
    let (_, report) = harness.officer("/api/v1/performance");
    assert_eq!(
        (report["open"].as_u64(), report["matured"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(report["realized"], Value::Null);
    harness.advance(86_400_000);
    let bad = json!({ "outcomes": [outcome("loan-1", "bad", &today(&harness))] });
    let (status, answer) = post_outcomes(&harness, "tok-officer", &bad);
    assert_eq!(
        (status, answer["replaced"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    let audit = harness
        .backend
        .d1
        .audit
        .borrow()
        .last()
        .cloned()
        .expect("a row");
    assert_eq!(audit.event.actor, "ana@coop.example");
    let detail: Value = serde_json::from_str(&audit.event.detail).expect("detail");
    assert_eq!(detail["replaced_open"][0][0], "loan-1");
    assert_eq!(detail["replaced_open"][0][1], "bad");
    let good = json!({ "outcomes": [outcome("loan-1", "good", &today(&harness))] });
    let (status, answer) = post_outcomes(&harness, TOKEN, &good);
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["fields"][0]["code"],
        ErrorCode::Final.as_str(),
        "{answer}"
    );
    assert_eq!(post_outcomes(&harness, TOKEN, &bad).1["unchanged"], 1);
}

#[test]
fn bad_batches_get_field_codes_and_write_nothing() {
    let harness = Harness::new(RateLimit::default());
    assert_eq!(harness.score("loan-1").status, 200);
    assert_eq!(harness.score_body("loan-2", VALID).status, 200);
    harness.advance(60_000);
    let now = today(&harness);
    let future = format_rfc3339_ms(harness.clock.0.get() as i64 + 86_400_000);
    let many: Vec<Value> = (0..1001)
        .map(|i| outcome(&format!("x{i}"), "open", &now))
        .collect();
    let check = |body: String, status: u16, fields: &[(&str, &str)]| {
        let audit = harness.backend.d1.audit.borrow().len();
        let response = harness.send(
            RequestHead::new("POST", "/api/v1/outcomes")
                .with_header("authorization", &format!("Bearer {TOKEN}"))
                .with_header("content-type", "application/json"),
            &body,
        );
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        assert_eq!(response.status, status, "{body:.80}: {answer}");
        let got: Vec<(String, String)> = answer["error"]["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| {
                        (
                            f["field"].as_str().unwrap_or_default().to_owned(),
                            f["code"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let want: Vec<(String, String)> = fields
            .iter()
            .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(got, want, "{body:.80}");
        assert!(
            harness.backend.d1.loan_outcomes.borrow().is_empty(),
            "{body:.80}"
        );
        assert_eq!(harness.backend.d1.audit.borrow().len(), audit);
    };
    let body = |items: Vec<Value>| json!({ "outcomes": items }).to_string();
    check(
        body(vec![
            outcome("loan-1", "good", &now),
            outcome("nobody", "bad", &now),
        ]),
        400,
        &[("outcomes[1].request_id", ErrorCode::NotFound.as_str())],
    );
    check(
        body(vec![outcome("loan-1", "paid", &now)]),
        400,
        &[("outcomes[0].status", ErrorCode::Enum.as_str())],
    );
    check(
        body(vec![outcome("loan-1", "good", &future)]),
        400,
        &[("outcomes[0].observed_at", ErrorCode::Range.as_str())],
    );
    check(
        body(vec![outcome("loan-1", "good", "2020-01-01")]),
        400,
        &[("outcomes[0].observed_at", ErrorCode::Range.as_str())],
    );
    check(
        body(vec![
            outcome("loan-2", "good", &now),
            outcome("loan-2", "bad", &now),
        ]),
        400,
        &[("outcomes[1].request_id", ErrorCode::Duplicate.as_str())],
    );
    check(body(many), 400, &[("outcomes", ErrorCode::Range.as_str())]);
    check(
        format!(r#"{{"outcomes":["{}"]}}"#, "x".repeat(300 * 1024)),
        413,
        &[],
    );
    check("{".to_owned(), 400, &[]);
}

#[test]
fn an_integrator_posts_outcomes_and_reads_nothing() {
    let harness = Harness::new(RateLimit::default());
    assert_eq!(harness.score("loan-1").status, 200);
    let (status, _) = harness.as_account(INTEGRATOR, "GET", "/api/v1/performance", "");
    assert_eq!(status, 403);
    let (status, _) = harness.as_account(INTEGRATOR, "GET", "/api/v1/decisions/loan-1", "");
    assert_eq!(status, 403);
    let body = json!({ "outcomes": [outcome("loan-1", "good", &today(&harness))] });
    assert_eq!(post_outcomes(&harness, INTEGRATOR, &body).0, 200);
}

#[test]
fn performance_and_fairness_queries_are_checked() {
    let harness = Harness::new(RateLimit::default());
    for (target, field) in [
        ("/api/v1/performance?vintage=week", "vintage"),
        ("/api/v1/performance?from=yesterday", "from"),
        ("/api/v1/fairness?band=alto", "band"),
        (
            "/api/v1/fairness?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "to",
        ),
    ] {
        let (status, answer) = harness.officer(target);
        assert_eq!(status, 400, "{target}");
        assert_eq!(answer["error"]["fields"][0]["field"], field, "{target}");
    }
    assert_eq!(harness.score("loan-1").status, 200);
    let (status, report) = harness.officer("/api/v1/fairness?branch=principal");
    assert_eq!(status, 200);
    assert_eq!(report["attributes"][0]["attribute"], "age_band");
    assert_eq!(report["attributes"][0]["groups"][0]["decisions"], 1);
    let (_, elsewhere) = harness.officer("/api/v1/fairness?branch=norte");
    assert_eq!(elsewhere["attributes"][0]["groups"], json!([]));
}

/// `valle_tests::sample`-like applications of branch `branch`, scored one by one.
fn score_in_branch(harness: &Harness, prefix: &str, branch: &str, count: usize) -> Vec<String> {
    let mut application: Value = serde_json::from_str(VALID).expect("valid");
    application["branch"] = json!(branch);
    (0..count)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let response = harness.score_body(&id, &application.to_string());
            assert_eq!(response.status, 200);
            id
        })
        .collect()
}

#[test]
fn metrics_label_each_monitored_branch_and_fold_the_others() {
    let harness = Harness::new(RateLimit::default());
    let norte = score_in_branch(&harness, "n", "norte", 60);
    score_in_branch(&harness, "x", "ciudad-nueva", 3);
    harness.advance(60_000);
    // Every loan of norte defaulted, far above the ~30 % the model predicts for them.
    let outcomes: Vec<Value> = norte
        .iter()
        .map(|id| outcome(id, "bad", &today(&harness)))
        .collect();
    assert_eq!(
        post_outcomes(&harness, TOKEN, &json!({ "outcomes": outcomes })).0,
        200
    );
    let response = harness.send(
        RequestHead::new("GET", "/metrics")
            .with_header("authorization", &format!("Bearer {TOKEN}")),
        "",
    );
    let text = String::from_utf8(response.body).expect("text");
    for line in [
        "valle_calibration_alert{branch=\"norte\"} 1",
        "valle_calibration_alert{branch=\"principal\"} 0",
        "valle_outcomes_matured{branch=\"norte\"} 60",
        "valle_outcomes_pending{branch=\"other\"} 3",
        "valle_realized_default_rate{branch=\"norte\"} 1",
        "valle_fairness_alert{branch=\"norte\",attribute=\"age_band\"} 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(!text.contains("ciudad-nueva"));
    let (_, report) = harness.officer("/api/v1/performance?branch=norte");
    assert_eq!(report["vintages"][0]["alert"], true, "{report}");
    let (_, elsewhere) = harness.officer("/api/v1/performance?branch=principal");
    assert_eq!(elsewhere["decisions"], 0);
}
