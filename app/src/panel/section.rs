//! The parts every dashboard section is built of: its head (title and the section's own
//! controls), a hint, labelled filter fields and choices bound to signals, the button that
//! applies a filter form, and the button that loads a list again.

use leptos::prelude::*;

use valle_shared::contract::errors::ErrorBody;
use valle_shared::Lang;

use crate::chrome::{ui, use_lang};

/// A section's title in the page's language, with the section's controls beside it.
#[component]
pub(super) fn SectionHead(
    es: &'static str,
    en: &'static str,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <div class="section-head">
            <h2>{move || ui(lang.get(), es, en)}</h2>
            {children.map(|children| children())}
        </div>
    }
}

/// A short explanation under a section's head, in the page's language.
#[component]
pub(super) fn Hint(es: &'static str, en: &'static str) -> impl IntoView {
    let lang = use_lang();
    view! { <p class="hint">{move || ui(lang.get(), es, en)}</p> }
}

/// One option of a [`ChoiceFilter`]: the value it sends and its label in both languages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Choice {
    pub value: &'static str,
    pub es: &'static str,
    pub en: &'static str,
}

/// A labelled choice among fixed options, shown as `chosen` holds it; picking one sets it.
#[component]
pub(super) fn ChoiceFilter(
    es: &'static str,
    en: &'static str,
    test_id: &'static str,
    choices: Vec<Choice>,
    chosen: RwSignal<String>,
    /// Runs before `chosen` changes (a paged list goes back to its first page).
    on_pick: Callback<()>,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <label class="filter">
            <span>{move || ui(lang.get(), es, en)}</span>
            <select data-testid=test_id on:change=move |event| {
                on_pick.run(());
                chosen.set(event_target_value(&event));
            }>
                {choices.into_iter().map(|choice| view! {
                    <option value=choice.value selected=move || chosen.with(|value| value == choice.value)>
                        {move || ui(lang.get(), choice.es, choice.en)}
                    </option>
                }).collect_view()}
            </select>
        </label>
    }
}

/// What a filter field holds: its input type and the keyboard a phone shows for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum FieldKind {
    Text,
    /// Typed but never shown, like a password.
    Secret,
    Date,
    Decimal,
    Whole,
}

impl FieldKind {
    fn input_type(self) -> &'static str {
        match self {
            FieldKind::Date => "date",
            FieldKind::Secret => "password",
            FieldKind::Text | FieldKind::Decimal | FieldKind::Whole => "text",
        }
    }

    fn input_mode(self) -> Option<&'static str> {
        match self {
            FieldKind::Decimal => Some("decimal"),
            FieldKind::Whole => Some("numeric"),
            FieldKind::Text | FieldKind::Secret | FieldKind::Date => None,
        }
    }
}

/// One filter field, labelled in the page's language; `test_id` names its input.
#[component]
pub(super) fn FilterField(
    es: &'static str,
    en: &'static str,
    #[prop(into)] test_id: String,
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

/// The two date fields of a report's period; their inputs are `{prefix}-from` and `{prefix}-to`.
#[component]
pub(super) fn PeriodFields(
    prefix: &'static str,
    from: RwSignal<String>,
    to: RwSignal<String>,
) -> impl IntoView {
    view! {
        <FilterField es="Desde" en="From" test_id=format!("{prefix}-from") kind=FieldKind::Date value=from />
        <FilterField es="Hasta" en="To" test_id=format!("{prefix}-to") kind=FieldKind::Date value=to />
    }
}

/// Submits a section's filter form; the section applies its fields only then.
#[component]
pub(super) fn ApplyButton(test_id: &'static str) -> impl IntoView {
    let lang = use_lang();
    view! {
        <button type="submit" class="primary" data-testid=test_id>{move || ui(lang.get(), "Aplicar", "Apply")}</button>
    }
}

/// A refused request: its message, then each field's problem.
pub(super) fn refusal_view(body: ErrorBody, test_id: &'static str, lang: Lang) -> impl IntoView {
    view! {
        <div class="answer error" role="alert" data-testid=test_id data-code=body.code.as_str()>
            <p>{body.message.get(lang).to_owned()}</p>
            <ul>
                {body.fields.into_iter().map(|field| view! {
                    <li data-field=field.field.clone() data-code=field.code.as_str()>
                        <code>{field.field.clone()}</code>": "{field.message.get(lang).to_owned()}
                    </li>
                }).collect_view()}
            </ul>
        </div>
    }
}
