//! Live monitoring: the KPI aggregator's windows and watermark, latency sketches, input drift,
//! and the Prometheus text with its per-branch series.

pub mod drift;
pub mod kpi;
pub mod metrics;
pub mod series;
pub mod sketch;
