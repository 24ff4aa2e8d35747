//! The route table: one row per operation of the API, from which routing, the permission
//! check, rate limiting and body limits all derive, and which `tests/openapi.rs` holds
//! equal to `valle_shared::openapi::operations`. Adding a route is one row, its
//! [`Endpoint`] and its handler (the dispatch in `mod.rs` is an exhaustive match).

use valle_shared::contract::paths::{
    Method, APPLICANTS_PATH, APPLICANT_SUFFIX, APPROVAL_SUFFIX, AUDIT_PATH, AUDIT_VERIFY_PATH,
    CHALLENGER_PATH, CONTEST_SUFFIX, DEAD_LETTERS_PATH, DECISIONS_PATH, DRIFT_PATH, ERASURE_SUFFIX,
    EVENTS_PATH, EXPORT_DECISIONS_PATH, FAIRNESS_PATH, HEALTH_PATH, HUMAN_REVIEW_SUFFIX, KPIS_PATH,
    KPI_WINDOWS_PATH, METRICS_PATH, ME_PATH, OUTCOMES_PATH, OVERRIDES_REPORT_PATH,
    PERFORMANCE_PATH, REPLAY_SUFFIX, RETENTION_RUN_PATH, REVIEWS_PATH, SCORE_BATCH_PATH,
    SCORE_PATH, SIMULATE_PATH, SUBJECT_EXPORT_SUFFIX, WEBHOOKS_PATH, WEBHOOK_DEAD_LETTERS_PATH,
};
use valle_shared::contract::request::is_valid_request_id;
use valle_shared::decision::simulation::MAX_SIMULATION_BYTES;
use valle_shared::intake::application::is_applicant_id;
use valle_shared::intake::batch::{MAX_BATCH_BYTES, MAX_EVENTS_BYTES};
use valle_shared::intake::validation::MAX_BODY_BYTES;
use valle_shared::lending::officers::Permission;
use valle_shared::lending::review::MAX_REVIEW_BODY_BYTES;
use valle_shared::outcomes::loan_outcomes::MAX_OUTCOMES_BYTES;
use valle_shared::privacy::retention::MAX_RUN_BODY_BYTES;
use valle_shared::webhooks::MAX_SUBSCRIPTION_BYTES;

use crate::error::ApiError;

/// Which handler a request reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Score,
    ScoreBatch,
    Events,
    Health,
    Decisions,
    Decision,
    DeadLetters,
    DeadLetterReplay,
    Kpis,
    KpiWindows,
    Drift,
    Metrics,
    Me,
    ReviewQueue,
    Review,
    Decide,
    Approval,
    /// The applicant's request for a person to review a decision (with its receipt).
    HumanReview,
    /// The applicant reads back their decision (with its receipt).
    ApplicantDecision,
    /// The applicant contests their decision with a comment (with its receipt).
    Contest,
    /// The applicant asks for their decision's erasure (with its receipt).
    DecisionErasure,
    /// The applicant exports their decision and all attached to it (with its receipt).
    DecisionExport,
    /// The dpo blocks every decision of an applicant.
    ApplicantErasure,
    /// The dpo exports everything held about an applicant.
    ApplicantExport,
    /// The dpo runs the retention job now.
    RetentionRun,
    Audit,
    AuditVerify,
    Export,
    OverridesReport,
    Outcomes,
    Performance,
    Fairness,
    Simulate,
    Challenger,
    Subscriptions,
    Subscribe,
    Unsubscribe,
    WebhookDeadLetters,
    WebhookReplay,
}

/// The one variable segment a path may have, and the rule its text must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `{request_id}`: a decision's request id.
    RequestId,
    /// `{applicant_id}`: the cooperative's applicant id.
    ApplicantId,
    /// `{id}`: a positive row number.
    Number,
}

impl Param {
    pub fn name(self) -> &'static str {
        match self {
            Param::RequestId => "request_id",
            Param::ApplicantId => "applicant_id",
            Param::Number => "id",
        }
    }

    fn read(self, segment: &str) -> Option<PathId> {
        match self {
            Param::RequestId => {
                is_valid_request_id(segment).then(|| PathId::Text(segment.to_owned()))
            }
            Param::ApplicantId => {
                is_applicant_id(segment).then(|| PathId::Text(segment.to_owned()))
            }
            Param::Number => segment
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .map(PathId::Number),
        }
    }
}

/// A path: fixed, or a prefix, one `/{param}` segment and a suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Fixed(&'static str),
    With(&'static str, Param, &'static str),
}

