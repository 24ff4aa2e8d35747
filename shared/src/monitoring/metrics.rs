//! `GET /metrics`: the KPIs in Prometheus text exposition format (version 0.0.4). Counters
//! are all-time totals, the latency histogram comes from the totals' sketch, and the gauges
//! describe the rolling 5-minute view.

use std::fmt::{Display, Write};

use crate::intake::channel::Channel;
use crate::monitoring::drift::{DriftReport, DriftSummary};
use crate::monitoring::kpi::{Core, KpiView, Percentiles, PerformanceState};

/// The media type of the exposition format.
pub const PROMETHEUS_MEDIA_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram bucket bounds, in seconds.
const LATENCY_BUCKETS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// What `/metrics` shows besides the aggregator's own state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra {
    /// Dead letters not yet replayed.
    pub dead_letters_open: Option<u64>,
    /// Events acknowledged but not yet settled as a decision or a dead letter.
    pub inbox_kept: Option<u64>,
    /// How long the oldest of them has been waiting (0 when none is).
    pub inbox_oldest_age_s: Option<f64>,
    pub kpi_cache_hit_ratio: Option<f64>,
    pub model_sha256: String,
    /// Linear memory of the worker's wasm instance and of the KPI object's, which wasm can
    /// grow but never give back: a leak shows here first.
    pub worker_memory_bytes: Option<u64>,
    pub kpi_object_memory_bytes: Option<u64>,
    /// Rows in the KPI object's storage: bounded by the event-time windows it keeps, not
    /// by how many decisions it has counted.
    pub kpi_object_rows: Option<u64>,
    /// Seconds since the KPI object last read D1's decision log to its end.
    pub kpi_lag_s: Option<f64>,
}

/// Escapes a label value as the exposition format requires.
pub(crate) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition format's metric types this page uses.
pub(crate) const COUNTER: &str = "counter";
pub(crate) const GAUGE: &str = "gauge";

/// A family's name and help text.
type Named<'a> = (&'a str, &'a str);

