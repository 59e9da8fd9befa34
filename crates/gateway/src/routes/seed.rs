//! The seed API, unchanged for its clients: `POST /train/` (and `/train`) with inline
//! features and labels answers `{"task_id"}`; `GET /status/{task_id}` reports on it.
//!
//! # Expected flow
//! The request is validated as the seed validated it (422 naming the field), its rows are
//! written as CSV (`f0,...,f<p-1>,label`) to `staging/datasets/<uuid>.csv`, and a TrainingRun
//! `train-<10 hex digits>` is created in the seed namespace, writing its model under
//! `staging/models/<name>/`, with the configured seed storage (`spec.storage`: credentials
//! Secret, endpoint, region) so its trainer pod can read what the gateway staged. The task id
//! is the run's name.
//!
//! # Parameter mapping
//! `test_size` → `spec.dataset.validationFraction`, `random_state` → `spec.dataset.seed`,
//! `max_iter` → `maxIterations`, and `C` → `l2Penalty = 1/C`: scikit-learn minimises
//! `C·Σ logloss + ½‖w‖²`, kubetrain `Σ logloss + α/2·‖w‖²` (see the trainer's objective), the
//! same minimiser when `α = 1/C`. kubetrain standardizes the features first, so the fit equals
//! scikit-learn's on standardized features.
//!
//! # Caveats
//! Unknown task ids are 404 (the seed answered "pending" for them). `dataset` references
//! (sklearn's bundled datasets, server-side paths) are refused: upload the CSV with
//! `POST /v1/namespaces/{namespace}/datasets` and create a TrainingRun with its URI.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use kubetrain_api::{Phase, TrainingRun};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::backend::BackendError;
use crate::error::ApiError;
use crate::extract::{ApiJson, from_value};
use crate::routes::datasets::{staging, storage_unavailable};
use crate::routes::{authorize, check_name};
use crate::state::AppState;

/// Label of runs the seed route creates.
pub const SEED_LABEL: &str = "kubetrain.dev/created-by";

/// A class label: an integer or a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SeedLabel {
    /// An integer label.
    Integer(i64),
    /// A string label: not blank, no comma, quote or line break.
    Text(#[schemars(regex(pattern = r#"^[^,"\r\n]*[^,"\s][^,"\r\n]*$"#))] String),
}

/// The seed's training request.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeedTrainRequest {
    /// Rows of feature values, all of the same width.
    #[serde(default)]
    #[schemars(required, length(min = 2), inner(length(min = 1)))]
    pub features: Option<Vec<Vec<f64>>>,
    /// One label per row; at least two distinct classes.
    #[serde(default)]
    #[schemars(required, length(min = 2))]
    pub labels: Option<Vec<SeedLabel>>,
    /// Not supported here (422): upload the data with
    /// `POST /v1/namespaces/{namespace}/datasets` instead. Left out of the API document.
    #[serde(default)]
    #[schemars(skip)]
    pub dataset: Option<String>,
    /// Only meaningful with `dataset`.
    #[serde(default)]
    #[schemars(skip)]
    pub dataset_params: Option<serde_json::Map<String, serde_json::Value>>,
    /// Fraction of rows held back for the accuracy, in (0, 1).
    #[serde(default = "default_test_size")]
    #[schemars(extend("exclusiveMinimum" = 0.0, "exclusiveMaximum" = 1.0))]
    pub test_size: f64,
    /// Seed of the split, a non-negative integer.
    #[serde(default = "default_random_state")]
    #[schemars(range(min = 0))]
    pub random_state: i64,
    /// Inverse regularization strength, > 0 (`l2Penalty = 1/C`).
    #[serde(default = "default_c", rename = "C")]
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub c: f64,
    /// Solver iterations, 1 to 1,000,000.
    #[serde(default = "default_max_iter")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_iter: i64,
}

