//! Running tools and a background server, and always stopping what was started.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// Runs a command to completion, its output going straight to the terminal.
pub fn run(command: &mut Command) -> Result {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .map_err(|error| format!("cannot start {shown}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} exited with {status}"))
    }
}

/// Runs a command, showing its output only when it fails.
pub fn run_quiet(command: &mut Command) -> Result {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|error| format!("cannot start {shown}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown} exited with {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs a command and returns its standard output, or `None` if it cannot run or fails.
pub fn output(command: &mut Command) -> Option<String> {
    let output = command.stderr(Stdio::null()).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs a command to completion and returns its standard output; its standard error (build
/// progress, warnings) still goes to the terminal.
pub fn run_for_output(command: &mut Command) -> Result<String> {
    let shown = format!("{command:?}");
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot start {shown}: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!("{shown} exited with {}", output.status))
    }
}

/// Runs a command to completion and returns whether it succeeded and its standard output,
/// for a check that prints its report either way.
pub fn run_for_report(command: &mut Command) -> Result<(bool, String)> {
    let shown = format!("{command:?}");
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot start {shown}: {error}"))?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// A port the kernel says is free right now.
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|error| format!("no free port: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| error.to_string())
}

/// A server running in its own process group, stopped with all its children on drop.
pub struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    pub fn start(mut command: Command, log: PathBuf) -> Result<Server> {
        let file = File::create(&log).map_err(|error| format!("{}: {error}", log.display()))?;
        let errors = file.try_clone().map_err(|error| error.to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(errors)
            // Its own group, so workerd and every other child stop with it.
            .process_group(0)
            .spawn()
            .map_err(|error| format!("cannot start {command:?}: {error}"))?;
        eprintln!("    server pid {}, log {}", child.id(), log.display());
        Ok(Server { child, log })
    }

    /// Polls `url` until it answers 200, the server exits, or `seconds` pass.
    pub fn wait_until_healthy(&mut self, url: &str, seconds: u64) -> Result {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            if http_get_status(url, Duration::from_secs(5)) == Some(200) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the server exited ({status}) before {url} answered; last lines of {}:\n{}",
                    self.log.display(),
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!(
            "{url} did not answer 200 within {seconds} s; last lines of {}:\n{}",
            self.log.display(),
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL if it lingers.
    pub fn stop(mut self) -> Result {
        self.terminate();
        Ok(())
    }

    /// The server's process id, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the whole process group with SIGKILL at once, as a crash would: no shutdown,
    /// nothing flushed.
    pub fn crash(mut self) -> Result {
        let group = format!("-{}", self.child.id());
        run(Command::new("kill").args(["-KILL", "--", &group]))?;
        let _ = self.child.wait();
        Ok(())
    }

    fn terminate(&mut self) {
        let group = format!("-{}", self.child.id());
        // Quiet: the group may already be gone.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}

/// Fetches `/` and every file of `dist` once. workerd has been seen to stall 30 s on the
/// first request for a static file; paying that here keeps it out of the browser tests.
pub fn warm_up(base_url: &str, dist: &std::path::Path) -> Result {
    let mut paths = vec!["/".to_owned()];
    let mut folders = vec![dist.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|error| format!("{}: {error}", folder.display()))?;
        for entry in entries {
            let path = entry.map_err(|error| error.to_string())?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            // `_headers` and its kind configure the asset server and are never served.
            if name.starts_with('_') {
                continue;
            }
            if path.is_dir() {
                folders.push(path);
            } else if let Ok(relative) = path.strip_prefix(dist) {
                paths.push(format!("/{}", relative.to_string_lossy()));
            }
        }
    }
    for path in paths {
        match http_get_status(&format!("{base_url}{path}"), Duration::from_secs(120)) {
            Some(status) if status < 400 => {}
            other => return Err(format!("warming up {path}: status {other:?}")),
        }
    }
    Ok(())
}

/// A minimal HTTP/1.1 GET, enough to poll a health endpoint on loopback.
pub fn http_get_status(url: &str, timeout: Duration) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(host, path)| {
            (host, format!("/{path}"))
        });
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_can_be_bound() {
        let port = free_port().expect("a free port");
        assert!(port > 0);
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    }

    #[test]
    fn health_polling_reads_the_status_line() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            // Reading the whole request first matters: closing a socket with unread bytes
            // sends a reset, which can discard the answer before the client reads it.
            let mut request = Vec::new();
            let mut chunk = [0u8; 256];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => request.extend_from_slice(&chunk[..read]),
                }
            }
            let _ =
                stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
            let _ = stream.shutdown(std::net::Shutdown::Write);
        });
        assert_eq!(
            http_get_status(
                &format!("http://127.0.0.1:{port}/healthz"),
                Duration::from_secs(5)
            ),
            Some(503)
        );
        server.join().expect("server thread");
        assert_eq!(
            http_get_status(
                &format!("http://127.0.0.1:{port}/healthz"),
                Duration::from_secs(5)
            ),
            None
        );
    }
}
