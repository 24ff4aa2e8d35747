//! The HTTP API's wire types: serde structs only, shared by the page (which reads them)
//! and the worker (which writes them), so both sides agree on every key.

use serde::{Deserialize, Serialize};

use crate::application::Application;
use crate::codes::ErrorCode;
use crate::i18n::Message;
use crate::kpi::{CountWindow, KpiView};
use crate::model::{ModelVersion, Score};
use crate::policy::PolicyVersion;
use crate::validation::{FieldError, RequestError};

/// The scoring endpoint.
pub const SCORE_PATH: &str = "/api/v1/score";
/// The batch scoring endpoint.
pub const SCORE_BATCH_PATH: &str = "/api/v1/score/batch";
/// The liveness endpoint.
pub const HEALTH_PATH: &str = "/healthz";
/// Decision events scored elsewhere, queued for the edge.
pub const EVENTS_PATH: &str = "/api/v1/events";
/// Stored decisions (officers).
pub const DECISIONS_PATH: &str = "/api/v1/decisions";
/// Dead letters (officers).
pub const DEAD_LETTERS_PATH: &str = "/api/v1/dead-letters";
/// Rolling KPI views (officers).
pub const KPIS_PATH: &str = "/api/v1/kpis";
/// Closed count-based KPI windows (officers).
pub const KPI_WINDOWS_PATH: &str = "/api/v1/kpis/windows";
/// Drift (PSI) per monitored field (officers).
pub const DRIFT_PATH: &str = "/api/v1/drift";
/// Who the credentials belong to (officers).
pub const ME_PATH: &str = "/api/v1/me";
/// The review queue, and `/{request_id}` one application's review (officers).
pub const REVIEWS_PATH: &str = "/api/v1/reviews";
/// After `REVIEWS_PATH/{request_id}`: a supervisor's second approval.
pub const APPROVAL_SUFFIX: &str = "/approval";
/// After `DECISIONS_PATH/{request_id}`: the applicant asks for a person to review it.
pub const HUMAN_REVIEW_SUFFIX: &str = "/human-review";
/// After `DECISIONS_PATH/{request_id}`: the applicant reads back their own decision.
pub const APPLICANT_SUFFIX: &str = "/applicant";
/// `POST {DECISIONS_PATH}/{request_id}{CONTEST_SUFFIX}`: the applicant contests, with a
/// comment and the receipt.
pub const CONTEST_SUFFIX: &str = "/contest";
/// `POST …/{id}{ERASURE_SUFFIX}`: an erasure request, of a decision (the applicant, with the
/// receipt) or of an applicant (the dpo, under [`APPLICANTS_PATH`]).
pub const ERASURE_SUFFIX: &str = "/erasure";
/// `GET …/{id}{SUBJECT_EXPORT_SUFFIX}`: a subject-access export, of a decision (the
/// applicant) or of an applicant (the dpo).
pub const SUBJECT_EXPORT_SUFFIX: &str = "/export";
/// Applicants by their applicant id: the dpo's erasure and export.
pub const APPLICANTS_PATH: &str = "/api/v1/applicants";
/// Runs the retention job now (the dpo); the Cron Trigger runs it every hour.
pub const RETENTION_RUN_PATH: &str = "/api/v1/retention/run";
/// The audit trail (auditors).
pub const AUDIT_PATH: &str = "/api/v1/audit";
/// The audit trail's verification (auditors).
pub const AUDIT_VERIFY_PATH: &str = "/api/v1/audit/verify";
/// Decisions with the officers' final decisions as CSV.
pub const EXPORT_DECISIONS_PATH: &str = "/api/v1/exports/decisions.csv";
/// Override rates by officer and band.
pub const OVERRIDES_REPORT_PATH: &str = "/api/v1/reports/overrides";
/// Loan outcomes, in batches (officers and integrators).
pub const OUTCOMES_PATH: &str = "/api/v1/outcomes";
/// The model's realized and expected performance by band and vintage (officers).
pub const PERFORMANCE_PATH: &str = "/api/v1/performance";
/// Approval rates and disparate impact by protected attribute (officers).
pub const FAIRNESS_PATH: &str = "/api/v1/fairness";
/// The champion against the shadow challenger (officers).
pub const CHALLENGER_PATH: &str = "/api/v1/challenger";
/// What-if simulations over stored applications (supervisors).
pub const SIMULATE_PATH: &str = "/api/v1/simulate";
/// Webhook subscriptions: `GET` lists, `POST` registers, `DELETE {WEBHOOKS_PATH}/{id}`
/// removes.
pub const WEBHOOKS_PATH: &str = "/api/v1/webhooks";
/// Webhook deliveries given up on; `POST {WEBHOOK_DEAD_LETTERS_PATH}/{id}/replay` sends one
/// again.
pub const WEBHOOK_DEAD_LETTERS_PATH: &str = "/api/v1/webhooks/dead-letters";
/// What follows a dead letter's path to replay it.
pub const REPLAY_SUFFIX: &str = "/replay";
/// Prometheus exposition (officers).
pub const METRICS_PATH: &str = "/metrics";
/// The OpenAPI description of this API, a static file beside the page.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// The description rendered for people.
pub const DOCS_PATH: &str = "/docs/";
/// The header that carries a caller's idempotency key, echoed back on every answer.
pub const REQUEST_ID_HEADER: &str = "X-Request-ID";
/// Longest accepted `X-Request-ID`; a UUID has 36 characters.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// Whether a caller-supplied request id is safe to store and echo: 1 to 128 ASCII letters,
/// digits, `.`, `_`, `-` or `:`.
pub fn is_valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// How long one stage of a request took. `name` is a [`Stage`]'s; stored records keep
/// whatever name they were written with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct StageTiming {
    pub name: String,
    pub ms: f64,
}

