//! The reconcile loop: read what exists -> validate (pure) -> build the Job (pure) -> apply ->
//! decide the status (pure) -> write the status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use kubetrain_api::{Phase, TrainingRun, TrainingRunStatus};
use serde_json::json;
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::runner::strip_managed_fields;

use crate::job::{JobSettings, RUN_LABEL, build_job, job_name};
use crate::job_view::JobView;
use crate::status::{Observed, decide};
use crate::written::Written;
use crate::{Error, rbac, validate};

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

/// Requeue a failed reconcile after a short pause; a run whose namespace is being deleted
/// waits for its deletion instead (nothing can be created there any more).
pub fn error_policy(run: Arc<TrainingRun>, error: &Error, _: Arc<Context>) -> Action {
    if error.namespace_terminating() {
        // Retrying cannot succeed; the run's deletion with its namespace ends this.
        info!(run = %run.name_any(), namespace = run.namespace().unwrap_or_default(),
            "the namespace is being deleted; leaving the run to go with it");
        return Action::await_change();
    }
    warn!(run = %run.name_any(), %error, "reconcile error; retrying");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile_run(run: Arc<TrainingRun>, ctx: &Context) -> Result<Action, Error> {
    let run = ctx.written.run(run);
    let namespace = run.namespace().ok_or(Error::NotNamespaced)?;
    let name = run.name_any();
    let runs: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let now = Timestamp::now();

    if let Some(action) = expire(&run, &runs, now).await? {
        return Ok(action);
    }

    // Read what exists.
    let invalid = validate::validate(&run.spec);
    let terminal = run
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(Phase::is_terminal);
    let job_name = job_name(&run);
    let cached = ctx
        .jobs
        .get(&ObjectRef::<JobView>::new(&job_name).within(&namespace))
        .map(|view| view.to_job());
    let mut job = ctx
        .written
        .job(&ObjectRef::new(&job_name).within(&namespace), cached);

    // Apply: create the Job when the run should have one.
    if job.is_none() && invalid.is_none() && !terminal && !run.spec.cancel {
        if run.spec.service_account_name.is_none() {
            ensure_trainer_rbac(ctx, &namespace).await?;
        }
        let desired = build_job(&run, &ctx.settings);
        // A plain create is the cheapest write; the cache may lag, so the Job may exist.
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let created = match jobs.create(&params, &desired).await {
            Ok(created) => {
                ctx.written.job_created(&created);
                if let Some(created_at) = &run.metadata.creation_timestamp {
                    let latency = now.as_second().saturating_sub(created_at.0.as_second());
                    Metrics::observe(
                        &ctx.metrics.job_creation_latency,
                        Duration::from_secs(latency.max(0).unsigned_abs()),
                    );
                }
                publish(
                    ctx,
                    &run,
                    EventType::Normal,
                    "CreatedJob",
                    format!("created Job {}", created.name_any()),
                );
                created
            }
            // Created before, by an earlier reconcile or another replica.
            Err(kube::Error::Api(status)) if status.code == 409 => jobs
                .get(&job_name)
                .await
                .map_err(Error::kube("read existing Job"))?,
            Err(error) => return Err(Error::kube("create Job")(error)),
        };
        job = Some(created);
    } else if let Some(existing) = &job {
        let suspended = existing
            .spec
            .as_ref()
            .and_then(|s| s.suspend)
            .unwrap_or(false);
        if suspended != run.spec.suspend && !terminal {
            let patch = json!({"spec": {"suspend": run.spec.suspend}});
            let patched = jobs
                .patch(
                    &existing.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(Error::kube("suspend Job"))?;
            job = Some(patched);
        }
    }
    let pod_list: Vec<Pod> = match &job {
        Some(_) => ctx
            .pods
            .state()
            .into_iter()
            .filter(|pod| {
                pod.namespace().as_deref() == Some(namespace.as_str())
                    && pod.labels().get(RUN_LABEL) == Some(&name)
            })
            .map(|pod| (*pod).clone())
            .collect(),
        None => Vec::new(),
    };

    // Decide (pure).
    let decision = decide(
        &run,
        Observed {
            job: job.as_ref(),
            pods: &pod_list,
            invalid: invalid.as_deref(),
            now,
        },
    );

    if decision.delete_job
        && let Some(job) = &job
    {
        match jobs
            .delete(&job.name_any(), &DeleteParams::foreground())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(Error::kube("delete Job")(error)),
        }
    }

    // Write the status when it changed.
    let previous_phase = run.status.as_ref().and_then(|s| s.phase);
    if controller_view(run.status.as_ref()) != decision.status {
        let patch = json!({
            "apiVersion": "kubetrain.dev/v1alpha1",
            "kind": "TrainingRun",
            "status": decision.status,
        });
        let mut written = runs
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(Error::kube("write status"))?;
        strip_managed_fields(&mut written);
        ctx.written.status(&run, written);
    }
    if decision.status.phase != previous_phase
        && let Some(phase) = decision.status.phase
    {
        let kind = if phase == Phase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let note = decision.status.message.clone().unwrap_or_default();
        info!(run = %name, namespace = %namespace, phase = phase.as_str(), %note, "phase changed");
        // Waiting phases are visible in `kubectl get`; Events mark what happened.
        if !matches!(phase, Phase::Pending | Phase::Queued) {
            publish(ctx, &run, kind, phase.as_str(), note);
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

    let ttl_due = ttl_due(&run, &decision.status, now);
    let next = [decision.requeue_after, ttl_due]
        .into_iter()
        .flatten()
        .min();
    Ok(next.map_or_else(
        || Action::requeue(Duration::from_secs(300)),
        Action::requeue,
    ))
}

/// The fields of `status` the controller owns, as [`decide`] produces them.
fn controller_view(status: Option<&TrainingRunStatus>) -> TrainingRunStatus {
    let Some(status) = status else {
        return TrainingRunStatus::default();
    };
    TrainingRunStatus {
        phase: status.phase,
        conditions: status.conditions.clone(),
        observed_generation: status.observed_generation,
        algorithm: status.algorithm.clone(),
        job_name: status.job_name.clone(),
        start_time: status.start_time.clone(),
        completion_time: status.completion_time.clone(),
        attempts: status.attempts,
        message: status.message.clone(),
        ..TrainingRunStatus::default()
    }
}

/// How long until the run's `ttlSecondsAfterFinished` runs out, if it is finished and has one.
fn ttl_due(run: &TrainingRun, status: &TrainingRunStatus, now: Timestamp) -> Option<Duration> {
    let ttl = i64::from(run.spec.ttl_seconds_after_finished?);
    let finished = status.completion_time.as_ref()?.0;
    let left = finished.as_second().saturating_add(ttl) - now.as_second();
    Some(Duration::from_secs(left.max(0).unsigned_abs()))
}

/// Delete a finished run whose TTL ran out (the model stays in storage).
async fn expire(
    run: &TrainingRun,
    runs: &Api<TrainingRun>,
    now: Timestamp,
) -> Result<Option<Action>, Error> {
    let Some(status) = &run.status else {
        return Ok(None);
    };
    if !status.phase.is_some_and(Phase::is_terminal) {
        return Ok(None);
    }
    match ttl_due(run, status, now) {
        Some(left) if left.is_zero() => {
            info!(run = %run.name_any(), "ttlSecondsAfterFinished passed; deleting the run");
            match runs
                .delete(&run.name_any(), &DeleteParams::background())
                .await
            {
                Ok(_) => Ok(Some(Action::await_change())),
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    Ok(Some(Action::await_change()))
                }
                Err(error) => Err(Error::kube("delete expired run")(error)),
            }
        }
        _ => Ok(None),
    }
}

/// Create the trainer's ServiceAccount, Role and RoleBinding where missing. Existing ones
/// are left as they are: an administrator (or a Helm chart) may own them.
async fn ensure_trainer_rbac(ctx: &Context, namespace: &str) -> Result<(), Error> {
    let once = match ctx.provisioned.lock() {
        Ok(mut map) => map.entry(namespace.to_owned()).or_default().clone(),
        Err(_) => Arc::default(),
    };
    once.get_or_try_init(|| async {
        let client = &ctx.client;
        create_if_missing(
            Api::<ServiceAccount>::namespaced(client.clone(), namespace),
            &rbac::service_account(namespace),
            "create trainer ServiceAccount",
        )
        .await?;
        create_if_missing(
            Api::<Role>::namespaced(client.clone(), namespace),
            &rbac::role(namespace),
            "create trainer Role",
        )
        .await?;
        create_if_missing(
            Api::<RoleBinding>::namespaced(client.clone(), namespace),
            &rbac::role_binding(namespace),
            "create trainer RoleBinding",
        )
        .await
    })
    .await
    .map(|_| ())
}

async fn create_if_missing<K>(api: Api<K>, object: &K, action: &'static str) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match api.create(&params, object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(Error::kube(action)(error)),
    }
}

/// Record an Event on the run without holding up the reconcile: Events are for people
/// reading `kubectl describe`, and Job creation must not wait on them.
fn publish(ctx: &Context, run: &TrainingRun, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
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