fn default_test_size() -> f64 {
    0.2
}
fn default_random_state() -> i64 {
    42
}
fn default_c() -> f64 {
    1.0
}
fn default_max_iter() -> i64 {
    1000
}

/// The answer to `POST /train/`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeedTask {
    /// The task id: the name of the TrainingRun in the seed namespace.
    pub task_id: String,
}

/// The answer to `GET /status/{task_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeedStatus {
    /// The task id.
    pub task_id: String,
    /// `pending`, `running`, `complete` or `failure`.
    pub status: String,
    /// The run's phase: Pending, Queued, Running, Succeeded, Failed or Cancelled.
    pub state: String,
    /// Metrics and the model, once complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<SeedResult>,
    /// Why the run failed, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a complete task produced.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeedResult {
    /// Accuracy on the held-out rows.
    pub accuracy: Option<f64>,
    /// Mean log loss on the held-out rows.
    pub log_loss: Option<f64>,
    /// Mean of the per-class F1 scores.
    pub macro_f1: Option<f64>,
    /// Rows trained on.
    pub n_train: Option<u64>,
    /// Rows held back.
    pub n_test: Option<u64>,
    /// Feature columns.
    pub n_features: Option<u64>,
    /// Solver iterations used.
    pub iterations: Option<u64>,
    /// Whether the solver converged before `max_iter`.
    pub converged: Option<bool>,
    /// Where the model is (`GET /v1/namespaces/{ns}/trainingruns/{task_id}/model` serves it).
    pub model_uri: Option<String>,
    /// The model file's sha256.
    pub model_sha256: Option<String>,
}

/// Inline data up to this many cells is written as CSV on the request's own task (tens of
/// microseconds); more goes to the blocking pool, off the threads that serve requests.
const INLINE_CSV_CELLS: usize = 16 * 1024;

