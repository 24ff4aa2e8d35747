//! The KPI aggregator on the host: count windows, event-time windows with watermark and
//! lateness, rolling views, performance state, and the Prometheus text.

use valle_shared::contract::codes::ErrorCode;
use valle_shared::decision::model::{Band, Decision};
use valle_shared::intake::channel::Channel;
use valle_shared::monitoring::drift::{Binning, DriftBand, DriftCounts, DriftSummary};
use valle_shared::monitoring::kpi::{
    Aggregator, CountWindow, KpiConfig, Observation, Outcome, PerformanceState, Span, Stats,
    Thresholds, View, HOUR_MS, MINUTE_MS,
};
use valle_shared::monitoring::metrics::{render, Extra};
use valle_shared::Application;

/// 2026-11-23T10:00:00Z.
const T0: i64 = 1_795_428_000_000;

fn decided(
    id: usize,
    branch: &str,
    event_time_ms: i64,
    received_at_ms: i64,
    latency_ms: f64,
) -> Observation {
    let band = [Band::Bajo, Band::Medio, Band::Alto][id % 3];
    let decision = [Decision::Approve, Decision::Review, Decision::Decline][id % 3];
    Observation {
        request_id: format!("r-{id}"),
        branch: branch.to_owned(),
        channel: Channel::Online,
        received_at_ms,
        event_time_ms,
        latency_ms,
        outcome: Outcome::Decided {
            band,
            decision,
            probability: 0.1 + (id % 7) as f32 * 0.1,
            confidence: 0.5 + (id % 5) as f32 * 0.1,
            mismatch: id.is_multiple_of(11),
        },
        drift_bins: Vec::new(),
    }
}

fn failed(id: usize, code: ErrorCode, at_ms: i64) -> Observation {
    Observation {
        request_id: format!("e-{id}"),
        branch: "norte".to_owned(),
        channel: Channel::Online,
        received_at_ms: at_ms,
        event_time_ms: at_ms,
        latency_ms: 1.0,
        outcome: Outcome::Failed { code },
        drift_bins: Vec::new(),
    }
}

#[test]
fn count_windows_close_every_n_decisions_and_match_a_recomputation() {
    let mut aggregator = Aggregator::new(KpiConfig::default());
    let observations: Vec<Observation> = (0..45)
        .map(|i| {
            decided(
                i,
                "norte",
                T0 + i as i64 * 100,
                T0 + i as i64 * 100,
                2.0 + i as f64,
            )
        })
        .collect();
    let mut closed = Vec::new();
    let mut assigned = Vec::new();
    for (i, observation) in observations.iter().enumerate() {
        if i == 7 {
            // Errors are not decisions: they do not fill count windows.
            let effects = aggregator.observe(&failed(i, ErrorCode::Validation, T0), T0);
            assert_eq!((effects.seq, effects.count_window), (None, None));
        }
        let effects = aggregator.observe(observation, T0 + 5_000);
        assigned.push((effects.seq, effects.count_window));
        closed.extend(effects.closed_count_window);
    }
    assert_eq!(closed.len(), 2);
    assert_eq!(assigned[0], (Some(0), Some(0)));
    assert_eq!(assigned[19], (Some(19), Some(0)));
    assert_eq!(assigned[20], (Some(20), Some(1)));
    assert_eq!(aggregator.core().open_count_window.stats.decisions, 5);
    for window in &closed {
        let first = window.first_seq as usize;
        let mut stats = Stats::default();
        observations[first..=window.last_seq as usize]
            .iter()
            .for_each(|o| stats.add(o));
        let recomputed =
            CountWindow::close(window.index, window.first_seq, window.last_seq, &stats);
        assert_eq!(&recomputed, window);
        assert_eq!(window.count, 20);
        assert_eq!(window.duration_ms, 1_900);
        assert!((window.rate_per_s - 20.0 / 1.9).abs() < 1e-9);
    }
    assert_eq!(closed[1].first_seq, 20);
    let summary = &closed[0].summary;
    assert_eq!(
        (summary.bands.bajo, summary.bands.medio, summary.bands.alto),
        (7, 7, 6)
    );
    assert_eq!(summary.default_risk_ratio, Some(6.0 / 7.0));
}

#[test]
fn a_configurable_window_size() {
    let config = KpiConfig {
        count_window: 3,
        ..KpiConfig::default()
    };
    let mut aggregator = Aggregator::new(config);
    let closed: usize = (0..10)
        .map(|i| aggregator.observe(&decided(i, "sur", T0, T0, 1.0), T0))
        .filter(|effects| effects.closed_count_window.is_some())
        .count();
    assert_eq!(closed, 3);
}

