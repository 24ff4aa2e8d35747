//! The Cloudflare Workers entry points and the platform side of the storage traits, one
//! file per binding or object. Each piece only converts between platform values and the
//! plain types the rest of the crate works with.

mod access;
mod backend;
mod d1;
mod kpi_object;
mod loan_book;
mod officers;
mod queues;
mod rate_limit;
mod retention;
mod sql_kv;
mod sweeper;
mod webhooks;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use valle_shared::contract::ops::SwrCache;
use valle_shared::monitoring::kpi::KpiConfig;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{
    event, Context as WorkerContext, Delay, Env, Headers, MessageBatch, MessageExt, Request,
    Response, Result, ScheduleContext, ScheduledEvent,
};

pub use backend::EdgeBackend;

use crate::background::{self, AfterAnswer, Pacer, Task};
use crate::bindings::{self, vars};
use crate::body::{read_limited, BodyError};
use crate::cors::CorsPolicy;
use crate::http::{HttpResponse, RequestHead};
use crate::observability::log;
use crate::pipeline::{consume_dead_letters, consume_events, Delivery, Scorers};
use crate::routes::{export_chunk, prepare, Clock, Context, ExportStream, KpiCache};
use valle_shared::lending::access::AccessConfig;
use valle_shared::monitoring::series::parse_monitored_branches;
use valle_shared::privacy::retention::RetentionPolicy;
use valle_shared::records::receipt::{ReceiptKey, LOCAL_DEVELOPMENT_KEY};
use valle_shared::webhooks::Reach;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = randomUUID)]
    fn random_uuid() -> String;
}

struct DateClock;

impl Clock for DateClock {
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

thread_local! {
    /// KPI views cached by this isolate for all its requests.
    static KPI_CACHE: Rc<KpiCache> = Rc::new(RefCell::new(SwrCache::new(64)));
    /// Background work this isolate batches across its requests.
    static PACER: Rc<Pacer> = Rc::new(Pacer::new(random_uuid()));
    /// The allowed origins, read once per isolate (vars do not change under it).
    static CORS: std::cell::OnceCell<Rc<CorsPolicy>> = const { std::cell::OnceCell::new() };
    /// `MONITORED_BRANCHES`, read once per isolate.
    static BRANCHES: std::cell::OnceCell<Rc<Vec<String>>> = const { std::cell::OnceCell::new() };
    /// The receipt key, read once per isolate (secrets do not change under it).
    static RECEIPTS: std::cell::OnceCell<Rc<Option<ReceiptKey>>> = const { std::cell::OnceCell::new() };
}

/// Whether this is the local environment (`ENVIRONMENT = "local"`, `wrangler dev`).
pub(crate) fn is_local(env: &Env) -> bool {
    var_text(env, vars::ENVIRONMENT) == vars::LOCAL
}

/// Where webhooks may go: loopback too in the local environment, public hosts elsewhere.
pub(crate) fn webhook_reach(env: &Env) -> Reach {
    if is_local(env) {
        Reach::Local
    } else {
        Reach::Public
    }
}

/// The `RECEIPT_KEY` secret; in the local environment without one, the public development
/// key. A key that is too short is logged and not used.
fn receipt_key(env: &Env) -> Option<ReceiptKey> {
    let secret = env
        .secret(vars::RECEIPT_KEY)
        .map(|secret| secret.to_string())
        .ok();
    let key = match secret {
        Some(secret) => ReceiptKey::new(secret.as_bytes()),
        None if is_local(env) => ReceiptKey::new(LOCAL_DEVELOPMENT_KEY),
        None => return None,
    };
    key.inspect_err(|error| log(&format!("RECEIPT_KEY: {error}")))
        .ok()
}

/// `ALLOWED_ORIGINS`: other sites that may call the API; entries that are not exactly an
/// origin are logged and ignored.
fn cors_policy(env: &Env) -> CorsPolicy {
    let list = env
        .var(vars::ALLOWED_ORIGINS)
        .map(|var| var.to_string())
        .unwrap_or_default();
    let (policy, skipped) = CorsPolicy::parse(&list);
    if !skipped.is_empty() {
        log(&format!(
            "ALLOWED_ORIGINS: not origins, ignored: {skipped:?}"
        ));
    }
    policy
}

fn var_text(env: &Env, name: &str) -> String {
    env.var(name).map(|var| var.to_string()).unwrap_or_default()
}

/// Whether the shadow challenger is on (`SHADOW_MODEL = "on"`).
pub(crate) fn shadow_on(env: &Env) -> bool {
    var_text(env, vars::SHADOW_MODEL) == "on"
}

/// The models a decision runs, as the vars say.
pub(crate) fn scorers(env: &Env) -> Result<Scorers<'static>> {
    Scorers::embedded(shadow_on(env)).map_err(|error| worker::Error::RustError(error.to_string()))
}

