//! Linear regression (`format: kubetrain.dev/linear-regression`, `formatVersion` 1): least
//! squares with an L2, L1 or elastic-net penalty, predicting a number.
//!
//! ```json
//! {
//!   "format": "kubetrain.dev/linear-regression",
//!   "formatVersion": 1,
//!   "labelColumn": "target",
//!   "featureNames": ["age", "bmi"],
//!   "scaler": {"mean": [0.1, -2.0], "scale": [1.5, 0.3]},
//!   "coefficients": [0.8, -1.2],
//!   "intercept": 152.1
//! }
//! ```
//!
//! Prediction for a row `x` (raw, unscaled values of `featureNames`, in that order):
//! `ŷ = intercept + Σ_j coefficients[j] · (x_j - mean_j) / scale_j`. A model fit without an
//! intercept has `intercept` 0 and every `mean` 0.

use ndarray::{Array1, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::Scaler;

/// The `format` value of linear-regression models.
pub const FORMAT: &str = "kubetrain.dev/linear-regression";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A trained linear-regression model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinearRegression {
    /// Always [`FORMAT_VERSION`] for files this build writes.
    pub format_version: u32,
    /// The target column the model was trained on.
    pub label_column: String,
    /// Feature columns, in coefficient order.
    pub feature_names: Vec<String>,
    /// Standardization fit on the training split.
    pub scaler: Scaler,
    /// One coefficient per feature, in standardized feature space.
    pub coefficients: Vec<f64>,
    /// `b`: the prediction for a row at the training mean (0 for a model fit without an
    /// intercept).
    pub intercept: f64,
}

impl LinearRegression {
    /// The model of a fit solved on data standardized by `scaler`.
    pub fn from_fit(
        label_column: &str,
        feature_names: Vec<String>,
        scaler: Scaler,
        coefficients: Vec<f64>,
        intercept: f64,
    ) -> LinearRegression {
        LinearRegression {
            format_version: FORMAT_VERSION,
            label_column: label_column.to_owned(),
            feature_names,
            scaler,
            coefficients,
            intercept,
        }
    }

    pub(crate) fn check_shapes(&self) -> Result<(), String> {
        let p = self.feature_names.len();
        if self.scaler.mean.len() != p || self.scaler.scale.len() != p {
            return Err(format!(
                "scaler does not have {p} entries (one per feature)"
            ));
        }
        if self.coefficients.len() != p {
            return Err(format!(
                "coefficients must have {p} entries (one per feature), not {}",
                self.coefficients.len()
            ));
        }
        let all = self.coefficients.iter().chain([&self.intercept]);
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

    /// The predicted value of each row of raw features (rows × [`Self::feature_names`], any
    /// layout; column-major is fastest).
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Array1<f64> {
        // Fold the scaler into the coefficients: one pass over raw X.
        let w: Vec<f64> = self
            .coefficients
            .iter()
            .zip(&self.scaler.scale)
            .map(|(w, s)| w / s)
            .collect();
        let shift: f64 = w.iter().zip(&self.scaler.mean).map(|(w, m)| w * m).sum();
        let mut values = Array1::from_elem(x.nrows(), self.intercept - shift);
        for (j, x_j) in x.axis_iter(Axis(1)).enumerate() {
            values.zip_mut_with(&x_j, |y, &v| *y += w[j] * f64::from(v));
        }
        values
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Model, Prediction};
    use ndarray::array;

    fn model() -> LinearRegression {
        LinearRegression::from_fit(
            "target",
            vec!["a".into(), "b".into()],
            Scaler {
                mean: vec![1.0, 0.0],
                scale: vec![2.0, 1.0],
            },
            vec![2.0, -1.0],
            10.0,
        )
    }

    #[test]
    fn predictions_apply_the_scaler() {
        let x = array![[1.0f32, 0.0], [3.0, 1.0]];
        // Row 0 standardizes to (0, 0); row 1 to (1, 1): 10 + 2 - 1.
        assert_eq!(model().predict(x.view()), array![10.0, 11.0]);
        let Prediction::Values(values) = Model::LinearRegression(model()).predict(x.view()) else {
            panic!("a regressor predicts values")
        };
        assert_eq!(values, array![10.0, 11.0]);
    }

    #[test]
    fn every_number_reads_back_bit_for_bit() {
        // Values whose shortest decimal form the default float parser can misread by an ulp.
        let awkward: Vec<f64> = (1..=200)
            .map(|i| (f64::from(i) * 0.1).sqrt() / 3.0 + 151.606_232_294_617_57 * f64::from(i))
            .collect();
        let mut m = model();
        m.feature_names = (0..awkward.len()).map(|j| format!("f{j}")).collect();
        m.scaler = Scaler {
            mean: awkward.iter().map(|v| v / 7.0).collect(),
            scale: awkward.clone(),
        };
        m.coefficients = awkward.iter().map(|v| -v / 11.0).collect();
        m.intercept = awkward[7] / 13.0;
        let file = Model::LinearRegression(m);
        assert_eq!(Model::from_json(&file.to_json().unwrap()).unwrap(), file);
    }

    #[test]
    fn files_round_trip_and_bad_shapes_are_refused() {
        let file = Model::LinearRegression(model());
        let bytes = file.to_json().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""format": "kubetrain.dev/linear-regression""#),
            "{text}"
        );
        assert_eq!(Model::from_json(&bytes).unwrap(), file);
        let mut short = model();
        short.coefficients.pop();
        let error =
            Model::from_json(&Model::LinearRegression(short).to_json().unwrap()).unwrap_err();
        assert!(
            error.contains("coefficients must have 2 entries"),
            "{error}"
        );
    }
}
