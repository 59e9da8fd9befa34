//! Model files: one versioned, documented JSON format per model family, told apart by their
//! `format` field, and prediction with them. No solver lives here.
//!
//! | `format` | family | module |
//! |---|---|---|
//! | `kubetrain.dev/logistic-regression` | classifier | [`logistic`] |
//! | `kubetrain.dev/linear-regression` | regressor | [`linear`] |
//! | `kubetrain.dev/gradient-boosted-trees` | classifier or regressor | [`boosting`] |
//! | `kubetrain.dev/random-forest` | classifier or regressor | [`forest`] |
//!
//! The tree families keep their trees as flat arrays ([`trees`]).
//!
//! # Guarantees
//! A family's `formatVersion` changes only when a reader of the previous version would
//! misread a file; adding optional fields does not change it. Readers refuse formats and
//! versions they do not know, saying which ones they read.

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

pub mod boosting;
pub mod ensemble;
pub mod forest;
pub mod labels;
pub mod linear;
pub mod link;
pub mod logistic;
pub mod scaler;
pub mod trees;

pub use boosting::GradientBoostedTrees;
pub use forest::RandomForest;
pub use labels::{ClassSet, LabelKind};
pub use linear::LinearRegression;
pub use link::{sigmoid, softmax_in_place};
pub use logistic::LogisticRegression;
pub use scaler::Scaler;

/// A trained model of any family, as its file holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format")]
pub enum Model {
    /// A classifier: see [`logistic`].
    #[serde(rename = "kubetrain.dev/logistic-regression")]
    LogisticRegression(LogisticRegression),
    /// A regressor: see [`linear`].
    #[serde(rename = "kubetrain.dev/linear-regression")]
    LinearRegression(LinearRegression),
    /// A classifier or regressor: see [`boosting`].
    #[serde(rename = "kubetrain.dev/gradient-boosted-trees")]
    GradientBoostedTrees(GradientBoostedTrees),
    /// A classifier or regressor: see [`forest`].
    #[serde(rename = "kubetrain.dev/random-forest")]
    RandomForest(RandomForest),
}

/// What a model says about a set of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// A classifier's class probabilities, shape (rows, classes), columns in
    /// [`Model::classes`] order.
    Probabilities(Array2<f64>),
    /// A regressor's predicted value, one per row.
    Values(Array1<f64>),
}

/// The two fields every model file starts with, read first to name what a file is before
/// reading it as that.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    format: String,
    format_version: u32,
}

/// Every family's `(format, formatVersion)` this build reads.
const KNOWN: [(&str, u32); 4] = [
    (logistic::FORMAT, logistic::FORMAT_VERSION),
    (linear::FORMAT, linear::FORMAT_VERSION),
    (boosting::FORMAT, boosting::FORMAT_VERSION),
    (forest::FORMAT, forest::FORMAT_VERSION),
];

