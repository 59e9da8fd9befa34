//! The trainer's side of the status: progress while it fits, then the results or its error,
//! written with server-side apply under the trainer's own field manager. The trainer's
//! ServiceAccount may patch `trainingruns/status` and nothing else, which is all this needs.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kubetrain_api::{DatasetSummary, Metrics, ModelRef, Progress, TrainerError, TrainingRun};
use kubetrain_trainer::{ProgressSink, TrainError, TrainSummary};
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

impl ProgressSink for ProgressForwarder {
    fn report(&self, p: &kubetrain_trainer::Progress) {
        self.progress
            .send_replace(Some(to_status_progress(p, Timestamp::now())));
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

    /// The sink to hand to the trainer.
    pub fn sink(&self) -> ProgressForwarder {
        ProgressForwarder {
            progress: self.progress.clone(),
        }
    }

    /// Record the results of a successful attempt.
    pub async fn succeeded(self, summary: &TrainSummary) -> Result<(), kube::Error> {
        self.writer.abort();
        let progress = final_progress(summary, Timestamp::now());
        apply(&self.api, &self.name, results(summary, progress)).await
    }

    /// Record why an attempt failed.
    pub async fn failed(self, error: &TrainError) -> Result<(), kube::Error> {
        self.writer.abort();
        let last = self.progress.borrow().clone();
        let class = error.class();
        let report = TrainerError {
            reason: format!("{class:?}"),
            message: error.to_string(),
            exit_code: error.exit_code(),
        };
        let mut status = json!({ "trainerError": report });
        if let Some(progress) = last {
            status["progress"] = json!(progress);
        }
        apply(&self.api, &self.name, status).await
    }
}

async fn apply(api: &Api<TrainingRun>, name: &str, status: Value) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": "kubetrain.dev/v1alpha1",
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

/// The progress of a finished fit: every iteration it used, 100 %, the final loss.
pub fn final_progress(summary: &TrainSummary, now: Timestamp) -> Progress {
    let total = summary.params.max_iterations;
    Progress {
        iteration: summary.fit.iterations.unwrap_or(total),
        total,
        percent: 100.0,
        loss: Some(summary.training_loss()),
        estimated_remaining_seconds: Some(0.0),
        updated: Some(Time(now)),
    }
}

/// The status fields the trainer owns after a successful attempt.
pub fn results(summary: &TrainSummary, progress: Progress) -> Value {
    let m = &summary.metrics;
    let macro_f1 = if m.per_class.is_empty() {
        None
    } else {
        Some(m.per_class.iter().map(|c| c.f1).sum::<f64>() / m.per_class.len() as f64)
    };
    let metrics = Metrics {
        evaluated_on: Some(summary.evaluated_on.clone()),
        accuracy: Some(m.accuracy),
        log_loss: Some(m.log_loss),
        macro_f1,
        validation_rows: Some(m.rows),
        training_loss: Some(summary.training_loss()),
        iterations: summary.fit.iterations,
        converged: Some(summary.fit.converged),
    };
    let model = ModelRef {
        uri: summary.model.uri.clone(),
        sha256: summary.model.sha256.clone(),
        bytes: summary.model.bytes,
    };
    let dataset = DatasetSummary {
        rows: summary.dataset.fingerprint.rows,
        features: summary.dataset.features.len() as u64,
        classes: summary.dataset.classes.len() as u64,
        sha256: summary.dataset.fingerprint.sha256.clone(),
    };
    json!({ "progress": progress, "metrics": metrics, "model": model, "dataset": dataset })
}

/// Status progress from one solver report.
pub fn to_status_progress(p: &kubetrain_trainer::Progress, now: Timestamp) -> Progress {
    let total = p.total.max(1);
    let done = p.iteration.min(total);
    let per_iteration = p.elapsed.as_secs_f64() / done.max(1) as f64;
    Progress {
        iteration: p.iteration,
        total: p.total,
        percent: (done as f64 * 100.0 / total as f64 * 10.0).round() / 10.0,
        loss: p.loss.is_finite().then_some(p.loss),
        estimated_remaining_seconds: Some(per_iteration * (total - done) as f64),
        updated: Some(Time(now)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn progress_has_percent_and_an_estimate() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let p = to_status_progress(
            &kubetrain_trainer::Progress {
                iteration: 25,
                total: 200,
                loss: 0.31,
                elapsed: Duration::from_secs(5),
            },
            now,
        );
        assert_eq!(p.percent, 12.5);
        assert_eq!(p.estimated_remaining_seconds, Some(35.0));
        assert_eq!(p.loss, Some(0.31));
        assert_eq!(p.updated, Some(Time(now)));
    }
}
