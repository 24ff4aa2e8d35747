//! The model's realized performance once loan outcomes come back: ROC AUC, Gini, KS, Brier
//! score, calibration deciles with Wilson intervals, default rates by band and by vintage,
//! and, where outcomes are not in yet, what a calibrated model would show.
//!
//! Storage hands over [`ScoreGroup`]s, decisions counted by vintage and probability, so the
//! edge reads one row per distinct score instead of one per decision. Every figure is
//! checked against scikit-learn, numpy and scipy on the model's held-out rows
//! (`models/holdout.json`, `tests/performance.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decision::model::spec::Thresholds;
use crate::decision::model::{classify, Band};
use crate::outcomes::loan_outcomes::LoanStatus;

/// Two-sided 95 % normal quantile, for Wilson intervals and the expected-rate interval.
pub const Z_95: f64 = 1.959_963_984_540_054;
/// Calibration is judged in ten equal-count groups of predicted probability.
pub const DECILES: usize = 10;
/// A vintage's calibration is judged only with this many matured loans: fewer make the
/// interval too wide to mean anything.
pub const MIN_MATURED_FOR_ALERT: u64 = 50;
/// Most points of the ROC curve sent to the dashboard.
pub const MAX_ROC_POINTS: usize = 101;

/// The vintage of a decision made at `ms`: its month in UTC, `YYYY-MM` (SQLite's
/// `strftime('%Y-%m', …, 'unixepoch')` at the edge).
pub fn vintage_of(ms: i64) -> String {
    crate::contract::time::format_rfc3339_ms(ms)[..7].to_owned()
}

/// Decisions of one vintage with one predicted probability, by what became of the loan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ScoreGroup {
    /// `YYYY-MM` of the decision.
    pub vintage: String,
    pub probability: f64,
    pub bad: u64,
    pub good: u64,
    /// Reported as still running.
    pub open: u64,
    /// No outcome reported yet.
    pub unreported: u64,
}

impl ScoreGroup {
    /// Counts one more decision whose loan stands at `status` (`None`: not reported).
    pub fn count(&mut self, status: Option<LoanStatus>) {
        match status {
            Some(LoanStatus::Bad) => self.bad += 1,
            Some(LoanStatus::Good) => self.good += 1,
            Some(LoanStatus::Open) => self.open += 1,
            None => self.unreported += 1,
        }
    }

    fn matured(&self) -> u64 {
        self.bad + self.good
    }

    fn decisions(&self) -> u64 {
        self.matured() + self.open + self.unreported
    }
}

/// `GET /api/v1/performance`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PerformanceReport {
    pub decisions: u64,
    /// Decisions whose loan ended good or bad.
    pub matured: u64,
    pub open: u64,
    pub unreported: u64,
    /// Defaults among matured loans.
    pub realized_default_rate: Option<f64>,
    /// Rank and calibration figures over matured loans; none until both a good and a bad
    /// one exist.
    pub realized: Option<Realized>,
    /// What a calibrated model expects over all decisions, outcomes in or not.
    pub expected: Expected,
    pub bands: Vec<BandRates>,
    pub vintages: Vec<Vintage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Realized {
    pub roc_auc: f64,
    pub gini: f64,
    pub ks: f64,
    pub brier: f64,
    pub deciles: Vec<Decile>,
    /// (false-positive rate, true-positive rate), from (0, 0) to (1, 1).
    pub roc: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Expected {
    /// Mean predicted probability.
    pub default_rate: f64,
    /// The AUC the scores would reach if each loan defaulted with its predicted probability.
    pub roc_auc: Option<f64>,
}

/// One calibration group: predicted against observed, with the observed rate's interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Decile {
    pub rows: u64,
    pub defaults: u64,
    pub mean_predicted: f64,
    pub observed: f64,
    pub low: f64,
    pub high: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BandRates {
    pub band: Band,
    pub decisions: u64,
    pub matured: u64,
    pub defaults: u64,
    pub realized_default_rate: Option<f64>,
    pub expected_default_rate: Option<f64>,
}

/// The loans decided in one month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Vintage {
    pub vintage: String,
    pub decisions: u64,
    pub matured: u64,
    pub open: u64,
    pub unreported: u64,
    pub defaults: u64,
    pub realized_default_rate: Option<f64>,
    /// Mean predicted probability of the matured loans, and its 95 % interval.
    pub expected_default_rate: Option<f64>,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
    /// The realized rate lies outside the expected one's interval.
    pub alert: bool,
}