impl Model {
    /// Serialize as pretty JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec_pretty(self)
    }

    /// Parse and check a model file.
    ///
    /// # Errors
    /// What is wrong with the file: not JSON, a format or version this build does not read
    /// (naming the ones it does), or arrays whose lengths do not fit together.
    pub fn from_json(bytes: &[u8]) -> Result<Model, String> {
        let header: Header =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        let Some((_, version)) = KNOWN.iter().find(|(format, _)| *format == header.format) else {
            let known: Vec<&str> = KNOWN.iter().map(|(format, _)| *format).collect();
            return Err(format!(
                "format is '{}'; this kubetrain reads {}",
                header.format,
                known.join(", ")
            ));
        };
        if header.format_version != *version {
            return Err(format!(
                "formatVersion {} of '{}' is not supported by this kubetrain (it reads {version})",
                header.format_version, header.format
            ));
        }
        // Parsed as the family named by the header, not through the tagged enum: that would
        // buffer the whole document first, which is slow for large forests.
        let invalid = |e: serde_json::Error| format!("invalid JSON: {e}");
        let model = match header.format.as_str() {
            logistic::FORMAT => {
                Model::LogisticRegression(serde_json::from_slice(bytes).map_err(invalid)?)
            }
            linear::FORMAT => {
                Model::LinearRegression(serde_json::from_slice(bytes).map_err(invalid)?)
            }
            boosting::FORMAT => {
                Model::GradientBoostedTrees(serde_json::from_slice(bytes).map_err(invalid)?)
            }
            _ => Model::RandomForest(serde_json::from_slice(bytes).map_err(invalid)?),
        };
        match &model {
            Model::LogisticRegression(m) => m.check_shapes()?,
            Model::LinearRegression(m) => m.check_shapes()?,
            Model::GradientBoostedTrees(m) => m.check_shapes()?,
            Model::RandomForest(m) => m.check_shapes()?,
        }
        Ok(model)
    }

    /// The family's `format` value.
    pub fn format(&self) -> &'static str {
        match self {
            Model::LogisticRegression(_) => logistic::FORMAT,
            Model::LinearRegression(_) => linear::FORMAT,
            Model::GradientBoostedTrees(_) => boosting::FORMAT,
            Model::RandomForest(_) => forest::FORMAT,
        }
    }

    /// The column the model was trained to predict.
    pub fn label_column(&self) -> &str {
        match self {
            Model::LogisticRegression(m) => &m.label_column,
            Model::LinearRegression(m) => &m.label_column,
            Model::GradientBoostedTrees(m) => &m.columns.label_column,
            Model::RandomForest(m) => &m.columns.label_column,
        }
    }

    /// The feature columns a row must hold, in order.
    pub fn feature_names(&self) -> &[String] {
        match self {
            Model::LogisticRegression(m) => &m.feature_names,
            Model::LinearRegression(m) => &m.feature_names,
            Model::GradientBoostedTrees(m) => &m.columns.feature_names,
            Model::RandomForest(m) => &m.columns.feature_names,
        }
    }

    /// A classifier's class labels, in probability-column order; `None` for a regressor.
    pub fn classes(&self) -> Option<&[String]> {
        match self {
            Model::LogisticRegression(m) => Some(&m.classes),
            Model::LinearRegression(_) => None,
            Model::GradientBoostedTrees(m) => m.columns.classes.as_deref(),
            Model::RandomForest(m) => m.columns.classes.as_deref(),
        }
    }

    /// A classifier's classes as a [`ClassSet`]; `None` for a regressor.
    pub fn class_set(&self) -> Option<ClassSet> {
        match self {
            Model::LogisticRegression(m) => Some(m.class_set()),
            Model::LinearRegression(_) => None,
            Model::GradientBoostedTrees(m) => m.columns.class_set(),
            Model::RandomForest(m) => m.columns.class_set(),
        }
    }

    /// Every feature with the weight the model gives it, largest magnitude first: for linear
    /// models the coefficient of the standardized feature (per standard deviation), for a
    /// multinomial classifier the L2 norm of its coefficients over the classes; for tree
    /// models the feature's share of the total split gain.
    pub fn feature_weights(&self) -> Vec<(String, f64)> {
        let weights: Vec<f64> = match self {
            Model::LinearRegression(m) => m.coefficients.clone(),
            Model::GradientBoostedTrees(m) => m.columns.feature_importance.clone(),
            Model::RandomForest(m) => m.columns.feature_importance.clone(),
            Model::LogisticRegression(m) if m.coefficients.len() == 1 => m.coefficients[0].clone(),
            Model::LogisticRegression(m) => (0..m.feature_names.len())
                .map(|j| {
                    m.coefficients
                        .iter()
                        .map(|row| row[j] * row[j])
                        .sum::<f64>()
                        .sqrt()
                })
                .collect(),
        };
        let mut named: Vec<(String, f64)> =
            self.feature_names().iter().cloned().zip(weights).collect();
        named.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
        named
    }

    /// Predict rows of raw features: shape (rows, [`Model::feature_names`]) in that order, any
    /// layout (column-major is fastest).
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Prediction {
        match self {
            Model::LogisticRegression(m) => Prediction::Probabilities(m.predict_proba(x)),
            Model::LinearRegression(m) => Prediction::Values(m.predict(x)),
            Model::GradientBoostedTrees(m) if m.columns.classes.is_some() => {
                Prediction::Probabilities(m.predict(x))
            }
            Model::GradientBoostedTrees(m) => Prediction::Values(m.predict_values(x)),
            Model::RandomForest(m) if m.columns.classes.is_some() => {
                Prediction::Probabilities(m.predict(x))
            }
            Model::RandomForest(m) => Prediction::Values(m.predict_values(x)),
        }
    }
}

/// The index of the largest probability in each row.
pub fn argmax_rows(proba: &Array2<f64>) -> Vec<usize> {
    proba
        .rows()
        .into_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &p)| {
                    if p > best.1 { (i, p) } else { best }
                })
                .0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn feature_weights_rank_by_magnitude() {
        let linear = Model::LinearRegression(LinearRegression::from_fit(
            "y",
            vec!["a".into(), "b".into(), "c".into()],
            Scaler {
                mean: vec![0.0; 3],
                scale: vec![1.0; 3],
            },
            vec![0.5, -2.0, 1.0],
            0.0,
        ));
        assert_eq!(
            linear.feature_weights(),
            [("b".into(), -2.0), ("c".into(), 1.0), ("a".into(), 0.5)]
        );
        let multinomial: Model = serde_json::from_value(serde_json::json!({
            "format": "kubetrain.dev/logistic-regression", "formatVersion": 1,
            "labelColumn": "label", "featureNames": ["a", "b"], "classes": ["x", "y", "z"],
            "labelKind": "string", "scaler": {"mean": [0.0, 0.0], "scale": [1.0, 1.0]},
            "coefficients": [[3.0, 1.0], [4.0, 0.0], [0.0, -1.0]], "intercepts": [0.0, 0.0, 0.0]
        }))
        .unwrap();
        let weights = multinomial.feature_weights();
        assert_eq!(weights[0], ("a".into(), 5.0));
        assert!((weights[1].1 - 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn unknown_formats_name_the_known_ones() {
        let error = Model::from_json(br#"{"format": "kubetrain.dev/svm", "formatVersion": 1}"#)
            .unwrap_err();
        assert!(error.contains("'kubetrain.dev/svm'"), "{error}");
        for (format, _) in KNOWN {
            assert!(error.contains(format), "{error}");
        }
        let error = Model::from_json(
            br#"{"format": "kubetrain.dev/linear-regression", "formatVersion": 9}"#,
        )
        .unwrap_err();
        assert!(error.contains("formatVersion 9"), "{error}");
    }
}
