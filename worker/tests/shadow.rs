//! The shadow challenger on the host: with it on, the applicant's answer is byte for byte
//! the answer with it off, for a single score and a batch; its verdict is stored with the
//! decision and shown to officers; events scored by the consumer get one too.

mod support;

use valle_shared::contract::ops::RateLimit;
use valle_shared::Model;
use valle_worker::http::RequestHead;
use valle_worker::memory::block_on;
use valle_worker::pipeline::{consume_events, Delivery, Scorers};

use support::{events_body, Harness, TOKEN, VALID};

fn harness(shadow: bool) -> Harness {
    let harness = Harness::new(RateLimit::default());
    harness.shadow.set(shadow);
    harness
}

fn batch(harness: &Harness) -> Vec<u8> {
    let body = format!(r#"{{"applications":[{VALID},{{"age":17}},{VALID}]}}"#);
    let head = RequestHead::new("POST", "/api/v1/score/batch")
        .with_header("content-type", "application/json")
        .with_header("x-request-id", "b-1")
        .with_header("cf-connecting-ip", "203.0.113.9");
    harness.send(head, &body).body
}

#[test]
fn the_applicants_answer_is_the_same_byte_for_byte_with_the_shadow_on() {
    let (on, off) = (harness(true), harness(false));
    let (with, without) = (on.score("s-1"), off.score("s-1"));
    assert_eq!(with.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&with.body),
        String::from_utf8_lossy(&without.body)
    );
    assert!(!String::from_utf8_lossy(&with.body).contains("shadow"));
    assert_eq!(batch(&on), batch(&off));
    // A repeat answers the stored decision: still nothing of the shadow.
    assert_eq!(on.score("s-1").body, off.score("s-1").body);

    let challenger = Model::challenger().expect("challenger");
    let (status, stored) = on.as_account(TOKEN, "GET", "/api/v1/decisions/s-1", "");
    assert_eq!(status, 200);
    let shadow = &stored["shadow"];
    assert_eq!(
        shadow["model_version"]["sha256"],
        challenger.version().sha256.as_str()
    );
    let application = valle_shared::parse_application(VALID.as_bytes()).expect("valid");
    let expected = challenger.shadow_score(&application).expect("scores");
    let stored_probability = shadow["probability"].as_f64().map(|p| p as f32);
    assert_eq!(stored_probability, Some(expected.probability));
    assert_eq!(shadow["decision"], expected.decision.as_str());
    let (_, batch_item) = on.as_account(TOKEN, "GET", "/api/v1/decisions/b-1:2", "");
    assert_eq!(batch_item["shadow"]["decision"], expected.decision.as_str());
    let (_, unshadowed) = off.as_account(TOKEN, "GET", "/api/v1/decisions/s-1", "");
    assert_eq!(unshadowed.get("shadow"), None);
}

/// The comparison over the shadowed decisions: agreement from the stored verdicts, and each
/// model's AUC once outcomes are in, as `valle_shared::outcomes::challenger` computes it.
#[test]
fn the_comparison_counts_agreement_and_each_models_auc_on_the_same_loans() {
    let harness = harness(true);
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("../../models/golden.json")).expect("golden");
    let rows = golden["rows"].as_array().expect("rows");
    let mut outcomes = Vec::new();
    for (index, row) in rows.iter().take(60).enumerate() {
        let id = format!("c-{index}");
        assert_eq!(
            harness
                .score_body(&id, &row["application"].to_string())
                .status,
            200
        );
        // Outcomes that follow the champion's probability: bad above 0.2.
        let status = if row["probability"].as_f64().unwrap_or(0.0) > 0.2 {
            "bad"
        } else {
            "good"
        };
        outcomes.push(serde_json::json!({"request_id": id, "status": status}));
    }
    let (status, report) = harness.as_account(TOKEN, "GET", "/api/v1/challenger", "");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["decisions"], 60);
    assert!(report["challenger"]["roc_auc"].is_null());
    let mut agreed = 0;
    let mut shadow_probabilities = Vec::new();
    for index in 0..60 {
        let (_, stored) =
            harness.as_account(TOKEN, "GET", &format!("/api/v1/decisions/c-{index}"), "");
        if stored["score"]["decision"] == stored["shadow"]["decision"] {
            agreed += 1;
        }
        shadow_probabilities.push(stored["shadow"]["probability"].as_f64().expect("p"));
    }
    let rate = report["agreement_rate"].as_f64().expect("rate");
    assert!((rate - f64::from(agreed) / 60.0).abs() < 1e-12, "{report}");
    // Outcomes dated the day of the decisions, by the harness' clock.
    let today = valle_shared::contract::time::format_rfc3339_ms(harness.backend.now_ms.get());
    for outcome in &mut outcomes {
        outcome["observed_at"] = today.clone().into();
    }
    let body = serde_json::json!({ "outcomes": outcomes }).to_string();
    let (status, recorded) = harness.as_account(TOKEN, "POST", "/api/v1/outcomes", &body);
    assert_eq!(
        (status, recorded["recorded"].as_u64()),
        (200, Some(60)),
        "{recorded}"
    );
    let (_, report) = harness.as_account(TOKEN, "GET", "/api/v1/challenger", "");
    // Bad exactly where the champion's probability is above 0.2: it ranks them perfectly.
    assert_eq!(report["champion"]["roc_auc"], 1.0, "{report}");
    assert_eq!(report["champion"]["matured"], 60);
    // The challenger's AUC, counted here pair by pair (ties count a half).
    let bad: Vec<bool> = outcomes.iter().map(|o| o["status"] == "bad").collect();
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, bad_i) in bad.iter().enumerate() {
        for (j, bad_j) in bad.iter().enumerate() {
            if *bad_i && !*bad_j {
                pairs += 1.0;
                let (p, q) = (shadow_probabilities[i], shadow_probabilities[j]);
                wins += if p > q {
                    1.0
                } else if p == q {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    let challenger_auc = report["challenger"]["roc_auc"].as_f64().expect("auc");
    assert!((challenger_auc - wins / pairs).abs() < 1e-12, "{report}");
}

#[test]
fn events_decided_by_the_consumer_carry_the_shadow_when_it_is_on() {
    for shadow in [true, false] {
        let harness = harness(shadow);
        // Ids 1 and 2: valid applications (every third is not).
        assert_eq!(harness.post_events(&events_body(1..3)).status, 202);
        let deliveries: Vec<Delivery> = harness
            .backend
            .queued
            .borrow_mut()
            .drain(..)
            .map(|(event, sent_at_ms)| Delivery {
                body: serde_json::to_value(event).expect("event json"),
                sent_at_ms,
            })
            .collect();
        let scorers = Scorers::embedded(shadow).expect("models load");
        let outcomes = block_on(consume_events(
            &harness.backend,
            scorers,
            &deliveries,
            &|| 0.0,
        ));
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let stored = harness.backend.d1.recent_decisions(10, None);
        assert_eq!(stored.len(), 2);
        for decision in &stored {
            let record = harness
                .backend
                .d1
                .decision(&decision.request_id)
                .expect("stored");
            assert_eq!(record.shadow.is_some(), shadow, "{record:?}");
            // Events are not answered to a waiting applicant: no recourse searched.
            assert!(record.score.recourse.is_empty());
        }
    }
}
