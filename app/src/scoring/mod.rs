//! The scoring page: the application form, validated as the person types with the same
//! shared rules the edge runs, scored in the browser, and submitted to the edge (or kept on
//! the device while offline).
//!
//! Components only wire signals to pure functions in [`form`] and to [`crate::client`]; no
//! rule of the application is decided in a `view!`.

mod field;
pub mod form;
mod outbox_panel;
mod result;
mod score_card;
pub mod scorer;
pub use scorer::score_json;

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use valle_shared::api::ScoreResponse;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::intake::draft::Draft;
use valle_shared::{Field, Lang, Score};

use crate::chrome::{ui, use_lang, Brand, LangToggle};
use crate::client::{post_score, ClientError};
use crate::{prerendered, sync};
use field::{FieldControl, FormState};
use outbox_panel::OutboxPanel;
use result::ResultPanel;
use score_card::ScorePanel;

/// Milliseconds from the page's time origin, for the score timings the page shows.
fn now_ms() -> f64 {
    window()
        .performance()
        .map_or(0.0, |performance| performance.now())
}

/// The browser's own score of the current form and how long it took.
#[derive(Clone, Debug, PartialEq)]
struct LocalScore {
    /// The score, or the error code the edge would give.
    result: Result<Score, ErrorCode>,
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

/// The application form with its instant score and submission to the edge.
#[component]
pub fn ScoringPage() -> impl IntoView {
    let lang = use_lang();
    // Whatever was typed into the first view before the app arrived is kept.
    let typed = prerendered::typed();
    let touched = RwSignal::new(
        typed
            .iter()
            .map(|(field, _)| *field)
            .collect::<BTreeSet<Field>>(),
    );
    let draft = RwSignal::new(
        typed
            .into_iter()
            .fold(Draft::new(), |draft, (field, text)| draft.with(field, text)),
    );
    let show_all = RwSignal::new(false);
    let submission = RwSignal::new(Submission::Idle);
    let queue = sync::Outbox::start();

    let body = Memo::new(move |_| draft.with(Draft::to_body));
    let outcome = Memo::new(move |_| body.with(|body| form::validate_body(body)));
    // Scored in the browser, in the scoring worker, as soon as the form is valid: no
    // network involved. Only the answer to the latest body is shown.
    let scorer = scorer::Scorer::start();
    let model = scorer.state;
    let local = RwSignal::new(None::<LocalScore>);
    let latest = StoredValue::new(0u64);
    Effect::new(move |_| {
        let ready = matches!(model.get(), scorer::ModelState::Ready { .. });
        let body = body.get();
        if outcome.with(Result::is_err) {
            local.set(None);
            return;
        }
        if !ready {
            return;
        }
        let ask = latest.get_value() + 1;
        latest.set_value(ask);
        let scorer = scorer.clone();
        spawn_local(async move {
            let started = now_ms();
            let result = scorer.score(body).await;
            if latest.get_value() == ask {
                local.set(Some(LocalScore {
                    result,
                    ms: now_ms() - started,
                }));
            }
        });
    });
    let error_count = Memo::new(move |_| outcome.with(form::error_count));
    let form = FormState {
        draft,
        touched,
        show_all,
        outcome,
    };

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
            <Brand tagline=("Evaluación de solicitudes de préstamo", "Loan application scoring") />
            <LangToggle />
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
                                            view! { <FieldControl field form /> }
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
                <ScorePanel local model />
                <ResultPanel submission local />
                <OutboxPanel queue />
            </div>
        </main>
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
}
