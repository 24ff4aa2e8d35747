//! The KPI Durable Object's logic, over a synchronous key-value store (the object's own
//! SQLite at the edge, a map on the host).
//!
//! The object is a materialized view of D1: it reads stored decisions and dead letters in
//! commit order ([`pump`]) and counts each once, because the position it has read to is
//! written in the same transaction as the counts. No request waits for it, and it keeps no
//! per-request keys: its storage holds the aggregator's core, the event-time windows within
//! the allowed lateness, its position and the outbox. Refused requests, which have no D1
//! row, reach it in batches ([`KpiService::count_refusals`]).

pub mod outbox;
pub mod pump;

use serde::{Deserialize, Serialize};
use valle_shared::monitoring::drift::DriftReport;
use valle_shared::monitoring::kpi::{
    Aggregator, Core, EventWindow, KpiConfig, KpiView, Outcome, View,
};

pub use outbox::{Pending, PendingWrite, OUTBOX_FLUSH_BATCH};

use crate::store::{D1Write, KpiSnapshot, LogPage, LogPosition, Place, RefusalBatch, StoreError};

/// One write of the object's storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    Put(String, String),
    Delete(String),
}

impl KvOp {
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> KvOp {
        KvOp::Put(key.into(), value.into())
    }
}

/// The object's storage: string keys and JSON values, read synchronously, written in
/// atomic batches. Every call can fail, and a failure is an error for the caller.
pub trait KvStore {
    fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// The first `limit` entries whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>, StoreError>;
    /// How many entries the store holds.
    fn rows(&self) -> Result<u64, StoreError>;
    /// Applies every operation, or none of them.
    fn apply(&self, ops: Vec<KvOp>) -> Result<(), StoreError>;
}

const CORE_KEY: &str = "core";
const WINDOW_PREFIX: &str = "ew|";
/// How far D1's log has been counted ([`LogPosition`]).
const POSITION_KEY: &str = "log-position";
/// Per-request-id keys of a version that counted on the request path; deleted a page at a
/// time, since the log position makes them unnecessary.
const LEGACY_PREFIXES: [&str; 2] = ["seen|", "failed|"];
const LEGACY_PAGE: usize = 500;
/// The ids of the refusal batches counted last, newest last: a ring, not a growing map.
const REFUSAL_BATCHES_KEY: &str = "refusal-batches";
const REFUSAL_BATCHES_KEPT: usize = 256;

/// Requests the worker sends to the object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum KpiCommand {
    View {
        window: View,
        branch: Option<String>,
    },
    Snapshot,
    Drift {
        branch: Option<String>,
    },
    /// Refused requests of one isolate, counted together.
    CountRefusals {
        batch: RefusalBatch,
    },
    /// New rows are in D1: read them soon.
    Poke,
}

/// What one counting round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// Decisions and dead letters counted now (rows already counted are skipped).
    pub observations: usize,
    /// The position after the round.
    pub position: LogPosition,
}

pub struct KpiService {
    config: KpiConfig,
    aggregator: Option<Aggregator>,
    /// When the object last read the log to its end; memory only.
    pub caught_up_at_ms: Option<i64>,
}

fn unreadable(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::new("kpi_object", format!("{what} is unreadable: {error}"))
}

impl KpiService {
    pub fn new(config: KpiConfig) -> KpiService {
        KpiService {
            config,
            aggregator: None,
            caught_up_at_ms: None,
        }
    }

