//! Valle's page: the two pages' roots. The asset server routes: `/` is index.html with the
//! scoring module (`valle-app`: the application form, its instant score and the offline
//! queue, in [`scoring`]), `/panel/` is panel/index.html with the dashboard's own module
//! (`valle-panel`, in [`panel`]), so applicants never download the dashboard and officers
//! never download the model. What both share is in [`chrome`].

pub mod chrome;
pub mod client;
pub mod first_view;
pub mod idb;
pub mod outbox;
pub mod panel;
pub mod prerendered;
pub mod scoring;
pub mod sync;

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

use crate::chrome::provide_lang;
use crate::panel::Panel;
use crate::scoring::ScoringPage;

/// Asks the browser to install `public/sw.js`, which keeps both pages, their modules and
/// the model for offline reloads, once the page has loaded: its install downloads every
/// module, which must not compete with the page's own. Browsers without service workers
/// simply go without.
fn register_service_worker() {
    let navigator = window().navigator();
    let supported = js_sys::Reflect::has(&navigator, &"serviceWorker".into()).unwrap_or(false);
    if !supported {
        return;
    }
    let register = move || {
        // The promise settles on its own; a failure only means no offline reloads.
        let _ = navigator.service_worker().register("/sw.js");
    };
    if document().ready_state() == "complete" {
        register();
    } else {
        let listener = Closure::once_into_js(register);
        let _ = window().add_event_listener_with_callback("load", listener.unchecked_ref());
    }
}

/// The scoring page, the root of the `valle-app` module.
#[component]
pub fn ScoringApp() -> impl IntoView {
    register_service_worker();
    provide_lang();
    view! { <ScoringPage /> }
}

/// The officers' dashboard, the root of the `valle-panel` module.
#[component]
pub fn PanelApp() -> impl IntoView {
    register_service_worker();
    provide_lang();
    view! { <Panel /> }
}
