//! In-memory backends with the edge's semantics (idempotent inserts, newest-first pages,
//! one dead letter per event), and switches to inject failures, for host tests.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use valle_shared::decisions::{Cursor, DecisionPage, DecisionQuery, DecisionRecord};
use valle_shared::drift::DriftReport;
use valle_shared::events::QueuedEvent;
use valle_shared::kpi::{CountWindow, KpiConfig, KpiView, Observation, View};
use valle_shared::ops::{RateLimit, TokenBucket};

use crate::kpi_object::{D1Write, KpiService, KvStore, Pending, OUTBOX_FLUSH_BATCH};
use crate::store::{
    DeadLetter, DeadLetterStore, DecisionStore, EventInbox, EventQueue, HealthProbe, InboxState,
    Inserted, KpiSink, KpiSnapshot, NewDeadLetter, RateLimiter, Recorded, StoreError,
};

#[derive(Default)]
pub struct MemoryKv(RefCell<BTreeMap<String, String>>);

impl KvStore for MemoryKv {
    fn get(&self, key: &str) -> Option<String> {
        self.0.borrow().get(key).cloned()
    }

    fn put(&self, key: &str, value: &str) {
        self.0.borrow_mut().insert(key.to_owned(), value.to_owned());
    }

    fn delete(&self, key: &str) {
        self.0.borrow_mut().remove(key);
    }

    fn scan(&self, prefix: &str, limit: usize) -> Vec<(String, String)> {
        self.0
            .borrow()
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

/// An event in the inbox, and when it was kept and last sent to the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    pub event: QueuedEvent,
    pub kept_at_ms: i64,
    pub sent_at_ms: i64,
}

/// Every backend in memory. The KPI object keeps its state in `kv`, so a test can drop the
/// service and build a new one over the same store, as a restart does.
pub struct MemoryBackend {
    pub decisions: RefCell<BTreeMap<String, DecisionRecord>>,
    pub dead_letters: RefCell<Vec<DeadLetter>>,
    pub count_windows: RefCell<Vec<CountWindow>>,
    pub late_events: RefCell<Vec<String>>,
    /// Queue messages in order, each with its enqueue time.
    pub queued: RefCell<Vec<(QueuedEvent, i64)>>,
    /// Kept events by id.
    pub inbox: RefCell<BTreeMap<String, Kept>>,
    /// The events consumer's progress: the newest enqueue time it processed, and when.
    pub inbox_progress: Cell<Option<(i64, i64)>>,
    /// How often the sweeper was woken.
    pub sweeper_wakes: Cell<u32>,
    pub kv: MemoryKv,
    pub kpi: RefCell<KpiService>,
    pub now_ms: Cell<i64>,
    pub rate_limit: RateLimit,
    buckets: RefCell<BTreeMap<String, TokenBucket>>,
    /// Fail this many of the next decision inserts.
    pub failing_inserts: Cell<u32>,
    /// Fail every KPI call while set.
    pub failing_kpi: Cell<bool>,
    /// Fail every inbox write while set.
    pub failing_inbox: Cell<bool>,
}

impl MemoryBackend {
    pub fn new(config: KpiConfig) -> MemoryBackend {
        MemoryBackend {
            decisions: RefCell::default(),
            dead_letters: RefCell::default(),
            count_windows: RefCell::default(),
            late_events: RefCell::default(),
            queued: RefCell::default(),
            inbox: RefCell::default(),
            inbox_progress: Cell::new(None),
            sweeper_wakes: Cell::new(0),
            kv: MemoryKv::default(),
            kpi: RefCell::new(KpiService::new(config)),
            now_ms: Cell::new(1_795_428_000_000),
            rate_limit: RateLimit::default(),
            buckets: RefCell::default(),
            failing_inserts: Cell::new(0),
            failing_kpi: Cell::new(false),
            failing_inbox: Cell::new(false),
        }
    }

