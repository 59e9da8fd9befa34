//! `kubetrain submit`, `get`, `list` and `cancel`: flags and environment wired to
//! `kubetrain_client`, which talks to any gateway (`kubetrain gateway` or `kubetrain local`).
//!
//! Output: results on stdout (`-o text|json|yaml`, tables for get and list), progress and
//! errors on stderr (`error: <message> (field: ...)`). Exit codes: 0 success (submit: the run
//! Succeeded), 1 the run Failed or was Cancelled, or the gateway refused or could not be
//! reached, 2 usage, 130 Ctrl-C while following (the run goes on).

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kubetrain_api::{Phase, TrainingRun};
use kubetrain_client::events::follow;
use kubetrain_client::manifest::{self, RunFlags};
use kubetrain_client::progress::Reporter;
use kubetrain_client::{Client, ClientError, ListFilter, render};

/// Where the gateway is and who is calling.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Base URL of the gateway: `kubetrain local` on this machine, or `kubetrain gateway`.
    #[arg(
        long,
        env = "KUBETRAIN_GATEWAY",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    gateway: String,
    /// Bearer token sent to the gateway.
    #[arg(
        long,
        env = "KUBETRAIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
}

impl GatewayArgs {
    fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.gateway, self.token.clone())
    }
}

/// How `submit` and `cancel` print the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunOutput {
    Text,
    Json,
    Yaml,
}

/// How `get` and `list` print runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableOutput {
    Table,
    Json,
    Yaml,
}

