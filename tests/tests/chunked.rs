//! A body sent without `Content-Length` (chunked) is read only up to its route's limit:
//! 200 MB offered to `POST /api/v1/score` are refused with 413 long before they are all
//! sent, nothing is stored, and the server answers `/healthz` right after.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use valle_shared::codes::ErrorCode;
use valle_tests::{base_url, random_uuid, Client};

const OFFERED: u64 = 200 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

#[test]
fn a_200_mb_chunked_body_is_refused_after_reading_at_most_its_limit() {
    let address = base_url().trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&address).expect("the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a timeout");
    let id = random_uuid();
    let head = format!(
        "POST /api/v1/score HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         x-request-id: {id}\r\ncf-connecting-ip: 203.0.113.67\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let sent = Arc::new(AtomicU64::new(0));
    let mut writer = stream.try_clone().expect("a writer");
    let counted = Arc::clone(&sent);
    let sending = std::thread::spawn(move || {
        writer.write_all(head.as_bytes())?;
        let chunk = format!("{CHUNK:x}\r\n{}\r\n", " ".repeat(CHUNK));
        while counted.load(Ordering::SeqCst) < OFFERED {
            writer.write_all(chunk.as_bytes())?;
            counted.fetch_add(CHUNK as u64, Ordering::SeqCst);
        }
        writer.write_all(b"0\r\n\r\n")
    });
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("an answer");
    let sent_when_answered = sent.load(Ordering::SeqCst);
    assert!(status_line.contains(" 413 "), "{status_line}");
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
    std::io::Read::read_exact(&mut reader, &mut body).expect("the body");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(body["error"]["code"], ErrorCode::TooLarge.as_str());
    assert!(
        sent_when_answered < OFFERED / 4,
        "answered only after {sent_when_answered} bytes were sent"
    );
    // The connection is closed; the sender stops on its broken pipe.
    let _ = reader.get_ref().shutdown(std::net::Shutdown::Both);
    let _ = sending.join();
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
