//! After a run: what the server holds (its metrics, its stored decisions and dead letters)
//! against what it accepted, so every accepted record is checked to exist exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use valle_shared::contract::query::with_query;

use super::Tally;
use crate::Client;

/// One gauge of `GET /metrics`, without labels.
pub fn metric(client: &Client, auth: &str, name: &str) -> Result<Option<f64>, String> {
    let answer = client.try_send("GET", "/metrics", &[("authorization", auth)], None)?;
    if answer.status != 200 {
        return Err(format!("GET /metrics: {} {}", answer.status, answer.text()));
    }
    Ok(gauge(&answer.text(), name))
}

/// The sum of a family's labelled series (`valle_decisions_total{band="bajo"} 9`, …).
pub fn family_sum(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{");
    let values: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Decisions the KPI object has counted, once the count has not moved for two seconds (it
/// counts just after the rows are stored); none if it kept moving for `timeout`.
pub fn counted_decisions(
    client: &Client,
    auth: &str,
    timeout: Duration,
) -> Result<Option<f64>, String> {
    let started = Instant::now();
    let read = || -> Result<Option<f64>, String> {
        let answer = client.try_send("GET", "/metrics", &[("authorization", auth)], None)?;
        Ok(family_sum(&answer.text(), "valle_decisions_total"))
    };
    let mut last = read()?;
    while started.elapsed() < timeout {
        std::thread::sleep(Duration::from_secs(2));
        let now = read()?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(None)
}

/// The value of an unlabelled series in Prometheus text.
pub fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

/// Seconds until the server's inbox holds no event waiting for its outcome, polled every
/// 100 ms; none if it still holds some after `timeout`.
pub fn wait_until_settled(
    client: &Client,
    auth: &str,
    timeout: Duration,
) -> Result<Option<f64>, String> {
    let started = Instant::now();
    loop {
        if metric(client, auth, "valle_inbox_events")? == Some(0.0) {
            return Ok(Some(started.elapsed().as_secs_f64()));
        }
        if started.elapsed() >= timeout {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether every accepted record ended up exactly once as a decision or a dead letter.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    pub accepted: usize,
    pub decisions: usize,
    pub dead_letters: usize,
    pub missing: Vec<String>,
    pub duplicated: Vec<String>,
    /// Decisions of the run's branch that no accepted or unanswered record explains.
    pub unexpected: Vec<String>,
    /// Accepted invalid applications that became decisions instead of dead letters.
    pub misrouted: Vec<String>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.unexpected.is_empty()
            && self.misrouted.is_empty()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} — {} accepted ids: {} decisions, {} dead letters, {} missing, {} duplicated, {} unexpected, {} misrouted",
            if self.passed() { "PASS" } else { "FAIL" },
            self.accepted,
            self.decisions,
            self.dead_letters,
            self.missing.len(),
            self.duplicated.len(),
            self.unexpected.len(),
            self.misrouted.len()
        )
    }
}

/// Every stored decision id of a branch (all pages).
fn decision_ids(client: &Client, branch: &str, auth: &str) -> Result<Vec<String>, String> {
    Ok(branch_decisions(client, branch, auth)?
        .iter()
        .map(|decision| {
            decision["request_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect())
}

/// Every stored decision of `branch`, as the API lists them (all pages).
pub fn branch_decisions(client: &Client, branch: &str, auth: &str) -> Result<Vec<Value>, String> {
    // Without a branch the list would be every branch's decisions.
    if branch.is_empty() {
        return Err("no branch to list the decisions of".to_owned());
    }
    let mut decisions = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = with_query(
            "/api/v1/decisions",
            &[
                ("branch", branch),
                ("limit", "500"),
                ("cursor", cursor.as_deref().unwrap_or_default()),
            ],
        );
        let answer = client.try_send("GET", &path, &[("authorization", auth)], None)?;
        if answer.status != 200 {
            return Err(format!("GET {path}: {} {}", answer.status, answer.text()));
        }
        let mut page = answer.json();
        if let Some(listed) = page["decisions"].as_array_mut() {
            decisions.append(listed);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(decisions),
        }
    }
}

/// Every dead letter's event id (all pages, open and replayed).
fn dead_letter_ids(client: &Client, auth: &str) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut path = "/api/v1/dead-letters?limit=500".to_owned();
        if let Some(before) = before {
            path.push_str(&format!("&cursor={before}"));
        }
        let answer = client.try_send("GET", &path, &[("authorization", auth)], None)?;
        if answer.status != 200 {
            return Err(format!("GET {path}: {} {}", answer.status, answer.text()));
        }
        let page = answer.json();
        for letter in page["dead_letters"].as_array().into_iter().flatten() {
            ids.push(letter["event_id"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_cursor"].as_i64() {
            Some(next) => before = Some(next),
            None => return Ok(ids),
        }
    }
}

/// Compares what the server stored with what it accepted, once: call it until it passes or
/// a deadline, since queued events take a moment to land.
pub fn verify(
    client: &Client,
    tally: &Tally,
    branch: &str,
    auth: &str,
) -> Result<Verification, String> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for id in decision_ids(client, branch, auth)? {
        counts.entry(id).or_default().0 += 1;
    }
    for id in dead_letter_ids(client, auth)? {
        if tally.accepted_ids.contains(&id) {
            counts.entry(id).or_default().1 += 1;
        }
    }
    let mut verification = Verification {
        accepted: tally.accepted_ids.len(),
        ..Verification::default()
    };
    for id in &tally.accepted_ids {
        match counts.get(id).copied().unwrap_or_default() {
            (0, 0) => verification.missing.push(id.clone()),
            (1, 0) => {
                verification.decisions += 1;
                if tally.accepted_invalid_ids.contains(id) {
                    verification.misrouted.push(id.clone());
                }
            }
            (0, 1) => verification.dead_letters += 1,
            _ => verification.duplicated.push(id.clone()),
        }
    }
    verification.unexpected = counts
        .iter()
        .filter(|(id, (decisions, _))| {
            *decisions > 0
                && !tally.accepted_ids.contains(*id)
                && !tally.unanswered_ids.contains(*id)
        })
        .map(|(id, _)| id.clone())
        .collect();
    Ok(verification)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_read_by_their_exact_name() {
        let text = "# HELP valle_inbox_events x\n# TYPE valle_inbox_events gauge\nvalle_inbox_events_total 9\nvalle_inbox_events 3\nvalle_kpi_object_rows NaN\n";
        assert_eq!(gauge(text, "valle_inbox_events"), Some(3.0));
        assert!(gauge(text, "valle_kpi_object_rows").is_some_and(f64::is_nan));
        assert_eq!(gauge(text, "valle_missing"), None);
        let counters = "valle_decisions_total{band=\"bajo\"} 9\nvalle_decisions_total{band=\"alto\"} 3\nvalle_decisions_totally 1\n";
        assert_eq!(family_sum(counters, "valle_decisions_total"), Some(12.0));
        assert_eq!(family_sum(counters, "valle_missing"), None);
    }
}
