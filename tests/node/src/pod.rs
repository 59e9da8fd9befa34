//! One pod's life on the node, as kubelet lives it: prepare (credentials, environment), run the
//! init containers one by one, then the containers together under the pod's restart policy,
//! report every state change, honour `activeDeadlineSeconds`, and on deletion stop the
//! processes (SIGTERM to each container's process, SIGKILL to its group after the grace period) and delete the pod for good.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::launch::{self, NodeContext};
use crate::process::{self, Exit, Launch};
use crate::status::{ContainerReport, Phase, State, pod_status_patch, terminal_phase};
use crate::token;

/// The latest word from the supervisor about a pod.
#[derive(Debug, Clone)]
pub struct Control {
    pub pod: Arc<Pod>,
    /// The pod object no longer exists.
    pub gone: bool,
    /// The node is stopping: stop the processes, report nothing.
    pub shutdown: bool,
}

/// Why a pod stops before its containers finished on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Deleted,
    Deadline,
    Gone,
    Shutdown,
}

/// Containers of one kind (init or regular) and what the node knows about them.
#[derive(Debug)]
struct Group {
    reports: Vec<ContainerReport>,
    pids: Vec<Option<i32>>,
    restart_at: Vec<Option<Instant>>,
}

type ExitChannel = (
    mpsc::UnboundedSender<(usize, Exit)>,
    mpsc::UnboundedReceiver<(usize, Exit)>,
);

struct Runner {
    ctx: Arc<NodeContext>,
    control: watch::Receiver<Control>,
    pod: Arc<Pod>,
    start_time: DateTime<Utc>,
    init: Vec<ContainerReport>,
    exits: ExitChannel,
    deadline: Option<Instant>,
    grace: Duration,
    restart_policy: String,
}

/// Runs the pod to its end; errors are logged, never fatal to the node.
pub async fn run(ctx: Arc<NodeContext>, control: watch::Receiver<Control>) {
    let pod = control.borrow().pod.clone();
    let key = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    tracing::info!(pod = %key, "starting pod");
    let spec = pod.spec.clone().unwrap_or_default();
    let mut runner = Runner {
        ctx,
        control,
        start_time: Utc::now(),
        init: reports(spec.init_containers.as_deref().unwrap_or_default()),
        exits: mpsc::unbounded_channel(),
        deadline: spec
            .active_deadline_seconds
            .map(|s| Instant::now() + Duration::from_secs(u64::try_from(s).unwrap_or(0))),
        grace: Duration::from_secs(
            u64::try_from(spec.termination_grace_period_seconds.unwrap_or(30)).unwrap_or(30),
        ),
        restart_policy: spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into()),
        pod,
    };
    match runner
        .lifecycle(&spec.init_containers.unwrap_or_default(), &spec.containers)
        .await
    {
        Ok(()) => tracing::info!(pod = %key, "pod finished"),
        Err(error) => {
            tracing::warn!(pod = %key, error = format!("{error:#}"), "pod ended with an error")
        }
    }
}

fn reports(containers: &[Container]) -> Vec<ContainerReport> {
    containers
        .iter()
        .map(|c| ContainerReport::new(&c.name, c.image.as_deref().unwrap_or_default()))
        .collect()
}

