//! A TrainingRun to submit: from a manifest (YAML or JSON; what `kubectl apply -f` takes works
//! as is) or from command-line flags. Both end in the same checked deserialization, so a bad
//! field is reported by its path whichever way the run was written.

use std::collections::BTreeMap;
use std::path::Path;

use kubetrain_api::TrainingRun;
use serde_json::{Map, Value, json};

use crate::ClientError;

pub use kubetrain_api::API_VERSION;
/// `kind` of a TrainingRun.
pub const KIND: &str = "TrainingRun";

/// Parse a TrainingRun manifest. `source` names the input in errors (a path or `stdin`).
///
/// `apiVersion` and `kind` may be left out; when present they must be a TrainingRun's.
/// `status` is dropped: the gateway owns it.
pub fn parse_manifest(text: &str, source: &str) -> Result<TrainingRun, ClientError> {
    let mut documents = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value: Value = serde_path_to_error::deserialize(document).map_err(|error| {
            ClientError::Manifest(format!("{source}: not valid YAML or JSON: {error}"))
        })?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    let value = match documents.len() {
        1 => documents.remove(0),
        0 => {
            return Err(ClientError::Manifest(format!(
                "{source}: empty: expected one TrainingRun manifest (apiVersion: {API_VERSION}, kind: {KIND}, metadata, spec)"
            )));
        }
        n => {
            return Err(ClientError::Manifest(format!(
                "{source}: holds {n} YAML documents; submit takes exactly one TrainingRun"
            )));
        }
    };
    run_from_value(value, source)
}

