#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;

use super::*;
use crate::error::ErrorClass;
use crate::metrics::ClassificationMetrics;
use crate::progress::NoProgress;
use crate::solver::{FitParams, SolverKind};

pub(super) fn dataset(name: &str) -> String {
    format!("{}/../../tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn config(data: &str, out: &Path) -> TrainConfig {
    TrainConfig {
        data: data.to_string(),
        label_column: "label".into(),
        feature_columns: None,
        validation: Validation::Fraction {
            fraction: 0.2,
            seed: 7,
        },
        output: out.to_str().unwrap().to_string(),
        task: kubetrain_api::Task::Classification,
        algorithm: AlgorithmConfig::LogisticRegression {
            solver: SolverKind::Lbfgs,
            params: FitParams {
                max_iterations: 200,
                l2_penalty: 1.0,
                tolerance: 1e-4,
            },
        },
        threads: Some(2),
        dataset_cache: None,
    }
}

/// The classification metrics of a summary.
pub(super) fn classified(summary: &TrainSummary) -> &ClassificationMetrics {
    match &summary.metrics {
        Evaluation::Classification(m) => m,
        Evaluation::Regression(m) => panic!("a classifier's summary has {m:?}"),
    }
}

/// The logistic parameters of a configuration, to change.
fn logistic(config: &mut TrainConfig) -> &mut FitParams {
    match &mut config.algorithm {
        AlgorithmConfig::LogisticRegression { params, .. } => params,
        _ => panic!("a logistic configuration"),
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn trains_writes_model_and_summary_then_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let summary = train(
        &config(&dataset("breast_cancer_train.csv"), &out),
        &NoProgress,
    )
    .unwrap();
    let mut files = files_in(&out);
    files.sort();
    assert_eq!(files, ["model.json", "summary.json"]);
    assert_eq!(summary.dataset.fingerprint.rows, 455);
    assert_eq!(summary.dataset.validation_rows, 91);
    assert_eq!(summary.dataset.train_rows, 364);
    assert_eq!(summary.dataset.classes, ["0", "1"]);
    assert_eq!(summary.evaluated_on, "validation");
    assert!(classified(&summary).accuracy > 0.9, "{:?}", summary.metrics);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written["dataset"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(written["model"]["sha256"], summary.model.sha256);
    assert!(written["timings"]["fitSeconds"].as_f64().unwrap() > 0.0);
    // The loss per iteration, as progress reported it: one point per iteration here, ending
    // at the objective the summary reports.
    let history = written["lossHistory"].as_array().unwrap();
    assert_eq!(history.len() as u64, summary.fit.iterations.unwrap());
    let last = history.last().unwrap();
    assert_eq!(last["iteration"], summary.fit.iterations.unwrap());
    assert!((last["loss"].as_f64().unwrap() - summary.training_loss()).abs() < 1e-6);

    let predictions = predict(&PredictConfig {
        model: out.join("model.json").to_str().unwrap().into(),
        data: dataset("breast_cancer_test.csv"),
        label_column: None,
        threads: None,
    })
    .unwrap();
    let Prediction::Probabilities(probabilities) = &predictions.prediction else {
        panic!("a classifier predicts probabilities")
    };
    assert_eq!(probabilities.nrows(), 114);
    assert_eq!(predictions.regression, None);
    assert!(
        predictions.accuracy.unwrap() >= 0.95,
        "{:?}",
        predictions.accuracy
    );
}

#[test]
fn same_seed_gives_the_same_model_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut one = config(&dataset("digits_train.csv"), &dir.path().join("a"));
    one.threads = Some(1);
    let mut two = config(&dataset("digits_train.csv"), &dir.path().join("b"));
    two.threads = Some(2);
    train(&one, &NoProgress).unwrap();
    train(&two, &NoProgress).unwrap();
    let a = std::fs::read(dir.path().join("a/model.json")).unwrap();
    let b = std::fs::read(dir.path().join("b/model.json")).unwrap();
    assert!(a == b, "models differ between 1 and 2 threads");
    let mut other = config(&dataset("digits_train.csv"), &dir.path().join("c"));
    other.validation = Validation::Fraction {
        fraction: 0.2,
        seed: 8,
    };
    let c = train(&other, &NoProgress).unwrap();
    assert_ne!(std::fs::read(dir.path().join("c/model.json")).unwrap(), a);
    assert_eq!(c.dataset.validation_rows, 287);
}

#[test]
fn validation_file_and_fraction_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut with_file = config(&dataset("digits_train.csv"), &dir.path().join("v"));
    with_file.validation = Validation::Data {
        uri: dataset("digits_test.csv"),
    };
    let summary = train(&with_file, &NoProgress).unwrap();
    assert_eq!(summary.dataset.train_rows, 1437);
    assert_eq!(summary.validation_dataset.as_ref().unwrap().rows, 360);
    assert!(
        classified(&summary).accuracy >= 0.956,
        "{}",
        classified(&summary).accuracy
    );
    assert_eq!(classified(&summary).confusion_matrix.len(), 10);

    let mut everything = config(&dataset("breast_cancer_train.csv"), &dir.path().join("z"));
    everything.validation = Validation::Fraction {
        fraction: 0.0,
        seed: 0,
    };
    let summary = train(&everything, &NoProgress).unwrap();
    assert_eq!(summary.dataset.train_rows, 455);
    assert_eq!(summary.evaluated_on, "training");
    assert!(classified(&summary).accuracy > 0.97);
}

#[test]
fn string_labels_and_feature_selection() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("noise,x,kind,id\n");
    for i in 0..200 {
        let x = i as f64 / 10.0 - 10.0;
        let kind = if x + (i % 7) as f64 * 0.3 > 0.0 {
            "dog"
        } else {
            "cat"
        };
        csv.push_str(&format!("{},{x},{kind},row{i}\n", (i * 37) % 11));
    }
    let data = dir.path().join("pets.csv");
    std::fs::write(&data, csv).unwrap();
    let mut cfg = config(data.to_str().unwrap(), &dir.path().join("out"));
    cfg.label_column = "kind".into();
    cfg.feature_columns = Some(vec!["x".into()]);
    let summary = train(&cfg, &NoProgress).unwrap();
    assert_eq!(summary.dataset.classes, ["cat", "dog"]);
    assert_eq!(summary.dataset.features, ["x"]);
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/model.json")).unwrap()).unwrap();
    assert_eq!(model["labelKind"], "string");
    let predictions = predict(&PredictConfig {
        model: dir.path().join("out/model.json").to_str().unwrap().into(),
        data: data.to_str().unwrap().into(),
        label_column: Some("kind".into()),
        threads: Some(1),
    })
    .unwrap();
    assert!(predictions.accuracy.unwrap() > 0.9);
}

