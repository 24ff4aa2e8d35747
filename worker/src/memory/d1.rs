//! D1's tables in memory, with the edge's semantics: one write is all or nothing, a request
//! id is stored once, one dead letter per event id, rows numbered in commit order.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use valle_shared::contract::query::Page;
use valle_shared::decision::simulation::StoredDecision;
use valle_shared::monitoring::kpi::{CountWindow, EventWindow};
use valle_shared::records::decisions::{
    DeadLetterStatus, DecisionPage, DecisionQuery, DecisionRecord,
};
use valle_shared::records::events::QueuedEvent;
use valle_shared::records::idempotency::Fingerprint;

use crate::pipeline::{failure_observation, FailedRequest};
use valle_shared::lending::audit::AuditEntry;
use valle_shared::lending::review::Review;

use crate::store::{D1Write, StoredAccount};
use crate::store::{
    DeadLetter, InboxState, LogPage, LogPosition, LoggedDecision, NewDeadLetter, Outcomes,
    StoreError, Stored, Unsettled,
};

/// An event in the inbox, and when it was kept and last sent to the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    pub event: QueuedEvent,
    pub kept_at_ms: i64,
    pub sent_at_ms: i64,
}

#[derive(Default)]
pub struct MemoryD1 {
    /// Decisions by row number (`seq`, commit order), and row numbers by request id.
    pub decisions: RefCell<BTreeMap<u64, DecisionRecord>>,
    by_id: RefCell<BTreeMap<String, u64>>,
    /// Dead letters in id order, each with the consumer's latency.
    pub dead_letters: RefCell<Vec<(DeadLetter, f64)>>,
    pub count_windows: RefCell<BTreeMap<u64, CountWindow>>,
    pub event_windows: RefCell<BTreeMap<String, EventWindow>>,
    pub late_events: RefCell<BTreeSet<String>>,
    /// Kept events by id.
    pub inbox: RefCell<BTreeMap<String, Kept>>,
    /// The events consumer's progress: the newest enqueue time it processed, and when.
    pub inbox_progress: Cell<Option<(i64, i64)>>,
    /// Accounts and, for each, the hash of its API token.
    pub accounts: RefCell<Vec<(StoredAccount, Option<String>)>>,
    /// Reviews by request id, each with the id of the write that made it.
    pub reviews: RefCell<BTreeMap<String, (Review, String)>>,
    pub audit: RefCell<Vec<AuditEntry>>,
    /// Loan outcomes by request id.
    pub loan_outcomes:
        RefCell<BTreeMap<String, valle_shared::outcomes::loan_outcomes::LoanOutcome>>,
    /// Outcome writes made, each one D1 batch at the edge.
    pub writes: Cell<u32>,
    /// Fail this many of the next outcome writes.
    pub failing_writes: Cell<u32>,
    /// Fail every inbox write while set.
    pub failing_inbox: Cell<bool>,
    /// Fail every write of the KPI object's outbox while set.
    pub failing_kpi_writes: Cell<bool>,
    /// The retention columns of `decisions`.
    pub retained: RefCell<super::retention::Retained>,
}

/// Whether a decision passes a query's filters (time, branch, band, decision, channel).
pub fn matches_filters(query: &DecisionQuery, r: &DecisionRecord) -> bool {
    query.from_ms.is_none_or(|from| r.received_at_ms >= from)
        && query.to_ms.is_none_or(|to| r.received_at_ms <= to)
        && query.branch.as_ref().is_none_or(|b| &r.branch == b)
        && query.band.is_none_or(|band| r.score.band == band)
        && query.decision.is_none_or(|d| r.score.decision == d)
        && query.channel.is_none_or(|c| r.channel == c)
}

fn injected() -> StoreError {
    StoreError::new("d1", "injected failure")
}

impl MemoryD1 {
    /// Deletes a decision row (the retention job, past the record period).
    pub fn remove_decision(&self, seq: u64, request_id: &str) {
        self.decisions.borrow_mut().remove(&seq);
        self.by_id.borrow_mut().remove(request_id);
    }