    /// Applies the KPI object's outbox as the edge's flush does, in rounds of the same size.
    fn flush(&self) {
        loop {
            let Pending {
                writes: pending,
                set_aside,
            } = KpiService::pending(&self.kv, OUTBOX_FLUSH_BATCH);
            if pending.is_empty() && set_aside == 0 {
                return;
            }
            pending
                .iter()
                .for_each(|pending| self.apply(&pending.write));
            KpiService::acknowledge(&self.kv, &pending);
        }
    }

    fn apply(&self, write: &D1Write) {
        match write {
            D1Write::DecisionPlace {
                request_id,
                seq,
                count_window,
            } => {
                if let Some(record) = self.decisions.borrow_mut().get_mut(request_id) {
                    record.kpi_seq = Some(*seq);
                    record.kpi_window = Some(*count_window);
                }
            }
            D1Write::CountWindow(window) => {
                let mut windows = self.count_windows.borrow_mut();
                windows.retain(|stored| stored.index != window.index);
                windows.push((**window).clone());
            }
            D1Write::Late(late) => self.late_events.borrow_mut().push(late.request_id.clone()),
            // No host test reads D1's event windows; worker/tests/kpi_outbox.rs checks what
            // the outbox would send.
            D1Write::EventWindow(_) => {}
        }
    }

    fn kpi_available(&self) -> Result<(), StoreError> {
        if self.failing_kpi.get() {
            Err(StoreError::new("kpi", "injected failure"))
        } else {
            Ok(())
        }
    }
}

impl DecisionStore for MemoryBackend {
    async fn insert_decision(&self, record: &DecisionRecord) -> Result<Inserted, StoreError> {
        if self.failing_inserts.get() > 0 {
            self.failing_inserts.set(self.failing_inserts.get() - 1);
            return Err(StoreError::new("d1", "injected failure"));
        }
        let mut decisions = self.decisions.borrow_mut();
        match decisions.get(&record.request_id) {
            Some(stored) => Ok(Inserted::Existing(Box::new(stored.clone()))),
            None => {
                decisions.insert(record.request_id.clone(), record.clone());
                let mut letters = self.dead_letters.borrow_mut();
                for letter in letters
                    .iter_mut()
                    .filter(|l| l.event_id == record.request_id && l.status == "open")
                {
                    letter.status = "superseded".to_owned();
                }
                Ok(Inserted::New)
            }
        }
    }

    async fn get_decision(&self, request_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        Ok(self.decisions.borrow().get(request_id).cloned())
    }

    async fn list_decisions(&self, query: &DecisionQuery) -> Result<DecisionPage, StoreError> {
        let decisions = self.decisions.borrow();
        let mut matching: Vec<&DecisionRecord> = decisions
            .values()
            .filter(|r| query.from_ms.is_none_or(|from| r.received_at_ms >= from))
            .filter(|r| query.to_ms.is_none_or(|to| r.received_at_ms <= to))
            .filter(|r| query.branch.as_ref().is_none_or(|b| &r.branch == b))
            .filter(|r| query.band.is_none_or(|band| r.score.band == band))
            .filter(|r| query.decision.is_none_or(|d| r.score.decision == d))
            .filter(|r| query.channel.is_none_or(|c| r.channel == c))
            .filter(|r| {
                query.cursor.as_ref().is_none_or(|cursor| {
                    (r.received_at_ms, r.request_id.as_str())
                        < (cursor.received_at_ms, cursor.request_id.as_str())
                })
            })
            .collect();
        matching.sort_by(|a, b| {
            (b.received_at_ms, &b.request_id).cmp(&(a.received_at_ms, &a.request_id))
        });
        let more = matching.len() > query.limit;
        let page: Vec<DecisionRecord> = matching.into_iter().take(query.limit).cloned().collect();
        let next_cursor = more.then(|| page.last()).flatten().map(|last| {
            Cursor {
                received_at_ms: last.received_at_ms,
                request_id: last.request_id.clone(),
            }
            .encode()
        });
        Ok(DecisionPage {
            decisions: page,
            next_cursor,
        })
    }