/// Event time, arrival, and what should happen: the minute window it lands in, whether that
/// window is a revision, or that it is late beyond the allowed lateness.
#[derive(Debug, PartialEq)]
enum Fate {
    Window { minute_start: i64, revised: bool },
    Late,
}

fn check_fates(config: KpiConfig, cases: &[(i64, Fate)]) {
    let mut aggregator = Aggregator::new(config);
    for (i, (event_time, expected)) in cases.iter().enumerate() {
        let now = T0 + 10 * HOUR_MS;
        let effects = aggregator.observe(&decided(i, "norte", *event_time, now, 3.0), now);
        let fate = match effects.late {
            Some(late) => {
                assert_eq!(late.event_time_ms, *event_time);
                Fate::Late
            }
            None => {
                let minute_start = Span::Minute.start_of(*event_time);
                let (stats, series) =
                    aggregator.range(Span::Minute, "norte", minute_start, minute_start + 1);
                assert_eq!(series.len(), 1, "case {i}");
                assert!(stats.decisions >= 1);
                Fate::Window {
                    minute_start,
                    revised: series[0].revised && effects.event_windows.iter().any(|w| w.revised),
                }
            }
        };
        assert_eq!(&fate, expected, "case {i}: event at {event_time}");
    }
}

#[test]
fn watermark_and_allowed_lateness() {
    let base = T0 + 9 * HOUR_MS;
    check_fates(
        KpiConfig::default(),
        &[
            (
                base,
                Fate::Window {
                    minute_start: base,
                    revised: false,
                },
            ),
            // Within the out-of-orderness bound: its window is still open.
            (
                base + 2 * MINUTE_MS,
                Fate::Window {
                    minute_start: base + 2 * MINUTE_MS,
                    revised: false,
                },
            ),
            (
                base + 2 * MINUTE_MS - 3_000,
                Fate::Window {
                    minute_start: base + MINUTE_MS,
                    revised: false,
                },
            ),
            // The watermark (base + 2 min − 5 s) passed the first window: a revision.
            (
                base + 30_000,
                Fate::Window {
                    minute_start: base,
                    revised: true,
                },
            ),
            // Hours late but within 24 h: revises its window, even one it opens.
            (
                base - 5 * HOUR_MS,
                Fate::Window {
                    minute_start: base - 5 * HOUR_MS,
                    revised: true,
                },
            ),
            (
                base - 5 * HOUR_MS + 1_000,
                Fate::Window {
                    minute_start: base - 5 * HOUR_MS,
                    revised: true,
                },
            ),
            // Beyond the allowed lateness: the late table.
            (base - 25 * HOUR_MS, Fate::Late),
        ],
    );
    let strict = KpiConfig {
        out_of_orderness_ms: 0,
        allowed_lateness_ms: MINUTE_MS,
        ..KpiConfig::default()
    };
    check_fates(
        strict,
        &[
            (
                T0,
                Fate::Window {
                    minute_start: T0,
                    revised: false,
                },
            ),
            (
                T0 + 3 * MINUTE_MS,
                Fate::Window {
                    minute_start: T0 + 3 * MINUTE_MS,
                    revised: false,
                },
            ),
            (
                T0 + 2 * MINUTE_MS + 10,
                Fate::Window {
                    minute_start: T0 + 2 * MINUTE_MS,
                    revised: true,
                },
            ),
            (T0 + MINUTE_MS + 59_000, Fate::Late),
        ],
    );
}

#[test]
fn a_clock_ahead_does_not_make_everyone_late() {
    let mut aggregator = Aggregator::new(KpiConfig::default());
    let now = T0;
    aggregator.observe(&decided(0, "norte", now + 48 * HOUR_MS, now, 1.0), now);
    let effects = aggregator.observe(&decided(1, "norte", now - 1_000, now, 1.0), now);
    assert_eq!(effects.late, None);
    assert_eq!(aggregator.watermark_ms(), Some(now - 5_000));
}

