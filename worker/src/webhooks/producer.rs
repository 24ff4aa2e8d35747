//! The producer: each round reads the decision log and the audit trail after its position
//! (with the subscribers, in one round trip), turns the rows into deliveries, queues them,
//! and only then moves its position. A crash between the send and the move sends the same
//! deliveries again, with the same event ids, which receivers drop; nothing is skipped.
//! The KPI object's alarm runs it, so two rounds never overlap.

use valle_shared::webhooks::sources::{audit_events, decision_event, fan_out};

use super::{SourcePosition, WebhookQueue, WebhookStore};
use crate::kpi::{KvOp, KvStore};
use crate::store::StoreError;

/// Rows of each log one round reads.
pub const SOURCE_PAGE: usize = 100;
/// Rounds per alarm; a longer backlog continues at the next alarm.
pub const ROUNDS: usize = 10;
const POSITION_KEY: &str = "webhooks-position";

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub queued: usize,
    pub position: SourcePosition,
    /// The last read reached the end of both logs.
    pub caught_up: bool,
}

fn position(kv: &impl KvStore) -> Result<SourcePosition, StoreError> {
    Ok(kv
        .get(POSITION_KEY)?
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

fn save(kv: &impl KvStore, position: SourcePosition) -> Result<(), StoreError> {
    let text =
        serde_json::to_string(&position).map_err(|error| StoreError::new("webhooks", error))?;
    kv.apply(vec![KvOp::put(POSITION_KEY, text)])
}

/// Queues the deliveries of every row after the stored position, [`ROUNDS`] pages at most.
/// While no one subscribes, the position jumps to the logs' ends: a subscriber hears what
/// happens after it registered.
pub async fn publish<K: KvStore, S: WebhookStore + WebhookQueue>(
    kv: &K,
    store: &S,
) -> Result<PublishReport, StoreError> {
    let mut report = PublishReport {
        position: position(kv)?,
        ..PublishReport::default()
    };
    for _ in 0..ROUNDS {
        let page = store.webhook_sources(report.position, SOURCE_PAGE).await?;
        let next = if page.subscriptions.is_empty() {
            page.head
        } else {
            let events: Vec<_> = page
                .decisions
                .iter()
                .map(decision_event)
                .chain(page.audit.iter().flat_map(audit_events))
                .collect();
            let deliveries = fan_out(&events, &page.subscriptions);
            if !deliveries.is_empty() {
                store.send_deliveries(&deliveries, None).await?;
            }
            report.queued += deliveries.len();
            SourcePosition {
                decision_seq: page.decisions_end.max(report.position.decision_seq),
                audit_seq: page
                    .audit
                    .last()
                    .map_or(report.position.audit_seq, |entry| entry.seq),
            }
        };
        if next != report.position {
            save(kv, next)?;
            report.position = next;
        }
        let full = page.decisions.len() >= SOURCE_PAGE || page.audit.len() >= SOURCE_PAGE;
        if !full {
            report.caught_up = true;
            break;
        }
    }
    Ok(report)
}
