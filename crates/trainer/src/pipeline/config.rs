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
    /// Gradient-boosted trees (either task); parameters as `spec.algorithm.gradientBoostedTrees`
    /// (and nested under that key in `summary.json`, where their `seed` would clash with the
    /// split's).
    #[serde(with = "nested::gradient_boosted_trees")]
    GradientBoostedTrees(kubetrain_api::GradientBoostedTrees),
    /// A random forest (either task); parameters as `spec.algorithm.randomForest` (nested in
    /// `summary.json` likewise).
    #[serde(with = "nested::random_forest")]
    RandomForest(kubetrain_api::RandomForest),
}

/// (De)serialize a variant's parameters under one key named like the spec member.
mod nested {
    macro_rules! under_key {
        ($module:ident, $key:literal, $type:ty) => {
            pub mod $module {
                use serde::{Deserialize, Deserializer, Serialize, Serializer};

                #[derive(Serialize)]
                struct Out<'a> {
                    #[serde(rename = $key)]
                    params: &'a $type,
                }

                #[derive(Deserialize)]
                struct In {
                    #[serde(rename = $key)]
                    params: $type,
                }

                pub fn serialize<S: Serializer>(params: &$type, s: S) -> Result<S::Ok, S::Error> {
                    Out { params }.serialize(s)
                }

                pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$type, D::Error> {
                    In::deserialize(d).map(|i| i.params)
                }
            }
        };
    }
    under_key!(
        gradient_boosted_trees,
        "gradientBoostedTrees",
        kubetrain_api::GradientBoostedTrees
    );
    under_key!(random_forest, "randomForest", kubetrain_api::RandomForest);
}

impl AlgorithmConfig {
    /// The one task the algorithm can do; `None` when it does both.
    pub fn only_task(&self) -> Option<Task> {
        match self {
            AlgorithmConfig::LogisticRegression { .. } => Some(Task::Classification),
            AlgorithmConfig::LinearRegression(_) => Some(Task::Regression),
            AlgorithmConfig::GradientBoostedTrees(_) | AlgorithmConfig::RandomForest(_) => None,
        }
    }

    /// The name as the command line writes it (`--algorithm`).
    pub fn flag_name(&self) -> &'static str {
        match self {
            AlgorithmConfig::LogisticRegression { .. } => "logistic-regression",
            AlgorithmConfig::LinearRegression(_) => "linear-regression",
            AlgorithmConfig::GradientBoostedTrees(_) => "gradient-boosted-trees",
            AlgorithmConfig::RandomForest(_) => "random-forest",
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
        if let Some(task) = self.algorithm.only_task()
            && task != self.task
        {
            return invalid(
                "--task",
                format!(
                    "--algorithm {} does {}; give --task {} (or another algorithm)",
                    self.algorithm.flag_name(),
                    task.as_str(),
                    task.as_str()
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
            AlgorithmConfig::GradientBoostedTrees(params) => {
                check_boosting(params)?;
                (u64::from(params.max_iterations), params.l2_penalty, 1.0)
            }
            AlgorithmConfig::RandomForest(params) => {
                check_forest(params, self.task)?;
                (u64::from(params.num_trees), 0.0, 1.0)
            }
        };
        if max_iterations == 0 {
            let field = match self.algorithm {
                AlgorithmConfig::RandomForest(_) => "--num-trees",
                _ => "--max-iterations",
            };
            return invalid(field, "must be at least 1".into());
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

/// The bounds `spec.algorithm.gradientBoostedTrees` has in the CRD schema, for runs that do
/// not pass through the API server.
fn check_boosting(p: &kubetrain_api::GradientBoostedTrees) -> Result<(), TrainError> {
    let fraction = |field: &'static str, value: f64| {
        if value.is_finite() && value > 0.0 && value <= 1.0 {
            Ok(())
        } else {
            Err(TrainError::InvalidParameter {
                field,
                message: format!("must be in (0, 1], got {value}"),
            })
        }
    };
    fraction("--learning-rate", p.learning_rate)?;
    fraction("--subsample", p.subsample)?;
    fraction("--feature-fraction", p.feature_fraction)?;
    check_count("--max-leaves", p.max_leaves, 2, 131_072)?;
    check_count("--max-bins", p.max_bins, 2, 255)?;
    check_count("--min-samples-leaf", p.min_samples_leaf, 1, u32::MAX)?;
    if let Some(depth) = p.max_depth {
        check_count("--max-depth", depth, 1, 64)?;
    }
    if let Some(rounds) = p.early_stopping_rounds {
        check_count("--early-stopping-rounds", rounds, 1, u32::MAX)?;
    }
    check_seed(p.seed)
}

/// The bounds `spec.algorithm.randomForest` has in the CRD schema.
fn check_forest(p: &kubetrain_api::RandomForest, task: Task) -> Result<(), TrainError> {
    check_count("--min-samples-leaf", p.min_samples_leaf, 1, u32::MAX)?;
    if let Some(depth) = p.max_depth {
        check_count("--max-depth", depth, 1, 64)?;
    }
    kubetrain_api::algorithm::max_features_count(p.max_features.as_deref(), task, 1).map_err(
        |message| TrainError::InvalidParameter {
            field: "--max-features",
            message,
        },
    )?;
    check_seed(p.seed)
}

fn check_count(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), TrainError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else if max == u32::MAX {
        Err(TrainError::InvalidParameter {
            field,
            message: format!("must be at least {min}, got {value}"),
        })
    } else {
        Err(TrainError::InvalidParameter {
            field,
            message: format!("must be in [{min}, {max}], got {value}"),
        })
    }
}

fn check_seed(seed: i64) -> Result<(), TrainError> {
    if seed < 0 {
        return Err(TrainError::InvalidParameter {
            field: "--algorithm-seed",
            message: format!("must be at least 0, got {seed}"),
        });
    }
    Ok(())
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