#[test]
fn windows_close_persist_and_restore() {
    let mut aggregator = Aggregator::new(KpiConfig::default());
    for i in 0..30 {
        let at = T0 + i as i64 * 10_000;
        aggregator.observe(
            &decided(i, ["norte", "sur"][i % 2], at, at, 1.0 + i as f64),
            at,
        );
    }
    let (changed, removed) = aggregator.take_changes();
    assert!(removed.is_empty());
    // Minutes 0..=4 of all branches, norte and sur, plus the hour windows.
    assert_eq!(changed.len(), 5 * 3 + 3);
    let restored = Aggregator::restore(KpiConfig::default(), aggregator.core().clone(), changed);
    let now = T0 + 5 * MINUTE_MS;
    assert_eq!(
        restored.view(View::FiveMinutes, None, now),
        aggregator.view(View::FiveMinutes, None, now)
    );
    assert_eq!(
        restored.view(View::OneDay, Some("sur"), now),
        aggregator.view(View::OneDay, Some("sur"), now)
    );
    // Nothing changed since: nothing to write.
    assert_eq!(aggregator.take_changes(), (Vec::new(), Vec::new()));
    // A day later the old minute windows leave memory and storage.
    let later = T0 + 27 * HOUR_MS;
    aggregator.observe(&decided(99, "norte", later, later, 1.0), later);
    let (_, removed) = aggregator.take_changes();
    assert_eq!(removed.len(), 5 * 3 + 3);
}

#[test]
fn rolling_views_and_branches() {
    let mut aggregator = Aggregator::new(KpiConfig::default());
    let now = T0 + 2 * HOUR_MS;
    for i in 0..120 {
        // One decision a minute for two hours, norte then sur alternately.
        let at = T0 + i as i64 * MINUTE_MS;
        aggregator.observe(&decided(i, ["norte", "sur"][i % 2], at, at, 10.0), at);
    }
    aggregator.observe(&failed(500, ErrorCode::Validation, now - 1), now);
    let five = aggregator.view(View::FiveMinutes, None, now - 1);
    assert_eq!(five.summary.decisions, 5);
    assert_eq!(five.summary.errors, 1);
    assert_eq!(five.series.len(), 5);
    assert!((five.throughput_per_s - 5.0 / 300.0).abs() < 1e-12);
    let hour = aggregator.view(View::OneHour, Some("sur"), now - 1);
    assert_eq!(hour.summary.decisions, 30);
    let day = aggregator.view(View::OneDay, None, now - 1);
    assert_eq!(day.summary.decisions, 120);
    assert_eq!(day.series.len(), 2);
    assert_eq!(day.summary.latency_ms.p99, Some(10.0));
    let unknown = aggregator.view(View::OneDay, Some("oeste"), now - 1);
    assert_eq!(unknown.summary.count, 0);
    assert_eq!(unknown.summary.success_rate, None);
}

#[test]
fn latency_is_kept_per_channel_and_only_online_answers_set_the_state() {
    let mut aggregator = Aggregator::new(KpiConfig::default());
    let now = T0 + MINUTE_MS;
    // Fast online answers, and one batch of 500 items that took 6 s to run.
    for i in 0..100 {
        aggregator.observe(&decided(i, "norte", T0, T0, 12.0), now);
    }
    for i in 100..600 {
        let item = Observation {
            channel: Channel::Batch,
            ..decided(i, "norte", T0, T0, 6_000.0)
        };
        aggregator.observe(&item, now);
    }
    let view = aggregator.view(View::FiveMinutes, None, now);
    assert_eq!(view.summary.decisions, 600);
    assert_eq!(view.summary.latency_ms.count, 100, "online answers only");
    assert!(view.summary.latency_ms.p95.is_some_and(|p95| p95 < 13.0));
    let batch = view.summary.latency_by_channel[&Channel::Batch];
    assert_eq!(batch.count, 500);
    assert!(batch.p50.is_some_and(|p50| (p50 - 6_000.0).abs() < 60.0));
    assert!(!view
        .summary
        .latency_by_channel
        .contains_key(&Channel::OfflineSync));
    assert_eq!(view.state, PerformanceState::Excelente, "{:?}", view.alerts);
    // Slow online answers do turn the state.
    for i in 600..700 {
        aggregator.observe(&decided(i, "norte", T0, T0, 700.0), now);
    }
    let view = aggregator.view(View::FiveMinutes, None, now);
    assert_eq!(view.state, PerformanceState::Critico);
    // The stored form reads back with its channels (the KPI object restores from it).
    let json = serde_json::to_string(aggregator.core()).expect("json");
    let core: valle_shared::monitoring::kpi::Core = serde_json::from_str(&json).expect("core");
    assert_eq!(&core, aggregator.core());
    let value: valle_shared::monitoring::kpi::Core =
        serde_json::from_value(serde_json::from_str(&json).expect("value")).expect("core");
    assert_eq!(&value, aggregator.core());
}

