//! The officers' dashboard at `/panel`: sign-in with an account's API token (kept in session
//! storage) or through Cloudflare Access, then the sections the account's role may use: live
//! KPI cards and charts, the review queue with decisions and second approvals, the decisions
//! table with its detail, dead letters with replay, drift per field, the audit trail, the
//! overrides report with the CSV export, the model's performance and fairness once loan
//! outcomes are in, the outcomes' CSV upload, and the supervisors' what-if simulation.
//! Components fetch and render; what to show comes from [`dashboard`], [`lending`],
//! [`monitoring`], [`what_if`] and [`charts`].

mod audit;
mod challenger;
mod charts;
pub mod dashboard;
mod dead_letters;
mod decisions;
mod drift;
pub mod lending;
pub mod monitoring;
mod outcomes_upload;
mod overview;
mod pager;
mod performance;
mod reports;
mod reviews;
mod section;
mod session;
mod simulation;
mod webhooks;
pub mod what_if;

use leptos::prelude::*;
use leptos::task::spawn_local;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::paths::ME_PATH;
use valle_shared::lending::officers::{Me, Permission};
use valle_shared::Lang;

use crate::chrome::{ui, use_lang, Brand, LangToggle};
use crate::client::{officer_get, ClientError};
use audit::Audit;
use dead_letters::DeadLetters;
use decisions::Decisions;
use drift::Drift;
use outcomes_upload::OutcomesUpload;
use overview::Overview;
use performance::Performance;
use reports::Reports;
use reviews::Reviews;
use section::Hint;
use session::{remember_token, stored_token, use_session, Session};
use simulation::Simulation;
use webhooks::Webhooks;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tab {
    Overview,
    Reviews,
    Decisions,
    DeadLetters,
    Drift,
    Audit,
    Reports,
    Performance,
    Outcomes,
    Simulation,
    Webhooks,
}

impl Tab {
    /// The tabs in the order the bar shows them.
    const ALL: [Tab; 11] = [
        Tab::Overview,
        Tab::Reviews,
        Tab::Decisions,
        Tab::DeadLetters,
        Tab::Drift,
        Tab::Audit,
        Tab::Reports,
        Tab::Performance,
        Tab::Outcomes,
        Tab::Simulation,
        Tab::Webhooks,
    ];

    /// The tab button's `data-testid`, which the browser tests click by.
    fn test_id(self) -> &'static str {
        match self {
            Tab::Overview => "tab-overview",
            Tab::Reviews => "tab-reviews",
            Tab::Decisions => "tab-decisions",
            Tab::DeadLetters => "tab-dead-letters",
            Tab::Drift => "tab-drift",
            Tab::Audit => "tab-audit",
            Tab::Reports => "tab-reports",
            Tab::Performance => "tab-performance",
            Tab::Outcomes => "tab-outcomes",
            Tab::Simulation => "tab-what-if",
            Tab::Webhooks => "tab-webhooks",
        }
    }

    fn title(self, lang: Lang) -> &'static str {
        match self {
            Tab::Overview => ui(lang, "Resumen", "Overview"),
            Tab::Reviews => ui(lang, "Revisión", "Review queue"),
            Tab::Decisions => ui(lang, "Decisiones", "Decisions"),
            Tab::DeadLetters => ui(lang, "Cartas muertas", "Dead letters"),
            Tab::Drift => ui(lang, "Deriva", "Drift"),
            Tab::Audit => ui(lang, "Auditoría", "Audit"),
            Tab::Reports => ui(lang, "Informes", "Reports"),
            Tab::Performance => ui(lang, "Desempeño", "Performance"),
            Tab::Outcomes => ui(lang, "Resultados", "Outcomes"),
            Tab::Simulation => ui(lang, "¿Y si…?", "What if"),
            Tab::Webhooks => "Webhooks",
        }
    }

    /// What the signed-in role needs to see the tab (the edge refuses the rest anyway).
    fn permission(self) -> Permission {
        match self {
            Tab::Overview | Tab::Reviews | Tab::Decisions | Tab::Drift | Tab::Performance => {
                Permission::Read
            }
            Tab::Outcomes => Permission::RecordOutcomes,
            Tab::Simulation => Permission::Simulate,
            Tab::Webhooks => Permission::ManageWebhooks,
            Tab::DeadLetters => Permission::Operate,
            Tab::Audit => Permission::Audit,
            Tab::Reports => Permission::Report,
        }
    }
}

