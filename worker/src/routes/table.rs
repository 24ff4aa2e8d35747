//! The route table: one row per operation of the API, from which routing, the permission
//! check, rate limiting and body limits all derive, and which `tests/openapi.rs` holds
//! equal to `valle_shared::openapi::operations`. Adding a route is one row (its endpoint,
//! method, path, access, body and handler call) and the handler.

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

use super::reviews::OfficerWrite;
use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::Backend;
use valle_shared::lending::officers::Me;

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

/// Writes the table once: the [`Endpoint`]s, the [`ROUTES`] and the dispatch from an
/// endpoint to its handler call, so that a route is one row.
macro_rules! route_table {
    (
        |$request:ident, $id:ident, $body:ident, $me:ident|
        $(
            $(#[$doc:meta])*
            $endpoint:ident: $method:expr, $path:expr, $access:expr, $limit:expr => $call:expr;
        )+
    ) => {
        /// Which handler a request reaches.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Endpoint {
            $( $(#[$doc])* $endpoint, )+
        }

        /// Every route, grouped as the OpenAPI description tags them.
        pub const ROUTES: &[RouteRow] = &[
            $( row($method, $path, $access, $limit, Endpoint::$endpoint), )+
        ];

        impl<B: Backend> Request<'_, B> {
            /// Runs the endpoint's handler.
            #[allow(unused_variables)]
            pub(super) async fn dispatch(
                &self,
                endpoint: Endpoint,
                $id: PathId,
                $body: &[u8],
                $me: Option<Me>,
            ) -> Result<HttpResponse, ApiError> {
                let $request = self;
                match endpoint {
                    $( Endpoint::$endpoint => $call, )+
                }
            }
        }
    };
}

route_table! {
    |request, id, body, me|
    // Scoring.
    Score: Post, Fixed(SCORE_PATH), Public, Body::Json(MAX_BODY_BYTES)
        => request.score(body).await;
    ScoreBatch: Post, Fixed(SCORE_BATCH_PATH), Public, Body::Json(MAX_BATCH_BYTES)
        => request.score_batch(body).await;
    Events: Post, Fixed(EVENTS_PATH), Public, Body::Json(MAX_EVENTS_BYTES)
        => request.events(body).await;
    // The applicant's own decision, with its receipt.
    /// The applicant reads back their decision (with its receipt).
    ApplicantDecision: Get, With(DECISIONS_PATH, RequestId, APPLICANT_SUFFIX), Applicant, Body::None
        => request.applicant_decision(id.text()?).await;
    /// The applicant's request for a person to review a decision (with its receipt).
    HumanReview: Post, With(DECISIONS_PATH, RequestId, HUMAN_REVIEW_SUFFIX), Applicant, Body::Ignored(MAX_REVIEW_BODY_BYTES)
        => request.human_review(id.text()?, None).await;
    /// The applicant contests their decision with a comment (with its receipt).
    Contest: Post, With(DECISIONS_PATH, RequestId, CONTEST_SUFFIX), Applicant, Body::Json(MAX_REVIEW_BODY_BYTES)
        => request.contest(id.text()?, body).await;
    /// The applicant asks for their decision's erasure (with its receipt).
    DecisionErasure: Post, With(DECISIONS_PATH, RequestId, ERASURE_SUFFIX), Applicant, Body::Ignored(MAX_REVIEW_BODY_BYTES)
        => request.erase_decision(id.text()?).await;
    /// The applicant exports their decision and all attached to it (with its receipt).
    DecisionExport: Get, With(DECISIONS_PATH, RequestId, SUBJECT_EXPORT_SUFFIX), Applicant, Body::None
        => request.export_decision(id.text()?).await;
    // Review.
    ReviewQueue: Get, Fixed(REVIEWS_PATH), Officer(Permission::Read), Body::None
        => request.review_queue().await;
    Review: Get, With(REVIEWS_PATH, RequestId, ""), Officer(Permission::Read), Body::None
        => request.review(id.text()?).await;
    Decide: Post, With(REVIEWS_PATH, RequestId, ""), Officer(Permission::Decide), Body::Json(MAX_REVIEW_BODY_BYTES)
        => request.officer_write(OfficerWrite::Decide, id.text()?, body, me).await;
    Approval: Post, With(REVIEWS_PATH, RequestId, APPROVAL_SUFFIX), Officer(Permission::Approve), Body::Json(MAX_REVIEW_BODY_BYTES)
        => request.officer_write(OfficerWrite::Approve, id.text()?, body, me).await;
    OverridesReport: Get, Fixed(OVERRIDES_REPORT_PATH), Officer(Permission::Report), Body::None
        => request.overrides().await;
    // Monitoring.
    Kpis: Get, Fixed(KPIS_PATH), Officer(Permission::Read), Body::None
        => request.kpis().await;
    KpiWindows: Get, Fixed(KPI_WINDOWS_PATH), Officer(Permission::Read), Body::None
        => request.kpi_windows().await;
    Drift: Get, Fixed(DRIFT_PATH), Officer(Permission::Read), Body::None
        => request.drift().await;
    Decisions: Get, Fixed(DECISIONS_PATH), Officer(Permission::Read), Body::None
        => request.decisions().await;
    Decision: Get, With(DECISIONS_PATH, RequestId, ""), Officer(Permission::Read), Body::None
        => request.decision(id.text()?).await;
    Export: Get, Fixed(EXPORT_DECISIONS_PATH), Officer(Permission::Export), Body::None
        => request.export(me).await;
    // Outcomes.
    Outcomes: Post, Fixed(OUTCOMES_PATH), Officer(Permission::RecordOutcomes), Body::Json(MAX_OUTCOMES_BYTES)
        => request.outcomes(body, me).await;
    Performance: Get, Fixed(PERFORMANCE_PATH), Officer(Permission::Read), Body::None
        => request.performance().await;
    Fairness: Get, Fixed(FAIRNESS_PATH), Officer(Permission::Read), Body::None
        => request.fairness().await;
    Challenger: Get, Fixed(CHALLENGER_PATH), Officer(Permission::Read), Body::None
        => request.challenger().await;
    Simulate: Post, Fixed(SIMULATE_PATH), Officer(Permission::Simulate), Body::Json(MAX_SIMULATION_BYTES)
        => request.simulate(body).await;
    // Operations.
    Health: Get, Fixed(HEALTH_PATH), Open, Body::None
        => request.health().await;
    Metrics: Get, Fixed(METRICS_PATH), Officer(Permission::Operate), Body::None
        => request.metrics().await;
    DeadLetters: Get, Fixed(DEAD_LETTERS_PATH), Officer(Permission::Operate), Body::None
        => request.dead_letters().await;
    DeadLetterReplay: Post, With(DEAD_LETTERS_PATH, Number, REPLAY_SUFFIX), Officer(Permission::Operate), Body::Raw(MAX_BODY_BYTES)
        => request.replay(id.number()?, body, me).await;
    Audit: Get, Fixed(AUDIT_PATH), Officer(Permission::Audit), Body::None
        => request.audit().await;
    AuditVerify: Get, Fixed(AUDIT_VERIFY_PATH), Officer(Permission::Audit), Body::None
        => request.audit_verify().await;
    // Account.
    Me: Get, Fixed(ME_PATH), Officer(Permission::Account), Body::None
        => request.me(me);
    // Webhooks.
    Subscriptions: Get, Fixed(WEBHOOKS_PATH), Officer(Permission::ManageWebhooks), Body::None
        => request.subscriptions().await;
    Subscribe: Post, Fixed(WEBHOOKS_PATH), Officer(Permission::ManageWebhooks), Body::Json(MAX_SUBSCRIPTION_BYTES)
        => request.subscribe(body, me).await;
    Unsubscribe: Delete, With(WEBHOOKS_PATH, Number, ""), Officer(Permission::ManageWebhooks), Body::None
        => request.unsubscribe(id.number()?, me).await;
    WebhookDeadLetters: Get, Fixed(WEBHOOK_DEAD_LETTERS_PATH), Officer(Permission::ManageWebhooks), Body::None
        => request.webhook_dead_letters().await;
    WebhookReplay: Post, With(WEBHOOK_DEAD_LETTERS_PATH, Number, REPLAY_SUFFIX), Officer(Permission::ManageWebhooks), Body::Ignored(MAX_BODY_BYTES)
        => request.replay_webhook(id.number()?, me).await;
    // Data protection.
    /// The dpo blocks every decision of an applicant.
    ApplicantErasure: Post, With(APPLICANTS_PATH, ApplicantId, ERASURE_SUFFIX), Officer(Permission::ProtectData), Body::Ignored(MAX_REVIEW_BODY_BYTES)
        => request.erase_applicant(id.text()?, me).await;
    /// The dpo exports everything held about an applicant.
    ApplicantExport: Get, With(APPLICANTS_PATH, ApplicantId, SUBJECT_EXPORT_SUFFIX), Officer(Permission::ProtectData), Body::None
        => request.export_applicant(id.text()?, me).await;
    /// The dpo runs the retention job now.
    RetentionRun: Post, Fixed(RETENTION_RUN_PATH), Officer(Permission::ProtectData), Body::Json(MAX_RUN_BODY_BYTES)
        => request.run_retention(body).await;
}

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
