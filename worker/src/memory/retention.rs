//! Blocking and destruction in memory, with D1's semantics: a blocked decision leaves every
//! ordinary read; a destroyed one keeps only its residue, which the aggregates count.

use std::collections::BTreeMap;

use valle_shared::intake::application::{Application, Home, Job, Marital, Records};
use valle_shared::monitoring::kpi::Observation;
use valle_shared::outcomes::fairness::FairnessCount;
use valle_shared::outcomes::loan_outcomes::LoanStatus;
use valle_shared::privacy::retention::{DueDecision, Residue, RetentionPolicy};
use valle_shared::privacy::subject_access::{Blocked, SubjectDecision};
use valle_shared::records::decisions::DecisionRecord;

use super::{MemoryBackend, MemoryD1};
use crate::retention::{
    BlockedNow, Blocking, Destroyable, DueSettled, RetentionStore, Run, Subject, SubjectRecords,
};
use crate::store::StoreError;

/// What the retention columns of `decisions` hold, by request id.
#[derive(Default)]
pub struct Retained {
    /// Readable-until times the job set, over the policy's stamp.
    pub look_again: BTreeMap<String, i64>,
    pub blocked: BTreeMap<String, Blocked>,
    /// Residues of destroyed decisions.
    pub residues: BTreeMap<String, Residue>,
}

/// What a destroyed decision's application is replaced with: nothing of the applicant's.
fn destroyed_application() -> Application {
    Application {
        seniority_years: 0,
        home: Home::Ignore,
        term_months: 0,
        age: 0,
        marital: Marital::Single,
        records: Records::No,
        job: Job::Others,
        expenses: 0.0,
        income: 0.0,
        assets: 0.0,
        debt: 0.0,
        amount: 0.0,
        price: 0.0,
        applicant_id: None,
        branch: None,
    }
}

fn policy() -> Result<&'static RetentionPolicy, StoreError> {
    RetentionPolicy::committed().map_err(|error| StoreError::new("retention", error))
}

impl MemoryD1 {
    pub fn is_blocked(&self, request_id: &str) -> bool {
        self.retained.borrow().blocked.contains_key(request_id)
    }

    /// A decision as ordinary reads see it: not at all once blocked.
    pub fn readable(&self, request_id: &str) -> Option<DecisionRecord> {
        self.decision(request_id)
            .filter(|_| !self.is_blocked(request_id))
    }

    /// The residue of a destroyed decision.
    pub fn residue(&self, request_id: &str) -> Option<Residue> {
        self.retained.borrow().residues.get(request_id).cloned()
    }

    /// What the KPI object counts for a stored decision: a destroyed one's bins are its
    /// residue's.
    pub fn observation(&self, record: &DecisionRecord) -> Observation {
        let mut observation = record.observation();
        if let Some(residue) = self.residue(&record.request_id) {
            observation.drift_bins = residue.drift_bins;
        }
        observation
    }

    /// What the fairness report counts for a stored decision, from its residue once
    /// destroyed.
    pub fn fairness_count(
        &self,
        record: &DecisionRecord,
        status: Option<LoanStatus>,
    ) -> FairnessCount {
        match self.residue(&record.request_id) {
            Some(residue) => FairnessCount {
                age_band: residue.age_band,
                marital: residue.marital.as_str().to_owned(),
                decision: record.score.decision,
                status,
                count: 1,
            },
            None => FairnessCount::of(&record.application, record.score.decision, status),
        }
    }

    fn of_subject(&self, subject: &Subject) -> Vec<DecisionRecord> {
        let residues = &self.retained.borrow().residues;
        self.decisions
            .borrow()
            .values()
            .filter(|record| !residues.contains_key(&record.request_id))
            .filter(|record| match subject {
                Subject::Applicant(id) => record.applicant_id.as_ref() == Some(id),
                Subject::Decision(id) => &record.request_id == id,
            })
            .cloned()
            .collect()
    }
}

impl RetentionStore for MemoryBackend {
    async fn block(&self, subject: &Subject, blocking: Blocking) -> Result<BlockedNow, StoreError> {
        let records = self.d1.of_subject(subject);
        let mut retained = self.d1.retained.borrow_mut();
        let mut newly = 0;
        for record in &records {
            if retained.blocked.contains_key(&record.request_id) {
                continue;
            }
            retained
                .blocked
                .insert(record.request_id.clone(), blocked_row(blocking));
            self.webhooks.forget_decision(&record.request_id);
            newly += 1;
        }
        Ok(BlockedNow {
            newly,
            held: records.len() as u64,
            destroy_after_ms: records
                .iter()
                .filter_map(|record| retained.blocked.get(&record.request_id))
                .map(|blocked| blocked.destroy_after_ms)
                .min(),
        })
    }

    async fn due_for_blocking(
        &self,
        run: &Run<'_>,
        limit: usize,
    ) -> Result<Vec<DueDecision>, StoreError> {
        let now_ms = run.now_ms;
        let policy = policy()?;
        let retained = self.d1.retained.borrow();
        let reviews = self.d1.reviews.borrow();
        let mut due: Vec<(i64, DueDecision)> = self
            .d1
            .decisions
            .borrow()
            .values()
            .filter(|record| !retained.blocked.contains_key(&record.request_id))
            .filter(|record| run.covers(&record.branch))
            .filter_map(|record| {
                let until = retained
                    .look_again
                    .get(&record.request_id)
                    .copied()
                    .unwrap_or_else(|| {
                        policy.stamp(
                            record.received_at_ms,
                            &record.application,
                            record.score.decision,
                        )
                    });
                (until <= now_ms).then(|| {
                    let review = reviews
                        .get(&record.request_id)
                        .map(|(review, _)| review.state);
                    (until, due_decision(record, review))
                })
            })
            .collect();
        due.sort_by_key(|(until, _)| *until);
        Ok(due.into_iter().take(limit).map(|(_, due)| due).collect())
    }

