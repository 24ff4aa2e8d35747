//! Helpers for Valle's HTTP integration tests, which run against a live `wrangler dev`
//! started by `cargo xtask test` (its address in `VALLE_BASE_URL`).

pub mod contract;
pub mod load;
pub mod outcomes;
pub mod sample;

use std::time::Duration;

/// The server under test. `cargo xtask test` sets it; running these tests by hand needs
/// `VALLE_BASE_URL=http://127.0.0.1:8787` and `cargo xtask dev` in another terminal.
pub fn base_url() -> String {
    std::env::var("VALLE_BASE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8787".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// The one cross-origin site `cargo xtask test` lists in the server's `ALLOWED_ORIGINS`.
pub const ALLOWED_ORIGIN: &str = "https://ventanilla.example.coop";

/// The officers' token the server under test was started with (`cargo xtask test` sets
/// both); `cargo xtask dev` writes the development default into `.dev.vars`.
pub fn officer_token() -> String {
    std::env::var("VALLE_OFFICER_TOKEN").unwrap_or_else(|_| "valle-dev-officer-token".to_owned())
}

/// A fresh random id (UUID v4 form) from the OS's randomness, for request and event ids
/// that must not collide with earlier runs against the same database.
pub fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes));
    if filled.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    valle_shared::contract::ids::uuid_text(bytes)
}

/// The local clock in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Polls `probe` until it gives a value or `seconds` pass.
pub fn eventually<T>(seconds: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {seconds} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A 5xx the runtime produced, not Valle: its body is not Valle's JSON error.
    pub fn is_runtime_failure(&self) -> bool {
        self.status >= 500
            && serde_json::from_slice::<serde_json::Value>(&self.body)
                .ok()
                .and_then(|body| body["error"]["code"].as_str().map(str::to_owned))
                .is_none()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "status {}: body is not JSON ({error}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A plain HTTP client that reports every status as an answer, never as an error. Each
/// answer is checked against the OpenAPI description ([`contract`]): one it does not allow
/// fails the test.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    checked: bool,
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        Client::at(&base_url())
    }

    /// A client of the server at `base` (`http://host:port`).
    pub fn at(base: &str) -> Client {
        Client {
            checked: true,
            ..Client::unchecked(base)
        }
    }

    /// Like [`Self::at`], without the description's check: the load generator's client,
    /// which measures throughput and counts statuses.
    pub fn unchecked(base: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            checked: false,
        }
    }

    /// Sends `method path` with the given headers and optional body; a transport failure
    /// fails the test. A runtime restart is retried once (see [`Self::send_retrying`]), and
    /// so is a `GET` or `HEAD` the restart left unanswered, as wrangler's proxy retries them.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Answer {
        let (answer, _) = self.send_retrying(method, path, headers, body);
        let answer = match answer {
            Err(_) if matches!(method, "GET" | "HEAD") => {
                std::thread::sleep(Duration::from_millis(250));
                self.send_retrying(method, path, headers, body).0
            }
            answer => answer,
        };
        answer.unwrap_or_else(|error| panic!("{error}"))
    }

    /// Like [`Self::try_send`], but when the runtime itself answers a 5xx that is not Valle's
    /// JSON (workerd's "Your worker restarted mid-request. Please try sending the request
    /// again."), sends the same request once more, as a client is told to; with the request's
    /// idempotency key that is safe. Returns the answer and how many retries it took.
    pub fn send_retrying(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (Result<Answer, String>, u64) {
        let answer = self.try_send(method, path, headers, body);
        match &answer {
            Ok(first) if first.is_runtime_failure() => {
                std::thread::sleep(Duration::from_millis(250));
                (self.try_send(method, path, headers, body), 1)
            }
            _ => (answer, 0),
        }
    }

    /// Like [`Self::send`], but a transport failure (refused, reset, timed out) is an `Err`.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let what = format!("{method} {url}");
        // A bodiless GET or HEAD goes without even `content-length: 0`: wrangler's proxy
        // re-sends such a request itself when the runtime restarts under it, and cannot
        // re-send one with a body.
        let sent = match body {
            None if matches!(method, "GET" | "HEAD") => {
                self.agent.run(built(builder.body(()), &what))
            }
            _ => self.agent.run(built(
                builder.body(body.map(<[u8]>::to_vec).unwrap_or_default()),
                &what,
            )),
        };
        let mut response = sent.map_err(|error| format!("{what}: {error}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|error| format!("reading {method} {url}: {error}"))?;
        let answer = Answer {
            status,
            headers,
            body,
        };
        // The runtime's own failures are not Valle's answers; the caller may retry them.
        if self.checked && !answer.is_runtime_failure() {
            if let Err(drift) = contract::contract().check(method, path, status, &answer.body) {
                panic!("{drift}");
            }
        }
        Ok(answer)
    }

    pub fn post_json(&self, path: &str, body: &[u8]) -> Answer {
        self.send(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(body),
        )
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], None)
    }

    /// A GET with the officers' bearer token.
    pub fn officer_get(&self, path: &str) -> Answer {
        let auth = format!("Bearer {}", officer_token());
        self.send("GET", path, &[("authorization", &auth)], None)
    }
}

