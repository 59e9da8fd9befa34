//! Fitting logistic regression: the objective, and two solvers that minimise it.
//!
//! - [`SolverKind::Lbfgs`] (default): the fused, parallel [`Objective`] driven by argmin's
//!   L-BFGS (memory 10, Moré–Thuente line search; what linfa-logistic itself uses).
//! - [`SolverKind::Linfa`]: linfa-logistic 0.8.1 as is, the reference implementation. It
//!   copies X into a row-major `f64` matrix and is several times slower; its multinomial fit
//!   may stop early (upstream linfa issue 334). Kept as an oracle and for comparison.
//!
//! # Stopping
//! `tolerance` is per training row: a fit has converged when the L2 norm of the objective's
//! gradient is below `tolerance × rows` (i.e. the gradient of the *mean* loss has norm below
//! `tolerance`; 1e-4 stops about where scikit-learn's default does). Otherwise it stops after
//! `max_iterations` L-BFGS iterations, or when the line search cannot make progress, which
//! happens at the limit of floating-point precision; the last iterate is kept and the summary
//! says why it stopped.

mod lbfgs;
mod linfa;
pub(crate) mod objective;

use std::fmt;
use std::str::FromStr;

use ::linfa::DatasetView;
use ndarray::{Array1, Array2, Ix1};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::progress::ProgressSink;

pub use objective::Objective;

/// Which solver fits the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SolverKind {
    /// Fused parallel objective + argmin L-BFGS.
    #[default]
    Lbfgs,
    /// linfa-logistic, unchanged.
    Linfa,
}

impl fmt::Display for SolverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SolverKind::Lbfgs => "lbfgs",
            SolverKind::Linfa => "linfa",
        })
    }
}

impl FromStr for SolverKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lbfgs" => Ok(SolverKind::Lbfgs),
            "linfa" => Ok(SolverKind::Linfa),
            other => Err(format!("unknown solver '{other}'; valid: lbfgs, linfa")),
        }
    }
}

/// Hyperparameters of a fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FitParams {
    /// L-BFGS iteration budget.
    pub max_iterations: u64,
    /// α in the objective (scikit-learn's `1 / C`).
    pub l2_penalty: f64,
    /// Per-row gradient-norm tolerance, see the module docs.
    pub tolerance: f64,
}

/// A fitted linear model in standardized feature space.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Shape (outputs, features): one row for a binary problem (logit of the second class),
    /// one per class for a multinomial one.
    pub coefficients: Array2<f64>,
    /// One intercept per output.
    pub intercepts: Array1<f64>,
    /// L-BFGS iterations done (`None` when the solver does not say: linfa).
    pub iterations: Option<u64>,
    /// Whether the gradient tolerance was reached.
    pub converged: bool,
    /// Why the solver stopped, in its words.
    pub stop_reason: String,
    /// Objective value at the solution (same definition for both solvers).
    pub objective: f64,
    /// Number of passes over the data (`None` for linfa).
    pub evaluations: Option<u64>,
}

/// Fit on `dataset` (column-major records, class indices `0..classes` as targets).
///
/// `pool` runs the parallel objective; `sink` is called on this thread after each iteration.
pub fn fit(
    kind: SolverKind,
    dataset: &DatasetView<'_, f32, usize, Ix1>,
    classes: usize,
    params: &FitParams,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> Result<Fitted, TrainError> {
    let x = dataset.records();
    let y = dataset
        .targets()
        .as_slice()
        .ok_or_else(|| TrainError::Internal("targets must be contiguous".into()))?;
    let objective = Objective::new(x.view(), y, classes, params.l2_penalty)?;
    match kind {
        SolverKind::Lbfgs => lbfgs::fit(objective, params, pool, sink),
        SolverKind::Linfa => {
            let (coefficients, intercepts) =
                pool.install(|| linfa::fit(x.view(), y, classes, params))?;
            let w = flatten(&coefficients, &intercepts);
            let (value, grad) = pool.install(|| objective.evaluate(&w));
            let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
            let converged = norm < params.tolerance * y.len() as f64;
            Ok(Fitted {
                coefficients,
                intercepts,
                iterations: None,
                converged,
                stop_reason: format!("linfa-logistic finished; gradient norm {norm:.3e}"),
                objective: value,
                evaluations: None,
            })
        }
    }
}

/// Flatten (coefficients, intercepts) into the objective's parameter layout.
pub(crate) fn flatten(coefficients: &Array2<f64>, intercepts: &Array1<f64>) -> Vec<f64> {
    let mut w = Vec::with_capacity(coefficients.len() + intercepts.len());
    for (row, b) in coefficients.rows().into_iter().zip(intercepts) {
        w.extend(row.iter());
        w.push(*b);
    }
    w
}

/// Split the objective's flat parameters into (coefficients, intercepts).
pub(crate) fn unflatten(w: &[f64], outputs: usize, features: usize) -> (Array2<f64>, Array1<f64>) {
    let stride = features + 1;
    let coefficients = Array2::from_shape_fn((outputs, features), |(k, j)| w[k * stride + j]);
    let intercepts = Array1::from_shape_fn(outputs, |k| w[k * stride + features]);
    (coefficients, intercepts)
}

#[cfg(test)]
pub(crate) mod tests;
