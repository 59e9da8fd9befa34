//! Create, read, list, delete and cancel TrainingRuns, with idempotent creation.
//!
//! # Idempotency
//! With an `Idempotency-Key` header, a create that uses `metadata.generateName` gets a name
//! derived from the key (`generateName` + the first 10 hex digits of
//! sha256(namespace + key)), and the run carries the annotations
//! [`IDEMPOTENCY_KEY_ANNOTATION`] (sha256 of the key) and [`REQUEST_HASH_ANNOTATION`] (sha256
//! of the request). When the backend answers that the name exists, the existing run is
//! returned (200) if it carries the same key and request hash, and 409 otherwise. The backend's
//! own uniqueness of names makes this race-free without any state in the gateway.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kubetrain_api::{Phase, TrainingRun};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{BackendError, ListQuery};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, from_value};
use crate::routes::{authorize, authorize_run, check_namespace};
use crate::state::AppState;

/// Annotation holding the sha256 (hex) of the `Idempotency-Key` a run was created with.
pub const IDEMPOTENCY_KEY_ANNOTATION: &str = "kubetrain.dev/idempotency-key";
/// Annotation holding the sha256 (hex) of the canonical JSON of the create request.
pub const REQUEST_HASH_ANNOTATION: &str = "kubetrain.dev/request-sha256";
/// The request header that makes a create safe to retry.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// A page of runs: `continue` is present when more runs follow.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunListBody {
    /// The runs of this page.
    #[schemars(with = "Vec<crate::openapi::TrainingRunDoc>")]
    pub items: Vec<TrainingRun>,
    /// Pass as `continue` to get the next page; absent on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// Query parameters of the list route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListParams {
    phase: Option<String>,
    label_selector: Option<String>,
    limit: Option<u32>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    check_namespace(&namespace)?;
    let run = parse_run(body)?;
    authorize(&state, &headers, "create", &namespace, None).await?;
    let key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(value) => match value.to_str() {
            Ok(key) if !key.is_empty() => Some(key.to_owned()),
            _ => {
                return Err(ApiError::bad_request(
                    "the Idempotency-Key header must be non-empty ASCII text",
                ));
            }
        },
    };
    let run = prepare_create(&namespace, run, key.as_deref())?;
    let expected = run.metadata.annotations.clone().unwrap_or_default();
    match state.backend.create(&namespace, run).await {
        Ok(created) => Ok((StatusCode::CREATED, Json(created)).into_response()),
        Err(error @ BackendError::AlreadyExists { .. }) if key.is_some() => {
            let Some(name) = error_name(&error) else {
                return Err(error.into());
            };
            let existing = match state.backend.get(&namespace, &name).await {
                Ok(existing) => existing,
                Err(BackendError::NotFound { .. }) => return Err(error.into()),
                Err(other) => return Err(other.into()),
            };
            let annotations = existing.metadata.annotations.clone().unwrap_or_default();
            let same = |annotation: &str| annotations.get(annotation) == expected.get(annotation);
            if !same(IDEMPOTENCY_KEY_ANNOTATION) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!(
                        "{error}, and it was not created with this Idempotency-Key; choose \
                         another name"
                    ),
                ));
            }
            if !same(REQUEST_HASH_ANNOTATION) {
                return Err(ApiError::conflict(format!(
                    "the Idempotency-Key was used already for a different request (run \
                     \"{name}\"); use a new key for a new request"
                )));
            }
            Ok((StatusCode::OK, Json(existing)).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// The body as a TrainingRun; `apiVersion` and `kind` are optional but must be right when
/// given.
fn parse_run(body: serde_json::Value) -> Result<TrainingRun, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid(
            "body",
            "must be a TrainingRun object with metadata and spec",
        ));
    }
    let expected_version = format!("{}/{}", kubetrain_api::GROUP, kubetrain_api::VERSION);
    for (field, expected) in [
        ("apiVersion", expected_version.as_str()),
        ("kind", "TrainingRun"),
    ] {
        match body.get(field) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(given)) if given == expected => {}
            Some(given) => {
                return Err(ApiError::invalid(
                    field,
                    format!("is {given}, expected \"{expected}\" (or leave it out)"),
                ));
            }
        }
    }
    from_value(body)
}

fn error_name(error: &BackendError) -> Option<String> {
    match error {
        BackendError::AlreadyExists { name, .. } => Some(name.clone()),
        _ => None,
    }
}