/// Cloudflare Access sign-in, when all three vars are set.
fn access_config(env: &Env) -> Option<AccessConfig> {
    AccessConfig::from_vars(
        &var_text(env, vars::ACCESS_ISSUER),
        &var_text(env, vars::ACCESS_AUD),
        &var_text(env, vars::ACCESS_JWKS_URL),
    )
}

fn var_f64(env: &Env, name: &str) -> Option<f64> {
    env.var(name)
        .ok()
        .and_then(|var| var.to_string().trim().parse().ok())
}

fn kpi_config(env: &Env) -> KpiConfig {
    let defaults = KpiConfig::default();
    KpiConfig {
        count_window: var_f64(env, vars::KPI_COUNT_WINDOW)
            .map_or(defaults.count_window, |n| n as u32),
        out_of_orderness_ms: var_f64(env, vars::KPI_OUT_OF_ORDERNESS_MS)
            .map_or(defaults.out_of_orderness_ms, |n| n as i64),
        allowed_lateness_ms: var_f64(env, vars::KPI_ALLOWED_LATENESS_MS)
            .map_or(defaults.allowed_lateness_ms, |n| n as i64),
        thresholds: defaults.thresholds,
        drift_min_decisions: var_f64(env, vars::KPI_DRIFT_MIN_DECISIONS)
            .map_or(defaults.drift_min_decisions, |n| n as u64),
    }
}

/// Runs what an answer left to do after it has gone out, paced across the isolate's
/// requests.
fn after_answer(context: &WorkerContext, env: &Env, work: AfterAnswer) {
    let pacer = PACER.with(Rc::clone);
    for task in pacer.plan(work, now_ms()) {
        let (env, pacer, cache) = (env.clone(), Rc::clone(&pacer), KPI_CACHE.with(Rc::clone));
        context.wait_until(async move {
            if let Task::FlushRefusals { after_ms } = task {
                Delay::from(Duration::from_millis(after_ms)).await;
            }
            let backend = EdgeBackend::new(env);
            background::run(task, &backend, &pacer, &cache, now_ms()).await;
        });
    }
}

extern "C" {
    /// The constructor list wasm-ld builds from the inputs' link-time constructors.
    fn __wasm_call_ctors();
}

/// Runs tract's link-time constructors (its `inventory` registrations) once, when the
/// module starts. While no exported function calls them, wasm-ld calls them at the top of
/// every export, so every call from JavaScript into the worker ran them all again: a fifth
/// of the worker's CPU under load.
#[event(start)]
fn start() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    #[allow(unsafe_code)]
    // SAFETY: the list runs once per instance, before any other Rust code, as the
    // constructors expect; nothing else calls it.
    ONCE.call_once(|| unsafe { __wasm_call_ctors() });
}

