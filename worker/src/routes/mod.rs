//! Routing and handlers, one module per resource. Each handler parses, calls `valle_shared`
//! and the pipeline, and answers: no business rule lives here. The edge glue calls
//! [`prepare`] on the request head, reads the body only when [`Prepared::needs_body`] says
//! so, then awaits [`Prepared::finish`] with its backend, and runs what the answer leaves to
//! do ([`AfterAnswer`]) after it has gone out.

mod applicant;
mod audit;
mod auth;
mod data_protection;
mod dead_letters;
mod decisions;
mod events;
mod exports;
mod health;
mod kpis;
mod outcomes;
mod reviews;
mod score;
mod simulate;
mod webhooks;

pub use exports::{export_chunk, ExportStream};

use std::cell::RefCell;

use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::errors::{FieldError, RequestError};
use valle_shared::contract::ops::{batch_cost, RateClass};
use valle_shared::contract::paths::{
    APPLICANTS_PATH, APPLICANT_SUFFIX, APPROVAL_SUFFIX, AUDIT_PATH, AUDIT_VERIFY_PATH,
    CHALLENGER_PATH, CONTEST_SUFFIX, DEAD_LETTERS_PATH, DECISIONS_PATH, DRIFT_PATH, ERASURE_SUFFIX,
    EVENTS_PATH, EXPORT_DECISIONS_PATH, FAIRNESS_PATH, HEALTH_PATH, HUMAN_REVIEW_SUFFIX, KPIS_PATH,
    KPI_WINDOWS_PATH, METRICS_PATH, ME_PATH, OUTCOMES_PATH, OVERRIDES_REPORT_PATH,
    PERFORMANCE_PATH, REPLAY_SUFFIX, RETENTION_RUN_PATH, REVIEWS_PATH, SCORE_BATCH_PATH,
    SCORE_PATH, SIMULATE_PATH, SUBJECT_EXPORT_SUFFIX, WEBHOOKS_PATH, WEBHOOK_DEAD_LETTERS_PATH,
};
use valle_shared::contract::request::{is_valid_request_id, Stage, StageTiming, REQUEST_ID_HEADER};
use valle_shared::decision::simulation::MAX_SIMULATION_BYTES;
use valle_shared::intake::application::is_applicant_id;
use valle_shared::intake::batch::MAX_BATCH_BYTES;
use valle_shared::intake::batch::MAX_EVENTS_BYTES;
use valle_shared::intake::channel::Channel;
use valle_shared::intake::validation::MAX_BODY_BYTES;
use valle_shared::lending::access::AccessConfig;
use valle_shared::lending::officers::{Me, Permission};
use valle_shared::lending::review::MAX_REVIEW_BODY_BYTES;
use valle_shared::monitoring::kpi::Observation;
use valle_shared::outcomes::loan_outcomes::MAX_OUTCOMES_BYTES;
use valle_shared::privacy::retention::MAX_RUN_BODY_BYTES;
use valle_shared::records::receipt::ReceiptKey;
use valle_shared::webhooks::Reach;
use valle_shared::webhooks::MAX_SUBSCRIPTION_BYTES;

pub use crate::kpi_cache::{kpi_cache_key, refresh_view, CachedKpis, KpiCache, Refresh};

use crate::background::AfterAnswer;
use crate::body::BodyError;
use crate::cors::CorsPolicy;
use crate::error::ApiError;
use crate::http::{HttpResponse, RequestHead};
use crate::pipeline::{failure_observation, FailedRequest, PipelineError, Scorers};
use crate::store::Backend;
use reviews::OfficerWrite;

/// Milliseconds since the Unix epoch; the edge uses `Date.now()`, tests a fake.
pub trait Clock {
    fn now_ms(&self) -> f64;
}

