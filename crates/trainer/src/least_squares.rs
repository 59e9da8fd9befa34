//! Penalised linear least squares: ridge, lasso and the elastic net, on standardized features.
//!
//! The objective, summed over the `n` training rows (the same convention as the logistic
//! objective, whose `l2Penalty` is scikit-learn's `1/C`):
//!
//! `½ Σᵢ (yᵢ − b − xᵢ·w)² + α (ρ ‖w‖₁ + ½ (1 − ρ) ‖w‖²)`, `α = l2Penalty`, `ρ = l1Ratio`.
//!
//! With `ρ = 0` it is scikit-learn's `Ridge(alpha=α)`; otherwise its
//! `ElasticNet(alpha=α/n, l1_ratio=ρ)` (whose loss is the mean, halved).
//!
//! # Method
//! Both solvers work on the Gram matrix `G = XᵀX` and `q = Xᵀy` (one parallel pass over the
//! data, `p²/2` dot products; `8p²` bytes, plus a contiguous copy of the features), so their
//! cost after that pass does not depend on the number of rows:
//! - `ρ = 0`: the normal equations `(G + αI) w = q`, solved exactly by Cholesky
//!   factorisation. When `G + αI` is singular (`α = 0` with collinear or constant features)
//!   it falls back to coordinate descent, which finds a least-squares solution.
//! - `ρ > 0`: cyclic coordinate descent with covariance updates (Friedman, Hastie and
//!   Tibshirani, "Regularization Paths for Generalized Linear Models via Coordinate Descent",
//!   2010, section 2.2), stopped as scikit-learn's `enet_coordinate_descent_gram` stops: once a
//!   pass changes no coefficient by more than `tolerance` of the largest, the duality gap is
//!   computed and the fit has converged when it is below `tolerance · ‖y‖²`. Without an L1
//!   term (the singular ridge fallback) the gap is not defined: the fit has converged when
//!   the gradient `q − Gw − αw` has no entry above `tolerance · ‖q‖∞`.
//!
//! The intercept is not penalised: with `fit_intercept` the features arrive centred and `y` is
//! centred here, so `b` is the mean of `y`.

use std::time::{Duration, Instant};

use ndarray::ArrayView2;
use rayon::prelude::*;

use crate::error::TrainError;
use crate::progress::{Iteration, ProgressSink};

/// Hyperparameters of a linear-regression fit (see the module docs for their meaning).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinearParams {
    /// α: strength of the whole penalty.
    pub l2_penalty: f64,
    /// ρ in [0, 1]: the L1 share of the penalty.
    pub l1_ratio: f64,
    /// Whether to fit an (unpenalised) intercept.
    pub fit_intercept: bool,
    /// Coordinate-descent passes allowed.
    pub max_iterations: u64,
    /// Relative tolerance of coordinate descent (see the module docs).
    pub tolerance: f64,
}

/// A solved linear model in standardized feature space.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearFit {
    /// One per feature.
    pub coefficients: Vec<f64>,
    /// `b`: the mean of `y` with `fit_intercept`, else 0.
    pub intercept: f64,
    /// Coordinate-descent passes (1 for an exact solve).
    pub iterations: u64,
    /// The pass budget in force: `max_iterations`, or 1 for an exact solve.
    pub iteration_limit: u64,
    /// Whether the solution meets the tolerance (always, for an exact solve).
    pub converged: bool,
    /// How the solver ended, in words.
    pub stop_reason: String,
    /// The objective at the solution (summed over rows, see the module docs).
    pub objective: f64,
}

