//! `kubetrain train` and `kubetrain predict`: flags (and `KUBETRAIN_*` environment variables,
//! which is how the Kubernetes Job passes them) wired to `kubetrain_trainer`.
//!
//! Exit codes follow `kubetrain_api::exit_code`: 0 success, 65 bad input (retrying cannot
//! help), 75 transient (storage unreachable; retry), 1 internal, 2 usage. Errors are printed
//! to stderr as `error: <what is wrong and what would be valid>`.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use kubetrain_api::exit_code;
use kubetrain_model::Prediction;
use kubetrain_trainer::metrics::Evaluation;
use kubetrain_trainer::progress::{JsonLines, NoProgress, Text};
use kubetrain_trainer::{
    AlgorithmConfig, FitParams, LinearParams, PredictConfig, ProgressSink, SolverKind, TrainConfig,
    TrainError, TrainSummary, Validation,
};

use kubetrain_api::algorithm::{
    DEFAULT_BOOSTING_ITERATIONS, DEFAULT_BOOSTING_MIN_SAMPLES_LEAF,
    DEFAULT_FOREST_MIN_SAMPLES_LEAF, DEFAULT_L2_PENALTY, DEFAULT_LEARNING_RATE,
    DEFAULT_LINEAR_MAX_ITERATIONS, DEFAULT_MAX_BINS, DEFAULT_MAX_ITERATIONS, DEFAULT_MAX_LEAVES,
    DEFAULT_NUM_TREES, DEFAULT_TOLERANCE,
};
use kubetrain_api::spec::{DEFAULT_LABEL_COLUMN, DEFAULT_VALIDATION_FRACTION};
use kubetrain_api::{GradientBoostedTrees, RandomForest, Task};