/// What a request may use from its environment.
pub struct Context<'a> {
    pub clock: &'a dyn Clock,
    /// A fresh unique id (a UUID at the edge), used when the caller sent none.
    pub new_request_id: &'a dyn Fn() -> String,
    /// Cloudflare Access sign-in, when the deployment has it.
    pub access: Option<&'a AccessConfig>,
    pub kpi_cache: &'a KpiCache,
    /// Other origins allowed to call the API (`ALLOWED_ORIGINS`).
    pub cors: &'a CorsPolicy,
    /// Branches `/metrics` labels on their own (`MONITORED_BRANCHES`).
    pub monitored_branches: &'a [String],
    /// Whether the shadow challenger scores every decision (`SHADOW_MODEL`).
    pub shadow: bool,
    /// The key applicants' receipts are made with; `None` when the environment has none,
    /// and then nothing that needs a receipt is answered.
    pub receipts: Option<&'a ReceiptKey>,
    /// Where webhooks may be registered to (`ENVIRONMENT`).
    pub webhook_reach: Reach,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Score,
    ScoreBatch,
    Health,
    Events,
    Decisions,
    Decision(String),
    DeadLetters,
    DeadLetterReplay(i64),
    Kpis,
    KpiWindows,
    Drift,
    Metrics,
    Me,
    ReviewQueue,
    Review(String),
    Decide(String),
    Approval(String),
    /// The applicant's request for a person to review a decision (with its receipt).
    HumanReview(String),
    /// The applicant reads back their decision (with its receipt).
    ApplicantDecision(String),
    /// The applicant contests their decision with a comment (with its receipt).
    Contest(String),
    /// The applicant asks for their decision's erasure (with its receipt).
    DecisionErasure(String),
    /// The applicant exports their decision and all attached to it (with its receipt).
    DecisionExport(String),
    /// The dpo blocks every decision of an applicant.
    ApplicantErasure(String),
    /// The dpo exports everything held about an applicant.
    ApplicantExport(String),
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
    Unsubscribe(i64),
    WebhookDeadLetters,
    WebhookReplay(i64),
    /// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
    Preflight,
}

impl Route {
    /// What an officer's account needs for the route; public routes need none.
    pub fn permission(&self) -> Option<Permission> {
        match self {
            Route::Score
            | Route::ScoreBatch
            | Route::Events
            | Route::Health
            | Route::HumanReview(_)
            | Route::ApplicantDecision(_)
            | Route::Contest(_)
            | Route::DecisionErasure(_)
            | Route::DecisionExport(_)
            | Route::Preflight => None,
            Route::ApplicantErasure(_) | Route::ApplicantExport(_) | Route::RetentionRun => {
                Some(Permission::ProtectData)
            }
            Route::Decisions
            | Route::Decision(_)
            | Route::Kpis
            | Route::KpiWindows
            | Route::Drift
            | Route::ReviewQueue
            | Route::Review(_)
            | Route::Performance
            | Route::Fairness
            | Route::Challenger => Some(Permission::Read),
            Route::Outcomes => Some(Permission::RecordOutcomes),
            Route::Simulate => Some(Permission::Simulate),
            Route::Me => Some(Permission::Account),
            Route::Decide(_) => Some(Permission::Decide),
            Route::Approval(_) => Some(Permission::Approve),
            Route::DeadLetters | Route::DeadLetterReplay(_) | Route::Metrics => {
                Some(Permission::Operate)
            }
            Route::Audit | Route::AuditVerify => Some(Permission::Audit),
            Route::Export => Some(Permission::Export),
            Route::OverridesReport => Some(Permission::Report),
            Route::Subscriptions
            | Route::Subscribe
            | Route::Unsubscribe(_)
            | Route::WebhookDeadLetters
            | Route::WebhookReplay(_) => Some(Permission::ManageWebhooks),
        }
    }

