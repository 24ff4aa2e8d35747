//! The Cloudflare Workers entry points and the platform side of the storage traits: D1, the
//! KPI and rate-limit Durable Objects, and the events queue with its dead-letter queue. Each
//! piece only converts between platform values and the plain types the rest of the crate
//! works with.

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use valle_shared::decisions::{Cursor, DecisionPage, DecisionQuery, DecisionRecord};
use valle_shared::drift::DriftReport;
use valle_shared::events::QueuedEvent;
use valle_shared::kpi::{CountWindow, KpiConfig, KpiView, Observation, View};
use valle_shared::ops::{RateLimit, SwrCache, TokenBucket};
use valle_shared::Model;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::{
    durable_object, event, BatchMessageBuilder, Context as WorkerContext, D1Database,
    DurableObject, Env, Headers, MessageBatch, MessageBuilder, MessageExt, Method, Request,
    RequestInit, Response, Result, SqlStorageValue, State,
};

use crate::cors::CorsPolicy;
use crate::http::{HttpResponse, RequestHead};
use crate::kpi_object::{KpiCommand, KpiService, KvStore, Pending, OUTBOX_FLUSH_BATCH};
use crate::pipeline::{consume_dead_letters, consume_events, sweep_inbox, Delivery};
use crate::routes::{log, prepare, refresh_view, Clock, Context, KpiCache};
use crate::sql::{self, SqlValue, Statement};
use crate::store::{
    DeadLetter, DeadLetterStore, DecisionStore, EventInbox, EventQueue, HealthProbe, InboxState,
    Inserted, KpiSink, KpiSnapshot, NewDeadLetter, RateLimiter, Recorded, StoreError,
};

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
    /// The allowed origins, read once per isolate (vars do not change under it).
    static CORS: std::cell::OnceCell<Rc<CorsPolicy>> = const { std::cell::OnceCell::new() };
}