/// Check the parts of a create request the gateway owns, set `metadata.namespace`, and with an
/// idempotency key: the deterministic name and the two annotations.
fn prepare_create(
    namespace: &str,
    mut run: TrainingRun,
    key: Option<&str>,
) -> Result<TrainingRun, ApiError> {
    let has_name = run.metadata.name.as_deref().is_some_and(|n| !n.is_empty());
    let has_generate = run
        .metadata
        .generate_name
        .as_deref()
        .is_some_and(|n| !n.is_empty());
    if !has_name && !has_generate {
        return Err(ApiError::invalid(
            "metadata.name",
            "set metadata.name or metadata.generateName",
        ));
    }
    if let Some(given) = run.metadata.namespace.as_deref()
        && !given.is_empty()
        && given != namespace
    {
        return Err(ApiError::bad_request(format!(
            "metadata.namespace \"{given}\" does not match the namespace of the URL \
             \"{namespace}\""
        )));
    }
    run.metadata.namespace = Some(namespace.to_owned());
    let Some(key) = key else {
        return Ok(run);
    };
    // The hash covers the request as the client sent it (parsed, so key order and spacing do
    // not matter), before the gateway adds its name and annotations.
    let canonical = serde_json::to_vec(&run).map_err(ApiError::internal)?;
    let request_hash = hex::encode(Sha256::digest(&canonical));
    if !has_name && let Some(prefix) = run.metadata.generate_name.clone() {
        let digest = hex::encode(Sha256::digest(format!("{namespace}{key}")));
        run.metadata.name = Some(format!("{prefix}{}", &digest[..10]));
        run.metadata.generate_name = None;
    }
    let annotations = run.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(
        IDEMPOTENCY_KEY_ANNOTATION.to_owned(),
        hex::encode(Sha256::digest(key.as_bytes())),
    );
    annotations.insert(REQUEST_HASH_ANNOTATION.to_owned(), request_hash);
    Ok(run)
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<TrainingRun>, ApiError> {
    authorize_run(&state, &headers, "get", &namespace, &name).await?;
    Ok(Json(state.backend.get(&namespace, &name).await?))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<RunListBody>, ApiError> {
    check_namespace(&namespace)?;
    let query = list_query(params)?;
    authorize(&state, &headers, "list", &namespace, None).await?;
    let page = state.backend.list(&namespace, &query).await?;
    Ok(Json(RunListBody {
        items: page.items,
        continue_token: page.continue_token.filter(|t| !t.is_empty()),
    }))
}

fn list_query(params: ListParams) -> Result<ListQuery, ApiError> {
    let phase = match params.phase.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(text) => Some(parse_phase(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "phase: \"{text}\" is not a phase; use Pending, Queued, Running, Succeeded, \
                 Failed or Cancelled"
            ))
        })?),
    };
    if params.limit == Some(0) {
        return Err(ApiError::bad_request(
            "limit: must be at least 1 (leave it out for every run)",
        ));
    }
    Ok(ListQuery {
        phase,
        label_selector: params.label_selector.filter(|s| !s.is_empty()),
        limit: params.limit,
        continue_token: params.continue_token.filter(|s| !s.is_empty()),
    })
}

fn parse_phase(text: &str) -> Option<Phase> {
    text.parse().ok()
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<TrainingRun>, ApiError> {
    authorize_run(&state, &headers, "delete", &namespace, &name).await?;
    Ok(Json(state.backend.delete(&namespace, &name).await?))
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<TrainingRun>, ApiError> {
    authorize_run(&state, &headers, "patch", &namespace, &name).await?;
    Ok(Json(state.backend.cancel(&namespace, &name).await?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    /// A create request's body: `generateName: churn-`, no namespace.
    fn sample() -> TrainingRun {
        TrainingRun::test("churn").generated("churn-").for_create()
    }

    #[test]
    fn idempotency_key_gives_a_deterministic_name_and_annotations() {
        let a = prepare_create("ml", sample(), Some("k1")).unwrap();
        let b = prepare_create("ml", sample(), Some("k1")).unwrap();
        let c = prepare_create("other", sample(), Some("k1")).unwrap();
        let name = a.metadata.name.clone().unwrap();
        assert!(
            name.starts_with("churn-") && name.len() == "churn-".len() + 10,
            "{name}"
        );
        assert_eq!(a.metadata.name, b.metadata.name);
        assert_ne!(a.metadata.name, c.metadata.name);
        assert_eq!(a.metadata.annotations, b.metadata.annotations);
        let annotations = a.metadata.annotations.unwrap();
        assert_eq!(
            annotations[IDEMPOTENCY_KEY_ANNOTATION],
            hex::encode(Sha256::digest(b"k1"))
        );
        let other = sample().with_spec("backoffLimit: 5");
        let d = prepare_create("ml", other, Some("k1")).unwrap();
        assert_ne!(
            d.metadata.annotations.unwrap()[REQUEST_HASH_ANNOTATION],
            annotations[REQUEST_HASH_ANNOTATION]
        );
    }

    #[test]
    fn a_name_is_required_and_the_namespace_must_match() {
        let mut body = sample();
        body.metadata = ObjectMeta::default();
        let error = prepare_create("ml", body, None).unwrap_err();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.body().field.as_deref(), Some("metadata.name"));
        let body = sample().in_ns("x");
        let error = prepare_create("ml", body, None).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }
}