    /// The most body bytes the route reads; `None` for a route that reads no body.
    pub fn body_limit(&self) -> Option<usize> {
        match self {
            Route::Score => Some(MAX_BODY_BYTES),
            Route::ScoreBatch => Some(MAX_BATCH_BYTES),
            Route::Events => Some(MAX_EVENTS_BYTES),
            Route::Outcomes => Some(MAX_OUTCOMES_BYTES),
            Route::Simulate => Some(MAX_SIMULATION_BYTES),
            Route::Subscribe => Some(MAX_SUBSCRIPTION_BYTES),
            Route::Decide(_) | Route::Approval(_) | Route::Contest(_) => {
                Some(MAX_REVIEW_BODY_BYTES)
            }
            Route::RetentionRun => Some(MAX_RUN_BODY_BYTES),
            Route::DeadLetterReplay(_) => Some(MAX_BODY_BYTES),
            _ => None,
        }
    }

    /// Public routes that do work per request are rate limited per client.
    fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            Route::Score
                | Route::ScoreBatch
                | Route::Events
                | Route::HumanReview(_)
                | Route::ApplicantDecision(_)
                | Route::Contest(_)
                | Route::DecisionErasure(_)
                | Route::DecisionExport(_)
        )
    }

    /// The decision an applicant's route is about, limited per decision as well.
    fn applicant_decision(&self) -> Option<&str> {
        match self {
            Route::HumanReview(id)
            | Route::ApplicantDecision(id)
            | Route::Contest(id)
            | Route::DecisionErasure(id)
            | Route::DecisionExport(id) => Some(id),
            _ => None,
        }
    }
}

const POST: &[&str] = &["POST"];
const GET: &[&str] = &["GET", "HEAD"];
const DELETE: &[&str] = &["DELETE"];

