//! Random forests (`format: kubetrain.dev/random-forest`, `formatVersion` 1).
//!
//! ```json
//! {
//!   "format": "kubetrain.dev/random-forest",
//!   "formatVersion": 1,
//!   "labelColumn": "target",
//!   "featureNames": ["age", "bmi"],
//!   "featureImportance": [0.4, 0.6],
//!   "trees": {"outputs": 1, "roots": [0, 5], "...": "see the trees module"}
//! }
//! ```
//!
//! A classifier's leaves hold the class frequencies of the training rows that reached them
//! (`trees.outputs` = the number of `classes`); its probabilities are their mean over the
//! trees. A regressor's leaves hold the mean target of those rows; its prediction is their
//! mean over the trees (scikit-learn's `RandomForest*.predict_proba` / `predict`).

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::ensemble::Columns;
use crate::trees::Trees;

/// The `format` value of random-forest models.
pub const FORMAT: &str = "kubetrain.dev/random-forest";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A trained random forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RandomForest {
    /// Always [`FORMAT_VERSION`] for files this build writes.
    pub format_version: u32,
    /// Columns, classes and feature importance.
    #[serde(flatten)]
    pub columns: Columns,
    /// The trees.
    pub trees: Trees,
}

impl RandomForest {
    /// Mean leaf values over the trees: class probabilities (rows × classes) of a classifier,
    /// predicted values (rows × 1) of a regressor, for rows of `x` (rows × features in
    /// [`Columns::feature_names`] order, any layout).
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Array2<f64> {
        let mut out = Array2::zeros((x.nrows(), self.trees.outputs));
        self.trees
            .accumulate(x, 0..self.trees.len(), |_| 0, &mut out);
        out /= self.trees.len().max(1) as f64;
        out
    }

    /// The predicted values of a regressor.
    pub fn predict_values(&self, x: ArrayView2<'_, f32>) -> Array1<f64> {
        self.predict(x).column(0).to_owned()
    }

    pub(crate) fn check_shapes(&self) -> Result<(), String> {
        self.columns.check()?;
        let outputs = self.columns.classes.as_ref().map_or(1, Vec::len);
        if self.trees.outputs != outputs {
            return Err(format!(
                "trees must have {outputs} values per leaf (one per class, or 1 for a regressor)"
            ));
        }
        if self.trees.is_empty() {
            return Err("a forest needs at least one tree".into());
        }
        self.trees.check(self.columns.feature_names.len())
    }
}