/// Submit a TrainingRun and follow it to the end with a progress bar.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Namespace of the run (default: the manifest's, else `default`).
    #[arg(short = 'n', long, value_name = "NS")]
    namespace: Option<String>,
    /// A TrainingRun manifest (YAML or JSON, as for kubectl apply); `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    filename: Option<String>,
    /// Training data: CSV with a header row, as s3://bucket/key, file:///path or a path
    /// (a relative path is made absolute here).
    #[arg(
        long,
        value_name = "URI",
        required_unless_present = "filename",
        conflicts_with = "filename"
    )]
    data: Option<String>,
    /// Column holding the class labels [default: label].
    #[arg(long, value_name = "NAME", conflicts_with = "filename")]
    label_column: Option<String>,
    /// Where the model goes: <URI>/model.json and <URI>/summary.json.
    #[arg(
        long,
        value_name = "URI",
        required_unless_present = "filename",
        conflicts_with = "filename"
    )]
    out: Option<String>,
    /// Feature columns, comma-separated [default: every column but the label].
    #[arg(
        long,
        value_name = "A,B,C",
        value_delimiter = ',',
        conflicts_with = "filename"
    )]
    feature_columns: Option<Vec<String>>,
    /// Fraction of rows held back for the metrics, in [0, 1) [default: 0.2].
    #[arg(
        long,
        value_name = "F",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    validation_fraction: Option<f64>,
    /// A separate validation CSV instead of a random split.
    #[arg(long, value_name = "URI", conflicts_with = "filename")]
    validation_data: Option<String>,
    /// Seed of the validation split (spec.dataset.seed); the tree algorithms' own seed is
    /// --algorithm-seed.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    seed: Option<i64>,
    /// The algorithm: logistic-regression (classification), linear-regression (regression),
    /// gradient-boosted-trees or random-forest (either) [default: logistic-regression].
    #[arg(long, value_name = "NAME", conflicts_with = "filename")]
    algorithm: Option<String>,
    /// What the model predicts: classification or regression [default: the algorithm's;
    /// classification for the tree algorithms, which do both].
    #[arg(long, value_name = "TASK", conflicts_with = "filename")]
    task: Option<String>,
    /// Linear regression: the L1 share of the penalty, in [0, 1] [default: 0].
    #[arg(
        long,
        value_name = "X",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    l1_ratio: Option<f64>,
    /// Linear regression: fit an intercept [default: true].
    #[arg(long, value_name = "BOOL", conflicts_with = "filename")]
    fit_intercept: Option<bool>,
    /// Logistic, linear regression and gradient-boosted trees: upper bound on solver
    /// iterations, or boosting iterations [default: 100; 1000 for linear regression].
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    max_iterations: Option<u32>,
    /// Logistic, linear regression and gradient-boosted trees: strength of the L2 penalty
    /// (logistic: scikit-learn's 1/C; linear: Ridge's alpha; boosted trees: on the leaf
    /// values) [default: 1.0; 0 for gradient-boosted trees].
    #[arg(
        long,
        value_name = "X",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    l2_penalty: Option<f64>,
    /// Logistic and linear regression: convergence tolerance [default: 1e-4].
    #[arg(
        long,
        value_name = "X",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    tolerance: Option<f64>,
    /// Gradient-boosted trees: shrinkage of each tree's output, in (0, 1] [default: 0.1].
    #[arg(
        long,
        value_name = "X",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    learning_rate: Option<f64>,
    /// Gradient-boosted trees: most leaves per tree [default: 31].
    #[arg(long, value_name = "N", conflicts_with = "filename")]
    max_leaves: Option<u32>,
    /// Gradient-boosted trees and random forest: most levels below the root [default: no
    /// limit].
    #[arg(long, value_name = "N", conflicts_with = "filename")]
    max_depth: Option<u32>,
    /// Gradient-boosted trees and random forest: fewest training rows in a leaf [default: 20
    /// for gradient-boosted trees, 1 for random forest].
    #[arg(long, value_name = "N", conflicts_with = "filename")]
    min_samples_leaf: Option<u32>,
    /// Gradient-boosted trees: most bins per feature, 2 to 255 [default: 255].
    #[arg(long, value_name = "N", conflicts_with = "filename")]
    max_bins: Option<u32>,
    /// Gradient-boosted trees: fraction of the rows each iteration is fit on, in (0, 1]
    /// [default: 1].
    #[arg(
        long,
        value_name = "X",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    subsample: Option<f64>,
    /// Gradient-boosted trees: fraction of the features each tree may split on, in (0, 1]
    /// [default: 1].
    #[arg(
        long,
        value_name = "X",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    feature_fraction: Option<f64>,
    /// Gradient-boosted trees: stop when the validation loss has not improved for N
    /// iterations [default: no early stopping].
    #[arg(long, value_name = "N", conflicts_with = "filename")]
    early_stopping_rounds: Option<u32>,
    /// Random forest: trees in the forest [default: 100].
    #[arg(long, value_name = "N", conflicts_with = "filename")]
    num_trees: Option<u32>,
    /// Random forest: features drawn at each split: sqrt, log2, all or a fraction such as
    /// 0.33 [default: sqrt for classification, all for regression].
    #[arg(long, value_name = "sqrt|log2|all|F", conflicts_with = "filename")]
    max_features: Option<String>,
    /// Random forest: fit each tree on a bootstrap sample [default: true].
    #[arg(long, value_name = "BOOL", conflicts_with = "filename")]
    bootstrap: Option<bool>,
    /// Gradient-boosted trees and random forest: seed of the row and feature sampling
    /// (spec.algorithm.<member>.seed) [default: 0].
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    algorithm_seed: Option<i64>,
    /// Retries of a failed attempt [default: 2].
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    backoff_limit: Option<i32>,
    /// Wall-clock limit of the run in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    active_deadline_seconds: Option<i64>,
    /// Delete the run (not its model) this long after it finished.
    #[arg(
        long,
        value_name = "SECONDS",
        conflicts_with = "filename",
        allow_negative_numbers = true
    )]
    ttl_seconds_after_finished: Option<i32>,
    /// Secret in the run's namespace holding the S3 credentials (keys AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY) the trainer reads the data and writes the model with
    /// (`spec.storage.secretRef`) [default: none, the cluster's ambient credentials].
    #[arg(long, value_name = "NAME", conflicts_with = "filename")]
    storage_secret: Option<String>,
    /// S3 endpoint URL of the run (`spec.storage.endpoint`) [default: the controller's].
    #[arg(long, value_name = "URL", conflicts_with = "filename")]
    storage_endpoint: Option<String>,
    /// S3 region of the run (`spec.storage.region`) [default: the controller's].
    #[arg(long, value_name = "REGION", conflicts_with = "filename")]
    storage_region: Option<String>,
    /// A label of the run, KEY=VALUE; repeat for more.
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = manifest::parse_label)]
    labels: Vec<(String, String)>,
    /// Name of the run (replaces the manifest's).
    #[arg(long, value_name = "NAME", conflicts_with = "generate_name")]
    name: Option<String>,
    /// Prefix of a generated name [default: from the data file's name].
    #[arg(long, value_name = "PREFIX")]
    generate_name: Option<String>,
    /// Idempotency key of the submission [default: a new UUID]. Running the same command
    /// with the same key again returns the run created first instead of a second one.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Print the created run and exit instead of following it.
    #[arg(long)]
    detach: bool,
    /// Output format of the result.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: RunOutput,
}

