//! Valle's page: the App and its routing. The scoring page (the application form, its
//! instant score and the offline queue) lives in [`scoring`], the officers' dashboard in
//! [`panel`], and what both share in [`chrome`].

pub mod chrome;
pub mod client;
pub mod idb;
pub mod outbox;
pub mod panel;
pub mod prerendered;
pub mod scoring;
pub mod sync;

use leptos::prelude::*;

use crate::chrome::provide_lang;
use crate::panel::Panel;
use crate::scoring::ScoringPage;

/// Scores an application JSON with this page's model, offline, in its scoring worker:
/// `await window.wasmBindings.valleScore(json)` gives the score as JSON, or
/// `{"error": {"code": ...}}` as the edge would. Lets other scripts on the page, and the
/// browser tests, use the exact model the form uses.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = valleScore)]
pub async fn valle_score(body: String) -> String {
    let result = match scoring::scorer::current() {
        Some(scorer) => scorer.score(body).await,
        None => Err("E_MODEL".to_owned()),
    };
    let error = |code: &str| serde_json::json!({ "error": { "code": code } }).to_string();
    match result {
        Ok(score) => serde_json::to_string(&score).unwrap_or_else(|_| error("E_INTERNAL")),
        Err(code) => error(&code),
    }
}

/// Which page a path shows: the officers' dashboard lives at `/panel`, everything else is
/// the scoring page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Scoring,
    Panel,
}

impl Page {
    pub fn for_path(path: &str) -> Page {
        match path.trim_end_matches('/') {
            "/panel" => Page::Panel,
            _ => Page::Scoring,
        }
    }
}

/// Asks the browser to install `public/sw.js`, which keeps the app shell, wasm and model for
/// offline reloads. Browsers without service workers simply go without.
fn register_service_worker() {
    let navigator = window().navigator();
    let supported = js_sys::Reflect::has(&navigator, &"serviceWorker".into()).unwrap_or(false);
    if supported {
        // The promise settles on its own; a failure only means no offline reloads.
        let _ = navigator.service_worker().register("/sw.js");
    }
}

/// The page for the current address.
#[component]
pub fn App() -> impl IntoView {
    register_service_worker();
    provide_lang();
    let path = window().location().pathname().unwrap_or_default();
    match Page::for_path(&path) {
        Page::Panel => view! { <Panel /> }.into_any(),
        Page::Scoring => view! { <ScoringPage /> }.into_any(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_picks_the_page() {
        for (path, page) in [
            ("/", Page::Scoring),
            ("", Page::Scoring),
            ("/panel", Page::Panel),
            ("/panel/", Page::Panel),
            ("/panel/index.html", Page::Scoring),
            ("/panels", Page::Scoring),
            ("/index.html", Page::Scoring),
        ] {
            assert_eq!(Page::for_path(path), page, "{path}");
        }
    }
}
