//! `kubetrain train` / `kubetrain predict` as a user runs them: the built binary on the small
//! real datasets in `tests/data`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{data_arg, text};

fn kubetrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubetrain"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Train on `<name>_train.csv` (every row), predict `<name>_test.csv`, return the accuracy
/// printed by `kubetrain predict` and its stdout.
fn train_then_predict(name: &str, out: &Path) -> (f64, String) {
    let train = kubetrain(&[
        "train",
        "--data",
        &data_arg(&format!("{name}_train.csv")),
        "--label-column",
        "label",
        "--out",
        out.to_str().unwrap(),
        "--validation-fraction",
        "0",
        "--max-iterations",
        "1000",
        "--progress",
        "none",
    ]);
    assert!(
        train.status.success(),
        "train failed: {}",
        text(&train.stderr)
    );
    assert!(out.join("model.json").is_file());
    assert!(out.join("summary.json").is_file());
    let model = out.join("model.json");
    let predict = kubetrain(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        &data_arg(&format!("{name}_test.csv")),
    ]);
    assert!(
        predict.status.success(),
        "predict failed: {}",
        text(&predict.stderr)
    );
    let stderr = text(&predict.stderr);
    let accuracy = stderr
        .lines()
        .find_map(|l| l.strip_prefix("accuracy: "))
        .unwrap_or_else(|| panic!("no accuracy line in {stderr:?}"));
    assert_eq!(accuracy.len(), 6, "four decimals: {accuracy}");
    (accuracy.parse().unwrap(), text(&predict.stdout))
}

