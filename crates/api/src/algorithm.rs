//! `TrainingRun.spec.algorithm`: the union of algorithms and each one's parameters, with their
//! defaults and bounds. The doc comments are the fields' `kubectl explain` descriptions.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The algorithm to train. A union: exactly one member is set, and new algorithms are added as
/// new members, so existing manifests keep their meaning.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.logisticRegression), has(self.linearRegression), has(self.gradientBoostedTrees), has(self.randomForest)].filter(x, x).size() == 1").message(ALGORITHM_RULE))]
pub struct Algorithm {
    /// Logistic regression (binary, or multinomial for more than two classes) with an L2
    /// penalty, fit with L-BFGS. Task `classification`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logistic_regression: Option<LogisticRegression>,

    /// Linear least squares with an L2 (ridge), L1 (lasso) or elastic-net penalty. Task
    /// `regression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_regression: Option<LinearRegression>,

    /// Gradient-boosted decision trees on histograms of the features, grown leaf-wise (as
    /// LightGBM does). Task `classification` (binary, or one tree per class per iteration) or
    /// `regression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient_boosted_trees: Option<GradientBoostedTrees>,

    /// A random forest: trees grown on bootstrap samples with features sampled at each split,
    /// averaged. Task `classification` or `regression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_forest: Option<RandomForest>,
}