/// Train a model on a CSV file (logistic or linear regression, gradient-boosted trees or a
/// random forest) and write `model.json` and `summary.json` under `--out`.
///
/// Flags of one algorithm given with another are refused, not ignored. The flags several
/// algorithms share (--max-iterations, --l2-penalty, --max-depth, --min-samples-leaf) default
/// per algorithm, as their spec fields do.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: CSV with a header row, as a path, file:///path or s3://bucket/key.
    #[arg(long, env = "KUBETRAIN_DATA", value_name = "URI")]
    data: String,
    /// Column to predict: class labels (integers or strings), or numbers with
    /// --task regression.
    #[arg(
        long,
        env = "KUBETRAIN_LABEL_COLUMN",
        value_name = "NAME",
        default_value = DEFAULT_LABEL_COLUMN
    )]
    label_column: String,
    /// Output prefix: the model goes to <URI>/model.json, the summary to <URI>/summary.json.
    #[arg(long, env = "KUBETRAIN_OUT", value_name = "URI")]
    out: String,
    /// Fraction of rows held back for the metrics, in [0, 1); 0 trains on every row.
    /// Defaults to 0.2 unless --validation-data is given.
    #[arg(long, env = "KUBETRAIN_VALIDATION_FRACTION", value_name = "F")]
    validation_fraction: Option<f64>,
    /// A separate validation CSV with the same columns, instead of a random split.
    #[arg(long, env = "KUBETRAIN_VALIDATION_DATA", value_name = "URI")]
    validation_data: Option<String>,
    /// Seed of the validation split (spec.dataset.seed): the same data and seed give the
    /// same split. The tree algorithms' own seed is --algorithm-seed.
    #[arg(long, env = "KUBETRAIN_SEED", value_name = "N", default_value_t = 0)]
    seed: u64,
    /// The algorithm (spec.algorithm): logistic-regression (classification),
    /// linear-regression (regression), gradient-boosted-trees or random-forest (either).
    #[arg(
        long,
        env = "KUBETRAIN_ALGORITHM",
        value_enum,
        default_value_t = AlgorithmArg::LogisticRegression
    )]
    algorithm: AlgorithmArg,
    /// What the model predicts (spec.task): classification or regression [default: the
    /// one the algorithm does; classification for the tree algorithms, which do both].
    #[arg(long, env = "KUBETRAIN_TASK", value_enum)]
    task: Option<TaskArg>,
    /// Logistic, linear regression and gradient-boosted trees: upper bound on solver
    /// iterations, or boosting iterations (trees per class) [default: 100 for logistic
    /// regression and gradient-boosted trees, 1000 coordinate-descent passes for linear
    /// regression].
    #[arg(long, env = "KUBETRAIN_MAX_ITERATIONS", value_name = "N")]
    max_iterations: Option<u64>,
    /// Logistic, linear regression and gradient-boosted trees: strength of the L2 penalty
    /// (logistic: scikit-learn's 1/C; linear: Ridge's alpha, on the coefficients, not the
    /// intercept; boosted trees: on the leaf values, LightGBM's lambda_l2) [default: 1.0 for
    /// logistic and linear regression, 0 for gradient-boosted trees].
    #[arg(long, env = "KUBETRAIN_L2_PENALTY", value_name = "X")]
    l2_penalty: Option<f64>,
    /// Logistic and linear regression: stop when the gradient norm divided by the number of
    /// training rows is below this [default: 1e-4].
    #[arg(long, env = "KUBETRAIN_TOLERANCE", value_name = "X")]
    tolerance: Option<f64>,
    /// Linear regression: the L1 share of the penalty, in [0, 1] (0 ridge, 1 lasso)
    /// [default: 0].
    #[arg(long, env = "KUBETRAIN_L1_RATIO", value_name = "X")]
    l1_ratio: Option<f64>,
    /// Linear regression: fit an intercept (true or false) [default: true].
    #[arg(
        long,
        env = "KUBETRAIN_FIT_INTERCEPT",
        value_name = "BOOL",
        action = clap::ArgAction::Set
    )]
    fit_intercept: Option<bool>,
    /// Gradient-boosted trees: shrinkage of each tree's output, in (0, 1] [default: 0.1].
    #[arg(long, env = "KUBETRAIN_LEARNING_RATE", value_name = "X")]
    learning_rate: Option<f64>,
    /// Gradient-boosted trees: most leaves per tree, 2 to 131072 [default: 31].
    #[arg(long, env = "KUBETRAIN_MAX_LEAVES", value_name = "N")]
    max_leaves: Option<u32>,
    /// Gradient-boosted trees and random forest: most levels below the root, 1 to 64
    /// [default: no limit].
    #[arg(long, env = "KUBETRAIN_MAX_DEPTH", value_name = "N")]
    max_depth: Option<u32>,
    /// Gradient-boosted trees and random forest: fewest training rows in a leaf [default:
    /// 20 for gradient-boosted trees, 1 for random forest].
    #[arg(long, env = "KUBETRAIN_MIN_SAMPLES_LEAF", value_name = "N")]
    min_samples_leaf: Option<u32>,
    /// Gradient-boosted trees: most bins per feature, 2 to 255 [default: 255].
    #[arg(long, env = "KUBETRAIN_MAX_BINS", value_name = "N")]
    max_bins: Option<u32>,
    /// Gradient-boosted trees: fraction of the rows each iteration's trees are fit on, in
    /// (0, 1] [default: 1].
    #[arg(long, env = "KUBETRAIN_SUBSAMPLE", value_name = "X")]
    subsample: Option<f64>,
    /// Gradient-boosted trees: fraction of the features each tree may split on, in (0, 1]
    /// [default: 1].
    #[arg(long, env = "KUBETRAIN_FEATURE_FRACTION", value_name = "X")]
    feature_fraction: Option<f64>,
    /// Gradient-boosted trees: stop when the validation loss has not improved for N
    /// iterations and keep the best iteration's model [default: no early stopping].
    #[arg(long, env = "KUBETRAIN_EARLY_STOPPING_ROUNDS", value_name = "N")]
    early_stopping_rounds: Option<u32>,
    /// Random forest: trees in the forest [default: 100].
    #[arg(long, env = "KUBETRAIN_NUM_TREES", value_name = "N")]
    num_trees: Option<u32>,
    /// Random forest: features drawn at each split: sqrt, log2, all or a fraction such as
    /// 0.33 [default: sqrt for classification, all for regression].
    #[arg(long, env = "KUBETRAIN_MAX_FEATURES", value_name = "sqrt|log2|all|F")]
    max_features: Option<String>,
    /// Random forest: fit each tree on a bootstrap sample (true or false) [default: true].
    #[arg(
        long,
        env = "KUBETRAIN_BOOTSTRAP",
        value_name = "BOOL",
        action = clap::ArgAction::Set
    )]
    bootstrap: Option<bool>,
    /// Gradient-boosted trees and random forest: seed of the row and feature sampling
    /// (spec.algorithm.<member>.seed; --seed is the validation split's) [default: 0].
    #[arg(
        long,
        env = "KUBETRAIN_ALGORITHM_SEED",
        value_name = "N",
        value_parser = clap::value_parser!(i64).range(0..)
    )]
    algorithm_seed: Option<i64>,
    /// Feature columns in this order (comma-separated); default: every column but the label.
    #[arg(
        long,
        env = "KUBETRAIN_FEATURE_COLUMNS",
        value_name = "A,B,C",
        value_delimiter = ','
    )]
    feature_columns: Option<Vec<String>>,
    /// Solver: lbfgs (fused, parallel; default) or linfa (linfa-logistic, the reference).
    #[arg(long, env = "KUBETRAIN_SOLVER", value_enum, default_value_t = SolverArg::Lbfgs)]
    solver: SolverArg,
    /// Worker threads; default: one per core.
    #[arg(long, env = "KUBETRAIN_THREADS", value_name = "N")]
    threads: Option<usize>,
    /// Progress reports: text (stderr), json (JSON lines on stdout) or none.
    #[arg(long, env = "KUBETRAIN_PROGRESS", value_enum, default_value_t = ProgressArg::Text)]
    progress: ProgressArg,
    /// Keep parsed datasets in this directory (at most 1 GiB, least recently used dropped
    /// first), so later runs on the same, unchanged object skip reading and parsing it.
    #[arg(long, env = "KUBETRAIN_DATASET_CACHE", value_name = "DIR")]
    dataset_cache: Option<std::path::PathBuf>,
}

