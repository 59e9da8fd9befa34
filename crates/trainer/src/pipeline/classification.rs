//! The classification middle of [`crate::train`]: classes → split → scaler → logistic fit →
//! accuracy, log loss, per-class metrics and the confusion matrix.

use linfa::DatasetBase;
use ndarray::ArrayView1;

use kubetrain_model::{ClassSet, LogisticRegression, Model, Scaler};

use super::{FitSummary, Inputs, TrainConfig, Trained, hold_out};
use crate::data::{RawLabels, Table};
use crate::error::TrainError;
use crate::labels;
use crate::metrics::{ClassificationMetrics, Evaluation};
use crate::progress::ProgressSink;
use crate::solver::{self, FitParams, SolverKind};

pub(super) fn fit(
    config: &TrainConfig,
    solver_kind: SolverKind,
    params: &FitParams,
    inputs: Inputs,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> Result<Trained, TrainError> {
    let Inputs { table, validation } = inputs;
    let (classes, y, validation_y) = class_targets(config, &table, validation.as_ref())?;
    let features = table.feature_names.clone();
    let validation = validation_y.zip(validation.map(|v| v.features));
    let (mut x_train, y_train, held_out) = hold_out(config, pool, table.features, y, validation)?;
    check_training_classes(config, &classes, &y_train)?;

    let scaler = pool.install(|| {
        let scaler = Scaler::fit(x_train.view());
        scaler.transform(x_train.view_mut());
        scaler
    });
    let dataset = DatasetBase::new(x_train.view(), ArrayView1::from(&y_train[..]))
        .with_feature_names(features.clone());
    let fitted = solver::fit(solver_kind, &dataset, classes.len(), params, pool, sink)?;
    let model = LogisticRegression::from_fit(
        &config.label_column,
        features.clone(),
        &classes,
        scaler,
        fitted.coefficients.view(),
        fitted.intercepts.view(),
    );
    let (metrics, evaluated_on) = match &held_out {
        Some((x, y)) => (
            ClassificationMetrics::compute(&model.predict_proba(x.view()), y, &classes.labels),
            "validation",
        ),
        None => {
            // The training rows are already standardized: evaluate them without the scaler.
            let identity = LogisticRegression {
                scaler: Scaler {
                    mean: vec![0.0; features.len()],
                    scale: vec![1.0; features.len()],
                },
                ..model.clone()
            };
            let proba = identity.predict_proba(x_train.view());
            (
                ClassificationMetrics::compute(&proba, &y_train, &classes.labels),
                "training",
            )
        }
    };
    Ok(Trained {
        model: Model::LogisticRegression(model),
        metrics: Evaluation::Classification(metrics),
        evaluated_on,
        fit: FitSummary {
            iterations: fitted.iterations,
            iteration_limit: params.max_iterations,
            converged: fitted.converged,
            stop_reason: fitted.stop_reason,
            objective: fitted.objective,
            evaluations: fitted.evaluations,
        },
        train_rows: y_train.len() as u64,
        validation_rows: held_out.as_ref().map_or(0, |(_, y)| y.len() as u64),
    })
}

/// The classes of the training and validation labels (at least two), and each table's labels
/// as class indices.
#[allow(clippy::type_complexity)]
pub(super) fn class_targets(
    config: &TrainConfig,
    table: &Table,
    validation: Option<&Table>,
) -> Result<(ClassSet, Vec<usize>, Option<Vec<usize>>), TrainError> {
    let raw = labels_of(table)?;
    let classes = match validation {
        Some(v) => labels::class_set(&[raw, labels_of(v)?]),
        None => labels::class_set(&[raw]),
    };
    if classes.len() < 2 {
        return Err(TrainError::SingleClass {
            uri: config.data.clone(),
            column: config.label_column.clone(),
            class: classes.labels.first().cloned().unwrap_or_default(),
        });
    }
    let y = encode(&classes, raw)?;
    let validation_y = match validation {
        Some(v) => Some(encode(&classes, labels_of(v)?)?),
        None => None,
    };
    Ok((classes, y, validation_y))
}

fn labels_of(table: &Table) -> Result<&RawLabels, TrainError> {
    table
        .labels
        .as_ref()
        .ok_or_else(|| TrainError::Internal("the label column was not read".into()))
}

fn encode(classes: &ClassSet, raw: &RawLabels) -> Result<Vec<usize>, TrainError> {
    labels::encode(classes, raw)
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| TrainError::Internal("a label is missing from the class set".into()))
}

pub(super) fn check_training_classes(
    config: &TrainConfig,
    classes: &ClassSet,
    y_train: &[usize],
) -> Result<(), TrainError> {
    let mut counts = vec![0usize; classes.len()];
    for &c in y_train {
        counts[c] += 1;
    }
    let present: Vec<usize> = (0..classes.len()).filter(|&c| counts[c] > 0).collect();
    if present.len() < 2 {
        return Err(TrainError::SingleClass {
            uri: config.data.clone(),
            column: config.label_column.clone(),
            class: present
                .first()
                .map(|&c| classes.labels[c].clone())
                .unwrap_or_default(),
        });
    }
    if let Some(missing) = (0..classes.len()).find(|&c| counts[c] == 0) {
        return Err(TrainError::UnseenClass {
            class: classes.labels[missing].clone(),
        });
    }
    Ok(())
}
