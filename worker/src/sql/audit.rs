//! The `audit_log` table: rows appended at the end of the hash chain, read back newest first
//! for the officers and oldest first for the verifier.

use serde::Deserialize;
use valle_shared::lending::audit::{AuditEntry, AuditEvent};

use super::Statement;

/// The text D1 answers when two writers appended after the same row.
pub const CHAIN_MOVED: &str = "audit_log.seq";

/// Whether a failed write failed only because the chain grew since its end was read.
pub fn chain_moved(error: &crate::store::StoreError) -> bool {
    error.message.contains(CHAIN_MOVED)
}

pub fn head() -> Statement {
    Statement::new(
        "SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1",
        Vec::new(),
    )
}

const INSERT: &str =
    "INSERT INTO audit_log (seq, at_ms, actor, action, subject, detail, prev_hash, hash) ";

fn values(entry: &AuditEntry) -> Vec<super::SqlValue> {
    vec![
        entry.seq.into(),
        entry.event.at_ms.into(),
        entry.event.actor.as_str().into(),
        entry.event.action.as_str().into(),
        entry.event.subject.as_str().into(),
        entry.event.detail.as_str().into(),
        entry.prev_hash.as_str().into(),
        entry.hash.as_str().into(),
    ]
}

/// Appends `entry`; fails on the key if the chain has grown since it was read.
pub fn insert(entry: &AuditEntry) -> Statement {
    Statement::new(
        format!("{INSERT}VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        values(entry),
    )
}

/// Appends `entry` only if the review write of the same batch applied (the review carries
/// that write's id).
pub fn insert_if_review_written(entry: &AuditEntry, request_id: &str, write_id: &str) -> Statement {
    let mut params = values(entry);
    params.push(request_id.into());
    params.push(write_id.into());
    Statement::new(
        format!(
            "{INSERT}SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS \
             (SELECT 1 FROM reviews WHERE request_id = ?9 AND write_id = ?10)"
        ),
        params,
    )
}

/// Appends `entry` only if subscriber `id` is not removed; it goes before the removal in
/// the batch, so exactly the write that removes the subscriber is audited.
pub fn insert_if_subscribed(entry: &AuditEntry, id: i64) -> Statement {
    let mut params = values(entry);
    params.push(id.into());
    Statement::new(
        format!(
            "{INSERT}SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS \
             (SELECT 1 FROM webhook_subscriptions WHERE id = ?9 AND removed_at IS NULL)"
        ),
        params,
    )
}

/// Newest first, before row `before`.
pub fn page(before: Option<u64>, limit: usize) -> Statement {
    Statement::new(
        "SELECT * FROM audit_log WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
        vec![
            before.unwrap_or(u64::MAX >> 1).into(),
            (limit as i64).into(),
        ],
    )
}

/// Oldest first, from row `from` on.
pub fn from(from: u64, limit: usize) -> Statement {
    Statement::new(
        "SELECT * FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        vec![from.into(), (limit as i64).into()],
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct AuditRow {
    pub seq: u64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> AuditEntry {
        AuditEntry {
            seq: row.seq,
            event: row.event,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}
