//! The REST calls of the kubetrain API (`/v1/namespaces/{ns}/trainingruns...`).

use std::time::Duration;

use kubetrain_api::{Phase, TrainingRun};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::error::root_cause;
use crate::{ApiError, ClientError};

/// How long an ordinary call (not the event stream) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Runs asked for per page when listing; every page is fetched.
const PAGE_SIZE: u32 = 200;

/// A gateway: its base URL and the bearer token to send.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
    /// Waits between attempts of a retried call; its length is the number of retries.
    retry_delays: Vec<Duration>,
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only runs in this phase.
    pub phase: Option<Phase>,
    /// Only runs whose labels match (`app=churn,tier!=dev`).
    pub label_selector: Option<String>,
}

/// Parse a phase name as `--phase` takes it (any case).
pub fn parse_phase(text: &str) -> Result<Phase, String> {
    Phase::parse_ignore_case(text).map_err(|e| e.to_string())
}

#[derive(serde::Deserialize)]
struct ListPage {
    #[serde(default)]
    items: Vec<TrainingRun>,
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

impl Client {
    /// A client of the gateway at `base` (`http://127.0.0.1:8080`).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let bad = |detail: String| ClientError::BadUrl {
            url: base.to_owned(),
            detail,
        };
        let mut url = Url::parse(base).map_err(|error| {
            bad(format!(
                "{error}; expected e.g. http://127.0.0.1:8080 or https://kubetrain.example.com"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".to_owned()));
        }
        if url.cannot_be_a_base() {
            return Err(bad("not a base URL".to_owned()));
        }
        // Keep a path prefix (a gateway behind /kubetrain/) but no trailing empty segment.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
        }
        url.set_query(None);
        url.set_fragment(None);
        let http = reqwest::Client::builder()
            .user_agent(concat!("kubetrain/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| bad(root_cause(&error)))?;
        Ok(Self {
            base: url,
            token: token.filter(|token| !token.is_empty()),
            http,
            retry_delays: vec![
                Duration::from_millis(300),
                Duration::from_secs(1),
                Duration::from_secs(3),
            ],
        })
    }

    /// Use these waits between attempts of retried calls instead of the defaults.
    pub fn with_retry_delays(mut self, delays: Vec<Duration>) -> Self {
        self.retry_delays = delays;
        self
    }

    /// The gateway's base URL as given.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of `/v1/namespaces/{namespace}/trainingruns[/name[/rest]]`.
    pub fn runs_url(&self, namespace: &str, tail: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .extend(["v1", "namespaces", namespace, "trainingruns"])
                .extend(tail);
        }
        url
    }

    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Create `run` in `namespace`. The same `idempotency_key` on every attempt makes the
    /// retries of a call whose answer was lost return the run created first, never a second.
    /// Unreachable gateways and 502/503/504 are retried with backoff.
    pub async fn create(
        &self,
        namespace: &str,
        run: &TrainingRun,
        idempotency_key: &str,
    ) -> Result<TrainingRun, ClientError> {
        let url = self.runs_url(namespace, &[]);
        let mut delays = self.retry_delays.iter();
        loop {
            let request = self
                .request(Method::POST, url.clone())
                .timeout(REQUEST_TIMEOUT)
                .header("Idempotency-Key", idempotency_key)
                .json(run);
            match self.send_json(request, &url).await {
                Err(error) if error.is_retryable() => match delays.next() {
                    Some(delay) => tokio::time::sleep(*delay).await,
                    None => return Err(error),
                },
                result => return result,
            }
        }
    }

    /// The run `name` in `namespace`.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<TrainingRun, ClientError> {
        let url = self.runs_url(namespace, &[name]);
        let request = self
            .request(Method::GET, url.clone())
            .timeout(REQUEST_TIMEOUT);
        self.send_json(request, &url).await
    }

    /// Every run in `namespace` matching `filter`, following `continue` across pages.
    pub async fn list(
        &self,
        namespace: &str,
        filter: &ListFilter,
    ) -> Result<Vec<TrainingRun>, ClientError> {
        let mut runs = Vec::new();
        let mut continue_token: Option<String> = None;
        loop {
            let mut url = self.runs_url(namespace, &[]);
            {
                let mut query = url.query_pairs_mut();
                if let Some(phase) = filter.phase {
                    query.append_pair("phase", phase.as_str());
                }
                if let Some(selector) = &filter.label_selector {
                    query.append_pair("labelSelector", selector);
                }
                query.append_pair("limit", &PAGE_SIZE.to_string());
                if let Some(token) = &continue_token {
                    query.append_pair("continue", token);
                }
            }
            let request = self
                .request(Method::GET, url.clone())
                .timeout(REQUEST_TIMEOUT);
            let page: ListPage = self.send_json(request, &url).await?;
            runs.extend(page.items);
            match page.continue_token.filter(|token| !token.is_empty()) {
                Some(token) if Some(&token) != continue_token.as_ref() => {
                    continue_token = Some(token)
                }
                Some(_) => {
                    return Err(ClientError::Decode {
                        url: url.to_string(),
                        detail: "the gateway returned the same continue token twice".to_owned(),
                    });
                }
                None => return Ok(runs),
            }
        }
    }

    /// Cancel the run: it stops training and ends Cancelled. Cancelling a finished run
    /// changes nothing.
    pub async fn cancel(&self, namespace: &str, name: &str) -> Result<TrainingRun, ClientError> {
        let url = self.runs_url(namespace, &[name, "cancel"]);
        let request = self
            .request(Method::POST, url.clone())
            .timeout(REQUEST_TIMEOUT);
        self.send_json(request, &url).await
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        url: &Url,
    ) -> Result<T, ClientError> {
        let response = self.send(request, url).await?;
        let body = response
            .bytes()
            .await
            .map_err(|error| transport_error(&error, url))?;
        serde_json::from_slice(&body).map_err(|error| ClientError::Decode {
            url: url.to_string(),
            detail: error.to_string(),
        })
    }

    /// Send, and turn an error status into the gateway's [`ApiError`].
    pub(crate) async fn send(
        &self,
        request: RequestBuilder,
        url: &Url,
    ) -> Result<Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|error| transport_error(&error, url))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(api_error(response).await)
    }
}

