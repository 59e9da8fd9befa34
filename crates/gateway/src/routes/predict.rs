//! `POST .../trainingruns/{name}/predict`: predict rows with the run's model.
//!
//! Request: `{"rows": [[f64, ...], ...]}`, each row the raw (unscaled) values of the model's
//! `featureNames`, in that order (the columns the run was trained on, label excluded; see
//! `GET .../model`). Values are rounded to 32-bit floats, as the trainer reads CSV.
//!
//! Answer of a classifier: `{"classes": [label per row], "probabilities": [[p per class] per
//! row], "classLabels": [labels in probability-column order]}`; labels are strings, as in the
//! model file. Answer of a regressor: `{"values": [number per row]}`. The numbers are exactly
//! those of `kubetrain predict` on the same rows.
//!
//! # Guarantees
//! The model comes from [`crate::models::ModelCache`]: always the one the run reported.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use kubetrain_model::{Model, Prediction, argmax_rows};
use ndarray::{Array2, ShapeBuilder};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::run_with_model;
use crate::state::AppState;

/// Rows to classify.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// One row per example: the raw values of the model's `featureNames`, in that order.
    #[schemars(length(min = 1))]
    pub rows: Vec<Vec<f64>>,
}

/// Predictions for the rows of a [`PredictRequest`], in the same order: `classes`,
/// `probabilities` and `classLabels` from a classifier, `values` from a regressor.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictResponse {
    /// A classifier's most probable class label of each row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// A classifier's class probabilities of each row, columns in `classLabels` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Vec<Vec<f64>>>,
    /// A classifier's class labels: the order of the probability columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_labels: Option<Vec<String>>,
    /// A regressor's predicted value of each row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f64>>,
}

pub(crate) async fn predict(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PredictRequest>,
) -> Result<Json<PredictResponse>, ApiError> {
    let (run, reference) = run_with_model(&state, &headers, &namespace, &name).await?;
    let model = match &run.spec.custom {
        None => state.models.get(&reference).await?,
        // A custom program's model is in its own format (a pickle, a state dict): read it
        // only when it could be a kubetrain model file, and answer what it is otherwise.
        Some(_) if !reference.uri.ends_with(".json") => {
            return Err(custom_model(&name, &reference.uri, None));
        }
        Some(_) => state
            .models
            .get(&reference)
            .await
            .map_err(|error| match error.status() {
                axum::http::StatusCode::BAD_GATEWAY => {
                    custom_model(&name, &reference.uri, Some(&error.body().message))
                }
                _ => error,
            })?,
    };
    let answer = tokio::task::spawn_blocking(move || predict_rows(&model, &request.rows))
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(answer))
}

/// 409: a custom run's model is not one kubetrain can serve.
fn custom_model(name: &str, uri: &str, why: Option<&str>) -> ApiError {
    let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
    ApiError::conflict(format!(
        "run \"{name}\" trained its own code (spec.custom): its model {uri} is in the \
         program's own format, which kubetrain does not serve{why}; serve it with your own \
         stack (download it from GET .../trainingruns/{name}/model), or have the program write a kubetrain \
         model file named model.json"
    ))
}

/// Check the rows against the model and predict them as `kubetrain predict` does.
pub(crate) fn predict_rows(model: &Model, rows: &[Vec<f64>]) -> Result<PredictResponse, ApiError> {
    let width = model.feature_names().len();
    if rows.is_empty() {
        return Err(ApiError::invalid("rows", "give at least one row"));
    }
    // Column-major, the layout predict_proba is fastest on (and the one the CSV reader makes).
    let mut columns = vec![0f32; rows.len() * width];
    for (i, row) in rows.iter().enumerate() {
        if row.len() != width {
            return Err(ApiError::invalid(
                format!("rows[{i}]"),
                format!(
                    "has {} values; the model expects {width} (its featureNames: {})",
                    row.len(),
                    feature_list(model.feature_names())
                ),
            ));
        }
        for (j, &value) in row.iter().enumerate() {
            let narrow = value as f32;
            if !narrow.is_finite() {
                return Err(ApiError::invalid(
                    format!("rows[{i}][{j}]"),
                    format!("{value} is outside the range of 32-bit floats the model reads"),
                ));
            }
            columns[j * rows.len() + i] = narrow;
        }
    }
    let x = Array2::from_shape_vec((rows.len(), width).f(), columns).map_err(ApiError::internal)?;
    Ok(match model.predict(x.view()) {
        Prediction::Probabilities(probabilities) => {
            let labels = model.classes().unwrap_or_default();
            let predicted = argmax_rows(&probabilities);
            PredictResponse {
                classes: Some(predicted.iter().map(|&k| labels[k].clone()).collect()),
                probabilities: Some(
                    probabilities
                        .rows()
                        .into_iter()
                        .map(|r| r.to_vec())
                        .collect(),
                ),
                class_labels: Some(labels.to_vec()),
                values: None,
            }
        }
        Prediction::Values(values) => PredictResponse {
            classes: None,
            probabilities: None,
            class_labels: None,
            values: Some(values.to_vec()),
        },
    })
}

fn feature_list(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(", ... ({} in all)", names.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::models::tests::model;

    #[test]
    fn rows_are_checked_and_classified() {
        let answer = predict_rows(&model(), &[vec![1.0, 0.0], vec![-9.0, 5.0]]).unwrap();
        assert_eq!(answer.class_labels.unwrap(), ["no", "yes"]);
        assert_eq!(answer.classes.unwrap(), ["yes", "no"]);
        assert_eq!(answer.values, None);
        let z: f64 = 0.5;
        let probabilities = answer.probabilities.unwrap();
        assert!((probabilities[0][1] - 1.0 / (1.0 + (-z).exp())).abs() < 1e-12);
        let error = predict_rows(&model(), &[vec![1.0, 0.0], vec![1.0]]).unwrap_err();
        assert_eq!(error.body().field.as_deref(), Some("rows[1]"));
        assert!(error.body().message.contains("expects 2"), "{error}");
        let error = predict_rows(&model(), &[]).unwrap_err();
        assert_eq!(error.body().field.as_deref(), Some("rows"));
        let error = predict_rows(&model(), &[vec![1e300, 0.0]]).unwrap_err();
        assert_eq!(error.body().field.as_deref(), Some("rows[0][0]"));
    }

    #[test]
    fn regressors_answer_values() {
        let regressor: Model = serde_json::from_value(serde_json::json!({
            "format": "kubetrain.dev/linear-regression",
            "formatVersion": 1,
            "labelColumn": "target",
            "featureNames": ["a", "b"],
            "scaler": {"mean": [1.0, 0.0], "scale": [2.0, 1.0]},
            "coefficients": [2.0, -1.0],
            "intercept": 10.0
        }))
        .unwrap();
        let answer = predict_rows(&regressor, &[vec![1.0, 0.0], vec![3.0, 1.0]]).unwrap();
        assert_eq!(answer.values.unwrap(), [10.0, 11.0]);
        assert_eq!(answer.classes, None);
        let body =
            serde_json::to_value(predict_rows(&regressor, &[vec![1.0, 0.0]]).unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"values": [10.0]}));
    }
}
