//! The per-branch series of `GET /metrics`: realized and expected default rates, calibration
//! alerts, fairness and input drift, with a `branch` label bounded by the configured
//! branches plus [`OTHER_BRANCH`], so an alert names the branch without the label set
//! growing with every branch name an application sends.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::decision::model::spec::Thresholds;
use crate::monitoring::drift::DriftReport;
use crate::monitoring::metrics::{family, label, number, GAUGE};
use crate::outcomes::fairness::{fairness, AttributeFairness, FairnessCount, FairnessReport};
use crate::outcomes::performance::{performance, PerformanceReport, ScoreGroup};

/// Where decisions of branches that are not configured are counted.
pub const OTHER_BRANCH: &str = "other";
/// How far back the per-branch figures reach, in days: older loans say little about today.
pub const MONITORING_DAYS: i64 = 400;

/// `MONITORED_BRANCHES`: comma-separated branch names; names that are not branches are
/// skipped, and an empty list monitors the default branch.
pub fn parse_monitored_branches(text: &str) -> Vec<String> {
    let mut branches: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|name| crate::intake::branch::is_branch(name))
        .map(str::to_owned)
        .collect();
    branches.dedup();
    if branches.is_empty() {
        branches.push(crate::intake::branch::DEFAULT_BRANCH.to_owned());
    }
    branches
}

/// The `branch` label of a decision's branch.
pub fn branch_label<'a>(branch: &'a str, monitored: &[String]) -> &'a str {
    if monitored.iter().any(|m| m == branch) {
        branch
    } else {
        OTHER_BRANCH
    }
}

/// One branch label's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct BranchFigures {
    pub branch: String,
    pub performance: PerformanceReport,
    pub fairness: FairnessReport,
    /// Only configured branches have their own drift windows.
    pub drift: Option<DriftReport>,
}

/// Groups and counts, each tagged with its decision's branch, folded under their labels;
/// every configured branch appears, with or without decisions.
pub fn branch_figures(
    groups: Vec<(String, ScoreGroup)>,
    counts: Vec<(String, FairnessCount)>,
    monitored: &[String],
    thresholds: Thresholds,
) -> Vec<BranchFigures> {
    let mut by_label: BTreeMap<String, (Vec<ScoreGroup>, Vec<FairnessCount>)> = monitored
        .iter()
        .map(|branch| (branch.clone(), Default::default()))
        .collect();
    for (branch, group) in groups {
        let key = branch_label(&branch, monitored).to_owned();
        by_label.entry(key).or_default().0.push(group);
    }
    for (branch, count) in counts {
        let key = branch_label(&branch, monitored).to_owned();
        by_label.entry(key).or_default().1.push(count);
    }
    by_label
        .into_iter()
        .map(|(branch, (groups, counts))| BranchFigures {
            branch,
            performance: performance(&groups, thresholds),
            fairness: fairness(&counts),
            drift: None,
        })
        .collect()
}

