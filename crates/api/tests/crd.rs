//! The CRD as the API server sees it: shape, structural schema, CEL rules, committed copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubetrain_api::crd::{MUTABLE_SPEC_FIELDS, structural_violations};
use kubetrain_api::{TrainingRun, crd, crd_yaml};
use serde_json::{Value, json};

fn crd_json() -> Value {
    serde_json::to_value(crd().unwrap()).unwrap()
}

fn root_schema() -> Value {
    crd_json()
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .unwrap()
        .clone()
}

#[test]
fn names_scope_and_subresources() {
    let crd = crd_json();
    assert_eq!(crd["metadata"]["name"], "trainingruns.kubetrain.dev");
    assert_eq!(crd["spec"]["group"], "kubetrain.dev");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let names = &crd["spec"]["names"];
    assert_eq!(names["kind"], "TrainingRun");
    assert_eq!(names["plural"], "trainingruns");
    assert_eq!(names["shortNames"], json!(["tr"]));
    assert_eq!(names["categories"], json!(["kubetrain"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for wanted in ["Phase", "Algorithm", "Metric", "Score", "Age"] {
        assert!(
            columns.contains(&wanted),
            "missing printer column {wanted}: {columns:?}"
        );
    }
}

#[test]
fn schema_is_structural() {
    let violations = structural_violations(&root_schema());
    assert!(violations.is_empty(), "not structural: {violations:#?}");
}

#[test]
fn structural_check_catches_what_the_api_server_rejects() {
    let bad = json!({
        "type": "object",
        "properties": {
            "a": {"$ref": "#/definitions/A"},
            "b": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "c": {"description": "no type"},
            "d": {"type": "integer", "x-kubernetes-int-or-string": true},
            "e": {"x-kubernetes-int-or-string": true},
        }
    });
    let violations = structural_violations(&bad);
    assert_eq!(violations.len(), 7, "{violations:#?}");
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("/properties/d") && v.contains("int-or-string"))
    );
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("/properties/a") && v.contains("$ref"))
    );
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("/properties/b/oneOf/0"))
    );
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("/properties/c") && v.contains("no type"))
    );
}

#[test]
fn every_field_has_a_description() {
    fn walk(node: &Value, path: &str, out: &mut Vec<String>) {
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                let here = format!("{path}.{name}");
                let described = child
                    .get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| !d.trim().is_empty());
                if !described {
                    out.push(here.clone());
                }
                walk(child, &here, out);
            }
        }
        if let Some(items) = node.get("items") {
            walk(items, &format!("{path}[]"), out);
        }
    }
    let schema = root_schema();
    let mut missing = Vec::new();
    walk(&schema["properties"]["spec"], "spec", &mut missing);
    walk(&schema["properties"]["status"], "status", &mut missing);
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:#?}"
    );
}

