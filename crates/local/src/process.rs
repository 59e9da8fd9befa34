//! Trainer processes: started as `kubetrain train` (or, for custom runs, `kubetrain exec --
//! COMMAND`) with exactly the arguments and environment the Kubernetes Job gives its
//! container, in a process group of their own so that killing one kills everything it started.

use std::process::Stdio;

use kubetrain_api::TrainingRun;
use std::path::PathBuf;
use std::time::Duration;

use kubetrain_api::invocation::{
    CustomDirs, ENV_DATASET_CACHE, ENV_PREFIX, EnvValue, StatusReport, TrainerEnvVar, custom_env,
    exec_args, trainer_args, trainer_env, trainer_threads,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::Config;

/// Most trainer stderr kept for the error message.
const STDERR_TAIL: usize = 16 * 1024;

/// A started trainer and the directory it works in (custom runs: their program's working
/// directory, model directory and downloaded data), removed when the attempt ends.
#[derive(Debug)]
pub(crate) struct Started {
    pub child: Child,
    pub work_dir: Option<PathBuf>,
}

/// Start the trainer of `run`: its own thread count (from its CPU resources), else `threads`.
///
/// # Errors
/// The trainer binary cannot be started.
pub(crate) fn spawn(config: &Config, threads: u32, run: &TrainingRun) -> std::io::Result<Started> {
    let threads = trainer_threads(run.spec.resources.as_ref()).unwrap_or(threads);
    let mut command = Command::new(&config.trainer);
    let mut work_dir = None;
    let mut custom_dirs = None;
    match &run.spec.custom {
        None => {
            command.args(trainer_args(&run.spec, Some(threads)));
        }
        Some(custom) => {
            // A fresh directory per attempt: the program runs in it, writes its model into
            // `model/` and finds the downloaded data in `data/`.
            let dir = config.data_dir.join("work").join(format!(
                "{}_{}_{}",
                run.metadata.namespace.as_deref().unwrap_or("default"),
                run.metadata.name.as_deref().unwrap_or("run"),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&dir)?;
            let dirs = CustomDirs {
                model: dir.join("model").display().to_string(),
                data: dir.join("data").display().to_string(),
            };
            command.args(exec_args(custom, StatusReport::Stdout, &dirs));
            command.current_dir(&dir);
            work_dir = Some(dir);
            custom_dirs = Some(dirs);
        }
    }
    // Only the shared environment decides how the trainer runs: flags it would read from
    // inherited KUBETRAIN_* variables (and a run identity that would make it report into
    // a cluster) are removed.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(ENV_PREFIX) {
            command.env_remove(name);
        }
    }
    let env = match (&run.spec.custom, &custom_dirs) {
        (Some(custom), Some(dirs)) => {
            let mut env = custom_env(run, custom, &config.storage, Some(threads), dirs);
            // Literal values only (validation refuses `valueFrom` here).
            env.extend(custom.env.iter().filter_map(|var| {
                var.value.as_ref().map(|value| TrainerEnvVar {
                    name: var.name.clone(),
                    value: EnvValue::Value(value.clone()),
                })
            }));
            env
        }
        _ => trainer_env(run, &config.storage, StatusReport::Stdout),
    };
    for var in env {
        match var.value {
            EnvValue::Value(value) => {
                command.env(&var.name, value);
            }
            // No Secrets on one machine: the trainer uses the credentials in
            // `kubetrain local`'s own environment (AWS_ACCESS_KEY_ID, ...).
            EnvValue::SecretKey { .. } => {}
        }
    }
    if let Some(dir) = &config.dataset_cache {
        command.env(ENV_DATASET_CACHE, dir);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    match command.spawn() {
        Ok(child) => Ok(Started { child, work_dir }),
        Err(error) => {
            remove_work_dir(work_dir.as_deref());
            Err(error)
        }
    }
}

/// Remove an attempt's working directory (best effort: the model is uploaded by then).
pub(crate) fn remove_work_dir(dir: Option<&std::path::Path>) {
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The trainer's stdout, line by line (its progress events).
pub(crate) fn stdout_lines(child: &mut Child) -> Option<Lines<BufReader<ChildStdout>>> {
    child.stdout.take().map(|out| BufReader::new(out).lines())
}

/// The next line of `lines`; never, once they are gone (so a `select!` waits on the rest).
pub(crate) async fn next_line(lines: &mut Option<Lines<BufReader<ChildStdout>>>) -> Option<String> {
    match lines {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// Collect the last [`STDERR_TAIL`] bytes of the trainer's stderr until it closes.
pub(crate) fn stderr_tail(child: &mut Child) -> Option<JoinHandle<String>> {
    child.stderr.take().map(|mut pipe| {
        tokio::spawn(async move {
            let mut tail = Vec::new();
            let mut buffer = vec![0u8; 8192];
            while let Ok(n) = pipe.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buffer[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        })
    })
}

/// Stop the trainer as the kubelet stops a container: SIGTERM to the trainer (which forwards
/// it to a custom program), then, if it has not exited within `grace`, SIGKILL to its whole
/// process group; then reap it.
pub(crate) async fn stop(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        } else {
            // The trainer is gone; anything it left in its group goes too.
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _ = child.kill().await;
}
