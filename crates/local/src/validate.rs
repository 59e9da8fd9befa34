//! Validation of a new run exactly as the Kubernetes API server would do it: object metadata
//! (names, labels), the CRD's OpenAPI schema (bounds, patterns, enums, required fields), its
//! CEL rules, and the controller's pure checks. Every error names its field.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, Validator};
use kubetrain_api::custom::RESERVED_ENV_RULE;
use kubetrain_api::invocation::ENV_PREFIX;
use kubetrain_api::names::{
    DNS1123_LABEL, DNS1123_SUBDOMAIN, is_dns1123_label, label_key_problem, label_value_problem,
    subdomain_problem,
};
use kubetrain_api::spec::{
    ALGORITHM_RULE, LINEAR_NEEDS_REGRESSION, LOGISTIC_NEEDS_CLASSIFICATION, TRAINER_RULE,
};
use kubetrain_api::{Task, TrainingRun, TrainingRunSpec};
use kubetrain_gateway::FieldError;
use serde_json::Value;

/// Longest generateName prefix kept: the API server truncates it so that prefix plus the
/// five random characters fit in 63.
pub const MAX_GENERATE_NAME_PREFIX: usize = 58;

/// The CRD's schema compiled once.
#[derive(Debug)]
pub struct SchemaValidator {
    validator: Validator,
}

/// Building the validator failed: the CRD is broken (a bug, caught by the tests).
#[derive(Debug, thiserror::Error)]
#[error("the TrainingRun schema cannot be compiled: {0}")]
pub struct SchemaError(String);

impl SchemaValidator {
    /// Compile `openAPIV3Schema` of the TrainingRun CRD (OpenAPI 3.0 schemas are JSON Schema
    /// draft 4 plus extensions, which a validator ignores).
    pub fn new() -> Result<Self, SchemaError> {
        let crd = kubetrain_api::crd().map_err(|e| SchemaError(e.to_string()))?;
        let crd = serde_json::to_value(crd).map_err(|e| SchemaError(e.to_string()))?;
        let schema = crd
            .pointer("/spec/versions/0/schema/openAPIV3Schema")
            .ok_or_else(|| SchemaError("no openAPIV3Schema".to_owned()))?;
        let validator = jsonschema::options()
            .with_draft(Draft::Draft4)
            .should_validate_formats(false)
            .build(schema)
            .map_err(|e| SchemaError(e.to_string()))?;
        Ok(Self { validator })
    }

    /// Every way `run` breaks the rules, or an empty list.
    pub fn validate(&self, run: &TrainingRun) -> Vec<FieldError> {
        let mut errors = metadata(run);
        match serde_json::to_value(run) {
            Ok(value) => errors.extend(self.schema(&value)),
            Err(error) => errors.push(field("spec", format!("cannot be serialized: {error}"))),
        }
        // The API server checks the CEL rules only on a run that passed the schema.
        if errors.is_empty() {
            errors.extend(rules(&run.spec));
        }
        if errors.is_empty()
            && let Err(error) = kubetrain_api::validate_spec(&run.spec)
        {
            errors.push(error);
        }
        errors
    }

    fn schema(&self, value: &Value) -> Vec<FieldError> {
        self.validator
            .iter_errors(value)
            .map(|error| {
                let mut path = dotted(error.instance_path().as_str());
                let instance = error.instance().as_ref().clone();
                let message = match error.kind() {
                    ValidationErrorKind::Required { property } => {
                        let name = property.as_str().unwrap_or_default();
                        path = if path.is_empty() {
                            name.to_owned()
                        } else {
                            format!("{path}.{name}")
                        };
                        "Required value".to_owned()
                    }
                    kind => describe(kind, &path, &instance),
                };
                field(&path, message)
            })
            .collect()
    }
}

/// `/spec/dataset/uri` -> `spec.dataset.uri`, `/spec/x/0` -> `spec.x[0]`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

