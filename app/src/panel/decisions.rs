//! The decisions table with its filters, pages and one decision's detail.

use leptos::prelude::*;
use valle_shared::records::decisions::{DecisionPage, DecisionRecord};
use valle_shared::Lang;

use super::dashboard::{
    application_rows, decision_path, decisions_path, format_percent, format_time, DecisionFilters,
};
use super::pager::{ListLayout, PagedList, Pages};
use super::section::{RefreshButton, SectionHead};
use super::session::{status_line, use_session, Load};
use crate::chrome::{band_text, decision_text, percent, ui, use_lang};
use crate::client::officer_get;

/// The decisions table: filters, pages (newest first) and one decision's detail.
#[component]
pub(super) fn Decisions() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let filters = RwSignal::new(DecisionFilters::default());
    let draft = RwSignal::new(DecisionFilters::default());
    let pages = Pages::<String>::new();
    let page = RwSignal::new(Load::<DecisionPage>::Loading);
    let detail = RwSignal::new(None::<Load<DecisionRecord>>);
    let reload = RwSignal::new(0u32);

    session.follow(page, move || {
        reload.track();
        decisions_path(&filters.get(), pages.cursor().as_deref())
    });

    let search = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        pages.reset();
        filters.set(draft.get_untracked());
    };
    let open = move |request_id: String| {
        detail.set(Some(Load::Loading));
        session.fetch(
            move |token| async move {
                officer_get::<DecisionRecord>(&decision_path(&request_id), &token).await
            },
            move |result| {
                detail.try_set(Some(result.into()));
            },
        );
    };
    let choice = move |id: &'static str,
                       label: (&'static str, &'static str),
                       options: &'static [(&'static str, &'static str, &'static str)],
                       set: fn(&mut DecisionFilters, String)| {
        view! {
            <label class="filter">
                <span>{move || ui(lang.get(), label.0, label.1)}</span>
                <select data-testid=id on:change=move |event| {
                    let value = event_target_value(&event);
                    draft.update(|draft| set(draft, value));
                }>
                    <option value="">{move || ui(lang.get(), "Todas", "All")}</option>
                    {options.iter().map(|&(value, es, en)| view! {
                        <option value=value>{move || ui(lang.get(), es, en)}</option>
                    }).collect_view()}
                </select>
            </label>
        }
    };

    view! {
        <section class="section" data-testid="decisions">
            <SectionHead es="Decisiones" en="Decisions">
                <RefreshButton test_id="decisions-refresh" reload />
            </SectionHead>
            <form class="filters" data-testid="decision-filters" on:submit=search>
                <label class="filter">
                    <span>{move || ui(lang.get(), "Sucursal", "Branch")}</span>
                    <input type="text" data-testid="filter-branch"
                        prop:value=move || draft.with(|d| d.branch.clone())
                        on:input=move |event| draft.update(|d| d.branch = event_target_value(&event)) />
                </label>
                {choice("filter-band", ("Riesgo", "Risk"), &[
                    ("bajo", "Bajo", "Low"), ("medio", "Medio", "Medium"), ("alto", "Alto", "High"),
                ], |d, v| d.band = v)}
                {choice("filter-decision", ("Decisión", "Decision"), &[
                    ("approve", "Aprobar", "Approve"), ("review", "Revisar", "Review"), ("decline", "Denegar", "Decline"),
                ], |d, v| d.decision = v)}
                {choice("filter-channel", ("Canal", "Channel"), &[
                    ("online", "En línea", "Online"), ("offline-sync", "Sin conexión", "Offline sync"), ("batch", "Lote", "Batch"),
                ], |d, v| d.channel = v)}
                <button type="submit" class="primary" data-testid="filter-apply">{move || ui(lang.get(), "Buscar", "Search")}</button>
            </form>
            <PagedList page pages layout=DECISIONS_LIST
                split=|found: DecisionPage| (found.decisions, found.next_cursor)
                row=move |record: DecisionRecord| {
                    let id = record.request_id.clone();
                    let label = format!("{} {}", ui(lang.get(), "Ver decisión", "Open decision"), id);
                    view! {
                        <tr data-testid="decision-row" data-request-id=record.request_id.clone()>
                            {decision_cells(&record, lang.get())}
                            <td>{percent(record.score.probability)}</td>
                            <td>{record.channel.as_str()}</td>
                            <td><button type="button" class="link" data-testid="decision-open"
                                aria-label=label
                                on:click=move |_| open(id.clone())>
                                {ui(lang.get(), "Ver", "Open")}
                            </button></td>
                        </tr>
                    }
                } />
            {move || detail.get().map(|load| view! {
                <DecisionDetail load lang=lang.get() close=move || detail.set(None) />
            })}
        </section>
    }
}

const DECISIONS_LIST: ListLayout = ListLayout {
    table: "decisions-table",
    columns: &[
        ("Recibida", "Received"),
        ("Sucursal", "Branch"),
        ("Riesgo", "Risk"),
        ("Decisión", "Decision"),
        ("Probabilidad", "Probability"),
        ("Canal", "Channel"),
        ("Detalle", "Detail"),
    ],
    pager: "page",
    back: ("Anterior", "Previous"),
    forward: ("Siguiente", "Next"),
    empty: Some((
        "decisions-empty",
        "No hay decisiones con estos filtros.",
        "No decisions match these filters.",
    )),
};