/// Check and complete `apiVersion` and `kind`, then deserialize with the path of any bad field.
fn run_from_value(value: Value, source: &str) -> Result<TrainingRun, ClientError> {
    let Value::Object(mut object) = value else {
        return Err(ClientError::Manifest(format!(
            "{source}: expected a TrainingRun object (apiVersion, kind, metadata, spec), found {}",
            kind_of(&value)
        )));
    };
    for (key, expected) in [("apiVersion", API_VERSION), ("kind", KIND)] {
        match object.get(key) {
            None | Some(Value::Null) => {
                object.insert(key.to_owned(), Value::String(expected.to_owned()));
            }
            Some(Value::String(found)) if found == expected => {}
            Some(found) => {
                return Err(ClientError::Manifest(format!(
                    "{source}: {key}: expected {expected:?}, found {found}"
                )));
            }
        }
    }
    if !object.contains_key("spec") {
        return Err(ClientError::Manifest(format!(
            "{source}: spec: missing; a TrainingRun needs spec.algorithm, spec.dataset and spec.output"
        )));
    }
    object.remove("status");
    object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|error| {
        let path = error.path().to_string();
        ClientError::Manifest(format!("{source}: {path}: {}", error.into_inner()))
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A run written as command-line flags: what `kubetrain train` takes, plus run settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFlags {
    /// Training data URI (`s3://`, `file://`, or a path; a relative path is made absolute).
    pub data: String,
    /// Column holding the labels.
    pub label_column: Option<String>,
    /// Output prefix for `model.json` and `summary.json`.
    pub out: String,
    /// `spec.dataset.featureColumns`.
    pub feature_columns: Option<Vec<String>>,
    /// `spec.dataset.validationFraction`.
    pub validation_fraction: Option<f64>,
    /// `spec.dataset.validationUri`.
    pub validation_data: Option<String>,
    /// `spec.dataset.seed`: the seed of the validation split.
    pub seed: Option<i64>,
    /// The member of `spec.algorithm`: `logistic-regression` (the default),
    /// `linear-regression`, `gradient-boosted-trees` or `random-forest`.
    pub algorithm: Option<String>,
    /// `spec.task`: `classification` or `regression`; defaults to the algorithm's task
    /// (`classification` for the tree algorithms, which do both).
    pub task: Option<String>,
    /// `spec.algorithm.<member>.maxIterations` (logistic, linear, gradient-boosted trees).
    pub max_iterations: Option<u32>,
    /// `spec.algorithm.<member>.l2Penalty` (logistic, linear, gradient-boosted trees).
    pub l2_penalty: Option<f64>,
    /// `spec.algorithm.<member>.tolerance` (logistic, linear).
    pub tolerance: Option<f64>,
    /// `spec.algorithm.linearRegression.l1Ratio`.
    pub l1_ratio: Option<f64>,
    /// `spec.algorithm.linearRegression.fitIntercept`.
    pub fit_intercept: Option<bool>,
    /// `spec.algorithm.gradientBoostedTrees.learningRate`.
    pub learning_rate: Option<f64>,
    /// `spec.algorithm.gradientBoostedTrees.maxLeaves`.
    pub max_leaves: Option<u32>,
    /// `spec.algorithm.<member>.maxDepth` (the tree algorithms).
    pub max_depth: Option<u32>,
    /// `spec.algorithm.<member>.minSamplesLeaf` (the tree algorithms).
    pub min_samples_leaf: Option<u32>,
    /// `spec.algorithm.gradientBoostedTrees.maxBins`.
    pub max_bins: Option<u32>,
    /// `spec.algorithm.gradientBoostedTrees.subsample`.
    pub subsample: Option<f64>,
    /// `spec.algorithm.gradientBoostedTrees.featureFraction`.
    pub feature_fraction: Option<f64>,
    /// `spec.algorithm.gradientBoostedTrees.earlyStoppingRounds`.
    pub early_stopping_rounds: Option<u32>,
    /// `spec.algorithm.randomForest.numTrees`.
    pub num_trees: Option<u32>,
    /// `spec.algorithm.randomForest.maxFeatures`: `sqrt`, `log2`, `all` or a fraction.
    pub max_features: Option<String>,
    /// `spec.algorithm.randomForest.bootstrap`.
    pub bootstrap: Option<bool>,
    /// `spec.algorithm.<member>.seed` (the tree algorithms; flag `--algorithm-seed`, as
    /// `--seed` is the split's).
    pub algorithm_seed: Option<i64>,
    /// `spec.backoffLimit`.
    pub backoff_limit: Option<i32>,
    /// `spec.activeDeadlineSeconds`.
    pub active_deadline_seconds: Option<i64>,
    /// `spec.ttlSecondsAfterFinished`.
    pub ttl_seconds_after_finished: Option<i32>,
    /// `spec.storage.secretRef.name`: a Secret in the run's namespace with the S3 credentials.
    pub storage_secret: Option<String>,
    /// `spec.storage.endpoint`: the S3 endpoint URL.
    pub storage_endpoint: Option<String>,
    /// `spec.storage.region`: the S3 region.
    pub storage_region: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

/// Build a TrainingRun from flags. Relative paths are resolved against `cwd`, so a gateway on
/// this machine (`kubetrain local`) finds the same files. The name is left to
/// [`set_name`].
pub fn run_from_flags(flags: &RunFlags, cwd: &Path) -> Result<TrainingRun, ClientError> {
    let (member, default_task) = match flags.algorithm.as_deref() {
        None | Some("logistic-regression") => ("logisticRegression", "classification"),
        Some("linear-regression") => ("linearRegression", "regression"),
        Some("gradient-boosted-trees") => ("gradientBoostedTrees", "classification"),
        Some("random-forest") => ("randomForest", "classification"),
        Some(other) => {
            return Err(ClientError::Manifest(format!(
                "--algorithm {other} is not known; valid: logistic-regression, \
                 linear-regression, gradient-boosted-trees, random-forest"
            )));
        }
    };
    const LINEAR: &[&str] = &["logisticRegression", "linearRegression"];
    const BOOSTED: &[&str] = &["gradientBoostedTrees"];
    const FOREST: &[&str] = &["randomForest"];
    const TREES: &[&str] = &["gradientBoostedTrees", "randomForest"];
    const ITERATIVE: &[&str] = &[
        "logisticRegression",
        "linearRegression",
        "gradientBoostedTrees",
    ];
    // Each flag: its field, its value, and the members that have the field.
    let params_given: [(&str, &str, Option<Value>, &[&str]); 17] = [
        (
            "--max-iterations",
            "maxIterations",
            flags.max_iterations.map(|n| json!(n)),
            ITERATIVE,
        ),
        (
            "--l2-penalty",
            "l2Penalty",
            flags.l2_penalty.map(|x| json!(x)),
            ITERATIVE,
        ),
        (
            "--tolerance",
            "tolerance",
            flags.tolerance.map(|x| json!(x)),
            LINEAR,
        ),
        (
            "--l1-ratio",
            "l1Ratio",
            flags.l1_ratio.map(|x| json!(x)),
            &["linearRegression"],
        ),
        (
            "--fit-intercept",
            "fitIntercept",
            flags.fit_intercept.map(|x| json!(x)),
            &["linearRegression"],
        ),
        (
            "--learning-rate",
            "learningRate",
            flags.learning_rate.map(|x| json!(x)),
            BOOSTED,
        ),
        (
            "--max-leaves",
            "maxLeaves",
            flags.max_leaves.map(|n| json!(n)),
            BOOSTED,
        ),
        (
            "--max-depth",
            "maxDepth",
            flags.max_depth.map(|n| json!(n)),
            TREES,
        ),
        (
            "--min-samples-leaf",
            "minSamplesLeaf",
            flags.min_samples_leaf.map(|n| json!(n)),
            TREES,
        ),
        (
            "--max-bins",
            "maxBins",
            flags.max_bins.map(|n| json!(n)),
            BOOSTED,
        ),
        (
            "--subsample",
            "subsample",
            flags.subsample.map(|x| json!(x)),
            BOOSTED,
        ),
        (
            "--feature-fraction",
            "featureFraction",
            flags.feature_fraction.map(|x| json!(x)),
            BOOSTED,
        ),
        (
            "--early-stopping-rounds",
            "earlyStoppingRounds",
            flags.early_stopping_rounds.map(|n| json!(n)),
            BOOSTED,
        ),
        (
            "--num-trees",
            "numTrees",
            flags.num_trees.map(|n| json!(n)),
            FOREST,
        ),
        (
            "--max-features",
            "maxFeatures",
            flags.max_features.as_ref().map(|x| json!(x)),
            FOREST,
        ),
        (
            "--bootstrap",
            "bootstrap",
            flags.bootstrap.map(|x| json!(x)),
            FOREST,
        ),
        (
            "--algorithm-seed",
            "seed",
            flags.algorithm_seed.map(|n| json!(n)),
            TREES,
        ),
    ];
    let mut params = Map::new();
    for (flag, field, value, members) in params_given {
        let Some(value) = value else { continue };
        if !members.contains(&member) {
            let algorithms: Vec<&str> = members.iter().map(|m| algorithm_flag(m)).collect();
            return Err(ClientError::Manifest(format!(
                "{flag} is a parameter of --algorithm {}, not {}",
                algorithms.join(", "),
                algorithm_flag(member)
            )));
        }
        params.insert(field.into(), value);
    }
    let mut dataset = Map::new();
    dataset.insert("uri".into(), json!(absolute_uri(&flags.data, cwd)));
    dataset.insert("format".into(), json!("csv"));
    if let Some(column) = &flags.label_column {
        dataset.insert("labelColumn".into(), json!(column));
    }
    if let Some(columns) = &flags.feature_columns {
        dataset.insert("featureColumns".into(), json!(columns));
    }
    if let Some(fraction) = flags.validation_fraction {
        dataset.insert("validationFraction".into(), json!(fraction));
    }
    if let Some(uri) = &flags.validation_data {
        dataset.insert("validationUri".into(), json!(absolute_uri(uri, cwd)));
    }
    if let Some(seed) = flags.seed {
        dataset.insert("seed".into(), json!(seed));
    }
    let mut spec = Map::new();
    spec.insert("algorithm".into(), json!({ member: Value::Object(params) }));
    spec.insert(
        "task".into(),
        json!(flags.task.as_deref().unwrap_or(default_task)),
    );
    spec.insert("dataset".into(), Value::Object(dataset));
    spec.insert(
        "output".into(),
        json!({ "uri": absolute_uri(&flags.out, cwd) }),
    );
    if let Some(n) = flags.backoff_limit {
        spec.insert("backoffLimit".into(), json!(n));
    }
    if let Some(n) = flags.active_deadline_seconds {
        spec.insert("activeDeadlineSeconds".into(), json!(n));
    }
    if let Some(n) = flags.ttl_seconds_after_finished {
        spec.insert("ttlSecondsAfterFinished".into(), json!(n));
    }
    let mut storage = Map::new();
    if let Some(name) = &flags.storage_secret {
        storage.insert("secretRef".into(), json!({ "name": name }));
    }
    if let Some(endpoint) = &flags.storage_endpoint {
        storage.insert("endpoint".into(), json!(endpoint));
    }
    if let Some(region) = &flags.storage_region {
        storage.insert("region".into(), json!(region));
    }
    if !storage.is_empty() {
        spec.insert("storage".into(), Value::Object(storage));
    }
    let mut metadata = Map::new();
    if !flags.labels.is_empty() {
        metadata.insert("labels".into(), json!(flags.labels));
    }
    run_from_value(
        json!({ "metadata": Value::Object(metadata), "spec": Value::Object(spec) }),
        "flags",
    )
}

/// The `--algorithm` value of a member of `spec.algorithm`.
fn algorithm_flag(member: &str) -> &'static str {
    match member {
        "linearRegression" => "linear-regression",
        "gradientBoostedTrees" => "gradient-boosted-trees",
        "randomForest" => "random-forest",
        _ => "logistic-regression",
    }
}

/// `uri` unchanged when it has a scheme or is absolute; otherwise the absolute path of the
/// relative path `uri` under `cwd`.
pub fn absolute_uri(uri: &str, cwd: &Path) -> String {
    if uri.contains("://") || Path::new(uri).is_absolute() {
        return uri.to_owned();
    }
    // `./models/` and `models/` name the same place; say it without the `.`.
    let relative: std::path::PathBuf = Path::new(uri)
        .components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect();
    let mut text = cwd.join(relative).to_string_lossy().into_owned();
    // A trailing slash says "prefix" to the trainer; keep it.
    if uri.ends_with('/') && !text.ends_with('/') {
        text.push('/');
    }
    text
}

/// Parse `key=value` (a label given on the command line).
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, e.g. team=ml, found {text:?}")),
    }
}

