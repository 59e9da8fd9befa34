//! `GET /v1/watch/namespaces/{namespace}/trainingruns`: every change of a namespace's runs as
//! Server-Sent Events, for lists that stay current without reloading (the web UI's).
//!
//! # Expected flow
//! The client opens the stream, and lists the runs (`GET .../trainingruns`) on each
//! `event: resync` (always the first event, and again whenever the server may have missed
//! changes); between resyncs, `event: run` (`id: <resourceVersion>`, `data: <TrainingRun>`)
//! replaces the run of that name, `event: deleted` (`data: <TrainingRun>` as last seen)
//! removes it. A run compares newer by its resourceVersion (a number in both backends), so an
//! event older than the list it follows can be told apart.
//!
//! # Guarantees
//! With `labelSelector`, only runs that match are sent; a run whose labels stop matching is
//! sent as `deleted`. The stream ends after `timeoutSeconds` (at most and by default
//! [`MAX_TIMEOUT_SECONDS`], as a Kubernetes watch does; the client opens it again and gets a
//! `resync`), or when the server shuts down; comments (`:`) every 15 s keep idle connections
//! alive through proxies.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::Event;
use futures::StreamExt;
use serde::Deserialize;

use crate::error::ApiError;
use crate::listing::LabelSelector;
use crate::routes::events::{EVENT_NAME, event_stream, run_event};
use crate::routes::{authorize, check_namespace};
use crate::server::ShutdownSignal;
use crate::state::AppState;
use crate::watch::RunChange;

/// The SSE event that asks the client to list again.
pub const RESYNC_EVENT: &str = "resync";
/// The SSE event of a deleted run (or one the selector no longer selects).
pub const DELETED_EVENT: &str = "deleted";

/// The longest a namespace watch stays open (30 minutes: the API server's own default
/// `--min-request-timeout` for watches).
pub const MAX_TIMEOUT_SECONDS: u64 = 1800;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChangesQuery {
    label_selector: Option<String>,
    timeout_seconds: Option<String>,
}

/// `timeoutSeconds`: a whole number from 1 to [`MAX_TIMEOUT_SECONDS`].
fn timeout(text: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = text else {
        return Ok(Duration::from_secs(MAX_TIMEOUT_SECONDS));
    };
    match text.parse::<u64>() {
        Ok(seconds @ 1..=MAX_TIMEOUT_SECONDS) => Ok(Duration::from_secs(seconds)),
        _ => Err(ApiError::bad_request(format!(
            "timeoutSeconds: \"{}\" is not a whole number of seconds from 1 to \
             {MAX_TIMEOUT_SECONDS}",
            text.chars().take(40).collect::<String>()
        ))),
    }
}

pub(crate) async fn changes(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(query): Query<ChangesQuery>,
    headers: HeaderMap,
    shutdown: Option<axum::Extension<ShutdownSignal>>,
) -> Result<Response, ApiError> {
    check_namespace(&namespace)?;
    let timeout = timeout(query.timeout_seconds.as_deref())?;
    let selector = query
        .label_selector
        .as_deref()
        .map(LabelSelector::parse)
        .transpose()?;
    authorize(&state, &headers, "watch", &namespace, None).await?;
    let changes = state.backend.watch_namespace(&namespace).await?;
    let events = changes.map(move |change| event(change, selector.as_ref()));
    Ok(event_stream(events, shutdown, tokio::time::sleep(timeout)))
}

fn event(change: RunChange, selector: Option<&LabelSelector>) -> Event {
    let selected = |run: &kubetrain_api::TrainingRun| {
        selector
            .is_none_or(|s| s.matches(run.metadata.labels.as_ref().unwrap_or(&Default::default())))
    };
    match change {
        RunChange::Resync => Event::default().event(RESYNC_EVENT).data("{}"),
        RunChange::Applied(run) if selected(&run) => run_event(&run, EVENT_NAME),
        RunChange::Applied(run) | RunChange::Deleted(run) => run_event(&run, DELETED_EVENT),
    }
}
