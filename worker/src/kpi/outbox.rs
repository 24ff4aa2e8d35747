//! The KPI object's outbox: writes D1 still has to receive (closed windows, late events,
//! decisions' places in the KPI stream), kept in the object's own storage in the same
//! transaction as the counts that made them, and sent afterwards with idempotent statements.

use serde::Serialize;
use valle_shared::monitoring::kpi::EventWindow;

use super::{KvOp, KvStore};
use crate::store::{D1Write, StoreError};

/// Writes for D1, flushed in key order: one entry per counting round's decision places,
/// closed count window and late event (`outbox|<sequence>`), and one per event-time window
/// (`outbox|ew|...`), which each newer copy of the window replaces.
pub(super) const OUTBOX_PREFIX: &str = "outbox|";
pub(super) const OUTBOX_SEQ_KEY: &str = "outbox-seq";
/// How many outbox writes go to D1 in one batch.
pub const OUTBOX_FLUSH_BATCH: usize = 200;
/// Outbox entries that could not be read back, moved aside so they neither block nor slow
/// the flush, and kept for an operator.
const UNREADABLE_PREFIX: &str = "outbox-unreadable|";

/// An outbox entry as it was read: D1 has to receive `write`; `json` tells whether a newer
/// copy replaced it meanwhile.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingWrite {
    pub key: String,
    pub(super) json: String,
    pub write: D1Write,
}

/// The head of the outbox, and how many unreadable entries were moved aside on the way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pending {
    pub writes: Vec<PendingWrite>,
    pub set_aside: usize,
}

pub(super) fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::new("kpi_object", error))
}

/// The operations that queue `writes` (in order) and the newest copy of each event-time
/// window; `next` is the outbox's next sequence number, read by the caller.
pub(super) fn queue(
    next: u64,
    writes: &[D1Write],
    windows: Vec<EventWindow>,
) -> Result<Vec<KvOp>, StoreError> {
    let mut ops = Vec::with_capacity(writes.len() + windows.len() + 1);
    let mut seq = next;
    for write in writes {
        ops.push(KvOp::put(
            format!("{OUTBOX_PREFIX}{seq:020}"),
            to_json(write)?,
        ));
        seq += 1;
    }
    if seq != next {
        ops.push(KvOp::put(OUTBOX_SEQ_KEY, seq.to_string()));
    }
    // The outbox holds one copy per window, the newest, however often it changed.
    for window in windows {
        let key = format!("{OUTBOX_PREFIX}{}", window.key());
        ops.push(KvOp::put(
            key,
            to_json(&D1Write::EventWindow(Box::new(window)))?,
        ));
    }
    Ok(ops)
}

/// The outbox's next sequence number.
pub(super) fn next_seq(kv: &impl KvStore) -> Result<u64, StoreError> {
    Ok(kv
        .get(OUTBOX_SEQ_KEY)?
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Up to `limit` D1 writes not yet acknowledged, in outbox order. Reads only the head of
/// the outbox, so a call costs the same however much is waiting.
pub fn pending(kv: &impl KvStore, limit: usize) -> Result<Pending, StoreError> {
    let mut pending = Pending::default();
    let mut moves = Vec::new();
    for (key, json) in kv.scan(OUTBOX_PREFIX, limit)? {
        match serde_json::from_str(&json) {
            Ok(write) => pending.writes.push(PendingWrite { key, json, write }),
            Err(_) => {
                moves.push(KvOp::put(format!("{UNREADABLE_PREFIX}{key}"), json));
                moves.push(KvOp::Delete(key));
                pending.set_aside += 1;
            }
        }
    }
    if !moves.is_empty() {
        kv.apply(moves)?;
    }
    Ok(pending)
}

/// True when D1 has nothing left to receive.
pub fn is_empty(kv: &impl KvStore) -> Result<bool, StoreError> {
    Ok(kv.scan(OUTBOX_PREFIX, 1)?.is_empty())
}

/// Forgets writes D1 has acknowledged; an entry a newer copy replaced while it was being
/// sent stays for the next flush.
pub fn acknowledge(kv: &impl KvStore, sent: &[PendingWrite]) -> Result<(), StoreError> {
    let mut deletes = Vec::new();
    for write in sent {
        if kv.get(&write.key)?.as_deref() == Some(write.json.as_str()) {
            deletes.push(KvOp::Delete(write.key.clone()));
        }
    }
    if deletes.is_empty() {
        return Ok(());
    }
    kv.apply(deletes)
}
