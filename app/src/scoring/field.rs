//! One form field: its label, control, range hint and errors.

use std::collections::BTreeSet;

use leptos::prelude::*;
use valle_shared::contract::errors::FieldError;
use valle_shared::contract::i18n::format_money;
use valle_shared::intake::application::{choice_label, FieldRule};
use valle_shared::intake::draft::Draft;
use valle_shared::{Field, Lang};

use super::form;
use crate::chrome::{ui, use_lang};

/// The form's state that every field reads and writes.
#[derive(Clone, Copy)]
pub(super) struct FormState {
    /// What the person has typed, field by field.
    pub draft: RwSignal<Draft>,
    /// Fields the person has been in, whose errors are shown.
    pub touched: RwSignal<BTreeSet<Field>>,
    /// After a submit attempt every error is shown, touched or not.
    pub show_all: RwSignal<bool>,
    /// What the shared validator makes of the draft.
    pub outcome: Memo<form::Outcome>,
}

/// One labelled input with its errors.
#[component]
pub(super) fn FieldControl(field: Field, form: FormState) -> impl IntoView {
    let lang = use_lang();
    let FormState {
        draft,
        touched,
        show_all,
        outcome,
    } = form;
    let name = field.name();
    let input_id = format!("field-{name}");
    let error_id = format!("error-{name}");
    let errors = Memo::new(move |_| {
        outcome.with(|outcome| {
            touched.with(|touched| form::visible_errors(field, outcome, touched, show_all.get()))
        })
    });
    let invalid = move || {
        if errors.with(Vec::is_empty) {
            "false"
        } else {
            "true"
        }
    };
    let value = move || draft.with(|draft| draft.get(field).to_owned());
    let on_input = move |event: leptos::ev::Event| {
        let text = event_target_value(&event);
        draft.update(|draft| draft.set(field, text));
        touched.update(|touched| {
            touched.insert(field);
        });
    };
    let on_blur = move |_| {
        touched.update(|touched| {
            touched.insert(field);
        });
    };
    let required = field.is_required();
    let hint = move || hint_text(field, lang.get());
    // What the select and the text input share: names, validity, the value and leaving it.
    let common = {
        let (input_id, error_id) = (input_id.clone(), error_id.clone());
        move || {
            view! {
                <{..}
                    id=input_id.clone()
                    name=name
                    data-testid=format!("input-{name}")
                    required=required
                    aria-invalid=invalid
                    aria-describedby=error_id.clone()
                    prop:value=value
                    on:blur=on_blur
                />
            }
        }
    };

    let control = match field.rule() {
        FieldRule::Choice(values) => view! {
            <select {..common()} on:change=on_input>
                <option value="">{move || ui(lang.get(), "— Elija —", "— Choose —")}</option>
                {values
                    .iter()
                    .map(|&value| view! { <option value=value>{move || choice_label(value, lang.get())}</option> })
                    .collect_view()}
            </select>
        }
        .into_any(),
        rule => {
            let inputmode = match rule {
                FieldRule::Integer { .. } => "numeric",
                FieldRule::Money { .. } => "decimal",
                _ => "text",
            };
            view! {
                <input
                    {..common()}
                    type="text"
                    inputmode=inputmode
                    autocomplete="off"
                    on:input=on_input
                />
            }
            .into_any()
        }
    };

    view! {
        <div class="field" class:has-error=move || !errors.with(Vec::is_empty)>
            <label for=input_id>
                {move || field.label(lang.get())}
                {(!required).then(|| view! { <span class="optional">{move || ui(lang.get(), " (opcional)", " (optional)")}</span> })}
            </label>
            {control}
            <p class="hint">{hint}</p>
            <ul class="errors" id=error_id data-testid=format!("error-{name}") aria-live="polite">
                {move || {
                    errors
                        .get()
                        .into_iter()
                        .map(|error| error_item(error, lang.get()))
                        .collect_view()
                }}
            </ul>
        </div>
    }
}

pub(super) fn error_item(error: FieldError, lang: Lang) -> impl IntoView {
    view! {
        <li data-code=error.code.as_str() data-field=error.field.clone()>
            {error.message.get(lang).to_owned()}
        </li>
    }
}

/// The allowed range under each numeric input, so a person knows the bounds before erring.
fn hint_text(field: Field, lang: Lang) -> String {
    match field.rule() {
        FieldRule::Integer { min, max } => match lang {
            Lang::Es => format!("Entre {min} y {max}."),
            Lang::En => format!("Between {min} and {max}."),
        },
        FieldRule::Money { min, max } => {
            let (min, max) = (format_money(min, lang), format_money(max, lang));
            match lang {
                Lang::Es => format!("Entre {min} y {max} €, hasta dos decimales."),
                Lang::En => format!("Between €{min} and €{max}, up to two decimals."),
            }
        }
        FieldRule::Choice(_) => String::new(),
        FieldRule::Text { max_chars, .. } => match lang {
            Lang::Es => format!("Hasta {max_chars} caracteres."),
            Lang::En => format!("Up to {max_chars} characters."),
        },
    }
}
