//! Test-only helpers: an in-memory `Runs` backend and request helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use futures::stream::BoxStream;
use http_body_util::BodyExt;
use kubetrain_api::{TrainingRun, TrainingRunStatus};
use kubetrain_gateway::watch::{RunChange, namespace_feed};
use kubetrain_gateway::{
    AppState, Authorizer, BackendError, FieldError, GatewayConfig, ListQuery, NoAuth, RunList, Runs,
};
use tokio::sync::broadcast;
use tower::ServiceExt;

type Key = (String, String);

/// Runs in memory. Names are unique per namespace; `generateName` gets 5 characters; lists
/// are paged by the same `listing::page` the real backends use.
#[derive(Debug)]
pub struct FakeRuns {
    runs: Mutex<BTreeMap<Key, TrainingRun>>,
    version: AtomicU64,
    /// Each change: the run's key, the run, whether it was deleted.
    changes: broadcast::Sender<(Key, TrainingRun, bool)>,
    pub unavailable: AtomicBool,
    pub not_ready: AtomicBool,
    /// When set, `get` waits for a permit of this semaphore (after counting itself in
    /// `entered`), so tests can hold requests in flight.
    pub hold: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    pub entered: AtomicU64,
}

impl Default for FakeRuns {
    fn default() -> Self {
        FakeRuns {
            runs: Mutex::default(),
            version: AtomicU64::new(1),
            changes: broadcast::channel(1024).0,
            unavailable: AtomicBool::new(false),
            not_ready: AtomicBool::new(false),
            hold: Mutex::default(),
            entered: AtomicU64::new(0),
        }
    }
}

