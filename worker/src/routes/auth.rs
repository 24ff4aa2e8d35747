//! Who is asking: an API token (`Authorization: Bearer`, looked up by its hash) or, where the
//! deployment has Cloudflare Access, the JWT Access adds; then whether their role allows the
//! route. `GET /api/v1/me` answers what was found.

use valle_shared::lending::access::{
    check_claims, parse_jwt, AccessConfig, JwtRefusal, ACCESS_JWT_HEADER,
};
use valle_shared::lending::officers::{bearer_token, token_hash, Me, Permission, SignIn};

use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::store::{AccessKeys, AccountStore};

impl<B: AccessKeys + AccountStore> Request<'_, B> {
    /// The signed-in account, if its role allows `permission`. A bearer token wins over an
    /// Access JWT, so an integrator's token works behind Access too.
    pub(super) async fn authenticate(&self, permission: Permission) -> Result<Me, ApiError> {
        let (stored, sign_in) = if let Some(token) = bearer_token(self.head.header("authorization"))
        {
            let stored = self
                .backend
                .account_by_token_hash(&token_hash(token))
                .await?
                .ok_or(ApiError::Unauthorized)?;
            (stored, SignIn::Token)
        } else if let (Some(jwt), Some(config)) =
            (self.head.header(ACCESS_JWT_HEADER), self.context.access)
        {
            let email = self.access_email(jwt, config).await?;
            let stored = self
                .backend
                .account_by_email(&email)
                .await?
                .ok_or(ApiError::UnknownAccount)?;
            (stored, SignIn::Access)
        } else {
            return Err(ApiError::Unauthorized);
        };
        if stored.revoked {
            return Err(ApiError::Revoked);
        }
        if !stored.account.role.allows(permission) {
            return Err(ApiError::Forbidden(permission));
        }
        Ok(Me::new(stored.account, sign_in))
    }

    /// The email of a verified Access JWT. A key id the cached keys lack is looked up once
    /// more, since the team rotates its keys.
    async fn access_email(&self, token: &str, config: &AccessConfig) -> Result<String, ApiError> {
        let jwt = parse_jwt(token)?;
        let cached = self.backend.access_keys(config, false).await?;
        let key = match cached.key(jwt.kid.as_deref()) {
            Ok(key) => key.clone(),
            Err(_) => self
                .backend
                .access_keys(config, true)
                .await?
                .key(jwt.kid.as_deref())?
                .clone(),
        };
        let verified = self.backend.verify_rs256(&key, &jwt).await?;
        if !verified {
            return Err(JwtRefusal::Signature.into());
        }
        Ok(check_claims(
            &jwt.claims,
            config,
            self.now().div_euclid(1_000),
        )?)
    }

    /// `GET /api/v1/me`.
    pub(super) fn me(&self, me: Option<Me>) -> Result<HttpResponse, ApiError> {
        Ok(HttpResponse::json(200, &signed_in(me)?, self.id))
    }
}

/// The account of a route that requires one ([`Request::admit`](super::Request) found it).
pub(super) fn signed_in(me: Option<Me>) -> Result<Me, ApiError> {
    me.ok_or(ApiError::Unauthorized)
}
