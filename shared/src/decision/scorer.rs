//! What the page and its scoring Web Worker say to each other, as JSON strings through
//! `postMessage`: the page asks for a body to be scored, the worker says once that its model
//! is ready and then answers each request by its id.

use serde::{Deserialize, Serialize};

use crate::contract::codes::ErrorCode;
use crate::decision::model::Score;

/// The page's request: score this application body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ScoreRequest {
    /// Chosen by the page; the answer carries it back.
    pub id: u32,
    /// The application JSON, as the page would post it to the edge.
    pub body: String,
}

/// What the worker says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScorerMessage {
    /// Sent once, when the model is loaded (or failed to load): messages sent before this
    /// are lost, so the page waits for it.
    Ready {
        model_load_ms: f64,
        /// Set when the model could not load; every answer will then be
        /// [`ErrorCode::Model`], as the edge answers when its model fails.
        error: Option<String>,
    },
    /// The answer to [`ScoreRequest`] `id`: the score, or the stable error code the edge
    /// would give for the same body ([`ErrorCode::Validation`], [`ErrorCode::Json`], …,
    /// or [`ErrorCode::Model`]).
    Scored {
        id: u32,
        result: Result<Score, ErrorCode>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_written() {
        for message in [
            ScorerMessage::Ready {
                model_load_ms: 12.5,
                error: None,
            },
            ScorerMessage::Scored {
                id: 7,
                result: Err(ErrorCode::Validation),
            },
        ] {
            let text = serde_json::to_string(&message).expect("written");
            assert_eq!(
                serde_json::from_str::<ScorerMessage>(&text).expect("read"),
                message
            );
        }
        let request = ScoreRequest {
            id: 3,
            body: "{}".to_owned(),
        };
        let text = serde_json::to_string(&request).expect("written");
        assert_eq!(
            serde_json::from_str::<ScoreRequest>(&text).expect("read"),
            request
        );
    }
}
