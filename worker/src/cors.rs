//! Cross-origin access to the API. The page is served from the worker's own origin and
//! needs no grant; a deployment may list other origins of its own (a branch kiosk, an
//! intranet portal) in `ALLOWED_ORIGINS`. Only those may read answers or pass a preflight;
//! every other origin gets no grant at all.

use crate::http::{HttpResponse, RequestHead};

/// What a listed origin may send, and read back.
const ALLOWED_METHODS: &[&str] = &["GET", "HEAD", "POST"];
const ALLOWED_HEADERS: &[&str] = &["authorization", "content-type", "x-request-id"];
const EXPOSED_HEADERS: &str = "x-request-id, server-timing, retry-after";
/// Ten minutes: browsers cache the grant, and a revoked origin loses it soon.
const MAX_AGE_S: &str = "600";

/// The origins allowed to call the API from another site.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

/// Why a preflight is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsRefusal {
    Origin,
    Method(String),
    Header(String),
}

impl CorsPolicy {
    /// Parses a comma- or space-separated list of origins (`https://host[:port]`). Entries
    /// that are not an exact origin (a wildcard, a path, another scheme) are skipped and
    /// returned, so the caller can log them: a typo must never widen the grant.
    pub fn parse(list: &str) -> (CorsPolicy, Vec<String>) {
        let mut origins = Vec::new();
        let mut skipped = Vec::new();
        for entry in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
        {
            match normalize(entry) {
                Some(origin) => {
                    if !origins.contains(&origin) {
                        origins.push(origin);
                    }
                }
                None => skipped.push(entry.to_owned()),
            }
        }
        (CorsPolicy { origins }, skipped)
    }

    pub fn allows(&self, origin: &str) -> bool {
        normalize(origin).is_some_and(|origin| self.origins.contains(&origin))
    }

    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(head: &RequestHead) -> bool {
        head.method == "OPTIONS"
            && head.header("origin").is_some()
            && head.header("access-control-request-method").is_some()
    }

    /// The headers a preflight's 204 adds to the grant, if it comes from a listed origin
    /// and asks for an allowed method and allowed headers; the refusal otherwise.
    pub fn preflight(&self, head: &RequestHead) -> Result<Vec<(String, String)>, CorsRefusal> {
        if !self.allows(head.header("origin").unwrap_or_default()) {
            return Err(CorsRefusal::Origin);
        }
        let method = head
            .header("access-control-request-method")
            .unwrap_or_default()
            .trim();
        if !ALLOWED_METHODS.contains(&method) {
            return Err(CorsRefusal::Method(method.chars().take(20).collect()));
        }
        let requested = head
            .header("access-control-request-headers")
            .unwrap_or_default();
        for name in requested
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
        {
            if !ALLOWED_HEADERS.contains(&name.as_str()) {
                return Err(CorsRefusal::Header(name.chars().take(60).collect()));
            }
        }
        Ok(vec![
            (
                "access-control-allow-methods".to_owned(),
                ALLOWED_METHODS.join(", "),
            ),
            (
                "access-control-allow-headers".to_owned(),
                ALLOWED_HEADERS.join(", "),
            ),
            ("access-control-max-age".to_owned(), MAX_AGE_S.to_owned()),
        ])
    }

    /// Grants a listed origin the answer (errors included, so its page can show them);
    /// other answers get no grant. With a list configured every answer varies by origin,
    /// so shared caches keep them apart.
    pub fn apply(&self, head: &RequestHead, response: HttpResponse) -> HttpResponse {
        if self.origins.is_empty() {
            return response;
        }
        let granted = head
            .header("origin")
            .filter(|origin| self.allows(origin))
            .and_then(normalize);
        let response = match granted {
            Some(origin) => response
                .with_header("access-control-allow-origin", origin)
                .with_header("access-control-expose-headers", EXPOSED_HEADERS),
            None => response,
        };
        response.with_header("vary", "Origin")
    }
}

/// `scheme://host[:port]` in lower case, or `None` if the text is not exactly an origin.
fn normalize(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('/');
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    let port_ok = port.is_none_or(|port| {
        !port.is_empty() && port.len() <= 5 && port.chars().all(|c| c.is_ascii_digit())
    });
    (host_ok && port_ok).then(|| format!("{scheme}://{}", rest.to_ascii_lowercase()))
}
