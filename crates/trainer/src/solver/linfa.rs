//! linfa-logistic as a solver: the reference the fused solver is tested against.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_logistic::{LogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2, ArrayView2};

use super::FitParams;
use crate::error::TrainError;

/// Fit with linfa-logistic; returns (coefficients (outputs × features), intercepts) in the
/// same convention as the fused solver (binary: logit of class 1).
pub(super) fn fit(
    x: ArrayView2<'_, f32>,
    y: &[usize],
    classes: usize,
    params: &FitParams,
) -> Result<(Array2<f64>, Array1<f64>), TrainError> {
    // linfa runs its L-BFGS in the precision of the records; f64 keeps it a fair reference.
    let records = x.mapv(f64::from).as_standard_layout().into_owned();
    let targets = Array1::from(y.to_vec());
    let dataset = DatasetBase::new(records, targets);
    let tolerance = params.tolerance * y.len() as f64;
    let failed =
        |e: linfa_logistic::error::Error| TrainError::Solver(format!("linfa-logistic: {e}"));
    if classes == 2 {
        let model = LogisticRegression::default()
            .alpha(params.l2_penalty)
            .max_iterations(params.max_iterations)
            .gradient_tolerance(tolerance)
            .fit(&dataset)
            .map_err(failed)?;
        // linfa's positive class is the more frequent one; ours is always class 1.
        let sign = if model.labels().pos.class == 1 {
            1.0
        } else {
            -1.0
        };
        let coefficients = model
            .params()
            .mapv(|w| sign * w)
            .insert_axis(ndarray::Axis(0));
        Ok((coefficients, Array1::from_elem(1, sign * model.intercept())))
    } else {
        let model = MultiLogisticRegression::default()
            .alpha(params.l2_penalty)
            .max_iterations(params.max_iterations)
            .gradient_tolerance(tolerance)
            .fit(&dataset)
            .map_err(failed)?;
        // Columns of linfa's parameters follow its sorted class list: put them in our order.
        let features = x.ncols();
        let mut coefficients = Array2::zeros((classes, features));
        let mut intercepts = Array1::zeros(classes);
        for (column, &class) in model.classes().iter().enumerate() {
            coefficients
                .row_mut(class)
                .assign(&model.params().column(column));
            intercepts[class] = model.intercept()[column];
        }
        Ok((coefficients, intercepts))
    }
}
