//! Loan outcomes from a CSV file (`request_id,status,observed_at`), posted to the same
//! `POST /api/v1/outcomes` integrators use, a thousand rows per request. A refused request
//! names each bad value by its CSV line; requests before it stay stored.

use leptos::prelude::*;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::paths::OUTCOMES_PATH;
use valle_shared::outcomes::loan_outcomes::{outcomes_csv_to_bodies, OutcomesAnswer};
use valle_shared::{Lang, Message};
use wasm_bindgen::JsCast;

use super::monitoring::csv_line;
use super::section::{Hint, SectionHead};
use super::session::use_session;
use crate::chrome::{ui, use_lang};
use crate::client::{officer_post, ClientError};

/// How an upload ended.
#[derive(Clone, Debug, PartialEq)]
enum Upload {
    Sending {
        done: usize,
        of: usize,
    },
    Done(OutcomesAnswer),
    /// The file is not an outcomes CSV.
    Unreadable(Message),
    /// A request was refused: its bad values by CSV line, and what was stored before it.
    Refused {
        stored: OutcomesAnswer,
        code: ErrorCode,
        lines: Vec<(usize, String, Message)>,
    },
}

fn add(total: &mut OutcomesAnswer, answer: &OutcomesAnswer) {
    total.recorded += answer.recorded;
    total.replaced += answer.replaced;
    total.unchanged += answer.unchanged;
}

#[component]
pub(super) fn OutcomesUpload() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let upload = RwSignal::new(None::<Upload>);
    let chosen = move |event: leptos::ev::Event| {
        let Some(file) = event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|input| input.files())
            .and_then(|files| files.get(0))
        else {
            return;
        };
        session.fetch(
            move |token| async move { send_file(file, token, upload).await },
            move |result: Result<Upload, ClientError>| {
                upload.try_set(Some(result.unwrap_or_else(|error| Upload::Refused {
                    stored: OutcomesAnswer {
                        recorded: 0,
                        replaced: 0,
                        unchanged: 0,
                    },
                    code: error.code(),
                    lines: Vec::new(),
                })));
            },
        );
    };
    view! {
        <section class="section" data-testid="outcomes-upload">
            <SectionHead es="Resultados de préstamos" en="Loan outcomes" />
            <Hint es="Suba un CSV con las columnas request_id, status (good, bad u open) y observed_at (AAAA-MM-DD). Un resultado ya guardado no cambia nada; good o bad reemplazan a open." en="Upload a CSV with the columns request_id, status (good, bad or open) and observed_at (YYYY-MM-DD). An outcome already stored changes nothing; good or bad replace open." />
            <input type="file" accept=".csv,text/csv" data-testid="outcomes-file" on:change=chosen />
            {move || upload.get().map(|state| upload_view(state, lang.get()))}
        </section>
    }
}

fn upload_view(state: Upload, lang: Lang) -> impl IntoView {
    let totals = |answer: &OutcomesAnswer| {
        format!(
            "{} {} · {} {} · {} {}",
            answer.recorded,
            ui(lang, "nuevos", "new"),
            answer.replaced,
            ui(lang, "reemplazan a open", "replace open"),
            answer.unchanged,
            ui(lang, "ya estaban", "already stored"),
        )
    };
    match state {
        Upload::Sending { done, of } => view! {
            <p class="muted" role="status" data-testid="outcomes-sending">
                {ui(lang, "Enviando… ", "Sending… ")}{done}" / "{of}
            </p>
        }
        .into_any(),
        Upload::Done(answer) => view! {
            <p class="answer ok" role="status" data-testid="outcomes-done"
                data-recorded=answer.recorded.to_string() data-unchanged=answer.unchanged.to_string()>
                {totals(&answer)}
            </p>
        }
        .into_any(),
        Upload::Unreadable(message) => view! {
            <p class="answer error" role="alert" data-testid="outcomes-error">{message.get(lang).to_owned()}</p>
        }
        .into_any(),
        Upload::Refused { stored, code, lines } => view! {
            <div class="answer error" role="alert" data-testid="outcomes-error" data-code=code.as_str()>
                <p>{ui(lang, "El servidor rechazó el archivo (", "The server refused the file (")}{code.as_str()}"). "
                    {ui(lang, "Guardado antes del error: ", "Stored before the error: ")}{totals(&stored)}</p>
                <ul>
                    {lines.into_iter().map(|(line, column, message)| view! {
                        <li data-testid="outcomes-error-line" data-line=line.to_string()>
                            {ui(lang, "Línea ", "Line ")}{line}" · "{column}": "{message.get(lang).to_owned()}
                        </li>
                    }).collect_view()}
                </ul>
            </div>
        }
        .into_any(),
    }
}

async fn send_file(
    file: web_sys::File,
    token: String,
    progress: RwSignal<Option<Upload>>,
) -> Result<Upload, ClientError> {
    let text = wasm_bindgen_futures::JsFuture::from(file.text())
        .await
        .ok()
        .and_then(|value| value.as_string())
        .unwrap_or_default();
    let bodies = match outcomes_csv_to_bodies(&text) {
        Ok(bodies) => bodies,
        Err(message) => return Ok(Upload::Unreadable(message)),
    };
    let mut stored = OutcomesAnswer {
        recorded: 0,
        replaced: 0,
        unchanged: 0,
    };
    let of = bodies.len();
    for (done, (first_line, body)) in bodies.into_iter().enumerate() {
        progress.try_set(Some(Upload::Sending { done, of }));
        match officer_post::<OutcomesAnswer>(OUTCOMES_PATH, &token, Some(body)).await {
            Ok(answer) => add(&mut stored, &answer),
            Err(ClientError::Refused(error)) => {
                let lines = error
                    .fields
                    .iter()
                    .filter_map(|field| {
                        let (line, column) = csv_line(first_line, &field.field)?;
                        Some((line, column, field.message.clone()))
                    })
                    .collect();
                return Ok(Upload::Refused {
                    stored,
                    code: error.code,
                    lines,
                });
            }
            Err(other) => return Err(other),
        }
    }
    Ok(Upload::Done(stored))
}
