//! `TrainingRun.spec`: what to train, on which data, where the model goes, with what resources.
//!
//! Every doc comment here becomes the field's `kubectl explain` description, so they are
//! written for the person applying a manifest.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::TrainingRunStatus;

/// Default for `spec.backoffLimit`.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 2;
/// Default for `spec.dataset.validationFraction` when no `validationUri` is given.
pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.2;

/// A TrainingRun asks for one model to be trained: the algorithm and its parameters, the dataset
/// in S3-compatible storage, where to write the model, and the resources the training may use.
/// The spec is immutable after creation except `suspend` and `cancel`: to train again with other
/// settings, create a new run.
// clippy reads the repeated `type_` of the printer columns as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubetrain.dev",
    version = "v1alpha1",
    kind = "TrainingRun",
    plural = "trainingruns",
    shortname = "tr",
    category = "kubetrain",
    namespaced,
    status = "TrainingRunStatus",
    derive = "PartialEq",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Where the run is in its life: Pending, Queued, Running, Succeeded, Failed or Cancelled."
    ),
    printcolumn(
        name = "Algorithm",
        type_ = "string",
        json_path = ".status.algorithm",
        description = "The algorithm being trained."
    ),
    printcolumn(
        name = "Metric",
        type_ = "string",
        json_path = ".status.metrics.scoreName",
        description = "The metric Score shows: accuracy for classifiers, r2 for regressors."
    ),
    printcolumn(
        name = "Score",
        type_ = "number",
        json_path = ".status.metrics.score",
        description = "The primary score on the validation rows (see Metric)."
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = 1,
        description = "Why the run is in its phase."
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.algorithm.linearRegression) || (has(self.task) && self.task == 'regression')").message(LINEAR_NEEDS_REGRESSION).field_path(".task"))]
#[x_kube(validation = Rule::new("!has(self.algorithm.logisticRegression) || !has(self.task) || self.task == 'classification'").message(LOGISTIC_NEEDS_CLASSIFICATION).field_path(".task"))]
pub struct TrainingRunSpec {
    /// The algorithm to train and its parameters. Exactly one member must be set.
    pub algorithm: Algorithm,

    /// What the model predicts: `classification` (a class of the label column; the default)
    /// or `regression` (a number: the label column must hold numbers).
    #[serde(default)]
    pub task: Task,

    /// The training data.
    pub dataset: DatasetSpec,

    /// Where the trained model and its summary are written.
    pub output: OutputSpec,

    /// Access to the object storage holding the dataset and receiving the model. When unset,
    /// the controller's default storage configuration is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,

    /// Compute resources of the training container, as in a Pod: `requests` and `limits` of
    /// `cpu`, `memory` and `nvidia.com/gpu`. The trainer uses as many threads as the CPU limit
    /// (or request) allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Container image of the trainer. Defaults to the controller's configured trainer image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// How many times a failed training attempt is retried before the run fails. Bad input
    /// (unreadable data, a missing column) is never retried.
    #[serde(default = "default_backoff_limit")]
    #[schemars(range(min = 0, max = 100))]
    pub backoff_limit: i32,

    /// Wall-clock limit in seconds for the whole run once it started, retries included. The
    /// run fails with reason DeadlineExceeded when it passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub active_deadline_seconds: Option<i64>,

    /// How long in seconds the run may wait to start (to be scheduled and have its container
    /// running) before it fails instead of hanging Pending, e.g. when no node has the GPUs it
    /// asks for. Time spent suspended does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub start_deadline_seconds: Option<i64>,

    /// Seconds after the run finished (Succeeded, Failed or Cancelled) at which the run itself
    /// is deleted. The model stays in storage. Unset keeps the run forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,

    /// While true the run does not start (or its training is stopped and restarted later).
    /// Compatible with Kueue, which admits a suspended run by setting this to false.
    #[serde(default)]
    pub suspend: bool,

    /// Set to true to stop the run for good: its training is stopped and it ends Cancelled,
    /// with its record kept. Cannot be set back to false.
    #[serde(default)]
    pub cancel: bool,

    /// Node labels the training Pod must match, as in a Pod's `nodeSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,

    /// Tolerations of the training Pod, as in a Pod's `tolerations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub tolerations: Option<Vec<Toleration>>,

    /// PriorityClass of the training Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,

    /// ServiceAccount the training Pod runs as. It must be allowed to patch
    /// `trainingruns/status` in the run's namespace. Defaults to one the controller provisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,
}

fn default_backoff_limit() -> i32 {
    DEFAULT_BACKOFF_LIMIT
}

/// The algorithm to train. A union: exactly one member is set, and new algorithms are added as
/// new members, so existing manifests keep their meaning.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.logisticRegression), has(self.linearRegression)].filter(x, x).size() == 1").message(ALGORITHM_RULE))]
pub struct Algorithm {
    /// Logistic regression (binary, or multinomial for more than two classes) with an L2
    /// penalty, fit with L-BFGS. Task `classification`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logistic_regression: Option<LogisticRegression>,

