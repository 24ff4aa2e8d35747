//! The HTTP API's wire types: serde structs only, shared by the page (which reads them)
//! and the worker (which writes them), so both sides agree on every key.

use serde::{Deserialize, Serialize};

pub mod batch;

use crate::contract::errors::ErrorBody;
use crate::contract::i18n::Message;
use crate::contract::request::StageTiming;
use crate::decision::model::{ModelVersion, Score};
use crate::decision::policy::PolicyVersion;
use crate::intake::application::Application;
use crate::monitoring::kpi::{CountWindow, KpiView};

/// `200 OK` from `POST /api/v1/score`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ScoreResponse {
    pub request_id: String,
    pub application: Application,
    pub score: Score,
    pub timing: Vec<StageTiming>,
    /// True when an earlier request with the same id stored this decision: the answer is
    /// the stored one and nothing new was written.
    #[serde(default)]
    pub replayed: bool,
    /// The applicant's receipt for this decision: what proves, in the
    /// `Valle-Receipt` header, that a later request is theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

/// `200 OK` from `POST /api/v1/score/batch`: one result per item, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BatchResponse {
    pub request_id: String,
    pub model_version: ModelVersion,
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<BatchItem>,
    pub timing: Vec<StageTiming>,
}

/// One item's outcome: a score, or the error it would get on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BatchItem {
    pub index: usize,
    /// The item's stored decision id: the batch's request id, a colon, and the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default)]
    pub replayed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Score>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `200 OK` from `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Health {
    pub status: String,
    pub service: String,
    pub version: String,
    pub model_version: ModelVersion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<PolicyVersion>,
    /// Reachability of D1, the KPI Durable Object and the queue; empty where not probed.
    #[serde(default)]
    pub checks: Vec<HealthCheck>,
}

/// One backend's reachability; why it failed goes to the log, never into the answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
}

/// `200 OK` from `GET /api/v1/kpis`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KpiResponse {
    pub view: KpiView,
    /// The answer is older than the view's TTL; a fresh one is being computed.
    pub stale: bool,
    pub cache_key: String,
    pub computed_at_ms: i64,
    pub cache: CacheStats,
    pub dead_letters_open: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CacheStats {
    pub hits: u64,
    pub stale_hits: u64,
    pub misses: u64,
    pub hit_rate: Option<f64>,
}

/// `200 OK` from `GET /api/v1/kpis/windows`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CountWindowList {
    pub windows: Vec<CountWindow>,
    /// The `cursor` of the next page; none after the last.
    pub next_cursor: Option<u64>,
}

/// The body of `POST /api/v1/dead-letters/{id}/replay`: optionally a corrected application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    pub application: Option<serde_json::Value>,
}

/// `200 OK` from `POST /api/v1/decisions/{request_id}/human-review`: what the applicant may
/// know, never the officers' notes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HumanReviewResponse {
    pub request_id: String,
    pub requested_at_ms: i64,
    pub message: Message,
}

/// `200 OK` from `GET /api/v1/decisions/{request_id}/applicant` with the decision's
/// receipt: the decision as its applicant may read it, and where its review stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ApplicantDecision {
    pub request_id: String,
    pub received_at_ms: i64,
    /// The application the decision was made from, as stored.
    pub application: Application,
    /// The score as the applicant is shown it, disclosed by the policy.
    pub score: Score,
    pub review_state: crate::lending::review::ReviewState,
    pub human_review_requested_at_ms: Option<i64>,
}

/// `409 Conflict` from a review write: the error and the review as it now stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConflictResponse {
    pub error: ErrorBody,
    pub current: crate::lending::review::Review,
}
