//! A dashboard section's controls: a labelled filter field bound to a signal that the
//! section applies when its form is submitted, and the button that loads a list again.

use leptos::prelude::*;

use crate::chrome::{ui, use_lang};

/// What a filter field holds: its input type and the keyboard a phone shows for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum FieldKind {
    Text,
    Date,
    Decimal,
    Whole,
}

impl FieldKind {
    fn input_type(self) -> &'static str {
        match self {
            FieldKind::Date => "date",
            FieldKind::Text | FieldKind::Decimal | FieldKind::Whole => "text",
        }
    }

    fn input_mode(self) -> Option<&'static str> {
        match self {
            FieldKind::Decimal => Some("decimal"),
            FieldKind::Whole => Some("numeric"),
            FieldKind::Text | FieldKind::Date => None,
        }
    }
}

/// One filter field, labelled in the page's language; `test_id` names its input.
#[component]
pub(super) fn FilterField(
    es: &'static str,
    en: &'static str,
    test_id: &'static str,
    kind: FieldKind,
    value: RwSignal<String>,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <label class="filter">
            <span>{move || ui(lang.get(), es, en)}</span>
            <input type=kind.input_type() inputmode=kind.input_mode() data-testid=test_id
                prop:value=move || value.get()
                on:input=move |event| value.set(event_target_value(&event)) />
        </label>
    }
}

/// Loads the section's list again: each press bumps `reload`, which the list tracks.
#[component]
pub(super) fn RefreshButton(test_id: &'static str, reload: RwSignal<u32>) -> impl IntoView {
    let lang = use_lang();
    view! {
        <button type="button" class="secondary" data-testid=test_id on:click=move |_| reload.update(|n| *n += 1)>
            {move || ui(lang.get(), "Actualizar", "Refresh")}
        </button>
    }
}
