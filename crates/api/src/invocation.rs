//! The `kubetrain train` command line for a run. The Kubernetes Job and the local process pool
//! both start the trainer with exactly these arguments, so a run trains the same way anywhere.

use crate::{AlgorithmRef, TrainingRunSpec};

/// Environment variable naming the TrainingRun a trainer reports its status into.
pub const ENV_RUN_NAME: &str = "KUBETRAIN_RUN_NAME";
/// Environment variable with the namespace of that TrainingRun.
pub const ENV_RUN_NAMESPACE: &str = "KUBETRAIN_RUN_NAMESPACE";

/// Arguments after the binary name: `train --data ... --out ...`.
///
/// `threads` caps the trainer's worker threads (the Job passes its CPU limit). Progress goes
/// out as JSON lines (`--progress json`), which the local pool reads and which reads fine
/// in a Pod's log.
pub fn trainer_args(spec: &TrainingRunSpec, threads: Option<u32>) -> Vec<String> {
    let dataset = &spec.dataset;
    let mut args = vec![
        "train".to_owned(),
        "--data".to_owned(),
        dataset.uri.clone(),
        "--label-column".to_owned(),
        dataset.label_column.clone(),
        "--out".to_owned(),
        spec.output.uri.clone(),
    ];
    if let Some(columns) = &dataset.feature_columns {
        args.extend(["--feature-columns".to_owned(), columns.join(",")]);
    }
    match (
        &dataset.validation_uri,
        dataset.effective_validation_fraction(),
    ) {
        (Some(uri), _) => args.extend(["--validation-data".to_owned(), uri.clone()]),
        (None, Some(fraction)) => {
            args.extend(["--validation-fraction".to_owned(), fraction.to_string()])
        }
        (None, None) => {}
    }
    if let Some(seed) = dataset.seed {
        args.extend(["--seed".to_owned(), seed.to_string()]);
    }
    match spec.algorithm.selected() {
        Some(AlgorithmRef::LogisticRegression(lr)) => args.extend([
            "--max-iterations".to_owned(),
            lr.max_iterations.to_string(),
            "--l2-penalty".to_owned(),
            lr.l2_penalty.to_string(),
            "--tolerance".to_owned(),
            lr.tolerance.to_string(),
        ]),
        None => {}
    }
    if let Some(threads) = threads {
        args.extend(["--threads".to_owned(), threads.to_string()]);
    }
    args.extend(["--progress".to_owned(), "json".to_owned()]);
    args
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(yaml: &str) -> TrainingRunSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn mirrors_the_spec() {
        let args = trainer_args(
            &spec(
                "algorithm: {logisticRegression: {maxIterations: 200, l2Penalty: 0.5}}\n\
                 dataset: {uri: s3://data/churn.csv, labelColumn: y, seed: 7, featureColumns: [a, b]}\n\
                 output: {uri: s3://models/churn/}",
            ),
            Some(2),
        );
        assert_eq!(
            args.join(" "),
            "train --data s3://data/churn.csv --label-column y --out s3://models/churn/ \
             --feature-columns a,b --validation-fraction 0.2 --seed 7 --max-iterations 200 \
             --l2-penalty 0.5 --tolerance 0.0001 --threads 2 --progress json"
        );
    }

    #[test]
    fn separate_validation_data_replaces_the_split() {
        let args = trainer_args(
            &spec(
                "algorithm: {logisticRegression: {}}\n\
                 dataset: {uri: /d/train.csv, validationUri: /d/test.csv}\n\
                 output: {uri: /m/}",
            ),
            None,
        );
        let line = args.join(" ");
        assert!(line.contains("--validation-data /d/test.csv"), "{line}");
        assert!(!line.contains("--validation-fraction"), "{line}");
        assert!(!line.contains("--threads"), "{line}");
    }
}
