//! `GET /metrics`: the KPIs in Prometheus text exposition format (version 0.0.4). Counters
//! are all-time totals, the latency histogram comes from the totals' sketch, and the gauges
//! describe the rolling 5-minute view.

use std::fmt::Write;

use crate::drift::{DriftReport, DriftSummary};
use crate::events::Channel;
use crate::kpi::{Core, KpiView, Percentiles, PerformanceState};

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

    family(
        &mut out,
        "valle_decisions_total",
        "counter",
        "Applications scored and stored, by band and decision.",
    );
    let bands = [
        ("bajo", totals.bands.bajo),
        ("medio", totals.bands.medio),
        ("alto", totals.bands.alto),
    ];
    for (band, count) in bands {
        let _ = writeln!(out, "valle_decisions_total{{band=\"{band}\"}} {count}");
    }
    family(
        &mut out,
        "valle_decision_outcomes_total",
        "counter",
        "Decisions by outcome.",
    );
    let outcomes = [
        ("approve", totals.outcomes.approve),
        ("review", totals.outcomes.review),
        ("decline", totals.outcomes.decline),
    ];
    for (decision, count) in outcomes {
        let _ = writeln!(
            out,
            "valle_decision_outcomes_total{{decision=\"{decision}\"}} {count}"
        );
    }
    family(
        &mut out,
        "valle_request_errors_total",
        "counter",
        "Scoring and event requests refused, by error code.",
    );
    if totals.errors_by_code.is_empty() {
        let _ = writeln!(out, "valle_request_errors_total{{code=\"none\"}} 0");
    }
    for (code, count) in &totals.errors_by_code {
        let _ = writeln!(
            out,
            "valle_request_errors_total{{code=\"{}\"}} {count}",
            label(code)
        );
    }
    family(
        &mut out,
        "valle_model_mismatches_total",
        "counter",
        "Decisions where the client's score differed from the edge's.",
    );
    let _ = writeln!(out, "valle_model_mismatches_total {}", totals.mismatches);
    family(
        &mut out,
        "valle_late_events_total",
        "counter",
        "Events later than the allowed lateness, kept out of event-time windows.",
    );
    let _ = writeln!(out, "valle_late_events_total {}", core.late_events);
    family(
        &mut out,
        "valle_window_revisions_total",
        "counter",
        "Late events that revised a closed event-time window.",
    );
    let _ = writeln!(out, "valle_window_revisions_total {}", core.revisions);
    family(
        &mut out,
        "valle_count_windows_closed_total",
        "counter",
        "Count-based KPI windows closed.",
    );
    let _ = writeln!(
        out,
        "valle_count_windows_closed_total {}",
        core.open_count_window.index
    );

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

    let gauges: [(&str, &str, Option<f64>); 8] = [
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
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {}", number(value.unwrap_or(f64::NAN)));
    }
    family(
        &mut out,
        "valle_dead_letters_open",
        "gauge",
        "Dead letters waiting for an officer.",
    );
    let _ = writeln!(
        out,
        "valle_dead_letters_open {}",
        number(extra.dead_letters_open.map_or(f64::NAN, |n| n as f64))
    );
    family(
        &mut out,
        "valle_inbox_events",
        "gauge",
        "Events acknowledged with 202 whose decision or dead letter is not stored yet.",
    );
    let _ = writeln!(
        out,
        "valle_inbox_events {}",
        number(extra.inbox_kept.map_or(f64::NAN, |n| n as f64))
    );
    family(
        &mut out,
        "valle_inbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest acknowledged event still waiting for its decision or dead letter.",
    );
    let _ = writeln!(
        out,
        "valle_inbox_oldest_age_seconds {}",
        number(extra.inbox_oldest_age_s.unwrap_or(f64::NAN))
    );
    family(
        &mut out,
        "valle_wasm_memory_bytes",
        "gauge",
        "Linear memory of a wasm instance (it only grows).",
    );
    for (instance, bytes) in [
        ("worker", extra.worker_memory_bytes),
        ("kpi_object", extra.kpi_object_memory_bytes),
    ] {
        let _ = writeln!(
            out,
            "valle_wasm_memory_bytes{{instance=\"{instance}\"}} {}",
            number(bytes.map_or(f64::NAN, |n| n as f64))
        );
    }
    family(
        &mut out,
        "valle_event_time_watermark_seconds",
        "gauge",
        "Event-time watermark, Unix seconds.",
    );
    let _ = writeln!(
        out,
        "valle_event_time_watermark_seconds {}",
        number(
            recent
                .watermark_ms
                .map_or(f64::NAN, |ms| ms as f64 / 1_000.0)
        )
    );
    family(
        &mut out,
        "valle_performance_state",
        "gauge",
        "1 for the current performance state, 0 for the others.",
    );
    for state in PerformanceState::ALL {
        let _ = writeln!(
            out,
            "valle_performance_state{{state=\"{}\"}} {}",
            state.as_str(),
            u8::from(state == recent.state)
        );
    }
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
        "gauge",
        "Population Stability Index of a monitored field against training.",
    );
    for (window, summary) in windows {
        drift_lines(&mut out, window, summary);
    }
    family(
        &mut out,
        "valle_drift_decisions",
        "gauge",
        "Decisions the drift figures are computed from.",
    );
    for (window, summary) in windows {
        let _ = writeln!(
            out,
            "valle_drift_decisions{{window=\"{window}\"}} {}",
            summary.map_or(0, |summary| summary.decisions)
        );
    }
    family(
        &mut out,
        "valle_drift_significant_features",
        "gauge",
        "Fields with PSI of 0.2 or more, counted once the window has enough decisions.",
    );
    for (window, summary) in windows {
        let _ = writeln!(
            out,
            "valle_drift_significant_features{{window=\"{window}\"}} {}",
            summary.map_or(0, |summary| summary.alerts.len())
        );
    }
    family(
        &mut out,
        "valle_model_info",
        "gauge",
        "The model the edge scores with.",
    );
    let _ = writeln!(
        out,
        "valle_model_info{{sha256=\"{}\"}} 1",
        label(&extra.model_sha256)
    );
    out
}
