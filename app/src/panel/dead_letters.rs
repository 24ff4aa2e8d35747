//! Dead letters, with replay as they are or corrected.

use leptos::prelude::*;
use valle_shared::contract::errors::ErrorBody;
use valle_shared::records::decisions::{
    DeadLetter, DeadLetterPage, DeadLetterStatus, ReplayResponse,
};
use valle_shared::Lang;

use super::dashboard::{dead_letters_path, format_time, replay_body, replay_path};
use super::pager::{Pager, Pages};
use super::section::{refusal_view, Choice, ChoiceFilter, RefreshButton, SectionHead};
use super::session::{status_line, use_session, Load};
use crate::chrome::{band_text, decision_text, ui, use_lang};
use crate::client::officer_post;

/// Dead letters, newest first, with replay as they are or corrected.
#[component]
pub(super) fn DeadLetters() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let status = RwSignal::new(DeadLetterStatus::Open.as_str().to_owned());
    let letters = RwSignal::new(Load::<DeadLetterPage>::Loading);
    let reload = RwSignal::new(0u32);
    // Pages go back in time by id.
    let pages = Pages::<i64>::new();
    session.follow(letters, move || {
        reload.track();
        dead_letters_path(
            status.with(|name| DeadLetterStatus::from_name(name)),
            pages.cursor(),
        )
    });
    view! {
        <section class="section" data-testid="dead-letters">
            <SectionHead es="Cartas muertas" en="Dead letters">
                <ChoiceFilter es="Estado" en="Status" test_id="dead-letter-status"
                    choices=status_choices() chosen=status on_pick=Callback::new(move |()| pages.reset()) />
                <RefreshButton test_id="dead-letters-refresh" reload />
            </SectionHead>
            <p class="muted small">
                {move || ui(
                    lang.get(),
                    "Eventos aceptados que no pudieron convertirse en decisión. Reprocéselos tal cual o corrija la solicitud (JSON).",
                    "Accepted events that could not become a decision. Replay them as they are or correct the application (JSON).",
                )}
            </p>
            {move || letters.with(|load| status_line(load, lang.get()))}
            {move || match letters.get() {
                Load::Ready(page) if page.dead_letters.is_empty() => Some(view! {
                    <p class="muted" data-testid="dead-letters-empty">{ui(lang.get(), "No hay cartas muertas.", "No dead letters.")}</p>
                }.into_any()),
                Load::Ready(page) => {
                    let next = page.next_cursor;
                    Some(view! {
                        <ul class="letters" data-testid="dead-letters-list">
                            {page.dead_letters.into_iter().map(|letter| view! {
                                <DeadLetterItem letter on_replayed=move || reload.update(|n| *n += 1) />
                            }).collect_view()}
                        </ul>
                        <Pager pages next name="dead-letters" back=("Más recientes", "Newer") forward=("Más antiguas", "Older") />
                    }.into_any())
                }
                _ => None,
            }}
        </section>
    }
}

#[component]
fn DeadLetterItem(letter: DeadLetter, on_replayed: impl Fn() + Copy + 'static) -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let id = letter.id;
    let correction = RwSignal::new(pretty_json(&letter.payload.application));
    let outcome = RwSignal::new(None::<Result<ReplayResponse, ErrorBody>>);
    let sending = RwSignal::new(false);
    let replay = move |as_corrected: bool| {
        let body = if as_corrected {
            match replay_body(&correction.get_untracked()) {
                Ok(body) => body,
                Err(error) => {
                    outcome.set(Some(Err(ErrorBody::of_request(&error, None))));
                    return;
                }
            }
        } else {
            None
        };
        sending.set(true);
        session.fetch(
            move |token| async move {
                officer_post::<ReplayResponse>(&replay_path(id), &token, body).await
            },
            move |result| {
                sending.try_set(false);
                let replayed = result.is_ok();
                outcome.try_set(Some(result.map_err(|error| error.body())));
                if replayed {
                    on_replayed();
                }
            },
        );
    };
    let open = letter.status == DeadLetterStatus::Open;
    view! {
        <li class="card-box letter" data-testid="dead-letter-row" data-id=id data-event-id=letter.event_id.clone() data-status=letter.status.as_str()>
            <p>
                <strong>{"#"}{id}</strong>" · "<code>{letter.event_id.clone()}</code>" · "
                <span class="error-code" data-testid="dead-letter-code">{letter.error_code.as_str()}</span>
            </p>
            <p class="small">{letter.error_message.clone()}</p>
            <p class="small muted">
                {move || ui(lang.get(), "Intentos: ", "Attempts: ")}{letter.attempts}" · "
                {move || ui(lang.get(), "Último fallo: ", "Last failure: ")}{format_time(letter.last_failed_at_ms)}
            </p>
            {open.then(|| view! {
                <label class="correction">
                    <span>{move || ui(lang.get(), "Solicitud (JSON, editable)", "Application (JSON, editable)")}</span>
                    <textarea rows="6" data-testid="replay-correction"
                        prop:value=move || correction.get()
                        on:input=move |event| correction.set(event_target_value(&event))></textarea>
                </label>
                <div class="actions">
                    <button type="button" class="primary" data-testid="replay-corrected" disabled=move || sending.get() on:click=move |_| replay(true)>
                        {move || ui(lang.get(), "Reprocesar con la corrección", "Replay with the correction")}
                    </button>
                    <button type="button" class="secondary" data-testid="replay-as-is" disabled=move || sending.get() on:click=move |_| replay(false)>
                        {move || ui(lang.get(), "Reprocesar tal cual", "Replay as it is")}
                    </button>
                </div>
            })}
            {move || outcome.get().map(|outcome| match outcome {
                Ok(answer) => view! {
                    <p class="answer ok" data-testid="replay-result" data-outcome="ok" role="status">
                        {ui(lang.get(), "Decisión guardada: ", "Decision stored: ")}
                        {band_text(answer.decision.score.band, lang.get())}" · "{decision_text(answer.decision.score.decision, lang.get())}
                    </p>
                }.into_any(),
                Err(body) => {
                    let code = body.code.as_str();
                    view! {
                        <div data-testid="replay-result" data-outcome="error" data-code=code>
                            {refusal_view(body, "replay-refusal", lang.get())}
                        </div>
                    }.into_any()
                }
            })}
        </li>
    }
}

/// The status filter: each status, then all of them.
fn status_choices() -> Vec<Choice> {
    let mut choices: Vec<Choice> = DeadLetterStatus::ALL
        .map(|status| Choice {
            value: status.as_str(),
            es: status_text(status, Lang::Es),
            en: status_text(status, Lang::En),
        })
        .to_vec();
    choices.push(Choice {
        value: "",
        es: "Todas",
        en: "All",
    });
    choices
}

fn status_text(status: DeadLetterStatus, lang: Lang) -> &'static str {
    match status {
        DeadLetterStatus::Open => ui(lang, "Abiertas", "Open"),
        DeadLetterStatus::Replayed => ui(lang, "Reprocesadas", "Replayed"),
        DeadLetterStatus::Superseded => ui(lang, "Resueltas por reenvío", "Superseded"),
    }
}

/// The stored application text, indented for editing when it is JSON.
fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| text.to_owned())
}
