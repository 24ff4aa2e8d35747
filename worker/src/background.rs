//! Work that happens after the answer, never before it: telling the KPI object that new
//! rows are in D1, waking the inbox sweeper, counting refused requests, refreshing a stale
//! KPI view. None of it makes an answer true, so none of it is awaited by a request; each
//! step is idempotent and backed by a reconciler (the KPI object's and the sweeper's own
//! alarms), so a lost step delays a count or a re-send but loses nothing.
//!
//! [`Pacer`] lives as long as the isolate and batches that work across requests: at most
//! one poke per [`POKE_INTERVAL_MS`] and one sweeper wake per [`WAKE_INTERVAL_MS`], and
//! refusals buffered for [`REFUSAL_FLUSH_MS`] and sent together, so no single object sits
//! on every request.

use std::cell::{Cell, RefCell};

use valle_shared::monitoring::kpi::Observation;

use crate::kpi_cache::{refresh_view, KpiCache, Refresh};
use crate::observability::log;
use crate::store::{Backend, RefusalBatch};

pub const POKE_INTERVAL_MS: i64 = 250;
pub const WAKE_INTERVAL_MS: i64 = 5_000;
/// How long refusals wait in the isolate before they are sent together.
pub const REFUSAL_FLUSH_MS: u64 = 500;
/// Refusals kept while the KPI object cannot be reached; beyond this they are dropped (and
/// counted in the log), so a long outage cannot grow the isolate's memory.
pub const MAX_BUFFERED_REFUSALS: usize = 10_000;

/// What a request leaves to do after its answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AfterAnswer {
    /// Refused requests to count (they have no D1 row).
    pub refusals: Vec<Observation>,
    /// New decisions or dead letters are in D1.
    pub stored: bool,
    /// Events were kept in the inbox.
    pub events_kept: bool,
    /// A stale KPI view was served.
    pub refresh: Option<Refresh>,
}

/// One step to run after the answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    PokeKpi,
    WakeSweeper,
    Refresh(Refresh),
    /// Send the buffered refusals once this many milliseconds have passed.
    FlushRefusals {
        after_ms: u64,
    },
}

/// The isolate's memory of background work across its requests.
#[derive(Debug)]
pub struct Pacer {
    /// Unique to the isolate: refusal batch ids are this and a counter.
    isolate: String,
    batches: Cell<u64>,
    last_poke_ms: Cell<Option<i64>>,
    last_wake_ms: Cell<Option<i64>>,
    refusals: RefCell<Vec<Observation>>,
    /// Batches whose send failed, resent under the same id (their answer may have been lost
    /// after the object counted them).
    unsent: RefCell<Vec<RefusalBatch>>,
    /// When the pending flush was scheduled; one scheduled long ago was lost (its
    /// background step was cancelled), and the next refusal schedules another.
    flush_scheduled_at: Cell<Option<i64>>,
}

/// A flush not done this long after it was scheduled is taken as lost.
const FLUSH_LOST_MS: i64 = 10 * REFUSAL_FLUSH_MS as i64;

fn due(last: &Cell<Option<i64>>, now_ms: i64, interval_ms: i64) -> bool {
    let due = last
        .get()
        .is_none_or(|at| now_ms - at >= interval_ms || now_ms < at);
    if due {
        last.set(Some(now_ms));
    }
    due
}

impl Pacer {
    pub fn new(isolate: impl Into<String>) -> Pacer {
        Pacer {
            isolate: isolate.into(),
            batches: Cell::new(0),
            last_poke_ms: Cell::new(None),
            last_wake_ms: Cell::new(None),
            refusals: RefCell::default(),
            unsent: RefCell::default(),
            flush_scheduled_at: Cell::new(None),
        }
    }

    /// The tasks a request's leftovers call for now; refusals join the buffer, and the
    /// first one to arrive schedules the flush.
    pub fn plan(&self, work: AfterAnswer, now_ms: i64) -> Vec<Task> {
        let mut tasks = Vec::new();
        if work.stored && due(&self.last_poke_ms, now_ms, POKE_INTERVAL_MS) {
            tasks.push(Task::PokeKpi);
        }
        if work.events_kept && due(&self.last_wake_ms, now_ms, WAKE_INTERVAL_MS) {
            tasks.push(Task::WakeSweeper);
        }
        if let Some(refresh) = work.refresh {
            tasks.push(Task::Refresh(refresh));
        }
        if !work.refusals.is_empty() {
            self.buffer(work.refusals);
            let scheduled = self
                .flush_scheduled_at
                .get()
                .is_some_and(|at| (0..FLUSH_LOST_MS).contains(&(now_ms - at)));
            if !scheduled {
                self.flush_scheduled_at.set(Some(now_ms));
                tasks.push(Task::FlushRefusals {
                    after_ms: REFUSAL_FLUSH_MS,
                });
            }
        }
        tasks
    }

    fn buffer(&self, refusals: Vec<Observation>) {
        let mut buffer = self.refusals.borrow_mut();
        let room = MAX_BUFFERED_REFUSALS.saturating_sub(buffer.len());
        if refusals.len() > room {
            log(&format!(
                "kpi: {} refusals not counted, the buffer is full",
                refusals.len() - room
            ));
        }
        buffer.extend(refusals.into_iter().take(room));
    }

