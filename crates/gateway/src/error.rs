//! One error type for every non-2xx answer, always with a JSON body:
//!
//! ```json
//! {"code": 422, "reason": "Invalid", "message": "rows[3]: has 2 values, the model expects 4",
//!  "field": "rows[3]", "causes": [{"field": "rows[3]", "message": "has 2 values, ..."}]}
//! ```
//!
//! `reason` is a stable CamelCase word (the Kubernetes `Status.reason` vocabulary where one
//! exists); `field` and `causes` are present only for errors about fields. Internal errors are
//! answered with a generic message; their detail goes to the log.
//!
//! Errors are values: constructing one logs nothing. What the server log should say about an
//! answer travels with the response ([`LogDetail`]) and is written once, inside the request's
//! span, by the router's logging middleware.

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
    /// Boxed: most errors have neither part, and every `Result` carrying an `ApiError` pays
    /// its size.
    extra: Option<Box<Extra>>,
}

/// The rarer parts of an error answer.
#[derive(Debug, Clone, Default)]
struct Extra {
    /// `Retry-After`, in seconds.
    retry_after: Option<u32>,
    /// What the server log says about it.
    log: Option<LogDetail>,
}

/// What the server log says about an error answer, beyond its body: the detail the client
/// does not get. Carried in the response's extensions to the logging middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDetail {
    /// Whether it is a fault of the server (`ERROR`) or of something it depends on (`WARN`).
    pub fault: Fault,
    /// What happened.
    pub detail: String,
}

/// Whose fault an error answer is, as far as the server log is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A bug or a broken invariant of the server: logged as an error.
    Server,
    /// Storage, the run store or the authorizer failed or answered nonsense: a warning.
    Dependency,
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
            extra: None,
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
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "internal error; the server log has the details",
        )
        .logged(Fault::Server, detail)
    }

    /// This error, with `detail` for the server log (written once, by the router).
    pub fn logged(mut self, fault: Fault, detail: impl std::fmt::Display) -> Self {
        self.extra.get_or_insert_default().log = Some(LogDetail {
            fault,
            detail: detail.to_string(),
        });
        self
    }

    /// What the server log says about this error, if anything.
    pub fn log_detail(&self) -> Option<&LogDetail> {
        self.extra.as_ref()?.log.as_ref()
    }

    /// 503 ServiceUnavailable, asking the client to retry after `seconds`.
    pub fn unavailable(message: impl Into<String>, seconds: u32) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        );
        error.extra.get_or_insert_default().retry_after = Some(seconds);
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
        let extra = self.extra.map(|e| *e).unwrap_or_default();
        if let Some(seconds) = extra.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kubetrain\""),
            );
        }
        if let Some(log) = extra.log {
            response.extensions_mut().insert(log);
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
                Self::unavailable("the run store cannot be reached right now; retry later", 5)
                    .logged(Fault::Dependency, format!("backend unavailable: {message}"))
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
                Self::unavailable("the authorizer cannot be reached right now; retry later", 5)
                    .logged(
                        Fault::Dependency,
                        format!("authorizer unavailable: {message}"),
                    )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_detail_goes_with_the_response_to_the_log_and_never_into_the_body() {
        let error = ApiError::internal("connection pool poisoned at db.rs:42");
        assert_eq!(
            error.log_detail().map(|l| (l.fault, l.detail.as_str())),
            Some((Fault::Server, "connection pool poisoned at db.rs:42"))
        );
        assert!(!error.body().message.contains("db.rs"));
        let response = error.into_response();
        let log = response.extensions().get::<LogDetail>().unwrap();
        assert_eq!(log.detail, "connection pool poisoned at db.rs:42");

        let unavailable = ApiError::from(BackendError::Unavailable("etcd timeout".into()));
        assert_eq!(unavailable.log_detail().unwrap().fault, Fault::Dependency);
        assert!(!unavailable.body().message.contains("etcd"));
        // Client errors are the client's: nothing to log.
        assert!(ApiError::bad_request("no").log_detail().is_none());
    }
}
