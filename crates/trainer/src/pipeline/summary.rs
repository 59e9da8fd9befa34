//! `summary.json`: what was trained, on what, how well, and how long it took.

use serde::{Deserialize, Serialize};

use super::config::{TrainConfig, Validation};
use crate::metrics::Metrics;
use crate::solver::{Fitted, SolverKind};

/// Version of the summary layout; bumped only on incompatible changes.
pub const SUMMARY_VERSION: u32 = 1;

/// Where the model went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRef {
    /// URI of `model.json`.
    pub uri: String,
    /// SHA-256 of the model file, hex.
    pub sha256: String,
    /// Size of the model file.
    pub bytes: u64,
}

/// Identity of an input file: what exactly was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fingerprint {
    /// The URI as given.
    pub uri: String,
    /// Data rows (header excluded).
    pub rows: u64,
    /// Bytes read.
    pub bytes: u64,
    /// SHA-256 of the bytes read, hex.
    pub sha256: String,
}

/// The training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSummary {
    /// The file itself.
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
    /// Feature columns used, in model order.
    pub features: Vec<String>,
    /// Class labels, in model order.
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
    /// `lbfgs` or `linfa`.
    pub solver: SolverKind,
    /// Iteration budget.
    pub max_iterations: u64,
    /// α (1/C).
    pub l2_penalty: f64,
    /// Per-row gradient-norm tolerance.
    pub tolerance: f64,
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
    /// L-BFGS iterations (absent for linfa, which does not report them).
    pub iterations: Option<u64>,
    /// Whether the gradient tolerance was reached.
    pub converged: bool,
    /// Why the solver stopped.
    pub stop_reason: String,
    /// Objective value at the solution: Σ logloss + α/2 ‖W‖².
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
}

/// The content of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainSummary {
    /// [`SUMMARY_VERSION`].
    pub format_version: u32,
    /// The written model.
    pub model: ModelRef,
    /// Parameters used.
    pub params: ParamsSummary,
    /// The training data.
    pub dataset: DatasetSummary,
    /// The validation file, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_dataset: Option<Fingerprint>,
    /// `validation` (held-out rows or file) or `training` (fraction 0).
    pub evaluated_on: String,
    /// Metrics on those rows.
    pub metrics: Metrics,
    /// How the fit ended.
    pub fit: FitSummary,
    /// Timings.
    pub timings: Timings,
}

pub(super) struct Parts<'a> {
    pub config: &'a TrainConfig,
    pub model: ModelRef,
    pub dataset: DatasetSummary,
    pub validation_dataset: Option<Fingerprint>,
    pub metrics: Metrics,
    pub evaluated_on: &'static str,
    pub fitted: &'a Fitted,
    pub timings: Timings,
}

impl TrainSummary {
    /// The objective at the solution per training row (mean log loss plus the L2 term): the
    /// quantity progress reports as `loss` while training.
    pub fn training_loss(&self) -> f64 {
        self.fit.objective / self.dataset.train_rows.max(1) as f64
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
                solver: config.solver,
                max_iterations: config.params.max_iterations,
                l2_penalty: config.params.l2_penalty,
                tolerance: config.params.tolerance,
                label_column: config.label_column.clone(),
                validation_fraction,
                seed,
                validation_data,
            },
            dataset: parts.dataset,
            validation_dataset: parts.validation_dataset,
            evaluated_on: parts.evaluated_on.to_string(),
            metrics: parts.metrics,
            fit: FitSummary {
                iterations: parts.fitted.iterations,
                converged: parts.fitted.converged,
                stop_reason: parts.fitted.stop_reason.clone(),
                objective: parts.fitted.objective,
                evaluations: parts.fitted.evaluations,
            },
            timings: parts.timings,
        }
    }
}
