//! Tree models through the whole pipeline, held to LightGBM's and scikit-learn's scores on
//! the same data (tests/oracle/README.md has the figures and the script that made them).

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::Path;

use super::super::tests::{classified, config, dataset};
use super::super::*;
use crate::progress::NoProgress;

fn boosted(data: &str, validation: &str, label: &str, out: &Path) -> TrainConfig {
    TrainConfig {
        label_column: label.into(),
        validation: Validation::Data {
            uri: dataset(validation),
        },
        algorithm: AlgorithmConfig::GradientBoostedTrees(
            kubetrain_api::GradientBoostedTrees::default(),
        ),
        ..config(&dataset(data), out)
    }
}

fn forest(data: &str, validation: &str, label: &str, out: &Path) -> TrainConfig {
    TrainConfig {
        algorithm: AlgorithmConfig::RandomForest(kubetrain_api::RandomForest::default()),
        ..boosted(data, validation, label, out)
    }
}

fn regression(mut config: TrainConfig) -> TrainConfig {
    config.task = kubetrain_api::Task::Regression;
    config
}

fn r2(summary: &TrainSummary) -> f64 {
    match &summary.metrics {
        Evaluation::Regression(m) => m.r2,
        Evaluation::Classification(m) => panic!("a regressor's summary has {m:?}"),
    }
}

/// Test scores of LightGBM 4.7 (boosting) and scikit-learn 1.9 (`RandomForest*`) with the
/// same parameters, from tests/oracle/README.md.
const LIGHTGBM: [(&str, &str, f64); 4] = [
    ("breast_cancer", "label", 0.9737),
    ("digits", "label", 0.9639),
    ("adult_numeric", "income", 0.8400),
    ("diabetes", "target", 0.1609),
];
const SCIKIT_LEARN_FOREST: [(&str, &str, f64); 4] = [
    ("breast_cancer", "label", 0.9649),
    ("digits", "label", 0.9722),
    ("adult_numeric", "income", 0.8035),
    ("diabetes", "target", 0.2687),
];

/// The allowed distance from the oracle: the margins (0.3 percentage points of
/// accuracy and 0.005 of R² for boosting, 0.5 points for forests), but at least two test
/// rows on the small sets, where one row is more than that.
fn margin(set: &str, forest: bool) -> f64 {
    match (set, forest) {
        ("breast_cancer", _) => 2.0 / 114.0,
        ("digits", _) => 2.0 / 360.0,
        ("diabetes", _) => 0.005,
        (_, false) => 0.003,
        (_, true) => 0.005,
    }
}

fn score_of(set: &str, label: &str, forest_family: bool, dir: &Path) -> f64 {
    let make = if forest_family { forest } else { boosted };
    let mut config = make(
        &format!("{set}_train.csv"),
        &format!("{set}_test.csv"),
        label,
        &dir.join(format!("{set}-{forest_family}")),
    );
    if set == "diabetes" {
        config = regression(config);
    }
    let summary = train(&config, &NoProgress).unwrap();
    match set {
        "diabetes" => r2(&summary),
        _ => classified(&summary).accuracy,
    }
}

#[test]
fn boosted_trees_score_as_lightgbm_on_every_shared_set() {
    let dir = tempfile::tempdir().unwrap();
    for (set, label, oracle) in LIGHTGBM {
        let score = score_of(set, label, false, dir.path());
        assert!(
            (score - oracle).abs() <= margin(set, false) + 1e-9,
            "{set}: kubetrain {score:.4}, LightGBM {oracle:.4}"
        );
    }
}

#[test]
fn forests_score_at_least_as_scikit_learn_on_every_shared_set() {
    // Binned splits differ from scikit-learn's exact ones by design, so only "not worse".
    let dir = tempfile::tempdir().unwrap();
    for (set, label, oracle) in SCIKIT_LEARN_FOREST {
        let score = score_of(set, label, true, dir.path());
        assert!(
            score >= oracle - margin(set, true) - 1e-9,
            "{set}: kubetrain {score:.4}, scikit-learn {oracle:.4}"
        );
    }
}

/// Every progress report, kept.
#[derive(Default)]
struct Reports(std::sync::Mutex<Vec<crate::progress::Iteration>>);

impl crate::progress::ProgressSink for Reports {
    fn report(&self, progress: &crate::progress::Iteration) {
        self.0.lock().unwrap().push(progress.clone());
    }
}

