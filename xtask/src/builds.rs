//! The page (Trunk) and the worker (worker-build) builds, each run only when an input is
//! newer than its output, and the security headers written beside the page.

use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

use crate::{openapi, project_shell, root, shell_error, timed, tools, Result};

/// When each path (or each file directly in a folder) was last modified; `None` when one
/// is missing.
fn modification_times(paths: &[PathBuf]) -> Option<Vec<std::time::SystemTime>> {
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    paths
        .iter()
        .flat_map(|path| match std::fs::read_dir(path) {
            Ok(entries) => entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect(),
            Err(_) => vec![path.clone()],
        })
        .map(|path| modified(&path))
        .collect()
}

/// The latest modification among `paths`; `None` when one is missing.
fn newest(paths: &[PathBuf]) -> Option<std::time::SystemTime> {
    modification_times(paths)?.into_iter().max()
}

/// The earliest modification among `paths`; `None` when one is missing.
fn oldest(paths: &[PathBuf]) -> Option<std::time::SystemTime> {
    modification_times(paths)?.into_iter().min()
}

/// Builds the page. Trunk runs wasm-bindgen and wasm-opt (over a minute on the 7 MB module)
/// every time, so it only runs when the compiled module or a static input is newer than dist/.
pub fn build_page() -> Result {
    timed("build page (trunk)", || {
        let sh = project_shell()?;
        // The same cargo invocation trunk makes, so the two share one build cache.
        for (manifest, bin) in [
            ("app/Cargo.toml", "valle-app"),
            ("app/Cargo.toml", "valle-panel"),
            ("scorer/Cargo.toml", "valle-scorer"),
        ] {
            cmd!(
                sh,
                "cargo build --target=wasm32-unknown-unknown --manifest-path {manifest} --bin {bin} --release"
            )
            .run()
            .map_err(shell_error)?;
        }
        let inputs = newest(&[
            root().join("target/wasm32-unknown-unknown/release/valle-app.wasm"),
            root().join("target/wasm32-unknown-unknown/release/valle-panel.wasm"),
            root().join("target/wasm32-unknown-unknown/release/valle-scorer.wasm"),
            root().join("app/index.html"),
            root().join("app/panel/index.html"),
            root().join("public"),
            root().join("Trunk.toml"),
            root().join("xtask/prerender.cjs"),
        ]);
        let output = oldest(&[
            root().join("dist/index.html"),
            root().join("dist/panel/index.html"),
        ]);
        // A build whose prerender step failed left a page without its first view.
        let prerendered = std::fs::read_to_string(root().join("dist/index.html"))
            .is_ok_and(|index| index.contains("<div data-prerendered>"));
        let fresh = prerendered
            && matches!((inputs, output), (Some(inputs), Some(output)) if output >= inputs);
        if fresh {
            eprintln!("    dist/ is newer than every input: nothing to do");
        } else {
            cmd!(sh, "trunk build --release")
                .run()
                .map_err(shell_error)?;
            // The dashboard's page and module, in their own folder: the first build empties
            // dist/, so this one comes second.
            cmd!(
                sh,
                "trunk build app/panel/index.html --release --dist dist/panel --public-url /panel/"
            )
            .run()
            .map_err(shell_error)?;
            // The first view goes into index.html, so the first paint waits for no wasm.
            tools::ensure_browser()?;
            let chromium = tools::CHROMIUM;
            cmd!(sh, "node xtask/prerender.cjs dist {chromium}")
                .run()
                .map_err(shell_error)?;
        }
        openapi::copy_into(&root().join("dist"))?;
        write_security_headers(&root().join("dist"))
    })
}

/// `dist/_headers`: the asset server sends these with every page and file. The CSP allows
/// only this origin, wasm compilation, and Trunk's one inline loader script of each page, by
/// its hash.
fn write_security_headers(dist: &Path) -> Result {
    let read = |page: &str| {
        std::fs::read_to_string(dist.join(page)).map_err(|error| format!("dist/{page}: {error}"))
    };
    let headers = security_headers(&[&read("index.html")?, &read("panel/index.html")?])?;
    std::fs::write(dist.join("_headers"), headers)
        .map_err(|error| format!("dist/_headers: {error}"))
}

/// The `_headers` text for a site whose pages' HTML is `pages`.
fn security_headers(pages: &[&str]) -> Result<String> {
    use base64::Engine;
    use sha2::Digest;

    const OPEN: &str = "<script type=\"module\">";
    let mut hashes = Vec::new();
    for page in pages {
        let start = page
            .find(OPEN)
            .map(|at| at + OPEN.len())
            .ok_or("a page in dist/ has no inline module script")?;
        let length = page[start..]
            .find("</script>")
            .ok_or("a page in dist/: the inline script is not closed")?;
        let digest = sha2::Sha256::digest(&page.as_bytes()[start..start + length]);
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        hashes.push(format!("'sha256-{hash}'"));
    }
    hashes.dedup();
    let policy = [
        "default-src 'self'".to_owned(),
        format!("script-src 'self' 'wasm-unsafe-eval' {}", hashes.join(" ")),
        "style-src 'self'".to_owned(),
        "img-src 'self' data:".to_owned(),
        "connect-src 'self'".to_owned(),
        "manifest-src 'self'".to_owned(),
        "worker-src 'self'".to_owned(),
        "object-src 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'self'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
    ]
    .join("; ");
    Ok(format!(
        "# Written by `cargo xtask build-page` from the pages in dist/; do not edit.\n/*\n  Content-Security-Policy: {policy}\n  X-Content-Type-Options: nosniff\n  Referrer-Policy: no-referrer\n  X-Frame-Options: DENY\n  Permissions-Policy: camera=(), microphone=(), geolocation=(), payment=()\n"
    ))
}

