//! Scoring at the edge under `wrangler dev`: the golden rows, single and batch, against
//! onnxruntime's numbers and against the shared model run here.

#[path = "../../shared/tests/support/mod.rs"]
mod support;

use valle_shared::api::{BatchResponse, Health, ScoreResponse};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::{parse_application, Model};
use valle_tests::Client;

#[test]
fn every_golden_row_scores_at_the_edge_as_onnxruntime_and_the_shared_model_say() {
    let client = Client::new();
    let model = Model::embedded().expect("model loads");
    let golden = support::golden();
    assert!(golden.rows.len() >= 200);
    let mut bit_identical = 0;
    for (index, row) in golden.rows.iter().enumerate() {
        let body = row.application.to_string();
        // Its own client address: 250 requests in a row are more than the test server's
        // per-client burst allows the shared default address.
        let answer = client.send(
            "POST",
            "/api/v1/score",
            &[
                ("content-type", "application/json"),
                ("cf-connecting-ip", "10.0.10.1"),
            ],
            Some(body.as_bytes()),
        );
        assert_eq!(answer.status, 200, "row {index}: {}", answer.text());
        let edge: ScoreResponse = serde_json::from_slice(&answer.body).expect("score answer");
        let probability = edge.score.probability;
        assert!(
            (probability - row.probability).abs() <= 1e-5,
            "row {index}: edge {probability}, onnxruntime {}",
            row.probability
        );
        let here = model
            .score(&parse_application(body.as_bytes()).expect("valid"))
            .expect("scores");
        assert_eq!(edge.score.model_version, here.model_version, "row {index}");
        assert_eq!(edge.score.band, here.band, "row {index}");
        assert_eq!(edge.score.decision, here.decision, "row {index}");
        if probability.to_bits() == here.probability.to_bits() {
            bit_identical += 1;
        }
    }
    eprintln!(
        "{bit_identical} of {} rows bit-identical to the host build",
        golden.rows.len()
    );
}

#[test]
fn a_golden_batch_equals_the_single_answers() {
    let client = Client::new();
    let golden = support::golden();
    let items: Vec<String> = golden
        .rows
        .iter()
        .map(|row| row.application.to_string())
        .collect();
    let body = format!(r#"{{"applications":[{},{{"age":17}}]}}"#, items.join(","));
    let answer = client.post_json("/api/v1/score/batch", body.as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.text());
    let batch: BatchResponse = serde_json::from_slice(&answer.body).expect("batch answer");
    assert_eq!(batch.accepted, golden.rows.len());
    assert_eq!(batch.rejected, 1);
    let last = batch.results.last().and_then(|item| item.error.as_ref());
    assert_eq!(
        last.map(|error| error.code.as_str()),
        Some(ErrorCode::Validation.as_str())
    );
    for (index, item) in batch.results.iter().take(5).enumerate() {
        let single = client.post_json("/api/v1/score", items[index].as_bytes());
        let single: ScoreResponse = serde_json::from_slice(&single.body).expect("score answer");
        assert_eq!(item.score.as_ref(), Some(&single.score), "item {index}");
    }
}

#[test]
fn the_edge_runs_the_model_this_build_embeds() {
    let answer = Client::new().get("/healthz");
    let health: Health = serde_json::from_slice(&answer.body).expect("health answer");
    assert_eq!(
        &health.model_version,
        Model::embedded().expect("loads").version()
    );
}
