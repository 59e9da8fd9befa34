//! The default solver: argmin's L-BFGS over the fused [`Objective`].
//!
//! L-BFGS minimises the objective divided by the number of rows (same minimiser): its first
//! step is the negative gradient with step length 1, which on the summed objective overshoots
//! by a factor of the row count and costs several extra passes in the line search.
//!
//! argmin asks for the cost and the gradient separately (the line search often asks for both
//! at the same point); a one-entry cache makes each distinct point cost one pass over X.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use argmin::core::observers::{Observe, ObserverMode};
use argmin::core::{CostFunction, Executor, Gradient, IterState, KV, State, TerminationReason};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use ndarray::Array1;

use super::objective::Objective;
use super::{FitParams, Fitted, unflatten};
use crate::error::TrainError;
use crate::progress::{Iteration, ProgressSink};

type Param = Array1<f64>;
type Iter = IterState<Param, Param, (), (), (), f64>;

const HISTORY: usize = 10;

struct Problem<'a> {
    objective: Objective<'a>,
    /// 1 / rows: the objective is minimised as a mean.
    scale: f64,
    last: Mutex<Option<(Param, f64, Param)>>,
    evaluations: AtomicU64,
}

impl Problem<'_> {
    fn evaluate(&self, w: &Param) -> (f64, Param) {
        if let Ok(last) = self.last.lock()
            && let Some((at, value, grad)) = last.as_ref()
            && at == w
        {
            return (*value, grad.clone());
        }
        let (value, grad) = match w.as_slice() {
            Some(slice) => self.objective.evaluate(slice),
            None => self.objective.evaluate(&w.to_vec()),
        };
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let value = value * self.scale;
        let grad = Array1::from(grad) * self.scale;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((w.clone(), value, grad.clone()));
        }
        (value, grad)
    }
}

impl CostFunction for Problem<'_> {
    type Param = Param;
    type Output = f64;
    fn cost(&self, w: &Param) -> Result<f64, argmin::core::Error> {
        Ok(self.evaluate(w).0)
    }
}

impl Gradient for Problem<'_> {
    type Param = Param;
    type Gradient = Param;
    fn gradient(&self, w: &Param) -> Result<Param, argmin::core::Error> {
        Ok(self.evaluate(w).1)
    }
}

/// Forwards (iteration, objective) to the thread that owns the progress sink.
struct Forward(mpsc::Sender<(u64, f64)>);

impl Observe<Iter> for Forward {
    fn observe_iter(&mut self, state: &Iter, _kv: &KV) -> Result<(), argmin::core::Error> {
        // Called before argmin increments its counter, hence the + 1.
        let _ = self.0.send((state.get_iter() + 1, state.get_cost()));
        Ok(())
    }
}

pub(super) fn fit(
    objective: Objective<'_>,
    params: &FitParams,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> Result<Fitted, TrainError> {
    let rows = objective.rows();
    let (outputs, features, dim) = (objective.outputs(), objective.features(), objective.dim());
    let problem = Problem {
        objective,
        scale: 1.0 / rows as f64,
        last: Mutex::new(None),
        evaluations: AtomicU64::new(0),
    };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), HISTORY)
        .with_tolerance_grad(params.tolerance)
        .map_err(|e| TrainError::Internal(format!("L-BFGS setup: {e}")))?;
    let max_iterations = params.max_iterations;
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    // The optimiser runs on its own thread (inside the pool) so that this thread can hand
    // progress to the sink, which need not be thread-safe, while it runs.
    let result = std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            pool.install(|| {
                Executor::new(problem, solver)
                    .configure(|state| state.param(Array1::zeros(dim)).max_iters(max_iterations))
                    .add_observer(Forward(tx), ObserverMode::Always)
                    .run()
            })
        });
        for (iteration, value) in rx {
            sink.report(&Iteration {
                iteration,
                total: max_iterations,
                loss: value,
                validation_loss: None,
                elapsed: started.elapsed(),
            });
        }
        handle.join()
    });
    let result = result
        .map_err(|_| TrainError::Internal("the solver thread panicked".into()))?
        .map_err(|e| TrainError::Solver(e.to_string()))?;
    let state = &result.state;
    let w = state
        .get_best_param()
        .or_else(|| state.get_param())
        .ok_or_else(|| TrainError::Internal("L-BFGS returned no parameters".into()))?;
    let (coefficients, intercepts) =
        unflatten(w.as_slice().unwrap_or(&w.to_vec()), outputs, features);
    let reason = state.get_termination_reason();
    Ok(Fitted {
        coefficients,
        intercepts,
        iterations: Some(state.get_iter()),
        converged: matches!(reason, Some(TerminationReason::SolverConverged)),
        stop_reason: reason.map_or_else(|| "unknown".to_string(), |r| r.to_string()),
        objective: state.get_best_cost() * rows as f64,
        evaluations: Some(
            result
                .problem
                .problem
                .as_ref()
                .map_or(0, |p| p.evaluations.load(Ordering::Relaxed)),
        ),
    })
}