/// Give the run its name: `name` or `generate_name` when given (a manifest's own is replaced),
/// else the manifest's, else a `generateName` from the data file's name (`breast-cancer-`).
pub fn set_name(
    run: &mut TrainingRun,
    name: Option<&str>,
    generate_name: Option<&str>,
) -> Result<(), ClientError> {
    match (name, generate_name) {
        (Some(_), Some(_)) => {
            return Err(ClientError::Manifest(
                "give --name or --generate-name, not both".to_owned(),
            ));
        }
        (Some(name), None) => {
            run.metadata.name = Some(name.to_owned());
            run.metadata.generate_name = None;
        }
        (None, Some(prefix)) => {
            run.metadata.name = None;
            run.metadata.generate_name = Some(prefix.to_owned());
        }
        (None, None) => {
            if run.metadata.name.is_none() && run.metadata.generate_name.is_none() {
                run.metadata.generate_name = Some(generate_name_for(&run.spec.dataset.uri));
            }
        }
    }
    Ok(())
}

/// A `generateName` prefix from a dataset URI: its file stem as a DNS label, then `-`.
pub fn generate_name_for(uri: &str) -> String {
    let stem = uri
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let stem = stem.split('.').next().unwrap_or_default();
    let mut label = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            label.push(c.to_ascii_lowercase());
        } else if !label.ends_with('-') {
            label.push('-');
        }
    }
    let label: String = label.trim_matches('-').chars().take(40).collect();
    let label = label.trim_end_matches('-');
    if label.is_empty() || !label.starts_with(|c: char| c.is_ascii_alphabetic()) {
        "run-".to_owned()
    } else {
        format!("{label}-")
    }
}