/// The API server's wording: `Invalid value: 101: spec.backoffLimit in body should be less
/// than or equal to 100`.
fn describe(kind: &ValidationErrorKind, path: &str, instance: &Value) -> String {
    let shown = match instance {
        Value::Object(_) => "\"object\"".to_owned(),
        Value::Array(_) => "\"array\"".to_owned(),
        other => other.to_string(),
    };
    let invalid = |rule: String| format!("Invalid value: {shown}: {path} in body {rule}");
    // schemars writes integer bounds as 100.0; the API server prints 100.
    let number = |limit: &Value| match limit.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => limit.to_string(),
    };
    match kind {
        ValidationErrorKind::Pattern { pattern } => invalid(format!("should match '{pattern}'")),
        ValidationErrorKind::MinLength { limit } => {
            invalid(format!("should be at least {limit} chars long"))
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("Too long: may not be more than {limit} bytes")
        }
        ValidationErrorKind::Minimum { limit } => invalid(format!(
            "should be greater than or equal to {}",
            number(limit)
        )),
        ValidationErrorKind::Maximum { limit } => {
            invalid(format!("should be less than or equal to {}", number(limit)))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            invalid(format!("should be greater than {}", number(limit)))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            invalid(format!("should be less than {}", number(limit)))
        }
        ValidationErrorKind::MinItems { limit } => {
            invalid(format!("should have at least {limit} items"))
        }
        ValidationErrorKind::MaxItems { limit } => {
            format!(
                "Too many: {}: must have at most {limit} items",
                array_len(instance)
            )
        }
        ValidationErrorKind::Enum { options } => {
            let supported = options
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!("Unsupported value: {shown}: supported values: {supported}")
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("Invalid value: {shown}: {path} in body must be of type {expected}")
        }
        other => format!("Invalid value: {shown}: {other:?}"),
    }
}

fn array_len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

fn field(path: &str, message: String) -> FieldError {
    FieldError {
        field: path.to_owned(),
        message,
    }
}