impl StageTiming {
    pub fn new(stage: Stage, ms: f64) -> StageTiming {
        StageTiming {
            name: stage.as_str().to_owned(),
            ms,
        }
    }
}

/// The stages a request's time is split into (`Server-Timing` and each stored decision).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading the request up to its body.
    Read,
    /// The rate limit.
    Throttle,
    /// Signing in.
    Auth,
    /// Splitting a batch into its items.
    Parse,
    Validate,
    /// The policy rules and the model's decision.
    Decide,
    Score,
    Store,
    Write,
    /// Keeping accepted events in the inbox.
    Keep,
    Enqueue,
    /// An event's wait in the queue.
    Queue,
    Simulate,
    Respond,
    /// The whole request.
    Total,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Throttle => "throttle",
            Stage::Auth => "auth",
            Stage::Parse => "parse",
            Stage::Validate => "validate",
            Stage::Decide => "decide",
            Stage::Score => "score",
            Stage::Store => "store",
            Stage::Write => "write",
            Stage::Keep => "keep",
            Stage::Enqueue => "enqueue",
            Stage::Queue => "queue",
            Stage::Simulate => "simulate",
            Stage::Respond => "respond",
            Stage::Total => "total",
        }
    }
}

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
    /// The applicant's receipt for this decision ([`crate::receipt`]): what proves, in the
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

/// Every non-2xx answer: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: Message,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level errors; empty unless `code` is [`ErrorCode::Validation`] or
    /// [`ErrorCode::Query`].
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

impl ErrorBody {
    /// A body that did not read, as the edge answers it; the page shows the same before
    /// sending.
    pub fn of_request(error: &RequestError, request_id: Option<&str>) -> ErrorBody {
        ErrorBody {
            code: error.code(),
            message: error.message(),
            request_id: request_id.map(str::to_owned),
            fields: error.field_errors().to_vec(),
        }
    }
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
}

/// The body of `POST /api/v1/dead-letters/{id}/replay`: optionally a corrected application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    pub application: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        let check = |id: &str, valid: bool| assert_eq!(is_valid_request_id(id), valid, "{id:?}");
        check("0b5c4a1e-8d2f-4a8e-9a57-3c1f5e2d7b90", true);
        check("branch-7:2026-11-23.001_a", true);
        check(&"a".repeat(128), true);
        check(&"a".repeat(129), false);
        check("", false);
        check("has space", false);
        check("semi;colon", false);
        check("ñ", false);
    }
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
    /// The score as the applicant is shown it ([`crate::disclosure`]).
    pub score: Score,
    pub review_state: crate::review::ReviewState,
    pub human_review_requested_at_ms: Option<i64>,
}

/// `409 Conflict` from a review write: the error and the review as it now stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConflictResponse {
    pub error: ErrorBody,
    pub current: crate::review::Review,
}
