//! Where a webhook may be delivered. A subscriber URL names a public `https` host: never an
//! address inside a network (loopback, private, link-local, shared/CGNAT, unique-local,
//! unspecified, multicast, reserved), never a `localhost` name, never plain `http`, never
//! credentials. The local environment (`wrangler dev`) also allows `http` and `https` to
//! loopback, for development and tests. Checked at registration and again before each
//! delivery; URLs are read as browsers and the Workers runtime read them (WHATWG), so
//! `http://0x7f.1/` is the loopback address it is.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// A subscriber URL's length bound.
pub const MAX_URL_CHARS: usize = 2_048;

/// Which targets an environment may deliver to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Production: public `https` hosts only.
    Public,
    /// The local environment: public `https` hosts, and loopback over `http` or `https`.
    Local,
}

impl Reach {
    /// What a page served from `host` may assume of its edge: a page on loopback is the
    /// local environment's, any other is a deployment's. The page checks registrations by
    /// it, so it refuses what its edge refuses.
    pub fn served_from(host: &str) -> Reach {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = match Host::parse(host) {
            Ok(Host::Domain(name)) => is_localhost_name(&name),
            Ok(Host::Ipv4(address)) => address.is_loopback(),
            Ok(Host::Ipv6(address)) => address.is_loopback(),
            Err(_) => host
                .parse::<Ipv6Addr>()
                .is_ok_and(|address| address.is_loopback()),
        };
        if loopback {
            Reach::Local
        } else {
            Reach::Public
        }
    }
}

/// Why a URL is no webhook target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefusal {
    #[error("not an absolute http(s) URL")]
    NotUrl,
    #[error("only https is allowed")]
    NotHttps,
    #[error("the URL carries credentials")]
    Credentials,
    #[error("the host is an address inside a network, or a localhost name")]
    Internal,
}

/// Checks `url` as a webhook target for `reach`.
pub fn check_target(url: &str, reach: Reach) -> Result<(), TargetRefusal> {
    if url.chars().count() > MAX_URL_CHARS || url.chars().any(char::is_whitespace) {
        return Err(TargetRefusal::NotUrl);
    }
    let parsed = Url::parse(url).map_err(|_| TargetRefusal::NotUrl)?;
    let secure = match parsed.scheme() {
        "https" => true,
        "http" => false,
        _ => return Err(TargetRefusal::NotUrl),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetRefusal::Credentials);
    }
    let host = parsed.host().ok_or(TargetRefusal::NotUrl)?;
    let loopback = is_loopback(&host);
    if reach == Reach::Local && loopback {
        return Ok(());
    }
    if loopback || is_internal(&host) {
        return Err(TargetRefusal::Internal);
    }
    if !secure {
        return Err(TargetRefusal::NotHttps);
    }
    Ok(())
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => is_localhost_name(name),
        Host::Ipv4(address) => address.is_loopback(),
        Host::Ipv6(address) => {
            address.is_loopback() || embedded_ipv4(address).is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn is_internal(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => is_localhost_name(name),
        Host::Ipv4(address) => is_internal_v4(*address),
        Host::Ipv6(address) => is_internal_v6(address),
    }
}

fn is_internal_v4(address: Ipv4Addr) -> bool {
    let [a, b, ..] = address.octets();
    address.is_unspecified()
        || a == 0
        || address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        // Shared address space (CGNAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24; benchmarking, 198.18.0.0/15.
        || (a == 192 && b == 0 && address.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || address.is_multicast()
        || address.is_broadcast()
        // Reserved, 240.0.0.0/4.
        || a >= 240
        || address.is_documentation()
}

fn is_internal_v6(address: &Ipv6Addr) -> bool {
    let first = address.segments()[0];
    address.is_unspecified()
        || address.is_loopback()
        || address.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10, and the deprecated site-local fec0::/10.
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && address.segments()[1] == 0x0db8)
        || embedded_ipv4(address).is_some_and(is_internal_v4)
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`).
fn embedded_ipv4(address: &Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = address.segments();
    let last_two = || {
        let [.., high, low] = segments;
        Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
    };
    match segments {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(last_two()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last_two()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, public: Result<(), TargetRefusal>, local: Result<(), TargetRefusal>) {
        assert_eq!(check_target(url, Reach::Public), public, "public {url}");
        assert_eq!(check_target(url, Reach::Local), local, "local {url}");
    }

    #[test]
    fn a_page_on_loopback_is_the_local_environments() {
        for (host, reach) in [
            ("127.0.0.1", Reach::Local),
            ("localhost", Reach::Local),
            ("[::1]", Reach::Local),
            ("valle.coop.workers.dev", Reach::Public),
            ("203.0.113.5", Reach::Public),
            ("", Reach::Public),
        ] {
            assert_eq!(Reach::served_from(host), reach, "{host}");
        }
    }

    #[test]
    fn only_public_https_hosts_and_loopback_in_the_local_environment() {
        use TargetRefusal::*;
        let ok = Ok(());
        check("https://hooks.coop.example/valle?x=1", ok, ok);
        check("https://203.0.114.10/hook", ok, ok);
        check("https://[2606:4700::1111]/hook", ok, ok);
        check(
            "http://hooks.coop.example/valle",
            Err(NotHttps),
            Err(NotHttps),
        );
        check("ftp://hooks.coop.example/", Err(NotUrl), Err(NotUrl));
        check("hooks.coop.example/valle", Err(NotUrl), Err(NotUrl));
        check(
            "https://user:pw@hooks.coop.example/",
            Err(Credentials),
            Err(Credentials),
        );
        check("https://hooks.coop.example/a b", Err(NotUrl), Err(NotUrl));
        check(
            &format!("https://h.example/{}", "a".repeat(MAX_URL_CHARS)),
            Err(NotUrl),
            Err(NotUrl),
        );
        // Loopback: only in the local environment, over http or https.
        for loopback in [
            "http://127.0.0.1:9000/hook",
            "https://127.0.0.1/hook",
            "http://127.8.9.10/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://[::1]:9000/",
            "http://[::ffff:127.0.0.1]/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
        ] {
            check(loopback, Err(Internal), ok);
        }
        // Inside a network: refused everywhere.
        for internal in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://100.127.255.254/",
            "https://0.0.0.0/",
            "https://0.1.2.3/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://240.0.0.1/",
            "https://192.0.0.8/",
            "https://198.18.0.1/",
            "https://192.0.2.1/",
            "https://[::]/",
            "https://[fc00::1]/",
            "https://[fd12:3456::1]/",
            "https://[fe80::1]/",
            "https://[ff02::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2001:db8::1]/",
            "https://0xa9.0xfe.0xa9.0xfe/",
        ] {
            check(internal, Err(Internal), Err(Internal));
        }
        // Public neighbours of the refused ranges stay allowed.
        for public in [
            "https://172.32.0.1/",
            "https://100.128.0.1/",
            "https://11.0.0.1/",
            "https://169.255.0.1/",
        ] {
            check(public, ok, ok);
        }
    }
}