/// Fit `y` (one value per row) on `x` (rows × features, standardized; column-major is
/// fastest). `pool` runs the pass over the data; `sink` hears about each coordinate-descent
/// pass (at most every 100 ms, and the last one).
///
/// # Errors
/// [`TrainError::Internal`] when the shapes of `x` and `y` disagree.
pub fn fit(
    x: ArrayView2<'_, f32>,
    y: &[f64],
    params: &LinearParams,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> Result<LinearFit, TrainError> {
    if x.nrows() != y.len() {
        return Err(TrainError::Internal(format!(
            "{} rows of features but {} targets",
            x.nrows(),
            y.len()
        )));
    }
    let started = Instant::now();
    let intercept = if params.fit_intercept && !y.is_empty() {
        y.iter().sum::<f64>() / y.len() as f64
    } else {
        0.0
    };
    let centred: Vec<f64> = y.iter().map(|v| v - intercept).collect();
    let system = pool.install(|| Normal::build(x, &centred));
    let l1 = params.l2_penalty * params.l1_ratio;
    let l2 = params.l2_penalty * (1.0 - params.l1_ratio);
    if l1 == 0.0
        && let Some(coefficients) = system.solve_ridge(l2)
    {
        let objective = system.objective(&coefficients, l1, l2);
        sink.report(&Iteration {
            iteration: 1,
            total: 1,
            loss: objective / y.len().max(1) as f64,
            validation_loss: None,
            elapsed: started.elapsed(),
        });
        return Ok(LinearFit {
            coefficients,
            intercept,
            iterations: 1,
            iteration_limit: 1,
            converged: true,
            stop_reason: "solved exactly (Cholesky factorisation of the normal equations)".into(),
            objective,
        });
    }
    let mut fit = system.coordinate_descent(l1, l2, params, started, y.len(), sink);
    fit.intercept = intercept;
    Ok(fit)
}

/// The normal equations of the centred problem: `G = XᵀX`, `q = Xᵀy`, `‖y‖²`.
struct Normal {
    p: usize,
    /// Row-major, symmetric, p × p.
    gram: Vec<f64>,
    q: Vec<f64>,
    y_norm2: f64,
}

impl Normal {
    fn build(x: ArrayView2<'_, f32>, y: &[f64]) -> Normal {
        let p = x.ncols();
        let columns: Vec<Vec<f32>> = (0..p)
            .into_par_iter()
            .map(|j| x.column(j).to_vec())
            .collect();
        let rows: Vec<(Vec<f64>, f64)> = (0..p)
            .into_par_iter()
            .map(|j| {
                let upper: Vec<f64> = (j..p).map(|k| dot(&columns[j], &columns[k])).collect();
                let q = columns[j]
                    .iter()
                    .zip(y)
                    .map(|(&v, y)| f64::from(v) * y)
                    .sum();
                (upper, q)
            })
            .collect();
        let mut gram = vec![0.0; p * p];
        let mut q = vec![0.0; p];
        for (j, (upper, q_j)) in rows.into_iter().enumerate() {
            for (offset, value) in upper.into_iter().enumerate() {
                gram[j * p + j + offset] = value;
                gram[(j + offset) * p + j] = value;
            }
            q[j] = q_j;
        }
        Normal {
            p,
            gram,
            q,
            y_norm2: y.iter().map(|v| v * v).sum(),
        }
    }

    /// `½ ‖y − Xw‖² + l1 ‖w‖₁ + ½ l2 ‖w‖²`, from the normal equations.
    fn objective(&self, w: &[f64], l1: f64, l2: f64) -> f64 {
        let gw = self.gram_times(w);
        let residual2 = self.y_norm2 - 2.0 * dot64(w, &self.q) + dot64(w, &gw);
        0.5 * residual2.max(0.0)
            + l1 * w.iter().map(|v| v.abs()).sum::<f64>()
            + 0.5 * l2 * dot64(w, w)
    }

    fn gram_times(&self, w: &[f64]) -> Vec<f64> {
        (0..self.p)
            .map(|j| dot64(&self.gram[j * self.p..(j + 1) * self.p], w))
            .collect()
    }

    /// `(G + l2·I) w = q` by Cholesky; `None` when the matrix is not positive definite.
    fn solve_ridge(&self, l2: f64) -> Option<Vec<f64>> {
        let p = self.p;
        // Lower-triangular L with L Lᵀ = G + l2·I, built in place.
        let mut l = self.gram.clone();
        let largest = (0..p).map(|j| l[j * p + j]).fold(0.0, f64::max) + l2;
        for j in 0..p {
            let mut diagonal = l[j * p + j] + l2;
            for k in 0..j {
                diagonal -= l[j * p + k] * l[j * p + k];
            }
            // Relative to the largest diagonal entry: below this, the system is singular in
            // floating point and the solution would be noise.
            if diagonal <= largest * 1e-12 {
                return None;
            }
            let diagonal = diagonal.sqrt();
            l[j * p + j] = diagonal;
            for i in j + 1..p {
                let mut value = l[i * p + j];
                for k in 0..j {
                    value -= l[i * p + k] * l[j * p + k];
                }
                l[i * p + j] = value / diagonal;
            }
        }
        let mut z = self.q.clone();
        for i in 0..p {
            for k in 0..i {
                z[i] -= l[i * p + k] * z[k];
            }
            z[i] /= l[i * p + i];
        }
        for i in (0..p).rev() {
            for k in i + 1..p {
                z[i] -= l[k * p + i] * z[k];
            }
            z[i] /= l[i * p + i];
        }
        Some(z)
    }

    fn coordinate_descent(
        &self,
        l1: f64,
        l2: f64,
        params: &LinearParams,
        started: Instant,
        rows: usize,
        sink: &dyn ProgressSink,
    ) -> LinearFit {
        let p = self.p;
        let mut w = vec![0.0; p];
        // h = G w, kept up to date as coordinates move.
        let mut h = vec![0.0; p];
        let total = params.max_iterations.max(1);
        let mut reported = Duration::ZERO;
        let mut gap = f64::INFINITY;
        let mut iterations = 0;
        let mut converged = false;
        let q_max = self.q.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        while iterations < total {
            iterations += 1;
            let (mut w_max, mut d_max) = (0.0f64, 0.0f64);
            for j in 0..p {
                let g_jj = self.gram[j * p + j];
                if g_jj + l2 <= 0.0 {
                    continue;
                }
                let old = w[j];
                let rho = self.q[j] - h[j] + g_jj * old;
                let new = soft_threshold(rho, l1) / (g_jj + l2);
                if new != old {
                    let delta = new - old;
                    for (h_k, g) in h.iter_mut().zip(&self.gram[j * p..(j + 1) * p]) {
                        *h_k += delta * g;
                    }
                    w[j] = new;
                    d_max = d_max.max(delta.abs());
                }
                w_max = w_max.max(new.abs());
            }
            let elapsed = started.elapsed();
            let last = iterations == total;
            let settled = w_max == 0.0 || d_max / w_max < params.tolerance;
            if l1 == 0.0 {
                // No L1 term (a singular ridge system): the duality gap below is the elastic
                // net's and is not defined without one; the gradient is.
                let gradient = (0..p)
                    .map(|j| (self.q[j] - h[j] - l2 * w[j]).abs())
                    .fold(0.0f64, f64::max);
                converged = gradient <= params.tolerance * q_max;
            } else if settled || last {
                gap = self.duality_gap(&w, &h, l1, l2);
                converged = gap < params.tolerance * self.y_norm2;
            }
            if converged || last || elapsed >= reported + Duration::from_millis(100) {
                reported = elapsed;
                sink.report(&Iteration {
                    iteration: iterations,
                    total,
                    loss: self.objective(&w, l1, l2) / rows.max(1) as f64,
                    validation_loss: None,
                    elapsed,
                });
            }
            if converged {
                break;
            }
        }
        let stop_reason = if converged && l1 == 0.0 {
            format!("gradient below tolerance × ‖Xᵀy‖∞ after {iterations} passes")
        } else if converged {
            format!("duality gap {gap:.3e} below tolerance × ‖y‖² after {iterations} passes")
        } else if l1 == 0.0 {
            format!(
                "maxIterations ({total}) reached before the gradient fell below tolerance × ‖Xᵀy‖∞"
            )
        } else {
            format!(
                "maxIterations ({total}) reached; duality gap {gap:.3e} is above tolerance × ‖y‖² ({:.3e})",
                params.tolerance * self.y_norm2
            )
        };
        LinearFit {
            objective: self.objective(&w, l1, l2),
            coefficients: w,
            intercept: 0.0,
            iterations,
            iteration_limit: total,
            converged,
            stop_reason,
        }
    }

    /// The duality gap of the elastic net at `w` (with `h = G w`), as scikit-learn computes
    /// it for the Gram formulation; 0 at the optimum.
    fn duality_gap(&self, w: &[f64], h: &[f64], l1: f64, l2: f64) -> f64 {
        // XᵀR − l2·w, with R = y − Xw.
        let xt_a: Vec<f64> = (0..self.p).map(|j| self.q[j] - h[j] - l2 * w[j]).collect();
        let dual_norm = xt_a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let q_dot_w = dot64(w, &self.q);
        let residual2 = (self.y_norm2 + dot64(w, h) - 2.0 * q_dot_w).max(0.0);
        let w_norm2 = dot64(w, w);
        let (scale, mut gap) = if dual_norm > l1 {
            let scale = l1 / dual_norm;
            (scale, 0.5 * (residual2 + residual2 * scale * scale))
        } else {
            (1.0, residual2)
        };
        let l1_norm: f64 = w.iter().map(|v| v.abs()).sum();
        gap += l1 * l1_norm - scale * self.y_norm2
            + scale * q_dot_w
            + 0.5 * l2 * (1.0 + scale * scale) * w_norm2;
        gap
    }
}

/// `sign(v) · max(|v| − t, 0)`.
fn soft_threshold(v: f64, t: f64) -> f64 {
    if v > t {
        v - t
    } else if v < -t {
        v + t
    } else {
        0.0
    }
}

/// `Σ aᵢ bᵢ` of two f32 columns, accumulated in f64 over four lanes.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let chunks = a.chunks_exact(4).zip(b.chunks_exact(4));
    for (a4, b4) in chunks {
        for lane in 0..4 {
            lanes[lane] += f64::from(a4[lane]) * f64::from(b4[lane]);
        }
    }
    let tail = a.len() - a.len() % 4;
    let rest: f64 = a[tail..]
        .iter()
        .zip(&b[tail..])
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    lanes.iter().sum::<f64>() + rest
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests;
