//! In-memory backends with the edge's semantics, and switches to inject failures, for host
//! tests: D1 ([`d1::MemoryD1`]), the KPI object over [`kv::MemoryKv`], the queues and the
//! rate limiter.

pub mod d1;
pub mod kv;
pub mod loan_book;
pub mod officers;
pub mod retention;
pub mod webhooks;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use valle_shared::contract::ops::{FixedWindow, RateClass, RateLimit};
use valle_shared::contract::query::Page;
use valle_shared::decision::simulation::StoredDecision;
use valle_shared::monitoring::drift::DriftReport;
use valle_shared::monitoring::kpi::{CountWindow, KpiConfig, KpiView, View};
use valle_shared::records::decisions::{
    DeadLetterStatus, DecisionPage, DecisionQuery, DecisionRecord,
};
use valle_shared::records::events::QueuedEvent;

pub use d1::{Kept, MemoryD1};
pub use kv::MemoryKv;
pub use webhooks::MemoryWebhooks;

use crate::kpi::pump::{pump, PumpReport};
use crate::kpi::KpiService;
use crate::pipeline::{consume_dead_letters, Delivery};
use crate::store::{
    D1Write, DeadLetter, DeadLetterStore, DecisionLog, DecisionStore, EventInbox, EventQueue,
    HealthProbe, InboxState, KpiSink, KpiSnapshot, LogPage, LogPosition, NewDeadLetter,
    OutcomeStore, Outcomes, RateLimiter, RefusalBatch, StoreError, Stored, Unsettled,
};

/// Every backend in memory. The KPI object keeps its state in `kv`, so a test can drop the
/// service and build a new one over the same store, as a restart does.
pub struct MemoryBackend {
    pub d1: MemoryD1,
    /// Queue messages in order, each with its enqueue time (delays are not simulated).
    pub queued: RefCell<Vec<(QueuedEvent, i64)>>,
    /// The delay of every re-queued message, in seconds, and how many sends it took.
    pub requeue_delays: RefCell<Vec<u32>>,
    pub queue_sends: Cell<u32>,
    /// How often the sweeper was woken, and the KPI object poked.
    pub sweeper_wakes: Cell<u32>,
    pub pokes: Cell<u32>,
    pub kv: MemoryKv,
    pub kpi: RefCell<KpiService>,
    pub now_ms: Cell<i64>,
    pub rate_limits: BTreeMap<RateClass, RateLimit>,
    windows: RefCell<BTreeMap<(RateClass, String), FixedWindow>>,
    /// Fail every call to the KPI object while set.
    pub failing_kpi: Cell<bool>,
    /// The Access team's keys, and how often they were fetched past the cache.
    pub jwks: RefCell<valle_shared::lending::access::Jwks>,
    pub jwks_fetches: Cell<u32>,
    pub webhooks: MemoryWebhooks,
}

impl MemoryBackend {
    pub fn new(config: KpiConfig) -> MemoryBackend {
        MemoryBackend {
            d1: MemoryD1::default(),
            queued: RefCell::default(),
            requeue_delays: RefCell::default(),
            queue_sends: Cell::new(0),
            sweeper_wakes: Cell::new(0),
            pokes: Cell::new(0),
            kv: MemoryKv::default(),
            kpi: RefCell::new(KpiService::new(config)),
            now_ms: Cell::new(1_795_428_000_000),
            rate_limits: RateClass::ALL
                .into_iter()
                .map(|class| (class, class.limit()))
                .collect(),
            windows: RefCell::default(),
            failing_kpi: Cell::new(false),
            jwks: RefCell::default(),
            jwks_fetches: Cell::new(0),
            webhooks: MemoryWebhooks::default(),
        }
    }

    fn kpi_available(&self) -> Result<(), StoreError> {
        if self.failing_kpi.get() {
            Err(StoreError::new("durable_object", "injected failure"))
        } else {
            Ok(())
        }
    }

    /// What the KPI object's alarm does: read D1's log to its end and send the outbox.
    pub async fn kpi_alarm(&self) -> Result<PumpReport, StoreError> {
        self.kpi_available()?;
        let now = self.now_ms.get();
        let report = pump(&self.kpi, &self.kv, self, &|| now).await?;
        crate::webhooks::producer::publish(&self.kv, self).await?;
        Ok(report)
    }

    /// A restart of the KPI object: its memory is gone, its storage is not.
    pub fn restart_kpi(&self, config: KpiConfig) {
        *self.kpi.borrow_mut() = KpiService::new(config);
    }
}

impl OutcomeStore for MemoryBackend {
    async fn store(&self, outcomes: Outcomes<'_>, now_ms: i64) -> Result<Stored, StoreError> {
        self.d1.store(outcomes, now_ms)
    }
}

impl DecisionStore for MemoryBackend {
    async fn get_decision(&self, request_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        Ok(self.d1.readable(request_id))
    }

    async fn list_decisions(&self, query: &DecisionQuery) -> Result<DecisionPage, StoreError> {
        Ok(self.d1.list_decisions(query))
    }

