//! The review queue: the applications waiting for a person, one application's case with the
//! officer's decision form, and the supervisor's answer to a low-side approval.

use leptos::prelude::*;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::lending::officers::Permission;
use valle_shared::lending::review::{
    ApprovalAction, ReviewAction, ReviewCase, ReviewPage, REASON_CODES, REVIEW_ACTIONS,
};
use valle_shared::Lang;

use super::dashboard::format_time;
use super::decisions::decision_cells;
use super::lending::{
    approval_body, approval_path, decide_body, queue_path, review_path, state_badge,
    REQUESTED_FILTER,
};
use super::pager::{ListLayout, PagedList, Pages};
use super::section::{Choice, ChoiceFilter, FieldKind, FilterField, RefreshButton, SectionHead};
use super::session::{status_line, use_session, Load, Session};
use crate::chrome::{band_text, decision_text, percent, ui, use_lang};
use crate::client::{officer_get, officer_post, ClientError};

/// The queue's state filter: every open state, one, or the applicants' requests.
const FILTERS: [Choice; 5] = [
    Choice {
        value: "",
        es: "Todas las abiertas",
        en: "All open",
    },
    Choice {
        value: REQUESTED_FILTER,
        es: "Piden revisión humana",
        en: "Asked for a person",
    },
    Choice {
        value: "pending",
        es: "Pendientes",
        en: "Pending",
    },
    Choice {
        value: "info_requested",
        es: "Información pedida",
        en: "Information requested",
    },
    Choice {
        value: "awaiting_approval",
        es: "Esperan aprobación",
        en: "Awaiting approval",
    },
];

#[component]
pub(super) fn Reviews() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    // Supervisors land on what waits for them.
    let state = RwSignal::new(
        if session.may(Permission::Approve) && !session.may(Permission::Audit) {
            "awaiting_approval".to_owned()
        } else {
            String::new()
        },
    );
    let pages = Pages::<u64>::new();
    let page = RwSignal::new(Load::<ReviewPage>::Loading);
    let open = RwSignal::new(None::<String>);
    let reference = RwSignal::new(String::new());
    let reload = RwSignal::new(0u32);
    // Any decision can be opened by its reference, as an applicant quotes it.
    let open_reference = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let typed = reference.get_untracked().trim().to_owned();
        if !typed.is_empty() {
            open.set(Some(typed));
        }
    };
    session.follow(page, move || {
        reload.track();
        queue_path(&state.get(), pages.cursor())
    });
    view! {
        <section class="section" data-testid="reviews">
            <SectionHead es="Cola de revisión" en="Review queue">
                <ChoiceFilter es="Estado" en="State" test_id="queue-state"
                    choices=FILTERS.to_vec() chosen=state on_pick=Callback::new(move |()| pages.reset()) />
                <RefreshButton test_id="queue-refresh" reload />
            </SectionHead>
            <form class="filters" data-testid="open-reference" on:submit=open_reference>
                <FilterField es="Abrir por referencia" en="Open by reference" test_id="reference-input" kind=FieldKind::Text value=reference />
                <button type="submit" class="secondary" data-testid="reference-open">{move || ui(lang.get(), "Abrir", "Open")}</button>
            </form>
            <PagedList page pages layout=QUEUE_LIST
                split=|found: ReviewPage| (found.cases, found.next_cursor)
                row=move |case: ReviewCase| {
                    let id = case.decision.request_id.clone();
                    let row_id = id.clone();
                    let (state_text, class) = state_badge(case.review.state, lang.get());
                    let asked = case.review.human_review_requested_at_ms.is_some();
                    let contested = case.review.contest_comment.is_some();
                    view! {
                        <tr data-testid="queue-row" data-request-id=row_id data-state=case.review.state.as_str()>
                            {decision_cells(&case.decision, lang.get())}
                            <td>
                                <span class=class>{state_text}</span>
                                {asked.then(|| view! { " "<span class="badge warn" data-testid="human-review-asked">{ui(lang.get(), "pide revisión humana", "asked for a person")}</span> })}
                                {contested.then(|| view! { " "<span class="badge warn" data-testid="contested">{ui(lang.get(), "impugnada", "contested")}</span> })}
                            </td>
                            <td><button type="button" class="link" data-testid="queue-open" on:click=move |_| open.set(Some(id.clone()))>
                                {ui(lang.get(), "Abrir", "Open")}
                            </button></td>
                        </tr>
                    }
                } />
            {move || open.get().map(|id| view! {
                <Case request_id=id open reload />
            })}
        </section>
    }
}

