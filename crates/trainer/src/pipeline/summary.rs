//! `summary.json`: what was trained, on what, how well, and how long it took.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kubetrain_api::{FeatureWeight, Progress, TrainerEvent, TrainerResults};
use serde::{Deserialize, Serialize};

use super::config::{AlgorithmConfig, TrainConfig, Validation};
use crate::fingerprint::Fingerprint;
use crate::history::LossPoint;
use crate::metrics::Evaluation;

/// How many of the weightiest features go into the run's status.
pub const TOP_FEATURES: usize = 5;

/// Version of the summary layout; bumped only on incompatible changes (2: `params` names its
/// `algorithm` and `task`, `metrics` are the task's, `featureWeights`).
pub const SUMMARY_VERSION: u32 = 2;

/// Where the model went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFile {
    /// URI of `model.json`.
    pub uri: String,
    /// SHA-256 of the model file, hex.
    pub sha256: String,
    /// Size of the model file.
    pub bytes: u64,
}

/// The training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingData {
    /// The file itself.
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
    /// Feature columns used, in model order.
    pub features: Vec<String>,
    /// Class labels, in model order (empty for regression).
    pub classes: Vec<String>,
    /// Rows the model was fit on.
    pub train_rows: u64,
    /// Rows held out for the metrics (0 when the metrics are on the training rows).
    pub validation_rows: u64,
}

/// The parameters of the run, as used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParamsSummary {
    /// `classification` or `regression`.
    pub task: kubetrain_api::Task,
    /// `algorithm` (`logisticRegression`, `linearRegression`) and its parameters.
    #[serde(flatten)]
    pub algorithm: AlgorithmConfig,
    /// Label column.
    pub label_column: String,
    /// Validation fraction, when validating on held-out rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_fraction: Option<f64>,
    /// Shuffle seed, when validating on held-out rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Validation file, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_data: Option<String>,
}

/// How the solver ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FitSummary {
    /// Solver iterations: L-BFGS iterations, coordinate-descent passes, 1 for an exact solve
    /// (absent for linfa, which does not report them).
    pub iterations: Option<u64>,
    /// The iteration budget in force (`maxIterations`, or 1 for an exact solve).
    pub iteration_limit: u64,
    /// Whether the solver met its tolerance (gradient norm, duality gap or settled
    /// coefficients; always for an exact solve).
    pub converged: bool,
    /// Why the solver stopped.
    pub stop_reason: String,
    /// Objective value at the solution, summed over the training rows: Σ logloss + α/2 ‖W‖²
    /// for logistic regression, the penalised half sum of squares for linear regression; for
    /// tree models the loss boosting minimises (log loss, or half the squared error) of the
    /// final model, summed.
    pub objective: f64,
    /// Passes over the training data.
    pub evaluations: Option<u64>,
}

/// Wall-clock seconds of each phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Reading the bytes from storage.
    pub read_seconds: f64,
    /// Parsing (and hashing) them.
    pub parse_seconds: f64,
    /// Scaling and fitting.
    pub fit_seconds: f64,
    /// From the start of `train` until the summary was serialized.
    pub total_seconds: f64,
    /// Peak resident memory of the process while fitting (the parsed data included), in
    /// bytes; absent where it cannot be measured (see `crate::memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_peak_memory_bytes: Option<u64>,
}

/// The content of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainSummary {
    /// [`SUMMARY_VERSION`].
    pub format_version: u32,
    /// The written model.
    pub model: ModelFile,
    /// Parameters used.
    pub params: ParamsSummary,
    /// The training data.
    pub dataset: TrainingData,
    /// The validation file, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_dataset: Option<Fingerprint>,
    /// `validation` (held-out rows or file) or `training` (fraction 0).
    pub evaluated_on: String,
    /// Evaluation on those rows.
    pub metrics: Evaluation,
    /// Every feature with its weight in the model, largest magnitude first (see
    /// `kubetrain_model::Model::feature_weights`).
    pub feature_weights: Vec<FeatureWeight>,
    /// How the fit ended.
    pub fit: FitSummary,
    /// Training (and validation) loss per iteration as progress reported it, at most
    /// [`crate::history::MAX_POINTS`] evenly spaced points ending at the last iteration.
    #[serde(default)]
    pub loss_history: Vec<LossPoint>,
    /// Timings.
    pub timings: Timings,
}

