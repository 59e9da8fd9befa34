//! Following a run through its Server-Sent Events (`GET .../trainingruns/{name}/events`):
//! `event: run`, `id: <resourceVersion>`, `data: <TrainingRun JSON>`, the current state first,
//! the stream ending after a terminal phase.
//!
//! # Guarantees
//! [`follow`] hands every distinct state (by resourceVersion) to its callback once, in order,
//! and returns the terminal run. When the stream drops before that, it reconnects: the gateway
//! sends the current state first, so nothing that matters is missed, and repeats are skipped.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use kubetrain_api::TrainingRun;
use reqwest::Method;
use sse_stream::{Sse, SseByteStream};

use crate::{ApiError, Client, ClientError};

/// Consecutive failed connections before giving up, and the waits between them.
const RECONNECT_DELAYS_MS: [u64; 8] = [200, 500, 1000, 2000, 3000, 5000, 5000, 5000];
/// A stream silent for this long is taken as dead and reopened (which costs nothing: the
/// gateway starts again with the current state).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What one SSE event says.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// The run's state (`event: run`).
    Run(Box<TrainingRun>),
    /// The gateway reports an error on the stream (`event: error`).
    Error(ApiError),
    /// Anything else (other event types, metadata-only blocks): ignored.
    Other,
}

/// Interpret one SSE event block.
pub fn run_event(sse: &Sse) -> Result<RunEvent, ClientError> {
    let Some(data) = &sse.data else {
        return Ok(RunEvent::Other);
    };
    match sse.event.as_deref() {
        Some("run") | None => serde_json::from_str::<TrainingRun>(data)
            .map(|run| RunEvent::Run(Box::new(run)))
            .map_err(|error| ClientError::Decode {
                url: "the event stream".to_owned(),
                detail: format!("an event's data is not a TrainingRun: {error}"),
            }),
        Some("error") => Ok(RunEvent::Error(
            serde_json::from_str::<ApiError>(data)
                .unwrap_or_else(|_| ApiError::from_status(500, data)),
        )),
        Some(_) => Ok(RunEvent::Other),
    }
}

/// Decode a byte stream of SSE into [`RunEvent`]s.
pub fn run_events<S, E>(bytes: S) -> impl Stream<Item = Result<RunEvent, ClientError>>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    SseByteStream::new(bytes).map(|item| match item {
        Ok(sse) => run_event(&sse),
        Err(error) => Err(ClientError::Transport {
            url: "the event stream".to_owned(),
            detail: error.to_string(),
        }),
    })
}

/// Why one connection of the event stream ended.
enum Ended {
    /// A terminal run.
    Terminal(Box<TrainingRun>),
    /// Dropped, silent for too long, or ended early; `error` when it failed.
    Dropped {
        error: Option<ClientError>,
        got_events: bool,
    },
}

/// Follow run `name` until it reaches a terminal phase, calling `on_update` with each new
/// state; returns the terminal run.
///
/// # Errors
/// The gateway's error when it refuses the stream (404 when the run does not exist or was
/// deleted, 401/403), or [`ClientError::StreamLost`] after repeated failed reconnects.
pub async fn follow(
    client: &Client,
    namespace: &str,
    name: &str,
    mut on_update: impl FnMut(&TrainingRun),
) -> Result<TrainingRun, ClientError> {
    let mut last_version: Option<String> = None;
    let mut failures = 0usize;
    loop {
        let ended = follow_once(client, namespace, name, &mut last_version, &mut on_update).await;
        let error = match ended {
            Ok(Ended::Terminal(run)) => return Ok(*run),
            Ok(Ended::Dropped { error, got_events }) => {
                if got_events {
                    failures = 0;
                }
                match error {
                    Some(error) => error,
                    // Only silent: reopen at once.
                    None => continue,
                }
            }
            Err(error) if error.is_retryable() => error,
            Err(error) => return Err(error),
        };
        let Some(delay) = RECONNECT_DELAYS_MS.get(failures) else {
            return Err(ClientError::StreamLost {
                name: name.to_owned(),
                attempts: u32::try_from(failures).unwrap_or(u32::MAX),
                last: Box::new(error),
            });
        };
        failures += 1;
        tokio::time::sleep(Duration::from_millis(*delay)).await;
    }
}