/// Each bad input: the error class, words the message must contain, and nothing written.
#[test]
fn bad_inputs_fail_as_bad_input_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        ("empty.csv", "", vec!["empty"]),
        ("header_only.csv", "a,label\n", vec!["no data rows"]),
        (
            "no_label.csv",
            "a,b\n1,2\n3,4\n",
            vec!["label column 'label'", "available columns: a, b"],
        ),
        (
            "text.csv",
            "a,b,label\n1,2,0\n3,abc,1\n",
            vec!["row 2 (line 3)", "column 'b'", "'abc'"],
        ),
        (
            "nan.csv",
            "a,label\n1,0\nNaN,1\n",
            vec!["row 2", "column 'a'", "NaN"],
        ),
        (
            "inf.csv",
            "a,label\n1,0\n-inf,1\n",
            vec!["row 2", "column 'a'", "finite"],
        ),
        (
            "single.csv",
            "a,label\n1,3\n2,3\n3,3\n",
            vec!["single class '3'"],
        ),
        (
            "ragged.csv",
            "a,label\n1,0\n2\n",
            vec!["row 2", "1 fields", "header has 2"],
        ),
    ];
    for (name, content, words) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let error = train(&config(path.to_str().unwrap(), &out), &NoProgress).unwrap_err();
        assert_eq!(error.class(), ErrorClass::BadInput, "{name}: {error}");
        let message = error.to_string();
        for word in words {
            assert!(message.contains(word), "{name}: '{message}' lacks '{word}'");
        }
        assert!(files_in(&out).is_empty(), "{name}: output written");
    }
    let missing = train(
        &config(
            &dir.path().join("nope.csv").to_string_lossy(),
            &dir.path().join("o"),
        ),
        &NoProgress,
    )
    .unwrap_err();
    assert_eq!(missing.class(), ErrorClass::BadInput);
    assert!(missing.to_string().contains("not found"), "{missing}");
}

