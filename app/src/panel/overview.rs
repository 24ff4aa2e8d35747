//! Live KPIs: cards, state and alerts, charts.

use leptos::prelude::*;
use valle_shared::api::{CountWindowList, KpiResponse};
use valle_shared::contract::paths::KPI_WINDOWS_PATH;
use valle_shared::monitoring::kpi::View;
use valle_shared::Lang;

use super::charts::{BandMix, CountWindowsChart, DecisionsChart, LatencyChart};
use super::dashboard::{format_time, kpi_cards, kpis_path, state_class, state_text};
use super::section::SectionHead;
use super::session::{poll, status_line, use_session, Load};
use crate::chrome::{ui, use_lang};
use crate::client::officer_get;

/// Live KPIs: cards, state and alerts, charts; refreshed every
/// [`POLL_MS`](super::dashboard::POLL_MS).
#[component]
pub(super) fn Overview() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let view_kind = RwSignal::new(View::FiveMinutes);
    let kpis = RwSignal::new(Load::<KpiResponse>::Loading);
    let windows = RwSignal::new(Vec::new());
    let in_flight = StoredValue::new(false);
    let refresh = move || {
        if in_flight.get_value() {
            return;
        }
        in_flight.set_value(true);
        let path = kpis_path(view_kind.get_untracked(), "");
        session.fetch(
            |token| async move {
                let kpis = officer_get::<KpiResponse>(&path, &token).await?;
                let list = officer_get::<CountWindowList>(KPI_WINDOWS_PATH, &token).await;
                Ok((kpis, list.ok()))
            },
            move |result| {
                in_flight.try_set_value(false);
                let result = result.map(|(kpis, list)| {
                    if let Some(list) = list {
                        windows.try_set(list.windows);
                    }
                    kpis
                });
                kpis.try_set(result.into());
            },
        );
    };
    Effect::new(move |_| {
        view_kind.track();
        refresh();
    });
    poll(refresh);

    let views = [
        (View::FiveMinutes, "5 min"),
        (View::OneHour, "1 h"),
        (View::OneDay, "24 h"),
    ];
    view! {
        <section class="section" data-testid="overview">
            <SectionHead es="Indicadores en vivo" en="Live indicators">
                <div class="segmented" role="group" aria-label=move || ui(lang.get(), "Ventana", "Window")>
                    {views
                        .into_iter()
                        .map(|(which, label)| view! {
                            <button
                                type="button"
                                data-testid=format!("view-{}", which.as_str())
                                aria-pressed=move || if view_kind.get() == which { "true" } else { "false" }
                                on:click=move |_| view_kind.set(which)
                            >
                                {label}
                            </button>
                        })
                        .collect_view()}
                </div>
            </SectionHead>
            {move || kpis.with(|load| status_line(load, lang.get()))}
            {move || match kpis.get() {
                Load::Ready(response) => Some(kpi_body(response, windows.get(), lang.get())),
                _ => None,
            }}
        </section>
    }
}

fn kpi_body(
    response: KpiResponse,
    windows: Vec<valle_shared::monitoring::kpi::CountWindow>,
    lang: Lang,
) -> impl IntoView {
    let state = response.view.state;
    let series = response.view.series.clone();
    let bands = response.view.summary.bands;
    let empty = response.view.summary.count == 0;
    view! {
        <div class="state-line">
            <span class=format!("state state-{}", state_class(state)) data-testid="kpi-state" data-state=state_class(state)>
                {state_text(state, lang)}
            </span>
            {response.stale.then(|| view! {
                <span class="stale" data-testid="kpi-stale" title=ui(lang, "Datos en caché; se están actualizando", "Cached figures; refreshing")>
                    {ui(lang, "Desactualizado", "Stale")}
                </span>
            })}
            <span class="muted small" data-testid="kpi-updated">
                {ui(lang, "Calculado ", "Computed ")}{format_time(response.computed_at_ms)}
            </span>
        </div>
        {(!response.view.alerts.is_empty()).then(|| view! {
            <ul class="alerts" data-testid="kpi-alerts" role="alert">
                {response.view.alerts.iter().map(|alert| view! {
                    <li class=format!("state-{}", state_class(alert.state)) data-metric=alert.metric.clone()>
                        {alert.message.get(lang).to_owned()}
                    </li>
                }).collect_view()}
            </ul>
        })}
        {empty.then(|| view! {
            <p class="muted" data-testid="kpi-empty">
                {ui(lang, "Aún no hay decisiones en esta ventana.", "No decisions in this window yet.")}
            </p>
        })}
        <div class="cards" data-testid="kpi-cards">
            {kpi_cards(&response, lang)
                .into_iter()
                .map(|card| {
                    let shown = card.value.clone();
                    view! {
                        <div class="card" data-testid=card.id data-value=card.value>
                            <span class="card-label">{card.label}</span>
                            <strong class="card-value">{shown}</strong>
                        </div>
                    }
                })
                .collect_view()}
        </div>
        <div class="charts">
            <LatencyChart series=series.clone() lang />
            <DecisionsChart series lang />
            <BandMix bands lang />
            <CountWindowsChart windows lang />
        </div>
    }
}
