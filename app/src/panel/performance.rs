//! The model's performance once outcomes are in (headline figures, ROC curve, calibration
//! deciles, vintages and bands) and its fairness by age band and marital status, for a date
//! range and a branch.

use leptos::prelude::*;
use valle_shared::outcomes::challenger::ChallengerReport;
use valle_shared::outcomes::fairness::{AttributeFairness, FairnessReport};
use valle_shared::outcomes::performance::{PerformanceReport, Realized};
use valle_shared::Lang;

use super::challenger::challenger_view;
use super::dashboard::format_percent;
use super::monitoring::{
    attribute_text, calibration_marks, challenger_path, fairness_path, figure, performance_path,
    plot_point, roc_points, PLOT_SIZE,
};
use super::section::{ApplyButton, FieldKind, FilterField, PeriodFields, SectionHead};
use super::session::{status_line, use_session, Load};
use crate::chrome::{band_text, data_table, head_row, ui, use_lang};

#[component]
pub(super) fn Performance() -> impl IntoView {
    let lang = use_lang();
    let session = use_session();
    let (from, to, branch) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let applied = RwSignal::new((String::new(), String::new(), String::new()));
    let performance = RwSignal::new(Load::<PerformanceReport>::Loading);
    let fairness = RwSignal::new(Load::<FairnessReport>::Loading);
    let challenger = RwSignal::new(Load::<ChallengerReport>::Loading);
    session.follow(challenger, move || {
        applied.with(|(from, to, branch)| challenger_path(from, to, branch))
    });
    session.follow(performance, move || {
        applied.with(|(from, to, branch)| performance_path(from, to, branch))
    });
    session.follow(fairness, move || {
        applied.with(|(from, to, branch)| fairness_path(from, to, branch))
    });
    let apply = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        applied.set((
            from.get_untracked(),
            to.get_untracked(),
            branch.get_untracked(),
        ));
    };
    view! {
        <section class="section" data-testid="performance">
            <SectionHead es="Desempeño del modelo" en="Model performance" />
            <form class="filters" on:submit=apply>
                <PeriodFields prefix="performance" from to />
                <FilterField es="Sucursal" en="Branch" test_id="performance-branch" kind=FieldKind::Text value=branch />
                <ApplyButton test_id="performance-apply" />
            </form>
            {move || performance.with(|load| status_line(load, lang.get()))}
            {move || match performance.get() {
                Load::Ready(report) => Some(performance_view(report, lang.get()).into_any()),
                _ => None,
            }}
            <h2>{move || ui(lang.get(), "Equidad", "Fairness")}</h2>
            {move || fairness.with(|load| status_line(load, lang.get()))}
            {move || match fairness.get() {
                Load::Ready(report) => Some(
                    report
                        .attributes
                        .into_iter()
                        .map(|attribute| fairness_table(attribute, lang.get()))
                        .collect_view()
                        .into_any(),
                ),
                _ => None,
            }}
            {move || challenger.with(|load| status_line(load, lang.get()))}
            {move || match challenger.get() {
                Load::Ready(report) => Some(challenger_view(report, lang.get()).into_any()),
                _ => None,
            }}
        </section>
    }
}

