//! The desired `batch/v1` Job of a run (pure): what `kubetrain train` needs and nothing more.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use kubetrain_api::invocation::{
    self, CustomDirs, EnvValue, StatusReport, StorageEnv, trainer_args, trainer_threads,
};
use kubetrain_api::{TrainingRun, exit_code};

/// Label on a run's Job and Pods naming the run.
pub const RUN_LABEL: &str = "kubetrain.dev/run";
/// Kueue's queue label, copied from the run to its Job.
pub const QUEUE_LABEL: &str = "kueue.x-k8s.io/queue-name";
/// Name of the training container.
pub const CONTAINER: &str = "trainer";
/// Service account the controller provisions for trainers (with the Role from `rbac`).
pub const TRAINER_SERVICE_ACCOUNT: &str = "kubetrain-trainer";

/// Controller-wide settings that shape every Job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSettings {
    /// Trainer image when the run names none.
    pub trainer_image: String,
    /// S3 endpoint passed to trainers when the run's storage names none.
    pub storage_endpoint: Option<String>,
    /// S3 region passed to trainers when the run's storage names none.
    pub storage_region: Option<String>,
    /// Requests (`cpu`, `memory`, ...) of a trainer whose run sets neither a request nor a
    /// limit for that resource. Without any, trainer Pods are BestEffort: the scheduler would
    /// start every queued run on the first node at once and the kubelet evicts them first.
    pub default_requests: BTreeMap<String, Quantity>,
}

/// The Job's name: the run's name plus a hash of its UID, so one run always maps to the same
/// Job (also across controller restarts) while a run re-created under the same name never
/// adopts its predecessor's Job. At most 63 characters, as the `job-name` label requires.
pub fn job_name(run: &TrainingRun) -> String {
    let uid = run.uid().unwrap_or_default();
    let hash = fnv1a(uid.as_bytes());
    let name = run.name_any();
    let prefix: String = name.chars().take(63 - 9).collect();
    format!("{}-{:08x}", prefix.trim_end_matches('-'), hash as u32)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The trainer container's resources: the run's own, plus the controller's default request
/// for every resource the run sets neither a request nor a limit for (a limit alone already
/// makes the API server default the request to it).
pub fn trainer_resources(
    run: &TrainingRun,
    settings: &JobSettings,
) -> Option<ResourceRequirements> {
    let own = run.spec.resources.as_ref();
    let sets = |name: &str| {
        own.is_some_and(|r| {
            [&r.requests, &r.limits]
                .into_iter()
                .any(|map| map.as_ref().is_some_and(|m| m.contains_key(name)))
        })
    };
    let missing: Vec<(String, Quantity)> = settings
        .default_requests
        .iter()
        .filter(|(name, _)| !sets(name))
        .map(|(name, quantity)| (name.clone(), quantity.clone()))
        .collect();
    if missing.is_empty() {
        return own.cloned();
    }
    let mut resources = own.cloned().unwrap_or_default();
    resources
        .requests
        .get_or_insert_with(BTreeMap::new)
        .extend(missing);
    Some(resources)
}

/// The Job that trains `run`.
pub fn build_job(run: &TrainingRun, settings: &JobSettings) -> Job {
    let spec = &run.spec;
    let name = run.name_any();
    let mut labels = BTreeMap::from([
        (RUN_LABEL.to_owned(), name.clone()),
        (
            "app.kubernetes.io/name".to_owned(),
            "kubetrain-trainer".to_owned(),
        ),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "kubetrain".to_owned(),
        ),
    ]);
    if let Some(queue) = run.labels().get(QUEUE_LABEL) {
        labels.insert(QUEUE_LABEL.to_owned(), queue.clone());
    }
    let pod_labels = BTreeMap::from([(RUN_LABEL.to_owned(), name.clone())]);

    Job {
        metadata: ObjectMeta {
            name: Some(job_name(run)),
            namespace: run.namespace(),
            labels: Some(labels),
            owner_references: run.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(spec.backoff_limit),
            active_deadline_seconds: spec.active_deadline_seconds,
            suspend: Some(spec.suspend),
            pod_failure_policy: Some(pod_failure_policy()),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(run, settings)),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// Bad input fails the Job at once (retrying cannot fix the data); disruptions such as
/// preemption or node drain do not count against `backoffLimit`.
fn pod_failure_policy() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "FailJob".to_owned(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some(CONTAINER.to_owned()),
                    operator: "In".to_owned(),
                    // The API server requires these in ascending order.
                    values: vec![exit_code::USAGE, exit_code::BAD_INPUT],
                }),
                on_pod_conditions: None,
            },
            PodFailurePolicyRule {
                action: "Ignore".to_owned(),
                on_exit_codes: None,
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".to_owned(),
                    status: Some("True".to_owned()),
                }]),
            },
        ],
    }
}