#[test]
fn spec_is_immutable_except_suspend_and_cancel() {
    let spec = root_schema()["properties"]["spec"].clone();
    let rules: Vec<&Value> = spec["x-kubernetes-validations"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let required: Vec<&str> = spec["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for (field, schema) in spec["properties"].as_object().unwrap() {
        if field == "cancel" {
            continue;
        }
        let mutable = MUTABLE_SPEC_FIELDS.contains(&field.as_str());
        let own = schema["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["rule"] == "self == oldSelf" && r["reason"] == "FieldValueForbidden");
        assert_eq!(
            own, !mutable,
            "spec.{field}: field-level rule present = {own}"
        );
        let presence = rules.iter().any(|r| {
            r["fieldPath"] == format!(".{field}")
                && r["rule"] == format!("has(self.{field}) == has(oldSelf.{field})")
        });
        let optional = !required.contains(&field.as_str());
        assert_eq!(
            presence,
            !mutable && optional,
            "spec.{field}: presence rule present = {presence}"
        );
    }
    // A run names a built-in algorithm or custom code: neither is required on its own (the
    // spec-level rule asks for exactly one), so both get presence rules.
    assert_eq!(required, ["dataset", "output"]);
    let cancel = rules.iter().find(|r| r["fieldPath"] == ".cancel").unwrap();
    assert!(cancel["rule"].as_str().unwrap().contains("oldSelf.cancel"));
}

#[test]
fn bounds_and_enums_are_in_the_schema() {
    let spec = root_schema()["properties"]["spec"].clone();
    let dataset = &spec["properties"]["dataset"]["properties"];
    assert_eq!(dataset["validationFraction"]["minimum"].as_f64(), Some(0.0));
    let fraction_rules = dataset["validationFraction"]["x-kubernetes-validations"].to_string();
    assert!(fraction_rules.contains("self < 1.0"), "{fraction_rules}");
    assert_eq!(dataset["format"]["enum"], json!(["csv", "parquet"]));
    let lr = &spec["properties"]["algorithm"]["properties"]["logisticRegression"]["properties"];
    assert_eq!(lr["maxIterations"]["minimum"].as_f64(), Some(1.0));
    assert_eq!(
        spec["properties"]["backoffLimit"]["minimum"].as_f64(),
        Some(0.0)
    );
    let algorithm_rules = spec["properties"]["algorithm"]["x-kubernetes-validations"].to_string();
    assert!(
        algorithm_rules.contains("exactly one algorithm"),
        "{algorithm_rules}"
    );
    let conditions = &root_schema()["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
}

#[test]
fn the_manifest_from_the_issue_parses_with_its_values() {
    let manifest = r#"
apiVersion: kubetrain.dev/v1alpha1
kind: TrainingRun
metadata: {name: churn}
spec:
  algorithm: {logisticRegression: {maxIterations: 200, l2Penalty: 1.0}}
  dataset: {uri: "s3://data/churn.csv", format: csv, labelColumn: label, validationFraction: 0.2, seed: 7}
  output: {uri: "s3://models/churn/"}
  storage: {secretRef: {name: s3}}
  resources: {requests: {cpu: "1", memory: 512Mi}, limits: {nvidia.com/gpu: 1}}
  backoffLimit: 2
"#;
    let run: TrainingRun = serde_yaml::from_str(manifest).unwrap();
    let lr = run.spec.algorithm.logistic_regression.as_ref().unwrap();
    assert_eq!(lr.max_iterations, 200);
    assert_eq!(lr.tolerance, 1e-4, "default tolerance");
    assert_eq!(run.spec.algorithm.name(), Some("logisticRegression"));
    assert_eq!(run.spec.dataset.effective_validation_fraction(), Some(0.2));
    assert_eq!(run.spec.dataset.seed, Some(7));
    assert_eq!(
        run.spec
            .storage
            .as_ref()
            .unwrap()
            .secret_ref
            .as_ref()
            .unwrap()
            .name,
        "s3"
    );
    let limits = run
        .spec
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap();
    assert_eq!(limits["nvidia.com/gpu"].0, "1");
    assert!(!run.spec.suspend && !run.spec.cancel);
}

#[test]
fn results_live_where_users_look_for_them() {
    let status: kubetrain_api::TrainingRunStatus = serde_json::from_value(json!({
        "phase": "Succeeded",
        "metrics": {"accuracy": 0.9649},
        "model": {"uri": "s3://models/churn/model.json", "sha256": "ab", "bytes": 10},
    }))
    .unwrap();
    let round_trip = serde_json::to_value(&status).unwrap();
    assert_eq!(
        round_trip.pointer("/metrics/accuracy"),
        Some(&json!(0.9649))
    );
    assert_eq!(
        round_trip.pointer("/model/uri"),
        Some(&json!("s3://models/churn/model.json"))
    );
    assert_eq!(round_trip.pointer("/model/sha256"), Some(&json!("ab")));
}

#[test]
fn committed_crd_matches_the_code() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/crds/trainingruns.kubetrain.dev.yaml"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == crd_yaml().unwrap(),
        "deploy/crds/trainingruns.kubetrain.dev.yaml is out of date; regenerate it with\n  \
         cargo run -p kubetrain -- crd > deploy/crds/trainingruns.kubetrain.dev.yaml"
    );
}

#[test]
fn formats_are_kubernetes_formats_and_descriptions_read_as_prose() {
    let yaml = crd_yaml().unwrap();
    assert!(
        !yaml.contains("uint32") && !yaml.contains("uint64"),
        "non-Kubernetes int format"
    );
    let spec = root_schema()["properties"]["spec"].clone();
    let uri = spec["properties"]["dataset"]["properties"]["uri"]["description"]
        .as_str()
        .unwrap();
    assert!(
        !uri.contains('\n'),
        "wrapped doc comment kept its line break: {uri:?}"
    );
    assert!(
        uri.contains("absolute path on the trainer's filesystem"),
        "{uri}"
    );
}
