//! Logistic regression (`format: kubetrain.dev/logistic-regression`, `formatVersion` 1).
//!
//! ```json
//! {
//!   "format": "kubetrain.dev/logistic-regression",
//!   "formatVersion": 1,
//!   "labelColumn": "label",
//!   "featureNames": ["f0", "f1"],
//!   "classes": ["0", "1"],
//!   "labelKind": "integer",
//!   "scaler": {"mean": [0.1, -2.0], "scale": [1.5, 0.3]},
//!   "coefficients": [[0.8, -1.2]],
//!   "intercepts": [0.05]
//! }
//! ```
//!
//! Prediction for a row `x` (raw, unscaled values of `featureNames`, in that order):
//! `s_j = (x_j - mean_j) / scale_j`, then `z_k = intercepts[k] + Σ_j coefficients[k][j] · s_j`.
//! With two classes there is one row of coefficients and `P(classes[1]) = 1 / (1 + e^-z)`;
//! with more, one row per class and `P(classes[k]) = softmax(z)_k`.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{ClassSet, LabelKind, Scaler, sigmoid, softmax_in_place};

/// The `format` value of logistic-regression models.
pub const FORMAT: &str = "kubetrain.dev/logistic-regression";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A trained logistic-regression model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogisticRegression {
    /// Always [`FORMAT_VERSION`] for files this build writes.
    pub format_version: u32,
    /// The label column the model was trained on.
    pub label_column: String,
    /// Feature columns, in coefficient order.
    pub feature_names: Vec<String>,
    /// Class labels, in class-index order.
    pub classes: Vec<String>,
    /// Whether labels are integers (compared numerically) or strings.
    pub label_kind: LabelKind,
    /// Standardization fit on the training split.
    pub scaler: Scaler,
    /// (1 or classes) rows × features, in standardized feature space.
    pub coefficients: Vec<Vec<f64>>,
    /// One intercept per coefficient row.
    pub intercepts: Vec<f64>,
}

impl LogisticRegression {
    /// The model of a fit solved on data standardized by `scaler`: `coefficients` of shape
    /// (1 for two classes, else classes) × features, one intercept per row.
    pub fn from_fit(
        label_column: &str,
        feature_names: Vec<String>,
        classes: &ClassSet,
        scaler: Scaler,
        coefficients: ArrayView2<'_, f64>,
        intercepts: ArrayView1<'_, f64>,
    ) -> LogisticRegression {
        LogisticRegression {
            format_version: FORMAT_VERSION,
            label_column: label_column.to_owned(),
            feature_names,
            classes: classes.labels.clone(),
            label_kind: classes.kind,
            scaler,
            coefficients: coefficients
                .rows()
                .into_iter()
                .map(|r| r.to_vec())
                .collect(),
            intercepts: intercepts.to_vec(),
        }
    }

    pub(crate) fn check_shapes(&self) -> Result<(), String> {
        let p = self.feature_names.len();
        let k = self.classes.len();
        let outputs = if k == 2 { 1 } else { k };
        if k < 2 {
            return Err(format!("{k} classes; a model needs at least 2"));
        }
        if self.scaler.mean.len() != p || self.scaler.scale.len() != p {
            return Err(format!(
                "scaler does not have {p} entries (one per feature)"
            ));
        }
        if self.coefficients.len() != outputs || self.intercepts.len() != outputs {
            return Err(format!(
                "expected {outputs} rows of coefficients and intercepts for {k} classes"
            ));
        }
        if self.coefficients.iter().any(|row| row.len() != p) {
            return Err(format!(
                "every coefficient row must have {p} entries (one per feature)"
            ));
        }
        let all = self.coefficients.iter().flatten().chain(&self.intercepts);
        if all
            .chain(&self.scaler.mean)
            .chain(&self.scaler.scale)
            .any(|v| !v.is_finite())
            || self.scaler.scale.contains(&0.0)
        {
            return Err("non-finite coefficient or scaler value, or a zero scale".into());
        }
        Ok(())
    }

    /// The model's classes as a [`ClassSet`].
    pub fn class_set(&self) -> ClassSet {
        ClassSet::new(self.classes.clone(), self.label_kind)
    }

