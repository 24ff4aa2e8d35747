//! The offline queue's storage: one IndexedDB object store, `outbox`, of JSON
//! [`OutboxItem`]s keyed by event id. IndexedDB survives reloads, restarts and going
//! offline, unlike memory or session storage. Requests are turned into futures here and
//! nowhere else.

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    IdbDatabase, IdbObjectStore, IdbOpenDbRequest, IdbRequest, IdbTransaction, IdbTransactionMode,
};

use crate::outbox::OutboxItem;

const DATABASE: &str = "valle";
const VERSION: u32 = 1;
const STORE: &str = "outbox";

/// Why the queue could not be read or written (private browsing, quota, a blocked upgrade).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("local storage: {0}")]
pub struct StorageError(String);

fn js_error(value: JsValue) -> StorageError {
    StorageError(
        value
            .as_string()
            .or_else(|| {
                value
                    .dyn_ref::<js_sys::Error>()
                    .map(|error| String::from(error.message()))
            })
            .unwrap_or_else(|| format!("{value:?}")),
    )
}

/// Resolves with the request's result once it succeeds.
async fn finished(request: &IdbRequest) -> Result<JsValue, StorageError> {
    let promise = Promise::new(&mut |resolve: Function, reject: Function| {
        let done = request.clone();
        let on_success = Closure::once_into_js(move || {
            let _ = resolve.call1(&JsValue::UNDEFINED, &done.result().unwrap_or_default());
        });
        let failed = request.clone();
        let on_error = Closure::once_into_js(move || {
            let error = failed
                .error()
                .ok()
                .flatten()
                .map_or(JsValue::from_str("request failed"), |e| {
                    JsValue::from_str(&e.message())
                });
            let _ = reject.call1(&JsValue::UNDEFINED, &error);
        });
        request.set_onsuccess(Some(on_success.unchecked_ref()));
        request.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(js_error)
}

/// Resolves once the transaction has committed (its `complete` event).
async fn committed(transaction: &IdbTransaction) -> Result<(), StorageError> {
    let promise = Promise::new(&mut |resolve: Function, reject: Function| {
        let on_complete = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        });
        let failed = transaction.clone();
        let on_error = Closure::once_into_js(move || {
            let error = failed
                .error()
                .map_or(JsValue::from_str("transaction aborted"), |e| {
                    JsValue::from_str(&e.message())
                });
            let _ = reject.call1(&JsValue::UNDEFINED, &error);
        });
        transaction.set_oncomplete(Some(on_complete.unchecked_ref()));
        transaction.set_onerror(Some(on_error.unchecked_ref()));
        transaction.set_onabort(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise).await.map(|_| ()).map_err(js_error)
}

/// Opens (creating on first use) the database.
async fn open() -> Result<IdbDatabase, StorageError> {
    let factory = window()
        .indexed_db()
        .map_err(js_error)?
        .ok_or_else(|| StorageError("IndexedDB is not available".into()))?;
    let request: IdbOpenDbRequest = factory.open_with_u32(DATABASE, VERSION).map_err(js_error)?;
    let upgrading = request.clone();
    let on_upgrade = Closure::once_into_js(move || {
        if let Ok(result) = upgrading.result() {
            let database: IdbDatabase = result.unchecked_into();
            if !database.object_store_names().contains(STORE) {
                let _ = database.create_object_store(STORE);
            }
        }
    });
    request.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    let database = finished(&request).await?;
    Ok(database.unchecked_into())
}

fn window() -> web_sys::Window {
    leptos::prelude::window()
}

/// A read-write transaction on the store, and the store.
async fn writing() -> Result<(IdbTransaction, IdbObjectStore), StorageError> {
    let database = open().await?;
    let transaction = database
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(js_error)?;
    let store = transaction.object_store(STORE).map_err(js_error)?;
    Ok((transaction, store))
}

/// Every queued item. Entries that no longer parse are skipped, never fatal.
pub async fn load() -> Result<Vec<OutboxItem>, StorageError> {
    let database = open().await?;
    let store = database
        .transaction_with_str(STORE)
        .and_then(|transaction| transaction.object_store(STORE))
        .map_err(js_error)?;
    let values = finished(&store.get_all().map_err(js_error)?).await?;
    Ok(Array::from(&values)
        .iter()
        .filter_map(|value| value.as_string())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect())
}

/// Writes `items` (insert or replace by event id) in one transaction, and waits until it
/// has committed, so an item is durable before the page says it is queued.
pub async fn save(items: &[OutboxItem]) -> Result<(), StorageError> {
    if items.is_empty() {
        return Ok(());
    }
    let (transaction, store) = writing().await?;
    for item in items {
        let text = serde_json::to_string(item).map_err(|error| StorageError(error.to_string()))?;
        store
            .put_with_key(
                &JsValue::from_str(&text),
                &JsValue::from_str(&item.event_id),
            )
            .map_err(js_error)?;
    }
    committed(&transaction).await
}

/// Removes the items with these ids.
pub async fn remove(ids: &[String]) -> Result<(), StorageError> {
    if ids.is_empty() {
        return Ok(());
    }
    let (transaction, store) = writing().await?;
    for id in ids {
        store.delete(&JsValue::from_str(id)).map_err(js_error)?;
    }
    committed(&transaction).await
}
