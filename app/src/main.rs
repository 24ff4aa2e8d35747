//! The scoring page's module (`valle-app`): mounts the page over its prerendered first view.
//! The dashboard is another module (`src/bin/valle-panel.rs`), the model a third
//! (valle-scorer, a Web Worker).

/// Scores an application JSON with this page's model, offline, in its scoring worker:
/// `await window.wasmBindings.valleScore(json)` gives the score as JSON, or
/// `{"error": {"code": ...}}` as the edge would. Lets other scripts on the page, and the
/// browser tests, use the exact model the form uses.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = valleScore)]
pub async fn valle_score(body: String) -> String {
    valle_app::scoring::score_json(body).await
}

fn main() {
    console_error_panic_hook::set_once();
    valle_app::first_view::after_first_view(|| {
        leptos::mount::mount_to_body(valle_app::ScoringApp);
        // Mounting is synchronous: the copy goes in the same task, before the next paint.
        valle_app::prerendered::take_over();
    });
}
