//! `GET /api/v1/kpis`, `GET /api/v1/kpis/windows` and `GET /api/v1/drift` (officers), and
//! the isolate's stale-while-revalidate cache of KPI views.

use std::cell::RefCell;

use valle_shared::api::{CacheStats, CountWindowList, KpiResponse};
use valle_shared::decisions::parse_query;
use valle_shared::kpi::{KpiView, View};
use valle_shared::ops::{Lookup, SwrCache};
use valle_shared::validation::ErrorCode;

use super::{query_error, Request};
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::observability::log;
use crate::store::Backend;

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
async fn compute_kpis<B: Backend>(
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

fn cache_stats(cache: &KpiCache) -> CacheStats {
    let cache = cache.borrow();
    CacheStats {
        hits: cache.hits,
        stale_hits: cache.stale_hits,
        misses: cache.misses,
        hit_rate: cache.hit_rate(),
    }
}

/// Recomputes a stale KPI view into the cache; the edge runs it after answering.
pub async fn refresh_view<B: Backend>(
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

/// A `branch` parameter: a valid branch name, or a field error.
fn branch_param(
    value: String,
    errors: &mut Vec<valle_shared::validation::FieldError>,
) -> Option<String> {
    if valle_shared::events::is_branch(&value) {
        Some(value)
    } else {
        errors.push(query_error("branch", ErrorCode::Format));
        None
    }
}

impl<B: Backend> Request<'_, B> {
    /// `GET /api/v1/kpis?window=5m|1h|24h&branch=...`: from the isolate's cache when fresh;
    /// stale answers are marked and refreshed after the response.
    pub(super) async fn kpis(&self) -> Result<HttpResponse, ApiError> {
        let mut window = View::FiveMinutes;
        let mut branch = None;
        let mut errors = Vec::new();
        for (key, value) in parse_query(&self.head.query) {
            match key.as_str() {
                "window" => match View::parse(&value) {
                    Some(view) => window = view,
                    None => errors.push(query_error("window", ErrorCode::Enum)),
                },
                "branch" => branch = branch_param(value, &mut errors),
                other => errors.push(query_error(other, ErrorCode::UnknownField)),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Query(errors));
        }
        let key = kpi_cache_key(window, branch.as_deref());
        let now = self.now();
        let lookup = self.context.kpi_cache.borrow_mut().get(&key, now);
        let (entry, stale) = match lookup {
            Lookup::Fresh(entry) => (entry, false),
            Lookup::Stale(entry) => {
                self.after.borrow_mut().refresh = Some(Refresh {
                    window,
                    branch: branch.clone(),
                    cache_key: key.clone(),
                });
                (entry, true)
            }
            Lookup::Miss => {
                let entry = compute_kpis(self.backend, window, branch.as_deref(), now).await?;
                let (fresh_ms, stale_ms) = window.cache_ttl_ms();
                self.context.kpi_cache.borrow_mut().put(
                    &key,
                    entry.clone(),
                    now,
                    fresh_ms,
                    stale_ms,
                );
                (entry, false)
            }
        };
        let answer = KpiResponse {
            computed_at_ms: entry.computed_at_ms,
            view: entry.view,
            stale,
            cache_key: key,
            cache: cache_stats(self.context.kpi_cache),
            dead_letters_open: entry.dead_letters_open,
        };
        Ok(HttpResponse::json(200, &answer, self.id))
    }

    /// `GET /api/v1/kpis/windows?limit&before`: closed count windows, newest first.
    pub(super) async fn kpi_windows(&self) -> Result<HttpResponse, ApiError> {
        let mut limit = 50;
        let mut before = None;
        let mut errors = Vec::new();
        for (key, value) in parse_query(&self.head.query) {
            match key.as_str() {
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=1000).contains(&n) => limit = n,
                    _ => errors.push(query_error("limit", ErrorCode::Range)),
                },
                "before" => match value.parse::<u64>() {
                    Ok(n) => before = Some(n),
                    Err(_) => errors.push(query_error("before", ErrorCode::Format)),
                },
                other => errors.push(query_error(other, ErrorCode::UnknownField)),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Query(errors));
        }
        let windows = self.backend.list_count_windows(limit, before).await?;
        Ok(HttpResponse::json(
            200,
            &CountWindowList { windows },
            self.id,
        ))
    }

    /// `GET /api/v1/drift?branch=...`: PSI per monitored field for each 1-hour event-time
    /// window of the last 24 h and for their merge.
    pub(super) async fn drift(&self) -> Result<HttpResponse, ApiError> {
        let mut branch = None;
        let mut errors = Vec::new();
        for (key, value) in parse_query(&self.head.query) {
            match key.as_str() {
                "branch" => branch = branch_param(value, &mut errors),
                other => errors.push(query_error(other, ErrorCode::UnknownField)),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Query(errors));
        }
        let report = self
            .backend
            .drift(branch.as_deref())
            .await?
            .ok_or_else(|| ApiError::Internal("the model's drift bins are unusable".into()))?;
        Ok(HttpResponse::json(200, &report, self.id))
    }
}
