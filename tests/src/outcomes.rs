//! Loan outcomes for a load run's decisions (`loadgen --outcomes SHIFT`): each loan defaults
//! with its predicted probability plus `SHIFT`, drawn with the run's seed, and the outcomes
//! are posted as officers post them, in batches of `valle_shared::outcomes::loan_outcomes::MAX_OUTCOMES`.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{json, Value};
use valle_shared::contract::time::format_rfc3339_ms;
use valle_shared::outcomes::loan_outcomes::MAX_OUTCOMES;

use crate::load::branch_decisions;
use crate::sample::Rng;
use crate::{now_ms, Client};

/// What posting a run's outcomes did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OutcomeRun {
    pub decisions: usize,
    pub defaults: usize,
    /// The predicted default rate of those decisions, for comparison.
    pub expected_default_rate: f64,
    pub recorded: u64,
    pub unchanged: u64,
}

/// The outcomes of `decisions` (`request_id`, `score.probability`), each bad with
/// probability `probability + shift` (clamped to 0..=1). Draws go to the decisions in order
/// of probability, so a run gives the same outcomes whatever ids its decisions got.
pub fn draw_outcomes(decisions: &[Value], shift: f64, seed: u64, observed_at: &str) -> Vec<Value> {
    let mut scored: Vec<(&str, f64)> = decisions
        .iter()
        .filter_map(|decision| {
            let id = decision["request_id"].as_str()?;
            Some((id, decision["score"]["probability"].as_f64()?))
        })
        .collect();
    scored.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut rng = Rng::new(seed);
    scored
        .into_iter()
        .map(|(id, probability)| {
            let bad = rng.unit() < (probability + shift).clamp(0.0, 1.0);
            let status = if bad { "bad" } else { "good" };
            json!({ "request_id": id, "status": status, "observed_at": observed_at })
        })
        .collect()
}

/// Draws and posts the outcomes of the run's decisions (`accepted`, stored under `branch`).
pub fn post_run_outcomes(
    client: &Client,
    auth: &str,
    branch: &str,
    accepted: &BTreeSet<String>,
    shift: f64,
    seed: u64,
) -> Result<OutcomeRun, String> {
    let mut decisions = branch_decisions(client, branch, auth)?;
    decisions.retain(|d| {
        d["request_id"]
            .as_str()
            .is_some_and(|id| accepted.contains(id))
    });
    let outcomes = draw_outcomes(&decisions, shift, seed, &format_rfc3339_ms(now_ms()));
    let predicted: f64 = decisions
        .iter()
        .filter_map(|d| d["score"]["probability"].as_f64())
        .sum();
    let mut run = OutcomeRun {
        decisions: decisions.len(),
        defaults: outcomes.iter().filter(|o| o["status"] == "bad").count(),
        expected_default_rate: predicted / decisions.len().max(1) as f64,
        ..OutcomeRun::default()
    };
    for chunk in outcomes.chunks(MAX_OUTCOMES) {
        let body = json!({ "outcomes": chunk }).to_string();
        let answer = client.try_send(
            "POST",
            valle_shared::contract::paths::OUTCOMES_PATH,
            &[
                ("authorization", auth),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        )?;
        if answer.status != 200 {
            return Err(format!(
                "POST outcomes: {} {}",
                answer.status,
                answer.text()
            ));
        }
        let answer = answer.json();
        run.recorded += answer["recorded"].as_u64().unwrap_or_default();
        run.unchanged += answer["unchanged"].as_u64().unwrap_or_default();
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(probability: f64, n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({ "request_id": format!("r{i}"), "score": { "probability": probability } }))
            .collect()
    }

    #[test]
    fn outcomes_follow_the_shifted_probabilities() {
        let bad_share = |probability, shift| {
            let drawn = draw_outcomes(&decisions(probability, 4_000), shift, 9, "2026-11-30");
            drawn.iter().filter(|o| o["status"] == "bad").count() as f64 / drawn.len() as f64
        };
        assert!((bad_share(0.3, 0.0) - 0.3).abs() < 0.03);
        assert!((bad_share(0.3, 0.2) - 0.5).abs() < 0.03);
        assert_eq!(bad_share(0.9, 0.5), 1.0);
        assert_eq!(
            draw_outcomes(&decisions(0.3, 10), 0.0, 1, "x"),
            draw_outcomes(&decisions(0.3, 10), 0.0, 1, "x")
        );
    }
}
