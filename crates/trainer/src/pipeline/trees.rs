//! The tree middle of [`crate::train`], either task: targets (classes or numbers) → split →
//! boosted trees or a forest on the raw feature values (trees need no scaling) → the task's
//! metrics.

use ndarray::{Array2, ArrayView2};

use kubetrain_api::Task;
use kubetrain_model::ensemble::Columns;
use kubetrain_model::{ClassSet, GradientBoostedTrees, Model, Prediction, RandomForest};

use super::classification::{check_training_classes, class_targets};
use super::regression::targets_of;
use super::{AlgorithmConfig, FitSummary, Inputs, TrainConfig, Trained, Validation, hold_out};
use crate::error::TrainError;
use crate::metrics::{ClassificationMetrics, Evaluation, RegressionMetrics};
use crate::progress::ProgressSink;
use crate::trees::{Target, TreeFit, boosting, forest};

pub(super) fn fit(
    config: &TrainConfig,
    inputs: Inputs,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> Result<Trained, TrainError> {
    let Inputs { table, validation } = inputs;
    let features = table.feature_names.clone();
    match config.task {
        Task::Classification => {
            let (classes, y, vy) = class_targets(config, &table, validation.as_ref())?;
            let validation = vy.zip(validation.map(|v| v.features));
            let (x, y, held_out) = hold_out(config, pool, table.features, y, validation)?;
            check_training_classes(config, &classes, &y)?;
            let k = classes.len();
            let to_target = |y| Target::Classes { y, classes: k };
            let fitted = fit_and_predict(
                config,
                Rows::new(&x, &y, held_out.as_ref()),
                &to_target,
                Some(&classes),
                features,
                pool,
                sink,
            )?;
            let Prediction::Probabilities(proba) = &fitted.prediction else {
                return Err(TrainError::Internal("a classifier predicted values".into()));
            };
            let metrics = ClassificationMetrics::compute(proba, fitted.truth, &classes.labels);
            Ok(fitted.into_trained(config, Evaluation::Classification(metrics)))
        }
        Task::Regression => {
            let y = targets_of(config, &config.data, &table)?;
            let validation = match (validation, &config.validation) {
                (Some(v), Validation::Data { uri }) => {
                    Some((targets_of(config, uri, &v)?, v.features))
                }
                _ => None,
            };
            let (x, y, held_out) = hold_out(config, pool, table.features, y, validation)?;
            let to_target = |y| Target::Values(y);
            let fitted = fit_and_predict(
                config,
                Rows::new(&x, &y, held_out.as_ref()),
                &to_target,
                None,
                features,
                pool,
                sink,
            )?;
            let Prediction::Values(values) = &fitted.prediction else {
                return Err(TrainError::Internal("a regressor predicted classes".into()));
            };
            let metrics = RegressionMetrics::compute(&values.to_vec(), fitted.truth);
            Ok(fitted.into_trained(config, Evaluation::Regression(metrics)))
        }
    }
}

/// The training rows and, when held out, the validation rows.
struct Rows<'a, T> {
    x: &'a Array2<f32>,
    y: &'a [T],
    held_out: Option<&'a (Array2<f32>, Vec<T>)>,
}

impl<'a, T> Rows<'a, T> {
    fn new(x: &'a Array2<f32>, y: &'a [T], held_out: Option<&'a (Array2<f32>, Vec<T>)>) -> Self {
        Rows { x, y, held_out }
    }
}

/// A fitted model and its prediction for the rows the metrics are computed on.
struct Fitted<'a, T> {
    model: Model,
    fit: TreeFit,
    prediction: Prediction,
    truth: &'a [T],
    evaluated_on: &'static str,
    train_rows: usize,
    validation_rows: usize,
}

