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
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use object_store::ObjectStoreExt;

use crate::error::ApiError;
use crate::models::{model_location, model_mismatch, storage_error};
use crate::routes::run_with_model;
use crate::state::AppState;

/// The header carrying the model's sha256 (lowercase hex).
pub const MODEL_SHA256_HEADER: &str = "x-model-sha256";

pub(crate) async fn download(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, model) = run_with_model(&state, &headers, &namespace, &name).await?;
    let location = model_location(&model)?;
    let object = location
        .store()
        .get(location.path())
        .await
        .map_err(|e| storage_error(&location, e))?;
    if object.meta.size != model.bytes {
        return Err(model_mismatch(
            &model,
            format!(
                "it has {} bytes, the run's status says {}",
                object.meta.size, model.bytes
            ),
        ));
    }
    let size = object.meta.size;
    let reference_is_json = model.uri.ends_with(".json");
    let mut response = Body::from_stream(object.into_stream()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        // kubetrain's models are JSON; a custom program's may be anything (a pickle, weights).
        HeaderValue::from_static(if reference_is_json {
            "application/json"
        } else {
            "application/octet-stream"
        }),
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