impl PerformanceReport {
    /// Vintages whose realized default rate left the interval a calibrated model allows.
    pub fn calibration_alerts(&self) -> impl Iterator<Item = &Vintage> {
        self.vintages.iter().filter(|vintage| vintage.alert)
    }
}

/// Every figure of the report from the groups, in any order.
pub fn performance(groups: &[ScoreGroup], thresholds: Thresholds) -> PerformanceReport {
    let sorted = by_score(groups);
    let sum = |f: fn(&ScoreGroup) -> u64| groups.iter().map(f).sum::<u64>();
    let decisions = sum(ScoreGroup::decisions);
    let matured = sum(ScoreGroup::matured);
    let weighted: f64 = groups
        .iter()
        .map(|g| g.decisions() as f64 * g.probability)
        .sum();
    PerformanceReport {
        decisions,
        matured,
        open: sum(|g| g.open),
        unreported: sum(|g| g.unreported),
        realized_default_rate: ratio(sum(|g| g.bad) as f64, matured),
        realized: realized(&sorted),
        expected: Expected {
            default_rate: ratio(weighted, decisions).unwrap_or(0.0),
            roc_auc: expected_auc(&sorted),
        },
        bands: band_rates(groups, thresholds),
        vintages: vintages(groups),
    }
}

/// One group per distinct probability, ascending: the rank figures treat tied scores as one
/// threshold, whichever vintage they came from.
fn by_score(groups: &[ScoreGroup]) -> Vec<ScoreGroup> {
    let mut sorted: Vec<&ScoreGroup> = groups.iter().collect();
    sorted.sort_by(|a, b| a.probability.total_cmp(&b.probability));
    let mut merged: Vec<ScoreGroup> = Vec::with_capacity(sorted.len());
    for group in sorted {
        match merged.last_mut() {
            Some(last) if last.probability == group.probability => {
                last.bad += group.bad;
                last.good += group.good;
                last.open += group.open;
                last.unreported += group.unreported;
            }
            _ => merged.push(ScoreGroup {
                vintage: String::new(),
                ..group.clone()
            }),
        }
    }
    merged
}

fn ratio(numerator: f64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator / denominator as f64)
}

/// Matured loans' figures; `sorted` comes from [`by_score`].
fn realized(sorted: &[ScoreGroup]) -> Option<Realized> {
    let bads: u64 = sorted.iter().map(|g| g.bad).sum();
    let goods: u64 = sorted.iter().map(|g| g.good).sum();
    if bads == 0 || goods == 0 {
        return None;
    }
    let (b, g) = (bads as f64, goods as f64);
    // Pairs (bad, good) where the bad loan scored higher; ties count one half.
    let mut concordant = 0.0;
    let mut goods_below = 0.0;
    let mut brier = 0.0;
    for group in sorted {
        let (bad, good, p) = (group.bad as f64, group.good as f64, group.probability);
        concordant += bad * goods_below + 0.5 * bad * good;
        goods_below += good;
        brier += bad * (1.0 - p).powi(2) + good * p.powi(2);
    }
    let roc_auc = concordant / (b * g);
    // Thresholds from the top down, one per distinct score, as in scikit-learn.
    let mut roc = vec![(0.0, 0.0)];
    let (mut bads_above, mut goods_above, mut ks) = (0.0, 0.0, 0.0_f64);
    for group in sorted.iter().rev() {
        bads_above += group.bad as f64;
        goods_above += group.good as f64;
        let point = (goods_above / g, bads_above / b);
        ks = ks.max(point.1 - point.0);
        if roc.last() != Some(&point) {
            roc.push(point);
        }
    }
    Some(Realized {
        roc_auc,
        gini: 2.0 * roc_auc - 1.0,
        ks,
        brier: brier / (b + g),
        deciles: deciles(sorted, bads + goods),
        roc: thin(roc),
    })
}

