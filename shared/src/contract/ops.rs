//! Operational rules the edge applies around the API: per-client rate limits, the key a
//! client is counted under, and the stale-while-revalidate cache of KPI views. Plain values
//! and a clock passed in, so each rule is tested on the host.

use std::collections::HashMap;

/// A per-client limit of `limit` requests in each `period_s`-second window: what the
/// Workers Rate Limiting binding applies (`[[ratelimits]]` in wrangler.toml; periods of 10 or
/// 60 s). The binding answers only allowed or not; the edge derives `Retry-After` from the
/// period with [`RateLimit::retry_after_s`]. Locally it is a fixed window
/// (`floor(now / period)`), as [`FixedWindow`] models it; in production it is per location
/// and approximate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RateLimit {
    pub limit: u64,
    pub period_s: u64,
}

/// Valle's limit: 600 requests per client in 10 s, 60 a second sustained.
pub const RATE_LIMIT: RateLimit = RateLimit {
    limit: 600,
    period_s: 10,
};

/// What a request is counted against. Each class is its own Rate Limiting binding with its
/// own limit, so a flood of one kind never spends another's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateClass {
    /// Scoring and events without credentials, per client ([`client_key`]).
    Public,
    /// An applicant's requests about one decision with its receipt (human review, the
    /// read-back), per decision: a flood at one decision is refused before its receipt is
    /// checked or anything is written, whatever addresses it comes from.
    Decision,
    /// Every request made with one officer's credential, per account.
    Officer,
    /// Refused credentials (unknown token, unverifiable sign-in), per client: past the limit
    /// a refusal answers 429 rather than 401.
    FailedCredentials,
}

impl RateClass {
    pub const ALL: [RateClass; 4] = [
        RateClass::Public,
        RateClass::Decision,
        RateClass::Officer,
        RateClass::FailedCredentials,
    ];

    /// The limit the class's binding is configured with (wrangler.toml; a host test checks
    /// they agree).
    pub const fn limit(self) -> RateLimit {
        match self {
            RateClass::Public => RATE_LIMIT,
            RateClass::Decision => RateLimit {
                limit: 30,
                period_s: 60,
            },
            RateClass::Officer => RateLimit {
                limit: 3_000,
                period_s: 60,
            },
            RateClass::FailedCredentials => RateLimit {
                limit: 300,
                period_s: 60,
            },
        }
    }
}

/// Items (applications or events) one request of the public limit pays for: a batch of N
/// costs ⌈N / 100⌉ requests, so a client cannot score a thousand times as much per request
/// by batching.
pub const ITEMS_PER_REQUEST: usize = 100;

/// Requests of the public limit a batch of `items` costs (at least the one it is).
pub fn batch_cost(items: usize) -> u64 {
    items.div_ceil(ITEMS_PER_REQUEST).max(1) as u64
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RATE_LIMIT
    }
}

impl RateLimit {
    /// Whole seconds until the window that refused a request ends (at least 1): a client
    /// that waits that long is counted afresh.
    pub fn retry_after_s(&self, now_ms: i64) -> u64 {
        let period_ms = i64::try_from(self.period_s.max(1) * 1_000).unwrap_or(i64::MAX);
        let left_ms = period_ms - now_ms.rem_euclid(period_ms);
        (left_ms as u64).div_ceil(1_000).max(1)
    }
}

/// One client's count in the current fixed window, as the local simulation of the binding
/// keeps it; the in-memory backend uses it on the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FixedWindow {
    pub window: i64,
    pub count: u64,
}

impl FixedWindow {
    /// Counts one request; `Err(retry_after_s)` if the window already holds `limit`.
    pub fn take(&mut self, limit: &RateLimit, now_ms: i64) -> Result<(), u64> {
        let period_ms = i64::try_from(limit.period_s.max(1) * 1_000).unwrap_or(i64::MAX);
        let window = now_ms.div_euclid(period_ms);
        if window != self.window {
            *self = FixedWindow { window, count: 0 };
        }
        if self.count < limit.limit {
            self.count += 1;
            Ok(())
        } else {
            Err(limit.retry_after_s(now_ms))
        }
    }
}

/// The key a client's public rate limit counts under, from the address Cloudflare reports
/// (`cf-connecting-ip`): an IPv4 address as it is, an IPv6 address by its /64, the block one
/// subscriber is given, so a client cannot take a fresh limit for each of its 2^64
/// addresses. An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) counts as that IPv4 one.
/// Anything else, or no address, shares the one key `unknown`.
pub fn client_key(address: Option<&str>) -> String {
    match address.and_then(|text| text.trim().parse::<std::net::IpAddr>().ok()) {
        Some(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
        None => "unknown".to_owned(),
    }
}

/// How a cached value answers a lookup.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup<V> {
    Fresh(V),
    /// Past its TTL but within the stale period: answer it, marked stale, and recompute.
    Stale(V),
    Miss,
}

