//! Reading a request body without ever holding more than its route's limit: the body is
//! taken a chunk at a time from the platform's stream, and reading stops the moment the
//! limit is passed, whether or not a `Content-Length` was declared.

use futures_util::{Stream, StreamExt};

/// Why a body was not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More than `limit` bytes came; reading stopped after `read` of them.
    #[error("the body passed its limit of {limit} bytes ({read} read)")]
    TooLarge { limit: usize, read: usize },
    /// The platform could not give the body.
    #[error("reading the body failed: {0}")]
    Unreadable(String),
}

/// Reads `chunks` until they end, or until they hold more than `limit` bytes.
pub async fn read_limited<E: std::fmt::Display>(
    chunks: impl Stream<Item = Result<Vec<u8>, E>>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut chunks = std::pin::pin!(chunks);
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| BodyError::Unreadable(error.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge {
                limit,
                read: body.len() + chunk.len(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::block_on;
    use std::cell::Cell;

    #[test]
    fn reading_stops_at_the_first_chunk_past_the_limit() {
        let pulled = Cell::new(0usize);
        // An endless body of 1 KiB chunks, counting what was pulled from it.
        let endless = futures_util::stream::repeat_with(|| {
            pulled.set(pulled.get() + 1);
            Ok::<_, String>(vec![b' '; 1024])
        });
        assert_eq!(
            block_on(read_limited(endless, 10 * 1024)),
            Err(BodyError::TooLarge {
                limit: 10 * 1024,
                read: 11 * 1024
            })
        );
        assert_eq!(pulled.get(), 11);
        let exact = futures_util::stream::iter(vec![Ok::<_, String>(vec![1; 6]), Ok(vec![2; 4])]);
        assert_eq!(
            block_on(read_limited(exact, 10)).map(|body| body.len()),
            Ok(10)
        );
        let broken = futures_util::stream::iter(vec![Ok(vec![1]), Err("reset".to_owned())]);
        assert_eq!(
            block_on(read_limited(broken, 10)),
            Err(BodyError::Unreadable("reset".into()))
        );
        let empty = futures_util::stream::iter(Vec::<Result<Vec<u8>, String>>::new());
        assert_eq!(block_on(read_limited(empty, 10)), Ok(Vec::new()));
    }
}
