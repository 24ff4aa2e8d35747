//! Cloudflare Access sign-in: the `Cf-Access-Jwt-Assertion` JWT Access adds to every
//! request it lets through. This module reads the token, picks its key from the team's JWKS
//! and checks the claims (issuer, audience, expiry); the RS256 signature itself is checked by
//! the platform's WebCrypto at the edge over [`Jwt::signing_input`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::contract::codes::ErrorCode;
/// The header Access adds.
pub const ACCESS_JWT_HEADER: &str = "cf-access-jwt-assertion";
/// Clock difference tolerated on `exp` and `nbf`.
pub const LEEWAY_S: i64 = 60;
/// Longest token read; Access' are about 1 KB.
pub const MAX_JWT_BYTES: usize = 8 * 1024;

/// What a deployment trusts: its Access team (the issuer, also where the keys are) and the
/// application's audience tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessConfig {
    /// `https://<team>.cloudflareaccess.com`.
    pub issuer: String,
    /// The Access application's AUD tag.
    pub audience: String,
    /// `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`.
    pub jwks_url: String,
}

impl AccessConfig {
    /// From the three vars; Access sign-in is off unless all three are set.
    pub fn from_vars(issuer: &str, audience: &str, jwks_url: &str) -> Option<AccessConfig> {
        let (issuer, audience, jwks_url) = (issuer.trim(), audience.trim(), jwks_url.trim());
        (!issuer.is_empty() && !audience.is_empty() && !jwks_url.is_empty()).then(|| AccessConfig {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            jwks_url: jwks_url.to_owned(),
        })
    }
}

/// Why a token is refused. Each is a 401 with its own stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtRefusal {
    #[error("not a JWT")]
    Malformed,
    #[error("algorithm other than RS256")]
    Algorithm,
    #[error("signed with a key the team does not publish")]
    UnknownKey,
    #[error("signature does not verify")]
    Signature,
    #[error("issued by another team")]
    Issuer,
    #[error("for another application")]
    Audience,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
    #[error("carries no email")]
    NoEmail,
}

