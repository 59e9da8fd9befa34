//! The reconcile of one run, as a pipeline:
//!
//! 1. observe: the run (newer of cache and own writes), its Job and Pods from the caches;
//! 2. plan (pure, [`plan`]): expire, create or (un)suspend the Job;
//! 3. apply ([`apply`]): those writes;
//! 4. decide (pure, [`crate::status::decide`]): the controller's status, whether to delete
//!    the Job, when to look again;
//! 5. write: delete the Job if decided, the status if it changed;
//! 6. record: Events and metrics.
//!
//! A failed step is an [`Error`] of its own; [`error_policy`] leaves it on the run as a
//! Warning Event whose reason is [`Error::category`].

pub mod apply;
pub mod plan;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use kubetrain_api::{TrainingRun, validate_spec};
use tokio::sync::OnceCell;
use tracing::{info, warn};

use self::apply::Created;
use self::plan::{JobChange, PlannedEvent};
use crate::Error;
use crate::error::event_note;
use crate::job::{JobSettings, RUN_LABEL, job_name};
use crate::job_view::JobView;
use crate::metrics::Metrics;
use crate::status::{Decision, Observed, decide};
use crate::written::Written;

/// Field manager of everything the controller writes.
pub const FIELD_MANAGER: &str = "kubetrain-controller";

