//! The applicant's receipt: a capability for one decision. It is an HMAC of the decision's
//! request id under a key only the edge holds, so nothing of it is stored and every channel
//! can hand it out at once (the single score, the offline sync's acknowledgement). What only
//! the applicant may do (read back the decision, ask for a person's review, contest) needs
//! it; an id alone, which webhook receivers and integrators see, is never enough.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header an applicant's requests carry their receipt in.
pub const RECEIPT_HEADER: &str = "Valle-Receipt";

/// The worker secret receipts are made with: the edge reads it, `cargo xtask deploy`
/// creates it.
pub const RECEIPT_KEY_SECRET: &str = "RECEIPT_KEY";
/// What every receipt starts with: a version, so the scheme can change.
const PREFIX: &str = "vr1_";
/// Bytes of the HMAC a receipt keeps: 192 bits.
const TAG_BYTES: usize = 24;
/// The key's context, so the same key signing anything else never yields a receipt.
const CONTEXT: &[u8] = b"valle receipt v1\0";
/// Keys shorter than this are refused: a receipt is only as strong as its key.
pub const MIN_KEY_BYTES: usize = 32;
/// The key of the local environment (`wrangler dev`) when no `RECEIPT_KEY` secret is set.
/// It is public, so it protects nothing: any other environment refuses to make receipts
/// without its own secret.
pub const LOCAL_DEVELOPMENT_KEY: &[u8] = b"valle local development receipt key, not a secret";

/// The key receipts are made and checked with (the worker's `RECEIPT_KEY` secret).
#[derive(Clone)]
pub struct ReceiptKey(Vec<u8>);

/// A key too short to protect anything.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a receipt key needs at least {MIN_KEY_BYTES} bytes, this one has {0}")]
pub struct WeakKey(pub usize);

impl ReceiptKey {
    pub fn new(secret: &[u8]) -> Result<ReceiptKey, WeakKey> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(WeakKey(secret.len()));
        }
        Ok(ReceiptKey(secret.to_vec()))
    }

    fn mac(&self, request_id: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length; `new` has checked it is long enough.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(CONTEXT);
        mac.update(request_id.as_bytes());
        mac
    }

    /// The receipt of the decision stored under `request_id`.
    pub fn receipt(&self, request_id: &str) -> String {
        let tag = self.mac(request_id).finalize().into_bytes();
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
    }

    /// Whether `receipt` is the receipt of `request_id`, compared in constant time.
    pub fn verifies(&self, request_id: &str, receipt: &str) -> bool {
        let Some(tag) = receipt
            .trim()
            .strip_prefix(PREFIX)
            .and_then(|encoded| URL_SAFE_NO_PAD.decode(encoded).ok())
        else {
            return false;
        };
        tag.len() == TAG_BYTES && self.mac(request_id).verify_truncated_left(&tag).is_ok()
    }
}

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ReceiptKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> ReceiptKey {
        ReceiptKey::new(&[byte; 32]).expect("long enough")
    }

    #[test]
    fn a_receipt_opens_its_own_decision_only() {
        let receipt = key(7).receipt("r-1");
        assert!(receipt.starts_with(PREFIX));
        assert_eq!(receipt.len(), PREFIX.len() + 32);
        let check = |key: &ReceiptKey, id: &str, receipt: &str, opens: bool| {
            assert_eq!(key.verifies(id, receipt), opens, "{id} {receipt}");
        };
        check(&key(7), "r-1", &receipt, true);
        check(&key(7), "r-1", &format!(" {receipt}\n"), true);
        check(&key(7), "r-2", &receipt, false);
        check(&key(8), "r-1", &receipt, false);
        check(&key(7), "r-1", &receipt[..receipt.len() - 1], false);
        check(&key(7), "r-1", &receipt.replace(PREFIX, "vr2_"), false);
        check(&key(7), "r-1", "", false);
        check(&key(7), "r-1", "vr1_", false);
        check(&key(7), "r-1", "vr1_%%%", false);
        // The id is hashed whole: `r-1` and `r-1:0` open different decisions.
        check(&key(7), "r-1:0", &receipt, false);
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            ReceiptKey::new(b"short").expect_err("too short"),
            WeakKey(5)
        );
        assert!(ReceiptKey::new(&[0; MIN_KEY_BYTES]).is_ok());
    }
}
