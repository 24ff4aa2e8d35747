//! The worker's own address under `wrangler dev`, behind wrangler's proxy. The proxy answers
//! 503 itself when a worker answers before a request's body has ended while it is still
//! forwarding it, which Cloudflare's front end does not; the test of an oversized chunked
//! body (`tests/tests/chunked.rs`) talks to the worker directly so it tests Valle, not the
//! proxy. Found on Linux through /proc: the loopback ports the server's process group
//! listens on, the one answering `/healthz` as Valle that is not the proxy's.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `http://127.0.0.1:PORT` of the worker itself, if it can be found.
pub fn worker_url(process_group: u32, public_port: u16) -> Option<String> {
    let sockets = group_sockets(process_group);
    listening_ports(&sockets)
        .into_iter()
        .filter(|port| *port != public_port)
        .find(|port| answers_as_valle(*port))
        .map(|port| format!("http://127.0.0.1:{port}"))
}

/// Socket inodes open in any process of the group.
fn group_sockets(process_group: u32) -> HashSet<u64> {
    let mut sockets = HashSet::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return sockets;
    };
    for process in processes.flatten() {
        let path = process.path();
        let in_group = std::fs::read_to_string(path.join("stat"))
            .ok()
            .and_then(|stat| group_of(&stat))
            == Some(process_group);
        if !in_group {
            continue;
        }
        let Ok(descriptors) = std::fs::read_dir(path.join("fd")) else {
            continue;
        };
        for descriptor in descriptors.flatten() {
            let target = std::fs::read_link(descriptor.path()).unwrap_or_default();
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inode| inode.parse().ok())
            {
                sockets.insert(inode);
            }
        }
    }
    sockets
}

/// The process group in a `/proc/PID/stat` line: the third field after the command name,
/// which is in parentheses and may hold spaces.
fn group_of(stat: &str) -> Option<u32> {
    stat.rsplit_once(") ")?.1.split(' ').nth(2)?.parse().ok()
}

/// Loopback IPv4 ports in LISTEN state (`0A`) whose socket is one of `sockets`.
fn listening_ports(sockets: &HashSet<u64>) -> Vec<u16> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let mut ports: Vec<u16> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (address, port) = fields.get(1)?.split_once(':')?;
            let inode: u64 = fields.get(9)?.parse().ok()?;
            (address == "0100007F" && *fields.get(3)? == "0A" && sockets.contains(&inode))
                .then(|| u16::from_str_radix(port, 16).ok())
                .flatten()
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

fn answers_as_valle(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer.starts_with("HTTP/1.1 200") && answer.contains(r#""service":"valle-worker""#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_behind_wranglers_proxy_is_found_only_as_valle() {
        // This test process listens on a loopback port that answers nothing as Valle.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let group = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| group_of(&stat))
            .expect("this process's group");
        let found = listening_ports(&group_sockets(group));
        assert!(found.contains(&port), "{found:?} lacks {port}");
        drop(listener);
        assert_eq!(worker_url(group, 0), None);
    }
}
