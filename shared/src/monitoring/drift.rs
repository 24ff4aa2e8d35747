//! Drift monitoring: the Population Stability Index (PSI) of every monitored field, and of the
//! predicted probability, between the training distribution (`drift_bins` in
//! models/feature_spec.json) and the live decisions of a window.
//!
//! A decision is reduced to one bin index per monitored field ([`Binning::bins_of`]) when it
//! is counted, so windows keep small mergeable counts ([`DriftCounts`]) and never the
//! applications themselves.
//!
//! `PSI = Σ (aᵢ − eᵢ) · ln(aᵢ / eᵢ)` over the bins, with `aᵢ` the live share and `eᵢ` the
//! training share, both floored at [`PSI_FLOOR`] so an empty bin gives a finite value.
//! models/psi_reference.py computes the same numbers with numpy for the tests.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::contract::i18n::Message;
use crate::decision::model::spec::{DriftBins, FeatureSpec};
use crate::decision::model::FEATURE_SPEC_JSON;
use crate::intake::application::{Application, Field};

/// Shares below this are raised to it before taking logarithms.
pub const PSI_FLOOR: f64 = 1e-4;
/// PSI from here on is moderate drift.
pub const PSI_MODERATE: f64 = 0.1;
/// PSI from here on is significant drift and raises an alert.
pub const PSI_SIGNIFICANT: f64 = 0.2;
/// The name the predicted probability is monitored under.
pub const PROBABILITY: &str = "probability";

/// How far a distribution moved from training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DriftBand {
    /// PSI < 0.1.
    Stable,
    /// 0.1 ≤ PSI < 0.2.
    Moderate,
    /// PSI ≥ 0.2.
    Significant,
}

impl DriftBand {
    pub fn of(psi: f64) -> DriftBand {
        if psi >= PSI_SIGNIFICANT {
            DriftBand::Significant
        } else if psi >= PSI_MODERATE {
            DriftBand::Moderate
        } else {
            DriftBand::Stable
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DriftBand::Stable => "stable",
            DriftBand::Moderate => "moderate",
            DriftBand::Significant => "significant",
        }
    }
}

/// The PSI of live bin counts against training shares; `None` without observations or when
/// the two have a different number of bins.
pub fn psi(expected: &[f64], counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 || expected.len() != counts.len() {
        return None;
    }
    Some(
        expected
            .iter()
            .zip(counts)
            .map(|(&expected, &count)| {
                let expected = expected.max(PSI_FLOOR);
                let actual = (count as f64 / total as f64).max(PSI_FLOOR);
                (actual - expected) * (actual / expected).ln()
            })
            .sum(),
    )
}

/// Where a monitored value comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    Field(Field),
    Probability,
}

#[derive(Clone, Debug, PartialEq)]
struct Monitored {
    name: String,
    source: Source,
    bins: DriftBins,
}

impl Monitored {
    /// Training share per bin; [`Binning::from_spec`] checked there is one per bin.
    fn shares(&self) -> &[f64] {
        match &self.bins {
            DriftBins::Numeric { proportions, .. } | DriftBins::Categorical { proportions, .. } => {
                proportions
            }
        }
    }
}

/// The spec's drift bins, ready to place values: one entry per monitored field, in name order.
#[derive(Clone, Debug, PartialEq)]
pub struct Binning {
    monitored: Vec<Monitored>,
}

/// Why drift bins from a spec cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BinningError {
    #[error("drift bins name an unknown field `{0}`")]
    UnknownField(String),
    #[error("drift bins of `{0}` do not have one share per bin")]
    Shape(String),
    #[error("drift bins of `{0}` have more than 255 bins")]
    TooManyBins(String),
    #[error("feature spec: {0}")]
    Spec(String),
}

static EMBEDDED: LazyLock<Result<Binning, BinningError>> = LazyLock::new(|| {
    let spec: FeatureSpec = serde_json::from_str(FEATURE_SPEC_JSON)
        .map_err(|error| BinningError::Spec(error.to_string()))?;
    Binning::from_spec(&spec.drift_bins)
});

