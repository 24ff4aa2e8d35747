//! The KPI Durable Object's logic, over a synchronous key-value store (the object's own
//! SQLite at the edge, a map on the host). Every call runs to completion without awaiting,
//! so concurrent requests to the object can never interleave inside an update; D1 writes
//! (closed windows, late events, each decision's place in the stream) go to an outbox in the
//! same store and are flushed afterwards with idempotent statements.

use serde::{Deserialize, Serialize};
use valle_shared::drift::DriftReport;
use valle_shared::kpi::{
    Aggregator, Core, CountWindow, EventWindow, KpiConfig, KpiView, LateEvent, Observation,
    Outcome, View,
};

use crate::store::{KpiSnapshot, Recorded};

/// The object's storage: string keys and JSON values, read and written synchronously.
pub trait KvStore {
    fn get(&self, key: &str) -> Option<String>;
    fn put(&self, key: &str, value: &str);
    fn delete(&self, key: &str);
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &str) -> Vec<(String, String)>;
}

const CORE_KEY: &str = "core";
const WINDOW_PREFIX: &str = "ew|";
const SEEN_PREFIX: &str = "seen|";
/// Request ids whose failure is counted: a redelivered dead letter or a resent bad request
/// is one failure, not several.
const FAILED_PREFIX: &str = "failed|";
const OUTBOX_PREFIX: &str = "outbox|";
const OUTBOX_SEQ_KEY: &str = "outbox-seq";

/// A write D1 still has to receive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum D1Write {
    DecisionPlace {
        request_id: String,
        seq: u64,
        count_window: u64,
    },
    CountWindow(Box<CountWindow>),
    EventWindow(Box<EventWindow>),
    Late(LateEvent),
}

/// Requests the worker sends to the object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum KpiCommand {
    Record {
        observations: Vec<Observation>,
    },
    View {
        window: View,
        branch: Option<String>,
    },
    Snapshot,
    Drift {
        branch: Option<String>,
    },
}

pub struct KpiService {
    config: KpiConfig,
    aggregator: Option<Aggregator>,
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl KpiService {
    pub fn new(config: KpiConfig) -> KpiService {
        KpiService {
            config,
            aggregator: None,
        }
    }

    /// The aggregator, loaded from the store the first time (after a restart, say).
    fn loaded(&mut self, kv: &impl KvStore) -> &mut Aggregator {
        let config = self.config.clone();
        self.aggregator.get_or_insert_with(|| {
            let core: Core = kv
                .get(CORE_KEY)
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default();
            let windows = kv
                .scan(WINDOW_PREFIX)
                .into_iter()
                .filter_map(|(_, json)| serde_json::from_str::<EventWindow>(&json).ok())
                .collect();
            Aggregator::restore(config, core, windows)
        })
    }

    /// Counts each observation once; a decision already counted answers its earlier place.
    pub fn record(
        &mut self,
        kv: &impl KvStore,
        observations: &[Observation],
        now_ms: i64,
    ) -> Vec<Recorded> {
        let mut places = Vec::with_capacity(observations.len());
        let mut writes = Vec::new();
        let aggregator = self.loaded(kv);
        for observation in observations {
            let decided = matches!(observation.outcome, Outcome::Decided { .. });
            let seen_key = format!("{SEEN_PREFIX}{}", observation.request_id);
            if decided {
                if let Some(place) = kv
                    .get(&seen_key)
                    .and_then(|json| serde_json::from_str(&json).ok())
                {
                    places.push(place);
                    continue;
                }
            }
            if !decided {
                let failed_key = format!("{FAILED_PREFIX}{}", observation.request_id);
                if kv.get(&failed_key).is_some() {
                    places.push(Recorded::default());
                    continue;
                }
                kv.put(&failed_key, "1");
            }
            let effects = aggregator.observe(observation, now_ms);
            let place = Recorded {
                seq: effects.seq,
                count_window: effects.count_window,
                late: effects.late.is_some(),
            };
            if let (true, Some(seq), Some(count_window)) =
                (decided, effects.seq, effects.count_window)
            {
                kv.put(&seen_key, &to_json(&place));
                writes.push(D1Write::DecisionPlace {
                    request_id: observation.request_id.clone(),
                    seq,
                    count_window,
                });
            }
            writes.extend(
                effects
                    .closed_count_window
                    .map(|window| D1Write::CountWindow(Box::new(window))),
            );
            writes.extend(effects.late.map(D1Write::Late));
            writes.extend(
                effects
                    .event_windows
                    .into_iter()
                    .map(|window| D1Write::EventWindow(Box::new(window))),
            );
            places.push(place);
        }
        let (changed, removed) = aggregator.take_changes();
        kv.put(CORE_KEY, &to_json(aggregator.core()));
        for window in &changed {
            kv.put(&window.key(), &to_json(window));
        }
        for key in &removed {
            kv.delete(key);
        }
        let mut next: u64 = kv
            .get(OUTBOX_SEQ_KEY)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for write in &writes {
            kv.put(&format!("{OUTBOX_PREFIX}{next:020}"), &to_json(write));
            next += 1;
        }
        kv.put(OUTBOX_SEQ_KEY, &next.to_string());
        places
    }

    pub fn view(
        &mut self,
        kv: &impl KvStore,
        window: View,
        branch: Option<&str>,
        now_ms: i64,
    ) -> KpiView {
        self.loaded(kv).view(window, branch, now_ms)
    }

    pub fn snapshot(&mut self, kv: &impl KvStore, now_ms: i64) -> KpiSnapshot {
        let aggregator = self.loaded(kv);
        KpiSnapshot {
            core: aggregator.core().clone(),
            recent: aggregator.view(View::FiveMinutes, None, now_ms),
            drift: aggregator.drift(None, now_ms),
        }
    }

    pub fn drift(
        &mut self,
        kv: &impl KvStore,
        branch: Option<&str>,
        now_ms: i64,
    ) -> Option<DriftReport> {
        self.loaded(kv).drift(branch, now_ms)
    }

    /// The D1 writes not yet acknowledged, oldest first, with their outbox keys.
    pub fn pending(kv: &impl KvStore) -> Vec<(String, D1Write)> {
        kv.scan(OUTBOX_PREFIX)
            .into_iter()
            .filter_map(|(key, json)| Some((key, serde_json::from_str(&json).ok()?)))
            .collect()
    }

    /// Forgets writes D1 has acknowledged.
    pub fn acknowledge(kv: &impl KvStore, keys: &[String]) {
        keys.iter().for_each(|key| kv.delete(key));
    }
}
