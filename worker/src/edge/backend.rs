//! `EdgeBackend`: the platform bindings behind the storage traits, and the calls every
//! binding module shares (D1 statements, Durable Object requests).

use serde::de::DeserializeOwned;
use serde::Serialize;
use valle_shared::monitoring::drift::DriftReport;
use valle_shared::monitoring::kpi::{KpiView, View};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result, Env, Method, Request, RequestInit};

use crate::bindings;
use crate::kpi::KpiCommand;
use crate::sql::{self, SqlValue, Statement};
use crate::store::{HealthProbe, KpiSink, KpiSnapshot, RefusalBatch, StoreError};

pub struct EdgeBackend {
    pub(super) env: Env,
}

pub(super) fn d1_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::new("d1", error)
}

/// D1 rows turned into the types the stores answer.
pub(super) fn decode<R, T: From<R>>(rows: Vec<R>) -> Vec<T> {
    rows.into_iter().map(T::from).collect()
}

/// The rows of the `index`th statement of a batch.
pub(super) fn rows_of<R: serde::de::DeserializeOwned>(
    results: &[D1Result],
    index: usize,
) -> Result<Vec<R>, StoreError> {
    results
        .get(index)
        .ok_or_else(|| d1_error("the batch answered too few results"))?
        .results()
        .map_err(d1_error)
}

fn object_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::new("durable_object", error)
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

    fn db(&self) -> Result<D1Database, StoreError> {
        self.env.d1(bindings::DB).map_err(d1_error)
    }

    fn prepare(db: &D1Database, statement: &Statement) -> Result<D1PreparedStatement, StoreError> {
        let params: Vec<JsValue> = statement.params.iter().map(js_value).collect();
        db.prepare(&statement.sql).bind(&params).map_err(d1_error)
    }

    /// Runs the statements as one D1 batch: one transaction, one round trip.
    pub(super) async fn batch(
        &self,
        statements: &[Statement],
    ) -> Result<Vec<D1Result>, StoreError> {
        let db = self.db()?;
        let prepared = statements
            .iter()
            .map(|statement| Self::prepare(&db, statement))
            .collect::<Result<Vec<_>, _>>()?;
        let results = db.batch(prepared).await.map_err(d1_error)?;
        if let Some(error) = results.iter().find_map(D1Result::error) {
            return Err(d1_error(error));
        }
        Ok(results)
    }

    /// Runs a batch that appends to the audit chain: `None` when another writer took the
    /// chain's next number first, so the batch wrote nothing and the caller retries at the end.
    pub(super) async fn audited_batch(
        &self,
        statements: &[Statement],
    ) -> Result<Option<Vec<D1Result>>, StoreError> {
        match self.batch(statements).await {
            Ok(results) => Ok(Some(results)),
            Err(error) if sql::audit::chain_moved(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The rows one statement answers.
    pub(super) async fn rows<T: DeserializeOwned>(
        &self,
        statement: &Statement,
    ) -> Result<Vec<T>, StoreError> {
        let db = self.db()?;
        let result = Self::prepare(&db, statement)?
            .all()
            .await
            .map_err(d1_error)?;
        if let Some(error) = result.error() {
            return Err(d1_error(error));
        }
        result.results::<T>().map_err(d1_error)
    }

    /// Sends `body` to the named object of a namespace and answers its 200 body.
    pub(super) async fn object<T: DeserializeOwned>(
        &self,
        binding: &str,
        name: &str,
        body: &impl Serialize,
    ) -> Result<T, StoreError> {
        let stub = self
            .env
            .durable_object(binding)
            .and_then(|namespace| namespace.id_from_name(name)?.get_stub())
            .map_err(object_error)?;
        let body = serde_json::to_string(body).map_err(object_error)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let request =
            Request::new_with_init("https://valle.internal/", &init).map_err(object_error)?;
        let mut response = stub
            .fetch_with_request(request)
            .await
            .map_err(object_error)?;
        if response.status_code() != 200 {
            let text = response.text().await.unwrap_or_default();
            return Err(object_error(format!(
                "status {}: {}",
                response.status_code(),
                text.chars().take(200).collect::<String>()
            )));
        }
        response.json().await.map_err(object_error)
    }

    async fn kpi<T: DeserializeOwned>(&self, command: &KpiCommand) -> Result<T, StoreError> {
        self.object(bindings::KPI, bindings::KPI_OBJECT, command)
            .await
    }
}

impl KpiSink for EdgeBackend {
    async fn view(&self, window: View, branch: Option<&str>) -> Result<KpiView, StoreError> {
        self.kpi(&KpiCommand::View {
            window,
            branch: branch.map(str::to_owned),
        })
        .await
    }

    async fn snapshot(&self) -> Result<KpiSnapshot, StoreError> {
        self.kpi(&KpiCommand::Snapshot).await
    }

    async fn drift(&self, branch: Option<&str>) -> Result<Option<DriftReport>, StoreError> {
        self.kpi(&KpiCommand::Drift {
            branch: branch.map(str::to_owned),
        })
        .await
    }

    async fn count_refusals(&self, batch: &RefusalBatch) -> Result<(), StoreError> {
        self.kpi::<bool>(&KpiCommand::CountRefusals {
            batch: batch.clone(),
        })
        .await
        .map(|_| ())
    }

    async fn poke(&self) -> Result<(), StoreError> {
        self.kpi::<bool>(&KpiCommand::Poke).await.map(|_| ())
    }
}

impl HealthProbe for EdgeBackend {
    async fn probe(&self) -> Vec<(&'static str, Result<(), StoreError>)> {
        let d1 = self
            .rows::<serde_json::Value>(&sql::health_probe())
            .await
            .map(|_| ());
        let durable_object = self.snapshot().await.map(|_| ());
        let queue = match (
            self.env.queue(bindings::EVENTS),
            self.env.queue(bindings::DEAD_LETTERS),
        ) {
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
