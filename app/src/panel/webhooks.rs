//! Webhooks (admins): the subscribers, registering one with the events it hears (checked
//! here by the edge's own rules before it is sent), removing one, and the deliveries given
//! up on, each of which can be sent again under its event id.

use leptos::prelude::*;
use valle_shared::contract::errors::ErrorBody;
use valle_shared::contract::paths::{WEBHOOKS_PATH, WEBHOOK_DEAD_LETTERS_PATH};
use valle_shared::contract::query::{with_query, CURSOR};
use valle_shared::webhooks::sources::{
    Subscription, SubscriptionList, WebhookDeadLetter, WebhookDeadLetterPage,
};
use valle_shared::webhooks::{parse_subscription, EventKind, Reach};
use valle_shared::Lang;

use super::dashboard::{format_time, PAGE_SIZE};
use super::pager::{ListLayout, PagedList, Pages};
use super::section::{refusal_view, FieldKind, FilterField, Hint, RefreshButton, SectionHead};
use super::session::{status_line, use_session, Load};
use crate::chrome::{data_table, ui, use_lang};
use crate::client::{officer_delete, officer_post, ClientError};

const DEAD_LETTER_LIST: ListLayout = ListLayout {
    table: "webhook-dead-letters-table",
    columns: &[
        ("N.º", "No."),
        ("Evento", "Event"),
        ("Tipo", "Kind"),
        ("Suscriptor", "Subscriber"),
        ("Intentos", "Attempts"),
        ("Última respuesta", "Last answer"),
        ("Falló", "Failed"),
        ("", ""),
    ],
    pager: "webhook-dead-letters",
    back: ("Más recientes", "Newer"),
    forward: ("Más antiguas", "Older"),
    empty: Some((
        "webhook-dead-letters-empty",
        "Ninguna entrega se ha abandonado.",
        "No delivery has been given up on.",
    )),
};

#[component]
pub(super) fn Webhooks() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let reload = RwSignal::new(0u32);
    let list = RwSignal::new(Load::<SubscriptionList>::Loading);
    let removal = RwSignal::new(None::<ClientError>);
    session.follow(list, move || {
        reload.track();
        WEBHOOKS_PATH.to_owned()
    });
    let changed = move || reload.update(|n| *n += 1);
    let remove = move |id: i64| {
        removal.set(None);
        session.fetch(
            move |token| async move {
                officer_delete::<Subscription>(&subscription_path(id), &token).await
            },
            move |result| match result {
                Ok(_) => changed(),
                Err(error) => {
                    removal.try_set(Some(error));
                }
            },
        );
    };
    view! {
        <section class="section" data-testid="webhooks">
            <SectionHead es="Webhooks" en="Webhooks">
                <RefreshButton test_id="webhooks-refresh" reload />
            </SectionHead>
            <Hint es="Cada suscriptor recibe los eventos que elija, firmados según Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature) con su secreto whsec_, a partir de su registro." en="Each subscriber receives the events it chooses, signed as Standard Webhooks defines it (webhook-id, webhook-timestamp, webhook-signature) with its whsec_ secret, from its registration on." />
            <SubscribeForm on_added=changed />
            {move || removal.get().map(|error| refusal_view(error.body(), "webhook-remove-error", lang.get()))}
            {move || list.with(|load| status_line(load, lang.get()))}
            {move || match list.get() {
                Load::Ready(found) if found.subscriptions.is_empty() => Some(view! {
                    <p class="muted" data-testid="webhooks-empty">{ui(lang.get(), "Nadie está suscrito.", "Nobody subscribes.")}</p>
                }.into_any()),
                Load::Ready(found) => Some(view! {
                    {data_table("webhooks-table", lang.get(), &[("N.º", "No."), ("Dirección", "URL"), ("Eventos", "Events"), ("Desde", "Since"), ("", "")], view! {
                        {found.subscriptions.into_iter().map(|subscription| view! {
                            <SubscriberRow subscription on_remove=remove />
                        }).collect_view()}
                    })}
                }.into_any()),
                _ => None,
            }}
            <WebhookDeadLetters reload />
        </section>
    }
}

