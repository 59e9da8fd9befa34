//! One error type for every non-2xx answer, always with a JSON body:
//!
//! ```json
//! {"code": 422, "reason": "Invalid", "message": "rows[3]: has 2 values, the model expects 4",
//!  "field": "rows[3]", "causes": [{"field": "rows[3]", "message": "has 2 values, ..."}]}
//! ```
//!
//! `reason` is a stable CamelCase word (the Kubernetes `Status.reason` vocabulary where one
//! exists); `field` and `causes` are present only for errors about fields. Internal errors are
//! logged with their detail and answered with a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::backend::{AuthError, BackendError, FieldError};

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// The HTTP status code, repeated.
    pub code: u16,
    /// A stable CamelCase word: BadRequest, Unauthorized, Forbidden, NotFound,
    /// MethodNotAllowed, AlreadyExists, Conflict, RequestEntityTooLarge,
    /// UnsupportedMediaType, Invalid, InternalError, NotImplemented, BadGateway,
    /// ServiceUnavailable, Timeout.
    pub reason: String,
    /// What is wrong and, where possible, what would be valid.
    pub message: String,
    /// The JSON path of the offending field, when one field is at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every offending field, when the request was invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<FieldError>,
}

/// An error answer: a status, a JSON [`ErrorBody`] and, for some, a header.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u32>,
}

impl ApiError {
    /// An error with `status`, `reason` and `message`.
    pub fn new(status: StatusCode, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                code: status.as_u16(),
                reason: reason.to_owned(),
                message: message.into(),
                field: None,
                causes: Vec::new(),
            },
            retry_after: None,
        }
    }

    /// An error for `status` with the usual reason word for it.
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            return match status {
                StatusCode::SERVICE_UNAVAILABLE => Self::unavailable(message, 1),
                StatusCode::GATEWAY_TIMEOUT => Self::new(status, "Timeout", message),
                _ => Self::internal(message.into()),
            };
        }
        let reason = match status {
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "NotFound",
            StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
            StatusCode::UNPROCESSABLE_ENTITY => "Invalid",
            StatusCode::NOT_IMPLEMENTED => "NotImplemented",
            StatusCode::REQUEST_TIMEOUT => "Timeout",
            _ => "BadRequest",
        };
        Self::new(status, reason, message)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 404 NotFound.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    /// 409 Conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }

    /// 422 Invalid about one field: `message` is prefixed with the field's path.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid_fields(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// 422 Invalid about several fields (the first one is `field`).
    pub fn invalid_fields(causes: Vec<FieldError>) -> Self {
        let message = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
        error.body.field = causes.first().map(|c| c.field.clone());
        error.body.causes = causes;
        error
    }

    /// 500 with a generic message; `detail` goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "internal error; the server log has the details",
        )
    }

    /// 503 ServiceUnavailable, asking the client to retry after `seconds`.
    pub fn unavailable(message: impl Into<String>, seconds: u32) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        );
        error.retry_after = Some(seconds);
        error
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.body.code, self.body.reason, self.body.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&self.body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kubetrain\""),
            );
        }
        response
    }
}

impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::NotFound { .. } => Self::not_found(error.to_string()),
            BackendError::AlreadyExists { .. } => {
                Self::new(StatusCode::CONFLICT, "AlreadyExists", error.to_string())
            }
            BackendError::Conflict(message) => Self::conflict(message),
            BackendError::Invalid(causes) if causes.is_empty() => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "the run is invalid",
            ),
            BackendError::Invalid(causes) => Self::invalid_fields(causes),
            BackendError::BadRequest(message) => Self::bad_request(message),
            BackendError::Unavailable(message) => {
                tracing::warn!(error = %message, "backend unavailable");
                Self::unavailable("the run store cannot be reached right now; retry later", 5)
            }
            BackendError::Internal(detail) => Self::internal(detail),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated(message) => {
                Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
            }
            e @ AuthError::Forbidden { .. } => {
                Self::new(StatusCode::FORBIDDEN, "Forbidden", e.to_string())
            }
            AuthError::Unavailable(message) => {
                tracing::warn!(error = %message, "authorizer unavailable");
                Self::unavailable("the authorizer cannot be reached right now; retry later", 5)
            }
        }
    }
}
