//! The browser's own score of the form, with its reasons and the applicant's printable
//! summary, both as `models/disclosure.json` lets the applicant see them.

use leptos::prelude::*;
use valle_shared::decision::disclosure::Disclosure;
use valle_shared::decision::model::Decision;
use valle_shared::{Lang, Score};

use super::scorer::ModelState;
use super::LocalScore;
use crate::chrome::{band_text, decision_text, percent, ui, use_lang};

/// The browser's own score, updated on every keystroke that leaves the form valid.
#[component]
pub(super) fn ScorePanel(
    local: RwSignal<Option<LocalScore>>,
    model: RwSignal<ModelState>,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <section class="score" data-testid="score" aria-live="polite"
            data-model-load-ms=move || match model.get() {
                ModelState::Ready { load_ms } => Some(format!("{load_ms:.3}")),
                _ => None,
            }>
            <h2>{move || ui(lang.get(), "Puntuación instantánea", "Instant score")}</h2>
            {move || match (local.get(), model.get()) {
                (None, ModelState::Loading) => view! {
                    <p class="muted" data-testid="score-loading" role="status">
                        {ui(
                            lang.get(),
                            "Cargando el modelo… Puede rellenar el formulario mientras tanto.",
                            "Loading the model… You can fill in the form meanwhile.",
                        )}
                    </p>
                }
                .into_any(),
                (None, ModelState::Ready { .. }) => view! {
                    <p class="muted" data-testid="score-pending">
                        {ui(lang.get(), "Complete el formulario para ver la puntuación.", "Complete the form to see the score.")}
                    </p>
                }
                .into_any(),
                (None, ModelState::Failed(_)) | (Some(LocalScore { result: Err(_), .. }), _) => view! {
                    <p class="warning" data-testid="score-error" role="alert">
                        {ui(lang.get(), "El modelo no se pudo cargar en este navegador.", "The model could not be loaded in this browser.")}
                    </p>
                }
                .into_any(),
                (Some(LocalScore { result: Ok(score), ms }), _) => {
                    score_card(Disclosure::committed().for_applicant(&score), ms, lang.get()).into_any()
                }
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
            {policy_hits(&score, lang, "score-policy")}
            {recourse(&score, lang, "score-recourse")}
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
                {score.policy_version.map(|policy| view! {
                    " · " {ui(lang, "Política", "Policy")} " " {policy.name} " · "
                    <code>{policy.sha256.chars().take(12).collect::<String>()}</code>
                })}
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
            {policy_hits(score, lang, "summary-policy")}
            {recourse(score, lang, "summary-recourse")}
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
            <p data-testid="summary-human-review">
                {ui(
                    lang,
                    "Tiene derecho a que una persona revise esta decisión automática: pídalo con «Pedir revisión por una persona» tras enviar la solicitud, o en su sucursal, indicando la referencia.",
                    "You have the right to have a person review this automated decision: ask with \"Ask for a person to review it\" after sending the application, or at your branch, quoting the reference.",
                )}
            </p>
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

/// The cooperative's policy rules that decided or referred the application, with their
/// reasons; nothing when none held.
fn policy_hits(score: &Score, lang: Lang, testid: &'static str) -> Option<impl IntoView> {
    (!score.policy_hits.is_empty()).then(|| {
        view! {
            <h3>{ui(lang, "Reglas de la cooperativa", "The cooperative's rules")}</h3>
            <ul class="policy-hits" data-testid=testid>
                {score.policy_hits.iter().map(|hit| view! {
                    <li data-code=hit.code.clone() data-action=hit.action.decision().as_str()>
                        {hit.message.get(lang).to_owned()}
                    </li>
                }).collect_view()}
            </ul>
        }
    })
}

/// What the applicant could change to be approved: term, down payment or a cheaper good,
/// as the model and the rules re-scored it; nothing for an approval or when no change is
/// enough.
fn recourse(score: &Score, lang: Lang, testid: &'static str) -> Option<impl IntoView> {
    (!score.recourse.is_empty()).then(|| {
        view! {
            <h3>{ui(lang, "Qué cambiaría la respuesta", "What would change the answer")}</h3>
            <ul class="recourse" data-testid=testid>
                {score.recourse.iter().map(|suggestion| view! {
                    <li data-lever=suggestion.lever.as_str()>
                        {suggestion.message.get(lang).to_owned()}
                    </li>
                }).collect_view()}
            </ul>
        }
    })
}
