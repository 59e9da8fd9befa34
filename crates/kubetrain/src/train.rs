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

use kubetrain_api::Task;
use kubetrain_api::spec::{
    DEFAULT_L2_PENALTY, DEFAULT_LABEL_COLUMN, DEFAULT_LINEAR_MAX_ITERATIONS,
    DEFAULT_MAX_ITERATIONS, DEFAULT_TOLERANCE, DEFAULT_VALIDATION_FRACTION,
};

/// Train a model on a CSV file (logistic regression for classes, linear regression for
/// numbers) and write `model.json` and `summary.json` under `--out`.
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
    /// Seed of the validation split: the same data and seed give the same split.
    #[arg(long, env = "KUBETRAIN_SEED", value_name = "N", default_value_t = 0)]
    seed: u64,
    /// The algorithm (spec.algorithm): logistic-regression (classification) or
    /// linear-regression (regression).
    #[arg(
        long,
        env = "KUBETRAIN_ALGORITHM",
        value_enum,
        default_value_t = AlgorithmArg::LogisticRegression
    )]
    algorithm: AlgorithmArg,
    /// What the model predicts (spec.task): classification or regression. Defaults to the
    /// one the algorithm does.
    #[arg(long, env = "KUBETRAIN_TASK", value_enum)]
    task: Option<TaskArg>,
    /// Upper bound on solver iterations [default: 100 for logistic regression, 1000
    /// coordinate-descent passes for linear regression].
    #[arg(long, env = "KUBETRAIN_MAX_ITERATIONS", value_name = "N")]
    max_iterations: Option<u64>,
    /// Strength of the penalty on the coefficients (logistic: scikit-learn's 1/C; linear:
    /// Ridge's alpha); the intercept is not penalised.
    #[arg(
        long,
        env = "KUBETRAIN_L2_PENALTY",
        value_name = "X",
        default_value_t = DEFAULT_L2_PENALTY
    )]
    l2_penalty: f64,
    /// Stop when the gradient norm divided by the number of training rows is below this.
    #[arg(
        long,
        env = "KUBETRAIN_TOLERANCE",
        value_name = "X",
        default_value_t = DEFAULT_TOLERANCE
    )]
    tolerance: f64,
    /// Linear regression: the L1 share of the penalty, in [0, 1] (0 ridge, 1 lasso).
    #[arg(
        long,
        env = "KUBETRAIN_L1_RATIO",
        value_name = "X",
        default_value_t = 0.0
    )]
    l1_ratio: f64,
    /// Linear regression: fit an intercept (true or false).
    #[arg(
        long,
        env = "KUBETRAIN_FIT_INTERCEPT",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    fit_intercept: bool,
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
    let linear_only = [
        ("--l1-ratio", args.l1_ratio != 0.0),
        ("--fit-intercept", !args.fit_intercept),
    ];
    match args.algorithm {
        AlgorithmArg::LogisticRegression => {
            if let Some((flag, _)) = linear_only.iter().find(|(_, given)| *given) {
                return Err(TrainError::InvalidParameter {
                    field: flag,
                    message: "is a parameter of --algorithm linear-regression".into(),
                });
            }
        }
        AlgorithmArg::LinearRegression => {
            if !matches!(args.solver, SolverArg::Lbfgs) {
                return Err(TrainError::InvalidParameter {
                    field: "--solver",
                    message: "chooses the solver of --algorithm logistic-regression; linear \
                              regression solves ridge exactly and an L1 share by coordinate \
                              descent"
                        .into(),
                });
            }
        }
    }
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
                l2_penalty: args.l2_penalty,
                tolerance: args.tolerance,
            },
        },
        AlgorithmArg::LinearRegression => AlgorithmConfig::LinearRegression(LinearParams {
            l2_penalty: args.l2_penalty,
            l1_ratio: args.l1_ratio,
            fit_intercept: args.fit_intercept,
            max_iterations: args
                .max_iterations
                .unwrap_or(u64::from(DEFAULT_LINEAR_MAX_ITERATIONS)),
            tolerance: args.tolerance,
        }),
    };
    let task = match args.task {
        Some(TaskArg::Classification) => Task::Classification,
        Some(TaskArg::Regression) => Task::Regression,
        None => algorithm.task(),
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
