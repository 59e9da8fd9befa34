//! The `kubetrain train` command line and environment for a run. The Kubernetes Job and the
//! local process pool both start the trainer with exactly these arguments and variables, so a
//! run trains the same way anywhere.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::{AlgorithmRef, CustomCode, TrainingRun, TrainingRunSpec};

/// Environment variable naming the TrainingRun a trainer reports its status into.
pub const ENV_RUN_NAME: &str = "KUBETRAIN_RUN_NAME";
/// Environment variable with the namespace of that TrainingRun.
pub const ENV_RUN_NAMESPACE: &str = "KUBETRAIN_RUN_NAMESPACE";
/// Prefix of every variable the trainer reads its flags from (`KUBETRAIN_DATA`, ...). Whoever
/// starts a trainer outside a container removes inherited ones, so only [`trainer_env`] counts.
pub const ENV_PREFIX: &str = "KUBETRAIN_";
/// Directory where `kubetrain train` keeps parsed datasets between runs (`--dataset-cache`).
pub const ENV_DATASET_CACHE: &str = "KUBETRAIN_DATASET_CACHE";

/// Storage settings of whoever starts the trainer, used when the run's `spec.storage` names
/// none (the controller's flags, or `kubetrain local`'s).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageEnv {
    /// S3 endpoint URL (`AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// S3 region (`AWS_REGION`).
    pub region: Option<String>,
}

/// Where the trainer's progress and result go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusReport {
    /// Into the TrainingRun's status through the Kubernetes API (a Job's Pod): the trainer gets
    /// [`ENV_RUN_NAME`] and [`ENV_RUN_NAMESPACE`], which is what makes it report there.
    Kubernetes,
    /// As JSON lines on stdout only (the local process pool reads them): no run identity, so
    /// the trainer never tries to reach a cluster.
    Stdout,
}

/// The value of one trainer environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    /// A literal value.
    Value(String),
    /// The key of a Secret in the run's namespace (credentials are never inline).
    SecretKey {
        /// Name of the Secret.
        secret: String,
        /// Key in the Secret.
        key: String,
        /// Whether the variable may be absent when the Secret lacks the key.
        optional: bool,
    },
}

/// One trainer environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainerEnvVar {
    /// Variable name.
    pub name: String,
    /// Its value or where it comes from.
    pub value: EnvValue,
}

/// The trainer's environment for `run`: where it reports (see [`StatusReport`]) and how it
/// reaches storage. The run's `spec.storage` wins over `defaults`; credentials come only from
/// the run's Secret.
pub fn trainer_env(
    run: &TrainingRun,
    defaults: &StorageEnv,
    report: StatusReport,
) -> Vec<TrainerEnvVar> {
    let mut env = Vec::new();
    if report == StatusReport::Kubernetes {
        env.extend(run_identity(run));
    }
    env.extend(storage_env(run, defaults));
    env
}

/// [`ENV_RUN_NAME`] and [`ENV_RUN_NAMESPACE`] of `run`.
fn run_identity(run: &TrainingRun) -> [TrainerEnvVar; 2] {
    [
        literal(
            ENV_RUN_NAME,
            run.metadata.name.as_deref().unwrap_or_default(),
        ),
        literal(
            ENV_RUN_NAMESPACE,
            run.metadata.namespace.as_deref().unwrap_or("default"),
        ),
    ]
}

