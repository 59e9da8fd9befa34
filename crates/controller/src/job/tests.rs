#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use kubetrain_api::TrainingRun;
use kubetrain_api::invocation::ENV_RUN_NAME;

fn settings() -> JobSettings {
    JobSettings {
        trainer_image: "ghcr.io/kubetrain/kubetrain:0.1.0".to_owned(),
        storage_endpoint: Some("http://s3.storage:8333".to_owned()),
        storage_region: Some("us-east-1".to_owned()),
        default_requests: BTreeMap::from([
            ("cpu".to_owned(), Quantity("1".to_owned())),
            ("memory".to_owned(), Quantity("256Mi".to_owned())),
        ]),
    }
}

fn container(job: &Job) -> &Container {
    &job.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
}

fn env_of<'a>(job: &'a Job, name: &str) -> Option<&'a EnvVar> {
    container(job)
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == name)
}

#[test]
fn name_is_stable_per_run_and_differs_across_recreations() {
    let a = TrainingRun::test("churn");
    let mut b = TrainingRun::test("churn");
    assert_eq!(job_name(&a), job_name(&a.clone()));
    b.metadata.uid = Some("another-uid".to_owned());
    assert_ne!(job_name(&a), job_name(&b));
    let long = TrainingRun::test(&"x".repeat(250));
    assert!(job_name(&long).len() <= 63, "{}", job_name(&long));
}

#[test]
fn job_mirrors_the_run() {
    let run = TrainingRun::test("churn").with_spec("resources: {requests: {cpu: '1', memory: 512Mi}, limits: {cpu: 1500m, nvidia.com/gpu: 1}}\n\
         storage: {secretRef: {name: s3}}\n\
         backoffLimit: 4\n\
         activeDeadlineSeconds: 600\n\
         suspend: true\n\
         nodeSelector: {pool: gpu}\n\
         tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]\n\
         priorityClassName: batch-low\n");
    let job = build_job(&run, &settings());
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(4));
    assert_eq!(spec.active_deadline_seconds, Some(600));
    assert_eq!(spec.suspend, Some(true));
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("TrainingRun", "churn")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(job.metadata.labels.as_ref().unwrap()[RUN_LABEL], "churn");
    let template = &spec.template;
    assert_eq!(
        template.metadata.as_ref().unwrap().labels.as_ref().unwrap()[RUN_LABEL],
        "churn"
    );

    let pod = template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(TRAINER_SERVICE_ACCOUNT)
    );
    assert_eq!(pod.node_selector.as_ref().unwrap()["pool"], "gpu");
    assert_eq!(pod.tolerations.as_ref().unwrap().len(), 1);
    assert_eq!(pod.priority_class_name.as_deref(), Some("batch-low"));

    let c = container(&job);
    assert_eq!(
        c.image.as_deref(),
        Some("ghcr.io/kubetrain/kubetrain:0.1.0")
    );
    assert_eq!(c.command.as_ref().unwrap(), &vec!["kubetrain".to_owned()]);
    let args = c.args.as_ref().unwrap().join(" ");
    assert!(
        args.starts_with("train --data s3://data/churn.csv"),
        "{args}"
    );
    assert!(
        args.contains("--threads 2"),
        "CPU limit 1500m rounds up to 2: {args}"
    );
    assert_eq!(c.resources, run.spec.resources);
    let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["nvidia.com/gpu"].0, "1");
}

#[test]
fn default_requests_fill_only_what_the_run_leaves_open() {
    let requests = |job: &Job| container(job).resources.clone().unwrap().requests.unwrap();
    let args = |job: &Job| container(job).args.as_ref().unwrap().join(" ");

    let bare = build_job(&TrainingRun::test("churn"), &settings());
    assert_eq!(requests(&bare)["cpu"].0, "1");
    assert_eq!(requests(&bare)["memory"].0, "256Mi");
    assert!(
        container(&bare)
            .resources
            .as_ref()
            .unwrap()
            .limits
            .is_none()
    );
    assert!(args(&bare).contains("--threads 1"), "{}", args(&bare));

    // A limit alone makes the API server default the request to it: no default added.
    let limited = build_job(
        &TrainingRun::test("churn")
            .with_spec("resources: {limits: {memory: 2Gi}, requests: {cpu: '3'}}"),
        &settings(),
    );
    assert_eq!(requests(&limited)["cpu"].0, "3");
    assert!(!requests(&limited).contains_key("memory"));
    assert!(args(&limited).contains("--threads 3"), "{}", args(&limited));

    let none = JobSettings {
        default_requests: BTreeMap::new(),
        ..settings()
    };
    let best_effort = build_job(&TrainingRun::test("churn"), &none);
    assert_eq!(container(&best_effort).resources, None);
    assert!(
        !args(&best_effort).contains("--threads"),
        "{}",
        args(&best_effort)
    );
}