/// Every API route; the page's assets never reach here.
#[event(fetch)]
async fn fetch(mut request: Request, env: Env, context: WorkerContext) -> Result<Response> {
    let url = request.url()?;
    let head = RequestHead {
        method: request.inner().method(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or_default().to_owned(),
        headers: request.headers().entries().collect(),
    };
    let access = access_config(&env);
    let cache = KPI_CACHE.with(Rc::clone);
    let cors = CORS.with(|cors| Rc::clone(cors.get_or_init(|| Rc::new(cors_policy(&env)))));
    let branches = BRANCHES.with(|branches| {
        Rc::clone(branches.get_or_init(|| {
            Rc::new(parse_monitored_branches(&var_text(
                &env,
                vars::MONITORED_BRANCHES,
            )))
        }))
    });
    let receipts = RECEIPTS.with(|key| Rc::clone(key.get_or_init(|| Rc::new(receipt_key(&env)))));
    let routing = Context {
        receipts: receipts.as_ref().as_ref(),
        webhook_reach: webhook_reach(&env),
        clock: &DateClock,
        new_request_id: &random_uuid,
        access: access.as_ref(),
        kpi_cache: &cache,
        cors: &cors,
        monitored_branches: &branches,
        shadow: shadow_on(&env),
    };
    let prepared = prepare(&head, &routing);
    let body = match prepared.body_limit() {
        Some(limit) => read_body(&mut request, limit).await,
        None => Ok(Vec::new()),
    };
    let backend = EdgeBackend::new(env.clone());
    let (answer, work) = prepared.finish(body, &routing, &backend).await;
    after_answer(&context, &env, work);
    into_platform(answer, backend)
}

/// The request's body, read a chunk at a time and never past `limit`; none is empty.
async fn read_body(request: &mut Request, limit: usize) -> std::result::Result<Vec<u8>, BodyError> {
    if request.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let chunks = request
        .stream()
        .map_err(|error| BodyError::Unreadable(error.to_string()))?;
    read_limited(chunks, limit).await
}

fn into_platform(answer: HttpResponse, backend: EdgeBackend) -> Result<Response> {
    let headers = Headers::new();
    for (name, value) in &answer.headers {
        headers.append(name, value)?;
    }
    // A 204 must have a null body, not an empty one.
    let response = match answer.stream {
        _ if answer.status == 204 => Response::empty()?,
        Some(stream) => Response::from_stream(export_stream(answer.body, stream, backend))?,
        None => Response::from_bytes(answer.body)?,
    };
    Ok(response.with_status(answer.status).with_headers(headers))
}

/// The body's first bytes, then a page of rows at a time until the export has no more. A
/// storage failure ends the stream with an error, so the client sees a broken download
/// rather than a short file.
fn export_stream(
    first: Vec<u8>,
    stream: ExportStream,
    backend: EdgeBackend,
) -> impl futures_util::Stream<Item = Result<Vec<u8>>> {
    enum Next {
        First(Vec<u8>),
        After(u64),
        Done,
    }
    let state = (Next::First(first), stream, backend);
    futures_util::stream::unfold(state, |(next, stream, backend)| async move {
        match next {
            Next::Done => None,
            Next::First(bytes) => Some((Ok(bytes), (Next::After(0), stream, backend))),
            Next::After(after) => match export_chunk(&backend, &stream.query, after).await {
                Ok(Some((bytes, last))) => Some((Ok(bytes), (Next::After(last), stream, backend))),
                Ok(None) => None,
                Err(error) => {
                    log(&format!("export: {error}"));
                    Some((
                        Err(worker::Error::RustError(error.to_string())),
                        (Next::Done, stream, backend),
                    ))
                }
            },
        }
    })
}

/// The hourly retention job (`[triggers] crons`, [`bindings::RETENTION_CRON`]). It is
/// idempotent and goes on where the last run stopped, so a failed run is made good by the
/// next; the failure is logged with the step's error and `/api/v1/retention/run` runs it on
/// demand.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _context: ScheduleContext) {
    let backend = EdgeBackend::new(env);
    let now = event.schedule() as i64;
    let outcome = match RetentionPolicy::committed() {
        Ok(policy) => crate::retention::run(
            &backend,
            policy,
            crate::retention::Run {
                now_ms: now,
                branch: None,
            },
        )
        .await
        .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_owned()),
    };
    match outcome {
        Ok(run) => log(&format!(
            "retention: blocked {}, postponed {}, destroyed {}, deleted {}, complete {}",
            run.blocked, run.postponed, run.destroyed, run.deleted, run.complete
        )),
        Err(error) => log(&format!("retention: the run failed: {error}")),
    }
}

/// The consumer of the three queues (webhooks: [`webhooks::consume`]): a batch of events becomes decisions and dead letters in one
/// write; a batch of dead letters is stored in one write. A message is acknowledged only
/// after its outcome is stored or it is queued again; anything else makes the platform
/// redeliver it, and after its retries it lands in the dead-letter queue.
#[event(queue)]
async fn queue(
    batch: MessageBatch<serde_json::Value>,
    env: Env,
    context: WorkerContext,
) -> Result<()> {
    let backend = EdgeBackend::new(env.clone());
    let messages = batch.messages()?;
    if batch.queue() == bindings::WEBHOOKS_QUEUE {
        webhooks::consume(&backend, &messages).await;
        return Ok(());
    }
    let deliveries: Vec<Delivery> = messages
        .iter()
        .map(|message| Delivery {
            body: message.body().clone(),
            sent_at_ms: message.timestamp().as_millis() as i64,
        })
        .collect();
    let outcomes = if batch.queue() == bindings::DEAD_LETTER_QUEUE {
        consume_dead_letters(&backend, &deliveries, now_ms()).await
    } else {
        consume_events(&backend, scorers(&env)?, &deliveries, &|| {
            js_sys::Date::now()
        })
        .await
    };
    let mut stored = false;
    for (message, outcome) in messages.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                stored = true;
                message.ack();
            }
            Err(error) => {
                log(&format!(
                    "queue {}: message {} retried: {error}",
                    batch.queue(),
                    message.id()
                ));
                message.retry();
            }
        }
    }
    after_answer(
        &context,
        &env,
        AfterAnswer {
            stored,
            ..AfterAnswer::default()
        },
    );
    Ok(())
}
