//! The windows the aggregator closes and stores: count windows of N decisions, event-time
//! windows of a span per branch, and the events that came later than the lateness allows.

use serde::{Deserialize, Serialize};

use super::{Stats, Summary, HOUR_MS, MINUTE_MS};
use crate::monitoring::drift::DriftCounts;

/// A count-based window still filling up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OpenCountWindow {
    pub index: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub stats: Stats,
}

/// A closed count-based window: N decisions, stored in `kpi_windows`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CountWindow {
    pub index: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub duration_ms: i64,
    pub count: u64,
    /// Decisions per second between the first and last decision's arrival.
    pub rate_per_s: f64,
    pub summary: Summary,
}

impl CountWindow {
    /// Closes a window from the decisions it holds; also used to recompute a window from
    /// stored decision rows, which must give the same answer.
    pub fn close(index: u64, first_seq: u64, last_seq: u64, stats: &Stats) -> CountWindow {
        let start_ms = stats.first_received_ms.unwrap_or_default();
        let end_ms = stats.last_received_ms.unwrap_or(start_ms);
        let duration_ms = end_ms - start_ms;
        CountWindow {
            index,
            first_seq,
            last_seq,
            start_ms,
            end_ms,
            duration_ms,
            count: stats.decisions,
            rate_per_s: stats.decisions as f64 * 1_000.0 / duration_ms.max(1) as f64,
            summary: stats.summary(),
        }
    }
}

/// The length of an event-time window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum Span {
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "1h")]
    Hour,
}

impl Span {
    pub const ALL: [Span; 2] = [Span::Minute, Span::Hour];

    pub fn ms(self) -> i64 {
        match self {
            Span::Minute => MINUTE_MS,
            Span::Hour => HOUR_MS,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Span::Minute => "1m",
            Span::Hour => "1h",
        }
    }

    pub fn start_of(self, time_ms: i64) -> i64 {
        time_ms.div_euclid(self.ms()) * self.ms()
    }
}

/// An event-time window of one branch (or [`ALL_BRANCHES`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EventWindow {
    pub span: Span,
    pub branch: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The watermark has passed its end.
    pub closed: bool,
    /// A late event changed it after it closed.
    pub revised: bool,
    pub stats: Stats,
    /// Drift bin counts of the decisions; kept for 1-hour windows only.
    #[serde(default, skip_serializing_if = "DriftCounts::is_empty")]
    pub drift: DriftCounts,
}

impl EventWindow {
    /// The storage key: stable and ordered by span, branch, then start.
    pub fn key(&self) -> String {
        window_key(self.span, &self.branch, self.start_ms)
    }
}

pub fn window_key(span: Span, branch: &str, start_ms: i64) -> String {
    format!("ew|{}|{branch}|{start_ms:015}", span.as_str())
}

/// An event that arrived later than the allowed lateness: its decision is stored, the
/// event-time windows are left alone, and it is recorded in the late-events table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct LateEvent {
    pub request_id: String,
    pub branch: String,
    pub event_time_ms: i64,
    pub received_at_ms: i64,
    pub watermark_ms: i64,
}