fn performance_view(report: PerformanceReport, lang: Lang) -> impl IntoView {
    let alerts = report.calibration_alerts().count();
    view! {
        <div class="cards">
            <div class="card" data-testid="performance-matured">
                <span class="card-label">{ui(lang, "Préstamos con resultado", "Loans with an outcome")}</span>
                <span class="card-value">{report.matured}</span>
            </div>
            <div class="card" data-testid="performance-pending">
                <span class="card-label">{ui(lang, "Aún sin resultado", "Still without outcome")}</span>
                <span class="card-value">{report.open + report.unreported}</span>
            </div>
            <div class="card" data-testid="performance-default-rate">
                <span class="card-label">{ui(lang, "Impago real / esperado", "Realized / expected default")}</span>
                <span class="card-value">{format_percent(report.realized_default_rate)}" / "{format_percent(Some(report.expected.default_rate))}</span>
            </div>
            <div class="card" data-testid="performance-auc" data-auc=report.realized.as_ref().map(|r| r.roc_auc.to_string())>
                <span class="card-label">{ui(lang, "ROC AUC real / esperado", "ROC AUC realized / expected")}</span>
                <span class="card-value">{figure(report.realized.as_ref().map(|r| r.roc_auc))}" / "{figure(report.expected.roc_auc)}</span>
            </div>
            <div class="card" data-testid="performance-ks">
                <span class="card-label">"KS · Brier"</span>
                <span class="card-value">{figure(report.realized.as_ref().map(|r| r.ks))}" · "{figure(report.realized.as_ref().map(|r| r.brier))}</span>
            </div>
        </div>
        {(alerts > 0).then(|| view! {
            <p class="warning" role="alert" data-testid="calibration-alert">
                {ui(lang, "Calibración fuera del intervalo esperado en ", "Calibration outside the expected interval in ")}
                {alerts}{ui(lang, " cosecha(s).", " vintage(s).")}
            </p>
        })}
        {report.realized.clone().map(|realized| charts(realized, lang))}
        <h3>{ui(lang, "Cosechas", "Vintages")}</h3>
        {data_table("vintage-table", lang, &[("Mes", "Month"), ("Decisiones", "Decisions"), ("Con resultado", "Matured"), ("Impago real", "Realized default"), ("Esperado (95 %)", "Expected (95 %)")], view! {
            {report.vintages.into_iter().map(|vintage| view! {
                <tr data-testid="vintage-row" data-vintage=vintage.vintage.clone() data-alert=vintage.alert.to_string()>
                    <td>{vintage.vintage.clone()}</td>
                    <td>{vintage.decisions}</td>
                    <td>{vintage.matured}</td>
                    <td>
                        {format_percent(vintage.realized_default_rate)}
                        {vintage.alert.then(|| view! { " "<span class="badge bad">{ui(lang, "fuera", "outside")}</span> })}
                    </td>
                    <td>{format_percent(vintage.expected_default_rate)}" ("{format_percent(vintage.expected_low)}" – "{format_percent(vintage.expected_high)}")"</td>
                </tr>
            }).collect_view()}
        })}
        <h3>{ui(lang, "Por nivel de riesgo", "By risk band")}</h3>
        {data_table("band-table", lang, &[("Riesgo", "Risk"), ("Decisiones", "Decisions"), ("Con resultado", "Matured"), ("Impago real", "Realized default"), ("Esperado", "Expected")], view! {
            {report.bands.into_iter().map(|band| view! {
                <tr>
                    <td><span class=format!("band band-{}", band.band.as_str())>{band_text(band.band, lang)}</span></td>
                    <td>{band.decisions}</td>
                    <td>{band.matured}</td>
                    <td>{format_percent(band.realized_default_rate)}</td>
                    <td>{format_percent(band.expected_default_rate)}</td>
                </tr>
            }).collect_view()}
        })}
    }
}

/// The ROC curve and the calibration plot, side by side.
fn charts(realized: Realized, lang: Lang) -> impl IntoView {
    let view_box = format!("0 0 {PLOT_SIZE} {PLOT_SIZE}");
    let marks = calibration_marks(&realized.deciles);
    view! {
        <div class="charts">
            <figure class="chart">
                <svg viewBox=view_box.clone() role="img" data-testid="roc-chart"
                    aria-label=ui(lang, "Curva ROC", "ROC curve")>
                    {unit_frame()}
                    <polyline points=roc_points(&realized.roc) class="series" data-testid="roc-line" />
                    {axis_labels(ui(lang, "falsos positivos", "false positive rate"), ui(lang, "verdaderos positivos", "true positive rate"))}
                </svg>
                <figcaption>{ui(lang, "Curva ROC", "ROC curve")}" · AUC "{format!("{:.3}", realized.roc_auc)}</figcaption>
            </figure>
            <figure class="chart">
                <svg viewBox=view_box role="img" data-testid="calibration-chart"
                    aria-label=ui(lang, "Calibración por deciles", "Calibration by decile")>
                    {unit_frame()}
                    {marks.into_iter().map(|mark| view! {
                        <line x1=mark.x y1=mark.low x2=mark.x y2=mark.high class="interval" />
                        <circle cx=mark.x cy=mark.y r="3" class="series-dot" data-testid="calibration-point" />
                    }).collect_view()}
                    {axis_labels(ui(lang, "probabilidad predicha", "predicted probability"), ui(lang, "impago observado", "observed default"))}
                </svg>
                <figcaption>{ui(lang, "Calibración por deciles, con intervalos del 95 %", "Calibration by decile, with 95 % intervals")}</figcaption>
            </figure>
        </div>
    }
}

