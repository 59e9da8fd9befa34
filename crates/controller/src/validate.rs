//! What the API server's schema cannot check and the trainer would only find out later (pure).

use kubetrain_api::{DataFormat, TrainingRunSpec};

/// Why this spec cannot run, naming the field and what would be valid; `None` when it can.
pub fn validate(spec: &TrainingRunSpec) -> Option<String> {
    if spec.algorithm.selected().is_none() {
        return Some(
            "spec.algorithm: exactly one algorithm must be set; supported: logisticRegression"
                .to_owned(),
        );
    }
    if spec.dataset.format == DataFormat::Parquet {
        return Some(
            "spec.dataset.format: parquet is not supported by this trainer yet; use csv".to_owned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fixtures::run;

    #[test]
    fn names_the_field() {
        assert_eq!(validate(&run("a", "").spec), None);
        let parquet = validate(&run("a", "dataset: {uri: s3://d/x.parquet, format: parquet}").spec);
        assert!(parquet.unwrap().starts_with("spec.dataset.format:"));
        let mut empty = run("a", "").spec;
        empty.algorithm.logistic_regression = None;
        assert!(validate(&empty).unwrap().starts_with("spec.algorithm:"));
    }
}
