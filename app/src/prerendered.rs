//! The scoring page's first view that `cargo xtask build-page` writes into index.html
//! (`xtask/prerender.cjs`): drawn before any wasm has arrived, and replaced by the app in the
//! same task in which it mounts, so nothing flashes or shifts. What the person typed into it
//! meanwhile, and where the focus was, carry over.

use leptos::prelude::*;
use valle_shared::Field;
use wasm_bindgen::JsCast;

/// The copy's wrapper in index.html.
const SELECTOR: &str = "[data-prerendered]";

fn copy() -> Option<web_sys::Element> {
    document().query_selector(SELECTOR).ok().flatten()
}

/// What was typed or chosen in the copy's fields, in form order; nothing once it is gone.
pub fn typed() -> Vec<(Field, String)> {
    let Some(copy) = copy() else {
        return Vec::new();
    };
    Field::ALL
        .into_iter()
        .filter_map(|field| {
            let control = copy
                .query_selector(&format!("[name=\"{}\"]", field.name()))
                .ok()
                .flatten()?;
            let value = js_sys::Reflect::get(&control, &"value".into())
                .ok()?
                .as_string()?;
            (!value.is_empty()).then_some((field, value))
        })
        .collect()
}

/// Removes the copy once the app has drawn itself, and moves the focus from the copy's
/// control to the app's control of the same id.
pub fn take_over() {
    let Some(copy) = copy() else {
        return;
    };
    let focused = document()
        .active_element()
        .filter(|element| copy.contains(Some(element)))
        .map(|element| element.id());
    copy.remove();
    let Some(id) = focused.filter(|id| !id.is_empty()) else {
        return;
    };
    if let Some(control) = document()
        .get_element_by_id(&id)
        .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = control.focus();
    }
}
