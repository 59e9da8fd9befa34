//! The regression middle of [`crate::train`]: numeric targets → split → scaler → penalised
//! least squares → RMSE, MAE and R².

use kubetrain_model::{LinearRegression, Model, Scaler};

use super::{FitSummary, Inputs, TrainConfig, Trained, hold_out};
use crate::data::Table;
use crate::error::TrainError;
use crate::least_squares::{self, LinearParams};
use crate::metrics::{Evaluation, RegressionMetrics};
use crate::progress::ProgressSink;
use crate::targets;

pub(super) fn fit(
    config: &TrainConfig,
    params: &LinearParams,
    inputs: Inputs,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> Result<Trained, TrainError> {
    let Inputs { table, validation } = inputs;
    let y = targets_of(config, &config.data, &table)?;
    let features = table.feature_names.clone();
    let validation = match (validation, &config.validation) {
        (Some(v), super::Validation::Data { uri }) => {
            Some((targets_of(config, uri, &v)?, v.features))
        }
        _ => None,
    };
    let (mut x_train, y_train, held_out) = hold_out(config, pool, table.features, y, validation)?;

    let scaler = pool.install(|| {
        let mut scaler = Scaler::fit(x_train.view());
        if !params.fit_intercept {
            // No intercept: scale, but do not centre (a centred model has an implicit one).
            scaler.mean.iter_mut().for_each(|m| *m = 0.0);
        }
        scaler.transform(x_train.view_mut());
        scaler
    });
    let solved = least_squares::fit(x_train.view(), &y_train, params, pool, sink)?;
    let model = LinearRegression::from_fit(
        &config.label_column,
        features,
        scaler,
        solved.coefficients.clone(),
        solved.intercept,
    );
    let (metrics, evaluated_on) = match &held_out {
        Some((x, y)) => (
            RegressionMetrics::compute(&pool.install(|| model.predict(x.view())).to_vec(), y),
            "validation",
        ),
        None => {
            // The training rows are already standardized: evaluate them without the scaler.
            let identity = LinearRegression {
                scaler: Scaler {
                    mean: vec![0.0; model.feature_names.len()],
                    scale: vec![1.0; model.feature_names.len()],
                },
                ..model.clone()
            };
            let predicted = identity.predict(x_train.view()).to_vec();
            (RegressionMetrics::compute(&predicted, &y_train), "training")
        }
    };
    Ok(Trained {
        model: Model::LinearRegression(model),
        metrics: Evaluation::Regression(metrics),
        evaluated_on,
        fit: FitSummary {
            iterations: Some(solved.iterations),
            iteration_limit: solved.iteration_limit,
            converged: solved.converged,
            stop_reason: solved.stop_reason,
            objective: solved.objective,
            evaluations: Some(1),
        },
        train_rows: y_train.len() as u64,
        validation_rows: held_out.as_ref().map_or(0, |(_, y)| y.len() as u64),
    })
}

/// The label column of `table` (read from `uri`) as numbers.
pub(super) fn targets_of(
    config: &TrainConfig,
    uri: &str,
    table: &Table,
) -> Result<Vec<f64>, TrainError> {
    let raw = table.labels.as_ref().ok_or_else(|| {
        TrainError::Internal(format!(
            "the target column '{}' was not read",
            config.label_column
        ))
    })?;
    targets::numeric(raw).map_err(|e| TrainError::data(uri, e))
}
