#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::cell::RefCell;

use ::linfa::DatasetBase;
use ndarray::ArrayView1;

use super::*;
use crate::data::{ColumnSelection, parse_csv};
use crate::labels;
use crate::progress::{Iteration, NoProgress};
use kubetrain_model::ClassSet;
use kubetrain_model::Scaler;
use kubetrain_model::{LogisticRegression, argmax_rows};

pub(crate) fn dataset_path(name: &str) -> String {
    format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

struct Loaded {
    x: ndarray::Array2<f32>,
    y: Vec<usize>,
    classes: ClassSet,
    names: Vec<String>,
}

fn load(name: &str) -> Loaded {
    let bytes = std::fs::read(dataset_path(name)).unwrap();
    let selection = ColumnSelection {
        label: Some("label".into()),
        label_required: true,
        features: None,
    };
    let table = parse_csv(&bytes, &selection).unwrap();
    let raw = table.labels.unwrap();
    let classes = labels::class_set(&[&raw]);
    let y = labels::encode(&classes, &raw)
        .into_iter()
        .map(Option::unwrap)
        .collect();
    Loaded {
        x: table.features,
        y,
        classes,
        names: table.feature_names,
    }
}

fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
}

fn fit_on(kind: SolverKind, data: &Loaded, params: &FitParams, sink: &dyn ProgressSink) -> Fitted {
    let dataset = DatasetBase::new(data.x.view(), ArrayView1::from(&data.y[..]));
    fit(kind, &dataset, data.classes.len(), params, &pool(), sink).unwrap()
}

fn test_accuracy(train: &str, test: &str, kind: SolverKind) -> (f64, Fitted) {
    let mut data = load(train);
    let scaler = Scaler::fit(data.x.view());
    scaler.transform(data.x.view_mut());
    let params = FitParams {
        max_iterations: 1000,
        l2_penalty: 1.0,
        tolerance: 1e-4,
    };
    let fitted = fit_on(kind, &data, &params, &NoProgress);
    let model = LogisticRegression::from_fit(
        "label",
        data.names.clone(),
        &data.classes,
        scaler,
        fitted.coefficients.view(),
        fitted.intercepts.view(),
    );
    let held_out = load(test);
    let predicted = argmax_rows(&model.predict_proba(held_out.x.view()));
    let correct = predicted
        .iter()
        .zip(&held_out.y)
        .filter(|(p, y)| p == y)
        .count();
    (correct as f64 / held_out.y.len() as f64, fitted)
}

#[test]
fn binary_coefficients_match_linfa_logistic() {
    let data = load("breast_cancer_train.csv");
    let params = FitParams {
        max_iterations: 1000,
        l2_penalty: 1.0,
        tolerance: 1e-9,
    };
    let ours = fit_on(SolverKind::Lbfgs, &data, &params, &NoProgress);
    let oracle = fit_on(SolverKind::Linfa, &data, &params, &NoProgress);
    let scale = oracle
        .coefficients
        .iter()
        .fold(1.0f64, |m, w| m.max(w.abs()));
    let worst = ours
        .coefficients
        .iter()
        .zip(&oracle.coefficients)
        .chain(ours.intercepts.iter().zip(&oracle.intercepts))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-4 * scale,
        "max coefficient difference {worst} (scale {scale})"
    );
    let relative = (ours.objective - oracle.objective).abs() / oracle.objective;
    assert!(
        relative < 1e-8,
        "objective {} vs linfa {}",
        ours.objective,
        oracle.objective
    );
    assert!(ours.converged, "{}", ours.stop_reason);
}

#[test]
fn binary_breast_cancer_reaches_scikit_learn_accuracy() {
    let (accuracy, fitted) = test_accuracy(
        "breast_cancer_train.csv",
        "breast_cancer_test.csv",
        SolverKind::Lbfgs,
    );
    assert!(accuracy >= 0.9599, "accuracy {accuracy}");
    assert!(fitted.converged, "{}", fitted.stop_reason);
}

#[test]
fn multinomial_digits_reaches_scikit_learn_accuracy() {
    let (accuracy, fitted) =
        test_accuracy("digits_train.csv", "digits_test.csv", SolverKind::Lbfgs);
    assert!(
        accuracy >= 0.956,
        "accuracy {accuracy} after {:?}: {}",
        fitted.iterations,
        fitted.stop_reason
    );
    assert_eq!(fitted.coefficients.dim(), (10, 64));
}

struct Recorder(RefCell<Vec<Iteration>>);

impl ProgressSink for Recorder {
    fn report(&self, progress: &Iteration) {
        self.0.borrow_mut().push(progress.clone());
    }
}

#[test]
fn progress_is_reported_every_iteration_with_falling_loss() {
    let data = load("breast_cancer_train.csv");
    let params = FitParams {
        max_iterations: 15,
        l2_penalty: 1.0,
        tolerance: 1e-12,
    };
    let recorder = Recorder(RefCell::new(Vec::new()));
    let fitted = fit_on(SolverKind::Lbfgs, &data, &params, &recorder);
    let reports = recorder.0.into_inner();
    assert_eq!(reports.len() as u64, fitted.iterations.unwrap());
    assert_eq!(reports.len(), 15);
    assert!(!fitted.converged);
    for (i, pair) in reports.windows(2).enumerate() {
        assert_eq!(pair[0].iteration, i as u64 + 1);
        assert_eq!(pair[0].total, 15);
        assert!(
            pair[1].loss <= pair[0].loss,
            "loss rose at iteration {}",
            i + 2
        );
    }
    assert!(reports[0].loss < 2f64.ln());
}

#[test]
fn solver_names_parse_and_print() {
    assert_eq!("linfa".parse::<SolverKind>().unwrap(), SolverKind::Linfa);
    assert_eq!(SolverKind::Lbfgs.to_string(), "lbfgs");
    assert!(
        "sgd"
            .parse::<SolverKind>()
            .unwrap_err()
            .contains("valid: lbfgs, linfa")
    );
}
