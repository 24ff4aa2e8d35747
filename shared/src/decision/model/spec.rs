//! `models/feature_spec.json`: the model's inputs, scaling, thresholds and training baseline,
//! written by `models/train.py` and read here, so Python and Rust share one definition.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole spec file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub model_name: String,
    pub model_file: String,
    pub model_sha256: String,
    pub input: String,
    pub output: String,
    pub thresholds: Thresholds,
    /// The typical training applicant: medians of numbers, modes of choices.
    pub baseline: BTreeMap<String, BaselineValue>,
    pub features: Vec<FeatureDef>,
    /// Training distribution per field and of the predicted probability, for drift (PSI).
    pub drift_bins: BTreeMap<String, DriftBins>,
}

/// Probability cut-offs: below `review` approve, from `decline` up decline, review between.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub review: f32,
    pub decline: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum BaselineValue {
    Number(f64),
    Choice(String),
}

/// One model input: how to compute it, then `(raw - mean) / std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct FeatureDef {
    pub name: String,
    #[serde(flatten)]
    pub kind: FeatureKind,
    pub mean: f64,
    pub std: f64,
}

/// The closed set of feature computations `train.py` may use. `floor` keeps divisions finite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureKind {
    Value {
        field: String,
    },
    OneHot {
        field: String,
        value: String,
    },
    Log1p {
        field: String,
    },
    Ratio {
        numerator: String,
        denominator: String,
        floor: f64,
    },
    Log1pRatio {
        numerator: String,
        denominator: String,
        floor: f64,
    },
    InstallmentToIncome {
        floor: f64,
    },
    DisposableToIncome {
        floor: f64,
    },
    SignedLog1pNetWorth,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum DriftBins {
    /// Upper-exclusive interior edges; `proportions` has one more entry than `edges`.
    Numeric {
        edges: Vec<f64>,
        proportions: Vec<f64>,
    },
    /// Share of each allowed value.
    Categorical {
        values: Vec<String>,
        proportions: Vec<f64>,
    },
}
