//! `cargo xtask lighthouse`: Lighthouse against the scoring page on a fresh, quiet
//! `wrangler dev`, with the mobile (default) and the desktop preset, in Debian's Chromium.
//!
//! Lighthouse is pinned and installed from the npm registry into target/lighthouse on
//! first use, so `cargo xtask test` does not pay for it. Each report goes to
//! target/lighthouse-<preset>.json, the summary to target/lighthouse.json; BENCHMARKS.md
//! quotes them.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::process::{run, run_for_output, warm_up};
use crate::server::start_bench_server;
use crate::{build_page, build_worker, done, project_command, root, step, tools, Result};

/// The Lighthouse release the figures in BENCHMARKS.md come from.
pub const LIGHTHOUSE_VERSION: &str = "13.5.0";

/// The two ways the page is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Lighthouse's default: a mid-range phone, simulated slow 4G, 4× CPU slowdown.
    Mobile,
    Desktop,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Mobile => "mobile",
            Preset::Desktop => "desktop",
        }
    }
}

/// What one Lighthouse run says of the page: scores out of 100, times in ms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub performance: f64,
    pub accessibility: f64,
    pub best_practices: f64,
    pub fcp_ms: f64,
    pub lcp_ms: f64,
    pub tbt_ms: f64,
    pub cls: f64,
}

impl Summary {
    /// From a Lighthouse JSON report (`--output=json`).
    pub fn from_report(report: &Value) -> Result<Summary> {
        let number = |pointer: &str| {
            report
                .pointer(pointer)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("no number at {pointer} in the Lighthouse report"))
        };
        let score = |category: &str| {
            number(&format!("/categories/{category}/score")).map(|s| (s * 100.0).round())
        };
        let audit = |id: &str| number(&format!("/audits/{id}/numericValue"));
        Ok(Summary {
            performance: score("performance")?,
            accessibility: score("accessibility")?,
            best_practices: score("best-practices")?,
            fcp_ms: audit("first-contentful-paint")?,
            lcp_ms: audit("largest-contentful-paint")?,
            tbt_ms: audit("total-blocking-time")?,
            cls: audit("cumulative-layout-shift")?,
        })
    }

    pub fn to_json(self) -> Value {
        json!({
            "performance": self.performance,
            "accessibility": self.accessibility,
            "best_practices": self.best_practices,
            "fcp_ms": self.fcp_ms,
            "lcp_ms": self.lcp_ms,
            "tbt_ms": self.tbt_ms,
            "cls": self.cls,
        })
    }
}

/// The page's goals (BENCHMARKS.md, "Lighthouse on the scoring page"), each as its text and whether the runs meet it.
pub fn goals(mobile: Summary, desktop: Summary) -> Vec<(String, bool)> {
    let mut goals = vec![
        (
            format!("mobile performance {:.0} (≥ 90)", mobile.performance),
            mobile.performance >= 90.0,
        ),
        (
            format!("mobile LCP {:.0} ms (≤ 2,500 ms)", mobile.lcp_ms),
            mobile.lcp_ms <= 2_500.0,
        ),
        (
            format!("mobile TBT {:.0} ms (≤ 200 ms)", mobile.tbt_ms),
            mobile.tbt_ms <= 200.0,
        ),
        (
            format!("mobile CLS {:.3} (≤ 0.1)", mobile.cls),
            mobile.cls <= 0.1,
        ),
        (
            format!("desktop performance {:.0} (≥ 98)", desktop.performance),
            desktop.performance >= 98.0,
        ),
    ];
    for (preset, summary) in [("mobile", mobile), ("desktop", desktop)] {
        goals.push((
            format!("{preset} accessibility {:.0} (100)", summary.accessibility),
            summary.accessibility >= 100.0,
        ));
        goals.push((
            format!(
                "{preset} best practices {:.0} (100)",
                summary.best_practices
            ),
            summary.best_practices >= 100.0,
        ));
    }
    goals
}

/// A Markdown table row, as BENCHMARKS.md has them.
pub fn row(preset: Preset, summary: Summary) -> String {
    format!(
        "| {} | {:.0} | {:.0} | {:.0} | {:.1} s | {:.1} s | {:.0} ms | {:.3} |",
        preset.name(),
        summary.performance,
        summary.accessibility,
        summary.best_practices,
        summary.fcp_ms / 1000.0,
        summary.lcp_ms / 1000.0,
        summary.tbt_ms,
        summary.cls
    )
}

/// Lighthouse's command-line entry point, installed on first use.
fn ensure_lighthouse() -> Result<PathBuf> {
    let prefix = root().join("target/lighthouse");
    let cli = prefix.join("node_modules/lighthouse/cli/index.js");
    let installed = prefix.join("node_modules/lighthouse/package.json");
    let version = std::fs::read_to_string(&installed)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|package| package["version"].as_str().map(str::to_owned));
    if version.as_deref() != Some(LIGHTHOUSE_VERSION) {
        std::fs::create_dir_all(&prefix)
            .map_err(|error| format!("{}: {error}", prefix.display()))?;
        let started = step(&format!("npm install lighthouse@{LIGHTHOUSE_VERSION}"));
        run(project_command("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&prefix)
            .args(["--no-save", "--no-audit", "--no-fund"])
            .arg(format!("lighthouse@{LIGHTHOUSE_VERSION}")))?;
        done("npm install lighthouse", started);
    }
    Ok(cli)
}

