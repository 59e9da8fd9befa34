//! `TrainingRun.status`: what happened, written by the controller (phase, conditions, job) and by
//! the trainer (progress and results), each with server-side apply under its own field manager.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition types of a TrainingRun (metav1.Condition style: status True, False or Unknown).
pub mod condition {
    /// The spec passed validation and the run was turned into a Job.
    pub const ACCEPTED: &str = "Accepted";
    /// The run is suspended (by `spec.suspend` or a queue such as Kueue).
    pub const SUSPENDED: &str = "Suspended";
    /// A training container is running.
    pub const RUNNING: &str = "Running";
    /// Training finished successfully. Terminal.
    pub const COMPLETE: &str = "Complete";
    /// The run failed or was cancelled; the reason says which. Terminal.
    pub const FAILED: &str = "Failed";
    /// The model and its summary are in storage and `status.model` points at them.
    pub const MODEL_READY: &str = "ModelReady";
}

/// The observed state of a TrainingRun.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrainingRunStatus {
    /// Where the run is in its life, derived from the conditions: Pending, Queued, Running,
    /// Succeeded, Failed or Cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// The latest observations of the run's state: Accepted, Suspended, Running, Complete,
    /// Failed and ModelReady.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The algorithm being trained, e.g. `logisticRegression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,

    /// Name of the Job that trains this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,

    /// When training first started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,

    /// When the run finished (Succeeded, Failed or Cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,

    /// Training attempts started so far, retries included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,

    /// Progress of the current attempt, written by the trainer (first after 1 s of fitting,
    /// then at most every 2 s; a finished attempt shows its final progress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,

    /// Quality of the model on the validation data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,

    /// The trained model in storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,

    /// What the trainer read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetSummary>,

    /// The features the model leans on most, largest first (at most five; `summary.json` has
    /// them all): coefficients of the standardized features for linear models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub top_features: Vec<FeatureWeight>,

    /// A human-readable explanation of the phase: why the run is waiting or why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// The trainer's own report of its last failed attempt (e.g. which row of the data is
    /// not a number). Written by the trainer; `message` repeats it when it decides the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainer_error: Option<TrainerError>,
}

/// A training attempt's failure, as the trainer reported it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrainerError {
    /// `BadInput` (retrying cannot help), `Transient` (a retry may pass) or `Internal`.
    pub reason: String,
    /// What went wrong, naming the field, row or column.
    pub message: String,
    /// The exit code the trainer ended with (see the trainer's documented exit codes).
    pub exit_code: i32,
}

/// Phase of a TrainingRun: Pending (accepted, waiting to start), Queued (suspended or waiting
/// in a queue), Running, Succeeded (the model is stored), Failed (`message` says why) or
/// Cancelled (stopped by `spec.cancel`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // see below
pub enum Phase {
    // No doc comments on variants: schemars would emit a `oneOf`, which is not structural;
    // the enum's own doc says what each means.
    Pending,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl Phase {
    /// Every phase, in the order a run can pass through them.
    pub const ALL: [Phase; 6] = [
        Phase::Pending,
        Phase::Queued,
        Phase::Running,
        Phase::Succeeded,
        Phase::Failed,
        Phase::Cancelled,
    ];

    /// The phase named `text` in any case (`succeeded`, `FAILED`), as a command line takes it.
    ///
    /// # Errors
    /// [`UnknownPhase`] naming the valid phases.
    pub fn parse_ignore_case(text: &str) -> Result<Phase, UnknownPhase> {
        Phase::ALL
            .into_iter()
            .find(|phase| phase.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownPhase(text.to_owned()))
    }

    /// Succeeded, Failed and Cancelled are final: nothing changes the run afterwards.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The name as written in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Queued => "Queued",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
        }
    }
}