    async fn list_count_windows(
        &self,
        limit: usize,
        before_index: Option<u64>,
    ) -> Result<Vec<CountWindow>, StoreError> {
        let mut windows: Vec<CountWindow> = self
            .count_windows
            .borrow()
            .iter()
            .filter(|w| before_index.is_none_or(|before| w.index < before))
            .cloned()
            .collect();
        windows.sort_by_key(|window| std::cmp::Reverse(window.index));
        windows.truncate(limit);
        Ok(windows)
    }
}

impl DeadLetterStore for MemoryBackend {
    async fn put_dead_letter(&self, letter: &NewDeadLetter) -> Result<(), StoreError> {
        if self
            .decisions
            .borrow()
            .contains_key(&letter.payload.event_id)
        {
            return Ok(());
        }
        let mut letters = self.dead_letters.borrow_mut();
        if let Some(existing) = letters
            .iter_mut()
            .find(|l| l.event_id == letter.payload.event_id)
        {
            existing.payload = letter.payload.clone();
            existing.error_code = letter.error_code.clone();
            existing.error_message = letter.error_message.clone();
            existing.attempts += letter.attempts;
            existing.status = "open".to_owned();
            existing.last_failed_at_ms = letter.failed_at_ms;
            return Ok(());
        }
        let id = letters.len() as i64 + 1;
        letters.push(DeadLetter {
            id,
            event_id: letter.payload.event_id.clone(),
            payload: letter.payload.clone(),
            error_code: letter.error_code.clone(),
            error_message: letter.error_message.clone(),
            attempts: letter.attempts,
            status: "open".to_owned(),
            first_failed_at_ms: letter.failed_at_ms,
            last_failed_at_ms: letter.failed_at_ms,
            replayed_at_ms: None,
        });
        Ok(())
    }

    async fn get_dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self
            .dead_letters
            .borrow()
            .iter()
            .find(|l| l.id == id)
            .cloned())
    }

    async fn list_dead_letters(
        &self,
        status: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut letters: Vec<DeadLetter> = self
            .dead_letters
            .borrow()
            .iter()
            .filter(|l| status.is_none_or(|s| l.status == s))
            .filter(|l| before_id.is_none_or(|before| l.id < before))
            .cloned()
            .collect();
        letters.sort_by_key(|letter| std::cmp::Reverse(letter.id));
        letters.truncate(limit);
        Ok(letters)
    }

    async fn mark_replayed(&self, id: i64, at_ms: i64) -> Result<(), StoreError> {
        if let Some(letter) = self
            .dead_letters
            .borrow_mut()
            .iter_mut()
            .find(|l| l.id == id)
        {
            letter.status = "replayed".to_owned();
            letter.replayed_at_ms = Some(at_ms);
        }
        Ok(())
    }

    async fn count_open_dead_letters(&self) -> Result<u64, StoreError> {
        Ok(self
            .dead_letters
            .borrow()
            .iter()
            .filter(|l| l.status == "open")
            .count() as u64)
    }
}

impl KpiSink for MemoryBackend {
    async fn record(&self, observations: &[Observation]) -> Result<Vec<Recorded>, StoreError> {
        self.kpi_available()?;
        let places = self
            .kpi
            .borrow_mut()
            .record(&self.kv, observations, self.now_ms.get());
        self.flush();
        Ok(places)
    }

    async fn view(&self, window: View, branch: Option<&str>) -> Result<KpiView, StoreError> {
        self.kpi_available()?;
        Ok(self
            .kpi
            .borrow_mut()
            .view(&self.kv, window, branch, self.now_ms.get()))
    }

    async fn snapshot(&self) -> Result<KpiSnapshot, StoreError> {
        self.kpi_available()?;
        Ok(self.kpi.borrow_mut().snapshot(&self.kv, self.now_ms.get()))
    }

    async fn drift(&self, branch: Option<&str>) -> Result<Option<DriftReport>, StoreError> {
        self.kpi_available()?;
        Ok(self
            .kpi
            .borrow_mut()
            .drift(&self.kv, branch, self.now_ms.get()))
    }
}

impl EventQueue for MemoryBackend {
    async fn enqueue(&self, events: &[QueuedEvent]) -> Result<(), StoreError> {
        let now = self.now_ms.get();
        self.queued
            .borrow_mut()
            .extend(events.iter().map(|event| (event.clone(), now)));
        Ok(())
    }

