//! `POST /v1/namespaces/{namespace}/datasets`: store an uploaded CSV in the staging location
//! and answer its URI, to use as a run's `spec.dataset.uri`.
//!
//! # Guarantees
//! A body of up to [`PART_BYTES`] is stored with one PUT; a larger one is streamed to storage
//! with a multipart upload as it arrives, never held whole in memory. An upload over the size
//! limit, interrupted by the client, or failing in storage is aborted, so no partial object is
//! left behind (`staging/datasets/<uuid>.csv` appears only complete).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::StreamExt;
use kubetrain_storage::Location;
use object_store::buffered::BufWriter;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, Fault};
use crate::routes::{authorize, check_namespace};
use crate::state::AppState;

/// Parts uploaded to storage at once.
const UPLOAD_CONCURRENCY: usize = 4;
/// Bytes of a dataset upload buffered before it becomes multipart, and the size of its parts (S3's
/// smallest part is 5 MiB). Smaller uploads are one PUT instead of three requests.
pub const PART_BYTES: usize = 5 * 1024 * 1024;

/// Where an upload was stored.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetUploaded {
    /// The dataset's URI, for `spec.dataset.uri`.
    pub uri: String,
    /// Bytes stored.
    pub bytes: u64,
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<DatasetUploaded>), ApiError> {
    check_namespace(&namespace)?;
    authorize(&state, &headers, "create", &namespace, None).await?;
    let staging = staging(&state)?;
    let limit = state.config.limits.upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let location = staging
        .child("datasets")
        .child(&format!("{}.csv", uuid::Uuid::new_v4()));
    let bytes = stream_to(&location, body, limit).await?;
    tracing::info!(uri = %location.uri(), bytes, %namespace, "dataset uploaded");
    Ok((
        StatusCode::CREATED,
        Json(DatasetUploaded {
            uri: location.uri().to_owned(),
            bytes,
        }),
    ))
}

/// The configured staging location, or 501.
pub(crate) fn staging(state: &AppState) -> Result<&Location, ApiError> {
    state.config.staging.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "this gateway has no staging location for uploaded data; start it with \
             --staging-uri, or put the data in storage yourself and give its URI in \
             spec.dataset.uri",
        )
    })
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        format!("the upload is larger than the limit of {limit} bytes"),
    )
}

/// 503 for a storage failure; the detail goes to the log.
pub(crate) fn storage_unavailable(location: &Location, error: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(
        "the staging storage cannot be written right now; retry later",
        5,
    )
    .logged(
        Fault::Dependency,
        format!("staging storage failed at {}: {error}", location.uri()),
    )
}

async fn stream_to(location: &Location, body: Body, limit: u64) -> Result<u64, ApiError> {
    let mut writer = BufWriter::with_capacity(
        location.store().clone(),
        location.path().clone(),
        PART_BYTES,
    )
    .with_max_concurrency(UPLOAD_CONCURRENCY);
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    let failure = loop {
        let Some(chunk) = stream.next().await else {
            break None;
        };
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::info!(error = %e, "dataset upload interrupted");
                break Some(ApiError::bad_request(
                    "the upload was interrupted before the body ended",
                ));
            }
        };
        total += chunk.len() as u64;
        if total > limit {
            break Some(too_large(limit));
        }
        if let Err(e) = writer.put(chunk).await {
            break Some(storage_unavailable(location, e));
        }
    };
    let failure = failure.or_else(|| {
        (total == 0)
            .then(|| ApiError::invalid("body", "the upload is empty; send the CSV as the body"))
    });
    if let Some(error) = failure {
        if let Err(e) = writer.abort().await {
            tracing::warn!(uri = %location.uri(), error = %e, "cannot abort a dataset upload");
        }
        return Err(error);
    }
    writer
        .shutdown()
        .await
        .map_err(|e| storage_unavailable(location, e))?;
    Ok(total)
}