    async fn settle_due(&self, settled: DueSettled<'_>) -> Result<(), StoreError> {
        let mut retained = self.d1.retained.borrow_mut();
        for id in settled.block {
            retained
                .blocked
                .insert(id.clone(), blocked_row(settled.blocking));
            self.webhooks.forget_decision(id);
        }
        for (id, at) in settled.look_again {
            retained.look_again.insert(id.clone(), *at);
        }
        Ok(())
    }

    async fn due_for_destruction(
        &self,
        run: &Run<'_>,
        limit: usize,
    ) -> Result<Vec<Destroyable>, StoreError> {
        let now_ms = run.now_ms;
        let retained = self.d1.retained.borrow();
        let decisions = self.d1.decisions.borrow();
        let mut due: Vec<(i64, Destroyable)> = decisions
            .values()
            .filter(|record| !retained.residues.contains_key(&record.request_id))
            .filter(|record| run.covers(&record.branch))
            .filter_map(|record| {
                let blocked = retained.blocked.get(&record.request_id)?;
                (blocked.destroy_after_ms <= now_ms).then(|| {
                    (
                        blocked.destroy_after_ms,
                        Destroyable {
                            request_id: record.request_id.clone(),
                            application: record.application.clone(),
                            probability: record.score.probability,
                        },
                    )
                })
            })
            .collect();
        due.sort_by_key(|(at, _)| *at);
        Ok(due.into_iter().take(limit).map(|(_, due)| due).collect())
    }

    async fn destroy(
        &self,
        residues: &[(String, Residue)],
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut retained = self.d1.retained.borrow_mut();
        let mut decisions = self.d1.decisions.borrow_mut();
        let mut reviews = self.d1.reviews.borrow_mut();
        for (id, residue) in residues {
            retained.residues.insert(id.clone(), residue.clone());
            if let Some(record) = decisions
                .values_mut()
                .find(|record| &record.request_id == id)
            {
                record.application = destroyed_application();
                record.applicant_id = None;
                record.fingerprint = None;
                record.score.recourse.clear();
            }
            if let Some((review, _)) = reviews.get_mut(id) {
                review.note.clear();
                review.approval_note.clear();
                review.contest_comment = None;
            }
            self.d1.inbox.borrow_mut().remove(id);
            self.d1
                .dead_letters
                .borrow_mut()
                .retain(|(letter, _)| &letter.event_id != id);
        }
        Ok(())
    }

    async fn delete_records(
        &self,
        run: &Run<'_>,
        before_ms: i64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let expired: Vec<(u64, String)> = {
            let residues = &self.d1.retained.borrow().residues;
            self.d1
                .decisions
                .borrow()
                .iter()
                .filter(|(_, record)| {
                    residues.contains_key(&record.request_id)
                        && record.received_at_ms < before_ms
                        && run.covers(&record.branch)
                })
                .take(limit)
                .map(|(seq, record)| (*seq, record.request_id.clone()))
                .collect()
        };
        for (seq, id) in &expired {
            self.d1.remove_decision(*seq, id);
            self.d1.reviews.borrow_mut().remove(id);
            self.d1.loan_outcomes.borrow_mut().remove(id);
            let mut retained = self.d1.retained.borrow_mut();
            retained.blocked.remove(id);
            retained.residues.remove(id);
            retained.look_again.remove(id);
        }
        Ok(expired.len() as u64)
    }

    async fn subject_records(&self, subject: &Subject) -> Result<SubjectRecords, StoreError> {
        let records = self.d1.of_subject(subject);
        let retained = self.d1.retained.borrow();
        let reviews = self.d1.reviews.borrow();
        let outcomes = self.d1.loan_outcomes.borrow();
        let audit = self
            .d1
            .audit
            .borrow()
            .iter()
            .filter(|entry| records.iter().any(|r| r.request_id == entry.event.subject))
            .cloned()
            .collect();
        let decisions = records
            .into_iter()
            .map(|record| {
                let id = record.request_id.clone();
                SubjectDecision::new(
                    record,
                    retained.blocked.get(&id).cloned(),
                    reviews.get(&id).map(|(review, _)| review.clone()),
                    outcomes.get(&id).cloned(),
                )
            })
            .collect();
        Ok(SubjectRecords { decisions, audit })
    }
}

fn blocked_row(blocking: Blocking) -> Blocked {
    Blocked {
        blocked_at_ms: blocking.at_ms,
        blocked_by: blocking.by,
        destroy_after_ms: blocking.destroy_after_ms,
    }
}

fn due_decision(
    record: &DecisionRecord,
    review: Option<valle_shared::lending::review::ReviewState>,
) -> DueDecision {
    DueDecision {
        request_id: record.request_id.clone(),
        received_at_ms: record.received_at_ms,
        term_months: record.application.term_months,
        decision: record.score.decision,
        review,
    }
}