    pub fn decision(&self, request_id: &str) -> Option<DecisionRecord> {
        let seq = *self.by_id.borrow().get(request_id)?;
        self.decisions.borrow().get(&seq).cloned()
    }

    /// The newest `limit` decisions in commit order, as the simulation reads them.
    pub fn recent_decisions(&self, limit: usize, branch: Option<&str>) -> Vec<StoredDecision> {
        self.decisions
            .borrow()
            .values()
            .rev()
            .filter(|record| branch.is_none_or(|branch| record.branch == branch))
            .filter(|record| !self.is_blocked(&record.request_id))
            .take(limit)
            .map(|record| StoredDecision {
                request_id: record.request_id.clone(),
                application: record.application.clone(),
                probability: record.score.probability,
                decision: record.score.decision,
                shadow_probability: record.shadow.as_ref().map(|shadow| shadow.probability),
            })
            .collect()
    }

    pub fn decision_count(&self) -> usize {
        self.decisions.borrow().len()
    }

    pub fn letters(&self) -> Vec<DeadLetter> {
        self.dead_letters
            .borrow()
            .iter()
            .map(|(letter, _)| letter.clone())
            .collect()
    }

    /// The one write of [`crate::store::OutcomeStore::store`].
    pub fn store(&self, outcomes: Outcomes<'_>, now_ms: i64) -> Result<Stored, StoreError> {
        self.writes.set(self.writes.get() + 1);
        if self.failing_writes.get() > 0 {
            self.failing_writes.set(self.failing_writes.get() - 1);
            return Err(injected());
        }
        if let Some(entry) = outcomes.audit {
            // As in D1: the row's key collides when the chain has grown, and nothing is written.
            if !self.append_audit(entry) {
                return Err(StoreError::new("d1", crate::sql::audit::CHAIN_MOVED));
            }
        }
        let destroyed: Vec<String> = outcomes
            .decisions
            .iter()
            .filter(|record| self.residue(&record.request_id).is_some())
            .map(|record| record.request_id.clone())
            .collect();
        let existing: Vec<DecisionRecord> = outcomes
            .decisions
            .iter()
            .filter(|record| !destroyed.contains(&record.request_id))
            .filter_map(|record| self.decision(&record.request_id))
            .collect();
        // As in D1: a guarded write stores nothing over another request's decision.
        let blocked = outcomes.one_request
            && (!destroyed.is_empty()
                || outcomes.decisions.iter().any(|record| {
                    existing.iter().any(|stored| {
                        stored.request_id == record.request_id
                            && stored.fingerprint.is_some()
                            && stored.fingerprint != record.fingerprint
                    })
                }));
        for record in outcomes.decisions.iter().filter(|_| !blocked) {
            if self.by_id.borrow().contains_key(&record.request_id) {
                continue;
            }
            let seq = self
                .decisions
                .borrow()
                .keys()
                .next_back()
                .map_or(1, |last| last + 1);
            self.decisions.borrow_mut().insert(seq, record.clone());
            self.by_id
                .borrow_mut()
                .insert(record.request_id.clone(), seq);
            for (letter, _) in self.dead_letters.borrow_mut().iter_mut() {
                if letter.event_id == record.request_id && letter.status == DeadLetterStatus::Open {
                    letter.status = DeadLetterStatus::Superseded;
                }
            }
        }
        for letter in outcomes.dead_letters {
            self.upsert_letter(letter);
        }
        let mut inbox = self.inbox.borrow_mut();
        for id in outcomes.settle {
            inbox.remove(id);
        }
        if let Some(reached) = outcomes.reached_ms {
            // As in D1: the mark only moves forward.
            let previous = self.inbox_progress.get().map_or(reached, |(mark, _)| mark);
            self.inbox_progress
                .set(Some((previous.max(reached), now_ms)));
        }
        if let Some(id) = outcomes.replayed_letter {
            for (letter, _) in self.dead_letters.borrow_mut().iter_mut() {
                if letter.id == id {
                    letter.status = DeadLetterStatus::Replayed;
                    letter.replayed_at_ms = Some(now_ms);
                }
            }
        }
        Ok(Stored {
            existing,
            destroyed,
        })
    }