impl Path {
    /// The template as the OpenAPI description writes it.
    pub fn template(self) -> String {
        match self {
            Path::Fixed(path) => path.to_owned(),
            Path::With(prefix, param, suffix) => format!("{prefix}/{{{}}}{suffix}", param.name()),
        }
    }

    fn read(self, path: &str) -> Option<PathId> {
        match self {
            Path::Fixed(fixed) => (path == fixed).then_some(PathId::None),
            Path::With(prefix, param, suffix) => path
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('/'))
                .and_then(|rest| rest.strip_suffix(suffix))
                .filter(|segment| !segment.contains('/'))
                .and_then(|segment| param.read(segment)),
        }
    }
}

/// The value of a path's variable segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathId {
    None,
    Text(String),
    Number(i64),
}

impl PathId {
    /// The id of a route whose row reads a text id.
    pub fn text(&self) -> Result<&str, ApiError> {
        match self {
            PathId::Text(text) => Ok(text),
            PathId::None | PathId::Number(_) => Err(ApiError::NotFound),
        }
    }

    /// The id of a route whose row reads a number.
    pub fn number(&self) -> Result<i64, ApiError> {
        match self {
            PathId::Number(number) => Ok(*number),
            PathId::None | PathId::Text(_) => Err(ApiError::NotFound),
        }
    }
}

/// Who may call a route, and what each call is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a rate limit (health).
    Open,
    /// Anyone, rate limited per client.
    Public,
    /// An applicant with their receipt: rate limited per client and per decision.
    Applicant,
    /// An officer whose role has the permission, rate limited per account.
    Officer(Permission),
}

/// What a route does with a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// Nothing is read.
    None,
    /// Not read, but a declared length past the limit is refused.
    Ignored(usize),
    /// Read up to the limit, of any media type.
    Raw(usize),
    /// `application/json`, read up to the limit.
    Json(usize),
}

impl Body {
    /// The most bytes read.
    pub fn read_limit(self) -> Option<usize> {
        match self {
            Body::Raw(limit) | Body::Json(limit) => Some(limit),
            Body::None | Body::Ignored(_) => None,
        }
    }

    /// The most bytes a request may declare.
    pub fn declared_limit(self) -> Option<usize> {
        match self {
            Body::Ignored(limit) | Body::Raw(limit) | Body::Json(limit) => Some(limit),
            Body::None => None,
        }
    }
}

/// One operation of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRow {
    pub method: Method,
    pub path: Path,
    pub access: Access,
    pub body: Body,
    pub endpoint: Endpoint,
}

impl RouteRow {
    /// What an officer's account needs; `None` for public routes.
    pub fn permission(&self) -> Option<Permission> {
        match self.access {
            Access::Officer(permission) => Some(permission),
            Access::Open | Access::Public | Access::Applicant => None,
        }
    }

    /// The path's id when `path` is this row's path.
    pub fn read(&self, path: &str) -> Option<PathId> {
        self.path.read(path)
    }
}

const fn row(
    method: Method,
    path: Path,
    access: Access,
    body: Body,
    endpoint: Endpoint,
) -> RouteRow {
    RouteRow {
        method,
        path,
        access,
        body,
        endpoint,
    }
}

use Access::{Applicant, Officer, Open, Public};
use Method::{Delete, Get, Post};
use Param::{ApplicantId, Number, RequestId};
use Path::{Fixed, With};