impl Runner {
    async fn lifecycle(&mut self, init: &[Container], containers: &[Container]) -> Result<()> {
        let dir = launch::pod_dir(&self.ctx, &self.pod);
        std::fs::create_dir_all(dir.join("tmp"))?;
        let mut main = Group::new(reports(containers));
        if let Some(ending) = self.ending() {
            return self.finish(ending, &mut main).await;
        }
        self.report(&Phase::plain("Pending"), &main).await;

        let (init_launches, main_launches) = loop {
            match self.prepare(init, containers, &dir).await {
                Ok(launches) => break launches,
                Err(error) => {
                    let message = format!("{error:#}");
                    tracing::warn!(%message, "cannot prepare containers yet; retrying");
                    self.event(true, "Failed", format!("Error: {message}"));
                    for report in self.init.iter_mut().chain(main.reports.iter_mut()) {
                        report.state =
                            State::waiting("CreateContainerConfigError", message.clone());
                    }
                    self.report(&Phase::plain("Pending"), &main).await;
                    let retry = Instant::now() + Duration::from_secs(2);
                    if let Some(ending) = self.wait_for_control(retry).await {
                        return self.finish(ending, &mut main).await;
                    }
                }
            }
        };

        for (i, launch) in init_launches.iter().enumerate() {
            let mut group = Group::new(vec![self.init[i].clone()]);
            let policy = if self.restart_policy == "Never" {
                "Never"
            } else {
                "OnFailure"
            };
            let ended = self
                .run_group(&mut group, std::slice::from_ref(launch), policy, &main)
                .await;
            self.init[i] = group.reports[0].clone();
            if let Some(ending) = ended {
                self.stop(&mut group).await;
                self.init[i] = group.reports[0].clone();
                return self.finish(ending, &mut main).await;
            }
            if !matches!(
                group.reports[0].state,
                State::Terminated { exit_code: 0, .. }
            ) {
                self.report(&Phase::plain("Failed"), &main).await;
                return Ok(());
            }
        }

        let policy = self.restart_policy.clone();
        if let Some(ending) = self
            .run_group(&mut main, &main_launches, &policy, &Group::new(Vec::new()))
            .await
        {
            self.stop(&mut main).await;
            return self.finish(ending, &mut main).await;
        }
        self.report(&terminal_phase(&main.reports), &main).await;
        Ok(())
    }

    async fn prepare(
        &self,
        init: &[Container],
        containers: &[Container],
        dir: &std::path::Path,
    ) -> Result<(Vec<Launch>, Vec<Launch>)> {
        let kubeconfig = launch::credentials(&self.ctx, &self.pod, dir).await?;
        let mut launches = (Vec::new(), Vec::new());
        for c in init {
            launches
                .0
                .push(launch::prepare(&self.ctx, &self.pod, c, dir, kubeconfig.as_deref()).await?);
        }
        for c in containers {
            launches
                .1
                .push(launch::prepare(&self.ctx, &self.pod, c, dir, kubeconfig.as_deref()).await?);
        }
        Ok(launches)
    }

    /// Runs a group until none of its containers will run again (`None`) or the pod must stop.
    /// `main` is what to report for the regular containers while an init group runs.
    async fn run_group(
        &mut self,
        group: &mut Group,
        launches: &[Launch],
        policy: &str,
        main: &Group,
    ) -> Option<Ending> {
        let is_main = main.reports.is_empty();
        let mut refresh = tokio::time::interval_at(
            Instant::now() + token::refresh_after(),
            token::refresh_after(),
        );
        loop {
            let now = Instant::now();
            for (i, launch) in launches.iter().enumerate() {
                if group.restart_at[i].is_some_and(|at| at <= now) {
                    group.restart_at[i] = None;
                    self.start(group, i, launch, policy);
                }
            }
            let phase = Phase::plain(if is_main { "Running" } else { "Pending" });
            if is_main {
                self.report(&phase, group).await;
            } else {
                self.init = self.merge_init(group);
                self.report(&phase, main).await;
            }
            if group.pids.iter().all(Option::is_none)
                && group.restart_at.iter().all(Option::is_none)
            {
                return None;
            }
            let next_restart = group.restart_at.iter().flatten().min().copied();
            tokio::select! {
                Some((i, exit)) = self.exits.1.recv() => self.exited(group, i, exit, policy),
                () = sleep_until(next_restart.unwrap_or(now)), if next_restart.is_some() => {}
                () = sleep_until(self.deadline.unwrap_or(now)), if self.deadline.is_some() => {
                    return Some(Ending::Deadline);
                }
                _ = refresh.tick() => {
                    let dir = launch::pod_dir(&self.ctx, &self.pod);
                    if let Err(error) = launch::credentials(&self.ctx, &self.pod, &dir).await {
                        tracing::warn!(error = format!("{error:#}"), "refreshing the service-account token failed");
                    }
                }
                changed = self.control.changed() => {
                    if changed.is_err() {
                        return Some(Ending::Shutdown);
                    }
                    if let Some(ending) = self.ending() {
                        return Some(ending);
                    }
                }
            }
        }
    }

