//! The CustomResourceDefinition: the derived one plus the rules the derive cannot express
//! (spec immutability, one-way cancel), and a check that the schema is structural.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use crate::TrainingRun;

/// Spec fields that may change after creation; every other spec field is immutable.
pub const MUTABLE_SPEC_FIELDS: [&str; 2] = ["suspend", "cancel"];

/// Errors building the CRD.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The derived CRD did not have the expected shape (a bug in this crate).
    #[error("the derived CRD has no {0}")]
    Shape(&'static str),
    /// The CRD could not be converted to or from JSON/YAML.
    #[error("cannot serialize the CRD: {0}")]
    Serialize(String),
}

/// The TrainingRun CRD as applied to a cluster.
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    let mut value =
        serde_json::to_value(TrainingRun::crd()).map_err(|e| CrdError::Serialize(e.to_string()))?;
    let spec = value
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
        .ok_or(CrdError::Shape("spec schema"))?;
    add_spec_transition_rules(spec)?;
    let root = value
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema")
        .ok_or(CrdError::Shape("root schema"))?;
    tidy_for_the_api_server(root);
    serde_json::from_value(value).map_err(|e| CrdError::Serialize(e.to_string()))
}

/// The CRD as YAML, exactly as committed at `deploy/crds/trainingruns.kubetrain.dev.yaml`.
pub fn crd_yaml() -> Result<String, CrdError> {
    serde_yaml::to_string(&crd()?).map_err(|e| CrdError::Serialize(e.to_string()))
}

/// Immutability of every spec field but [`MUTABLE_SPEC_FIELDS`], and `cancel` one-way.
///
/// The rules are generated from the schema's own property list, so a field added later is
/// immutable without anyone remembering to say so. Each field gets a field-level
/// `self == oldSelf` rule; an optional one also a spec-level rule that it is neither added nor
/// removed, which a field-level rule would not see. Field-level rules are what keeps status
/// writes cheap: the API server evaluates a rule on `spec` on every status write (the spec
/// comparisons cost ~1.2 ms of a ~3.5 ms status write as spec-level rules, ~0.1 ms as
/// field-level ones), while an unchanged field's own rules are ratcheted away.
fn add_spec_transition_rules(spec: &mut Value) -> Result<(), CrdError> {
    let required: Vec<String> = spec
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let properties = spec
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or(CrdError::Shape("spec properties"))?;
    let mut rules = Vec::new();
    for (field, schema) in properties.iter_mut() {
        if MUTABLE_SPEC_FIELDS.contains(&field.as_str()) {
            continue;
        }
        let message = format!(
            "spec.{field} is immutable: only spec.suspend and spec.cancel may change after creation; create a new TrainingRun to train with other settings"
        );
        validations(schema)?.push(json!({
            "rule": "self == oldSelf",
            "message": message,
            "reason": "FieldValueForbidden",
        }));
        if !required.contains(field) {
            rules.push(json!({
                "rule": format!("has(self.{field}) == has(oldSelf.{field})"),
                "message": message,
                "fieldPath": format!(".{field}"),
                "reason": "FieldValueForbidden",
            }));
        }
    }
    rules.push(json!({
        "rule": "!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",
        "message": "spec.cancel cannot be set back to false once true",
        "fieldPath": ".cancel",
        "reason": "FieldValueForbidden",
    }));
    validations(spec)?.extend(rules);
    Ok(())
}

/// The `x-kubernetes-validations` list of a schema node, created empty when missing.
fn validations(schema: &mut Value) -> Result<&mut Vec<Value>, CrdError> {
    schema
        .as_object_mut()
        .ok_or(CrdError::Shape("schema object"))?
        .entry("x-kubernetes-validations")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or(CrdError::Shape("validations list"))
}

/// Adapt what schemars emits to what the API server and `kubectl explain` expect:
/// - `uint32`/`uint64` are not Kubernetes formats (the API server warns on each apply); the
///   bounds already say "not negative", so they become `int64`.
/// - Doc comments keep their line breaks, which `kubectl explain` prints mid-sentence; single
///   line breaks are joined, paragraph breaks kept.
fn tidy_for_the_api_server(node: &mut Value) {
    match node {
        Value::Object(object) => {
            if let Some(Value::String(format)) = object.get_mut("format")
                && (format == "uint32" || format == "uint64")
            {
                *format = "int64".to_owned();
            }
            if let Some(Value::String(description)) = object.get_mut("description") {
                *description = join_wrapped_lines(description);
            }
            for (key, child) in object.iter_mut() {
                // `default` and `example` hold data, not schema.
                if key != "default" && key != "example" {
                    tidy_for_the_api_server(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy_for_the_api_server),
        _ => {}
    }
}

fn join_wrapped_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .split('\n')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Every way `schema` breaks the rules of a structural schema (the API server rejects a CRD
/// whose schema is not structural): `$ref`, a node without `type` (unless it is
/// int-or-string or preserves unknown fields), an int-or-string with a type, or `oneOf`/`anyOf`/`allOf`/`not` whose branches
/// declare types or defaults. An empty result means structural. Paths are JSON pointers.
pub fn structural_violations(schema: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    check_node(schema, "", false, &mut violations);
    violations
}

fn check_node(node: &Value, path: &str, in_junctor: bool, out: &mut Vec<String>) {
    let Some(object) = node.as_object() else {
        out.push(format!("{path}: schema node is not an object"));
        return;
    };
    if object.contains_key("$ref") {
        out.push(format!("{path}: $ref is not allowed"));
    }
    let has_type = object.contains_key("type");
    let int_or_string = object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if int_or_string && has_type {
        out.push(format!(
            "{path}: x-kubernetes-int-or-string must not declare a type"
        ));
    }
    if in_junctor {
        for forbidden in [
            "type",
            "default",
            "additionalProperties",
            "nullable",
            "description",
        ] {
            if object.contains_key(forbidden) {
                out.push(format!(
                    "{path}: `{forbidden}` inside oneOf/anyOf/allOf/not"
                ));
            }
        }
    } else if !has_type && !int_or_string && !preserve {
        out.push(format!("{path}: no type"));
    }
    for junctor in ["oneOf", "anyOf", "allOf"] {
        if let Some(branches) = object.get(junctor).and_then(Value::as_array) {
            for (i, branch) in branches.iter().enumerate() {
                check_node(branch, &format!("{path}/{junctor}/{i}"), true, out);
            }
        }
    }
    if let Some(not) = object.get("not") {
        check_node(not, &format!("{path}/not"), true, out);
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            check_node(child, &format!("{path}/properties/{name}"), in_junctor, out);
        }
    }
    if let Some(items) = object.get("items") {
        check_node(items, &format!("{path}/items"), in_junctor, out);
    }
    if let Some(additional) = object.get("additionalProperties").filter(|v| v.is_object()) {
        check_node(
            additional,
            &format!("{path}/additionalProperties"),
            in_junctor,
            out,
        );
    }
}
