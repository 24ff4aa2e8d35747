//! Webhooks against `wrangler dev`: a subscriber on loopback that is down for the first
//! 30 s gets every decision made meanwhile once it is up, each signed, exactly once by event
//! id; a subscriber that refuses gets a dead letter an admin replays. The subscriber is
//! removed at the end, so the suites after this one send to no one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use valle_shared::lending::audit::AuditAction;
use valle_shared::webhooks::signature::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use valle_shared::webhooks::{verify, Delivery, EventBody, EventKind};
use valle_tests::{eventually, Answer, Client};

mod accounts;
use accounts::{audit_rows_about, call, score, Who, REFERRED};

/// A `whsec_` secret: base64 of 32 bytes.
const SECRET: &str = "whsec_dGhlLWxvb3BiYWNrLXN1YnNjcmliZXItc2VjcmV0IQ==";

/// One POST as the subscriber read it: its headers (lower-case names) and body.
struct Received {
    headers: BTreeMap<String, String>,
    body: String,
}

/// A subscriber on a loopback port: it answers every POST with `status` and keeps it.
struct Subscriber {
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut headers = BTreeMap::new();
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

impl Subscriber {
    /// Starts listening on `port` (taken earlier and free since: the subscriber was down).
    fn listen(port: u16) -> Subscriber {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the subscriber's port");
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (kept, answer) = (Arc::clone(&received), Arc::clone(&status));
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let status = answer.load(Ordering::SeqCst);
                let reply = format!(
                    "HTTP/1.1 {status} Answer\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(reply.as_bytes());
                if status < 300 {
                    kept.lock().expect("the log").push(request);
                }
            }
        });
        Subscriber { received, status }
    }

    /// The events it accepted, by id, each checked against its signature; and how many
    /// posts that took.
    fn events(&self) -> (BTreeMap<String, EventBody>, usize) {
        let received = self.received.lock().expect("the log");
        let now_s = valle_tests::now_ms() / 1_000;
        let mut events = BTreeMap::new();
        for post in received.iter() {
            let header = |name: &str| {
                post.headers
                    .get(&name.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or_default()
            };
            let delivery = Delivery {
                id: &header(ID_HEADER),
                timestamp: &header(TIMESTAMP_HEADER),
                signature: &header(SIGNATURE_HEADER),
                body: post.body.as_bytes(),
            };
            verify(SECRET, delivery, now_s)
                .unwrap_or_else(|refusal| panic!("{refusal:?}: {}", post.body));
            let event: EventBody = serde_json::from_str(&post.body).expect("an event body");
            assert_eq!(event.id, header(ID_HEADER));
            events.insert(event.id.clone(), event);
        }
        (events, received.len())
    }
}

/// A call as the administrator, the one role that manages webhooks.
fn admin(client: &Client, method: &str, path: &str, body: Option<&str>) -> Answer {
    call(client, Some(Who::Admin), method, path, body)
}

/// Removes the subscription when the test ends, passed or not.
struct Registered<'a> {
    client: &'a Client,
    id: i64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let path = format!("/api/v1/webhooks/{}", self.id);
        let answer = admin(self.client, "DELETE", &path, None);
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
}

/// Scores an application the model refers to an officer; its request id.
fn referred(client: &Client) -> String {
    score(client, REFERRED).0
}

/// The request ids of the `decision.created` events among `events`.
fn decided(events: &BTreeMap<String, EventBody>) -> Vec<String> {
    let mut ids: Vec<String> = events
        .values()
        .filter(|event| event.kind == EventKind::DecisionCreated)
        .filter_map(|event| event.data["request_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_subscriber_down_for_30_seconds_gets_every_decision_once_signed() {
    let client = Client::new();
    // A port that nothing listens on until the subscriber comes up.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/valle");
    let body = json!({
        "url": url,
        "secret": SECRET,
        "events": ["decision.created"],
    })
    .to_string();
    let answer = admin(&client, "POST", "/api/v1/webhooks", Some(&body));
    assert_eq!(answer.status, 201, "{}", answer.text());
    let registered = Registered {
        client: &client,
        id: answer.json()["id"].as_i64().expect("an id"),
    };

    let down_since = Instant::now();
    let mut ids: Vec<String> = (0..5).map(|_| referred(&client)).collect();
    ids.sort();
    std::thread::sleep(Duration::from_secs(30).saturating_sub(down_since.elapsed()));
    let subscriber = Subscriber::listen(port);
    let events = eventually(150, "every decision delivered", || {
        let (events, _) = subscriber.events();
        (decided(&events) == ids).then_some(events)
    });
    // Deliveries already in flight may still land: each is the same event again.
    std::thread::sleep(Duration::from_secs(3));
    let (again, posts) = subscriber.events();
    assert_eq!(decided(&again), ids, "no other event, and each once by id");
    assert!(posts >= ids.len());
    for event in events.values() {
        let decision: Value = event.data.clone();
        assert_eq!(decision["score"]["decision"], "review", "{decision}");
    }

    // A refusal is kept as a dead letter; a replay delivers it.
    subscriber.status.store(410, Ordering::SeqCst);
    let refused = referred(&client);
    let letter = eventually(60, "a dead letter", || {
        let page = admin(
            &client,
            "GET",
            "/api/v1/webhooks/dead-letters?limit=50",
            None,
        )
        .json();
        page["dead_letters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|letter| {
                letter["subscription_id"] == registered.id
                    && letter["body"]
                        .as_str()
                        .is_some_and(|body| body.contains(&refused))
            })
            .cloned()
    });
    assert_eq!(letter["last_status"], 410, "{letter}");
    subscriber.status.store(200, Ordering::SeqCst);
    let replay = format!(
        "/api/v1/webhooks/dead-letters/{}/replay",
        letter["id"].as_i64().unwrap_or(0)
    );
    let answer = admin(&client, "POST", &replay, None);
    assert_eq!(answer.status, 202, "{}", answer.text());
    eventually(60, "the replayed delivery", || {
        let (events, _) = subscriber.events();
        events
            .get(letter["event_id"].as_str().unwrap_or_default())
            .map(|_| ())
    });
    drop(registered);

    // Each of the admin's writes is in the audit trail, and its secret is not.
    let actions = |subject: &str| -> Vec<Value> {
        audit_rows_about(&client, subject)
            .into_iter()
            .inspect(|row| assert!(!row.to_string().contains(SECRET), "{row}"))
            .map(|row| row["action"].clone())
            .collect()
    };
    assert_eq!(
        actions(&url),
        [
            AuditAction::WebhookUnsubscribed.as_str(),
            AuditAction::WebhookSubscribed.as_str()
        ]
    );
    assert!(
        actions(&letter["id"].to_string()).contains(&json!(AuditAction::WebhookReplayed.as_str()))
    );
}