/// `ALLOWED_ORIGINS`: other sites that may call the API; entries that are not exactly an
/// origin are logged and ignored.
fn cors_policy(env: &Env) -> CorsPolicy {
    let list = env
        .var("ALLOWED_ORIGINS")
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

/// The secret officers present; `wrangler secret put VALLE_OFFICER_TOKEN` in production,
/// `.dev.vars` locally.
fn officer_token(env: &Env) -> Option<String> {
    env.secret("VALLE_OFFICER_TOKEN")
        .map(|secret| secret.to_string())
        .or_else(|_| env.var("VALLE_OFFICER_TOKEN").map(|var| var.to_string()))
        .ok()
        .filter(|token| !token.is_empty())
}

fn var_f64(env: &Env, name: &str) -> Option<f64> {
    env.var(name)
        .ok()
        .and_then(|var| var.to_string().trim().parse().ok())
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
    let token = officer_token(&env);
    let cache = KPI_CACHE.with(Rc::clone);
    let cors = CORS.with(|cors| Rc::clone(cors.get_or_init(|| Rc::new(cors_policy(&env)))));
    let routing = Context {
        clock: &DateClock,
        new_request_id: &random_uuid,
        officer_token: token.as_deref(),
        kpi_cache: &cache,
        cors: &cors,
    };
    let prepared = prepare(&head, &routing);
    let body = if prepared.needs_body() {
        request.bytes().await.map_err(|error| error.to_string())
    } else {
        Ok(Vec::new())
    };
    let backend = EdgeBackend::new(env.clone());
    let (answer, refresh) = prepared.finish(body, &routing, &backend).await;
    if let Some(refresh) = refresh {
        let cache = Rc::clone(&cache);
        context.wait_until(async move {
            let backend = EdgeBackend::new(env);
            refresh_view(&refresh, &backend, &cache, now_ms()).await;
        });
    }
    into_platform(answer)
}

fn into_platform(answer: HttpResponse) -> Result<Response> {
    let headers = Headers::new();
    for (name, value) in &answer.headers {
        headers.append(name, value)?;
    }
    // A 204 must have a null body, not an empty one.
    let response = if answer.status == 204 {
        Response::empty()?
    } else {
        Response::from_bytes(answer.body)?
    };
    Ok(response.with_status(answer.status).with_headers(headers))
}

const DEAD_LETTER_QUEUE: &str = "valle-events-dlq";

/// The consumer of both queues: events become decisions or dead letters; dead letters are
/// stored. A message is acknowledged only after its outcome is stored; anything else makes
/// the platform redeliver it, and after its retries it lands in the dead-letter queue.
#[event(queue)]
async fn queue(
    batch: MessageBatch<serde_json::Value>,
    env: Env,
    _context: WorkerContext,
) -> Result<()> {
    let backend = EdgeBackend::new(env);
    let messages = batch.messages()?;
    let deliveries: Vec<Delivery> = messages
        .iter()
        .map(|message| Delivery {
            body: message.body().clone(),
            sent_at_ms: message.timestamp().as_millis() as i64,
        })
        .collect();
    let outcomes = if batch.queue() == DEAD_LETTER_QUEUE {
        consume_dead_letters(&backend, &deliveries, now_ms()).await
    } else {
        let model =
            Model::embedded().map_err(|error| worker::Error::RustError(error.to_string()))?;
        consume_events(&backend, model, &deliveries, &|| js_sys::Date::now()).await
    };
    for (message, outcome) in messages.iter().zip(outcomes) {
        match outcome {
            Ok(()) => message.ack(),
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
    Ok(())
}

/// The platform bindings behind the storage traits.
pub struct EdgeBackend {
    env: Env,
}

fn d1_error(error: worker::Error) -> StoreError {
    StoreError::new("d1", error)
}

fn js_value(value: &SqlValue) -> JsValue {
    match value {
        SqlValue::Null => JsValue::NULL,
        SqlValue::Integer(n) => JsValue::from_f64(*n as f64),
        SqlValue::Real(x) => JsValue::from_f64(*x),
        SqlValue::Text(text) => JsValue::from_str(text),
    }
}

impl EdgeBackend {
    pub fn new(env: Env) -> EdgeBackend {
        EdgeBackend { env }
    }

    fn db(&self) -> std::result::Result<D1Database, StoreError> {
        self.env.d1("DB").map_err(d1_error)
    }

    fn prepare(
        db: &D1Database,
        statement: &Statement,
    ) -> std::result::Result<worker::D1PreparedStatement, StoreError> {
        let params: Vec<JsValue> = statement.params.iter().map(js_value).collect();
        db.prepare(&statement.sql).bind(&params).map_err(d1_error)
    }

    async fn rows<T: DeserializeOwned>(
        &self,
        statement: &Statement,
    ) -> std::result::Result<Vec<T>, StoreError> {
        let db = self.db()?;
        let result = Self::prepare(&db, statement)?
            .all()
            .await
            .map_err(d1_error)?;
        if let Some(error) = result.error() {
            return Err(StoreError::new("d1", error));
        }
        result.results::<T>().map_err(d1_error)
    }

    async fn object(
        &self,
        binding: &str,
        name: &str,
        body: &impl Serialize,
    ) -> std::result::Result<Response, StoreError> {
        let failed = |error: worker::Error| StoreError::new("durable_object", error);
        let stub = self
            .env
            .durable_object(binding)
            .and_then(|namespace| namespace.id_from_name(name)?.get_stub())
            .map_err(failed)?;
        let body = serde_json::to_string(body)
            .map_err(|error| StoreError::new("durable_object", error))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let request = Request::new_with_init("https://valle.internal/", &init).map_err(failed)?;
        let response = stub.fetch_with_request(request).await.map_err(failed)?;
        if response.status_code() == 200 {
            Ok(response)
        } else {
            Err(StoreError::new(
                "durable_object",
                format!("status {}", response.status_code()),
            ))
        }
    }

    async fn kpi<T: DeserializeOwned>(
        &self,
        command: &KpiCommand,
    ) -> std::result::Result<T, StoreError> {
        let mut response = self.object("KPI", "global", command).await?;
        response
            .json()
            .await
            .map_err(|error| StoreError::new("durable_object", error))
    }
}

impl DecisionStore for EdgeBackend {
    async fn insert_decision(
        &self,
        record: &DecisionRecord,
    ) -> std::result::Result<Inserted, StoreError> {
        let db = self.db()?;
        let statements = sql::insert_decision(record)
            .iter()
            .map(|statement| Self::prepare(&db, statement))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let results = db.batch(statements).await.map_err(d1_error)?;
        let changes = results
            .first()
            .and_then(|result| result.meta().ok().flatten())
            .and_then(|meta| meta.changes)
            .unwrap_or(0);
        if changes == 1 {
            return Ok(Inserted::New);
        }
        match self.get_decision(&record.request_id).await? {
            Some(stored) => Ok(Inserted::Existing(Box::new(stored))),
            None => Err(StoreError::new(
                "d1",
                "insert changed nothing and no row exists",
            )),
        }
    }

    async fn get_decision(
        &self,
        request_id: &str,
    ) -> std::result::Result<Option<DecisionRecord>, StoreError> {
        let rows: Vec<sql::DecisionRow> = self.rows(&sql::select_decision(request_id)).await?;
        rows.into_iter()
            .next()
            .map(|row| DecisionRecord::try_from(row).map_err(|error| StoreError::new("d1", error)))
            .transpose()
    }

    async fn list_decisions(
        &self,
        query: &DecisionQuery,
    ) -> std::result::Result<DecisionPage, StoreError> {
        let rows: Vec<sql::DecisionRow> = self.rows(&sql::list_decisions(query)).await?;
        let more = rows.len() > query.limit;
        let decisions = rows
            .into_iter()
            .take(query.limit)
            .map(|row| DecisionRecord::try_from(row).map_err(|error| StoreError::new("d1", error)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let next_cursor = more.then(|| decisions.last()).flatten().map(|last| {
            Cursor {
                received_at_ms: last.received_at_ms,
                request_id: last.request_id.clone(),
            }
            .encode()
        });
        Ok(DecisionPage {
            decisions,
            next_cursor,
        })
    }

    async fn list_count_windows(
        &self,
        limit: usize,
        before_index: Option<u64>,
    ) -> std::result::Result<Vec<CountWindow>, StoreError> {
        let rows: Vec<sql::CountWindowRow> = self
            .rows(&sql::list_count_windows(limit, before_index))
            .await?;
        rows.into_iter()
            .map(|row| CountWindow::try_from(row).map_err(|error| StoreError::new("d1", error)))
            .collect()
    }
}

impl DeadLetterStore for EdgeBackend {
    async fn put_dead_letter(&self, letter: &NewDeadLetter) -> std::result::Result<(), StoreError> {
        let db = self.db()?;
        let result = Self::prepare(&db, &sql::upsert_dead_letter(letter))?
            .run()
            .await
            .map_err(d1_error)?;
        match result.error() {
            Some(error) => Err(StoreError::new("d1", error)),
            None => Ok(()),
        }
    }

    async fn get_dead_letter(
        &self,
        id: i64,
    ) -> std::result::Result<Option<DeadLetter>, StoreError> {
        let statement = Statement::new("SELECT * FROM dead_letters WHERE id = ?1", vec![id.into()]);
        let rows: Vec<sql::DeadLetterRow> = self.rows(&statement).await?;
        rows.into_iter()
            .next()
            .map(|row| DeadLetter::try_from(row).map_err(|error| StoreError::new("d1", error)))
            .transpose()
    }

    async fn list_dead_letters(
        &self,
        status: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> std::result::Result<Vec<DeadLetter>, StoreError> {
        let rows: Vec<sql::DeadLetterRow> = self
            .rows(&sql::list_dead_letters(status, limit, before_id))
            .await?;
        rows.into_iter()
            .map(|row| DeadLetter::try_from(row).map_err(|error| StoreError::new("d1", error)))
            .collect()
    }

    async fn mark_replayed(&self, id: i64, at_ms: i64) -> std::result::Result<(), StoreError> {
        let db = self.db()?;
        let statement = Statement::new(
            "UPDATE dead_letters SET status = 'replayed', replayed_at = ?2 WHERE id = ?1",
            vec![id.into(), at_ms.into()],
        );
        Self::prepare(&db, &statement)?
            .run()
            .await
            .map_err(d1_error)?;
        Ok(())
    }

    async fn count_open_dead_letters(&self) -> std::result::Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct Count {
            open: f64,
        }
        let statement = Statement::new(
            "SELECT COUNT(*) AS open FROM dead_letters WHERE status = 'open'",
            Vec::new(),
        );
        let rows: Vec<Count> = self.rows(&statement).await?;
        Ok(rows.first().map_or(0, |count| count.open as u64))
    }
}

impl KpiSink for EdgeBackend {
    async fn record(
        &self,
        observations: &[Observation],
    ) -> std::result::Result<Vec<Recorded>, StoreError> {
        self.kpi(&KpiCommand::Record {
            observations: observations.to_vec(),
        })
        .await
    }

    async fn view(
        &self,
        window: View,
        branch: Option<&str>,
    ) -> std::result::Result<KpiView, StoreError> {
        self.kpi(&KpiCommand::View {
            window,
            branch: branch.map(str::to_owned),
        })
        .await
    }

    async fn snapshot(&self) -> std::result::Result<KpiSnapshot, StoreError> {
        self.kpi(&KpiCommand::Snapshot).await
    }

    async fn drift(
        &self,
        branch: Option<&str>,
    ) -> std::result::Result<Option<DriftReport>, StoreError> {
        self.kpi(&KpiCommand::Drift {
            branch: branch.map(str::to_owned),
        })
        .await
    }
}

impl EdgeBackend {
    /// Runs the statements as one D1 batch (one transaction).
    async fn run_all(&self, statements: &[Statement]) -> std::result::Result<(), StoreError> {
        let db = self.db()?;
        let prepared = statements
            .iter()
            .map(|statement| Self::prepare(&db, statement))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for result in db.batch(prepared).await.map_err(d1_error)? {
            if let Some(error) = result.error() {
                return Err(StoreError::new("d1", error));
            }
        }
        Ok(())
    }
}

impl EventInbox for EdgeBackend {
    async fn keep(
        &self,
        events: &[QueuedEvent],
        now_ms: i64,
    ) -> std::result::Result<(), StoreError> {
        self.run_all(&sql::keep_events(events, now_ms)).await
    }

    async fn settle(
        &self,
        event_ids: &[String],
        reached_ms: Option<i64>,
        now_ms: i64,
    ) -> std::result::Result<(), StoreError> {
        let statements = sql::settle_events(event_ids, reached_ms, now_ms);
        if statements.is_empty() {
            return Ok(());
        }
        self.run_all(&statements).await
    }

    async fn take_unsettled(
        &self,
        cutoff_ms: i64,
        now_ms: i64,
        limit: usize,
    ) -> std::result::Result<Vec<QueuedEvent>, StoreError> {
        let rows: Vec<sql::KeptEventRow> = self
            .rows(&sql::take_unsettled_events(cutoff_ms, now_ms, limit))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match serde_json::from_str(&row.event) {
                Ok(event) => Some(event),
                Err(error) => {
                    log(&format!("inbox: unreadable kept event skipped: {error}"));
                    None
                }
            })
            .collect())
    }

    async fn inbox_state(&self) -> std::result::Result<InboxState, StoreError> {
        let rows: Vec<sql::InboxStateRow> = self.rows(&sql::inbox_state()).await?;
        Ok(rows
            .first()
            .map_or(InboxState::default(), |row| InboxState {
                kept: row.n as u64,
                oldest_kept_at_ms: row.oldest.map(|ms| ms as i64),
                consumer_reached_ms: row.reached.map(|ms| ms as i64),
                consumer_seen_at_ms: row.reached_at.map(|ms| ms as i64),
            }))
    }

    async fn wake_sweeper(&self) -> std::result::Result<(), StoreError> {
        self.object("SWEEPER", "inbox", &SweeperCommand::Wake)
            .await
            .map(|_| ())
    }
}

/// Queue messages stay well under the 128 KB message and 256 KB batch limits.
const QUEUE_BATCH_BYTES: usize = 200 * 1024;
const QUEUE_BATCH_MESSAGES: usize = 100;

impl EventQueue for EdgeBackend {
    async fn enqueue(&self, events: &[QueuedEvent]) -> std::result::Result<(), StoreError> {
        let queue = self
            .env
            .queue("EVENTS")
            .map_err(|error| StoreError::new("queue", error))?;
        let mut chunk: Vec<&QueuedEvent> = Vec::new();
        let mut bytes = 0;
        for event in events {
            let size = event.application.len() + 512;
            if !chunk.is_empty()
                && (bytes + size > QUEUE_BATCH_BYTES || chunk.len() == QUEUE_BATCH_MESSAGES)
            {
                let batch = BatchMessageBuilder::new()
                    .messages(std::mem::take(&mut chunk))
                    .build();
                queue
                    .send_batch(batch)
                    .await
                    .map_err(|error| StoreError::new("queue", error))?;
                bytes = 0;
            }
            chunk.push(event);
            bytes += size;
        }
        if !chunk.is_empty() {
            let batch = BatchMessageBuilder::new().messages(chunk).build();
            queue
                .send_batch(batch)
                .await
                .map_err(|error| StoreError::new("queue", error))?;
        }
        Ok(())
    }

    async fn requeue(
        &self,
        event: &QueuedEvent,
        delay_s: u32,
    ) -> std::result::Result<(), StoreError> {
        let queue = self
            .env
            .queue("EVENTS")
            .map_err(|error| StoreError::new("queue", error))?;
        let message = MessageBuilder::new(event).delay_seconds(delay_s).build();
        queue
            .send(message)
            .await
            .map_err(|error| StoreError::new("queue", error))
    }

    async fn send_dead_letter(
        &self,
        letter: &NewDeadLetter,
    ) -> std::result::Result<(), StoreError> {
        let queue = self
            .env
            .queue("DEAD_LETTERS")
            .map_err(|error| StoreError::new("queue", error))?;
        queue
            .send(letter)
            .await
            .map_err(|error| StoreError::new("queue", error))
    }
}

#[derive(Serialize, Deserialize)]
struct TakeTokens {
    cost: u32,
}

#[derive(Serialize, Deserialize)]
struct TokenAnswer {
    retry_after_s: Option<u64>,
}

impl RateLimiter for EdgeBackend {
    async fn allow(
        &self,
        client: &str,
        cost: u32,
    ) -> std::result::Result<std::result::Result<(), u64>, StoreError> {
        let mut response = self
            .object("RATE_LIMITER", client, &TakeTokens { cost })
            .await?;
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|error| StoreError::new("durable_object", error))?;
        Ok(answer.retry_after_s.map_or(Ok(()), Err))
    }
}

impl HealthProbe for EdgeBackend {
    async fn probe(&self) -> Vec<(&'static str, std::result::Result<(), StoreError>)> {
        let d1 = self
            .rows::<serde_json::Value>(&Statement::new(
                "SELECT COUNT(*) AS migrations FROM d1_migrations",
                Vec::new(),
            ))
            .await
            .map(|_| ());
        let durable_object = self.snapshot().await.map(|_| ());
        let queue = match (self.env.queue("EVENTS"), self.env.queue("DEAD_LETTERS")) {
            (Ok(_), Ok(_)) => Ok(()),
            (Err(error), _) | (_, Err(error)) => Err(StoreError::new("queue", error)),
        };
        vec![
            ("d1", d1),
            ("durable_object", durable_object),
            ("queue", queue),
        ]
    }
}

/// The object's SQLite storage as a key-value table.
struct SqlKv {
    sql: worker::SqlStorage,
}

impl SqlKv {
    fn new(state: &State) -> SqlKv {
        let sql = state.storage().sql();
        if let Err(error) = sql.exec(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            None,
        ) {
            log(&format!("kpi object: creating its table failed: {error}"));
        }
        SqlKv { sql }
    }
}

#[derive(Deserialize)]
struct KvRow {
    key: String,
    value: String,
}

impl KvStore for SqlKv {
    fn get(&self, key: &str) -> Option<String> {
        let cursor = self
            .sql
            .exec(
                "SELECT key, value FROM kv WHERE key = ?",
                vec![SqlStorageValue::from(key.to_owned())],
            )
            .ok()?;
        cursor
            .to_array::<KvRow>()
            .ok()?
            .into_iter()
            .next()
            .map(|row| row.value)
    }

    fn put(&self, key: &str, value: &str) {
        let params = vec![
            SqlStorageValue::from(key.to_owned()),
            SqlStorageValue::from(value.to_owned()),
        ];
        if let Err(error) = self.sql.exec(
            "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)",
            params,
        ) {
            log(&format!("kpi object: write failed: {error}"));
        }
    }

    fn delete(&self, key: &str) {
        if let Err(error) = self.sql.exec(
            "DELETE FROM kv WHERE key = ?",
            vec![SqlStorageValue::from(key.to_owned())],
        ) {
            log(&format!("kpi object: delete failed: {error}"));
        }
    }

    fn scan(&self, prefix: &str, limit: usize) -> Vec<(String, String)> {
        // Keys are ASCII; every key with the prefix sorts below prefix + U+FFFF. SQLite
        // reads a negative limit as none.
        let upper = format!("{prefix}\u{ffff}");
        let params = vec![
            SqlStorageValue::from(prefix.to_owned()),
            SqlStorageValue::from(upper),
            SqlStorageValue::from(i64::try_from(limit).unwrap_or(-1)),
        ];
        self.sql
            .exec(
                "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
                params,
            )
            .and_then(|cursor| cursor.to_array::<KvRow>())
            .map(|rows| rows.into_iter().map(|row| (row.key, row.value)).collect())
            .unwrap_or_default()
    }
}

fn kpi_config(env: &Env) -> KpiConfig {
    let defaults = KpiConfig::default();
    KpiConfig {
        count_window: var_f64(env, "KPI_COUNT_WINDOW").map_or(defaults.count_window, |n| n as u32),
        out_of_orderness_ms: var_f64(env, "KPI_OUT_OF_ORDERNESS_MS")
            .map_or(defaults.out_of_orderness_ms, |n| n as i64),
        allowed_lateness_ms: var_f64(env, "KPI_ALLOWED_LATENESS_MS")
            .map_or(defaults.allowed_lateness_ms, |n| n as i64),
        thresholds: defaults.thresholds,
        drift_min_decisions: var_f64(env, "KPI_DRIFT_MIN_DECISIONS")
            .map_or(defaults.drift_min_decisions, |n| n as u64),
    }
}

/// The KPI aggregator: one object for the whole cooperative.
#[durable_object(fetch)]
pub struct KpiObject {
    service: RefCell<KpiService>,
    kv: Rc<SqlKv>,
    env: Env,
    /// A flush of the outbox to D1 is running; another would only send the same writes.
    flushing: Rc<std::cell::Cell<bool>>,
}

impl DurableObject for KpiObject {
    fn new(state: State, env: Env) -> Self {
        KpiObject {
            service: RefCell::new(KpiService::new(kpi_config(&env))),
            kv: Rc::new(SqlKv::new(&state)),
            env,
            flushing: Rc::new(std::cell::Cell::new(false)),
        }
    }

    async fn fetch(&self, mut request: Request) -> Result<Response> {
        // The body is read before any state is touched; everything after it runs without
        // awaiting until the answer and the outbox are written.
        let command: KpiCommand = request.json().await?;
        let now = now_ms();
        let answer = match command {
            KpiCommand::Record { observations } => serde_json::to_value(
                self.service
                    .borrow_mut()
                    .record(&*self.kv, &observations, now),
            ),
            KpiCommand::View { window, branch } => serde_json::to_value(
                self.service
                    .borrow_mut()
                    .view(&*self.kv, window, branch.as_deref(), now),
            ),
            KpiCommand::Snapshot => {
                serde_json::to_value(self.service.borrow_mut().snapshot(&*self.kv, now))
            }
            KpiCommand::Drift { branch } => serde_json::to_value(self.service.borrow_mut().drift(
                &*self.kv,
                branch.as_deref(),
                now,
            )),
        };
        // D1 receives the outbox after the answer: the counts are already durable in the
        // object's storage, and any call flushes whatever an earlier one left behind.
        self.start_flush();
        match answer {
            Ok(json) => Response::from_json(&json),
            Err(error) => Response::error(error.to_string(), 500),
        }
    }
}

impl KpiObject {
    fn start_flush(&self) {
        if self.flushing.get() || KpiService::outbox_is_empty(&*self.kv) {
            return;
        }
        self.flushing.set(true);
        let (kv, env, flushing) = (
            Rc::clone(&self.kv),
            self.env.clone(),
            Rc::clone(&self.flushing),
        );
        worker::wasm_bindgen_futures::spawn_local(async move {
            while flush(&kv, &env).await {}
            flushing.set(false);
        });
    }
}

/// Sends the outbox to D1 in one batch of idempotent statements; true when it sent
/// something, so the caller goes on until the outbox is empty. A failure keeps the writes
/// for the next flush.
async fn flush(kv: &SqlKv, env: &Env) -> bool {
    let Pending {
        writes: pending,
        set_aside,
    } = KpiService::pending(kv, OUTBOX_FLUSH_BATCH);
    if set_aside > 0 {
        log(&format!(
            "kpi outbox: {set_aside} unreadable writes moved aside (prefix outbox-unreadable|)"
        ));
    }
    if pending.is_empty() {
        // Entries moved aside leave room for readable ones behind them.
        return set_aside > 0;
    }
    let db = match env.d1("DB") {
        Ok(db) => db,
        Err(error) => {
            log(&format!("kpi outbox: no D1: {error}"));
            return false;
        }
    };
    let now = now_ms();
    let statements: std::result::Result<Vec<_>, _> = pending
        .iter()
        .map(|pending| EdgeBackend::prepare(&db, &sql::kpi_write(&pending.write, now)))
        .collect();
    let sent = match statements {
        Ok(statements) => db.batch(statements).await.map_err(d1_error),
        Err(error) => Err(error),
    };
    match sent {
        Ok(_) => {
            KpiService::acknowledge(kv, &pending);
            true
        }
        Err(error) => {
            log(&format!(
                "kpi outbox: {} writes kept for the next flush: {error}",
                pending.len()
            ));
            false
        }
    }
}

/// One client's token bucket.
#[durable_object(fetch)]
pub struct RateLimiterObject {
    bucket: RefCell<Option<TokenBucket>>,
    limit: RateLimit,
}

impl DurableObject for RateLimiterObject {
    fn new(_state: State, env: Env) -> Self {
        let defaults = RateLimit::default();
        RateLimiterObject {
            bucket: RefCell::new(None),
            limit: RateLimit {
                capacity: var_f64(&env, "RATE_LIMIT_BURST").unwrap_or(defaults.capacity),
                per_second: var_f64(&env, "RATE_LIMIT_PER_SECOND").unwrap_or(defaults.per_second),
            },
        }
    }

    async fn fetch(&self, mut request: Request) -> Result<Response> {
        let take: TakeTokens = request.json().await?;
        let now = now_ms();
        // A bucket lost with the object's memory starts full: a restart never locks a
        // client out, and it refills within a second anyway.
        let mut bucket = self.bucket.borrow_mut();
        let bucket = bucket.get_or_insert_with(|| TokenBucket::full(&self.limit, now));
        let retry_after_s = bucket.take(&self.limit, f64::from(take.cost), now).err();
        Response::from_json(&TokenAnswer { retry_after_s })
    }
}

#[derive(Serialize, Deserialize)]
enum SweeperCommand {
    Wake,
}

/// How long an event may stay unsettled after its last send before the sweeper sends it
/// again; well above the queue's own retries (2 s, then 4 s).
fn inbox_lease_ms(env: &Env) -> i64 {
    var_f64(env, "INBOX_LEASE_MS").map_or(20_000, |ms| ms as i64)
}

/// The inbox's sweeper: one object whose durable alarm outlives a crash of the runtime, so
/// events acknowledged before the crash are sent again after it.
#[durable_object(alarm)]
pub struct InboxSweeperObject {
    state: State,
    env: Env,
}

impl DurableObject for InboxSweeperObject {
    fn new(state: State, env: Env) -> Self {
        InboxSweeperObject { state, env }
    }

    /// Sets the alarm one lease ahead unless one is already set.
    async fn fetch(&self, mut request: Request) -> Result<Response> {
        let SweeperCommand::Wake = request.json().await?;
        let storage = self.state.storage();
        if storage.get_alarm().await?.is_none() {
            storage.set_alarm(inbox_lease_ms(&self.env)).await?;
        }
        Response::from_json(&true)
    }

    /// Sends lost events again (or decides them itself if the queue stalled), and looks
    /// again while any are kept: soon while it is deciding them itself, else after a lease.
    /// A failed sweep throws, and the platform retries the alarm with backoff.
    async fn alarm(&self) -> Result<Response> {
        let lease = inbox_lease_ms(&self.env);
        let backend = EdgeBackend::new(self.env.clone());
        let model =
            Model::embedded().map_err(|error| worker::Error::RustError(error.to_string()))?;
        let sweep = sweep_inbox(&backend, model, now_ms(), lease)
            .await
            .map_err(|error| worker::Error::RustError(error.to_string()))?;
        if sweep.resent > 0 || sweep.decided > 0 {
            log(&format!(
                "inbox: {} unsettled events sent again, {} decided by the sweeper (queue stalled), {} kept",
                sweep.resent, sweep.decided, sweep.kept
            ));
        }
        if sweep.kept > 0 {
            let next = if sweep.decided > 0 { 1_000 } else { lease };
            self.state.storage().set_alarm(next).await?;
        }
        Response::ok("swept")
    }
}