/// Chooses the route from method, path and headers alone, before any body is read.
pub fn route(head: &RequestHead) -> Result<Route, ApiError> {
    let allow = |route: Route, allowed: &'static [&'static str]| {
        if allowed.contains(&head.method.as_str()) {
            Ok(route)
        } else {
            Err(ApiError::MethodNotAllowed {
                method: head.method.clone(),
                allowed,
            })
        }
    };
    let json_post = |route: Route| {
        let route = allow(route, POST)?;
        require_json(head)?;
        reject_declared_oversize(head, route.body_limit().unwrap_or(MAX_BODY_BYTES))?;
        Ok(route)
    };
    let path = head.path.as_str();
    match path {
        SCORE_PATH => json_post(Route::Score),
        SCORE_BATCH_PATH => json_post(Route::ScoreBatch),
        EVENTS_PATH => json_post(Route::Events),
        HEALTH_PATH => allow(Route::Health, GET),
        DECISIONS_PATH => allow(Route::Decisions, GET),
        DEAD_LETTERS_PATH => allow(Route::DeadLetters, GET),
        KPIS_PATH => allow(Route::Kpis, GET),
        KPI_WINDOWS_PATH => allow(Route::KpiWindows, GET),
        DRIFT_PATH => allow(Route::Drift, GET),
        METRICS_PATH => allow(Route::Metrics, GET),
        ME_PATH => allow(Route::Me, GET),
        REVIEWS_PATH => allow(Route::ReviewQueue, GET),
        AUDIT_PATH => allow(Route::Audit, GET),
        AUDIT_VERIFY_PATH => allow(Route::AuditVerify, GET),
        EXPORT_DECISIONS_PATH => allow(Route::Export, GET),
        OVERRIDES_REPORT_PATH => allow(Route::OverridesReport, GET),
        OUTCOMES_PATH => json_post(Route::Outcomes),
        PERFORMANCE_PATH => allow(Route::Performance, GET),
        FAIRNESS_PATH => allow(Route::Fairness, GET),
        SIMULATE_PATH => json_post(Route::Simulate),
        RETENTION_RUN_PATH => json_post(Route::RetentionRun),
        CHALLENGER_PATH => allow(Route::Challenger, GET),
        WEBHOOKS_PATH => match head.method.as_str() {
            "POST" => json_post(Route::Subscribe),
            _ => allow(Route::Subscriptions, GET).map_err(|_| ApiError::MethodNotAllowed {
                method: head.method.clone(),
                allowed: &["GET", "HEAD", "POST"],
            }),
        },
        WEBHOOK_DEAD_LETTERS_PATH => allow(Route::WebhookDeadLetters, GET),
        _ => {
            // The path segment between `prefix/` and `suffix`, each kind of id checked below.
            let segment = |prefix: &str, suffix: &str| {
                path.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .and_then(|rest| rest.strip_suffix(suffix))
            };
            let id_after = |prefix: &str, suffix: &str| {
                segment(prefix, suffix)
                    .filter(|id| is_valid_request_id(id))
                    .map(str::to_owned)
            };
            if let Some(id) = id_after(DECISIONS_PATH, HUMAN_REVIEW_SUFFIX) {
                let route = allow(Route::HumanReview(id), POST)?;
                reject_declared_oversize(head, MAX_REVIEW_BODY_BYTES)?;
                return Ok(route);
            }
            if let Some(id) = id_after(DECISIONS_PATH, APPLICANT_SUFFIX) {
                return allow(Route::ApplicantDecision(id), GET);
            }
            if let Some(id) = id_after(DECISIONS_PATH, CONTEST_SUFFIX) {
                return json_post(Route::Contest(id));
            }
            if let Some(id) = id_after(DECISIONS_PATH, ERASURE_SUFFIX) {
                let route = allow(Route::DecisionErasure(id), POST)?;
                reject_declared_oversize(head, MAX_REVIEW_BODY_BYTES)?;
                return Ok(route);
            }
            if let Some(id) = id_after(DECISIONS_PATH, SUBJECT_EXPORT_SUFFIX) {
                return allow(Route::DecisionExport(id), GET);
            }
            let applicant_after = |suffix: &str| {
                segment(APPLICANTS_PATH, suffix)
                    .filter(|id| is_applicant_id(id))
                    .map(str::to_owned)
            };
            if let Some(id) = applicant_after(ERASURE_SUFFIX) {
                let route = allow(Route::ApplicantErasure(id), POST)?;
                reject_declared_oversize(head, MAX_REVIEW_BODY_BYTES)?;
                return Ok(route);
            }
            if let Some(id) = applicant_after(SUBJECT_EXPORT_SUFFIX) {
                return allow(Route::ApplicantExport(id), GET);
            }
            if let Some(id) = id_after(REVIEWS_PATH, APPROVAL_SUFFIX) {
                return json_post(Route::Approval(id));
            }
            if let Some(id) = id_after(REVIEWS_PATH, "") {
                return match head.method.as_str() {
                    "POST" => json_post(Route::Decide(id)),
                    _ => allow(Route::Review(id), GET).map_err(|_| ApiError::MethodNotAllowed {
                        method: head.method.clone(),
                        allowed: &["GET", "HEAD", "POST"],
                    }),
                };
            }
            if let Some(id) = id_after(DECISIONS_PATH, "") {
                return allow(Route::Decision(id), GET);
            }
            let number_after = |prefix: &str, suffix: &str| {
                segment(prefix, suffix)
                    .and_then(|id| id.parse::<i64>().ok())
                    .filter(|id| *id > 0)
            };
            if let Some(id) = number_after(WEBHOOK_DEAD_LETTERS_PATH, REPLAY_SUFFIX) {
                let route = allow(Route::WebhookReplay(id), POST)?;
                reject_declared_oversize(head, MAX_BODY_BYTES)?;
                return Ok(route);
            }
            if let Some(id) = number_after(WEBHOOKS_PATH, "") {
                return allow(Route::Unsubscribe(id), DELETE);
            }
            match number_after(DEAD_LETTERS_PATH, REPLAY_SUFFIX) {
                Some(id) => {
                    let route = allow(Route::DeadLetterReplay(id), POST)?;
                    reject_declared_oversize(head, route.body_limit().unwrap_or(MAX_BODY_BYTES))?;
                    Ok(route)
                }
                None => Err(ApiError::NotFound),
            }
        }
    }
}