    async fn requeue(&self, event: &QueuedEvent, _delay_s: u32) -> Result<(), StoreError> {
        self.queued
            .borrow_mut()
            .push((event.clone(), self.now_ms.get()));
        Ok(())
    }

    /// The dead-letter queue's consumer stores the letter; here that happens at once.
    async fn send_dead_letter(&self, letter: &NewDeadLetter) -> Result<(), StoreError> {
        let body = serde_json::to_value(letter).map_err(|error| StoreError::new("queue", error))?;
        let delivery = crate::pipeline::Delivery {
            body,
            sent_at_ms: self.now_ms.get(),
        };
        let outcomes =
            crate::pipeline::consume_dead_letters(self, &[delivery], self.now_ms.get()).await;
        outcomes.into_iter().collect()
    }
}

impl EventInbox for MemoryBackend {
    async fn keep(&self, events: &[QueuedEvent], now_ms: i64) -> Result<(), StoreError> {
        if self.failing_inbox.get() {
            return Err(StoreError::new("d1", "injected failure"));
        }
        let mut inbox = self.inbox.borrow_mut();
        for event in events {
            inbox.entry(event.event_id.clone()).or_insert_with(|| Kept {
                event: event.clone(),
                kept_at_ms: now_ms,
                sent_at_ms: now_ms,
            });
        }
        Ok(())
    }

    async fn settle(
        &self,
        event_ids: &[String],
        reached_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut inbox = self.inbox.borrow_mut();
        for id in event_ids {
            inbox.remove(id);
        }
        if let Some(reached) = reached_ms {
            // As in D1: the mark only moves forward.
            let previous = self.inbox_progress.get().map_or(reached, |(mark, _)| mark);
            self.inbox_progress
                .set(Some((previous.max(reached), now_ms)));
        }
        Ok(())
    }

    async fn take_unsettled(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let mut inbox = self.inbox.borrow_mut();
        let mut stale: Vec<(i64, String)> = inbox
            .iter()
            .filter(|(_, kept)| kept.sent_at_ms <= cutoff_ms)
            .map(|(id, kept)| (kept.sent_at_ms, id.clone()))
            .collect();
        stale.sort();
        stale.truncate(limit);
        Ok(stale
            .into_iter()
            .filter_map(|(_, id)| {
                let kept = inbox.get_mut(&id)?;
                kept.sent_at_ms = now_ms;
                Some(kept.event.clone())
            })
            .collect())
    }

    async fn inbox_state(&self) -> Result<InboxState, StoreError> {
        let inbox = self.inbox.borrow();
        Ok(InboxState {
            kept: inbox.len() as u64,
            oldest_kept_at_ms: inbox.values().map(|kept| kept.kept_at_ms).min(),
            consumer_reached_ms: self.inbox_progress.get().map(|(mark, _)| mark),
            consumer_seen_at_ms: self.inbox_progress.get().map(|(_, at)| at),
        })
    }

    async fn wake_sweeper(&self) -> Result<(), StoreError> {
        self.sweeper_wakes.set(self.sweeper_wakes.get() + 1);
        Ok(())
    }
}

impl RateLimiter for MemoryBackend {
    async fn allow(&self, client: &str, cost: u32) -> Result<Result<(), u64>, StoreError> {
        let now = self.now_ms.get();
        let mut buckets = self.buckets.borrow_mut();
        let bucket = buckets
            .entry(client.to_owned())
            .or_insert_with(|| TokenBucket::full(&self.rate_limit, now));
        Ok(bucket.take(&self.rate_limit, f64::from(cost), now))
    }
}

impl HealthProbe for MemoryBackend {
    async fn probe(&self) -> Vec<(&'static str, Result<(), StoreError>)> {
        vec![
            ("d1", Ok(())),
            ("durable_object", self.kpi_available()),
            ("queue", Ok(())),
        ]
    }
}

/// Runs a future that never waits on I/O (the in-memory backend's) to completion.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}
