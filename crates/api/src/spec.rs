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

pub use crate::algorithm::*;
pub use crate::custom::{CustomCode, TRAINER_RULE};

/// Default for `spec.backoffLimit`.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 2;
/// Default for `spec.dataset.validationFraction` when no `validationUri` is given.
pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.2;
/// Default `labelColumn`.
pub const DEFAULT_LABEL_COLUMN: &str = "label";

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
#[x_kube(validation = Rule::new("has(self.algorithm) != has(self.custom)").message(TRAINER_RULE))]
#[x_kube(validation = Rule::new("!has(self.algorithm) || !has(self.algorithm.linearRegression) || (has(self.task) && self.task == 'regression')").message(LINEAR_NEEDS_REGRESSION).field_path(".task"))]
#[x_kube(validation = Rule::new("!has(self.algorithm) || !has(self.algorithm.logisticRegression) || !has(self.task) || self.task == 'classification'").message(LOGISTIC_NEEDS_CLASSIFICATION).field_path(".task"))]
pub struct TrainingRunSpec {
    /// The built-in algorithm to train and its parameters. Exactly one member must be set.
    /// Set either this or `custom`.
    #[serde(default, skip_serializing_if = "Algorithm::is_unset")]
    pub algorithm: Algorithm,

    /// Your own training program instead of a built-in algorithm. Set either this or
    /// `algorithm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomCode>,

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

    /// Container image of kubetrain's trainer (for `custom` runs: of the init container that
    /// copies kubetrain's wrapper into the Pod). Defaults to the controller's configured
    /// trainer image.
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

/// What trains a run, borrowed from its spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TrainerRef<'a> {
    /// A built-in algorithm (`spec.algorithm`).
    BuiltIn(AlgorithmRef<'a>),
    /// The user's own program (`spec.custom`).
    Custom(&'a CustomCode),
}

impl TrainingRunSpec {
    /// What trains this run, or `None` when the spec names neither or both (the API server's
    /// schema rejects that, so only hand-built specs can hit it).
    pub fn trainer(&self) -> Option<TrainerRef<'_>> {
        match (self.algorithm.selected(), &self.custom) {
            (Some(algorithm), None) => Some(TrainerRef::BuiltIn(algorithm)),
            (None, Some(custom)) if self.algorithm.is_unset() => Some(TrainerRef::Custom(custom)),
            _ => None,
        }
    }

    /// `status.algorithm`: the built-in algorithm's member name (`logisticRegression`), or
    /// `custom` for the user's own program.
    pub fn algorithm_name(&self) -> Option<&'static str> {
        match self.trainer()? {
            TrainerRef::BuiltIn(_) => self.algorithm.name(),
            TrainerRef::Custom(_) => Some("custom"),
        }
    }
}

fn default_backoff_limit() -> i32 {
    DEFAULT_BACKOFF_LIMIT
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

/// The summary's object name under [`OutputSpec::uri`], written last by the built-in trainer
/// and by `kubetrain exec` (the completion marker of a run's output), read by the gateway.
pub const SUMMARY_FILE: &str = "summary.json";

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
