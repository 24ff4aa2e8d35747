//! Routing and handlers. Each handler parses, calls `valle_shared`, and answers: no business
//! rule lives here. The edge glue calls [`prepare`] on the request head, reads the body only
//! when [`Prepared::needs_body`] says so, then calls [`Prepared::finish`].

use valle_shared::api::{
    is_valid_request_id, BatchItem, BatchResponse, Health, ScoreResponse, StageTiming, HEALTH_PATH,
    REQUEST_ID_HEADER, SCORE_BATCH_PATH, SCORE_PATH,
};
use valle_shared::batch::{parse_batch, MAX_BATCH_BYTES};
use valle_shared::validation::{parse_body, validate, RequestError, MAX_BODY_BYTES};
use valle_shared::Model;

use crate::error::ApiError;
use crate::http::{HttpResponse, RequestHead};

/// Milliseconds from an arbitrary origin; the edge uses `Date.now()`, tests a fake.
pub trait Clock {
    fn now_ms(&self) -> f64;
}

/// What a request may use from its environment.
pub struct Context<'a> {
    pub clock: &'a dyn Clock,
    /// A fresh unique id (a UUID at the edge), used when the caller sent none.
    pub new_request_id: &'a dyn Fn() -> String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Score,
    ScoreBatch,
    Health,
}

const SCORE_METHODS: &[&str] = &["POST"];
const HEALTH_METHODS: &[&str] = &["GET", "HEAD"];

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
    match head.path.as_str() {
        SCORE_PATH => {
            let route = allow(Route::Score, SCORE_METHODS)?;
            require_json(head)?;
            reject_declared_oversize(head, MAX_BODY_BYTES)?;
            Ok(route)
        }
        SCORE_BATCH_PATH => {
            let route = allow(Route::ScoreBatch, SCORE_METHODS)?;
            require_json(head)?;
            reject_declared_oversize(head, MAX_BATCH_BYTES)?;
            Ok(route)
        }
        HEALTH_PATH => allow(Route::Health, HEALTH_METHODS),
        _ => Err(ApiError::NotFound),
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

/// A routed request waiting for its body.
pub struct Prepared {
    request_id: String,
    route: Result<Route, ApiError>,
    started_ms: f64,
}

/// Resolves the request id and the route.
pub fn prepare(head: &RequestHead, context: &Context<'_>) -> Prepared {
    let started_ms = context.clock.now_ms();
    let (request_id, id_error) = match head.header(REQUEST_ID_HEADER) {
        Some(id) if is_valid_request_id(id) => (id.to_owned(), None),
        Some(_) => ((context.new_request_id)(), Some(ApiError::InvalidRequestId)),
        None => ((context.new_request_id)(), None),
    };
    let route = match id_error {
        Some(error) => Err(error),
        None => route(head),
    };
    Prepared {
        request_id,
        route,
        started_ms,
    }
}

impl Prepared {
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    pub fn needs_body(&self) -> bool {
        matches!(self.route, Ok(Route::Score | Route::ScoreBatch))
    }

    /// Runs the handler with the body (empty unless [`Self::needs_body`]) and answers.
    pub fn finish(self, body: Result<Vec<u8>, String>, context: &Context<'_>) -> HttpResponse {
        let mut timer = StageTimer::new(context.clock, self.started_ms);
        timer.lap("read");
        let result = match (self.route, body) {
            (Err(error), _) => Err(error),
            (Ok(_), Err(read_error)) => Err(ApiError::Internal(format!(
                "reading the body failed: {read_error}"
            ))),
            (Ok(Route::Score), Ok(body)) => score(&self.request_id, &body, &mut timer),
            (Ok(Route::ScoreBatch), Ok(body)) => score_batch(&self.request_id, &body, &mut timer),
            (Ok(Route::Health), Ok(_)) => health(&self.request_id),
        };
        let response = result.unwrap_or_else(|error| error.into_response(&self.request_id));
        response.with_header("server-timing", timer.finish())
    }
}

/// `POST /api/v1/score`: validates the application with the shared rules and scores it with
/// the shared model, the same bytes the page runs.
fn score(
    request_id: &str,
    body: &[u8],
    timer: &mut StageTimer<'_>,
) -> Result<HttpResponse, ApiError> {
    let entries = parse_body(body)?;
    timer.lap("parse");
    let application = validate(&entries).map_err(RequestError::Invalid)?;
    timer.lap("validate");
    let score = Model::embedded()?.score(&application)?;
    timer.lap("score");
    let answer = ScoreResponse {
        request_id: request_id.to_owned(),
        application,
        score,
        timing: timer.stages(),
    };
    Ok(HttpResponse::json(200, &answer, request_id))
}

/// `POST /api/v1/score/batch`: up to 1,000 applications, each validated and scored on its
/// own; an invalid item gets the errors it would get alone and does not fail the batch.
fn score_batch(
    request_id: &str,
    body: &[u8],
    timer: &mut StageTimer<'_>,
) -> Result<HttpResponse, ApiError> {
    let items = parse_batch(body)?;
    timer.lap("validate");
    let model = Model::embedded()?;
    let results = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let scored = item
                .map_err(ApiError::from)
                .and_then(|application| model.score(&application).map_err(ApiError::from));
            match scored {
                Ok(score) => BatchItem {
                    index,
                    score: Some(score),
                    error: None,
                },
                Err(error) => BatchItem {
                    index,
                    score: None,
                    error: Some(error.body(None)),
                },
            }
        })
        .collect::<Vec<_>>();
    timer.lap("score");
    let accepted = results.iter().filter(|item| item.score.is_some()).count();
    let answer = BatchResponse {
        request_id: request_id.to_owned(),
        model_version: model.version().clone(),
        accepted,
        rejected: results.len() - accepted,
        results,
        timing: timer.stages(),
    };
    Ok(HttpResponse::json(200, &answer, request_id))
}

/// `GET /healthz`: the worker is up, which build it runs, and that its model loads.
fn health(request_id: &str) -> Result<HttpResponse, ApiError> {
    let answer = Health {
        status: "ok".to_owned(),
        service: env!("CARGO_PKG_NAME").to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        model_version: Model::embedded()?.version().clone(),
    };
    Ok(HttpResponse::json(200, &answer, request_id))
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