/// Waits until the KPI object has counted each decision: it counts from D1 after the
/// answer, and stores each decision's place in the KPI stream (`kpi_seq`) once it has.
pub fn wait_until_counted(client: &Client, request_ids: &[&str], seconds: u64) {
    eventually(seconds, "the KPI object to count the decisions", || {
        request_ids
            .iter()
            .all(|id| {
                let answer = client.officer_get(&format!("/api/v1/decisions/{id}"));
                answer.status == 200 && !answer.json()["kpi_seq"].is_null()
            })
            .then_some(())
    });
}

/// Every stored decision, all pages.
pub fn all_decisions(
    client: &Client,
) -> Result<Vec<valle_shared::records::decisions::DecisionRecord>, String> {
    decisions_where(client, "")
}

/// Every stored decision the list's `filters` (a query string, `branch=norte`) match, all
/// pages.
pub fn decisions_where(
    client: &Client,
    filters: &str,
) -> Result<Vec<valle_shared::records::decisions::DecisionRecord>, String> {
    let mut decisions = Vec::new();
    let mut cursor: Option<String> = None;
    let first = match filters {
        "" => "/api/v1/decisions?limit=500".to_owned(),
        filters => format!("/api/v1/decisions?{filters}&limit=500"),
    };
    loop {
        let path = match &cursor {
            Some(cursor) => format!("{first}&cursor={cursor}"),
            None => first.clone(),
        };
        let answer = client.officer_get(&path);
        if answer.status != 200 {
            return Err(format!("GET {path}: {} {}", answer.status, answer.text()));
        }
        let page = answer.json();
        let records: Vec<valle_shared::records::decisions::DecisionRecord> =
            serde_json::from_value(page["decisions"].clone()).map_err(|e| e.to_string())?;
        decisions.extend(records);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(decisions),
        }
    }
}

/// Recomputes every closed count window from the stored decisions (their place in the KPI
/// stream) and compares it with the window the aggregator closed. Answers how many windows
/// matched, or the first difference.
pub fn check_count_windows(client: &Client, size: usize) -> Result<usize, String> {
    use valle_shared::monitoring::kpi::{CountWindow, Stats};
    let answer = client.officer_get("/api/v1/kpis/windows?limit=1000");
    if answer.status != 200 {
        return Err(format!("windows: {} {}", answer.status, answer.text()));
    }
    let windows: Vec<CountWindow> =
        serde_json::from_value(answer.json()["windows"].clone()).map_err(|e| e.to_string())?;
    let decisions = all_decisions(client)?;
    let mut by_window: std::collections::BTreeMap<u64, Vec<_>> = Default::default();
    for decision in &decisions {
        if let Some(window) = decision.kpi_window {
            by_window.entry(window).or_default().push(decision);
        }
    }
    for window in &windows {
        let mut members = by_window.remove(&window.index).unwrap_or_default();
        members.sort_by_key(|decision| decision.kpi_seq);
        if members.len() != size {
            return Err(format!(
                "window {} has {} stored decisions, not {size}",
                window.index,
                members.len()
            ));
        }
        let mut stats = Stats::default();
        members
            .iter()
            .for_each(|decision| stats.add(&decision.observation()));
        let first = members[0].kpi_seq.unwrap_or_default();
        let last = members[size - 1].kpi_seq.unwrap_or_default();
        if last - first != size as u64 - 1 {
            return Err(format!(
                "window {} holds decisions {first}..={last}, not consecutive ones",
                window.index
            ));
        }
        let recomputed = CountWindow::close(window.index, first, last, &stats);
        if &recomputed != window {
            return Err(format!(
                "window {} differs from its recomputation: {recomputed:?} vs {window:?}",
                window.index
            ));
        }
    }
    Ok(windows.len())
}

/// Polls [`check_count_windows`] until at least `min` windows match or `seconds` pass (a
/// decision's place reaches D1 just after its answer); the error is the last difference.
pub fn count_windows_match(
    client: &Client,
    size: usize,
    min: usize,
    seconds: u64,
) -> Result<usize, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let last = match check_count_windows(client, size) {
            Ok(checked) if checked >= min => return Ok(checked),
            Ok(checked) => format!("only {checked} closed count windows"),
            Err(error) => error,
        };
        if std::time::Instant::now() >= deadline {
            return Err(last);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The request a builder made; a malformed one is a bug in the test.
fn built<T>(
    request: Result<ureq::http::Request<T>, ureq::http::Error>,
    what: &str,
) -> ureq::http::Request<T> {
    request.unwrap_or_else(|error| panic!("building {what}: {error}"))
}
