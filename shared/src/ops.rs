//! Operational rules the edge applies around the API: officer authentication, per-client rate
//! limiting, and the stale-while-revalidate cache of KPI views. Plain values and a clock passed
//! in, so each rule is tested on the host.

use std::collections::HashMap;

/// Compares two secrets in time that depends only on their lengths, never on where they
/// first differ, so a caller cannot find the token byte by byte from response times.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    let longest = a.len().max(b.len());
    for i in 0..longest {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xFF);
        difference |= x ^ y;
    }
    std::hint::black_box(difference) == 0
}

/// Why an officer request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that is not the configured one.
    Wrong,
    /// The edge has no token configured: officer endpoints are closed.
    NotConfigured,
}

/// Checks an `Authorization` header against the configured officer token.
pub fn check_bearer(header: Option<&str>, expected: Option<&str>) -> Result<(), AuthFailure> {
    let expected = expected
        .filter(|token| !token.is_empty())
        .ok_or(AuthFailure::NotConfigured)?;
    let header = header.ok_or(AuthFailure::Missing)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthFailure::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthFailure::Missing);
    }
    if constant_time_eq(token.trim().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(AuthFailure::Wrong)
    }
}

/// A token bucket: `capacity` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenBucket {
    pub tokens: f64,
    pub updated_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateLimit {
    pub capacity: f64,
    pub per_second: f64,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            capacity: 120.0,
            per_second: 60.0,
        }
    }
}

impl TokenBucket {
    pub fn full(limit: &RateLimit, now_ms: i64) -> TokenBucket {
        TokenBucket {
            tokens: limit.capacity,
            updated_ms: now_ms,
        }
    }

    /// Takes `cost` tokens if there are enough; otherwise says how many whole seconds until
    /// there will be (the `Retry-After` value, at least 1).
    pub fn take(&mut self, limit: &RateLimit, cost: f64, now_ms: i64) -> Result<(), u64> {
        let elapsed_s = (now_ms - self.updated_ms).max(0) as f64 / 1_000.0;
        self.tokens = (self.tokens + elapsed_s * limit.per_second).min(limit.capacity);
        self.updated_ms = self.updated_ms.max(now_ms);
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else if limit.per_second <= 0.0 || cost > limit.capacity {
            Err(60)
        } else {
            let wait_s = (cost - self.tokens) / limit.per_second;
            Err((wait_s.ceil() as u64).max(1))
        }
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
    fn constant_time_comparison() {
        let check = |a: &str, b: &str, equal: bool| {
            assert_eq!(
                constant_time_eq(a.as_bytes(), b.as_bytes()),
                equal,
                "{a:?} {b:?}"
            );
        };
        check("secret", "secret", true);
        check("secret", "secreT", false);
        check("secret", "secret2", false);
        check("", "", true);
        check("", "x", false);
        check("a\u{0}", "a", false);
    }

    #[test]
    fn bearer_tokens() {
        let check =
            |header: Option<&str>, expected: Option<&str>, result: Result<(), AuthFailure>| {
                assert_eq!(check_bearer(header, expected), result, "{header:?}");
            };
        check(Some("Bearer tok"), Some("tok"), Ok(()));
        check(Some("bearer  tok "), Some("tok"), Ok(()));
        check(None, Some("tok"), Err(AuthFailure::Missing));
        check(Some("Basic dG9r"), Some("tok"), Err(AuthFailure::Missing));
        check(Some("Bearer"), Some("tok"), Err(AuthFailure::Missing));
        check(Some("Bearer to"), Some("tok"), Err(AuthFailure::Wrong));
        check(Some("Bearer tok"), None, Err(AuthFailure::NotConfigured));
        check(Some("Bearer "), Some(""), Err(AuthFailure::NotConfigured));
    }

    #[test]
    fn token_bucket() {
        let limit = RateLimit {
            capacity: 3.0,
            per_second: 2.0,
        };
        let mut bucket = TokenBucket::full(&limit, 0);
        let results: Vec<Result<(), u64>> = (0..5).map(|_| bucket.take(&limit, 1.0, 0)).collect();
        assert_eq!(results, vec![Ok(()), Ok(()), Ok(()), Err(1), Err(1)]);
        assert_eq!(bucket.take(&limit, 1.0, 499), Err(1));
        assert_eq!(bucket.take(&limit, 1.0, 500), Ok(()));
        assert_eq!(bucket.take(&limit, 1.0, 100_000), Ok(()));
        assert!(
            (bucket.tokens - 2.0).abs() < 1e-9,
            "refill stops at capacity"
        );
        assert_eq!(bucket.take(&limit, 10.0, 100_000), Err(60));
        // A clock that steps back never adds tokens.
        let mut bucket = TokenBucket::full(&limit, 1_000);
        for _ in 0..3 {
            let _ = bucket.take(&limit, 1.0, 1_000);
        }
        assert_eq!(bucket.take(&limit, 1.0, 0), Err(1));
        // A batch costs more, and waits longer.
        let mut bucket = TokenBucket {
            tokens: 0.0,
            updated_ms: 0,
        };
        assert_eq!(bucket.take(&limit, 3.0, 0), Err(2));
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
