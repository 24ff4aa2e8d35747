//! The champion against the shadow challenger (the same model without age and marital
//! status) over the decisions both scored: agreement, the swaps, and each model's approval
//! rate and realized ROC AUC, KS and Brier score once outcomes are in.

use leptos::prelude::*;
use valle_shared::outcomes::challenger::{ChallengerReport, ModelFigures};
use valle_shared::Lang;

use super::dashboard::format_percent;
use super::monitoring::figure;
use super::what_if::swap_label;
use crate::chrome::{data_table, decision_text, ui};

fn model_row(name: &'static str, figures: &ModelFigures, testid: &'static str) -> impl IntoView {
    view! {
        <tr data-testid=testid data-auc=figures.roc_auc.map(|auc| auc.to_string())>
            <th scope="row">{name}</th>
            <td>{format_percent(figures.approval_rate)}</td>
            <td>{figures.matured}</td>
            <td>{figure(figures.roc_auc)}</td>
            <td>{figure(figures.ks)}</td>
            <td>{figure(figures.brier)}</td>
        </tr>
    }
}

pub(super) fn challenger_view(report: ChallengerReport, lang: Lang) -> impl IntoView {
    view! {
        <section class="subsection" data-testid="challenger">
            <h2>{ui(lang, "Modelo en la sombra", "Shadow challenger")}</h2>
            <p class="hint">
                {ui(
                    lang,
                    "El retador (sin edad ni estado civil) puntúa cada decisión a la vez que el modelo en uso; su veredicto se guarda y nunca se muestra al solicitante.",
                    "The challenger (without age or marital status) scores every decision beside the model in use; its verdict is stored and never shown to the applicant.",
                )}
            </p>
            <p data-testid="challenger-agreement" data-decisions=report.decisions>
                {match lang {
                    Lang::Es => format!("{} decisiones con ambos; coinciden en {}.", report.decisions, format_percent(report.agreement_rate)),
                    Lang::En => format!("{} decisions scored by both; they agree on {}.", report.decisions, format_percent(report.agreement_rate)),
                }}
            </p>
            {data_table("challenger-table", lang, &[("Modelo", "Model"), ("Aprobación", "Approval rate"), ("Con resultado", "Matured"), ("ROC AUC", "ROC AUC"), ("KS", "KS"), ("Brier", "Brier")], view! {
                {model_row(ui(lang, "En uso", "Champion"), &report.champion, "challenger-champion")}
                {model_row(ui(lang, "Retador", "Challenger"), &report.challenger, "challenger-challenger")}
            })}
            {data_table("challenger-swaps", lang, &[("En uso → retador", "Champion → challenger"), ("Decisiones", "Decisions")], view! {
                {report.swaps.into_iter().map(|swap| view! {
                    <tr data-from=swap.from.as_str() data-to=swap.to.as_str()>
                        <td>{swap_label(swap.from, swap.to, |decision| decision_text(decision, lang))}</td>
                        <td>{swap.count}</td>
                    </tr>
                }).collect_view()}
            })}
        </section>
    }
}