fn require_json(head: &RequestHead) -> Result<(), ApiError> {
    let content_type = head.header("content-type");
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    match media_type {
        Some(media) if media.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(
            content_type.map(|value| value.chars().take(100).collect()),
        )),
    }
}

/// Refuses a body the client already says is too large, so it is never read.
fn reject_declared_oversize(head: &RequestHead, limit: usize) -> Result<(), ApiError> {
    let declared = head
        .header("content-length")
        .and_then(|value| value.trim().parse::<usize>().ok());
    match declared {
        Some(actual) if actual > limit => {
            Err(ApiError::Request(RequestError::TooLarge { limit, actual }))
        }
        _ => Ok(()),
    }
}

/// A routed, authenticated request waiting for its body.
pub struct Prepared {
    request_id: String,
    route: Result<Route, ApiError>,
    head: RequestHead,
    started_ms: f64,
}

/// Resolves the request id and the route; credentials are checked in [`Prepared::finish`],
/// since they are looked up in storage.
pub fn prepare(head: &RequestHead, context: &Context<'_>) -> Prepared {
    let started_ms = context.clock.now_ms();
    let (request_id, id_error) = match head.header(REQUEST_ID_HEADER) {
        Some(id) if is_valid_request_id(id) => (id.to_owned(), None),
        Some(_) => ((context.new_request_id)(), Some(ApiError::InvalidRequestId)),
        None => ((context.new_request_id)(), None),
    };
    let route = match id_error {
        Some(error) => Err(error),
        None if CorsPolicy::is_preflight(head) => Ok(Route::Preflight),
        None => route(head),
    };
    Prepared {
        request_id,
        route,
        head: head.clone(),
        started_ms,
    }
}

/// The client a rate limit applies to: the connecting address Cloudflare reports, an IPv6
/// one by its /64 ([`valle_shared::contract::ops::client_key`]).
pub fn client_key(head: &RequestHead) -> String {
    valle_shared::contract::ops::client_key(head.header("cf-connecting-ip"))
}

impl Prepared {
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    pub fn needs_body(&self) -> bool {
        self.body_limit().is_some()
    }

    /// The most body bytes to read for this request ([`Route::body_limit`]); the edge stops
    /// reading past it ([`crate::body::read_limited`]).
    pub fn body_limit(&self) -> Option<usize> {
        self.route.as_ref().ok().and_then(Route::body_limit)
    }

