//! What the API server's schema cannot check and the trainer would only find out later (pure).
//!
//! The controller refuses such a run with an `Accepted=False` condition; `kubetrain local` and
//! the gateway answer 422 with the same [`FieldError`].

use schemars::JsonSchema;
use serde::Serialize;

use crate::{DataFormat, TrainingRunSpec};

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

/// Whether this spec can run; the error names the field and what would be valid.
///
/// # Errors
/// The first field the trainer could not run with.
pub fn validate_spec(spec: &TrainingRunSpec) -> Result<(), FieldError> {
    if spec.algorithm.selected().is_none() {
        return Err(FieldError::new(
            "spec.algorithm",
            crate::spec::ALGORITHM_RULE,
        ));
    }
    if spec.dataset.format == DataFormat::Parquet {
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
        assert_eq!(validate_spec(&empty).unwrap_err().field, "spec.algorithm");
    }
}