/// What reconcile needs.
pub struct Context {
    client: Client,
    settings: JobSettings,
    recorder: Recorder,
    jobs: Store<JobView>,
    pods: Store<Pod>,
    metrics: Arc<Metrics>,
    /// Per namespace: set once its trainer RBAC exists. Concurrent reconciles in a new
    /// namespace wait for the first one's creates instead of repeating them.
    provisioned: Mutex<HashMap<String, Arc<OnceCell<()>>>>,
    /// The controller's own writes until the caches show them.
    written: Written,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for `client` with `settings`, reading Jobs and Pods from caches.
    pub fn new(
        client: Client,
        settings: JobSettings,
        jobs: Store<JobView>,
        pods: Store<Pod>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.to_owned(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Self {
            client,
            settings,
            recorder,
            jobs,
            pods,
            metrics,
            provisioned: Mutex::new(HashMap::new()),
            written: Written::default(),
        }
    }
}

/// Reconcile, timed and counted.
pub async fn reconcile(run: Arc<TrainingRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_run(run, &ctx).await;
    Metrics::observe(&ctx.metrics.reconcile_duration, started.elapsed());
    if let Err(error) = &result {
        ctx.metrics.error(error.action());
    }
    result
}

/// Leave a failed reconcile on its run as a Warning Event and requeue after a short pause; a
/// run whose namespace is being deleted waits for its deletion instead (nothing can be
/// created there any more).
pub fn error_policy(run: Arc<TrainingRun>, error: &Error, ctx: Arc<Context>) -> Action {
    if error.namespace_terminating() {
        // Retrying cannot succeed; the run's deletion with its namespace ends this.
        info!(run = %run.name_any(), namespace = run.namespace().unwrap_or_default(),
            "the namespace is being deleted; leaving the run to go with it");
        return Action::await_change();
    }
    let note = event_note(error);
    warn!(run = %run.name_any(), error = %note, "reconcile error; retrying");
    publish(
        &ctx,
        &run,
        PlannedEvent {
            type_: EventType::Warning,
            reason: error.category().to_owned(),
            note,
        },
    );
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile_run(run: Arc<TrainingRun>, ctx: &Context) -> Result<Action, Error> {
    let run = ctx.written.run(run);
    let namespace = run.namespace().ok_or(Error::NotNamespaced)?;
    let now = Timestamp::now();
    if plan::expired(&run, now) {
        info!(run = %run.name_any(), "ttlSecondsAfterFinished passed; deleting the run");
        apply::delete_run(ctx, &run, &namespace).await?;
        return Ok(Action::await_change());
    }
    let invalid = validate_spec(&run.spec).err().map(|e| e.to_string());
    let job = observe_job(ctx, &run, &namespace);
    let job = match plan::job_change(&run, job.as_ref(), invalid.is_some()) {
        JobChange::Create => Some(create_job(ctx, &run, &namespace, now).await?),
        JobChange::Suspend(suspend) => match &job {
            Some(existing) => Some(apply::suspend_job(ctx, existing, suspend).await?),
            None => None,
        },
        JobChange::Keep => job,
    };
    let pods = match &job {
        Some(_) => observe_pods(ctx, &run, &namespace),
        None => Vec::new(),
    };
    let decision = decide(
        &run,
        Observed {
            job: job.as_ref(),
            pods: &pods,
            invalid: invalid.as_deref(),
            now,
        },
    );
    if decision.delete_job
        && let Some(job) = &job
    {
        apply::delete_job(ctx, job).await?;
    }
    if plan::status_changed(&run, &decision) {
        apply::write_status(ctx, &run, &namespace, &decision.status).await?;
    }
    record_phase(ctx, &run, &decision);
    Ok(Action::requeue(plan::requeue_after(&run, &decision, now)))
}

/// The run's Job: the cached one, or the one this controller created and the cache does
/// not show yet.
fn observe_job(ctx: &Context, run: &TrainingRun, namespace: &str) -> Option<Job> {
    let job_name = job_name(run);
    let cached = ctx
        .jobs
        .get(&ObjectRef::<JobView>::new(&job_name).within(namespace))
        .map(|view| view.to_job());
    ctx.written
        .job(&ObjectRef::new(&job_name).within(namespace), cached)
}

/// The Pods of the run's Job, from the cache.
fn observe_pods(ctx: &Context, run: &TrainingRun, namespace: &str) -> Vec<Pod> {
    let name = run.name_any();
    ctx.pods
        .state()
        .into_iter()
        .filter(|pod| {
            pod.namespace().as_deref() == Some(namespace)
                && pod.labels().get(RUN_LABEL) == Some(&name)
        })
        .map(|pod| (*pod).clone())
        .collect()
}

/// Create the Job; a new one is remembered until the cache shows it, timed from the run's
/// creation, and recorded as an Event.
async fn create_job(
    ctx: &Context,
    run: &TrainingRun,
    namespace: &str,
    now: Timestamp,
) -> Result<Job, Error> {
    match apply::create_job(ctx, run, namespace).await? {
        Created::Existing(job) => Ok(job),
        Created::New(job) => {
            ctx.written.job_created(&job);
            if let Some(created_at) = &run.metadata.creation_timestamp {
                let latency = now.as_second().saturating_sub(created_at.0.as_second());
                Metrics::observe(
                    &ctx.metrics.job_creation_latency,
                    Duration::from_secs(latency.max(0).unsigned_abs()),
                );
            }
            publish(ctx, run, plan::created_event(&job.name_any()));
            Ok(job)
        }
    }
}

/// Log a phase change, record its Event and, for a finished run, how long it trained.
fn record_phase(ctx: &Context, run: &TrainingRun, decision: &Decision) {
    let previous = run.status.as_ref().and_then(|s| s.phase);
    let Some(phase) = decision.status.phase.filter(|p| Some(*p) != previous) else {
        return;
    };
    let note = decision.status.message.as_deref().unwrap_or_default();
    info!(run = %run.name_any(), namespace = run.namespace().unwrap_or_default(),
        phase = phase.as_str(), %note, "phase changed");
    if let Some(event) = plan::phase_event(previous, decision) {
        publish(ctx, run, event);
    }
    if phase.is_terminal()
        && let (Some(start), Some(end)) = (
            &decision.status.start_time,
            &decision.status.completion_time,
        )
    {
        let seconds = end.0.as_second().saturating_sub(start.0.as_second());
        Metrics::observe(
            &ctx.metrics.training_duration,
            Duration::from_secs(seconds.max(0).unsigned_abs()),
        );
    }
}

/// Record an Event on the run without holding up the reconcile: Events are for people
/// reading `kubectl describe`, and Job creation must not wait on them.
fn publish(ctx: &Context, run: &TrainingRun, planned: PlannedEvent) {
    let event = Event {
        type_: planned.type_,
        reason: planned.reason,
        note: Some(planned.note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    let recorder = ctx.recorder.clone();
    let reference = run.object_ref(&());
    tokio::spawn(async move {
        if let Err(error) = recorder.publish(&event, &reference).await {
            warn!(%error, "could not publish event");
        }
    });
}
