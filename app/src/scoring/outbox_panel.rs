//! Applications kept on this device while offline, and where each one stands.

use leptos::prelude::*;
use valle_shared::Lang;

use crate::chrome::{percent, ui, use_lang};
use crate::{outbox, sync};

/// Applications kept on this device while offline, with where each one stands.
#[component]
pub(super) fn OutboxPanel(queue: sync::Outbox) -> impl IntoView {
    let lang = use_lang();
    let shown = move || {
        queue.items.with(|items| {
            items
                .iter()
                .rev()
                .take(20)
                .cloned()
                .collect::<Vec<outbox::OutboxItem>>()
        })
    };
    let pending = move || {
        queue
            .items
            .with(|items| items.iter().filter(|i| i.is_pending()).count())
    };
    view! {
        <Show when=move || !queue.items.with(Vec::is_empty) || queue.storage_error.with(Option::is_some)>
            <section class="outbox" data-testid="outbox" aria-live="polite">
                <h2>{move || ui(lang.get(), "Guardadas en este dispositivo", "Kept on this device")}</h2>
                <p class="small muted" data-testid="outbox-pending" data-count=pending>
                    {move || match (lang.get(), pending()) {
                        (Lang::Es, 0) => "Todo sincronizado.".to_owned(),
                        (Lang::En, 0) => "Everything is synced.".to_owned(),
                        (Lang::Es, n) => format!("{n} pendiente(s) de sincronizar."),
                        (Lang::En, n) => format!("{n} waiting to sync."),
                    }}
                </p>
                {move || queue.storage_error.get().map(|error| view! {
                    <p class="warning" role="alert" data-testid="outbox-storage-error">{error.to_string()}</p>
                })}
                <ul class="outbox-items">
                    {move || shown().into_iter().map(|item| outbox_item(item, lang.get())).collect_view()}
                </ul>
            </section>
        </Show>
    }
}

fn outbox_item(item: outbox::OutboxItem, lang: Lang) -> impl IntoView {
    let (state, badge, detail) = match &item.state {
        outbox::SyncState::Pending { attempts: 0, .. } => (
            "pending",
            ui(lang, "Pendiente de sincronizar", "Pending sync"),
            String::new(),
        ),
        outbox::SyncState::Pending { attempts, .. } => (
            "pending",
            ui(lang, "Pendiente de sincronizar", "Pending sync"),
            match lang {
                Lang::Es => format!("{attempts} intento(s) sin conexión"),
                Lang::En => format!("{attempts} attempt(s) without connection"),
            },
        ),
        outbox::SyncState::Synced { receipt, .. } => (
            "synced",
            ui(lang, "Sincronizada", "Synced"),
            receipt
                .as_ref()
                .map(|receipt| format!("{}: {receipt}", ui(lang, "Recibo", "Receipt")))
                .unwrap_or_default(),
        ),
        outbox::SyncState::Refused { code, message } => (
            "refused",
            ui(lang, "Rechazada", "Refused"),
            format!("{code}: {}", message.get(lang)),
        ),
    };
    view! {
        <li data-testid="outbox-item" data-event-id=item.event_id.clone() data-state=state>
            <span class=format!("badge badge-{state}") data-testid="outbox-badge">{badge}</span>
            " "<span class="small">{percent(item.client_score.probability)}</span>
            " "<code class="small">{item.event_id.chars().take(8).collect::<String>()}</code>
            {(!detail.is_empty()).then(|| view! { <p class="small muted">{detail}</p> })}
        </li>
    }
}
