//! The decision strategy against `wrangler dev`: the policy the edge names is the one the
//! page compiles, a simulation's swaps equal re-deciding the stored rows here, every
//! recourse suggestion the edge gives is approved when sent back, and the shadow challenger
//! is stored and compared but never answered. Byte-identical rule cases are in `http.rs`
//! (the conformance table); the answer with the shadow on and off, in the worker's host
//! tests (`worker/tests/shadow.rs`).

mod accounts;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use valle_shared::decision::model::spec::Thresholds;
use valle_shared::decision::model::{classify, Decision};
use valle_shared::decision::policy::{decide, Policy};
use valle_shared::records::decisions::DecisionRecord;
use valle_shared::{parse_application, Model};
use valle_tests::{random_uuid, Client};

use accounts::{call, Who};

fn holdout_applications(branch: &str) -> Vec<Value> {
    let holdout: Value =
        serde_json::from_str(include_str!("../../models/holdout.json")).expect("holdout.json");
    holdout["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|row| row["valid"] == true)
        .map(|row| {
            let mut application = row["application"].clone();
            application["branch"] = json!(branch);
            application
        })
        .collect()
}

/// Every stored decision of one branch, through the officers' API, all pages.
fn branch_decisions(client: &Client, branch: &str) -> Vec<DecisionRecord> {
    let mut decisions = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/decisions?limit=500&branch={branch}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let answer = client.officer_get(&path);
        assert_eq!(answer.status, 200, "{}", answer.text());
        let page = answer.json();
        let records: Vec<DecisionRecord> =
            serde_json::from_value(page["decisions"].clone()).expect("decisions");
        decisions.extend(records);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return decisions,
        }
    }
}

#[test]
fn the_edge_applies_the_policy_the_page_compiles() {
    let health = Client::new().get("/healthz").json();
    let policy = Policy::committed().expect("policy");
    assert_eq!(health["policy_version"]["sha256"], policy.version().sha256);
    assert_eq!(health["policy_version"]["name"], policy.version().name);
}