/// Every route, grouped as the OpenAPI description tags them.
#[rustfmt::skip]
pub const ROUTES: &[RouteRow] = &[
    // Scoring.
    row(Post, Fixed(SCORE_PATH), Public, Body::Json(MAX_BODY_BYTES), Endpoint::Score),
    row(Post, Fixed(SCORE_BATCH_PATH), Public, Body::Json(MAX_BATCH_BYTES), Endpoint::ScoreBatch),
    row(Post, Fixed(EVENTS_PATH), Public, Body::Json(MAX_EVENTS_BYTES), Endpoint::Events),
    // The applicant's own decision, with its receipt.
    row(Get, With(DECISIONS_PATH, RequestId, APPLICANT_SUFFIX), Applicant, Body::None, Endpoint::ApplicantDecision),
    row(Post, With(DECISIONS_PATH, RequestId, HUMAN_REVIEW_SUFFIX), Applicant, Body::Ignored(MAX_REVIEW_BODY_BYTES), Endpoint::HumanReview),
    row(Post, With(DECISIONS_PATH, RequestId, CONTEST_SUFFIX), Applicant, Body::Json(MAX_REVIEW_BODY_BYTES), Endpoint::Contest),
    row(Post, With(DECISIONS_PATH, RequestId, ERASURE_SUFFIX), Applicant, Body::Ignored(MAX_REVIEW_BODY_BYTES), Endpoint::DecisionErasure),
    row(Get, With(DECISIONS_PATH, RequestId, SUBJECT_EXPORT_SUFFIX), Applicant, Body::None, Endpoint::DecisionExport),
    // Review.
    row(Get, Fixed(REVIEWS_PATH), Officer(Permission::Read), Body::None, Endpoint::ReviewQueue),
    row(Get, With(REVIEWS_PATH, RequestId, ""), Officer(Permission::Read), Body::None, Endpoint::Review),
    row(Post, With(REVIEWS_PATH, RequestId, ""), Officer(Permission::Decide), Body::Json(MAX_REVIEW_BODY_BYTES), Endpoint::Decide),
    row(Post, With(REVIEWS_PATH, RequestId, APPROVAL_SUFFIX), Officer(Permission::Approve), Body::Json(MAX_REVIEW_BODY_BYTES), Endpoint::Approval),
    row(Get, Fixed(OVERRIDES_REPORT_PATH), Officer(Permission::Report), Body::None, Endpoint::OverridesReport),
    // Monitoring.
    row(Get, Fixed(KPIS_PATH), Officer(Permission::Read), Body::None, Endpoint::Kpis),
    row(Get, Fixed(KPI_WINDOWS_PATH), Officer(Permission::Read), Body::None, Endpoint::KpiWindows),
    row(Get, Fixed(DRIFT_PATH), Officer(Permission::Read), Body::None, Endpoint::Drift),
    row(Get, Fixed(DECISIONS_PATH), Officer(Permission::Read), Body::None, Endpoint::Decisions),
    row(Get, With(DECISIONS_PATH, RequestId, ""), Officer(Permission::Read), Body::None, Endpoint::Decision),
    row(Get, Fixed(EXPORT_DECISIONS_PATH), Officer(Permission::Export), Body::None, Endpoint::Export),
    // Outcomes.
    row(Post, Fixed(OUTCOMES_PATH), Officer(Permission::RecordOutcomes), Body::Json(MAX_OUTCOMES_BYTES), Endpoint::Outcomes),
    row(Get, Fixed(PERFORMANCE_PATH), Officer(Permission::Read), Body::None, Endpoint::Performance),
    row(Get, Fixed(FAIRNESS_PATH), Officer(Permission::Read), Body::None, Endpoint::Fairness),
    row(Get, Fixed(CHALLENGER_PATH), Officer(Permission::Read), Body::None, Endpoint::Challenger),
    row(Post, Fixed(SIMULATE_PATH), Officer(Permission::Simulate), Body::Json(MAX_SIMULATION_BYTES), Endpoint::Simulate),
    // Operations.
    row(Get, Fixed(HEALTH_PATH), Open, Body::None, Endpoint::Health),
    row(Get, Fixed(METRICS_PATH), Officer(Permission::Operate), Body::None, Endpoint::Metrics),
    row(Get, Fixed(DEAD_LETTERS_PATH), Officer(Permission::Operate), Body::None, Endpoint::DeadLetters),
    row(Post, With(DEAD_LETTERS_PATH, Number, REPLAY_SUFFIX), Officer(Permission::Operate), Body::Raw(MAX_BODY_BYTES), Endpoint::DeadLetterReplay),
    row(Get, Fixed(AUDIT_PATH), Officer(Permission::Audit), Body::None, Endpoint::Audit),
    row(Get, Fixed(AUDIT_VERIFY_PATH), Officer(Permission::Audit), Body::None, Endpoint::AuditVerify),
    // Account.
    row(Get, Fixed(ME_PATH), Officer(Permission::Account), Body::None, Endpoint::Me),
    // Webhooks.
    row(Get, Fixed(WEBHOOKS_PATH), Officer(Permission::ManageWebhooks), Body::None, Endpoint::Subscriptions),
    row(Post, Fixed(WEBHOOKS_PATH), Officer(Permission::ManageWebhooks), Body::Json(MAX_SUBSCRIPTION_BYTES), Endpoint::Subscribe),
    row(Delete, With(WEBHOOKS_PATH, Number, ""), Officer(Permission::ManageWebhooks), Body::None, Endpoint::Unsubscribe),
    row(Get, Fixed(WEBHOOK_DEAD_LETTERS_PATH), Officer(Permission::ManageWebhooks), Body::None, Endpoint::WebhookDeadLetters),
    row(Post, With(WEBHOOK_DEAD_LETTERS_PATH, Number, REPLAY_SUFFIX), Officer(Permission::ManageWebhooks), Body::Ignored(MAX_BODY_BYTES), Endpoint::WebhookReplay),
    // Data protection.
    row(Post, With(APPLICANTS_PATH, ApplicantId, ERASURE_SUFFIX), Officer(Permission::ProtectData), Body::Ignored(MAX_REVIEW_BODY_BYTES), Endpoint::ApplicantErasure),
    row(Get, With(APPLICANTS_PATH, ApplicantId, SUBJECT_EXPORT_SUFFIX), Officer(Permission::ProtectData), Body::None, Endpoint::ApplicantExport),
    row(Post, Fixed(RETENTION_RUN_PATH), Officer(Permission::ProtectData), Body::Json(MAX_RUN_BODY_BYTES), Endpoint::RetentionRun),
];