    /// Runs the handler with the body (empty unless [`Self::needs_body`]) and answers, with
    /// what is left to do after the answer.
    pub async fn finish<B: Backend>(
        self,
        body: Result<Vec<u8>, BodyError>,
        context: &Context<'_>,
        backend: &B,
    ) -> (HttpResponse, AfterAnswer) {
        let mut timer = StageTimer::new(context.clock, self.started_ms);
        timer.lap(Stage::Read);
        let request = Request {
            id: &self.request_id,
            head: &self.head,
            context,
            backend,
            timer: RefCell::new(timer),
            after: RefCell::new(AfterAnswer::default()),
        };
        let result = match (self.route, body) {
            (Err(error), _) => Err(error),
            // Before credentials: a body past its limit is refused whoever sends it.
            (Ok(_), Err(BodyError::TooLarge { limit, read })) => {
                Err(ApiError::Request(RequestError::TooLarge {
                    limit,
                    actual: read,
                }))
            }
            (Ok(_), Err(error)) => Err(ApiError::Internal(error.to_string())),
            (Ok(route), Ok(body)) => match request.admit(&route).await {
                Err(error) => Err(error),
                Ok(me) => match route {
                    Route::Score => request.score(&body).await,
                    Route::ScoreBatch => request.score_batch(&body).await,
                    Route::Events => request.events(&body).await,
                    Route::Health => request.health().await,
                    Route::Decisions => request.decisions().await,
                    Route::Decision(id) => request.decision(&id).await,
                    Route::DeadLetters => request.dead_letters().await,
                    Route::DeadLetterReplay(id) => request.replay(id, &body, me).await,
                    Route::Kpis => request.kpis().await,
                    Route::KpiWindows => request.kpi_windows().await,
                    Route::Drift => request.drift().await,
                    Route::Metrics => request.metrics().await,
                    Route::Me => request.me(me),
                    Route::ReviewQueue => request.review_queue().await,
                    Route::Review(id) => request.review(&id).await,
                    Route::Decide(id) => {
                        request
                            .officer_write(OfficerWrite::Decide, &id, &body, me)
                            .await
                    }
                    Route::Approval(id) => {
                        request
                            .officer_write(OfficerWrite::Approve, &id, &body, me)
                            .await
                    }
                    Route::HumanReview(id) => request.human_review(&id, None).await,
                    Route::Contest(id) => request.contest(&id, &body).await,
                    Route::DecisionErasure(id) => request.erase_decision(&id).await,
                    Route::DecisionExport(id) => request.export_decision(&id).await,
                    Route::ApplicantErasure(id) => request.erase_applicant(&id, me).await,
                    Route::ApplicantExport(id) => request.export_applicant(&id, me).await,
                    Route::RetentionRun => request.run_retention(&body).await,
                    Route::ApplicantDecision(id) => request.applicant_decision(&id).await,
                    Route::Audit => request.audit().await,
                    Route::AuditVerify => request.audit_verify().await,
                    Route::Export => request.export(me).await,
                    Route::OverridesReport => request.overrides().await,
                    Route::Outcomes => request.outcomes(&body, me).await,
                    Route::Performance => request.performance().await,
                    Route::Fairness => request.fairness().await,
                    Route::Simulate => request.simulate(&body).await,
                    Route::Challenger => request.challenger().await,
                    Route::Subscriptions => request.subscriptions().await,
                    Route::Subscribe => request.subscribe(&body, me).await,
                    Route::Unsubscribe(id) => request.unsubscribe(id, me).await,
                    Route::WebhookDeadLetters => request.webhook_dead_letters().await,
                    Route::WebhookReplay(id) => request.replay_webhook(id, me).await,
                    Route::Preflight => request.preflight(),
                },
            },
        };
        let response = result.unwrap_or_else(|error| error.into_response(&self.request_id));
        let response = context.cors.apply(&self.head, response);
        let Request { after, timer, .. } = request;
        let timing = timer.into_inner().finish();
        let after = after.into_inner();
        (response.with_header("server-timing", timing), after)
    }
}

/// One request as its handlers see it.
struct Request<'r, B> {
    id: &'r str,
    head: &'r RequestHead,
    context: &'r Context<'r>,
    backend: &'r B,
    timer: RefCell<StageTimer<'r>>,
    after: RefCell<AfterAnswer>,
}

