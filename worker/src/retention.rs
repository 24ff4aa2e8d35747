//! Blocking and destroying applicants' personal data ([`valle_shared::privacy::retention`]): the
//! storage it needs, and the retention job the Cron Trigger runs every hour (and
//! `POST /api/v1/retention/run` on demand). The job is idempotent and paged: each step
//! takes [`RETENTION_PAGE`] decisions at a time, and every page it writes leaves the
//! query that found it, so a run that stops half-way loses nothing and the next goes on.

#![allow(async_fn_in_trait)]

use valle_shared::intake::application::Application;
use valle_shared::lending::audit::AuditEntry;
use valle_shared::privacy::retention::{
    BlockedBy, DueDecision, Residue, RetentionPolicy, RetentionRun, Verdict, RETENTION_PAGE,
    RETENTION_PAGES_PER_RUN,
};
use valle_shared::privacy::subject_access::SubjectDecision;

use crate::store::StoreError;

/// One run of the job: its clock, and in the local environment the one branch it is
/// confined to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run<'a> {
    pub now_ms: i64,
    pub branch: Option<&'a str>,
}

impl Run<'_> {
    /// Whether a decision of `branch` is within the run.
    pub fn covers(&self, branch: &str) -> bool {
        self.branch.is_none_or(|only| only == branch)
    }
}

/// Whose decisions an erasure or an export is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// Every decision stored with this applicant id (the dpo, who has checked who asks).
    Applicant(String),
    /// This decision alone (its applicant, proven by its receipt). A receipt never reaches
    /// other decisions: anyone may type someone else's applicant id into a form.
    Decision(String),
}

/// A blocking: when, by whom, and when the data is destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    pub by: BlockedBy,
    pub at_ms: i64,
    pub destroy_after_ms: i64,
}

/// A subject's decisions after a blocking, from the same write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockedNow {
    /// Decisions this blocking blocked (0 when they were blocked already).
    pub newly: u64,
    /// The subject's decisions still held (not destroyed), blocked or not.
    pub held: u64,
    /// The earliest time any of them is destroyed.
    pub destroy_after_ms: Option<i64>,
}

/// What a page of the schedule's step decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueSettled<'a> {
    pub block: &'a [String],
    /// Decisions not due yet, with the time to look again.
    pub look_again: &'a [(String, i64)],
    pub blocking: Blocking,
}

/// A blocked decision whose blocking period has ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Destroyable {
    pub request_id: String,
    pub application: Application,
    pub probability: f32,
}

/// Everything held about a subject: its decisions (blocked ones included, destroyed ones
/// are gone) and the audit rows naming them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubjectRecords {
    pub decisions: Vec<SubjectDecision>,
    pub audit: Vec<AuditEntry>,
}

pub trait RetentionStore {
    /// Blocks the subject's decisions that are not blocked yet, and answers where the
    /// subject's decisions stand after it.
    async fn block(&self, subject: &Subject, blocking: Blocking) -> Result<BlockedNow, StoreError>;
    /// Up to `limit` decisions not blocked whose stamped readable period ended by `now_ms`.
    async fn due_for_blocking(
        &self,
        run: &Run<'_>,
        limit: usize,
    ) -> Result<Vec<DueDecision>, StoreError>;
    async fn settle_due(&self, settled: DueSettled<'_>) -> Result<(), StoreError>;
    /// Up to `limit` blocked decisions whose blocking period ended by `now_ms`.
    async fn due_for_destruction(
        &self,
        run: &Run<'_>,
        limit: usize,
    ) -> Result<Vec<Destroyable>, StoreError>;
    /// Destroys the personal data of these decisions, leaving each its residue; their
    /// reviews' free text, dead letters and inbox events go too.
    async fn destroy(&self, residues: &[(String, Residue)], now_ms: i64) -> Result<(), StoreError>;
    /// Deletes up to `limit` destroyed records of decisions made before `before_ms`, with
    /// their reviews and outcomes; answers how many.
    async fn delete_records(
        &self,
        run: &Run<'_>,
        before_ms: i64,
        limit: usize,
    ) -> Result<u64, StoreError>;
    async fn subject_records(&self, subject: &Subject) -> Result<SubjectRecords, StoreError>;
}

/// One run of the retention job at `now_ms`: blocks what the schedule says is due,
/// destroys what has been blocked long enough, deletes records past their period. Each
/// step stops after [`RETENTION_PAGES_PER_RUN`] full pages; the run then says it is not
/// complete and the next run goes on.
pub async fn run<S: RetentionStore>(
    store: &S,
    policy: &RetentionPolicy,
    scope: Run<'_>,
) -> Result<RetentionRun, StoreError> {
    let now_ms = scope.now_ms;
    let mut run = RetentionRun {
        now_ms,
        complete: true,
        ..RetentionRun::default()
    };
    let blocking = Blocking {
        by: BlockedBy::Retention,
        at_ms: now_ms,
        destroy_after_ms: policy.destroy_after_ms(now_ms),
    };
    let mut full_pages = 0;
    loop {
        let due = store.due_for_blocking(&scope, RETENTION_PAGE).await?;
        let (mut block, mut look_again) = (Vec::new(), Vec::new());
        for decision in &due {
            match policy.verdict(decision, now_ms) {
                Verdict::Block => block.push(decision.request_id.clone()),
                Verdict::LookAgainAt(at) => look_again.push((decision.request_id.clone(), at)),
            }
        }
        if !due.is_empty() {
            store
                .settle_due(DueSettled {
                    block: &block,
                    look_again: &look_again,
                    blocking,
                })
                .await?;
        }
        run.blocked += block.len() as u64;
        run.postponed += look_again.len() as u64;
        if !another_page(due.len(), &mut full_pages, &mut run) {
            break;
        }
    }
    full_pages = 0;
    loop {
        let due = store.due_for_destruction(&scope, RETENTION_PAGE).await?;
        let residues: Vec<(String, Residue)> = due
            .iter()
            .map(|d| {
                (
                    d.request_id.clone(),
                    Residue::of(&d.application, d.probability),
                )
            })
            .collect();
        if !residues.is_empty() {
            store.destroy(&residues, now_ms).await?;
        }
        run.destroyed += residues.len() as u64;
        if !another_page(residues.len(), &mut full_pages, &mut run) {
            break;
        }
    }
    full_pages = 0;
    loop {
        let deleted = store
            .delete_records(&scope, policy.records_before_ms(now_ms), RETENTION_PAGE)
            .await?;
        run.deleted += deleted;
        if !another_page(deleted as usize, &mut full_pages, &mut run) {
            break;
        }
    }
    Ok(run)
}

/// Whether a step goes on after a page of `taken` rows: only after a full page, and at
/// most [`RETENTION_PAGES_PER_RUN`] of them, after which the run is not complete.
fn another_page(taken: usize, full_pages: &mut usize, run: &mut RetentionRun) -> bool {
    if taken < RETENTION_PAGE {
        return false;
    }
    *full_pages += 1;
    if *full_pages >= RETENTION_PAGES_PER_RUN {
        run.complete = false;
        return false;
    }
    true
}
