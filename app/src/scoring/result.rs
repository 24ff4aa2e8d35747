//! The edge's answer to the last submission: validated and scored, refused, or kept on the
//! device while offline.

use leptos::prelude::*;
use leptos::task::spawn_local;
use valle_shared::api::{HumanReviewResponse, ScoreResponse};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::i18n::format_money;
use valle_shared::contract::request::Stage;
use valle_shared::records::decisions::is_mismatch;
use valle_shared::records::events::ClientScore;
use valle_shared::{Lang, Score};

use super::field::error_item;
use super::{LocalScore, Submission};
use crate::chrome::{percent, ui, use_lang};
use crate::client::{post_human_review, ClientError};

/// The edge's answer to the last submission.
#[component]
pub(super) fn ResultPanel(
    submission: RwSignal<Submission>,
    local: RwSignal<Option<LocalScore>>,
) -> impl IntoView {
    let lang = use_lang();
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
                    <div class="answer error" data-testid="result-error" data-code=ErrorCode::Storage.as_str() role="alert">
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
    let same_policy = local
        .as_ref()
        .is_none_or(|local| local.policy_version == edge.policy_version);
    let same_score = local.as_ref().is_some_and(|local| {
        let client = ClientScore {
            probability: local.probability,
            model_version: Some(local.model_version.clone()),
        };
        !is_mismatch(&client, &edge)
    });
    let total_ms = answer
        .timing
        .iter()
        .find(|stage| stage.name == Stage::Total.as_str())
        .map_or(0.0, |stage| stage.ms);
    let application = answer.application;
    let request_id = answer.request_id.clone();
    let receipt = answer.receipt.clone();
    view! {
        <div class="answer ok" data-testid="result-ok">
            <p class="verdict">{ui(lang, "Solicitud validada por el servidor.", "Application validated by the server.")}</p>
            <dl class="answer-facts">
                <dt>{ui(lang, "Referencia", "Reference")}</dt>
                <dd class="request-id" data-testid="result-request-id"><code>{answer.request_id}</code></dd>
                {receipt.clone().map(|receipt| view! {
                    <dt>{ui(lang, "Recibo", "Receipt")}</dt>
                    <dd class="request-id" data-testid="result-receipt">
                        <code>{receipt}</code>
                        <span class="small muted">
                            " "{ui(
                                lang,
                                "Guárdelo: prueba que la solicitud es suya, para pedir revisión o consultarla.",
                                "Keep it: it proves the application is yours, to ask for a review or read it back.",
                            )}
                        </span>
                    </dd>
                })}
                <dt>{ui(lang, "Importe", "Amount")}</dt>
                <dd data-testid="result-amount">{format!("{} €", format_money(application.amount, lang))}</dd>
                <dt>{ui(lang, "Plazo", "Term")}</dt>
                <dd>{format!("{} {}", application.term_months, ui(lang, "meses", "months"))}</dd>
                <dt>{ui(lang, "Probabilidad en el servidor", "Probability at the server")}</dt>
                <dd data-testid="result-probability" data-probability=edge.probability.to_string()>
                    {percent(edge.probability)}
                    {same_score.then(|| view! {
                        " "
                        <span class="match" data-testid="result-match">
                            {ui(lang, "igual que en el navegador", "same as in the browser")}
                        </span>
                    })}
                </dd>
                <dt>{ui(lang, "Tiempo en el servidor", "Time at the server")}</dt>
                <dd data-testid="result-timing">{format!("{total_ms:.1} ms")}</dd>
            </dl>
            {(!same_model).then(|| version_warning(
                "model-mismatch",
                ui(
                    lang,
                    "Atención: el servidor usa otra versión del modelo que esta página. Recargue la página.",
                    "Warning: the server runs a different model version than this page. Reload the page.",
                ),
                Some(&edge.model_version.sha256),
            ))}
            {(!same_policy).then(|| version_warning(
                "policy-mismatch",
                ui(
                    lang,
                    "Atención: el servidor aplica otra versión de las reglas de la cooperativa que esta página. Recargue la página.",
                    "Warning: the server applies a different version of the cooperative's rules than this page. Reload the page.",
                ),
                edge.policy_version.as_ref().map(|policy| policy.sha256.as_str()),
            ))}
            {receipt.map(|receipt| view! { <HumanReview request_id receipt /> })}
        </div>
    }
}

/// A warning that the edge answered with another version than this page holds, with the
/// start of the edge's digest.
fn version_warning(
    test_id: &'static str,
    text: &'static str,
    sha256: Option<&str>,
) -> impl IntoView {
    let digest: Option<String> = sha256.map(|sha| sha.chars().take(12).collect());
    view! {
        <p class="warning" data-testid=test_id role="alert">
            {text} " (" {digest} ")"
        </p>
    }
}

/// The applicant's right to a person's review of the automated decision: one button that
/// puts the application in the officers' queue, with the decision's receipt.
#[component]
fn HumanReview(request_id: String, receipt: String) -> impl IntoView {
    let lang = use_lang();
    let asked = RwSignal::new(None::<Result<HumanReviewResponse, ClientError>>);
    let sending = RwSignal::new(false);
    let ask = move |_| {
        if sending.get_untracked() {
            return;
        }
        sending.set(true);
        let (request_id, receipt) = (request_id.clone(), receipt.clone());
        spawn_local(async move {
            let result = post_human_review(&request_id, &receipt).await;
            sending.try_set(false);
            asked.try_set(Some(result));
        });
    };
    view! {
        {move || match asked.get() {
            Some(Ok(answer)) => view! {
                <p class="answer ok" role="status" data-testid="human-review-done">{answer.message.get(lang.get()).to_owned()}</p>
            }.into_any(),
            other => view! {
                <p class="no-print">
                    <button type="button" class="secondary" data-testid="human-review" disabled=move || sending.get() on:click=ask.clone()>
                        {ui(lang.get(), "Pedir revisión por una persona", "Ask for a person to review it")}
                    </button>
                    {other.and_then(Result::err).map(|error| view! {
                        " "<span class="error" role="alert" data-testid="human-review-error">{error.body().message.get(lang.get()).to_owned()}</span>
                    })}
                </p>
            }.into_any(),
        }}
    }
}

fn failed(error: ClientError, lang: Lang) -> impl IntoView {
    let (code, message, fields) = match error {
        ClientError::Refused(body) => (body.code, body.message.get(lang).to_owned(), body.fields),
        ClientError::Unexpected { status } => (
            ErrorCode::Unexpected,
            match lang {
                Lang::Es => format!("Respuesta inesperada del servidor (HTTP {status})."),
                Lang::En => format!("Unexpected answer from the server (HTTP {status})."),
            },
            Vec::new(),
        ),
        ClientError::Network(_) => (
            ErrorCode::Network,
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
        <div class="answer error" data-testid="result-error" data-code=code.as_str() role="alert">
            <p class="verdict">{message}</p>
            <ul data-testid="server-errors">
                {fields.into_iter().map(|error| error_item(error, lang)).collect_view()}
            </ul>
        </div>
    }
}
