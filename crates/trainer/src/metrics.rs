//! Metrics on held-out rows: classification (accuracy, log loss, per class, confusion
//! matrix) and regression (RMSE, MAE, R²), with scikit-learn's definitions.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Probabilities are clipped to `[EPS, 1 - EPS]` for the log loss, as scikit-learn does.
const EPS: f64 = 1e-15;

/// Precision, recall and F1 of one class (0 where undefined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassMetrics {
    /// The class label.
    pub class: String,
    /// Correct predictions of this class / all predictions of it.
    pub precision: f64,
    /// Correct predictions of this class / all rows of it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Rows whose true class is this one.
    pub support: u64,
}

/// How well a model did on a set of rows: the task's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evaluation {
    /// A classifier's.
    Classification(ClassificationMetrics),
    /// A regressor's.
    Regression(RegressionMetrics),
}

impl Evaluation {
    /// Rows evaluated.
    pub fn rows(&self) -> u64 {
        match self {
            Evaluation::Classification(m) => m.rows,
            Evaluation::Regression(m) => m.rows,
        }
    }

    /// The task's primary score, higher is better, and its name: accuracy or r2.
    pub fn score(&self) -> (&'static str, f64) {
        match self {
            Evaluation::Classification(m) => ("accuracy", m.accuracy),
            Evaluation::Regression(m) => ("r2", m.r2),
        }
    }
}

/// A regressor's predictions against the true values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegressionMetrics {
    /// Rows evaluated.
    pub rows: u64,
    /// Root mean squared error, in the target's units.
    pub rmse: f64,
    /// Mean absolute error, in the target's units.
    pub mae: f64,
    /// `1 − Σ(y − ŷ)² / Σ(y − ȳ)²` (scikit-learn's `r2_score`: 1 for a perfect fit of a
    /// constant target, 0 for an imperfect one).
    pub r2: f64,
}

impl RegressionMetrics {
    /// Compare `predicted` with the true values `y`, row by row.
    pub fn compute(predicted: &[f64], y: &[f64]) -> RegressionMetrics {
        let n = y.len();
        if n == 0 {
            return RegressionMetrics {
                rows: 0,
                rmse: 0.0,
                mae: 0.0,
                r2: 0.0,
            };
        }
        let mean = y.iter().sum::<f64>() / n as f64;
        let (mut squared, mut absolute, mut total) = (0.0, 0.0, 0.0);
        for (p, t) in predicted.iter().zip(y) {
            squared += (t - p) * (t - p);
            absolute += (t - p).abs();
            total += (t - mean) * (t - mean);
        }
        let r2 = if total > 0.0 {
            1.0 - squared / total
        } else if squared == 0.0 {
            1.0
        } else {
            0.0
        };
        RegressionMetrics {
            rows: n as u64,
            rmse: (squared / n as f64).sqrt(),
            mae: absolute / n as f64,
            r2,
        }
    }
}

/// A classifier's predictions against the true classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassificationMetrics {
    /// Rows evaluated.
    pub rows: u64,
    /// Fraction of rows predicted correctly.
    pub accuracy: f64,
    /// Mean negative log-likelihood of the true class.
    pub log_loss: f64,
    /// Per class, in class order.
    pub per_class: Vec<ClassMetrics>,
    /// `confusionMatrix[true][predicted]` row counts, in class order.
    pub confusion_matrix: Vec<Vec<u64>>,
}

impl ClassificationMetrics {
    /// Evaluate `proba` (rows × classes) against true class indices `y`.
    pub fn compute(proba: &Array2<f64>, y: &[usize], classes: &[String]) -> ClassificationMetrics {
        let k = classes.len();
        let predicted = kubetrain_model::argmax_rows(proba);
        let mut confusion = vec![vec![0u64; k]; k];
        let mut log_loss = 0.0;
        for (i, (&truth, &guess)) in y.iter().zip(&predicted).enumerate() {
            confusion[truth][guess] += 1;
            log_loss -= proba[[i, truth]].clamp(EPS, 1.0 - EPS).ln();
        }
        let rows = y.len();
        let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
        let per_class = classes
            .iter()
            .enumerate()
            .map(|(c, class)| {
                let tp = confusion[c][c] as f64;
                let predicted_c: u64 = confusion.iter().map(|row| row[c]).sum();
                let support: u64 = confusion[c].iter().sum();
                let precision = ratio(tp, predicted_c as f64);
                let recall = ratio(tp, support as f64);
                ClassMetrics {
                    class: class.clone(),
                    precision,
                    recall,
                    f1: ratio(2.0 * precision * recall, precision + recall),
                    support,
                }
            })
            .collect();
        ClassificationMetrics {
            rows: rows as u64,
            accuracy: ratio(correct as f64, rows as f64),
            log_loss: if rows == 0 {
                0.0
            } else {
                log_loss / rows as f64
            },
            per_class,
            confusion_matrix: confusion,
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn hand_computed_example() {
        let proba = array![[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]];
        let y = [0, 0, 1, 1];
        let m = ClassificationMetrics::compute(&proba, &y, &["a".into(), "b".into()]);
        assert_eq!(m.rows, 4);
        assert_eq!(m.accuracy, 0.5);
        assert_eq!(m.confusion_matrix, vec![vec![1, 1], vec![1, 1]]);
        let expected = -(0.9f64.ln() + 0.4f64.ln() + 0.7f64.ln() + 0.2f64.ln()) / 4.0;
        assert!((m.log_loss - expected).abs() < 1e-12);
        assert_eq!(m.per_class[0].precision, 0.5);
        assert_eq!(m.per_class[1].recall, 0.5);
        assert_eq!(m.per_class[1].f1, 0.5);
        assert_eq!(m.per_class[1].support, 2);
    }

    #[test]
    fn regression_metrics_match_their_definitions() {
        let m = RegressionMetrics::compute(&[2.5, 0.0, 2.0, 8.0], &[3.0, -0.5, 2.0, 7.0]);
        // scikit-learn's r2_score example: 0.948...; mean_absolute_error 0.5; MSE 0.375.
        assert!((m.r2 - 0.948_608_137_044_967_9).abs() < 1e-12, "{m:?}");
        assert!((m.mae - 0.5).abs() < 1e-12);
        assert!((m.rmse - 0.375f64.sqrt()).abs() < 1e-12);
        assert_eq!(RegressionMetrics::compute(&[1.0, 1.0], &[1.0, 1.0]).r2, 1.0);
        assert_eq!(RegressionMetrics::compute(&[1.0, 2.0], &[1.0, 1.0]).r2, 0.0);
    }

    #[test]
    fn never_predicted_class_has_zero_precision_not_nan() {
        let proba = array![[0.9, 0.1], [0.8, 0.2]];
        let m = ClassificationMetrics::compute(&proba, &[0, 1], &["a".into(), "b".into()]);
        assert_eq!(m.per_class[1].precision, 0.0);
        assert_eq!(m.per_class[1].f1, 0.0);
        assert!(m.log_loss.is_finite());
    }
}