#[test]
fn invalid_parameters_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let base = config(&dataset("breast_cancer_train.csv"), dir.path());
    let mut cases = Vec::new();
    let mut c = base.clone();
    c.validation = Validation::Fraction {
        fraction: 1.0,
        seed: 0,
    };
    cases.push((c, "--validation-fraction"));
    let mut c = base.clone();
    logistic(&mut c).l2_penalty = -1.0;
    cases.push((c, "--l2-penalty"));
    let mut c = base.clone();
    logistic(&mut c).tolerance = 0.0;
    cases.push((c, "--tolerance"));
    let mut c = base.clone();
    logistic(&mut c).max_iterations = 0;
    cases.push((c, "--max-iterations"));
    let mut c = base.clone();
    c.feature_columns = Some(vec!["f0".into(), "f0".into()]);
    cases.push((c, "--feature-columns"));
    let mut c = base.clone();
    c.feature_columns = Some(vec!["f0".into(), "nope".into()]);
    cases.push((c, "feature column 'nope'"));
    let mut c = base;
    c.output = "ftp://host/x".into();
    cases.push((c, "--out"));
    for (cfg, word) in cases {
        let error = train(&cfg, &NoProgress).unwrap_err();
        assert_eq!(error.class(), ErrorClass::BadInput, "{error}");
        assert!(error.to_string().contains(word), "'{error}' lacks '{word}'");
    }
}

#[test]
fn class_only_in_validation_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.csv"), "a,label\n1,0\n2,1\n3,0\n").unwrap();
    std::fs::write(dir.path().join("v.csv"), "a,label\n1,0\n2,2\n").unwrap();
    let mut cfg = config(
        &dir.path().join("t.csv").to_string_lossy(),
        &dir.path().join("o"),
    );
    cfg.validation = Validation::Data {
        uri: dir.path().join("v.csv").to_string_lossy().into(),
    };
    let error = train(&cfg, &NoProgress).unwrap_err();
    assert!(error.to_string().contains("class '2'"), "{error}");
    assert!(files_in(&dir.path().join("o")).is_empty());
}

#[test]
fn failed_summary_write_removes_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // A directory where summary.json should go makes that one write fail.
    std::fs::create_dir_all(out.join("summary.json").join("blocker")).unwrap();
    let error = train(
        &config(&dataset("breast_cancer_train.csv"), &out),
        &NoProgress,
    )
    .unwrap_err();
    assert_ne!(error.class(), ErrorClass::BadInput, "{error}");
    assert!(
        !out.join("model.json").exists(),
        "model left behind after {error}"
    );
}

#[test]
fn predict_rejects_a_file_that_is_not_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("model.json");
    std::fs::write(&fake, "{\"format\": \"other\"}").unwrap();
    let error = predict(&PredictConfig {
        model: fake.to_string_lossy().into(),
        data: dataset("breast_cancer_test.csv"),
        label_column: None,
        threads: None,
    })
    .unwrap_err();
    assert_eq!(error.class(), ErrorClass::BadInput);
    assert!(
        error.to_string().contains("not a usable kubetrain model"),
        "{error}"
    );
}