/// The unit square both charts plot in, with its diagonal: chance for ROC, perfect
/// calibration for the deciles.
fn unit_frame() -> impl IntoView {
    let (x0, y0) = plot_point(0.0, 0.0);
    let (x1, y1) = plot_point(1.0, 1.0);
    view! {
        <rect x=x0 y=y1 width=x1 - x0 height=y0 - y1 class="plot-frame" />
        <line x1=x0 y1=y0 x2=x1 y2=y1 class="reference" />
    }
}

/// The names of the horizontal and the vertical axis, under and left of the frame.
fn axis_labels(horizontal: &'static str, vertical: &'static str) -> impl IntoView {
    let (x0, y0) = plot_point(0.0, 0.0);
    let (x1, y1) = plot_point(1.0, 1.0);
    view! {
        <text x=(x0 + x1) / 2.0 y=PLOT_SIZE - 6.0 class="axis-label" text-anchor="middle">
            {horizontal}
        </text>
        <text x=10 y=(y0 + y1) / 2.0 class="axis-label" text-anchor="middle"
            transform=format!("rotate(-90 10 {})", (y0 + y1) / 2.0)>
            {vertical}
        </text>
    }
}

fn fairness_table(attribute: AttributeFairness, lang: Lang) -> impl IntoView {
    let name = attribute.attribute.as_str();
    view! {
        <h3>
            {attribute_text(attribute.attribute, lang)}
            {attribute.alert.then(|| view! {
                " "<span class="badge bad" data-testid="fairness-alert" data-attribute=name>
                    {ui(lang, "no cumple la regla de los cuatro quintos", "fails the four-fifths rule")}
                </span>
            })}
        </h3>
        <p class="muted small">
            {ui(lang, "Ratio mínimo: ", "Lowest ratio: ")}{figure(attribute.min_ratio)}
            " · "{ui(lang, "diferencia de TPR: ", "TPR gap: ")}{figure(attribute.tpr_gap)}
        </p>
        <div class="table-wrap">
            <table data-testid="fairness-table" data-attribute=name>
                {head_row(lang, &[("Grupo", "Group"), ("Decisiones", "Decisions"), ("Aprobadas", "Approved"), ("Denegadas", "Declined"), ("Impacto dispar", "Disparate impact"), ("TPR", "TPR")])}
                <tbody>
                    {attribute.groups.into_iter().map(|group| {
                        let favoured = attribute.most_favoured.as_deref() == Some(group.group.as_str());
                        view! {
                            <tr data-testid="fairness-row" data-group=group.group.clone()
                                data-ratio=group.disparate_impact.map(|r| r.to_string())>
                                <td>{group.group.clone()}{favoured.then(|| view! { " "<span class="badge ok">{ui(lang, "referencia", "reference")}</span> })}</td>
                                <td>{group.decisions}{(!group.judged).then(|| view! { " "<span class="muted small">{ui(lang, "(pocas)", "(few)")}</span> })}</td>
                                <td>{format_percent(Some(group.approval_rate))}</td>
                                <td>{format_percent(Some(group.decline_rate))}</td>
                                <td>{figure(group.disparate_impact)}</td>
                                <td>{format_percent(group.true_positive_rate)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
