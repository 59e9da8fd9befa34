//! The reconcile's writes to the API server, one function per kind of write. Each turns the
//! answers that mean "already done" (409 on create, 404 on delete) into success and any
//! other failure into its own [`Error`] variant.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use kubetrain_api::meta::strip_managed_fields;
use kubetrain_api::{TrainingRun, TrainingRunStatus};
use serde_json::json;

use super::{Context, FIELD_MANAGER};
use crate::Error;
use crate::job::build_job;
use crate::rbac;

/// Whether a Job was created by this call or found already there.
#[derive(Debug)]
pub enum Created {
    /// This call created it.
    New(Job),
    /// An earlier reconcile (or another replica) had.
    Existing(Job),
}

fn create_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

/// Create the run's Job (and, for runs without their own service account, the trainer's
/// RBAC in its namespace first).
pub async fn create_job(
    ctx: &Context,
    run: &TrainingRun,
    namespace: &str,
) -> Result<Created, Error> {
    if run.spec.service_account_name.is_none() {
        ensure_trainer_rbac(ctx, namespace).await?;
    }
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), namespace);
    let desired = build_job(run, &ctx.settings);
    let job = desired.name_any();
    // A plain create is the cheapest write; the cache may lag, so the Job may exist.
    match jobs.create(&create_params(), &desired).await {
        Ok(created) => Ok(Created::New(created)),
        Err(kube::Error::Api(status)) if status.code == 409 => jobs
            .get(&job)
            .await
            .map(Created::Existing)
            .map_err(|source| Error::ReadJob { job, source }),
        Err(source) => Err(Error::CreateJob { job, source }),
    }
}

/// Set the Job's `spec.suspend`.
pub async fn suspend_job(ctx: &Context, job: &Job, suspend: bool) -> Result<Job, Error> {
    let name = job.name_any();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let patch = json!({"spec": {"suspend": suspend}});
    jobs.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::SuspendJob {
            job: name,
            suspend,
            source,
        })
}

/// Delete the Job and its Pods; a Job already gone is fine.
pub async fn delete_job(ctx: &Context, job: &Job) -> Result<(), Error> {
    let name = job.name_any();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    match jobs.delete(&name, &DeleteParams::foreground()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::DeleteJob { job: name, source }),
    }
}

/// Delete the run itself (its TTL ran out); a run already gone is fine.
pub async fn delete_run(ctx: &Context, run: &TrainingRun, namespace: &str) -> Result<(), Error> {
    let runs: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), namespace);
    match runs
        .delete(&run.name_any(), &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::ExpireRun { source }),
    }
}

/// Write the controller-owned `status` with server-side apply, and remember the answer until
/// the cache shows it.
pub async fn write_status(
    ctx: &Context,
    run: &TrainingRun,
    namespace: &str,
    status: &TrainingRunStatus,
) -> Result<(), Error> {
    let runs: Api<TrainingRun> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = json!({
        "apiVersion": kubetrain_api::API_VERSION,
        "kind": "TrainingRun",
        "status": status,
    });
    let mut written = runs
        .patch_status(
            &run.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|source| Error::WriteStatus { source })?;
    strip_managed_fields(&mut written);
    ctx.written.status(run, written);
    Ok(())
}

/// Create the trainer's ServiceAccount, Role and RoleBinding where missing, once per
/// namespace and controller. Existing ones are left as they are: an administrator (or a Helm
/// chart) may own them.
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
            "ServiceAccount",
        )
        .await?;
        create_if_missing(
            Api::<Role>::namespaced(client.clone(), namespace),
            &rbac::role(namespace),
            "Role",
        )
        .await?;
        create_if_missing(
            Api::<RoleBinding>::namespaced(client.clone(), namespace),
            &rbac::role_binding(namespace),
            "RoleBinding",
        )
        .await
    })
    .await
    .map(|_| ())
}

async fn create_if_missing<K>(api: Api<K>, object: &K, kind: &'static str) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&create_params(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(source) => Err(Error::ProvisionTrainerRbac {
            kind,
            name: object.name_any(),
            source,
        }),
    }
}