/// A decision's first cells in a table row: when, where, its risk and the model's decision.
pub(super) fn decision_cells(record: &DecisionRecord, lang: Lang) -> impl IntoView {
    view! {
        <td>{format_time(record.received_at_ms)}</td>
        <td>{record.branch.clone()}</td>
        <td><span class=format!("band band-{}", record.score.band.as_str())>{band_text(record.score.band, lang)}</span></td>
        <td>{decision_text(record.score.decision, lang)}</td>
    }
}

#[component]
fn DecisionDetail(
    load: Load<DecisionRecord>,
    lang: Lang,
    close: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let body = match &load {
        Load::Ready(record) => {
            let score = &record.score;
            Some(view! {
                <h3>{ui(lang, "Solicitud ", "Application ")}<code>{record.request_id.clone()}</code></h3>
                <p>
                    <span class=format!("band band-{}", score.band.as_str()) data-testid="detail-band" data-band=score.band.as_str()>
                        {band_text(score.band, lang)}
                    </span>
                    " "{decision_text(score.decision, lang)}" · "
                    <span data-testid="detail-probability">{percent(score.probability)}</span>
                    " · "{ui(lang, "confianza ", "confidence ")}{format_percent(Some(f64::from(score.confidence)))}
                </p>
                {(!score.policy_hits.is_empty()).then(|| view! {
                    <h4>{ui(lang, "Reglas de la política", "Policy rules")}</h4>
                    <ul class="policy-hits" data-testid="detail-policy">
                        {score.policy_hits.iter().map(|hit| view! {
                            <li data-code=hit.code.clone()>
                                <code>{hit.code.clone()}</code>" · "{decision_text(hit.action.decision(), lang)}" · "{hit.message.get(lang).to_owned()}
                            </li>
                        }).collect_view()}
                    </ul>
                })}
                <h4>{ui(lang, "Motivos principales", "Main reasons")}</h4>
                <ol class="reasons" data-testid="detail-reasons">
                    {score.reasons.iter().map(|reason| view! {
                        <li data-code=reason.code.clone()>{reason.message.get(lang).to_owned()}</li>
                    }).collect_view()}
                </ol>
                <h4>{ui(lang, "Datos de la solicitud", "Application data")}</h4>
                <dl data-testid="detail-application">
                    {application_rows(&record.application, lang).into_iter().map(|(label, value)| view! {
                        <dt>{label}</dt><dd>{value}</dd>
                    }).collect_view()}
                </dl>
                <h4>{ui(lang, "Modelo y proceso", "Model and processing")}</h4>
                <dl>
                    <dt>{ui(lang, "Modelo", "Model")}</dt>
                    <dd data-testid="detail-model">{score.model_version.name.clone()}" · "<code>{score.model_version.sha256[..12.min(score.model_version.sha256.len())].to_owned()}</code></dd>
                    <dt>{ui(lang, "Política", "Policy")}</dt>
                    <dd data-testid="detail-policy-version">{match &score.policy_version {
                        Some(policy) => format!("{} · {}", policy.name, &policy.sha256[..12.min(policy.sha256.len())]),
                        None => ui(lang, "anterior a las reglas", "before the rules").to_owned(),
                    }}</dd>
                    <dt>{ui(lang, "Retador en la sombra", "Shadow challenger")}</dt>
                    <dd data-testid="detail-shadow">{match &record.shadow {
                        Some(shadow) => format!(
                            "{} · {} · {}",
                            shadow.model_version.name,
                            percent(shadow.probability),
                            decision_text(shadow.decision, lang)
                        ),
                        None => ui(lang, "sin puntuación", "not scored").to_owned(),
                    }}</dd>
                    <dt>{ui(lang, "Canal", "Channel")}</dt><dd>{record.channel.as_str()}</dd>
                    <dt>{ui(lang, "Sucursal", "Branch")}</dt><dd>{record.branch.clone()}</dd>
                    <dt>{ui(lang, "Hora del evento", "Event time")}</dt><dd>{format_time(record.event_time_ms)}</dd>
                    <dt>{ui(lang, "Recibida", "Received")}</dt><dd>{format_time(record.received_at_ms)}</dd>
                    <dt>{ui(lang, "Coincide con el cliente", "Matches the client")}</dt>
                    <dd>{match (record.client_probability, record.mismatch) {
                        (None, _) => ui(lang, "sin puntuación del cliente", "no client score"),
                        (Some(_), false) => ui(lang, "sí", "yes"),
                        (Some(_), true) => ui(lang, "NO", "NO"),
                    }}</dd>
                </dl>
            }.into_any())
        }
        other => Some(status_line(other, lang).into_any()),
    };
    view! {
        <aside class="card-box detail" data-testid="decision-detail" aria-live="polite">
            <button type="button" class="secondary close" data-testid="detail-close" on:click=move |_| close()>
                {ui(lang, "Cerrar", "Close")}
            </button>
            {body}
        </aside>
    }
}