#[test]
fn breast_cancer_matches_scikit_learn_through_predict() {
    let dir = tempfile::tempdir().unwrap();
    let (accuracy, csv) = train_then_predict("breast_cancer", &dir.path().join("bc"));
    assert!(accuracy >= 0.9599, "accuracy {accuracy}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "prediction,p_0,p_1");
    assert_eq!(lines.len(), 115);
    let fields: Vec<&str> = lines[1].split(',').collect();
    let (p0, p1): (f64, f64) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    assert!((p0 + p1 - 1.0).abs() < 1e-5);
    assert_eq!(fields[0], if p1 > p0 { "1" } else { "0" });
}

#[test]
fn digits_matches_scikit_learn_through_predict() {
    let dir = tempfile::tempdir().unwrap();
    let (accuracy, csv) = train_then_predict("digits", &dir.path().join("digits"));
    assert!(accuracy >= 0.9561, "accuracy {accuracy}");
    assert!(csv.starts_with("prediction,p_0,p_1,p_2,p_3,p_4,p_5,p_6,p_7,p_8,p_9\n"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("digits/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["dataset"]["rows"], 1437);
    assert_eq!(summary["dataset"]["classes"].as_array().unwrap().len(), 10);
}

#[test]
fn linear_regression_on_diabetes_matches_scikit_learn_through_predict() {
    // scikit-learn's Ridge(alpha=1.0) on standardized features: R² 0.3311, RMSE 58.57
    // (tests/data/README.md).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ridge");
    let train = kubetrain(&[
        "train",
        "--algorithm",
        "linear-regression",
        "--task",
        "regression",
        "--data",
        &data_arg("diabetes_train.csv"),
        "--label-column",
        "target",
        "--validation-fraction",
        "0",
        "--l2-penalty",
        "1",
        "--l1-ratio",
        "0",
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "text",
    ]);
    let stderr = text(&train.stderr);
    assert!(train.status.success(), "train failed: {stderr}");
    assert!(
        stderr.contains("(10 features, regression): training r2 "),
        "{stderr}"
    );
    let predict = kubetrain(&[
        "predict",
        "--model",
        out.join("model.json").to_str().unwrap(),
        "--data",
        &data_arg("diabetes_test.csv"),
    ]);
    let stderr = text(&predict.stderr);
    assert!(predict.status.success(), "predict failed: {stderr}");
    assert!((metric(&stderr, "r2") - 0.3311).abs() < 0.001, "{stderr}");
    assert!((metric(&stderr, "rmse") - 58.57).abs() < 0.05, "{stderr}");
    let csv = text(&predict.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "prediction");
    assert_eq!(lines.len(), 90);
    assert!(lines[1].parse::<f64>().unwrap().is_finite());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["params"]["algorithm"], "linearRegression");
    assert_eq!(summary["params"]["task"], "regression");
    assert_eq!(summary["params"]["l1Ratio"], 0.0);
}

#[test]
fn an_algorithm_on_the_wrong_task_exits_65_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let run = kubetrain(&[
        "train",
        "--algorithm",
        "linear-regression",
        "--task",
        "classification",
        "--data",
        &data_arg("diabetes_train.csv"),
        "--label-column",
        "target",
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(stderr.starts_with("error: --task: "), "{stderr}");
    assert!(files_in(&dir.path().join("out")).is_empty());
    // A parameter of the other algorithm is refused, not ignored.
    let run = kubetrain(&[
        "train",
        "--l1-ratio",
        "0.5",
        "--data",
        &data_arg("breast_cancer_train.csv"),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.starts_with("error: --l1-ratio: is a parameter of --algorithm linear-regression"),
        "{stderr}"
    );
}

#[test]
fn bad_input_exits_65_naming_the_column_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "height,weight,label\n1.0,2.0,0\n1.5,heavy,1\n").unwrap();
    let out = dir.path().join("out");
    let run = kubetrain(&[
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(65), "{}", text(&run.stderr));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("error: ")
            && stderr.contains("row 2 (line 3), column 'weight'")
            && stderr.contains("'heavy'"),
        "{stderr}"
    );
    assert!(files_in(&out).is_empty(), "output written on failure");

    let run = kubetrain(&[
        "train",
        "--data",
        &data_arg("digits_train.csv"),
        "--label-column",
        "digit",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(65));
    assert!(
        text(&run.stderr).contains("label column 'digit' is not in the header"),
        "{}",
        text(&run.stderr)
    );

    let missing = dir.path().join("missing.csv");
    let run = kubetrain(&[
        "train",
        "--data",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(65));
    assert!(
        text(&run.stderr).contains("not found"),
        "{}",
        text(&run.stderr)
    );

    let run = kubetrain(&[
        "train",
        "--data",
        &data_arg("digits_train.csv"),
        "--out",
        out.to_str().unwrap(),
        "--validation-fraction",
        "1.5",
    ]);
    assert_eq!(run.status.code(), Some(65));
    assert!(
        text(&run.stderr).contains("--validation-fraction: must be in [0, 1), got 1.5"),
        "{}",
        text(&run.stderr)
    );
    assert!(files_in(&out).is_empty(), "output written on failure");
}

#[test]
fn usage_errors_exit_2() {
    let run = kubetrain(&["train", "--out", "/tmp/x"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run.stderr).contains("--data"));
}

#[test]
fn flags_come_from_the_environment_and_progress_is_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let run = Command::new(env!("CARGO_BIN_EXE_kubetrain"))
        .arg("train")
        .env("KUBETRAIN_DATA", data_arg("breast_cancer_train.csv"))
        .env("KUBETRAIN_LABEL_COLUMN", "label")
        .env("KUBETRAIN_OUT", out.to_str().unwrap())
        .env(
            "KUBETRAIN_VALIDATION_DATA",
            data_arg("breast_cancer_test.csv"),
        )
        .env("KUBETRAIN_FEATURE_COLUMNS", "f0,f1,f2,f3,f20,f21,f22,f23")
        .env("KUBETRAIN_PROGRESS", "json")
        .env("KUBETRAIN_THREADS", "1")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let events: Vec<serde_json::Value> = text(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.len() >= 2);
    assert_eq!(events[0]["event"], "progress");
    assert_eq!(events[0]["iteration"], 1);
    assert_eq!(events[0]["total"], 100);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "completed");
    assert_eq!(
        last["summary"]["dataset"]["features"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(last["summary"]["validationDataset"]["rows"], 114);
    assert_eq!(last["summary"]["evaluatedOn"], "validation");
}

#[test]
fn unreachable_storage_exits_75_transient() {
    // Port 1 on loopback refuses connections: the S3 client must honour AWS_ENDPOINT_URL and
    // AWS_ALLOW_HTTP, retry a bounded number of times, and report a transient failure.
    let run = Command::new(env!("CARGO_BIN_EXE_kubetrain"))
        .args([
            "train",
            "--data",
            "s3://data/train.csv",
            "--out",
            "s3://models/run",
            "--progress",
            "none",
        ])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(75), "{}", text(&run.stderr));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("error: could not read s3://data/train.csv"),
        "{stderr}"
    );
    assert!(
        stderr.contains("http://127.0.0.1:1/data/train.csv"),
        "path-style request expected: {stderr}"
    );
}

/// `kubetrain train` then `kubetrain predict` of a tree model; the metric lines `predict`
/// printed on stderr, and its CSV.
fn tree_through_cli(
    algorithm: &str,
    set: &str,
    label: &str,
    task: &str,
    extra: &[&str],
) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(algorithm);
    let mut args = vec![
        "train",
        "--algorithm",
        algorithm,
        "--task",
        task,
        "--label-column",
        label,
        "--validation-fraction",
        "0",
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "json",
    ];
    let train_csv = data_arg(&format!("{set}_train.csv"));
    args.extend(["--data", &train_csv]);
    args.extend(extra);
    let train = kubetrain(&args);
    let stdout = text(&train.stdout);
    assert!(
        train.status.success(),
        "train failed: {}",
        text(&train.stderr)
    );
    // Progress: one JSON line per tree or iteration, out of the total.
    let progress: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["event"] == "progress")
        .collect();
    assert!(progress.len() >= 10, "{stdout}");
    assert_eq!(progress.last().unwrap()["iteration"], progress[0]["total"]);
    let predict = kubetrain(&[
        "predict",
        "--model",
        out.join("model.json").to_str().unwrap(),
        "--data",
        &data_arg(&format!("{set}_test.csv")),
    ]);
    assert!(
        predict.status.success(),
        "predict failed: {}",
        text(&predict.stderr)
    );
    (text(&predict.stderr), text(&predict.stdout))
}

/// The value of a `name: value` line `kubetrain predict` printed on stderr.
fn metric(stderr: &str, name: &str) -> f64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} line in {stderr:?}"))
        .parse()
        .unwrap()
}

