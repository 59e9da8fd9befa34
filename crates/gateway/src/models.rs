//! The model a run reported (`status.model`): where it is, reading it from storage, and a
//! bounded cache of parsed models for prediction.
//!
//! # Guarantees
//! A model is read from storage once and kept parsed in a bounded cache keyed by URI and
//! sha256; the bytes read must hash to `status.model.sha256` (502 otherwise), so a cached
//! model is always the one the run reported.

use std::sync::Arc;

use axum::http::StatusCode;
use kubetrain_api::{ModelRef, TrainingRun};
use kubetrain_model::Model;
use kubetrain_storage::Location;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Fault};

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
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            format!("the run's status.model.uri cannot be read: {e}"),
        )
        .logged(
            Fault::Dependency,
            format!("unusable model URI in a run's status: {e}"),
        )
    })
}

/// A storage error reading the model: see [`output_read_error`].
pub(crate) fn storage_error(location: &Location, error: object_store::Error) -> ApiError {
    output_read_error("model", location, error)
}

/// A storage error reading `what` (the model, the summary) of a run's output: missing or
/// forbidden objects are 502 (the run points at something that is not there), anything else
/// 503 (storage unreachable, retry).
pub(crate) fn output_read_error(
    what: &str,
    location: &Location,
    error: object_store::Error,
) -> ApiError {
    let error = location.read_error(error);
    let answer = match error.class() {
        kubetrain_api::ErrorClass::BadInput => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            format!(
                "the {what} at {} cannot be read from storage (missing or access denied)",
                location.uri()
            ),
        ),
        _ => ApiError::unavailable(
            format!(
                "storage cannot be reached to read the {what} at {}; retry later",
                location.uri()
            ),
            5,
        ),
    };
    answer.logged(
        Fault::Dependency,
        format!("cannot read a {what} from storage: {error}"),
    )
}

/// 502: the stored model is not the one the run reported.
pub(crate) fn model_mismatch(model: &ModelRef, why: String) -> ApiError {
    let message = format!(
        "the model at {} does not match the run's status.model: {why}",
        model.uri
    );
    ApiError::new(StatusCode::BAD_GATEWAY, "BadGateway", message.clone())
        .logged(Fault::Server, message)
}

/// Parsed models by (uri, sha256).
pub(crate) struct ModelCache {
    models: quick_cache::sync::Cache<(String, String), Arc<Model>>,
}

impl ModelCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ModelCache {
            models: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// The model `reference` points at: from the cache, or read, checked and parsed once
    /// (concurrent callers wait for the one load).
    pub(crate) async fn get(&self, reference: &ModelRef) -> Result<Arc<Model>, ApiError> {
        let key = (reference.uri.clone(), reference.sha256.to_ascii_lowercase());
        self.models
            .get_or_insert_async(&key, load(reference.clone()))
            .await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.models.len()
    }
}

async fn load(reference: ModelRef) -> Result<Arc<Model>, ApiError> {
    let location = model_location(&reference)?;
    let bytes = location
        .store()
        .get(location.path())
        .await
        .map_err(|e| storage_error(&location, e))?
        .bytes()
        .await
        .map_err(|e| storage_error(&location, e))?;
    let parsed = tokio::task::spawn_blocking(move || {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if !sha256.eq_ignore_ascii_case(&reference.sha256) {
            return Err(model_mismatch(
                &reference,
                format!(
                    "its sha256 is {sha256}, the run's status says {}",
                    reference.sha256
                ),
            ));
        }
        Model::from_json(&bytes).map_err(|why| model_mismatch(&reference, why))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Arc::new(parsed))
}

impl std::fmt::Debug for ModelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCache")
            .field("len", &self.models.len())
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A binary model over features `a`, `b` with classes `no`, `yes`: the tests' one model.
    pub(crate) fn model() -> Model {
        serde_json::from_value(serde_json::json!({
            "format": "kubetrain.dev/logistic-regression",
            "formatVersion": 1,
            "labelColumn": "label",
            "featureNames": ["a", "b"],
            "classes": ["no", "yes"],
            "labelKind": "string",
            "scaler": {"mean": [1.0, 0.0], "scale": [2.0, 1.0]},
            "coefficients": [[2.0, -1.0]],
            "intercepts": [0.5]
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_model_whose_bytes_do_not_match_is_refused_and_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        let bytes = model().to_json().unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let cache = ModelCache::new(2);
        let wrong = ModelRef {
            uri: format!("file://{}", path.display()),
            sha256: "00".repeat(32),
            bytes: bytes.len() as u64,
        };
        let error = cache.get(&wrong).await.unwrap_err();
        assert_eq!(error.status().as_u16(), 502);
        assert_eq!(cache.len(), 0);
        let right = ModelRef {
            sha256: hex::encode(Sha256::digest(&bytes)),
            ..wrong
        };
        let first = cache.get(&right).await.unwrap();
        let second = cache.get(&right).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(cache.len(), 1);
    }
}