pub(crate) async fn train(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<SeedTask>, ApiError> {
    let namespace = state.config.seed_namespace.clone();
    authorize(&state, &headers, "create", &namespace, None).await?;
    let request: SeedTrainRequest = from_value(body)?;
    let (features, labels) = validate(&request)?;
    let staging = staging(&state)?;
    let cells = features.len() * features.first().map_or(1, Vec::len);
    let csv = if cells <= INLINE_CSV_CELLS {
        to_csv(features, labels)
    } else {
        tokio::task::spawn_blocking({
            let features = features.to_vec();
            let labels = labels.to_vec();
            move || to_csv(&features, &labels)
        })
        .await
        .map_err(ApiError::internal)?
    };
    let data = staging
        .child("datasets")
        .child(&format!("{}.csv", uuid::Uuid::new_v4()));
    data.write(csv)
        .await
        .map_err(|e| storage_unavailable(&data, e))?;
    let name = format!("train-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let output = staging.child("models").child(&name);
    let mut run: TrainingRun = serde_json::from_value(json!({
        "apiVersion": kubetrain_api::API_VERSION,
        "kind": "TrainingRun",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {SEED_LABEL: "seed-api"},
        },
        "spec": {
            "algorithm": {"logisticRegression": {
                "maxIterations": request.max_iter,
                "l2Penalty": 1.0 / request.c,
            }},
            "dataset": {
                "uri": data.uri(),
                "format": "csv",
                "labelColumn": "label",
                "validationFraction": request.test_size,
                "seed": request.random_state,
            },
            "output": {"uri": format!("{}/", output.uri())},
        },
    }))
    .map_err(ApiError::internal)?;
    run.spec.storage.clone_from(&state.config.seed_storage);
    match state.backend.create(&namespace, run).await {
        Ok(created) => Ok(Json(SeedTask {
            task_id: created.metadata.name.unwrap_or(name),
        })),
        Err(error) => {
            let _ = data.delete().await;
            Err(error.into())
        }
    }
}

/// Check the request as the seed did; the features and labels to train on.
fn validate(request: &SeedTrainRequest) -> Result<(&[Vec<f64>], &[SeedLabel]), ApiError> {
    if request.dataset.is_some() {
        return Err(ApiError::invalid(
            "dataset",
            "dataset references are not supported by this server: upload the CSV with POST \
             /v1/namespaces/{namespace}/datasets and create a TrainingRun with its URI, or send \
             features and labels inline",
        ));
    }
    if !(request.test_size > 0.0 && request.test_size < 1.0) {
        return Err(ApiError::invalid(
            "test_size",
            "must be greater than 0 and less than 1",
        ));
    }
    if request.random_state < 0 {
        return Err(ApiError::invalid("random_state", "must be 0 or greater"));
    }
    if !(request.c > 0.0 && request.c.is_finite()) {
        return Err(ApiError::invalid("C", "must be a number greater than 0"));
    }
    if !(1..=1_000_000).contains(&request.max_iter) {
        return Err(ApiError::invalid(
            "max_iter",
            "must be between 1 and 1000000",
        ));
    }
    let features = match request.features.as_deref() {
        Some(features) if !features.is_empty() => features,
        _ => {
            return Err(ApiError::invalid(
                "features",
                "give features (a non-empty list of rows) and labels, or a dataset reference",
            ));
        }
    };
    let Some(labels) = request.labels.as_deref() else {
        return Err(ApiError::invalid(
            "labels",
            "give one label per row of features",
        ));
    };
    if labels.len() != features.len() {
        return Err(ApiError::invalid(
            "labels",
            format!(
                "features and labels differ in length ({} rows, {} labels)",
                features.len(),
                labels.len()
            ),
        ));
    }
    let width = features[0].len();
    if width == 0 {
        return Err(ApiError::invalid("features[0]", "rows must not be empty"));
    }
    if let Some(i) = features.iter().position(|row| row.len() != width) {
        return Err(ApiError::invalid(
            format!("features[{i}]"),
            format!(
                "has {} values, features[0] has {width}: features must be a rectangular matrix",
                features[i].len()
            ),
        ));
    }
    for (i, row) in features.iter().enumerate() {
        if let Some(j) = row.iter().position(|v| !(*v as f32).is_finite()) {
            return Err(ApiError::invalid(
                format!("features[{i}][{j}]"),
                "is outside the range of 32-bit floats the trainer reads",
            ));
        }
    }
    for (i, label) in labels.iter().enumerate() {
        if let SeedLabel::Text(text) = label
            && (text.trim().is_empty() || text.contains([',', '"', '\n', '\r']))
        {
            return Err(ApiError::invalid(
                format!("labels[{i}]"),
                "string labels must be non-empty and contain no comma, quote or line break",
            ));
        }
    }
    let first = label_text(&labels[0]);
    if labels.iter().all(|l| label_text(l) == first) {
        return Err(ApiError::invalid(
            "labels",
            "labels need at least two classes",
        ));
    }
    Ok((features, labels))
}

fn label_text(label: &SeedLabel) -> String {
    match label {
        SeedLabel::Integer(n) => n.to_string(),
        SeedLabel::Text(text) => text.clone(),
    }
}

/// The rows as CSV with the header `f0,...,f<p-1>,label`.
fn to_csv(features: &[Vec<f64>], labels: &[SeedLabel]) -> Bytes {
    use std::fmt::Write;
    let width = features.first().map_or(0, Vec::len);
    let mut text = String::with_capacity(features.len() * (width + 1) * 12);
    for j in 0..width {
        let _ = write!(text, "f{j},");
    }
    text.push_str("label\n");
    for (row, label) in features.iter().zip(labels) {
        for value in row {
            let _ = write!(text, "{value},");
        }
        text.push_str(&label_text(label));
        text.push('\n');
    }
    Bytes::from(text)
}

pub(crate) async fn status(
    State(state): State<AppState>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SeedStatus>, ApiError> {
    let namespace = state.config.seed_namespace.clone();
    authorize(&state, &headers, "get", &namespace, Some(&task_id)).await?;
    let unknown = || ApiError::not_found(format!("no task \"{task_id}\""));
    if check_name(&task_id).is_err() {
        return Err(unknown());
    }
    let run = match state.backend.get(&namespace, &task_id).await {
        Ok(run) => run,
        Err(BackendError::NotFound { .. }) => return Err(unknown()),
        Err(error) => return Err(error.into()),
    };
    Ok(Json(seed_status(task_id, &run)))
}

fn seed_status(task_id: String, run: &TrainingRun) -> SeedStatus {
    let status = run.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or(Phase::Pending);
    let word = match phase {
        Phase::Pending | Phase::Queued => "pending",
        Phase::Running => "running",
        Phase::Succeeded => "complete",
        Phase::Failed | Phase::Cancelled => "failure",
    };
    let result = (phase == Phase::Succeeded).then(|| {
        let metrics = status.metrics.clone().unwrap_or_default();
        let rows = status.dataset.as_ref().map(|d| d.rows);
        SeedResult {
            accuracy: metrics.accuracy,
            log_loss: metrics.log_loss,
            macro_f1: metrics.macro_f1,
            n_train: rows.map(|r| r.saturating_sub(metrics.validation_rows.unwrap_or(0))),
            n_test: metrics.validation_rows,
            n_features: status.dataset.as_ref().map(|d| d.features),
            iterations: metrics.iterations,
            converged: metrics.converged,
            model_uri: status.model.as_ref().map(|m| m.uri.clone()),
            model_sha256: status.model.as_ref().map(|m| m.sha256.clone()),
        }
    });
    let error = matches!(phase, Phase::Failed | Phase::Cancelled).then(|| {
        status
            .message
            .clone()
            .unwrap_or_else(|| format!("the run ended {}", phase.as_str()))
    });
    SeedStatus {
        task_id,
        status: word.to_owned(),
        state: phase.as_str().to_owned(),
        result,
        error,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn request(json: serde_json::Value) -> SeedTrainRequest {
        serde_json::from_value(json).unwrap()
    }

    fn field(json: serde_json::Value) -> String {
        validate(&request(json))
            .unwrap_err()
            .body()
            .field
            .clone()
            .unwrap()
    }

    #[test]
    fn validation_names_the_field() {
        let ok = json!({"features": [[1.0, 2.0], [3.0, 4.0]], "labels": [0, 1]});
        assert!(validate(&request(ok.clone())).is_ok());
        assert_eq!(field(json!({"dataset": "iris"})), "dataset");
        assert_eq!(field(json!({"labels": [0, 1]})), "features");
        assert_eq!(field(json!({"features": [[1.0]]})), "labels");
        assert_eq!(
            field(json!({"features": [[1.0], [2.0]], "labels": [0]})),
            "labels"
        );
        assert_eq!(
            field(json!({"features": [[1.0], [2.0, 3.0]], "labels": [0, 1]})),
            "features[1]"
        );
        assert_eq!(
            field(json!({"features": [[1.0], [2.0]], "labels": [1, 1]})),
            "labels"
        );
        assert_eq!(
            field(json!({"features": [[1.0], [2.0]], "labels": ["a", "b,c"]})),
            "labels[1]"
        );
        for (name, value) in [
            ("test_size", json!(1.0)),
            ("C", json!(0)),
            ("max_iter", json!(0)),
            ("random_state", json!(-1)),
        ] {
            let mut body = ok.clone();
            body[name] = value;
            assert_eq!(field(body), name);
        }
    }

    #[test]
    fn csv_has_a_header_and_one_line_per_row() {
        let csv = to_csv(
            &[vec![0.5, -1.0], vec![1e-3, 2.0]],
            &[SeedLabel::Integer(0), SeedLabel::Text("yes".into())],
        );
        assert_eq!(&csv[..], b"f0,f1,label\n0.5,-1,0\n0.001,2,yes\n");
    }
}