const QUEUE_LIST: ListLayout = ListLayout {
    table: "queue-table",
    columns: &[
        ("Recibida", "Received"),
        ("Sucursal", "Branch"),
        ("Riesgo", "Risk"),
        ("Modelo", "Model"),
        ("Estado", "State"),
        ("Caso", "Case"),
    ],
    pager: "queue",
    back: ("Anterior", "Previous"),
    forward: ("Siguiente", "Next"),
    empty: Some((
        "queue-empty",
        "No hay solicitudes esperando.",
        "Nothing is waiting.",
    )),
};

/// A write the case's forms ask for; [`Case`] sends it.
#[derive(Clone, Debug, PartialEq)]
enum Write {
    Decide(ReviewAction, String, String),
    Answer(ApprovalAction, String),
}

fn load_case(session: Session, request_id: String, case: RwSignal<Load<ReviewCase>>) {
    let path = review_path(&request_id);
    session.fetch(
        |token| async move { officer_get::<ReviewCase>(&path, &token).await },
        move |result| {
            case.try_set(result.into());
        },
    );
}

/// One application: the decision, where its review stands, and what the signed-in role may
/// do about it. `reload` moves on after every write, so the queue behind it follows.
#[component]
fn Case(
    request_id: String,
    open: RwSignal<Option<String>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let case = RwSignal::new(Load::<ReviewCase>::Loading);
    let notice = RwSignal::new(None::<ClientError>);
    let write = RwSignal::new(None::<Write>);
    load_case(session, request_id.clone(), case);
    let id = request_id.clone();
    Effect::new(move |_| {
        let Some(asked) = write.get() else {
            return;
        };
        write.set(None);
        let (path, body) = match asked {
            Write::Decide(action, reason, note) => {
                (review_path(&id), decide_body(action, &reason, &note))
            }
            Write::Answer(action, note) => (approval_path(&id), approval_body(action, &note)),
        };
        let again = id.clone();
        // Every write answers the case as it now stands; a refusal reloads it.
        session.fetch(
            move |token| async move { officer_post::<ReviewCase>(&path, &token, Some(body)).await },
            move |result| match result {
                Ok(now) => {
                    notice.try_set(None);
                    case.try_set(Load::Ready(now));
                    reload.try_update(|n| *n += 1);
                }
                Err(error) => {
                    notice.try_set(Some(error));
                    load_case(session, again, case);
                }
            },
        );
    });
    view! {
        <aside class="card-box detail" data-testid="case" aria-live="polite">
            <button type="button" class="secondary close" data-testid="case-close" on:click=move |_| open.set(None)>
                {move || ui(lang.get(), "Cerrar", "Close")}
            </button>
            <h3>{move || ui(lang.get(), "Solicitud ", "Application ")}<code>{request_id.clone()}</code></h3>
            {move || notice.get().map(|error| view! {
                <p class="answer error" role="alert" data-testid="case-error" data-code=error.code().as_str()>
                    {match error.code() {
                        ErrorCode::Conflict => ui(lang.get(), "Otra persona decidió primero; este es el estado actual.", "Someone else decided first; this is where it stands now."),
                        ErrorCode::FourEyes => ui(lang.get(), "La segunda aprobación debe darla otra persona.", "The second approval must come from another person."),
                        _ => ui(lang.get(), "No se pudo guardar: ", "Could not save: "),
                    }}
                    {(!matches!(error.code(), ErrorCode::Conflict | ErrorCode::FourEyes)).then(|| error.code().as_str())}
                </p>
            })}
            {move || case.with(|load| status_line(load, lang.get()))}
            {move || match case.get() {
                Load::Ready(found) => Some(view! { <CaseBody found lang=lang.get() write /> }.into_any()),
                _ => None,
            }}
        </aside>
    }
}

