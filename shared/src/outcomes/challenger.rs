//! The champion against the shadow challenger over the decisions both scored: how often they
//! agree, which decisions would swap, and, once outcomes are in, each one's realized ROC
//! AUC, KS and Brier score on the same loans. `GET /api/v1/challenger`.

use serde::{Deserialize, Serialize};

use crate::decision::model::spec::Thresholds;
use crate::decision::model::Decision;
use crate::decision::simulation::DECISIONS;
use crate::outcomes::performance::{performance, ScoreGroup};

/// Decisions the champion gave `champion` and the challenger would have given `shadow`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AgreementCount {
    pub champion: Decision,
    pub shadow: Decision,
    pub count: u64,
}

/// One model's figures over the shadowed decisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ModelFigures {
    pub approval_rate: Option<f64>,
    /// Loans with a good or bad outcome.
    pub matured: u64,
    pub roc_auc: Option<f64>,
    pub ks: Option<f64>,
    pub brier: Option<f64>,
}

/// Champion decision → challenger decision, for the decisions where they differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ShadowSwap {
    pub from: Decision,
    pub to: Decision,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ChallengerReport {
    /// Decisions with a shadow verdict in the period.
    pub decisions: u64,
    pub agreement_rate: Option<f64>,
    pub swaps: Vec<ShadowSwap>,
    pub champion: ModelFigures,
    pub challenger: ModelFigures,
}

/// What the grouped reads give: the agreement counts, and the same decisions counted by
/// the champion's and by the challenger's probability.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShadowCounts {
    pub agreement: Vec<AgreementCount>,
    pub champion: Vec<ScoreGroup>,
    pub challenger: Vec<ScoreGroup>,
}

fn figures(
    groups: &[ScoreGroup],
    thresholds: Thresholds,
    approval_rate: Option<f64>,
) -> ModelFigures {
    let report = performance(groups, thresholds);
    ModelFigures {
        approval_rate,
        matured: report.matured,
        roc_auc: report.realized.as_ref().map(|r| r.roc_auc),
        ks: report.realized.as_ref().map(|r| r.ks),
        brier: report.realized.as_ref().map(|r| r.brier),
    }
}

pub fn challenger_report(counts: &ShadowCounts, thresholds: Thresholds) -> ChallengerReport {
    let decisions: u64 = counts.agreement.iter().map(|a| a.count).sum();
    let share = |part: u64| (decisions > 0).then(|| part as f64 / decisions as f64);
    let count_where = |keep: &dyn Fn(&AgreementCount) -> bool| -> u64 {
        counts
            .agreement
            .iter()
            .filter(|a| keep(a))
            .map(|a| a.count)
            .sum()
    };
    let agreed = count_where(&|a| a.champion == a.shadow);
    let swaps = DECISIONS
        .iter()
        .flat_map(|from| DECISIONS.iter().map(move |to| (*from, *to)))
        .filter(|(from, to)| from != to)
        .map(|(from, to)| ShadowSwap {
            from,
            to,
            count: count_where(&|a| a.champion == from && a.shadow == to),
        })
        .filter(|swap| swap.count > 0)
        .collect();
    ChallengerReport {
        decisions,
        agreement_rate: share(agreed),
        swaps,
        champion: figures(
            &counts.champion,
            thresholds,
            share(count_where(&|a| a.champion == Decision::Approve)),
        ),
        challenger: figures(
            &counts.challenger,
            thresholds,
            share(count_where(&|a| a.shadow == Decision::Approve)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(probability: f64, bad: u64, good: u64) -> ScoreGroup {
        ScoreGroup {
            vintage: "2026-11".into(),
            probability,
            bad,
            good,
            ..ScoreGroup::default()
        }
    }

    #[test]
    fn agreement_swaps_and_each_models_realized_figures() {
        use Decision::{Approve, Decline, Review};
        let agree = |champion, shadow, count| AgreementCount {
            champion,
            shadow,
            count,
        };
        let counts = ShadowCounts {
            agreement: vec![
                agree(Approve, Approve, 6),
                agree(Approve, Review, 1),
                agree(Decline, Review, 2),
                agree(Review, Review, 1),
            ],
            // The champion ranks the bad loans above the good ones; the challenger ties.
            champion: vec![group(0.9, 2, 0), group(0.1, 0, 2)],
            challenger: vec![group(0.5, 2, 2)],
        };
        let thresholds = Thresholds {
            review: 0.2,
            decline: 0.5,
        };
        let report = challenger_report(&counts, thresholds);
        assert_eq!(report.decisions, 10);
        assert_eq!(report.agreement_rate, Some(0.7));
        assert_eq!(
            report.swaps,
            [
                ShadowSwap {
                    from: Approve,
                    to: Review,
                    count: 1
                },
                ShadowSwap {
                    from: Decline,
                    to: Review,
                    count: 2
                }
            ]
        );
        assert_eq!(report.champion.approval_rate, Some(0.7));
        assert_eq!(report.challenger.approval_rate, Some(0.6));
        assert_eq!(report.champion.roc_auc, Some(1.0));
        assert_eq!(report.challenger.roc_auc, Some(0.5));
        assert_eq!(report.champion.matured, 4);
        let empty = challenger_report(&ShadowCounts::default(), thresholds);
        assert_eq!((empty.decisions, empty.agreement_rate), (0, None));
        assert_eq!(empty.challenger.roc_auc, None);
    }
}
