//! The audit trail: every officer write, newest first, and the verification of its hash
//! chain.

use leptos::prelude::*;
use valle_shared::lending::audit::{AuditEntry, AuditPage, VerifyReport};

use super::dashboard::format_time;
use super::lending::{audit_path, verify_path};
use super::pager::{ListLayout, PagedList, Pages};
use super::section::SectionHead;
use super::session::{status_line, use_session, Load};
use crate::chrome::{ui, use_lang};
use crate::client::officer_get;

#[component]
pub(super) fn Audit() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let pages = Pages::<u64>::new();
    let page = RwSignal::new(Load::<AuditPage>::Loading);
    let report = RwSignal::new(None::<Load<VerifyReport>>);
    session.follow(page, move || audit_path(pages.cursor()));
    let verify = move |_| {
        report.set(Some(Load::Loading));
        session.fetch(
            |token| async move { officer_get::<VerifyReport>(verify_path(), &token).await },
            move |result| {
                report.try_set(Some(result.into()));
            },
        );
    };
    view! {
        <section class="section" data-testid="audit">
            <SectionHead es="Registro de auditoría" en="Audit trail">
                <button type="button" class="primary" data-testid="audit-verify" on:click=verify>
                    {move || ui(lang.get(), "Verificar la cadena", "Verify the chain")}
                </button>
            </SectionHead>
            {move || report.get().map(|load| match load {
                Load::Ready(found) if found.ok => view! {
                    <p class="answer ok" role="status" data-testid="audit-verified" data-ok="true">
                        {ui(lang.get(), "Cadena íntegra: ", "Chain intact: ")}{found.rows_checked}{ui(lang.get(), " filas comprobadas.", " rows checked.")}
                    </p>
                }.into_any(),
                Load::Ready(found) => view! {
                    <p class="answer error" role="alert" data-testid="audit-verified" data-ok="false"
                        data-seq=found.first_broken.as_ref().map(|link| link.seq.to_string())>
                        {ui(lang.get(), "Cadena rota en la fila ", "Chain broken at row ")}
                        {found.first_broken.as_ref().map(|link| format!("{}: {}", link.seq, link.problem.label().get(lang.get())))}
                    </p>
                }.into_any(),
                other => status_line(&other, lang.get()).into_any(),
            })}
            <PagedList page pages layout=AUDIT_LIST
                split=|found: AuditPage| (found.entries, found.next_cursor)
                row=move |entry: AuditEntry| view! {
                    <tr data-testid="audit-row" data-action=entry.event.action.as_str()>
                        <td>{entry.seq}</td>
                        <td>{format_time(entry.event.at_ms)}</td>
                        <td>{entry.event.actor.clone()}</td>
                        <td>{entry.event.action.label().get(lang.get()).to_owned()}</td>
                        <td><code>{entry.event.subject.clone()}</code></td>
                        <td><code title=entry.hash.clone()>{entry.hash[..12.min(entry.hash.len())].to_owned()}</code></td>
                    </tr>
                } />
        </section>
    }
}

const AUDIT_LIST: ListLayout = ListLayout {
    table: "audit-table",
    columns: &[
        ("#", "#"),
        ("Cuándo", "When"),
        ("Quién", "Who"),
        ("Qué", "What"),
        ("Sobre", "On"),
        ("Huella", "Hash"),
    ],
    pager: "audit",
    back: ("Más recientes", "Newer"),
    forward: ("Anteriores", "Older"),
    empty: None,
};
