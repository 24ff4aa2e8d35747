//! The scoring Web Worker: loads the embedded model once and scores each body the page
//! sends (`valle_shared::decision::scorer`). Built by Trunk as `data-type="worker"`.

use valle_shared::contract::codes::ErrorCode;
use valle_shared::decision::model::ModelError;
use valle_shared::decision::scorer::{ScoreRequest, ScorerMessage};
use valle_shared::intake::validation::parse_application;
use valle_shared::Model;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

/// The answer for one body: what the edge would decide of it, scored by the same model.
fn score(body: &str) -> Result<valle_shared::Score, ErrorCode> {
    let application = parse_application(body.as_bytes()).map_err(|error| error.code())?;
    Model::embedded()
        .and_then(|model| model.score(&application))
        .map_err(|_: ModelError| ErrorCode::Model)
}

fn post(scope: &DedicatedWorkerGlobalScope, message: &ScorerMessage) {
    if let Ok(text) = serde_json::to_string(message) {
        // A failed post means the page has gone; nobody is left to tell.
        let _ = scope.post_message(&JsValue::from_str(&text));
    }
}

fn now_ms(scope: &DedicatedWorkerGlobalScope) -> f64 {
    scope
        .performance()
        .map_or(0.0, |performance| performance.now())
}

fn main() {
    console_error_panic_hook::set_once();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let started = now_ms(&scope);
    let loaded = Model::embedded().map(|_| ());
    let answering = scope.clone();
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
        let Some(text) = event.data().as_string() else {
            return;
        };
        let Ok(request) = serde_json::from_str::<ScoreRequest>(&text) else {
            return;
        };
        let result = score(&request.body);
        post(
            &answering,
            &ScorerMessage::Scored {
                id: request.id,
                result,
            },
        );
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    post(
        &scope,
        &ScorerMessage::Ready {
            model_load_ms: now_ms(&scope) - started,
            error: loaded.err().map(|error| error.to_string()),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Result<&str, ErrorCode>) {
        match (score(body), expected) {
            (Ok(score), Ok(name)) => {
                assert!((0.0..=1.0).contains(&score.probability));
                assert_eq!(score.model_version.name, name);
            }
            (Err(code), Err(expected)) => assert_eq!(code, expected),
            (got, expected) => panic!("{body}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn bodies_are_scored_or_refused_with_the_edge_codes() {
        let valid = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;
        check(valid, Ok("valle-logit"));
        check("{}", Err(ErrorCode::Validation));
        check("not json", Err(ErrorCode::Json));
    }
}
