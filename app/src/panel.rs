//! The officers' dashboard at `/panel`: sign-in with the officers' token (kept in session
//! storage), live KPI cards and charts, the decisions table with its detail, dead letters
//! with replay, and drift per field. Components fetch and render; what to show comes from
//! [`crate::dashboard`] and [`crate::charts`].

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use valle_shared::api::{CountWindowList, KpiResponse, KPI_WINDOWS_PATH};
use valle_shared::decisions::{
    DeadLetter, DeadLetterPage, DecisionPage, DecisionRecord, ReplayResponse,
};
use valle_shared::drift::{DriftReport, DriftSummary};
use valle_shared::kpi::View;
use valle_shared::Lang;

use crate::charts::{BandMix, CountWindowsChart, DecisionsChart, LatencyChart};
use crate::client::{officer_get, officer_post, ClientError};
use crate::dashboard::{
    application_rows, dead_letters_path, decision_path, decisions_path, drift_class, drift_path,
    drift_text, format_percent, format_psi, format_time, kpi_cards, kpis_path, replay_body,
    replay_path, state_class, state_text, DecisionFilters, POLL_MS, TOKEN_KEY,
};
use crate::{band_text, decision_text, percent, ui, Brand, LangToggle};

/// A fetch's state as the page shows it.
#[derive(Clone, Debug, PartialEq)]
enum Load<T> {
    Loading,
    Ready(T),
    Failed(ClientError),
}

fn session_storage() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

fn stored_token() -> Option<String> {
    session_storage()
        .and_then(|storage| storage.get_item(TOKEN_KEY).ok().flatten())
        .filter(|token| !token.is_empty())
}

fn remember_token(token: Option<&str>) {
    if let Some(storage) = session_storage() {
        let _ = match token {
            Some(token) => storage.set_item(TOKEN_KEY, token),
            None => storage.remove_item(TOKEN_KEY),
        };
    }
}

/// Polling stops while the tab is hidden: nobody is looking, and the edge is spared.
fn tab_visible() -> bool {
    document().visibility_state() == web_sys::VisibilityState::Visible
}

/// Who is signed in, and how to sign out (with a reason to show, if any).
#[derive(Clone, Copy)]
struct Session {
    token: RwSignal<Option<String>>,
    notice: RwSignal<Option<(&'static str, &'static str)>>,
}

impl Session {
    fn token(&self) -> String {
        self.token.get_untracked().unwrap_or_default()
    }

    fn sign_out(&self, notice: Option<(&'static str, &'static str)>) {
        remember_token(None);
        self.notice.set(notice);
        self.token.set(None);
    }

    /// Every failed fetch goes through here: a refused token ends the session.
    fn check<T>(&self, result: &Result<T, ClientError>) {
        if result.as_ref().is_err_and(ClientError::is_unauthorized) {
            self.sign_out(Some((
                "El token ya no es válido. Vuelva a entrar.",
                "The token is no longer valid. Please sign in again.",
            )));
        }
    }
}

/// Calls `tick` every [`POLL_MS`] while the tab is visible, until the component goes.
fn poll(tick: impl Fn() + 'static) {
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if tab_visible() {
                tick();
            }
        },
        Duration::from_millis(POLL_MS),
    ) {
        on_cleanup(move || handle.clear());
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tab {
    Overview,
    Decisions,
    DeadLetters,
    Drift,
}

#[component]
pub fn Panel() -> impl IntoView {
    let lang = RwSignal::new(Lang::Es);
    let session = Session {
        token: RwSignal::new(stored_token()),
        notice: RwSignal::new(None),
    };
    Effect::new(move |_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", lang.get().tag());
        }
        document().set_title(ui(
            lang.get(),
            "Valle · Panel de oficiales",
            "Valle · Officers' dashboard",
        ));
    });
    view! {
        <header class="topbar">
            <Brand lang tagline=("Panel de oficiales", "Officers' dashboard") />
            <div class="topbar-actions">
                <a class="toplink" href="/">{move || ui(lang.get(), "Evaluar solicitud", "Score an application")}</a>
                <Show when=move || session.token.with(Option::is_some)>
                    <button type="button" class="lang-toggle" data-testid="sign-out" on:click=move |_| session.sign_out(None)>
                        {move || ui(lang.get(), "Salir", "Sign out")}
                    </button>
                </Show>
                <LangToggle lang />
            </div>
        </header>
        <main class="panel">
            {move || match session.token.get() {
                None => view! { <SignIn lang session /> }.into_any(),
                Some(_) => view! { <Dashboard lang session /> }.into_any(),
            }}
        </main>
    }
}

