//! The page's one boundary to the edge: posting an application and reading the answer.

use gloo_net::http::Request;
use valle_shared::api::{ErrorBody, ErrorResponse, ScoreResponse, SCORE_PATH};

/// Why a submission did not produce a score.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with its JSON error body.
    #[error("server refused the request: {}", .0.code)]
    Refused(ErrorBody),
    /// The server answered something that is not Valle's JSON.
    #[error("unexpected answer with status {status}")]
    Unexpected { status: u16 },
    /// No answer at all: offline, DNS, connection refused.
    #[error("network error: {0}")]
    Network(String),
}

/// Posts the exact body the form validated.
pub async fn post_score(body: String) -> Result<ScoreResponse, ClientError> {
    let response = Request::post(SCORE_PATH)
        .header("Content-Type", "application/json")
        .body(body)
        .map_err(|error| ClientError::Network(error.to_string()))?
        .send()
        .await
        .map_err(|error| ClientError::Network(error.to_string()))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| ClientError::Network(error.to_string()))?;
    if response.ok() {
        serde_json::from_str(&text).map_err(|_| ClientError::Unexpected { status })
    } else {
        match serde_json::from_str::<ErrorResponse>(&text) {
            Ok(answer) => Err(ClientError::Refused(answer.error)),
            Err(_) => Err(ClientError::Unexpected { status }),
        }
    }
}