/// The CRD's CEL rules that apply at creation (those without `oldSelf`), with the CRD's own
/// messages; `tests::every_creation_rule_is_checked` keeps this list in step with the CRD.
fn rules(spec: &TrainingRunSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // A rule on an object (or array) shows no value, as the API server words it since
    // Kubernetes 1.35 (`field.OmitValueType`); a rule on a scalar shows the value.
    let mut rule = |ok: bool, path: &str, shown: Option<&str>, message: &str| {
        if !ok {
            let text = match shown {
                Some(value) => format!("Invalid value: {value}: {message}"),
                None => format!("Invalid value: {message}"),
            };
            errors.push(field(path, text));
        }
    };
    rule(
        spec.algorithm.is_unset() != spec.custom.is_none(),
        "spec",
        None,
        TRAINER_RULE,
    );
    if let Some(custom) = &spec.custom {
        rule(
            !custom.env.iter().any(|e| e.name.starts_with(ENV_PREFIX)),
            "spec.custom.env",
            None,
            RESERVED_ENV_RULE,
        );
    }
    rule(
        spec.algorithm.is_unset()
            || [
                spec.algorithm.logistic_regression.is_some(),
                spec.algorithm.linear_regression.is_some(),
                spec.algorithm.gradient_boosted_trees.is_some(),
                spec.algorithm.random_forest.is_some(),
            ]
            .into_iter()
            .filter(|set| *set)
            .count()
                == 1,
        "spec.algorithm",
        None,
        ALGORITHM_RULE,
    );
    // Rules with a fieldPath name that field; the rule is on the spec object, so no value.
    rule(
        spec.algorithm.linear_regression.is_none() || spec.task == Task::Regression,
        "spec.task",
        None,
        LINEAR_NEEDS_REGRESSION,
    );
    rule(
        spec.algorithm.logistic_regression.is_none() || spec.task == Task::Classification,
        "spec.task",
        None,
        LOGISTIC_NEEDS_CLASSIFICATION,
    );
    if let Some(lr) = &spec.algorithm.logistic_regression {
        rule(
            lr.tolerance > 0.0,
            "spec.algorithm.logisticRegression.tolerance",
            Some(&lr.tolerance.to_string()),
            "must be greater than 0",
        );
    }
    if let Some(lr) = &spec.algorithm.linear_regression {
        rule(
            lr.tolerance > 0.0,
            "spec.algorithm.linearRegression.tolerance",
            Some(&lr.tolerance.to_string()),
            "must be greater than 0",
        );
    }
    if let Some(gb) = &spec.algorithm.gradient_boosted_trees {
        for (name, value) in [
            ("learningRate", gb.learning_rate),
            ("subsample", gb.subsample),
            ("featureFraction", gb.feature_fraction),
        ] {
            rule(
                value > 0.0,
                &format!("spec.algorithm.gradientBoostedTrees.{name}"),
                Some(&value.to_string()),
                "must be greater than 0",
            );
        }
    }
    let dataset = &spec.dataset;
    rule(
        !(dataset.validation_uri.is_some() && dataset.validation_fraction.is_some_and(|f| f > 0.0)),
        "spec.dataset",
        None,
        "set either validationFraction or validationUri, not both",
    );
    rule(
        !dataset
            .feature_columns
            .as_ref()
            .is_some_and(|columns| columns.contains(&dataset.label_column)),
        "spec.dataset",
        None,
        "featureColumns must not contain the labelColumn",
    );
    if let Some(fraction) = dataset.validation_fraction {
        rule(
            fraction < 1.0,
            "spec.dataset.validationFraction",
            Some(&fraction.to_string()),
            "must be in [0, 1): at least one row must be left to train on",
        );
    }
    // Not a CRD rule: one machine has no Secrets or ConfigMaps to take values from.
    let from_cluster = spec
        .custom
        .iter()
        .flat_map(|c| &c.env)
        .position(|e| e.value_from.is_some());
    if let Some(i) = from_cluster {
        errors.push(field(
            &format!("spec.custom.env[{i}].valueFrom"),
            "Unsupported value: kubetrain local takes literal values only (value); valueFrom \
             needs a cluster's Secrets and ConfigMaps"
                .to_owned(),
        ));
    }
    errors
}

/// Names and labels, as the API server checks every object's metadata.
fn metadata(run: &TrainingRun) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let meta = &run.metadata;
    if let Some(namespace) = &meta.namespace
        && !is_dns1123_label(namespace)
    {
        errors.push(field(
            "metadata.namespace",
            format!("Invalid value: {namespace:?}: {DNS1123_LABEL}"),
        ));
    }
    match (&meta.name, &meta.generate_name) {
        (Some(name), _) if !name.is_empty() => {
            if let Some(problem) = subdomain_problem(name) {
                errors.push(field(
                    "metadata.name",
                    format!("Invalid value: {name:?}: {problem}"),
                ));
            }
        }
        (_, Some(prefix)) if !prefix.is_empty() => {
            // The API server checks the prefix as if it were a name (a trailing '-' is fine).
            let probe = format!("{}a", truncate(prefix, MAX_GENERATE_NAME_PREFIX));
            if subdomain_problem(&probe).is_some() {
                errors.push(field(
                    "metadata.generateName",
                    format!("Invalid value: {prefix:?}: {DNS1123_SUBDOMAIN}"),
                ));
            }
        }
        _ => errors.push(field(
            "metadata.name",
            "Required value: name or generateName is required".to_owned(),
        )),
    }
    for (key, value) in meta.labels.iter().flatten() {
        if let Some(problem) = label_key_problem(key) {
            errors.push(field(
                "metadata.labels",
                format!("Invalid value: {key:?}: {problem}"),
            ));
        }
        if let Some(problem) = label_value_problem(value) {
            errors.push(field(
                &format!("metadata.labels.{key}"),
                format!("Invalid value: {value:?}: {problem}"),
            ));
        }
    }
    errors
}

