//! What can go wrong talking to a gateway, worded for the person at the terminal.

use std::fmt;

/// A field the gateway named as invalid.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Cause {
    /// JSON path of the field, e.g. `spec.dataset.uri`.
    #[serde(default)]
    pub field: Option<String>,
    /// What is wrong with it.
    #[serde(default)]
    pub message: String,
}

/// The gateway's error body: `{"code", "reason", "message", "field"?, "causes"?}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ApiError {
    /// The HTTP status.
    #[serde(default)]
    pub code: u16,
    /// A machine-readable reason, e.g. `NotFound`, `Invalid`.
    #[serde(default)]
    pub reason: String,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
    /// The offending field, when there is exactly one.
    #[serde(default)]
    pub field: Option<String>,
    /// Every offending field.
    #[serde(default)]
    pub causes: Vec<Cause>,
}

impl ApiError {
    /// Build an error from an answer whose body is not the gateway's JSON error (a proxy's
    /// page, an empty body): the status and the start of the body.
    pub fn from_status(code: u16, body: &str) -> Self {
        let body = body.trim();
        let message = if body.is_empty() {
            format!("the gateway answered HTTP {code}")
        } else {
            let mut text: String = body.chars().take(200).collect();
            if text.len() < body.len() {
                text.push_str("...");
            }
            format!("the gateway answered HTTP {code}: {text}")
        };
        Self {
            code,
            reason: String::new(),
            message,
            field: None,
            causes: Vec::new(),
        }
    }
}

impl fmt::Display for ApiError {
    /// `<message> (field: <field>)`; several fields are all named, and a cause whose text the
    /// message does not already hold gets a line of its own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = if self.message.is_empty() {
            format!("the gateway answered HTTP {} {}", self.code, self.reason)
        } else {
            self.message.trim_end().to_owned()
        };
        let mut fields: Vec<&str> = Vec::new();
        for field in self
            .field
            .iter()
            .chain(self.causes.iter().filter_map(|cause| cause.field.as_ref()))
        {
            if !fields.contains(&field.as_str()) {
                fields.push(field);
            }
        }
        write!(f, "{message}")?;
        match fields.as_slice() {
            [] => {}
            [one] => write!(f, " (field: {one})")?,
            many => write!(f, " (fields: {})", many.join(", "))?,
        }
        for cause in &self.causes {
            if cause.message.is_empty() || message.contains(&cause.message) {
                continue;
            }
            match &cause.field {
                Some(name) => write!(f, "\n  {name}: {}", cause.message)?,
                None => write!(f, "\n  {}", cause.message)?,
            }
        }
        Ok(())
    }
}

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway could not be reached at all.
    #[error(
        "cannot reach the gateway at {url}: {detail}\n  start one on this machine with `kubetrain local`, \
         or point --gateway (KUBETRAIN_GATEWAY) at a running gateway"
    )]
    Connect {
        /// The gateway's URL.
        url: String,
        /// Why the connection failed.
        detail: String,
    },
    /// The gateway answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// The request failed after it was sent (timeout, connection reset, ...).
    #[error("request to {url} failed: {detail}")]
    Transport {
        /// The request's URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The gateway answered something that is not what the API promises.
    #[error("unexpected answer from {url}: {detail}")]
    Decode {
        /// The request's URL.
        url: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The `--gateway` URL cannot be used.
    #[error("invalid gateway URL {url:?}: {detail}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        detail: String,
    },
    /// A manifest or flag combination that does not describe a TrainingRun.
    #[error("{0}")]
    Manifest(String),
    /// The run's event stream kept failing; the last failure.
    #[error("lost the event stream of trainingrun {name} after {attempts} attempts: {last}")]
    StreamLost {
        /// The run.
        name: String,
        /// Connections tried.
        attempts: u32,
        /// The last connection's failure.
        last: Box<ClientError>,
    },
}

impl ClientError {
    /// The gateway's HTTP status, when it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(error) => Some(error.code),
            _ => None,
        }
    }

    /// Whether trying the same request again may succeed: the gateway was unreachable, the
    /// connection broke, or the gateway said it is (temporarily) unavailable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Transport { .. } => true,
            Self::Api(error) => matches!(error.code, 502..=504),
            _ => false,
        }
    }
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"), which is
/// what a person needs to read; reqwest's own text only says that sending failed.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn an_api_error_names_its_field() {
        let error: ApiError = serde_json::from_str(
            r#"{"code":422,"reason":"Invalid","message":"spec.dataset.uri: must be s3://, file:// or an absolute path","field":"spec.dataset.uri"}"#,
        )
        .unwrap();
        assert_eq!(
            error.to_string(),
            "spec.dataset.uri: must be s3://, file:// or an absolute path (field: spec.dataset.uri)"
        );
    }

    #[test]
    fn every_cause_is_listed() {
        let error: ApiError = serde_json::from_str(
            r#"{"code":422,"reason":"Invalid","message":"spec.a: bad a; spec.b: bad b","field":"spec.a","causes":[{"field":"spec.a","message":"bad a"},{"field":"spec.b","message":"bad b"}]}"#,
        )
        .unwrap();
        assert_eq!(
            error.to_string(),
            "spec.a: bad a; spec.b: bad b (fields: spec.a, spec.b)"
        );
        let error: ApiError = serde_json::from_str(
            r#"{"code":422,"reason":"Invalid","message":"the run is invalid","causes":[{"field":"spec.a","message":"bad a"}]}"#,
        )
        .unwrap();
        assert_eq!(
            error.to_string(),
            "the run is invalid (field: spec.a)\n  spec.a: bad a"
        );
    }

    #[test]
    fn a_body_that_is_not_json_keeps_the_status() {
        let error = ApiError::from_status(502, "<html>Bad Gateway</html>");
        assert_eq!(
            error.to_string(),
            "the gateway answered HTTP 502: <html>Bad Gateway</html>"
        );
        assert!(ClientError::Api(error).is_retryable());
    }
}
