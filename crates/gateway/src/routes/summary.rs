//! `GET .../trainingruns/{name}/summary`: the run's `summary.json` (metrics with the confusion
//! matrix, feature weights, the loss per iteration, the dataset, timings), read from storage.
//!
//! # Guarantees
//! Only a run with a model has a summary (409 before, as for the model); it is read from
//! `<spec.output.uri>/summary.json`, where the trainer (or `kubetrain exec` for a custom run)
//! wrote it last, after the model. A summary that is not a JSON object, or larger than
//! [`MAX_SUMMARY_BYTES`], is not what a trainer writes: 502.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kubetrain_api::SUMMARY_FILE;
use kubetrain_storage::Location;
use object_store::ObjectStoreExt;

use crate::error::{ApiError, Fault};
use crate::models::output_read_error;
use crate::routes::run_with_model;
use crate::state::AppState;

/// The largest summary served (a summary lists every feature's weight: 16 MiB is ~100,000
/// features).
pub const MAX_SUMMARY_BYTES: u64 = 16 * 1024 * 1024;

pub(crate) async fn summary(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (run, _) = run_with_model(&state, &headers, &namespace, &name).await?;
    let location = Location::parse("spec.output.uri", &run.spec.output.uri)
        .map_err(|e| bad_summary(format!("the run's spec.output.uri cannot be read: {e}")))?
        .child(SUMMARY_FILE);
    let object = location
        .store()
        .get(location.path())
        .await
        .map_err(|e| output_read_error("summary", &location, e))?;
    if object.meta.size > MAX_SUMMARY_BYTES {
        return Err(bad_summary(format!(
            "the summary at {} has {} bytes, more than the {MAX_SUMMARY_BYTES} a trainer writes",
            location.uri(),
            object.meta.size
        )));
    }
    let bytes = object
        .bytes()
        .await
        .map_err(|e| output_read_error("summary", &location, e))?;
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => {
            return Err(bad_summary(format!(
                "the summary at {} is not a JSON object",
                location.uri()
            )));
        }
    }
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn bad_summary(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "BadGateway", message.clone())
        .logged(Fault::Dependency, message)
}