pub(super) struct Parts<'a> {
    pub config: &'a TrainConfig,
    pub model: ModelFile,
    pub dataset: TrainingData,
    pub validation_dataset: Option<Fingerprint>,
    pub metrics: Evaluation,
    pub feature_weights: Vec<FeatureWeight>,
    pub evaluated_on: &'static str,
    pub fit: FitSummary,
    pub loss_history: Vec<LossPoint>,
    pub timings: Timings,
}

impl TrainSummary {
    /// The objective at the solution per training row (e.g. mean log loss plus the L2 term):
    /// the quantity progress reports as `loss` while training.
    pub fn training_loss(&self) -> f64 {
        self.fit.objective / self.dataset.train_rows.max(1) as f64
    }

    /// The status fields the trainer owns after this successful attempt, observed at `now`.
    pub fn results(&self, now: Timestamp) -> TrainerResults {
        let total = self.fit.iteration_limit;
        let (score_name, score) = self.metrics.score();
        let mut metrics = kubetrain_api::Metrics {
            evaluated_on: Some(self.evaluated_on.clone()),
            score: Some(score),
            score_name: Some(score_name.to_owned()),
            validation_rows: Some(self.metrics.rows()),
            training_loss: Some(self.training_loss()),
            iterations: self.fit.iterations,
            converged: Some(self.fit.converged),
            ..Default::default()
        };
        match &self.metrics {
            Evaluation::Classification(m) => {
                metrics.accuracy = Some(m.accuracy);
                metrics.log_loss = Some(m.log_loss);
                metrics.macro_f1 = (!m.per_class.is_empty()).then(|| {
                    m.per_class.iter().map(|c| c.f1).sum::<f64>() / m.per_class.len() as f64
                });
            }
            Evaluation::Regression(m) => {
                metrics.rmse = Some(m.rmse);
                metrics.mae = Some(m.mae);
                metrics.r2 = Some(m.r2);
            }
        }
        TrainerResults {
            progress: Progress {
                iteration: self.fit.iterations.unwrap_or(total),
                total,
                percent: 100.0,
                loss: Some(self.training_loss()),
                validation_loss: None,
                estimated_remaining_seconds: Some(0.0),
                updated: Some(Time(now)),
            },
            metrics,
            model: kubetrain_api::ModelRef {
                uri: self.model.uri.clone(),
                sha256: self.model.sha256.clone(),
                bytes: self.model.bytes,
            },
            dataset: Some(kubetrain_api::DatasetSummary {
                rows: self.dataset.fingerprint.rows,
                features: self.dataset.features.len() as u64,
                classes: self.dataset.classes.len() as u64,
                sha256: self.dataset.fingerprint.sha256.clone(),
            }),
            top_features: self
                .feature_weights
                .iter()
                .take(TOP_FEATURES)
                .cloned()
                .collect(),
        }
    }

    /// The `completed` event of the trainer's JSON-lines protocol for this summary.
    pub fn completed_event(&self, now: Timestamp) -> TrainerEvent {
        TrainerEvent::Completed {
            results: Box::new(self.results(now)),
            summary: serde_json::to_value(self).unwrap_or_default(),
        }
    }

    pub(super) fn new(parts: Parts<'_>) -> TrainSummary {
        let config = parts.config;
        let (validation_fraction, seed, validation_data) = match &config.validation {
            Validation::Fraction { fraction, seed } => (Some(*fraction), Some(*seed), None),
            Validation::Data { uri } => (None, None, Some(uri.clone())),
        };
        TrainSummary {
            format_version: SUMMARY_VERSION,
            model: parts.model,
            params: ParamsSummary {
                task: config.task,
                algorithm: config.algorithm.clone(),
                label_column: config.label_column.clone(),
                validation_fraction,
                seed,
                validation_data,
            },
            dataset: parts.dataset,
            validation_dataset: parts.validation_dataset,
            evaluated_on: parts.evaluated_on.to_string(),
            metrics: parts.metrics,
            feature_weights: parts.feature_weights,
            fit: parts.fit,
            loss_history: parts.loss_history,
            timings: parts.timings,
        }
    }
}