#[test]
fn security_context_is_restricted() {
    let job = build_job(&TrainingRun::test("churn"), &settings());
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let pod_sc = pod.security_context.as_ref().unwrap();
    assert_eq!(pod_sc.run_as_non_root, Some(true));
    assert_eq!(
        pod_sc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let sc = container(&job).security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop.as_ref().unwrap(),
        &vec!["ALL".to_owned()]
    );
}

#[test]
fn credentials_only_through_secret_refs_and_storage_defaults_from_settings() {
    let job = build_job(
        &TrainingRun::test("churn").with_spec("storage: {secretRef: {name: s3}}"),
        &settings(),
    );
    let key = env_of(&job, "AWS_ACCESS_KEY_ID").unwrap();
    assert!(key.value.is_none());
    let selector = key
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (selector.name.as_str(), selector.key.as_str()),
        ("s3", "AWS_ACCESS_KEY_ID")
    );
    assert!(
        env_of(&job, "AWS_SECRET_ACCESS_KEY")
            .unwrap()
            .value
            .is_none()
    );
    assert_eq!(
        env_of(&job, "AWS_ENDPOINT_URL").unwrap().value.as_deref(),
        Some("http://s3.storage:8333")
    );
    assert_eq!(
        env_of(&job, "AWS_ALLOW_HTTP").unwrap().value.as_deref(),
        Some("true")
    );
    assert_eq!(
        env_of(&job, "AWS_REGION").unwrap().value.as_deref(),
        Some("us-east-1")
    );
    assert_eq!(
        env_of(&job, ENV_RUN_NAME).unwrap().value.as_deref(),
        Some("churn")
    );

    let own = build_job(
        &TrainingRun::test("churn")
            .with_spec("storage: {endpoint: 'https://s3.example.com', region: eu-west-1}"),
        &settings(),
    );
    assert_eq!(
        env_of(&own, "AWS_ENDPOINT_URL").unwrap().value.as_deref(),
        Some("https://s3.example.com")
    );
    assert!(env_of(&own, "AWS_ALLOW_HTTP").is_none());
    assert!(env_of(&own, "AWS_ACCESS_KEY_ID").is_none());
}

#[test]
fn bad_input_fails_at_once_and_disruptions_do_not_count() {
    let job = build_job(&TrainingRun::test("churn"), &settings());
    let rules = &job
        .spec
        .as_ref()
        .unwrap()
        .pod_failure_policy
        .as_ref()
        .unwrap()
        .rules;
    let fail = rules.iter().find(|r| r.action == "FailJob").unwrap();
    let codes = fail.on_exit_codes.as_ref().unwrap();
    assert_eq!(codes.container_name.as_deref(), Some(CONTAINER));
    assert!(codes.values.contains(&exit_code::BAD_INPUT));
    assert!(!codes.values.contains(&exit_code::TRANSIENT));
    assert!(
        codes.values.is_sorted(),
        "the API server rejects unordered exit codes"
    );
    let ignore = rules.iter().find(|r| r.action == "Ignore").unwrap();
    assert_eq!(
        ignore.on_pod_conditions.as_ref().unwrap()[0].type_,
        "DisruptionTarget"
    );
}

#[test]
fn run_overrides_image_and_service_account_and_queue_label_is_copied() {
    let mut r =
        TrainingRun::test("churn").with_spec("image: my/trainer:1\nserviceAccountName: ml-team");
    r.metadata.labels = Some([(QUEUE_LABEL.to_owned(), "team-a".to_owned())].into());
    let job = build_job(&r, &settings());
    assert_eq!(container(&job).image.as_deref(), Some("my/trainer:1"));
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("ml-team"));
    assert_eq!(job.metadata.labels.as_ref().unwrap()[QUEUE_LABEL], "team-a");
}

