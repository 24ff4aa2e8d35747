//! The offline queue at work: applications the edge could not take are kept in IndexedDB
//! and sent as event batches whenever the browser is online, with backoff after failures.
//! What to send and how answers change each item is decided in [`crate::outbox`].

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use valle_shared::decision::model::ModelVersion;

use crate::client::post_events;
use crate::idb::{self, StorageError};
use crate::outbox::{self, OutboxItem};

/// How often the queue looks for due items; each item's own backoff decides if it goes.
const TICK: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// The browser thinks it has a network. A `true` can still fail; a `false` is reliable.
pub fn online() -> bool {
    window().navigator().on_line()
}

/// A random UUID (v4), the event's idempotency key: from the browser's CSPRNG, or where
/// that is missing, from `Math.random` (unique enough for one device's queue).
fn event_id() -> String {
    window()
        .crypto()
        .map(|crypto| crypto.random_uuid())
        .unwrap_or_else(|_| {
            outbox::uuid_v4(std::array::from_fn(|_| {
                (js_sys::Math::random() * 256.0) as u8
            }))
        })
}

/// The page's queue: its items (newest last) and whether IndexedDB could be read.
#[derive(Clone, Copy)]
pub struct Outbox {
    pub items: RwSignal<Vec<OutboxItem>>,
    pub storage_error: RwSignal<Option<StorageError>>,
    sending: StoredValue<bool>,
}

impl Outbox {
    /// Loads the stored queue and starts sending: now, every second, and the moment the
    /// browser reports being back online.
    pub fn start() -> Outbox {
        let outbox = Outbox {
            items: RwSignal::new(Vec::new()),
            storage_error: RwSignal::new(None),
            sending: StoredValue::new(false),
        };
        spawn_local(async move {
            match idb::load().await {
                Ok(mut items) => {
                    let before: Vec<String> = items.iter().map(|i| i.event_id.clone()).collect();
                    outbox::prune(&mut items, now_ms());
                    let gone: Vec<String> = before
                        .into_iter()
                        .filter(|id| !items.iter().any(|i| &i.event_id == id))
                        .collect();
                    let _ = idb::remove(&gone).await;
                    items.sort_by_key(|item| item.event_time_ms);
                    outbox.items.try_set(items);
                    outbox.flush();
                }
                Err(error) => {
                    outbox.storage_error.try_set(Some(error));
                }
            }
        });
        if let Ok(handle) = set_interval_with_handle(move || outbox.flush(), TICK) {
            on_cleanup(move || handle.clear());
        }
        let listener = window_event_listener(leptos::ev::online, move |_| outbox.retry_now());
        on_cleanup(move || listener.remove());
        outbox
    }

    /// Keeps an application the edge could not take; durable before this returns `Ok`.
    pub async fn enqueue(
        &self,
        application: String,
        probability: f32,
        model_version: ModelVersion,
    ) -> Result<String, StorageError> {
        let item = OutboxItem::new(
            event_id(),
            now_ms(),
            application,
            probability,
            model_version,
        );
        idb::save(std::slice::from_ref(&item)).await?;
        let id = item.event_id.clone();
        self.items.update(|items| items.push(item));
        Ok(id)
    }

    /// Back online: waiting items need not sit out their backoff.
    fn retry_now(&self) {
        let now = now_ms();
        self.items.update(|items| {
            for item in items.iter_mut() {
                if let outbox::SyncState::Pending {
                    next_attempt_ms, ..
                } = &mut item.state
                {
                    *next_attempt_ms = (*next_attempt_ms).min(now);
                }
            }
        });
        self.flush();
    }

    /// Sends the next due batch, if any, unless one is already on its way.
    pub fn flush(&self) {
        let this = *self;
        if this.sending.get_value() || !online() {
            return;
        }
        let now = now_ms();
        let ids = this.items.with_untracked(|items| outbox::due(items, now));
        if ids.is_empty() {
            return;
        }
        this.sending.set_value(true);
        let body = this
            .items
            .with_untracked(|items| outbox::events_body(items, &ids));
        spawn_local(async move {
            let result = post_events(body).await;
            let now = now_ms();
            let mut items = this.items.get_untracked();
            match &result {
                Ok(answer) => outbox::after_answer(&mut items, &ids, answer, now),
                Err(error) => outbox::after_failure(
                    &mut items,
                    &ids,
                    now,
                    js_sys::Math::random(),
                    &error.body(),
                ),
            }
            let changed: Vec<OutboxItem> = items
                .iter()
                .filter(|item| ids.contains(&item.event_id))
                .cloned()
                .collect();
            let saved = idb::save(&changed).await;
            this.storage_error.try_set(saved.err());
            this.items.try_set(items);
            this.sending.try_set_value(false);
            // More may be due (a long queue goes in several batches).
            if result.is_ok() {
                this.flush();
            }
        });
    }
}
