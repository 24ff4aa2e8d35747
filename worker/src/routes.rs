//! Routing and handlers. Each handler parses, calls `valle_shared` and the pipeline, and
//! answers: no business rule lives here. The edge glue calls [`prepare`] on the request head,
//! reads the body only when [`Prepared::needs_body`] says so, then awaits [`Prepared::finish`]
//! with its backend.

use std::cell::RefCell;

use valle_shared::api::{
    is_valid_request_id, BatchItem, BatchResponse, CacheStats, CountWindowList, Health,
    HealthCheck, KpiResponse, ReplayRequest, ScoreResponse, StageTiming, DEAD_LETTERS_PATH,
    DECISIONS_PATH, DRIFT_PATH, EVENTS_PATH, HEALTH_PATH, KPIS_PATH, KPI_WINDOWS_PATH,
    METRICS_PATH, REQUEST_ID_HEADER, SCORE_BATCH_PATH, SCORE_PATH,
};
use valle_shared::batch::{parse_batch, MAX_BATCH_BYTES};
use valle_shared::decisions::{parse_query, DeadLetterPage, DecisionQuery, ReplayResponse};
use valle_shared::events::{
    branch_of, parse_events, Channel, EventAck, EventsResponse, DEFAULT_BRANCH, MAX_EVENTS_BYTES,
};
use valle_shared::kpi::{KpiView, View};
use valle_shared::metrics::render;
use valle_shared::ops::{check_bearer, AuthFailure, Lookup, SwrCache};
use valle_shared::validation::{
    parse_body, validate, ErrorCode, FieldError, RequestError, MAX_BODY_BYTES,
};
use valle_shared::{Message, Model};

use crate::cors::CorsPolicy;
use crate::error::ApiError;
use crate::http::{HttpResponse, RequestHead};
use crate::pipeline::{decide, failure_observation, Incoming};
use crate::store::{metrics_extra, Backend};

/// Milliseconds since the Unix epoch; the edge uses `Date.now()`, tests a fake.
pub trait Clock {
    fn now_ms(&self) -> f64;
}

/// The KPI views cached in the isolate, shared by its requests.
pub type KpiCache = RefCell<SwrCache<CachedKpis>>;

/// A computed KPI answer as the cache keeps it: everything a hit needs, so a hit does no I/O.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedKpis {
    pub view: KpiView,
    pub dead_letters_open: Option<u64>,
    pub computed_at_ms: i64,
}

/// Asks the KPI object for a view and D1 for the open dead letters.
async fn compute_kpis<B: Backend>(
    backend: &B,
    window: View,
    branch: Option<&str>,
    now_ms: i64,
) -> Result<CachedKpis, ApiError> {
    let view = backend.view(window, branch).await?;
    let dead_letters_open = backend.count_open_dead_letters().await.ok();
    Ok(CachedKpis {
        view,
        dead_letters_open,
        computed_at_ms: now_ms,
    })
}

/// What a request may use from its environment.
pub struct Context<'a> {
    pub clock: &'a dyn Clock,
    /// A fresh unique id (a UUID at the edge), used when the caller sent none.
    pub new_request_id: &'a dyn Fn() -> String,
    /// The officers' bearer token; officer routes are closed without it.
    pub officer_token: Option<&'a str>,
    pub kpi_cache: &'a KpiCache,
    /// Other origins allowed to call the API (`ALLOWED_ORIGINS`).
    pub cors: &'a CorsPolicy,
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
    /// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
    Preflight,
}

impl Route {
    fn is_officer_only(&self) -> bool {
        matches!(
            self,
            Route::Decisions
                | Route::Decision(_)
                | Route::DeadLetters
                | Route::DeadLetterReplay(_)
                | Route::Kpis
                | Route::KpiWindows
                | Route::Drift
                | Route::Metrics
        )
    }

    /// Public routes that do work per request are rate limited per client.
    fn is_rate_limited(&self) -> bool {
        matches!(self, Route::Score | Route::ScoreBatch | Route::Events)
    }
}

