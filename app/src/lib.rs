//! Valle's page: the loan application form, validated as the person types with the same
//! shared rules the edge runs, and submitted to the edge worker.
//!
//! Components only wire signals to pure functions in [`form`] and to [`client`]; no rule
//! of the application is decided in a `view!`.

pub mod charts;
pub mod client;
pub mod dashboard;
pub mod form;
pub mod idb;
pub mod outbox;
pub mod panel;
pub mod sync;

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use valle_shared::api::ScoreResponse;
use valle_shared::application::{choice_label, FieldRule};
use valle_shared::draft::Draft;
use valle_shared::i18n::format_money;
use valle_shared::model::{Band, Decision, ModelError};
use valle_shared::validation::FieldError;
use valle_shared::{Field, Lang, Model, Score};

use crate::client::{post_score, ClientError};

/// Scores an application JSON with this page's model, offline: `window.wasmBindings.valleScore(json)`.
/// Lets other scripts on the page, and the browser tests, use the exact model the form uses.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = valleScore)]
pub fn valle_score(body: &str) -> String {
    form::score_body_json(body)
}

/// Picks the Spanish or English text of a piece of page chrome.
pub(crate) fn ui(lang: Lang, es: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Es => es,
        Lang::En => en,
    }
}

/// Milliseconds from the page's time origin, for the score timings the page shows.
fn now_ms() -> f64 {
    window()
        .performance()
        .map_or(0.0, |performance| performance.now())
}

/// The browser's own score of the current form and how long it took.
#[derive(Clone, Debug, PartialEq)]
struct LocalScore {
    result: Result<Score, ModelError>,
    ms: f64,
}

/// Where the last submission stands.
#[derive(Clone, Debug, PartialEq)]
enum Submission {
    Idle,
    Sending,
    Answered(Box<ScoreResponse>),
    Failed(ClientError),
    /// No network: kept in the device's queue under this event id, sent when back online.
    Queued(String),
    /// No network, and the device could not keep it either (storage refused).
    NotKept(String),
}

/// The form's groups, in reading order: consecutive runs of `Field::ALL`, which is already
/// in form order, so no field can be left out or shown twice.
const SECTIONS: [(&str, &str, std::ops::Range<usize>); 3] = [
    ("Solicitante", "Applicant", 0..8),
    ("Situación económica", "Finances", 8..12),
    ("Préstamo", "Loan", 12..15),
];

/// Which page a path shows: the officers' dashboard lives at `/panel`, everything else is
/// the scoring page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Scoring,
    Panel,
}

impl Page {
    pub fn for_path(path: &str) -> Page {
        match path.trim_end_matches('/') {
            "/panel" => Page::Panel,
            _ => Page::Scoring,
        }
    }
}

/// Asks the browser to install `public/sw.js`, which keeps the app shell, wasm and model for
/// offline reloads. Browsers without service workers simply go without.
fn register_service_worker() {
    let navigator = window().navigator();
    let supported = js_sys::Reflect::has(&navigator, &"serviceWorker".into()).unwrap_or(false);
    if supported {
        // The promise settles on its own; a failure only means no offline reloads.
        let _ = navigator.service_worker().register("/sw.js");
    }
}

/// The page for the current address.
#[component]
pub fn App() -> impl IntoView {
    register_service_worker();
    let path = window().location().pathname().unwrap_or_default();
    match Page::for_path(&path) {
        Page::Panel => view! { <panel::Panel /> }.into_any(),
        Page::Scoring => view! { <ScoringPage /> }.into_any(),
    }
}