    /// Linear least squares with an L2 (ridge), L1 (lasso) or elastic-net penalty. Task
    /// `regression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_regression: Option<LinearRegression>,
}

/// The message of the rule that exactly one algorithm is set.
pub const ALGORITHM_RULE: &str =
    "exactly one algorithm must be set; supported: logisticRegression, linearRegression";

/// The message of the rule that `linearRegression` runs have `task: regression`.
pub const LINEAR_NEEDS_REGRESSION: &str =
    "linearRegression predicts numbers: set task to regression";
/// The message of the rule that `logisticRegression` runs have `task: classification`.
pub const LOGISTIC_NEEDS_CLASSIFICATION: &str =
    "logisticRegression predicts classes: set task to classification";

/// What a model predicts.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)] // variants undocumented: see DataFormat
pub enum Task {
    #[default]
    Classification,
    Regression,
}

impl Task {
    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classification => "classification",
            Self::Regression => "regression",
        }
    }
}

/// The algorithm a run trains, borrowed from its spec: match on this instead of on the union's
/// optional members.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AlgorithmRef<'a> {
    /// `logisticRegression`.
    LogisticRegression(&'a LogisticRegression),
    /// `linearRegression`.
    LinearRegression(&'a LinearRegression),
}

impl Algorithm {
    /// The one algorithm that is set, or `None` when the union is empty (the API server's
    /// schema rejects that, so only hand-built specs can hit it).
    pub fn selected(&self) -> Option<AlgorithmRef<'_>> {
        match (&self.logistic_regression, &self.linear_regression) {
            (Some(lr), None) => Some(AlgorithmRef::LogisticRegression(lr)),
            (None, Some(lr)) => Some(AlgorithmRef::LinearRegression(lr)),
            _ => None,
        }
    }

    /// The member's name as written in the spec, e.g. `logisticRegression`.
    pub fn name(&self) -> Option<&'static str> {
        self.selected().map(|selected| match selected {
            AlgorithmRef::LogisticRegression(_) => "logisticRegression",
            AlgorithmRef::LinearRegression(_) => "linearRegression",
        })
    }
}

/// Parameters of L2-penalised logistic regression.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogisticRegression {
    /// Upper bound on solver iterations.
    #[serde(default = "default_max_iterations")]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_iterations: u32,

    /// Strength of the L2 penalty on the coefficients (scikit-learn's 1/C); the intercept is not
    /// penalised. 0 disables the penalty.
    #[serde(default = "default_l2_penalty")]
    #[schemars(range(min = 0.0))]
    pub l2_penalty: f64,

    /// Convergence tolerance: the solver stops when the gradient norm, relative to the number
    /// of training rows, falls below it.
    #[serde(default = "default_tolerance")]
    #[x_kube(validation = Rule::new("self > 0.0").message("must be greater than 0"))]
    pub tolerance: f64,
}

impl Default for LogisticRegression {
    fn default() -> Self {
        Self {
            max_iterations: default_max_iterations(),
            l2_penalty: default_l2_penalty(),
            tolerance: default_tolerance(),
        }
    }
}

/// Default `maxIterations` (scikit-learn's `LogisticRegression(max_iter=100)`).
pub const DEFAULT_MAX_ITERATIONS: u32 = 100;
/// Default `l2Penalty`: scikit-learn's `C=1.0`, as its inverse.
pub const DEFAULT_L2_PENALTY: f64 = 1.0;
/// Default `tolerance` (scikit-learn's `tol=1e-4`).
pub const DEFAULT_TOLERANCE: f64 = 1e-4;
/// Default `labelColumn`.
pub const DEFAULT_LABEL_COLUMN: &str = "label";

fn default_max_iterations() -> u32 {
    DEFAULT_MAX_ITERATIONS
}
fn default_l2_penalty() -> f64 {
    DEFAULT_L2_PENALTY
}
fn default_tolerance() -> f64 {
    DEFAULT_TOLERANCE
}

/// Parameters of penalised linear least squares. It minimises
/// `½ Σᵢ (yᵢ − b − xᵢ·w)² + l2Penalty · (l1Ratio · ‖w‖₁ + ½ (1 − l1Ratio) · ‖w‖²)` over the
/// standardized features: with `l1Ratio` 0 this is scikit-learn's `Ridge(alpha=l2Penalty)`,
/// otherwise its `ElasticNet(alpha=l2Penalty / rows, l1_ratio=l1Ratio)`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LinearRegression {
    /// Strength of the penalty on the coefficients (scikit-learn's `alpha` of `Ridge`); the
    /// intercept is not penalised. 0 is ordinary least squares.
    #[serde(default = "default_l2_penalty")]
    #[schemars(range(min = 0.0))]
    pub l2_penalty: f64,

    /// Share of the penalty that is L1, in [0, 1]: 0 is ridge, 1 is lasso, between is the
    /// elastic net. An L1 share sets some coefficients to exactly 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub l1_ratio: f64,

    /// Whether to fit an intercept. When false the model predicts 0 for an all-zero row and
    /// the features are scaled but not centred.
    #[serde(default = "default_true")]
    pub fit_intercept: bool,

    /// Upper bound on coordinate-descent passes over the features. Ridge (`l1Ratio` 0) is
    /// solved exactly in one step unless its system is singular (no penalty and collinear
    /// features), which coordinate descent then solves.
    #[serde(default = "default_linear_max_iterations")]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_iterations: u32,

    /// Convergence tolerance of coordinate descent: with an L1 share it stops when the
    /// duality gap falls below `tolerance · ‖y‖²` (scikit-learn's `tol`); without one, when
    /// the gradient's largest entry falls below `tolerance` times its largest entry at the
    /// start (every coefficient 0).
    #[serde(default = "default_tolerance")]
    #[x_kube(validation = Rule::new("self > 0.0").message("must be greater than 0"))]
    pub tolerance: f64,
}