    /// Class probabilities, shape (rows, classes), for raw feature rows whose columns are
    /// [`LogisticRegression::feature_names`] in order (any layout; column-major is fastest).
    pub fn predict_proba(&self, x: ArrayView2<'_, f32>) -> Array2<f64> {
        let rows = x.nrows();
        let k = self.classes.len();
        // Fold the scaler into the coefficients: one pass over raw X.
        let folded: Vec<(Vec<f64>, f64)> = self
            .coefficients
            .iter()
            .zip(&self.intercepts)
            .map(|(row, &b)| {
                let w: Vec<f64> = row
                    .iter()
                    .zip(&self.scaler.scale)
                    .map(|(w, s)| w / s)
                    .collect();
                let shift: f64 = w.iter().zip(&self.scaler.mean).map(|(w, m)| w * m).sum();
                (w, b - shift)
            })
            .collect();
        let mut scores = Array2::<f64>::zeros((rows, folded.len()));
        for (k, (w, b)) in folded.iter().enumerate() {
            let mut column = scores.column_mut(k);
            column.fill(*b);
            for (j, x_j) in x.axis_iter(Axis(1)).enumerate() {
                column.zip_mut_with(&x_j, |z, &v| *z += w[j] * f64::from(v));
            }
        }
        if k == 2 {
            let mut proba = Array2::zeros((rows, 2));
            for (mut out, z) in proba.rows_mut().into_iter().zip(scores.column(0)) {
                let p = sigmoid(*z);
                out[0] = 1.0 - p;
                out[1] = p;
            }
            proba
        } else {
            let k = scores.ncols();
            match scores.as_slice_mut() {
                Some(data) => data.par_chunks_mut(k).for_each(softmax_in_place),
                None => {
                    for mut row in scores.rows_mut() {
                        let mut values = row.to_vec();
                        softmax_in_place(&mut values);
                        row.assign(&ndarray::ArrayView1::from(&values[..]));
                    }
                }
            }
            scores
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{Model, argmax_rows};
    use ndarray::array;

    fn binary() -> LogisticRegression {
        LogisticRegression {
            format_version: FORMAT_VERSION,
            label_column: "label".into(),
            feature_names: vec!["a".into(), "b".into()],
            classes: vec!["no".into(), "yes".into()],
            label_kind: LabelKind::String,
            scaler: Scaler {
                mean: vec![1.0, 0.0],
                scale: vec![2.0, 1.0],
            },
            coefficients: vec![vec![2.0, -1.0]],
            intercepts: vec![0.5],
        }
    }

    #[test]
    fn json_roundtrip_is_exact() {
        let model = Model::LogisticRegression(binary());
        let bytes = model.to_json().unwrap();
        assert_eq!(Model::from_json(&bytes).unwrap(), model);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"formatVersion\": 1"), "{text}");
        assert!(text.contains("\"featureNames\""), "{text}");
    }

    #[test]
    fn refuses_other_versions_and_bad_shapes() {
        let mut model = binary();
        model.format_version = 2;
        let error =
            Model::from_json(&Model::LogisticRegression(model).to_json().unwrap()).unwrap_err();
        assert!(error.contains("formatVersion 2"), "{error}");
        let mut model = binary();
        model.coefficients[0].pop();
        assert!(Model::from_json(&Model::LogisticRegression(model).to_json().unwrap()).is_err());
        assert!(
            Model::from_json(b"{\"format\": 1}")
                .unwrap_err()
                .contains("invalid JSON")
        );
    }

    #[test]
    fn binary_probabilities_apply_the_scaler() {
        let x = array![[1.0f32, 0.0], [3.0, 1.0]];
        let proba = binary().predict_proba(x.view());
        // Row 0 standardizes to (0, 0): z = 0.5. Row 1 to (1, 1): z = 0.5 + 2 - 1 = 1.5.
        assert!((proba[[0, 1]] - sigmoid(0.5)).abs() < 1e-12);
        assert!((proba[[1, 1]] - sigmoid(1.5)).abs() < 1e-12);
        assert!((proba[[1, 0]] + proba[[1, 1]] - 1.0).abs() < 1e-12);
        assert_eq!(argmax_rows(&proba), [1, 1]);
    }

    #[test]
    fn multinomial_probabilities_are_a_softmax() {
        let mut model = binary();
        model.classes = vec!["a".into(), "b".into(), "c".into()];
        model.scaler = Scaler {
            mean: vec![0.0, 0.0],
            scale: vec![1.0, 1.0],
        };
        model.coefficients = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, 0.0]];
        model.intercepts = vec![0.0, 0.0, 0.0];
        let proba = model.predict_proba(array![[2.0f32, 1.0]].view());
        let e = [2f64.exp(), 1f64.exp(), 1.0];
        let sum: f64 = e.iter().sum();
        for k in 0..3 {
            assert!((proba[[0, k]] - e[k] / sum).abs() < 1e-12);
        }
    }
}