#[test]
fn a_simulation_swaps_what_re_deciding_the_stored_rows_gives() {
    let client = Client::new();
    let branch = format!("sim-{}", &random_uuid()[..8]);
    let applications = holdout_applications(&branch);
    for (chunk, part) in applications.chunks(600).enumerate() {
        let body = json!({ "applications": part }).to_string();
        let answer = client.send(
            "POST",
            "/api/v1/score/batch",
            &[
                ("content-type", "application/json"),
                ("x-request-id", &format!("{branch}-{chunk}")),
                ("cf-connecting-ip", "10.0.78.1"),
            ],
            Some(body.as_bytes()),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["rejected"], 0);
    }
    let stored = branch_decisions(&client, &branch);
    assert_eq!(stored.len(), applications.len());
    // A batch carries no recourse; the shadow's verdict is stored with each decision.
    let challenger = Model::challenger().expect("challenger");
    assert!(stored.iter().all(|record| record.score.recourse.is_empty()));
    assert!(stored.iter().all(|record| record
        .shadow
        .as_ref()
        .is_some_and(|shadow| shadow.model_version == *challenger.version())));
    let agreed = stored
        .iter()
        .filter(|record| record.shadow.as_ref().map(|s| s.decision) == Some(record.score.decision))
        .count();
    let comparison = client
        .officer_get(&format!("/api/v1/challenger?branch={branch}"))
        .json();
    assert_eq!(comparison["decisions"], stored.len(), "{comparison:#}");
    let rate = comparison["agreement_rate"].as_f64().expect("rate");
    assert!((rate - agreed as f64 / stored.len() as f64).abs() < 1e-12);
    eprintln!(
        "champion and challenger agree on {agreed} of {}",
        stored.len()
    );
    let policy = Policy::committed().expect("policy");
    for (thresholds, policy_choice, model_choice) in [
        (
            Thresholds {
                review: 0.3,
                decline: 0.45,
            },
            "none",
            "champion",
        ),
        (
            Thresholds {
                review: 0.15,
                decline: 0.6,
            },
            "committed",
            "champion",
        ),
        (
            Thresholds {
                review: 0.2,
                decline: 0.5,
            },
            "committed",
            "challenger",
        ),
    ] {
        let body = json!({
            "last": 10_000,
            "branch": branch,
            "thresholds": {"review": thresholds.review, "decline": thresholds.decline},
            "policy": policy_choice,
            "model": model_choice,
        })
        .to_string();
        let answer = call(
            &client,
            Some(Who::Supervisor),
            "POST",
            "/api/v1/simulate",
            Some(&body),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let report = answer.json();
        assert_eq!(report["rows"], stored.len());
        // Independently: each stored decision re-decided here.
        let mut swaps: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut unchanged = 0u64;
        let (mut approved, mut approved_probability) = (0u64, 0f64);
        for record in &stored {
            let probability = if model_choice == "challenger" {
                record
                    .shadow
                    .as_ref()
                    .expect("every decision has a shadow")
                    .probability
            } else {
                record.score.probability
            };
            let (_, model_decision, _) = classify(probability, thresholds);
            let redecided = if policy_choice == "committed" {
                decide(model_decision, &policy.evaluate(&record.application))
            } else {
                model_decision
            };
            if redecided == Decision::Approve {
                approved += 1;
                approved_probability += f64::from(probability);
            }
            if redecided == record.score.decision {
                unchanged += 1;
            } else {
                let key = (
                    record.score.decision.as_str().to_owned(),
                    redecided.as_str().to_owned(),
                );
                *swaps.entry(key).or_default() += 1;
            }
        }
        let reported: BTreeMap<(String, String), u64> = report["swaps"]
            .as_array()
            .expect("swaps")
            .iter()
            .map(|swap| {
                (
                    (
                        swap["from"].as_str().expect("from").to_owned(),
                        swap["to"].as_str().expect("to").to_owned(),
                    ),
                    swap["count"].as_u64().expect("count"),
                )
            })
            .collect();
        eprintln!(
            "{model_choice} {policy_choice} {thresholds:?}: swaps {reported:?}, unchanged {unchanged}"
        );
        assert_eq!(report["skipped"], 0);
        assert!(!swaps.is_empty());
        assert_eq!(reported, swaps, "{report:#}");
        assert_eq!(report["unchanged"], unchanged);
        assert_eq!(report["candidate"]["approve"], approved);
        let expected = approved_probability / approved as f64;
        let edge = report["candidate"]["expected_bad_rate"]
            .as_f64()
            .expect("rate");
        assert!((edge - expected).abs() < 1e-12, "{edge} against {expected}");
    }
}

#[test]
fn every_recourse_suggestion_from_the_edge_is_approved_when_sent_back() {
    let client = Client::new();
    let model = Model::embedded().expect("model");
    let mut checked = 0;
    for (index, application) in holdout_applications("recourse")
        .iter()
        .take(120)
        .enumerate()
    {
        let sent = parse_application(application.to_string().as_bytes()).expect("valid");
        let answer = client.send(
            "POST",
            "/api/v1/score",
            &[
                ("content-type", "application/json"),
                (
                    "x-request-id",
                    &format!("recourse-{}-{index}", &random_uuid()[..8]),
                ),
                ("cf-connecting-ip", "10.0.78.2"),
            ],
            Some(application.to_string().as_bytes()),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        // The applicant's answer says nothing of the shadow.
        assert!(!answer.text().contains("shadow"), "{}", answer.text());
        let edge: valle_shared::Score =
            serde_json::from_value(answer.json()["score"].clone()).expect("score");
        // The same suggestions as the shared code gives here, word for word. The host runs
        // tract natively, whose kernels for a few hundred rows may round the last bit of a
        // probability otherwise than wasm32 does (page and edge are both wasm32 and agree to
        // the byte: tests/e2e/score.test.mjs).
        let here = model.score(&sent).expect("scores");
        assert_eq!(edge.recourse.len(), here.recourse.len(), "row {index}");
        for (edge, here) in edge.recourse.iter().zip(&here.recourse) {
            assert_eq!(
                (edge.lever, &edge.changes, &edge.message),
                (here.lever, &here.changes, &here.message),
                "row {index}"
            );
            assert!(
                (edge.probability - here.probability).abs() < 1e-6,
                "row {index}"
            );
        }
        for suggestion in &edge.recourse {
            let changed = suggestion.apply(&sent).expect("applies");
            let again = client.send(
                "POST",
                "/api/v1/score",
                &[
                    ("content-type", "application/json"),
                    ("cf-connecting-ip", "10.0.78.2"),
                ],
                Some(&serde_json::to_vec(&changed).expect("json")),
            );
            assert_eq!(again.status, 200, "{}", again.text());
            assert_eq!(
                again.json()["score"]["decision"],
                "approve",
                "row {index}: {suggestion:?}"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} suggestions sent back, all approved");
    assert!(checked > 20, "{checked}");
}