/// Ten equal-count groups of matured loans by predicted probability, the first ones one row
/// larger when the count does not divide (numpy's `array_split`). Within tied scores, bad
/// loans are taken first.
fn deciles(sorted: &[ScoreGroup], matured: u64) -> Vec<Decile> {
    let size = |index: usize| {
        matured / DECILES as u64 + u64::from((index as u64) < matured % DECILES as u64)
    };
    let mut out = Vec::with_capacity(DECILES);
    let (mut rows, mut defaults, mut predicted) = (0_u64, 0_u64, 0.0);
    for group in sorted {
        let (mut bad, mut good) = (group.bad, group.good);
        while bad + good > 0 {
            let room = size(out.len()) - rows;
            let take_bad = bad.min(room);
            let take_good = good.min(room - take_bad);
            rows += take_bad + take_good;
            defaults += take_bad;
            predicted += (take_bad + take_good) as f64 * group.probability;
            (bad, good) = (bad - take_bad, good - take_good);
            if rows == size(out.len()) {
                let (low, high) = wilson(defaults, rows);
                out.push(Decile {
                    rows,
                    defaults,
                    mean_predicted: predicted / rows as f64,
                    observed: defaults as f64 / rows as f64,
                    low,
                    high,
                });
                (rows, defaults, predicted) = (0, 0, 0.0);
            }
        }
    }
    out
}

/// Wilson's 95 % interval of a binomial proportion of `successes` in `trials`.
pub fn wilson(successes: u64, trials: u64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z2) = (successes as f64, trials as f64, Z_95 * Z_95);
    let centre = (k + z2 / 2.0) / (n + z2);
    let half = Z_95 / (n + z2) * (k * (n - k) / n + z2 / 4.0).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Pairs of distinct decisions weighted by "this one defaults, that one repays", if each
/// defaulted with its predicted probability; `sorted` comes from [`by_score`].
fn expected_auc(sorted: &[ScoreGroup]) -> Option<f64> {
    let mut numerator = 0.0;
    let mut good_weight_below = 0.0;
    let (mut bad_weight, mut good_weight, mut self_pairs) = (0.0, 0.0, 0.0);
    for group in sorted {
        let (p, rows) = (group.probability, group.decisions() as f64);
        numerator += rows * p * good_weight_below + 0.5 * p * (1.0 - p) * rows * (rows - 1.0);
        good_weight_below += rows * (1.0 - p);
        bad_weight += rows * p;
        good_weight += rows * (1.0 - p);
        self_pairs += rows * p * (1.0 - p);
    }
    let denominator = bad_weight * good_weight - self_pairs;
    (denominator > 0.0).then(|| numerator / denominator)
}

/// At most [`MAX_ROC_POINTS`] of the curve, evenly spread, both ends kept.
fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= MAX_ROC_POINTS {
        return points;
    }
    let last = points.len() - 1;
    (0..MAX_ROC_POINTS)
        .map(|i| points[i * last / (MAX_ROC_POINTS - 1)])
        .collect()
}

fn band_rates(groups: &[ScoreGroup], thresholds: Thresholds) -> Vec<BandRates> {
    [Band::Bajo, Band::Medio, Band::Alto]
        .into_iter()
        .map(|band| {
            let of_band: Vec<&ScoreGroup> = groups
                .iter()
                .filter(|g| classify(g.probability as f32, thresholds).0 == band)
                .collect();
            let matured: u64 = of_band.iter().map(|g| g.matured()).sum();
            let defaults: u64 = of_band.iter().map(|g| g.bad).sum();
            let predicted: f64 = of_band
                .iter()
                .map(|g| g.matured() as f64 * g.probability)
                .sum();
            BandRates {
                band,
                decisions: of_band.iter().map(|g| g.decisions()).sum(),
                matured,
                defaults,
                realized_default_rate: ratio(defaults as f64, matured),
                expected_default_rate: ratio(predicted, matured),
            }
        })
        .collect()
}

