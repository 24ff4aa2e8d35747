//! Scoring: the ONNX model in `models/valle.onnx`, run by tract, the same bytes in the page
//! and at the edge.
//!
//! [`Model::embedded`] loads the model once per process. [`Model::score`] encodes an
//! [`Application`] with the feature spec, runs tract, and returns a [`Score`] with its band,
//! decision, confidence and the four reasons that pushed the risk up most.

pub mod encode;
pub mod reasons;
pub mod spec;

use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tract_onnx::prelude::{
    tvec, Framework, InferenceModelExt, IntoRunnable, Tensor, TypedRunnableModel,
};

use crate::application::Application;
use crate::model::encode::Encoder;
use crate::model::reasons::{Reason, ReasonFinder};
use crate::model::spec::{FeatureSpec, Thresholds};

/// The model's bytes, compiled into every binary that scores.
pub const MODEL_ONNX: &[u8] = include_bytes!("../../../models/valle.onnx");
/// The feature spec written beside the model by `models/train.py`.
pub const FEATURE_SPEC_JSON: &str = include_str!("../../../models/feature_spec.json");

/// Why the model could not load or run. Never caused by an application that passed validation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("feature spec: {0}")]
    Spec(String),
    #[error("model bytes do not match the spec: sha256 {actual}, spec says {expected}")]
    Mismatch { expected: String, actual: String },
    #[error("tract: {0}")]
    Tract(String),
}

fn tract_error(error: impl std::fmt::Display) -> ModelError {
    ModelError::Tract(error.to_string())
}

/// Which model produced a score: its name and the sha256 of its ONNX bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub sha256: String,
}

/// Risk band of the probability of default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
pub struct Score {
    /// Probability of default, exactly as the model computed it (f32, round-trips through JSON).
    pub probability: f32,
    pub band: Band,
    pub decision: Decision,
    /// How far inside its decision region the probability lies: 0 on a threshold, 1 at the far
    /// end of the region. Low confidence means a small change of input could change the decision.
    pub confidence: f32,
    /// Up to four factors that raised this applicant's risk most, largest first.
    pub reasons: Vec<Reason>,
    pub model_version: ModelVersion,
}

/// A loaded, optimized model with its spec.
pub struct Model {
    plan: Arc<TypedRunnableModel>,
    encoder: Encoder,
    reasons: ReasonFinder,
    thresholds: Thresholds,
    version: ModelVersion,
}

static EMBEDDED: LazyLock<Result<Model, ModelError>> =
    LazyLock::new(|| Model::load(MODEL_ONNX, FEATURE_SPEC_JSON));

