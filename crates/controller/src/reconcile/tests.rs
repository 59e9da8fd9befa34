//! The reconcile against a mocked API server (`tower_test`): every write it makes, with its
//! method, path and body, for each I/O branch of the pipeline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::client::Body;
use kube::runtime::reflector;
use kube::runtime::watcher;
use kubetrain_api::TrainingRun;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use super::*;
use crate::fixtures::job;

const JOBS: &str = "/apis/batch/v1/namespaces/ml/jobs";
const RUNS: &str = "/apis/kubetrain.dev/v1alpha1/namespaces/ml/trainingruns";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ml/events";
const SERVICE_ACCOUNTS: &str = "/api/v1/namespaces/ml/serviceaccounts";
const ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/ml/roles";
const ROLE_BINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/ml/rolebindings";

/// One request the fake API server answered.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    body: Value,
}

impl Seen {
    fn is(&self, method: &Method, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

/// A status code and body to answer with.
type Answer = (u16, Value);

/// An API server that answers each request with `answer` (or, where it returns `None`, as a
/// plain API server would: creates and patches echo the object) and records every request.
struct FakeApiServer {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeApiServer {
    fn start(
        run: &TrainingRun,
        answer: impl Fn(&Seen) -> Option<Answer> + Send + 'static,
    ) -> (Client, FakeApiServer) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let run = serde_json::to_value(run).unwrap();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let request = Seen {
                    method: parts.method,
                    path: parts.uri.path().to_owned(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                let (code, body) =
                    answer(&request).unwrap_or_else(|| default_answer(&request, &run));
                record.lock().unwrap().push(request);
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
                respond.send_response(response);
            }
        });
        (Client::new(service, "default"), FakeApiServer { seen })
    }

    /// Every request answered so far, except Events (they are published in the background;
    /// see [`FakeApiServer::event`]).
    fn writes(&self) -> Vec<(Method, String)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| !s.path.starts_with(EVENTS))
            .map(|s| (s.method.clone(), s.path.clone()))
            .collect()
    }

    fn request(&self, method: &Method, path: &str) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.is(method, path))
            .cloned()
    }

    /// The Event with `reason`, waiting for its background publish for at most 10 s.
    async fn event(&self, reason: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.seen.lock().unwrap().iter().find_map(|s| {
                (s.path.starts_with(EVENTS) && s.body["reason"] == reason).then(|| s.body.clone())
            });
            if let Some(event) = found {
                return event;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {reason} Event; requests: {:?}",
                self.writes()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What a plain API server answers: the object created or patched (with a name), a status
/// write as the run with that status, a delete as a Status.
fn default_answer(request: &Seen, run: &Value) -> Answer {
    match request.method {
        Method::POST => {
            let mut object = request.body.clone();
            object["metadata"]["namespace"] = json!("ml");
            (201, object)
        }
        Method::PATCH if request.path.ends_with("/status") => {
            let mut written = run.clone();
            written["status"] = request.body["status"].clone();
            (200, written)
        }
        Method::PATCH => {
            let mut job = serde_json::to_value(job("{}")).unwrap();
            job["spec"] = request.body["spec"].clone();
            job["spec"]["template"] = json!({});
            (200, job)
        }
        Method::DELETE => (
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
        _ => (404, not_found()),
    }
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

fn status(code: u16, reason: &str, message: &str) -> Answer {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": message}),
    )
}

fn context(client: Client, jobs: &[Job]) -> Arc<Context> {
    let (job_store, mut job_writer) = reflector::store::<JobView>();
    for job in jobs {
        let view: JobView = serde_json::from_value(serde_json::to_value(job).unwrap()).unwrap();
        job_writer.apply_watcher_event(&watcher::Event::Apply(view));
    }
    let (pods, _) = reflector::store::<Pod>();
    let settings = JobSettings {
        trainer_image: "ghcr.io/kubetrain/kubetrain:0.1.0".to_owned(),
        storage_endpoint: None,
        storage_region: None,
        default_requests: BTreeMap::from([("cpu".to_owned(), Quantity("1".to_owned()))]),
    };
    let metrics = Arc::new(Metrics::register(&mut Registry::default()));
    Arc::new(Context::new(client, settings, job_store, pods, metrics))
}

/// The run's Job as the cache would hold it, suspended or not.
fn existing_job(run: &TrainingRun, suspend: bool) -> Job {
    let mut job = job("{}");
    job.metadata.name = Some(job_name(run));
    job.spec.as_mut().unwrap().suspend = Some(suspend);
    job
}

fn job_path(run: &TrainingRun) -> String {
    format!("{JOBS}/{}", job_name(run))
}

#[tokio::test]
async fn a_new_run_gets_trainer_rbac_a_job_a_status_and_an_event() {
    let run = TrainingRun::test("churn");
    let (client, api) = FakeApiServer::start(&run, |_| None);
    let ctx = context(client, &[]);
    reconcile(Arc::new(run.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        api.writes(),
        [
            (Method::POST, SERVICE_ACCOUNTS.to_owned()),
            (Method::POST, ROLES.to_owned()),
            (Method::POST, ROLE_BINDINGS.to_owned()),
            (Method::POST, JOBS.to_owned()),
            (Method::PATCH, format!("{RUNS}/churn/status")),
        ]
    );
    let job = api.request(&Method::POST, JOBS).unwrap().body;
    assert_eq!(job["metadata"]["name"], job_name(&run));
    let status = api
        .request(&Method::PATCH, &format!("{RUNS}/churn/status"))
        .unwrap()
        .body;
    assert_eq!(status["status"]["phase"], "Pending");
    assert_eq!(status["status"]["jobName"], job_name(&run));
    let event = api.event("CreatedJob").await;
    assert_eq!(event["type"], "Normal");

    // A second run in the namespace: the trainer RBAC is created once per namespace.
    let second = TrainingRun::test("second").with_uid("second-uid");
    reconcile(Arc::new(second.clone()), ctx).await.unwrap();
    let rbac = api
        .writes()
        .into_iter()
        .filter(|(_, path)| path == SERVICE_ACCOUNTS || path == ROLES || path == ROLE_BINDINGS)
        .count();
    assert_eq!(rbac, 3);
}

#[tokio::test]
async fn a_job_created_before_is_read_instead_and_not_announced_again() {
    let run = TrainingRun::test("churn").with_spec("serviceAccountName: own");
    let path = job_path(&run);
    let existing = serde_json::to_value(existing_job(&run, false)).unwrap();
    let (client, api) = FakeApiServer::start(&run, move |request| {
        if request.is(&Method::POST, JOBS) {
            return Some(status(409, "AlreadyExists", "jobs.batch already exists"));
        }
        request
            .is(&Method::GET, &path)
            .then(|| (200, existing.clone()))
    });
    let ctx = context(client, &[]);
    reconcile(Arc::new(run.clone()), ctx.clone()).await.unwrap();
    assert_eq!(
        api.writes(),
        [
            (Method::POST, JOBS.to_owned()),
            (Method::GET, job_path(&run)),
            (Method::PATCH, format!("{RUNS}/churn/status")),
        ],
        "a run with its own service account gets no trainer RBAC"
    );
    // Nothing announces a Job this reconcile did not create: an Event published after the
    // reconcile arrives, and none before it.
    publish(
        &ctx,
        &run,
        PlannedEvent {
            type_: EventType::Normal,
            reason: "Barrier".to_owned(),
            note: String::new(),
        },
    );
    api.event("Barrier").await;
    assert!(
        !api.seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.body["reason"] == "CreatedJob")
    );
}

#[tokio::test]
async fn an_unchanged_status_is_not_written_again() {
    let fresh = TrainingRun::test("churn");
    let (client, api) = FakeApiServer::start(&fresh, |_| None);
    let ctx = context(client, &[]);
    reconcile(Arc::new(fresh.clone()), ctx.clone())
        .await
        .unwrap();
    let written = api
        .request(&Method::PATCH, &format!("{RUNS}/churn/status"))
        .unwrap()
        .body;
    let mut seen = fresh;
    seen.metadata.resource_version = Some("2".to_owned());
    seen.status = Some(serde_json::from_value(written["status"].clone()).unwrap());
    let before = api.writes().len();
    reconcile(Arc::new(seen), ctx).await.unwrap();
    assert_eq!(api.writes().len(), before, "{:?}", api.writes());
}

#[tokio::test]
async fn a_suspended_run_suspends_its_job() {
    let run = TrainingRun::test("churn").with_spec("suspend: true");
    let (client, api) = FakeApiServer::start(&run, |_| None);
    let job = existing_job(&run, false);
    reconcile(Arc::new(run.clone()), context(client, &[job]))
        .await
        .unwrap();
    let patch = api.request(&Method::PATCH, &job_path(&run)).unwrap();
    assert_eq!(patch.body, json!({"spec": {"suspend": true}}));
    assert!(api.request(&Method::POST, JOBS).is_none());
}

#[tokio::test]
async fn a_cancelled_runs_job_is_deleted_and_one_already_gone_is_fine() {
    let run = TrainingRun::test("churn")
        .with_spec("cancel: true")
        .with_status("{phase: Cancelled, completionTime: '2026-01-01T12:00:00Z'}");
    let path = job_path(&run);
    let (client, api) = FakeApiServer::start(&run, move |request| {
        request
            .is(&Method::DELETE, &path)
            .then(|| (404, not_found()))
    });
    let job = existing_job(&run, false);
    reconcile(Arc::new(run.clone()), context(client, &[job]))
        .await
        .unwrap();
    assert!(api.request(&Method::DELETE, &job_path(&run)).is_some());
}

#[tokio::test]
async fn a_finished_run_past_its_ttl_is_deleted_even_if_already_gone() {
    let run = TrainingRun::test("churn")
        .with_spec("ttlSecondsAfterFinished: 60")
        .with_status("{phase: Succeeded, completionTime: '2026-01-01T12:00:00Z'}");
    for answer in [200, 404] {
        let (client, api) = FakeApiServer::start(&run, move |request| {
            (request.method == Method::DELETE).then(|| match answer {
                404 => (404, not_found()),
                _ => (
                    200,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                ),
            })
        });
        let action = reconcile(Arc::new(run.clone()), context(client, &[]))
            .await
            .unwrap();
        assert_eq!(action, Action::await_change());
        assert_eq!(
            api.writes(),
            [(Method::DELETE, format!("{RUNS}/churn"))],
            "answer {answer}"
        );
    }
}

#[tokio::test]
async fn a_failed_step_is_its_own_error_and_a_warning_event_on_the_run() {
    let run = TrainingRun::test("churn").with_spec("serviceAccountName: own");
    let (client, api) = FakeApiServer::start(&run, |request| {
        request.is(&Method::POST, JOBS).then(|| {
            status(
                403,
                "Forbidden",
                "jobs.batch is forbidden: User \"kubetrain\" cannot create resource \"jobs\"",
            )
        })
    });
    let ctx = context(client, &[]);
    let error = reconcile(Arc::new(run.clone()), ctx.clone())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::CreateJob { .. }), "{error:?}");
    assert!(
        api.request(&Method::PATCH, &format!("{RUNS}/churn/status"))
            .is_none(),
        "a failed step stops the pipeline"
    );
    let action = error_policy(Arc::new(run), &error, ctx);
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
    let event = api.event("CreateJobFailed").await;
    assert_eq!(event["type"], "Warning");
    let note = event["note"].as_str().unwrap();
    assert!(note.starts_with("cannot create Job churn-"), "{note}");
    assert!(note.contains("cannot create resource"), "{note}");
}

#[tokio::test]
async fn a_status_write_that_fails_is_reported_as_such() {
    let run = TrainingRun::test("churn").with_spec("serviceAccountName: own");
    let (client, _api) = FakeApiServer::start(&run, |request| {
        (request.method == Method::PATCH)
            .then(|| status(500, "InternalError", "etcdserver: request timed out"))
    });
    let error = reconcile(Arc::new(run), context(client, &[]))
        .await
        .unwrap_err();
    assert_eq!(error.category(), "WriteStatusFailed");
}
