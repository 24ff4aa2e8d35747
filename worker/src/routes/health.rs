//! `GET /healthz`, `GET /metrics` (officers) and CORS preflights: what the worker says
//! about itself.

use valle_shared::api::{Health, HealthCheck};
use valle_shared::monitoring::metrics::{render, PROMETHEUS_MEDIA_TYPE};
use valle_shared::monitoring::series::{
    branch_figures, render_branches, BranchFigures, MONITORING_DAYS,
};
use valle_shared::records::decisions::Period;
use valle_shared::Model;

use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::observability::{log, metrics_extra, MetricsInputs};

/// The check that the worker can make applicants' receipts (`RECEIPT_KEY`).
pub const RECEIPT_CHECK: &str = "receipt_key";
use crate::store::{DeadLetterStore, EventInbox, HealthProbe, KpiSink, LoanBook};

impl<B: DeadLetterStore + EventInbox + HealthProbe + KpiSink + LoanBook> Request<'_, B> {
    /// `GET /healthz`: the worker is up, its model loads, D1, the KPI object and the queue
    /// answer, and it has a receipt key; 503 when any of them does not. The answer names
    /// the checks only: why one failed goes to the log.
    pub(super) async fn health(&self) -> Result<HttpResponse, ApiError> {
        let model = Model::embedded()?;
        let checks: Vec<HealthCheck> = self
            .backend
            .probe()
            .await
            .into_iter()
            .map(|(name, result)| {
                if let Err(error) = &result {
                    log(&format!("healthz: {name} failed: {error}"));
                }
                HealthCheck {
                    name: name.to_owned(),
                    ok: result.is_ok(),
                }
            })
            .chain(std::iter::once(HealthCheck {
                name: RECEIPT_CHECK.to_owned(),
                ok: self.context.receipts.is_some(),
            }))
            .collect();
        let healthy = checks.iter().all(|check| check.ok);
        let answer = Health {
            status: if healthy { "ok" } else { "degraded" }.to_owned(),
            service: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            model_version: model.version().clone(),
            policy_version: Some(model.policy().version().clone()),
            checks,
        };
        Ok(HttpResponse::json(
            if healthy { 200 } else { 503 },
            &answer,
            self.id,
        ))
    }

    /// `GET /metrics`: Prometheus text exposition.
    pub(super) async fn metrics(&self) -> Result<HttpResponse, ApiError> {
        let snapshot = self.backend.snapshot().await?;
        let dead_letters_open = self.backend.count_open_dead_letters().await.ok();
        let inbox = self.backend.inbox_state().await.ok();
        let extra = metrics_extra(&MetricsInputs {
            snapshot: &snapshot,
            dead_letters_open,
            inbox,
            now_ms: self.now(),
            cache_hit_ratio: self.context.kpi_cache.borrow().hit_rate(),
            model_sha256: &Model::embedded()?.version().sha256,
        });
        let mut text = render(
            &snapshot.core,
            &snapshot.recent,
            snapshot.drift.as_ref(),
            &extra,
        );
        render_branches(&mut text, &self.branch_figures().await?);
        let mut response = HttpResponse::json(200, &(), self.id);
        response.body = text.into_bytes();
        response.headers.retain(|(name, _)| name != "content-type");
        Ok(response.with_header("content-type", PROMETHEUS_MEDIA_TYPE))
    }

    /// Performance, fairness and drift of each monitored branch and of the others together,
    /// over the last [`MONITORING_DAYS`].
    async fn branch_figures(&self) -> Result<Vec<BranchFigures>, ApiError> {
        let period = Period {
            from_ms: Some(self.now() - MONITORING_DAYS * 86_400_000),
            ..Period::default()
        };
        let groups = self.backend.score_groups(&period).await?;
        let counts = self.backend.fairness_counts(&period).await?;
        let monitored = self.context.monitored_branches;
        let mut figures =
            branch_figures(groups, counts, monitored, Model::embedded()?.thresholds());
        for branch in figures.iter_mut().filter(|b| monitored.contains(&b.branch)) {
            branch.drift = self.backend.drift(Some(&branch.branch)).await?;
        }
        Ok(figures)
    }

    /// `OPTIONS /api/v1/*` with CORS headers: 204 with the grant for a listed origin asking
    /// for an allowed method and headers (the grant itself is added with every answer).
    pub(super) fn preflight(&self) -> Result<HttpResponse, ApiError> {
        let extra = self
            .context
            .cors
            .preflight(self.head)
            .map_err(ApiError::CrossOrigin)?;
        let mut response = HttpResponse {
            status: 204,
            headers: vec![("x-request-id".to_owned(), self.id.to_owned())],
            body: Vec::new(),
            stream: None,
        };
        response.headers.extend(extra);
        Ok(response)
    }
}