#[component]
fn CaseBody(found: ReviewCase, lang: Lang, write: RwSignal<Option<Write>>) -> impl IntoView {
    let session = use_session();
    let ReviewCase { decision, review } = found;
    let (state_text, class) = state_badge(review.state, lang);
    let can_decide = session.may(Permission::Decide) && review.state.may_be_decided();
    let can_answer = session.may(Permission::Approve) && review.state.awaits_approval();
    let score = decision.score.clone();
    view! {
        <p>
            <span class=format!("band band-{}", score.band.as_str())>{band_text(score.band, lang)}</span>
            " "{ui(lang, "El modelo propone: ", "The model proposes: ")}<strong>{decision_text(score.decision, lang)}</strong>
            " · "{percent(score.probability)}" · "{decision.branch.clone()}
        </p>
        <ol class="reasons">
            {score.reasons.iter().map(|reason| view! { <li>{reason.message.get(lang).to_owned()}</li> }).collect_view()}
        </ol>
        <dl data-testid="case-review">
            <dt>{ui(lang, "Estado", "State")}</dt>
            <dd><span class=class data-testid="case-state" data-state=review.state.as_str()>{state_text}</span></dd>
            {review.action.map(|action| view! {
                <dt>{ui(lang, "Decisión del oficial", "Officer's decision")}</dt>
                <dd data-testid="case-action">
                    {action.label().get(lang).to_owned()}
                    {review.reason.map(|reason| format!(" · {}", reason.label().get(lang)))}
                    {review.decided_by.clone().map(|who| format!(" · {who}"))}
                    {review.decided_at_ms.map(|at| format!(" · {}", format_time(at)))}
                </dd>
                <dt>{ui(lang, "Excepción", "Override")}</dt>
                <dd data-testid="case-override" data-override=review.override_kind.as_str()>{review.override_kind.label().get(lang).to_owned()}</dd>
            })}
            {(!review.note.is_empty()).then(|| view! { <dt>{ui(lang, "Nota", "Note")}</dt><dd>{review.note.clone()}</dd> })}
            {review.contest_comment.clone().map(|comment| view! {
                <dt>{ui(lang, "El solicitante impugna", "The applicant contests")}</dt>
                <dd data-testid="case-contest">{comment}</dd>
            })}
            {review.approved_by.clone().map(|who| view! {
                <dt>{ui(lang, "Segunda aprobación", "Second approval")}</dt>
                <dd data-testid="case-approval">{who}{review.approved_at_ms.map(|at| format!(" · {}", format_time(at)))}</dd>
            })}
        </dl>
        {can_decide.then(|| view! { <DecideForm write /> })}
        {can_answer.then(|| view! { <ApprovalForm write /> })}
    }
}

/// The officer's decision: action, reason code (a fixed list) and a note.
#[component]
fn DecideForm(write: RwSignal<Option<Write>>) -> impl IntoView {
    let lang = use_lang();
    let action = RwSignal::new(ReviewAction::Approve);
    let reason = RwSignal::new(REASON_CODES[0].as_str().to_owned());
    let note = RwSignal::new(String::new());
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        write.set(Some(Write::Decide(
            action.get_untracked(),
            reason.get_untracked(),
            note.get_untracked(),
        )));
    };
    view! {
        <form class="filters" data-testid="decide-form" on:submit=submit>
            <fieldset class="filter">
                <legend>{move || ui(lang.get(), "Su decisión", "Your decision")}</legend>
                {REVIEW_ACTIONS.into_iter().map(|which| view! {
                    <label class="choice">
                        <input type="radio" name="review-action" data-testid=format!("action-{}", which.as_str())
                            prop:checked=move || action.get() == which
                            on:change=move |_| action.set(which) />
                        {move || which.label().get(lang.get()).to_owned()}
                    </label>
                }).collect_view()}
            </fieldset>
            <label class="filter">
                <span>{move || ui(lang.get(), "Motivo", "Reason")}</span>
                <select data-testid="decide-reason" on:change=move |event| reason.set(event_target_value(&event))>
                    {REASON_CODES.iter().map(|code| view! {
                        <option value=code.as_str()>{move || code.label().get(lang.get()).to_owned()}</option>
                    }).collect_view()}
                </select>
            </label>
            <label class="filter">
                <span>{move || ui(lang.get(), "Nota", "Note")}</span>
                <textarea data-testid="decide-note" maxlength="1000" prop:value=move || note.get() on:input=move |event| note.set(event_target_value(&event))></textarea>
            </label>
            <button type="submit" class="primary" data-testid="decide-submit">{move || ui(lang.get(), "Guardar decisión", "Save decision")}</button>
        </form>
    }
}

/// A supervisor's answer to a low-side approval.
#[component]
fn ApprovalForm(write: RwSignal<Option<Write>>) -> impl IntoView {
    let lang = use_lang();
    let note = RwSignal::new(String::new());
    let answer = move |action| write.set(Some(Write::Answer(action, note.get_untracked())));
    view! {
        <div class="filters" data-testid="approval-form">
            <p>{move || ui(lang.get(), "Aprobación contra la propuesta del modelo: necesita su confirmación.", "An approval against the model's proposal: it needs your confirmation.")}</p>
            <label class="filter">
                <span>{move || ui(lang.get(), "Nota", "Note")}</span>
                <textarea data-testid="approval-note" maxlength="1000" prop:value=move || note.get() on:input=move |event| note.set(event_target_value(&event))></textarea>
            </label>
            <button type="button" class="primary" data-testid="approval-confirm" on:click=move |_| answer(ApprovalAction::Confirm)>
                {move || ui(lang.get(), "Confirmar aprobación", "Confirm the approval")}
            </button>
            <button type="button" class="secondary" data-testid="approval-reject" on:click=move |_| answer(ApprovalAction::Reject)>
                {move || ui(lang.get(), "Devolver a la cola", "Send back to the queue")}
            </button>
        </div>
    }
}
