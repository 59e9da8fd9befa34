//! `GET .../trainingruns/{name}/model`: the model file, streamed from object storage.
//!
//! # Guarantees
//! The file is never held in memory whole: it is copied from storage to the client chunk by
//! chunk. `Content-Length` is the stored size; `ETag: "sha256:<hex>"` and `X-Model-Sha256`
//! carry the sha256 from `status.model`, so the client can check what it received. A stored
//! object whose size differs from `status.model.bytes` is refused (502): it is not the model
//! the run reported.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kubetrain_api::{ModelRef, TrainingRun};
use kubetrain_storage::Location;
use object_store::ObjectStoreExt;

use crate::error::ApiError;
use crate::routes::authorize_run;
use crate::state::AppState;

/// The header carrying the model's sha256 (lowercase hex).
pub const MODEL_SHA256_HEADER: &str = "x-model-sha256";

pub(crate) async fn download(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_run(&state, &headers, "get", &namespace, &name).await?;
    let run = state.backend.get(&namespace, &name).await?;
    let model = ready_model(&run)?;
    let location = model_location(model)?;
    let object = location
        .store()
        .get(location.path())
        .await
        .map_err(|e| storage_error(&location, e))?;
    if object.meta.size != model.bytes {
        return Err(model_mismatch(
            model,
            format!(
                "it has {} bytes, the run's status says {}",
                object.meta.size, model.bytes
            ),
        ));
    }
    let size = object.meta.size;
    let mut response = Body::from_stream(object.into_stream()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"sha256:{}\"", model.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(sha) = HeaderValue::from_str(&model.sha256) {
        headers.insert(MODEL_SHA256_HEADER, sha);
    }
    Ok(response)
}

/// `status.model`, or 409 saying why there is none yet.
pub(crate) fn ready_model(run: &TrainingRun) -> Result<&ModelRef, ApiError> {
    let status = run.status.as_ref();
    match status.and_then(|s| s.model.as_ref()) {
        Some(model) => Ok(model),
        None => {
            let phase = status
                .and_then(|s| s.phase)
                .map_or("Pending", |p| p.as_str());
            let name = run.metadata.name.as_deref().unwrap_or("");
            Err(ApiError::conflict(format!(
                "run \"{name}\" has no model yet (phase {phase}); it has one once it Succeeded"
            )))
        }
    }
}

/// Where `status.model.uri` points; an unusable URI is the run's fault, not the client's (502).
pub(crate) fn model_location(model: &ModelRef) -> Result<Location, ApiError> {
    Location::parse("status.model.uri", &model.uri).map_err(|e| {
        tracing::warn!(error = %e, "unusable model URI in a run's status");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            format!("the run's status.model.uri cannot be read: {e}"),
        )
    })
}

/// A storage error reading the model: missing or forbidden objects are 502 (the run points at
/// something that is not there), anything else 503 (storage unreachable, retry).
pub(crate) fn storage_error(location: &Location, error: object_store::Error) -> ApiError {
    let error = location.read_error(error);
    tracing::warn!(error = %error, "cannot read a model from storage");
    match error.class() {
        kubetrain_api::ErrorClass::BadInput => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            format!(
                "the model at {} cannot be read from storage (missing or access denied)",
                location.uri()
            ),
        ),
        _ => ApiError::unavailable(
            format!(
                "storage cannot be reached to read the model at {}; retry later",
                location.uri()
            ),
            5,
        ),
    }
}

/// 502: the stored model is not the one the run reported.
pub(crate) fn model_mismatch(model: &ModelRef, why: String) -> ApiError {
    tracing::error!(uri = %model.uri, %why, "stored model does not match the run's status");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "BadGateway",
        format!(
            "the model at {} does not match the run's status.model: {why}",
            model.uri
        ),
    )
}
