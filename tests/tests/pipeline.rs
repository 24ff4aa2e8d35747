//! The edge pipeline under `wrangler dev` with its local D1, Durable Objects and Queues:
//! idempotency under concurrent duplicates, events to decisions or dead letters, replay,
//! count windows recomputed from D1 rows, late events, officer access, rate limits, the
//! Prometheus text and health. Each test uses its own branch and client address, so tests
//! running side by side do not disturb each other's figures.

use std::collections::BTreeMap;
use valle_shared::contract::codes::ErrorCode;

use serde_json::{json, Value};
use valle_shared::api::{KpiResponse, ScoreResponse};
use valle_shared::contract::time::format_rfc3339_ms;
use valle_shared::records::decisions::DecisionRecord;
use valle_tests::{
    count_windows_match, eventually, officer_token, random_uuid, wait_until_counted, Answer, Client,
};

const VALID: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;
const INVALID: &str = r#"{"seniority_years":9,"home":"castle","age":17}"#;

/// A valid application that differs per `i`, so decisions differ in band and probability.
fn application(i: usize) -> String {
    let amount = 300 + (i * 97) % 1_500;
    let income = 60 + (i * 37) % 200;
    format!(
        r#"{{"seniority_years":{},"home":"{}","term_months":{},"age":{},"marital":"married","records":"{}","job":"{}","expenses":{},"income":{income},"assets":{},"debt":0,"amount":{amount},"price":{}}}"#,
        i % 20,
        ["rent", "owner", "parents", "other"][i % 4],
        [24, 36, 48, 60][i % 4],
        25 + i % 40,
        ["no", "yes"][usize::from(i.is_multiple_of(5))],
        ["fixed", "freelance", "partime", "others"][i % 4],
        35 + i % 50,
        (i * 1_000) % 9_000,
        amount + 200,
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// A branch name unique to this run of one test.
fn branch(test: &str) -> String {
    format!("t-{test}-{}", &random_uuid()[..8])
}

/// The application `body` with its `branch` field set.
fn in_branch(body: &str, branch: &str) -> String {
    format!(r#"{{"branch":"{branch}",{}"#, &body[1..])
}

fn score(client: &Client, ip: &str, request_id: &str, branch: &str, body: &str) -> Answer {
    client.send(
        "POST",
        "/api/v1/score",
        &[
            ("content-type", "application/json"),
            ("x-request-id", request_id),
            ("cf-connecting-ip", ip),
        ],
        Some(in_branch(body, branch).as_bytes()),
    )
}

fn kpis(client: &Client, query: &str) -> KpiResponse {
    let answer = client.officer_get(&format!("/api/v1/kpis?{query}"));
    assert_eq!(answer.status, 200, "{}", answer.text());
    serde_json::from_slice(&answer.body).expect("kpi body")
}

/// The branch's KPI view once the cache has caught up with `decisions`.
fn kpis_with(client: &Client, query: &str, decisions: u64) -> KpiResponse {
    eventually(15, "the KPI view to count the new decisions", || {
        let view = kpis(client, query);
        (view.view.summary.decisions == decisions).then_some(view)
    })
}

#[test]
fn twenty_concurrent_duplicates_store_one_decision() {
    let client = Client::new();
    let id = random_uuid();
    let branch = branch("dup");
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| score(&Client::new(), "10.0.1.1", &id, &branch, VALID)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("thread"))
            .collect()
    });
    let scored: Vec<ScoreResponse> = answers
        .iter()
        .map(|answer| {
            assert_eq!(answer.status, 200, "{}", answer.text());
            serde_json::from_slice(&answer.body).expect("score body")
        })
        .collect();
    let fresh = scored.iter().filter(|answer| !answer.replayed).count();
    assert_eq!(fresh, 1, "exactly one request stored the decision");
    assert!(scored.iter().all(|answer| answer.score == scored[0].score));
    let stored = client.officer_get(&format!("/api/v1/decisions/{id}"));
    assert_eq!(stored.status, 200);
    let page = client.officer_get(&format!("/api/v1/decisions?branch={branch}&limit=500"));
    assert_eq!(page.json()["decisions"].as_array().map(Vec::len), Some(1));
    // Counted once in the KPIs too.
    let view = kpis_with(&client, &format!("window=5m&branch={branch}"), 1);
    assert_eq!(view.view.summary.count, 1);
}

