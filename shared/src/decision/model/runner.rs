//! The model run by tract: loaded once per process, scoring one application or many. Behind
//! the `model` feature, so a crate that only validates and displays (the page's form) links
//! no ONNX runtime.

use std::sync::{Arc, LazyLock};

use sha2::{Digest, Sha256};
use tract_onnx::prelude::{
    tvec, Framework, InferenceModelExt, IntoRunnable, Tensor, TypedRunnableModel,
};

use super::encode::Encoder;
use super::reasons::{Reason, ReasonFinder};
use super::spec::{FeatureSpec, Thresholds};
use super::{
    classify, Decision, ModelError, ModelVersion, Score, ShadowScore, CHALLENGER_ONNX,
    CHALLENGER_SPEC_JSON, FEATURE_SPEC_JSON, MODEL_ONNX,
};
use crate::decision::policy::{decide, Policy, RuleHit, POLICY_JSON};
use crate::intake::application::Application;

fn tract_error(error: impl std::fmt::Display) -> ModelError {
    ModelError::Tract(error.to_string())
}

/// A loaded, optimized model with its spec and the policy rules its decisions pass.
pub struct Model {
    plan: Arc<TypedRunnableModel>,
    encoder: Encoder,
    reasons: ReasonFinder,
    thresholds: Thresholds,
    version: ModelVersion,
    policy: Policy,
}

static EMBEDDED: LazyLock<Result<Model, ModelError>> =
    LazyLock::new(|| Model::load(MODEL_ONNX, FEATURE_SPEC_JSON));
static CHALLENGER: LazyLock<Result<Model, ModelError>> =
    LazyLock::new(|| Model::load(CHALLENGER_ONNX, CHALLENGER_SPEC_JSON));

impl Model {
    /// The model compiled into this binary, loaded and optimized on first use.
    pub fn embedded() -> Result<&'static Model, ModelError> {
        EMBEDDED.as_ref().map_err(Clone::clone)
    }

    /// The shadow challenger compiled into this binary, loaded on first use.
    pub fn challenger() -> Result<&'static Model, ModelError> {
        CHALLENGER.as_ref().map_err(Clone::clone)
    }

    /// Loads ONNX bytes with their spec and the committed policy; fails if either is
    /// inconsistent with the other or the policy does not load.
    pub fn load(onnx: &[u8], spec_json: &str) -> Result<Model, ModelError> {
        let spec: FeatureSpec =
            serde_json::from_str(spec_json).map_err(|error| ModelError::Spec(error.to_string()))?;
        let sha256 = hex::encode(Sha256::digest(onnx));
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
        let policy = Policy::load(POLICY_JSON)?;
        let model = Model {
            plan,
            encoder,
            reasons,
            thresholds: spec.thresholds,
            version: ModelVersion {
                name: spec.model_name,
                sha256,
            },
            policy,
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

    pub fn policy(&self) -> &Policy {
        &self.policy
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

    /// This model as a shadow: probability and decision (after the policy rules), without
    /// reasons or recourse.
    pub fn shadow_score(&self, application: &Application) -> Result<ShadowScore, ModelError> {
        let probability = self.probability(application)?;
        Ok(self.shadow_verdict(application, probability))
    }

    /// Shadow scores of many applications, in one run of the graph.
    pub fn shadow_batch(
        &self,
        applications: &[Application],
    ) -> Result<Vec<ShadowScore>, ModelError> {
        let probabilities = self.probability_batch(applications)?;
        Ok(applications
            .iter()
            .zip(probabilities)
            .map(|(application, probability)| self.shadow_verdict(application, probability))
            .collect())
    }

    fn shadow_verdict(&self, application: &Application, probability: f32) -> ShadowScore {
        let (_, model_decision, _) = classify(probability, self.thresholds);
        ShadowScore {
            model_version: self.version.clone(),
            probability,
            decision: decide(model_decision, &self.policy.evaluate(application)),
        }
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

    /// The full verdict, with reasons, the policy rules and, when not approved, recourse: what
    /// an applicant waiting for the answer is told.
    pub fn score(&self, application: &Application) -> Result<Score, ModelError> {
        let mut score = self.assess(application)?;
        if score.decision != Decision::Approve {
            score.recourse = self.recourse(application)?;
        }
        Ok(score)
    }

    /// The verdict with reasons and the policy rules, without recourse. Runs the applicant
    /// and one counterfactual per field in a single batch.
    pub fn assess(&self, application: &Application) -> Result<Score, ModelError> {
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
        Ok(self.verdict(probability, reasons, self.policy.evaluate(application)))
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
                scores.push(self.verdict(probability, reasons, self.policy.evaluate(application)));
            }
        }
        Ok(scores)
    }

    fn verdict(&self, probability: f32, reasons: Vec<Reason>, hits: Vec<RuleHit>) -> Score {
        let (band, model_decision, model_confidence) = classify(probability, self.thresholds);
        let decision = decide(model_decision, &hits);
        Score {
            probability,
            band,
            decision,
            confidence: if decision == model_decision {
                model_confidence
            } else {
                1.0
            },
            reasons,
            model_version: self.version.clone(),
            policy_version: Some(self.policy.version().clone()),
            policy_hits: hits,
            recourse: Vec::new(),
        }
    }
}