/// A family of one unlabelled sample.
fn sample(out: &mut String, kind: &str, (name, help): Named<'_>, value: impl Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// A family whose samples differ by the value of one label.
fn samples<L: Display, V: Display>(
    out: &mut String,
    kind: &str,
    (name, help): Named<'_>,
    label_name: &str,
    series: impl IntoIterator<Item = (L, V)>,
) {
    family(out, name, kind, help);
    for (value_of_label, value) in series {
        let _ = writeln!(out, "{name}{{{label_name}=\"{value_of_label}\"}} {value}");
    }
}

/// A gauge that may not be known yet is NaN, as the exposition format spells it.
fn optional(value: Option<f64>) -> String {
    number(value.unwrap_or(f64::NAN))
}

pub(crate) fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// The drift gauges of one window: PSI per field, decisions, significant fields.
fn drift_lines(out: &mut String, window: &str, summary: Option<&DriftSummary>) {
    let Some(summary) = summary else {
        return;
    };
    for feature in &summary.features {
        let _ = writeln!(
            out,
            "valle_drift_psi{{feature=\"{}\",window=\"{window}\"}} {}",
            label(&feature.feature),
            number(feature.psi.unwrap_or(f64::NAN))
        );
    }
}

pub fn render(core: &Core, recent: &KpiView, drift: Option<&DriftReport>, extra: &Extra) -> String {
    let totals = &core.totals;
    let mut out = String::with_capacity(4_096);

    samples(
        &mut out,
        COUNTER,
        (
            "valle_decisions_total",
            "Applications scored and stored, by band and decision.",
        ),
        "band",
        [
            ("bajo", totals.bands.bajo),
            ("medio", totals.bands.medio),
            ("alto", totals.bands.alto),
        ],
    );
    samples(
        &mut out,
        COUNTER,
        ("valle_decision_outcomes_total", "Decisions by outcome."),
        "decision",
        [
            ("approve", totals.outcomes.approve),
            ("review", totals.outcomes.review),
            ("decline", totals.outcomes.decline),
        ],
    );
    let codes = totals
        .errors_by_code
        .iter()
        .map(|(code, count)| (label(code), *count));
    let none = totals
        .errors_by_code
        .is_empty()
        .then(|| ("none".to_owned(), 0));
    samples(
        &mut out,
        COUNTER,
        (
            "valle_request_errors_total",
            "Scoring and event requests refused, by error code.",
        ),
        "code",
        none.into_iter().chain(codes),
    );
    let counters = [
        (
            "valle_model_mismatches_total",
            "Decisions where the client's score differed from the edge's.",
            totals.mismatches,
        ),
        (
            "valle_late_events_total",
            "Events later than the allowed lateness, kept out of event-time windows.",
            core.late_events,
        ),
        (
            "valle_window_revisions_total",
            "Late events that revised a closed event-time window.",
            core.revisions,
        ),
        (
            "valle_count_windows_closed_total",
            "Count-based KPI windows closed.",
            core.open_count_window.index,
        ),
    ];
    for (name, help, value) in counters {
        sample(&mut out, COUNTER, (name, help), value);
    }

    family(
        &mut out,
        "valle_request_duration_seconds",
        "histogram",
        "Latency by channel: online answers and batches from arrival to stored decision, events from the consumer's start to stored decision.",
    );
    for channel in Channel::ALL {
        let sketch = totals.latency(channel);
        let channel = channel.as_str();
        for bound in LATENCY_BUCKETS_S {
            let count = sketch.count_at_or_below(bound * 1_000.0);
            let _ = writeln!(
                out,
                "valle_request_duration_seconds_bucket{{channel=\"{channel}\",le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "valle_request_duration_seconds_bucket{{channel=\"{channel}\",le=\"+Inf\"}} {}",
            sketch.count()
        );
        let _ = writeln!(
            out,
            "valle_request_duration_seconds_sum{{channel=\"{channel}\"}} {}",
            number(sketch.sum() / 1_000.0)
        );
        let _ = writeln!(
            out,
            "valle_request_duration_seconds_count{{channel=\"{channel}\"}} {}",
            sketch.count()
        );
    }

    let summary = &recent.summary;
    family(
        &mut out,
        "valle_recent_request_duration_seconds",
        "summary",
        "Latency quantiles by channel over the last 5 minutes.",
    );
    for channel in Channel::ALL {
        let percentiles = summary
            .latency_by_channel
            .get(&channel)
            .copied()
            .unwrap_or_default();
        let channel = channel.as_str();
        let quantiles = [
            ("0.5", percentiles.p50),
            ("0.95", percentiles.p95),
            ("0.99", percentiles.p99),
        ];
        for (q, value) in quantiles {
            let value = value.map_or(f64::NAN, |ms| ms / 1_000.0);
            let _ = writeln!(
                out,
                "valle_recent_request_duration_seconds{{channel=\"{channel}\",quantile=\"{q}\"}} {}",
                number(value)
            );
        }
    }
    for channel in Channel::ALL {
        let Percentiles { sum_ms, count, .. } = summary
            .latency_by_channel
            .get(&channel)
            .copied()
            .unwrap_or_default();
        let channel = channel.as_str();
        let _ = writeln!(
            out,
            "valle_recent_request_duration_seconds_sum{{channel=\"{channel}\"}} {}",
            number(sum_ms / 1_000.0)
        );
        let _ = writeln!(
            out,
            "valle_recent_request_duration_seconds_count{{channel=\"{channel}\"}} {count}"
        );
    }

    let gauges: [(&str, &str, Option<f64>); 12] = [
        (
            "valle_recent_throughput_decisions_per_second",
            "Decisions per second over the last 5 minutes.",
            Some(recent.throughput_per_s),
        ),
        (
            "valle_recent_error_ratio",
            "Share of requests refused over the last 5 minutes.",
            summary.error_rate,
        ),
        (
            "valle_recent_default_risk_ratio",
            "High-risk over low-risk decisions in the last 5 minutes.",
            summary.default_risk_ratio,
        ),
        (
            "valle_recent_mean_confidence_ratio",
            "Mean decision confidence in the last 5 minutes.",
            summary.mean_confidence,
        ),
        (
            "valle_recent_mean_probability_ratio",
            "Mean predicted probability of default in the last 5 minutes.",
            summary.mean_probability,
        ),
        (
            "valle_kpi_cache_hit_ratio",
            "Share of KPI view requests answered from the cache.",
            extra.kpi_cache_hit_ratio,
        ),
        (
            "valle_kpi_object_rows",
            "Rows in the KPI object's storage.",
            extra.kpi_object_rows.map(|n| n as f64),
        ),
        (
            "valle_kpi_lag_seconds",
            "Seconds since the KPI object last counted every stored decision and dead letter.",
            extra.kpi_lag_s,
        ),
        (
            "valle_dead_letters_open",
            "Dead letters waiting for an officer.",
            extra.dead_letters_open.map(|n| n as f64),
        ),
        (
            "valle_inbox_events",
            "Events acknowledged with 202 whose decision or dead letter is not stored yet.",
            extra.inbox_kept.map(|n| n as f64),
        ),
        (
            "valle_inbox_oldest_age_seconds",
            "Age of the oldest acknowledged event still waiting for its decision or dead letter.",
            extra.inbox_oldest_age_s,
        ),
        (
            "valle_event_time_watermark_seconds",
            "Event-time watermark, Unix seconds.",
            recent.watermark_ms.map(|ms| ms as f64 / 1_000.0),
        ),
    ];
    for (name, help, value) in gauges {
        sample(&mut out, GAUGE, (name, help), optional(value));
    }
    let memory = [
        ("worker", extra.worker_memory_bytes),
        ("kpi_object", extra.kpi_object_memory_bytes),
    ];
    samples(
        &mut out,
        GAUGE,
        (
            "valle_wasm_memory_bytes",
            "Linear memory of a wasm instance (it only grows).",
        ),
        "instance",
        memory.map(|(instance, bytes)| (instance, optional(bytes.map(|n| n as f64)))),
    );
    samples(
        &mut out,
        GAUGE,
        (
            "valle_performance_state",
            "1 for the current performance state, 0 for the others.",
        ),
        "state",
        PerformanceState::ALL.map(|state| (state.as_str(), u8::from(state == recent.state))),
    );
    // Drift over the rolling 24 h and over the newest hour window with decisions.
    let windows = [
        ("24h", drift.map(|report| &report.rolling_24h)),
        (
            "1h",
            drift.and_then(|report| report.latest_hour.as_ref().map(|hour| &hour.summary)),
        ),
    ];
    family(
        &mut out,
        "valle_drift_psi",
        GAUGE,
        "Population Stability Index of a monitored field against training.",
    );
    for (window, summary) in windows {
        drift_lines(&mut out, window, summary);
    }
    samples(
        &mut out,
        GAUGE,
        (
            "valle_drift_decisions",
            "Decisions the drift figures are computed from.",
        ),
        "window",
        windows.map(|(window, summary)| (window, summary.map_or(0, |summary| summary.decisions))),
    );
    samples(
        &mut out,
        GAUGE,
        (
            "valle_drift_significant_features",
            "Fields with PSI of 0.2 or more, counted once the window has enough decisions.",
        ),
        "window",
        windows
            .map(|(window, summary)| (window, summary.map_or(0, |summary| summary.alerts.len()))),
    );
    samples(
        &mut out,
        GAUGE,
        ("valle_model_info", "The model the edge scores with."),
        "sha256",
        [(label(&extra.model_sha256), 1)],
    );
    out
}