/// Fit the configured family on `rows` and predict the validation rows (the training rows
/// when none are held out).
fn fit_and_predict<'a, T>(
    config: &TrainConfig,
    rows: Rows<'a, T>,
    to_target: &dyn Fn(&'a [T]) -> Target<'a>,
    classes: Option<&ClassSet>,
    features: Vec<String>,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> Result<Fitted<'a, T>, TrainError> {
    let validation = rows.held_out.map(|(vx, vy)| (vx.view(), to_target(vy)));
    let (model, fit) = fit_model(
        config,
        rows.x.view(),
        &to_target(rows.y),
        validation.as_ref(),
        classes,
        features,
        pool,
        sink,
    )?;
    let (x, truth, evaluated_on) = match rows.held_out {
        Some((vx, vy)) => (vx.view(), vy.as_slice(), "validation"),
        None => (rows.x.view(), rows.y, "training"),
    };
    let prediction = pool.install(|| model.predict(x));
    Ok(Fitted {
        model,
        fit,
        prediction,
        truth,
        evaluated_on,
        train_rows: rows.y.len(),
        validation_rows: rows.held_out.map_or(0, |(_, vy)| vy.len()),
    })
}

/// Fit the configured tree family and wrap its trees as a model.
#[allow(clippy::too_many_arguments)]
fn fit_model(
    config: &TrainConfig,
    x: ArrayView2<'_, f32>,
    target: &Target<'_>,
    validation: Option<&(ArrayView2<'_, f32>, Target<'_>)>,
    classes: Option<&ClassSet>,
    features: Vec<String>,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> Result<(Model, TreeFit), TrainError> {
    let validation = validation.map(|(vx, vt)| (*vx, vt));
    match &config.algorithm {
        AlgorithmConfig::GradientBoostedTrees(params) => {
            if params.early_stopping_rounds.is_some() && validation.is_none() {
                return Err(TrainError::InvalidParameter {
                    field: "--early-stopping-rounds",
                    message: "needs validation rows: set --validation-fraction above 0 or \
                              --validation-data"
                        .into(),
                });
            }
            let boosted = boosting::boost(x, target, validation, params, pool, sink);
            let model = GradientBoostedTrees {
                format_version: kubetrain_model::boosting::FORMAT_VERSION,
                columns: Columns::new(
                    &config.label_column,
                    features,
                    classes,
                    boosted.fit.importance.clone(),
                ),
                objective: boosted.objective,
                base_score: boosted.base_score,
                trees: boosted.fit.trees.clone(),
            };
            Ok((Model::GradientBoostedTrees(model), boosted.fit))
        }
        AlgorithmConfig::RandomForest(params) => {
            let max_features = kubetrain_api::algorithm::max_features_count(
                params.max_features.as_deref(),
                config.task,
                x.ncols(),
            )
            .map_err(|message| TrainError::InvalidParameter {
                field: "--max-features",
                message,
            })?;
            let fit = forest::forest(x, target, validation, params, max_features, pool, sink);
            let model = RandomForest {
                format_version: kubetrain_model::forest::FORMAT_VERSION,
                columns: Columns::new(
                    &config.label_column,
                    features,
                    classes,
                    fit.importance.clone(),
                ),
                trees: fit.trees.clone(),
            };
            Ok((Model::RandomForest(model), fit))
        }
        _ => Err(TrainError::Internal(
            "the tree pipeline was given a linear algorithm".into(),
        )),
    }
}

impl<T> Fitted<'_, T> {
    fn into_trained(self, config: &TrainConfig, metrics: Evaluation) -> Trained {
        let Fitted {
            model,
            fit,
            evaluated_on,
            train_rows,
            validation_rows,
            ..
        } = self;
        let iteration_limit = match &config.algorithm {
            AlgorithmConfig::GradientBoostedTrees(p) => u64::from(p.max_iterations),
            AlgorithmConfig::RandomForest(p) => u64::from(p.num_trees),
            _ => fit.history.len() as u64,
        };
        let last = fit.kept.checked_sub(1).and_then(|i| fit.history.get(i));
        let stop_reason = if fit.stopped_early {
            format!(
                "early stopping: the validation loss did not improve after iteration {}",
                fit.kept
            )
        } else {
            "all iterations done".to_owned()
        };
        Trained {
            model,
            metrics,
            evaluated_on,
            fit: FitSummary {
                iterations: Some(fit.kept as u64),
                iteration_limit,
                converged: true,
                stop_reason,
                objective: last.map_or(f64::NAN, |(loss, _)| loss * train_rows as f64),
                evaluations: Some(fit.history.len() as u64),
            },
            train_rows: train_rows as u64,
            validation_rows: validation_rows as u64,
        }
    }
}

#[cfg(test)]
#[path = "trees/tests.rs"]
mod tests;