impl FakeRuns {
    fn check(&self) -> Result<(), BackendError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(BackendError::Unavailable(
                "connection refused (fake)".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn store(&self, key: Key, mut run: TrainingRun) -> TrainingRun {
        let version = self.version.fetch_add(1, Ordering::SeqCst);
        run.metadata.resource_version = Some(version.to_string());
        self.runs.lock().unwrap().insert(key.clone(), run.clone());
        let _ = self.changes.send((key, run.clone(), false));
        run
    }

    /// Replace the status of a run (as the controller would) and notify watchers.
    pub fn set_status(
        &self,
        namespace: &str,
        name: &str,
        status: TrainingRunStatus,
    ) -> TrainingRun {
        let key = (namespace.to_owned(), name.to_owned());
        let mut run = self
            .runs
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .expect("run exists");
        run.status = Some(status);
        self.store(key, run)
    }

    pub fn get_now(&self, namespace: &str, name: &str) -> Option<TrainingRun> {
        self.runs
            .lock()
            .unwrap()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    pub fn count(&self) -> usize {
        self.runs.lock().unwrap().len()
    }

    /// Watchers currently subscribed.
    pub fn watchers(&self) -> usize {
        self.changes.receiver_count()
    }
}

fn not_found(namespace: &str, name: &str) -> BackendError {
    BackendError::NotFound {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

#[async_trait::async_trait]
impl Runs for FakeRuns {
    async fn create(
        &self,
        namespace: &str,
        mut run: TrainingRun,
    ) -> Result<TrainingRun, BackendError> {
        self.check()?;
        assert_eq!(run.metadata.namespace.as_deref(), Some(namespace));
        if run.spec.backoff_limit > 100 {
            return Err(BackendError::Invalid(vec![FieldError {
                field: "spec.backoffLimit".into(),
                message: "must be at most 100".into(),
            }]));
        }
        let name = match (&run.metadata.name, &run.metadata.generate_name) {
            (Some(name), _) if !name.is_empty() => name.clone(),
            (_, Some(prefix)) => {
                let suffix = uuid::Uuid::new_v4().simple().to_string();
                format!("{prefix}{}", &suffix[..5])
            }
            _ => panic!("the gateway passed a run without a name"),
        };
        let key = (namespace.to_owned(), name.clone());
        if self.runs.lock().unwrap().contains_key(&key) {
            return Err(BackendError::AlreadyExists {
                namespace: namespace.to_owned(),
                name,
            });
        }
        run.metadata.name = Some(name);
        run.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
        run.status.get_or_insert_with(Default::default).phase = Some(kubetrain_api::Phase::Pending);
        Ok(self.store(key, run))
    }

    async fn get(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        self.check()?;
        let hold = self.hold.lock().unwrap().clone();
        if let Some(hold) = hold {
            self.entered.fetch_add(1, Ordering::SeqCst);
            let _permit = hold.acquire().await.unwrap();
        }
        self.get_now(namespace, name)
            .ok_or_else(|| not_found(namespace, name))
    }

    async fn list(&self, namespace: &str, query: &ListQuery) -> Result<RunList, BackendError> {
        self.check()?;
        let runs = self.runs.lock().unwrap();
        kubetrain_gateway::listing::page(runs.values(), namespace, query)
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        self.check()?;
        let key = (namespace.to_owned(), name.to_owned());
        let run = self
            .runs
            .lock()
            .unwrap()
            .remove(&key)
            .ok_or_else(|| not_found(namespace, name))?;
        let _ = self.changes.send((key, run.clone(), true));
        Ok(run)
    }

    async fn cancel(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError> {
        self.check()?;
        let mut run = self.get(namespace, name).await?;
        run.spec.cancel = true;
        Ok(self.store((namespace.to_owned(), name.to_owned()), run))
    }

    async fn watch(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BoxStream<'static, TrainingRun>, BackendError> {
        self.check()?;
        let key = (namespace.to_owned(), name.to_owned());
        let receiver = self.changes.subscribe();
        let current = self.get(namespace, name).await?;
        let changes = futures::stream::unfold(receiver, move |mut receiver| {
            let key = key.clone();
            async move {
                loop {
                    match receiver.recv().await {
                        Ok((changed, run, deleted)) if changed == key => {
                            return (!deleted).then_some((run, receiver));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(Box::pin(
            futures::stream::once(async move { current }).chain(changes),
        ))
    }

    async fn watch_namespace(
        &self,
        namespace: &str,
    ) -> Result<BoxStream<'static, RunChange>, BackendError> {
        self.check()?;
        let namespace = namespace.to_owned();
        Ok(namespace_feed(
            self.changes.subscribe(),
            move |(key, run, deleted): &(Key, TrainingRun, bool)| {
                (key.0 == namespace).then(|| {
                    if *deleted {
                        RunChange::Deleted(Box::new(run.clone()))
                    } else {
                        RunChange::Applied(Box::new(run.clone()))
                    }
                })
            },
        ))
    }

    async fn ready(&self) -> bool {
        !self.not_ready.load(Ordering::SeqCst)
    }
}

use futures::StreamExt;

/// The answer's Content-Type ("" when there is none).
pub fn content_type(response: &Response<Body>) -> String {
    response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A gateway over a fresh fake backend.
pub struct Gateway {
    pub runs: Arc<FakeRuns>,
    pub router: axum::Router,
}

pub fn gateway_with(auth: Arc<dyn Authorizer>, config: GatewayConfig) -> Gateway {
    let runs = Arc::new(FakeRuns::default());
    let state = AppState::new(runs.clone(), auth, config);
    Gateway {
        router: kubetrain_gateway::app(state),
        runs,
    }
}

pub fn gateway() -> Gateway {
    gateway_with(Arc::new(NoAuth), GatewayConfig::default())
}

impl Gateway {
    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// Send and read the whole answer: status, content type, bytes.
    pub async fn raw(&self, request: Request<Body>) -> (StatusCode, String, bytes::Bytes) {
        let response = self.send(request).await;
        let status = response.status();
        let content_type = content_type(&response);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, bytes)
    }

    /// Send and read the whole answer as JSON.
    pub async fn json(&self, request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = self.send(request).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (status, value)
    }
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub fn post_json(uri: &str, body: &serde_json::Value) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

pub fn run_body(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "kubetrain.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {
            "algorithm": {"logisticRegression": {}},
            "dataset": {"uri": "s3://data/churn.csv"},
            "output": {"uri": "s3://models/churn/"}
        }
    })
}

/// Assert an error answer has the JSON error body with `code` = the status.
pub fn assert_error(status: StatusCode, body: &serde_json::Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], expected.as_u16(), "{body}");
    assert!(body["reason"].is_string(), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