    /// The batches a flush sends: those sent before without an answer, then the buffered
    /// refusals under a new id.
    fn take_batches(&self) -> Vec<RefusalBatch> {
        self.flush_scheduled_at.set(None);
        let mut batches = std::mem::take(&mut *self.unsent.borrow_mut());
        let observations = std::mem::take(&mut *self.refusals.borrow_mut());
        if !observations.is_empty() {
            let n = self.batches.get() + 1;
            self.batches.set(n);
            batches.push(RefusalBatch {
                id: format!("{}:{n}", self.isolate),
                observations,
            });
        }
        batches
    }

    /// Keeps a batch whose send failed for the next flush, within the buffer's bound.
    fn keep_unsent(&self, batch: RefusalBatch) {
        let mut unsent = self.unsent.borrow_mut();
        let held: usize = unsent.iter().map(|b| b.observations.len()).sum();
        if held + batch.observations.len() > MAX_BUFFERED_REFUSALS {
            log(&format!(
                "kpi: {} refusals not counted, the buffer is full",
                batch.observations.len()
            ));
            return;
        }
        unsent.push(batch);
    }

    /// How many refusals wait for the next flush.
    pub fn buffered(&self) -> usize {
        self.refusals.borrow().len()
            + self
                .unsent
                .borrow()
                .iter()
                .map(|batch| batch.observations.len())
                .sum::<usize>()
    }
}

/// Runs one task (the edge first waits out a flush's delay). Failures are logged: the step
/// is retried by its reconciler, or, for refusals, by the next flush.
pub async fn run<B: Backend>(
    task: Task,
    backend: &B,
    pacer: &Pacer,
    cache: &KpiCache,
    now_ms: i64,
) {
    match task {
        Task::PokeKpi => {
            if let Err(error) = backend.poke().await {
                log(&format!(
                    "kpi object not poked (its alarm will find the rows): {error}"
                ));
            }
        }
        Task::WakeSweeper => {
            if let Err(error) = backend.wake_sweeper().await {
                log(&format!(
                    "inbox sweeper not woken (its alarm will run anyway): {error}"
                ));
            }
        }
        Task::Refresh(refresh) => refresh_view(&refresh, backend, cache, now_ms).await,
        Task::FlushRefusals { .. } => {
            for batch in pacer.take_batches() {
                if let Err(error) = backend.count_refusals(&batch).await {
                    log(&format!(
                        "kpi: {} refusals kept for the next flush: {error}",
                        batch.observations.len()
                    ));
                    pacer.keep_unsent(batch);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valle_shared::contract::codes::ErrorCode;
    use valle_shared::intake::channel::Channel;

    fn refusal(id: &str) -> Observation {
        crate::pipeline::failure_observation(&crate::pipeline::FailedRequest {
            request_id: id,
            channel: Channel::Online,
            received_at_ms: 0,
            event_time_ms: 0,
            latency_ms: 1.0,
            code: ErrorCode::Validation,
        })
    }

    #[test]
    fn pokes_and_wakes_are_paced_per_isolate_and_refusals_wait_for_one_flush() {
        let pacer = Pacer::new("test");
        let stored = || AfterAnswer {
            stored: true,
            events_kept: true,
            ..AfterAnswer::default()
        };
        assert_eq!(
            pacer.plan(stored(), 1_000),
            [Task::PokeKpi, Task::WakeSweeper]
        );
        assert_eq!(pacer.plan(stored(), 1_100), []);
        assert_eq!(pacer.plan(stored(), 1_250), [Task::PokeKpi]);
        assert_eq!(
            pacer.plan(stored(), 6_000),
            [Task::PokeKpi, Task::WakeSweeper]
        );
        // A clock that steps back does not silence the pacer.
        assert_eq!(pacer.plan(stored(), 10), [Task::PokeKpi, Task::WakeSweeper]);
        let refused = |id: &str| AfterAnswer {
            refusals: vec![refusal(id)],
            ..AfterAnswer::default()
        };
        assert_eq!(
            pacer.plan(refused("a"), 20),
            [Task::FlushRefusals {
                after_ms: REFUSAL_FLUSH_MS
            }]
        );
        assert_eq!(pacer.plan(refused("b"), 30), [], "one flush for both");
        assert_eq!(pacer.buffered(), 2);
        let batches = pacer.take_batches();
        assert_eq!(batches.len(), 1);
        assert_eq!(
            (batches[0].id.as_str(), batches[0].observations.len()),
            ("test:1", 2)
        );
        assert_eq!(
            pacer.plan(refused("c"), 40).len(),
            1,
            "a new flush after it"
        );
        // That flush is lost: long after, the next refusal schedules another.
        assert_eq!(pacer.plan(refused("d"), 40 + FLUSH_LOST_MS - 1), []);
        assert_eq!(pacer.plan(refused("e"), 40 + FLUSH_LOST_MS).len(), 1);
        assert_eq!(pacer.buffered(), 3, "nothing buffered is dropped");
        // A batch whose answer was lost goes again under its id, before the new one.
        let [first] = <[RefusalBatch; 1]>::try_from(pacer.take_batches()).expect("one");
        pacer.keep_unsent(first.clone());
        pacer.plan(refused("f"), 50_000);
        let again = pacer.take_batches();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0], first);
        assert_eq!(again[1].id, "test:3");
    }

    #[test]
    fn the_refusal_buffer_is_bounded() {
        let pacer = Pacer::new("test");
        pacer.buffer(vec![refusal("x"); MAX_BUFFERED_REFUSALS + 5]);
        assert_eq!(pacer.buffered(), MAX_BUFFERED_REFUSALS);
    }
}