#[component]
pub fn Panel() -> impl IntoView {
    let lang = use_lang();
    let session = Session {
        token: RwSignal::new(stored_token()),
        me: RwSignal::new(None),
        notice: RwSignal::new(None),
    };
    provide_context(session);
    // A token kept in this tab, or Cloudflare Access' sign-in: either may already be good.
    let resuming = RwSignal::new(true);
    spawn_local(async move {
        let token = session.token.get_untracked().unwrap_or_default();
        if let Ok(me) = officer_get::<Me>(ME_PATH, &token).await {
            session.token.try_set(Some(token));
            session.me.try_set(Some(me));
        }
        resuming.try_set(false);
    });
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
                {move || session.me.get().map(|me| view! {
                    <span class="who" data-testid="signed-in-as" data-role=me.account.role.as_str()>
                        {me.account.name.clone()}" · "{me.account.role.label().get(lang.get()).to_owned()}
                    </span>
                    <button type="button" class="lang-toggle" data-testid="sign-out" on:click=move |_| session.sign_out(None)>
                        {ui(lang.get(), "Salir", "Sign out")}
                    </button>
                })}
                <LangToggle />
            </div>
        </header>
        <main class="panel">
            {move || match (session.me.with(Option::is_some), resuming.get()) {
                (true, _) => view! { <Dashboard /> }.into_any(),
                (false, true) => view! { <p class="muted" role="status">{ui(lang.get(), "Comprobando la sesión…", "Checking the session…")}</p> }.into_any(),
                (false, false) => view! { <SignIn /> }.into_any(),
            }}
        </main>
    }
}

/// The API-token form: checked against the edge (`GET /api/v1/me`) before it is kept.
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
            let result = officer_get::<Me>(ME_PATH, &token).await;
            checking.try_set(false);
            match result {
                Ok(me) => {
                    remember_token(Some(&token));
                    session.notice.set(None);
                    session.token.set(Some(token));
                    session.me.set(Some(me));
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
            <label for="officer-token">{move || ui(lang.get(), "Token de API de su cuenta", "Your account's API token")}</label>
            <input
                id="officer-token"
                type="password"
                autocomplete="current-password"
                data-testid="token-input"
                prop:value=move || typed.get()
                on:input=move |event| typed.set(event_target_value(&event))
            />
            <Hint es="Se guarda solo en esta pestaña y se borra al cerrarla." en="Kept only in this tab and forgotten when it closes." />
            <button type="submit" class="primary" data-testid="sign-in-submit" disabled=move || checking.get()>
                {move || if checking.get() { ui(lang.get(), "Comprobando…", "Checking…") } else { ui(lang.get(), "Entrar", "Sign in") }}
            </button>
            {move || error.get().map(|failure| view! {
                <p class="answer error" role="alert" data-testid="sign-in-error" data-code=failure.code().as_str()>
                    {if failure.code() == ErrorCode::Revoked {
                        ui(lang.get(), "Esta cuenta fue revocada.", "This account has been revoked.")
                    } else if failure.is_unauthorized() {
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
    let session = use_session();
    // An integrator's account may only post outcomes: it opens there.
    let first = if session.may(Permission::Read) {
        Tab::Overview
    } else {
        Tab::Outcomes
    };
    let tab = RwSignal::new(first);
    view! {
        <nav class="tabs" aria-label=move || ui(lang.get(), "Secciones", "Sections")>
            {Tab::ALL
                .into_iter()
                .filter(|which| session.may(which.permission()))
                .map(|which| view! {
                    <button
                        type="button"
                        class="tab"
                        data-testid=which.test_id()
                        aria-pressed=move || if tab.get() == which { "true" } else { "false" }
                        on:click=move |_| tab.set(which)
                    >
                        {move || which.title(lang.get())}
                    </button>
                })
                .collect_view()}
        </nav>
        {move || match tab.get() {
            Tab::Overview => view! { <Overview /> }.into_any(),
            Tab::Decisions => view! { <Decisions /> }.into_any(),
            Tab::DeadLetters => view! { <DeadLetters /> }.into_any(),
            Tab::Drift => view! { <Drift /> }.into_any(),
            Tab::Reviews => view! { <Reviews /> }.into_any(),
            Tab::Audit => view! { <Audit /> }.into_any(),
            Tab::Reports => view! { <Reports /> }.into_any(),
            Tab::Performance => view! { <Performance /> }.into_any(),
            Tab::Outcomes => view! { <OutcomesUpload /> }.into_any(),
            Tab::Simulation => view! { <Simulation /> }.into_any(),
            Tab::Webhooks => view! { <Webhooks /> }.into_any(),
        }}
    }
}