impl Binning {
    /// The bins of the embedded model's spec. The spec is compiled in and checked by tests, so
    /// an error here means a broken build; callers treat it as "nothing to monitor".
    pub fn embedded() -> Result<&'static Binning, BinningError> {
        EMBEDDED.as_ref().map_err(Clone::clone)
    }

    /// What the windows count of one decision under the embedded bins: one bin per
    /// monitored field ([`Self::bins_of`]), none when the bins do not load.
    pub fn embedded_bins_of(application: &Application, probability: f32) -> Vec<u8> {
        Binning::embedded()
            .map(|binning| binning.bins_of(application, probability))
            .unwrap_or_default()
    }

    pub fn from_spec(bins: &BTreeMap<String, DriftBins>) -> Result<Binning, BinningError> {
        let monitored = bins
            .iter()
            .map(|(name, bins)| {
                let source = if name == PROBABILITY {
                    Source::Probability
                } else {
                    Source::Field(
                        Field::from_name(name)
                            .ok_or_else(|| BinningError::UnknownField(name.clone()))?,
                    )
                };
                let (shares, bin_count) = match bins {
                    DriftBins::Numeric { edges, proportions } => (proportions, edges.len() + 1),
                    DriftBins::Categorical {
                        values,
                        proportions,
                    } => (proportions, values.len()),
                };
                if shares.len() != bin_count {
                    return Err(BinningError::Shape(name.clone()));
                }
                if bin_count > usize::from(u8::MAX) {
                    return Err(BinningError::TooManyBins(name.clone()));
                }
                Ok(Monitored {
                    name: name.clone(),
                    source,
                    bins: bins.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Binning { monitored })
    }

    /// The monitored names, in the order of [`Self::bins_of`].
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.monitored
            .iter()
            .map(|monitored| monitored.name.as_str())
    }

    /// The training shares of one monitored field.
    pub fn expected(&self, name: &str) -> Option<&[f64]> {
        self.monitored
            .iter()
            .find(|monitored| monitored.name == name)
            .map(Monitored::shares)
    }

    /// The bin of every monitored field for one decision, in [`Self::names`] order. Numeric
    /// bins are upper-exclusive (`edges[i-1] ≤ v < edges[i]`), as numpy.histogram's.
    pub fn bins_of(&self, application: &Application, probability: f32) -> Vec<u8> {
        self.monitored
            .iter()
            .map(|monitored| {
                let bin = match (&monitored.bins, monitored.source) {
                    (DriftBins::Numeric { edges, .. }, source) => {
                        let value = match source {
                            Source::Probability => Some(f64::from(probability)),
                            Source::Field(field) => application.number(field),
                        };
                        value.map_or(0, |value| edges.partition_point(|edge| *edge <= value))
                    }
                    (DriftBins::Categorical { values, .. }, Source::Field(field)) => application
                        .choice(field)
                        .and_then(|choice| values.iter().position(|value| value == choice))
                        .unwrap_or(0),
                    (DriftBins::Categorical { .. }, Source::Probability) => 0,
                };
                u8::try_from(bin).unwrap_or(u8::MAX)
            })
            .collect()
    }
}

/// Live bin counts per monitored field: mergeable, so windows add up to rolling views.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DriftCounts {
    pub decisions: u64,
    pub counts: BTreeMap<String, Vec<u64>>,
}

impl DriftCounts {
    pub fn is_empty(&self) -> bool {
        self.decisions == 0
    }

