//! Fairness by protected attribute (age band, marital status): approval and decline rates,
//! the disparate-impact ratio against the most favoured group (the four-fifths rule) and,
//! once outcomes exist, the gap in true-positive rate between groups.
//!
//! The adverse decision is the model's decline: an application it approves or refers to an
//! officer is *selected*, and the selection rate is what the four-fifths rule compares. The
//! true-positive rate is the selection rate among applicants who repaid.
//!
//! Storage hands over [`FairnessCount`]s, decisions counted by group, decision and outcome.

use serde::{Deserialize, Serialize};

use crate::decision::model::Decision;
use crate::intake::application::Application;
use crate::outcomes::loan_outcomes::LoanStatus;

/// The four-fifths rule: a group selected (not declined) at less than this share of the
/// most favoured group's rate shows adverse impact.
pub const FOUR_FIFTHS: f64 = 0.8;
/// Groups with fewer decisions are listed but not judged: their rates are noise.
pub const MIN_GROUP_DECISIONS: u64 = 30;
/// Lower bounds of the age bands; the last band is open-ended.
pub const AGE_BAND_FLOORS: [u32; 6] = [18, 26, 36, 46, 56, 66];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProtectedAttribute {
    AgeBand,
    Marital,
}

pub const PROTECTED_ATTRIBUTES: [ProtectedAttribute; 2] =
    [ProtectedAttribute::AgeBand, ProtectedAttribute::Marital];

impl ProtectedAttribute {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectedAttribute::AgeBand => "age_band",
            ProtectedAttribute::Marital => "marital",
        }
    }
}

/// The name of the age band `age` falls in: `18-25`, …, `66+`.
pub fn age_band(age: u32) -> String {
    let index = AGE_BAND_FLOORS
        .iter()
        .rposition(|floor| age >= *floor)
        .unwrap_or(0);
    age_band_name(index)
}

/// The name of the band starting at `AGE_BAND_FLOORS[index]`.
pub fn age_band_name(index: usize) -> String {
    match AGE_BAND_FLOORS.get(index + 1) {
        Some(next) => format!("{}-{}", AGE_BAND_FLOORS[index], next - 1),
        None => format!("{}+", AGE_BAND_FLOORS[index]),
    }
}

/// Decisions of one age band and marital status with one model decision and outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct FairnessCount {
    pub age_band: String,
    pub marital: String,
    pub decision: Decision,
    /// `None`: no outcome reported.
    pub status: Option<LoanStatus>,
    pub count: u64,
}

impl FairnessCount {
    /// One decision, as counted from a stored application.
    pub fn of(application: &Application, decision: Decision, status: Option<LoanStatus>) -> Self {
        FairnessCount {
            age_band: age_band(application.age),
            marital: application.marital.as_str().to_owned(),
            decision,
            status,
            count: 1,
        }
    }

    fn group(&self, attribute: ProtectedAttribute) -> &str {
        match attribute {
            ProtectedAttribute::AgeBand => &self.age_band,
            ProtectedAttribute::Marital => &self.marital,
        }
    }
}

