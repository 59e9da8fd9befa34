//! What a run is asked to do, and the checks that can be made before touching any data.

use kubetrain_api::Task;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::least_squares::LinearParams;
use crate::solver::{FitParams, SolverKind};

/// The algorithm and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "camelCase")]
pub enum AlgorithmConfig {
    /// Logistic regression (classification).
    #[serde(rename_all = "camelCase")]
    LogisticRegression {
        /// Which solver.
        solver: SolverKind,
        /// Solver hyperparameters.
        #[serde(flatten)]
        params: FitParams,
    },
    /// Penalised least squares (regression).
    LinearRegression(LinearParams),
}

impl AlgorithmConfig {
    /// The task the algorithm can do.
    pub fn task(&self) -> Task {
        match self {
            AlgorithmConfig::LogisticRegression { .. } => Task::Classification,
            AlgorithmConfig::LinearRegression(_) => Task::Regression,
        }
    }

    /// The name as the command line writes it (`--algorithm`).
    pub fn flag_name(&self) -> &'static str {
        match self {
            AlgorithmConfig::LogisticRegression { .. } => "logistic-regression",
            AlgorithmConfig::LinearRegression(_) => "linear-regression",
        }
    }
}

/// How the validation rows are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Validation {
    /// Hold out `fraction` (in [0, 1)) of the rows, chosen by `seed`; 0 trains on everything
    /// and reports metrics on the training rows.
    Fraction {
        /// Share of rows held out.
        fraction: f64,
        /// Seed of the shuffle.
        seed: u64,
    },
    /// Train on all of the data and evaluate on a second file with the same columns.
    Data {
        /// Where the validation CSV is.
        uri: String,
    },
}

/// Everything `train` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Training CSV (header row) URI.
    pub data: String,
    /// Name of the label column.
    pub label_column: String,
    /// Feature columns; `None` = every column except the label.
    pub feature_columns: Option<Vec<String>>,
    /// Validation rows.
    pub validation: Validation,
    /// Output prefix: `<output>/model.json` and `<output>/summary.json`.
    pub output: String,
    /// What the model predicts: a class or a number.
    pub task: Task,
    /// The algorithm and its parameters.
    pub algorithm: AlgorithmConfig,
    /// Worker threads; `None` = one per core (or `RAYON_NUM_THREADS`).
    pub threads: Option<usize>,
    /// Directory of parsed datasets kept between runs (see [`crate::cache`]); `None` reads
    /// and parses the data every time.
    pub dataset_cache: Option<std::path::PathBuf>,
}

impl TrainConfig {
    /// Reject values no run could use, naming the flag and the valid range.
    pub fn validate(&self) -> Result<(), TrainError> {
        let invalid = |field: &'static str, message: String| {
            Err(TrainError::InvalidParameter { field, message })
        };
        if self.label_column.trim().is_empty() {
            return invalid("--label-column", "must name a column of the data".into());
        }
        if let Some(columns) = &self.feature_columns {
            if columns.is_empty() || columns.iter().any(|c| c.trim().is_empty()) {
                return invalid(
                    "--feature-columns",
                    "must be a comma-separated list of column names".into(),
                );
            }
            let mut sorted: Vec<&String> = columns.iter().collect();
            sorted.sort();
            if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return invalid(
                    "--feature-columns",
                    format!("'{}' is listed twice", pair[0]),
                );
            }
        }
        if let Validation::Fraction { fraction, .. } = self.validation
            && !(fraction.is_finite() && (0.0..1.0).contains(&fraction))
        {
            return invalid(
                "--validation-fraction",
                format!("must be in [0, 1), got {fraction}"),
            );
        }
        if self.algorithm.task() != self.task {
            return invalid(
                "--task",
                format!(
                    "--algorithm {} does {}; give --task {} (or another algorithm)",
                    self.algorithm.flag_name(),
                    self.algorithm.task().as_str(),
                    self.algorithm.task().as_str()
                ),
            );
        }
        let (max_iterations, l2_penalty, tolerance) = match &self.algorithm {
            AlgorithmConfig::LogisticRegression { params, .. } => {
                (params.max_iterations, params.l2_penalty, params.tolerance)
            }
            AlgorithmConfig::LinearRegression(params) => {
                if !(params.l1_ratio.is_finite() && (0.0..=1.0).contains(&params.l1_ratio)) {
                    return invalid(
                        "--l1-ratio",
                        format!("must be in [0, 1], got {}", params.l1_ratio),
                    );
                }
                (params.max_iterations, params.l2_penalty, params.tolerance)
            }
        };
        if max_iterations == 0 {
            return invalid("--max-iterations", "must be at least 1".into());
        }
        if !(l2_penalty.is_finite() && l2_penalty >= 0.0) {
            return invalid(
                "--l2-penalty",
                format!("must be a finite number >= 0, got {l2_penalty}"),
            );
        }
        if !(tolerance.is_finite() && tolerance > 0.0) {
            return invalid(
                "--tolerance",
                format!("must be a finite number > 0, got {tolerance}"),
            );
        }
        if self.threads == Some(0) {
            return invalid("--threads", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Everything `predict` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictConfig {
    /// URI of a `model.json`.
    pub model: String,
    /// CSV with (at least) the model's feature columns.
    pub data: String,
    /// Label column for scoring; `None` = the model's label column, when the data has it.
    pub label_column: Option<String>,
    /// Worker threads; `None` = one per core.
    pub threads: Option<usize>,
}