#[test]
fn tree_models_train_and_predict_both_tasks_through_the_cli() {
    // Reference scores: tests/oracle/README.md (LightGBM 0.9639 on digits, scikit-learn's
    // RandomForestRegressor R² 0.2687 on diabetes).
    let (stderr, csv) = tree_through_cli(
        "gradient-boosted-trees",
        "digits",
        "label",
        "classification",
        &[],
    );
    assert!(
        (metric(&stderr, "accuracy") - 0.9639).abs() < 0.01,
        "{stderr}"
    );
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .starts_with("prediction,p_0,p_1"),
        "{csv}"
    );
    let (stderr, csv) = tree_through_cli(
        "random-forest",
        "diabetes",
        "target",
        "regression",
        &["--num-trees", "50", "--algorithm-seed", "1"],
    );
    assert!(metric(&stderr, "r2") > 0.2687 - 0.03, "{stderr}");
    assert!(metric(&stderr, "rmse").is_finite());
    assert_eq!(csv.lines().next(), Some("prediction"));
    assert_eq!(csv.lines().count(), 90);
    let (stderr, _) = tree_through_cli(
        "gradient-boosted-trees",
        "diabetes",
        "target",
        "regression",
        &["--max-leaves", "15", "--learning-rate", "0.05"],
    );
    assert!(metric(&stderr, "r2") > 0.1, "{stderr}");
    let (stderr, _) = tree_through_cli(
        "random-forest",
        "breast_cancer",
        "label",
        "classification",
        &["--max-features", "0.5", "--max-depth", "8"],
    );
    assert!(metric(&stderr, "accuracy") > 0.94, "{stderr}");
}

#[test]
fn a_parameter_of_another_tree_family_exits_65_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let run = kubetrain(&[
        "train",
        "--algorithm",
        "gradient-boosted-trees",
        "--num-trees",
        "10",
        "--data",
        &data_arg("breast_cancer_train.csv"),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(stderr.starts_with("error: --num-trees: "), "{stderr}");
    let run = kubetrain(&[
        "train",
        "--algorithm",
        "gradient-boosted-trees",
        "--learning-rate",
        "0",
        "--data",
        &data_arg("breast_cancer_train.csv"),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("--learning-rate") && stderr.contains("(0, 1]"),
        "{stderr}"
    );
    assert!(files_in(&dir.path().join("out")).is_empty());
}
