//! The fused logistic-regression objective: loss and gradient in one parallel pass over X.
//!
//! Objective (what both solvers minimise):
//!
//! ```text
//! f(W, b) = Σ_i logloss(x_i·W + b, y_i) + α/2 · ‖W‖²      (the intercepts b are not penalised)
//! ```
//!
//! Binary problems have one output (the logit of the second class); multinomial problems have
//! one output per class and a softmax, with the log-sum-exp taken per row (subtracting that
//! row's maximum score), which is what keeps it finite and descending on real data.
//!
//! Parameters are one flat vector, output-major: for output `k`, `features` weights followed
//! by the intercept.
//!
//! # Guarantees
//! Rows are processed in fixed blocks whose partial sums are added in block order, so the
//! value does not depend on the number of threads or on scheduling.

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use kubetrain_model::sigmoid;

use crate::error::TrainError;

const BLOCK_ROWS: usize = 2048;

/// The objective over a column-major feature matrix and class indices.
#[derive(Debug)]
pub struct Objective<'a> {
    columns: Vec<&'a [f32]>,
    y: &'a [usize],
    outputs: usize,
    alpha: f64,
}

impl<'a> Objective<'a> {
    /// `x` must be column-major (each column contiguous), `y[i] < classes`, `classes >= 2`.
    pub fn new(
        x: ArrayView2<'a, f32>,
        y: &'a [usize],
        classes: usize,
        alpha: f64,
    ) -> Result<Self, TrainError> {
        if x.nrows() != y.len() || classes < 2 || y.iter().any(|&c| c >= classes) {
            return Err(TrainError::Internal(format!(
                "objective: {} rows, {} labels, {classes} classes",
                x.nrows(),
                y.len()
            )));
        }
        let columns = (0..x.ncols())
            .map(|j| {
                let column = x.index_axis_move(Axis(1), j);
                column
                    .to_slice()
                    .ok_or_else(|| TrainError::Internal("objective: X must be column-major".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Objective {
            columns,
            y,
            outputs: if classes == 2 { 1 } else { classes },
            alpha,
        })
    }

    /// Number of outputs: 1 for a binary problem, the number of classes otherwise.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.columns.len()
    }

    /// Number of training rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Length of the flat parameter vector.
    pub fn dim(&self) -> usize {
        self.outputs * (self.features() + 1)
    }

    /// Objective value and gradient at `w`, in one pass over the data.
    pub fn evaluate(&self, w: &[f64]) -> (f64, Vec<f64>) {
        let blocks = self.rows().div_ceil(BLOCK_ROWS);
        let partials: Vec<(f64, Vec<f64>)> = (0..blocks)
            .into_par_iter()
            .map_init(Vec::new, |scratch, b| self.block(b, w, scratch))
            .collect();
        let mut loss = 0.0;
        let mut grad = vec![0.0; self.dim()];
        for (l, g) in partials {
            loss += l;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        let stride = self.features() + 1;
        for k in 0..self.outputs {
            for j in 0..self.features() {
                let wkj = w[k * stride + j];
                loss += 0.5 * self.alpha * wkj * wkj;
                grad[k * stride + j] += self.alpha * wkj;
            }
        }
        (loss, grad)
    }

    fn block(&self, b: usize, w: &[f64], z: &mut Vec<f64>) -> (f64, Vec<f64>) {
        let p = self.features();
        let m = self.outputs;
        let stride = p + 1;
        let r0 = b * BLOCK_ROWS;
        let r1 = (r0 + BLOCK_ROWS).min(self.rows());
        let len = r1 - r0;
        z.clear();
        z.resize(m * len, 0.0);
        // Scores: z_k = b_k + X w_k, one contiguous column at a time.
        for k in 0..m {
            z[k * len..(k + 1) * len].fill(w[k * stride + p]);
        }
        for (j, column) in self.columns.iter().enumerate() {
            let column = &column[r0..r1];
            for k in 0..m {
                axpy(&mut z[k * len..(k + 1) * len], w[k * stride + j], column);
            }
        }
        // Loss, and residuals (p - onehot) written over the scores.
        let y = &self.y[r0..r1];
        let mut loss = 0.0;
        if m == 1 {
            for (zi, &yi) in z.iter_mut().zip(y) {
                let t = if yi == 1 { 1.0 } else { 0.0 };
                let s = *zi;
                loss += softplus(s) - t * s;
                *zi = sigmoid(s) - t;
            }
        } else {
            for (i, &yi) in y.iter().enumerate() {
                let mut max = f64::NEG_INFINITY;
                for k in 0..m {
                    max = max.max(z[k * len + i]);
                }
                let mut sum = 0.0;
                for k in 0..m {
                    sum += (z[k * len + i] - max).exp();
                }
                let lse = max + sum.ln();
                loss += lse - z[yi * len + i];
                for k in 0..m {
                    let p = (z[k * len + i] - lse).exp();
                    z[k * len + i] = if k == yi { p - 1.0 } else { p };
                }
            }
        }
        // Gradient: X^T R, again column by column.
        let mut grad = vec![0.0; m * stride];
        for (j, column) in self.columns.iter().enumerate() {
            let column = &column[r0..r1];
            for k in 0..m {
                grad[k * stride + j] = dot(column, &z[k * len..(k + 1) * len]);
            }
        }
        for k in 0..m {
            grad[k * stride + p] = z[k * len..(k + 1) * len].iter().sum();
        }
        (loss, grad)
    }
}

/// `log(1 + e^s)` without overflow.
pub(crate) fn softplus(s: f64) -> f64 {
    s.max(0.0) + (-s.abs()).exp().ln_1p()
}

fn axpy(z: &mut [f64], a: f64, x: &[f32]) {
    for (zi, &xi) in z.iter_mut().zip(x) {
        *zi += a * f64::from(xi);
    }
}

/// Dot product with four independent accumulators, so the compiler can vectorise it.
fn dot(x: &[f32], r: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let xs = x.chunks_exact(4);
    let rs = r.chunks_exact(4);
    let (x_tail, r_tail) = (xs.remainder(), rs.remainder());
    for (xc, rc) in xs.zip(rs) {
        for l in 0..4 {
            acc[l] += f64::from(xc[l]) * rc[l];
        }
    }
    let tail: f64 = x_tail
        .iter()
        .zip(r_tail)
        .map(|(&a, &b)| f64::from(a) * b)
        .sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    fn data(classes: usize) -> (Array2<f32>, Vec<usize>) {
        let rows = 5000;
        let mut x = Array2::<f32>::zeros((rows, 3).f());
        let mut y = Vec::new();
        for i in 0..rows {
            let a = ((i * 7919) % 1000) as f32 / 500.0 - 1.0;
            let b = ((i * 104_729) % 997) as f32 / 498.0 - 1.0;
            x[[i, 0]] = a;
            x[[i, 1]] = b;
            x[[i, 2]] = a * b;
            y.push(
                ((a + 2.0 * b + 3.0) * classes as f32 / 6.0).clamp(0.0, classes as f32 - 1.0)
                    as usize,
            );
        }
        (x, y)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for classes in [2, 4] {
            let (x, y) = data(classes);
            let objective = Objective::new(x.view(), &y, classes, 0.7).unwrap();
            let w: Vec<f64> = (0..objective.dim())
                .map(|i| (i as f64 * 0.37).sin())
                .collect();
            let (_, grad) = objective.evaluate(&w);
            for i in 0..w.len() {
                let h = 1e-5;
                let mut plus = w.clone();
                plus[i] += h;
                let mut minus = w.clone();
                minus[i] -= h;
                let numeric =
                    (objective.evaluate(&plus).0 - objective.evaluate(&minus).0) / (2.0 * h);
                assert!(
                    (numeric - grad[i]).abs() <= 1e-4 * (1.0 + numeric.abs()),
                    "classes {classes}, param {i}: numeric {numeric} vs analytic {}",
                    grad[i]
                );
            }
        }
    }

    #[test]
    fn value_at_zero_is_n_log_k_and_independent_of_threads() {
        let (x, y) = data(4);
        let objective = Objective::new(x.view(), &y, 4, 1.0).unwrap();
        let w = vec![0.0; objective.dim()];
        let (loss, _) = objective.evaluate(&w);
        assert!((loss - 5000.0 * 4f64.ln()).abs() < 1e-6);
        let w: Vec<f64> = (0..objective.dim()).map(|i| i as f64 * 0.1).collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert_eq!(
            one.install(|| objective.evaluate(&w)),
            two.install(|| objective.evaluate(&w))
        );
    }

    #[test]
    fn extreme_scores_stay_finite() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(softplus(-1000.0) >= 0.0 && softplus(-1000.0) < 1e-300);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn row_major_input_is_refused() {
        let x = Array2::<f32>::zeros((3, 2));
        assert!(Objective::new(x.view(), &[0, 1, 0], 2, 1.0).is_err());
    }
}