/// Progress of the solver, updated at most every few seconds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Solver iterations done.
    pub iteration: u64,
    /// Upper bound on iterations (`maxIterations`; 1 for an exact solve); the solver may
    /// converge earlier.
    pub total: u64,
    /// `iteration / total` in percent; 100 once training finished.
    pub percent: f64,
    /// Training loss at the last iteration: the mean loss (log loss, or half the squared
    /// error for regression) plus the penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// The same loss on the validation rows at the last iteration, for fits that watch it
    /// (boosted trees and forests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_loss: Option<f64>,
    /// Estimate of the seconds left at the current speed, assuming all iterations run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_remaining_seconds: Option<f64>,
    /// When this progress was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<Time>,
}

/// Quality of the trained model on the validation data.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// The rows the metrics describe: `validation`, or `training` when
    /// `validationFraction` is 0 and every row was trained on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_on: Option<String>,
    /// The primary score of the task: `accuracy` for classification, `r2` for regression
    /// (named by `scoreName`); higher is better.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Which metric `score` is: `accuracy` or `r2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_name: Option<String>,
    /// Fraction of validation rows classified correctly, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Mean log loss (cross-entropy) on the validation rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_loss: Option<f64>,
    /// Unweighted mean of the per-class F1 scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// Regression: root mean squared error, in the target's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// Regression: mean absolute error, in the target's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    /// Regression: coefficient of determination, `1 − Σ(y − ŷ)² / Σ(y − ȳ)²` (scikit-learn's
    /// `r2_score`); 1 is perfect, 0 is no better than predicting the mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2: Option<f64>,
    /// Rows the metrics were computed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_rows: Option<u64>,
    /// Training loss at the solution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_loss: Option<f64>,
    /// Solver iterations used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    /// Whether the solver met its tolerance before `maxIterations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converged: Option<bool>,
    /// Every metric a custom program (`spec.custom`) reported, by the name it used (at most
    /// 64). The ones the built-in trainers also report fill their own fields too.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub reported: std::collections::BTreeMap<String, f64>,
}

/// The trained model in object storage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModelRef {
    /// Where the model is, e.g. `s3://models/churn/model.json`.
    pub uri: String,
    /// SHA-256 of the model file, lowercase hex.
    pub sha256: String,
    /// Size of the model file in bytes.
    pub bytes: u64,
}

/// How much a model leans on one feature.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeatureWeight {
    /// The feature column.
    pub name: String,
    /// Its weight: for linear models the coefficient of the standardized feature (the change
    /// of the prediction, or of the log-odds, per standard deviation; for a multinomial model
    /// the norm of its coefficients over the classes). Features are ranked by its magnitude.
    pub weight: f64,
}

/// What the trainer read.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSummary {
    /// Data rows read (header excluded).
    pub rows: u64,
    /// Feature columns used.
    pub features: u64,
    /// Distinct class labels (0 for regression).
    pub classes: u64,
    /// SHA-256 of the bytes read, lowercase hex: the data's fingerprint.
    pub sha256: String,
}

/// A phase name that is none of [`Phase::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown phase {0:?}; expected one of Pending, Queued, Running, Succeeded, Failed, Cancelled"
)]
pub struct UnknownPhase(pub String);

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Phase {
    type Err = UnknownPhase;

    /// The phase named exactly as the status writes it (`Succeeded`).
    fn from_str(text: &str) -> Result<Phase, UnknownPhase> {
        Phase::ALL
            .into_iter()
            .find(|phase| phase.as_str() == text)
            .ok_or_else(|| UnknownPhase(text.to_owned()))
    }
}

#[cfg(test)]
mod phase_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn phases_read_back_as_they_are_written() {
        for phase in Phase::ALL {
            assert_eq!(phase.to_string().parse::<Phase>().unwrap(), phase);
            assert_eq!(
                serde_json::to_value(phase).unwrap(),
                serde_json::Value::String(phase.to_string())
            );
            let lower = phase.to_string().to_lowercase();
            assert_eq!(Phase::parse_ignore_case(&lower).unwrap(), phase);
            assert!(lower.parse::<Phase>().is_err());
        }
        let error = "done".parse::<Phase>().unwrap_err();
        assert!(error.to_string().contains("Pending, Queued"), "{error}");
    }
}