/// The message of the rule that exactly one algorithm is set.
pub const ALGORITHM_RULE: &str = "exactly one algorithm must be set; supported: \
    logisticRegression, linearRegression, gradientBoostedTrees, randomForest";

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
    /// `gradientBoostedTrees`.
    GradientBoostedTrees(&'a GradientBoostedTrees),
    /// `randomForest`.
    RandomForest(&'a RandomForest),
}

impl Algorithm {
    /// The one algorithm that is set, or `None` when the union is empty (the API server's
    /// schema rejects that, so only hand-built specs can hit it).
    pub fn selected(&self) -> Option<AlgorithmRef<'_>> {
        let set = [
            self.logistic_regression
                .as_ref()
                .map(AlgorithmRef::LogisticRegression),
            self.linear_regression
                .as_ref()
                .map(AlgorithmRef::LinearRegression),
            self.gradient_boosted_trees
                .as_ref()
                .map(AlgorithmRef::GradientBoostedTrees),
            self.random_forest.as_ref().map(AlgorithmRef::RandomForest),
        ];
        let mut set = set.into_iter().flatten();
        match (set.next(), set.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    /// Whether no member is set (a `custom` run's spec has no algorithm).
    pub fn is_unset(&self) -> bool {
        *self == Algorithm::default()
    }

    /// The member's name as written in the spec, e.g. `logisticRegression`.
    pub fn name(&self) -> Option<&'static str> {
        self.selected().map(|selected| match selected {
            AlgorithmRef::LogisticRegression(_) => "logisticRegression",
            AlgorithmRef::LinearRegression(_) => "linearRegression",
            AlgorithmRef::GradientBoostedTrees(_) => "gradientBoostedTrees",
            AlgorithmRef::RandomForest(_) => "randomForest",
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

/// Parameters of gradient-boosted trees. Names and defaults follow LightGBM (and
/// scikit-learn's `HistGradientBoosting*`): each iteration fits one tree per class (one in
/// all for binary classification and regression) to the gradient and hessian of the loss
/// (log loss, multinomial log loss or squared error), on feature values binned into at most
/// `maxBins` quantile bins of the training rows. Missing values go to whichever side of a
/// split the training data favoured.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GradientBoostedTrees {
    /// Boosting iterations: trees per class (LightGBM's `num_iterations`, scikit-learn's
    /// `max_iter`).
    #[serde(default = "default_boosting_iterations")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_iterations: u32,

    /// Shrinkage applied to each tree's output (LightGBM's `learning_rate`), in (0, 1].
    #[serde(default = "default_learning_rate")]
    #[schemars(range(max = 1.0))]
    #[x_kube(validation = Rule::new("self > 0.0").message("must be greater than 0"))]
    pub learning_rate: f64,

    /// Most leaves per tree (LightGBM's `num_leaves`, scikit-learn's `max_leaf_nodes`). Trees
    /// grow leaf-wise: the leaf whose split lowers the loss most is split next.
    #[serde(default = "default_max_leaves")]
    #[schemars(range(min = 2, max = 131072))]
    pub max_leaves: u32,

    /// Most levels below the root; unset means no limit beyond `maxLeaves`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max_depth: Option<u32>,

    /// Fewest training rows in a leaf (LightGBM's `min_data_in_leaf`, scikit-learn's
    /// `min_samples_leaf`).
    #[serde(default = "default_boosting_min_samples_leaf")]
    #[schemars(range(min = 1, max = 1000000000))]
    pub min_samples_leaf: u32,

    /// L2 penalty on leaf values (LightGBM's `lambda_l2`, scikit-learn's
    /// `l2_regularization`). 0 disables it.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub l2_penalty: f64,

    /// Most bins per feature, 2 to 255 (LightGBM's `max_bin`); missing values get a bin of
    /// their own besides these.
    #[serde(default = "default_max_bins")]
    #[schemars(range(min = 2, max = 255))]
    pub max_bins: u32,

    /// Fraction of the training rows, drawn without replacement for each iteration, that its
    /// trees are fit on (LightGBM's `bagging_fraction` with `bagging_freq` 1), in (0, 1]. 1
    /// uses every row.
    #[serde(default = "default_fraction")]
    #[schemars(range(max = 1.0))]
    #[x_kube(validation = Rule::new("self > 0.0").message("must be greater than 0"))]
    pub subsample: f64,

    /// Fraction of the features, drawn for each tree, that it may split on (LightGBM's
    /// `feature_fraction`), in (0, 1]. At least one feature is always drawn.
    #[serde(default = "default_fraction")]
    #[schemars(range(max = 1.0))]
    #[x_kube(validation = Rule::new("self > 0.0").message("must be greater than 0"))]
    pub feature_fraction: f64,

    /// Stop when the validation loss has not improved for this many iterations, and keep the
    /// model of the best iteration (LightGBM's `early_stopping_round`). Needs validation rows
    /// (`dataset.validationFraction` above 0 or `dataset.validationUri`). Unset: no early
    /// stopping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub early_stopping_rounds: Option<u32>,

    /// Seed of the row and feature sampling, so the same data and seed give the same model.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub seed: i64,
}

impl Default for GradientBoostedTrees {
    fn default() -> Self {
        Self {
            max_iterations: default_boosting_iterations(),
            learning_rate: default_learning_rate(),
            max_leaves: default_max_leaves(),
            max_depth: None,
            min_samples_leaf: default_boosting_min_samples_leaf(),
            l2_penalty: 0.0,
            max_bins: default_max_bins(),
            subsample: default_fraction(),
            feature_fraction: default_fraction(),
            early_stopping_rounds: None,
            seed: 0,
        }
    }
}

/// Default `maxIterations` of boosted trees (LightGBM's `num_iterations=100`).
pub const DEFAULT_BOOSTING_ITERATIONS: u32 = 100;
/// Default `learningRate` (LightGBM's and scikit-learn's 0.1).
pub const DEFAULT_LEARNING_RATE: f64 = 0.1;
/// Default `maxLeaves` (LightGBM's `num_leaves=31`).
pub const DEFAULT_MAX_LEAVES: u32 = 31;
/// Default `minSamplesLeaf` of boosted trees (LightGBM's `min_data_in_leaf=20`).
pub const DEFAULT_BOOSTING_MIN_SAMPLES_LEAF: u32 = 20;
/// Default `maxBins` (LightGBM's `max_bin=255`).
pub const DEFAULT_MAX_BINS: u32 = 255;

fn default_boosting_iterations() -> u32 {
    DEFAULT_BOOSTING_ITERATIONS
}
fn default_learning_rate() -> f64 {
    DEFAULT_LEARNING_RATE
}
fn default_max_leaves() -> u32 {
    DEFAULT_MAX_LEAVES
}
fn default_boosting_min_samples_leaf() -> u32 {
    DEFAULT_BOOSTING_MIN_SAMPLES_LEAF
}
fn default_max_bins() -> u32 {
    DEFAULT_MAX_BINS
}
fn default_fraction() -> f64 {
    1.0
}

/// Parameters of a random forest, with scikit-learn's `RandomForestClassifier` /
/// `RandomForestRegressor` names and defaults. Splits minimise the Gini impurity
/// (classification) or the squared error (regression) over feature values binned into at
/// most 255 quantile bins of the training rows; missing values go to whichever side of a
/// split the training data favoured.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RandomForest {
    /// Trees in the forest (scikit-learn's `n_estimators`).
    #[serde(default = "default_num_trees")]
    #[schemars(range(min = 1, max = 10000))]
    pub num_trees: u32,

    /// Most levels below the root; unset grows each tree until its leaves are pure or hold
    /// fewer than two times `minSamplesLeaf` rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max_depth: Option<u32>,

    /// Fewest training rows in a leaf (scikit-learn's `min_samples_leaf`).
    #[serde(default = "default_forest_min_samples_leaf")]
    #[schemars(range(min = 1, max = 1000000000))]
    pub min_samples_leaf: u32,

    /// Features drawn at each split (scikit-learn's `max_features`): `sqrt` or `log2` of the
    /// feature count, `all`, or a fraction of them such as `0.33`. Unset: `sqrt` for
    /// classification, `all` for regression (scikit-learn's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(sqrt|log2|all|0?\.[0-9]*[1-9][0-9]*|1(\.0*)?)$"))]
    pub max_features: Option<String>,

    /// Whether each tree is fit on a bootstrap sample (rows drawn with replacement, as many
    /// as there are); false fits every tree on every row.
    #[serde(default = "default_true")]
    pub bootstrap: bool,

    /// Seed of the bootstrap and feature draws, so the same data and seed give the same
    /// model.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub seed: i64,
}

impl Default for RandomForest {
    fn default() -> Self {
        Self {
            num_trees: default_num_trees(),
            max_depth: None,
            min_samples_leaf: default_forest_min_samples_leaf(),
            max_features: None,
            bootstrap: true,
            seed: 0,
        }
    }
}

/// Default `numTrees` (scikit-learn's `n_estimators=100`).
pub const DEFAULT_NUM_TREES: u32 = 100;
/// Default `minSamplesLeaf` of forests (scikit-learn's `min_samples_leaf=1`).
pub const DEFAULT_FOREST_MIN_SAMPLES_LEAF: u32 = 1;

fn default_num_trees() -> u32 {
    DEFAULT_NUM_TREES
}
fn default_forest_min_samples_leaf() -> u32 {
    DEFAULT_FOREST_MIN_SAMPLES_LEAF
}

/// How many of `features` features a forest draws at each split, as `maxFeatures` says
/// (`None`: the task's default). Always at least 1 and at most `features`.
///
/// # Errors
/// A value the schema's pattern would refuse, with what is valid.
pub fn max_features_count(
    max_features: Option<&str>,
    task: Task,
    features: usize,
) -> Result<usize, String> {
    let p = features as f64;
    let count = match max_features {
        None if task == Task::Classification => p.sqrt(),
        None | Some("all") => p,
        Some("sqrt") => p.sqrt(),
        Some("log2") => p.log2(),
        Some(fraction) => match fraction.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => f * p,
            _ => {
                return Err(format!(
                    "'{fraction}' is not sqrt, log2, all or a fraction in (0, 1]"
                ));
            }
        },
    };
    // scikit-learn: max(1, int(...)).
    Ok((count as usize).clamp(1, features.max(1)))
}