/// `prefix` cut to at most `max` bytes on a character boundary.
pub fn truncate(prefix: &str, max: usize) -> &str {
    let mut end = prefix.len().min(max);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    &prefix[..end]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A run as a client submits it, with the spec fields of `spec` (YAML).
    fn run(name: &str, spec: &str) -> TrainingRun {
        TrainingRun::test(name)
            .for_create()
            .in_ns("default")
            .with_spec(spec)
    }

    const GOOD: &str = "algorithm: {logisticRegression: {}}\ndataset: {uri: s3://data/x.csv}\noutput: {uri: s3://models/x/}";

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_good_run_passes() {
        let v = SchemaValidator::new().unwrap();
        assert_eq!(v.validate(&run("churn", GOOD)), []);
    }

    #[test]
    fn schema_errors_name_the_field_like_the_api_server() {
        let v = SchemaValidator::new().unwrap();
        let bad = run(
            "churn",
            "algorithm: {logisticRegression: {maxIterations: 0}}\n\
             dataset: {uri: 'relative/x.csv'}\noutput: {uri: s3://m/}\nbackoffLimit: 101",
        );
        let errors = v.validate(&bad);
        let mut names = fields(&errors);
        names.sort();
        assert_eq!(
            names,
            [
                "spec.algorithm.logisticRegression.maxIterations",
                "spec.backoffLimit",
                "spec.dataset.uri"
            ],
            "{errors:?}"
        );
        let uri = errors
            .iter()
            .find(|e| e.field == "spec.dataset.uri")
            .unwrap();
        assert!(
            uri.message.starts_with(
                "Invalid value: \"relative/x.csv\": spec.dataset.uri in body should match '^(s3://"
            ),
            "{}",
            uri.message
        );
        let limit = errors
            .iter()
            .find(|e| e.field == "spec.backoffLimit")
            .unwrap();
        assert_eq!(
            limit.message,
            "Invalid value: 101: spec.backoffLimit in body should be less than or equal to 100"
        );
    }

    #[test]
    fn cel_rules_and_controller_checks() {
        let v = SchemaValidator::new().unwrap();
        let both = run(
            "a",
            "algorithm: {logisticRegression: {tolerance: 0}}\n\
             dataset: {uri: /d.csv, validationUri: /v.csv, validationFraction: 0.3, featureColumns: [label]}\n\
             output: {uri: /m/}",
        );
        assert_eq!(
            fields(&v.validate(&both)),
            [
                "spec.algorithm.logisticRegression.tolerance",
                "spec.dataset",
                "spec.dataset"
            ]
        );
        let mut none = run("a", GOOD);
        none.spec.algorithm.logistic_regression = None;
        // Neither an algorithm nor custom code: the spec-level rule, as the API server says.
        assert_eq!(fields(&v.validate(&none)), ["spec"]);
        let parquet = run(
            "a",
            "algorithm: {logisticRegression: {}}\ndataset: {uri: /d.parquet, format: parquet}\noutput: {uri: /m/}",
        );
        let errors = v.validate(&parquet);
        assert_eq!(fields(&errors), ["spec.dataset.format"]);
        assert!(errors[0].message.contains("use csv"), "{errors:?}");
    }

    #[test]
    fn tree_algorithms_pass_on_either_task() {
        let v = SchemaValidator::new().unwrap();
        for (algorithm, task) in [
            ("gradientBoostedTrees: {}", "classification"),
            (
                "gradientBoostedTrees: {maxDepth: 6, earlyStoppingRounds: 10}",
                "regression",
            ),
            ("randomForest: {}", "classification"),
            (
                "randomForest: {maxFeatures: sqrt, maxDepth: 12}",
                "regression",
            ),
            ("randomForest: {maxFeatures: '0.33'}", "regression"),
            ("randomForest: {maxFeatures: '1'}", "regression"),
        ] {
            let spec = format!(
                "algorithm: {{{algorithm}}}\ntask: {task}\n\
                 dataset: {{uri: s3://data/x.csv}}\noutput: {{uri: s3://models/x/}}"
            );
            assert_eq!(v.validate(&run("trees", &spec)), [], "{spec}");
        }
    }

    #[test]
    fn tree_parameters_out_of_bounds_are_named_like_the_api_server() {
        let v = SchemaValidator::new().unwrap();
        let errors = v.validate(&run(
            "trees",
            "algorithm: {gradientBoostedTrees: {maxIterations: 0, learningRate: 1.5, \
             maxLeaves: 1, maxDepth: 65, maxBins: 256, subsample: 2, featureFraction: 1.01, \
             earlyStoppingRounds: 0, seed: -1, l2Penalty: -1, minSamplesLeaf: 0}}\n\
             dataset: {uri: s3://data/x.csv}\noutput: {uri: s3://models/x/}",
        ));
        let message = |name: &str| {
            let path = format!("spec.algorithm.gradientBoostedTrees.{name}");
            errors
                .iter()
                .find(|e| e.field == path)
                .unwrap_or_else(|| panic!("no error for {path}: {errors:?}"))
                .message
                .clone()
        };
        assert_eq!(errors.len(), 11, "{errors:?}");
        assert_eq!(
            message("maxIterations"),
            "Invalid value: 0: spec.algorithm.gradientBoostedTrees.maxIterations in body \
             should be greater than or equal to 1"
        );
        assert_eq!(
            message("learningRate"),
            "Invalid value: 1.5: spec.algorithm.gradientBoostedTrees.learningRate in body \
             should be less than or equal to 1"
        );
        assert_eq!(
            message("maxBins"),
            "Invalid value: 256: spec.algorithm.gradientBoostedTrees.maxBins in body should \
             be less than or equal to 255"
        );
        assert_eq!(
            message("seed"),
            "Invalid value: -1: spec.algorithm.gradientBoostedTrees.seed in body should be \
             greater than or equal to 0"
        );
        assert!(
            message("maxDepth").ends_with("should be less than or equal to 64"),
            "{errors:?}"
        );

        let errors = v.validate(&run(
            "trees",
            "algorithm: {randomForest: {numTrees: 10001, maxDepth: 0, minSamplesLeaf: 0, \
             maxFeatures: half}}\n\
             dataset: {uri: s3://data/x.csv}\noutput: {uri: s3://models/x/}",
        ));
        let mut names = fields(&errors);
        names.sort();
        assert_eq!(
            names,
            [
                "spec.algorithm.randomForest.maxDepth",
                "spec.algorithm.randomForest.maxFeatures",
                "spec.algorithm.randomForest.minSamplesLeaf",
                "spec.algorithm.randomForest.numTrees",
            ],
            "{errors:?}"
        );
        let features = errors
            .iter()
            .find(|e| e.field == "spec.algorithm.randomForest.maxFeatures")
            .unwrap();
        assert!(
            features.message.starts_with(
                "Invalid value: \"half\": spec.algorithm.randomForest.maxFeatures in body \
                 should match '^(sqrt|log2|all|"
            ),
            "{}",
            features.message
        );
        for bad in ["0", "0.0", "1.5", "-0.5", ".", "2"] {
            let spec = format!(
                "algorithm: {{randomForest: {{maxFeatures: '{bad}'}}}}\n\
                 dataset: {{uri: s3://data/x.csv}}\noutput: {{uri: s3://models/x/}}"
            );
            assert_eq!(
                fields(&v.validate(&run("trees", &spec))),
                ["spec.algorithm.randomForest.maxFeatures"],
                "{bad}"
            );
        }
    }

    #[test]
    fn tree_fractions_must_be_positive_by_their_cel_rules() {
        let v = SchemaValidator::new().unwrap();
        let errors = v.validate(&run(
            "trees",
            "algorithm: {gradientBoostedTrees: {learningRate: 0, subsample: 0, \
             featureFraction: -0.5}}\n\
             dataset: {uri: s3://data/x.csv}\noutput: {uri: s3://models/x/}",
        ));
        assert_eq!(
            fields(&errors),
            [
                "spec.algorithm.gradientBoostedTrees.learningRate",
                "spec.algorithm.gradientBoostedTrees.subsample",
                "spec.algorithm.gradientBoostedTrees.featureFraction",
            ]
        );
        assert_eq!(
            errors[0].message,
            "Invalid value: 0: must be greater than 0"
        );
        assert_eq!(
            errors[2].message,
            "Invalid value: -0.5: must be greater than 0"
        );
        // Two members, or a tree member next to a linear one, break the union's rule.
        let two = run(
            "trees",
            "algorithm: {randomForest: {}, gradientBoostedTrees: {}}\n\
             dataset: {uri: s3://data/x.csv}\noutput: {uri: s3://models/x/}",
        );
        let errors = v.validate(&two);
        assert_eq!(fields(&errors), ["spec.algorithm"]);
        assert_eq!(
            errors[0].message,
            format!("Invalid value: {ALGORITHM_RULE}")
        );
        let mixed = run(
            "trees",
            "algorithm: {logisticRegression: {}, randomForest: {}}\n\
             dataset: {uri: s3://data/x.csv}\noutput: {uri: s3://models/x/}",
        );
        assert_eq!(fields(&v.validate(&mixed)), ["spec.algorithm"]);
        // Early stopping without validation rows: the controller's check, after the rules.
        let no_rows = run(
            "trees",
            "algorithm: {gradientBoostedTrees: {earlyStoppingRounds: 5}}\n\
             dataset: {uri: s3://data/x.csv, validationFraction: 0}\n\
             output: {uri: s3://models/x/}",
        );
        assert_eq!(
            fields(&v.validate(&no_rows)),
            ["spec.algorithm.gradientBoostedTrees.earlyStoppingRounds"]
        );
    }

    #[test]
    fn every_creation_rule_is_checked() {
        // Every CEL rule of the CRD that does not compare with oldSelf must be one of ours.
        let crd = serde_json::to_value(kubetrain_api::crd().unwrap()).unwrap();
        let mut messages = Vec::new();
        collect_rules(&crd, &mut messages);
        assert!(!messages.is_empty());
        let ours = [
            ALGORITHM_RULE,
            TRAINER_RULE,
            RESERVED_ENV_RULE,
            LINEAR_NEEDS_REGRESSION,
            LOGISTIC_NEEDS_CLASSIFICATION,
            "must be greater than 0",
            "set either validationFraction or validationUri, not both",
            "featureColumns must not contain the labelColumn",
            "must be in [0, 1): at least one row must be left to train on",
        ];
        for message in messages {
            assert!(
                ours.contains(&message.as_str()),
                "unchecked CEL rule: {message}"
            );
        }
    }

    fn collect_rules(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::Array(rules)) = object.get("x-kubernetes-validations") {
                    for rule in rules {
                        let text = rule["rule"].as_str().unwrap();
                        if !text.contains("oldSelf") {
                            out.push(rule["message"].as_str().unwrap().to_owned());
                        }
                    }
                }
                object.values().for_each(|v| collect_rules(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_rules(v, out)),
            _ => {}
        }
    }

    #[test]
    fn names_and_labels() {
        let v = SchemaValidator::new().unwrap();
        let errors = v.validate(&run("Bad_Name", GOOD));
        assert_eq!(fields(&errors), ["metadata.name"]);
        assert!(errors[0].message.contains("RFC 1123 subdomain"));
        let mut generated = run("x", GOOD).generated("churn-");
        assert_eq!(v.validate(&generated), []);
        generated.metadata.generate_name = Some("Churn-".to_owned());
        assert_eq!(fields(&v.validate(&generated)), ["metadata.generateName"]);
        let labelled = run("x", GOOD)
            .labelled("app", "churn")
            .labelled("bad key!", "x");
        assert_eq!(fields(&v.validate(&labelled)), ["metadata.labels"]);
        assert!(subdomain_problem("a.b-c.d").is_none());
        assert!(subdomain_problem("-a").is_some());
        assert!(label_key_problem("kubetrain.dev/run").is_none());
        assert!(label_value_problem("").is_none());
    }
}
