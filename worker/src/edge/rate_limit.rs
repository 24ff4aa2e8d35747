//! Rate limits through the Workers Rate Limiting bindings, one per class: no storage, no round
//! trip to an object of ours. It answers only allowed or not, so `Retry-After` comes from
//! the period it was configured with.

use valle_shared::contract::ops::RateClass;

use super::backend::EdgeBackend;
use crate::bindings;
use crate::store::{RateLimiter, StoreError};

impl RateLimiter for EdgeBackend {
    async fn allow(
        &self,
        class: RateClass,
        key: &str,
        now_ms: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        let failed = |error: worker::Error| StoreError::new("rate_limit", error);
        let outcome = self
            .env
            .rate_limiter(bindings::rate_limiter(class))
            .map_err(failed)?
            .limit(key.to_owned())
            .await
            .map_err(failed)?;
        Ok(if outcome.success {
            Ok(())
        } else {
            Err(class.limit().retry_after_s(now_ms))
        })
    }
}