#[derive(Clone, Debug)]
struct Entry<V> {
    value: V,
    stored_ms: i64,
    fresh_ms: i64,
    stale_ms: i64,
}

/// A small stale-while-revalidate cache with hit and miss counters.
#[derive(Clone, Debug)]
pub struct SwrCache<V> {
    entries: HashMap<String, Entry<V>>,
    capacity: usize,
    pub hits: u64,
    pub stale_hits: u64,
    pub misses: u64,
}

impl<V: Clone> SwrCache<V> {
    pub fn new(capacity: usize) -> SwrCache<V> {
        SwrCache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            hits: 0,
            stale_hits: 0,
            misses: 0,
        }
    }

    pub fn get(&mut self, key: &str, now_ms: i64) -> Lookup<V> {
        match self.entries.get(key) {
            Some(entry) if now_ms < entry.stored_ms + entry.fresh_ms => {
                self.hits += 1;
                Lookup::Fresh(entry.value.clone())
            }
            Some(entry) if now_ms < entry.stored_ms + entry.fresh_ms + entry.stale_ms => {
                self.stale_hits += 1;
                Lookup::Stale(entry.value.clone())
            }
            _ => {
                self.misses += 1;
                Lookup::Miss
            }
        }
    }

    /// Stores a value fresh for `fresh_ms`, then servable as stale for `stale_ms` more.
    pub fn put(&mut self, key: &str, value: V, now_ms: i64, fresh_ms: i64, stale_ms: i64) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(key) {
            // Evict the oldest entry: the cache holds a handful of views, so a scan is fine.
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.stored_ms)
                .map(|(key, _)| key.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                value,
                stored_ms: now_ms,
                fresh_ms,
                stale_ms,
            },
        );
    }

    /// Share of lookups answered from the cache, fresh or stale.
    pub fn hit_rate(&self) -> Option<f64> {
        let total = self.hits + self.stale_hits + self.misses;
        (total > 0).then(|| (self.hits + self.stale_hits) as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_windows() {
        let limit = RateLimit {
            limit: 3,
            period_s: 10,
        };
        let mut window = FixedWindow::default();
        let results: Vec<Result<(), u64>> = (0..5).map(|_| window.take(&limit, 12_000)).collect();
        assert_eq!(results, vec![Ok(()), Ok(()), Ok(()), Err(8), Err(8)]);
        assert_eq!(
            window.take(&limit, 19_001),
            Err(1),
            "less than a second left"
        );
        assert_eq!(window.take(&limit, 20_000), Ok(()), "a new window");
        let check = |now_ms: i64, seconds: u64| {
            assert_eq!(limit.retry_after_s(now_ms), seconds, "{now_ms}");
        };
        check(0, 10);
        check(1, 10);
        check(9_000, 1);
        check(9_999, 1);
        check(-1, 1);
    }

    #[test]
    fn batch_costs() {
        let check = |items: usize, cost: u64| assert_eq!(batch_cost(items), cost, "{items}");
        check(0, 1);
        check(1, 1);
        check(100, 1);
        check(101, 2);
        check(500, 5);
        check(1_000, 10);
    }

    #[test]
    fn client_keys() {
        let check = |address: Option<&str>, key: &str| {
            assert_eq!(client_key(address), key, "{address:?}");
        };
        check(Some("203.0.113.67"), "203.0.113.67");
        check(Some(" 10.0.0.1 "), "10.0.0.1");
        check(Some("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        check(
            Some("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64",
        );
        check(Some("2001:0DB8:0001:0002::"), "2001:db8:1:2::/64");
        check(Some("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        check(Some("::ffff:198.51.100.7"), "198.51.100.7");
        check(Some("::1"), "0:0:0:0::/64");
        check(Some("not an address"), "unknown");
        check(Some(""), "unknown");
        check(None, "unknown");
    }

    #[test]
    fn stale_while_revalidate() {
        let mut cache = SwrCache::new(2);
        assert_eq!(cache.get("a", 0), Lookup::Miss);
        cache.put("a", 1, 0, 100, 1_000);
        assert_eq!(cache.get("a", 99), Lookup::Fresh(1));
        assert_eq!(cache.get("a", 100), Lookup::Stale(1));
        assert_eq!(cache.get("a", 1_099), Lookup::Stale(1));
        assert_eq!(cache.get("a", 1_100), Lookup::Miss);
        cache.put("b", 2, 10, 100, 0);
        cache.put("c", 3, 20, 100, 0);
        assert_eq!(cache.get("a", 20), Lookup::Miss, "oldest evicted");
        assert_eq!(cache.get("c", 20), Lookup::Fresh(3));
        assert_eq!((cache.hits, cache.stale_hits, cache.misses), (2, 2, 3));
        assert_eq!(cache.hit_rate(), Some(4.0 / 7.0));
    }
}
