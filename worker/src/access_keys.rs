//! The isolate's cache of the Access team's keys: fresh keys are used as they are, a token
//! naming an unknown key fetches again at most every [`REFRESH_GAP_MS`], and a fetch that
//! fails keeps the last keys in use and is not tried again for the same gap, so an outage
//! of the team's JWKS URL neither signs officers out nor makes every request fetch.

use valle_shared::lending::access::Jwks;

use crate::store::StoreError;

/// Keys are used this long before they are fetched again.
pub const KEYS_TTL_MS: f64 = 10.0 * 60_000.0;
/// The shortest time between two fetches past the cache.
pub const REFRESH_GAP_MS: f64 = 30_000.0;

/// What to do for one lookup.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    Use(Jwks),
    Fetch,
    /// The last fetch failed a moment ago and no keys are known.
    Unavailable,
}

#[derive(Clone, Debug, Default)]
pub struct KeyCache {
    url: String,
    keys: Option<(Jwks, f64)>,
    last_fetch_ms: Option<f64>,
}

impl KeyCache {
    /// `refresh`: the token named a key the cached keys lack.
    pub fn lookup(&self, url: &str, now_ms: f64, refresh: bool) -> Lookup {
        if url != self.url {
            return Lookup::Fetch;
        }
        let recently_fetched = self
            .last_fetch_ms
            .is_some_and(|at| now_ms - at < REFRESH_GAP_MS);
        match &self.keys {
            Some((keys, at)) if now_ms - at < KEYS_TTL_MS && !refresh => Lookup::Use(keys.clone()),
            Some((keys, _)) if recently_fetched => Lookup::Use(keys.clone()),
            None if recently_fetched => Lookup::Unavailable,
            _ => Lookup::Fetch,
        }
    }

    /// Records a fetch; a failure answers the last keys if there are any.
    pub fn fetched(
        &mut self,
        url: &str,
        now_ms: f64,
        result: Result<Jwks, StoreError>,
    ) -> Result<Jwks, StoreError> {
        if url != self.url {
            *self = KeyCache {
                url: url.to_owned(),
                ..KeyCache::default()
            };
        }
        self.last_fetch_ms = Some(now_ms);
        match result {
            Ok(keys) => {
                self.keys = Some((keys.clone(), now_ms));
                Ok(keys)
            }
            Err(error) => match &self.keys {
                Some((keys, _)) => Ok(keys.clone()),
                None => Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valle_shared::lending::access::Jwk;

    fn keys(kid: &str) -> Jwks {
        Jwks {
            keys: vec![Jwk {
                kid: kid.into(),
                kty: "RSA".into(),
                n: "n".into(),
                e: "AQAB".into(),
                alg: None,
            }],
        }
    }

    const URL: &str = "https://coop.cloudflareaccess.com/cdn-cgi/access/certs";

    #[test]
    fn keys_are_fetched_when_stale_or_unknown_at_most_every_gap() {
        let mut cache = KeyCache::default();
        assert_eq!(cache.lookup(URL, 0.0, false), Lookup::Fetch);
        assert_eq!(cache.fetched(URL, 0.0, Ok(keys("a"))), Ok(keys("a")));
        assert_eq!(cache.lookup(URL, 1_000.0, false), Lookup::Use(keys("a")));
        // An unknown key: not again within the gap, then once.
        assert_eq!(cache.lookup(URL, 1_000.0, true), Lookup::Use(keys("a")));
        assert_eq!(cache.lookup(URL, REFRESH_GAP_MS, true), Lookup::Fetch);
        assert_eq!(cache.lookup(URL, KEYS_TTL_MS, false), Lookup::Fetch);
        assert_eq!(
            cache.lookup("https://other/certs", 1.0, false),
            Lookup::Fetch
        );
    }

    #[test]
    fn a_failed_fetch_keeps_the_last_keys_and_is_not_retried_at_once() {
        let failure = || Err(StoreError::new("access", "JWKS status 503"));
        let mut cache = KeyCache::default();
        assert!(cache.fetched(URL, 0.0, failure()).is_err());
        assert_eq!(cache.lookup(URL, 1_000.0, false), Lookup::Unavailable);
        assert_eq!(cache.lookup(URL, REFRESH_GAP_MS, false), Lookup::Fetch);
        cache
            .fetched(URL, REFRESH_GAP_MS, Ok(keys("a")))
            .expect("keys");
        let later = REFRESH_GAP_MS + KEYS_TTL_MS;
        assert_eq!(cache.lookup(URL, later, false), Lookup::Fetch);
        assert_eq!(
            cache.fetched(URL, later, failure()),
            Ok(keys("a")),
            "stale keys go on"
        );
        assert_eq!(
            cache.lookup(URL, later + 1.0, false),
            Lookup::Use(keys("a"))
        );
    }
}