fn event(id: &str, time_ms: i64, branch: &str, application: &str) -> Value {
    json!({
        "event_id": id,
        "event_time": format_rfc3339_ms(time_ms),
        "application": serde_json::from_str::<Value>(&in_branch(application, branch)).expect("json"),
        "client_score": { "probability": 0.25 },
    })
}

fn post_events(client: &Client, ip: &str, events: &[Value]) -> Answer {
    let body = json!({ "events": events }).to_string();
    client.send(
        "POST",
        "/api/v1/events",
        &[
            ("content-type", "application/json"),
            ("cf-connecting-ip", ip),
        ],
        Some(body.as_bytes()),
    )
}

/// Open dead letters by event id.
fn open_dead_letters(client: &Client) -> BTreeMap<String, Value> {
    let answer = client.officer_get("/api/v1/dead-letters?status=open&limit=500");
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["dead_letters"]
        .as_array()
        .map(|letters| {
            letters
                .iter()
                .map(|letter| {
                    (
                        letter["event_id"].as_str().unwrap_or_default().to_owned(),
                        letter.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_accepted_event_becomes_one_decision_or_one_dead_letter_and_replay_works() {
    let client = Client::new();
    let branch = branch("events");
    let now = now_ms();
    let valid: Vec<String> = (0..7).map(|_| random_uuid()).collect();
    let invalid: Vec<String> = (0..3).map(|_| random_uuid()).collect();
    let mut events: Vec<Value> = valid
        .iter()
        .enumerate()
        .map(|(i, id)| event(id, now - 1_000, &branch, &application(i)))
        .collect();
    events.extend(
        invalid
            .iter()
            .map(|id| event(id, now - 1_000, &branch, INVALID)),
    );
    events.push(json!({ "event_id": "not-a-uuid", "event_time": "2026-11-23T10:00:00Z", "application": {} }));
    let answer = post_events(&client, "10.0.2.1", &events);
    assert_eq!(answer.status, 202, "{}", answer.text());
    let acks = answer.json();
    assert_eq!(
        (acks["accepted"].as_u64(), acks["rejected"].as_u64()),
        (Some(10), Some(1))
    );
    assert_eq!(
        acks["results"][10]["error"]["code"],
        ErrorCode::EventId.as_str()
    );
    // The same batch again (a client retry): still one outcome per event.
    assert_eq!(post_events(&client, "10.0.2.1", &events).status, 202);

    let letters = eventually(60, "every event to be a decision or a dead letter", || {
        let letters = open_dead_letters(&client);
        let decided = valid
            .iter()
            .filter(|id| {
                client
                    .officer_get(&format!("/api/v1/decisions/{id}"))
                    .status
                    == 200
            })
            .count();
        let lettered = invalid
            .iter()
            .filter(|id| letters.contains_key(*id))
            .count();
        (decided == valid.len() && lettered == invalid.len()).then_some(letters)
    });
    for id in &invalid {
        assert_eq!(
            client
                .officer_get(&format!("/api/v1/decisions/{id}"))
                .status,
            404,
            "{id} is a dead letter, not a decision"
        );
        assert_eq!(letters[id]["error_code"], ErrorCode::Validation.as_str());
        assert_eq!(letters[id]["payload"]["event_id"], id.as_str());
    }
    for id in &valid {
        assert!(!letters.contains_key(id));
        let record: DecisionRecord =
            serde_json::from_slice(&client.officer_get(&format!("/api/v1/decisions/{id}")).body)
                .expect("record");
        assert_eq!(record.channel.as_str(), "offline-sync");
        assert!(record.mismatch, "the client said 0.25");
    }
    let page = client.officer_get(&format!("/api/v1/decisions?branch={branch}&limit=500"));
    assert_eq!(
        page.json()["decisions"].as_array().map(Vec::len),
        Some(valid.len()),
        "no duplicates from the resent batch"
    );

    // Replay: as it was, it fails again and stays open; corrected, it becomes a decision.
    let letter_id = letters[&invalid[0]]["id"].as_i64().expect("id");
    let auth = format!("Bearer {}", officer_token());
    let replay = |body: &str| {
        client.send(
            "POST",
            &format!("/api/v1/dead-letters/{letter_id}/replay"),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
    };
    let again = replay("");
    assert_eq!(again.status, 400, "{}", again.text());
    assert_eq!(
        again.json()["error"]["code"],
        ErrorCode::Validation.as_str()
    );
    let fixed = replay(&format!(r#"{{"application":{VALID}}}"#));
    assert_eq!(fixed.status, 200, "{}", fixed.text());
    assert_eq!(fixed.json()["decision"]["request_id"], invalid[0].as_str());
    assert_eq!(
        client
            .officer_get(&format!("/api/v1/decisions/{}", invalid[0]))
            .status,
        200
    );
    assert!(!open_dead_letters(&client).contains_key(&invalid[0]));
    let twice = replay("");
    assert_eq!(
        (twice.status, twice.json()["replayed"].as_bool()),
        (200, Some(true))
    );
}

#[test]
fn closed_count_windows_match_a_recomputation_from_the_stored_decisions() {
    let client = Client::new();
    let branch = branch("windows");
    for i in 0..45 {
        let answer = score(
            &client,
            "10.0.3.1",
            &random_uuid(),
            &branch,
            &application(i),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    if let Err(difference) = count_windows_match(&client, 20, 2, 20) {
        panic!("closed count windows vs stored decisions: {difference}");
    }
}

#[test]
fn late_events_revise_their_window_or_go_to_the_late_table() {
    let client = Client::new();
    let branch = branch("late");
    let now = now_ms();
    let two_hours_ago = now - 2 * 3_600_000;
    let days_ago = now - 30 * 3_600_000;
    let (revising, too_late) = (random_uuid(), random_uuid());
    let late_before = metric(&client, "valle_late_events_total");
    let events = [
        event(&revising, two_hours_ago, &branch, VALID),
        event(&too_late, days_ago, &branch, VALID),
    ];
    assert_eq!(post_events(&client, "10.0.4.1", &events).status, 202);
    eventually(60, "both late events to be decisions", || {
        let stored = [&revising, &too_late].iter().all(|id| {
            client
                .officer_get(&format!("/api/v1/decisions/{id}"))
                .status
                == 200
        });
        stored.then_some(())
    });
    // Counted after they are stored; the 24-hour view is then cached for 30 s.
    wait_until_counted(&client, &[&revising, &too_late], 30);
    // The event two hours late is in its own hour's window, marked revised.
    let view = kpis_with(&client, &format!("window=24h&branch={branch}"), 1);
    let hour_start = two_hours_ago - two_hours_ago.rem_euclid(3_600_000);
    let point = view
        .view
        .series
        .iter()
        .find(|point| point.start_ms == hour_start)
        .expect("the event's hour");
    assert_eq!((point.decisions, point.revised), (1, true));
    // The one thirty hours late is stored as a decision but kept out of the windows.
    assert!(view
        .view
        .series
        .iter()
        .all(|point| point.start_ms > days_ago));
    let late_after = metric(&client, "valle_late_events_total");
    assert!(
        late_after > late_before,
        "late events counted: {late_before} -> {late_after}"
    );
}

/// One unlabelled sample of `/metrics`.
fn metric(client: &Client, name: &str) -> f64 {
    let text = client.officer_get("/metrics").text();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

#[test]
fn officer_endpoints_refuse_missing_and_wrong_tokens() {
    let client = Client::new();
    let token = officer_token();
    let near_miss = format!("Bearer {}x", &token[..token.len() - 1]);
    for path in [
        "/api/v1/decisions",
        "/api/v1/decisions/abc",
        "/api/v1/dead-letters",
        "/api/v1/kpis",
        "/api/v1/kpis/windows",
        "/metrics",
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some(near_miss.as_str()),
            Some("Basic dmFsbGU6dmFsbGU="),
        ] {
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|auth| ("authorization", *auth)).collect();
            let answer = client.send("GET", path, &headers, None);
            assert_eq!(answer.status, 401, "{path} {auth:?}");
            assert_eq!(
                answer.json()["error"]["code"],
                ErrorCode::Unauthorized.as_str()
            );
        }
    }
    let replay = client.send("POST", "/api/v1/dead-letters/1/replay", &[], None);
    assert_eq!(replay.status, 401);
    // Scoring stays public.
    assert_eq!(
        score(&client, "10.0.5.1", &random_uuid(), "principal", VALID).status,
        200
    );
}

/// The limiter of `wrangler.toml`: 600 requests per 10 s per client. Its windows are fixed,
/// so a burst of any size can straddle two of them; the flood goes on until the first 429,
/// for at most two and a half periods, which at more than 60 requests/s always fills one.
const RATE_LIMIT_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

#[test]
fn flooding_one_client_gets_429_with_retry_after() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let ip = "10.0.6.1";
    let limited_seen = AtomicBool::new(false);
    let deadline = std::time::Instant::now() + RATE_LIMIT_PERIOD * 5 / 2;
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    let client = Client::new();
                    let mut statuses = Vec::new();
                    while !limited_seen.load(Ordering::Relaxed)
                        && std::time::Instant::now() < deadline
                    {
                        let answer = score(&client, ip, &random_uuid(), "principal", VALID);
                        if answer.status == 429 {
                            limited_seen.store(true, Ordering::Relaxed);
                        }
                        statuses.push((
                            answer.status,
                            answer.header("retry-after").map(str::to_owned),
                        ));
                    }
                    statuses
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("thread"))
            .collect()
    });
    let limited: Vec<&(u16, Option<String>)> = statuses
        .iter()
        .filter(|(status, _)| *status == 429)
        .collect();
    assert!(
        !limited.is_empty(),
        "{} requests from one client in {RATE_LIMIT_PERIOD:?} × 2.5, none limited",
        statuses.len()
    );
    assert!(statuses
        .iter()
        .all(|(status, _)| *status == 200 || *status == 429));
    assert!(limited.iter().all(|(_, retry)| retry
        .as_deref()
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|s| s >= 1)));
    // Another client is not affected.
    assert_eq!(
        score(
            &Client::new(),
            "10.0.6.2",
            &random_uuid(),
            "principal",
            VALID
        )
        .status,
        200
    );
}

#[test]
fn metrics_pass_promtool_and_health_reports_every_backend() {
    let client = Client::new();
    score(&client, "10.0.7.1", &random_uuid(), "principal", VALID);
    let answer = client.officer_get("/metrics");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed by cargo xtask test");
    if let Some(mut stdin) = promtool.stdin.take() {
        std::io::Write::write_all(&mut stdin, &answer.body).expect("write to promtool");
    }
    let output = promtool.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let health = client.get("/healthz").json();
    assert_eq!(health["status"], "ok");
    let checks: Vec<(&str, bool)> = health["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default(),
                        c["ok"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        checks,
        [
            ("d1", true),
            ("durable_object", true),
            ("queue", true),
            ("receipt_key", true)
        ]
    );
}

#[test]
fn kpis_are_cached_and_marked_stale_when_old() {
    let client = Client::new();
    let branch = branch("cache");
    let id = random_uuid();
    score(&client, "10.0.8.1", &id, &branch, VALID);
    wait_until_counted(&client, &[&id], 30);
    let query = format!("window=1h&branch={branch}");
    let first = kpis_with(&client, &query, 1);
    assert_eq!(first.cache_key, format!("kpis|window=1h|branch={branch}"));
    let cached = kpis(&client, &query);
    assert!(!cached.stale);
    assert_eq!(
        cached.computed_at_ms, first.computed_at_ms,
        "served from the cache"
    );
    assert!(cached.cache.hits > first.cache.hits);
    // The 1 h view is fresh for 5 s; after that it is served stale while it refreshes.
    std::thread::sleep(std::time::Duration::from_millis(5_500));
    let stale = kpis(&client, &query);
    assert!(stale.stale, "served stale past the TTL");
    let refreshed = eventually(10, "the refreshed view", || {
        let view = kpis(&client, &query);
        (!view.stale && view.computed_at_ms > first.computed_at_ms).then_some(view)
    });
    assert_eq!(refreshed.view.summary.decisions, 1);
}
