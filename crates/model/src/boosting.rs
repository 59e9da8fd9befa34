//! Gradient-boosted trees (`format: kubetrain.dev/gradient-boosted-trees`, `formatVersion`
//! 1).
//!
//! ```json
//! {
//!   "format": "kubetrain.dev/gradient-boosted-trees",
//!   "formatVersion": 1,
//!   "labelColumn": "label",
//!   "featureNames": ["f0", "f1", "f2"],
//!   "classes": ["0", "1"],
//!   "labelKind": "integer",
//!   "featureImportance": [0.7, 0.0, 0.3],
//!   "objective": "binary",
//!   "baseScore": [-0.4],
//!   "trees": {"outputs": 1, "roots": [0, 3], "...": "see the trees module"}
//! }
//! ```
//!
//! `objective` is LightGBM's name of the loss: `binary` (log loss, one score), `multiclass`
//! (softmax over one score per class) or `regression` (squared error; no `classes`).
//! The raw score of output `k` for a row is `baseScore[k] + Σ` of the leaf values the row
//! reaches in trees `k, k + K, k + 2K, ...` (`K` = the number of scores: trees are stored
//! iteration by iteration, one per score; the learning rate is already applied to the
//! leaves). `binary`: `P(classes[1]) = 1 / (1 + e^-score)`; `multiclass`:
//! `P(classes[k]) = softmax(scores)_k`; `regression`: the score is the prediction.

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::ensemble::Columns;
use crate::trees::Trees;
use crate::{sigmoid, softmax_in_place};

/// The `format` value of gradient-boosted tree models.
pub const FORMAT: &str = "kubetrain.dev/gradient-boosted-trees";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The loss the trees were fit to, LightGBM's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Log loss of two classes; one score per row.
    Binary,
    /// Multinomial log loss; one score per class.
    Multiclass,
    /// Squared error; the score is the prediction.
    Regression,
}

impl Objective {
    /// The scores per row (trees per iteration) for `classes` classes (0 for regression).
    pub fn scores(self, classes: usize) -> usize {
        match self {
            Objective::Multiclass => classes,
            Objective::Binary | Objective::Regression => 1,
        }
    }
}

/// A trained gradient-boosted tree model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GradientBoostedTrees {
    /// Always [`FORMAT_VERSION`] for files this build writes.
    pub format_version: u32,
    /// Columns, classes and feature importance.
    #[serde(flatten)]
    pub columns: Columns,
    /// The loss.
    pub objective: Objective,
    /// The starting score of each output, before any tree.
    pub base_score: Vec<f64>,
    /// The trees, iteration by iteration, one per score.
    pub trees: Trees,
}

impl GradientBoostedTrees {
    /// The number of scores per row.
    pub fn scores(&self) -> usize {
        self.base_score.len()
    }

    /// Raw scores, shape (rows, scores), of the first `iterations` iterations for rows of
    /// `x` (rows × features in [`Columns::feature_names`] order, any layout).
    pub fn raw_scores(&self, x: ArrayView2<'_, f32>, iterations: usize) -> Array2<f64> {
        let k = self.scores();
        let mut out = Array2::zeros((x.nrows(), k));
        for mut row in out.rows_mut() {
            row.assign(&ndarray::ArrayView1::from(&self.base_score[..]));
        }
        let trees = (iterations * k).min(self.trees.len());
        self.trees.accumulate(x, 0..trees, |t| t % k, &mut out);
        out
    }

    /// Class probabilities (rows × classes) of a classifier, predicted values (rows × 1) of
    /// a regressor.
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Array2<f64> {
        let scores = self.raw_scores(x, usize::MAX / self.scores().max(1));
        to_output(self.objective, scores)
    }

    /// The predicted values of a regressor.
    pub fn predict_values(&self, x: ArrayView2<'_, f32>) -> Array1<f64> {
        self.predict(x).column(0).to_owned()
    }

    pub(crate) fn check_shapes(&self) -> Result<(), String> {
        self.columns.check()?;
        let classes = self.columns.classes.as_ref().map_or(0, Vec::len);
        let expected = match (self.objective, classes) {
            (Objective::Regression, 0) | (Objective::Binary, 2) => 1,
            (Objective::Multiclass, k) if k > 2 => k,
            (objective, k) => {
                return Err(format!("objective {objective:?} does not fit {k} classes"));
            }
        };
        if self.base_score.len() != expected || self.trees.outputs != 1 {
            return Err(format!(
                "baseScore must have {expected} entries and trees one output per leaf"
            ));
        }
        if !self.trees.len().is_multiple_of(expected) {
            return Err(format!(
                "{} trees is not a whole number of iterations of {expected}",
                self.trees.len()
            ));
        }
        if self.base_score.iter().any(|v| !v.is_finite()) {
            return Err("baseScore holds a non-finite value".into());
        }
        self.trees.check(self.columns.feature_names.len())
    }
}

/// Raw scores to what the model predicts: probabilities (rows × classes) for classifiers,
/// the scores themselves for regression.
pub fn to_output(objective: Objective, mut scores: Array2<f64>) -> Array2<f64> {
    match objective {
        Objective::Regression => scores,
        Objective::Binary => {
            let mut proba = Array2::zeros((scores.nrows(), 2));
            for (mut out, z) in proba.rows_mut().into_iter().zip(scores.column(0)) {
                let p = sigmoid(*z);
                out[0] = 1.0 - p;
                out[1] = p;
            }
            proba
        }
        Objective::Multiclass => {
            for mut row in scores.rows_mut() {
                if let Some(values) = row.as_slice_mut() {
                    softmax_in_place(values);
                }
            }
            scores
        }
    }
}
