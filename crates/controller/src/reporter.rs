//! The trainer's side of the status: progress while it fits, then the results or its error,
//! written with server-side apply under the trainer's own field manager. The trainer's
//! ServiceAccount may patch `trainingruns/status` and nothing else, which is all this needs.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kubetrain_api::{Iteration, Progress, TrainerError, TrainerResults, TrainingRun};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

/// Field manager of the trainer's status writes.
pub const FIELD_MANAGER: &str = "kubetrain-trainer";
/// At most one progress write per this interval: the API server is not a metrics pipe.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);
/// The first progress write waits this long, so a fit that ends sooner writes its result
/// only (one status write instead of two; most runs behind an API are short).
pub const FIRST_PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// Reports one training attempt into its TrainingRun's status.
#[derive(Debug)]
pub struct StatusReporter {
    api: Api<TrainingRun>,
    name: String,
    progress: watch::Sender<Option<Progress>>,
    writer: JoinHandle<()>,
}

/// Forwards solver progress to the [`StatusReporter`]'s writer; cheap to call every iteration.
#[derive(Debug, Clone)]
pub struct ProgressForwarder {
    progress: watch::Sender<Option<Progress>>,
}

impl ProgressForwarder {
    /// Record the latest iteration; the writer sends the newest one at its own pace.
    pub fn report(&self, iteration: &Iteration) {
        self.progress
            .send_replace(Some(iteration.status_progress(Timestamp::now())));
    }
}

impl StatusReporter {
    /// Start reporting into TrainingRun `namespace/name`.
    pub fn start(client: Client, namespace: &str, name: &str) -> Self {
        let api: Api<TrainingRun> = Api::namespaced(client, namespace);
        let (progress, mut updates) = watch::channel(None::<Progress>);
        let writer_api = api.clone();
        let writer_name = name.to_owned();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(FIRST_PROGRESS_AFTER).await;
            while updates.changed().await.is_ok() {
                let latest = updates.borrow_and_update().clone();
                if let Some(progress) = latest {
                    let status = json!({ "progress": progress });
                    if let Err(error) = apply(&writer_api, &writer_name, status).await {
                        warn!(%error, "could not report progress");
                    }
                }
                tokio::time::sleep(PROGRESS_INTERVAL).await;
            }
        });
        Self {
            api,
            name: name.to_owned(),
            progress,
            writer,
        }
    }

    /// Where the trainer's iterations go.
    pub fn sink(&self) -> ProgressForwarder {
        ProgressForwarder {
            progress: self.progress.clone(),
        }
    }

    /// Record the results of a successful attempt.
    pub async fn succeeded(self, results: &TrainerResults) -> Result<(), kube::Error> {
        self.writer.abort();
        apply(&self.api, &self.name, json!(results)).await
    }

    /// Record why an attempt failed.
    pub async fn failed(self, report: &TrainerError) -> Result<(), kube::Error> {
        self.writer.abort();
        let last = self.progress.borrow().clone();
        let mut status = json!({ "trainerError": report });
        if let Some(progress) = last {
            status["progress"] = json!(progress);
        }
        apply(&self.api, &self.name, status).await
    }
}

async fn apply(api: &Api<TrainingRun>, name: &str, status: Value) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": kubetrain_api::API_VERSION,
        "kind": "TrainingRun",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(drop)
}