/// Predict every row of a CSV file with a trained model; CSV to stdout.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model: a model.json written by `kubetrain train`.
    #[arg(long, env = "KUBETRAIN_MODEL", value_name = "URI")]
    model: String,
    /// CSV with a header row holding the model's feature columns.
    #[arg(long, env = "KUBETRAIN_DATA", value_name = "URI")]
    data: String,
    /// Label column to score against; default: the model's, when the data has it.
    #[arg(long, env = "KUBETRAIN_LABEL_COLUMN", value_name = "NAME")]
    label_column: Option<String>,
    /// Worker threads; default: one per core.
    #[arg(long, env = "KUBETRAIN_THREADS", value_name = "N")]
    threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AlgorithmArg {
    LogisticRegression,
    LinearRegression,
    GradientBoostedTrees,
    RandomForest,
}

impl AlgorithmArg {
    fn flag_name(self) -> &'static str {
        match self {
            AlgorithmArg::LogisticRegression => "logistic-regression",
            AlgorithmArg::LinearRegression => "linear-regression",
            AlgorithmArg::GradientBoostedTrees => "gradient-boosted-trees",
            AlgorithmArg::RandomForest => "random-forest",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TaskArg {
    Classification,
    Regression,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SolverArg {
    Lbfgs,
    Linfa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressArg {
    Text,
    Json,
    None,
}

/// Run `kubetrain train`.
pub fn train(args: TrainArgs) -> ExitCode {
    let result = train_with(&args, &NoProgress);
    finish(&args, &result)
}

/// Train as `args` say, reporting progress to the sink `--progress` picks and to `also`.
pub fn train_with(args: &TrainArgs, also: &dyn ProgressSink) -> Result<TrainSummary, TrainError> {
    let config = train_config(args)?;
    let sink: Box<dyn ProgressSink> = match args.progress {
        ProgressArg::Text => Box::new(Text::new(io::stderr())),
        ProgressArg::Json => Box::new(JsonLines::new(io::stdout())),
        ProgressArg::None => Box::new(NoProgress),
    };
    kubetrain_trainer::train(&config, &Tee(sink.as_ref(), also))
}

/// Print the outcome of [`train_with`] and turn it into the documented exit code.
pub fn finish(args: &TrainArgs, result: &Result<TrainSummary, TrainError>) -> ExitCode {
    match result {
        Ok(summary) => {
            report_success(summary, args.progress);
            ExitCode::SUCCESS
        }
        Err(error) => fail(error),
    }
}

/// Both sinks get every report.
struct Tee<'a>(&'a dyn ProgressSink, &'a dyn ProgressSink);

impl ProgressSink for Tee<'_> {
    fn report(&self, progress: &kubetrain_trainer::Iteration) {
        self.0.report(progress);
        self.1.report(progress);
    }
}

fn train_config(args: &TrainArgs) -> Result<TrainConfig, TrainError> {
    let validation = match (&args.validation_data, args.validation_fraction) {
        (Some(_), Some(fraction)) if fraction != 0.0 => {
            return Err(TrainError::InvalidParameter {
                field: "--validation-fraction",
                message: "give either --validation-fraction or --validation-data, not both".into(),
            });
        }
        (Some(uri), _) => Validation::Data { uri: uri.clone() },
        (None, fraction) => Validation::Fraction {
            fraction: fraction.unwrap_or(DEFAULT_VALIDATION_FRACTION),
            seed: args.seed,
        },
    };
    refuse_flags_of_other_algorithms(args)?;
    let algorithm = match args.algorithm {
        AlgorithmArg::LogisticRegression => AlgorithmConfig::LogisticRegression {
            solver: match args.solver {
                SolverArg::Lbfgs => SolverKind::Lbfgs,
                SolverArg::Linfa => SolverKind::Linfa,
            },
            params: FitParams {
                max_iterations: args
                    .max_iterations
                    .unwrap_or(u64::from(DEFAULT_MAX_ITERATIONS)),
                l2_penalty: args.l2_penalty.unwrap_or(DEFAULT_L2_PENALTY),
                tolerance: args.tolerance.unwrap_or(DEFAULT_TOLERANCE),
            },
        },
        AlgorithmArg::LinearRegression => AlgorithmConfig::LinearRegression(LinearParams {
            l2_penalty: args.l2_penalty.unwrap_or(DEFAULT_L2_PENALTY),
            l1_ratio: args.l1_ratio.unwrap_or(0.0),
            fit_intercept: args.fit_intercept.unwrap_or(true),
            max_iterations: args
                .max_iterations
                .unwrap_or(u64::from(DEFAULT_LINEAR_MAX_ITERATIONS)),
            tolerance: args.tolerance.unwrap_or(DEFAULT_TOLERANCE),
        }),
        AlgorithmArg::GradientBoostedTrees => {
            let max_iterations = match args.max_iterations {
                None => DEFAULT_BOOSTING_ITERATIONS,
                Some(n) => u32::try_from(n).map_err(|_| TrainError::InvalidParameter {
                    field: "--max-iterations",
                    message: format!("must be at most {}, got {n}", u32::MAX),
                })?,
            };
            let defaults = GradientBoostedTrees::default();
            AlgorithmConfig::GradientBoostedTrees(GradientBoostedTrees {
                max_iterations,
                learning_rate: args.learning_rate.unwrap_or(DEFAULT_LEARNING_RATE),
                max_leaves: args.max_leaves.unwrap_or(DEFAULT_MAX_LEAVES),
                max_depth: args.max_depth,
                min_samples_leaf: args
                    .min_samples_leaf
                    .unwrap_or(DEFAULT_BOOSTING_MIN_SAMPLES_LEAF),
                l2_penalty: args.l2_penalty.unwrap_or(defaults.l2_penalty),
                max_bins: args.max_bins.unwrap_or(DEFAULT_MAX_BINS),
                subsample: args.subsample.unwrap_or(defaults.subsample),
                feature_fraction: args.feature_fraction.unwrap_or(defaults.feature_fraction),
                early_stopping_rounds: args.early_stopping_rounds,
                seed: args.algorithm_seed.unwrap_or(defaults.seed),
            })
        }
        AlgorithmArg::RandomForest => {
            let defaults = RandomForest::default();
            AlgorithmConfig::RandomForest(RandomForest {
                num_trees: args.num_trees.unwrap_or(DEFAULT_NUM_TREES),
                max_depth: args.max_depth,
                min_samples_leaf: args
                    .min_samples_leaf
                    .unwrap_or(DEFAULT_FOREST_MIN_SAMPLES_LEAF),
                max_features: args.max_features.clone(),
                bootstrap: args.bootstrap.unwrap_or(defaults.bootstrap),
                seed: args.algorithm_seed.unwrap_or(defaults.seed),
            })
        }
    };
    let task = match args.task {
        Some(TaskArg::Classification) => Task::Classification,
        Some(TaskArg::Regression) => Task::Regression,
        None => algorithm.only_task().unwrap_or(Task::Classification),
    };
    Ok(TrainConfig {
        data: args.data.clone(),
        label_column: args.label_column.clone(),
        feature_columns: args.feature_columns.clone(),
        validation,
        output: args.out.clone(),
        task,
        algorithm,
        threads: args.threads,
        dataset_cache: args.dataset_cache.clone(),
    })
}

/// A flag of another algorithm is refused, not ignored: `--l1-ratio` with logistic
/// regression, `--num-trees` with gradient-boosted trees, `--solver linfa` with anything but
/// logistic regression.
fn refuse_flags_of_other_algorithms(args: &TrainArgs) -> Result<(), TrainError> {
    use AlgorithmArg::{GradientBoostedTrees, LinearRegression, LogisticRegression, RandomForest};
    let flags: [(&'static str, bool, &[AlgorithmArg]); 17] = [
        (
            "--max-iterations",
            args.max_iterations.is_some(),
            &[LogisticRegression, LinearRegression, GradientBoostedTrees],
        ),
        (
            "--l2-penalty",
            args.l2_penalty.is_some(),
            &[LogisticRegression, LinearRegression, GradientBoostedTrees],
        ),
        (
            "--tolerance",
            args.tolerance.is_some(),
            &[LogisticRegression, LinearRegression],
        ),
        ("--l1-ratio", args.l1_ratio.is_some(), &[LinearRegression]),
        (
            "--fit-intercept",
            args.fit_intercept.is_some(),
            &[LinearRegression],
        ),
        (
            "--learning-rate",
            args.learning_rate.is_some(),
            &[GradientBoostedTrees],
        ),
        (
            "--max-leaves",
            args.max_leaves.is_some(),
            &[GradientBoostedTrees],
        ),
        (
            "--max-depth",
            args.max_depth.is_some(),
            &[GradientBoostedTrees, RandomForest],
        ),
        (
            "--min-samples-leaf",
            args.min_samples_leaf.is_some(),
            &[GradientBoostedTrees, RandomForest],
        ),
        (
            "--max-bins",
            args.max_bins.is_some(),
            &[GradientBoostedTrees],
        ),
        (
            "--subsample",
            args.subsample.is_some(),
            &[GradientBoostedTrees],
        ),
        (
            "--feature-fraction",
            args.feature_fraction.is_some(),
            &[GradientBoostedTrees],
        ),
        (
            "--early-stopping-rounds",
            args.early_stopping_rounds.is_some(),
            &[GradientBoostedTrees],
        ),
        ("--num-trees", args.num_trees.is_some(), &[RandomForest]),
        (
            "--max-features",
            args.max_features.is_some(),
            &[RandomForest],
        ),
        ("--bootstrap", args.bootstrap.is_some(), &[RandomForest]),
        (
            "--algorithm-seed",
            args.algorithm_seed.is_some(),
            &[GradientBoostedTrees, RandomForest],
        ),
    ];
    for (flag, given, algorithms) in flags {
        if given && !algorithms.contains(&args.algorithm) {
            let names: Vec<&str> = algorithms.iter().map(|a| a.flag_name()).collect();
            let mut message = format!("is a parameter of --algorithm {}", names.join(", "));
            if flag == "--max-iterations" && args.algorithm == RandomForest {
                message.push_str("; a random forest's size is --num-trees");
            }
            return Err(TrainError::InvalidParameter {
                field: flag,
                message,
            });
        }
    }
    match (args.algorithm, args.solver) {
        (LogisticRegression, _) | (_, SolverArg::Lbfgs) => Ok(()),
        (LinearRegression, SolverArg::Linfa) => Err(TrainError::InvalidParameter {
            field: "--solver",
            message: "chooses the solver of --algorithm logistic-regression; linear \
                      regression solves ridge exactly and an L1 share by coordinate descent"
                .into(),
        }),
        (GradientBoostedTrees | RandomForest, SolverArg::Linfa) => {
            Err(TrainError::InvalidParameter {
                field: "--solver",
                message: format!(
                    "chooses the solver of --algorithm logistic-regression; --algorithm {} \
                     grows trees",
                    args.algorithm.flag_name()
                ),
            })
        }
    }
}

fn report_success(summary: &TrainSummary, progress: ProgressArg) {
    match progress {
        ProgressArg::Json => {
            let event = summary.completed_event(k8s_openapi::jiff::Timestamp::now());
            println!("{}", event.to_line());
        }
        ProgressArg::Text => {
            let (what, scores) = match &summary.metrics {
                Evaluation::Classification(m) => (
                    format!("{} classes", summary.dataset.classes.len()),
                    format!(
                        "accuracy {:.4}, log loss {:.4} on {} rows",
                        m.accuracy, m.log_loss, m.rows
                    ),
                ),
                Evaluation::Regression(m) => (
                    "regression".to_owned(),
                    format!(
                        "r2 {:.4}, rmse {:.4}, mae {:.4} on {} rows",
                        m.r2, m.rmse, m.mae, m.rows
                    ),
                ),
            };
            eprintln!(
                "trained on {} rows ({} features, {what}): {} {scores}; {}",
                summary.dataset.train_rows,
                summary.dataset.features.len(),
                summary.evaluated_on,
                if summary.fit.converged {
                    "converged"
                } else {
                    "not converged"
                },
            );
            eprintln!("model: {}", summary.model.uri);
        }
        ProgressArg::None => {}
    }
}

/// Run `kubetrain predict`.
pub fn predict(args: PredictArgs) -> ExitCode {
    let config = PredictConfig {
        model: args.model,
        data: args.data,
        label_column: args.label_column,
        threads: args.threads,
    };
    let predictions = match kubetrain_trainer::predict(&config) {
        Ok(predictions) => predictions,
        Err(error) => return fail(&error),
    };
    if let Err(error) = write_predictions(&predictions) {
        // A reader that stops early (`| head`) is not an error of ours.
        if error
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
            return ExitCode::SUCCESS;
        }
        eprintln!("error: {error:#}");
        return exit(exit_code::INTERNAL);
    }
    if let Some(accuracy) = predictions.accuracy {
        eprintln!("accuracy: {accuracy:.4}");
    }
    if let Some(m) = &predictions.regression {
        eprintln!("r2: {:.4}", m.r2);
        eprintln!("rmse: {:.4}", m.rmse);
        eprintln!("mae: {:.4}", m.mae);
    }
    ExitCode::SUCCESS
}

/// Classifiers: `prediction,p_<class>...`; regressors: `prediction` (the value).
fn write_predictions(predictions: &kubetrain_trainer::Predictions) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let header: Vec<String> = std::iter::once("prediction".to_string())
        .chain(
            predictions
                .classes
                .iter()
                .map(|c| csv_field(&format!("p_{c}"))),
        )
        .collect();
    writeln!(out, "{}", header.join(",")).context("writing predictions to stdout")?;
    match &predictions.prediction {
        Prediction::Probabilities(probabilities) => {
            let predicted = kubetrain_model::argmax_rows(probabilities);
            for (row, &class) in probabilities.rows().into_iter().zip(&predicted) {
                write!(out, "{}", csv_field(&predictions.classes[class]))?;
                for p in row {
                    write!(out, ",{p:.6}")?;
                }
                writeln!(out)?;
            }
        }
        Prediction::Values(values) => {
            for value in values {
                writeln!(out, "{value}")?;
            }
        }
    }
    out.flush().context("writing predictions to stdout")?;
    Ok(())
}

/// Quote a CSV field when it needs it.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn fail(error: &TrainError) -> ExitCode {
    eprintln!("error: {error}");
    exit(error.exit_code())
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TrainArgs,
    }