fn run_lighthouse(cli: &Path, url: &str, preset: Preset) -> Result<Summary> {
    let output = root().join(format!("target/lighthouse-{}.json", preset.name()));
    let started = step(&format!("Lighthouse, {} preset", preset.name()));
    let mut command = project_command("node");
    command
        .arg(cli)
        .arg(url)
        .arg("--chrome-flags=--headless=new --no-sandbox")
        .arg("--only-categories=performance,accessibility,best-practices")
        .arg("--output=json")
        .arg(format!("--output-path={}", output.display()))
        .arg("--quiet")
        .env("CHROME_PATH", tools::CHROMIUM);
    if preset == Preset::Desktop {
        command.arg("--preset=desktop");
    }
    run_for_output(&mut command)?;
    let text = std::fs::read_to_string(&output)
        .map_err(|error| format!("{}: {error}", output.display()))?;
    let report: Value =
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", output.display()))?;
    let summary = Summary::from_report(&report)?;
    eprintln!("    {summary:?}");
    done("Lighthouse", started);
    Ok(summary)
}

pub fn lighthouse() -> Result {
    tools::ensure_build_tools()?;
    build_page()?;
    build_worker()?;
    let cli = ensure_lighthouse()?;
    let (server, base_url) = start_bench_server("lighthouse")?;
    // The first fetch of each asset from a fresh workerd is slow in a way a deployment's
    // is not, so every asset is fetched once before Lighthouse looks.
    warm_up(&base_url, &root().join("dist"))?;
    let page = format!("{base_url}/");
    let mobile = run_lighthouse(&cli, &page, Preset::Mobile);
    let desktop = run_lighthouse(&cli, &page, Preset::Desktop);
    server.stop()?;
    let (mobile, desktop) = (mobile?, desktop?);

    println!("\n| preset | performance | accessibility | best practices | FCP | LCP | TBT | CLS |");
    println!("|---|---|---|---|---|---|---|---|");
    println!("{}", row(Preset::Mobile, mobile));
    println!("{}", row(Preset::Desktop, desktop));
    let goals = goals(mobile, desktop);
    for (goal, met) in &goals {
        println!("{} {goal}", if *met { "met    " } else { "NOT met" });
    }
    let summary = json!({
        "lighthouse": LIGHTHOUSE_VERSION,
        "mobile": mobile.to_json(),
        "desktop": desktop.to_json(),
        "goals": goals.iter().map(|(goal, met)| json!({"goal": goal, "met": met})).collect::<Vec<_>>(),
    });
    let path = root().join("target/lighthouse.json");
    std::fs::write(&path, format!("{summary:#}\n"))
        .map_err(|error| format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(performance: f64, lcp_ms: f64) -> Value {
        json!({
            "categories": {
                "performance": {"score": performance},
                "accessibility": {"score": 1.0},
                "best-practices": {"score": 1.0},
            },
            "audits": {
                "first-contentful-paint": {"numericValue": 950.0},
                "largest-contentful-paint": {"numericValue": lcp_ms},
                "total-blocking-time": {"numericValue": 120.0},
                "cumulative-layout-shift": {"numericValue": 0.0},
            },
        })
    }

    #[test]
    fn a_report_is_read_into_scores_out_of_100_and_times() {
        let summary = Summary::from_report(&report(0.58, 12_200.0)).expect("summary");
        assert_eq!(summary.performance, 58.0);
        assert_eq!(summary.accessibility, 100.0);
        assert_eq!(summary.lcp_ms, 12_200.0);
        assert_eq!(
            row(Preset::Mobile, summary),
            "| mobile | 58 | 100 | 100 | 0.9 s | 12.2 s | 120 ms | 0.000 |"
        );
    }

    #[test]
    fn a_report_without_a_category_is_an_error() {
        let mut broken = report(0.9, 2_000.0);
        broken["categories"]
            .as_object_mut()
            .expect("object")
            .remove("accessibility");
        assert!(Summary::from_report(&broken).is_err());
    }

    #[test]
    fn every_goal_is_judged_against_its_threshold() {
        let fast = Summary::from_report(&report(0.95, 2_000.0)).expect("fast");
        let slow = Summary::from_report(&report(0.58, 12_200.0)).expect("slow");
        let desktop = Summary::from_report(&report(0.99, 900.0)).expect("desktop");
        assert!(goals(fast, desktop).iter().all(|(_, met)| *met));
        let failed: Vec<String> = goals(slow, desktop)
            .into_iter()
            .filter(|(_, met)| !met)
            .map(|(goal, _)| goal)
            .collect();
        assert_eq!(
            failed,
            [
                "mobile performance 58 (≥ 90)",
                "mobile LCP 12200 ms (≤ 2,500 ms)"
            ]
        );
    }
}