    fn upsert_letter(&self, letter: &NewDeadLetter) {
        if self.by_id.borrow().contains_key(&letter.payload.event_id) {
            return;
        }
        let mut letters = self.dead_letters.borrow_mut();
        if let Some((existing, _)) = letters
            .iter_mut()
            .find(|(l, _)| l.event_id == letter.payload.event_id)
        {
            if existing.payload.application != letter.payload.application {
                existing.latest_payload = Some(letter.payload.clone());
            }
            existing.error_code = letter.error_code;
            existing.error_message = letter.error_message.clone();
            existing.attempts += letter.attempts;
            existing.status = DeadLetterStatus::Open;
            existing.last_failed_at_ms = letter.failed_at_ms;
            existing.replayed_at_ms = None;
            return;
        }
        let id = letters.len() as i64 + 1;
        letters.push((
            DeadLetter {
                id,
                event_id: letter.payload.event_id.clone(),
                payload: letter.payload.clone(),
                latest_payload: None,
                error_code: letter.error_code,
                error_message: letter.error_message.clone(),
                attempts: letter.attempts,
                status: DeadLetterStatus::Open,
                first_failed_at_ms: letter.failed_at_ms,
                last_failed_at_ms: letter.failed_at_ms,
                replayed_at_ms: None,
            },
            letter.latency_ms,
        ));
    }

    pub fn list_decisions(&self, query: &DecisionQuery) -> DecisionPage {
        let decisions = self.decisions.borrow();
        let mut matching: Vec<&DecisionRecord> = decisions
            .values()
            .filter(|r| matches_filters(query, r) && !self.is_blocked(&r.request_id))
            .filter(|r| {
                query
                    .cursor
                    .as_ref()
                    .is_none_or(|cursor| cursor.precedes(r))
            })
            .collect();
        matching.sort_by(|a, b| {
            (b.received_at_ms, &b.request_id).cmp(&(a.received_at_ms, &a.request_id))
        });
        let rows = matching
            .into_iter()
            .take(query.limit + 1)
            .cloned()
            .collect();
        DecisionPage::from_rows(rows, query.limit)
    }