fn custom_run() -> TrainingRun {
    TrainingRun::test("byo").with_spec(
        "algorithm: null\n\
         custom: {image: 'registry.example/sk:1', command: [python, /app/train.py], \
         args: ['--epochs', '$(EPOCHS)'], env: [{name: EPOCHS, value: '5'}], \
         params: {n_estimators: '50'}}\n\
         resources: {limits: {cpu: '2', 'nvidia.com/gpu': '1'}}\n\
         storage: {secretRef: {name: s3}}",
    )
}

#[test]
fn custom_runs_run_the_users_image_under_the_wrapper_copied_in_by_an_init_container() {
    let job = build_job(&custom_run(), &settings());
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let init = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(
        init.image.as_deref(),
        Some("ghcr.io/kubetrain/kubetrain:0.1.0")
    );
    assert_eq!(
        init.command.as_ref().unwrap().join(" "),
        "kubetrain copy-to /kubetrain/bin"
    );
    let main = container(&job);
    assert_eq!(main.name, CONTAINER);
    assert_eq!(main.image.as_deref(), Some("registry.example/sk:1"));
    assert_eq!(
        main.command.as_ref().unwrap().join(" "),
        "/kubetrain/bin/kubetrain exec --report kubernetes --download-dir /kubetrain/data -- \
         python /app/train.py --epochs $(EPOCHS)"
    );
    assert_eq!(main.args, None);
    // Both containers share the wrapper's volume; the program's may write its root filesystem.
    for c in [init, main] {
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert!(
            mounts.iter().any(|m| m.mount_path == WRAPPER_DIR),
            "{mounts:?}"
        );
    }
    let sc = main.security_context.as_ref().unwrap();
    assert_eq!(
        (sc.read_only_root_filesystem, sc.allow_privilege_escalation),
        (Some(false), Some(false))
    );
    // The user's resources (GPUs included) are the program's; the init container's are small.
    let limits = main.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["nvidia.com/gpu"], Quantity("1".to_owned()));
    // The contract's variables, then the user's (which may refer to them).
    let names: Vec<&str> = main
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names.first(), Some(&"KUBETRAIN_CONTRACT"));
    assert_eq!(names.last(), Some(&"EPOCHS"));
    // A home the program can write, unless the run sets its own.
    assert_eq!(
        env_of(&job, "HOME").and_then(|e| e.value.as_deref()),
        Some("/tmp")
    );
    let own_home = custom_run()
        .with_spec("custom: {image: x, command: [python], env: [{name: HOME, value: /data}]}");
    let job_with_home = build_job(&own_home, &settings());
    let homes: Vec<_> = container(&job_with_home)
        .env
        .iter()
        .flatten()
        .filter(|e| e.name == "HOME")
        .collect();
    assert_eq!(homes.len(), 1);
    assert_eq!(homes[0].value.as_deref(), Some("/data"));
    let value = |name: &str| env_of(&job, name).and_then(|e| e.value.clone());
    assert_eq!(value(ENV_RUN_NAME).as_deref(), Some("byo"));
    assert_eq!(
        value("KUBETRAIN_MODEL_DIR").as_deref(),
        Some("/kubetrain/model")
    );
    assert_eq!(value("KUBETRAIN_THREADS").as_deref(), Some("2"));
    assert_eq!(
        value("KUBETRAIN_PARAMS").as_deref(),
        Some(r#"{"n_estimators":"50"}"#)
    );
    assert_eq!(
        value("AWS_ENDPOINT_URL").as_deref(),
        Some("http://s3.storage:8333")
    );
    let secret = env_of(&job, "AWS_SECRET_ACCESS_KEY").unwrap();
    assert!(secret.value_from.is_some() && secret.value.is_none());
    // Exit 65 of the program still fails the Job at once: the wrapper exits with it.
    let policy = job
        .spec
        .as_ref()
        .unwrap()
        .pod_failure_policy
        .as_ref()
        .unwrap();
    let on_exit = policy.rules[0].on_exit_codes.as_ref().unwrap();
    assert_eq!(on_exit.container_name.as_deref(), Some(CONTAINER));
    assert!(on_exit.values.contains(&65));
}