impl JwtRefusal {
    pub fn code(self) -> ErrorCode {
        match self {
            JwtRefusal::Expired | JwtRefusal::NotYetValid => ErrorCode::AccessExpired,
            _ => ErrorCode::AccessInvalid,
        }
    }
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// The claims Valle reads. `aud` is a string or a list.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Claims {
    pub iss: String,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub email: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// A token split and decoded, not yet trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwt {
    pub kid: Option<String>,
    pub claims: Claims,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

fn decode_part(part: &str) -> Result<Vec<u8>, JwtRefusal> {
    URL_SAFE_NO_PAD
        .decode(part.as_bytes())
        .map_err(|_| JwtRefusal::Malformed)
}

/// Splits and decodes a compact JWT; only RS256 is accepted (never `none`, never HMAC).
pub fn parse_jwt(token: &str) -> Result<Jwt, JwtRefusal> {
    let token = token.trim();
    if token.len() > MAX_JWT_BYTES {
        return Err(JwtRefusal::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtRefusal::Malformed);
    };
    let header_json: Header =
        serde_json::from_slice(&decode_part(header)?).map_err(|_| JwtRefusal::Malformed)?;
    if header_json.alg != "RS256" {
        return Err(JwtRefusal::Algorithm);
    }
    let claims: Claims =
        serde_json::from_slice(&decode_part(payload)?).map_err(|_| JwtRefusal::Malformed)?;
    Ok(Jwt {
        kid: header_json.kid,
        claims,
        signing_input: format!("{header}.{payload}"),
        signature: decode_part(signature)?,
    })
}

/// Checks what the token claims, after its signature has verified; answers its email.
pub fn check_claims(
    claims: &Claims,
    config: &AccessConfig,
    now_s: i64,
) -> Result<String, JwtRefusal> {
    if claims.iss.trim_end_matches('/') != config.issuer {
        return Err(JwtRefusal::Issuer);
    }
    if !claims.aud.iter().any(|aud| aud == &config.audience) {
        return Err(JwtRefusal::Audience);
    }
    if now_s > claims.exp + LEEWAY_S {
        return Err(JwtRefusal::Expired);
    }
    if claims.nbf.is_some_and(|nbf| now_s + LEEWAY_S < nbf) {
        return Err(JwtRefusal::NotYetValid);
    }
    claims
        .email
        .as_deref()
        .map(crate::lending::officers::normalize_email)
        .filter(|email| crate::lending::officers::is_email(email))
        .ok_or(JwtRefusal::NoEmail)
}

/// One RSA public key of the team's JWKS, in the form WebCrypto imports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Jwk {
    pub kid: String,
    pub kty: String,
    pub n: String,
    pub e: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

/// `{"keys": [...]}` as the team's certs URL serves it (its `public_certs` are ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The RSA key the token names.
    pub fn key(&self, kid: Option<&str>) -> Result<&Jwk, JwtRefusal> {
        let kid = kid.ok_or(JwtRefusal::UnknownKey)?;
        self.keys
            .iter()
            .find(|key| key.kid == kid && key.kty == "RSA")
            .ok_or(JwtRefusal::UnknownKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AccessConfig {
        AccessConfig::from_vars(
            "https://coop.cloudflareaccess.com/",
            "aud-1",
            "https://coop.cloudflareaccess.com/cdn-cgi/access/certs",
        )
        .expect("all three vars")
    }

    fn token(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode(b"sig")
        )
    }

    const RS256: &str = r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#;

    #[test]
    fn tokens_are_split_and_only_rs256_is_read() {
        let jwt = parse_jwt(&token(
            RS256,
            r#"{"iss":"https://coop.cloudflareaccess.com","aud":["aud-1"],"exp":100,"email":"Ana@Coop.Example"}"#,
        ))
        .expect("a well-formed token");
        assert_eq!(jwt.kid.as_deref(), Some("k1"));
        assert_eq!(jwt.signature, b"sig");
        assert_eq!(jwt.signing_input.matches('.').count(), 1);
        for (text, refusal) in [
            (token(r#"{"alg":"none"}"#, "{}"), JwtRefusal::Algorithm),
            (
                token(r#"{"alg":"HS256","kid":"k1"}"#, "{}"),
                JwtRefusal::Algorithm,
            ),
            (token(RS256, r#"{"iss":"x"}"#), JwtRefusal::Malformed),
            ("a.b".to_owned(), JwtRefusal::Malformed),
            ("a.b.c.d".to_owned(), JwtRefusal::Malformed),
            ("!!.??.==".to_owned(), JwtRefusal::Malformed),
        ] {
            assert_eq!(parse_jwt(&text), Err(refusal), "{text}");
        }
    }

    #[test]
    fn claims_are_checked() {
        let claims =
            |iss: &str, aud: &str, exp: i64, nbf: Option<i64>, email: Option<&str>| Claims {
                iss: iss.into(),
                aud: vec![aud.into()],
                exp,
                nbf,
                email: email.map(str::to_owned),
            };
        let team = "https://coop.cloudflareaccess.com";
        let check = |claims: Claims, expected: Result<&str, JwtRefusal>| {
            assert_eq!(
                check_claims(&claims, &config(), 1_000)
                    .as_deref()
                    .map_err(|e| *e),
                expected,
                "{claims:?}"
            );
        };
        check(
            claims(team, "aud-1", 1_000, None, Some("Ana@coop.example")),
            Ok("ana@coop.example"),
        );
        check(
            claims(team, "aud-1", 950, Some(1_050), Some("a@b.c")),
            Ok("a@b.c"),
        );
        check(
            claims(
                "https://other.cloudflareaccess.com",
                "aud-1",
                2_000,
                None,
                Some("a@b.c"),
            ),
            Err(JwtRefusal::Issuer),
        );
        check(
            claims(team, "aud-2", 2_000, None, Some("a@b.c")),
            Err(JwtRefusal::Audience),
        );
        check(
            claims(team, "aud-1", 939, None, Some("a@b.c")),
            Err(JwtRefusal::Expired),
        );
        check(
            claims(team, "aud-1", 2_000, Some(1_061), Some("a@b.c")),
            Err(JwtRefusal::NotYetValid),
        );
        check(
            claims(team, "aud-1", 2_000, None, None),
            Err(JwtRefusal::NoEmail),
        );
        assert_eq!(AccessConfig::from_vars("x", "", "y"), None);
    }

    #[test]
    fn keys_are_found_by_kid() {
        let jwks: Jwks = serde_json::from_str(
            r#"{"keys":[{"kid":"k1","kty":"RSA","alg":"RS256","n":"nn","e":"AQAB","use":"sig"}],"public_cert":{"kid":"k1"}}"#,
        )
        .expect("a JWKS");
        assert_eq!(jwks.key(Some("k1")).map(|k| k.n.as_str()), Ok("nn"));
        assert_eq!(jwks.key(Some("k2")), Err(JwtRefusal::UnknownKey));
        assert_eq!(jwks.key(None), Err(JwtRefusal::UnknownKey));
    }
}