/// The application form with its instant score and submission to the edge.
#[component]
fn ScoringPage() -> impl IntoView {
    let lang = RwSignal::new(Lang::Es);
    let draft = RwSignal::new(Draft::new());
    let touched = RwSignal::new(BTreeSet::<Field>::new());
    let show_all = RwSignal::new(false);
    let submission = RwSignal::new(Submission::Idle);
    let queue = sync::Outbox::start();

    let body = Memo::new(move |_| draft.with(Draft::to_body));
    let outcome = Memo::new(move |_| body.with(|body| form::validate_body(body)));
    // Scored in the browser as soon as the form is valid: no network involved.
    let local = Memo::new(move |_| {
        let started = now_ms();
        outcome.with(form::score_locally).map(|result| LocalScore {
            result,
            ms: now_ms() - started,
        })
    });

    // Loading the model takes a few milliseconds; do it right after the first paint so the
    // first score is instant.
    let model_load_ms = RwSignal::new(None::<f64>);
    request_animation_frame(move || {
        let started = now_ms();
        let _ = Model::embedded();
        model_load_ms.set(Some(now_ms() - started));
    });
    let error_count = Memo::new(move |_| outcome.with(form::error_count));

    Effect::new(move |_| {
        if let Some(root) = document().document_element() {
            // The lang attribute tells screen readers which voice to use.
            let _ = root.set_attribute("lang", lang.get().tag());
        }
    });

    // Kept out of `view!`, where a `>` would end the tag.
    let cannot_submit = move || error_count.get() > 0 || submission.get() == Submission::Sending;

    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        show_all.set(true);
        if cannot_submit() {
            return;
        }
        submission.set(Submission::Sending);
        let body = body.get_untracked();
        let score = local.with_untracked(|local| {
            local
                .as_ref()
                .and_then(|local| local.result.as_ref().ok().cloned())
        });
        spawn_local(async move {
            // Offline, or no answer at all: the application is kept on the device with its
            // browser score and sent as an event when the network is back.
            let sent = if sync::online() {
                Some(post_score(body.clone()).await)
            } else {
                None
            };
            let next = match (sent, score) {
                (Some(Ok(answer)), _) => Submission::Answered(Box::new(answer)),
                (Some(Err(ClientError::Network(_))) | None, Some(score)) => {
                    match queue
                        .enqueue(body, score.probability, score.model_version)
                        .await
                    {
                        Ok(event_id) => Submission::Queued(event_id),
                        Err(error) => Submission::NotKept(error.to_string()),
                    }
                }
                (None, None) => Submission::Failed(ClientError::Network("offline".to_owned())),
                (Some(Err(error)), _) => Submission::Failed(error),
            };
            submission.set(next);
        });
    };

    let fill_example = move |_| {
        draft.set(
            form::example_inputs()
                .into_iter()
                .fold(Draft::new(), |draft, (field, text)| draft.with(field, text)),
        );
        touched.set(Field::ALL.into_iter().collect());
    };

    view! {
        <header class="topbar">
            <Brand lang tagline=("Evaluación de solicitudes de préstamo", "Loan application scoring") />
            <LangToggle lang />
        </header>
        <main class="layout">
            <form class="application" data-testid="application-form" novalidate=true on:submit=submit>
                <p class="intro">
                    {move || ui(
                        lang.get(),
                        "Complete los datos del solicitante. Cada campo se comprueba mientras escribe.",
                        "Fill in the applicant's details. Every field is checked as you type.",
                    )}
                </p>
                {SECTIONS
                    .into_iter()
                    .map(|(es, en, range)| {
                        let fields = &Field::ALL[range];
                        view! {
                            <fieldset>
                                <legend>{move || ui(lang.get(), es, en)}</legend>
                                <div class="grid">
                                    {fields
                                        .iter()
                                        .map(|&field| {
                                            view! { <FieldControl field lang draft touched show_all outcome /> }
                                        })
                                        .collect_view()}
                                </div>
                            </fieldset>
                        }
                    })
                    .collect_view()}
                <div class="actions">
                    <button
                        type="submit"
                        class="primary"
                        data-testid="submit"
                        disabled=cannot_submit
                    >
                        {move || match submission.get() {
                            Submission::Sending => ui(lang.get(), "Enviando…", "Sending…"),
                            _ => ui(lang.get(), "Enviar solicitud", "Submit application"),
                        }}
                    </button>
                    <button type="button" class="secondary" data-testid="fill-example" on:click=fill_example>
                        {move || ui(lang.get(), "Rellenar ejemplo", "Fill in example")}
                    </button>
                    <p class="form-status" data-testid="form-status" aria-live="polite">
                        {move || match error_count.get() {
                            0 => ui(lang.get(), "Lista para enviar.", "Ready to submit.").to_owned(),
                            count => match lang.get() {
                                Lang::Es => format!("{count} punto(s) por completar o corregir."),
                                Lang::En => format!("{count} item(s) to complete or fix."),
                            },
                        }}
                    </p>
                </div>
            </form>
            <div class="side">
                <ScorePanel lang local model_load_ms />
                <ResultPanel lang submission local />
                <OutboxPanel lang queue />
            </div>
        </main>
    }
}

