//! Live KPIs: a plain aggregator the edge's Durable Object wraps. It sees every observation
//! (a decision or a failed request) once, in arrival order, and keeps
//!
//! - count-based tumbling windows of N decisions (closed ones are handed out for storage),
//! - event-time tumbling windows of 1 minute and 1 hour, per branch and for all branches,
//!   closed by a watermark with bounded out-of-orderness, revised by late events within the
//!   allowed lateness, and refusing (but reporting) events later than that,
//! - all-time totals for `/metrics`,
//!
//! and answers rolling views (5 min, 1 h, 24 h) with a performance state. Everything is
//! deterministic given the observations and the `now` passed in, so it is tested on the host.
//! The aggregates it merges are in `stats.rs`, the windows it closes in `windows.rs`,
//! the views it answers in `view.rs`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::contract::codes::ErrorCode;
use crate::decision::model::{Band, Decision};
use crate::intake::channel::Channel;
use crate::monitoring::drift::{Binning, DriftCounts, DriftReport, DriftSummary, HourDrift};

mod stats;
mod view;
mod windows;

pub use stats::{BandCounts, DecisionCounts, Percentiles, Stats, Summary};
pub use view::{Alert, Assessment, KpiView, PerformanceState, SeriesPoint, Thresholds, View};
pub use windows::{window_key, CountWindow, EventWindow, LateEvent, OpenCountWindow, Span};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
/// The branch key that aggregates every branch.
pub const ALL_BRANCHES: &str = "*";

/// Knobs of the aggregator; the edge reads them from `[vars]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KpiConfig {
    /// Decisions per count-based window.
    pub count_window: u32,
    /// The watermark trails the largest event time seen by this much.
    pub out_of_orderness_ms: i64,
    /// Events older than the watermark by more than this are late beyond repair.
    pub allowed_lateness_ms: i64,
    pub thresholds: Thresholds,
    /// Drift alerts need at least this many decisions in the window.
    #[serde(default = "default_drift_min_decisions")]
    pub drift_min_decisions: u64,
}

fn default_drift_min_decisions() -> u64 {
    100
}

impl Default for KpiConfig {
    fn default() -> KpiConfig {
        KpiConfig {
            count_window: 20,
            out_of_orderness_ms: 5_000,
            allowed_lateness_ms: 24 * HOUR_MS,
            thresholds: Thresholds::default(),
            drift_min_decisions: default_drift_min_decisions(),
        }
    }
}

/// What happened to one request the KPIs count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Decided {
        band: Band,
        decision: Decision,
        probability: f32,
        confidence: f32,
        /// The client's own score differed from the edge's.
        mismatch: bool,
    },
    Failed {
        code: ErrorCode,
    },
}

fn online() -> Channel {
    Channel::Online
}

/// One request as the aggregator sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Observation {
    pub request_id: String,
    pub branch: String,
    /// Where the request came from; latency is kept per channel, so a batch's running time
    /// never reads as a slow online answer.
    #[serde(default = "online")]
    pub channel: Channel,
    pub received_at_ms: i64,
    pub event_time_ms: i64,
    pub latency_ms: f64,
    pub outcome: Outcome,
    /// The decision's drift bins ([`Binning::bins_of`]); empty for a failed request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift_bins: Vec<u8>,
}

/// Everything the aggregator keeps apart from the event-time windows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Core {
    /// Sequence number of the next decision; a decision's `kpi_seq`.
    pub next_seq: u64,
    pub max_event_time_ms: Option<i64>,
    pub totals: Stats,
    pub late_events: u64,
    pub revisions: u64,
    pub open_count_window: OpenCountWindow,
}

impl Core {
    pub fn watermark_ms(&self, config: &KpiConfig) -> Option<i64> {
        self.max_event_time_ms
            .map(|max| max - config.out_of_orderness_ms)
    }
}

/// What one observation changed, for the edge to store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Effects {
    /// The decision's sequence number (none for a failed request).
    pub seq: Option<u64>,
    /// The count window this decision belongs to.
    pub count_window: Option<u64>,
    pub closed_count_window: Option<CountWindow>,
    pub late: Option<LateEvent>,
    /// Closed event-time windows that were just closed or revised.
    pub event_windows: Vec<EventWindow>,
}

/// The aggregator. Its state is [`Core`] plus the event-time windows, persisted separately so
/// that one observation rewrites only the few windows it touched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aggregator {
    config: KpiConfig,
    core: Core,
    windows: BTreeMap<String, EventWindow>,
    open_windows: BTreeSet<String>,
    dirty: BTreeSet<String>,
    removed: BTreeSet<String>,
    /// The minute up to which expired windows were last looked for: the scan over every
    /// window runs once a minute of event time, not once per observation.
    evicted_through_minute: Option<i64>,
}