/// The per-branch families, appended to the rest of `/metrics`.
pub fn render_branches(out: &mut String, branches: &[BranchFigures]) {
    type Line = fn(&BranchFigures) -> Option<f64>;
    let gauges: [(&str, &str, Line); 7] = [
        ("valle_outcomes_matured", "Decisions whose loan ended good or bad.", |b| {
            Some(b.performance.matured as f64)
        }),
        (
            "valle_outcomes_pending",
            "Decisions whose loan is open or has no reported outcome (label delay).",
            |b| Some((b.performance.open + b.performance.unreported) as f64),
        ),
        (
            "valle_realized_default_rate",
            "Defaults among matured loans.",
            |b| b.performance.realized_default_rate,
        ),
        (
            "valle_expected_default_rate",
            "Mean predicted probability of default over all decisions.",
            |b| (b.performance.decisions > 0).then_some(b.performance.expected.default_rate),
        ),
        ("valle_realized_roc_auc", "ROC AUC over matured loans.", |b| {
            b.performance.realized.as_ref().map(|r| r.roc_auc)
        }),
        (
            "valle_calibration_alert",
            "1 when some vintage's realized default rate lies outside the 95 % interval of the predicted one.",
            |b| Some(f64::from(u8::from(b.performance.calibration_alerts().next().is_some()))),
        ),
        (
            "valle_branch_drift_significant_features",
            "Fields with PSI of 0.2 or more over the branch's last 24 h, once it has enough decisions.",
            |b| b.drift.as_ref().map(|d| d.rolling_24h.alerts.len() as f64),
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, GAUGE, help);
        for branch in branches {
            if let Some(value) = value(branch) {
                let _ = writeln!(
                    out,
                    "{name}{{branch=\"{}\"}} {}",
                    label(&branch.branch),
                    number(value)
                );
            }
        }
    }
    family(
        out,
        "valle_branch_drift_psi_max",
        GAUGE,
        "Largest PSI among monitored fields over the branch's last 24 h.",
    );
    for branch in branches {
        if let Some(psi) = branch.drift.as_ref().and_then(|d| d.rolling_24h.max_psi) {
            let _ = writeln!(
                out,
                "valle_branch_drift_psi_max{{branch=\"{}\"}} {}",
                label(&branch.branch),
                number(psi)
            );
        }
    }
    type AttributeLine = fn(&AttributeFairness) -> Option<f64>;
    let by_attribute: [(&str, &str, AttributeLine); 3] = [
        (
            "valle_fairness_disparate_impact",
            "Lowest selection rate (not declined) of a group over the most favoured group's (four-fifths rule below 0.8).",
            |a| a.min_ratio,
        ),
        (
            "valle_fairness_tpr_gap",
            "Largest gap in selection rate among repaid loans between groups.",
            |a| a.tpr_gap,
        ),
        (
            "valle_fairness_alert",
            "1 when some group is selected at less than four fifths of the most favoured group's rate.",
            |a| Some(f64::from(u8::from(a.alert))),
        ),
    ];
    for (name, help, value) in by_attribute {
        family(out, name, GAUGE, help);
        for branch in branches {
            for attribute in &branch.fairness.attributes {
                if let Some(value) = value(attribute) {
                    let _ = writeln!(
                        out,
                        "{name}{{branch=\"{}\",attribute=\"{}\"}} {}",
                        label(&branch.branch),
                        attribute.attribute.as_str(),
                        number(value)
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::model::Decision;

    const THRESHOLDS: Thresholds = Thresholds {
        review: 0.2,
        decline: 0.5,
    };

    #[test]
    fn monitored_branches_are_parsed_with_a_default() {
        assert_eq!(parse_monitored_branches(" norte, sur ,,"), ["norte", "sur"]);
        assert_eq!(parse_monitored_branches(""), ["principal"]);
    }

    #[test]
    fn unconfigured_branches_fold_into_other_and_configured_ones_always_appear() {
        let group = |bad, good| ScoreGroup {
            vintage: "2026-11".to_owned(),
            probability: 0.3,
            bad,
            good,
            ..ScoreGroup::default()
        };
        let monitored = vec!["norte".to_owned(), "sur".to_owned()];
        let figures = branch_figures(
            vec![
                ("norte".to_owned(), group(60, 40)),
                ("x1".to_owned(), group(1, 2)),
                ("x2".to_owned(), group(2, 1)),
            ],
            vec![(
                "norte".to_owned(),
                FairnessCount {
                    age_band: "18-25".to_owned(),
                    marital: "single".to_owned(),
                    decision: Decision::Approve,
                    status: None,
                    count: 3,
                },
            )],
            &monitored,
            THRESHOLDS,
        );
        let names: Vec<&str> = figures.iter().map(|b| b.branch.as_str()).collect();
        assert_eq!(names, ["norte", "other", "sur"]);
        assert_eq!(figures[1].performance.matured, 6);
        let mut out = String::new();
        render_branches(&mut out, &figures);
        assert!(
            out.contains("valle_calibration_alert{branch=\"norte\"} 1"),
            "{out}"
        );
        assert!(out.contains("valle_calibration_alert{branch=\"sur\"} 0"));
        assert!(out.contains("valle_fairness_alert{branch=\"norte\",attribute=\"age_band\"} 0"));
        assert!(!out.contains("x1"));
    }
}