fn sampled_boosting() -> kubetrain_api::GradientBoostedTrees {
    kubetrain_api::GradientBoostedTrees {
        max_iterations: 30,
        subsample: 0.7,
        feature_fraction: 0.6,
        seed: 3,
        ..Default::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_model_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let algorithms = [
        AlgorithmConfig::GradientBoostedTrees(sampled_boosting()),
        AlgorithmConfig::RandomForest(kubetrain_api::RandomForest {
            num_trees: 10,
            seed: 3,
            ..Default::default()
        }),
    ];
    for algorithm in algorithms {
        let models: Vec<Vec<u8>> = [1, 2, 2]
            .iter()
            .enumerate()
            .map(|(i, &threads)| {
                let out = dir.path().join(format!("{}-{i}", algorithm.flag_name()));
                let config = TrainConfig {
                    threads: Some(threads),
                    algorithm: algorithm.clone(),
                    ..config(&dataset("digits_train.csv"), &out)
                };
                train(&config, &NoProgress).unwrap();
                std::fs::read(out.join(MODEL_FILE)).unwrap()
            })
            .collect();
        assert!(
            models[0] == models[1] && models[1] == models[2],
            "{}",
            algorithm.flag_name()
        );
        // Another seed draws other rows and features.
        let out = dir.path().join("other-seed");
        let mut other = algorithm.clone();
        match &mut other {
            AlgorithmConfig::GradientBoostedTrees(p) => p.seed = 4,
            AlgorithmConfig::RandomForest(p) => p.seed = 4,
            _ => unreachable!(),
        }
        let config = TrainConfig {
            algorithm: other,
            ..config(&dataset("digits_train.csv"), &out)
        };
        train(&config, &NoProgress).unwrap();
        assert_ne!(std::fs::read(out.join(MODEL_FILE)).unwrap(), models[0]);
    }
}

#[test]
fn a_reloaded_model_predicts_what_training_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    for (family, set, label) in [
        ("gbt", "digits", "label"),
        ("rf", "breast_cancer", "label"),
        ("gbt", "diabetes", "target"),
        ("rf", "diabetes", "target"),
    ] {
        let out = dir.path().join(format!("{family}-{set}"));
        let make = if family == "gbt" { boosted } else { forest };
        let mut config = make(
            &format!("{set}_train.csv"),
            &format!("{set}_test.csv"),
            label,
            &out,
        );
        if set == "diabetes" {
            config = regression(config);
        }
        let summary = train(&config, &NoProgress).unwrap();
        let predicted = predict(&PredictConfig {
            model: out.join(MODEL_FILE).to_str().unwrap().to_string(),
            data: dataset(&format!("{set}_test.csv")),
            label_column: None,
            threads: Some(1),
        })
        .unwrap();
        match (&summary.metrics, &predicted) {
            (
                Evaluation::Classification(m),
                Predictions {
                    accuracy: Some(a), ..
                },
            ) => {
                assert_eq!(m.accuracy, *a, "{family} {set}");
            }
            (
                Evaluation::Regression(m),
                Predictions {
                    regression: Some(r),
                    ..
                },
            ) => {
                assert_eq!(m, r, "{family} {set}");
            }
            other => panic!("{family} {set}: {other:?}"),
        }
    }
}

#[test]
fn early_stopping_keeps_the_best_iteration_and_reports_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("early");
    let reports = Reports::default();
    let config = TrainConfig {
        algorithm: AlgorithmConfig::GradientBoostedTrees(kubetrain_api::GradientBoostedTrees {
            max_iterations: 1000,
            learning_rate: 0.5,
            early_stopping_rounds: Some(5),
            ..Default::default()
        }),
        ..config(&dataset("breast_cancer_train.csv"), &out)
    };
    let summary = train(&config, &reports).unwrap();
    let reports = reports.0.into_inner().unwrap();
    let kept = summary.fit.iterations.unwrap() as usize;
    assert!(kept < 100, "kept {kept} of 1000 iterations");
    assert_eq!(reports.len(), kept + 5, "stops 5 iterations after the best");
    assert!(
        summary.fit.stop_reason.contains("early stopping"),
        "{}",
        summary.fit.stop_reason
    );
    assert!(
        reports
            .iter()
            .all(|r| r.total == 1000 && r.validation_loss.is_some())
    );
    let best = reports
        .iter()
        .min_by(|a, b| {
            a.validation_loss
                .unwrap()
                .total_cmp(&b.validation_loss.unwrap())
        })
        .unwrap();
    assert_eq!(best.iteration as usize, kept);
    let Model::GradientBoostedTrees(model) =
        Model::from_json(&std::fs::read(out.join(MODEL_FILE)).unwrap()).unwrap()
    else {
        panic!("not a boosted model");
    };
    assert_eq!(model.trees.len(), kept);

    // Without validation rows there is nothing to watch.
    let mut blind = config.clone();
    blind.validation = Validation::Fraction {
        fraction: 0.0,
        seed: 0,
    };
    let error = train(&blind, &NoProgress).unwrap_err();
    assert!(
        error.to_string().contains("--early-stopping-rounds"),
        "{error}"
    );
}