    /// Counts one decision's bins (from [`Binning::bins_of`] with the same binning). Bins of
    /// another shape (a decision scored by a different model spec) are not counted.
    pub fn add(&mut self, binning: &Binning, bins: &[u8]) {
        if bins.len() != binning.monitored.len() {
            return;
        }
        let fits = binning
            .monitored
            .iter()
            .zip(bins)
            .all(|(monitored, &bin)| monitored.shares().len() > usize::from(bin));
        if !fits {
            return;
        }
        self.decisions += 1;
        for (monitored, &bin) in binning.monitored.iter().zip(bins) {
            let counts = self
                .counts
                .entry(monitored.name.clone())
                .or_insert_with(|| vec![0; monitored.shares().len()]);
            if let Some(count) = counts.get_mut(usize::from(bin)) {
                *count += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &DriftCounts) {
        self.decisions += other.decisions;
        for (name, theirs) in &other.counts {
            let ours = self
                .counts
                .entry(name.clone())
                .or_insert_with(|| vec![0; theirs.len()]);
            if ours.len() == theirs.len() {
                ours.iter_mut().zip(theirs).for_each(|(a, b)| *a += b);
            }
        }
    }
}

/// The PSI of one field over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct FeatureDrift {
    pub feature: String,
    pub psi: Option<f64>,
    pub band: Option<DriftBand>,
    /// Live shares per bin, next to the training ones, for the dashboard.
    pub observed: Vec<f64>,
    pub expected: Vec<f64>,
}

/// A monitored field whose PSI is significant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DriftAlert {
    pub feature: String,
    pub psi: f64,
    pub message: Message,
}

/// PSI of every monitored field over one set of decisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DriftSummary {
    pub decisions: u64,
    /// Below `min_decisions` the numbers are shown but raise no alert: PSI of a handful of
    /// decisions is noise.
    pub enough_data: bool,
    pub max_psi: Option<f64>,
    pub band: Option<DriftBand>,
    pub features: Vec<FeatureDrift>,
    pub alerts: Vec<DriftAlert>,
}

impl DriftSummary {
    pub fn of(binning: &Binning, counts: &DriftCounts, min_decisions: u64) -> DriftSummary {
        let enough_data = counts.decisions > 0 && counts.decisions >= min_decisions;
        let features: Vec<FeatureDrift> = binning
            .monitored
            .iter()
            .map(|monitored| {
                let expected = monitored.shares();
                let live = counts.counts.get(&monitored.name);
                let psi = live.and_then(|live| psi(expected, live));
                let total: u64 = live.map_or(0, |live| live.iter().sum());
                FeatureDrift {
                    feature: monitored.name.clone(),
                    psi,
                    band: psi.map(DriftBand::of),
                    observed: live.map_or_else(Vec::new, |live| {
                        live.iter()
                            .map(|&count| count as f64 / total.max(1) as f64)
                            .collect()
                    }),
                    expected: expected.to_vec(),
                }
            })
            .collect();
        let max_psi = features
            .iter()
            .filter_map(|feature| feature.psi)
            .fold(None, |max: Option<f64>, psi| {
                Some(max.map_or(psi, |m| m.max(psi)))
            });
        let alerts = features
            .iter()
            .filter(|_| enough_data)
            .filter_map(|feature| Some((feature, feature.psi?)))
            .filter(|(_, psi)| *psi >= PSI_SIGNIFICANT)
            .map(|(feature, psi)| DriftAlert {
                feature: feature.feature.clone(),
                psi,
                message: Message::new(
                    format!(
                        "Deriva significativa en {}: PSI {psi:.3} ≥ {PSI_SIGNIFICANT}.",
                        feature.feature
                    ),
                    format!(
                        "Significant drift in {}: PSI {psi:.3} ≥ {PSI_SIGNIFICANT}.",
                        feature.feature
                    ),
                ),
            })
            .collect();
        DriftSummary {
            decisions: counts.decisions,
            enough_data,
            max_psi,
            band: max_psi.map(DriftBand::of),
            features,
            alerts,
        }
    }
}

/// One hour's drift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HourDrift {
    pub start_ms: i64,
    pub end_ms: i64,
    pub closed: bool,
    pub revised: bool,
    pub summary: DriftSummary,
}

/// `GET /api/v1/drift`: every 1-hour event-time window of the last 24 h, and their merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DriftReport {
    pub branch: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub min_decisions: u64,
    pub rolling_24h: DriftSummary,
    /// The newest hour window with decisions, if any.
    pub latest_hour: Option<HourDrift>,
    /// Oldest first.
    pub hours: Vec<HourDrift>,
}

#[cfg(test)]
mod tests;