/// How a trainer reaches storage: the run's `spec.storage`, else `defaults`; credentials only
/// from the run's Secret.
fn storage_env(run: &TrainingRun, defaults: &StorageEnv) -> Vec<TrainerEnvVar> {
    let storage = run.spec.storage.as_ref();
    let mut env = Vec::new();
    let endpoint = storage
        .and_then(|s| s.endpoint.clone())
        .or_else(|| defaults.endpoint.clone());
    if let Some(endpoint) = endpoint {
        if endpoint.starts_with("http://") {
            env.push(literal("AWS_ALLOW_HTTP", "true"));
        }
        env.push(literal("AWS_ENDPOINT_URL", &endpoint));
    }
    let region = storage
        .and_then(|s| s.region.clone())
        .or_else(|| defaults.region.clone());
    if let Some(region) = region {
        env.push(literal("AWS_REGION", &region));
    }
    if let Some(secret) = storage.and_then(|s| s.secret_ref.as_ref()) {
        for (key, optional) in [
            ("AWS_ACCESS_KEY_ID", false),
            ("AWS_SECRET_ACCESS_KEY", false),
            ("AWS_SESSION_TOKEN", true),
        ] {
            env.push(TrainerEnvVar {
                name: key.to_owned(),
                value: EnvValue::SecretKey {
                    secret: secret.name.clone(),
                    key: key.to_owned(),
                    optional,
                },
            });
        }
    }
    env
}

fn literal(name: &str, value: &str) -> TrainerEnvVar {
    TrainerEnvVar {
        name: name.to_owned(),
        value: EnvValue::Value(value.to_owned()),
    }
}

/// Where `kubetrain exec` keeps a custom program's files, as the program sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomDirs {
    /// `KUBETRAIN_MODEL_DIR`: what the program writes here is uploaded under `output.uri`.
    pub model: String,
    /// Where the wrapper downloads the dataset before the program starts
    /// (`KUBETRAIN_DATA_FILE` and `KUBETRAIN_VALIDATION_DATA_FILE` point into it).
    pub data: String,
}

/// Environment variables of the custom-code contract ([`crate::custom::CONTRACT_VERSION`]),
/// besides what the wrapper adds once it has downloaded the data (`KUBETRAIN_DATA_FILE`,
/// `KUBETRAIN_VALIDATION_DATA_FILE`). Named like the built-in trainer's flags: the run's
/// identity, its dataset, task, output, model directory, params (one JSON object of strings)
/// and threads (the CPU limit, else request, rounded up; left out when unknown).
pub fn custom_env(
    run: &TrainingRun,
    custom: &CustomCode,
    defaults: &StorageEnv,
    threads: Option<u32>,
    dirs: &CustomDirs,
) -> Vec<TrainerEnvVar> {
    let spec = &run.spec;
    let dataset = &spec.dataset;
    let mut env = vec![literal(ENV_CONTRACT, crate::custom::CONTRACT_VERSION)];
    env.extend(run_identity(run));
    env.push(literal("KUBETRAIN_DATA", &dataset.uri));
    env.push(literal("KUBETRAIN_DATA_FORMAT", dataset.format.as_str()));
    match (
        &dataset.validation_uri,
        dataset.effective_validation_fraction(),
    ) {
        (Some(uri), _) => env.push(literal("KUBETRAIN_VALIDATION_DATA", uri)),
        (None, fraction) => env.push(literal(
            "KUBETRAIN_VALIDATION_FRACTION",
            &fraction.unwrap_or(0.0).to_string(),
        )),
    }
    env.push(literal(
        "KUBETRAIN_SEED",
        &dataset.seed.unwrap_or(0).to_string(),
    ));
    env.push(literal("KUBETRAIN_LABEL_COLUMN", &dataset.label_column));
    if let Some(columns) = &dataset.feature_columns {
        env.push(literal("KUBETRAIN_FEATURE_COLUMNS", &columns.join(",")));
    }
    env.push(literal("KUBETRAIN_TASK", spec.task.as_str()));
    env.push(literal("KUBETRAIN_OUT", &spec.output.uri));
    env.push(literal(ENV_MODEL_DIR, &dirs.model));
    env.push(literal("KUBETRAIN_PARAMS", &custom.params_json()));
    if let Some(threads) = threads {
        env.push(literal("KUBETRAIN_THREADS", &threads.to_string()));
    }
    env.extend(storage_env(run, defaults));
    env
}

/// `KUBETRAIN_CONTRACT`: the version of the custom-code contract the program runs under.
pub const ENV_CONTRACT: &str = "KUBETRAIN_CONTRACT";
/// `KUBETRAIN_MODEL_DIR`: the directory a custom program writes its model files into.
pub const ENV_MODEL_DIR: &str = "KUBETRAIN_MODEL_DIR";