/// The logo, the name and what this page is for (Spanish, English).
#[component]
pub(crate) fn Brand(lang: RwSignal<Lang>, tagline: (&'static str, &'static str)) -> impl IntoView {
    view! {
        <div class="brand">
            <span class="logo" aria-hidden="true">"V"</span>
            <div>
                <h1>"Valle"</h1>
                <p class="tagline">{move || ui(lang.get(), tagline.0, tagline.1)}</p>
            </div>
        </div>
    }
}

/// Switches the page between Spanish and English; labelled in the language it switches to.
#[component]
pub(crate) fn LangToggle(lang: RwSignal<Lang>) -> impl IntoView {
    view! {
        <button
            type="button"
            class="lang-toggle"
            data-testid="lang-toggle"
            lang=move || lang.get().other().tag()
            on:click=move |_| lang.update(|lang| *lang = lang.other())
        >
            {move || ui(lang.get(), "English", "Español")}
        </button>
    }
}

/// One labelled input with its errors.
#[component]
fn FieldControl(
    field: Field,
    lang: RwSignal<Lang>,
    draft: RwSignal<Draft>,
    touched: RwSignal<BTreeSet<Field>>,
    show_all: RwSignal<bool>,
    outcome: Memo<form::Outcome>,
) -> impl IntoView {
    let name = field.name();
    let input_id = format!("field-{name}");
    let error_id = format!("error-{name}");
    let errors = Memo::new(move |_| {
        outcome.with(|outcome| {
            touched.with(|touched| form::visible_errors(field, outcome, touched, show_all.get()))
        })
    });
    let invalid = move || {
        if errors.with(Vec::is_empty) {
            "false"
        } else {
            "true"
        }
    };
    let value = move || draft.with(|draft| draft.get(field).to_owned());
    let on_input = move |event: leptos::ev::Event| {
        let text = event_target_value(&event);
        draft.update(|draft| draft.set(field, text));
        touched.update(|touched| {
            touched.insert(field);
        });
    };
    let on_blur = move |_| {
        touched.update(|touched| {
            touched.insert(field);
        });
    };
    let required = field.is_required();
    let hint = move || hint_text(field, lang.get());

    let control = match field.rule() {
        FieldRule::Choice(values) => view! {
            <select
                id=input_id.clone()
                name=name
                data-testid=format!("input-{name}")
                required=required
                aria-invalid=invalid
                aria-describedby=error_id.clone()
                prop:value=value
                on:change=on_input
                on:blur=on_blur
            >
                <option value="">{move || ui(lang.get(), "— Elija —", "— Choose —")}</option>
                {values
                    .iter()
                    .map(|&value| view! { <option value=value>{move || choice_label(value, lang.get())}</option> })
                    .collect_view()}
            </select>
        }
        .into_any(),
        rule => {
            let inputmode = match rule {
                FieldRule::Integer { .. } => "numeric",
                FieldRule::Money { .. } => "decimal",
                _ => "text",
            };
            view! {
                <input
                    id=input_id.clone()
                    name=name
                    type="text"
                    inputmode=inputmode
                    autocomplete="off"
                    data-testid=format!("input-{name}")
                    required=required
                    aria-invalid=invalid
                    aria-describedby=error_id.clone()
                    prop:value=value
                    on:input=on_input
                    on:blur=on_blur
                />
            }
            .into_any()
        }
    };

    view! {
        <div class="field" class:has-error=move || !errors.with(Vec::is_empty)>
            <label for=input_id>
                {move || field.label(lang.get())}
                {(!required).then(|| view! { <span class="optional">{move || ui(lang.get(), " (opcional)", " (optional)")}</span> })}
            </label>
            {control}
            <p class="hint">{hint}</p>
            <ul class="errors" id=error_id data-testid=format!("error-{name}") aria-live="polite">
                {move || {
                    errors
                        .get()
                        .into_iter()
                        .map(|error| error_item(error, lang.get()))
                        .collect_view()
                }}
            </ul>
        </div>
    }
}

