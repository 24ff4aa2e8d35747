//! What-if controls for supervisors: other cut-offs, with or without the policy rules, over
//! the newest stored applications; the swap set and each strategy's approval and expected
//! bad rates, from `POST /api/v1/simulate`.

use leptos::prelude::*;
use valle_shared::contract::paths::SIMULATE_PATH;
use valle_shared::decision::model::spec::FeatureSpec;
use valle_shared::decision::model::FEATURE_SPEC_JSON;
use valle_shared::decision::simulation::{SimulationReport, StrategyFigures};
use valle_shared::Lang;

use super::dashboard::format_percent;
use super::section::{refusal_view, FieldKind, FilterField, Hint, SectionHead};
use super::session::use_session;
use super::what_if::{simulation_body, swap_label, WhatIf};
use crate::chrome::{data_table, decision_text, ui, use_lang};
use crate::client::{officer_post, ClientError};

fn model_form() -> WhatIf {
    let thresholds = serde_json::from_str::<FeatureSpec>(FEATURE_SPEC_JSON)
        .map(|spec| spec.thresholds)
        .unwrap_or(valle_shared::decision::model::spec::Thresholds {
            review: 0.2,
            decline: 0.5,
        });
    WhatIf::from_model(thresholds)
}

#[component]
pub(super) fn Simulation() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let start = model_form();
    let review = RwSignal::new(start.review_percent);
    let decline = RwSignal::new(start.decline_percent);
    let rules = RwSignal::new(true);
    let challenger = RwSignal::new(false);
    let last = RwSignal::new(start.last);
    let branch = RwSignal::new(String::new());
    let answer = RwSignal::new(None::<Result<SimulationReport, ClientError>>);
    let running = RwSignal::new(false);
    let run = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if running.get_untracked() {
            return;
        }
        running.set(true);
        let body = simulation_body(&WhatIf {
            review_percent: review.get_untracked(),
            decline_percent: decline.get_untracked(),
            rules: rules.get_untracked(),
            challenger: challenger.get_untracked(),
            last: last.get_untracked(),
            branch: branch.get_untracked(),
        });
        session.fetch(
            move |token| async move { officer_post(SIMULATE_PATH, &token, Some(body)).await },
            move |result| {
                running.try_set(false);
                answer.try_set(Some(result));
            },
        );
    };
    view! {
        <section class="section" data-testid="simulation">
            <SectionHead es="¿Y si…? Otra estrategia" en="What if: another strategy" />
            <Hint es="Vuelve a decidir las últimas solicitudes guardadas con otros umbrales, con o sin las reglas de la cooperativa. No cambia nada." en="Re-decides the newest stored applications under other cut-offs, with or without the cooperative's rules. Changes nothing." />
            <form class="filters" on:submit=run>
                <FilterField es="Revisar desde (%)" en="Review from (%)" test_id="what-if-review" kind=FieldKind::Decimal value=review />
                <FilterField es="Denegar desde (%)" en="Decline from (%)" test_id="what-if-decline" kind=FieldKind::Decimal value=decline />
                <FilterField es="Últimas solicitudes" en="Newest applications" test_id="what-if-last" kind=FieldKind::Whole value=last />
                <FilterField es="Sucursal" en="Branch" test_id="what-if-branch" kind=FieldKind::Text value=branch />
                <label class="filter check">
                    <input type="checkbox" data-testid="what-if-rules" prop:checked=move || rules.get() on:change=move |event| rules.set(event_target_checked(&event)) />
                    <span>{move || ui(lang.get(), "Con las reglas", "With the rules")}</span>
                </label>
                <label class="filter check">
                    <input type="checkbox" data-testid="what-if-challenger" prop:checked=move || challenger.get() on:change=move |event| challenger.set(event_target_checked(&event)) />
                    <span>{move || ui(lang.get(), "Con el retador", "By the challenger")}</span>
                </label>
                <button type="submit" class="primary" data-testid="what-if-run" prop:disabled=move || running.get()>
                    {move || ui(lang.get(), "Simular", "Simulate")}
                </button>
            </form>
            {move || answer.get().map(|result| match result {
                Ok(report) => report_view(report, lang.get()).into_any(),
                Err(error) => refusal_view(error.body(), "what-if-error", lang.get()).into_any(),
            })}
        </section>
    }
}

fn figures_row(
    name: &'static str,
    figures: &StrategyFigures,
    testid: &'static str,
) -> impl IntoView {
    view! {
        <tr data-testid=testid>
            <th scope="row">{name}</th>
            <td>{figures.approve}</td>
            <td>{figures.review}</td>
            <td>{figures.decline}</td>
            <td data-rate=figures.approval_rate.map(|rate| rate.to_string())>{format_percent(figures.approval_rate)}</td>
            <td>{format_percent(figures.expected_bad_rate)}</td>
        </tr>
    }
}

fn report_view(report: SimulationReport, lang: Lang) -> impl IntoView {
    let moved = report.rows - report.unchanged;
    view! {
        <p data-testid="what-if-summary" data-rows=report.rows data-moved=moved data-skipped=report.skipped>
            {match lang {
                Lang::Es => format!("{} solicitudes; {moved} cambiarían de decisión.", report.rows),
                Lang::En => format!("{} applications; {moved} would change decision.", report.rows),
            }}
            {(report.skipped > 0).then(|| match lang {
                Lang::Es => format!(" {} sin puntuación del retador, fuera del cálculo.", report.skipped),
                Lang::En => format!(" {} without a challenger score, left out.", report.skipped),
            })}
        </p>
        <div class="table-wrap">
            <table data-testid="what-if-figures">
                <thead><tr>
                    <th scope="col">{ui(lang, "Estrategia", "Strategy")}</th>
                    <th scope="col">{decision_text(valle_shared::decision::model::Decision::Approve, lang)}</th>
                    <th scope="col">{decision_text(valle_shared::decision::model::Decision::Review, lang)}</th>
                    <th scope="col">{decision_text(valle_shared::decision::model::Decision::Decline, lang)}</th>
                    <th scope="col">{ui(lang, "Aprobación", "Approval rate")}</th>
                    <th scope="col">{ui(lang, "Impago esperado de los aprobados", "Expected bad rate of the approved")}</th>
                </tr></thead>
                <tbody>
                    {figures_row(ui(lang, "Actual", "Current"), &report.current, "what-if-current")}
                    {figures_row(ui(lang, "Candidata", "Candidate"), &report.candidate, "what-if-candidate")}
                </tbody>
            </table>
        </div>
        <h3>{ui(lang, "Cambios de decisión", "Decision swaps")}</h3>
        {data_table("what-if-swaps", lang, &[("De → a", "From → to"), ("Solicitudes", "Applications"), ("Ejemplos", "Examples")], view! {
            {report.swaps.into_iter().map(|swap| view! {
                <tr data-from=swap.from.as_str() data-to=swap.to.as_str() data-count=swap.count>
                    <td>{swap_label(swap.from, swap.to, |decision| decision_text(decision, lang))}</td>
                    <td>{swap.count}</td>
                    <td class="small">{swap.examples.into_iter().map(|id| view! { <code>{id}</code>" " }).collect_view()}</td>
                </tr>
            }).collect_view()}
        })}
    }
}
