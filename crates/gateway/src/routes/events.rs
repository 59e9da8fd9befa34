//! `GET .../trainingruns/{name}/events`: the run's changes as Server-Sent Events.
//!
//! # Expected flow
//! Each event is `event: run`, `id: <metadata.resourceVersion>`, `data: <the TrainingRun as
//! JSON>`. The first event is the run as it is now (so a client that connects late still sees
//! the current state), then one per change. Comments (`:`) keep idle connections alive.
//!
//! # Guarantees
//! The stream ends after the first event whose phase is terminal (Succeeded, Failed,
//! Cancelled), when the run is deleted, and when the server shuts down.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use kubetrain_api::TrainingRun;

use crate::error::ApiError;
use crate::routes::authorize_run;
use crate::server::ShutdownSignal;
use crate::state::AppState;

/// The SSE event name of every event.
pub const EVENT_NAME: &str = "run";

pub(crate) async fn events(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    shutdown: Option<axum::Extension<ShutdownSignal>>,
) -> Result<Response, ApiError> {
    authorize_run(&state, &headers, "get", &namespace, &name).await?;
    let runs = state.backend.watch(&namespace, &name).await?;
    let events = until_terminal(runs).map(|run| run_event(&run, EVENT_NAME));
    Ok(event_stream(events, shutdown, std::future::pending()))
}

/// The SSE answer of `events`: a keep-alive comment every 15 s; ends with `events`, when `stop`
/// completes, or when the server shuts down (`shutdown`).
pub(crate) fn event_stream(
    events: impl Stream<Item = Event> + Send + 'static,
    shutdown: Option<axum::Extension<ShutdownSignal>>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Response {
    let stopping = async move {
        let shutdown = async move {
            match shutdown {
                Some(axum::Extension(signal)) => signal.wait().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown => {}
            () = stop => {}
        }
    };
    let events = events.map(Ok::<_, Infallible>).take_until(stopping);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The runs up to and including the first one in a terminal phase; the stream ends right
/// after that one, without waiting for the backend's next change.
fn until_terminal(
    runs: impl Stream<Item = TrainingRun> + Send + Unpin + 'static,
) -> impl Stream<Item = TrainingRun> + Send + 'static {
    futures::stream::unfold(Some(runs), |runs| async move {
        let mut runs = runs?;
        let run = runs.next().await?;
        let terminal = run
            .status
            .as_ref()
            .and_then(|s| s.phase)
            .is_some_and(|p| p.is_terminal());
        Some((run, (!terminal).then_some(runs)))
    })
}

/// `event: <name>`, `id: <resourceVersion>`, `data: <the run as JSON>`.
pub(crate) fn run_event(run: &TrainingRun, name: &str) -> Event {
    let data = serde_json::to_string(run).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize a run for SSE");
        "{}".to_owned()
    });
    let event = Event::default().event(name).data(data);
    match run.metadata.resource_version.as_deref() {
        // `Event::id` refuses line breaks and NUL; a resourceVersion never has them.
        Some(version) if !version.contains(['\n', '\r', '\0']) => event.id(version),
        _ => event,
    }
}