#[test]
fn forests_report_each_tree_and_importance_sums_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let reports = Reports::default();
    let config = TrainConfig {
        algorithm: AlgorithmConfig::RandomForest(kubetrain_api::RandomForest {
            num_trees: 12,
            ..Default::default()
        }),
        ..config(&dataset("breast_cancer_train.csv"), &dir.path().join("rf"))
    };
    let summary = train(&config, &reports).unwrap();
    let reports = reports.0.into_inner().unwrap();
    let trees: Vec<u64> = reports.iter().map(|r| r.iteration).collect();
    assert_eq!(trees, (1..=12).collect::<Vec<u64>>());
    assert!(
        reports
            .iter()
            .all(|r| r.loss.is_finite() && r.validation_loss.is_some())
    );
    let total: f64 = summary.feature_weights.iter().map(|w| w.weight).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    assert!(
        summary
            .feature_weights
            .windows(2)
            .all(|w| w[0].weight >= w[1].weight)
    );
}

#[test]
fn tree_parameters_out_of_range_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let base = config(&dataset("breast_cancer_train.csv"), dir.path());
    let boosting = |change: fn(&mut kubetrain_api::GradientBoostedTrees)| {
        let mut p = kubetrain_api::GradientBoostedTrees::default();
        change(&mut p);
        AlgorithmConfig::GradientBoostedTrees(p)
    };
    let cases = [
        (boosting(|p| p.learning_rate = 0.0), "--learning-rate"),
        (boosting(|p| p.subsample = 1.5), "--subsample"),
        (
            boosting(|p| p.feature_fraction = f64::NAN),
            "--feature-fraction",
        ),
        (boosting(|p| p.max_leaves = 1), "--max-leaves"),
        (boosting(|p| p.max_bins = 256), "--max-bins"),
        (boosting(|p| p.max_iterations = 0), "--max-iterations"),
        (boosting(|p| p.l2_penalty = -1.0), "--l2-penalty"),
        (boosting(|p| p.max_depth = Some(0)), "--max-depth"),
        (
            AlgorithmConfig::RandomForest(kubetrain_api::RandomForest {
                max_features: Some("half".into()),
                ..Default::default()
            }),
            "--max-features",
        ),
        (
            AlgorithmConfig::RandomForest(kubetrain_api::RandomForest {
                num_trees: 0,
                ..Default::default()
            }),
            "--num-trees",
        ),
    ];
    for (algorithm, flag) in cases {
        let config = TrainConfig {
            algorithm,
            ..base.clone()
        };
        let error = train(&config, &NoProgress).unwrap_err();
        assert!(error.to_string().contains(flag), "{flag}: {error}");
        assert!(files_in_is_empty(dir.path()));
    }
}

fn files_in_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// Profiling aid: `KUBETRAIN_TREE_BENCH=/dir cargo test --release -p kubetrain-trainer
/// tree_bench -- --ignored --nocapture` fits both families on `/dir/{cls,reg}_{train,test}.csv`.
#[test]
#[ignore = "needs generated data; run by hand"]
fn tree_bench() {
    let Ok(dir) = std::env::var("KUBETRAIN_TREE_BENCH") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let which = std::env::var("KUBETRAIN_TREE_BENCH_ONLY").unwrap_or_default();
    for (set, label, task) in [
        ("cls", "label", kubetrain_api::Task::Classification),
        ("reg", "target", kubetrain_api::Task::Regression),
    ] {
        for family in ["gbt", "rf"] {
            if !which.is_empty() && which != format!("{set}-{family}") {
                continue;
            }
            let mut c = config(
                &format!("{dir}/{set}_train.csv"),
                &out.path().join(format!("{set}{family}")),
            );
            c.label_column = label.into();
            c.task = task;
            c.validation = Validation::Data {
                uri: format!("{dir}/{set}_test.csv"),
            };
            c.algorithm = if family == "gbt" {
                AlgorithmConfig::GradientBoostedTrees(kubetrain_api::GradientBoostedTrees::default())
            } else {
                AlgorithmConfig::RandomForest(kubetrain_api::RandomForest::default())
            };
            let s = train(&c, &NoProgress).unwrap();
            eprintln!(
                "{set} {family}: fit {:.2}s total {:.2}s metrics {:?}",
                s.timings.fit_seconds,
                s.timings.total_seconds,
                s.metrics.score()
            );
        }
    }
}

#[test]
fn the_summary_keeps_the_split_seed_apart_from_the_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seeds");
    let config = TrainConfig {
        algorithm: AlgorithmConfig::GradientBoostedTrees(sampled_boosting()),
        ..config(&dataset("breast_cancer_train.csv"), &out)
    };
    train(&config, &NoProgress).unwrap();
    let text = std::fs::read_to_string(out.join(SUMMARY_FILE)).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    let params = &summary["params"];
    assert_eq!(params["algorithm"], "gradientBoostedTrees");
    assert_eq!(params["seed"], 7, "the split's seed");
    assert_eq!(
        params["gradientBoostedTrees"]["seed"], 3,
        "the algorithm's seed"
    );
    assert_eq!(text.matches("\"seed\"").count(), 2);
    let back: TrainSummary = serde_json::from_str(&text).unwrap();
    assert_eq!(back.params.algorithm, config.algorithm);
}
