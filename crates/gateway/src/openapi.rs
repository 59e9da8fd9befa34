//! The OpenAPI 3.1 document, generated from the route table (`routes`) and the
//! schemars schemas of the bodies, so it cannot drift from what is served.

use std::collections::BTreeMap;

use axum::http::Method;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubetrain_api::{TrainingRunSpec, TrainingRunStatus};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

use crate::error::ErrorBody;

/// Produces the schema (usually a `$ref` into `components.schemas`) of a body.
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The content of a request or response body.
#[derive(Clone, Copy)]
pub(crate) enum Body {
    /// `application/json` with this schema.
    Json(SchemaFn),
    /// `application/json`, any value.
    AnyJson,
    /// `text/plain`.
    Text,
    /// `text/event-stream` of events named one of `events` whose `data` is JSON with this
    /// schema, except the `empty` events, whose `data` is `{}`.
    EventStream {
        /// The `event:` field's values.
        events: &'static [&'static str],
        /// The schema of each event's JSON `data:`.
        data: SchemaFn,
        /// The events (among `events`) that carry `{}` as their data.
        empty: &'static [&'static str],
    },
    /// `text/csv`, any bytes.
    Csv,
}

/// A JSON body of type `T`.
pub(crate) fn json<T: JsonSchema>() -> Body {
    Body::Json(schema_of::<T>)
}

/// The schema of `T` (a `$ref` into `components.schemas`).
pub(crate) fn json_schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    schema_of::<T>(generator)
}

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What the document says about a TrainingRun as the API carries it: the Kubernetes object
/// (`apiVersion` and `kind` optional on input).
#[derive(JsonSchema)]
#[schemars(rename = "TrainingRun")]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct TrainingRunDoc {
    /// `kubetrain.dev/v1alpha1`; optional on input.
    #[schemars(extend("enum" = ["kubetrain.dev/v1alpha1", null]))]
    api_version: Option<String>,
    /// `TrainingRun`; optional on input.
    #[schemars(extend("enum" = ["TrainingRun", null]))]
    kind: Option<String>,
    /// Standard object metadata: `name` or `generateName` is required on create.
    metadata: ObjectMeta,
    /// What to train.
    spec: TrainingRunSpec,
    /// What happened; ignored on input.
    #[schemars(extend("readOnly" = true))]
    status: Option<TrainingRunStatus>,
}

struct Reply {
    status: u16,
    description: String,
    body: Option<Body>,
}

struct Param {
    name: &'static str,
    location: &'static str,
    description: &'static str,
    schema: Value,
}

/// One documented operation.
pub(crate) struct Operation {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    params: Vec<Param>,
    request: Option<(Body, bool)>,
    replies: Vec<Reply>,
    public: bool,
}

impl Operation {
    /// `method path`, named `id` (the operationId), grouped under `tag`.
    pub(crate) fn new(
        method: Method,
        path: &'static str,
        id: &'static str,
        tag: &'static str,
    ) -> Self {
        Operation {
            method,
            path,
            id,
            tag,
            summary: "",
            description: "",
            params: Vec::new(),
            request: None,
            replies: Vec::new(),
            public: tag == "probes",
        }
    }

    pub(crate) fn summary(mut self, text: &'static str) -> Self {
        self.summary = text;
        self
    }

    pub(crate) fn description(mut self, text: &'static str) -> Self {
        self.description = text;
        self
    }

    /// A free-text query parameter (printable ASCII).
    pub(crate) fn query_param(self, name: &'static str, description: &'static str) -> Self {
        self.param(
            name,
            "query",
            description,
            json!({"type": "string", "pattern": "^[ -~]*$"}),
        )
    }

    pub(crate) fn query_param_enum(
        self,
        name: &'static str,
        description: &'static str,
        values: &[&str],
    ) -> Self {
        self.param(
            name,
            "query",
            description,
            json!({"type": "string", "enum": values}),
        )
    }

    pub(crate) fn query_param_integer(self, name: &'static str, description: &'static str) -> Self {
        self.query_param_range(name, description, u64::from(u32::MAX))
    }

    /// An integer query parameter from 1 to `maximum`.
    pub(crate) fn query_param_range(
        self,
        name: &'static str,
        description: &'static str,
        maximum: u64,
    ) -> Self {
        self.param(
            name,
            "query",
            description,
            json!({"type": "integer", "minimum": 1, "maximum": maximum}),
        )
    }

    pub(crate) fn header_param(self, name: &'static str, description: &'static str) -> Self {
        self.param(
            name,
            "header",
            description,
            json!({"type": "string", "minLength": 1}),
        )
    }

    fn param(
        mut self,
        name: &'static str,
        location: &'static str,
        description: &'static str,
        schema: Value,
    ) -> Self {
        self.params.push(Param {
            name,
            location,
            description,
            schema,
        });
        self
    }

    /// The request body (required).
    pub(crate) fn request(mut self, body: Body) -> Self {
        self.request = Some((body, true));
        self
    }

    /// A possible answer.
    pub(crate) fn reply(mut self, status: u16, description: &str, body: Body) -> Self {
        self.replies.push(Reply {
            status,
            description: description.to_owned(),
            body: Some(body),
        });
        self
    }

    /// Error answers, each with the JSON [`ErrorBody`].
    pub(crate) fn errors(mut self, statuses: &[u16]) -> Self {
        for &status in statuses {
            self.replies.push(Reply {
                status,
                description: error_description(status).to_owned(),
                body: Some(json::<ErrorBody>()),
            });
        }
        self
    }

