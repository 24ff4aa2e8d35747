//! Loan outcomes in memory, with D1's semantics: a write applies with its audit row or not
//! at all, a matured outcome is never overwritten, and the grouped reads count what the
//! edge's SQL counts.

use std::collections::BTreeMap;

use valle_shared::outcomes::challenger::{AgreementCount, ShadowCounts};
use valle_shared::outcomes::fairness::FairnessCount;
use valle_shared::outcomes::loan_outcomes::{KnownDecision, LoanOutcome, LoanStatus};
use valle_shared::outcomes::performance::{vintage_of, ScoreGroup};
use valle_shared::records::decisions::{DecisionRecord, Period};

use super::MemoryBackend;
use crate::store::{LoanBook, OutcomeSnapshot, OutcomeWrite, StoreError};

impl MemoryBackend {
    /// The stored decisions `query` selects, each with its outcome.
    fn labelled(&self, period: &Period) -> Vec<(DecisionRecord, Option<LoanStatus>)> {
        let outcomes = self.d1.loan_outcomes.borrow();
        self.d1
            .decisions
            .borrow()
            .values()
            .filter(|d| period.from_ms.is_none_or(|from| d.received_at_ms >= from))
            .filter(|d| period.to_ms.is_none_or(|to| d.received_at_ms <= to))
            .filter(|d| period.branch.as_ref().is_none_or(|b| &d.branch == b))
            .map(|d| {
                let status = outcomes.get(&d.request_id).map(|o| o.status);
                (d.clone(), status)
            })
            .collect()
    }
}

impl LoanBook for MemoryBackend {
    async fn outcome_snapshot(
        &self,
        request_ids: &[String],
    ) -> Result<OutcomeSnapshot, StoreError> {
        let outcomes = self.d1.loan_outcomes.borrow();
        let known = self
            .d1
            .decisions
            .borrow()
            .values()
            .filter(|d| request_ids.contains(&d.request_id))
            .map(|d| KnownDecision {
                request_id: d.request_id.clone(),
                received_at_ms: d.received_at_ms,
                outcome: outcomes.get(&d.request_id).cloned(),
            })
            .collect();
        Ok(OutcomeSnapshot {
            known,
            head: self.d1.chain_head(),
        })
    }

    async fn record_outcomes(&self, write: OutcomeWrite<'_>) -> Result<bool, StoreError> {
        if !self.d1.append_audit(write.audit) {
            return Ok(false);
        }
        let mut stored = self.d1.loan_outcomes.borrow_mut();
        for outcome in write.outcomes {
            let open = stored
                .get(&outcome.request_id)
                .is_none_or(|o: &LoanOutcome| o.status == LoanStatus::Open);
            if open {
                stored.insert(outcome.request_id.clone(), outcome.clone());
            }
        }
        Ok(true)
    }

    async fn score_groups(&self, period: &Period) -> Result<Vec<(String, ScoreGroup)>, StoreError> {
        let mut groups: BTreeMap<(String, String, u64), ScoreGroup> = BTreeMap::new();
        for (decision, status) in self.labelled(period) {
            let probability = f64::from(decision.score.probability);
            let vintage = vintage_of(decision.received_at_ms);
            let key = (
                decision.branch.clone(),
                vintage.clone(),
                probability.to_bits(),
            );
            let group = groups.entry(key).or_insert_with(|| ScoreGroup {
                vintage,
                probability,
                ..ScoreGroup::default()
            });
            group.count(status);
        }
        Ok(groups
            .into_iter()
            .map(|((branch, _, _), group)| (branch, group))
            .collect())
    }

    async fn shadow_counts(&self, period: &Period) -> Result<ShadowCounts, StoreError> {
        let mut agreement: BTreeMap<(u8, u8), AgreementCount> = BTreeMap::new();
        let mut champion: BTreeMap<(String, u64), ScoreGroup> = BTreeMap::new();
        let mut challenger: BTreeMap<(String, u64), ScoreGroup> = BTreeMap::new();
        let count = |groups: &mut BTreeMap<(String, u64), ScoreGroup>,
                     vintage: &str,
                     probability: f64,
                     status: Option<LoanStatus>| {
            let group = groups
                .entry((vintage.to_owned(), probability.to_bits()))
                .or_insert_with(|| ScoreGroup {
                    vintage: vintage.to_owned(),
                    probability,
                    ..ScoreGroup::default()
                });
            group.count(status);
        };
        for (decision, status) in self.labelled(period) {
            let Some(shadow) = &decision.shadow else {
                continue;
            };
            let key = (decision.score.decision as u8, shadow.decision as u8);
            agreement
                .entry(key)
                .or_insert_with(|| AgreementCount {
                    champion: decision.score.decision,
                    shadow: shadow.decision,
                    count: 0,
                })
                .count += 1;
            let vintage = vintage_of(decision.received_at_ms);
            count(
                &mut champion,
                &vintage,
                f64::from(decision.score.probability),
                status,
            );
            count(
                &mut challenger,
                &vintage,
                f64::from(shadow.probability),
                status,
            );
        }
        Ok(ShadowCounts {
            agreement: agreement.into_values().collect(),
            champion: champion.into_values().collect(),
            challenger: challenger.into_values().collect(),
        })
    }

    async fn fairness_counts(
        &self,
        period: &Period,
    ) -> Result<Vec<(String, FairnessCount)>, StoreError> {
        Ok(self
            .labelled(period)
            .into_iter()
            .map(|(decision, status)| {
                let count = self.d1.fairness_count(&decision, status);
                (decision.branch, count)
            })
            .collect())
    }
}
