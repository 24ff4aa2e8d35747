//! Drift per monitored field.

use leptos::prelude::*;
use valle_shared::monitoring::drift::{DriftReport, DriftSummary};
use valle_shared::Lang;

use super::dashboard::{drift_class, drift_path, drift_text, format_psi};
use super::section::{FieldKind, FilterField, SectionHead};
use super::session::{poll, status_line, use_session, Load};
use crate::chrome::{data_table, ui, use_lang};
use crate::client::officer_get;

/// PSI per monitored field over the last 24 h and the latest hour, refreshed live.
#[component]
pub(super) fn Drift() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let branch = RwSignal::new(String::new());
    let report = RwSignal::new(Load::<DriftReport>::Loading);
    let in_flight = StoredValue::new(false);
    let refresh = move || {
        if in_flight.get_value() {
            return;
        }
        in_flight.set_value(true);
        let path = drift_path(&branch.get_untracked());
        session.fetch(
            |token| async move { officer_get::<DriftReport>(&path, &token).await },
            move |result| {
                in_flight.try_set_value(false);
                report.try_set(result.into());
            },
        );
    };
    Effect::new(move |_| {
        branch.track();
        refresh();
    });
    poll(refresh);
    let typed = RwSignal::new(String::new());
    view! {
        <section class="section" data-testid="drift">
            <SectionHead es="Deriva de la población (PSI)" en="Population drift (PSI)">
                <form class="filters" on:submit=move |event: leptos::ev::SubmitEvent| {
                    event.prevent_default();
                    branch.set(typed.get_untracked());
                }>
                    <FilterField es="Sucursal" en="Branch" test_id="drift-branch" kind=FieldKind::Text value=typed />
                    <button type="submit" class="secondary" data-testid="drift-apply">{move || ui(lang.get(), "Ver", "Show")}</button>
                </form>
            </SectionHead>
            <p class="muted small">
                {move || ui(
                    lang.get(),
                    "Compara las solicitudes recientes con las de entrenamiento: < 0,1 estable, 0,1–0,2 moderada, ≥ 0,2 significativa.",
                    "Compares recent applications with the training data: < 0.1 stable, 0.1–0.2 moderate, ≥ 0.2 significant.",
                )}
            </p>
            {move || report.with(|load| status_line(load, lang.get()))}
            {move || match report.get() {
                Load::Ready(found) => Some(drift_table(found, lang.get())),
                _ => None,
            }}
        </section>
    }
}

fn drift_table(report: DriftReport, lang: Lang) -> impl IntoView {
    let day = report.rolling_24h;
    let hour = report.latest_hour.map(|hour| hour.summary);
    let hour_psi = |feature: &str| {
        hour.as_ref()
            .and_then(|summary: &DriftSummary| {
                summary.features.iter().find(|f| f.feature == feature)
            })
            .map(|f| (f.psi, f.band))
    };
    let few = !day.enough_data;
    view! {
        <p data-testid="drift-summary" data-decisions=day.decisions data-alerts=day.alerts.len()>
            {format!("{} {}", day.decisions, ui(lang, "decisiones en 24 h", "decisions in 24 h"))}
            {few.then(|| view! {
                <span class="muted" data-testid="drift-few">
                    {format!(" — {} {}", ui(lang, "sin alertas por debajo de", "no alerts below"), report.min_decisions)}
                </span>
            })}
        </p>
        {(!day.alerts.is_empty()).then(|| view! {
            <ul class="alerts" role="alert" data-testid="drift-alerts">
                {day.alerts.iter().map(|alert| view! { <li>{alert.message.get(lang).to_owned()}</li> }).collect_view()}
            </ul>
        })}
        {data_table("drift-table", lang, &[("Variable", "Field"), ("PSI 24 h", "PSI 24 h"), ("Nivel", "Level"), ("PSI última hora", "PSI latest hour")], view! {
            {day.features.into_iter().map(|feature| {
                let (hour_value, hour_band) = hour_psi(&feature.feature).unwrap_or((None, None));
                view! {
                    <tr data-testid="drift-row" data-feature=feature.feature.clone() data-band=drift_class(feature.band)>
                        <th scope="row">{feature.feature.clone()}</th>
                        <td>{format_psi(feature.psi)}</td>
                        <td><span class=format!("drift drift-{}", if few { "few" } else { drift_class(feature.band) })>{drift_text(feature.band, lang)}</span></td>
                        <td><span class=format!("drift drift-{}", drift_class(hour_band))>{format_psi(hour_value)}</span></td>
                    </tr>
                }
            }).collect_view()}
        })}
    }
}