/// One subscriber, with the button that removes it.
#[component]
fn SubscriberRow(
    subscription: Subscription,
    on_remove: impl Fn(i64) + Copy + 'static,
) -> impl IntoView {
    let lang = use_lang();
    let id = subscription.id;
    view! {
        <tr data-testid="webhook-row" data-id=id data-url=subscription.url.clone()>
            <td>{id}</td>
            <td><code>{subscription.url.clone()}</code></td>
            <td>{kinds_text(&subscription.events)}</td>
            <td>{format_time(subscription.created_at_ms)}</td>
            <td>
                <button type="button" class="secondary" data-testid="webhook-remove" on:click=move |_| on_remove(id)>
                    {move || ui(lang.get(), "Retirar", "Remove")}
                </button>
            </td>
        </tr>
    }
}

/// The registration form; `on_added` runs once the edge has stored the subscriber.
#[component]
fn SubscribeForm(on_added: impl Fn() + Copy + 'static) -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let url = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let kinds = RwSignal::new(EventKind::ALL.to_vec());
    let sending = RwSignal::new(false);
    let refusal = RwSignal::new(None::<ErrorBody>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if sending.get_untracked() {
            return;
        }
        let body = subscription_body(
            &url.get_untracked(),
            &secret.get_untracked(),
            &kinds.get_untracked(),
        );
        if let Err(error) = parse_subscription(body.as_bytes(), page_reach()) {
            refusal.set(Some(ErrorBody::of_request(&error, None)));
            return;
        }
        refusal.set(None);
        sending.set(true);
        session.fetch(
            move |token| async move {
                officer_post::<Subscription>(WEBHOOKS_PATH, &token, Some(body)).await
            },
            move |result| {
                sending.try_set(false);
                match result {
                    Ok(_) => {
                        url.try_set(String::new());
                        secret.try_set(String::new());
                        on_added();
                    }
                    Err(error) => {
                        refusal.try_set(Some(error.body()));
                    }
                }
            },
        );
    };
    view! {
        <form class="filters" data-testid="webhook-form" on:submit=submit>
            <FilterField es="Dirección (https://)" en="URL (https://)" test_id="webhook-url" kind=FieldKind::Text value=url />
            <FilterField es="Secreto (whsec_ y 24 a 64 bytes en base64)" en="Secret (whsec_ and 24 to 64 bytes in base64)" test_id="webhook-secret" kind=FieldKind::Secret value=secret />
            {EventKind::ALL.map(|kind| view! {
                <label class="filter check">
                    <input type="checkbox" data-testid=format!("webhook-kind-{}", kind.as_str())
                        prop:checked=move || kinds.with(|chosen| chosen.contains(&kind))
                        on:change=move |event| {
                            let on = event_target_checked(&event);
                            kinds.update(|chosen| {
                                chosen.retain(|k| *k != kind);
                                if on {
                                    chosen.push(kind);
                                    chosen.sort();
                                }
                            });
                        } />
                    <span>{move || kind_text(kind, lang.get())}</span>
                </label>
            })}
            <button type="submit" class="primary" data-testid="webhook-add" prop:disabled=move || sending.get()>
                {move || ui(lang.get(), "Registrar", "Register")}
            </button>
        </form>
        {move || refusal.get().map(|body| refusal_view(body, "webhook-error", lang.get()))}
    }
}

/// The deliveries given up on, newest first, each with its replay button; loaded again
/// whenever `reload` changes (the section's refresh, a replay).
#[component]
fn WebhookDeadLetters(reload: RwSignal<u32>) -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let pages = Pages::<i64>::new();
    let page = RwSignal::new(Load::<WebhookDeadLetterPage>::Loading);
    let replay_refusal = RwSignal::new(None::<ClientError>);
    session.follow(page, move || {
        reload.track();
        webhook_dead_letters_path(pages.cursor())
    });
    let replay = move |id: i64| {
        replay_refusal.set(None);
        session.fetch(
            move |token| async move {
                officer_post::<WebhookDeadLetter>(&webhook_replay_path(id), &token, None).await
            },
            move |result| match result {
                Ok(_) => reload.update(|n| *n += 1),
                Err(error) => {
                    replay_refusal.try_set(Some(error));
                }
            },
        );
    };
    view! {
        <h3>{move || ui(lang.get(), "Entregas abandonadas", "Deliveries given up on")}</h3>
        {move || replay_refusal.get().map(|error| refusal_view(error.body(), "webhook-replay-error", lang.get()))}
        <PagedList page pages layout=DEAD_LETTER_LIST
            split=|found: WebhookDeadLetterPage| (found.dead_letters, found.next_cursor)
            row=move |letter: WebhookDeadLetter| {
                let id = letter.id;
                view! {
                    <tr data-testid="webhook-dead-letter-row" data-id=id data-event-id=letter.event_id.clone()>
                        <td>{id}</td>
                        <td><code>{letter.event_id.clone()}</code></td>
                        <td><code>{letter.kind.as_str()}</code></td>
                        <td>{letter.subscription_id}</td>
                        <td>{letter.attempts}</td>
                        <td>{letter.last_status.map_or_else(|| "—".to_owned(), |status| status.to_string())}</td>
                        <td>{format_time(letter.failed_at_ms)}</td>
                        <td>
                            {match letter.replayed_at_ms {
                                Some(at) => view! {
                                    <span class="small muted" data-testid="webhook-replayed">
                                        {move || ui(lang.get(), "Reenviada ", "Replayed ")}{format_time(at)}
                                    </span>
                                }.into_any(),
                                None => view! {
                                    <button type="button" class="secondary" data-testid="webhook-replay" on:click=move |_| replay(id)>
                                        {move || ui(lang.get(), "Reenviar", "Replay")}
                                    </button>
                                }.into_any(),
                            }}
                        </td>
                    </tr>
                }
            } />
    }
}

