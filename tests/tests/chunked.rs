//! A body sent without `Content-Length` (chunked) is read only up to its route's limit:
//! of 200 MB offered to `POST /api/v1/score` the server answers 413 within the first MiB,
//! stores nothing, and answers `/healthz` right after.
//!
//! It talks to the worker itself (`VALLE_WORKER_URL`, which `cargo xtask test` finds behind
//! wrangler's proxy): the proxy answers 503 itself when a worker answers while it is still
//! forwarding megabytes of the request, which Cloudflare's front end does not. The offer
//! pauses after its first MiB until the answer comes (or 10 s pass): a server that read
//! whole bodies would not answer during the pause and would be sent the other 199 MB.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use valle_shared::contract::codes::ErrorCode;
use valle_tests::{base_url, random_uuid, Client};

const OFFERED: usize = 200 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const BEFORE_PAUSE: usize = 1024 * 1024;
const PAUSE: Duration = Duration::from_secs(10);

#[test]
fn a_200_mb_chunked_body_is_refused_after_reading_at_most_its_limit() {
    let worker = std::env::var("VALLE_WORKER_URL").unwrap_or_else(|_| base_url());
    let address = worker.trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&address).expect("the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("a timeout");
    let id = random_uuid();
    let head = format!(
        "POST /api/v1/score HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         x-request-id: {id}\r\ncf-connecting-ip: 203.0.113.67\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let mut writer = stream.try_clone().expect("a writer");
    let (answered, answer_seen) = mpsc::channel::<()>();
    let sending = std::thread::spawn(move || -> usize {
        let chunk = format!("{CHUNK:x}\r\n{}\r\n", " ".repeat(CHUNK));
        let mut sent = 0;
        if writer.write_all(head.as_bytes()).is_err() {
            return sent;
        }
        while sent < OFFERED {
            if sent == BEFORE_PAUSE && answer_seen.recv_timeout(PAUSE).is_ok() {
                return sent;
            }
            if writer.write_all(chunk.as_bytes()).is_err() {
                return sent;
            }
            sent += CHUNK;
        }
        let _ = writer.write_all(b"0\r\n\r\n");
        sent
    });
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("an answer");
    let _ = answered.send(());
    let sent_when_answered = sending.join().expect("the sender");
    assert!(status_line.contains(" 413 "), "{status_line}");
    assert!(
        sent_when_answered <= BEFORE_PAUSE,
        "answered only after {sent_when_answered} bytes were sent"
    );
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("a header");
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the body");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(body["error"]["code"], ErrorCode::TooLarge.as_str());
    let _ = reader.get_ref().shutdown(std::net::Shutdown::Both);
    let client = Client::new();
    assert_eq!(client.get("/healthz").status, 200);
    assert_eq!(
        client
            .officer_get(&format!("/api/v1/decisions/{id}"))
            .status,
        404,
        "nothing was stored"
    );
}