/// The namespace to submit to: `--namespace` or the manifest's (`default` when neither);
/// both given and different is an error, as with kubectl.
pub fn resolve_namespace(flag: Option<&str>, run: &TrainingRun) -> Result<String, ClientError> {
    let manifest = run.metadata.namespace.as_deref();
    match (flag, manifest) {
        (Some(flag), Some(manifest)) if flag != manifest => Err(ClientError::Manifest(format!(
            "the namespace of the manifest ({manifest}) does not match --namespace ({flag}); \
             drop one of them"
        ))),
        (Some(flag), _) => Ok(flag.to_owned()),
        (None, Some(manifest)) => Ok(manifest.to_owned()),
        (None, None) => Ok("default".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sample(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/examples")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_binary_sample_parses_as_is() {
        let run = parse_manifest(&sample("logistic-regression-binary.yaml"), "sample").unwrap();
        assert_eq!(run.metadata.name.as_deref(), Some("breast-cancer"));
        let logistic = run.spec.algorithm.logistic_regression.as_ref().unwrap();
        assert_eq!(logistic.max_iterations, 200);
        assert_eq!(
            run.spec.dataset.uri,
            "s3://kubetrain-samples/breast-cancer/train.csv"
        );
        assert_eq!(run.spec.active_deadline_seconds, Some(900));
    }

    #[test]
    fn the_multiclass_sample_parses_as_is() {
        let run = parse_manifest(&sample("logistic-regression-multiclass.yaml"), "sample").unwrap();
        assert_eq!(run.metadata.name.as_deref(), Some("digits"));
        assert_eq!(run.spec.dataset.validation_fraction, Some(0.2));
        assert_eq!(run.spec.ttl_seconds_after_finished, Some(86400));
    }

    #[test]
    fn json_without_api_version_and_kind_is_a_run() {
        let run = parse_manifest(
            r#"{"metadata":{"generateName":"x-"},"spec":{"algorithm":{"logisticRegression":{}},"dataset":{"uri":"/d.csv"},"output":{"uri":"/m/"}}}"#,
            "run.json",
        )
        .unwrap();
        assert_eq!(run.metadata.generate_name.as_deref(), Some("x-"));
        assert_eq!(run.spec.dataset.label_column, "label");
    }

    #[test]
    fn a_bad_field_is_named_by_its_path() {
        let error = parse_manifest(
            "spec:\n  algorithm: {logisticRegression: {maxIterations: many}}\n  dataset: {uri: /d.csv}\n  output: {uri: /m/}\n",
            "run.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("run.yaml: spec.algorithm.logisticRegression.maxIterations: "),
            "{error}"
        );
    }

    #[test]
    fn another_kind_is_refused() {
        let error = parse_manifest("apiVersion: v1\nkind: Secret\nspec: {}\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "s.yaml: apiVersion: expected \"kubetrain.dev/v1alpha1\", found \"v1\""
        );
    }

    #[test]
    fn several_documents_are_refused() {
        let text = format!(
            "{}\n---\n{}",
            sample("logistic-regression-binary.yaml"),
            sample("logistic-regression-multiclass.yaml")
        );
        let error = parse_manifest(&text, "two.yaml").unwrap_err().to_string();
        assert!(error.contains("holds 2 YAML documents"), "{error}");
    }

    #[test]
    fn flags_make_a_run_with_absolute_paths() {
        let flags = RunFlags {
            data: "tests/data/breast_cancer_train.csv".into(),
            out: "./out/model/".into(),
            label_column: Some("label".into()),
            max_iterations: Some(300),
            validation_fraction: Some(0.25),
            labels: BTreeMap::from([("team".into(), "ml".into())]),
            ..RunFlags::default()
        };
        let mut run = run_from_flags(&flags, Path::new("/work")).unwrap();
        assert_eq!(
            run.spec.dataset.uri,
            "/work/tests/data/breast_cancer_train.csv"
        );
        assert_eq!(run.spec.output.uri, "/work/out/model/");
        assert_eq!(run.spec.dataset.validation_fraction, Some(0.25));
        assert_eq!(
            run.spec
                .algorithm
                .logistic_regression
                .as_ref()
                .unwrap()
                .max_iterations,
            300
        );
        assert_eq!(
            run.metadata.labels.as_ref().unwrap().get("team").unwrap(),
            "ml"
        );
        set_name(&mut run, None, None).unwrap();
        assert_eq!(
            run.metadata.generate_name.as_deref(),
            Some("breast-cancer-train-")
        );
    }

    #[test]
    fn algorithm_flags_pick_the_member_and_its_task() {
        let flags = RunFlags {
            data: "/d/diabetes.csv".into(),
            out: "/m/".into(),
            algorithm: Some("linear-regression".into()),
            l1_ratio: Some(0.5),
            fit_intercept: Some(false),
            ..RunFlags::default()
        };
        let run = run_from_flags(&flags, Path::new("/")).unwrap();
        assert_eq!(run.spec.task, kubetrain_api::Task::Regression);
        let linear = run.spec.algorithm.linear_regression.unwrap();
        assert_eq!((linear.l1_ratio, linear.fit_intercept), (0.5, false));
        assert!(run.spec.algorithm.logistic_regression.is_none());
        let unknown = RunFlags {
            algorithm: Some("svm".into()),
            ..flags.clone()
        };
        let error = run_from_flags(&unknown, Path::new("/")).unwrap_err();
        assert!(
            error.to_string().contains(
                "logistic-regression, linear-regression, gradient-boosted-trees, random-forest"
            ),
            "{error}"
        );
        let misplaced = RunFlags {
            algorithm: None,
            ..flags
        };
        let error = run_from_flags(&misplaced, Path::new("/")).unwrap_err();
        assert!(error.to_string().contains("--l1-ratio"), "{error}");
    }

    #[test]
    fn gradient_boosted_trees_flags_fill_their_member() {
        let flags = RunFlags {
            data: "/d/breast_cancer.csv".into(),
            out: "/m/".into(),
            algorithm: Some("gradient-boosted-trees".into()),
            max_iterations: Some(300),
            learning_rate: Some(0.05),
            max_leaves: Some(15),
            max_depth: Some(6),
            min_samples_leaf: Some(10),
            l2_penalty: Some(0.5),
            max_bins: Some(63),
            subsample: Some(0.8),
            feature_fraction: Some(0.9),
            early_stopping_rounds: Some(20),
            algorithm_seed: Some(42),
            seed: Some(7),
            ..RunFlags::default()
        };
        let run = run_from_flags(&flags, Path::new("/")).unwrap();
        assert_eq!(run.spec.task, kubetrain_api::Task::Classification);
        assert_eq!(run.spec.dataset.seed, Some(7));
        assert_eq!(
            run.spec.algorithm.gradient_boosted_trees,
            Some(kubetrain_api::GradientBoostedTrees {
                max_iterations: 300,
                learning_rate: 0.05,
                max_leaves: 15,
                max_depth: Some(6),
                min_samples_leaf: 10,
                l2_penalty: 0.5,
                max_bins: 63,
                subsample: 0.8,
                feature_fraction: 0.9,
                early_stopping_rounds: Some(20),
                seed: 42,
            })
        );
        assert_eq!(run.spec.algorithm.name(), Some("gradientBoostedTrees"));
        // Unset flags leave the spec's defaults; a flag of another algorithm is refused.
        let defaults = RunFlags {
            data: "/d/diabetes.csv".into(),
            out: "/m/".into(),
            algorithm: Some("gradient-boosted-trees".into()),
            task: Some("regression".into()),
            ..RunFlags::default()
        };
        let run = run_from_flags(&defaults, Path::new("/")).unwrap();
        assert_eq!(run.spec.task, kubetrain_api::Task::Regression);
        assert_eq!(
            run.spec.algorithm.gradient_boosted_trees,
            Some(kubetrain_api::GradientBoostedTrees::default())
        );
        let misplaced = RunFlags {
            num_trees: Some(10),
            ..defaults
        };
        let error = run_from_flags(&misplaced, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "--num-trees is a parameter of --algorithm random-forest, not gradient-boosted-trees"
        );
    }

    #[test]
    fn random_forest_flags_fill_their_member() {
        let flags = RunFlags {
            data: "/d/diabetes.csv".into(),
            out: "/m/".into(),
            algorithm: Some("random-forest".into()),
            task: Some("regression".into()),
            num_trees: Some(200),
            max_depth: Some(10),
            min_samples_leaf: Some(2),
            max_features: Some("0.33".into()),
            bootstrap: Some(false),
            algorithm_seed: Some(5),
            ..RunFlags::default()
        };
        let run = run_from_flags(&flags, Path::new("/")).unwrap();
        assert_eq!(run.spec.task, kubetrain_api::Task::Regression);
        assert_eq!(
            run.spec.algorithm.random_forest,
            Some(kubetrain_api::RandomForest {
                num_trees: 200,
                max_depth: Some(10),
                min_samples_leaf: 2,
                max_features: Some("0.33".into()),
                bootstrap: false,
                seed: 5,
            })
        );
        let defaults = RunFlags {
            task: None,
            ..RunFlags::default()
        };
        let run = run_from_flags(
            &RunFlags {
                algorithm: Some("random-forest".into()),
                data: "/d.csv".into(),
                out: "/m/".into(),
                ..defaults
            },
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(run.spec.task, kubetrain_api::Task::Classification);
        assert_eq!(
            run.spec.algorithm.random_forest,
            Some(kubetrain_api::RandomForest::default())
        );
        for (misplaced, flag) in [
            (
                RunFlags {
                    max_iterations: Some(5),
                    ..flags.clone()
                },
                "--max-iterations",
            ),
            (
                RunFlags {
                    learning_rate: Some(0.1),
                    ..flags.clone()
                },
                "--learning-rate",
            ),
            (
                RunFlags {
                    tolerance: Some(0.1),
                    ..flags.clone()
                },
                "--tolerance",
            ),
        ] {
            let error = run_from_flags(&misplaced, Path::new("/"))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(flag), "{error}");
        }
        // The tree flags are refused with the linear algorithms too.
        let logistic = RunFlags {
            algorithm: None,
            task: None,
            max_depth: Some(3),
            ..RunFlags::default()
        };
        let error = run_from_flags(&logistic, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "--max-depth is a parameter of --algorithm gradient-boosted-trees, random-forest, \
             not logistic-regression"
        );
    }

    #[test]
    fn storage_flags_set_spec_storage() {
        let flags = RunFlags {
            data: "s3://data/train.csv".into(),
            out: "s3://models/x/".into(),
            ..RunFlags::default()
        };
        let run = run_from_flags(&flags, Path::new("/work")).unwrap();
        assert_eq!(run.spec.storage, None, "no storage flags, no spec.storage");

        let flags = RunFlags {
            storage_secret: Some("s3-creds".into()),
            storage_endpoint: Some("http://seaweedfs.storage:8333".into()),
            storage_region: Some("eu-west-1".into()),
            ..flags
        };
        let storage = run_from_flags(&flags, Path::new("/work"))
            .unwrap()
            .spec
            .storage
            .unwrap();
        assert_eq!(storage.secret_ref.unwrap().name, "s3-creds");
        assert_eq!(
            storage.endpoint.as_deref(),
            Some("http://seaweedfs.storage:8333")
        );
        assert_eq!(storage.region.as_deref(), Some("eu-west-1"));

        let only_secret = RunFlags {
            storage_secret: Some("s3-creds".into()),
            storage_endpoint: None,
            storage_region: None,
            ..flags
        };
        let storage = run_from_flags(&only_secret, Path::new("/work"))
            .unwrap()
            .spec
            .storage
            .unwrap();
        assert_eq!(storage.secret_ref.unwrap().name, "s3-creds");
        assert_eq!((storage.endpoint, storage.region), (None, None));
    }

    #[test]
    fn uris_keep_their_scheme() {
        let cwd = Path::new("/here");
        assert_eq!(absolute_uri("s3://b/k.csv", cwd), "s3://b/k.csv");
        assert_eq!(absolute_uri("file:///d.csv", cwd), "file:///d.csv");
        assert_eq!(absolute_uri("/d.csv", cwd), "/d.csv");
        assert_eq!(absolute_uri("d.csv", cwd), "/here/d.csv");
    }

    #[test]
    fn generated_names_are_dns_labels() {
        assert_eq!(generate_name_for("s3://b/Churn_2024.v2.csv"), "churn-2024-");
        assert_eq!(generate_name_for("/data/123.csv"), "run-");
        assert_eq!(generate_name_for(""), "run-");
    }

    #[test]
    fn namespaces_must_agree() {
        let mut run = parse_manifest(&sample("logistic-regression-binary.yaml"), "s").unwrap();
        assert_eq!(resolve_namespace(None, &run).unwrap(), "default");
        run.metadata.namespace = Some("ml".into());
        assert_eq!(resolve_namespace(None, &run).unwrap(), "ml");
        assert_eq!(resolve_namespace(Some("ml"), &run).unwrap(), "ml");
        assert!(resolve_namespace(Some("other"), &run).is_err());
    }

    #[test]
    fn labels_need_an_equals_sign() {
        assert_eq!(parse_label("a=b").unwrap(), ("a".into(), "b".into()));
        assert!(parse_label("ab").is_err());
        assert!(parse_label("=b").is_err());
    }
}
