//! `GET /api/v1/kpis`, `GET /api/v1/kpis/windows` and `GET /api/v1/drift` (officers).

use valle_shared::api::{CountWindowList, KpiResponse};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::Lookup;
use valle_shared::contract::query::{parse_query, WINDOW_PAGES};
use valle_shared::monitoring::kpi::View;

use super::{query_error, Request};
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::kpi_cache::{cache_stats, compute_kpis, kpi_cache_key, Refresh};
use crate::store::{DeadLetterStore, DecisionStore, KpiSink};

/// A `branch` parameter: a valid branch name, or a field error.
fn branch_param(
    value: String,
    errors: &mut Vec<valle_shared::contract::errors::FieldError>,
) -> Option<String> {
    if valle_shared::intake::branch::is_branch(&value) {
        Some(value)
    } else {
        errors.push(query_error("branch", ErrorCode::Format));
        None
    }
}

impl<B: DeadLetterStore + DecisionStore + KpiSink> Request<'_, B> {
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

    /// `GET /api/v1/kpis/windows?limit&cursor`: closed count windows, newest first.
    pub(super) async fn kpi_windows(&self) -> Result<HttpResponse, ApiError> {
        let page = WINDOW_PAGES
            .parse::<u64>(&self.head.query, |_, _, _| false)
            .map_err(ApiError::Query)?;
        let windows = self
            .backend
            .list_count_windows(page.limit, page.cursor)
            .await?;
        let next_cursor = page.next(&windows, |window| window.index);
        Ok(HttpResponse::json(
            200,
            &CountWindowList {
                windows,
                next_cursor,
            },
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