impl Aggregator {
    pub fn new(config: KpiConfig) -> Aggregator {
        Aggregator::restore(config, Core::default(), Vec::new())
    }

    /// Rebuilds an aggregator from what [`Self::core`] and [`Self::take_changes`] stored.
    pub fn restore(config: KpiConfig, core: Core, windows: Vec<EventWindow>) -> Aggregator {
        let open_windows = windows
            .iter()
            .filter(|window| !window.closed)
            .map(EventWindow::key)
            .collect();
        Aggregator {
            config,
            core,
            windows: windows
                .into_iter()
                .map(|window| (window.key(), window))
                .collect(),
            open_windows,
            dirty: BTreeSet::new(),
            removed: BTreeSet::new(),
            evicted_through_minute: None,
        }
    }

    pub fn config(&self) -> &KpiConfig {
        &self.config
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    pub fn watermark_ms(&self) -> Option<i64> {
        self.core.watermark_ms(&self.config)
    }

    /// Windows changed and removed since the last call, for the storage to write and delete.
    pub fn take_changes(&mut self) -> (Vec<EventWindow>, Vec<String>) {
        let dirty = std::mem::take(&mut self.dirty);
        let changed = dirty
            .iter()
            .filter_map(|key| self.windows.get(key).cloned())
            .collect();
        let removed = std::mem::take(&mut self.removed).into_iter().collect();
        (changed, removed)
    }

    /// Counts one observation. `now_ms` is the edge's clock; event times later than it do
    /// not move the watermark, so one device with a clock ahead cannot make everyone late.
    pub fn observe(&mut self, observation: &Observation, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        self.core.totals.add(observation);
        if matches!(observation.outcome, Outcome::Decided { .. }) {
            let seq = self.core.next_seq;
            self.core.next_seq += 1;
            effects.seq = Some(seq);
            let open = &mut self.core.open_count_window;
            effects.count_window = Some(open.index);
            open.first_seq.get_or_insert(seq);
            open.last_seq = Some(seq);
            open.stats.add(observation);
            if open.stats.decisions >= u64::from(self.config.count_window.max(1)) {
                let first = open.first_seq.unwrap_or(seq);
                effects.closed_count_window =
                    Some(CountWindow::close(open.index, first, seq, &open.stats));
                self.core.open_count_window = OpenCountWindow {
                    index: open.index + 1,
                    ..OpenCountWindow::default()
                };
            }
        }
        let event_time = observation.event_time_ms;
        let too_late = self
            .watermark_ms()
            .filter(|watermark| event_time < watermark - self.config.allowed_lateness_ms);
        if let Some(watermark_ms) = too_late {
            self.core.late_events += 1;
            effects.late = Some(LateEvent {
                request_id: observation.request_id.clone(),
                branch: observation.branch.clone(),
                event_time_ms: event_time,
                received_at_ms: observation.received_at_ms,
                watermark_ms,
            });
        } else {
            let mut revised = false;
            let watermark = self.watermark_ms();
            for span in Span::ALL {
                for branch in [ALL_BRANCHES, observation.branch.as_str()] {
                    let start_ms = span.start_of(event_time);
                    let key = window_key(span, branch, start_ms);
                    let window = self.windows.entry(key.clone()).or_insert_with(|| {
                        self.open_windows.insert(key.clone());
                        EventWindow {
                            span,
                            branch: branch.to_owned(),
                            start_ms,
                            end_ms: start_ms + span.ms(),
                            closed: false,
                            revised: false,
                            stats: Stats::default(),
                            drift: DriftCounts::default(),
                        }
                    });
                    window.stats.add(observation);
                    if span == Span::Hour && !observation.drift_bins.is_empty() {
                        if let Ok(binning) = Binning::embedded() {
                            window.drift.add(binning, &observation.drift_bins);
                        }
                    }
                    // A late event revises its window, whether or not it had other events.
                    if window.closed || watermark.is_some_and(|w| window.end_ms <= w) {
                        window.revised = true;
                        revised = true;
                        effects.event_windows.push(window.clone());
                    }
                    self.dirty.insert(key);
                    self.removed.remove(&window_key(span, branch, start_ms));
                }
            }
            self.core.revisions += u64::from(revised);
        }
        let bounded = event_time.min(now_ms);
        self.core.max_event_time_ms = Some(
            self.core
                .max_event_time_ms
                .map_or(bounded, |max| max.max(bounded)),
        );
        self.close_and_evict(&mut effects);
        effects
    }

    fn close_and_evict(&mut self, effects: &mut Effects) {
        let Some(watermark) = self.watermark_ms() else {
            return;
        };
        let closing: Vec<String> = self
            .open_windows
            .iter()
            .filter(|key| {
                self.windows
                    .get(*key)
                    .is_some_and(|w| w.end_ms <= watermark)
            })
            .cloned()
            .collect();
        for key in closing {
            self.open_windows.remove(&key);
            if let Some(window) = self.windows.get_mut(&key) {
                window.closed = true;
                effects.event_windows.push(window.clone());
                self.dirty.insert(key);
            }
        }
        let horizon = watermark - self.config.allowed_lateness_ms;
        let minute = Span::Minute.start_of(horizon);
        if self.evicted_through_minute == Some(minute) {
            return;
        }
        self.evicted_through_minute = Some(minute);
        let expired: Vec<String> = self
            .windows
            .iter()
            .filter(|(_, window)| window.closed && window.end_ms < horizon - HOUR_MS)
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            self.windows.remove(&key);
            self.dirty.remove(&key);
            self.removed.insert(key);
        }
    }

