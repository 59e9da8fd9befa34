//! The route table: every endpoint with its handler and its OpenAPI operation, so the
//! document at `/openapi.json` and the router are built from the same list.

use axum::http::{HeaderMap, Method};
use axum::routing::{MethodRouter, delete, get, post};
use kubetrain_api::{ModelRef, TrainingRun};

use crate::backend::{Access, Caller};
use crate::error::ApiError;
use crate::extract::bearer_token;
use crate::models::ready_model;
use crate::openapi::{Body, Operation, TrainingRunDoc, json, json_schema};
use crate::state::AppState;

pub(crate) mod changes;
pub(crate) mod datasets;
pub(crate) mod events;
pub(crate) mod model;
pub(crate) mod predict;
pub(crate) mod probes;
pub(crate) mod runs;
pub(crate) mod seed;
pub(crate) mod summary;

/// How the server bounds an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Request timeout and concurrency limit.
    Bounded,
    /// Concurrency limit only: the answer streams for as long as it needs (SSE, downloads,
    /// uploads).
    Streaming,
    /// Neither: health probes, metrics and the API document must answer under load.
    Probe,
}

/// One route: where, how it is bounded, what it does and its documentation.
pub(crate) struct Endpoint {
    pub operation: Operation,
    pub class: Class,
    pub handler: MethodRouter<AppState>,
}

const RUNS: &str = "/v1/namespaces/{namespace}/trainingruns";
const RUN: &str = "/v1/namespaces/{namespace}/trainingruns/{name}";

