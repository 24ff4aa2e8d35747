//! The page's one boundary to the edge: posting an application, and the officers' reads,
//! writes and removals with their token. Every answer is read the same way, into Valle's wire types.

use gloo_net::http::{Request, RequestBuilder};
use serde::de::DeserializeOwned;
use valle_shared::api::{HumanReviewResponse, ScoreResponse};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::errors::{ErrorBody, ErrorResponse};
use valle_shared::contract::paths::{DECISIONS_PATH, EVENTS_PATH, HUMAN_REVIEW_SUFFIX, SCORE_PATH};
use valle_shared::records::events::EventsResponse;
use valle_shared::records::receipt::RECEIPT_HEADER;
use valle_shared::Message;

/// Why a request did not produce its answer.
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

impl ClientError {
    /// The stable code to show and to test against: the server's, or the page's own.
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Refused(body) => body.code,
            ClientError::Unexpected { .. } => ErrorCode::Unexpected,
            ClientError::Network(_) => ErrorCode::Network,
        }
    }

    /// The error as Valle's error body, for the page's own failures too.
    pub fn body(&self) -> ErrorBody {
        match self {
            ClientError::Refused(body) => body.clone(),
            ClientError::Unexpected { status } => ErrorBody {
                code: self.code(),
                message: Message::new(
                    format!("Respuesta inesperada del servidor (HTTP {status})."),
                    format!("Unexpected answer from the server (HTTP {status})."),
                ),
                request_id: None,
                fields: Vec::new(),
            },
            ClientError::Network(_) => ErrorBody {
                code: self.code(),
                message: Message::new(
                    "Sin conexión con el servidor.",
                    "No connection to the server.",
                ),
                request_id: None,
                fields: Vec::new(),
            },
        }
    }

    /// The credentials were refused: the session is over.
    pub fn is_unauthorized(&self) -> bool {
        self.code().ends_session()
    }
}

fn network(error: gloo_net::Error) -> ClientError {
    ClientError::Network(error.to_string())
}

/// Sends a request and reads a `T`, or Valle's error body.
async fn answer<T: DeserializeOwned>(request: Request) -> Result<T, ClientError> {
    let response = request.send().await.map_err(network)?;
    let status = response.status();
    let text = response.text().await.map_err(network)?;
    if response.ok() {
        serde_json::from_str(&text).map_err(|_| ClientError::Unexpected { status })
    } else {
        match serde_json::from_str::<ErrorResponse>(&text) {
            Ok(answer) => Err(ClientError::Refused(answer.error)),
            Err(_) => Err(ClientError::Unexpected { status }),
        }
    }
}

/// Posts the exact body the form validated.
pub async fn post_score(body: String) -> Result<ScoreResponse, ClientError> {
    let request = Request::post(SCORE_PATH)
        .header("Content-Type", "application/json")
        .body(body)
        .map_err(network)?;
    answer(request).await
}

/// Posts a batch of queued events (built by [`crate::outbox::events_body`]).
pub async fn post_events(body: String) -> Result<EventsResponse, ClientError> {
    let request = Request::post(EVENTS_PATH)
        .header("Content-Type", "application/json")
        .body(body)
        .map_err(network)?;
    answer(request).await
}

/// An officer's request: with the API token when there is one; without, Cloudflare Access'
/// cookie signs it in.
fn with_token(builder: RequestBuilder, token: &str) -> RequestBuilder {
    let builder = if token.is_empty() {
        builder
    } else {
        builder.header("Authorization", &format!("Bearer {token}"))
    };
    // Officers must see live figures, never a copy the browser kept.
    builder.header("Cache-Control", "no-store")
}

/// `GET path` (with its query) as an officer.
pub async fn officer_get<T: DeserializeOwned>(path: &str, token: &str) -> Result<T, ClientError> {
    let request = with_token(Request::get(path), token)
        .build()
        .map_err(network)?;
    answer(request).await
}

/// `GET path` as an officer, as text (the CSV export).
pub async fn officer_text(path: &str, token: &str) -> Result<String, ClientError> {
    let request = with_token(Request::get(path), token)
        .build()
        .map_err(network)?;
    let response = request.send().await.map_err(network)?;
    let status = response.status();
    let text = response.text().await.map_err(network)?;
    if response.ok() {
        return Ok(text);
    }
    match serde_json::from_str::<ErrorResponse>(&text) {
        Ok(answer) => Err(ClientError::Refused(answer.error)),
        Err(_) => Err(ClientError::Unexpected { status }),
    }
}

/// The applicant asks for a person to review a decision, proving it is theirs with the
/// receipt the decision's answer carried.
pub async fn post_human_review(
    request_id: &str,
    receipt: &str,
) -> Result<HumanReviewResponse, ClientError> {
    let path = format!("{DECISIONS_PATH}/{request_id}{HUMAN_REVIEW_SUFFIX}");
    let request = Request::post(&path)
        .header(RECEIPT_HEADER, receipt)
        .build()
        .map_err(network)?;
    answer(request).await
}

/// `DELETE path` as an officer.
pub async fn officer_delete<T: DeserializeOwned>(
    path: &str,
    token: &str,
) -> Result<T, ClientError> {
    let request = with_token(Request::delete(path), token)
        .build()
        .map_err(network)?;
    answer(request).await
}

/// `POST path` as an officer, with a JSON body when there is one.
pub async fn officer_post<T: DeserializeOwned>(
    path: &str,
    token: &str,
    json: Option<String>,
) -> Result<T, ClientError> {
    let builder = with_token(Request::post(path), token);
    let request = match json {
        Some(body) => builder
            .header("Content-Type", "application/json")
            .body(body),
        None => builder.build(),
    }
    .map_err(network)?;
    answer(request).await
}
