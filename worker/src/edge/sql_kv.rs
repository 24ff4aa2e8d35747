//! The KPI object's SQLite storage as a key-value table whose writes are atomic
//! (`transactionSync`: all of a batch is kept, or none).

use serde::Deserialize;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{SqlStorage, SqlStorageValue, State};

use crate::kpi::{KvOp, KvStore};
use crate::sql::kv;
use crate::store::StoreError;

pub struct SqlKv {
    sql: SqlStorage,
    /// `ctx.storage`, whose `transactionSync` workers-rs does not wrap.
    storage: JsValue,
}

fn kv_error(error: impl std::fmt::Debug) -> StoreError {
    StoreError::new("kpi_object", format!("{error:?}"))
}

#[derive(Deserialize)]
struct KvRow {
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct CountRow {
    n: u64,
}

impl SqlKv {
    pub fn new(state: &State) -> Result<SqlKv, StoreError> {
        let storage = state.storage();
        let sql = storage.sql();
        sql.exec(kv::CREATE, None).map_err(kv_error)?;
        Ok(SqlKv {
            sql,
            storage: AsRef::<JsValue>::as_ref(storage.as_raw()).clone(),
        })
    }
}

fn text(value: &str) -> SqlStorageValue {
    SqlStorageValue::from(value.to_owned())
}

impl KvStore for SqlKv {
    fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let cursor = self.sql.exec(kv::GET, vec![text(key)]).map_err(kv_error)?;
        Ok(cursor
            .to_array::<KvRow>()
            .map_err(kv_error)?
            .into_iter()
            .next()
            .map(|row| row.value))
    }

    fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let params = vec![
            text(prefix),
            SqlStorageValue::from(format!("{prefix}\u{ffff}")),
            SqlStorageValue::from(i64::try_from(limit).unwrap_or(-1)),
        ];
        let rows = self
            .sql
            .exec(kv::SCAN, params)
            .and_then(|cursor| cursor.to_array::<KvRow>())
            .map_err(kv_error)?;
        Ok(rows.into_iter().map(|row| (row.key, row.value)).collect())
    }

    fn rows(&self) -> Result<u64, StoreError> {
        let rows = self
            .sql
            .exec(kv::COUNT, None)
            .and_then(|cursor| cursor.to_array::<CountRow>())
            .map_err(kv_error)?;
        Ok(rows.first().map_or(0, |row| row.n))
    }

    fn apply(&self, ops: Vec<KvOp>) -> Result<(), StoreError> {
        let sql = self.sql.clone();
        let body = Closure::once_into_js(move || -> Result<(), JsValue> {
            for op in ops {
                let written = match op {
                    KvOp::Put(key, value) => sql.exec(
                        kv::PUT,
                        vec![SqlStorageValue::from(key), SqlStorageValue::from(value)],
                    ),
                    KvOp::Delete(key) => sql.exec(kv::DELETE, vec![SqlStorageValue::from(key)]),
                };
                written.map_err(|error| JsValue::from_str(&error.to_string()))?;
            }
            Ok(())
        });
        let transaction =
            js_sys::Reflect::get(&self.storage, &JsValue::from_str("transactionSync"))
                .map_err(kv_error)?
                .dyn_into::<js_sys::Function>()
                .map_err(kv_error)?;
        transaction
            .call1(&self.storage, &body)
            .map(|_| ())
            .map_err(kv_error)
    }
}