    /// Merged stats of one branch's (or all branches') windows of `span` starting in
    /// `[from_ms, to_ms)`, with one point per window for charts.
    pub fn range(
        &self,
        span: Span,
        branch: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> (Stats, Vec<SeriesPoint>) {
        let low = window_key(span, branch, from_ms.max(0));
        let high = window_key(span, branch, to_ms.max(0));
        let mut merged = Stats::default();
        let mut series = Vec::new();
        for window in self.windows.range(low..high).map(|(_, window)| window) {
            merged.merge(&window.stats);
            series.push(SeriesPoint::of(window));
        }
        (merged, series)
    }

    /// PSI per monitored field of each 1-hour window of the last 24 h of one branch (or all),
    /// and of their merge.
    pub fn drift(&self, branch: Option<&str>, now_ms: i64) -> Option<DriftReport> {
        let binning = Binning::embedded().ok()?;
        let min_decisions = self.config.drift_min_decisions;
        let to_ms = Span::Hour.start_of(now_ms) + HOUR_MS;
        let from_ms = to_ms - 24 * HOUR_MS;
        let low = window_key(Span::Hour, branch.unwrap_or(ALL_BRANCHES), from_ms.max(0));
        let high = window_key(Span::Hour, branch.unwrap_or(ALL_BRANCHES), to_ms.max(0));
        let mut merged = DriftCounts::default();
        let hours: Vec<HourDrift> = self
            .windows
            .range(low..high)
            .map(|(_, window)| {
                merged.merge(&window.drift);
                HourDrift {
                    start_ms: window.start_ms,
                    end_ms: window.end_ms,
                    closed: window.closed,
                    revised: window.revised,
                    summary: DriftSummary::of(binning, &window.drift, min_decisions),
                }
            })
            .collect();
        Some(DriftReport {
            branch: branch.map(str::to_owned),
            from_ms,
            to_ms,
            min_decisions,
            rolling_24h: DriftSummary::of(binning, &merged, min_decisions),
            latest_hour: hours
                .iter()
                .rev()
                .find(|hour| hour.summary.decisions > 0)
                .cloned(),
            hours,
        })
    }

    /// A rolling view ending at `now_ms`, with the performance state of the last 5 minutes
    /// of all branches.
    pub fn view(&self, view: View, branch: Option<&str>, now_ms: i64) -> KpiView {
        let (span, duration) = view.shape();
        let to_ms = span.start_of(now_ms) + span.ms();
        let from_ms = to_ms - duration;
        let (stats, series) = self.range(span, branch.unwrap_or(ALL_BRANCHES), from_ms, to_ms);
        let (recent, _) = self.range(
            Span::Minute,
            ALL_BRANCHES,
            to_ms - View::FiveMinutes.shape().1,
            to_ms,
        );
        let performance = self.config.thresholds.assess(
            &recent.summary(),
            recent.decisions as f64 * 1_000.0 / View::FiveMinutes.shape().1 as f64,
        );
        KpiView {
            window: view,
            branch: branch.map(str::to_owned),
            from_ms,
            to_ms,
            throughput_per_s: stats.decisions as f64 * 1_000.0 / duration as f64,
            summary: stats.summary(),
            series,
            late_events: self.core.late_events,
            revisions: self.core.revisions,
            watermark_ms: self.watermark_ms(),
            state: performance.state,
            alerts: performance.alerts,
        }
    }
}