/// The token form: checked against the edge before it is kept.
#[component]
fn SignIn(lang: RwSignal<Lang>, session: Session) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let checking = RwSignal::new(false);
    let error = RwSignal::new(None::<ClientError>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let token = typed.get_untracked().trim().to_owned();
        if token.is_empty() || checking.get_untracked() {
            return;
        }
        checking.set(true);
        spawn_local(async move {
            let result =
                officer_get::<KpiResponse>(&kpis_path(View::FiveMinutes, ""), &token).await;
            checking.try_set(false);
            match result {
                Ok(_) => {
                    remember_token(Some(&token));
                    session.notice.set(None);
                    session.token.set(Some(token));
                }
                Err(failure) => {
                    error.try_set(Some(failure));
                }
            }
        });
    };
    view! {
        <form class="card-box sign-in" data-testid="sign-in" on:submit=submit>
            <h2>{move || ui(lang.get(), "Entrar", "Sign in")}</h2>
            {move || session.notice.get().map(|(es, en)| view! {
                <p class="warning" data-testid="sign-in-notice" role="status">{ui(lang.get(), es, en)}</p>
            })}
            <label for="officer-token">{move || ui(lang.get(), "Token de oficial", "Officer token")}</label>
            <input
                id="officer-token"
                type="password"
                autocomplete="current-password"
                data-testid="token-input"
                prop:value=move || typed.get()
                on:input=move |event| typed.set(event_target_value(&event))
            />
            <p class="hint">
                {move || ui(
                    lang.get(),
                    "Se guarda solo en esta pestaña y se borra al cerrarla.",
                    "Kept only in this tab and forgotten when it closes.",
                )}
            </p>
            <button type="submit" class="primary" data-testid="sign-in-submit" disabled=move || checking.get()>
                {move || if checking.get() { ui(lang.get(), "Comprobando…", "Checking…") } else { ui(lang.get(), "Entrar", "Sign in") }}
            </button>
            {move || error.get().map(|failure| view! {
                <p class="answer error" role="alert" data-testid="sign-in-error" data-code=failure.code().to_owned()>
                    {if failure.is_unauthorized() {
                        ui(lang.get(), "Token no válido.", "Invalid token.")
                    } else {
                        ui(lang.get(), "No se pudo contactar con el servidor.", "Could not reach the server.")
                    }}
                </p>
            })}
        </form>
    }
}

#[component]
fn Dashboard(lang: RwSignal<Lang>, session: Session) -> impl IntoView {
    let tab = RwSignal::new(Tab::Overview);
    let tabs = [
        (Tab::Overview, "tab-overview", "Resumen", "Overview"),
        (Tab::Decisions, "tab-decisions", "Decisiones", "Decisions"),
        (
            Tab::DeadLetters,
            "tab-dead-letters",
            "Cartas muertas",
            "Dead letters",
        ),
        (Tab::Drift, "tab-drift", "Deriva", "Drift"),
    ];
    view! {
        <nav class="tabs" aria-label=move || ui(lang.get(), "Secciones", "Sections")>
            {tabs
                .into_iter()
                .map(|(which, id, es, en)| view! {
                    <button
                        type="button"
                        class="tab"
                        data-testid=id
                        aria-pressed=move || if tab.get() == which { "true" } else { "false" }
                        on:click=move |_| tab.set(which)
                    >
                        {move || ui(lang.get(), es, en)}
                    </button>
                })
                .collect_view()}
        </nav>
        {move || match tab.get() {
            Tab::Overview => view! { <Overview lang session /> }.into_any(),
            Tab::Decisions => view! { <Decisions lang session /> }.into_any(),
            Tab::DeadLetters => view! { <DeadLetters lang session /> }.into_any(),
            Tab::Drift => view! { <Drift lang session /> }.into_any(),
        }}
    }
}