    fn config(flags: &[&str]) -> Result<TrainConfig, TrainError> {
        let argv = ["train", "--data", "/d/train.csv", "--out", "/m/"]
            .iter()
            .chain(flags);
        train_config(&Cli::try_parse_from(argv).unwrap().args)
    }

    /// The flag and message of a refused configuration.
    fn refused(flags: &[&str]) -> (&'static str, String) {
        match config(flags) {
            Err(TrainError::InvalidParameter { field, message }) => (field, message),
            other => panic!("{flags:?} gave {other:?}"),
        }
    }

    #[test]
    fn tree_algorithms_default_like_their_spec_and_to_classification() {
        let boosted = config(&["--algorithm", "gradient-boosted-trees"]).unwrap();
        assert_eq!(boosted.task, Task::Classification);
        assert_eq!(
            boosted.algorithm,
            AlgorithmConfig::GradientBoostedTrees(GradientBoostedTrees::default())
        );
        let forest = config(&["--algorithm", "random-forest", "--task", "regression"]).unwrap();
        assert_eq!(forest.task, Task::Regression);
        assert_eq!(
            forest.algorithm,
            AlgorithmConfig::RandomForest(RandomForest::default())
        );
        // The linear ones still default to the one task they do.
        let linear = config(&["--algorithm", "linear-regression"]).unwrap();
        assert_eq!(linear.task, Task::Regression);
    }