#[test]
fn performance_state_from_thresholds() {
    let thresholds = Thresholds {
        p95_latency_ms: [50.0, 150.0, 500.0],
        error_rate: [0.01, 0.02, 0.05],
        min_throughput_per_s: [1.0, 0.5, 0.1],
    };
    let check = |latency_ms: f64,
                 errors: usize,
                 throughput: f64,
                 state: PerformanceState,
                 metrics: &[&str]| {
        let mut stats = Stats::default();
        for i in 0..100 {
            let observation = if i < errors {
                failed(i, ErrorCode::Validation, T0)
            } else {
                decided(i, "norte", T0, T0, latency_ms)
            };
            stats.add(&observation);
        }
        let assessment = thresholds.assess(&stats.summary(), throughput);
        let got: Vec<&str> = assessment
            .alerts
            .iter()
            .map(|alert| alert.metric.as_str())
            .collect();
        assert_eq!(
            (assessment.state, got.as_slice()),
            (state, metrics),
            "{latency_ms} ms, {errors} errors, {throughput}/s"
        );
    };
    check(20.0, 0, 5.0, PerformanceState::Excelente, &[]);
    check(60.0, 0, 5.0, PerformanceState::Bueno, &["latency_p95_ms"]);
    check(20.0, 3, 5.0, PerformanceState::Regular, &["error_rate"]);
    check(
        600.0,
        1,
        5.0,
        PerformanceState::Critico,
        &["latency_p95_ms"],
    );
    check(
        20.0,
        0,
        0.3,
        PerformanceState::Regular,
        &["throughput_per_s"],
    );
    check(
        200.0,
        10,
        0.05,
        PerformanceState::Critico,
        &["latency_p95_ms", "error_rate", "throughput_per_s"],
    );
    // The default thresholds leave throughput alone: an idle night is not an incident.
    let idle = Thresholds::default().assess(&Stats::default().summary(), 0.0);
    assert_eq!(
        (idle.state, idle.alerts.len()),
        (PerformanceState::Excelente, 0)
    );
}

#[test]
fn prometheus_text() {
    let mut aggregator = Aggregator::new(KpiConfig::default());
    for i in 0..25 {
        aggregator.observe(&decided(i, "norte", T0, T0, 3.0 + i as f64), T0);
    }
    aggregator.observe(&failed(1, ErrorCode::Validation, T0), T0);
    let view = aggregator.view(View::FiveMinutes, None, T0);
    let drift = aggregator.drift(None, T0);
    let text = render(
        aggregator.core(),
        &view,
        drift.as_ref(),
        &Extra {
            dead_letters_open: Some(2),
            inbox_kept: Some(0),
            inbox_oldest_age_s: Some(0.0),
            kpi_cache_hit_ratio: None,
            model_sha256: "ab\"c".into(),
            worker_memory_bytes: Some(1_310_720),
            kpi_object_memory_bytes: None,
            kpi_object_rows: Some(12),
            kpi_lag_s: Some(0.5),
        },
    );
    let errors = format!(
        "valle_request_errors_total{{code=\"{}\"}} 1",
        ErrorCode::Validation
    );
    for line in [
        "valle_decisions_total{band=\"bajo\"} 9",
        &errors,
        "valle_request_duration_seconds_bucket{channel=\"online\",le=\"0.005\"} 4",
        "valle_request_duration_seconds_bucket{channel=\"online\",le=\"+Inf\"} 26",
        "valle_request_duration_seconds_count{channel=\"online\"} 26",
        "valle_request_duration_seconds_count{channel=\"batch\"} 0",
        "valle_recent_request_duration_seconds_count{channel=\"online\"} 26",
        "valle_recent_request_duration_seconds{channel=\"batch\",quantile=\"0.5\"} NaN",
        "valle_kpi_object_rows 12",
        "valle_kpi_lag_seconds 0.5",
        "valle_count_windows_closed_total 1",
        "valle_dead_letters_open 2",
        "valle_inbox_events 0",
        "valle_inbox_oldest_age_seconds 0",
        "valle_kpi_cache_hit_ratio NaN",
        "valle_wasm_memory_bytes{instance=\"worker\"} 1310720",
        "valle_wasm_memory_bytes{instance=\"kpi_object\"} NaN",
        "valle_performance_state{state=\"REGULAR\"} 1",
        "valle_model_info{sha256=\"ab\\\"c\"} 1",
        // These test observations carry no drift bins: no PSI, nothing significant.
        "valle_drift_psi{feature=\"age\",window=\"24h\"} NaN",
        "valle_drift_decisions{window=\"24h\"} 0",
        "valle_drift_significant_features{window=\"1h\"} 0",
    ] {
        assert!(
            text.lines().any(|got| got == line),
            "missing {line:?} in\n{text}"
        );
    }
    let families = text
        .lines()
        .filter(|line| line.starts_with("# TYPE"))
        .count();
    let helps = text
        .lines()
        .filter(|line| line.starts_with("# HELP"))
        .count();
    assert_eq!(families, helps);
}

