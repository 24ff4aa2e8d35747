//! What both pages share: the brand, the language toggle, the language itself (through
//! Leptos context), and the labels of bands and decisions.

use leptos::prelude::*;
use valle_shared::decision::model::{Band, Decision};
use valle_shared::Lang;

/// Picks the Spanish or English text of a piece of page chrome.
pub(crate) fn ui(lang: Lang, es: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Es => es,
        Lang::En => en,
    }
}

/// Makes the page's language available to every component below (see [`use_lang`]) and
/// keeps the document's `lang` attribute in step, which tells screen readers which voice to
/// use.
pub(crate) fn provide_lang() -> RwSignal<Lang> {
    let lang = RwSignal::new(Lang::Es);
    provide_context(lang);
    Effect::new(move |_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", lang.get().tag());
        }
    });
    lang
}

/// The page's language, as [`provide_lang`] made it available.
pub(crate) fn use_lang() -> RwSignal<Lang> {
    expect_context::<RwSignal<Lang>>()
}

/// The logo, the name and what this page is for (Spanish, English).
#[component]
pub(crate) fn Brand(tagline: (&'static str, &'static str)) -> impl IntoView {
    let lang = use_lang();
    view! {
        <div class="brand">
            <span class="logo" aria-hidden="true">"V"</span>
            <div>
                <h1>"Valle"</h1>
                <p class="tagline">{move || ui(lang.get(), tagline.0, tagline.1)}</p>
            </div>
        </div>
    }
}

/// Switches the page between Spanish and English; labelled in the language it switches to.
#[component]
pub(crate) fn LangToggle() -> impl IntoView {
    let lang = use_lang();
    view! {
        <button
            type="button"
            class="lang-toggle"
            data-testid="lang-toggle"
            lang=move || lang.get().other().tag()
            on:click=move |_| lang.update(|lang| *lang = lang.other())
        >
            {move || ui(lang.get(), "English", "Español")}
        </button>
    }
}

/// A probability as a percentage with one decimal.
pub(crate) fn percent(probability: f32) -> String {
    format!("{:.1} %", f64::from(probability) * 100.0)
}

pub(crate) fn band_text(band: Band, lang: Lang) -> &'static str {
    match band {
        Band::Bajo => ui(lang, "Riesgo bajo", "Low risk"),
        Band::Medio => ui(lang, "Riesgo medio", "Medium risk"),
        Band::Alto => ui(lang, "Riesgo alto", "High risk"),
    }
}

pub(crate) fn decision_text(decision: Decision, lang: Lang) -> &'static str {
    match decision {
        Decision::Approve => ui(lang, "Aprobar", "Approve"),
        Decision::Review => ui(lang, "Revisar", "Review"),
        Decision::Decline => ui(lang, "Denegar", "Decline"),
    }
}

/// A table's header row: each column's name in Spanish and in English.
pub(crate) fn head_row(lang: Lang, columns: &[(&'static str, &'static str)]) -> impl IntoView {
    let cells: Vec<_> = columns
        .iter()
        .map(|&(es, en)| view! { <th scope="col">{ui(lang, es, en)}</th> })
        .collect();
    view! { <thead><tr>{cells}</tr></thead> }
}

/// A table with its header row, which scrolls sideways on a narrow screen.
pub(crate) fn data_table(
    test_id: &'static str,
    lang: Lang,
    columns: &[(&'static str, &'static str)],
    rows: impl IntoView,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table data-testid=test_id>
                {head_row(lang, columns)}
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