/// Loading and error lines shared by every section.
fn status_line<T>(load: &Load<T>, lang: Lang) -> impl IntoView {
    match load {
        Load::Loading => Some(
            view! { <p class="muted" data-testid="loading" role="status">{ui(lang, "Cargando…", "Loading…")}</p> }
                .into_any(),
        ),
        Load::Failed(error) => Some(
            view! {
                <p class="answer error" role="alert" data-testid="load-error" data-code=error.code().to_owned()>
                    {ui(lang, "No se pudieron cargar los datos: ", "Could not load the data: ")}
                    {error.code().to_owned()}
                </p>
            }
            .into_any(),
        ),
        Load::Ready(_) => None,
    }
}

/// Live KPIs: cards, state and alerts, charts; refreshed every [`POLL_MS`].
#[component]
fn Overview(lang: RwSignal<Lang>, session: Session) -> impl IntoView {
    let view_kind = RwSignal::new(View::FiveMinutes);
    let kpis = RwSignal::new(Load::<KpiResponse>::Loading);
    let windows = RwSignal::new(Vec::new());
    let in_flight = StoredValue::new(false);
    let refresh = move || {
        if in_flight.get_value() {
            return;
        }
        in_flight.set_value(true);
        let token = session.token();
        let path = kpis_path(view_kind.get_untracked(), "");
        spawn_local(async move {
            let result = officer_get::<KpiResponse>(&path, &token).await;
            let list = officer_get::<CountWindowList>(KPI_WINDOWS_PATH, &token).await;
            in_flight.try_set_value(false);
            session.check(&result);
            if let Ok(list) = list {
                windows.try_set(list.windows);
            }
            kpis.try_set(match result {
                Ok(response) => Load::Ready(response),
                Err(error) => Load::Failed(error),
            });
        });
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
            <div class="section-head">
                <h2>{move || ui(lang.get(), "Indicadores en vivo", "Live indicators")}</h2>
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
            </div>
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
    windows: Vec<valle_shared::kpi::CountWindow>,
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

/// The decisions table: filters, pages (newest first) and one decision's detail.
#[component]
fn Decisions(lang: RwSignal<Lang>, session: Session) -> impl IntoView {
    let filters = RwSignal::new(DecisionFilters::default());
    let draft = RwSignal::new(DecisionFilters::default());
    // The cursors of the pages before this one, to go back.
    let previous = RwSignal::new(Vec::<Option<String>>::new());
    let cursor = RwSignal::new(None::<String>);
    let page = RwSignal::new(Load::<DecisionPage>::Loading);
    let detail = RwSignal::new(None::<Load<DecisionRecord>>);
    let reload = RwSignal::new(0u32);

    Effect::new(move |_| {
        reload.track();
        let path = decisions_path(&filters.get(), cursor.get().as_deref());
        let token = session.token();
        page.set(Load::Loading);
        spawn_local(async move {
            let result = officer_get::<DecisionPage>(&path, &token).await;
            session.check(&result);
            page.try_set(match result {
                Ok(found) => Load::Ready(found),
                Err(error) => Load::Failed(error),
            });
        });
    });

    let search = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        previous.set(Vec::new());
        cursor.set(None);
        filters.set(draft.get_untracked());
    };
    let open = move |request_id: String| {
        let token = session.token();
        detail.set(Some(Load::Loading));
        spawn_local(async move {
            let result = officer_get::<DecisionRecord>(&decision_path(&request_id), &token).await;
            session.check(&result);
            detail.try_set(Some(match result {
                Ok(record) => Load::Ready(record),
                Err(error) => Load::Failed(error),
            }));
        });
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
            <div class="section-head">
                <h2>{move || ui(lang.get(), "Decisiones", "Decisions")}</h2>
                <button type="button" class="secondary" data-testid="decisions-refresh" on:click=move |_| reload.update(|n| *n += 1)>
                    {move || ui(lang.get(), "Actualizar", "Refresh")}
                </button>
            </div>
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
            {move || page.with(|load| status_line(load, lang.get()))}
            {move || match page.get() {
                Load::Ready(found) if found.decisions.is_empty() => Some(view! {
                    <p class="muted" data-testid="decisions-empty">{ui(lang.get(), "No hay decisiones con estos filtros.", "No decisions match these filters.")}</p>
                }.into_any()),
                Load::Ready(found) => {
                    let next = found.next_cursor.clone();
                    Some(view! {
                        <div class="table-wrap">
                            <table data-testid="decisions-table">
                                <thead><tr>
                                    <th scope="col">{ui(lang.get(), "Recibida", "Received")}</th>
                                    <th scope="col">{ui(lang.get(), "Sucursal", "Branch")}</th>
                                    <th scope="col">{ui(lang.get(), "Riesgo", "Risk")}</th>
                                    <th scope="col">{ui(lang.get(), "Decisión", "Decision")}</th>
                                    <th scope="col">{ui(lang.get(), "Probabilidad", "Probability")}</th>
                                    <th scope="col">{ui(lang.get(), "Canal", "Channel")}</th>
                                    <th scope="col">{ui(lang.get(), "Detalle", "Detail")}</th>
                                </tr></thead>
                                <tbody>
                                    {found.decisions.into_iter().map(|record| {
                                        let id = record.request_id.clone();
                                        let label = format!("{} {}", ui(lang.get(), "Ver decisión", "Open decision"), id);
                                        view! {
                                            <tr data-testid="decision-row" data-request-id=record.request_id.clone()>
                                                <td>{format_time(record.received_at_ms)}</td>
                                                <td>{record.branch.clone()}</td>
                                                <td><span class=format!("band band-{}", record.score.band.as_str())>{band_text(record.score.band, lang.get())}</span></td>
                                                <td>{decision_text(record.score.decision, lang.get())}</td>
                                                <td>{percent(record.score.probability)}</td>
                                                <td>{record.channel.as_str()}</td>
                                                <td><button type="button" class="link" data-testid="decision-open"
                                                    aria-label=label
                                                    on:click=move |_| open(id.clone())>
                                                    {ui(lang.get(), "Ver", "Open")}
                                                </button></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <div class="pager">
                            <button type="button" class="secondary" data-testid="page-previous"
                                disabled=move || previous.with(Vec::is_empty)
                                on:click=move |_| {
                                    let mut stack = previous.get_untracked();
                                    if let Some(back) = stack.pop() {
                                        previous.set(stack);
                                        cursor.set(back);
                                    }
                                }>
                                {ui(lang.get(), "Anterior", "Previous")}
                            </button>
                            <button type="button" class="secondary" data-testid="page-next"
                                disabled=next.is_none()
                                on:click=move |_| {
                                    if let Some(next) = next.clone() {
                                        previous.update(|stack| stack.push(cursor.get_untracked()));
                                        cursor.set(Some(next));
                                    }
                                }>
                                {ui(lang.get(), "Siguiente", "Next")}
                            </button>
                        </div>
                    }.into_any())
                }
                _ => None,
            }}
            {move || detail.get().map(|load| view! {
                <DecisionDetail load lang=lang.get() close=move || detail.set(None) />
            })}
        </section>
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

/// Dead letters, newest first, with replay as they are or corrected.
#[component]
fn DeadLetters(lang: RwSignal<Lang>, session: Session) -> impl IntoView {
    let status = RwSignal::new("open".to_owned());
    let letters = RwSignal::new(Load::<DeadLetterPage>::Loading);
    let reload = RwSignal::new(0u32);
    // Pages go back in time by id: `before` is this page's cursor, `previous` the cursors of
    // the pages already seen, to go back.
    let before = RwSignal::new(None::<i64>);
    let previous = RwSignal::new(Vec::<Option<i64>>::new());
    Effect::new(move |_| {
        reload.track();
        let path = dead_letters_path(&status.get(), before.get());
        let token = session.token();
        letters.set(Load::Loading);
        spawn_local(async move {
            let result = officer_get::<DeadLetterPage>(&path, &token).await;
            session.check(&result);
            letters.try_set(match result {
                Ok(page) => Load::Ready(page),
                Err(error) => Load::Failed(error),
            });
        });
    });
    view! {
        <section class="section" data-testid="dead-letters">
            <div class="section-head">
                <h2>{move || ui(lang.get(), "Cartas muertas", "Dead letters")}</h2>
                <label class="filter">
                    <span>{move || ui(lang.get(), "Estado", "Status")}</span>
                    <select data-testid="dead-letter-status" on:change=move |event| {
                        previous.set(Vec::new());
                        before.set(None);
                        status.set(event_target_value(&event));
                    }>
                        <option value="open">{move || ui(lang.get(), "Abiertas", "Open")}</option>
                        <option value="replayed">{move || ui(lang.get(), "Reprocesadas", "Replayed")}</option>
                        <option value="">{move || ui(lang.get(), "Todas", "All")}</option>
                    </select>
                </label>
                <button type="button" class="secondary" data-testid="dead-letters-refresh" on:click=move |_| reload.update(|n| *n += 1)>
                    {move || ui(lang.get(), "Actualizar", "Refresh")}
                </button>
            </div>
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
                    let next = page.next_before;
                    Some(view! {
                        <ul class="letters" data-testid="dead-letters-list">
                            {page.dead_letters.into_iter().map(|letter| view! {
                                <DeadLetterItem letter lang session on_replayed=move || reload.update(|n| *n += 1) />
                            }).collect_view()}
                        </ul>
                        <div class="pager">
                            <button type="button" class="secondary" data-testid="dead-letters-previous"
                                disabled=move || previous.with(Vec::is_empty)
                                on:click=move |_| {
                                    let mut stack = previous.get_untracked();
                                    if let Some(back) = stack.pop() {
                                        previous.set(stack);
                                        before.set(back);
                                    }
                                }>
                                {ui(lang.get(), "Más recientes", "Newer")}
                            </button>
                            <button type="button" class="secondary" data-testid="dead-letters-next"
                                disabled=next.is_none()
                                on:click=move |_| {
                                    if next.is_some() {
                                        previous.update(|stack| stack.push(before.get_untracked()));
                                        before.set(next);
                                    }
                                }>
                                {ui(lang.get(), "Más antiguas", "Older")}
                            </button>
                        </div>
                    }.into_any())
                }
                _ => None,
            }}
        </section>
    }
}

#[component]
fn DeadLetterItem(
    letter: DeadLetter,
    lang: RwSignal<Lang>,
    session: Session,
    on_replayed: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let id = letter.id;
    let correction = RwSignal::new(pretty_json(&letter.payload.application));
    let outcome = RwSignal::new(None::<Result<ReplayResponse, (String, String)>>);
    let sending = RwSignal::new(false);
    let replay = move |as_corrected: bool| {
        let body = if as_corrected {
            match replay_body(&correction.get_untracked()) {
                Ok(body) => body,
                Err(error) => {
                    outcome.set(Some(Err(("E_JSON".to_owned(), error))));
                    return;
                }
            }
        } else {
            None
        };
        sending.set(true);
        let token = session.token();
        spawn_local(async move {
            let result = officer_post::<ReplayResponse>(&replay_path(id), &token, body).await;
            session.check(&result);
            sending.try_set(false);
            let replayed = result.is_ok();
            outcome.try_set(Some(result.map_err(|error| {
                let text = match &error {
                    ClientError::Refused(body) => {
                        let fields: Vec<String> = body
                            .fields
                            .iter()
                            .map(|field| format!("{} ({})", field.field, field.code.as_str()))
                            .collect();
                        format!(
                            "{} {}",
                            body.message.get(lang.get_untracked()),
                            fields.join(", ")
                        )
                    }
                    other => other.to_string(),
                };
                (error.code().to_owned(), text)
            })));
            if replayed {
                on_replayed();
            }
        });
    };
    let open = letter.status == "open";
    view! {
        <li class="card-box letter" data-testid="dead-letter-row" data-id=id data-event-id=letter.event_id.clone() data-status=letter.status.clone()>
            <p>
                <strong>{"#"}{id}</strong>" · "<code>{letter.event_id.clone()}</code>" · "
                <span class="error-code" data-testid="dead-letter-code">{letter.error_code.clone()}</span>
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
                Err((code, text)) => view! {
                    <p class="answer error" data-testid="replay-result" data-outcome="error" data-code=code.clone() role="alert">
                        {format!("{code}: {text}")}
                    </p>
                }.into_any(),
            })}
        </li>
    }
}

/// The stored application text, indented for editing when it is JSON.
fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// PSI per monitored field over the last 24 h and the latest hour, refreshed live.
#[component]
fn Drift(lang: RwSignal<Lang>, session: Session) -> impl IntoView {
    let branch = RwSignal::new(String::new());
    let report = RwSignal::new(Load::<DriftReport>::Loading);
    let in_flight = StoredValue::new(false);
    let refresh = move || {
        if in_flight.get_value() {
            return;
        }
        in_flight.set_value(true);
        let path = drift_path(&branch.get_untracked());
        let token = session.token();
        spawn_local(async move {
            let result = officer_get::<DriftReport>(&path, &token).await;
            in_flight.try_set_value(false);
            session.check(&result);
            report.try_set(match result {
                Ok(found) => Load::Ready(found),
                Err(error) => Load::Failed(error),
            });
        });
    };
    Effect::new(move |_| {
        branch.track();
        refresh();
    });
    poll(refresh);
    let typed = RwSignal::new(String::new());
    view! {
        <section class="section" data-testid="drift">
            <div class="section-head">
                <h2>{move || ui(lang.get(), "Deriva de la población (PSI)", "Population drift (PSI)")}</h2>
                <form class="filters" on:submit=move |event: leptos::ev::SubmitEvent| {
                    event.prevent_default();
                    branch.set(typed.get_untracked());
                }>
                    <label class="filter">
                        <span>{move || ui(lang.get(), "Sucursal", "Branch")}</span>
                        <input type="text" data-testid="drift-branch"
                            prop:value=move || typed.get()
                            on:input=move |event| typed.set(event_target_value(&event)) />
                    </label>
                    <button type="submit" class="secondary" data-testid="drift-apply">{move || ui(lang.get(), "Ver", "Show")}</button>
                </form>
            </div>
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
        <div class="table-wrap">
            <table data-testid="drift-table">
                <thead><tr>
                    <th scope="col">{ui(lang, "Variable", "Field")}</th>
                    <th scope="col">{ui(lang, "PSI 24 h", "PSI 24 h")}</th>
                    <th scope="col">{ui(lang, "Nivel", "Level")}</th>
                    <th scope="col">{ui(lang, "PSI última hora", "PSI latest hour")}</th>
                </tr></thead>
                <tbody>
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
                </tbody>
            </table>
        </div>
    }
}