/// The golden test rows: real applications with the model's probabilities.
fn golden_rows() -> Vec<(Application, f32)> {
    #[derive(serde::Deserialize)]
    struct Row {
        application: Application,
        probability: f32,
    }
    #[derive(serde::Deserialize)]
    struct Golden {
        rows: Vec<Row>,
    }
    let golden: Golden =
        serde_json::from_str(include_str!("../../models/golden.json")).expect("golden.json");
    golden
        .rows
        .into_iter()
        .map(|row| (row.application, row.probability))
        .collect()
}

#[test]
fn drift_per_hour_window_and_over_the_day() {
    let binning = Binning::embedded().expect("drift bins");
    let config = KpiConfig {
        drift_min_decisions: 50,
        ..KpiConfig::default()
    };
    let mut aggregator = Aggregator::new(config.clone());
    let mut all = DriftCounts::default();
    let mut observe = |aggregator: &mut Aggregator,
                       id: usize,
                       branch: &str,
                       at: i64,
                       row: &(Application, f32)| {
        let mut observation = decided(id, branch, at, at, 2.0);
        observation.drift_bins = binning.bins_of(&row.0, row.1);
        all.add(binning, &observation.drift_bins);
        aggregator.observe(&observation, at);
    };
    let rows = golden_rows();
    // Hour 0: the test split at "norte", as the model was validated on it.
    for (i, row) in rows.iter().enumerate() {
        observe(&mut aggregator, i, "norte", T0 + i as i64 * 100, row);
    }
    // Hour 1: 100 applicants at "sur", every one living with their parents.
    for (i, row) in rows.iter().take(100).enumerate() {
        let mut application = row.0.clone();
        application.home = serde_json::from_str("\"parents\"").expect("home");
        observe(
            &mut aggregator,
            1_000 + i,
            "sur",
            T0 + HOUR_MS + i as i64 * 100,
            &(application, row.1),
        );
    }
    let now = T0 + HOUR_MS + 30 * MINUTE_MS;
    let report = aggregator.drift(None, now).expect("report");
    assert_eq!(report.hours.len(), 2);
    let (calm, shifted) = (&report.hours[0].summary, &report.hours[1].summary);
    assert_eq!((calm.decisions, shifted.decisions), (250, 100));
    assert!(report.hours[0].closed && !report.hours[1].closed);
    assert_eq!(calm.band, Some(DriftBand::Stable), "{calm:?}");
    assert!(calm.alerts.is_empty());
    let alerted: Vec<&str> = shifted.alerts.iter().map(|a| a.feature.as_str()).collect();
    assert!(alerted.contains(&"home"), "{alerted:?}");
    assert_eq!(
        report.latest_hour.as_ref().map(|h| h.start_ms),
        Some(T0 + HOUR_MS)
    );
    // The day is the merge of its hours: the same as counting every decision at once.
    assert_eq!(report.rolling_24h, DriftSummary::of(binning, &all, 50));
    // Per branch, "norte" only had the calm hour.
    let norte = aggregator.drift(Some("norte"), now).expect("report");
    assert_eq!(norte.hours.len(), 1);
    assert!(norte.rolling_24h.alerts.is_empty());
    // Drift counts are part of the stored windows, so they survive a restart.
    let (changed, _) = aggregator.take_changes();
    let restored = Aggregator::restore(config, aggregator.core().clone(), changed);
    assert_eq!(restored.drift(None, now), Some(report.clone()));
    // The gauges show it.
    let text = render(
        aggregator.core(),
        &aggregator.view(View::FiveMinutes, None, now),
        Some(&report),
        &Extra::default(),
    );
    let home = shifted
        .features
        .iter()
        .find(|f| f.feature == "home")
        .and_then(|f| f.psi);
    for line in [
        "valle_drift_decisions{window=\"24h\"} 350".to_owned(),
        "valle_drift_decisions{window=\"1h\"} 100".to_owned(),
        format!(
            "valle_drift_significant_features{{window=\"1h\"}} {}",
            shifted.alerts.len()
        ),
        format!(
            "valle_drift_psi{{feature=\"home\",window=\"1h\"}} {}",
            home.expect("home psi")
        ),
    ] {
        assert!(text.lines().any(|got| got == line), "missing {line:?}");
    }
}