/// Every route of the gateway.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    use Class::*;
    let run_errors: &[u16] = &[400, 401, 403, 404, 500, 503, 504];
    vec![
        Endpoint {
            operation: Operation::new(Method::POST, RUNS, "createTrainingRun", "runs")
                .summary("Create a TrainingRun (metadata.name or metadata.generateName)")
                .description(
                    "With an Idempotency-Key header a retry returns the run the first request \
                     created (200); the same key with a different body is 409.",
                )
                .header_param(
                    "Idempotency-Key",
                    "Makes the create safe to retry: the same key returns the same run.",
                )
                .request(json::<TrainingRunDoc>())
                .reply(201, "The created run.", json::<TrainingRunDoc>())
                .reply(
                    200,
                    "The run an earlier request with the same Idempotency-Key created.",
                    json::<TrainingRunDoc>(),
                )
                .errors(&[400, 401, 403, 409, 413, 415, 422, 500, 503, 504]),
            class: Bounded,
            handler: post(runs::create),
        },
        Endpoint {
            operation: Operation::new(Method::GET, RUNS, "listTrainingRuns", "runs")
                .summary("List TrainingRuns, filtered by phase and label selector, paginated")
                .query_param_enum(
                    "phase",
                    "Only runs in this phase.",
                    &["Pending", "Queued", "Running", "Succeeded", "Failed", "Cancelled"],
                )
                .query_param("labelSelector", "A Kubernetes label selector, e.g. app=churn,tier!=dev.")
                .query_param_integer("limit", "At most this many runs (at least 1).")
                .query_param("continue", "The continue token of the previous page.")
                .reply(200, "One page of runs.", json::<runs::RunListBody>())
                .errors(&[400, 401, 403, 500, 503, 504]),
            class: Bounded,
            handler: get(runs::list),
        },
        Endpoint {
            operation: Operation::new(Method::GET, RUN, "getTrainingRun", "runs")
                .summary("Read a TrainingRun")
                .reply(200, "The run.", json::<TrainingRunDoc>())
                .errors(run_errors),
            class: Bounded,
            handler: get(runs::get),
        },
        Endpoint {
            operation: Operation::new(Method::DELETE, RUN, "deleteTrainingRun", "runs")
                .summary("Delete a TrainingRun (its model stays in storage)")
                .reply(200, "The run as last seen.", json::<TrainingRunDoc>())
                .errors(&[400, 401, 403, 404, 409, 500, 503, 504]),
            class: Bounded,
            handler: delete(runs::delete),
        },
        Endpoint {
            operation: Operation::new(
                Method::POST,
                "/v1/namespaces/{namespace}/trainingruns/{name}/cancel",
                "cancelTrainingRun",
                "runs",
            )
            .summary("Cancel a TrainingRun (sets spec.cancel; it ends Cancelled)")
            .reply(200, "The run.", json::<TrainingRunDoc>())
            .errors(&[400, 401, 403, 404, 409, 500, 503, 504]),
            class: Bounded,
            handler: post(runs::cancel),
        },
        Endpoint {
            operation: Operation::new(Method::GET, "/v1/namespaces/{namespace}/trainingruns/{name}/events", "watchTrainingRun", "runs")
                .summary("Follow a run: Server-Sent Events of its changes, ending after the terminal phase")
                .description(
                    "Each event is `event: run`, `id: <resourceVersion>`, `data: <TrainingRun JSON>`. \
                     The first event is the current state; the stream ends after an event with phase \
                     Succeeded, Failed or Cancelled, or when the run is deleted.",
                )
                .reply(200, "The event stream.", Body::EventStream {
                    events: &[events::EVENT_NAME],
                    data: json_schema::<TrainingRunDoc>,
                    empty: &[],
                })
                .errors(run_errors),
            class: Streaming,
            handler: get(events::events),
        },
        Endpoint {
            operation: Operation::new(Method::GET, "/v1/namespaces/{namespace}/trainingruns/{name}/model", "getModel", "runs")
                .summary("Download the run's model file (streamed from storage)")
                .description(
                    "Headers: Content-Length, ETag \"sha256:<hex>\" and X-Model-Sha256 from status.model. \
                     409 while the run has no model.",
                )
                .reply(200, "The model file: kubetrain's model JSON, or for a custom run the program's main model file as it wrote it (application/octet-stream).", Body::AnyJson)
                .errors(&[400, 401, 403, 404, 409, 500, 502, 503]),
            class: Streaming,
            handler: get(model::download),
        },
        Endpoint {
            operation: Operation::new(Method::GET, "/v1/namespaces/{namespace}/trainingruns/{name}/summary", "getSummary", "runs")
                .summary("Read the run's summary.json: metrics (with the confusion matrix), feature weights, loss per iteration, dataset, timings")
                .description(
                    "Read from <spec.output.uri>/summary.json, written after the model. 409 while \
                     the run has no model. A custom run's summary is the one `kubetrain exec` \
                     wrote (its files with their sha256, the program's metrics).",
                )
                .reply(200, "The summary as the trainer wrote it.", Body::AnyJson)
                .errors(&[400, 401, 403, 404, 409, 500, 502, 503, 504]),
            class: Bounded,
            handler: get(summary::summary),
        },
        Endpoint {
            operation: Operation::new(Method::GET, "/v1/watch/namespaces/{namespace}/trainingruns", "watchTrainingRuns", "runs")
                .summary("Follow every run of a namespace: Server-Sent Events of their changes")
                .description(
                    "`event: resync` (data `{}`) first and whenever changes may have been missed: \
                     list the runs again. `event: run` (`id: <resourceVersion>`, data: the run) \
                     replaces the run of that name; `event: deleted` (data: the run as last seen) \
                     removes it, also when it no longer matches labelSelector. Needs permission \
                     to watch trainingruns in the namespace.",
                )
                .query_param("labelSelector", "Only runs whose labels match, e.g. app=churn,tier!=dev.")
                .query_param_range("timeoutSeconds", "End the stream after this many seconds (the default and most: 1800); open it again to go on.", changes::MAX_TIMEOUT_SECONDS)
                .reply(200, "The event stream.", Body::EventStream {
                    events: &[changes::RESYNC_EVENT, events::EVENT_NAME, changes::DELETED_EVENT],
                    data: json_schema::<TrainingRunDoc>,
                    empty: &[changes::RESYNC_EVENT],
                })
                .errors(&[400, 401, 403, 500, 503]),
            class: Streaming,
            handler: get(changes::changes),
        },
        Endpoint {
            operation: Operation::new(Method::POST, "/v1/namespaces/{namespace}/trainingruns/{name}/predict", "predict", "runs")
                .summary("Predict rows with the run's model")
                .description(
                    "Each row holds the raw values of the model's featureNames, in that order \
                     (the training columns without the label). A classifier answers the \
                     predicted class label of each row and the probabilities in classLabels \
                     order; a regressor answers the predicted value of each row (values); \
                     exactly as `kubetrain predict` computes them. A custom run (spec.custom) \
                     answers 409 unless its program wrote a kubetrain model file (model.json): \
                     its model is served by the user's own stack.",
                )
                .request(json::<predict::PredictRequest>())
                .reply(200, "The predictions.", json::<predict::PredictResponse>())
                .errors(&[400, 401, 403, 404, 409, 413, 415, 422, 500, 502, 503, 504]),
            class: Bounded,
            handler: post(predict::predict),
        },
        Endpoint {
            operation: Operation::new(
                Method::POST,
                "/v1/namespaces/{namespace}/datasets",
                "uploadDataset",
                "datasets",
            )
            .summary("Upload a CSV dataset to the staging location; answers its URI")
            .description("Needs permission to create trainingruns in the namespace.")
            .request(Body::Csv)
            .reply(201, "Where the dataset was stored.", json::<datasets::DatasetUploaded>())
            .errors(&[400, 401, 403, 413, 422, 500, 501, 503]),
            class: Streaming,
            handler: post(datasets::upload),
        },
        seed_train("/train/", "seedTrain"),
        seed_train("/train", "seedTrainNoSlash"),
        Endpoint {
            operation: Operation::new(Method::GET, "/status/{task_id}", "seedStatus", "seed")
                .summary("The seed API: the state of a training task")
                .reply(200, "The task's status.", json::<seed::SeedStatus>())
                .errors(&[400, 401, 403, 404, 500, 503, 504]),
            class: Bounded,
            handler: get(seed::status),
        },
        Endpoint {
            operation: Operation::new(Method::GET, "/healthz", "healthz", "probes")
                .summary("Liveness: 200 while the process serves")
                .reply(200, "Alive.", Body::Text),
            class: Probe,
            handler: get(probes::healthz),
        },
        Endpoint {
            operation: Operation::new(Method::GET, "/readyz", "readyz", "probes")
                .summary("Readiness: 200 when the backend can serve requests")
                .reply(200, "Ready.", Body::Text)
                .errors(&[503]),
            class: Probe,
            handler: get(probes::readyz),
        },
        Endpoint {
            operation: Operation::new(Method::GET, "/metrics", "metrics", "probes")
                .summary("Prometheus metrics: requests and latency by route, method and status")
                .reply(200, "Prometheus text format.", Body::Text),
            class: Probe,
            handler: get(probes::metrics),
        },
        Endpoint {
            operation: Operation::new(Method::GET, "/openapi.json", "openapi", "probes")
                .summary("This document")
                .reply(200, "The OpenAPI 3.1 document.", Body::AnyJson),
            class: Probe,
            handler: get(probes::openapi),
        },
    ]
}

