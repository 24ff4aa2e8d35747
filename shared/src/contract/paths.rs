//! Every path of the HTTP API, spelled once for the worker's routes, the page's client and
//! the tests.

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

/// The HTTP methods the API answers (`HEAD` wherever `GET` is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    /// The key of an operation in an OpenAPI path item.
    pub fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Delete => "delete",
        }
    }

    /// The request methods it answers, as an `Allow` header names them.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Method::Get => &["GET", "HEAD"],
            Method::Post => &["POST"],
            Method::Delete => &["DELETE"],
        }
    }

    /// Whether a request's method is this one.
    pub fn answers(self, method: &str) -> bool {
        self.names().contains(&method)
    }
}