impl Model {
    /// The model compiled into this binary, loaded and optimized on first use.
    pub fn embedded() -> Result<&'static Model, ModelError> {
        EMBEDDED.as_ref().map_err(Clone::clone)
    }

    /// Loads ONNX bytes with their spec; fails if either is inconsistent with the other.
    pub fn load(onnx: &[u8], spec_json: &str) -> Result<Model, ModelError> {
        let spec: FeatureSpec =
            serde_json::from_str(spec_json).map_err(|error| ModelError::Spec(error.to_string()))?;
        let sha256 = hex(&Sha256::digest(onnx));
        if sha256 != spec.model_sha256 {
            return Err(ModelError::Mismatch {
                expected: spec.model_sha256,
                actual: sha256,
            });
        }
        let encoder = Encoder::new(&spec.features)?;
        let plan = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .and_then(|model| model.into_optimized())
            .and_then(|model| model.into_runnable())
            .map_err(tract_error)?;
        let reasons = ReasonFinder::new(&spec.baseline)?;
        let model = Model {
            plan,
            encoder,
            reasons,
            thresholds: spec.thresholds,
            version: ModelVersion {
                name: spec.model_name,
                sha256,
            },
        };
        // One probe row proves the input width matches the graph before any request depends on it.
        model.probabilities(&vec![0.0; model.encoder.width()])?;
        Ok(model)
    }

    pub fn version(&self) -> &ModelVersion {
        &self.version
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Runs the graph on `rows` encoded applications laid end to end.
    pub fn probabilities(&self, features: &[f32]) -> Result<Vec<f32>, ModelError> {
        let width = self.encoder.width();
        let rows = features.len() / width;
        let input = Tensor::from_shape(&[rows, width], features).map_err(tract_error)?;
        let outputs = self.plan.run(tvec!(input.into())).map_err(tract_error)?;
        let output = outputs
            .first()
            .ok_or_else(|| ModelError::Tract("the model has no output".into()))?;
        let view = output.try_as_plain_ram().map_err(tract_error)?;
        let probabilities = view.as_slice::<f32>().map_err(tract_error)?;
        if probabilities.len() != rows {
            return Err(ModelError::Tract(format!(
                "{} outputs for {rows} rows",
                probabilities.len()
            )));
        }
        Ok(probabilities.to_vec())
    }

    /// The probability of default alone, for one application.
    pub fn probability(&self, application: &Application) -> Result<f32, ModelError> {
        let probabilities = self.probabilities(&self.encoder.encode(application))?;
        probabilities
            .first()
            .copied()
            .ok_or_else(|| ModelError::Tract("no output row".into()))
    }

    /// Probabilities alone for many applications, in one run of the graph.
    pub fn probability_batch(&self, applications: &[Application]) -> Result<Vec<f32>, ModelError> {
        let mut features = Vec::with_capacity(applications.len() * self.encoder.width());
        for application in applications {
            self.encoder.encode_into(application, &mut features);
        }
        self.probabilities(&features)
    }

    /// The full verdict, with reasons. Runs the applicant and one counterfactual per field in a
    /// single batch.
    pub fn score(&self, application: &Application) -> Result<Score, ModelError> {
        let (rows, fields) = self.reasons.counterfactuals(application);
        let mut features = Vec::with_capacity((rows.len() + 1) * self.encoder.width());
        self.encoder.encode_into(application, &mut features);
        for row in &rows {
            self.encoder.encode_into(row, &mut features);
        }
        let probabilities = self.probabilities(&features)?;
        let (&probability, counterfactual) = probabilities
            .split_first()
            .ok_or_else(|| ModelError::Tract("no output row".into()))?;
        let reasons = self
            .reasons
            .top_reasons(application, probability, &fields, counterfactual);
        Ok(self.verdict(probability, reasons))
    }

    /// Scores many applications; reasons included. Applicants and their counterfactuals run
    /// through the graph in chunks, which is several times faster than one call per applicant.
    pub fn score_batch(&self, applications: &[Application]) -> Result<Vec<Score>, ModelError> {
        // About a thousand rows per run: large enough to amortize the call, small enough to
        // keep the buffer in cache.
        const APPLICANTS_PER_RUN: usize = 64;
        let width = self.encoder.width();
        let mut scores = Vec::with_capacity(applications.len());
        for chunk in applications.chunks(APPLICANTS_PER_RUN) {
            let mut features = Vec::with_capacity(chunk.len() * 14 * width);
            let mut plans = Vec::with_capacity(chunk.len());
            for application in chunk {
                let (rows, fields) = self.reasons.counterfactuals(application);
                self.encoder.encode_into(application, &mut features);
                for row in &rows {
                    self.encoder.encode_into(row, &mut features);
                }
                plans.push(fields);
            }
            let probabilities = self.probabilities(&features)?;
            let mut offset = 0;
            for (application, fields) in chunk.iter().zip(&plans) {
                let rows = &probabilities[offset..offset + 1 + fields.len()];
                offset += rows.len();
                let (&probability, counterfactual) = rows
                    .split_first()
                    .ok_or_else(|| ModelError::Tract("no output row".into()))?;
                let reasons =
                    self.reasons
                        .top_reasons(application, probability, fields, counterfactual);
                scores.push(self.verdict(probability, reasons));
            }
        }
        Ok(scores)
    }

    fn verdict(&self, probability: f32, reasons: Vec<Reason>) -> Score {
        let (band, decision, confidence) = classify(probability, self.thresholds);
        Score {
            probability,
            band,
            decision,
            confidence,
            reasons,
            model_version: self.version.clone(),
        }
    }
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
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