fn error_item(error: FieldError, lang: Lang) -> impl IntoView {
    view! {
        <li data-code=error.code.as_str() data-field=error.field.clone()>
            {error.message.get(lang).to_owned()}
        </li>
    }
}

/// The allowed range under each numeric input, so a person knows the bounds before erring.
fn hint_text(field: Field, lang: Lang) -> String {
    match field.rule() {
        FieldRule::Integer { min, max } => match lang {
            Lang::Es => format!("Entre {min} y {max}."),
            Lang::En => format!("Between {min} and {max}."),
        },
        FieldRule::Money { min, max } => {
            let (min, max) = (format_money(min, lang), format_money(max, lang));
            match lang {
                Lang::Es => format!("Entre {min} y {max} €, hasta dos decimales."),
                Lang::En => format!("Between €{min} and €{max}, up to two decimals."),
            }
        }
        FieldRule::Choice(_) => String::new(),
        FieldRule::Text { max_chars, .. } => match lang {
            Lang::Es => format!("Hasta {max_chars} caracteres."),
            Lang::En => format!("Up to {max_chars} characters."),
        },
    }
}

/// The edge's answer to the last submission.
#[component]
fn ResultPanel(
    lang: RwSignal<Lang>,
    submission: RwSignal<Submission>,
    local: Memo<Option<LocalScore>>,
) -> impl IntoView {
    view! {
        <section class="result" data-testid="result" aria-live="polite">
            <h2>{move || ui(lang.get(), "Respuesta del servidor", "Server answer")}</h2>
            {move || match submission.get() {
                Submission::Idle => view! {
                    <p class="muted" data-testid="result-idle">
                        {ui(lang.get(), "Aún no se ha enviado ninguna solicitud.", "No application sent yet.")}
                    </p>
                }
                .into_any(),
                Submission::Sending => view! {
                    <p class="muted" data-testid="result-sending" role="status">
                        {ui(lang.get(), "Enviando…", "Sending…")}
                    </p>
                }
                .into_any(),
                Submission::Answered(answer) => {
                    let local = local.with(|local| {
                        local.as_ref().and_then(|local| local.result.as_ref().ok().cloned())
                    });
                    answered(*answer, local, lang.get()).into_any()
                }
                Submission::Failed(error) => failed(error, lang.get()).into_any(),
                Submission::Queued(event_id) => view! {
                    <div class="answer queued" data-testid="result-queued" data-event-id=event_id.to_owned() role="status">
                        <p class="verdict">{ui(lang.get(), "Sin conexión: solicitud guardada en este dispositivo.", "Offline: application kept on this device.")}</p>
                        <p>{ui(lang.get(), "Se enviará sola al volver la conexión. Referencia: ", "It will be sent by itself when the connection is back. Reference: ")}<code>{event_id.clone()}</code></p>
                    </div>
                }
                .into_any(),
                Submission::NotKept(reason) => view! {
                    <div class="answer error" data-testid="result-error" data-code="E_STORAGE" role="alert">
                        <p class="verdict">{ui(lang.get(), "Sin conexión, y este navegador no permite guardarla. Inténtelo más tarde.", "Offline, and this browser does not allow keeping it. Please try later.")}</p>
                        <p class="small">{reason}</p>
                    </div>
                }
                .into_any(),
            }}
        </section>
    }
}