/// Wrangler calls this as its build command; it also runs on its own. wasm-bindgen and
/// wasm-opt take minutes on the worker's 8 MB module, so they only run when cargo produced a
/// module newer than the last bundle.
pub fn build_worker() -> Result {
    timed("build worker (worker-build)", || {
        let worker = root().join("worker");
        let sh = project_shell()?;
        sh.change_dir(&worker);
        // The same cargo invocation worker-build makes, so the two share one build cache.
        cmd!(
            sh,
            "cargo build --lib --release --target wasm32-unknown-unknown"
        )
        .env("WASM_BINDGEN_USE_JS_SYS", "1")
        .run()
        .map_err(shell_error)?;
        let compiled = root().join("target/wasm32-unknown-unknown/release/valle_worker.wasm");
        let bundled = worker.join("build/index_bg.wasm");
        let modified = |path: &Path| {
            std::fs::metadata(path)
                .and_then(|meta| meta.modified())
                .ok()
        };
        if let (Some(compiled), Some(bundled)) = (modified(&compiled), modified(&bundled)) {
            if bundled >= compiled && worker.join("build/index.js").exists() {
                eprintln!("    worker/build is newer than the compiled module: nothing to do");
                return Ok(());
            }
        }
        let node_bin = root().join("node_modules/.bin");
        cmd!(sh, "worker-build --release")
            // worker-build downloads these from a code host unless pointed at local copies.
            .env("WASM_BINDGEN_BIN", tools::cargo_bin("wasm-bindgen"))
            .env("WASM_OPT_BIN", node_bin.join("wasm-opt"))
            .env("ESBUILD_BIN", node_bin.join("esbuild"))
            .run()
            .map_err(shell_error)?;
        strip_names(&sh, &bundled)
    })
}

/// The features worker-build enables when it runs wasm-opt, and no newer ones: workerd
/// must read what comes out.
const WORKER_WASM_FEATURES: [&str; 7] = [
    "--enable-mutable-globals",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-bulk-memory",
    "--enable-multivalue",
    "--enable-reference-types",
    "--enable-exception-handling",
];

/// Where the bundle's module is kept with its function names, to read a production stack
/// trace (`wasm-function[N]`) by: the same commit builds the same module.
const NAMED_WORKER_WASM: &str = "target/worker-names/index_bg.wasm";

/// worker-build keeps the module's name section (1.7 MB, 0.4 MB of the bundle's gzip);
/// the deployed worker goes without it, and the named module stays in
/// [`NAMED_WORKER_WASM`].
fn strip_names(sh: &Shell, bundled: &Path) -> Result {
    let named = root().join(NAMED_WORKER_WASM);
    if let Some(dir) = named.parent() {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    }
    std::fs::copy(bundled, &named).map_err(|error| format!("{}: {error}", named.display()))?;
    let wasm_opt = root().join("node_modules/.bin/wasm-opt");
    let features = WORKER_WASM_FEATURES;
    cmd!(
        sh,
        "{wasm_opt} {named} {features...} --strip-debug --strip-producers -o {bundled}"
    )
    .run()
    .map_err(shell_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_pins_each_pages_inline_script_by_its_hash() {
        // sha256("console.log(1)") and sha256("console.log(2)") in base64.
        let scoring = "<html><script type=\"module\">console.log(1)</script></html>";
        let panel = "<html><script type=\"module\">console.log(2)</script></html>";
        let headers = security_headers(&[scoring, panel]).expect("headers");
        assert!(headers.starts_with("# Written by"));
        assert!(headers.contains(
            "script-src 'self' 'wasm-unsafe-eval' 'sha256-CihokcEcBW4atb/CW/XWsvWwbTjqwQlE9nj9ii5ww5M=' 'sha256-"
        ), "{headers}");
        assert_eq!(headers.matches("'sha256-").count(), 2, "{headers}");
        for header in [
            "X-Content-Type-Options: nosniff",
            "Referrer-Policy: no-referrer",
            "frame-ancestors 'none'",
        ] {
            assert!(headers.contains(header), "{header}");
        }
        assert!(security_headers(&[scoring, "<html></html>"]).is_err());
        assert!(security_headers(&["<script type=\"module\">x"]).is_err());
    }
}