    /// The aggregator, loaded from the store the first time (after a restart, say). State
    /// that cannot be read is an error: counting on from zero would silently lose it.
    fn loaded(&mut self, kv: &impl KvStore) -> Result<&mut Aggregator, StoreError> {
        if self.aggregator.is_none() {
            let core: Core = match kv.get(CORE_KEY)? {
                Some(json) => serde_json::from_str(&json).map_err(|e| unreadable("core", e))?,
                None => Core::default(),
            };
            let windows = kv
                .scan(WINDOW_PREFIX, usize::MAX)?
                .into_iter()
                .map(|(key, json)| {
                    serde_json::from_str::<EventWindow>(&json).map_err(|e| unreadable(&key, e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.aggregator = Some(Aggregator::restore(self.config.clone(), core, windows));
        }
        self.aggregator
            .as_mut()
            .ok_or_else(|| StoreError::new("kpi_object", "aggregator not loaded"))
    }

    /// How far D1's log is counted; `None` before the first round.
    pub fn position(kv: &impl KvStore) -> Result<Option<LogPosition>, StoreError> {
        kv.get(POSITION_KEY)?
            .map(|json| serde_json::from_str(&json).map_err(|e| unreadable("log position", e)))
            .transpose()
    }

    /// Whether the object holds counts without a log position: a version that counted on
    /// the request path wrote them, and the log up to now is already counted.
    pub fn counted_without_position(kv: &impl KvStore) -> Result<bool, StoreError> {
        Ok(Self::position(kv)?.is_none() && kv.get(CORE_KEY)?.is_some())
    }

    /// Counts the rows of `page` after the stored position (or `start`, before the first
    /// round), each once, and moves the position past them in the same transaction.
    pub fn count_log(
        &mut self,
        kv: &impl KvStore,
        page: &LogPage,
        start: LogPosition,
        now_ms: i64,
    ) -> Result<Counted, StoreError> {
        let mut position = Self::position(kv)?.unwrap_or(start);
        let mut counted = 0;
        let mut places = Vec::new();
        let aggregator = self.loaded(kv)?;
        let mut writes = Vec::new();
        let mut windows = Vec::new();
        for logged in &page.decisions {
            if logged.seq <= position.decision_seq {
                continue;
            }
            position.decision_seq = logged.seq;
            if logged.counted_before {
                continue;
            }
            let effects = aggregator.observe(&logged.observation, now_ms);
            if let (Some(seq), Some(window)) = (effects.seq, effects.count_window) {
                places.push(Place {
                    row: logged.seq,
                    seq,
                    window,
                });
            }
            writes.extend(
                effects
                    .closed_count_window
                    .map(|window| D1Write::CountWindow(Box::new(window))),
            );
            writes.extend(effects.late.map(D1Write::Late));
            windows.extend(effects.event_windows);
            counted += 1;
        }
        for (id, observation) in &page.dead_letters {
            if *id <= position.dead_letter_id {
                continue;
            }
            position.dead_letter_id = *id;
            let effects = aggregator.observe(observation, now_ms);
            windows.extend(effects.event_windows);
            counted += 1;
        }
        if !places.is_empty() {
            writes.insert(0, D1Write::DecisionPlaces { places });
        }
        let mut ops = vec![KvOp::put(POSITION_KEY, outbox::to_json(&position)?)];
        for prefix in LEGACY_PREFIXES {
            ops.extend(
                kv.scan(prefix, LEGACY_PAGE)?
                    .into_iter()
                    .map(|(key, _)| KvOp::Delete(key)),
            );
        }
        self.commit(kv, ops, &writes, windows)?;
        Ok(Counted {
            observations: counted,
            position,
        })
    }

    /// Counts refused requests (they have no D1 row, so no position to keep); a batch whose
    /// id is among the last ones counted is a resend, and changes nothing.
    pub fn count_refusals(
        &mut self,
        kv: &impl KvStore,
        batch: &RefusalBatch,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut counted: Vec<String> = match kv.get(REFUSAL_BATCHES_KEY)? {
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| unreadable("refusal batches", e))?
            }
            None => Vec::new(),
        };
        if counted.contains(&batch.id) {
            return Ok(());
        }
        let aggregator = self.loaded(kv)?;
        let mut windows = Vec::new();
        for observation in &batch.observations {
            if matches!(observation.outcome, Outcome::Decided { .. }) {
                // A decision is counted from its D1 row only.
                continue;
            }
            windows.extend(aggregator.observe(observation, now_ms).event_windows);
        }
        counted.push(batch.id.clone());
        let excess = counted.len().saturating_sub(REFUSAL_BATCHES_KEPT);
        counted.drain(..excess);
        let ops = vec![KvOp::put(REFUSAL_BATCHES_KEY, outbox::to_json(&counted)?)];
        self.commit(kv, ops, &[], windows)
    }

    /// Writes the aggregator's changes, `ops` and the outbox entries in one transaction. If
    /// it fails, the aggregator in memory is dropped so the next call reloads what is
    /// stored, and the caller retries.
    fn commit(
        &mut self,
        kv: &impl KvStore,
        mut ops: Vec<KvOp>,
        writes: &[D1Write],
        windows: Vec<EventWindow>,
    ) -> Result<(), StoreError> {
        let result = (|| {
            let aggregator = self.loaded(kv)?;
            let (changed, removed) = aggregator.take_changes();
            ops.push(KvOp::put(CORE_KEY, outbox::to_json(aggregator.core())?));
            for window in &changed {
                ops.push(KvOp::put(window.key(), outbox::to_json(window)?));
            }
            ops.extend(removed.into_iter().map(KvOp::Delete));
            ops.extend(outbox::queue(outbox::next_seq(kv)?, writes, windows)?);
            kv.apply(ops)
        })();
        if result.is_err() {
            self.aggregator = None;
        }
        result
    }

    pub fn view(
        &mut self,
        kv: &impl KvStore,
        window: View,
        branch: Option<&str>,
        now_ms: i64,
    ) -> Result<KpiView, StoreError> {
        Ok(self.loaded(kv)?.view(window, branch, now_ms))
    }

    pub fn snapshot(&mut self, kv: &impl KvStore, now_ms: i64) -> Result<KpiSnapshot, StoreError> {
        let caught_up_at_ms = self.caught_up_at_ms;
        let storage_rows = Some(kv.rows()?);
        let aggregator = self.loaded(kv)?;
        Ok(KpiSnapshot {
            core: aggregator.core().clone(),
            recent: aggregator.view(View::FiveMinutes, None, now_ms),
            drift: aggregator.drift(None, now_ms),
            memory_bytes: crate::observability::wasm_memory_bytes(),
            storage_rows,
            caught_up_at_ms,
        })
    }

    pub fn drift(
        &mut self,
        kv: &impl KvStore,
        branch: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<DriftReport>, StoreError> {
        Ok(self.loaded(kv)?.drift(branch, now_ms))
    }
}
