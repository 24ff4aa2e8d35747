//! A mergeable quantile sketch for latencies (DDSketch, logarithmic buckets): any quantile is
//! answered within [`RELATIVE_ACCURACY`] of the true value, whatever the distribution, and two
//! sketches merge by adding bucket counts, so windows combine without keeping every latency.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Relative error bound of every quantile: half of the 1 % the KPIs promise, so that the
/// rank interpolation of a discrete sample never pushes the answer past 1 %.
pub const RELATIVE_ACCURACY: f64 = 0.005;
/// Values at or below this (in the sketch's unit, milliseconds for latencies) share one bucket.
const MIN_TRACKED: f64 = 1e-3;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Sketch {
    /// Bucket index to count; bucket `i` holds values in `(γ^(i-1), γ^i]`.
    buckets: BTreeMap<i32, u64>,
    /// Values at or below [`MIN_TRACKED`], zero and negatives included.
    low: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch::default()
    }

    /// Adds one value; NaN is ignored because no latency is NaN.
    pub fn add(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
        if value <= MIN_TRACKED {
            self.low += 1;
        } else {
            let index = (value.ln() / gamma().ln()).ceil() as i32;
            *self.buckets.entry(index).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        self.low += other.low;
        for (index, count) in &other.buckets {
            *self.buckets.entry(*index).or_default() += count;
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The value at quantile `q` (0..=1): the lower-rank sample (`rank = ⌊q·(n−1)⌋`), within
    /// [`RELATIVE_ACCURACY`] of it and clamped to the exact min and max.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.low {
            return Some(self.min.min(MIN_TRACKED));
        }
        let mut seen = self.low;
        for (index, count) in &self.buckets {
            seen += count;
            if seen > rank {
                let value = 2.0 * gamma().powi(*index) / (gamma() + 1.0);
                return Some(value.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// How many values are at or below `bound` (exact for bounds on bucket edges, otherwise
    /// within the sketch's accuracy); used for Prometheus histogram buckets.
    pub fn count_at_or_below(&self, bound: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        if bound >= self.max {
            return self.count;
        }
        let mut total = if bound >= MIN_TRACKED.min(self.min) {
            self.low
        } else {
            0
        };
        for (index, count) in &self.buckets {
            let representative = 2.0 * gamma().powi(*index) / (gamma() + 1.0);
            if representative <= bound {
                total += count;
            } else {
                break;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact lower-rank quantile the sketch approximates.
    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn check_accuracy(name: &str, values: &[f64]) {
        let mut sketch = Sketch::new();
        values.iter().for_each(|value| sketch.add(*value));
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let truth = exact(&sorted, q);
            let estimate = sketch.quantile(q).unwrap_or(f64::NAN);
            let error = (estimate - truth).abs() / truth.abs().max(MIN_TRACKED);
            assert!(
                error <= 0.01,
                "{name} q={q}: {estimate} vs {truth} ({error})"
            );
        }
        assert_eq!(sketch.count(), values.len() as u64);
    }

    /// A small deterministic generator, so the test needs no crate and never flakes.
    fn uniform(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn quantiles_within_one_percent() {
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        let uniform_ms: Vec<f64> = (0..20_000)
            .map(|_| 0.5 + 99.5 * uniform(&mut seed))
            .collect();
        check_accuracy("uniform", &uniform_ms);
        let log_normal: Vec<f64> = (0..20_000)
            .map(|_| {
                let (a, b) = (uniform(&mut seed).max(1e-12), uniform(&mut seed));
                let normal = (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos();
                (1.5 + 0.9 * normal).exp()
            })
            .collect();
        check_accuracy("log-normal", &log_normal);
        let heavy_tail: Vec<f64> = (0..5_000)
            .map(|i| {
                if i % 100 == 0 {
                    5_000.0 + i as f64
                } else {
                    2.0
                }
            })
            .collect();
        check_accuracy("heavy tail", &heavy_tail);
        check_accuracy("single", &[7.25]);
    }

    #[test]
    fn merge_equals_one_sketch_of_everything() {
        let mut seed = 42;
        let values: Vec<f64> = (0..3_000).map(|_| 100.0 * uniform(&mut seed)).collect();
        let mut whole = Sketch::new();
        let (mut left, mut right) = (Sketch::new(), Sketch::new());
        for (i, value) in values.iter().enumerate() {
            whole.add(*value);
            if i % 3 == 0 {
                left.add(*value);
            } else {
                right.add(*value);
            }
        }
        left.merge(&right);
        assert_eq!(left.count(), whole.count());
        for q in [0.5, 0.95, 0.99] {
            assert_eq!(left.quantile(q), whole.quantile(q));
        }
    }

    #[test]
    fn empty_zero_and_histogram_counts() {
        let mut sketch = Sketch::new();
        assert_eq!(sketch.quantile(0.5), None);
        assert_eq!(sketch.count_at_or_below(10.0), 0);
        for value in [0.0, 0.0, 3.0, 8.0, 40.0] {
            sketch.add(value);
        }
        sketch.add(f64::NAN);
        assert_eq!(sketch.count(), 5);
        assert_eq!(sketch.quantile(0.0), Some(0.0));
        assert_eq!(sketch.count_at_or_below(0.0005), 2);
        assert_eq!(sketch.count_at_or_below(5.0), 3);
        assert_eq!(sketch.count_at_or_below(10.0), 4);
        assert_eq!(sketch.count_at_or_below(1_000.0), 5);
        assert_eq!(sketch.max(), Some(40.0));
    }
}
