//! What the API server's schema cannot check and the trainer would only find out later (pure).
//!
//! The controller refuses such a run with an `Accepted=False` condition; `kubetrain local` and
//! the gateway answer 422 with the same [`FieldError`].

use schemars::JsonSchema;
use serde::Serialize;

use crate::custom::RESERVED_ENV_RULE;
use crate::invocation::ENV_PREFIX;
use crate::{AlgorithmRef, CustomCode, DataFormat, TrainerRef, TrainingRunSpec};

/// A field that failed validation, named by its JSON path (`spec.dataset.uri`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// JSON path of the offending field, as the Kubernetes API server names it.
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl FieldError {
    /// The error of `field` (a JSON path) with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The CEL rules of `spec.custom` that a schema-only validator (the gateway's, local mode's)
/// does not run.
fn validate_custom(custom: &CustomCode) -> Result<(), FieldError> {
    if let Some((i, _)) = custom
        .env
        .iter()
        .enumerate()
        .find(|(_, var)| var.name.starts_with(ENV_PREFIX))
    {
        return Err(FieldError::new(
            format!("spec.custom.env[{i}].name"),
            RESERVED_ENV_RULE,
        ));
    }
    Ok(())
}

/// Whether this spec can run; the error names the field and what would be valid.
///
/// # Errors
/// The first field the trainer could not run with.
pub fn validate_spec(spec: &TrainingRunSpec) -> Result<(), FieldError> {
    match spec.trainer() {
        None if spec.custom.is_some() || spec.algorithm.is_unset() => {
            return Err(FieldError::new("spec", crate::spec::TRAINER_RULE));
        }
        None => {
            return Err(FieldError::new(
                "spec.algorithm",
                crate::spec::ALGORITHM_RULE,
            ));
        }
        Some(TrainerRef::Custom(custom)) => validate_custom(custom)?,
        Some(TrainerRef::BuiltIn(_)) => {}
    }
    if let Some(AlgorithmRef::GradientBoostedTrees(boosting)) = spec.algorithm.selected()
        && boosting.early_stopping_rounds.is_some()
        && spec.dataset.validation_uri.is_none()
        && spec.dataset.validation_fraction == Some(0.0)
    {
        return Err(FieldError::new(
            "spec.algorithm.gradientBoostedTrees.earlyStoppingRounds",
            "stops on the validation loss, and validationFraction 0 holds back no rows: set \
             dataset.validationFraction above 0 or dataset.validationUri, or unset \
             earlyStoppingRounds",
        ));
    }
    if spec.dataset.format == DataFormat::Parquet && spec.custom.is_none() {
        return Err(FieldError::new(
            "spec.dataset.format",
            "parquet is not supported by this trainer yet; use csv",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(extra: &str) -> TrainingRunSpec {
        serde_yaml::from_str(&format!(
            "algorithm: {{logisticRegression: {{}}}}\n\
             dataset: {{uri: s3://d/x.csv{extra}}}\n\
             output: {{uri: s3://models/x/}}\n"
        ))
        .unwrap()
    }

    #[test]
    fn names_the_field() {
        assert_eq!(validate_spec(&spec("")), Ok(()));
        let parquet = validate_spec(&spec(", format: parquet")).unwrap_err();
        assert_eq!(parquet.field, "spec.dataset.format");
        assert!(parquet.to_string().starts_with("spec.dataset.format: "));
        let mut empty = spec("");
        empty.algorithm.logistic_regression = None;
        assert_eq!(validate_spec(&empty).unwrap_err().field, "spec");
        let mut two = spec("");
        two.algorithm.random_forest = Some(crate::RandomForest::default());
        assert_eq!(validate_spec(&two).unwrap_err().field, "spec.algorithm");
    }

    fn custom(yaml: &str) -> Result<(), FieldError> {
        let spec: TrainingRunSpec = serde_yaml::from_str(&format!(
            "custom: {{image: example/train:1, command: [python, train.py]{yaml}}}\n\
             dataset: {{uri: s3://d/x.parquet, format: parquet}}\n\
             output: {{uri: s3://models/x/}}\n"
        ))
        .unwrap();
        validate_spec(&spec)
    }

    #[test]
    fn custom_code_is_one_trainer_and_keeps_the_contract_variables() {
        // The program reads the data itself: any format is its business.
        assert_eq!(custom(""), Ok(()));
        assert_eq!(
            custom(", env: [{name: LOG_LEVEL, value: debug}, {name: HOME, value: /tmp}]"),
            Ok(())
        );
        let reserved =
            custom(", env: [{name: A, value: b}, {name: KUBETRAIN_DATA, value: x}]").unwrap_err();
        assert_eq!(reserved.field, "spec.custom.env[1].name");
        assert!(reserved.message.contains("KUBETRAIN_"), "{reserved}");
        let mut both = spec("");
        both.custom = Some(CustomCode {
            image: "example/train:1".into(),
            command: vec!["python".into()],
            args: vec![],
            env: vec![],
            params: Default::default(),
        });
        let error = validate_spec(&both).unwrap_err();
        assert_eq!(error.field, "spec");
        assert!(
            error.message.contains("exactly one of algorithm"),
            "{error}"
        );
    }

    #[test]
    fn early_stopping_needs_validation_rows() {
        let boosted = |dataset: &str| {
            let spec: TrainingRunSpec = serde_yaml::from_str(&format!(
                "algorithm: {{gradientBoostedTrees: {{earlyStoppingRounds: 5}}}}\n\
                 dataset: {{uri: s3://d/x.csv{dataset}}}\n\
                 output: {{uri: s3://models/x/}}\n"
            ))
            .unwrap();
            validate_spec(&spec)
        };
        assert_eq!(boosted(""), Ok(()));
        assert_eq!(boosted(", validationFraction: 0.1"), Ok(()));
        assert_eq!(
            boosted(", validationFraction: 0, validationUri: s3://d/v.csv"),
            Ok(())
        );
        let error = boosted(", validationFraction: 0").unwrap_err();
        assert_eq!(
            error.field,
            "spec.algorithm.gradientBoostedTrees.earlyStoppingRounds"
        );
        assert!(error.message.contains("validationUri"), "{error}");
    }
}