#[test]
fn the_dataset_cache_gives_the_same_model_and_follows_changes_to_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.csv");
    std::fs::copy(dataset("breast_cancer_train.csv"), &data).unwrap();
    let data = data.to_str().unwrap().to_owned();
    let cache = dir.path().join("cache");
    let run = |name: &str, cached: bool| {
        let out = dir.path().join(name);
        let mut config = config(&data, &out);
        config.dataset_cache = cached.then(|| cache.clone());
        let summary = train(&config, &NoProgress).unwrap();
        (summary, std::fs::read(out.join("model.json")).unwrap())
    };
    let entries = || std::fs::read_dir(&cache).map_or(0, |d| d.count());

    let (plain, plain_model) = run("plain", false);
    assert_eq!(entries(), 0);
    let (first, first_model) = run("first", true);
    assert_eq!(entries(), 1, "the first run keeps the parsed data");
    let (second, second_model) = run("second", true);
    assert_eq!(entries(), 1, "the second run finds it");
    for (summary, model) in [(&first, &first_model), (&second, &second_model)] {
        assert_eq!(summary.dataset, plain.dataset);
        assert_eq!(model, &plain_model, "bit-identical model");
    }

    // A changed file is a new object: read and parsed again, never the old entry.
    let mut text = std::fs::read_to_string(&data).unwrap();
    let last_row = text.lines().last().unwrap().to_owned();
    text.push_str(&last_row);
    text.push('\n');
    std::fs::write(&data, text).unwrap();
    let (changed, _) = run("changed", true);
    assert_eq!(
        changed.dataset.fingerprint.rows,
        plain.dataset.fingerprint.rows + 1
    );
    assert_ne!(
        changed.dataset.fingerprint.sha256,
        plain.dataset.fingerprint.sha256
    );
    assert_eq!(entries(), 2);
}

#[test]
fn an_unusable_dataset_cache_only_costs_the_speed_up() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the cache directory should be: it cannot be created.
    let blocked = dir.path().join("cache");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let out = dir.path().join("run");
    let mut config = config(&dataset("breast_cancer_train.csv"), &out);
    config.dataset_cache = Some(blocked.join("datasets"));
    let summary = train(&config, &NoProgress).unwrap();
    assert_eq!(summary.dataset.fingerprint.rows, 455);
}

fn regression_config(data: &str, out: &Path) -> TrainConfig {
    TrainConfig {
        label_column: "target".into(),
        validation: Validation::Data {
            uri: dataset("diabetes_test.csv"),
        },
        task: kubetrain_api::Task::Regression,
        algorithm: AlgorithmConfig::LinearRegression(crate::LinearParams {
            l2_penalty: 1.0,
            l1_ratio: 0.0,
            fit_intercept: true,
            max_iterations: 1000,
            tolerance: 1e-4,
        }),
        ..config(data, out)
    }
}

#[test]
fn ridge_on_diabetes_scores_as_scikit_learn_and_predicts_the_same_after_reloading() {
    // tests/data/README.md: scikit-learn's Ridge(alpha=1.0) on standardized features scores
    // R² 0.3311, RMSE 58.57 on diabetes_test.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ridge");
    let summary = train(
        &regression_config(&dataset("diabetes_train.csv"), &out),
        &NoProgress,
    )
    .unwrap();
    let Evaluation::Regression(m) = &summary.metrics else {
        panic!("a regressor's summary: {:?}", summary.metrics)
    };
    assert!((m.r2 - 0.3311).abs() < 0.001, "{m:?}");
    assert!((m.rmse - 58.57).abs() < 0.05, "{m:?}");
    assert!(summary.dataset.classes.is_empty());
    let results = summary.results("2026-01-01T00:00:00Z".parse().unwrap());
    assert_eq!(results.metrics.score_name.as_deref(), Some("r2"));
    assert_eq!(results.metrics.r2, Some(m.r2));
    assert_eq!(results.metrics.accuracy, None);
    assert_eq!(results.dataset.unwrap().classes, 0);
    // The weightiest standardized coefficients: s5 (ltg) and bmi, as scikit-learn's
    // (crates/trainer/src/least_squares/tests.rs).
    let top: Vec<&str> = results
        .top_features
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(top, ["s5", "bmi", "s1", "bp", "sex"]);
    assert_eq!(summary.feature_weights.len(), 10);

    let predictions = predict(&PredictConfig {
        model: out.join("model.json").to_str().unwrap().into(),
        data: dataset("diabetes_test.csv"),
        label_column: None,
        threads: None,
    })
    .unwrap();
    assert_eq!(predictions.regression.as_ref(), Some(m));
    assert_eq!(predictions.accuracy, None);
    assert!(predictions.classes.is_empty());
    let Prediction::Values(values) = &predictions.prediction else {
        panic!("a regressor predicts values")
    };
    assert_eq!(values.len(), 89);
}