/// The error of an answer with an error status.
async fn api_error(response: Response) -> ClientError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let error = match serde_json::from_str::<ApiError>(&body) {
        Ok(mut error) if !error.message.is_empty() => {
            if error.code == 0 {
                error.code = status.as_u16();
            }
            error
        }
        _ => ApiError::from_status(status.as_u16(), &body),
    };
    let mut error = error;
    if status == StatusCode::UNAUTHORIZED {
        error
            .message
            .push_str("; pass a token with --token or KUBETRAIN_TOKEN");
    }
    ClientError::Api(error)
}

pub(crate) fn transport_error(error: &reqwest::Error, url: &Url) -> ClientError {
    let detail = root_cause(error);
    if error.is_connect() {
        let mut origin = url.clone();
        origin.set_path("");
        origin.set_query(None);
        ClientError::Connect {
            url: origin.as_str().trim_end_matches('/').to_owned(),
            detail,
        }
    } else if error.is_timeout() {
        ClientError::Transport {
            url: url.to_string(),
            detail: format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
        }
    } else {
        ClientError::Transport {
            url: url.to_string(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn urls_are_built_from_segments() {
        let client = Client::new("http://127.0.0.1:8080/", None).unwrap();
        assert_eq!(
            client.runs_url("ml", &["a b", "events"]).as_str(),
            "http://127.0.0.1:8080/v1/namespaces/ml/trainingruns/a%20b/events"
        );
        let prefixed = Client::new("https://gw.example.com/kubetrain/", None).unwrap();
        assert_eq!(
            prefixed.runs_url("default", &[]).as_str(),
            "https://gw.example.com/kubetrain/v1/namespaces/default/trainingruns"
        );
    }

    #[test]
    fn bad_gateway_urls_say_what_would_do() {
        let error = Client::new("localhost:8080", None).unwrap_err().to_string();
        assert!(error.contains("http or https"), "{error}");
        let error = Client::new("not a url", None).unwrap_err().to_string();
        assert!(
            error.contains("expected e.g. http://127.0.0.1:8080"),
            "{error}"
        );
    }

    #[test]
    fn phases_parse_in_any_case() {
        assert_eq!(parse_phase("succeeded").unwrap(), Phase::Succeeded);
        assert_eq!(parse_phase("Failed").unwrap(), Phase::Failed);
        assert!(parse_phase("done").unwrap_err().contains("Pending, Queued"));
    }

    #[tokio::test]
    async fn connection_refused_names_the_url() {
        // Bind and drop a listener: nothing listens on that port afterwards.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = Client::new(&format!("http://127.0.0.1:{port}"), None)
            .unwrap()
            .with_retry_delays(vec![Duration::from_millis(1)]);
        let error = client.get("default", "x").await.unwrap_err();
        assert!(error.is_retryable());
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot reach the gateway at http://127.0.0.1:{port}"
            )),
            "{text}"
        );
        assert!(text.contains("kubetrain local"), "{text}");
    }
}