fn answered(answer: ScoreResponse, local: Option<Score>, lang: Lang) -> impl IntoView {
    let edge = answer.score.clone();
    let same_model = local
        .as_ref()
        .is_none_or(|local| local.model_version == edge.model_version);
    let same_score = local
        .as_ref()
        .is_some_and(|local| local.probability.to_bits() == edge.probability.to_bits());
    let total_ms = answer
        .timing
        .iter()
        .find(|stage| stage.name == "total")
        .map_or(0.0, |stage| stage.ms);
    let application = answer.application;
    view! {
        <div class="answer ok" data-testid="result-ok">
            <p class="verdict">{ui(lang, "Solicitud validada por el servidor.", "Application validated by the server.")}</p>
            <dl>
                <dt>{ui(lang, "Referencia", "Reference")}</dt>
                <dd data-testid="result-request-id"><code>{answer.request_id}</code></dd>
                <dt>{ui(lang, "Importe", "Amount")}</dt>
                <dd data-testid="result-amount">{format!("{} €", format_money(application.amount, lang))}</dd>
                <dt>{ui(lang, "Plazo", "Term")}</dt>
                <dd>{format!("{} {}", application.term_months, ui(lang, "meses", "months"))}</dd>
                <dt>{ui(lang, "Probabilidad en el servidor", "Probability at the server")}</dt>
                <dd data-testid="result-probability" data-probability=edge.probability.to_string()>
                    {percent(edge.probability)}
                    {same_score.then(|| view! {
                        <span class="match" data-testid="result-match">
                            {ui(lang, " · igual que en el navegador", " · same as in the browser")}
                        </span>
                    })}
                </dd>
                <dt>{ui(lang, "Tiempo en el servidor", "Time at the server")}</dt>
                <dd data-testid="result-timing">{format!("{total_ms:.1} ms")}</dd>
            </dl>
            {(!same_model).then(|| view! {
                <p class="warning" data-testid="model-mismatch" role="alert">
                    {ui(
                        lang,
                        "Atención: el servidor usa otra versión del modelo que esta página. Recargue la página.",
                        "Warning: the server runs a different model version than this page. Reload the page.",
                    )}
                    " (" {edge.model_version.sha256.chars().take(12).collect::<String>()} ")"
                </p>
            })}
        </div>
    }
}

/// Applications kept on this device while offline, with where each one stands.
#[component]
fn OutboxPanel(lang: RwSignal<Lang>, queue: sync::Outbox) -> impl IntoView {
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
        outbox::SyncState::Synced { .. } => {
            ("synced", ui(lang, "Sincronizada", "Synced"), String::new())
        }
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

fn failed(error: ClientError, lang: Lang) -> impl IntoView {
    let (code, message, fields) = match error {
        ClientError::Refused(body) => (body.code, body.message.get(lang).to_owned(), body.fields),
        ClientError::Unexpected { status } => (
            "E_UNEXPECTED".to_owned(),
            match lang {
                Lang::Es => format!("Respuesta inesperada del servidor (HTTP {status})."),
                Lang::En => format!("Unexpected answer from the server (HTTP {status})."),
            },
            Vec::new(),
        ),
        ClientError::Network(_) => (
            "E_NETWORK".to_owned(),
            ui(
                lang,
                "No hay conexión con el servidor. Compruebe la red e inténtelo de nuevo.",
                "The server cannot be reached. Check the network and try again.",
            )
            .to_owned(),
            Vec::new(),
        ),
    };
    view! {
        <div class="answer error" data-testid="result-error" data-code=code role="alert">
            <p class="verdict">{message}</p>
            <ul data-testid="server-errors">
                {fields.into_iter().map(|error| error_item(error, lang)).collect_view()}
            </ul>
        </div>
    }
}

/// A probability as a percentage with one decimal.
pub(crate) fn percent(probability: f32) -> String {
    format!("{:.1} %", f64::from(probability) * 100.0)
}

pub(crate) fn band_text(band: Band, lang: Lang) -> &'static str {
    match band {
        Band::Bajo => ui(lang, "Riesgo bajo", "Low risk"),
        Band::Medio => ui(lang, "Riesgo medio", "Medium risk"),
        Band::Alto => ui(lang, "Riesgo alto", "High risk"),
    }
}