impl<B: Backend> Request<'_, B> {
    fn now(&self) -> i64 {
        self.context.clock.now_ms() as i64
    }

    fn lap(&self, stage: Stage) {
        self.timer.borrow_mut().lap(stage);
    }

    /// The champion, and the shadow challenger when it is on.
    fn scorers(&self) -> Result<Scorers<'static>, ApiError> {
        Ok(Scorers::embedded(self.context.shadow)?)
    }

    fn elapsed(&self) -> f64 {
        self.timer.borrow().elapsed()
    }

    /// The rate limit of a public route, or the credentials and role of an officer's: the
    /// account, for routes that need one.
    async fn admit(&self, route: &Route) -> Result<Option<Me>, ApiError> {
        match route.permission() {
            Some(permission) => {
                let me = match self.authenticate(permission).await {
                    Ok(me) => me,
                    Err(error) if error.is_refused_credential() => {
                        self.take(RateClass::FailedCredentials, &client_key(self.head))
                            .await?;
                        return Err(error);
                    }
                    Err(error) => return Err(error),
                };
                self.lap(Stage::Auth);
                self.take(RateClass::Officer, &me.account.id.to_string())
                    .await?;
                Ok(Some(me))
            }
            None => self.throttle(route).await.map(|()| None),
        }
    }

    async fn throttle(&self, route: &Route) -> Result<(), ApiError> {
        if !route.is_rate_limited() {
            return Ok(());
        }
        self.take(RateClass::Public, &client_key(self.head)).await?;
        if let Some(id) = route.applicant_decision() {
            self.take(RateClass::Decision, id).await?;
        }
        self.lap(Stage::Throttle);
        Ok(())
    }

    /// Charges a batch of `items` the public requests beyond the one its admission counted
    /// (`valle_shared::contract::ops::batch_cost`), before any of it is scored or kept.
    pub(super) async fn charge_batch(&self, items: usize) -> Result<(), ApiError> {
        let key = client_key(self.head);
        for _ in 1..batch_cost(items) {
            self.take(RateClass::Public, &key).await?;
        }
        Ok(())
    }

    /// Counts the request against `class` under `key`; refused past the class's limit.
    async fn take(&self, class: RateClass, key: &str) -> Result<(), ApiError> {
        match self.backend.allow(class, key, self.now()).await? {
            Ok(()) => Ok(()),
            Err(retry_after_s) => Err(ApiError::RateLimited { retry_after_s }),
        }
    }

    /// Notes a refused request for the KPIs (counted after the answer, with others), then
    /// returns its error.
    fn refused(&self, id: &str, channel: Channel, error: ApiError) -> ApiError {
        let now = self.now();
        self.refuse(failure_observation(&FailedRequest {
            request_id: id,
            channel,
            received_at_ms: now,
            event_time_ms: now,
            latency_ms: self.elapsed(),
            code: error.code(),
        }));
        error
    }

    fn refuse(&self, observation: Observation) {
        self.after.borrow_mut().refusals.push(observation);
    }

    /// New rows are in D1: the KPI object will be told after the answer.
    fn stored(&self) {
        self.after.borrow_mut().stored = true;
    }
}

/// A refused query parameter, with the message its code implies.
fn query_error(name: &str, code: ErrorCode) -> FieldError {
    valle_shared::contract::query::query_error(name, code, None)
}

fn pipeline_error(error: PipelineError) -> ApiError {
    match error {
        PipelineError::Model(error) => ApiError::Model(error),
        PipelineError::Store(error) => ApiError::Store(error),
        PipelineError::IdempotencyMismatch => ApiError::IdempotencyMismatch,
    }
}

/// Per-stage durations for the `Server-Timing` header and the response body.
struct StageTimer<'a> {
    clock: &'a dyn Clock,
    started_ms: f64,
    last_ms: f64,
    stages: Vec<StageTiming>,
}

impl<'a> StageTimer<'a> {
    fn new(clock: &'a dyn Clock, started_ms: f64) -> StageTimer<'a> {
        StageTimer {
            clock,
            started_ms,
            last_ms: started_ms,
            stages: Vec::new(),
        }
    }

    fn lap(&mut self, stage: Stage) {
        let now = self.clock.now_ms();
        self.stages
            .push(StageTiming::new(stage, now - self.last_ms));
        self.last_ms = now;
    }

    fn elapsed(&self) -> f64 {
        self.clock.now_ms() - self.started_ms
    }

    fn stages_so_far(&self) -> Vec<StageTiming> {
        self.stages.clone()
    }

    fn stages(&self) -> Vec<StageTiming> {
        let mut stages = self.stages.clone();
        stages.push(StageTiming::new(
            Stage::Total,
            self.last_ms - self.started_ms,
        ));
        stages
    }

    fn finish(mut self) -> String {
        self.lap(Stage::Respond);
        self.stages()
            .iter()
            .map(|stage| format!("{};dur={:.3}", stage.name, stage.ms))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