/// `GET /api/v1/fairness`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct FairnessReport {
    pub attributes: Vec<AttributeFairness>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AttributeFairness {
    pub attribute: ProtectedAttribute,
    pub groups: Vec<GroupRates>,
    /// The judged group with the highest selection rate.
    pub most_favoured: Option<String>,
    /// The lowest disparate-impact ratio among judged groups.
    pub min_ratio: Option<f64>,
    /// Largest minus smallest true-positive rate among judged groups with repaid loans.
    pub tpr_gap: Option<f64>,
    /// Some judged group is selected at less than four fifths of the most favoured rate.
    pub alert: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct GroupRates {
    pub group: String,
    pub decisions: u64,
    pub approved: u64,
    pub declined: u64,
    pub approval_rate: f64,
    pub decline_rate: f64,
    /// Not declined: approved, or referred to an officer.
    pub selection_rate: f64,
    /// Whether the group has enough decisions to be judged.
    pub judged: bool,
    /// Selection rate over the most favoured group's.
    pub disparate_impact: Option<f64>,
    /// Loans that were repaid, and how many of them the model did not decline.
    pub repaid: u64,
    pub repaid_selected: u64,
    pub true_positive_rate: Option<f64>,
}

impl FairnessReport {
    pub fn alerts(&self) -> impl Iterator<Item = &AttributeFairness> {
        self.attributes.iter().filter(|a| a.alert)
    }
}

pub fn fairness(counts: &[FairnessCount]) -> FairnessReport {
    FairnessReport {
        attributes: PROTECTED_ATTRIBUTES
            .into_iter()
            .map(|attribute| attribute_fairness(counts, attribute))
            .collect(),
    }
}

fn attribute_fairness(
    counts: &[FairnessCount],
    attribute: ProtectedAttribute,
) -> AttributeFairness {
    let mut names: Vec<&str> = counts.iter().map(|c| c.group(attribute)).collect();
    names.sort_unstable();
    names.dedup();
    let mut groups: Vec<GroupRates> = names
        .into_iter()
        .map(|name| {
            let of_group = || counts.iter().filter(move |c| c.group(attribute) == name);
            let sum = |keep: &dyn Fn(&FairnessCount) -> bool| {
                of_group().filter(|c| keep(c)).map(|c| c.count).sum::<u64>()
            };
            let decisions = sum(&|_| true);
            let approved = sum(&|c| c.decision == Decision::Approve);
            let declined = sum(&|c| c.decision == Decision::Decline);
            let repaid = sum(&|c| c.status == Some(LoanStatus::Good));
            let repaid_selected =
                sum(&|c| c.status == Some(LoanStatus::Good) && c.decision != Decision::Decline);
            let rate = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
            GroupRates {
                group: name.to_owned(),
                decisions,
                approved,
                declined,
                approval_rate: rate(approved, decisions),
                decline_rate: rate(declined, decisions),
                selection_rate: rate(decisions - declined, decisions),
                judged: decisions >= MIN_GROUP_DECISIONS,
                disparate_impact: None,
                repaid,
                repaid_selected,
                true_positive_rate: (repaid > 0).then(|| rate(repaid_selected, repaid)),
            }
        })
        .collect();
    let favoured = groups
        .iter()
        .filter(|g| g.judged)
        .max_by(|a, b| a.selection_rate.total_cmp(&b.selection_rate))
        .map(|g| (g.group.clone(), g.selection_rate));
    if let Some((_, best)) = &favoured {
        for group in groups.iter_mut().filter(|g| g.judged) {
            group.disparate_impact = Some(if *best > 0.0 {
                group.selection_rate / best
            } else {
                1.0
            });
        }
    }
    let min_ratio = groups
        .iter()
        .filter_map(|g| g.disparate_impact)
        .min_by(f64::total_cmp);
    let rates: Vec<f64> = groups
        .iter()
        .filter(|g| g.judged)
        .filter_map(|g| g.true_positive_rate)
        .collect();
    let tpr_gap = (rates.len() >= 2).then(|| {
        rates.iter().copied().fold(f64::MIN, f64::max)
            - rates.iter().copied().fold(f64::MAX, f64::min)
    });
    AttributeFairness {
        attribute,
        groups,
        most_favoured: favoured.map(|(name, _)| name),
        min_ratio,
        tpr_gap,
        alert: min_ratio.is_some_and(|ratio| ratio < FOUR_FIFTHS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(
        age_band: &str,
        decision: Decision,
        status: Option<LoanStatus>,
        n: u64,
    ) -> FairnessCount {
        FairnessCount {
            age_band: age_band.to_owned(),
            marital: "single".to_owned(),
            decision,
            status,
            count: n,
        }
    }

    #[test]
    fn age_bands() {
        let names: Vec<String> = [18, 25, 26, 45, 66, 99].into_iter().map(age_band).collect();
        assert_eq!(names, ["18-25", "18-25", "26-35", "36-45", "66+", "66+"]);
    }

    #[test]
    fn four_fifths_rule_and_true_positive_gap() {
        use Decision::*;
        let counts = [
            count("26-35", Approve, Some(LoanStatus::Good), 60),
            count("26-35", Review, Some(LoanStatus::Good), 20),
            count("26-35", Decline, None, 20),
            count("18-25", Approve, Some(LoanStatus::Good), 30),
            count("18-25", Decline, Some(LoanStatus::Good), 30),
            count("18-25", Review, None, 10),
            count("18-25", Decline, None, 30),
            count("66+", Decline, None, 5),
        ];
        let report = fairness(&counts);
        let age = &report.attributes[0];
        assert_eq!(age.most_favoured.as_deref(), Some("26-35"));
        // Selected: 80 of 100 against 40 of 100.
        assert_eq!(age.min_ratio, Some(0.5));
        assert!(age.alert);
        // Repaid and selected: 80 of 80 against 30 of 60.
        assert!((age.tpr_gap.expect("in the test") - 0.5).abs() < 1e-12);
        let small = age
            .groups
            .iter()
            .find(|g| g.group == "66+")
            .expect("in the test");
        assert_eq!((small.judged, small.disparate_impact), (false, None));
        // One marital group: compared with itself only.
        assert_eq!(report.attributes[1].min_ratio, Some(1.0));
        assert!(!report.attributes[1].alert);
        assert_eq!(report.alerts().count(), 1);
    }

    #[test]
    fn a_fair_population_raises_no_alert() {
        use Decision::*;
        let counts = [
            count("26-35", Approve, None, 70),
            count("26-35", Decline, None, 30),
            count("18-25", Approve, None, 20),
            count("18-25", Review, None, 40),
            count("18-25", Decline, None, 40),
        ];
        let age = &fairness(&counts).attributes[0];
        assert!((age.min_ratio.expect("in the test") - 60.0 / 70.0).abs() < 1e-12);
        assert!(!age.alert);
        assert_eq!(age.tpr_gap, None);
    }
}
