//! Loan outcomes and what they tell about the model: `POST /api/v1/outcomes`,
//! `GET /api/v1/performance`, `GET /api/v1/fairness` and `GET /api/v1/challenger`. A write reads the decisions it
//! names and the end of the audit chain (one round trip), lets `valle_shared::outcomes::loan_outcomes`
//! say what changes, and writes the outcomes and one audit row in one transaction.

use serde_json::json;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::request::Stage;
use valle_shared::lending::audit::{append, AuditAction, AuditEvent};
use valle_shared::lending::officers::Me;
use valle_shared::outcomes::challenger::challenger_report;
use valle_shared::outcomes::fairness::fairness;
use valle_shared::outcomes::loan_outcomes::{parse_outcomes, plan_outcomes, OutcomePlan};
use valle_shared::outcomes::performance::performance;
use valle_shared::records::decisions::Period;
use valle_shared::Model;

use super::auth::signed_in;
use super::reviews::CHAIN_ATTEMPTS;
use super::{query_error, Request};
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::{LoanBook, OutcomeWrite};

/// What the audit trail names an outcomes write by.
const OUTCOMES_SUBJECT: &str = "loan_outcomes";

impl<B: LoanBook> Request<'_, B> {
    /// `POST /api/v1/outcomes`: `{"outcomes": [{request_id, status, observed_at}]}`. A batch
    /// with any bad item is refused whole, with every item's field errors, and writes nothing.
    pub(super) async fn outcomes(
        &self,
        body: &[u8],
        me: Option<Me>,
    ) -> Result<HttpResponse, ApiError> {
        let me = signed_in(me)?;
        let outcomes = parse_outcomes(body, self.now())?;
        let ids: Vec<String> = outcomes.iter().map(|o| o.request_id.clone()).collect();
        for _ in 0..CHAIN_ATTEMPTS {
            let snapshot = self.backend.outcome_snapshot(&ids).await?;
            self.lap(Stage::Read);
            let plan = plan_outcomes(&outcomes, &snapshot.known)?;
            if plan.is_empty() {
                return Ok(HttpResponse::json(200, &plan.answer(), self.id));
            }
            let now = self.now();
            let writes: Vec<_> = plan.writes().cloned().collect();
            let entry = append(
                &snapshot.head,
                AuditEvent {
                    at_ms: now,
                    actor: me.account.email.clone(),
                    action: AuditAction::OutcomesRecorded,
                    subject: OUTCOMES_SUBJECT.to_owned(),
                    detail: outcomes_detail(&plan),
                },
            );
            let applied = self
                .backend
                .record_outcomes(OutcomeWrite {
                    outcomes: &writes,
                    actor: &me.account.email,
                    now_ms: now,
                    audit: &entry,
                })
                .await?;
            self.lap(Stage::Write);
            if applied {
                return Ok(HttpResponse::json(200, &plan.answer(), self.id));
            }
        }
        Err(ApiError::Busy)
    }

    /// `GET /api/v1/performance?from&to&branch&vintage=month`.
    pub(super) async fn performance(&self) -> Result<HttpResponse, ApiError> {
        let period = Period::parse(&self.head.query, &mut |key, value, errors| {
            if key != "vintage" {
                return false;
            }
            if value != "month" {
                errors.push(query_error("vintage", ErrorCode::Enum));
            }
            true
        })
        .map_err(ApiError::Query)?;
        let groups = self.backend.score_groups(&period).await?;
        self.lap(Stage::Read);
        let groups: Vec<_> = groups.into_iter().map(|(_, group)| group).collect();
        let report = performance(&groups, Model::embedded()?.thresholds());
        Ok(HttpResponse::json(200, &report, self.id))
    }

    /// `GET /api/v1/challenger?from&to&branch`: the champion against the shadow challenger
    /// over the decisions both scored.
    pub(super) async fn challenger(&self) -> Result<HttpResponse, ApiError> {
        let period =
            Period::parse(&self.head.query, &mut |_, _, _| false).map_err(ApiError::Query)?;
        let counts = self.backend.shadow_counts(&period).await?;
        self.lap(Stage::Read);
        let report = challenger_report(&counts, Model::embedded()?.thresholds());
        Ok(HttpResponse::json(200, &report, self.id))
    }

    /// `GET /api/v1/fairness?from&to&branch`.
    pub(super) async fn fairness(&self) -> Result<HttpResponse, ApiError> {
        let period =
            Period::parse(&self.head.query, &mut |_, _, _| false).map_err(ApiError::Query)?;
        let counts = self.backend.fairness_counts(&period).await?;
        self.lap(Stage::Read);
        let counts: Vec<_> = counts.into_iter().map(|(_, count)| count).collect();
        Ok(HttpResponse::json(200, &fairness(&counts), self.id))
    }
}

/// What the audit row of an outcomes write records: each outcome it stores, and for a
/// replaced one that it replaced an open outcome.
fn outcomes_detail(plan: &OutcomePlan) -> String {
    let row = |outcome: &valle_shared::outcomes::loan_outcomes::LoanOutcome| {
        json!([outcome.request_id, outcome.status, outcome.observed_at_ms])
    };
    json!({
        "columns": ["request_id", "status", "observed_at_ms"],
        "recorded": plan.recorded.iter().map(row).collect::<Vec<_>>(),
        "replaced_open": plan.replaced.iter().map(row).collect::<Vec<_>>(),
        "unchanged": plan.unchanged,
    })
    .to_string()
}
