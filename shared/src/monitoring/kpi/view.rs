//! The rolling views `GET /api/v1/kpis` answers, and the performance state with its alerts.

use serde::{Deserialize, Serialize};

use super::{BandCounts, EventWindow, Percentiles, Span, Summary, HOUR_MS, MINUTE_MS};
use crate::contract::i18n::Message;

/// The rolling views `GET /api/v1/kpis` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum View {
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "24h")]
    OneDay,
}

impl View {
    pub fn parse(text: &str) -> Option<View> {
        match text {
            "5m" => Some(View::FiveMinutes),
            "1h" => Some(View::OneHour),
            "24h" => Some(View::OneDay),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            View::FiveMinutes => "5m",
            View::OneHour => "1h",
            View::OneDay => "24h",
        }
    }

    /// Which windows make the view, and how long it is.
    pub(super) fn shape(self) -> (Span, i64) {
        match self {
            View::FiveMinutes => (Span::Minute, 5 * MINUTE_MS),
            View::OneHour => (Span::Minute, HOUR_MS),
            View::OneDay => (Span::Hour, 24 * HOUR_MS),
        }
    }

    /// How long a cached answer is fresh, and how long after that it may still be served
    /// (marked stale) while a fresh one is computed.
    pub fn cache_ttl_ms(self) -> (i64, i64) {
        match self {
            View::FiveMinutes => (1_000, 10_000),
            View::OneHour => (5_000, 60_000),
            View::OneDay => (30_000, 300_000),
        }
    }
}

/// One window in a chart series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SeriesPoint {
    pub start_ms: i64,
    pub decisions: u64,
    pub errors: u64,
    pub latency_ms: Percentiles,
    pub bands: BandCounts,
    pub revised: bool,
}

impl SeriesPoint {
    pub(super) fn of(window: &EventWindow) -> SeriesPoint {
        let summary = window.stats.summary();
        SeriesPoint {
            start_ms: window.start_ms,
            decisions: summary.decisions,
            errors: summary.errors,
            latency_ms: summary.latency_ms,
            bands: summary.bands,
            revised: window.revised,
        }
    }
}

/// `GET /api/v1/kpis`: a rolling view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KpiView {
    pub window: View,
    pub branch: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub throughput_per_s: f64,
    pub summary: Summary,
    pub series: Vec<SeriesPoint>,
    pub late_events: u64,
    pub revisions: u64,
    pub watermark_ms: Option<i64>,
    pub state: PerformanceState,
    pub alerts: Vec<Alert>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum PerformanceState {
    Excelente,
    Bueno,
    Regular,
    Critico,
}

impl PerformanceState {
    pub const ALL: [PerformanceState; 4] = [
        PerformanceState::Excelente,
        PerformanceState::Bueno,
        PerformanceState::Regular,
        PerformanceState::Critico,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PerformanceState::Excelente => "EXCELENTE",
            PerformanceState::Bueno => "BUENO",
            PerformanceState::Regular => "REGULAR",
            PerformanceState::Critico => "CRITICO",
        }
    }
}

/// A threshold the last five minutes crossed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Alert {
    pub metric: String,
    pub state: PerformanceState,
    pub value: f64,
    /// The limit that was exceeded (or, for throughput, not reached).
    pub threshold: f64,
    pub message: Message,
}

/// Limits for BUENO, REGULAR and CRITICO: a value past `limits[i]` is at least state `i + 1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Thresholds {
    pub p95_latency_ms: [f64; 3],
    pub error_rate: [f64; 3],
    /// Minimum decisions per second; all zero disables the check (an idle night is fine).
    pub min_throughput_per_s: [f64; 3],
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            p95_latency_ms: [50.0, 150.0, 500.0],
            error_rate: [0.01, 0.02, 0.05],
            min_throughput_per_s: [0.0, 0.0, 0.0],
        }
    }
}

/// The state and the alerts that caused it.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub state: PerformanceState,
    pub alerts: Vec<Alert>,
}

impl Thresholds {
    pub fn assess(&self, summary: &Summary, throughput_per_s: f64) -> Assessment {
        let above = |value: f64, limits: &[f64; 3]| limits.iter().filter(|l| value > **l).count();
        let mut alerts = Vec::new();
        // Grade 0 is no alert; grade g breached `limits[g - 1]` and puts the state at g.
        let mut alert = |metric: &str,
                         value: f64,
                         (grade, limits): (usize, &[f64; 3]),
                         message: &dyn Fn(f64) -> Message| {
            if grade > 0 {
                let threshold = limits[grade - 1];
                alerts.push(Alert {
                    metric: metric.into(),
                    state: PerformanceState::ALL[grade],
                    value,
                    threshold,
                    message: message(threshold),
                });
            }
        };
        if let Some(p95) = summary.latency_ms.p95 {
            let limits = &self.p95_latency_ms;
            alert(
                "latency_p95_ms",
                p95,
                (above(p95, limits), limits),
                &|limit| {
                    Message::new(
                        format!("Latencia p95 de {p95:.1} ms por encima de {limit} ms."),
                        format!("p95 latency {p95:.1} ms above {limit} ms."),
                    )
                },
            );
        }
        if let Some(rate) = summary.error_rate {
            let limits = &self.error_rate;
            alert(
                "error_rate",
                rate,
                (above(rate, limits), limits),
                &|limit| {
                    let (rate, limit) = (rate * 100.0, limit * 100.0);
                    Message::new(
                        format!("Tasa de error del {rate:.1} % por encima del {limit:.1} %."),
                        format!("Error rate {rate:.1} % above {limit:.1} %."),
                    )
                },
            );
        }
        let floors = &self.min_throughput_per_s;
        let below = floors.iter().filter(|f| throughput_per_s < **f).count();
        alert(
            "throughput_per_s",
            throughput_per_s,
            (below, floors),
            &|floor| {
                Message::new(
                    format!(
                        "Rendimiento de {throughput_per_s:.2} decisiones/s por debajo de {floor}."
                    ),
                    format!("Throughput {throughput_per_s:.2} decisions/s below {floor}."),
                )
            },
        );
        let state = alerts
            .iter()
            .map(|alert| alert.state)
            .max()
            .unwrap_or(PerformanceState::Excelente);
        Assessment { state, alerts }
    }
}
