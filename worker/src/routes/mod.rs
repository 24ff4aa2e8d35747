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
pub mod table;
mod webhooks;

pub use exports::{export_chunk, ExportStream};

use std::cell::RefCell;

use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::errors::{FieldError, RequestError};
use valle_shared::contract::ops::{batch_cost, RateClass};
use valle_shared::contract::request::{is_valid_request_id, Stage, StageTiming, REQUEST_ID_HEADER};
use valle_shared::intake::channel::Channel;
use valle_shared::lending::access::AccessConfig;
use valle_shared::lending::officers::{Me, Permission};
use valle_shared::monitoring::kpi::Observation;
use valle_shared::records::receipt::ReceiptKey;
use valle_shared::webhooks::Reach;

pub use crate::kpi_cache::{kpi_cache_key, refresh_view, CachedKpis, KpiCache, Refresh};

use crate::background::AfterAnswer;
use crate::body::BodyError;
use crate::cors::CorsPolicy;
use crate::error::ApiError;
use crate::http::{HttpResponse, RequestHead};
use crate::pipeline::{failure_observation, FailedRequest, PipelineError, Scorers};
use crate::store::{Backend, RateLimiter};
use table::{Access, Body, Lookup, PathId, RouteRow};

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

/// Where a request goes: a row of the [`table::ROUTES`] with its path's id, or a CORS
/// preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`), which answers
/// any path the API has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Api { row: &'static RouteRow, id: PathId },
    Preflight,
}

impl Route {
    /// What an officer's account needs for the route; public routes need none.
    pub fn permission(&self) -> Option<Permission> {
        match self {
            Route::Api { row, .. } => row.permission(),
            Route::Preflight => None,
        }
    }

    /// The most body bytes the route reads; `None` for a route that reads no body.
    pub fn body_limit(&self) -> Option<usize> {
        match self {
            Route::Api { row, .. } => row.body.read_limit(),
            Route::Preflight => None,
        }
    }
}

/// Chooses the route from method, path and headers alone, before any body is read.
pub fn route(head: &RequestHead) -> Result<Route, ApiError> {
    match table::lookup(&head.method, &head.path) {
        Lookup::NotFound => Err(ApiError::NotFound),
        Lookup::WrongMethod(allowed) => Err(ApiError::MethodNotAllowed {
            method: head.method.clone(),
            allowed,
        }),
        Lookup::Found(row, id) => {
            if let Body::Json(_) = row.body {
                require_json(head)?;
            }
            if let Some(limit) = row.body.declared_limit() {
                reject_declared_oversize(head, limit)?;
            }
            Ok(Route::Api { row, id })
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
                    Route::Api { row, id } => request.dispatch(row.endpoint, id, &body, me).await,
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

impl<B> Request<'_, B> {
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

impl<B: RateLimiter> Request<'_, B> {
    async fn throttle(&self, route: &Route) -> Result<(), ApiError> {
        match route {
            Route::Api { row, id } if row.access == Access::Applicant => {
                self.take(RateClass::Public, &client_key(self.head)).await?;
                self.take(RateClass::Decision, id.text()?).await?;
            }
            Route::Api { row, .. } if row.access == Access::Public => {
                self.take(RateClass::Public, &client_key(self.head)).await?;
            }
            Route::Api { .. } | Route::Preflight => return Ok(()),
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
}

impl<B: Backend> Request<'_, B> {
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