pub(crate) fn decision_text(decision: Decision, lang: Lang) -> &'static str {
    match decision {
        Decision::Approve => ui(lang, "Aprobar", "Approve"),
        Decision::Review => ui(lang, "Revisar", "Review"),
        Decision::Decline => ui(lang, "Denegar", "Decline"),
    }
}

/// The browser's own score, updated on every keystroke that leaves the form valid.
#[component]
fn ScorePanel(
    lang: RwSignal<Lang>,
    local: Memo<Option<LocalScore>>,
    model_load_ms: RwSignal<Option<f64>>,
) -> impl IntoView {
    view! {
        <section class="score" data-testid="score" aria-live="polite"
            data-model-load-ms=move || model_load_ms.get().map(|ms| format!("{ms:.3}"))>
            <h2>{move || ui(lang.get(), "Puntuación instantánea", "Instant score")}</h2>
            {move || match local.get() {
                None => view! {
                    <p class="muted" data-testid="score-pending">
                        {ui(lang.get(), "Complete el formulario para ver la puntuación.", "Complete the form to see the score.")}
                    </p>
                }
                .into_any(),
                Some(LocalScore { result: Err(_), .. }) => view! {
                    <p class="warning" data-testid="score-error" role="alert">
                        {ui(lang.get(), "El modelo no se pudo cargar en este navegador.", "The model could not be loaded in this browser.")}
                    </p>
                }
                .into_any(),
                Some(LocalScore { result: Ok(score), ms }) => score_card(score, ms, lang.get()).into_any(),
            }}
        </section>
    }
}

fn score_card(score: Score, ms: f64, lang: Lang) -> impl IntoView {
    let band_class = format!("band band-{}", score.band.as_str());
    let summary = decision_summary(&score, lang);
    view! {
        {summary}
        <div class="score-card" data-testid="score-card">
            <p class=band_class data-testid="score-band" data-band=format!("{:?}", score.band).to_lowercase()>
                {band_text(score.band, lang)}
            </p>
            <dl>
                <dt>{ui(lang, "Probabilidad de impago", "Probability of default")}</dt>
                <dd data-testid="score-probability" data-probability=score.probability.to_string()>
                    {percent(score.probability)}
                </dd>
                <dt>{ui(lang, "Decisión propuesta", "Proposed decision")}</dt>
                <dd data-testid="score-decision" data-decision=format!("{:?}", score.decision).to_lowercase()>
                    {decision_text(score.decision, lang)}
                </dd>
                <dt>{ui(lang, "Confianza", "Confidence")}</dt>
                <dd data-testid="score-confidence">{format!("{:.0} %", f64::from(score.confidence) * 100.0)}</dd>
            </dl>
            <h3>{ui(lang, "Factores que más elevan el riesgo", "Factors raising the risk most")}</h3>
            {if score.reasons.is_empty() {
                view! { <p class="muted">{ui(lang, "Ninguno destacable.", "None stands out.")}</p> }.into_any()
            } else {
                view! {
                    <ol class="reasons" data-testid="score-reasons">
                        {score
                            .reasons
                            .into_iter()
                            .map(|reason| view! {
                                <li data-code=reason.code>{reason.message.get(lang).to_owned()}</li>
                            })
                            .collect_view()}
                    </ol>
                }
                .into_any()
            }}
            <p class="muted small" data-testid="score-time" data-ms=format!("{ms:.3}")>
                {match lang {
                    Lang::Es => format!("Calculado en este navegador en {ms:.2} ms, sin usar la red."),
                    Lang::En => format!("Computed in this browser in {ms:.2} ms, without the network."),
                }}
                " " {ui(lang, "Modelo", "Model")} " " {score.model_version.name} " · "
                <code>{score.model_version.sha256.chars().take(12).collect::<String>()}</code>
            </p>
            <button type="button" class="secondary no-print" data-testid="print-summary"
                on:click=move |_| { let _ = window().print(); }>
                {ui(lang, "Imprimir resumen para el solicitante", "Print the applicant's summary")}
            </button>
        </div>
    }
}