    pub fn list_count_windows(&self, limit: usize, before_index: Option<u64>) -> Vec<CountWindow> {
        self.count_windows
            .borrow()
            .values()
            .rev()
            .filter(|w| before_index.is_none_or(|before| w.index < before))
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn list_dead_letters(
        &self,
        status: Option<DeadLetterStatus>,
        page: &Page<i64>,
    ) -> Vec<DeadLetter> {
        self.letters()
            .into_iter()
            .rev()
            .filter(|l| status.is_none_or(|s| l.status == s))
            .filter(|l| page.cursor.is_none_or(|before| l.id < before))
            .take(page.limit)
            .collect()
    }

    pub fn keep(&self, events: &[QueuedEvent], now_ms: i64) -> Result<Vec<String>, StoreError> {
        if self.failing_inbox.get() {
            return Err(injected());
        }
        let mut taken = Vec::new();
        let mut inbox = self.inbox.borrow_mut();
        for event in events {
            // As in D1: an id another request made a decision of, or kept, is not kept.
            let fingerprint = Fingerprint::of_event(event);
            let decided_by_another = self
                .decision(&event.event_id)
                .and_then(|record| record.fingerprint)
                .is_some_and(|stored| stored != fingerprint);
            let kept_by_another = inbox
                .get(&event.event_id)
                .is_some_and(|kept| Fingerprint::of_event(&kept.event) != fingerprint);
            if decided_by_another || kept_by_another {
                taken.push(event.event_id.clone());
                continue;
            }
            inbox.entry(event.event_id.clone()).or_insert_with(|| Kept {
                event: event.clone(),
                kept_at_ms: now_ms,
                sent_at_ms: now_ms,
            });
        }
        Ok(taken)
    }

    pub fn take_unsettled(&self, take: Unsettled) -> Vec<QueuedEvent> {
        let mut inbox = self.inbox.borrow_mut();
        let mut stale: Vec<(i64, String)> = inbox
            .iter()
            .filter(|(_, kept)| kept.sent_at_ms <= take.cutoff_ms)
            .map(|(id, kept)| (kept.sent_at_ms, id.clone()))
            .collect();
        stale.sort();
        stale.truncate(take.limit);
        stale
            .into_iter()
            .filter_map(|(_, id)| {
                let kept = inbox.get_mut(&id)?;
                kept.sent_at_ms = take.now_ms;
                Some(kept.event.clone())
            })
            .collect()
    }

    pub fn inbox_state(&self) -> InboxState {
        let inbox = self.inbox.borrow();
        InboxState {
            kept: inbox.len() as u64,
            oldest_kept_at_ms: inbox.values().map(|kept| kept.kept_at_ms).min(),
            consumer_reached_ms: self.inbox_progress.get().map(|(mark, _)| mark),
            consumer_seen_at_ms: self.inbox_progress.get().map(|(_, at)| at),
        }
    }

    /// The rows the KPI object reads after `after`, as D1 answers them.
    pub fn read_log(&self, after: LogPosition, limit: usize) -> LogPage {
        let decisions = self
            .decisions
            .borrow()
            .range(after.decision_seq + 1..)
            .take(limit)
            .map(|(seq, record)| LoggedDecision {
                seq: *seq,
                observation: self.observation(record),
                counted_before: record.kpi_seq.is_some(),
            })
            .collect();
        let dead_letters = self
            .dead_letters
            .borrow()
            .iter()
            .filter(|(letter, _)| letter.id as u64 > after.dead_letter_id)
            .take(limit)
            .map(|(letter, latency_ms)| {
                let event = &letter.payload;
                (
                    letter.id as u64,
                    failure_observation(&FailedRequest {
                        request_id: &event.event_id,
                        channel: event.channel,
                        received_at_ms: event.received_at_ms,
                        event_time_ms: event.event_time_ms,
                        latency_ms: *latency_ms,
                        code: letter.error_code,
                    }),
                )
            })
            .collect();
        LogPage {
            decisions,
            dead_letters,
        }
    }

    pub fn log_head(&self) -> LogPosition {
        LogPosition {
            decision_seq: self
                .decisions
                .borrow()
                .keys()
                .next_back()
                .copied()
                .unwrap_or(0),
            dead_letter_id: self.dead_letters.borrow().len() as u64,
        }
    }

    /// Applies the KPI object's outbox as D1's statements do, all or none.
    pub fn write_kpis(&self, writes: &[D1Write]) -> Result<(), StoreError> {
        if self.failing_kpi_writes.get() {
            return Err(injected());
        }
        for write in writes {
            match write {
                D1Write::DecisionPlaces { places } => {
                    let mut decisions = self.decisions.borrow_mut();
                    for place in places {
                        if let Some(record) = decisions.get_mut(&place.row) {
                            record.kpi_seq = Some(place.seq);
                            record.kpi_window = Some(place.window);
                        }
                    }
                }
                D1Write::DecisionPlace {
                    request_id,
                    seq,
                    count_window,
                } => {
                    let row = self.by_id.borrow().get(request_id).copied();
                    let mut decisions = self.decisions.borrow_mut();
                    if let Some(record) = row.and_then(|row| decisions.get_mut(&row)) {
                        record.kpi_seq = Some(*seq);
                        record.kpi_window = Some(*count_window);
                    }
                }
                D1Write::CountWindow(window) => {
                    self.count_windows
                        .borrow_mut()
                        .insert(window.index, (**window).clone());
                }
                D1Write::EventWindow(window) => {
                    self.event_windows
                        .borrow_mut()
                        .insert(window.key(), (**window).clone());
                }
                D1Write::Late(late) => {
                    self.late_events
                        .borrow_mut()
                        .insert(late.request_id.clone());
                }
            }
        }
        Ok(())
    }
}