const POST: &[&str] = &["POST"];
const GET: &[&str] = &["GET", "HEAD"];

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
    let json_post = |route: Route, limit: usize| {
        let route = allow(route, POST)?;
        require_json(head)?;
        reject_declared_oversize(head, limit)?;
        Ok(route)
    };
    let path = head.path.as_str();
    match path {
        SCORE_PATH => json_post(Route::Score, MAX_BODY_BYTES),
        SCORE_BATCH_PATH => json_post(Route::ScoreBatch, MAX_BATCH_BYTES),
        EVENTS_PATH => json_post(Route::Events, MAX_EVENTS_BYTES),
        HEALTH_PATH => allow(Route::Health, GET),
        DECISIONS_PATH => allow(Route::Decisions, GET),
        DEAD_LETTERS_PATH => allow(Route::DeadLetters, GET),
        KPIS_PATH => allow(Route::Kpis, GET),
        KPI_WINDOWS_PATH => allow(Route::KpiWindows, GET),
        DRIFT_PATH => allow(Route::Drift, GET),
        METRICS_PATH => allow(Route::Metrics, GET),
        _ => {
            if let Some(id) = path
                .strip_prefix(DECISIONS_PATH)
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|id| is_valid_request_id(id))
            {
                return allow(Route::Decision(id.to_owned()), GET);
            }
            let replay = path
                .strip_prefix(DEAD_LETTERS_PATH)
                .and_then(|rest| rest.strip_prefix('/'))
                .and_then(|rest| rest.strip_suffix("/replay"))
                .and_then(|id| id.parse::<i64>().ok())
                .filter(|id| *id > 0);
            match replay {
                Some(id) => {
                    let route = allow(Route::DeadLetterReplay(id), POST)?;
                    reject_declared_oversize(head, MAX_BODY_BYTES)?;
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

/// A KPI view to recompute after the answer went out (stale-while-revalidate).
#[derive(Clone, Debug, PartialEq)]
pub struct Refresh {
    pub window: View,
    pub branch: Option<String>,
    pub cache_key: String,
}

/// Resolves the request id, the route and the officer check.
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
        None => route(head).and_then(|route| {
            if route.is_officer_only() {
                check_bearer(head.header("authorization"), context.officer_token).map_err(
                    |failure| match failure {
                        AuthFailure::NotConfigured => ApiError::AuthNotConfigured,
                        AuthFailure::Missing | AuthFailure::Wrong => ApiError::Unauthorized,
                    },
                )?;
            }
            Ok(route)
        }),
    };
    Prepared {
        request_id,
        route,
        head: head.clone(),
        started_ms,
    }
}

/// The client a rate limit applies to: the connecting address Cloudflare reports.
pub fn client_key(head: &RequestHead) -> String {
    head.header("cf-connecting-ip")
        .map(|ip| ip.chars().take(64).collect())
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Prepared {
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    pub fn needs_body(&self) -> bool {
        matches!(
            self.route,
            Ok(Route::Score | Route::ScoreBatch | Route::Events | Route::DeadLetterReplay(_))
        )
    }

    /// Runs the handler with the body (empty unless [`Self::needs_body`]) and answers, with
    /// a KPI view to refresh in the background when a stale one was served.
    pub async fn finish<B: Backend>(
        self,
        body: Result<Vec<u8>, String>,
        context: &Context<'_>,
        backend: &B,
    ) -> (HttpResponse, Option<Refresh>) {
        let mut timer = StageTimer::new(context.clock, self.started_ms);
        timer.lap("read");
        let mut refresh = None;
        let request = Request {
            id: &self.request_id,
            head: &self.head,
            context,
            backend,
        };
        let result = match (self.route, body) {
            (Err(error), _) => Err(error),
            (Ok(_), Err(read_error)) => Err(ApiError::Internal(format!(
                "reading the body failed: {read_error}"
            ))),
            (Ok(route), Ok(body)) => match request.throttle(&route, &mut timer).await {
                Err(error) => Err(error),
                Ok(()) => match route {
                    Route::Score => request.score(&body, &mut timer).await,
                    Route::ScoreBatch => request.score_batch(&body, &mut timer).await,
                    Route::Events => request.events(&body).await,
                    Route::Health => request.health().await,
                    Route::Decisions => request.decisions().await,
                    Route::Decision(id) => request.decision(&id).await,
                    Route::DeadLetters => request.dead_letters().await,
                    Route::DeadLetterReplay(id) => request.replay(id, &body, &mut timer).await,
                    Route::Kpis => request.kpis(&mut refresh).await,
                    Route::KpiWindows => request.kpi_windows().await,
                    Route::Drift => request.drift().await,
                    Route::Metrics => request.metrics().await,
                    Route::Preflight => request.preflight(),
                },
            },
        };
        let response = result.unwrap_or_else(|error| error.into_response(&self.request_id));
        let response = context.cors.apply(&self.head, response);
        (
            response.with_header("server-timing", timer.finish()),
            refresh,
        )
    }
}

struct Request<'r, B> {
    id: &'r str,
    head: &'r RequestHead,
    context: &'r Context<'r>,
    backend: &'r B,
}

impl<B: Backend> Request<'_, B> {
    fn now(&self) -> i64 {
        self.context.clock.now_ms() as i64
    }

    async fn throttle(&self, route: &Route, timer: &mut StageTimer<'_>) -> Result<(), ApiError> {
        if !route.is_rate_limited() {
            return Ok(());
        }
        let allowed = self.backend.allow(&client_key(self.head), 1).await?;
        timer.lap("throttle");
        match allowed {
            Ok(()) => Ok(()),
            Err(retry_after_s) => Err(ApiError::RateLimited { retry_after_s }),
        }
    }

    /// Counts a refused scoring request in the KPIs, then returns its error.
    async fn counted(
        &self,
        id: &str,
        error: ApiError,
        branch: &str,
        timer: &StageTimer<'_>,
    ) -> ApiError {
        let now = self.now();
        let failure = failure_observation(id, branch, now, now, timer.elapsed(), error.code());
        if let Err(kpi_error) = self.backend.record(&[failure]).await {
            log(&format!("kpi record of a failure failed: {kpi_error}"));
        }
        error
    }

    /// `POST /api/v1/score`: validates with the shared rules, scores with the shared model,
    /// stores the decision once per `X-Request-ID` and counts it in the KPIs.
    async fn score(
        &self,
        body: &[u8],
        timer: &mut StageTimer<'_>,
    ) -> Result<HttpResponse, ApiError> {
        let parsed = parse_body(body).and_then(|entries| {
            timer.lap("parse");
            validate(&entries).map_err(RequestError::Invalid)
        });
        let application = match parsed {
            Ok(application) => application,
            Err(error) => {
                return Err(self
                    .counted(self.id, error.into(), DEFAULT_BRANCH, timer)
                    .await)
            }
        };
        timer.lap("validate");
        let now = self.now();
        let incoming = Incoming {
            request_id: self.id.to_owned(),
            applicant_id: application.applicant_id.clone(),
            branch: branch_of(&application),
            channel: Channel::Online,
            application,
            received_at_ms: now,
            event_time_ms: now,
            client_score: None,
        };
        let decided = decide(
            self.backend,
            Model::embedded()?,
            incoming,
            timer.stages_so_far(),
            &|| timer.elapsed(),
        )
        .await
        .map_err(pipeline_error)?;
        timer.lap("decide");
        let record = decided.record;
        let answer = ScoreResponse {
            request_id: record.request_id,
            application: record.application,
            score: record.score,
            timing: if decided.replayed {
                record.timing
            } else {
                timer.stages()
            },
            replayed: decided.replayed,
        };
        Ok(HttpResponse::json(200, &answer, self.id))
    }

    /// `POST /api/v1/score/batch`: up to 1,000 applications, each validated, scored and
    /// stored on its own as `<request id>:<index>`; an invalid item gets the errors it would
    /// get alone and does not fail the batch.
    async fn score_batch(
        &self,
        body: &[u8],
        timer: &mut StageTimer<'_>,
    ) -> Result<HttpResponse, ApiError> {
        let items = parse_batch(body)?;
        timer.lap("validate");
        let model = Model::embedded()?;
        let now = self.now();
        let mut results = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let item_id = format!("{}:{index}", self.id);
            let outcome = match item {
                Err(error) => Err(ApiError::from(error)),
                Ok(application) => {
                    let incoming = Incoming {
                        request_id: item_id.clone(),
                        applicant_id: application.applicant_id.clone(),
                        branch: branch_of(&application),
                        channel: Channel::Batch,
                        application,
                        received_at_ms: now,
                        event_time_ms: now,
                        client_score: None,
                    };
                    decide(
                        self.backend,
                        model,
                        incoming,
                        timer.stages_so_far(),
                        &|| timer.elapsed(),
                    )
                    .await
                    .map_err(pipeline_error)
                }
            };
            results.push(match outcome {
                Ok(decided) => BatchItem {
                    index,
                    request_id: Some(item_id),
                    replayed: decided.replayed,
                    score: Some(decided.record.score),
                    error: None,
                },
                // Storage trouble fails the whole request, so the client retries it all
                // with the same id; stored items then answer as replays.
                Err(error @ (ApiError::Store(_) | ApiError::Model(_))) => return Err(error),
                Err(error) => {
                    let error = self.counted(&item_id, error, DEFAULT_BRANCH, timer).await;
                    BatchItem {
                        index,
                        request_id: None,
                        replayed: false,
                        score: None,
                        error: Some(error.body(None)),
                    }
                }
            });
        }
        timer.lap("score");
        let accepted = results.iter().filter(|item| item.score.is_some()).count();
        let answer = BatchResponse {
            request_id: self.id.to_owned(),
            model_version: model.version().clone(),
            accepted,
            rejected: results.len() - accepted,
            results,
            timing: timer.stages(),
        };
        Ok(HttpResponse::json(200, &answer, self.id))
    }

    /// `POST /api/v1/events`: checks each event's envelope, queues the sound ones and answers
    /// 202 with every event's acceptance. The queue consumer does the rest.
    async fn events(&self, body: &[u8]) -> Result<HttpResponse, ApiError> {
        let now = self.now();
        let parsed = parse_events(body, now)?;
        let accepted: Vec<_> = parsed
            .iter()
            .filter_map(|item| item.as_ref().ok())
            .cloned()
            .collect();
        // Kept in D1, then queued, before anything is acknowledged: if either fails the
        // client resends, and a kept event reaches the queue again through the sweeper.
        if !accepted.is_empty() {
            self.backend.keep(&accepted, now).await?;
            self.backend.enqueue(&accepted).await?;
            if let Err(error) = self.backend.wake_sweeper().await {
                // The events are kept; the next batch's wake-up sets the alarm.
                log(&format!("inbox sweeper not woken: {error}"));
            }
        }
        let mut failures = Vec::new();
        let results: Vec<EventAck> = parsed
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item {
                Ok(event) => EventAck {
                    index,
                    event_id: Some(event.event_id),
                    accepted: true,
                    error: None,
                },
                Err(error) => {
                    failures.push(failure_observation(
                        &format!("{}:{index}", self.id),
                        valle_shared::events::DEFAULT_BRANCH,
                        now,
                        now,
                        0.0,
                        error.code(),
                    ));
                    EventAck {
                        index,
                        event_id: None,
                        accepted: false,
                        error: Some(error.body()),
                    }
                }
            })
            .collect();
        if !failures.is_empty() {
            if let Err(error) = self.backend.record(&failures).await {
                log(&format!("kpi record of refused events failed: {error}"));
            }
        }
        let answer = EventsResponse {
            request_id: self.id.to_owned(),
            accepted: accepted.len(),
            rejected: results.len() - accepted.len(),
            results,
        };
        Ok(HttpResponse::json(202, &answer, self.id))
    }

    /// `OPTIONS /api/v1/*` with CORS headers: 204 with the grant for a listed origin asking
    /// for an allowed method and headers (the grant itself is added with every answer).
    fn preflight(&self) -> Result<HttpResponse, ApiError> {
        let extra = self
            .context
            .cors
            .preflight(self.head)
            .map_err(ApiError::CrossOrigin)?;
        let mut response = HttpResponse {
            status: 204,
            headers: vec![("x-request-id".to_owned(), self.id.to_owned())],
            body: Vec::new(),
        };
        response.headers.extend(extra);
        Ok(response)
    }

    /// `GET /healthz`: the worker is up, its model loads, and D1, the KPI object and the
    /// queue answer; 503 when any of them does not.
    async fn health(&self) -> Result<HttpResponse, ApiError> {
        let model_version = Model::embedded()?.version().clone();
        let checks: Vec<HealthCheck> = self
            .backend
            .probe()
            .await
            .into_iter()
            .map(|(name, result)| HealthCheck {
                name: name.to_owned(),
                ok: result.is_ok(),
                error: result.err().map(|error| error.to_string()),
            })
            .collect();
        let healthy = checks.iter().all(|check| check.ok);
        let answer = Health {
            status: if healthy { "ok" } else { "degraded" }.to_owned(),
            service: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            model_version,
            checks,
        };
        Ok(HttpResponse::json(
            if healthy { 200 } else { 503 },
            &answer,
            self.id,
        ))
    }

    /// `GET /api/v1/decisions?from&to&branch&band&decision&channel&limit&cursor` (officers).
    async fn decisions(&self) -> Result<HttpResponse, ApiError> {
        let query = DecisionQuery::parse(&self.head.query).map_err(ApiError::Query)?;
        let page = self.backend.list_decisions(&query).await?;
        Ok(HttpResponse::json(200, &page, self.id))
    }

    /// `GET /api/v1/decisions/{request_id}` (officers).
    async fn decision(&self, request_id: &str) -> Result<HttpResponse, ApiError> {
        match self.backend.get_decision(request_id).await? {
            Some(record) => Ok(HttpResponse::json(200, &record, self.id)),
            None => Err(ApiError::NotFound),
        }
    }

    /// `GET /api/v1/dead-letters?status=open|replayed&limit&before` (officers).
    async fn dead_letters(&self) -> Result<HttpResponse, ApiError> {
        let mut status = None;
        let mut limit = 50;
        let mut before = None;
        let mut errors = Vec::new();
        for (key, value) in parse_query(&self.head.query) {
            match (key.as_str(), value.as_str()) {
                ("status", "open" | "replayed") => status = Some(value.clone()),
                ("limit", _) if value.parse::<usize>().is_ok_and(|n| (1..=500).contains(&n)) => {
                    limit = value.parse().unwrap_or(50);
                }
                ("before", _) if value.parse::<i64>().is_ok_and(|n| n > 0) => {
                    before = value.parse().ok();
                }
                (name @ ("status" | "limit" | "before"), _) => {
                    errors.push(query_error(name, ErrorCode::Format))
                }
                (name, _) => errors.push(query_error(name, ErrorCode::UnknownField)),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Query(errors));
        }
        let letters = self
            .backend
            .list_dead_letters(status.as_deref(), limit, before)
            .await?;
        let next_before = (letters.len() == limit)
            .then(|| letters.last().map(|l| l.id))
            .flatten();
        Ok(HttpResponse::json(
            200,
            &DeadLetterPage {
                dead_letters: letters,
                next_before,
            },
            self.id,
        ))
    }

    /// `POST /api/v1/dead-letters/{id}/replay` (officers): processes the event again, with a
    /// corrected application when the body carries one. Success stores the decision (once,
    /// by event id) and marks the letter replayed; failure keeps it open and says why.
    async fn replay(
        &self,
        id: i64,
        body: &[u8],
        timer: &mut StageTimer<'_>,
    ) -> Result<HttpResponse, ApiError> {
        let request: ReplayRequest = if body.iter().all(u8::is_ascii_whitespace) {
            ReplayRequest::default()
        } else {
            require_json(self.head)?;
            serde_json::from_slice(body).map_err(|error| RequestError::Malformed {
                detail: format!("replay body: {error}"),
            })?
        };
        let letter = self
            .backend
            .get_dead_letter(id)
            .await?
            .ok_or(ApiError::NotFound)?;
        // Replaying twice is harmless: the second answer is the decision the first stored.
        if letter.status == "replayed" {
            if let Some(record) = self.backend.get_decision(&letter.event_id).await? {
                return Ok(HttpResponse::json(
                    200,
                    &ReplayResponse {
                        dead_letter_id: id,
                        status: "replayed".to_owned(),
                        replayed: true,
                        decision: record,
                    },
                    self.id,
                ));
            }
        }
        let mut event = letter.payload.clone();
        if let Some(application) = request.application {
            event.application = application.to_string();
        }
        let application = match valle_shared::parse_application(event.application.as_bytes()) {
            Ok(application) => application,
            Err(error) => {
                self.backend
                    .put_dead_letter(&crate::store::NewDeadLetter {
                        payload: event,
                        error_code: error.code().to_owned(),
                        error_message: error.to_string(),
                        attempts: 1,
                        failed_at_ms: self.now(),
                    })
                    .await?;
                return Err(error.into());
            }
        };
        timer.lap("validate");
        let incoming = Incoming::from_event(&event, application);
        let decided = decide(
            self.backend,
            Model::embedded()?,
            incoming,
            timer.stages_so_far(),
            &|| timer.elapsed(),
        )
        .await
        .map_err(pipeline_error)?;
        self.backend.mark_replayed(id, self.now()).await?;
        Ok(HttpResponse::json(
            200,
            &ReplayResponse {
                dead_letter_id: id,
                status: "replayed".to_owned(),
                replayed: decided.replayed,
                decision: decided.record,
            },
            self.id,
        ))
    }

    /// `GET /api/v1/kpis?window=5m|1h|24h&branch=...` (officers): from the isolate's cache
    /// when fresh; stale answers are marked and refreshed after the response.
    async fn kpis(&self, refresh: &mut Option<Refresh>) -> Result<HttpResponse, ApiError> {
        let mut window = View::FiveMinutes;
        let mut branch = None;
        let mut errors = Vec::new();
        for (key, value) in parse_query(&self.head.query) {
            match key.as_str() {
                "window" => match View::parse(&value) {
                    Some(view) => window = view,
                    None => errors.push(query_error("window", ErrorCode::Enum)),
                },
                "branch" if valle_shared::events::is_branch(&value) => branch = Some(value),
                "branch" => errors.push(query_error("branch", ErrorCode::Format)),
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
                *refresh = Some(Refresh {
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

    /// `GET /api/v1/kpis/windows?limit&before` (officers): closed count windows, newest first.
    async fn kpi_windows(&self) -> Result<HttpResponse, ApiError> {
        let mut limit = 50;
        let mut before = None;
        let mut errors = Vec::new();
        for (key, value) in parse_query(&self.head.query) {
            match key.as_str() {
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=1000).contains(&n) => limit = n,
                    _ => errors.push(query_error("limit", ErrorCode::Range)),
                },
                "before" => match value.parse::<u64>() {
                    Ok(n) => before = Some(n),
                    Err(_) => errors.push(query_error("before", ErrorCode::Format)),
                },
                other => errors.push(query_error(other, ErrorCode::UnknownField)),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Query(errors));
        }
        let windows = self.backend.list_count_windows(limit, before).await?;
        Ok(HttpResponse::json(
            200,
            &CountWindowList { windows },
            self.id,
        ))
    }

    /// `GET /api/v1/drift?branch=...` (officers): PSI per monitored field for each 1-hour
    /// event-time window of the last 24 h and for their merge.
    async fn drift(&self) -> Result<HttpResponse, ApiError> {
        let mut branch = None;
        let mut errors = Vec::new();
        for (key, value) in parse_query(&self.head.query) {
            match key.as_str() {
                "branch" if valle_shared::events::is_branch(&value) => branch = Some(value),
                "branch" => errors.push(query_error("branch", ErrorCode::Format)),
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

    /// `GET /metrics` (officers): Prometheus text exposition.
    async fn metrics(&self) -> Result<HttpResponse, ApiError> {
        let snapshot = self.backend.snapshot().await?;
        let dead_letters = self.backend.count_open_dead_letters().await.ok();
        let hit_rate = self.context.kpi_cache.borrow().hit_rate();
        let inbox = self.backend.inbox_state().await.ok();
        let extra = metrics_extra(
            dead_letters,
            inbox,
            self.now(),
            hit_rate,
            &Model::embedded()?.version().sha256,
            snapshot.memory_bytes,
        );
        let text = render(
            &snapshot.core,
            &snapshot.recent,
            snapshot.drift.as_ref(),
            &extra,
        );
        let mut response = HttpResponse::json(200, &(), self.id);
        response.body = text.into_bytes();
        response.headers.retain(|(name, _)| name != "content-type");
        Ok(response.with_header("content-type", "text/plain; version=0.0.4; charset=utf-8"))
    }
}

/// The cache key of a KPI view: the same filters always give the same key.
pub fn kpi_cache_key(window: View, branch: Option<&str>) -> String {
    format!(
        "kpis|window={}|branch={}",
        window.as_str(),
        branch.unwrap_or("*")
    )
}

fn cache_stats(cache: &KpiCache) -> CacheStats {
    let cache = cache.borrow();
    CacheStats {
        hits: cache.hits,
        stale_hits: cache.stale_hits,
        misses: cache.misses,
        hit_rate: cache.hit_rate(),
    }
}

/// Recomputes a stale KPI view into the cache; the edge runs it after answering.
pub async fn refresh_view<B: Backend>(
    refresh: &Refresh,
    backend: &B,
    cache: &KpiCache,
    now_ms: i64,
) {
    match compute_kpis(backend, refresh.window, refresh.branch.as_deref(), now_ms).await {
        Ok(entry) => {
            let (fresh_ms, stale_ms) = refresh.window.cache_ttl_ms();
            cache
                .borrow_mut()
                .put(&refresh.cache_key, entry, now_ms, fresh_ms, stale_ms);
        }
        Err(error) => log(&format!("kpi refresh failed: {error}")),
    }
}

fn query_error(name: &str, code: ErrorCode) -> FieldError {
    FieldError {
        field: name.chars().take(64).collect(),
        code,
        rule: None,
        message: match code {
            ErrorCode::UnknownField => Message::new("Parámetro desconocido.", "Unknown parameter."),
            _ => Message::new(
                "Valor no válido para este parámetro.",
                "Invalid value for this parameter.",
            ),
        },
    }
}

fn pipeline_error(error: crate::pipeline::PipelineError) -> ApiError {
    match error {
        crate::pipeline::PipelineError::Model(error) => ApiError::Model(error),
        crate::pipeline::PipelineError::Store(error) => ApiError::Store(error),
    }
}

/// Operational log lines (no applicant data); `console.log` at the edge, stderr on the host.
pub fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    worker_log(line);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
}

#[cfg(target_arch = "wasm32")]
fn worker_log(line: &str) {
    web_log(line);
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn web_log(line: &str);
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

    fn lap(&mut self, name: &str) {
        let now = self.clock.now_ms();
        self.stages.push(StageTiming {
            name: name.to_owned(),
            ms: now - self.last_ms,
        });
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
        stages.push(StageTiming {
            name: "total".to_owned(),
            ms: self.last_ms - self.started_ms,
        });
        stages
    }

    fn finish(mut self) -> String {
        self.lap("respond");
        self.stages()
            .iter()
            .map(|stage| format!("{};dur={:.3}", stage.name, stage.ms))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
