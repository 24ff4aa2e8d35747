//! Every JSON body parser reads bytes through `contract::body`, so the same bad bytes get
//! the same answer from each: the same code, and a detail that names serde_json's category
//! and position but never the input itself.

use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::errors::RequestError;
use valle_shared::decision::model::Model;
use valle_shared::decision::simulation::parse_simulation;
use valle_shared::intake::batch::{parse_batch, BatchError};
use valle_shared::intake::validation::parse_application;
use valle_shared::lending::review::{parse_contest_request, parse_decide_request};
use valle_shared::outcomes::loan_outcomes::parse_outcomes;
use valle_shared::privacy::retention::parse_run_request;
use valle_shared::records::events::parse_events;
use valle_shared::webhooks::{parse_subscription, Reach};

/// How a parser refused a body as a whole: its code, and a malformed body's detail.
type Refusal = Option<(ErrorCode, Option<String>)>;

fn refusal<T>(result: Result<T, RequestError>) -> Refusal {
    let error = result.err()?;
    let detail = match &error {
        RequestError::Malformed { detail } => Some(detail.clone()),
        _ => None,
    };
    Some((error.code(), detail))
}

fn batch_refusal<T>(result: Result<T, BatchError>) -> Refusal {
    match result {
        Ok(_) => None,
        Err(BatchError::Body(error)) => refusal::<()>(Err(error)),
        Err(error) => Some((error.code(), None)),
    }
}

/// Each parser, and whether it reads a batch envelope (which answers a body that is JSON
/// but not its object with `E_BATCH_ENVELOPE`, naming the envelope it expects).
type Parser = Box<dyn Fn(&[u8]) -> Refusal>;

fn parsers() -> Vec<(&'static str, bool, Parser)> {
    let thresholds = Model::embedded().expect("the model").thresholds();
    vec![
        (
            "application",
            false,
            Box::new(|b| refusal(parse_application(b))),
        ),
        ("batch", true, Box::new(|b| batch_refusal(parse_batch(b)))),
        (
            "events",
            true,
            Box::new(|b| batch_refusal(parse_events(b, 0))),
        ),
        (
            "simulation",
            false,
            Box::new(move |b| refusal(parse_simulation(b, thresholds))),
        ),
        (
            "outcomes",
            false,
            Box::new(|b| refusal(parse_outcomes(b, 0))),
        ),
        (
            "decide",
            false,
            Box::new(|b| refusal(parse_decide_request(b))),
        ),
        (
            "contest",
            false,
            Box::new(|b| refusal(parse_contest_request(b))),
        ),
        (
            "subscription",
            false,
            Box::new(|b| refusal(parse_subscription(b, Reach::Public))),
        ),
        (
            "retention run",
            false,
            Box::new(|b| refusal(parse_run_request(b, true))),
        ),
    ]
}

#[test]
fn the_same_bad_bytes_get_the_same_answer_from_every_parser() {
    let check = |body: &str, code: ErrorCode, detail: Option<&str>| {
        for (name, is_batch, parse) in parsers() {
            let expected = match code {
                ErrorCode::NotObject if is_batch => ErrorCode::BatchEnvelope,
                code => code,
            };
            let (found, found_detail) = parse(body.as_bytes())
                .unwrap_or_else(|| panic!("{name} accepted {body:?} as a body"));
            assert_eq!(
                (found, found_detail.as_deref()),
                (expected, detail),
                "{name}: {body:?}"
            );
        }
    };
    check(
        "",
        ErrorCode::Json,
        Some("unexpected end of input at line 1 column 0"),
    );
    check(
        "{\"secret-value\" 1}",
        ErrorCode::Json,
        Some("syntax error at line 1 column 17"),
    );
    check(
        "{\"a\": 1,\n \"b\": tru}",
        ErrorCode::Json,
        Some("syntax error at line 2 column 10"),
    );
    check("[1, 2]", ErrorCode::NotObject, None);
    check("\"secret-value\"", ErrorCode::NotObject, None);
}
