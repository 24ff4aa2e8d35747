//! The isolate's stale-while-revalidate cache of KPI views, shared by its requests: a hit
//! does no I/O; a stale entry is answered and recomputed after the answer.

use std::cell::RefCell;

use valle_shared::api::CacheStats;
use valle_shared::contract::ops::SwrCache;
use valle_shared::monitoring::kpi::{KpiView, View};

use crate::error::ApiError;
use crate::observability::log;
use crate::store::{DeadLetterStore, KpiSink};

/// The KPI views cached in the isolate, shared by its requests.
pub type KpiCache = RefCell<SwrCache<CachedKpis>>;

/// A computed KPI answer as the cache keeps it: everything a hit needs, so a hit does no I/O.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedKpis {
    pub view: KpiView,
    pub dead_letters_open: Option<u64>,
    pub computed_at_ms: i64,
}

/// A KPI view to recompute after the answer went out (stale-while-revalidate).
#[derive(Clone, Debug, PartialEq)]
pub struct Refresh {
    pub window: View,
    pub branch: Option<String>,
    pub cache_key: String,
}

/// Asks the KPI object for a view and D1 for the open dead letters.
pub async fn compute_kpis<B: KpiSink + DeadLetterStore>(
    backend: &B,
    window: View,
    branch: Option<&str>,
    now_ms: i64,
) -> Result<CachedKpis, ApiError> {
    let view = backend.view(window, branch).await?;
    let dead_letters_open = backend.count_open_dead_letters().await.ok();
    Ok(CachedKpis {
        view,
        dead_letters_open,
        computed_at_ms: now_ms,
    })
}

/// The cache key of a KPI view: the same filters always give the same key.
pub fn kpi_cache_key(window: View, branch: Option<&str>) -> String {
    format!(
        "kpis|window={}|branch={}",
        window.as_str(),
        branch.unwrap_or("*")
    )
}

pub fn cache_stats(cache: &KpiCache) -> CacheStats {
    let cache = cache.borrow();
    CacheStats {
        hits: cache.hits,
        stale_hits: cache.stale_hits,
        misses: cache.misses,
        hit_rate: cache.hit_rate(),
    }
}

/// Recomputes a stale KPI view into the cache; the edge runs it after answering.
pub async fn refresh_view<B: KpiSink + DeadLetterStore>(
    refresh: &Refresh,
    backend: &B,
    cache: &KpiCache,
    now_ms: i64,
) {
    match compute_kpis(backend, refresh.window, refresh.branch.as_deref(), now_ms).await {
        Ok(entry) => {
            let (fresh_ms, stale_ms) = refresh.window.cache_ttl_ms();
            cache
                .borrow_mut()
                .put(&refresh.cache_key, entry, now_ms, fresh_ms, stale_ms);
        }
        Err(error) => log(&format!("kpi refresh failed: {error}")),
    }
}