    async fn recent_decisions(
        &self,
        limit: usize,
        branch: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        Ok(self.d1.recent_decisions(limit, branch))
    }

    async fn list_count_windows(
        &self,
        limit: usize,
        before_index: Option<u64>,
    ) -> Result<Vec<CountWindow>, StoreError> {
        Ok(self.d1.list_count_windows(limit, before_index))
    }
}

impl DeadLetterStore for MemoryBackend {
    async fn get_dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self.d1.letters().into_iter().find(|l| l.id == id))
    }

    async fn list_dead_letters(
        &self,
        status: Option<DeadLetterStatus>,
        page: &Page<i64>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.d1.list_dead_letters(status, page))
    }

    async fn count_open_dead_letters(&self) -> Result<u64, StoreError> {
        Ok(self
            .d1
            .letters()
            .iter()
            .filter(|l| l.status == DeadLetterStatus::Open)
            .count() as u64)
    }
}

impl DecisionLog for MemoryBackend {
    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<LogPage, StoreError> {
        Ok(self.d1.read_log(after, limit))
    }

    async fn log_head(&self) -> Result<LogPosition, StoreError> {
        Ok(self.d1.log_head())
    }

    async fn write_kpis(&self, writes: &[D1Write], _now_ms: i64) -> Result<(), StoreError> {
        self.d1.write_kpis(writes)
    }
}

impl KpiSink for MemoryBackend {
    async fn view(&self, window: View, branch: Option<&str>) -> Result<KpiView, StoreError> {
        self.kpi_available()?;
        self.kpi
            .borrow_mut()
            .view(&self.kv, window, branch, self.now_ms.get())
    }

    async fn snapshot(&self) -> Result<KpiSnapshot, StoreError> {
        self.kpi_available()?;
        self.kpi.borrow_mut().snapshot(&self.kv, self.now_ms.get())
    }

    async fn drift(&self, branch: Option<&str>) -> Result<Option<DriftReport>, StoreError> {
        self.kpi_available()?;
        self.kpi
            .borrow_mut()
            .drift(&self.kv, branch, self.now_ms.get())
    }

    async fn count_refusals(&self, batch: &RefusalBatch) -> Result<(), StoreError> {
        self.kpi_available()?;
        self.kpi
            .borrow_mut()
            .count_refusals(&self.kv, batch, self.now_ms.get())
    }

    /// The object's alarm runs at once here.
    async fn poke(&self) -> Result<(), StoreError> {
        self.pokes.set(self.pokes.get() + 1);
        self.kpi_alarm().await.map(|_| ())
    }
}

impl EventQueue for MemoryBackend {
    async fn enqueue(&self, events: &[QueuedEvent]) -> Result<(), StoreError> {
        self.queue_sends.set(self.queue_sends.get() + 1);
        let now = self.now_ms.get();
        self.queued
            .borrow_mut()
            .extend(events.iter().map(|event| (event.clone(), now)));
        Ok(())
    }

    async fn requeue(&self, events: &[(QueuedEvent, u32)]) -> Result<(), StoreError> {
        self.queue_sends.set(self.queue_sends.get() + 1);
        self.requeue_delays
            .borrow_mut()
            .extend(events.iter().map(|(_, delay)| *delay));
        let now = self.now_ms.get();
        self.queued
            .borrow_mut()
            .extend(events.iter().map(|(event, _)| (event.clone(), now)));
        Ok(())
    }

    /// The dead-letter queue's consumer stores the letters; here that happens at once.
    async fn send_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<(), StoreError> {
        let deliveries = letters
            .iter()
            .map(|letter| {
                Ok(Delivery {
                    body: serde_json::to_value(letter)
                        .map_err(|error| StoreError::new("queue", error))?,
                    sent_at_ms: self.now_ms.get(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        consume_dead_letters(self, &deliveries, self.now_ms.get())
            .await
            .into_iter()
            .collect()
    }
}

impl EventInbox for MemoryBackend {
    async fn keep(&self, events: &[QueuedEvent], now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.d1.keep(events, now_ms)
    }

    async fn take_unsettled(&self, take: Unsettled) -> Result<Vec<QueuedEvent>, StoreError> {
        Ok(self.d1.take_unsettled(take))
    }

    async fn inbox_state(&self) -> Result<InboxState, StoreError> {
        Ok(self.d1.inbox_state())
    }

    async fn wake_sweeper(&self) -> Result<(), StoreError> {
        self.sweeper_wakes.set(self.sweeper_wakes.get() + 1);
        Ok(())
    }
}

impl RateLimiter for MemoryBackend {
    /// A fixed window per class and key, as the local simulation of the binding keeps it.
    async fn allow(
        &self,
        class: RateClass,
        key: &str,
        now_ms: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        let limit = self
            .rate_limits
            .get(&class)
            .copied()
            .unwrap_or(class.limit());
        Ok(self
            .windows
            .borrow_mut()
            .entry((class, key.to_owned()))
            .or_default()
            .take(&limit, now_ms))
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