    #[test]
    fn every_tree_flag_reaches_the_config() {
        let boosted = config(&[
            "--algorithm",
            "gradient-boosted-trees",
            "--task",
            "regression",
            "--max-iterations",
            "500",
            "--learning-rate",
            "0.05",
            "--max-leaves",
            "63",
            "--max-depth",
            "8",
            "--min-samples-leaf",
            "5",
            "--l2-penalty",
            "0.5",
            "--max-bins",
            "63",
            "--subsample",
            "0.8",
            "--feature-fraction",
            "0.9",
            "--early-stopping-rounds",
            "10",
            "--algorithm-seed",
            "42",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(
            boosted.algorithm,
            AlgorithmConfig::GradientBoostedTrees(GradientBoostedTrees {
                max_iterations: 500,
                learning_rate: 0.05,
                max_leaves: 63,
                max_depth: Some(8),
                min_samples_leaf: 5,
                l2_penalty: 0.5,
                max_bins: 63,
                subsample: 0.8,
                feature_fraction: 0.9,
                early_stopping_rounds: Some(10),
                seed: 42,
            })
        );
        assert_eq!(
            boosted.validation,
            Validation::Fraction {
                fraction: DEFAULT_VALIDATION_FRACTION,
                seed: 7
            }
        );
        let forest = config(&[
            "--algorithm",
            "random-forest",
            "--num-trees",
            "300",
            "--max-depth",
            "12",
            "--min-samples-leaf",
            "3",
            "--max-features",
            "log2",
            "--bootstrap",
            "false",
            "--algorithm-seed",
            "9",
        ])
        .unwrap();
        assert_eq!(
            forest.algorithm,
            AlgorithmConfig::RandomForest(RandomForest {
                num_trees: 300,
                max_depth: Some(12),
                min_samples_leaf: 3,
                max_features: Some("log2".into()),
                bootstrap: false,
                seed: 9,
            })
        );
    }

    #[test]
    fn shared_flags_default_per_algorithm() {
        let logistic = config(&[]).unwrap();
        let AlgorithmConfig::LogisticRegression { params, .. } = logistic.algorithm else {
            panic!("{logistic:?}");
        };
        assert_eq!((params.max_iterations, params.l2_penalty), (100, 1.0));
        let linear = config(&["--algorithm", "linear-regression"]).unwrap();
        let AlgorithmConfig::LinearRegression(params) = linear.algorithm else {
            panic!("{linear:?}");
        };
        assert_eq!((params.max_iterations, params.l2_penalty), (1000, 1.0));
        let AlgorithmConfig::GradientBoostedTrees(boosted) =
            config(&["--algorithm", "gradient-boosted-trees"])
                .unwrap()
                .algorithm
        else {
            panic!("not boosted trees");
        };
        assert_eq!(
            (
                boosted.max_iterations,
                boosted.l2_penalty,
                boosted.min_samples_leaf
            ),
            (100, 0.0, 20)
        );
        let AlgorithmConfig::RandomForest(forest) =
            config(&["--algorithm", "random-forest"]).unwrap().algorithm
        else {
            panic!("not a forest");
        };
        assert_eq!(forest.min_samples_leaf, 1);
    }

    #[test]
    fn flags_of_another_algorithm_are_refused() {
        let (flag, message) =
            refused(&["--algorithm", "gradient-boosted-trees", "--num-trees", "5"]);
        assert_eq!(flag, "--num-trees");
        assert_eq!(message, "is a parameter of --algorithm random-forest");
        let (flag, message) = refused(&["--algorithm", "random-forest", "--max-iterations", "5"]);
        assert_eq!(flag, "--max-iterations");
        assert!(
            message.ends_with("a random forest's size is --num-trees"),
            "{message}"
        );
        let (flag, _) = refused(&["--algorithm", "random-forest", "--learning-rate", "0.1"]);
        assert_eq!(flag, "--learning-rate");
        let (flag, _) = refused(&["--algorithm", "random-forest", "--l2-penalty", "1"]);
        assert_eq!(flag, "--l2-penalty");
        let (flag, _) = refused(&[
            "--algorithm",
            "gradient-boosted-trees",
            "--tolerance",
            "1e-3",
        ]);
        assert_eq!(flag, "--tolerance");
        let (flag, message) = refused(&["--max-depth", "3"]);
        assert_eq!(flag, "--max-depth");
        assert_eq!(
            message,
            "is a parameter of --algorithm gradient-boosted-trees, random-forest"
        );
        let (flag, _) = refused(&["--algorithm", "linear-regression", "--algorithm-seed", "1"]);
        assert_eq!(flag, "--algorithm-seed");
        let (flag, _) = refused(&["--l1-ratio", "0"]);
        assert_eq!(flag, "--l1-ratio");
        let (flag, _) = refused(&["--algorithm", "random-forest", "--solver", "linfa"]);
        assert_eq!(flag, "--solver");
    }

    #[test]
    fn the_algorithm_seed_is_not_negative() {
        let argv = [
            "train",
            "--data",
            "/d.csv",
            "--out",
            "/m/",
            "--algorithm",
            "random-forest",
            "--algorithm-seed",
            "-1",
        ];
        assert!(Cli::try_parse_from(argv).is_err());
    }
}
