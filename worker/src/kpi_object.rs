//! The KPI Durable Object's logic, over a synchronous key-value store (the object's own
//! SQLite at the edge, a map on the host). Every call runs to completion without awaiting,
//! so concurrent requests to the object can never interleave inside an update; D1 writes
//! (closed windows, late events, each decision's place in the stream) go to an outbox in the
//! same store and are flushed afterwards with idempotent statements.

use serde::{Deserialize, Deserializer, Serialize};
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
    /// The first `limit` entries whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &str, limit: usize) -> Vec<(String, String)>;
}

const CORE_KEY: &str = "core";
const WINDOW_PREFIX: &str = "ew|";
const SEEN_PREFIX: &str = "seen|";
/// Request ids whose failure is counted: a redelivered dead letter or a resent bad request
/// is one failure, not several.
const FAILED_PREFIX: &str = "failed|";
/// Writes for D1, flushed in key order: one entry per decision place, closed count window
/// and late event (`outbox|<sequence>`), and one per event-time window
/// (`outbox|ew|...`), which each newer copy of the window replaces.
const OUTBOX_PREFIX: &str = "outbox|";
const OUTBOX_SEQ_KEY: &str = "outbox-seq";
/// How many outbox writes go to D1 in one batch.
pub const OUTBOX_FLUSH_BATCH: usize = 200;
/// Outbox entries that could not be read back, moved aside so they neither block nor slow
/// the flush, and kept for an operator.
const UNREADABLE_PREFIX: &str = "outbox-unreadable|";

/// A write D1 still has to receive.
#[derive(Clone, Debug, PartialEq, Serialize)]
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

#[derive(Deserialize)]
struct DecisionPlaceFields {
    request_id: String,
    seq: u64,
    count_window: u64,
}

impl<'de> Deserialize<'de> for D1Write {
    /// Reads the tagged form by hand: serde's derived reader for internally tagged enums
    /// buffers the content, and that buffer cannot read the latency sketch's integer map
    /// keys back ("0": 1), so every event window with a latency failed to parse.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<D1Write, D::Error> {
        use serde::de::Error;
        let mut value = serde_json::Value::deserialize(deserializer)?;
        let kind = value
            .as_object_mut()
            .and_then(|fields| fields.remove("kind"))
            .ok_or_else(|| D::Error::missing_field("kind"))?;
        match kind.as_str() {
            Some("decision_place") => {
                let DecisionPlaceFields {
                    request_id,
                    seq,
                    count_window,
                } = serde_json::from_value(value).map_err(D::Error::custom)?;
                Ok(D1Write::DecisionPlace {
                    request_id,
                    seq,
                    count_window,
                })
            }
            Some("count_window") => Ok(D1Write::CountWindow(Box::new(
                serde_json::from_value(value).map_err(D::Error::custom)?,
            ))),
            Some("event_window") => Ok(D1Write::EventWindow(Box::new(
                serde_json::from_value(value).map_err(D::Error::custom)?,
            ))),
            Some("late") => Ok(D1Write::Late(
                serde_json::from_value(value).map_err(D::Error::custom)?,
            )),
            _ => Err(D::Error::custom(format!("unknown D1 write kind {kind}"))),
        }
    }
}

/// An outbox entry as it was read: D1 has to receive `write`; `json` tells whether a newer
/// copy replaced it meanwhile.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingWrite {
    pub key: String,
    json: String,
    pub write: D1Write,
}

/// The head of the outbox, and how many unreadable entries were moved aside on the way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pending {
    pub writes: Vec<PendingWrite>,
    pub set_aside: usize,
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
                .scan(WINDOW_PREFIX, usize::MAX)
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
        let mut windows = Vec::new();
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
            windows.extend(effects.event_windows);
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
        // The outbox holds one copy per window, the newest, however often it changed.
        for window in windows {
            let key = format!("{OUTBOX_PREFIX}{}", window.key());
            kv.put(&key, &to_json(&D1Write::EventWindow(Box::new(window))));
        }
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
            memory_bytes: crate::store::wasm_memory_bytes(),
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

    /// Up to `limit` D1 writes not yet acknowledged, in outbox order. Reads only the head
    /// of the outbox, so a call costs the same however much is waiting.
    pub fn pending(kv: &impl KvStore, limit: usize) -> Pending {
        let mut pending = Pending::default();
        for (key, json) in kv.scan(OUTBOX_PREFIX, limit) {
            match serde_json::from_str(&json) {
                Ok(write) => pending.writes.push(PendingWrite { key, json, write }),
                Err(_) => {
                    kv.put(&format!("{UNREADABLE_PREFIX}{key}"), &json);
                    kv.delete(&key);
                    pending.set_aside += 1;
                }
            }
        }
        pending
    }

    /// True when D1 has nothing left to receive.
    pub fn outbox_is_empty(kv: &impl KvStore) -> bool {
        kv.scan(OUTBOX_PREFIX, 1).is_empty()
    }

    /// Forgets writes D1 has acknowledged; an entry a newer copy replaced while it was
    /// being sent stays for the next flush.
    pub fn acknowledge(kv: &impl KvStore, sent: &[PendingWrite]) {
        for write in sent {
            if kv.get(&write.key).as_deref() == Some(write.json.as_str()) {
                kv.delete(&write.key);
            }
        }
    }
}
