//! Installing the tools Valle builds and tests with, only when missing or at the wrong
//! version. Nothing here downloads from anywhere but the Rust, npm and Debian package
//! registries: the versions are the ones shared/TOOLCHAIN.md proved to work offline.

use std::path::PathBuf;
use std::process::Command;

use crate::process::{output, run};
use crate::{done, root, step, Result};

const TRUNK_VERSION: &str = "0.21.14";
const WORKER_BUILD_VERSION: &str = "0.8.7";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        PathBuf::from,
    )
}

/// Where `cargo install` puts a tool.
pub fn cargo_bin(name: &str) -> PathBuf {
    cargo_home().join("bin").join(name)
}

/// PATH with the project's npm tools first (wasm-opt 132 must win over any Debian binaryen),
/// then cargo's bin directory.
pub fn project_path() -> std::ffi::OsString {
    let mut paths = vec![root().join("node_modules/.bin"), cargo_home().join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

/// The version of a package recorded in Cargo.lock.
pub fn locked_version(lock: &str, package: &str) -> Option<String> {
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    let end = lock[start..].find('"')? + start;
    Some(lock[start..end].to_owned())
}

/// Whether `program --version` mentions `version` as a whole word.
fn has_version(program: &str, version: &str) -> bool {
    output(
        Command::new(program)
            .arg("--version")
            .env("PATH", project_path()),
    )
    .is_some_and(|text| text.split_whitespace().any(|word| word == version))
}

fn cargo_install(krate: &str, version: &str, locked: bool) -> Result {
    let started = step(&format!(
        "install {krate} {version} (once; cached in ~/.cargo/bin)"
    ));
    let mut command = Command::new("cargo");
    command.args(["install", krate, "--version", version]);
    if locked {
        command.arg("--locked");
    }
    run(&mut command)?;
    done(&format!("install {krate}"), started);
    Ok(())
}

/// The wasm32 target, trunk, wasm-bindgen-cli, worker-build and the npm tools.
pub fn ensure_build_tools() -> Result {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|line| line.trim() == WASM_TARGET) {
        run(Command::new("rustup")
            .current_dir(root())
            .args(["target", "add", WASM_TARGET]))?;
    }

    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|error| format!("Cargo.lock: {error}"))?;
    let bindgen =
        locked_version(&lock, "wasm-bindgen").ok_or("Cargo.lock has no wasm-bindgen entry")?;
    let trunk_toml = std::fs::read_to_string(root().join("Trunk.toml"))
        .map_err(|error| format!("Trunk.toml: {error}"))?;
    if !trunk_toml.contains(&format!("wasm_bindgen = \"{bindgen}\"")) {
        return Err(format!(
            "Trunk.toml's [tools] wasm_bindgen must equal Cargo.lock's wasm-bindgen {bindgen}"
        ));
    }

    if !has_version("trunk", TRUNK_VERSION) {
        cargo_install("trunk", TRUNK_VERSION, true)?;
    }
    if !has_version("wasm-bindgen", &bindgen) {
        // Not --locked: its lockfile pins a webpki-roots version the registry no longer has.
        cargo_install("wasm-bindgen-cli", &bindgen, false)?;
    }
    if !has_version("worker-build", WORKER_BUILD_VERSION) {
        cargo_install("worker-build", WORKER_BUILD_VERSION, false)?;
    }
    ensure_npm_tools()
}

/// `npm ci` when node_modules is missing or older than package-lock.json.
fn ensure_npm_tools() -> Result {
    let lock = root().join("package-lock.json");
    let installed = root().join("node_modules/.package-lock.json");
    let modified = |path: &PathBuf| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    let fresh = match (modified(&installed), modified(&lock)) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    let started =
        step("npm ci (wrangler, binaryen 132, esbuild, playwright-core, the OpenAPI validator)");
    run(Command::new("npm")
        .current_dir(root())
        .args(["ci", "--no-audit", "--no-fund"])
        .env("WRANGLER_SEND_METRICS", "false"))?;
    done("npm ci", started);
    Ok(())
}

/// Debian's promtool, which checks the worker's `/metrics` text.
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Debian's Chromium and ChromeDriver for the browser tests, and promtool (package
/// prometheus) for the metrics test; installed once, only what is missing.
pub fn ensure_browser() -> Result {
    let mut packages = Vec::new();
    if !PathBuf::from(CHROMIUM).exists() || !PathBuf::from(CHROMEDRIVER).exists() {
        packages.extend(["chromium", "chromium-driver"]);
    }
    if !PathBuf::from(PROMTOOL).exists() {
        packages.push("prometheus");
    }
    if packages.is_empty() {
        return Ok(());
    }
    let is_root = output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0");
    if !is_root {
        return Err(format!(
            "missing test packages: run `sudo apt-get install -y {}`",
            packages.join(" ")
        ));
    }
    let started = step(&format!("apt-get install {} (once)", packages.join(" ")));
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    done("install test packages", started);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_locked_versions() {
        let lock = "[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n\n[[package]]\nname = \"wasm-bindgen-futures\"\nversion = \"0.4.53\"\n";
        assert_eq!(
            locked_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(
            locked_version(lock, "wasm-bindgen-futures").as_deref(),
            Some("0.4.53")
        );
        assert_eq!(locked_version(lock, "trunk"), None);
    }

    #[test]
    fn the_project_lock_agrees_with_trunk_toml() {
        let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
        let trunk = std::fs::read_to_string(root().join("Trunk.toml")).expect("Trunk.toml");
        let bindgen = locked_version(&lock, "wasm-bindgen").expect("wasm-bindgen is locked");
        assert!(trunk.contains(&format!("wasm_bindgen = \"{bindgen}\"")));
    }
}