fn pod_spec(run: &TrainingRun, settings: &JobSettings) -> PodSpec {
    let spec = &run.spec;
    let resources = trainer_resources(run, settings);
    let trainer_image = spec
        .image
        .clone()
        .unwrap_or_else(|| settings.trainer_image.clone());
    let (init_containers, container, volumes) = match &spec.custom {
        None => {
            let mut args = trainer_args(spec, trainer_threads(resources.as_ref()));
            // The image's entrypoint may be anything; name the binary so the command is
            // explicit.
            args.insert(0, "kubetrain".to_owned());
            let container = Container {
                name: CONTAINER.to_owned(),
                image: Some(trainer_image),
                command: Some(vec![args.remove(0)]),
                args: Some(args),
                env: Some(env_vars(invocation::trainer_env(
                    run,
                    &storage_defaults(settings),
                    StatusReport::Kubernetes,
                ))),
                resources,
                security_context: Some(container_security(true)),
                volume_mounts: Some(vec![mount(TMP_VOLUME, "/tmp")]),
                ..Container::default()
            };
            (None, container, vec![empty_dir(TMP_VOLUME)])
        }
        Some(custom) => {
            let threads = trainer_threads(resources.as_ref());
            // The contract's variables first, so the user's may refer to them as `$(NAME)`.
            let mut env = env_vars(invocation::custom_env(
                run,
                custom,
                &storage_defaults(settings),
                threads,
                &custom_dirs(),
            ));
            // The image's user may have no writable home (65532 has `/`): caches such as
            // `~/.cache` go to the Pod's /tmp unless the run names a HOME of its own.
            if !custom.env.iter().any(|var| var.name == "HOME") {
                env.push(EnvVar {
                    name: "HOME".to_owned(),
                    value: Some("/tmp".to_owned()),
                    ..EnvVar::default()
                });
            }
            env.extend(custom.env.iter().cloned());
            let mut command = vec![format!("{WRAPPER_DIR}/bin/kubetrain")];
            command.extend(invocation::exec_args(
                custom,
                StatusReport::Kubernetes,
                &custom_dirs(),
            ));
            // The user's `args` are already after `--`; Kubernetes appends `args` to `command`.
            let copy = Container {
                name: WRAPPER_CONTAINER.to_owned(),
                image: Some(trainer_image),
                command: Some(vec![
                    "kubetrain".to_owned(),
                    "copy-to".to_owned(),
                    format!("{WRAPPER_DIR}/bin"),
                ]),
                security_context: Some(container_security(true)),
                volume_mounts: Some(vec![mount(WRAPPER_VOLUME, WRAPPER_DIR)]),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_owned(), Quantity("10m".to_owned())),
                        ("memory".to_owned(), Quantity("32Mi".to_owned())),
                    ])),
                    ..ResourceRequirements::default()
                }),
                ..Container::default()
            };
            let container = Container {
                name: CONTAINER.to_owned(),
                image: Some(custom.image.clone()),
                command: Some(command),
                env: Some(env),
                resources,
                // Programs write temporary files where they like: the root filesystem stays
                // writable; the rest of the restricted profile holds.
                security_context: Some(container_security(false)),
                volume_mounts: Some(vec![
                    mount(TMP_VOLUME, "/tmp"),
                    mount(WRAPPER_VOLUME, WRAPPER_DIR),
                ]),
                ..Container::default()
            };
            (
                Some(vec![copy]),
                container,
                vec![empty_dir(TMP_VOLUME), empty_dir(WRAPPER_VOLUME)],
            )
        }
    };
    PodSpec {
        restart_policy: Some("Never".to_owned()),
        service_account_name: Some(
            spec.service_account_name
                .clone()
                .unwrap_or_else(|| TRAINER_SERVICE_ACCOUNT.to_owned()),
        ),
        node_selector: spec.node_selector.clone(),
        tolerations: spec.tolerations.clone(),
        priority_class_name: spec.priority_class_name.clone(),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        init_containers,
        containers: vec![container],
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

/// Name of a custom run's init container, which copies kubetrain's wrapper into the Pod.
pub const WRAPPER_CONTAINER: &str = "kubetrain-wrapper";
/// Where a custom run's shared `emptyDir` is mounted: `bin/` holds the wrapper, `model/` the
/// program's model directory, `data/` the downloaded dataset.
pub const WRAPPER_DIR: &str = "/kubetrain";
const WRAPPER_VOLUME: &str = "kubetrain";
const TMP_VOLUME: &str = "tmp";

fn custom_dirs() -> CustomDirs {
    CustomDirs {
        model: format!("{WRAPPER_DIR}/model"),
        data: format!("{WRAPPER_DIR}/data"),
    }
}

fn storage_defaults(settings: &JobSettings) -> StorageEnv {
    StorageEnv {
        endpoint: settings.storage_endpoint.clone(),
        region: settings.storage_region.clone(),
    }
}

/// The restricted profile's container settings; `read_only_root` for kubetrain's own image.
fn container_security(read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(read_only_root),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// Trainer environment variables ([`kubetrain_api::invocation`]) as container variables:
/// credentials come only from the run's Secret, never inline.
fn env_vars(vars: Vec<invocation::TrainerEnvVar>) -> Vec<EnvVar> {
    vars.into_iter()
        .map(|var| match var.value {
            EnvValue::Value(value) => EnvVar {
                name: var.name,
                value: Some(value),
                ..EnvVar::default()
            },
            EnvValue::SecretKey {
                secret,
                key,
                optional,
            } => EnvVar {
                name: var.name,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret,
                        key,
                        optional: Some(optional),
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
        })
        .collect()
}

#[cfg(test)]
mod tests;
