//! How the KPI object keeps up with D1: each round reads the decisions and dead letters
//! stored after its position, counts them, and sends its outbox; an alarm runs rounds soon
//! after a poke, and every few seconds anyway, so a lost poke delays a count but never
//! loses it. Only the alarm runs this, so two rounds never overlap; and each round re-reads
//! the stored position before it counts, so a page read twice is counted once.

use std::cell::RefCell;

use super::{outbox, KpiService, KvStore};
use crate::store::{DecisionLog, LogPosition, StoreError};

/// Rows of each table one read takes.
pub const LOG_PAGE: usize = 500;
/// Reads per alarm; a backlog longer than this continues at the next alarm, soon after.
pub const ROUNDS: usize = 20;
/// Outbox batches sent per alarm.
pub const FLUSH_ROUNDS: usize = 20;

/// What one alarm did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PumpReport {
    pub counted: usize,
    /// The last read reached the end of the log.
    pub caught_up: bool,
    /// Outbox writes D1 received.
    pub flushed: usize,
    pub position: LogPosition,
}

impl PumpReport {
    /// Whether there was anything to do: the next alarm comes soon if so.
    pub fn worked(&self) -> bool {
        self.counted > 0 || self.flushed > 0 || !self.caught_up
    }
}

/// Reads and counts the log to its end (or [`ROUNDS`] pages), then sends the outbox.
pub async fn pump<K: KvStore, L: DecisionLog>(
    service: &RefCell<KpiService>,
    kv: &K,
    log: &L,
    now_ms: &dyn Fn() -> i64,
) -> Result<PumpReport, StoreError> {
    let start = match KpiService::position(kv)? {
        Some(position) => position,
        // Counts from a version that counted on the request path cover the log so far.
        None if KpiService::counted_without_position(kv)? => log.log_head().await?,
        None => LogPosition::default(),
    };
    let mut report = PumpReport {
        position: start,
        ..PumpReport::default()
    };
    for _ in 0..ROUNDS {
        let page = log.read_log(report.position, LOG_PAGE).await?;
        let full = page.decisions.len() >= LOG_PAGE || page.dead_letters.len() >= LOG_PAGE;
        let counted = service.borrow_mut().count_log(kv, &page, start, now_ms())?;
        report.counted += counted.observations;
        report.position = counted.position;
        if !full {
            report.caught_up = true;
            break;
        }
    }
    if report.caught_up {
        service.borrow_mut().caught_up_at_ms = Some(now_ms());
    }
    report.flushed = flush(kv, log, now_ms).await?;
    Ok(report)
}

/// Sends the outbox to D1 in batches of idempotent statements until it is empty (or
/// [`FLUSH_ROUNDS`] batches); a failure keeps the writes for the next alarm.
pub async fn flush<K: KvStore, L: DecisionLog>(
    kv: &K,
    log: &L,
    now_ms: &dyn Fn() -> i64,
) -> Result<usize, StoreError> {
    let mut sent = 0;
    for _ in 0..FLUSH_ROUNDS {
        let pending = outbox::pending(kv, outbox::OUTBOX_FLUSH_BATCH)?;
        if pending.writes.is_empty() {
            if pending.set_aside > 0 {
                // Entries moved aside leave room for readable ones behind them.
                continue;
            }
            break;
        }
        let writes: Vec<_> = pending
            .writes
            .iter()
            .map(|pending| pending.write.clone())
            .collect();
        log.write_kpis(&writes, now_ms()).await?;
        outbox::acknowledge(kv, &pending.writes)?;
        sent += writes.len();
    }
    Ok(sent)
}

/// When the object's alarm runs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// After a round that found work, or soon after a poke.
    pub active_ms: i64,
    /// The longest wait while nothing happens: a stored decision whose poke was lost is
    /// counted within this long.
    pub idle_max_ms: i64,
}

pub const SCHEDULE: Schedule = Schedule {
    active_ms: 250,
    idle_max_ms: 5_000,
};

impl Schedule {
    /// The delay before the next alarm, and the new count of quiet alarms in a row: soon
    /// while there is work, doubling up to [`Schedule::idle_max_ms`] while there is none or
    /// while D1 keeps failing.
    pub fn next(&self, quiet_rounds: u32, worked: bool) -> (i64, u32) {
        if worked {
            return (self.active_ms, 0);
        }
        let delay = self
            .active_ms
            .saturating_mul(1_i64 << quiet_rounds.min(16))
            .min(self.idle_max_ms);
        (delay, quiet_rounds.saturating_add(1))
    }
}