/// One connection: read events until a terminal run, the end, an error or silence.
async fn follow_once(
    client: &Client,
    namespace: &str,
    name: &str,
    last_version: &mut Option<String>,
    on_update: &mut impl FnMut(&TrainingRun),
) -> Result<Ended, ClientError> {
    let url = client.runs_url(namespace, &[name, "events"]);
    let mut request = client
        .request(Method::GET, url.clone())
        .header("Accept", "text/event-stream");
    if let Some(version) = last_version.as_deref() {
        request = request.header("Last-Event-ID", version);
    }
    let response = client.send(request, &url).await?;
    let events = run_events(response.bytes_stream());
    futures::pin_mut!(events);
    let mut got_events = false;
    loop {
        let next = match tokio::time::timeout(IDLE_TIMEOUT, events.next()).await {
            Ok(next) => next,
            Err(_) => {
                return Ok(Ended::Dropped {
                    error: None,
                    got_events,
                });
            }
        };
        match next {
            None => {
                // An orderly end before a terminal phase: the gateway restarted or shut
                // down. Reconnect, counting it as a failure so a loop cannot spin.
                return Ok(Ended::Dropped {
                    error: Some(ClientError::Transport {
                        url: url.to_string(),
                        detail: "the stream ended before the run finished".to_owned(),
                    }),
                    got_events,
                });
            }
            Some(Err(error)) => {
                return Ok(Ended::Dropped {
                    error: Some(error),
                    got_events,
                });
            }
            Some(Ok(RunEvent::Other)) => {}
            Some(Ok(RunEvent::Error(error))) => return Err(ClientError::Api(error)),
            Some(Ok(RunEvent::Run(run))) => {
                got_events = true;
                let version = run.metadata.resource_version.clone();
                if version.is_none() || version != *last_version {
                    on_update(&run);
                    *last_version = version;
                }
                if run
                    .status
                    .as_ref()
                    .and_then(|status| status.phase)
                    .is_some_and(|phase| phase.is_terminal())
                {
                    return Ok(Ended::Terminal(run));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use kubetrain_api::Phase;

    fn chunks(parts: &[&str]) -> Vec<Result<Bytes, std::io::Error>> {
        parts
            .iter()
            .map(|part| Ok(Bytes::from(part.to_string())))
            .collect()
    }

    const RUNNING: &str = r#"{"apiVersion":"kubetrain.dev/v1alpha1","kind":"TrainingRun","metadata":{"name":"r","namespace":"default","resourceVersion":"7"},"spec":{"algorithm":{"logisticRegression":{}},"dataset":{"uri":"/d.csv"},"output":{"uri":"/m/"}},"status":{"phase":"Running","progress":{"iteration":40,"total":200,"percent":20.0,"loss":0.25}}}"#;

    #[tokio::test]
    async fn events_split_across_chunks_decode_to_runs() {
        let body = format!(
            "event: run\nid: 7\ndata: {RUNNING}\n\n: keep-alive\n\nevent: other\ndata: x\n\n"
        );
        let (head, tail) = body.split_at(40);
        let events: Vec<_> = run_events(futures::stream::iter(chunks(&[head, tail])))
            .collect()
            .await;
        assert_eq!(events.len(), 2, "{events:?}");
        let RunEvent::Run(run) = events[0].as_ref().unwrap() else {
            panic!("not a run: {:?}", events[0]);
        };
        let status = run.status.as_ref().unwrap();
        assert_eq!(status.phase, Some(Phase::Running));
        assert_eq!(status.progress.as_ref().unwrap().iteration, 40);
        assert_eq!(events[1].as_ref().unwrap(), &RunEvent::Other);
    }

    #[tokio::test]
    async fn an_error_event_carries_the_gateways_error() {
        let body = "event: error\ndata: {\"code\":404,\"reason\":\"NotFound\",\"message\":\"trainingruns \\\"r\\\" not found\"}\n\n";
        let events: Vec<_> = run_events(futures::stream::iter(chunks(&[body])))
            .collect()
            .await;
        let RunEvent::Error(error) = events[0].as_ref().unwrap() else {
            panic!("{events:?}");
        };
        assert_eq!(error.code, 404);
        assert_eq!(error.message, "trainingruns \"r\" not found");
    }

    #[tokio::test]
    async fn data_that_is_not_a_run_is_an_error() {
        let events: Vec<_> =
            run_events(futures::stream::iter(chunks(&["event: run\ndata: {}\n\n"])))
                .collect()
                .await;
        let error = events[0].as_ref().unwrap_err().to_string();
        assert!(error.contains("not a TrainingRun"), "{error}");
    }
}
