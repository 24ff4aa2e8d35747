//! The overrides report (officers' final decisions against the model, by officer and band)
//! and the CSV export of decisions, for a date range.

use leptos::prelude::*;
use valle_shared::lending::export::EXPORT_FILE_NAME;
use valle_shared::lending::officers::Permission;
use valle_shared::lending::review::OverrideReport;
use wasm_bindgen::JsCast;

use super::lending::{export_path, overrides_path, rate_text};
use super::section::{ApplyButton, PeriodFields, SectionHead};
use super::session::{status_line, use_session, Load};
use crate::chrome::{band_text, data_table, ui, use_lang};
use crate::client::{officer_text, ClientError};

#[component]
pub(super) fn Reports() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let range = RwSignal::new((String::new(), String::new()));
    let report = RwSignal::new(Load::<OverrideReport>::Loading);
    let export = RwSignal::new(None::<Load<usize>>);
    session.follow(report, move || {
        range.with(|(from, to)| overrides_path(from, to))
    });
    let apply = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        range.set((from.get_untracked(), to.get_untracked()));
    };
    let download = move |_| {
        let (from, to) = range.get_untracked();
        let path = export_path(&from, &to);
        export.set(Some(Load::Loading));
        session.fetch(
            |token| async move { officer_text(&path, &token).await },
            move |result: Result<String, ClientError>| {
                export.try_set(Some(result.and_then(|csv| save(&csv)).into()));
            },
        );
    };
    view! {
        <section class="section" data-testid="reports">
            <SectionHead es="Excepciones de los oficiales" en="Officers' overrides" />
            <form class="filters" on:submit=apply>
                <PeriodFields prefix="report" from to />
                <ApplyButton test_id="report-apply" />
                <Show when=move || session.may(Permission::Export)>
                    <button type="button" class="secondary" data-testid="export-csv" on:click=download>
                        {move || ui(lang.get(), "Exportar decisiones (CSV)", "Export decisions (CSV)")}
                    </button>
                </Show>
            </form>
            {move || export.get().map(|load| match load {
                Load::Ready(rows) => view! {
                    <p class="answer ok" role="status" data-testid="export-done" data-rows=rows.to_string()>
                        {ui(lang.get(), "Exportadas ", "Exported ")}{rows}{ui(lang.get(), " decisiones.", " decisions.")}
                    </p>
                }.into_any(),
                other => status_line(&other, lang.get()).into_any(),
            })}
            {move || report.with(|load| status_line(load, lang.get()))}
            {move || match report.get() {
                Load::Ready(found) => Some(view! {
                    <p data-testid="overrides-total">
                        {ui(lang.get(), "Decisiones finales de oficiales: ", "Officers' final decisions: ")}{found.decided}
                        " · "{ui(lang.get(), "al alza: ", "high-side: ")}{rate_text(found.high_side, found.decided, found.high_side_rate)}
                        " · "{ui(lang.get(), "a la baja: ", "low-side: ")}{rate_text(found.low_side, found.decided, found.low_side_rate)}
                    </p>
                    {data_table("overrides-table", lang.get(), &[("Oficial", "Officer"), ("Riesgo", "Risk"), ("Decididas", "Decided"), ("Al alza", "High-side"), ("A la baja", "Low-side")], view! {
                        {found.rows.into_iter().map(|row| view! {
                            <tr data-testid="overrides-row" data-officer=row.officer.clone()>
                                <td>{row.officer.clone()}</td>
                                <td><span class=format!("band band-{}", row.band.as_str())>{band_text(row.band, lang.get())}</span></td>
                                <td>{row.decided}</td>
                                <td>{rate_text(row.high_side, row.decided, row.high_side_rate())}</td>
                                <td>{rate_text(row.low_side, row.decided, row.low_side_rate())}</td>
                            </tr>
                        }).collect_view()}
                    })}
                }.into_any()),
                _ => None,
            }}
        </section>
    }
}

/// Hands the CSV to the browser as a download; answers its number of rows.
fn save(csv: &str) -> Result<usize, ClientError> {
    let failed = |_| ClientError::Network("the browser refused the download".to_owned());
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(csv));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("text/csv;charset=utf-8");
    let blob =
        web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).map_err(failed)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(failed)?;
    let anchor: web_sys::HtmlAnchorElement = document()
        .create_element("a")
        .map_err(failed)?
        .dyn_into()
        .map_err(|_| ClientError::Network("no anchor element".to_owned()))?;
    anchor.set_href(&url);
    anchor.set_download(EXPORT_FILE_NAME);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(csv.lines().count().saturating_sub(1))
}
