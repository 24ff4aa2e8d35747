//! The Access team's keys, fetched from its JWKS URL and cached per isolate, and the RS256
//! check through the platform's WebCrypto (no RSA code in the bundle).

use std::cell::RefCell;

use js_sys::{Array, Promise, Uint8Array};
use valle_shared::lending::access::{AccessConfig, Jwk, Jwks, Jwt};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Fetch, Url};

use super::backend::EdgeBackend;
use crate::access_keys::{KeyCache, Lookup};
use crate::store::{AccessKeys, StoreError};

const ALGORITHM: &str = r#"{"name":"RSASSA-PKCS1-v1_5","hash":"SHA-256"}"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = importKey)]
    fn import_key(
        format: &str,
        key: &JsValue,
        algorithm: &JsValue,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = verify)]
    fn subtle_verify(
        algorithm: &JsValue,
        key: &JsValue,
        signature: &Uint8Array,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;
}

thread_local! {
    /// The team's keys for all of this isolate's requests (`crate::access_keys`).
    static KEYS: RefCell<KeyCache> = RefCell::new(KeyCache::default());
}

fn access_error(error: impl std::fmt::Debug) -> StoreError {
    StoreError::new("access", format!("{error:?}"))
}

async fn fetch_keys(url: &str) -> Result<Jwks, StoreError> {
    let url = Url::parse(url).map_err(access_error)?;
    let mut response = Fetch::Url(url).send().await.map_err(access_error)?;
    if response.status_code() != 200 {
        return Err(access_error(format!(
            "JWKS status {}",
            response.status_code()
        )));
    }
    response.json().await.map_err(access_error)
}

impl AccessKeys for EdgeBackend {
    async fn access_keys(&self, config: &AccessConfig, refresh: bool) -> Result<Jwks, StoreError> {
        let now = js_sys::Date::now();
        match KEYS.with(|cache| cache.borrow().lookup(&config.jwks_url, now, refresh)) {
            Lookup::Use(keys) => Ok(keys),
            Lookup::Unavailable => Err(access_error("the team's keys could not be fetched")),
            Lookup::Fetch => {
                let fetched = fetch_keys(&config.jwks_url).await;
                KEYS.with(|cache| cache.borrow_mut().fetched(&config.jwks_url, now, fetched))
            }
        }
    }

    async fn verify_rs256(&self, key: &Jwk, jwt: &Jwt) -> Result<bool, StoreError> {
        let jwk = serde_json::json!({ "kty": key.kty, "n": key.n, "e": key.e, "alg": "RS256", "ext": true });
        let jwk = js_sys::JSON::parse(&jwk.to_string()).map_err(access_error)?;
        let algorithm = js_sys::JSON::parse(ALGORITHM).map_err(access_error)?;
        let usages = Array::of1(&JsValue::from_str("verify"));
        let crypto_key = JsFuture::from(
            import_key("jwk", &jwk, &algorithm, false, &usages).map_err(access_error)?,
        )
        .await
        // A key the platform cannot import verifies nothing.
        .map_err(access_error)?;
        let verified = JsFuture::from(
            subtle_verify(
                &algorithm,
                &crypto_key,
                &Uint8Array::from(jwt.signature.as_slice()),
                &Uint8Array::from(jwt.signing_input.as_bytes()),
            )
            .map_err(access_error)?,
        )
        .await
        .map_err(access_error)?;
        Ok(verified.as_bool().unwrap_or(false))
    }
}
