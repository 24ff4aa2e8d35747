//! Mergeable aggregates of a set of observations, and the summary the API shows of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Observation, Outcome};
use crate::decision::model::{Band, Decision};
use crate::intake::channel::Channel;
use crate::monitoring::sketch::Sketch;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BandCounts {
    pub bajo: u64,
    pub medio: u64,
    pub alto: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DecisionCounts {
    pub approve: u64,
    pub review: u64,
    pub decline: u64,
}

/// Mergeable aggregates of a set of observations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Stats {
    pub count: u64,
    pub decisions: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub bands: BandCounts,
    pub outcomes: DecisionCounts,
    /// Sums in arrival order, so a recomputation in the same order gives the same bits.
    pub sum_probability: f64,
    pub sum_confidence: f64,
    pub mismatches: u64,
    /// Latency per channel: an online answer, a batch's running time and an event's
    /// processing in the queue consumer are different things.
    #[serde(default)]
    pub latency_by_channel: BTreeMap<Channel, Sketch>,
    pub first_received_ms: Option<i64>,
    pub last_received_ms: Option<i64>,
}

impl Stats {
    pub fn add(&mut self, observation: &Observation) {
        self.count += 1;
        self.latency_by_channel
            .entry(observation.channel)
            .or_default()
            .add(observation.latency_ms);
        let received = observation.received_at_ms;
        self.first_received_ms = Some(self.first_received_ms.map_or(received, |t| t.min(received)));
        self.last_received_ms = Some(self.last_received_ms.map_or(received, |t| t.max(received)));
        match &observation.outcome {
            Outcome::Decided {
                band,
                decision,
                probability,
                confidence,
                mismatch,
            } => {
                self.decisions += 1;
                match band {
                    Band::Bajo => self.bands.bajo += 1,
                    Band::Medio => self.bands.medio += 1,
                    Band::Alto => self.bands.alto += 1,
                }
                match decision {
                    Decision::Approve => self.outcomes.approve += 1,
                    Decision::Review => self.outcomes.review += 1,
                    Decision::Decline => self.outcomes.decline += 1,
                }
                self.sum_probability += f64::from(*probability);
                self.sum_confidence += f64::from(*confidence);
                self.mismatches += u64::from(*mismatch);
            }
            Outcome::Failed { code } => {
                *self
                    .errors_by_code
                    .entry(code.as_str().to_owned())
                    .or_default() += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        self.count += other.count;
        self.decisions += other.decisions;
        for (code, count) in &other.errors_by_code {
            *self.errors_by_code.entry(code.clone()).or_default() += count;
        }
        self.bands.bajo += other.bands.bajo;
        self.bands.medio += other.bands.medio;
        self.bands.alto += other.bands.alto;
        self.outcomes.approve += other.outcomes.approve;
        self.outcomes.review += other.outcomes.review;
        self.outcomes.decline += other.outcomes.decline;
        self.sum_probability += other.sum_probability;
        self.sum_confidence += other.sum_confidence;
        self.mismatches += other.mismatches;
        for (channel, sketch) in &other.latency_by_channel {
            self.latency_by_channel
                .entry(*channel)
                .or_default()
                .merge(sketch);
        }
        self.first_received_ms = match (self.first_received_ms, other.first_received_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_received_ms = match (self.last_received_ms, other.last_received_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn errors(&self) -> u64 {
        self.errors_by_code.values().sum()
    }

    /// The latency sketch of one channel (empty if it saw nothing).
    pub fn latency(&self, channel: Channel) -> Sketch {
        self.latency_by_channel
            .get(&channel)
            .cloned()
            .unwrap_or_default()
    }

    pub fn summary(&self) -> Summary {
        let decisions = self.decisions as f64;
        let mean = |sum: f64| (self.decisions > 0).then(|| sum / decisions);
        Summary {
            count: self.count,
            decisions: self.decisions,
            errors: self.errors(),
            errors_by_code: self.errors_by_code.clone(),
            success_rate: (self.count > 0).then(|| decisions / self.count as f64),
            error_rate: (self.count > 0).then(|| self.errors() as f64 / self.count as f64),
            latency_ms: Percentiles::of(&self.latency(Channel::Online)),
            latency_sum_ms: self.latency(Channel::Online).sum(),
            latency_by_channel: self
                .latency_by_channel
                .iter()
                .map(|(channel, sketch)| (*channel, Percentiles::of(sketch)))
                .collect(),
            bands: self.bands,
            outcomes: self.outcomes,
            default_risk_ratio: (self.bands.bajo > 0)
                .then(|| self.bands.alto as f64 / self.bands.bajo as f64),
            mean_probability: mean(self.sum_probability),
            mean_confidence: mean(self.sum_confidence),
            mismatches: self.mismatches,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    /// How many latencies, and their sum, for rates and means.
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub sum_ms: f64,
}

impl Percentiles {
    pub fn of(sketch: &Sketch) -> Percentiles {
        Percentiles {
            p50: sketch.quantile(0.50),
            p95: sketch.quantile(0.95),
            p99: sketch.quantile(0.99),
            max: sketch.max(),
            count: sketch.count(),
            sum_ms: sketch.sum(),
        }
    }
}

/// The aggregates as the API shows them; rates and means are absent when undefined.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Summary {
    pub count: u64,
    pub decisions: u64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub success_rate: Option<f64>,
    pub error_rate: Option<f64>,
    /// Latency of online answers (`POST /api/v1/score`), which the performance state judges.
    pub latency_ms: Percentiles,
    pub latency_sum_ms: f64,
    /// Latency of every channel: online answers, a batch's running time per item, an
    /// event's processing in the queue consumer.
    #[serde(default)]
    pub latency_by_channel: BTreeMap<Channel, Percentiles>,
    pub bands: BandCounts,
    pub outcomes: DecisionCounts,
    /// Predicted high-risk (`alto`) over predicted low-risk (`bajo`) decisions.
    pub default_risk_ratio: Option<f64>,
    pub mean_probability: Option<f64>,
    pub mean_confidence: Option<f64>,
    pub mismatches: u64,
}