    fn to_json(&self, generator: &mut SchemaGenerator) -> Value {
        let mut parameters: Vec<Value> = path_params(self.path)
            .into_iter()
            .map(|name| {
                json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "schema": path_param_schema(name),
                })
            })
            .collect();
        for param in &self.params {
            parameters.push(json!({
                "name": param.name,
                "in": param.location,
                "required": false,
                "description": param.description,
                "schema": param.schema,
            }));
        }
        let mut operation = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": self.summary,
            "responses": {},
        });
        if !self.description.is_empty() {
            operation["description"] = json!(self.description);
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some((body, required)) = self.request {
            operation["requestBody"] = json!({
                "required": required,
                "content": content(body, generator),
            });
        }
        if self.public {
            operation["security"] = json!([]);
        }
        for reply in &self.replies {
            let mut answer = json!({"description": reply.description});
            if let Some(body) = reply.body {
                answer["content"] = content(body, generator);
            }
            match reply.status {
                401 => {
                    answer["headers"] = json!({"WWW-Authenticate": {
                        "description": "Bearer", "schema": {"type": "string"}}});
                }
                503 => {
                    answer["headers"] = json!({"Retry-After": {
                        "description": "Seconds to wait before retrying.",
                        "schema": {"type": "integer"}}});
                }
                _ => {}
            }
            operation["responses"][reply.status.to_string()] = answer;
        }
        operation
    }
}

fn content(body: Body, generator: &mut SchemaGenerator) -> Value {
    match body {
        Body::Json(schema) => json!({"application/json": {"schema": schema(generator)}}),
        Body::AnyJson => json!({"application/json": {"schema": {}}}),
        Body::Text => json!({"text/plain": {"schema": {"type": "string"}}}),
        Body::EventStream {
            events,
            data,
            empty,
        } => {
            let data = if empty.is_empty() {
                json!(data(generator))
            } else {
                json!({"anyOf": [data(generator), {
                    "description": format!("The data of {}: nothing.", empty.join(", ")),
                    "type": "object",
                    "maxProperties": 0,
                }]})
            };
            json!({"text/event-stream": {"schema": {
                "description": "One Server-Sent Event (keep-alive comments aside).",
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string", "enum": events},
                    "id": {"type": "string", "description": "The run's metadata.resourceVersion."},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": data,
                    },
                    "retry": {"type": "integer"},
                },
            }}})
        }
        Body::Csv => {
            json!({"text/csv": {"schema": {"type": "string", "format": "binary", "minLength": 1}}})
        }
    }
}

fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn path_param_schema(name: &str) -> Value {
    match name {
        "namespace" => json!({"type": "string", "minLength": 1, "maxLength": 63,
            "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}),
        _ => json!({"type": "string", "minLength": 1, "maxLength": 253,
            "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}),
    }
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => {
            "Malformed request: JSON that does not parse (line and column given), a bad query parameter, header or path segment."
        }
        401 => "No bearer token, or one that is not valid.",
        403 => "The caller may not do this; the message names the missing permission.",
        404 => "No such run or task.",
        405 => "The path does not support this method.",
        409 => {
            "Conflicts with the current state: the name exists, the Idempotency-Key was used for another request, or the model is not ready yet."
        }
        413 => "The body is larger than the configured limit.",
        415 => "The body has the wrong content type.",
        422 => "A field is invalid; `field` and `causes` name it and say what would be valid.",
        500 => "Internal error; the details are in the server log.",
        501 => "The gateway has no staging location configured (--staging-uri).",
        502 => "The stored model does not match the sha256 in the run's status, or cannot be read.",
        503 => {
            "The run store, the authorizer or storage cannot be reached, or the server is at its concurrency limit; retry after Retry-After seconds."
        }
        504 => "The request took longer than the request timeout.",
        _ => "Error.",
    }
}

/// The whole document for `operations`.
pub(crate) fn document<'a>(operations: impl IntoIterator<Item = &'a Operation>) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths: BTreeMap<&str, serde_json::Map<String, Value>> = BTreeMap::new();
    for operation in operations {
        let item = operation.to_json(&mut generator);
        paths
            .entry(operation.path)
            .or_default()
            .insert(operation.method.as_str().to_ascii_lowercase(), item);
    }
    let mut schemas = generator.take_definitions(true);
    if let Some(metadata) = schemas
        .get_mut("TrainingRun")
        .and_then(|run| run.pointer_mut("/properties/metadata"))
    {
        // A run needs a name or a prefix to generate one from.
        let reference = metadata.take();
        *metadata = json!({
            "allOf": [reference],
            "anyOf": [
                {"required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}},
                {"required": ["generateName"],
                 "properties": {"generateName": {"type": "string", "minLength": 1}}},
            ],
        });
    }
    // The CRD's CEL rule "exactly one algorithm", in the terms of a JSON schema: one of the
    // union's members is required, and only one may be there.
    if let Some(algorithm) = schemas
        .get_mut("TrainingRun")
        .and_then(|run| run.pointer_mut("/properties/spec/properties/algorithm"))
        .and_then(Value::as_object_mut)
    {
        let members: Vec<Value> = algorithm
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| {
                properties
                    .keys()
                    .map(|member| json!({"required": [member]}))
                    .collect()
            })
            .unwrap_or_default();
        if !members.is_empty() {
            algorithm.insert("oneOf".into(), Value::Array(members));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "kubetrain gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Model training behind an API, the Kubernetes way: every run is a TrainingRun (kubetrain.dev/v1alpha1). Errors are JSON: {code, reason, message, field?, causes?}.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    })
}
