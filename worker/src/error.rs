//! The worker's one error type and the one place it becomes an HTTP answer.

use valle_shared::api::ConflictResponse;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::errors::FieldError;
use valle_shared::contract::errors::{ErrorBody, ErrorResponse};
use valle_shared::intake::batch::BatchError;
use valle_shared::lending::access::JwtRefusal;
use valle_shared::lending::officers::Permission;
use valle_shared::lending::review::{Review, ReviewRefusal};

use crate::store::StoreError;
use valle_shared::contract::errors::RequestError;
use valle_shared::decision::model::ModelError;
use valle_shared::Message;

use crate::http::HttpResponse;

/// Everything that can go wrong while answering a request. Each variant has a stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("model unavailable: {0}")]
    Model(#[from] ModelError),
    #[error("unsupported content type {0:?}")]
    UnsupportedMediaType(Option<String>),
    #[error("method {method} not allowed")]
    MethodNotAllowed {
        method: String,
        allowed: Vec<&'static str>,
    },
    #[error("no route")]
    NotFound,
    #[error("invalid X-Request-ID header")]
    InvalidRequestId,
    #[error("the X-Request-ID was used before for another request")]
    IdempotencyMismatch,
    #[error("invalid query parameters")]
    Query(Vec<FieldError>),
    #[error("no credentials, or an unknown API token")]
    Unauthorized,
    #[error("the account is revoked")]
    Revoked,
    #[error("no account has the Access identity's email")]
    UnknownAccount,
    #[error("Access token refused: {0}")]
    Access(#[from] JwtRefusal),
    #[error("the role may not {0:?}")]
    Forbidden(Permission),
    #[error("a low-side approval needs another person's confirmation")]
    FourEyes,
    #[error("the review changed: {}", .0.state.as_str())]
    Conflict(Box<Review>),
    #[error("the audit trail is busy")]
    Busy,
    #[error("cross-origin preflight refused: {0:?}")]
    CrossOrigin(crate::cors::CorsRefusal),
    #[error("rate limited; retry after {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("storage unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Credentials that were presented, or missing, and refused: what
    /// `RateClass::FailedCredentials` counts. A known account without the permission is
    /// not one.
    pub fn is_refused_credential(&self) -> bool {
        matches!(
            self,
            ApiError::Unauthorized
                | ApiError::Revoked
                | ApiError::UnknownAccount
                | ApiError::Access(_)
        )
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Request(RequestError::TooLarge { .. })
            | ApiError::Batch(BatchError::Body(RequestError::TooLarge { .. })) => 413,
            ApiError::Request(_)
            | ApiError::Batch(_)
            | ApiError::Query(_)
            | ApiError::InvalidRequestId => 400,
            ApiError::Unauthorized
            | ApiError::Revoked
            | ApiError::UnknownAccount
            | ApiError::Access(_) => 401,
            ApiError::Forbidden(_) | ApiError::FourEyes => 403,
            ApiError::Conflict(_) => 409,
            ApiError::IdempotencyMismatch => 422,
            ApiError::CrossOrigin(_) => 403,
            ApiError::RateLimited { .. } => 429,
            ApiError::Model(_) | ApiError::Store(_) | ApiError::Busy => 503,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::NotFound => 404,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Request(error) => error.code(),
            ApiError::Batch(error) => error.code(),
            ApiError::Query(_) => ErrorCode::Query,
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::Revoked => ErrorCode::Revoked,
            ApiError::UnknownAccount => ErrorCode::UnknownAccount,
            ApiError::Access(refusal) => refusal.code(),
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::FourEyes => ErrorCode::FourEyes,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::Busy => ErrorCode::Busy,
            ApiError::CrossOrigin(_) => ErrorCode::Origin,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Store(_) => ErrorCode::Store,
            ApiError::Model(_) => ErrorCode::Model,
            ApiError::UnsupportedMediaType(_) => ErrorCode::ContentType,
            ApiError::MethodNotAllowed { .. } => ErrorCode::Method,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::InvalidRequestId => ErrorCode::RequestId,
            ApiError::IdempotencyMismatch => ErrorCode::IdempotencyMismatch,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn message(&self) -> Message {
        match self {
            ApiError::Request(error) => error.message(),
            ApiError::Batch(error) => error.message(),
            ApiError::Query(_) => Message::new(
                "Parámetros de consulta no válidos; vea fields.",
                "Invalid query parameters; see fields.",
            ),
            ApiError::Unauthorized => Message::new(
                "Identifíquese: Authorization: Bearer <token de API> o Cloudflare Access.",
                "Sign in: Authorization: Bearer <API token> or Cloudflare Access.",
            ),
            ApiError::Revoked => Message::new(
                "Esta cuenta fue revocada.",
                "This account has been revoked.",
            ),
            ApiError::UnknownAccount => Message::new(
                "Su identidad de Access no tiene cuenta en Valle; pida una a un administrador.",
                "Your Access identity has no Valle account; ask an administrator for one.",
            ),
            ApiError::Access(JwtRefusal::Expired | JwtRefusal::NotYetValid) => Message::new(
                "Su sesión de Access caducó; vuelva a identificarse.",
                "Your Access session has expired; sign in again.",
            ),
            ApiError::Access(_) => Message::new(
                "El token de Access no es válido para esta aplicación.",
                "The Access token is not valid for this application.",
            ),
            ApiError::Forbidden(_) => Message::new(
                "Su rol no permite esta acción.",
                "Your role does not allow this action.",
            ),
            ApiError::FourEyes => Message::new(
                "La segunda aprobación debe darla otra persona.",
                "The second approval must come from another person.",
            ),
            ApiError::Conflict(_) => Message::new(
                "Otra persona decidió primero; vea current.",
                "Someone else decided first; see current.",
            ),
            ApiError::Busy => Message::new(
                "El registro de auditoría está ocupado; reintente.",
                "The audit trail is busy; please retry.",
            ),
            ApiError::CrossOrigin(refusal) => match refusal {
                crate::cors::CorsRefusal::Origin => Message::new(
                    "Este origen no puede usar la API.",
                    "This origin may not use the API.",
                ),
                crate::cors::CorsRefusal::Method(method) => Message::new(
                    format!("Método {method} no permitido desde otro origen; use GET o POST."),
                    format!("Method {method} is not allowed cross-origin; use GET or POST."),
                ),
                crate::cors::CorsRefusal::Header(name) => Message::new(
                    format!("La cabecera {name} no está permitida desde otro origen."),
                    format!("Header {name} is not allowed cross-origin."),
                ),
            },
            ApiError::RateLimited { retry_after_s } => Message::new(
                format!("Demasiadas solicitudes; reintente en {retry_after_s} s."),
                format!("Too many requests; retry in {retry_after_s} s."),
            ),
            // Storage details go to the log; the client learns only that it may retry.
            ApiError::Store(_) => Message::new(
                "El almacenamiento no está disponible; reintente con el mismo X-Request-ID.",
                "Storage is unavailable; retry with the same X-Request-ID.",
            ),
            ApiError::Model(_) => Message::new(
                "El modelo de puntuación no está disponible; inténtelo más tarde.",
                "The scoring model is unavailable; please retry later.",
            ),
            ApiError::UnsupportedMediaType(_) => Message::new(
                "El cuerpo debe enviarse como application/json.",
                "The body must be sent as application/json.",
            ),
            ApiError::MethodNotAllowed { allowed, .. } => Message::new(
                format!("Método no permitido; use {}.", allowed.join(", ")),
                format!("Method not allowed; use {}.", allowed.join(", ")),
            ),
            ApiError::NotFound => Message::new("Ruta no encontrada.", "No such route."),
            ApiError::InvalidRequestId => Message::new(
                "X-Request-ID debe tener de 1 a 128 caracteres: letras ASCII, cifras, '.', '_', '-' o ':'.",
                "X-Request-ID must be 1 to 128 characters: ASCII letters, digits, '.', '_', '-' or ':'.",
            ),
            // One text whatever the first request was: it must tell nothing of it.
            ApiError::IdempotencyMismatch => Message::new(
                "Este X-Request-ID ya se usó para otra solicitud; envíe esta con un X-Request-ID nuevo.",
                "This X-Request-ID was already used for another request; send this one with a new X-Request-ID.",
            ),
            // Internal details go to the log, never to the client.
            ApiError::Internal(_) => Message::new(
                "Error interno; inténtelo de nuevo.",
                "Internal error; please retry.",
            ),
        }
    }

    /// The error body, as an answer or as one item of a batch.
    pub fn body(&self, request_id: Option<&str>) -> ErrorBody {
        if let ApiError::Request(error) = self {
            return ErrorBody::of_request(error, request_id);
        }
        ErrorBody {
            code: self.code(),
            message: self.message(),
            request_id: request_id.map(str::to_owned),
            fields: match self {
                ApiError::Query(fields) => fields.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// The HTTP answer for this error: the only place statuses and codes meet.
    pub fn into_response(self, request_id: &str) -> HttpResponse {
        let error = self.body(Some(request_id));
        let response = match &self {
            ApiError::Conflict(current) => HttpResponse::json(
                self.status(),
                &ConflictResponse {
                    error,
                    current: (**current).clone(),
                },
                request_id,
            ),
            _ => HttpResponse::json(self.status(), &ErrorResponse { error }, request_id),
        };
        match self {
            ApiError::MethodNotAllowed { allowed, .. } => {
                response.with_header("allow", allowed.join(", "))
            }
            ApiError::UnsupportedMediaType(_) => {
                response.with_header("accept-post", "application/json")
            }
            ApiError::Unauthorized
            | ApiError::Revoked
            | ApiError::UnknownAccount
            | ApiError::Access(_) => {
                response.with_header("www-authenticate", "Bearer realm=\"valle\"")
            }
            ApiError::RateLimited { retry_after_s } => {
                response.with_header("retry-after", retry_after_s.to_string())
            }
            ApiError::Store(_) | ApiError::Model(_) | ApiError::Busy => {
                response.with_header("retry-after", "1")
            }
            _ => response,
        }
    }
}

impl From<ReviewRefusal> for ApiError {
    fn from(refusal: ReviewRefusal) -> ApiError {
        match refusal {
            ReviewRefusal::Conflict(current) => ApiError::Conflict(current),
            ReviewRefusal::SameOfficer => ApiError::FourEyes,
        }
    }
}