/// Arguments after the binary name that run a custom program under the wrapper:
/// `exec --report kubernetes|stdout --download-dir DIR -- COMMAND ARGS...`.
pub fn exec_args(custom: &CustomCode, report: StatusReport, dirs: &CustomDirs) -> Vec<String> {
    let mut args = vec![
        "exec".to_owned(),
        "--report".to_owned(),
        match report {
            StatusReport::Kubernetes => "kubernetes",
            StatusReport::Stdout => "stdout",
        }
        .to_owned(),
        "--download-dir".to_owned(),
        dirs.data.clone(),
        "--".to_owned(),
    ];
    args.extend(custom.command.iter().cloned());
    args.extend(custom.args.iter().cloned());
    args
}

/// The trainer flag of `spec.algorithm.<member>.seed` (the seed of the tree algorithms' row
/// and feature sampling). `--seed` is `spec.dataset.seed`, the seed of the validation split,
/// which every algorithm has; the algorithm's seed is named after where it lives in the spec.
pub const ALGORITHM_SEED_FLAG: &str = "--algorithm-seed";

/// Arguments after the binary name: `train --data ... --out ...`.
///
/// `threads` caps the trainer's worker threads (the Job passes its CPU limit). Progress goes
/// out as JSON lines (`--progress json`), which the local pool reads and which reads fine
/// in a Pod's log.
pub fn trainer_args(spec: &TrainingRunSpec, threads: Option<u32>) -> Vec<String> {
    let dataset = &spec.dataset;
    let mut args = vec![
        "train".to_owned(),
        "--data".to_owned(),
        dataset.uri.clone(),
        "--label-column".to_owned(),
        dataset.label_column.clone(),
        "--out".to_owned(),
        spec.output.uri.clone(),
    ];
    if let Some(columns) = &dataset.feature_columns {
        args.extend(["--feature-columns".to_owned(), columns.join(",")]);
    }
    match (
        &dataset.validation_uri,
        dataset.effective_validation_fraction(),
    ) {
        (Some(uri), _) => args.extend(["--validation-data".to_owned(), uri.clone()]),
        (None, Some(fraction)) => {
            args.extend(["--validation-fraction".to_owned(), fraction.to_string()])
        }
        (None, None) => {}
    }
    if let Some(seed) = dataset.seed {
        args.extend(["--seed".to_owned(), seed.to_string()]);
    }
    match spec.algorithm.selected() {
        Some(AlgorithmRef::LogisticRegression(lr)) => args.extend([
            "--max-iterations".to_owned(),
            lr.max_iterations.to_string(),
            "--l2-penalty".to_owned(),
            lr.l2_penalty.to_string(),
            "--tolerance".to_owned(),
            lr.tolerance.to_string(),
        ]),
        Some(AlgorithmRef::LinearRegression(lr)) => args.extend([
            "--algorithm".to_owned(),
            "linear-regression".to_owned(),
            "--task".to_owned(),
            spec.task.as_str().to_owned(),
            "--l2-penalty".to_owned(),
            lr.l2_penalty.to_string(),
            "--l1-ratio".to_owned(),
            lr.l1_ratio.to_string(),
            "--fit-intercept".to_owned(),
            lr.fit_intercept.to_string(),
            "--max-iterations".to_owned(),
            lr.max_iterations.to_string(),
            "--tolerance".to_owned(),
            lr.tolerance.to_string(),
        ]),
        Some(AlgorithmRef::GradientBoostedTrees(gb)) => {
            args.extend([
                "--algorithm".to_owned(),
                "gradient-boosted-trees".to_owned(),
                "--task".to_owned(),
                spec.task.as_str().to_owned(),
                "--max-iterations".to_owned(),
                gb.max_iterations.to_string(),
                "--learning-rate".to_owned(),
                gb.learning_rate.to_string(),
                "--max-leaves".to_owned(),
                gb.max_leaves.to_string(),
            ]);
            if let Some(depth) = gb.max_depth {
                args.extend(["--max-depth".to_owned(), depth.to_string()]);
            }
            args.extend([
                "--min-samples-leaf".to_owned(),
                gb.min_samples_leaf.to_string(),
                "--l2-penalty".to_owned(),
                gb.l2_penalty.to_string(),
                "--max-bins".to_owned(),
                gb.max_bins.to_string(),
                "--subsample".to_owned(),
                gb.subsample.to_string(),
                "--feature-fraction".to_owned(),
                gb.feature_fraction.to_string(),
            ]);
            if let Some(rounds) = gb.early_stopping_rounds {
                args.extend(["--early-stopping-rounds".to_owned(), rounds.to_string()]);
            }
            args.extend([ALGORITHM_SEED_FLAG.to_owned(), gb.seed.to_string()]);
        }
        Some(AlgorithmRef::RandomForest(rf)) => {
            args.extend([
                "--algorithm".to_owned(),
                "random-forest".to_owned(),
                "--task".to_owned(),
                spec.task.as_str().to_owned(),
                "--num-trees".to_owned(),
                rf.num_trees.to_string(),
            ]);
            if let Some(depth) = rf.max_depth {
                args.extend(["--max-depth".to_owned(), depth.to_string()]);
            }
            args.extend([
                "--min-samples-leaf".to_owned(),
                rf.min_samples_leaf.to_string(),
            ]);
            if let Some(features) = &rf.max_features {
                args.extend(["--max-features".to_owned(), features.clone()]);
            }
            args.extend([
                "--bootstrap".to_owned(),
                rf.bootstrap.to_string(),
                ALGORITHM_SEED_FLAG.to_owned(),
                rf.seed.to_string(),
            ]);
        }
        None => {}
    }
    if let Some(threads) = threads {
        args.extend(["--threads".to_owned(), threads.to_string()]);
    }
    args.extend(["--progress".to_owned(), "json".to_owned()]);
    args
}

