//! What the worker says about itself: operational log lines, the inputs of `/metrics` that
//! live outside the KPI aggregator, and the wasm-memory probe.

use valle_shared::monitoring::metrics::Extra;

use crate::store::{InboxState, KpiSnapshot};

/// Operational log lines (ids, counts, storage errors; never applicant data, a body, a query
/// string or a header); `console.log` at the edge, stderr on the host.
pub fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    console_log(line);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(line: &str);
}

/// Inputs of `/metrics` that live outside the aggregator.
pub struct MetricsInputs<'a> {
    pub snapshot: &'a KpiSnapshot,
    pub dead_letters_open: Option<u64>,
    pub inbox: Option<InboxState>,
    pub now_ms: i64,
    pub cache_hit_ratio: Option<f64>,
    pub model_sha256: &'a str,
}

pub fn metrics_extra(inputs: &MetricsInputs<'_>) -> Extra {
    let MetricsInputs {
        snapshot,
        dead_letters_open,
        inbox,
        now_ms,
        cache_hit_ratio,
        model_sha256,
    } = inputs;
    Extra {
        dead_letters_open: *dead_letters_open,
        inbox_kept: inbox.map(|inbox| inbox.kept),
        inbox_oldest_age_s: inbox.map(|inbox| {
            inbox
                .oldest_kept_at_ms
                .map_or(0.0, |kept_at| (now_ms - kept_at).max(0) as f64 / 1_000.0)
        }),
        kpi_cache_hit_ratio: *cache_hit_ratio,
        model_sha256: (*model_sha256).to_owned(),
        worker_memory_bytes: wasm_memory_bytes(),
        kpi_object_memory_bytes: snapshot.memory_bytes,
        kpi_object_rows: snapshot.storage_rows,
        kpi_lag_s: snapshot
            .caught_up_at_ms
            .map(|at| (now_ms - at).max(0) as f64 / 1_000.0),
    }
}

/// This wasm instance's linear memory; none on the host.
pub fn wasm_memory_bytes() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(core::arch::wasm32::memory_size(0) as u64 * 65_536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        None
    }
}
