//! Scoring: the ONNX model in `models/valle.onnx`, run by tract, the same bytes in the page
//! and at the edge.
//!
//! [`Model::embedded`] loads the model once per process. [`Model::score`] encodes an
//! [`Application`] with the feature spec, runs tract, and returns a [`Score`] with its band,
//! decision, confidence and the four reasons that pushed the risk up most.

pub mod encode;
pub mod reasons;
pub mod recourse;
pub mod spec;

use serde::{Deserialize, Serialize};

use crate::decision::model::reasons::Reason;
use crate::decision::model::recourse::Suggestion;
use crate::decision::model::spec::Thresholds;
use crate::decision::policy::{PolicyVersion, RuleHit};

#[cfg(feature = "model")]
mod runner;
#[cfg(feature = "model")]
pub use runner::Model;

/// The model's bytes, compiled into every binary that scores.
pub const MODEL_ONNX: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/valle.onnx"));
/// The feature spec written beside the model by `models/train.py`.
pub const FEATURE_SPEC_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/feature_spec.json"
));

/// The shadow challenger (`models/challenger.py`: the same features less age and marital
/// status), scored beside the champion at the edge and stored, never shown to the applicant.
pub const CHALLENGER_ONNX: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/challenger.onnx"
));
pub const CHALLENGER_SPEC_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/challenger_spec.json"
));

/// Why the model could not load or run. Never caused by an application that passed validation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("feature spec: {0}")]
    Spec(String),
    #[error("model bytes do not match the spec: sha256 {actual}, spec says {expected}")]
    Mismatch { expected: String, actual: String },
    #[error("tract: {0}")]
    Tract(String),
    #[error("{0}")]
    Policy(#[from] crate::decision::policy::PolicyError),
}

/// Which model produced a score: its name and the sha256 of its ONNX bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ModelVersion {
    pub name: String,
    pub sha256: String,
}

/// Risk band of the probability of default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Bajo,
    Medio,
    Alto,
}

impl Band {
    /// The wire name, as in JSON and query filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Bajo => "bajo",
            Band::Medio => "medio",
            Band::Alto => "alto",
        }
    }
}

/// What the cooperative does with the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Review,
    Decline,
}

impl Decision {
    /// The wire name, as in JSON and query filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Review => "review",
            Decision::Decline => "decline",
        }
    }
}

/// The model's verdict on one application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Score {
    /// Probability of default, exactly as the model computed it (f32, round-trips through JSON).
    pub probability: f32,
    pub band: Band,
    pub decision: Decision,
    /// How far inside its decision region the probability lies: 0 on a threshold, 1 at the far
    /// end of the region. Low confidence means a small change of input could change the
    /// decision. 1 when a policy rule made the decision stricter than the model's.
    pub confidence: f32,
    /// Up to four factors that raised this applicant's risk most, largest first.
    pub reasons: Vec<Reason>,
    pub model_version: ModelVersion,
    /// The rule set the application passed through; absent on decisions stored before rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<PolicyVersion>,
    /// The policy rules that held, in the rule set's order.
    #[serde(default)]
    pub policy_hits: Vec<RuleHit>,
    /// For `review` and `decline` scored one at a time: the smallest changes of term, down
    /// payment or price that would be approved (`Model::recourse`). Batches leave it empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recourse: Vec<Suggestion>,
}

/// A shadow model's verdict on a decision: its probability and the decision it would give
/// under its cut-offs and the same policy rules. Stored beside the champion's score for the
/// officers' comparison; never part of the applicant's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ShadowScore {
    pub model_version: ModelVersion,
    pub probability: f32,
    pub decision: Decision,
}

/// Band, decision and confidence of a probability under the thresholds.
pub fn classify(probability: f32, thresholds: Thresholds) -> (Band, Decision, f32) {
    let Thresholds { review, decline } = thresholds;
    let (band, decision, confidence) = if probability < review {
        (
            Band::Bajo,
            Decision::Approve,
            (review - probability) / review,
        )
    } else if probability < decline {
        let half_width = (decline - review) / 2.0;
        let inside = (probability - review).min(decline - probability);
        (Band::Medio, Decision::Review, inside / half_width)
    } else {
        (
            Band::Alto,
            Decision::Decline,
            (probability - decline) / (1.0 - decline),
        )
    };
    (band, decision, confidence.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_at_and_around_the_thresholds() {
        let thresholds = Thresholds {
            review: 0.2,
            decline: 0.5,
        };
        let check = |probability: f32, band, decision, confidence: f32| {
            let (got_band, got_decision, got_confidence) = classify(probability, thresholds);
            assert_eq!((got_band, got_decision), (band, decision), "{probability}");
            assert!(
                (got_confidence - confidence).abs() < 1e-6,
                "{probability}: {got_confidence}"
            );
        };
        check(0.0, Band::Bajo, Decision::Approve, 1.0);
        check(0.1, Band::Bajo, Decision::Approve, 0.5);
        check(0.2, Band::Medio, Decision::Review, 0.0);
        check(0.35, Band::Medio, Decision::Review, 1.0);
        check(0.45, Band::Medio, Decision::Review, 1.0 / 3.0);
        check(0.5, Band::Alto, Decision::Decline, 0.0);
        check(0.75, Band::Alto, Decision::Decline, 0.5);
        check(1.0, Band::Alto, Decision::Decline, 1.0);
    }

    #[test]
    fn a_model_that_does_not_match_its_spec_is_refused() {
        let error = Model::load(b"not a model", FEATURE_SPEC_JSON).err();
        assert!(matches!(error, Some(ModelError::Mismatch { .. })));
        let error = Model::load(MODEL_ONNX, "{}").err();
        assert!(matches!(error, Some(ModelError::Spec(_))));
    }
}
