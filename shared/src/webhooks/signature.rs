//! Signed deliveries as the Standard Webhooks specification defines them, so receivers can
//! check them with its libraries: `webhook-id` (the event id, the same on every attempt and
//! replay), `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 of
//! HMAC-SHA256 over "<id>.<timestamp>.<body>">`, keyed by the bytes of the subscriber's
//! `whsec_<base64>` secret. The id is signed, so a captured delivery cannot be replayed
//! under a fresh id.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that names the event.
pub const ID_HEADER: &str = "webhook-id";
/// The header with the time of signing, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header with the signatures, space separated (several during a secret's rotation).
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How old a signature's timestamp may be when a receiver checks it.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;
/// What a secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// A secret's key length bounds, in bytes once decoded.
pub const SECRET_KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// The key of a `whsec_<base64>` secret, if it is one with a key of
/// [`SECRET_KEY_BYTES`].
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    SECRET_KEY_BYTES.contains(&key.len()).then_some(key)
}

/// The key a stored secret signs with. Subscriptions registered before secrets took the
/// `whsec_` form sign with their text's bytes.
fn signing_key(secret: &str) -> Vec<u8> {
    secret_key(secret).unwrap_or_else(|| secret.as_bytes().to_vec())
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, id: &str, timestamp_s: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(&signing_key(secret))
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of every length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The headers of a delivery of `body` as event `id`, signed at `timestamp_s`.
pub fn signed_headers(
    secret: &str,
    id: &str,
    timestamp_s: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let tag = mac(secret, id, timestamp_s, body).finalize().into_bytes();
    [
        (ID_HEADER, id.to_owned()),
        (TIMESTAMP_HEADER, timestamp_s.to_string()),
        (SIGNATURE_HEADER, format!("v1,{}", STANDARD.encode(tag))),
    ]
}

/// Why a receiver refuses a delivery.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    #[error("the timestamp or signature header is malformed")]
    Malformed,
    #[error("the signature is {age_s} s old, more than the tolerance")]
    Stale { age_s: i64 },
    #[error("no signature matches the id, timestamp and body")]
    Mismatch,
}

/// A delivery as its receiver got it.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
    pub body: &'a [u8],
}

/// Checks a delivery as a receiver should: the timestamp against `now_s`, then each `v1`
/// signature of the header, compared in constant time.
pub fn verify(secret: &str, delivery: Delivery<'_>, now_s: i64) -> Result<(), SignatureRefusal> {
    let timestamp: i64 = delivery
        .timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureRefusal::Malformed)?;
    let age_s = now_s - timestamp;
    if age_s.abs() > SIGNATURE_TOLERANCE_S {
        return Err(SignatureRefusal::Stale { age_s });
    }
    let tags: Vec<Vec<u8>> = delivery
        .signature
        .split_whitespace()
        .filter_map(|part| part.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .collect();
    if tags.is_empty() {
        return Err(SignatureRefusal::Malformed);
    }
    let matches = tags.iter().any(|tag| {
        mac(secret, delivery.id, timestamp, delivery.body)
            .verify_slice(tag)
            .is_ok()
    });
    matches.then_some(()).ok_or(SignatureRefusal::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example.
    #[test]
    fn the_specifications_example_signs_as_published() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let headers = signed_headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(
            headers[2].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_delivery_verifies_and_any_change_breaks_it() {
        let secret = format!("{SECRET_PREFIX}{}", STANDARD.encode([7u8; 32]));
        let body = br#"{"type":"decision.created"}"#;
        let [(_, id), (_, timestamp), (_, signature)] =
            signed_headers(&secret, "ev-1", 1_000, body);
        let sent = Delivery {
            id: &id,
            timestamp: &timestamp,
            signature: &signature,
            body,
        };
        let rotated = format!("v1,AAAA {signature}");
        let cases: [(&str, Delivery<'_>, i64, Result<(), SignatureRefusal>); 7] = [
            ("as sent", sent, 1_100, Ok(())),
            (
                "beside an old secret's",
                Delivery {
                    signature: &rotated,
                    ..sent
                },
                1_000,
                Ok(()),
            ),
            (
                "under another id",
                Delivery { id: "ev-2", ..sent },
                1_000,
                Err(SignatureRefusal::Mismatch),
            ),
            (
                "another body",
                Delivery {
                    body: b"{}",
                    ..sent
                },
                1_000,
                Err(SignatureRefusal::Mismatch),
            ),
            (
                "another time",
                Delivery {
                    timestamp: "1001",
                    ..sent
                },
                1_000,
                Err(SignatureRefusal::Mismatch),
            ),
            (
                "too old",
                sent,
                1_301,
                Err(SignatureRefusal::Stale { age_s: 301 }),
            ),
            (
                "no v1",
                Delivery {
                    signature: "v2,abc",
                    ..sent
                },
                1_000,
                Err(SignatureRefusal::Malformed),
            ),
        ];
        for (what, delivery, now, expected) in cases {
            assert_eq!(verify(&secret, delivery, now), expected, "{what}");
        }
        assert_eq!(
            verify(
                &format!("{SECRET_PREFIX}{}", STANDARD.encode([8u8; 32])),
                sent,
                1_000
            ),
            Err(SignatureRefusal::Mismatch)
        );
    }

    #[test]
    fn secrets_are_whsec_base64_of_24_to_64_bytes() {
        let of = |bytes: usize| format!("{SECRET_PREFIX}{}", STANDARD.encode(vec![1u8; bytes]));
        assert_eq!(secret_key(&of(24)).map(|key| key.len()), Some(24));
        assert_eq!(secret_key(&of(64)).map(|key| key.len()), Some(64));
        assert_eq!(secret_key(&of(23)), None);
        assert_eq!(secret_key(&of(65)), None);
        assert_eq!(secret_key("whsec_not base64!"), None);
        assert_eq!(secret_key(&STANDARD.encode([1u8; 32])), None, "no prefix");
    }
}