/// Show one run.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Namespace of the run.
    #[arg(short = 'n', long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// Name of the run.
    name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: TableOutput,
}

/// List runs.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Namespace of the runs.
    #[arg(short = 'n', long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// Only runs in this phase: Pending, Queued, Running, Succeeded, Failed or Cancelled.
    #[arg(long, value_name = "PHASE", value_parser = kubetrain_client::http::parse_phase)]
    phase: Option<Phase>,
    /// Only runs whose labels match this selector (`team=ml,tier!=dev`).
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    selector: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: TableOutput,
}

/// Cancel a run: its training stops and it ends Cancelled.
#[derive(Debug, Args)]
pub struct CancelArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Namespace of the run.
    #[arg(short = 'n', long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// Name of the run.
    name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: RunOutput,
}

fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}

/// Print `text` to stdout; a closed pipe (`| head`) is not an error worth a message.
fn print(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn print_run(run: &TrainingRun, output: RunOutput, text: impl FnOnce() -> String) -> ExitCode {
    let rendered = match output {
        RunOutput::Text => Ok(text()),
        RunOutput::Json => render::json(run).map_err(|e| e.to_string()),
        RunOutput::Yaml => render::yaml(run).map_err(|e| e.to_string()),
    };
    match rendered {
        Ok(rendered) => {
            print(&rendered);
            ExitCode::SUCCESS
        }
        Err(error) => fail(error),
    }
}

fn now() -> kubetrain_client::render::Timestamp {
    kubetrain_client::render::Timestamp::now()
}

/// `kubetrain submit`.
pub async fn submit(args: SubmitArgs) -> ExitCode {
    let (run, namespace) = match build_run(&args) {
        Ok(built) => built,
        Err(error) => return fail(error),
    };
    let client = match args.gateway.client() {
        Ok(client) => client,
        Err(error) => return fail(error),
    };
    let key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let created = match client.create(&namespace, &run, &key).await {
        Ok(created) => created,
        Err(error) => return fail(error),
    };
    let name = created.metadata.name.clone().unwrap_or_default();
    if args.detach {
        return print_run(&created, args.output, || {
            format!("trainingrun/{name} created in namespace {namespace}\n")
        });
    }
    if args.output == RunOutput::Text {
        print(&format!(
            "trainingrun/{name} created in namespace {namespace}\n"
        ));
    }
    let mut reporter = Reporter::new(&name);
    reporter.update(&created);
    // Ctrl-C stops following, not the run.
    let finished = tokio::select! {
        finished = follow(&client, &namespace, &name, |run| reporter.update(run)) => Some(finished),
        _ = tokio::signal::ctrl_c() => None,
    };
    reporter.finish();
    let finished = match finished {
        Some(Ok(run)) => run,
        Some(Err(error)) => return fail(error),
        None => {
            eprintln!(
                "stopped following; trainingrun/{name} goes on: `kubetrain get {name} -n {namespace}` \
                 shows it, `kubetrain cancel {name} -n {namespace}` stops it"
            );
            return ExitCode::from(130);
        }
    };
    let phase = finished.status.as_ref().and_then(|status| status.phase);
    // In text, a failed run's summary is the error line below; JSON and YAML print the run.
    if phase == Some(Phase::Succeeded) || args.output != RunOutput::Text {
        let printed = print_run(&finished, args.output, || render::summary(&finished));
        if printed != ExitCode::SUCCESS {
            return printed;
        }
    }
    match phase {
        Some(Phase::Succeeded) => ExitCode::SUCCESS,
        Some(_) => fail(render::outcome(&finished)),
        None => fail(format_args!("trainingrun/{name} ended without a phase")),
    }
}

/// The run to submit and its namespace, from the manifest or the flags.
fn build_run(args: &SubmitArgs) -> Result<(TrainingRun, String), ClientError> {
    let mut run = match args.filename.as_deref() {
        Some(path) => {
            let (text, source) = read_manifest(path)?;
            manifest::parse_manifest(&text, &source)?
        }
        None => {
            let cwd = std::env::current_dir().map_err(|error| {
                ClientError::Manifest(format!("cannot read the current directory: {error}"))
            })?;
            let flags = RunFlags {
                data: args.data.clone().unwrap_or_default(),
                label_column: args.label_column.clone(),
                out: args.out.clone().unwrap_or_default(),
                feature_columns: args.feature_columns.clone(),
                validation_fraction: args.validation_fraction,
                validation_data: args.validation_data.clone(),
                seed: args.seed,
                algorithm: args.algorithm.clone(),
                task: args.task.clone(),
                max_iterations: args.max_iterations,
                l2_penalty: args.l2_penalty,
                tolerance: args.tolerance,
                l1_ratio: args.l1_ratio,
                fit_intercept: args.fit_intercept,
                learning_rate: args.learning_rate,
                max_leaves: args.max_leaves,
                max_depth: args.max_depth,
                min_samples_leaf: args.min_samples_leaf,
                max_bins: args.max_bins,
                subsample: args.subsample,
                feature_fraction: args.feature_fraction,
                early_stopping_rounds: args.early_stopping_rounds,
                num_trees: args.num_trees,
                max_features: args.max_features.clone(),
                bootstrap: args.bootstrap,
                algorithm_seed: args.algorithm_seed,
                backoff_limit: args.backoff_limit,
                active_deadline_seconds: args.active_deadline_seconds,
                ttl_seconds_after_finished: args.ttl_seconds_after_finished,
                storage_secret: args.storage_secret.clone(),
                storage_endpoint: args.storage_endpoint.clone(),
                storage_region: args.storage_region.clone(),
                labels: Default::default(),
            };
            manifest::run_from_flags(&flags, &cwd)?
        }
    };
    if !args.labels.is_empty() {
        run.metadata
            .labels
            .get_or_insert_with(Default::default)
            .extend(args.labels.iter().cloned());
    }
    manifest::set_name(
        &mut run,
        args.name.as_deref(),
        args.generate_name.as_deref(),
    )?;
    let namespace = manifest::resolve_namespace(args.namespace.as_deref(), &run)?;
    run.metadata.namespace = Some(namespace.clone());
    Ok((run, namespace))
}

fn read_manifest(path: &str) -> Result<(String, String), ClientError> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| ClientError::Manifest(format!("cannot read stdin: {error}")))?;
        return Ok((text, "stdin".to_owned()));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| ClientError::Manifest(format!("cannot read {path}: {error}")))?;
    Ok((text, path.to_owned()))
}