impl Default for LinearRegression {
    fn default() -> Self {
        Self {
            l2_penalty: default_l2_penalty(),
            l1_ratio: 0.0,
            fit_intercept: true,
            max_iterations: default_linear_max_iterations(),
            tolerance: default_tolerance(),
        }
    }
}

/// Default `maxIterations` of linear regression (scikit-learn's `ElasticNet(max_iter=1000)`).
pub const DEFAULT_LINEAR_MAX_ITERATIONS: u32 = 1000;

fn default_linear_max_iterations() -> u32 {
    DEFAULT_LINEAR_MAX_ITERATIONS
}
fn default_true() -> bool {
    true
}

/// The training data and how to hold some of it back for validation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.validationUri) && has(self.validationFraction) && self.validationFraction > 0.0)").message("set either validationFraction or validationUri, not both"))]
#[x_kube(validation = Rule::new("!has(self.featureColumns) || !(self.labelColumn in self.featureColumns)").message("featureColumns must not contain the labelColumn"))]
pub struct DatasetSpec {
    /// Location of the data: `s3://bucket/key`, `file:///absolute/path`, or an absolute path
    /// on the trainer's filesystem.
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^(s3://[^/]+/.+|file:///.+|/.+)$")
    )]
    pub uri: String,

    /// Format of the data. `csv` needs a header row.
    #[serde(default)]
    pub format: DataFormat,

    /// Column the model learns to predict: class labels (integers or strings) for
    /// classification, numbers for regression.
    #[serde(default = "default_label_column")]
    #[schemars(length(min = 1, max = 256))]
    pub label_column: String,

    /// Columns used as features, in this order. Defaults to every column but the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10000), inner(length(min = 1, max = 256)))]
    pub feature_columns: Option<Vec<String>>,

    /// Fraction of the rows held back (at random, see `seed`) to compute the metrics, in
    /// [0, 1). 0 trains on every row and reports no validation metrics. Defaults to 0.2 when
    /// `validationUri` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    #[x_kube(validation = Rule::new("self < 1.0").message("must be in [0, 1): at least one row must be left to train on"))]
    pub validation_fraction: Option<f64>,

    /// Seed of the random validation split, so the same data and seed give the same split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub seed: Option<i64>,

    /// A separate validation dataset (same columns and format) instead of a random split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^(s3://[^/]+/.+|file:///.+|/.+)$")
    )]
    pub validation_uri: Option<String>,
}

impl DatasetSpec {
    /// The validation fraction in force: the spec's, or the default when neither a fraction nor
    /// a validation URI is given.
    pub fn effective_validation_fraction(&self) -> Option<f64> {
        match (self.validation_fraction, &self.validation_uri) {
            (Some(fraction), _) => Some(fraction),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_VALIDATION_FRACTION),
        }
    }
}

fn default_label_column() -> String {
    DEFAULT_LABEL_COLUMN.to_owned()
}

/// File format of a dataset: `csv` (comma-separated values with a header row) or `parquet`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)] // see below
pub enum DataFormat {
    // Variants carry no doc comments: schemars would turn them into a `oneOf`, which a
    // structural schema does not allow. The enum's own doc lists them.
    #[default]
    Csv,
    Parquet,
}

impl DataFormat {
    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Parquet => "parquet",
        }
    }
}

/// Where the model goes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OutputSpec {
    /// Prefix the model is written under: `<uri>/model.json` and `<uri>/summary.json`.
    /// `s3://bucket/prefix/`, `file:///absolute/path/` or an absolute path.
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^(s3://[^/]+(/.*)?|file:///.+|/.+)$")
    )]
    pub uri: String,
}

/// Access to S3-compatible object storage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Secret in the run's namespace holding the credentials under the keys
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and optionally `AWS_SESSION_TOKEN`).
    /// Credentials are never written inline in a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,

    /// S3 endpoint URL, e.g. `http://seaweedfs.storage:8333`. Defaults to the controller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://.+"))]
    pub endpoint: Option<String>,

    /// S3 region. Defaults to the controller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
}

/// A Secret in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}
