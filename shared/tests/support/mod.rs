//! The conformance cases: request bodies and the exact outcome the shared validator gives.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]
//! Host, browser (wasm32 in Chromium) and edge (HTTP under `wrangler dev`) tests all compare
//! their own outcome with the same recorded one, which makes the three byte-identical.

use serde::{Deserialize, Serialize};
use valle_shared::contract::errors::FieldError;
use valle_shared::decision::model::Decision;
use valle_shared::decision::policy::RuleHit;
use valle_shared::intake::validation::parse_application;
use valle_shared::{Model, Score};

/// The recorded cases, shared by every test that includes this module.
pub const CASES_JSON: &str = include_str!("../cases/validation.json");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub name: String,
    pub body: String,
    /// Pads the body with trailing spaces to this many bytes, for the size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to: Option<usize>,
    pub outcome: Outcome,
}

impl Case {
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = self.body.clone().into_bytes();
        if let Some(length) = self.pad_to {
            bytes.resize(length.max(bytes.len()), b' ');
        }
        bytes
    }
}

/// What validation concluded: `OK`, or the request's error code with its field errors; for
/// a valid application, the decision and the policy rules that held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub code: String,
    #[serde(default)]
    pub fields: Vec<FieldError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<Decided>,
}

/// The decision on a valid application after the policy rules, and the rules that held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    pub decision: Decision,
    pub policy_hits: Vec<RuleHit>,
}

impl Decided {
    pub fn of(score: &Score) -> Decided {
        Decided {
            decision: score.decision,
            policy_hits: score.policy_hits.clone(),
        }
    }
}

pub fn outcome(body: &[u8]) -> Outcome {
    match parse_application(body) {
        Ok(application) => {
            let score = Model::embedded()
                .and_then(|model| model.score(&application))
                .expect("the embedded model scores a valid application");
            Outcome {
                code: "OK".to_owned(),
                fields: Vec::new(),
                decided: Some(Decided::of(&score)),
            }
        }
        Err(error) => Outcome {
            code: error.code().as_str().to_owned(),
            fields: error.field_errors().to_vec(),
            decided: None,
        },
    }
}

pub fn cases() -> Vec<Case> {
    serde_json::from_str(CASES_JSON).expect("tests/cases/validation.json parses")
}

/// `models/golden.json`: test-split applications with their encoded features and the
/// probability onnxruntime gave, written by `models/train.py`.
pub const GOLDEN_JSON: &str = include_str!("../../../models/golden.json");

#[derive(Clone, Debug, Deserialize)]
pub struct Golden {
    pub model_sha256: String,
    pub rows: Vec<GoldenRow>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GoldenRow {
    pub application: serde_json::Value,
    pub features: Vec<f32>,
    pub probability: f32,
}

pub fn golden() -> Golden {
    serde_json::from_str(GOLDEN_JSON).expect("models/golden.json parses")
}

/// Checks every golden row against the embedded model: the row is a valid application, the
/// encoder gives train.py's features, tract gives onnxruntime's probability, all within 1e-5.
pub fn check_golden_rows() -> usize {
    let model = Model::embedded().expect("the embedded model loads");
    let golden = golden();
    assert_eq!(
        golden.model_sha256,
        model.version().sha256,
        "golden.json is for another model"
    );
    for (index, row) in golden.rows.iter().enumerate() {
        let body = row.application.to_string();
        let application = parse_application(body.as_bytes())
            .unwrap_or_else(|error| panic!("golden row {index} is not valid: {error:?}"));
        let features = model.encoder().encode(&application);
        assert_eq!(features.len(), row.features.len(), "row {index}: width");
        for (column, (got, expected)) in features.iter().zip(&row.features).enumerate() {
            assert!(
                (got - expected).abs() <= 1e-5,
                "row {index} feature {column}: encoder {got}, train.py {expected}"
            );
        }
        let probability = model.probability(&application).expect("scores");
        assert!(
            (probability - row.probability).abs() <= 1e-5,
            "row {index}: tract {probability}, onnxruntime {}",
            row.probability
        );
    }
    golden.rows.len()
}