/// `kubetrain get`.
pub async fn get(args: GetArgs) -> ExitCode {
    let client = match args.gateway.client() {
        Ok(client) => client,
        Err(error) => return fail(error),
    };
    match client.get(&args.namespace, &args.name).await {
        Ok(run) => print_runs(
            std::slice::from_ref(&run),
            &args.namespace,
            args.output,
            false,
        ),
        Err(error) => fail(error),
    }
}

/// `kubetrain list`.
pub async fn list(args: ListArgs) -> ExitCode {
    let client = match args.gateway.client() {
        Ok(client) => client,
        Err(error) => return fail(error),
    };
    let filter = ListFilter {
        phase: args.phase,
        label_selector: args.selector.clone(),
    };
    match client.list(&args.namespace, &filter).await {
        Ok(runs) => print_runs(&runs, &args.namespace, args.output, true),
        Err(error) => fail(error),
    }
}

fn print_runs(
    runs: &[TrainingRun],
    namespace: &str,
    output: TableOutput,
    as_list: bool,
) -> ExitCode {
    let rendered = match (output, as_list, runs) {
        (TableOutput::Table, _, _) => Ok(render::table(runs, namespace, now())),
        (TableOutput::Json, false, [run]) => render::json(run).map_err(|e| e.to_string()),
        (TableOutput::Yaml, false, [run]) => render::yaml(run).map_err(|e| e.to_string()),
        (TableOutput::Json, _, _) => {
            render::json(&serde_json::json!({ "items": runs })).map_err(|e| e.to_string())
        }
        (TableOutput::Yaml, _, _) => {
            render::yaml(&serde_json::json!({ "items": runs })).map_err(|e| e.to_string())
        }
    };
    match rendered {
        Ok(text) => {
            print(&text);
            ExitCode::SUCCESS
        }
        Err(error) => fail(error),
    }
}

/// `kubetrain cancel`.
pub async fn cancel(args: CancelArgs) -> ExitCode {
    let client = match args.gateway.client() {
        Ok(client) => client,
        Err(error) => return fail(error),
    };
    match client.cancel(&args.namespace, &args.name).await {
        Ok(run) => {
            let phase = run.status.as_ref().and_then(|status| status.phase);
            print_run(&run, args.output, || match phase {
                Some(phase) if phase.is_terminal() && phase != Phase::Cancelled => format!(
                    "trainingrun/{} had already finished ({}); nothing to cancel\n",
                    args.name,
                    phase.as_str()
                ),
                _ => format!("trainingrun/{} cancelled\n", args.name),
            })
        }
        Err(error) => fail(error),
    }
}