/// Trainer threads for a container with `resources`: its CPU limit (else request) rounded up,
/// at least 1; `None` lets the trainer use every core it sees.
pub fn trainer_threads(resources: Option<&ResourceRequirements>) -> Option<u32> {
    let resources = resources?;
    let cpu = resources
        .limits
        .as_ref()
        .and_then(|l| l.get("cpu"))
        .or_else(|| resources.requests.as_ref().and_then(|r| r.get("cpu")))?;
    cpu_cores(cpu)
}

/// Cores in a CPU quantity, rounded up: `"2"` -> 2, `"1500m"` -> 2, `"0.5"` -> 1.
pub fn cpu_cores(quantity: &Quantity) -> Option<u32> {
    let text = quantity.0.trim();
    let cores = match text.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok()? / 1000.0,
        None => text.parse::<f64>().ok()?,
    };
    (cores.is_finite() && cores > 0.0).then(|| cores.ceil().max(1.0) as u32)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(yaml: &str) -> TrainingRunSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn mirrors_the_spec() {
        let args = trainer_args(
            &spec(
                "algorithm: {logisticRegression: {maxIterations: 200, l2Penalty: 0.5}}\n\
                 dataset: {uri: s3://data/churn.csv, labelColumn: y, seed: 7, featureColumns: [a, b]}\n\
                 output: {uri: s3://models/churn/}",
            ),
            Some(2),
        );
        assert_eq!(
            args.join(" "),
            "train --data s3://data/churn.csv --label-column y --out s3://models/churn/ \
             --feature-columns a,b --validation-fraction 0.2 --seed 7 --max-iterations 200 \
             --l2-penalty 0.5 --tolerance 0.0001 --threads 2 --progress json"
        );
    }

    #[test]
    fn env_reports_to_kubernetes_only_when_asked() {
        let run = TrainingRun::test("churn")
            .with_spec("storage: {secretRef: {name: s3}, region: eu-west-1}");
        let defaults = StorageEnv {
            endpoint: Some("http://s3.local:8333".to_owned()),
            region: Some("us-east-1".to_owned()),
        };
        let names = |env: &[TrainerEnvVar]| env.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        let kube = trainer_env(&run, &defaults, StatusReport::Kubernetes);
        assert_eq!(
            names(&kube),
            [
                ENV_RUN_NAME,
                ENV_RUN_NAMESPACE,
                "AWS_ALLOW_HTTP",
                "AWS_ENDPOINT_URL",
                "AWS_REGION",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN"
            ]
        );
        assert_eq!(kube[1].value, EnvValue::Value("ml".to_owned()));
        assert_eq!(kube[4].value, EnvValue::Value("eu-west-1".to_owned()));
        let local = trainer_env(&run, &defaults, StatusReport::Stdout);
        assert!(
            local.iter().all(|e| !e.name.starts_with(ENV_PREFIX)),
            "{local:?}"
        );
        assert_eq!(local.len(), kube.len() - 2);
    }

    #[test]
    fn linear_regression_names_its_algorithm_and_task() {
        let args = trainer_args(
            &spec(
                "algorithm: {linearRegression: {l2Penalty: 0.5, l1Ratio: 1, fitIntercept: false}}\n\
                 task: regression\n\
                 dataset: {uri: /d/train.csv, labelColumn: target}\n\
                 output: {uri: /m/}",
            ),
            None,
        );
        let line = args.join(" ");
        assert!(
            line.contains(
                "--algorithm linear-regression --task regression --l2-penalty 0.5 --l1-ratio 1 \
                 --fit-intercept false --max-iterations 1000 --tolerance 0.0001"
            ),
            "{line}"
        );
    }

    #[test]
    fn gradient_boosted_trees_name_their_algorithm_task_and_every_parameter() {
        let args = trainer_args(
            &spec(
                "algorithm: {gradientBoostedTrees: {maxIterations: 50, learningRate: 0.05, \
                 maxDepth: 6, subsample: 0.8, earlyStoppingRounds: 10, seed: 3}}\n\
                 dataset: {uri: /d/train.csv, seed: 7}\n\
                 output: {uri: /m/}",
            ),
            None,
        );
        let line = args.join(" ");
        assert!(
            line.contains(
                "--seed 7 --algorithm gradient-boosted-trees --task classification \
                 --max-iterations 50 --learning-rate 0.05 --max-leaves 31 --max-depth 6 \
                 --min-samples-leaf 20 --l2-penalty 0 --max-bins 255 --subsample 0.8 \
                 --feature-fraction 1 --early-stopping-rounds 10 --algorithm-seed 3 --progress"
            ),
            "{line}"
        );
        // Unset optional parameters are left out, so the trainer's defaults apply.
        let args = trainer_args(
            &spec(
                "algorithm: {gradientBoostedTrees: {}}\ntask: regression\n\
                 dataset: {uri: /d/train.csv}\noutput: {uri: /m/}",
            ),
            None,
        );
        let line = args.join(" ");
        assert!(line.contains("--task regression"), "{line}");
        assert!(!line.contains("--max-depth"), "{line}");
        assert!(!line.contains("--early-stopping-rounds"), "{line}");
        assert!(line.contains("--algorithm-seed 0"), "{line}");
    }

    #[test]
    fn random_forest_names_its_algorithm_task_and_every_parameter() {
        let args = trainer_args(
            &spec(
                "algorithm: {randomForest: {numTrees: 300, maxDepth: 12, minSamplesLeaf: 5, \
                 maxFeatures: '0.33', bootstrap: false, seed: 11}}\n\
                 task: regression\n\
                 dataset: {uri: /d/train.csv, labelColumn: target}\n\
                 output: {uri: /m/}",
            ),
            Some(2),
        );
        let line = args.join(" ");
        assert!(
            line.contains(
                "--algorithm random-forest --task regression --num-trees 300 --max-depth 12 \
                 --min-samples-leaf 5 --max-features 0.33 --bootstrap false --algorithm-seed 11 \
                 --threads 2"
            ),
            "{line}"
        );
        let args = trainer_args(
            &spec(
                "algorithm: {randomForest: {}}\n\
                 dataset: {uri: /d/train.csv}\noutput: {uri: /m/}",
            ),
            None,
        );
        let line = args.join(" ");
        assert!(
            line.contains(
                "--algorithm random-forest --task classification --num-trees 100 \
                 --min-samples-leaf 1 --bootstrap true --algorithm-seed 0"
            ),
            "{line}"
        );
        assert!(!line.contains("--max-features"), "{line}");
        assert!(!line.contains("--max-depth"), "{line}");
    }

    #[test]
    fn separate_validation_data_replaces_the_split() {
        let args = trainer_args(
            &spec(
                "algorithm: {logisticRegression: {}}\n\
                 dataset: {uri: /d/train.csv, validationUri: /d/test.csv}\n\
                 output: {uri: /m/}",
            ),
            None,
        );
        let line = args.join(" ");
        assert!(line.contains("--validation-data /d/test.csv"), "{line}");
        assert!(!line.contains("--validation-fraction"), "{line}");
        assert!(!line.contains("--threads"), "{line}");
    }

    #[test]
    fn custom_runs_get_the_contract_environment_and_the_wrapper_command() {
        let run = TrainingRun::test("churn").with_spec(
            "custom: {image: example/sk:1, command: [python, /app/train.py], args: [--fast], \
             params: {n_estimators: '200'}}\n\
             algorithm: null\n\
             dataset: {uri: s3://d/churn.csv, labelColumn: y, featureColumns: [a, b]}\n\
             storage: {secretRef: {name: s3}}",
        );
        let custom = run.spec.custom.clone().unwrap();
        let dirs = CustomDirs {
            model: "/kubetrain/model".into(),
            data: "/kubetrain/data".into(),
        };
        let env = custom_env(&run, &custom, &StorageEnv::default(), Some(2), &dirs);
        let value = |name: &str| {
            env.iter()
                .find(|e| e.name == name)
                .map(|e| e.value.clone())
                .unwrap_or_else(|| panic!("no {name} in {env:?}"))
        };
        let literal = |v: &str| EnvValue::Value(v.to_owned());
        assert_eq!(value(ENV_CONTRACT), literal("1"));
        assert_eq!(value(ENV_RUN_NAME), literal("churn"));
        assert_eq!(value("KUBETRAIN_DATA"), literal("s3://d/churn.csv"));
        assert_eq!(value("KUBETRAIN_VALIDATION_FRACTION"), literal("0.2"));
        assert_eq!(value("KUBETRAIN_SEED"), literal("0"));
        assert_eq!(value("KUBETRAIN_LABEL_COLUMN"), literal("y"));
        assert_eq!(value("KUBETRAIN_FEATURE_COLUMNS"), literal("a,b"));
        assert_eq!(value("KUBETRAIN_TASK"), literal("classification"));
        assert_eq!(value(ENV_MODEL_DIR), literal("/kubetrain/model"));
        assert_eq!(
            value("KUBETRAIN_PARAMS"),
            literal(r#"{"n_estimators":"200"}"#)
        );
        assert_eq!(value("KUBETRAIN_THREADS"), literal("2"));
        assert!(matches!(
            value("AWS_SECRET_ACCESS_KEY"),
            EnvValue::SecretKey { .. }
        ));
        assert_eq!(
            exec_args(&custom, StatusReport::Kubernetes, &dirs).join(" "),
            "exec --report kubernetes --download-dir /kubetrain/data -- python /app/train.py --fast"
        );
    }

    #[test]
    fn cpu_quantities_round_up() {
        let q = |s: &str| cpu_cores(&Quantity(s.to_owned()));
        assert_eq!(q("2"), Some(2));
        assert_eq!(q("1500m"), Some(2));
        assert_eq!(q("0.5"), Some(1));
        assert_eq!(q("250m"), Some(1));
        assert_eq!(q("nonsense"), None);
    }
}
