//! The officers' dashboard at `/panel`: sign-in with the officers' token (kept in session
//! storage), live KPI cards and charts, the decisions table with its detail, dead letters
//! with replay, and drift per field. Components fetch and render; what to show comes from
//! [`dashboard`] and [`charts`].

mod charts;
pub mod dashboard;
mod dead_letters;
mod decisions;
mod drift;
mod overview;
mod session;

use leptos::prelude::*;
use leptos::task::spawn_local;
use valle_shared::api::KpiResponse;
use valle_shared::kpi::View;

use crate::chrome::{ui, use_lang, Brand, LangToggle};
use crate::client::{officer_get, ClientError};
use dashboard::kpis_path;
use dead_letters::DeadLetters;
use decisions::Decisions;
use drift::Drift;
use overview::Overview;
use session::{remember_token, stored_token, use_session, Session};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tab {
    Overview,
    Decisions,
    DeadLetters,
    Drift,
}

#[component]
pub fn Panel() -> impl IntoView {
    let lang = use_lang();
    let session = Session {
        token: RwSignal::new(stored_token()),
        notice: RwSignal::new(None),
    };
    provide_context(session);
    Effect::new(move |_| {
        document().set_title(ui(
            lang.get(),
            "Valle · Panel de oficiales",
            "Valle · Officers' dashboard",
        ));
    });
    view! {
        <header class="topbar">
            <Brand tagline=("Panel de oficiales", "Officers' dashboard") />
            <div class="topbar-actions">
                <a class="toplink" href="/">{move || ui(lang.get(), "Evaluar solicitud", "Score an application")}</a>
                <Show when=move || session.token.with(Option::is_some)>
                    <button type="button" class="lang-toggle" data-testid="sign-out" on:click=move |_| session.sign_out(None)>
                        {move || ui(lang.get(), "Salir", "Sign out")}
                    </button>
                </Show>
                <LangToggle />
            </div>
        </header>
        <main class="panel">
            {move || match session.token.get() {
                None => view! { <SignIn /> }.into_any(),
                Some(_) => view! { <Dashboard /> }.into_any(),
            }}
        </main>
    }
}

/// The token form: checked against the edge before it is kept.
#[component]
fn SignIn() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
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
fn Dashboard() -> impl IntoView {
    let lang = use_lang();
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
            Tab::Overview => view! { <Overview /> }.into_any(),
            Tab::Decisions => view! { <Decisions /> }.into_any(),
            Tab::DeadLetters => view! { <DeadLetters /> }.into_any(),
            Tab::Drift => view! { <Drift /> }.into_any(),
        }}
    }
}