#[test]
fn every_non_numeric_target_fails_as_bad_input_naming_its_row() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, row) in [("abc", 3), ("", 2), ("NaN", 1), ("1e999", 3)] {
        let data = dir.path().join("bad.csv");
        let mut text = String::from("a,b,target\n");
        for r in 1..=4 {
            let value = if r == row {
                bad.to_owned()
            } else {
                format!("{r}.5")
            };
            text.push_str(&format!("{r},{},{value}\n", r * 2));
        }
        std::fs::write(&data, text).unwrap();
        let mut c = regression_config(data.to_str().unwrap(), &dir.path().join("out"));
        c.validation = Validation::Fraction {
            fraction: 0.0,
            seed: 0,
        };
        let error = train(&c, &NoProgress).unwrap_err();
        assert_eq!(error.class(), ErrorClass::BadInput, "{error}");
        let text = error.to_string();
        // An empty label is the parser's own missing-label error; the others are ours.
        assert!(
            text.contains(&format!("row {row} (line {})", row + 1)),
            "{bad:?}: {text}"
        );
        assert!(text.contains("'target'"), "{bad:?}: {text}");
        assert!(files_in(&dir.path().join("out")).is_empty());
    }
}

#[test]
fn an_algorithm_on_the_wrong_task_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut linear = regression_config(&dataset("diabetes_train.csv"), dir.path());
    linear.task = kubetrain_api::Task::Classification;
    let error = train(&linear, &NoProgress).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("--task: --algorithm linear-regression does regression"),
        "{error}"
    );
    let mut logistic = config(&dataset("breast_cancer_train.csv"), dir.path());
    logistic.task = kubetrain_api::Task::Regression;
    let error = train(&logistic, &NoProgress).unwrap_err();
    assert!(
        error.to_string().contains("--task classification"),
        "{error}"
    );
    let mut ratio = regression_config(&dataset("diabetes_train.csv"), dir.path());
    if let AlgorithmConfig::LinearRegression(p) = &mut ratio.algorithm {
        p.l1_ratio = 1.5;
    }
    let error = train(&ratio, &NoProgress).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("--l1-ratio: must be in [0, 1]"),
        "{error}"
    );
}

#[test]
fn a_target_column_not_yet_known_is_predicted_not_scored_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ridge");
    let mut c = regression_config(&dataset("diabetes_train.csv"), &out);
    c.validation = Validation::Fraction {
        fraction: 0.0,
        seed: 0,
    };
    train(&c, &NoProgress).unwrap();
    let unknown = dir.path().join("new.csv");
    let test = std::fs::read_to_string(dataset("diabetes_test.csv")).unwrap();
    let mut lines: Vec<String> = test.lines().map(str::to_owned).collect();
    // Rows whose outcome is not known yet: an empty or NA target.
    for line in &mut lines[1..4] {
        let cut = line.rfind(',').unwrap();
        line.truncate(cut + 1);
        line.push_str("NA");
    }
    std::fs::write(&unknown, lines.join("\n")).unwrap();
    let mut ask = PredictConfig {
        model: out.join("model.json").to_str().unwrap().into(),
        data: unknown.to_str().unwrap().into(),
        label_column: None,
        threads: None,
    };
    let predictions = predict(&ask).unwrap();
    assert_eq!(predictions.regression, None);
    let Prediction::Values(values) = &predictions.prediction else {
        panic!("a regressor predicts values")
    };
    assert_eq!(values.len(), 89);
    ask.label_column = Some("target".into());
    let error = predict(&ask).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("row 1 (line 2), column 'target': 'NA'"),
        "{error}"
    );
}