    fn merge_init(&self, group: &Group) -> Vec<ContainerReport> {
        self.init
            .iter()
            .map(|r| {
                group
                    .reports
                    .iter()
                    .find(|g| g.name == r.name)
                    .unwrap_or(r)
                    .clone()
            })
            .collect()
    }

    fn start(&self, group: &mut Group, i: usize, launch: &Launch, policy: &str) {
        match process::spawn(launch) {
            Ok(mut running) => {
                let name = &group.reports[i].name;
                self.event(false, "Started", format!("Started container {name}"));
                group.pids[i] = running.pid();
                group.reports[i].state = State::Running {
                    started: running.started,
                    container_id: running.container_id(),
                };
                let exits = self.exits.0.clone();
                tokio::spawn(async move {
                    let exit = running.wait().await.unwrap_or(Exit {
                        code: 255,
                        signal: None,
                    });
                    let _ = exits.send((i, exit));
                });
            }
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "container did not start");
                let name = &group.reports[i].name;
                self.event(
                    true,
                    "Failed",
                    format!("Error: container {name}: {error:#}"),
                );
                let now = Utc::now();
                let state = State::Terminated {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: format!("{error:#}"),
                    started: now,
                    finished: now,
                    container_id: String::new(),
                };
                self.after_exit(group, i, state, 128, policy);
            }
        }
    }

    fn exited(&self, group: &mut Group, i: usize, exit: Exit, policy: &str) {
        group.pids[i] = None;
        let (started, id) = match &group.reports[i].state {
            State::Running {
                started,
                container_id,
            } => (*started, container_id.clone()),
            _ => (Utc::now(), String::new()),
        };
        let state = State::exited(exit.code, exit.signal, started, id);
        self.after_exit(group, i, state, exit.code, policy);
    }

    /// Records the end of a container and schedules its restart when the policy says so
    /// (exponential back-off from 1 s, at most 30 s).
    fn after_exit(&self, group: &mut Group, i: usize, state: State, code: i32, policy: &str) {
        let report = &mut group.reports[i];
        let restart = policy == "Always" || (policy == "OnFailure" && code != 0);
        if !restart {
            report.state = state;
            return;
        }
        let backoff = Duration::from_secs(1u64 << report.restart_count.clamp(0, 5))
            .min(Duration::from_secs(30));
        report.last_state = Some(state);
        report.restart_count += 1;
        let note = format!("Back-off restarting failed container {}", report.name);
        self.event(true, "BackOff", note);
        report.state = State::waiting(
            "CrashLoopBackOff",
            format!(
                "back-off {}s restarting failed container",
                backoff.as_secs()
            ),
        );
        group.restart_at[i] = Some(Instant::now() + backoff);
    }

    /// SIGTERM to every running container, SIGKILL to those still running after the grace
    /// period (the deletion's, else the pod's), then wait for them.
    async fn stop(&mut self, group: &mut Group) {
        let grace = self
            .pod_now()
            .metadata
            .deletion_grace_period_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.grace, Duration::from_secs);
        // A stopping node (down.sh waits 10 s for it) gives its pods at most 5 s.
        let grace = if self.control.borrow().shutdown {
            grace.min(Duration::from_secs(5))
        } else {
            grace
        };
        group.restart_at.iter_mut().for_each(|r| *r = None);
        for (report, pid) in group.reports.iter().zip(&group.pids) {
            if pid.is_some() {
                self.event(
                    false,
                    "Killing",
                    format!("Stopping container {}", report.name),
                );
            }
        }
        // As a container runtime does: SIGTERM to the container's first process only (which
        // passes it on, or not), SIGKILL to everything in it after the grace period.
        for pid in &group.pids {
            process::signal_process(*pid, Signal::SIGTERM);
        }
        let kill_at = Instant::now() + grace;
        let mut killed = false;
        while group.pids.iter().any(Option::is_some) {
            tokio::select! {
                Some((i, exit)) = self.exits.1.recv() => self.exited(group, i, exit, "Never"),
                () = sleep_until(kill_at), if !killed => {
                    killed = true;
                    for pid in &group.pids {
                        process::signal_group(*pid, Signal::SIGKILL);
                    }
                }
            }
        }
    }

    async fn finish(&mut self, ending: Ending, main: &mut Group) -> Result<()> {
        match ending {
            Ending::Shutdown | Ending::Gone => Ok(()),
            Ending::Deadline => {
                let note = "Pod was active on the node longer than the specified deadline";
                self.event(false, "DeadlineExceeded", note.to_owned());
                let phase = Phase {
                    phase: "Failed",
                    reason: Some("DeadlineExceeded".into()),
                    message: Some(
                        "Pod was active on the node longer than the specified deadline".into(),
                    ),
                };
                self.report(&phase, main).await;
                Ok(())
            }
            Ending::Deleted => {
                for report in &mut main.reports {
                    if !matches!(report.state, State::Terminated { .. }) {
                        report.state = State::exited(137, None, Utc::now(), String::new());
                    }
                }
                self.report(&terminal_phase(&main.reports), main).await;
                let pod = self.pod_now();
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: pod.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match self
                    .api()
                    .delete(pod.metadata.name.as_deref().unwrap_or_default(), &params)
                    .await
                {
                    Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
                    Err(error) => Err(error.into()),
                }
            }
        }
    }

    /// Waits until `until` or until the pod must stop.
    async fn wait_for_control(&mut self, until: Instant) -> Option<Ending> {
        loop {
            tokio::select! {
                () = sleep_until(until) => return None,
                changed = self.control.changed() => {
                    if changed.is_err() {
                        return Some(Ending::Shutdown);
                    }
                    if let Some(ending) = self.ending() {
                        return Some(ending);
                    }
                }
            }
        }
    }

    fn ending(&mut self) -> Option<Ending> {
        let control = self.control.borrow_and_update();
        if control.shutdown {
            Some(Ending::Shutdown)
        } else if control.gone {
            Some(Ending::Gone)
        } else if control.pod.metadata.deletion_timestamp.is_some() {
            Some(Ending::Deleted)
        } else {
            None
        }
    }

    fn event(&self, warning: bool, reason: &str, note: String) {
        self.ctx.events.pod(&self.pod, warning, reason, note);
    }

    fn pod_now(&self) -> Arc<Pod> {
        self.control.borrow().pod.clone()
    }

    fn api(&self) -> Api<Pod> {
        Api::namespaced(
            self.ctx.client.clone(),
            self.pod.metadata.namespace.as_deref().unwrap_or("default"),
        )
    }

    async fn report(&self, phase: &Phase, main: &Group) {
        let patch = pod_status_patch(phase, self.start_time, &self.init, &main.reports);
        let name = self.pod.metadata.name.as_deref().unwrap_or_default();
        if let Err(error) = self
            .api()
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            tracing::warn!(pod = name, %error, "reporting pod status failed");
        }
    }
}

impl Group {
    fn new(reports: Vec<ContainerReport>) -> Self {
        let n = reports.len();
        Self {
            reports,
            pids: vec![None; n],
            restart_at: vec![Some(Instant::now()); n],
        }
    }
}
