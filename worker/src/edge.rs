//! The Cloudflare Workers entry point: converts the platform request into a [`RequestHead`],
//! runs the plain router, and converts the answer back. Nothing else happens here.

use wasm_bindgen::prelude::wasm_bindgen;
use worker::{event, Context as WorkerContext, Env, Headers, Request, Response, Result};

use crate::http::{HttpResponse, RequestHead};
use crate::routes::{prepare, Clock, Context};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = randomUUID)]
    fn random_uuid() -> String;
}

struct DateClock;

impl Clock for DateClock {
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }
}

/// Every route: `POST /api/v1/score`, `GET /healthz`; the page's assets never reach here.
#[event(fetch)]
async fn fetch(mut request: Request, _env: Env, _context: WorkerContext) -> Result<Response> {
    let head = RequestHead {
        method: request.inner().method(),
        path: request.path(),
        headers: request.headers().entries().collect(),
    };
    let context = Context {
        clock: &DateClock,
        new_request_id: &random_uuid,
    };
    let prepared = prepare(&head, &context);
    let body = if prepared.needs_body() {
        request.bytes().await.map_err(|error| error.to_string())
    } else {
        Ok(Vec::new())
    };
    into_platform(prepared.finish(body, &context))
}

fn into_platform(answer: HttpResponse) -> Result<Response> {
    let headers = Headers::new();
    for (name, value) in &answer.headers {
        headers.append(name, value)?;
    }
    Ok(Response::from_bytes(answer.body)?
        .with_status(answer.status)
        .with_headers(headers))
}