fn kind_text(kind: EventKind, lang: Lang) -> &'static str {
    match kind {
        EventKind::DecisionCreated => ui(lang, "Decisión creada", "Decision created"),
        EventKind::DecisionFinal => ui(lang, "Decisión final", "Final decision"),
        EventKind::OutcomeRecorded => ui(lang, "Resultado registrado", "Outcome recorded"),
    }
}

fn kinds_text(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The registration body, exactly as the edge reads it.
pub fn subscription_body(url: &str, secret: &str, kinds: &[EventKind]) -> String {
    serde_json::json!({ "url": url.trim(), "secret": secret, "events": kinds }).to_string()
}

pub fn subscription_path(id: i64) -> String {
    format!("{WEBHOOKS_PATH}/{id}")
}

pub fn webhook_replay_path(id: i64) -> String {
    format!("{WEBHOOK_DEAD_LETTERS_PATH}/{id}/replay")
}

pub fn webhook_dead_letters_path(before: Option<i64>) -> String {
    let before = before.map(|id| id.to_string()).unwrap_or_default();
    let limit = PAGE_SIZE.to_string();
    with_query(
        WEBHOOK_DEAD_LETTERS_PATH,
        &[("limit", &limit), (CURSOR, &before)],
    )
}

/// Where the edge that served this page may deliver webhooks.
fn page_reach() -> Reach {
    let host = web_sys::window()
        .and_then(|window| window.location().hostname().ok())
        .unwrap_or_default();
    Reach::served_from(&host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use valle_shared::contract::codes::ErrorCode;

    #[test]
    fn the_form_sends_what_the_edge_reads() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let body = subscription_body(
            " https://hooks.example.org/valle ",
            &secret,
            &[EventKind::DecisionCreated, EventKind::OutcomeRecorded],
        );
        let read = parse_subscription(body.as_bytes(), Reach::Public).expect("valid");
        assert_eq!(read.url, "https://hooks.example.org/valle");
        assert_eq!(read.secret, secret);
        assert_eq!(
            read.kinds,
            vec![EventKind::DecisionCreated, EventKind::OutcomeRecorded]
        );
    }

    #[test]
    fn a_refused_form_shows_each_field_as_the_edge_would() {
        let body = subscription_body("ftp://x", "short", &[]);
        let error = parse_subscription(body.as_bytes(), Reach::Local).expect_err("refused");
        let shown = ErrorBody::of_request(&error, None);
        assert_eq!(shown.code, ErrorCode::Validation);
        let fields: Vec<(&str, ErrorCode)> = shown
            .fields
            .iter()
            .map(|field| (field.field.as_str(), field.code))
            .collect();
        assert_eq!(
            fields,
            [
                ("url", ErrorCode::Format),
                ("secret", ErrorCode::Range),
                ("events", ErrorCode::Range)
            ]
        );
    }

    #[test]
    fn paths_name_the_subscriber_and_the_page() {
        assert_eq!(subscription_path(7), "/api/v1/webhooks/7");
        assert_eq!(
            webhook_replay_path(3),
            "/api/v1/webhooks/dead-letters/3/replay"
        );
        assert_eq!(
            webhook_dead_letters_path(None),
            "/api/v1/webhooks/dead-letters?limit=20"
        );
        assert_eq!(
            webhook_dead_letters_path(Some(41)),
            "/api/v1/webhooks/dead-letters?limit=20&cursor=41"
        );
    }
}