fn seed_train(path: &'static str, id: &'static str) -> Endpoint {
    Endpoint {
        operation: Operation::new(Method::POST, path, id, "seed")
            .summary("The seed API: train on inline features and labels; answers a task id")
            .description(
                "Body as the seed service took it: features, labels, test_size (0.2), \
                 random_state (42), C (1.0, mapped to l2Penalty = 1/C), max_iter (1000). \
                 Creates a TrainingRun in the gateway's seed namespace; the task id is its name.",
            )
            .request(json::<seed::SeedTrainRequest>())
            .reply(200, "The task id.", json::<seed::SeedTask>())
            .errors(&[400, 401, 403, 413, 415, 422, 500, 501, 503, 504]),
        class: Class::Bounded,
        handler: post(seed::train),
    }
}

/// Authenticate the request and check it may do `verb` on trainingruns in `namespace`.
pub(crate) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    verb: &'static str,
    namespace: &str,
    name: Option<&str>,
) -> Result<Caller, ApiError> {
    let access = Access {
        verb,
        resource: "trainingruns",
        namespace: namespace.to_owned(),
        name: name.map(str::to_owned),
    };
    Ok(state.auth.authorize(bearer_token(headers), &access).await?)
}

/// Check the namespace and run name of the path, then authorize `verb` on that run.
pub(crate) async fn authorize_run(
    state: &AppState,
    headers: &HeaderMap,
    verb: &'static str,
    namespace: &str,
    name: &str,
) -> Result<Caller, ApiError> {
    check_namespace(namespace)?;
    check_name(name)?;
    authorize(state, headers, verb, namespace, Some(name)).await
}

/// The run `namespace/name` the caller may `get`, with its `status.model` (409 while it has
/// none): what every route about a run's model starts with.
pub(crate) async fn run_with_model(
    state: &AppState,
    headers: &HeaderMap,
    namespace: &str,
    name: &str,
) -> Result<(TrainingRun, ModelRef), ApiError> {
    authorize_run(state, headers, "get", namespace, name).await?;
    let run = state.backend.get(namespace, name).await?;
    let model = ready_model(&run)?.clone();
    Ok((run, model))
}

/// A namespace must be a DNS-1123 label (what Kubernetes accepts).
pub(crate) fn check_namespace(namespace: &str) -> Result<(), ApiError> {
    if kubetrain_api::names::is_dns1123_label(namespace) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "namespace: \"{}\" is not a valid namespace name: lowercase letters, digits and \
             '-', starting and ending with a letter or digit, at most 63 characters",
            shorten(namespace)
        )))
    }
}

/// A run name must be a DNS-1123 subdomain (what Kubernetes accepts for custom resources).
pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    if kubetrain_api::names::is_dns1123_subdomain(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "name: \"{}\" is not a valid run name: lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit, at most 253 characters",
            shorten(name)
        )))
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kubernetes_rules() {
        assert!(check_namespace("ml-2").is_ok());
        assert!(check_namespace(&"a".repeat(64)).is_err());
        assert!(check_namespace("Ml").is_err());
        // Run names are subdomains: 253 characters, dot-separated parts of any length.
        assert!(check_name(&format!("a.{}", "0".repeat(200))).is_ok());
        assert!(check_name(&"a".repeat(254)).is_err());
        assert!(check_name("a..b").is_err());
        assert!(check_name("-a").is_err());
        assert!(check_name("").is_err());
    }
}