/// The printable decision summary for the applicant (shown only when printing): the
/// decision, band, probability and the main reasons in plain words, and what the applicant
/// can do next, as an adverse-action notice would say.
fn decision_summary(score: &Score, lang: Lang) -> impl IntoView {
    let today = js_sys::Date::new_0()
        .to_iso_string()
        .as_string()
        .map(|iso| iso.chars().take(10).collect::<String>())
        .unwrap_or_default();
    let next_steps = match score.decision {
        Decision::Approve => ui(
            lang,
            "Su solicitud cumple los criterios de riesgo de la cooperativa. Un oficial le confirmará las condiciones.",
            "Your application meets the cooperative's risk criteria. An officer will confirm the terms.",
        ),
        Decision::Review => ui(
            lang,
            "Un oficial revisará su solicitud personalmente antes de decidir. Puede aportar documentación que explique los motivos indicados.",
            "An officer will review your application in person before deciding. You may bring documents that explain the reasons below.",
        ),
        Decision::Decline => ui(
            lang,
            "Con los datos actuales no podemos aprobar la solicitud. Tiene derecho a conocer los motivos principales, que se indican abajo, y a pedir que un oficial revise la decisión o corrija datos erróneos.",
            "With the current data we cannot approve the application. You have the right to know the main reasons, listed below, and to ask an officer to review the decision or correct wrong data.",
        ),
    };
    view! {
        <section class="print-summary" data-testid="print-summary-sheet" aria-hidden="true">
            <h2>{ui(lang, "Valle · Resumen de la evaluación de su solicitud", "Valle · Summary of your application's assessment")}</h2>
            <p class="small">{ui(lang, "Fecha: ", "Date: ")}{today}</p>
            <dl>
                <dt>{ui(lang, "Decisión propuesta", "Proposed decision")}</dt>
                <dd data-testid="summary-decision">{decision_text(score.decision, lang)}</dd>
                <dt>{ui(lang, "Nivel de riesgo", "Risk level")}</dt>
                <dd>{band_text(score.band, lang)}</dd>
                <dt>{ui(lang, "Probabilidad estimada de impago", "Estimated probability of default")}</dt>
                <dd>{percent(score.probability)}</dd>
            </dl>
            <p>{next_steps}</p>
            <h3>{ui(lang, "Motivos principales", "Main reasons")}</h3>
            {if score.reasons.is_empty() {
                view! { <p>{ui(lang, "Ningún dato eleva el riesgo de forma destacable.", "No information raises the risk notably.")}</p> }.into_any()
            } else {
                view! {
                    <ol data-testid="summary-reasons">
                        {score.reasons.iter().take(4).map(|reason| view! {
                            <li data-code=reason.code.clone()>{reason.message.get(lang).to_owned()}</li>
                        }).collect_view()}
                    </ol>
                }.into_any()
            }}
            <p class="small">
                {ui(
                    lang,
                    "Esta evaluación es automática y orientativa; la decisión final la toma un oficial de la cooperativa. Modelo: ",
                    "This assessment is automatic and indicative; an officer of the cooperative makes the final decision. Model: ",
                )}
                {score.model_version.name.clone()}
            </p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_cover_every_field_once_in_order() {
        let covered: Vec<Field> = SECTIONS
            .iter()
            .flat_map(|(_, _, range)| Field::ALL[range.clone()].iter().copied())
            .collect();
        assert_eq!(covered, Field::ALL);
        assert_eq!(
            &Field::ALL[SECTIONS[1].2.clone()],
            &[Field::Income, Field::Expenses, Field::Assets, Field::Debt]
        );
    }

    #[test]
    fn the_path_picks_the_page() {
        for (path, page) in [
            ("/", Page::Scoring),
            ("", Page::Scoring),
            ("/panel", Page::Panel),
            ("/panel/", Page::Panel),
            ("/panel/index.html", Page::Scoring),
            ("/panels", Page::Scoring),
            ("/index.html", Page::Scoring),
        ] {
            assert_eq!(Page::for_path(path), page, "{path}");
        }
    }
}