fn vintages(groups: &[ScoreGroup]) -> Vec<Vintage> {
    let mut by_month: BTreeMap<&str, Vec<&ScoreGroup>> = BTreeMap::new();
    for group in groups {
        by_month.entry(&group.vintage).or_default().push(group);
    }
    by_month
        .into_iter()
        .map(|(month, groups)| {
            let sum = |f: fn(&ScoreGroup) -> u64| groups.iter().map(|g| f(g)).sum::<u64>();
            let matured = sum(ScoreGroup::matured);
            let defaults = sum(|g| g.bad);
            // Defaults among matured loans follow a Poisson binomial if the model is
            // calibrated: mean Σp, variance Σp(1-p).
            let mean: f64 = groups
                .iter()
                .map(|g| g.matured() as f64 * g.probability)
                .sum();
            let variance: f64 = groups
                .iter()
                .map(|g| g.matured() as f64 * g.probability * (1.0 - g.probability))
                .sum();
            let interval = |sign: f64| ratio(mean + sign * Z_95 * variance.sqrt(), matured);
            let realized = ratio(defaults as f64, matured);
            let (low, high) = (interval(-1.0), interval(1.0));
            let alert = matured >= MIN_MATURED_FOR_ALERT
                && matches!((realized, low, high), (Some(r), Some(l), Some(h)) if r < l || r > h);
            Vintage {
                vintage: month.to_owned(),
                decisions: sum(ScoreGroup::decisions),
                matured,
                open: sum(|g| g.open),
                unreported: sum(|g| g.unreported),
                defaults,
                realized_default_rate: realized,
                expected_default_rate: ratio(mean, matured),
                expected_low: low.map(|v| v.max(0.0)),
                expected_high: high.map(|v| v.min(1.0)),
                alert,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const THRESHOLDS: Thresholds = Thresholds {
        review: 0.2,
        decline: 0.5,
    };

    fn group(vintage: &str, probability: f64, bad: u64, good: u64) -> ScoreGroup {
        ScoreGroup {
            vintage: vintage.to_owned(),
            probability,
            bad,
            good,
            ..ScoreGroup::default()
        }
    }

    #[test]
    fn perfect_and_inverted_rankings() {
        let perfect = performance(
            &[group("2026-01", 0.1, 0, 3), group("2026-01", 0.9, 2, 0)],
            THRESHOLDS,
        );
        let realized = perfect.realized.expect("in the test");
        assert_eq!(
            (realized.roc_auc, realized.ks, realized.gini),
            (1.0, 1.0, 1.0)
        );
        let inverted = performance(
            &[group("2026-01", 0.1, 2, 0), group("2026-01", 0.9, 0, 3)],
            THRESHOLDS,
        );
        assert_eq!(inverted.realized.expect("in the test").roc_auc, 0.0);
    }

    #[test]
    fn ties_count_one_half_and_one_class_has_no_auc() {
        let tied = performance(&[group("2026-01", 0.3, 5, 5)], THRESHOLDS);
        assert_eq!(tied.realized.expect("in the test").roc_auc, 0.5);
        let only_good = performance(&[group("2026-01", 0.3, 0, 5)], THRESHOLDS);
        assert_eq!(only_good.realized, None);
        assert_eq!(only_good.matured, 5);
    }

    #[test]
    fn open_loans_count_in_the_expected_figures_only() {
        let mut open = group("2026-02", 0.4, 0, 0);
        open.open = 3;
        open.unreported = 1;
        let report = performance(&[group("2026-01", 0.2, 1, 1), open], THRESHOLDS);
        assert_eq!((report.decisions, report.matured), (6, 2));
        assert!((report.expected.default_rate - (0.4 + 4.0 * 0.4) / 6.0).abs() < 1e-12);
        assert_eq!(report.vintages[1].realized_default_rate, None);
        assert!(!report.vintages[1].alert);
    }

    #[test]
    fn a_vintage_far_from_its_predictions_raises_the_alert() {
        let calibrated = performance(&[group("2026-03", 0.3, 30, 70)], THRESHOLDS);
        assert!(!calibrated.vintages[0].alert);
        let drifted = performance(&[group("2026-03", 0.3, 50, 50)], THRESHOLDS);
        assert!(drifted.vintages[0].alert);
        assert_eq!(drifted.calibration_alerts().count(), 1);
        let too_few = performance(&[group("2026-03", 0.3, 20, 10)], THRESHOLDS);
        assert!(!too_few.vintages[0].alert);
    }

    #[test]
    fn wilson_interval_of_edge_proportions() {
        let (low, high) = wilson(0, 10);
        assert_eq!(low, 0.0);
        assert!((high - 0.277_532_798).abs() < 1e-6, "{high}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