/// What the table makes of a request's method and path.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(&'static RouteRow, PathId),
    /// The path exists, under other methods (in table order, `HEAD` beside `GET`).
    WrongMethod(Vec<&'static str>),
    NotFound,
}

pub fn lookup(method: &str, path: &str) -> Lookup {
    let mut allowed: Vec<&'static str> = Vec::new();
    for row in ROUTES {
        let Some(id) = row.read(path) else {
            continue;
        };
        if row.method.answers(method) {
            return Lookup::Found(row, id);
        }
        for name in row.method.names() {
            if !allowed.contains(name) {
                allowed.push(name);
            }
        }
    }
    if allowed.is_empty() {
        Lookup::NotFound
    } else {
        Lookup::WrongMethod(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_one_row_and_no_two_rows_share_a_method_and_path() {
        let mut seen = std::collections::BTreeSet::new();
        let mut endpoints = std::collections::BTreeSet::new();
        for row in ROUTES {
            assert!(
                seen.insert((row.method, row.path.template())),
                "{row:?} twice"
            );
            assert!(endpoints.insert(row.endpoint), "{:?} twice", row.endpoint);
        }
    }

    #[test]
    fn lookups() {
        let check = |method: &str, path: &str, expected: Lookup| {
            assert_eq!(lookup(method, path), expected, "{method} {path}");
        };
        let found = |endpoint: Endpoint, id: PathId| {
            let row = ROUTES
                .iter()
                .find(|row| row.endpoint == endpoint)
                .expect("a row");
            Lookup::Found(row, id)
        };
        let text = |id: &str| PathId::Text(id.to_owned());
        check("POST", SCORE_PATH, found(Endpoint::Score, PathId::None));
        check("HEAD", HEALTH_PATH, found(Endpoint::Health, PathId::None));
        check("GET", SCORE_PATH, Lookup::WrongMethod(vec!["POST"]));
        check(
            "GET",
            "/api/v1/reviews/abc",
            found(Endpoint::Review, text("abc")),
        );
        check(
            "POST",
            "/api/v1/reviews/abc",
            found(Endpoint::Decide, text("abc")),
        );
        check(
            "DELETE",
            "/api/v1/reviews/abc",
            Lookup::WrongMethod(vec!["GET", "HEAD", "POST"]),
        );
        check(
            "POST",
            "/api/v1/reviews/abc/approval",
            found(Endpoint::Approval, text("abc")),
        );
        check(
            "GET",
            "/api/v1/decisions/abc/applicant",
            found(Endpoint::ApplicantDecision, text("abc")),
        );
        check("GET", "/api/v1/decisions/a/b", Lookup::NotFound);
        check("GET", "/api/v1/decisions/", Lookup::NotFound);
        check("GET", "/api/v1/decisions/a%20b", Lookup::NotFound);
        check(
            "DELETE",
            "/api/v1/webhooks/7",
            found(Endpoint::Unsubscribe, PathId::Number(7)),
        );
        check("DELETE", "/api/v1/webhooks/0", Lookup::NotFound);
        check("DELETE", "/api/v1/webhooks/x", Lookup::NotFound);
        check(
            "PUT",
            WEBHOOKS_PATH,
            Lookup::WrongMethod(vec!["GET", "HEAD", "POST"]),
        );
        check("GET", "/api/v1/nothing", Lookup::NotFound);
    }
}
